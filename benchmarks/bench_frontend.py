"""Trace + canonicalize + spike-only check of large models on this machine; where the time goes.

- ImageNet Spikingformer-8-768 (66 M parameters, random weights), [T=4, B=1, 3, 224, 224];
- SpikingJelly's own SpikingResNet-18 (``activation_based.model.spiking_resnet``, LIFNode,
  ``functional.set_step_mode(net, 'm')``), same input.

Target (issue 2, and the frontend issue for the ResNet): under 5 s end to end each, on 2
cores. Each model's trace is also profiled once (a second trace, not counted in the times)
to split it into torch.fx's tracing, the frontend's own code, the IR's shape rules and
verifier, and the copies of weights out of the model. A model that does not trace prints
its error line; the other rows still run.
"""

from __future__ import annotations

import cProfile
import pstats
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from snncc.analysis.spike_only import check_spike_only
from snncc.diagnostics import SnnccError
from snncc.frontends.registry import trace_with
from snncc.passes import CANONICALIZE, run_passes

TARGET_S = 5.0
# C methods a frontend copies parameters out of a module with (detach, to float32/CPU, numpy, copy)
COPY_METHODS = frozenset({"detach", "cpu", "to", "numpy", "copy", "clone", "contiguous", "float"})


def spikingformer_8_768() -> torch.nn.Module:
    from snncc.examples.spikingformer import spikingformer_imagenet

    return spikingformer_imagenet(depth=8, dim=768)


def sj_spiking_resnet18() -> torch.nn.Module:
    from spikingjelly.activation_based import functional, neuron, surrogate
    from spikingjelly.activation_based.model.spiking_resnet import spiking_resnet18

    net = spiking_resnet18(spiking_neuron=neuron.LIFNode, surrogate_function=surrogate.ATan(),
                           detach_reset=True)
    functional.set_step_mode(net, "m")
    return net


@dataclass
class Case:
    name: str
    build: Callable[[], torch.nn.Module]
    shape: tuple[int, ...]


CASES = [
    Case("Spikingformer-8-768", spikingformer_8_768, (4, 1, 3, 224, 224)),
    Case("SJ SpikingResNet-18", sj_spiking_resnet18, (4, 1, 3, 224, 224)),
]


def _area(filename: str, func: str) -> str:
    """Which part of the stack a profiled function belongs to."""
    if filename == "~" and func.split("'")[1:2] and func.split("'")[1] in COPY_METHODS:
        return "weight copies"
    f = filename.replace("\\", "/")
    if "/torch/fx/" in f:
        return "torch.fx tracing"
    if "/snncc/ir/" in f:
        return "IR shape rules / verify"
    if "/frontends/" in f:
        return "frontend (builder, converters)"
    if "/pydantic" in f:
        return "pydantic (attributes, types)"
    return "other (torch, SpikingJelly, builtins)"


def trace_breakdown(model: torch.nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Shares of a profiled trace's own time (tottime) by area; they sum to 1."""
    prof = cProfile.Profile()
    prof.enable()
    try:
        trace_with(model, x, time_steps=None, input_kind="analog")
    finally:
        prof.disable()
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    areas: dict[str, float] = {}
    for (filename, _line, func), (_cc, _nc, tottime, _ct, _callers) in stats.items():
        key = _area(filename, func)
        areas[key] = areas.get(key, 0.0) + tottime
    total = sum(areas.values()) or 1.0
    return {k: v / total for k, v in sorted(areas.items(), key=lambda kv: -kv[1])}


def run_case(case: Case) -> dict[str, float] | None:
    t0 = time.perf_counter()
    model = case.build().eval()
    t_build = time.perf_counter() - t0
    params = sum(p.numel() for p in model.parameters())
    x = torch.zeros(case.shape)
    print(f"{case.name}: {params / 1e6:.2f} M parameters, input {list(case.shape)} "
          f"(model construction {t_build:.2f} s, not counted)")
    t0 = time.perf_counter()
    try:
        graph = trace_with(model, x, time_steps=None, input_kind="analog")
    except SnnccError as e:
        print(f"  does not trace ({time.perf_counter() - t0:.2f} s): {e.diagnostic.render()}")
        return None
    except Exception as e:  # the bench goes on to the next model, but says it is a bug
        print(f"  internal error while tracing: {type(e).__name__}: {str(e).splitlines()[0]}")
        return None
    t_trace = time.perf_counter() - t0
    t0 = time.perf_counter()
    run = run_passes(graph, CANONICALIZE)
    t_canon = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = check_spike_only(run.graph)
    t_check = time.perf_counter() - t0
    total = t_trace + t_canon + t_check
    print(f"  {len(graph)} traced nodes, {len(run.graph)} canonical nodes")
    print(f"  trace        {t_trace:7.3f} s")
    for area, share in trace_breakdown(model, x).items():
        print(f"    {share:6.1%}  ~{share * t_trace:5.2f} s  {area}")
    print(f"  canonicalize {t_canon:7.3f} s")
    print(f"  check        {t_check:7.3f} s   ({report.summary()})")
    verdict = "met" if total < TARGET_S else "MISSED"
    print(f"  total        {total:7.3f} s   target < {TARGET_S:g} s: {verdict}")
    return {"trace": t_trace, "canonicalize": t_canon, "check": t_check, "total": total}


def main() -> None:
    torch.set_num_threads(2)
    results = {c.name: run_case(c) for c in CASES}
    print("\nsummary (s)            trace  canon  check  total  target")
    for name, r in results.items():
        if r is None:
            print(f"  {name:20s}  does not trace (see above)")
        else:
            print(f"  {name:20s} {r['trace']:6.2f} {r['canonicalize']:6.2f} {r['check']:6.2f} "
                  f"{r['total']:6.2f}  {'met' if r['total'] < TARGET_S else 'MISSED'}")


if __name__ == "__main__":
    main()
