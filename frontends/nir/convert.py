"""A ``nir.NIRGraph`` -> snncc's IR graph.

Nested graphs are inlined (their nodes named ``outer.inner``; their ``Input`` and
``Output`` nodes pass values through), several edges into one node are summed, and
the flat graph is converted in topological order, one rule per NIR node type. The
neurons' time stepping is :mod:`frontends.nir.discretize`; shapes are the NIR file's
per-step shapes with ``[T, B]`` in front.

Errors (:class:`~snncc.diagnostics.SnnccError`; the CLI exits 2):

- ``SNN-NIR004`` an edge to or from a node the graph does not have, or a node without input;
- ``SNN-NIR005`` a cycle other than a recurrent layer (one neuron and the one weight that
  feeds its spikes back to it, imported as one ``recurrent`` op; see ``ACCEPTED_LOOPS``);
- ``SNN-NIR006`` a parameter snncc cannot take as given (per-neuron values that differ
  and cannot be folded, a fractional delay);
- ``SNN-NIR007`` a graph without exactly one ``Input``, or shapes that do not fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from snncc.diagnostics import Location, SnnccError
from snncc.frontends.nir.discretize import NEURON_TYPES, neuron_steps, uniform
from snncc.frontends.nir.fold import factor, fold_into, needs_fold
from snncc.ir.graph import Graph, Origin
from snncc.ir.ops.elementwise import ScalarAttrs
from snncc.ir.ops.io import InputAttrs
from snncc.ir.ops.neurons import NeuronAttrs
from snncc.ir.ops.pool import AvgPoolAttrs
from snncc.ir.ops.recurrent import RecurrentAttrs
from snncc.ir.ops.structure import FlattenAttrs
from snncc.ir.ops.synapses import LeakyIntegratorAttrs
from snncc.ir.ops.weights import ConvAttrs

LEAD = 2  # the IR's [T, B] in front of a NIR node's per-step shape


@dataclass
class FlatGraph:
    """A NIR graph with nested graphs inlined: nodes by dotted name, edges between them."""

    nodes: dict[str, Any] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    passthrough: set[str] = field(default_factory=set)  # a nested graph's Input/Output


def _err(code: str, message: str, node: str, hint: str | None = None) -> SnnccError:
    return SnnccError(code, message, location=Location(node=node), hint=hint)


def flatten_graph(g: Any, prefix: str = "") -> FlatGraph:
    """Inline nested graphs; an edge into (out of) a nested graph goes to its Input (from
    its Output) node, which must then be the only one."""
    import nir

    flat = FlatGraph()
    ends: dict[str, tuple[list[str], list[str]]] = {}  # nested graph -> (inputs, outputs)
    for k, n in g.nodes.items():
        q = prefix + k
        if isinstance(n, nir.NIRGraph):
            inner = flatten_graph(n, q + ".")
            flat.nodes.update(inner.nodes)
            flat.edges += inner.edges
            flat.passthrough |= inner.passthrough
            ins = [q + "." + a for a, m in n.nodes.items() if isinstance(m, nir.Input)]
            outs = [q + "." + a for a, m in n.nodes.items() if isinstance(m, nir.Output)]
            flat.passthrough |= set(ins) | set(outs)
            ends[q] = (ins, outs)
        else:
            flat.nodes[q] = n

    def end(name: str, side: int, edge: tuple[str, str]) -> str:
        q = prefix + name
        if q in flat.nodes:
            return q
        if q in ends:
            options = ends[q][side]
            if len(options) == 1:
                return options[0]
            what = "Input" if side == 0 else "Output"
            raise _err("SNN-NIR004", f"edge {edge[0]} -> {edge[1]} of graph "
                       f"'{prefix[:-1] or '<root>'}' meets nested graph '{q}', which has "
                       f"{len(options)} {what} nodes", q,
                       hint=f"name the {what} node in the edge ('{name}.<{what.lower()}>')")
        raise _err("SNN-NIR004", f"edge {edge[0]} -> {edge[1]} of graph "
                   f"'{prefix[:-1] or '<root>'}' names node '{name}', which the graph does not "
                   "have (a dangling edge)", q,
                   hint=f"its nodes: {', '.join(sorted(g.nodes)) or 'none'}")

    for a, b in g.edges:
        flat.edges.append((end(a, 1, (a, b)), end(b, 0, (a, b))))
    return flat


RECURRENT_NEURONS = ("LIF", "IF", "CubaLIF")  # the neurons a recurrent loop may close on
RECURRENT_WEIGHTS = ("Linear", "Affine")
ACCEPTED_LOOPS = ("a loop of exactly two nodes, a neuron (LIF, IF, CubaLIF) and a Linear or "
                  "Affine that reads only that neuron and feeds only it (snnTorch's RLeaky and "
                  "RSynaptic)")


def _loop(flat: FlatGraph, dg: nx.DiGraph, scc: set[str]) -> tuple[str, str]:
    """(neuron, weight) of the strongly connected component ``scc`` if it is a recurrent
    layer snncc imports (ACCEPTED_LOOPS); SNN-NIR005 naming the cycle otherwise."""
    kinds = {n: type(flat.nodes[n]).__name__ for n in scc}
    neurons = [n for n in scc if kinds[n] in RECURRENT_NEURONS]
    weights = [n for n in scc if kinds[n] in RECURRENT_WEIGHTS]
    if len(scc) == 2 and len(neurons) == 1 and len(weights) == 1:
        nrn, w = neurons[0], weights[0]
        if list(dg.predecessors(w)) == [nrn] and list(dg.successors(w)) == [nrn]:
            return nrn, w
    cycle = nx.find_cycle(dg.subgraph(scc))
    path = " -> ".join([f"{a} ({kinds[a]})" for a, _ in cycle] + [cycle[0][0]])
    raise _err("SNN-NIR005", f"the NIR graph has a recurrent loop snncc cannot import "
               f"(cycle {path}); snncc imports {ACCEPTED_LOOPS}", cycle[0][0],
               hint="reshape the recurrence into one neuron and one weight, or unroll it")


def recurrent_loops(flat: FlatGraph) -> dict[str, str]:
    """Neuron -> its recurrent weight node, for every loop in the graph (each checked by
    :func:`_loop`); the weight's edge back into the neuron is removed from ``flat``, so
    what is left is acyclic and the neuron is converted as one ``recurrent`` op."""
    dg = nx.DiGraph()
    dg.add_nodes_from(flat.nodes)
    dg.add_edges_from(flat.edges)
    loops = {}
    for scc in nx.strongly_connected_components(dg):
        if len(scc) > 1 or any(dg.has_edge(n, n) for n in scc):
            nrn, w = _loop(flat, dg, set(scc))
            loops[nrn] = w
    back = {(w, n) for n, w in loops.items()}
    flat.edges = [e for e in flat.edges if e not in back]
    return loops


def _order(flat: FlatGraph) -> list[str]:
    """The nodes in topological order (``flat`` must be acyclic: :func:`recurrent_loops`)."""
    dg = nx.DiGraph()
    dg.add_nodes_from(flat.nodes)
    dg.add_edges_from(flat.edges)
    index = {n: i for i, n in enumerate(flat.nodes)}
    return list(nx.lexicographical_topological_sort(dg, key=lambda n: index[n]))


def _hw(x: Any) -> tuple[int, int]:
    h, w = _pair(x, 2)[:2]
    return h, w


def _pair(x: Any, n: int = 2) -> tuple[int, ...]:
    a = np.asarray(x).reshape(-1)
    vals = [int(v) for v in a]
    return tuple(vals * n) if len(vals) == 1 else tuple(vals)


class Converter:
    """Builds the IR graph node by node; ``value[nir name]`` is the IR node holding it."""

    def __init__(self, flat: FlatGraph, *, dt: float, time_steps: int, batch: int,
                 input_shape: tuple[int, ...] | None, spikes: bool,
                 loops: dict[str, str] | None = None) -> None:
        self.flat = flat
        self.loops = loops or {}  # neuron -> the weight node of its recurrent loop
        self.dt = dt
        self.graph = Graph(time_steps=time_steps)
        self.batch = batch
        self.input_shape = input_shape
        self.spikes = spikes
        self.value: dict[str, str] = {}
        self.preds: dict[str, list[str]] = {n: [] for n in flat.nodes}
        for a, b in flat.edges:
            self.preds[b].append(a)

    # -- helpers --------------------------------------------------------------
    def origin(self, name: str) -> Origin:
        return Origin(module_path=name, source=f"nir.{type(self.flat.nodes[name]).__name__}")

    def add(self, name: str, op: str, x: str, attrs: Any = None,
            params: dict[str, np.ndarray] | None = None, suffix: str = "") -> str:
        try:
            node = self.graph.add(op, [x], attrs, params, self.origin(name),
                                  name=name + (f"_{suffix}" if suffix else ""))
        except ValueError as e:
            raise _err("SNN-NIR007", f"NIR node '{name}' ({type(self.flat.nodes[name]).__name__}) "
                       f"does not fit its input {self.graph.nodes[x].type.shape}: {e}", name,
                       hint="check the node's parameters against the shape that reaches it") \
                from None
        return node.name

    def summed_input(self, name: str) -> str:
        """The node's input: the sum of every edge into it (in the file's edge order)."""
        preds = self.preds[name]
        if not preds:
            raise _err("SNN-NIR004", f"NIR node '{name}' ({type(self.flat.nodes[name]).__name__}) "
                       "has no incoming edge", name, hint="connect it, or remove it")
        x = self.value[preds[0]]
        for p in preds[1:]:
            try:
                x = self.graph.add("add", [x, self.value[p]], origin=self.origin(name),
                                   name=f"{name}_sum").name
            except ValueError as e:
                raise _err("SNN-NIR007", f"the edges into NIR node '{name}' carry shapes that "
                           f"do not add: {e}", name) from None
        return x

    # -- the rules --------------------------------------------------------------
    def input(self, name: str, node: Any) -> None:
        shape = tuple(int(d) for d in np.asarray(node.input_type["input"]).reshape(-1))
        full = self.input_shape or (self.graph.time_steps, self.batch, *shape)
        if self.input_shape is not None and tuple(self.input_shape[LEAD:]) != shape:
            raise _err("SNN-NIR007", f"--input-shape {self.input_shape} does not end in NIR "
                       f"input '{name}''s shape {shape}", name,
                       hint=f"give [T, B, {', '.join(map(str, shape))}]")
        attrs = InputAttrs(index=len(self.graph.inputs), shape=tuple(full), spikes=self.spikes)
        n = self.graph.add("input", [], attrs, origin=self.origin(name), name=name)
        self.graph.inputs.append(n.name)
        self.value[name] = n.name

    def weight(self, name: str, node: Any, x: str) -> str:
        kind = type(node).__name__
        w = np.asarray(node.weight, dtype=np.float32)
        params = {"weight": w}
        bias = getattr(node, "bias", None)
        if bias is not None and kind != "Linear":
            params["bias"] = np.broadcast_to(np.asarray(bias, np.float32), (w.shape[0],)).copy()
        bad = [k for k, v in params.items() if not np.all(np.isfinite(v))]
        if bad:
            raise _err("SNN-NIR003", f"NIR node '{name}' ({kind}) has non-finite "
                       f"{' and '.join(bad)} values", name,
                       hint="the file may be damaged; export the model again")
        if kind in ("Affine", "Linear"):
            return self.add(name, "linear", x, None, params)
        n = 1 if kind == "Conv1d" else 2
        k = w.shape[2:]
        dilation = _pair(node.dilation, n)
        pad = node.padding
        if isinstance(pad, (str, bytes)):
            pad = pad.decode() if isinstance(pad, bytes) else pad
            if pad == "valid":
                padding = (0,) * n
            elif any(kk % 2 == 0 for kk in k):
                raise _err("SNN-NIR006", f"NIR node '{name}' pads 'same' with an even kernel "
                           f"{tuple(k)}, which pads unevenly", name)
            else:
                padding = tuple(d * (kk - 1) // 2 for d, kk in zip(dilation, k))
        else:
            padding = _pair(pad, n)
        attrs = ConvAttrs(stride=_pair(node.stride, n), padding=padding, dilation=dilation,
                          groups=int(np.asarray(node.groups).reshape(-1)[0]))
        return self.add(name, "conv1d" if n == 1 else "conv2d", x, attrs, params)

    def pool(self, name: str, node: Any, x: str) -> str:
        k = _hw(node.kernel_size)
        attrs = AvgPoolAttrs(kernel=k, stride=_hw(node.stride), padding=_hw(node.padding))
        y = self.add(name, "avgpool2d", x, attrs)
        if type(node).__name__ == "SumPool2d":  # a sum is the average times the window
            y = self.add(name, "scale", y, ScalarAttrs(value=float(k[0] * k[1])), suffix="sum")
        return y

    def flatten(self, name: str, node: Any, x: str) -> str:
        def shift(d: int) -> int:  # NIR counts the per-step shape; the IR has [T, B] in front
            return d + LEAD if d >= 0 else d

        start, end = int(node.start_dim), int(node.end_dim)
        return self.add(name, "flatten", x, FlattenAttrs(start=shift(start), end=shift(end)))

    def neuron(self, name: str, node: Any, x: str) -> str:
        if needs_fold(node):
            c, node = factor(node, name)
            x = self.fold(name, x, c)
        for step in neuron_steps(node, name, self.dt):
            x = self.add(name, step.op, x, step.attrs, step.params,
                         suffix="" if step.role == "membrane" else step.role)
        return x

    def recurrent(self, name: str, node: Any, x: str) -> str:
        """A neuron in a recurrent loop: its discretization's steps up to its first state
        applied to ``x``, then one ``recurrent`` op holding the loop's weight (scaled by
        those steps' gain, which NIR applies to the sum of all edges into the neuron)."""
        c: np.ndarray = np.ones(1)
        if needs_fold(node):
            c, node = factor(node, name)
            x = self.fold(name, x, c)
        steps = neuron_steps(node, name, self.dt)
        first = next(i for i, s in enumerate(steps) if s.role in ("synapse", "membrane"))
        gain = 1.0
        for step in steps[:first]:
            x = self.add(name, step.op, x, step.attrs, suffix=step.role)
            if step.op == "scale":
                assert isinstance(step.attrs, ScalarAttrs)
                gain *= step.attrs.value
        synapse_decay, rest = None, steps[first:]
        per_neuron: dict[str, np.ndarray] = {}  # time constants that differ
        if rest[0].role == "synapse":
            assert isinstance(rest[0].attrs, LeakyIntegratorAttrs)
            synapse_decay, rest = rest[0].attrs.decay, rest[1:]
            syn = steps[first].params or {}
            if "decay" in syn:
                per_neuron["syn_decay"] = syn["decay"]
        if len(rest) != 1 or not isinstance(rest[0].attrs, NeuronAttrs):
            raise _err("SNN-NIR006", f"NIR node '{name}' ({type(node).__name__}) closes a "
                       "recurrent loop, but its membrane has an input gain or offset after "
                       "its synaptic current, which snncc's recurrent op does not take", name,
                       hint="export the neuron with w_in = tau_syn / dt, r = tau_mem / dt "
                            "and v_leak = 0 (as snnTorch's RSynaptic)")
        attrs = RecurrentAttrs.of(rest[0].op, rest[0].attrs, synapse_decay)
        per_neuron.update(rest[0].params or {})
        return self.add(name, "recurrent", x, attrs,
                        {**self.loop_params(name, gain * c), **per_neuron})

    def loop_params(self, name: str, c: np.ndarray) -> dict[str, np.ndarray]:
        """The recurrent weight (and bias) of neuron ``name``'s loop, row i scaled by c_i."""
        w_name = self.loops[name]
        wn = self.flat.nodes[w_name]
        rows = np.broadcast_to(np.asarray(c, np.float64).reshape(-1, 1),
                               (np.asarray(wn.weight).shape[0], 1))
        params = {"rec_weight": np.asarray(wn.weight, np.float32)}
        if getattr(wn, "bias", None) is not None and type(wn).__name__ == "Affine":
            params["rec_bias"] = np.broadcast_to(np.asarray(wn.bias, np.float32),
                                                 (rows.shape[0],)).copy()
        if not np.all(rows == 1.0):
            params = {k: (v.astype(np.float64) * (rows if v.ndim == 2 else rows[:, 0]))
                      .astype(np.float32) for k, v in params.items()}
        if not all(np.all(np.isfinite(v)) for v in params.values()):
            raise _err("SNN-NIR003", f"NIR node '{w_name}' (the recurrent weight of "
                       f"'{name}') has non-finite values", w_name,
                       hint="the file may be damaged; export the model again")
        return params

    def fold(self, name: str, x: str, c: np.ndarray) -> str:
        """Scale the weight op that feeds NIR node ``name`` by ``c`` (frontends/nir/fold.py);
        SNN-NIR006 if the layer's input is not one weight op's output, used only here."""
        src = self.graph.nodes[x]
        preds = self.preds[name]
        shared = len(preds) != 1 or sum(p == preds[0] for p, _ in self.flat.edges) != 1
        if src.opdef.channel_axis is None or shared or "weight" not in src.params:
            raise _err("SNN-NIR006", f"NIR node '{name}' has per-neuron thresholds or gains "
                       "that differ, and its input is not the output of one Affine, Linear or "
                       "conv used by it alone, into which they could be folded", name,
                       hint="export the layer with one threshold and gain for every neuron")
        params = fold_into(src.params, c, src.opdef.channel_axis, src.type.shape[LEAD:], name)
        return self.graph.rebuild(src, params=params).name

    def convert(self, order: list[str]) -> Graph:
        import nir

        for name in order:
            node = self.flat.nodes[name]
            kind = type(node).__name__
            if isinstance(node, nir.Input) and name not in self.flat.passthrough:
                self.input(name, node)
                continue
            if name in self.loops.values():  # folded into its neuron's recurrent op
                continue
            x = self.summed_input(name)
            if name in self.flat.passthrough or kind == "Output":
                self.value[name] = x
                if kind == "Output" and name not in self.flat.passthrough:
                    self.graph.outputs.append(x)
            elif name in self.loops:
                self.value[name] = self.recurrent(name, node, x)
            elif kind in ("Affine", "Linear", "Conv1d", "Conv2d"):
                self.value[name] = self.weight(name, node, x)
            elif kind in ("SumPool2d", "AvgPool2d"):
                self.value[name] = self.pool(name, node, x)
            elif kind == "Flatten":
                self.value[name] = self.flatten(name, node, x)
            elif kind == "Scale":
                c = uniform(node, name, "scale")
                self.value[name] = self.add(name, "scale", x, ScalarAttrs(value=c))
            elif kind in NEURON_TYPES:
                self.value[name] = self.neuron(name, node, x)
            else:  # the reader admits only SUPPORTED_TYPES, each of which has a rule above
                raise AssertionError(f"no conversion rule for NIR type {kind}")
        if len(self.graph.inputs) != 1:
            raise _err("SNN-NIR007", f"the NIR graph has {len(self.graph.inputs)} Input nodes; "
                       "snncc compiles a graph with exactly one", "<root>")
        if not self.graph.outputs:
            raise _err("SNN-NIR007", "the NIR graph has no Output node", "<root>")
        self.graph.meta["nir"] = {"dt": self.dt, "rule": "forward Euler (frontends/nir/discretize.py)"}
        return self.graph


def to_graph(g: Any, *, dt: float, time_steps: int, batch: int = 1,
             input_shape: tuple[int, ...] | None = None, spikes: bool = False) -> Graph:
    """The IR graph of the NIR graph ``g``, its neurons stepped at ``dt`` for ``time_steps``."""
    flat = flatten_graph(g)
    loops = recurrent_loops(flat)
    conv = Converter(flat, dt=dt, time_steps=time_steps, batch=batch, input_shape=input_shape,
                     spikes=spikes, loops=loops)
    return conv.convert(_order(flat))
