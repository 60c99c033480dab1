"""The printable, diffable text form of a graph (for `snncc inspect` and
`--print-ir-after`). One line per node: name, op, attributes, inputs,
parameter shapes, output type (kind, range, shape, time layout), origin."""

from __future__ import annotations

from snncc.ir.graph import Graph, Node


def _attrs(node: Node) -> str:
    fields = node.attrs.model_dump()
    if not fields:
        return ""
    return "[" + ", ".join(f"{k}={v}" for k, v in fields.items()) + "]"


def _params(node: Node) -> str:
    if not node.params:
        return ""
    return " {" + ", ".join(f"{k}: {v.dtype}{list(v.shape)}" for k, v in node.params.items()) + "}"


def node_text(node: Node) -> str:
    args = ", ".join(f"%{i}" for i in node.inputs)
    origin = f"  # {node.origin.module_path}" if node.origin.module_path else ""
    return f"%{node.name} = {node.op}{_attrs(node)}({args}){_params(node)} : {node.type.render()}{origin}"


def graph_text(graph: Graph) -> str:
    lines = [f"graph(T={graph.time_steps}) {{"]
    lines += ["  " + node_text(n) for n in graph]
    lines.append("  return (" + ", ".join(f"%{o}" for o in graph.outputs) + ")")
    lines.append("}")
    return "\n".join(lines)
