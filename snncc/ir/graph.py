"""The graph IR: nodes with one output each, kept in topological order.

A node names its op (looked up in the op table), its input nodes, its typed
attributes, its parameters (numpy arrays: weights, BN statistics), its output
type, and its origin in the user's model. The graph describes the whole run:
tensors carry their time axis, neurons step over it, and reductions over it
are the readout. networkx does the graph algorithms; this module keeps the IR's
own API small.
"""

from __future__ import annotations

import builtins
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from snncc.diagnostics import Location
from snncc.ir.op import Attrs, InferContext, OpDef, get_op
from snncc.ir.types import TensorType

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Origin:
    """Where a node came from: a module path as in `named_modules()`, and the source op."""

    module_path: str = ""
    source: str = ""


@dataclass
class Node:
    name: str
    op: str
    inputs: list[str]
    attrs: Attrs
    type: TensorType
    params: dict[str, np.ndarray] = field(default_factory=dict)
    origin: Origin = Origin()

    @property
    def opdef(self) -> builtins.type[OpDef]:
        return get_op(self.op)

    def location(self) -> Location:
        return Location(module_path=self.origin.module_path, node=self.name, op=self.op)


class IRVerificationError(Exception):
    """The compiler broke its own invariants (a bug in a frontend or pass)."""


@dataclass
class Graph:
    nodes: dict[str, Node] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    time_steps: int = 1
    meta: dict[str, object] = field(default_factory=dict)

    # -- construction ------------------------------------------------------
    def fresh_name(self, hint: str) -> str:
        base = "".join(c if c.isalnum() or c == "_" else "_" for c in hint) or "v"
        if base not in self.nodes:
            return base
        for i in itertools.count(1):
            cand = f"{base}_{i}"
            if cand not in self.nodes:
                return cand
        raise AssertionError

    def add(
        self,
        op: str,
        inputs: list[str],
        attrs: Attrs | None = None,
        params: dict[str, np.ndarray] | None = None,
        origin: Origin = Origin(),
        name: str | None = None,
    ) -> Node:
        """Create a node, infer its type with the op's rule, and append it."""
        opdef = get_op(op)
        attrs = attrs if attrs is not None else opdef.attrs_type()
        params = params or {}
        ins = [self.nodes[i].type for i in inputs]
        ty = opdef.infer(attrs, ins, params, self.context)
        node = Node(self.fresh_name(name or op), op, list(inputs), attrs, ty, params, origin)
        self.nodes[node.name] = node
        return node

    def rebuild(
        self,
        node: Node,
        *,
        inputs: list[str] | None = None,
        attrs: Attrs | None = None,
        params: dict[str, np.ndarray] | None = None,
    ) -> Node:
        """Replace `node` by a re-typed copy with new inputs/attrs/params, same name and place."""
        inputs = node.inputs if inputs is None else inputs
        attrs = node.attrs if attrs is None else attrs
        params = node.params if params is None else params
        ty = node.opdef.infer(attrs, [self.nodes[i].type for i in inputs], params, self.context)
        new = Node(node.name, node.op, list(inputs), attrs, ty, params, node.origin)
        self.nodes[node.name] = new
        return new

    @property
    def context(self) -> InferContext:
        return InferContext(time_steps=self.time_steps)

    # -- queries -------------------------------------------------------------
    def __iter__(self) -> Iterator[Node]:
        return iter(list(self.nodes.values()))

    def __len__(self) -> int:
        return len(self.nodes)

    def users(self, name: str) -> list[Node]:
        return [n for n in self.nodes.values() if name in n.inputs]

    def users_map(self) -> dict[str, list[Node]]:
        out: dict[str, list[Node]] = {n: [] for n in self.nodes}
        for n in self.nodes.values():
            for i in dict.fromkeys(n.inputs):
                out[i].append(n)
        return out

    def to_networkx(self) -> nx.DiGraph:
        g = nx.DiGraph()
        for n in self.nodes.values():
            g.add_node(n.name)
            for i in n.inputs:
                g.add_edge(i, n.name)
        return g

    def num_parameters(self) -> int:
        return sum(int(p.size) for n in self.nodes.values() for p in n.params.values())

    # -- rewriting -----------------------------------------------------------
    def replace_uses(self, old: str, new: str) -> None:
        for n in self.nodes.values():
            n.inputs = [new if i == old else i for i in n.inputs]
        self.outputs = [new if o == old else o for o in self.outputs]

    def bypass(self, name: str, replacement: str) -> None:
        """Make every user of `name` use `replacement` instead, and delete `name`."""
        self.replace_uses(name, replacement)
        del self.nodes[name]

    def remove_dead(self) -> int:
        """Remove nodes no output depends on; returns how many were removed."""
        g = self.to_networkx()
        live = set(self.outputs) | set(self.inputs)
        for o in self.outputs:
            live |= nx.ancestors(g, o)
        dead = [n for n in self.nodes if n not in live]
        for n in dead:
            del self.nodes[n]
        return len(dead)

    def toposort(self) -> None:
        """Restore topological order (stable: ties keep the previous order)."""
        index = {n: i for i, n in enumerate(self.nodes)}
        order = nx.lexicographical_topological_sort(self.to_networkx(), key=lambda n: index[n])
        self.nodes = {n: self.nodes[n] for n in order}

    def retype(self) -> None:
        """Re-run every type rule in order (after a pass changed attrs or params)."""
        for n in self.nodes.values():
            ins = [self.nodes[i].type for i in n.inputs]
            n.type = n.opdef.infer(n.attrs, ins, n.params, self.context)

    def copy(self) -> Graph:
        return Graph(
            nodes={
                k: Node(n.name, n.op, list(n.inputs), n.attrs, n.type, dict(n.params), n.origin)
                for k, n in self.nodes.items()
            },
            inputs=list(self.inputs),
            outputs=list(self.outputs),
            time_steps=self.time_steps,
            meta=dict(self.meta),
        )


def verify(graph: Graph) -> None:
    """Check the IR's invariants; raise IRVerificationError listing every broken node."""
    errors: list[str] = []
    seen: set[str] = set()
    for n in graph.nodes.values():
        where = f"%{n.name} ({n.op}, module '{n.origin.module_path}')"
        try:
            opdef = get_op(n.op)
        except KeyError as e:
            errors.append(f"{where}: {e}")
            continue
        if not isinstance(n.attrs, opdef.attrs_type):
            errors.append(f"{where}: attrs are {type(n.attrs).__name__}, not {opdef.attrs_type.__name__}")
        if not opdef.takes_inputs(len(n.inputs)):
            errors.append(f"{where}: {len(n.inputs)} inputs, op takes {opdef.arity_text()}")
        for i in n.inputs:
            if i not in seen:
                errors.append(f"{where}: input %{i} is undefined or not before it")
        missing = [p for p in opdef.params if p not in n.params]
        unknown = [p for p in n.params if p not in opdef.params + opdef.optional_params]
        if missing or unknown:
            errors.append(f"{where}: params missing {missing}, unknown {unknown}")
        if not errors or not errors[-1].startswith(where):
            try:
                ty = opdef.infer(n.attrs, [graph.nodes[i].type for i in n.inputs], n.params,
                                 graph.context)
                if ty != n.type:
                    errors.append(f"{where}: stored type {n.type.render()} != inferred {ty.render()}")
            except (ValueError, KeyError) as e:
                errors.append(f"{where}: type rule failed: {e}")
        seen.add(n.name)
    for o in graph.outputs:
        if o not in graph.nodes:
            errors.append(f"output %{o} is undefined")
    for i in graph.inputs:
        if i not in graph.nodes or graph.nodes[i].op != "input":
            errors.append(f"graph input %{i} is not an input node")
    if errors:
        raise IRVerificationError("IR verification failed:\n  " + "\n  ".join(errors))
