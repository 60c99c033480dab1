"""`make lava-agreement`: the digits models in real Lava against acsim, on 100 test samples.

Not a speed benchmark (it takes minutes: one Lava run of a few seconds per
sample), so ``make bench`` does not run it. For each model and clock it compares
every neuron layer's spikes at every step (aligned: in each layer's window, on
the steps the pruned schedule runs; lava: all T + depth steps) and the
predictions, and prints the accuracy of both engines on the labels.

    python -m benchmarks.lava_agreement [--samples 100] [--clock aligned|lava|both]
                                        [MODEL.pt ...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import snncc
from snncc.backends.acsim.program import Program
from snncc.backends.acsim.simulator import run_quantized
from snncc.backends.lava.run import predict
from snncc.examples.digits import encode, load_digits_split
from snncc.passes.quantize import quantize

CKPT = "examples/checkpoints/"
MODELS = ["spikingformer_digits.pt", "spikformer_digits.pt", "spikingformer_digits_dts.pt"]


def agreement(program: Program, x: np.ndarray, labels: np.ndarray, aligned: bool) -> str:
    """One line: layers and steps compared, mismatches, identical predictions, accuracy."""
    t0 = time.perf_counter()
    lava = predict(program, x, aligned=aligned)
    wall = time.perf_counter() - t0
    ours = run_quantized(program, x, lava_timed=not aligned)
    T = x.shape[0]
    seen = lava.windows(T) if aligned else lava.spikes
    compared = differ = 0
    for b, spikes in enumerate(seen):
        for layer, s in spikes.items():
            run = program.schedule.get(layer) if aligned else None
            steps = list(range(s.shape[0])) if run is None else run
            compared += 1
            differ += not np.array_equal(s[steps], ours.spikes[layer][steps, b])
    same = int((lava.predictions == ours.predictions).sum())
    return (f"{'aligned' if aligned else 'lava'} clock: {x.shape[1]} samples, {compared} "
            f"(sample, layer) spike trains compared, {differ} differ; predictions identical "
            f"{same}/{x.shape[1]}; accuracy Lava {(lava.predictions == labels).mean():.1%}, "
            f"acsim {(ours.predictions == labels).mean():.1%}; {wall / x.shape[1]:.1f} s/sample "
            f"in Lava")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=MODELS)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--clock", choices=["aligned", "lava", "both"], default="aligned")
    args = ap.parse_args()
    xtr, _, xte, yte = load_digits_split()
    x, labels = encode(xte[:args.samples]).numpy(), yte[:args.samples].numpy()
    clocks = [True, False] if args.clock == "both" else [args.clock == "aligned"]
    for name in args.models:
        graph = snncc.compile(snncc.load(CKPT + name, input_shape=(4, 1, 1, 8, 8))).graph
        program = Program(quantize(graph, "loihi2", calibration=encode(xtr[:32])))
        for aligned in clocks:
            print(f"{name}: {agreement(program, x, labels, aligned)}", flush=True)


if __name__ == "__main__":
    main()
