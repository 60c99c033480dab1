"""The reference interpreter: runs a graph with each op's reference semantics.

It is the oracle every pass is tested against (a pass must not change what the
interpreter computes) and the way `--inputs` confirms the value-kind analysis
on real data.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from snncc.ir.graph import Graph


@torch.no_grad()
def run(
    graph: Graph, inputs: Sequence[torch.Tensor], *, record: bool = False
) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """Evaluate the graph; returns its outputs and (if `record`) every node's value."""
    if len(inputs) != len(graph.inputs):
        raise ValueError(f"graph takes {len(graph.inputs)} inputs, got {len(inputs)}")
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
        values[node.name] = node.opdef.evaluate(node.attrs, params, [values[i] for i in node.inputs])
        if not record:  # free what no later node needs
            for i in node.inputs:
                users_left[i] -= 1
                if users_left[i] == 0 and i not in graph.outputs:
                    values.pop(i, None)
    return [values[o] for o in graph.outputs], (values if record else {})
