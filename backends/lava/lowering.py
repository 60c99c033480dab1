"""The plan of a compiled model's Lava network: which processes and connections.

Why one Dense per connection: every synapse of a chip layer is a weight op
reached from a neuron layer through moves (reshapes, transposes) and left
through moves and residual sums into the reading neuron's current. Composing
those into one integer matrix (source neurons -> reading neurons, built by
pushing the basis of the source through acsim's own integer ops) gives a Lava
``Dense`` that computes exactly acsim's sum, whatever layout the graph used;
several of them into one LIF ``a_in`` are summed, as Lava sums an InPort's
connections. Paths of different depth are matched with ``DelayDense``
(:func:`snncc.lower.lava_timing` gives the delays, and acsim's Lava-timed mode
applies the same ones), so each LIF sees what acsim's Lava-timed run computes,
step for step.

What it runs: spike or host-encoded inputs (the encoding runs on the host, its
integer current injected into the first LIF), weight ops fed spikes or counts,
residual sums of currents, LIF neurons, and, as processes of snncc's own
(:mod:`.procs.snncc_op`), max-pooling, spike products, sums of spikes and time
masks; every neuron layer's spikes are recorded, and the readout after the last
neurons (spike counts, the head) is computed from them on the host by acsim's
integer datapath.

The plan is data (testable without Lava); :mod:`.network` builds the processes,
:mod:`.run` runs them, :mod:`.placement` says what on Loihi 2 runs each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from snncc.backends.acsim.datapath import chip_weight_op
from snncc.backends.acsim.fixedpoint import torch_conv_params_to_lava, torch_conv_weight_to_lava
from snncc.backends.acsim.program import Program
from snncc.diagnostics import SnnccError
from snncc.ir.graph import Node
from snncc.ir.ops.weights import ConvAttrs
from snncc.ir.types import Layout
from snncc.lower import lava_timing
from snncc.passes.quantize import (
    STRUCTURAL_OPS,
    WEIGHT_OPS,
    Cat,
    item_shape,
    item_structural,
    lead_axes,
)
from snncc.passes.quantize.values import sum_axes

OWN_PROCESS = {"maxpool2d", "matmul", "time_mask"}  # run by snncc's own process (procs/)
SUPPORTED = {"input", "add", "sum", *WEIGHT_OPS, *STRUCTURAL_OPS, *OWN_PROCESS}


@dataclass
class LavaConv:
    """A conv connection as Lava's own ``Conv``: its constructor's arguments in Lava's
    layout (kernel flipped and transposed, (x, y) order, input (W, H, C)), and the
    PyTorch-order items its ports are reshaped from and to (the LIFs are flat)."""

    kwargs: dict[str, Any]  # weight, input_shape, padding, stride, dilation, groups
    in_item: tuple[int, int, int]  # (C, H, W) of the source's flat spikes
    out_item: tuple[int, int, int]  # (C', H', W') of the reading LIF's flat current
    channels_last: bool = False  # the flat order already is Lava's (tokens, 1, features)


@dataclass
class Connection:
    """One Dense, DelayDense or Conv of the network: source neurons -> a LIF's current."""

    source: str  # a neuron layer, or the graph's spiking input
    target: str  # the LIF that reads it
    weights: np.ndarray | None  # int, [target neurons, source neurons] (flat C order)
    weight_exp: int
    delay: int  # steps beyond the synapse's own one (DelayDense)
    graded: bool = False  # fed counts: graded spikes (num_message_bits)
    conv: LavaConv | None = None  # a Lava Conv instead of a composed matrix
    # a relay's or a split's join's graded payloads into a reader: the moves (and sums)
    # between them as a sparse matrix of ones [reader elements, relay elements]
    forward: Any = None


@dataclass
class OpProcess:
    """One of snncc's own Lava processes: computes ``nodes`` (moves, then the op) from the
    spikes or counts of ``sources`` with acsim's code; ``target``: a LIF it feeds directly
    (a count into a neuron, shifted into the neuron's units), else None."""

    name: str
    sources: list[str]
    nodes: list[str]
    delayed: bool
    out_size: int
    target: str | None = None
    shift: int | None = None
    in_delays: tuple[int, int] = (0, 0)  # steps each source waits (paths of different depth)
    # into a LIF: the moves from the op's output to the LIF's current (after ``nodes``)
    moves: list[Callable[[np.ndarray], np.ndarray]] = field(default_factory=list)


@dataclass
class LavaPlan:
    """What the Lava network holds, before any process exists (testable without Lava)."""

    neurons: list[str]
    connections: list[Connection] = field(default_factory=list)
    ops: list[OpProcess] = field(default_factory=list)
    # the lowering's relays and the joins of its splits: graded relay neurons (Lava's
    # GradedVec), by node, with their sizes; they sum what they receive and forward it
    relays: dict[str, int] = field(default_factory=dict)
    joins: dict[str, int] = field(default_factory=dict)
    # the readout's accumulators: the values the host's readout sums over time (each an
    # integrator of snncc's own, fed like a LIF), by node, with their sizes
    taps: dict[str, int] = field(default_factory=dict)
    tap_starts: dict[str, int] = field(default_factory=dict)  # the step its sums arrive
    tap_layers: dict[str, str] = field(default_factory=dict)  # its accumulator chip layer
    # the host's encoded currents each LIF (or relay) reads: (encoding op, moves to the LIF's current,
    # steps of delay to meet the other terms of its sum)
    encoded: list[tuple[str, str, list[Callable[[np.ndarray], np.ndarray]], int]] = \
        field(default_factory=list)
    steps_extra: int = 0  # depth (and a step for a tap behind a relay): T + this steps
    latency: dict[str, int] = field(default_factory=dict)  # lava_timing's, per node


def _own(program: Program, node: Node) -> bool:
    """Ops snncc's own process computes: pooling, products, and sums of spikes (counts)."""
    return node.op in OWN_PROCESS or node.op == "add" and \
        program.qg.categories[node.name] == Cat.COUNT


def _feeds_a_neuron(program: Program, taps: list[str] = []) -> set[str]:  # noqa: B006
    """Nodes on some path into a neuron's input (or into a readout tap): what the Lava
    network must compute. The rest of the readout is computed on the host."""
    graph = program.graph
    need: set[str] = set()
    stack = [n.inputs[0] for n in graph if n.opdef.is_neuron] + list(taps)
    while stack:
        name = stack.pop()
        if name not in need:
            need.add(name)
            node = graph.nodes[name]
            if not node.opdef.is_neuron:
                stack += node.inputs
    return need


def readout_taps(program: Program) -> dict[str, str]:
    """The time-first values the readout integrates over the run: each readout
    accumulator that is one, and, for a head computed once after the run (fed spike
    counts summed over time), the value before that sum; each with the accumulator
    (the chip layer) it stands for. On a chip, non-spiking neurons integrate them and
    the host reads them at the end."""
    qg = program.qg
    out: dict[str, str] = {}
    for name in program.accumulators:
        node = qg.graph.nodes[name]
        while node.type.layout != Layout.TIME and node.inputs:
            node = qg.graph.nodes[node.inputs[0]]
        if node.type.layout == Layout.TIME and node.name not in out \
                and qg.categories[node.name] in (Cat.CURRENT, Cat.COUNT):
            out[node.name] = name
    return out


def _unsupported(program: Program, taps: list[str] = []) -> list[Node]:  # noqa: B006
    qg = program.qg
    need = _feeds_a_neuron(program, taps)
    bad = []
    for n in qg.graph:
        if n.opdef.is_neuron or n.name not in need \
                or qg.categories[n.name] == Cat.HOST:
            continue
        if n.op not in SUPPORTED or n.op == "add" and qg.categories[n.name] not in (Cat.CURRENT,
                                                                                     Cat.COUNT):
            bad.append(n)
    return bad


def _move(node: Node, program: Program) -> Callable[[np.ndarray], np.ndarray]:
    """``node``'s move on acsim's arrays; the function carries the op's name (``op``),
    so a plan can tell moves that keep the flat order from transposes."""
    src = program.graph.nodes[node.inputs[0]]

    def move(x: np.ndarray) -> np.ndarray:
        return item_structural(node, src, x)

    move.op = node.op  # type: ignore[attr-defined]
    return move


def _token_sum(node: Node, program: Program) -> Callable[[np.ndarray], np.ndarray]:
    """A sum over item axes (the readout's mean over tokens) as a linear move: it
    composes into the synapses like a reshape, but is no relabeling."""
    dims, _ = sum_axes(node, program.graph.nodes[node.inputs[0]])
    keep = bool(node.attrs.keepdim)  # type: ignore[attr-defined]

    def total(x: np.ndarray) -> np.ndarray:
        return np.asarray(x).sum(axis=tuple(dims), keepdims=keep, dtype=np.int64).astype(np.int32)

    total.op = "sum"  # type: ignore[attr-defined]
    return total


def _basis(program: Program, name: str) -> np.ndarray:
    """One sample's basis over a value's elements, laid out as the value's own lead axes
    (time first: [N, 1, *item]), element k set in the k-th."""
    node = program.graph.nodes[name]
    item = item_shape(node)
    n = int(np.prod(item))
    return np.eye(n, dtype=np.int32).reshape(n, *([1] * (lead_axes(node) - 1)), *item)


def _terms(program: Program, name: str, after: list[Callable[[np.ndarray], np.ndarray]],
           relays: set[str] = frozenset()  # type: ignore[assignment]
           ) -> list[tuple[str, list[Callable[[np.ndarray], np.ndarray]]]]:
    """The weight ops (or the encoding, or relays) summed into current ``name``, each
    with the moves from its output to ``name`` (applied in order)."""
    node = program.graph.nodes[name]
    if node.op in WEIGHT_OPS or _own(program, node) or node.opdef.is_neuron or name in relays:
        return [(name, after)]
    if node.op == "add":
        return [t for i in node.inputs for t in _terms(program, i, after, relays)]
    if node.op in STRUCTURAL_OPS:
        return _terms(program, node.inputs[0], [_move(node, program), *after], relays)
    if node.op == "sum" and not sum_axes(node, program.graph.nodes[node.inputs[0]])[1]:
        return _terms(program, node.inputs[0], [_token_sum(node, program), *after], relays)
    raise SnnccError("SNN-LAVA002", f"the Lava backend cannot build %{name} ({node.op}) into "
                     "a neuron's current", location=node.location())


def _source(program: Program, name: str) -> tuple[str, list[Callable[[np.ndarray], np.ndarray]]]:
    """The neuron layer (or input) whose spikes reach ``name`` through moves only."""
    node = program.graph.nodes[name]
    if node.opdef.is_neuron or node.op == "input" or _own(program, node):
        return name, []
    if node.op in STRUCTURAL_OPS:
        src, moves = _source(program, node.inputs[0])
        return src, [*moves, _move(node, program)]
    raise SnnccError("SNN-LAVA002", f"the Lava backend cannot feed %{name} ({node.op}) to a "
                     "synapse", location=node.location())


def plan(program: Program) -> LavaPlan:
    """The connections of the Lava network of ``program``, or SNN-LAVA002 naming every
    op it cannot build yet."""
    tapped = readout_taps(program)
    taps = list(tapped)
    bad = _unsupported(program)
    if not bad and _unsupported(program, taps):
        taps = []  # the readout needs an op the Lava lowering lacks: the host computes it
    if bad:
        names = ", ".join(f"%{n.name} ({n.op})" for n in bad[:8])
        raise SnnccError(
            "SNN-LAVA002",
            f"the Lava backend has no rule yet for {len(bad)} op(s) of this model: {names}"
            + (" ..." if len(bad) > 8 else ""),
            location=bad[0].location(),
            hint="the Lava lowering runs weight ops, residual sums and LIF neurons so far; "
                 "run the model on acsim (--target acsim) meanwhile")
    qg = program.qg
    latency, _ = lava_timing(qg, program.lowered)
    need = _feeds_a_neuron(program)
    relays = [r for r in program.lowered.relays if r in need]
    out = LavaPlan([n.name for n in qg.graph if n.opdef.is_neuron],
                   ops=_own_processes(program, latency, taps),
                   relays={r: flat_size(program, r) for r in relays},
                   taps={t: flat_size(program, t) for t in taps},
                   tap_layers={t: tapped[t] for t in taps},
                   steps_extra=max(latency.values(), default=0), latency=latency)
    # every sink of currents: a LIF (the terms of its input), a relay (of its inputs)
    sinks = []
    for lif in out.neurons:
        current = qg.graph.nodes[lif].inputs[0]
        sinks.append((lif, current, [current], latency[current]))
    sinks += [(r, r, list(qg.graph.nodes[r].inputs), latency[r] - 1) for r in relays]
    for t in taps:
        node = qg.graph.nodes[t]
        out.tap_starts[t] = latency[t]
        if node.op == "sum" and qg.categories[node.inputs[0]] == Cat.CURRENT:
            # a current summed over tokens: its synapses' weights would add up past the
            # 8-bit weights, so a relay holds the current and ones sum it into the tap
            pre = node.inputs[0]
            out.relays[pre] = flat_size(program, pre)
            sinks.append((pre, pre, [pre], latency[pre]))
            out.tap_starts[t] += 1
        sinks.append((t, t, [t], latency[t]))
    out.steps_extra += any(out.tap_starts[t] > latency[t] for t in taps)
    for sink, current, roots, arrive in sinks:
        for root in roots:
            for op, moves in _terms(program, root, [], set(out.relays) - {sink}):
                _connect(program, out, sink, current, op, moves, arrive, latency)
    return out


def _connect(program: Program, out: LavaPlan, sink: str, current: str, op: str,
             moves: list[Callable[[np.ndarray], np.ndarray]], arrive: int,
             latency: dict[str, int]) -> None:
    """Add to ``out`` what carries term ``op`` (through ``moves``) into ``sink``'s
    current at step ``arrive``: a synapse, a shortcut, the host's encoding, a relay's
    forwarding synapses, or a split's parts, join and forwarding synapses."""
    qg = program.qg
    op_node = qg.graph.nodes[op]
    delay = arrive - latency[op]
    if op in out.relays or op in program.lowered.splits:
        if op in program.lowered.splits and op not in out.joins:
            out.joins[op] = flat_size(program, op)
            src, before = _source(program, op_node.inputs[0])
            for g, channels in enumerate(program.lowered.splits[op].channels):
                out.connections.append(_synapse(program, op_node, src, op, before, [], 0,
                                                program.parts[op][g], channels))
        e = program.weights[op].weight_exp if op in out.joins else 0
        out.connections.append(Connection(op, sink, None, e, delay, True,
                                          forward=_forwarding(program, op, moves)))
        return
    if _own(program, op_node) or op_node.opdef.is_neuron:
        # spikes or counts into the sink (a shortcut), through moves and sums
        out.ops.append(OpProcess(f"{op}->{sink}", [op], [], False, flat_size(program, current),
                                 sink, _entry_shift(program, current, sink), moves=moves,
                                 in_delays=(delay, 0)))
        return
    if qg.categories[op_node.inputs[0]] == Cat.ANALOG:  # computed by the host
        out.encoded.append((sink, op, moves, delay))
        return
    src, before = _source(program, op_node.inputs[0])
    out.connections.append(_synapse(program, op_node, src, sink, before, moves, delay,
                                    program.weights[op], None))


def _synapse(program: Program, node: Node, src: str, sink: str,
             before: list[Callable[[np.ndarray], np.ndarray]],
             after: list[Callable[[np.ndarray], np.ndarray]], delay: int, cw: Any,
             channels: tuple[int, int] | None) -> Connection:
    """Weight op ``node`` from ``src``'s spikes (or counts) into ``sink``: Lava's Conv
    where it applies, else the op composed with its moves into one matrix. ``channels``:
    a split's part, the op on that range of its input channels (exponent 0: the join
    applies it)."""
    conv = _lava_conv(program, node, before + after, delay, channels)
    if conv is not None:
        return Connection(src, sink, None, 0, delay, cw.graded, conv)
    x = _basis(program, src)
    for f in before:
        x = f(x)
    if channels is not None:
        axis = x.ndim - 1 if node.op == "linear" else lead_axes(node)
        x = np.take(x, np.arange(*channels), axis=axis)
    y = chip_weight_op(_exp0(cw), x, x.shape[:lead_axes(node)], item_shape(node))
    for f in after:
        y = f(y)
    weights = y.reshape(y.shape[0], -1).T.astype(np.int64)
    return Connection(src, sink, weights, cw.weight_exp, delay, cw.graded)


def _forwarding(program: Program, name: str, moves: list[Callable[[np.ndarray], np.ndarray]],
                chunk: int = 512) -> Any:
    """The moves from value ``name`` to a reader as a sparse matrix of ones [reader
    elements, ``name``'s elements]: relabels by pushing an index through them; a sum
    (into a readout tap) by pushing the basis through in chunks (a dense identity of a
    CIFAR residual stream would take gigabytes)."""
    from scipy.sparse import csr_matrix

    node = program.graph.nodes[name]
    n = flat_size(program, name)
    lead = (1,) * (lead_axes(node) - 1)
    if all(getattr(m, "op", None) in STRUCTURAL_OPS for m in moves):
        index = np.arange(n).reshape(1, *lead, *item_shape(node))
        for f in moves:
            index = f(index)
        at = np.asarray(index).reshape(-1)
        return csr_matrix((np.ones(at.size, np.int32), (np.arange(at.size), at)),
                          shape=(at.size, n))
    rows, cols, vals = [], [], []
    for k0 in range(0, n, chunk):
        k = np.arange(k0, min(n, k0 + chunk))
        y = np.zeros((k.size, n), dtype=np.int32)
        y[np.arange(k.size), k] = 1
        y = y.reshape(k.size, *lead, *item_shape(node))
        for f in moves:
            y = f(y)
        src, dst = np.nonzero(y.reshape(k.size, -1))
        rows.append(dst)
        cols.append(k[src])
        vals.append(y.reshape(k.size, -1)[src, dst])
    out_n = int(np.prod(y.shape[1:]))
    return csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(out_n, n))


ORDER_KEEPING = {"reshape", "flatten", "unsqueeze", "identity"}  # flat C order unchanged


def _lava_conv(program: Program, node: Node, moves: list[Callable[[np.ndarray], np.ndarray]],
               delay: int, channels: tuple[int, int] | None = None) -> LavaConv | None:
    """Lava's ``Conv`` for a conv whose source and reader see it through moves that keep
    the flat order and whose exponent is >= 0 (a delay, which Conv has no variant for,
    is added after it by a relay: see :func:`build`): Lava's Conv ignores ``weight_exp``, so the mantissas carry it (``m << e``: the
    sum is congruent mod 2**24 to acsim's shifted 24-bit sum, and the LIF's current
    wraps at 24 bits after ``a << 6``, so the neuron sees the same). Else None: the
    connection is composed into a Dense, which is exact for any layout. ``channels``: a
    split's part (the other input channels' weights 0, exponent 0)."""
    wq = program.qg.weights[node.name]
    item, out = item_shape(program.graph.nodes[node.inputs[0]]), item_shape(node)
    per_token = node.op == "linear" and len(item) == 2
    if node.op not in ("conv1d", "conv2d") and not per_token or wq.weight_exp < 0 \
            or any(getattr(m, "op", None) not in ORDER_KEEPING for m in moves) \
            or channels is not None and getattr(node.attrs, "groups", 1) != 1:
        return None
    mant = np.asarray(wq.mantissa).astype(np.int64)
    if channels is None:
        mant = mant << wq.weight_exp
    else:  # input channels: axis 1 of a conv's kernel, the last of a linear's
        keep = np.zeros(mant.shape[1 if node.op != "linear" else -1], dtype=bool)
        keep[channels[0]:channels[1]] = True
        mant = mant * (keep if node.op == "linear" else keep[:, np.newaxis, np.newaxis]
                       if node.op == "conv2d" else keep[:, np.newaxis])
    if per_token:  # [N, D] token-major: a 1x1 conv over (x=N, y=1, c=D), no transposes
        weight = mant[:, np.newaxis, np.newaxis, :].astype(np.int32)
        return LavaConv({"weight": weight, "input_shape": (item[0], 1, item[1])},
                        (item[0], 1, item[1]), (out[0], 1, out[1]), channels_last=True)
    a = node.attrs
    assert isinstance(a, ConvAttrs)
    if node.op == "conv1d":  # over [C, 1, L]
        mant, item, out = mant[:, :, np.newaxis, :], (item[0], 1, item[1]), (out[0], 1, out[1])
        geometry = [(h, v[0]) for h, v in zip((1, 0, 1), (a.stride, a.padding, a.dilation))]
    else:
        geometry = [(v[0], v[1]) for v in (a.stride, a.padding, a.dilation)]
    stride, padding, dilation = (torch_conv_params_to_lava(g) for g in geometry)
    kwargs = {"weight": torch_conv_weight_to_lava(mant).astype(np.int32),
              "input_shape": (item[2], item[1], item[0]), "padding": padding,
              "stride": stride, "dilation": dilation, "groups": int(a.groups)}
    return LavaConv(kwargs, (item[0], item[1], item[2]), (out[0], out[1], out[2]))


def _entry_shift(program: Program, current: str, lif: str) -> int | None:
    """The shift that brings spikes or counts into what the LIF (or relay) reads: the
    current domain's (a spike shortcut summed into a residual current), or the neuron's
    own input shift when it reads counts directly (Lava's LIF has neither)."""
    qg = program.qg
    if qg.categories[current] == Cat.CURRENT:
        return qg.domains[qg.domain_of[current]].shift
    return program.neurons[lif].shift if lif in program.neurons else None  # counts: a tap


def flat_size(program: Program, name: str) -> int:
    """How many elements one sample of value ``name`` has (a flat LIF's size)."""
    return int(np.prod(item_shape(program.graph.nodes[name])))


def _chain(program: Program, start: str, end: str) -> list[str]:
    """The nodes after ``start`` up to ``end`` (moves), in order."""
    out: list[str] = []
    name = end
    while name != start:
        out.append(name)
        name = program.graph.nodes[name].inputs[0]
    return out[::-1]


def _own_processes(program: Program, latency: dict[str, int], taps: list[str]
                   ) -> list[OpProcess]:
    """A process per pooling or product op, fed by the neurons (or processes) whose
    outputs reach its inputs through moves."""
    out = []
    need = _feeds_a_neuron(program, taps)
    for n in program.graph:
        if not _own(program, n) or n.name not in need:
            continue
        sources, nodes = [], []
        for i in n.inputs:
            src, _ = _source(program, i)
            sources.append(src)
            nodes += [m for m in _chain(program, src, i) if m not in nodes]
        arrive = max(latency[i] for i in n.inputs)
        waits = [arrive - latency[i] for i in n.inputs] + [0]
        out.append(OpProcess(n.name, sources, [*nodes, n.name], latency[n.name] > arrive,
                             flat_size(program, n.name), in_delays=(waits[0], waits[1])))
    return out


def _exp0(cw: Any) -> Any:
    """The op's kernel without its exponent (Lava's Dense applies the exponent itself)."""
    from dataclasses import replace

    return replace(cw, weight_exp=0)
