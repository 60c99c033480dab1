"""snncc's graph IR: op table, graph, text and file forms, reference interpreter."""

from snncc.ir import ops  # noqa: F401  (registers the op table)
from snncc.ir.graph import FORMAT_VERSION, Graph, IRVerificationError, Node, Origin, verify
from snncc.ir.interpreter import run
from snncc.ir.op import OPS, Attrs, Cost, Multiplies, OpDef, Temporal, get_op, register_op
from snncc.ir.serialize import load_graph, save_graph
from snncc.ir.text import graph_text
from snncc.ir.types import Layout, TensorType, ValueKind

__all__ = [
    "FORMAT_VERSION", "OPS", "Attrs", "Cost", "Graph", "IRVerificationError", "Layout",
    "Multiplies", "Node", "OpDef", "Origin", "TensorType", "Temporal", "ValueKind", "get_op",
    "graph_text", "load_graph", "register_op", "run", "save_graph", "verify",
]
