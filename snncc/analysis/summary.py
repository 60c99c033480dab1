"""A model summary for `snncc inspect`: parameters, ops, neurons, static work."""

from __future__ import annotations

from collections import Counter
from typing import Any

from snncc.ir.graph import Graph


def parameter_count(graph: Graph) -> int:
    """Trainable parameters as PyTorch counts them: BN running statistics are
    buffers, not parameters; a ParametricLIF's `w` is one parameter; parameters of
    modules the forward never calls are included (they are in the model's count)."""
    total = 0
    for n in graph:
        total += sum(int(v.size) for k, v in n.params.items() if not k.startswith("running_"))
        total += 1 if n.op == "plif" else 0
    unused = graph.meta.get("unused_modules", {})
    assert isinstance(unused, dict)
    return total + sum(int(v) for v in unused.values())


def summarize(graph: Graph) -> dict[str, Any]:
    ops = Counter(n.op for n in graph if n.op != "input")
    synapses = sum(n.opdef.cost(n.attrs, [graph.nodes[i].type for i in n.inputs], n.type,
                                n.params).synapses for n in graph)
    neurons = sum(int(n.type.numel) for n in graph if n.opdef.is_neuron or n.opdef.feeds_back)
    return {
        "model": graph.meta.get("model", "?"),
        "parameters": parameter_count(graph),
        "nodes": len(graph),
        "time_steps": graph.time_steps,
        "ops": dict(sorted(ops.items())),
        "neuron_updates": neurons,
        "dense_synaptic_ops": synapses,
        "unused_modules": graph.meta.get("unused_modules", {}),
        "inputs": {i: list(graph.nodes[i].type.shape) for i in graph.inputs},
    }
