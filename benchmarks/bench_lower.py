"""Compile time, model file to layer program and core mapping, of the seed paper's
models: Spikingformer-4-384 (CIFAR) and Spikingformer-8-768 (ImageNet), each phase
timed, beside one float forward pass of the same model (batch 1) in the same run."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import snncc
from snncc.backends.acsim.artifact import CompiledModel
from snncc.passes.quantize import quantize
from snncc.targets import Target, load_target

# The ImageNet model's 24 M neurons need 26 Loihi 2 chips: it is mapped on a 32-chip
# system (loihi2 with `chips: 32`), and loihi2's own 8 chips give the error that says so.
MODELS = [("spikingformer-4-384 (CIFAR)", "spikingformer_cifar_4_384", (4, 1, 3, 32, 32), 8),
          ("spikingformer-8-768 (ImageNet)", "spikingformer_imagenet_8_768", (4, 1, 3, 224, 224),
           32)]


def _loihi2(chips: int) -> Target:
    t = load_target("loihi2")
    assert t.limits is not None
    return t.model_copy(update={"limits": t.limits.model_copy(update={"chips": chips})})


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _bench(label: str, factory: str, shape: tuple[int, ...], chips: int) -> None:
    from snncc.examples import spikingformer

    model = getattr(spikingformer, factory)().eval()
    x = torch.rand(*shape)
    with torch.no_grad():  # best of three: the first call also warms PyTorch up
        t_float = min(_timed(lambda: model(x))[0] for _ in range(3))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pt"
        torch.save(model.state_dict(), path)
        t_load, graph = _timed(lambda: snncc.load(
            path, input_shape=shape, arch=f"snncc.examples.spikingformer:{factory}"))
    t_canon, result = _timed(lambda: snncc.compile(graph, target="ir"))
    t_quant, qg = _timed(lambda: quantize(result.graph, _loihi2(chips)))
    t_map, compiled = _timed(lambda: CompiledModel.build(qg))
    lowered, mapping = compiled.lowered, compiled.mapping
    total = t_load + t_canon + t_quant + t_map
    print(f"{label}: load+trace {t_load:.2f} s, canonicalize+check {t_canon:.2f} s, "
          f"quantize {t_quant:.2f} s, lower+map {t_map:.2f} s; total {total:.2f} s "
          f"= {total / t_float:.1f}x one float forward ({t_float:.2f} s)")
    print(f"  {len(lowered.layers)} chip layers ({len(lowered.relays)} relays, "
          f"{len(lowered.splits)} splits), {mapping.cores_used} cores on "
          f"{mapping.chips_used} chips of a {chips}-chip loihi2")


def main() -> None:
    torch.set_num_threads(2)
    for label, factory, shape, chips in MODELS:
        _bench(label, factory, shape, chips)


if __name__ == "__main__":
    main()
