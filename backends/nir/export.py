"""snncc's IR -> a ``nir.NIRGraph``: every op NIR can express, one rule per op.

NIR describes one time step of a network without its batch, so a node's NIR shape is
its IR shape without ``[T, B]``, and only ops that act on the trailing axes and keep
no state beyond a neuron's can be written. Neurons are written with the inverse of
the import rule (:mod:`frontends.nir.discretize`, forward Euler at ``dt``): an IR
``lif`` with ``tau`` steps becomes a NIR ``LIF`` with ``tau * dt`` seconds, ``r``
chosen so the input gain ``r dt / tau`` is the IR neuron's, ``v_leak = v_reset`` (the
IR leaks towards the reset value). What NIR's equations leave open is in each node's
metadata, which snncc's importer reads back: ``fire`` (``">="`` for SpikingJelly's
comparison, NIR's own is ``">"``), ``reset_mode`` (``"subtract"`` for a soft reset),
``decay_input`` (the IR's arithmetic form, so a round trip is bit for bit), and
``plif_w`` for a parametric LIF. The graph's metadata carries ``dt``, ``time_steps``
and ``producer``. Neuron parameters are per-neuron arrays of the layer's shape
(scalars break other tools' type inference, and h5py cannot compress them).

A ``recurrent`` op becomes its neuron (``LIF``/``IF``, or ``CubaLIF`` with a synaptic
current) and a ``Linear``/``Affine`` ``<name>_rec`` with the edges ``neuron -> <name>_rec ->
neuron``: snnTorch's form for ``RLeaky``/``RSynaptic``, which NIR reads as a one-step delay.

An ``add`` becomes two edges into its users (NIR sums the edges into a node); an
``identity`` becomes none. Errors (:class:`~snncc.diagnostics.SnnccError`):

- ``SNN-NIR010`` ops NIR cannot express (max-pool, products of two activations,
  attention's transposes, time masks, reductions over time), each node listed with
  its op and module; ``partial=True`` exports the largest expressible prefix instead
  and reports the nodes where it stopped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph, Node
from snncc.ir.op import Attrs
from snncc.ir.ops.elementwise import ScalarAttrs
from snncc.ir.ops.neurons import LIFAttrs, NeuronAttrs, PLIFAttrs
from snncc.ir.ops.pool import AvgPoolAttrs
from snncc.ir.ops.recurrent import RecurrentAttrs
from snncc.ir.ops.synapses import DelayAttrs, LeakyIntegratorAttrs
from snncc.ir.ops.weights import ConvAttrs
from snncc.ir.types import Layout

LEAD = 2  # [T, B] in front of every IR activation
DEFAULT_DT = 1e-4


@dataclass
class NirExport:
    """The exported graph; with ``partial``, the IR nodes where export stopped."""

    graph: Any  # nir.NIRGraph
    dt: float
    stopped_at: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)  # NIR Output node -> IR node


class Inexpressible(Exception):
    """An IR node NIR has no node for (collected, then reported as SNN-NIR010)."""


def _step_shape(n: Node) -> tuple[int, ...]:
    return tuple(n.type.shape[LEAD:])


def _full(value: float, shape: tuple[int, ...]) -> np.ndarray:
    return np.full(shape if shape else (1,), value, dtype=np.float64)


def _per_neuron(p: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A per-neuron param over the NIR node's shape (a step's, without the batch)."""
    try:
        return np.broadcast_to(p.astype(np.float64), shape or (1,)).copy()
    except ValueError:
        raise Inexpressible(f"its per-neuron parameter {p.shape} varies over the batch, not "
                            f"only over the neurons {shape}") from None


def _flatten_dims(src: tuple[int, ...], dst: tuple[int, ...]) -> tuple[int, int] | None:
    """(start, end) if ``dst`` is ``src`` with axes start..end merged into one."""
    for i in range(len(src)):
        for j in range(i, len(src)):
            if (*src[:i], math.prod(src[i:j + 1]), *src[j + 1:]) == dst:
                return i, j
    return None


class Exporter:
    def __init__(self, graph: Graph, dt: float) -> None:
        import nir

        self.nir = nir
        self.g = graph
        self.dt = dt
        self.nodes: dict[str, Any] = {}
        self.edges: list[tuple[str, str]] = []
        # IR node -> the NIR nodes whose sum it is (an add has two, an identity its input's)
        self.sources: dict[str, list[str]] = {}

    # -- the rules ------------------------------------------------------------
    def neuron(self, op: str, a: Attrs, shape: tuple[int, ...],
               decay: np.ndarray | None = None) -> Any:
        """The NIR neuron of an IR neuron ``op`` with attributes ``a`` and step shape
        (``decay``: a lif's per-neuron ``1 - 1 / tau``, which replaces ``a.tau``)."""
        assert isinstance(a, NeuronAttrs)
        meta: dict[str, Any] = {"fire": ">" if a.strict else ">="}
        vr = 0.0 if a.v_reset is None else a.v_reset
        meta["reset_mode"] = "subtract" if a.v_reset is None else "to_value"
        if op == "if":
            return self.nir.IF(r=_full(1.0, shape), v_threshold=_full(a.v_threshold, shape),
                               v_reset=_full(vr, shape), metadata=meta)
        if isinstance(a, LIFAttrs):
            k = 1.0 / a.tau
            decay_input = a.decay_input
        else:
            assert isinstance(a, PLIFAttrs)
            k = float(torch.sigmoid(torch.tensor(a.w, dtype=torch.float32)))
            decay_input = a.decay_input
            meta["plif_w"] = a.w
        meta["decay_input"] = int(decay_input)
        ks: float | np.ndarray = k
        if decay is not None:  # the importer's exact per-neuron decays
            ks = 1.0 - _per_neuron(decay, shape)
            meta["decay"] = 1.0 - ks
        elif isinstance(a, LIFAttrs):
            meta["tau_steps"] = a.tau  # dt / (tau * dt) may round: the importer's exact tau
        tau = self.dt / ks * np.ones(shape or (1,))
        r = np.ones_like(tau) if decay_input else tau / self.dt  # gain r dt / tau: k, or 1
        return self.nir.LIF(tau=tau, r=r, v_leak=_full(vr, shape),
                            v_threshold=_full(a.v_threshold, shape), v_reset=_full(vr, shape),
                            metadata=meta)

    def recurrent(self, n: Node) -> Any:
        """The neuron of a ``recurrent`` op (a ``CubaLIF`` where it has a synaptic current);
        :meth:`add_node` draws its loop through the recurrent weight."""
        a = n.attrs
        assert isinstance(a, RecurrentAttrs)
        shape = _step_shape(n)
        if len(shape) != 1:
            raise Inexpressible(f"NIR's Affine (the recurrent weight) takes vectors, not {shape}")
        cell = self.neuron(a.cell, a.neuron(), shape, n.params.get("decay"))
        if a.synapse_decay is None:
            return cell
        syn = n.params.get("syn_decay")
        syn_decay = a.synapse_decay if syn is None else _per_neuron(syn, shape)
        k_syn = 1.0 - syn_decay * np.ones(shape)
        if np.any(k_syn <= 0.0):
            raise Inexpressible("its synaptic current does not decay (NIR's CubaLIF needs "
                                "tau_syn < inf)")
        meta = {**cell.metadata, "synapse_decay": syn_decay}
        tau_mem = getattr(cell, "tau", _full(math.inf, shape))  # an IF: no leak, r = inf
        r = cell.r if isinstance(cell, self.nir.LIF) else _full(math.inf, shape)
        return self.nir.CubaLIF(tau_syn=self.dt / k_syn, tau_mem=tau_mem, r=r,
                                v_leak=getattr(cell, "v_leak", _full(0.0, shape)),
                                v_threshold=cell.v_threshold, v_reset=cell.v_reset,
                                w_in=1.0 / k_syn, metadata=meta)

    def loop(self, n: Node) -> None:
        """The recurrent weight of ``recurrent`` node ``n`` as a NIR Linear (Affine with a
        bias) ``<name>_rec``, and the edges ``n -> <name>_rec -> n`` (snnTorch's RLeaky)."""
        w = n.params["rec_weight"]
        rec = f"{n.name}_rec"
        b = n.params.get("rec_bias")
        self.nodes[rec] = self.nir.Linear(weight=w) if b is None else \
            self.nir.Affine(weight=w, bias=b)
        self.edges += [(n.name, rec), (rec, n.name)]

    def node(self, n: Node) -> Any:
        """The NIR node of IR node ``n`` (None: it becomes edges only); Inexpressible."""
        nir = self.nir
        ins = [self.g.nodes[i] for i in n.inputs]
        if n.op != "input" and any(i.type.layout != Layout.TIME for i in ins) or \
                n.type.layout != Layout.TIME:
            raise Inexpressible("it has no [T, B, ...] layout")
        if n.op == "input":
            return nir.Input(input_type={"input": np.array(_step_shape(n))})
        if n.op in ("add", "identity"):
            return None
        if n.opdef.is_neuron:
            return self.neuron(n.op, n.attrs, _step_shape(n), n.params.get("decay"))
        if n.op == "recurrent":
            return self.recurrent(n)
        if n.op == "linear":
            if len(_step_shape(ins[0])) != 1:
                raise Inexpressible(f"NIR's Affine takes vectors, not {_step_shape(ins[0])}")
            w = n.params["weight"]
            if "bias" in n.params:
                return nir.Affine(weight=w, bias=n.params["bias"])
            return nir.Linear(weight=w)
        if n.op in ("conv1d", "conv2d"):
            a = n.attrs
            assert isinstance(a, ConvAttrs)
            w = n.params["weight"]
            bias = n.params.get("bias", np.zeros(w.shape[0], np.float32))
            cls = nir.Conv1d if n.op == "conv1d" else nir.Conv2d
            spatial = _step_shape(ins[0])[1:]
            in_shape: Any = spatial[0] if n.op == "conv1d" else spatial
            return cls(input_shape=in_shape, weight=w, stride=a.stride, padding=a.padding,
                       dilation=a.dilation, groups=a.groups, bias=bias)
        if n.op == "avgpool2d":
            a = n.attrs
            assert isinstance(a, AvgPoolAttrs)
            if a.ceil_mode or (any(a.padding) and not a.count_include_pad):
                raise Inexpressible("NIR's AvgPool2d has no ceil mode or count_include_pad")
            return nir.AvgPool2d(kernel_size=np.array(a.kernel), stride=np.array(a.stride),
                                 padding=np.array(a.padding))
        if n.op == "scale":
            a = n.attrs
            assert isinstance(a, ScalarAttrs)
            return nir.Scale(scale=_full(a.value, _step_shape(n)).astype(np.float32))
        if n.op in ("flatten", "reshape"):
            src, dst = _step_shape(ins[0]), _step_shape(n)
            if tuple(ins[0].type.shape[:LEAD]) != tuple(n.type.shape[:LEAD]):
                raise Inexpressible("it reshapes the time or batch axis")
            if src == dst:
                return None
            dims = _flatten_dims(src, dst)
            if dims is None:
                raise Inexpressible(f"{src} -> {dst} is not a flatten (NIR has no reshape)")
            return nir.Flatten(input_type={"input": np.array(src)}, start_dim=dims[0],
                               end_dim=dims[1])
        if n.op == "leaky_integrator":
            a = n.attrs
            assert isinstance(a, LeakyIntegratorAttrs)
            shape = _step_shape(n)
            if "decay" in n.params:
                d = _per_neuron(n.params["decay"], shape)
                if np.any(d == 1.0):
                    raise Inexpressible("NIR's LI has no per-neuron tau = inf")
                return nir.LI(tau=self.dt / (1.0 - d), r=1.0 / (1.0 - d),
                              v_leak=_full(0.0, shape), metadata={"decay": d})
            if a.decay == 1.0:
                return nir.I(r=_full(1.0, shape))
            k = 1.0 - a.decay
            return nir.LI(tau=_full(self.dt / k, shape), r=_full(1.0 / k, shape),
                          v_leak=_full(0.0, shape), metadata={"decay": a.decay})
        if n.op == "delay":
            a = n.attrs
            assert isinstance(a, DelayAttrs)
            return nir.Delay(delay=_full(a.steps * self.dt, _step_shape(n)))
        raise Inexpressible(f"NIR has no node for {n.op}")

    # -- the walk ---------------------------------------------------------------
    def add_node(self, n: Node, made: Any) -> None:
        if made is None:  # an add or identity: its users read the sum of its inputs' sources
            srcs = [s for i in n.inputs for s in self.sources[i]]
            if len(set(srcs)) != len(srcs):
                raise Inexpressible("it adds a value to itself (NIR cannot draw the same edge "
                                    "twice)")
            self.sources[n.name] = srcs
            return
        self.nodes[n.name] = made
        if n.op == "recurrent":
            self.loop(n)
        for i in n.inputs:
            self.edges += [(s, n.name) for s in self.sources[i]]
        self.sources[n.name] = [n.name]

    def output(self, name: str, srcs: list[str], shape: tuple[int, ...], many: bool) -> str:
        out = f"output_{name}" if many else "output"
        self.nodes[out] = self.nir.Output(output_type={"output": np.array(shape)})
        self.edges += [(s, out) for s in srcs]
        return out

    def graph(self, meta: dict[str, Any]) -> Any:
        return self.nir.NIRGraph(nodes=self.nodes, edges=self.edges, metadata=meta,
                                 type_check=False)


def _where(n: Node) -> str:
    return f"%{n.name} ({n.op}, module '{n.origin.module_path or '<root>'}')"


def to_nir(graph: Graph, *, dt: float | None = None, partial: bool = False) -> NirExport:
    """The NIR graph of ``graph``; SNN-NIR010 listing every inexpressible node, unless
    ``partial``: then the largest expressible prefix, cut where the first op NIR
    cannot express would read it."""
    meta_dt = graph.meta.get("nir", {})
    step = dt if dt is not None else (
        float(meta_dt["dt"]) if isinstance(meta_dt, dict) and "dt" in meta_dt else DEFAULT_DT)
    ex = Exporter(graph, step)
    own: dict[str, str] = {}  # node -> why NIR cannot express it (whatever its inputs)
    bad: set[str] = set()  # those and everything that reads them
    for n in graph:
        try:
            made = ex.node(n)
            if not any(i in bad for i in n.inputs):
                ex.add_node(n, made)
        except Inexpressible as e:
            own[n.name] = str(e)
        if n.name in own or any(i in bad for i in n.inputs):
            bad.add(n.name)
    first = [n for n in graph if n.name in bad and not any(i in bad for i in n.inputs)]
    if own and not partial:
        offenders = [graph.nodes[name] for name in own]
        listed = "; ".join(f"{_where(n)}: {own[n.name]}" for n in offenders)
        raise SnnccError("SNN-NIR010", f"{len(offenders)} node(s) use ops NIR cannot express: "
                         f"{listed}", location=offenders[0].location(),
                         hint="export the expressible prefix with --partial (partial=True), "
                              "or compile for another target")
    outputs = [o for o in graph.outputs if o not in bad]
    if partial and bad:  # the prefix's outputs: every value the cut ops would have read
        outputs = list(dict.fromkeys(
            [*outputs, *(i for n in first for i in n.inputs if i not in bad)]))
    if not outputs:
        raise SnnccError("SNN-NIR010", "nothing of the graph can be exported to NIR: its "
                         f"first op already cannot ({_where(first[0])}: {own[first[0].name]})",
                         location=first[0].location())
    names = {ex.output(o, ex.sources[o], _step_shape(graph.nodes[o]), many=len(outputs) > 1): o
             for o in outputs}
    meta = {"dt": step, "time_steps": graph.time_steps, "producer": "snncc"}
    return NirExport(ex.graph(meta), step, [n.name for n in first], names)

