"""Spikingformer-4-384 on CIFAR-sized inputs: acsim vs the PyTorch float model, one run.

The model is ``snncc.examples.spikingformer.spikingformer_cifar_4_384`` with random
weights (seed 0) and inputs ``x = rand(T=4, B, 3, 32, 32)``. Random weights give
degenerate firing (silent or saturated layers), so every LIF threshold is first set
(``snncc.examples.firing.set_firing_rates``) so that each layer fires 5-20 % of the
time on the first samples; the firing rates acsim then shows are printed next to
the float model's.

Both engines run on the same number of threads (``--threads``: PyTorch's and numba's
pools); images per second are the best of ``--repeats`` runs of the whole batch,
after a warm-up run (numba's kernels are compiled, or loaded from their cache, on
first use). acsim: quantize for Loihi 2 with the first samples as calibration, then
the integer, accumulate-only run counting every event (``run_quantized``). The core
mapping is skipped: the 4-384 model's residual neurons read 5376 inputs, more than a
Loihi 2 core's 4096, so ``compile(..., target="acsim")`` refuses it; the simulator
does not need the mapping.

    .venv/bin/python -m benchmarks.bench_spikingformer_speed [--batch 16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

import numba
import numpy as np
import torch
from spikingjelly.clock_driven import functional

import snncc
from benchmarks import MALLOC_TUNED, best_of
from benchmarks.bench_acsim_model import _profile
from snncc.backends.acsim.program import Program
from snncc.backends.acsim.simulator import run_quantized
from snncc.examples.firing import set_firing_rates
from snncc.examples.spikingformer import spikingformer_cifar_4_384
from snncc.passes.quantize import quantize

LOW, HIGH = 0.05, 0.20


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--calibration", type=int, default=8, help="samples for thresholds and ranges")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(list(argv) if argv is not None else [])
    torch.set_num_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    torch.manual_seed(args.seed)
    model = spikingformer_cifar_4_384().eval()
    x = torch.rand(4, args.batch, 3, 32, 32)
    sample = x[:, :args.calibration]

    t0 = time.perf_counter()
    rates = set_firing_rates(model, sample, LOW, HIGH)
    t_rates = time.perf_counter() - t0
    graph = snncc.compile(model, torch.zeros(4, 1, 3, 32, 32)).graph
    program = Program(quantize(graph, "loihi2", calibration=sample))
    t_build = time.perf_counter() - t0 - t_rates

    xn = x.numpy()
    sim = run_quantized(program, xn, batch_size=args.batch)  # warm-up
    t_acsim = best_of(lambda: run_quantized(program, xn, batch_size=args.batch),
                    args.repeats)

    def run_torch() -> torch.Tensor:
        with torch.no_grad():
            functional.reset_net(model)
            return model(x)

    run_torch()
    t_torch = best_of(run_torch, args.repeats)

    n = args.batch
    float_rates = [r.rate for r in rates]
    acsim_rates = [float(s.mean()) for s in sim.spikes.values()]
    outside = [r.name for r in rates if not r.in_range]
    agree = float((sim.predictions == run_torch().argmax(-1).numpy()).mean())
    print(f"Spikingformer-4-384, random weights, x = rand(T=4, B={n}, 3, 32, 32), "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs (load {os.getloadavg()[0]:.1f}); "
          f"malloc keeps freed blocks: {'yes' if MALLOC_TUNED else 'no'} (benchmarks/__init__.py)")
    print(f"  thresholds set for {LOW:.0%}-{HIGH:.0%} firing on {sample.shape[1]} samples in "
          f"{t_rates:.1f} s; trace + quantize {t_build:.1f} s")
    print(f"  firing rates over {len(rates)} LIF layers: float min {min(float_rates):.3f} "
          f"max {max(float_rates):.3f}; acsim min {min(acsim_rates):.3f} max {max(acsim_rates):.3f}"
          + (f"; outside the range (float): {', '.join(outside)}" if outside else ""))
    print(f"  acsim (loihi2 fixed point)  {n / t_acsim:>8.2f} images/s  "
          f"{sim.counts.total_sops() / t_acsim / 1e9:.2f} G synaptic events/s")
    print(f"  PyTorch float model         {n / t_torch:>8.2f} images/s")
    print(f"  ratio acsim / PyTorch: {t_torch / t_acsim:.2f}x the images per second "
          f"(predictions agree on {agree:.0%} of the {n} images)")
    spent = _profile(program, xn)
    total = sum(spent.values())
    print("  where acsim's time goes (one batch, graph ops only): " + ", ".join(
        f"{op} {s / total:.0%}" for op, s in sorted(spent.items(), key=lambda kv: -kv[1])[:6]))
    if np.isnan(t_torch / t_acsim):
        print("!! no timing", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
