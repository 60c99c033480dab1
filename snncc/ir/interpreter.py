"""The reference interpreter: runs a graph with each op's reference semantics.

It is the oracle every pass is tested against (a pass must not change what the
interpreter computes) and the way `--inputs` confirms the value-kind analysis
on real data. It honours the time-step schedule of `prune-timesteps`
(`graph.meta["schedule"]`): skipped steps are filled with what the pass proved
they hold (zeros, or a weight op's bias), so their work is really not done.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from snncc.ir.graph import Graph, Node
from snncc.ir.ops.neurons import NeuronAttrs, run_neuron
from snncc.ir.types import Layout


def _known_output(node: Node, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """What a skipped step of `node` holds: its bias along the channel axis, else zeros."""
    out = torch.zeros(node.type.shape[1:])
    bias = params.get("bias")
    axis = node.opdef.channel_axis
    if bias is not None and axis is not None:
        shape = [1] * len(node.type.shape[1:])
        shape[axis] = -1
        out = out + bias.reshape(shape)
    return out


def evaluate_node(node: Node, params: dict[str, torch.Tensor], ins: list[torch.Tensor],
                  steps: Sequence[int] | None) -> torch.Tensor:
    if steps is None:
        return node.opdef.evaluate(node.attrs, params, ins)
    if node.opdef.is_neuron:
        assert isinstance(node.attrs, NeuronAttrs)
        charge = node.opdef.stepper(node.attrs, params)  # type: ignore[attr-defined]
        return run_neuron(ins[0], node.attrs, charge, steps)[0]
    out = _known_output(node, params).expand(node.type.shape).clone()
    if steps:
        idx = torch.tensor(list(steps))
        out[idx] = node.opdef.evaluate(node.attrs, params, [x[idx] for x in ins])
    return out


@torch.no_grad()
def run(
    graph: Graph, inputs: Sequence[torch.Tensor], *, record: bool = False
) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """Evaluate the graph; returns its outputs and (if `record`) every node's value."""
    if len(inputs) != len(graph.inputs):
        raise ValueError(f"graph takes {len(graph.inputs)} inputs, got {len(inputs)}")
    schedule = graph.meta.get("schedule", {})
    assert isinstance(schedule, dict)
    values: dict[str, torch.Tensor] = {}
    users_left = {n: 0 for n in graph.nodes}
    for n in graph:
        for i in n.inputs:
            users_left[i] += 1
    for name, x in zip(graph.inputs, inputs):
        values[name] = x.to(torch.float32)
    for node in graph:
        if node.op == "input":
            continue
        params = {k: torch.from_numpy(v) for k, v in node.params.items()}
        values[node.name] = evaluate_node(node, params, [values[i] for i in node.inputs],
                                          schedule.get(node.name))
        if not record:  # free what no later node needs
            for i in node.inputs:
                users_left[i] -= 1
                if users_left[i] == 0 and i not in graph.outputs:
                    values.pop(i, None)
    return [values[o] for o in graph.outputs], (values if record else {})


def run_in_batches(
    graph: Graph, x: torch.Tensor, *, record: bool = False
) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """:func:`run` on a single input with any batch size: the graph bakes the traced
    batch size into its reshapes, so the batch is cut into pieces of that size."""
    traced = graph.nodes[graph.inputs[0]].type
    if tuple(x.shape) == traced.shape:
        return run(graph, [x], record=record)
    axis = 1 if traced.layout == Layout.TIME else 0
    size = traced.shape[axis]
    if x.shape[axis] % size:
        raise ValueError(f"batch {x.shape[axis]} is not a multiple of the traced batch {size}")
    pieces = [run(graph, [p], record=record) for p in torch.split(x, size, dim=axis)]

    def cat(name: str, parts: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(parts, dim=1 if graph.nodes[name].type.layout == Layout.TIME else 0)

    outs = [cat(o, [p[0][i] for p in pieces]) for i, o in enumerate(graph.outputs)]
    values = {k: cat(k, [p[1][k] for p in pieces]) for k in pieces[0][1]} if record else {}
    return outs, values
