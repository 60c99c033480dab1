"""The digits models in real Lava (fixed_pt) beside acsim's Lava-timed run of the same
artifact, in one run: compile time (model file to Lava processes) and ms per step."""

from __future__ import annotations

import time
from pathlib import Path

import torch

import snncc
from snncc.backends.acsim.program import Program
from snncc.backends.acsim.simulator import run_quantized
from snncc.backends.lava import build, run_lava
from snncc.backends.registry import get_backend
from snncc.examples.digits import encode, load_digits_split

CKPT = Path(__file__).resolve().parents[1] / "examples" / "checkpoints"
MODELS = ["spikingformer_digits.pt", "spikformer_digits.pt", "spikingformer_digits_dts.pt"]
SAMPLES = 2


def main() -> None:
    torch.set_num_threads(2)
    xtr, _, xte, _ = load_digits_split()
    cal, x = encode(xtr[:32]), encode(xte[:SAMPLES]).numpy()
    for name in MODELS:
        t0 = time.perf_counter()
        graph = snncc.load(CKPT / name, input_shape=(4, 1, 1, 8, 8))
        compiled = get_backend("loihi").compile(snncc.compile(graph).graph, "loihi2", cal)
        program: Program = compiled.program
        t1 = time.perf_counter()
        build(_save(compiled, name), x[:, 0])  # the processes, connected, not started
        build_time = time.perf_counter() - t1
        t_compile = t1 - t0
        lava_s, steps = 0.0, 0
        for b in range(SAMPLES):
            t = time.perf_counter()
            r = run_lava(program, x[:, b], aligned=False)
            lava_s += time.perf_counter() - t
            steps += r.steps
        t = time.perf_counter()
        run_quantized(program, x, lava_timed=True)
        acsim_s = time.perf_counter() - t
        lava_ms, acsim_ms = 1e3 * lava_s / steps, 1e3 * acsim_s / steps
        print(f"{name}: compile {t_compile:.2f} s + Lava processes {build_time:.2f} s; "
              f"Lava {lava_ms:.1f} ms/step (start-up included), acsim Lava-timed "
              f"{acsim_ms:.3f} ms/step: acsim {lava_ms / acsim_ms:.0f}x faster "
              f"({SAMPLES} samples, {steps // SAMPLES} steps each)")


def _save(compiled: object, name: str) -> Path:
    import tempfile

    path = Path(tempfile.mkdtemp()) / (Path(name).stem + ".loihi")
    get_backend("loihi").save(compiled, path)
    return path


if __name__ == "__main__":
    main()
