"""A compiled model as a network of real Lava processes, on Lava's clock.

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

Two clocks. Lava's LIF adds its bias on every step, also on the steps before its
first input arrives (a layer at depth d gets d steps of bias ahead of its
input), which the trained, time-aligned model never does. An *aligned* run
(``run_lava``'s default) holds each LIF's bias at 0 and switches it on at the
step its first input arrives, pausing the runtime there; every layer then
computes, in its window of T steps, exactly acsim's default run (the digits
models' predictions are the trained model's). Built with ``aligned=False`` the
network runs from step 0 as one block: acsim's ``lava_timed`` mode.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from snncc.backends.acsim.datapath import chip_weight_op
from snncc.backends.acsim.fixedpoint import torch_conv_params_to_lava, torch_conv_weight_to_lava
from snncc.backends.acsim.program import Program
from snncc.backends.lava.available import require_lava
from snncc.diagnostics import SnnccError
from snncc.ir.graph import Node
from snncc.ir.ops.weights import ConvAttrs
from snncc.lower import lava_timing
from snncc.passes.quantize import (
    STRUCTURAL_OPS,
    WEIGHT_OPS,
    Cat,
    item_shape,
    item_structural,
    lead_axes,
)

OWN_PROCESS = {"maxpool2d", "matmul", "time_mask"}  # run by snncc's own process (procs/)
SUPPORTED = {"input", "add", *WEIGHT_OPS, *STRUCTURAL_OPS, *OWN_PROCESS}


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
    # a relay's or a split's join's graded payloads into a reader: for each reading
    # element, the source element it forwards (a Sparse of ones through the moves)
    gather: np.ndarray | None = None


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
    # the host's encoded currents each LIF (or relay) reads: (encoding op, moves to the LIF's current,
    # steps of delay to meet the other terms of its sum)
    encoded: list[tuple[str, str, list[Callable[[np.ndarray], np.ndarray]], int]] = \
        field(default_factory=list)
    steps_extra: int = 0  # depth: the run needs T + depth steps


def _own(program: Program, node: Node) -> bool:
    """Ops snncc's own process computes: pooling, products, and sums of spikes (counts)."""
    return node.op in OWN_PROCESS or node.op == "add" and \
        program.qg.categories[node.name] == Cat.COUNT


def _feeds_a_neuron(program: Program) -> set[str]:
    """Nodes on some path into a neuron's input: what the Lava network must compute. The
    rest (the readout after the last neurons) is computed from Lava's spikes."""
    graph = program.graph
    need: set[str] = set()
    stack = [n.inputs[0] for n in graph if n.opdef.is_neuron]
    while stack:
        name = stack.pop()
        if name not in need:
            need.add(name)
            node = graph.nodes[name]
            if not node.opdef.is_neuron:
                stack += node.inputs
    return need


def _unsupported(program: Program) -> list[Node]:
    qg = program.qg
    need = _feeds_a_neuron(program)
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
    bad = _unsupported(program)
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
    latency, delays = lava_timing(qg, program.lowered)
    need = _feeds_a_neuron(program)
    relays = [r for r in program.lowered.relays if r in need]
    out = LavaPlan([n.name for n in qg.graph if n.opdef.is_neuron],
                   ops=_own_processes(program, latency, delays),
                   relays={r: _size(program, r) for r in relays},
                   steps_extra=max(latency.values(), default=0))
    # every sink of currents: a LIF (the terms of its input), a relay (of its inputs)
    sinks = []
    for lif in out.neurons:
        current = qg.graph.nodes[lif].inputs[0]
        sinks.append((lif, current, [current], latency[current]))
    sinks += [(r, r, list(qg.graph.nodes[r].inputs), latency[r] - 1) for r in relays]
    for sink, current, roots, arrive in sinks:
        for root in roots:
            for op, moves in _terms(program, root, [], set(relays)):
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
            out.joins[op] = _size(program, op)
            src, before = _source(program, op_node.inputs[0])
            for g, channels in enumerate(program.lowered.splits[op].channels):
                out.connections.append(_synapse(program, op_node, src, op, before, [], 0,
                                                program.parts[op][g], channels))
        e = program.weights[op].weight_exp if op in out.joins else 0
        out.connections.append(Connection(op, sink, None, e, delay, True,
                                          gather=_gather(program, op, moves)))
        return
    if _own(program, op_node) or op_node.opdef.is_neuron:
        # spikes or counts into the sink (a shortcut), through moves and sums
        out.ops.append(OpProcess(f"{op}->{sink}", [op], [], False, _size(program, current),
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


def _gather(program: Program, name: str, moves: list[Callable[[np.ndarray], np.ndarray]]
            ) -> np.ndarray:
    """For each element of what ``moves`` make of value ``name``, the element of
    ``name`` it is (moves relabel: each element once)."""
    node = program.graph.nodes[name]
    index = np.arange(_size(program, name)).reshape(1, *([1] * (lead_axes(node) - 1)),
                                                    *item_shape(node))
    for f in moves:
        index = f(index)
    return np.asarray(index).reshape(-1)


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
    return program.neurons[lif].shift


def _size(program: Program, name: str) -> int:
    return int(np.prod(item_shape(program.graph.nodes[name])))


def _chain(program: Program, start: str, end: str) -> list[str]:
    """The nodes after ``start`` up to ``end`` (moves), in order."""
    out: list[str] = []
    name = end
    while name != start:
        out.append(name)
        name = program.graph.nodes[name].inputs[0]
    return out[::-1]


def _own_processes(program: Program, latency: dict[str, int],
                   delays: dict[str, dict[str, int]]) -> list[OpProcess]:
    """A process per pooling or product op, fed by the neurons (or processes) whose
    outputs reach its inputs through moves."""
    out = []
    need = _feeds_a_neuron(program)
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
                             _size(program, n.name), in_delays=(waits[0], waits[1])))
    return out


def _exp0(cw: Any) -> Any:
    """The op's kernel without its exponent (Lava's Dense applies the exponent itself)."""
    from dataclasses import replace

    return replace(cw, weight_exp=0)


@dataclass
class LavaRun:
    """Every neuron layer's spikes ``[T + depth, *item]`` of one sample, in Lava, and the
    step each layer's window of the model's T steps starts at."""

    spikes: dict[str, np.ndarray]
    steps: int
    starts: dict[str, int] = field(default_factory=dict)

    def windows(self, T: int) -> dict[str, np.ndarray]:
        """Each layer's spikes in its own window ``[T, *item]``: on an aligned run, what
        the time-aligned model computes at steps 0..T-1."""
        return {k: v[self.starts[k]:self.starts[k] + T] for k, v in self.spikes.items()}


@dataclass
class LavaNetwork:
    """The connected Lava processes of a compiled model, for one sample of ``steps`` steps.

    ``sources``: the RingBuffers that feed it (the input spikes, the host's encoded
    currents); ``lifs``: every neuron layer's LIF by IR node (their ``s_out`` ports
    are the outputs); ``sinks``: a RingBuffer recording each LIF's spikes.
    """

    steps: int
    sources: list[Any]
    lifs: dict[str, Any]
    sinks: dict[str, Any]
    # the step each LIF's first input arrives (its latency on Lava's clock): its window
    # of the model's T steps starts there
    starts: dict[str, int] = field(default_factory=dict)
    # aligned runs: (step, LIF, bias) -- the bias each LIF is given when its first input
    # arrives (it holds 0 before, so no bias accumulates ahead of the input)
    bias_on: list[tuple[int, Any, np.ndarray]] = field(default_factory=list)

    @property
    def root(self) -> Any:
        """The process to call ``run``/``stop`` on (any one runs the whole network)."""
        return self.sources[0] if self.sources else next(iter(self.lifs.values()))

    def run(self, run_cfg: Any, after_chunk: Callable[[int], None] | None = None) -> None:
        """Run all ``steps``, pausing where ``bias_on`` switches a layer's bias on (an
        aligned network); with ``after_chunk`` (called with the step reached, e.g. to
        check a deadline) one step at a time. The caller stops the runtime."""
        from lava.magma.core.run_conditions import RunSteps

        stops = {s for s, _, _ in self.bias_on if s < self.steps} | {self.steps}
        if after_chunk is not None:
            stops |= set(range(1, self.steps))
        done = 0
        for stop in sorted(stops):
            for _, lif, bias in (b for b in self.bias_on if b[0] == done):
                lif.bias_mant.set(bias)
            self.root.run(condition=RunSteps(num_steps=stop - done), run_cfg=run_cfg)
            done = stop
            if after_chunk is not None:
                after_chunk(done)


def build(program: Program, sample: np.ndarray, aligned: bool = False) -> LavaNetwork:
    """The Lava processes of ``program`` (connected, not running) for one sample
    ``[T, *input item]``, to run for T + depth steps. ``aligned``: each LIF's bias is
    held at 0 until its first input arrives (``bias_on`` says when to set it;
    :meth:`LavaNetwork.run` does), so every layer computes, in its window of T steps,
    what the time-aligned model computes; else (the default, for a pipeline that runs
    all steps at once) the bias runs from step 0, as on a chip that starts all layers
    together: acsim's Lava-timed mode."""
    require_lava()
    from snncc.backends.lava.chain import _import_lava_runtime

    _import_lava_runtime()
    from lava.proc.conv.process import Conv
    from lava.proc.dense.process import DelayDense, Dense
    from lava.proc.graded.process import GradedVec
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF
    from lava.proc.sparse.process import DelaySparse, Sparse

    from snncc.backends.lava.procs.snncc_op import SnnccOp

    p = plan(program)
    qg = program.qg
    T = sample.shape[0]
    steps = T + p.steps_extra
    x = np.zeros((steps, *sample.shape[1:]), dtype=np.float32)
    x[:T] = sample
    latency, _ = lava_timing(qg, program.lowered)
    lifs: dict[str, Any] = {}
    bias_on: list[tuple[int, Any, np.ndarray]] = []
    for name in p.neurons:
        nq = qg.neurons[name]
        bias = np.asarray(nq.bias_mant).reshape(-1)
        late = aligned and latency[name] > 0 and bool(bias.any())
        lifs[name] = LIF(shape=(int(np.prod(item_shape(qg.graph.nodes[name]))),), du=nq.du,
                         dv=nq.dv, vth=nq.vth, bias_mant=np.zeros_like(bias) if late else bias,
                         bias_exp=nq.bias_exp, name=name)
        if late:
            bias_on.append((latency[name], lifs[name], bias))
    sources: list[Any] = []
    inp = qg.graph.inputs[0]
    spikes_in: Any = None
    if qg.categories[inp] == Cat.SPIKE:
        spikes_in = Source(data=np.moveaxis(x.reshape(steps, -1).astype(np.int32), 0, -1))
        sources.append(spikes_in)
    own: dict[str, Any] = {}
    for op in p.ops:
        sizes = [_size(program, src) for src in op.sources] + [1]
        own[op.name] = SnnccOp(in_sizes=(sizes[0], sizes[1]), out_size=op.out_size,
                               fn=_op_function(program, op, latency), delayed=op.delayed,
                               in_delays=op.in_delays)

    import warnings

    from scipy.sparse import SparseEfficiencyWarning

    # Lava's Sparse clips its csr weights in place on the first step (its own code)
    warnings.filterwarnings("ignore", category=SparseEfficiencyWarning)
    relays = {name: GradedVec(shape=(n,), vth=0)
              for name, n in {**p.relays, **p.joins}.items()}  # forward every nonzero sum

    def port(name: str) -> Any:
        return spikes_in.s_out if name == inp else own[name].out if name in own \
            else relays[name].s_out if name in relays else lifs[name].s_out

    def inport(name: str) -> Any:
        return relays[name].a_in if name in relays else lifs[name].a_in

    for lif, enc, moves, delay in p.encoded:  # the host's encoding, injected as current
        current = encode_on_host(program, enc, x)[:, np.newaxis]
        for f in moves:
            current = f(current)
        held = np.zeros_like(current)
        held[delay:] = current[:steps - delay]
        src = Source(data=np.moveaxis(held.reshape(steps, -1).astype(np.int32), 0, -1))
        src.s_out.connect(inport(lif))
        sources.append(src)
    for op in p.ops:
        for k, src in enumerate(op.sources):
            port(src).connect(own[op.name].in0 if k == 0 else own[op.name].in1)
        if op.target is not None:
            own[op.name].out.connect(inport(op.target))
    for c in p.connections:
        bits = 24 if c.graded else 0
        if c.conv is not None:  # ports: flat (C, H, W) <-> Lava's (W, H, C)
            conv = Conv(**c.conv.kwargs, num_message_bits=bits)
            axes = None if c.conv.channels_last else (2, 1, 0)
            into, out_of = port(c.source).reshape(c.conv.in_item), conv.a_out
            if axes is not None:
                into, out_of = into.transpose(axes), out_of.transpose(axes)
            into.connect(conv.s_in)
            flat = out_of.reshape((int(np.prod(c.conv.out_item)),))
            if c.delay:  # Conv -> relay -> identity synapses of delay - 1 (their own step + rest)
                held = GradedVec(shape=flat.shape, vth=0)
                flat.connect(held.a_in)
                flat = _identity(held.s_out.shape[0], c.delay - 1, Sparse, DelaySparse)
                held.s_out.connect(flat.s_in)
                flat = flat.a_out
            flat.connect(inport(c.target))
            continue
        if c.gather is not None:  # a relay's (or join's) payloads, forwarded: ones
            syn = _identity(p.relays.get(c.source) or p.joins[c.source], c.delay, Sparse,
                            DelaySparse, c.gather, c.weight_exp)
        else:
            kw = {"weights": c.weights, "weight_exp": int(c.weight_exp), "num_message_bits": bits}
            syn = DelayDense(delays=int(c.delay), **kw) if c.delay else Dense(**kw)
        port(c.source).connect(syn.s_in)
        syn.a_out.connect(inport(c.target))
    sinks = {}
    for name, lif in lifs.items():
        sinks[name] = Sink(shape=lif.s_out.shape, buffer=steps)
        lif.s_out.connect(sinks[name].a_in)
    return LavaNetwork(steps, sources, lifs, sinks, {n: latency[n] for n in lifs},
                       sorted(bias_on, key=lambda b: b[0]))


def _identity(n_in: int, delay: int, sparse: Any, delay_sparse: Any,
              gather: np.ndarray | None = None, weight_exp: int = 0) -> Any:
    """Lava synapses of weight 1 forwarding graded payloads (element ``gather[i]`` to
    reader ``i``; all of them in order without ``gather``), ``delay`` steps beyond
    their own one, then shifted by ``weight_exp``."""
    from scipy.sparse import csr_matrix

    index = np.arange(n_in) if gather is None else gather
    ones = csr_matrix((np.ones(index.size, np.int32), (np.arange(index.size), index)),
                      shape=(index.size, n_in))
    kw: dict[str, Any] = {"weights": ones, "weight_exp": int(weight_exp), "num_message_bits": 24}
    return delay_sparse(delays=int(delay), **kw) if delay else sparse(**kw)


def _op_function(program: Program, op: OpProcess, latency: dict[str, int]
                 ) -> Callable[[list[np.ndarray], int], np.ndarray]:
    """What one of snncc's own processes computes per step: its sources' flat vectors as
    acsim's arrays ([1 step, 1 sample, *item]), acsim's own evaluation of its nodes, and,
    into a neuron reading counts, the neuron's input shift (Lava's LIF has none)."""
    import copy

    from snncc.backends.acsim.simulator import _evaluate, _Run

    timed = copy.copy(program)
    timed.schedule = {}
    qg = program.qg

    def fn(xs: list[np.ndarray], t: int) -> np.ndarray:
        run = _Run(steps=1)
        for src, flat in zip(op.sources, xs):
            node = qg.graph.nodes[src]
            value = np.asarray(flat).reshape(1, 1, *item_shape(node))
            run.values[src] = value != 0 if qg.categories[src] == Cat.SPIKE else value
        for name in op.nodes:
            node = qg.graph.nodes[name]
            if node.op == "time_mask":  # step t of Lava's clock is the model's t - latency
                mask = node.attrs.mask  # type: ignore[attr-defined]
                k = t - latency[name]
                keep = 0 <= k < len(mask) and bool(mask[k])
                x = run.values[node.inputs[0]]
                run.values[name] = x if keep else np.zeros_like(x)
                continue
            run.values[name] = (_product_in_child(qg, node, run) if node.op == "matmul"
                                else _evaluate(timed, node, run))
        result = np.asarray(run.values[op.nodes[-1] if op.nodes else op.sources[0]], np.int32)
        for move in op.moves:
            result = move(result)
        if op.shift is not None:
            result = np.left_shift(result, op.shift)
        return result.reshape(-1)

    return fn


def _product_in_child(qg: Any, node: Node, run: Any) -> np.ndarray:
    """A spike product in a Lava worker: acsim's products run numba's parallel kernels,
    which GNU OpenMP refuses in a forked process, so the worker computes the same
    integers (AND-count, select-sum) as an integer matmul of 0/1 spikes."""
    a, b = (np.asarray(run.values[i]) for i in node.inputs)
    ca, cb = (qg.categories[i] for i in node.inputs)
    a = (a != 0) if ca == Cat.SPIKE else a
    b = (b != 0) if cb == Cat.SPIKE else b
    return np.matmul(a.astype(np.int64), b.astype(np.int64)).astype(np.int32)


def encode_on_host(program: Program, op: str, x: np.ndarray) -> np.ndarray:
    """The encoding layer's integer current ``[steps, *item]`` for one sample, computed
    on the host exactly as acsim does (float MACs rounded to the domain's units)."""
    from snncc.backends.acsim.simulator import _encode, _Run

    run = _Run(steps=x.shape[0])
    run.values[program.graph.inputs[0]] = x[:, np.newaxis]
    return np.asarray(_encode(program, program.graph.nodes[op], run))[:, 0]


def run_lava(program: Program, sample: np.ndarray, timeout_s: float | None = None,
             aligned: bool = True) -> LavaRun:
    """Run one sample ``[T, *input item]`` through the Lava network of ``program`` in
    ``Loihi2SimCfg(select_tag='fixed_pt')`` for T + depth steps (pausing where a layer's
    bias is switched on, for an ``aligned`` run); the runtime is always stopped (on
    success, on an exception, on SIGINT/SIGTERM, and at the first step boundary after
    ``timeout_s`` seconds, which is SNN-LAVA003)."""
    from lava.magma.core.run_configs import Loihi2SimCfg

    from snncc.backends.lava.chain import _kill_runtime, _Signalled
    from snncc.backends.lava.chain import _signals_stop_the_run as signals_stop

    net = build(program, sample, aligned=aligned)
    qg = program.qg
    deadline = None if timeout_s is None else time.monotonic() + timeout_s

    def check(done: int) -> None:
        # between steps: a signal timer could fire inside Lava's fork handlers, where
        # Python drops exceptions
        if deadline is not None and time.monotonic() > deadline:
            raise SnnccError(
                "SNN-LAVA003", f"the Lava run exceeded its time limit of {timeout_s:g} s "
                f"(at step {done} of {net.steps}); it was stopped and its processes "
                "and shared memory freed",
                hint="give a larger --timeout, fewer samples, or run on --backend acsim")

    with signals_stop():
        try:
            net.run(Loihi2SimCfg(select_tag="fixed_pt"), check if deadline is not None else None)
            out = {name: np.moveaxis(np.asarray(s.data.get()), -1, 0).reshape(
                net.steps, *item_shape(qg.graph.nodes[name])) != 0 for name, s in net.sinks.items()}
        except _Signalled:
            _kill_runtime(net.root)
            raise
        finally:
            net.root.stop()
    return LavaRun(out, net.steps, net.starts)


@dataclass
class LavaPredictions:
    """Per sample the model's outputs from Lava's spikes, and every layer's spikes."""

    outputs: np.ndarray  # [B, ...] the graph's first output (host floats)
    spikes: list[dict[str, np.ndarray]]  # per sample, per neuron layer [T + depth, *item]
    starts: dict[str, int] = field(default_factory=dict)  # each layer's window start

    def windows(self, T: int) -> list[dict[str, np.ndarray]]:
        """Per sample, each layer's spikes in its window of the model's T steps."""
        return [LavaRun(s, 0, self.starts).windows(T) for s in self.spikes]

    @property
    def predictions(self) -> np.ndarray:
        return self.outputs.reshape(self.outputs.shape[0], -1).argmax(axis=-1)


def predict(program: Program, inputs: np.ndarray,
            progress: Callable[[int, int], None] | None = None,
            timeout_s: float | None = None, aligned: bool = True) -> LavaPredictions:
    """Run each sample of ``inputs`` ``[T, B, ...]`` in Lava; the readout (host ops and
    readout accumulators) is computed from Lava's spikes by acsim's integer datapath,
    since no Lava process of snncc's own computes it yet. ``aligned`` (the default):
    biases start with each layer's first input and the readout reads every layer's
    window, so the predictions are the time-aligned model's (acsim's default run);
    else the whole network runs from step 0 and the readout is on Lava's clock
    (acsim's ``lava_timed`` run). ``spikes`` holds the full ``T + depth`` steps."""
    from snncc.backends.acsim.simulator import run_batch

    outs, spikes = [], []
    T, total = inputs.shape[0], inputs.shape[1]
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    for b in range(total):
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise SnnccError("SNN-LAVA003", f"the Lava run exceeded its time limit of "
                             f"{timeout_s:g} s after {b} of {total} samples",
                             hint="give a larger --timeout, fewer samples, or run on "
                                  "--backend acsim")
        lava = run_lava(program, inputs[:, b], timeout_s=left, aligned=aligned)
        seen = lava.windows(T) if aligned else lava.spikes
        given = {k: v[:, np.newaxis] for k, v in seen.items()}
        _, (out, *_) = run_batch(program, inputs[:, b:b + 1], lava_timed=not aligned,
                                 given_spikes=given)
        outs.append(np.asarray(out).reshape(1, -1))
        spikes.append(lava.spikes)
        if progress is not None:
            progress(b + 1, total)
    return LavaPredictions(np.concatenate(outs), spikes, lava.starts if total else {})


WHERE = {
    "lif": "Loihi 2 neurocore (LIF neurons)",
    "dense": "Loihi 2 neurocore (synapses)",
    "maxpool2d": "Loihi 2 neurocore (an OR: unit synapses into a threshold-0 neuron)",
    "add": "Loihi 2 neurocore (graded relay neurons summing spikes into counts)",
    "matmul": "programmable neurons (Loihi 2 microcode) or the embedded CPUs: a product of "
              "two spike tensors is not a synapse",
    "time_mask": "programmable neurons or the host's schedule: a per-step enable",
    "relabel": "the reading neuron's input (a move and a shift of counts)",
    "relay": "Loihi 2 neurocore (graded relay neurons forwarding a residual stream)",
    "join": "Loihi 2 neurocore (partial-sum neurons joining a split's parts)",
}


GRADED = "graded 24-bit (non-spike)"


def placement(program: Program, p: LavaPlan | None = None,
              resources: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Per Lava process of the network: what it is, what on Loihi 2 would run it
    (standard neurocores, or programmable neurons / embedded CPUs for what is not a
    synapse or a LIF), the traffic it carries (binary spikes, or graded multi-bit
    payloads: non-spike traffic), and, given the target's ``resources``
    (:func:`snncc.report.resources.resources`), the cores of its chip layer and the
    fullest one's use against the per-core limits (a synapse is stored with the
    neurons that read it)."""
    p = plan(program) if p is None else p
    qg = program.qg
    cores: dict[str, list[dict[str, Any]]] = {}
    for c in (resources or {}).get("cores", []):
        cores.setdefault(c["layer"], []).append(c)

    def on_cores(*layers: str) -> dict[str, Any]:
        mine = [c for layer in layers for c in cores.get(layer, [])]
        if not mine:
            return {}
        return {"cores": len(mine), "core_neurons": max(c["neurons"] for c in mine),
                "core_memory_bytes": max(c["memory_bytes"] for c in mine),
                "core_fan_in": max(c["fan_in"] for c in mine)}

    def traffic(name: str) -> str:
        return "spikes" if qg.categories[name] == Cat.SPIKE else GRADED

    out: list[dict[str, Any]] = []
    for name in p.neurons:
        out.append({"process": f"LIF %{name}", "kind": "lif", "where": WHERE["lif"],
                    "neurons": _size(program, name), "traffic": "spikes", **on_cores(name)})
    for c in p.connections:
        kind = "Conv" if c.conv else "DelayDense" if c.delay else "Dense"
        stored = np.asarray(c.conv.kwargs["weight"] if c.conv else c.weights)
        out.append({"process": f"{kind} %{c.source} -> %{c.target}", "kind": "dense",
                    "where": WHERE["dense"], "weights": int(np.count_nonzero(stored)),
                    "graded": c.graded, "traffic": GRADED if c.graded else "spikes",
                    **on_cores(c.target)})
    for name, n in {**p.relays, **p.joins}.items():
        kind = "relay" if name in p.relays else "join"
        parts = [layer.name for layer in program.lowered.layers if layer.of_op == name]
        out.append({"process": f"GradedVec %{name}", "kind": kind, "where": WHERE[kind],
                    "neurons": n, "traffic": GRADED,
                    **on_cores(*(parts if kind == "join" else [name]))})
    for op in p.ops:
        op_kind = "relabel" if op.target is not None else program.graph.nodes[op.name].op
        out.append({"process": f"SnnccOp %{op.name}", "kind": op_kind, "where": WHERE[op_kind],
                    "neurons": op.out_size,
                    "traffic": traffic(op.sources[0] if op.target is not None else op.name),
                    **on_cores(op.name)})
    return out
