"""lower: the quantized graph as chip layers, fitted to a core's fan-in.

Why here and not in a backend: which populations of neurons a chip holds, what
feeds each of them and how a sum too wide for one core is cut up are the same
questions for acsim, the core mapper, the cost model and Lava; answered once,
each of them reads the answer (:class:`~snncc.lower.program.LayerProgram`).

The policy, in three steps, each taken only if the one before does not fit:

1. Synapses live with their destination: every neuron layer (and readout
   accumulator) reads the events of every weight op whose current reaches it
   through residual adds, moves and sums -- the program every model had
   before this pass, kept unchanged for every model that fits.
2. Relays: a residual stream (an add or sub of currents with more than one
   reader) is held in relay neurons that forward it each step as a graded
   spike, so a reader takes one synapse per element instead of the synapses
   of every projection that built the stream (the fan-in of a spike-driven
   transformer's layers then no longer grows with depth).
3. Splits: a weight op whose reader still reads more than a core's fan-in is
   computed in parts over ranges of its input channels, each part a layer of
   partial-sum neurons that forwards its sum as a graded spike; the reader
   joins the parts with one graded synapse each, and the op's exponent is
   applied once, to the joined sum. The join is exact while every part fits
   the graded payload (24 bits), which acsim checks and counts.

Relays and splits need graded spikes: on a target without them
(``max_message_bits == 0``, Loihi 1) step 1 is the program and the mapper
reports what does not fit.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from snncc.ir.graph import Node
from snncc.ir.ops.weights import ConvAttrs
from snncc.ir.types import Layout
from snncc.lower.program import HOST, ChipLayer, HostOp, LayerProgram, Split, Synapses
from snncc.passes.quantize import WEIGHT_OPS, Cat, QuantizedGraph, item_shape, sum_axes

__all__ = ["is_pointwise", "lava_timing", "lower", "readout_accumulators"]


def readout_accumulators(qg: QuantizedGraph) -> list[str]:
    """Currents the host reads: on a chip, non-spiking neurons that integrate them and
    are read out at the end. A time-first current summed over time is integrated over
    the run; a current computed once after the run (a head fed spike counts) at the end."""
    users = qg.graph.users_map()
    out: list[str] = []
    for n in qg.graph:
        if qg.categories[n.name] != Cat.CURRENT:
            continue
        if n.type.layout != Layout.TIME:
            if n.op in WEIGHT_OPS and (n.name in qg.graph.outputs or any(
                    qg.categories[u.name] == Cat.HOST for u in users[n.name])):
                out.append(n.name)
            continue
        for u in users[n.name]:
            if qg.categories[u.name] == Cat.HOST or (u.op == "sum" and sum_axes(u, n)[1]):
                out.append(n.name)
                break
    return out


def _schedule(qg: QuantizedGraph) -> dict[str, list[int]]:
    sched = qg.graph.meta.get("schedule", {})
    return dict(sched) if isinstance(sched, dict) else {}


class _Lowering:
    """The graph's chip layers for one choice of relays and splits."""

    def __init__(self, qg: QuantizedGraph, relays: set[str], splits: dict[str, Split]) -> None:
        self.qg, self.graph = qg, qg.graph
        self.relays, self.splits = relays, splits
        self.accumulators = readout_accumulators(qg)
        self.relay_terms: dict[str, list[str]] = {}  # a relay's own inputs
        self.schedule = _schedule(qg)
        self.terms = self._terms()

    def _terms(self) -> dict[str, list[str]]:
        """Per current or count: the weight ops, spike products and relays that built it."""
        qg = self.qg
        out: dict[str, list[str]] = {}
        for n in self.graph:
            cat = qg.categories[n.name]
            if n.op in WEIGHT_OPS and cat == Cat.CURRENT or n.op == "matmul" and cat == Cat.COUNT:
                out[n.name] = [n.name]
            elif cat in (Cat.CURRENT, Cat.COUNT) and not n.opdef.is_neuron:
                out[n.name] = list(dict.fromkeys(t for i in n.inputs for t in out.get(i, [])))
                if n.name in self.relays:
                    self.relay_terms[n.name] = out[n.name]
                    out[n.name] = [n.name]
        return out

    def spike_sources(self, name: str) -> list[str]:
        """Neuron layers (or spiking inputs) whose spikes reach ``name`` without a synapse."""
        node = self.graph.nodes[name]
        if node.opdef.is_neuron or node.op == "input":
            return [name]
        return list(dict.fromkeys(s for i in node.inputs for s in self.spike_sources(i)))

    def op_fan_in(self, op: str) -> int:
        node = self.graph.nodes[op]
        if node.op == "matmul":
            return int(self.graph.nodes[node.inputs[0]].type.shape[-1])
        return int(np.prod(node.params["weight"].shape[1:]))

    def _op_kind(self, op: str) -> str:
        node = self.graph.nodes[op]
        if node.op == "matmul":
            return "sparse"
        if node.op == "conv2d" or node.op == "conv1d" and not is_pointwise(node):
            return "conv"
        return "dense"

    def _shared_rows(self, op: str, neurons: int) -> tuple[int, int]:
        """(rows, stride) of an op's shared weights as its reader lays out its neurons:
        ``rows`` distinct weight rows, each used by ``stride`` consecutive neurons
        (channel-major conv) or cycling every row (token-major linear); (0, 1): unshared."""
        node = self.graph.nodes[op]
        outs = int(np.prod(item_shape(node)))
        if node.op == "matmul" or outs != neurons:
            return 0, 1
        c_out = int(node.params["weight"].shape[0])
        if node.op == "linear":
            return c_out, 1
        return c_out, outs // c_out

    def synapses(self, term: str, neurons: int) -> list[Synapses]:
        """The connections one term (a weight op, product or relay) makes into a layer."""
        qg, graph = self.qg, self.graph
        node = graph.nodes[term]
        outs = int(np.prod(item_shape(node)))
        mult = max(1, outs // max(neurons, 1))
        if term in self.relays:
            return [Synapses("", (term,), "graded", mult, mult * neurons, mult * neurons)]
        if qg.categories[node.inputs[0]] == Cat.ANALOG:  # the host sends the encoded current
            return [Synapses(term, (HOST,), self._op_kind(term), 1, 0, 0)]
        if term in self.splits:
            return [Synapses(term, (_part(term, g),), "graded", mult, mult * neurons,
                             mult * neurons, channels=ch)
                    for g, ch in enumerate(self.splits[term].channels)]
        per_out = self.op_fan_in(term)
        sources = tuple(dict.fromkeys(s for i in node.inputs for s in self.spike_sources(i)))
        rows, stride = self._shared_rows(term, neurons)
        weights = rows * per_out if rows else 0 if node.op == "matmul" else per_out * outs
        return [Synapses(term, sources, self._op_kind(term), per_out * mult, per_out * outs,
                         weights, weight_rows=rows, row_stride=stride)]

    def _layer(self, n: Node, kind: str, src: str) -> ChipLayer:
        neurons = int(np.prod(item_shape(n)))
        cat = self.qg.categories[src]
        inputs: list[Synapses] = []
        terms = self.relay_terms[src] if kind == "relay" else self.terms.get(src, [])
        for t in terms:
            inputs += self.synapses(t, neurons)
        if not terms and cat in (Cat.SPIKE, Cat.COUNT):
            inputs.append(Synapses("", tuple(self.spike_sources(src)), "dense", 1, neurons,
                                   neurons))
        if not terms and cat == Cat.ANALOG:
            inputs.append(Synapses("", (HOST,), "dense", 1, 0, 0))
        module = n.origin.module_path or self.graph.nodes[src].origin.module_path
        steps = self.schedule.get(n.name) if kind == "neuron" else None
        return _feature_major(ChipLayer(
            n.name, module, kind, item_shape(n), tuple(inputs),
            neuron=self.qg.neurons.get(n.name) if kind == "neuron" else None,
            steps=tuple(steps) if steps is not None else None))

    def _parts(self, n: Node) -> list[ChipLayer]:
        """The partial-sum layers of a split weight op, one per input-channel range."""
        split = self.splits[n.name]
        per_channel = self.op_fan_in(n.name) // _in_channels(n)
        outs = int(np.prod(item_shape(n)))
        sources = tuple(dict.fromkeys(s for i in n.inputs for s in self.spike_sources(i)))
        rows, stride = self._shared_rows(n.name, outs)
        out = []
        for g, (c0, c1) in enumerate(split.channels):
            fan = per_channel * (c1 - c0)
            syn = Synapses(n.name, sources, self._op_kind(n.name), fan, fan * outs,
                           rows * fan if rows else fan * outs, channels=(c0, c1),
                           weight_rows=rows, row_stride=stride)
            out.append(_feature_major(ChipLayer(_part(n.name, g), n.origin.module_path,
                                                "partial", item_shape(n), (syn,), of_op=n.name)))
        return out

    def layers(self) -> list[ChipLayer]:
        out: list[ChipLayer] = []
        accumulators = set(self.accumulators)
        for n in self.graph:
            if n.name in self.splits:
                out += self._parts(n)
            if n.opdef.is_neuron:
                out.append(self._layer(n, "neuron", n.inputs[0]))
            elif n.name in accumulators:
                out.append(self._layer(n, "accumulator", n.name))
            elif n.name in self.relays:
                out.append(self._layer(n, "relay", n.name))
        return _with_depths(out)


def _feature_major(layer: ChipLayer) -> ChipLayer:
    """Number a per-token linear's neurons feature by feature: its weight rows (one per
    output feature, cycling every neuron in the item's own order) then run in blocks of
    one per token, and a core of consecutive neurons stores a range of rows only."""
    shape = layer.shape
    cyclic = [s for s in layer.inputs if s.weight_rows and s.row_stride == 1]
    if len(shape) < 2 or not cyclic or any(s.weight_rows != shape[-1] for s in cyclic):
        return layer
    tokens = layer.neurons // shape[-1]
    inputs = tuple(replace(s, row_stride=tokens) if s in cyclic else s for s in layer.inputs)
    return replace(layer, inputs=inputs, order=(len(shape) - 1, *range(len(shape) - 1)))


def is_pointwise(node: Node) -> bool:
    """A kernel-1 conv1d with no stride, padding, dilation or groups: a Dense per token."""
    a = node.attrs
    return (isinstance(a, ConvAttrs) and node.params["weight"].shape[-1] == 1
            and a.stride == (1,) and a.padding == (0,) and a.dilation == (1,) and a.groups == 1)


def _in_channels(node: Node) -> int:
    return int(node.params["weight"].shape[1])


def _part(op: str, g: int) -> str:
    return f"{op}.part{g}"


def _with_depths(layers: list[ChipLayer]) -> list[ChipLayer]:
    """Synapse layers from the host to each layer: 1 + the deepest source's depth."""
    depth: dict[str, int] = {}
    out = []
    for layer in layers:
        d = 1 + max((depth.get(s, 0) for s in layer.sources), default=0)
        depth[layer.name] = d
        out.append(replace(layer, depth=d))
    return out


def _relay_candidates(qg: QuantizedGraph, accumulators: set[str]) -> set[str]:
    """Residual streams: adds and subs of currents read by more than one op."""
    users = qg.graph.users_map()
    return {n.name for n in qg.graph
            if n.op in ("add", "sub") and qg.categories[n.name] == Cat.CURRENT
            and n.type.layout == Layout.TIME and len({u.name for u in users[n.name]}) > 1
            and n.name not in accumulators}


def _split_channels(node: Node, per_channel: int, limit: int) -> tuple[tuple[int, int], ...]:
    """Input-channel ranges of at most ``limit`` inputs per output, as even as possible."""
    c_in = _in_channels(node)
    chunk = max(1, limit // per_channel)
    k = -(-c_in // chunk)
    return tuple((g * c_in // k, (g + 1) * c_in // k) for g in range(k))


def _splittable(lowering: _Lowering, op: str) -> bool:
    node = lowering.graph.nodes[op]
    return (node.op in WEIGHT_OPS and op not in lowering.splits and op not in lowering.relays
            and lowering.qg.categories[node.inputs[0]] != Cat.ANALOG
            and getattr(node.attrs, "groups", 1) == 1 and _in_channels(node) > 1)


def _splits_for(lowering: _Lowering, limit: int) -> dict[str, Split]:
    """Split, widest first, the weight ops of every layer that reads more than ``limit``."""
    splits: dict[str, Split] = {}
    for layer in lowering.layers():
        excess = layer.fan_in - limit
        candidates = sorted((s for s in layer.inputs if s.op and _splittable(lowering, s.op)
                             and s.op not in splits), key=lambda s: -s.fan_in)
        for syn in candidates:
            if excess <= 0:
                break
            node = lowering.graph.nodes[syn.op]
            per_channel = lowering.op_fan_in(syn.op) // _in_channels(node)
            channels = _split_channels(node, per_channel, limit)
            mult = syn.fan_in // lowering.op_fan_in(syn.op)
            excess -= syn.fan_in - mult * len(channels)
            exp = lowering.qg.weights[syn.op].weight_exp
            splits[syn.op] = Split(syn.op, channels, exp,
                                   f"{layer.name} reads {layer.fan_in} inputs, more than the "
                                   f"{limit} fan-in of a core")
    return splits


def lower(qg: QuantizedGraph, *, fan_in_limit: int | None = None,
          graded: bool | None = None) -> LayerProgram:
    """The chip layers of ``qg``, with relays and splits where a layer would exceed the
    fan-in of a core. ``fan_in_limit`` and ``graded`` default to the target's (a core's
    fan-in; whether it sends graded spikes); without limits nothing is split."""
    tgt = qg.target
    if fan_in_limit is None and tgt.limits is not None:
        fan_in_limit = tgt.limits.fan_in_per_core
    if graded is None:
        graded = tgt.formats is not None and tgt.formats.max_message_bits > 0
    relays: set[str] = set()
    splits: dict[str, Split] = {}
    lowering = _Lowering(qg, relays, splits)
    if fan_in_limit is not None and graded and _over(lowering.layers(), fan_in_limit):
        relays = _relay_candidates(qg, set(lowering.accumulators))
        lowering = _Lowering(qg, relays, splits)
        for _ in range(len(qg.graph.nodes)):  # each round splits at least one op, or stops
            new = _splits_for(lowering, fan_in_limit)
            if not new:
                break
            splits = {**splits, **new}
            lowering = _Lowering(qg, relays, splits)
    layers = lowering.layers()
    return LayerProgram(
        time_steps=qg.graph.time_steps, layers=layers, host=_host_ops(qg),
        relays=[n.name for n in qg.graph if n.name in relays], splits=splits,
        weights=dict(qg.weights), accumulators=list(lowering.accumulators),
        schedule={k: tuple(v) for k, v in _schedule(qg).items()})


def _over(layers: list[ChipLayer], limit: int) -> bool:
    return any(layer.fan_in > limit for layer in layers)


def _host_ops(qg: QuantizedGraph) -> list[HostOp]:
    out = []
    for n in qg.graph:
        cat = qg.categories[n.name]
        if n.op == "input":
            continue
        if cat == Cat.HOST:
            out.append(HostOp(n.name, n.origin.module_path, "readout"))
        elif cat == Cat.ANALOG or n.op in WEIGHT_OPS and qg.categories[n.inputs[0]] == Cat.ANALOG:
            out.append(HostOp(n.name, n.origin.module_path, "encoding"))
    return out


def _is_synapse(qg: QuantizedGraph, node: Node) -> bool:
    """An op that is a synapse layer on a Lava-timed chip (it sends last step's sums):
    a weight op fed by the chip (not the host's encoding), or a product of spikes."""
    if node.op in WEIGHT_OPS:
        return qg.categories[node.inputs[0]] != Cat.ANALOG and qg.categories[node.name] != Cat.HOST
    return node.op == "matmul" and qg.categories[node.name] in (Cat.COUNT, Cat.CURRENT)


def lava_timing(qg: QuantizedGraph, lowered: LayerProgram | None = None
                ) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Per node, the steps a Lava-timed chip takes to it from the input (each synapse
    layer adds one); per node, the delay each of its inputs needs so that all of them
    arrive together (what the Lava build inserts as delays, and acsim's Lava-timed run
    applies). A time-reduced value (the readout after a sum over time) keeps its
    inputs' latency and needs no delay. With the ``lowered`` program, a relay adds the
    step of the synapses that forward its stream, and a split the step of its join
    (the parts' sums sent as graded spikes to the reader)."""
    extra = set() if lowered is None else {*lowered.relays, *lowered.splits}
    latency: dict[str, int] = {}
    delays: dict[str, dict[str, int]] = {}
    for n in qg.graph:
        timed = [i for i in n.inputs if qg.graph.nodes[i].type.layout == Layout.TIME]
        arrive = max((latency[i] for i in n.inputs), default=0)
        delays[n.name] = {i: arrive - latency[i] for i in timed if arrive > latency[i]}
        latency[n.name] = arrive + (1 if _is_synapse(qg, n) else 0) + (n.name in extra)
    return latency, delays
