"""Dynamic time steps: scheduled ACs, neuron updates and the interpreter's wall
time on the digits test set, with and without prune-timesteps, in one run."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from snncc.api import compile as compile_model
from snncc.examples.digits import encode, load_digits_split
from snncc.frontends.torch import trace
from snncc.ir import run
from snncc.loading import load_model

CKPT = Path(__file__).resolve().parents[1] / "examples" / "checkpoints" / "spikingformer_digits_dts.pt"


def _time(graph, x: torch.Tensor, repeats: int = 3) -> tuple[float, torch.Tensor]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        (out,), _ = run(graph, [x])
        best = min(best, time.perf_counter() - t0)
    assert out is not None
    return best, out


def main() -> None:
    torch.set_num_threads(2)
    if not CKPT.exists():
        print(f"no DTS checkpoint at {CKPT}; train it with python -m snncc.examples.train_dts")
        return
    model = load_model(CKPT).module.eval()
    _, _, xte, yte = load_digits_split()
    x = encode(xte, 4)
    graph = trace(model, x)
    full = compile_model(graph, prune=False).graph
    pruned = compile_model(graph, prune=True)
    ts = pruned.timesteps
    assert ts is not None
    t_full, y_full = _time(full, x)
    t_pruned, y_pruned = _time(pruned.graph, x)
    same = torch.equal(y_full, y_pruned)
    acc = float((y_pruned.argmax(1) == yte).float().mean())
    print(f"DTS Spikingformer on {len(x[0])} digits test images, T=4, average time steps "
          f"{ts['average']:.2f}, accuracy {acc:.4f}; logits identical with and without pruning: {same}")
    print(f"  scheduled ACs     {ts['synaptic_ops_before']:>12,} -> {ts['synaptic_ops_after']:>12,}"
          f"  ratio {ts['synaptic_ops_before'] / max(ts['synaptic_ops_after'], 1):.2f}x")
    print(f"  neuron updates    {ts['neuron_updates_before']:>12,} -> {ts['neuron_updates_after']:>12,}"
          f"  ratio {ts['neuron_updates_before'] / max(ts['neuron_updates_after'], 1):.2f}x")
    print(f"  interpreter time  {t_full * 1e3:>10.1f} ms -> {t_pruned * 1e3:>10.1f} ms"
          f"  ratio {t_full / t_pruned:.2f}x")
