"""PyTorch frontend: `trace(module, example_input) -> Graph`.

torch.fx records the model's forward with neurons as leaves; the builder turns
that record into IR nodes, evaluating shape arithmetic from the example input's
shape. The example input is [T, B, ...] (time first) unless `time_first=False`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from snncc.diagnostics import SnnccError
from snncc.frontends.torch.builder import Builder
from snncc.frontends.torch.converters import register_module_converter
from snncc.frontends.torch.tracer import register_leaf, trace_fx
from snncc.ir.graph import Graph, verify


def trace(
    module: torch.nn.Module,
    example_input: torch.Tensor | Sequence[torch.Tensor],
    *,
    time_steps: int | None = None,
    time_first: bool = True,
    input_spikes: bool = False,
) -> Graph:
    """Trace a PyTorch spiking model into snncc's IR (nothing of the model runs)."""
    inputs = [example_input] if isinstance(example_input, torch.Tensor) else list(example_input)
    if not inputs:
        raise SnnccError("SNN-FE005", "no example input given",
                         hint="pass an example input, e.g. torch.zeros(T, B, C, H, W)")
    if time_steps is None:
        if not time_first:
            raise SnnccError("SNN-FE005", "time_steps is required when the input has no time axis")
        time_steps = int(inputs[0].shape[0])
    graph = Graph(time_steps=time_steps)
    graph.meta["model"] = type(module).__name__
    graph.meta["source_parameters"] = sum(p.numel() for p in module.parameters())
    builder = Builder(module, graph)
    builder.convert(trace_fx(module), inputs, time_first, input_spikes)
    graph.meta["unused_modules"] = unused_modules(module, graph)
    verify(graph)
    return graph


def unused_modules(module: torch.nn.Module, graph: Graph) -> dict[str, int]:
    """Leaf modules with parameters that the forward never calls (e.g. Spikformer's
    unused LayerNorms), with their parameter counts."""
    used = {n.origin.module_path for n in graph}
    out = {}
    for name, m in module.named_modules():
        if not name or any(True for _ in m.children()):
            continue
        count = sum(p.numel() for p in m.parameters(recurse=False))
        if count and name not in used:
            out[name] = count
    return out


__all__ = ["register_leaf", "register_module_converter", "trace"]
