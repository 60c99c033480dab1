"""The digits Spikingformer through acsim vs the PyTorch float model, in one run.

Images per second on the 360 test images (T=4), best of three, both on the
same 2 threads: acsim (integer, accumulate-only, counting every event) and the
trained PyTorch module (float, SpikingJelly). Also acsim's synaptic events per
second, its accuracy next to the float model's, and where acsim's time goes
(per op kind, from one profiled run).

    .venv/bin/python -m benchmarks.bench_acsim_model
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from spikingjelly.clock_driven import functional

import snncc
from benchmarks import best_of
from snncc.backends.acsim import simulator
from snncc.backends.acsim.program import Program
from snncc.examples.digits import encode, load_digits_split
from snncc.loading import load_model

CKPT = Path(__file__).resolve().parents[1] / "examples" / "checkpoints" / "spikingformer_digits.pt"


def _profile(program: Program, x: np.ndarray) -> dict[str, float]:
    """Seconds per op kind for one batch (wraps the per-node evaluation)."""
    spent: dict[str, float] = defaultdict(float)
    original = simulator._evaluate

    def timed(prog, node, run):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        out = original(prog, node, run)
        spent[node.op] += time.perf_counter() - t0
        return out

    simulator._evaluate = timed  # type: ignore[assignment]
    try:
        simulator.run_batch(program, x)
    finally:
        simulator._evaluate = original  # type: ignore[assignment]
    return dict(spent)


def main() -> None:
    torch.set_num_threads(2)
    model = load_model(CKPT).module.eval()
    xtr, _, xte, yte = load_digits_split()
    x = encode(xte)
    result = snncc.compile(model, torch.zeros(4, 1, 1, 8, 8), target="acsim",
                           calibration=encode(xtr[:64]))
    assert result.compiled is not None
    program = result.compiled.program
    n = x.shape[1]

    def run_torch() -> torch.Tensor:
        with torch.no_grad():
            functional.reset_net(model)
            return model(x)

    sim = snncc.simulate(result, x)
    t_acsim = best_of(lambda: snncc.simulate(result, x))
    t_torch = best_of(run_torch)
    acc_acsim = float((sim.predictions == yte.numpy()).mean())
    acc_torch = float((run_torch().argmax(-1) == yte).float().mean())
    events = sim.counts.total_sops()
    print(f"digits Spikingformer, {n} test images, T=4, on {torch.get_num_threads()} threads")
    print(f"  acsim (loihi2 fixed point)  {n / t_acsim:>9.0f} images/s  accuracy {acc_acsim:.4f}"
          f"  {events / t_acsim / 1e6:.1f} M synaptic events/s")
    print(f"  PyTorch float model         {n / t_torch:>9.0f} images/s  accuracy {acc_torch:.4f}")
    print(f"  ratio acsim / PyTorch: {t_torch / t_acsim:.3f}x the images per second "
          "(acsim also counts every event per neuron and step)")
    spent = _profile(program, x.numpy())
    total = sum(spent.values())
    print("  where acsim's time goes (one batch): " + ", ".join(
        f"{op} {s / total:.0%}" for op, s in sorted(spent.items(), key=lambda kv: -kv[1])[:6]))


if __name__ == "__main__":
    main()
