"""quantize: map a canonical float graph to a target's fixed-point neurons and synapses.

Why this scheme (the arithmetic it rests on is Lava 0.10.0's ``fixed_pt`` LIF
and Dense, FACTS.md section 3):

**Neurons.** A SpikingJelly LIF (tau, hard reset to 0, fire on ``H >= theta``)
keeps no synaptic current: each step's input X enters the membrane once. Lava's
LIF with ``du = 4095`` keeps none either (``u = a << 6``, only this step's
input), and ``dv = 4096 / tau`` is its leak (exact for tau = 2: 2048). Then
Lava's membrane ``v`` equals ``kappa * H`` for a scale ``kappa`` if the synaptic
input is ``a = s * X`` with ``kappa = 64 * tau * s`` (``64 * s`` without
``decay_input``), the bias is ``b_eff = 64 * s * b`` and the threshold is
``vth = kappa * theta / 64``. ``s`` -- integer synaptic units per unit of float
current -- is the one free number per *current domain* (below), chosen as large
as the target's formats allow (threshold bits, bias mantissa and exponent, the
24-bit current) so that rounding a, the bias and the threshold costs a tiny
fraction of the threshold, and ``kappa * theta / 64`` is made an integer so the
thresholds differ only in Lava's strict ``>`` against SpikingJelly's ``>=``
(one least significant bit of v).

**Weights.** Each weight op gets its own exponent ``e`` and 8-bit mantissas
``m = round(W * s / 2**e)``, with e the smallest that fits (so the mantissa uses
all its bits). Mixed-sign mantissas are made even, as lava-dl's netx does, so
Lava's Dense, which drops the least significant bit of mixed-sign weights,
changes nothing. Since ``s`` does not limit the mantissa's precision, the
weight rounding (7 bits plus sign for mixed signs) is the dominant error; the
report gives it per layer.

**Current domains.** Spikingformer's residual stream is a sum of several conv
outputs; an integer add is only meaningful if all its terms share one ``s``.
Union-find over ``add``/``sub`` (and the ops that only move or sum currents)
yields the domains; every weight op of a domain keeps its own exponent.

**Counts.** A spike x spike product (attention's ``q @ k^T``) is an exact
integer count; count x spike stays exact. Where counts enter a domain (the
attention LIF reads them) ``s`` is a power of two, so the entry is a shift.
With ``s = 2**k``, ``k >= T - 1`` and ``dv = 2048`` every membrane value stays a
multiple of 64 for T steps, so Lava's truncating leak is exact and
``vth = kappa * theta / 64 - 1`` makes ``v > vth << 6`` the same test as
``v >= kappa * theta``: the attention LIF is then *bit-exact* to SpikingJelly.

**Host work.** The encoding conv (fed the analog image) runs on the host as
float MACs; its output current is rounded to the domain's integer units. The
readout (sums over tokens and time, then the head) runs on the host in float
from the integer sums, dequantized by ``s`` plus the exact float bias.

Biases travel as a *pending bias* per current value (the exact float sum of the
conv/linear biases that reached it): they become the reading LIF's
``bias_mant << bias_exp``, as on Loihi, where a synapse has no bias.

Deterministic: given the per-domain scales, everything else follows, so an
artifact stores the scales and rebuilds (and checks) the integer tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np
import torch

from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph, Node
from snncc.ir.op import Multiplies
from snncc.ir.ops.elementwise import ScalarAttrs
from snncc.ir.ops.neurons import LIFAttrs, NeuronAttrs, PLIFAttrs
from snncc.ir.ops.reduce import ReduceAttrs
from snncc.ir.ops.structure import PermuteAttrs, TransposeAttrs
from snncc.ir.types import Layout
from snncc.passes.manager import PassResult, register_pass
from snncc.targets import NumberFormats, Target, load_target

WEIGHT_OPS = ("conv1d", "conv2d", "linear")
NEURON_OPS = ("lif", "if", "plif")
STRUCTURAL_OPS = ("identity", "reshape", "flatten", "transpose", "permute", "unsqueeze")
# Headroom on the calibrated current range: an unseen input may drive a layer harder.
CALIBRATION_MARGIN = 4.0


class Cat(str, Enum):
    """Where and how a value lives in the quantized graph."""

    SPIKE = "spike"  # binary, on chip
    COUNT = "count"  # exact integer (spike counts, AND-counts), on chip
    CURRENT = "current"  # integer synaptic input a = s * (X - pending bias), on chip
    ANALOG = "analog"  # the model's analog input, on the host
    HOST = "host"  # float on the host (readout)


# --------------------------------------------------------------- structure ----


def lead_axes(node: Node) -> int:
    """Leading axes that are not part of one sample: [T, B] for time-first values, [B] else."""
    return 2 if node.type.layout == Layout.TIME else 1


def item_shape(node: Node) -> tuple[int, ...]:
    return node.type.shape[lead_axes(node):]


def _norm_dims(dims: tuple[int, ...], ndim: int) -> list[int]:
    return [d + ndim if d < 0 else d for d in dims]


def item_structural(node: Node, src: Node, x: np.ndarray) -> np.ndarray:
    """Apply a structural op to ``x`` whose leading axes (T, B or B) may have any size.

    The IR bakes the traced batch size into reshapes; acsim runs any batch, so
    ops are applied per sample. An op that moves the time or batch axis is not
    something a chip does per step: it is refused here.
    """
    lead_in, lead_out = lead_axes(src), lead_axes(node)
    op = node.op
    if op == "identity":
        return x
    if op in ("reshape", "flatten", "unsqueeze"):
        if lead_in != lead_out or src.type.shape[:lead_in] != node.type.shape[:lead_out]:
            raise _unsupported(node, "it moves the time or batch axis")
        return x.reshape(*x.shape[:lead_in], *item_shape(node))
    if op in ("transpose", "permute"):
        ndim = len(src.type.shape)
        if op == "transpose":
            assert isinstance(node.attrs, TransposeAttrs)
            a, b = _norm_dims((node.attrs.dim0, node.attrs.dim1), ndim)
            perm = list(range(ndim))
            perm[a], perm[b] = perm[b], perm[a]
        else:
            assert isinstance(node.attrs, PermuteAttrs)
            perm = _norm_dims(node.attrs.dims, ndim)
        if perm[:lead_in] != list(range(lead_in)) or lead_in != lead_out:
            raise _unsupported(node, "it moves the time or batch axis")
        return np.transpose(x, perm)
    raise _unsupported(node, "acsim has no per-sample form of this op")


def sum_axes(node: Node, src: Node) -> tuple[list[int], bool]:
    """Axes a ``sum`` reduces (of the input), and whether it reduces time."""
    assert isinstance(node.attrs, ReduceAttrs)
    dims = sorted(set(_norm_dims(node.attrs.dims, len(src.type.shape))))
    lead = lead_axes(src)
    batch_axis = lead - 1
    if batch_axis in dims:
        raise _unsupported(node, "it sums over the batch axis")
    return dims, lead == 2 and 0 in dims


def _unsupported(node: Node, why: str) -> SnnccError:
    return SnnccError(
        "SNN-Q001", f"acsim cannot place {node.op} %{node.name}: {why}",
        location=node.location(),
        hint="only per-sample ops can run on a chip; compile with --target ir to inspect the graph",
    )


# ------------------------------------------------------------ categories ----


def categorize(graph: Graph) -> dict[str, Cat]:
    """Decide, in topological order, what kind of value every node holds and where."""
    cat: dict[str, Cat] = {}
    for n in graph:
        ins = [cat[i] for i in n.inputs]
        c = _category(n, ins)
        if n.opdef.is_neuron and ins[0] not in (Cat.CURRENT, Cat.COUNT, Cat.ANALOG, Cat.SPIKE):
            raise SnnccError(
                "SNN-Q003",
                f"neuron %{n.name} reads a host value ({ins[0].value}): a chip neuron cannot "
                "read the result of a host computation",
                location=n.location(),
                hint="the readout (a weight op fed non-spikes) must come after the last neuron",
            )
        cat[n.name] = c
    return cat


def _category(n: Node, ins: list[Cat]) -> Cat:
    if n.op == "input":
        return Cat.SPIKE if n.type.kind.value == "SPIKE" else Cat.ANALOG
    if Cat.HOST in ins:
        return Cat.HOST
    if n.opdef.is_neuron:
        return Cat.SPIKE
    if n.op in WEIGHT_OPS:
        return Cat.CURRENT if ins[0] in (Cat.SPIKE, Cat.COUNT, Cat.ANALOG) else Cat.HOST
    if n.op in STRUCTURAL_OPS:
        return ins[0]
    if n.op == "time_mask":
        return ins[0] if ins[0] in (Cat.SPIKE, Cat.COUNT) else Cat.HOST
    if Cat.ANALOG in ins:
        return Cat.ANALOG if n.op in ("maxpool2d", "repeat") else Cat.HOST
    if n.op in ("add", "sub"):
        if Cat.CURRENT in ins:
            return Cat.CURRENT
        return Cat.COUNT
    if n.op == "sum":
        return Cat.COUNT if ins[0] == Cat.SPIKE else ins[0]
    if n.op == "maxpool2d":
        return ins[0] if ins[0] in (Cat.SPIKE, Cat.COUNT) else Cat.HOST
    if n.op == "matmul":
        if Cat.SPIKE in ins and all(c in (Cat.SPIKE, Cat.COUNT) for c in ins):
            return Cat.COUNT
        return Cat.HOST
    if n.op == "mul":
        if ins == [Cat.SPIKE, Cat.SPIKE]:
            return Cat.SPIKE
        if Cat.SPIKE in ins and Cat.COUNT in ins:
            return Cat.COUNT
        return Cat.HOST
    if n.op == "rsub" and ins[0] == Cat.SPIKE:
        assert isinstance(n.attrs, ScalarAttrs)
        return Cat.SPIKE if n.attrs.value == 1.0 else Cat.HOST
    return Cat.HOST


# ---------------------------------------------------------- pending bias ----


def _bias_item(n: Node) -> np.ndarray:
    """A weight op's bias as an item-shaped array (zeros when it has none)."""
    shape = item_shape(n)
    b = n.params.get("bias")
    out = np.zeros(shape, dtype=np.float64)
    if b is None:
        return out
    axis = n.opdef.channel_axis
    assert axis is not None
    view = [1] * len(shape)
    view[axis] = -1
    return out + np.asarray(b, dtype=np.float64).reshape(view)


def pending_biases(graph: Graph, cat: dict[str, Cat]) -> dict[str, np.ndarray]:
    """Per CURRENT node, the exact float bias that reached it (item shape).

    For a value computed by a ``sum`` over time, the bias was present at every
    one of the T steps, so it counts T times.
    """
    pb: dict[str, np.ndarray] = {}
    T = graph.time_steps
    for n in graph:
        if cat[n.name] != Cat.CURRENT:
            continue
        srcs = [graph.nodes[i] for i in n.inputs]
        if n.op in WEIGHT_OPS:
            pb[n.name] = _bias_item(n)
        elif n.op in ("add", "sub"):
            parts = [pb.get(s.name, np.zeros(item_shape(s))) for s in srcs]
            shape = item_shape(n)
            a = np.broadcast_to(_right_align(parts[0], shape), shape)
            b = np.broadcast_to(_right_align(parts[1], shape), shape)
            pb[n.name] = np.array(a + b if n.op == "add" else a - b, dtype=np.float64)
        elif n.op in STRUCTURAL_OPS:
            x = pb[srcs[0].name][(np.newaxis,) * lead_axes(srcs[0])]
            pb[n.name] = item_structural(n, srcs[0], x)[(0,) * lead_axes(n)].copy()
        elif n.op == "sum":
            dims, over_time = sum_axes(n, srcs[0])
            lead = lead_axes(srcs[0])
            x = pb[srcs[0].name][(np.newaxis,) * lead]
            assert isinstance(n.attrs, ReduceAttrs)
            item_dims = tuple(d for d in dims if d >= lead)
            y = np.sum(np.broadcast_to(x, (1,) * lead + item_shape(srcs[0])), axis=item_dims,
                       keepdims=n.attrs.keepdim)
            if over_time:
                y = np.sum(y, axis=0, keepdims=n.attrs.keepdim) * T
            pb[n.name] = np.array(y[(0,) * lead_axes(n)], dtype=np.float64)
        else:
            raise AssertionError(f"no bias rule for current op {n.op}")
    return pb


def _right_align(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return x.reshape((1,) * (len(shape) - x.ndim) + x.shape)


# --------------------------------------------------------------- domains ----


@dataclass
class Domain:
    """Currents that are added together and so share one integer scale ``s``."""

    id: int
    nodes: list[str] = field(default_factory=list)  # CURRENT nodes
    sources: list[str] = field(default_factory=list)  # weight ops on chip (fed spikes or counts)
    host_entries: list[str] = field(default_factory=list)  # encoding ops / analog values (host MACs)
    count_entries: list[str] = field(default_factory=list)  # count/spike values added in by a shift
    readers: list[str] = field(default_factory=list)  # neurons reading a value of the domain
    exits: list[str] = field(default_factory=list)  # domain values read by the host (readout)
    scale: float = 1.0  # s: integer units per unit of float current
    shift: int | None = None  # s = 2**shift when counts enter
    exact: bool = False  # the readers' integer dynamics equal SpikingJelly's exactly
    limit: str = ""  # the constraint that set the scale

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "scale": self.scale, "shift": self.shift, "exact": self.exact,
                "limit": self.limit, "nodes": self.nodes, "sources": self.sources,
                "host_entries": self.host_entries, "count_entries": self.count_entries,
                "readers": self.readers, "exits": self.exits}


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def add(self, x: str) -> None:
        self.parent.setdefault(x, x)

    def find(self, x: str) -> str:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def find_domains(graph: Graph, cat: dict[str, Cat]) -> tuple[list[Domain], dict[str, int]]:
    """Current domains, and the domain of every CURRENT node and every neuron's input.

    A neuron that reads a count or the analog input directly gets a domain of
    its own, keyed by the neuron (its input is converted at the neuron).
    """
    uf = _UnionFind()
    users = graph.users_map()
    for n in graph:
        if cat[n.name] == Cat.CURRENT:
            uf.add(n.name)
            for i in n.inputs:
                if cat[i] == Cat.CURRENT:
                    uf.union(i, n.name)
        elif n.opdef.is_neuron and cat[n.inputs[0]] != Cat.CURRENT:
            uf.add("@" + n.name)
    roots: dict[str, Domain] = {}
    of: dict[str, int] = {}

    def dom(key: str) -> Domain:
        r = uf.find(key)
        if r not in roots:
            roots[r] = Domain(id=len(roots))
        return roots[r]

    for n in graph:
        c = cat[n.name]
        if c == Cat.CURRENT:
            d = dom(n.name)
            d.nodes.append(n.name)
            of[n.name] = d.id
            if n.op in WEIGHT_OPS:
                (d.host_entries if cat[n.inputs[0]] == Cat.ANALOG else d.sources).append(n.name)
            elif n.op in ("add", "sub"):
                d.count_entries += [i for i in n.inputs if cat[i] in (Cat.COUNT, Cat.SPIKE)]
            if any(cat[u.name] == Cat.HOST for u in users[n.name]):
                d.exits.append(n.name)
        elif n.opdef.is_neuron:
            src = n.inputs[0]
            if cat[src] == Cat.CURRENT:
                d = dom(src)
            else:
                d = dom("@" + n.name)
                (d.host_entries if cat[src] == Cat.ANALOG else d.count_entries).append(src)
            d.readers.append(n.name)
            of["@" + n.name] = d.id
    domains = sorted(roots.values(), key=lambda d: d.id)
    return domains, of


# -------------------------------------------------------------- results ----


@dataclass
class WeightQuant:
    """A weight op's integer synapses: ``W ~= mantissa * 2**weight_exp / s``."""

    node: str
    domain: int
    weight_exp: int
    mantissa: np.ndarray  # int32, the weight's own (PyTorch) layout
    graded: bool  # fed counts (graded spikes) rather than binary spikes
    max_abs_weight: float
    max_abs_error: float  # max |W - mantissa * 2**e / s|
    mantissa_max: int  # largest |mantissa| used


@dataclass
class NeuronQuant:
    """A neuron as Lava's LIF: ``du, dv, vth, bias_mant << bias_exp``, reading ``a``."""

    node: str
    domain: int
    du: int
    dv: int
    vth: int
    bias_mant: np.ndarray  # int32, item shape
    bias_exp: int
    kappa: float  # v ~= kappa * H
    input_shift: int | None  # a = count << shift, when the neuron reads counts
    threshold_exact: bool
    decay_exact: bool
    max_abs_bias_error: float  # in units of the float bias
    notes: list[str] = field(default_factory=list)


@dataclass
class LayerReport:
    node: str
    module_path: str
    op: str
    domain: int
    scale: float
    weight_exp: int | None = None
    max_abs_weight_error: float | None = None
    rel_weight_error: float | None = None
    vth: int | None = None
    threshold_exact: bool | None = None
    spike_agreement: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class QuantizedGraph:
    """The canonical float graph plus everything a fixed-point chip needs to run it."""

    graph: Graph
    target: Target
    categories: dict[str, Cat]
    domains: list[Domain]
    domain_of: dict[str, int]  # CURRENT node or "@neuron" -> domain id
    weights: dict[str, WeightQuant]
    neurons: dict[str, NeuronQuant]
    pending_bias: dict[str, np.ndarray]
    layers: list[LayerReport] = field(default_factory=list)

    @property
    def scales(self) -> dict[int, float]:
        return {d.id: d.scale for d in self.domains}

    def domain_scale(self, node: str) -> float:
        return self.domains[self.domain_of[node]].scale

    def neuron_domain(self, neuron: str) -> Domain:
        return self.domains[self.domain_of["@" + neuron]] if "@" + neuron in self.domain_of \
            else self.domains[self.domain_of[self.graph.nodes[neuron].inputs[0]]]

    def report_json(self) -> dict[str, Any]:
        return {
            "target": self.target.name,
            "domains": [d.to_json() for d in self.domains],
            "layers": [r.to_json() for r in self.layers],
        }


# ---------------------------------------------------------- scale choice ----


def _formats(target: Target) -> NumberFormats:
    if target.formats is None:
        raise SnnccError(
            "SNN-Q004", f"target '{target.name}' has no number formats to quantize for",
            hint="use a hardware target: loihi2, loihi1, loihi-calibrated, or a YAML with 'formats'",
        )
    return target.formats


def _neuron_factor(n: Node) -> tuple[float, int, bool]:
    """(kappa / s, dv, decay exact) for a neuron; see the module docstring."""
    a = n.attrs
    assert isinstance(a, NeuronAttrs)
    if a.v_reset is None or a.v_reset != 0.0:
        raise SnnccError(
            "SNN-Q002",
            f"neuron %{n.name} has {'a soft reset' if a.v_reset is None else f'v_reset={a.v_reset}'}; "
            "Lava's LIF resets v to 0",
            location=n.location(), hint="train with v_reset=0.0 (hard reset to zero)",
        )
    if n.op == "if":
        return 64.0, 0, True
    if isinstance(a, LIFAttrs):
        leak = 1.0 / a.tau
        decay_input = a.decay_input
    else:
        assert isinstance(a, PLIFAttrs)
        leak = float(torch.sigmoid(torch.tensor(a.w, dtype=torch.float64)))
        decay_input = a.decay_input
    dv_exact = 4096.0 * leak
    dv = int(round(dv_exact))
    return (64.0 / leak if decay_input else 64.0), dv, dv == dv_exact


def _mantissa_limits(fmt: NumberFormats, w: np.ndarray) -> tuple[int, int, bool]:
    """(lowest, highest, even) mantissa for a weight matrix of this sign pattern."""
    top = (1 << fmt.weight_bits) - 1
    if np.all(w >= 0):
        return 0, top, False
    if np.all(w <= 0):
        return -top, 0, False
    return -(top + 1), top - 1, True  # mixed: even values, as lava-dl netx


def _abs_row_sum_max(n: Node) -> float:
    w = np.abs(np.asarray(n.params["weight"], dtype=np.float64))
    return float(w.reshape(w.shape[0], -1).sum(axis=1).max()) if w.size else 0.0


def _current_bounds(graph: Graph, cat: dict[str, Cat]) -> dict[str, float]:
    """Worst-case |a / s| (float current without its bias) of every CURRENT node and
    count value, by interval arithmetic: used when there is no calibration."""
    bound: dict[str, float] = {}
    for n in graph:
        c = cat[n.name]
        if c == Cat.COUNT or c == Cat.SPIKE:
            bound[n.name] = max(abs(n.type.lo), abs(n.type.hi)) if math.isfinite(n.type.hi) \
                else float("inf")
        elif c == Cat.ANALOG:
            bound[n.name] = float("inf")
        elif c == Cat.CURRENT:
            ins = [bound.get(i, float("inf")) for i in n.inputs]
            if n.op in WEIGHT_OPS:
                bound[n.name] = _abs_row_sum_max(n) * ins[0]
            elif n.op in ("add", "sub"):
                bound[n.name] = ins[0] + ins[1]
            elif n.op == "sum":
                src = graph.nodes[n.inputs[0]]
                dims, _ = sum_axes(n, src)
                bound[n.name] = ins[0] * math.prod(src.type.shape[d] for d in dims)
            else:
                bound[n.name] = ins[0]
    return bound


def _calibrated_bounds(graph: Graph, cat: dict[str, Cat], pb: dict[str, np.ndarray],
                       calibration: torch.Tensor) -> dict[str, float]:
    """Observed max |X - pending bias| per CURRENT node on calibration inputs (float interpreter)."""
    from snncc.ir.interpreter import run_in_batches

    _, values = run_in_batches(graph, calibration, record=True)
    out: dict[str, float] = {}
    for name, c in cat.items():
        if c != Cat.CURRENT or name not in values:
            continue
        v = values[name].double().numpy()
        lead = lead_axes(graph.nodes[name])
        out[name] = float(np.abs(v - pb[name][(np.newaxis,) * lead]).max()) if v.size else 0.0
    return out


def choose_scale(graph: Graph, d: Domain, fmt: NumberFormats, pb: dict[str, np.ndarray],
                 bounds: dict[str, float], margin: float) -> tuple[float, int | None, bool, str]:
    """The largest scale s the formats allow for domain ``d``; see the module docstring."""
    limits: list[tuple[float, str]] = []
    vth_max = float((1 << fmt.threshold_bits) - 1)
    mant_max = float((1 << (fmt.bias_mant_bits - 1)) - 1)
    bias_max = mant_max * float(1 << ((1 << fmt.bias_exp_bits) - 1)) if fmt.bias_exp_bits else mant_max
    u_max = float(1 << (fmt.u_bits - 1 - fmt.activation_shift))
    for r in d.readers:
        n = graph.nodes[r]
        f, _, _ = _neuron_factor(n)
        assert isinstance(n.attrs, NeuronAttrs)
        theta = n.attrs.v_threshold
        if theta > 0:
            limits.append((vth_max * 64.0 / (f * theta), f"threshold of %{r} ({fmt.threshold_bits} bits)"))
        src = n.inputs[0]
        b = float(np.abs(pb[src]).max()) if src in pb and pb[src].size else 0.0
        if b > 0:
            limits.append((bias_max / (64.0 * b), f"bias of %{r} ({fmt.bias_mant_bits}-bit mantissa)"))
        x = bounds.get(src, float("inf"))
        if x > 0 and math.isfinite(x):
            limits.append((u_max / (x * margin), f"{fmt.u_bits}-bit current into %{r}"))
    for w in d.sources:
        wmax = float(np.abs(graph.nodes[w].params["weight"]).max())
        if wmax > 0:
            top = (1 << fmt.weight_bits) - 2
            limits.append((top * 2.0 ** fmt.weight_exp_max / wmax, f"weight exponent of %{w}"))
    s, why = min(limits, default=(float(1 << 10), "no constraint"))
    if not math.isfinite(s) or s <= 0:
        s, why = 1.0, "degenerate"
    T = graph.time_steps
    if d.count_entries:
        k = int(math.floor(math.log2(s)))
        pure = not d.sources and not d.host_entries and not any(
            np.any(pb.get(x, np.zeros(1))) for x in d.nodes)
        if pure and k >= _exact_shift(graph, d, T):
            k = _exact_shift(graph, d, T)
            why = "exact integer dynamics"
        return float(2.0 ** k), k, pure and k >= _exact_shift(graph, d, T), why
    if d.readers:  # make kappa * theta / 64 an integer for the first reader
        n = graph.nodes[d.readers[0]]
        f, _, _ = _neuron_factor(n)
        assert isinstance(n.attrs, NeuronAttrs)
        theta = n.attrs.v_threshold
        if theta > 0:
            V = math.floor(f * s * theta / 64.0)
            if V >= 1:
                s = 64.0 * V / (f * theta)
    return s, None, False, why


def _exact_shift(graph: Graph, d: Domain, T: int) -> int:
    """The smallest k with s = 2**k that keeps every reader's v on the 64-grid for T steps."""
    k = 0
    for r in d.readers:
        _, dv, exact = _neuron_factor(graph.nodes[r])
        mult = 4096 - dv
        if mult == 0 or mult == 4096:
            continue
        halvings = 12 - ((mult & -mult).bit_length() - 1)  # 4096 - dv = odd * 2**(12 - halvings)
        k = max(k, halvings * (T - 1))
    return k


# ------------------------------------------------------------- quantize ----


def quantize_weights(n: Node, d: Domain, fmt: NumberFormats, graded: bool) -> WeightQuant:
    w = np.asarray(n.params["weight"], dtype=np.float64)
    lo, hi, even = _mantissa_limits(fmt, w)
    top = max(-lo if lo < 0 else 0, hi)
    wmax = float(np.abs(w).max()) if w.size else 0.0
    s = d.scale
    if wmax == 0:
        e = 0
    else:
        e = math.ceil(math.log2(wmax * s / (top if not even else hi)))
        e = min(max(e, fmt.weight_exp_min), fmt.weight_exp_max)
    scaled = w * s / 2.0 ** e
    m = 2.0 * np.round(scaled / 2.0) if even else np.round(scaled)
    m = np.clip(m, lo, hi).astype(np.int32)
    err = float(np.abs(w - m.astype(np.float64) * 2.0 ** e / s).max()) if w.size else 0.0
    return WeightQuant(n.name, d.id, e, m, graded, wmax, err,
                       int(np.abs(m).max()) if m.size else 0)


def quantize_neuron(graph: Graph, n: Node, d: Domain, fmt: NumberFormats,
                    pb: dict[str, np.ndarray]) -> NeuronQuant:
    f, dv, decay_exact = _neuron_factor(n)
    assert isinstance(n.attrs, NeuronAttrs)
    s = d.scale
    kappa = f * s
    K = kappa * n.attrs.v_threshold
    notes: list[str] = []
    if d.exact:
        vth = math.ceil(K / 64.0) - 1
        exact = True
    else:
        vth = int(round(K / 64.0))
        exact = False
        if vth * 64.0 == K:
            notes.append("Lava fires on v > vth, SpikingJelly on H >= theta: "
                         "they differ only at equality (1 LSB)")
        else:
            notes.append(f"threshold rounded: {K / 64.0:.3f} -> {vth}")
    vth_max = (1 << fmt.threshold_bits) - 1
    if not 0 <= vth <= vth_max:
        raise SnnccError("SNN-Q005", f"threshold {vth} of %{n.name} does not fit "
                         f"{fmt.threshold_bits} bits", location=n.location())
    src = n.inputs[0]
    shape = item_shape(n)
    b = pb.get(src, np.zeros(shape))
    b_eff = 64.0 * s * np.broadcast_to(b, shape)
    mant_max = (1 << (fmt.bias_mant_bits - 1)) - 1
    exp_max = (1 << fmt.bias_exp_bits) - 1 if fmt.bias_exp_bits else 0
    bmax = float(np.abs(b_eff).max()) if b_eff.size else 0.0
    exp = 0
    while exp < exp_max and round(bmax / 2.0 ** exp) > mant_max:
        exp += 1
    mant = np.round(b_eff / 2.0 ** exp)
    if np.abs(mant).max(initial=0) > mant_max:
        raise SnnccError("SNN-Q005", f"bias of %{n.name} does not fit the "
                         f"{fmt.bias_mant_bits}-bit mantissa", location=n.location())
    berr = float(np.abs(mant * 2.0 ** exp - b_eff).max() / (64.0 * s)) if b_eff.size else 0.0
    if not decay_exact:
        notes.append(f"leak rounded: dv = {dv} for 4096/tau")
    shift = d.shift if (src not in pb and d.shift is not None) else None
    return NeuronQuant(n.name, d.id, 4095, dv, vth, mant.astype(np.int32), exp, kappa, shift,
                       exact, decay_exact, berr, notes)


def quantize(
    graph: Graph,
    target: Target | str,
    *,
    calibration: torch.Tensor | None = None,
    scales: dict[int, float] | None = None,
    agreement: bool = True,
) -> QuantizedGraph:
    """Quantize a canonical graph for ``target``.

    ``calibration``: sample inputs; they set the current ranges (else worst-case
    bounds from the weights, which are safe but coarser) and give each layer's
    spike agreement between acsim and the float interpreter. ``scales``: fixed
    per-domain scales (from an artifact), which makes the result reproducible.
    """
    tgt = load_target(target) if isinstance(target, str) else target
    fmt = _formats(tgt)
    cat = categorize(graph)
    pb = pending_biases(graph, cat)
    domains, domain_of = find_domains(graph, cat)
    bounds = _current_bounds(graph, cat)
    margin = 1.0
    if calibration is not None:
        bounds.update(_calibrated_bounds(graph, cat, pb, calibration))
        margin = CALIBRATION_MARGIN
    for d in domains:
        s, k, exact, why = choose_scale(graph, d, fmt, pb, bounds, margin)
        if scales is not None:
            if d.id not in scales:
                raise SnnccError("SNN-Q006", f"no stored scale for current domain {d.id}",
                                 hint="re-build the artifact with this snncc")
            s = float(scales[d.id])
            why = "stored"
            if k is not None:
                k = int(round(math.log2(s)))
                exact = exact and k >= _exact_shift(graph, d, graph.time_steps)
        d.scale, d.shift, d.exact, d.limit = s, k, exact, why
    weights: dict[str, WeightQuant] = {}
    neurons: dict[str, NeuronQuant] = {}
    layers: list[LayerReport] = []
    for n in graph:
        if n.op in WEIGHT_OPS and cat[n.name] == Cat.CURRENT and cat[n.inputs[0]] != Cat.ANALOG:
            d = domains[domain_of[n.name]]
            wq = quantize_weights(n, d, fmt, graded=cat[n.inputs[0]] == Cat.COUNT)
            weights[n.name] = wq
            layers.append(LayerReport(
                n.name, n.origin.module_path, n.op, d.id, d.scale, weight_exp=wq.weight_exp,
                max_abs_weight_error=wq.max_abs_error,
                rel_weight_error=wq.max_abs_error / wq.max_abs_weight if wq.max_abs_weight else 0.0))
        elif n.opdef.is_neuron:
            key = "@" + n.name
            d = domains[domain_of[key]] if key in domain_of else domains[domain_of[n.inputs[0]]]
            nq = quantize_neuron(graph, n, d, fmt, pb)
            neurons[n.name] = nq
            layers.append(LayerReport(n.name, n.origin.module_path, n.op, d.id, d.scale,
                                      vth=nq.vth, threshold_exact=nq.threshold_exact,
                                      notes=list(nq.notes)))
        elif n.op in WEIGHT_OPS and n.opdef.multiplies == Multiplies.WEIGHT:
            where = "host (encoding MACs)" if cat[n.name] == Cat.CURRENT else "host (readout MACs)"
            d_id = domain_of.get(n.name, -1)
            layers.append(LayerReport(n.name, n.origin.module_path, n.op, d_id,
                                      domains[d_id].scale if d_id >= 0 else 0.0,
                                      notes=[f"runs on the {where} in float"]))
    qg = QuantizedGraph(graph, tgt, cat, domains, domain_of, weights, neurons, pb, layers)
    if calibration is not None and agreement:
        add_spike_agreement(qg, calibration)
    return qg


def add_spike_agreement(qg: QuantizedGraph, inputs: torch.Tensor) -> dict[str, float]:
    """Per neuron layer: the fraction of (step, sample, neuron) spikes on which acsim
    and the float interpreter agree; recorded in the layer report."""
    from snncc.backends.acsim.simulator import run_quantized
    from snncc.ir.interpreter import run_in_batches

    sim = run_quantized(qg, inputs)
    _, ref = run_in_batches(qg.graph, inputs, record=True)
    out: dict[str, float] = {}
    for name, s in sim.spikes.items():
        r = ref[name].numpy() != 0
        out[name] = float((s == r).mean()) if s.size else 1.0
    for row in qg.layers:
        if row.node in out:
            row.spike_agreement = out[row.node]
    return out


@register_pass("quantize")
def quantize_pass(graph: Graph) -> PassResult:
    """Pass form: quantizes for ``graph.meta["target"]`` (default loihi2) and records
    the per-domain scales and the per-layer report in ``graph.meta["quantization"]``;
    the graph's float parameters are kept (the integers follow from the scales)."""
    name = graph.meta.get("target", "loihi2")
    qg = quantize(graph, str(name))
    graph.meta["quantization"] = {"scales": {str(k): v for k, v in qg.scales.items()},
                                  **qg.report_json()}
    worst = max((r.rel_weight_error or 0.0 for r in qg.layers), default=0.0)
    notes = [f"{len(qg.domains)} current domains, {len(qg.weights)} weight ops on chip, "
             f"{len(qg.neurons)} neuron layers; worst relative weight error {worst:.2%}"]
    return PassResult(graph, True, notes)
