"""The connected Lava 0.10.0 processes of a plan (:mod:`.lowering`), for one sample.

LIFs with the quantizer's parameters, ``Dense``/``DelayDense`` for composed
connections, Lava's ``Conv`` for convs (ports reshaped between the flat LIFs and
Conv's (W, H, C)), ``GradedVec`` relays with forwarding ``Sparse`` synapses for
the lowering's relays and splits' joins, snncc's own process
(:mod:`.procs.snncc_op`) for pooling, products, sums of spikes and time masks,
RingBuffers for the input spikes and the host's encoded currents, and a sink
per LIF.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from snncc.backends.acsim.program import Program
from snncc.backends.lava.available import require_lava
from snncc.backends.lava.lowering import LavaPlan, OpProcess, flat_size, plan
from snncc.ir.graph import Node
from snncc.passes.quantize import Cat, item_shape


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
    # the readout's accumulators by node: a RingBuffer recording each one's running sum
    taps: dict[str, Any] = field(default_factory=dict)

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


def build(program: Program, sample: np.ndarray, aligned: bool = False,
          p: LavaPlan | None = None) -> LavaNetwork:
    """The Lava processes of ``program`` (connected, not running) for one sample
    ``[T, *input item]``, to run for T + depth steps. ``aligned``: each LIF's bias is
    held at 0 until its first input arrives (``bias_on`` says when to set it;
    :meth:`LavaNetwork.run` does), so every layer computes, in its window of T steps,
    what the time-aligned model computes; else (the default, for a pipeline that runs
    all steps at once) the bias runs from step 0, as on a chip that starts all layers
    together: acsim's Lava-timed mode. ``p``: the program's plan, if already made (it
    is the same for every sample)."""
    require_lava()
    from snncc.backends.lava.chain import _import_lava_runtime

    _import_lava_runtime()
    from lava.proc.conv.process import Conv
    from lava.proc.dense.process import DelayDense, Dense
    from lava.proc.graded.process import GradedVec
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF

    from snncc.backends.lava.procs.snncc_op import SnnccOp

    p = plan(program) if p is None else p
    qg = program.qg
    T = sample.shape[0]
    steps = T + p.steps_extra
    x = np.zeros((steps, *sample.shape[1:]), dtype=np.float32)
    x[:T] = sample
    latency = p.latency
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
        sizes = [flat_size(program, src) for src in op.sources] + [1]
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

    taps = {name: SnnccOp(in_sizes=(n, 1), out_size=n, delayed=False,
                          fn=_accumulate(p.tap_starts[name] if aligned else 0,
                                         T if aligned else steps))
            for name, n in p.taps.items()}

    def inport(name: str) -> Any:
        return relays[name].a_in if name in relays else taps[name].in0 if name in taps \
            else lifs[name].a_in

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
                flat = _forward(held.s_out, _ones(held.s_out.shape[0]), c.delay - 1)
            flat.connect(inport(c.target))
            continue
        if c.forward is not None:  # a relay's (or join's) payloads, forwarded: ones
            _forward(port(c.source), c.forward, c.delay, c.weight_exp).connect(inport(c.target))
            continue
        kw = {"weights": c.weights, "weight_exp": int(c.weight_exp), "num_message_bits": bits}
        syn = DelayDense(delays=int(c.delay), **kw) if c.delay else Dense(**kw)
        port(c.source).connect(syn.s_in)
        syn.a_out.connect(inport(c.target))
    sinks = {}
    for name, lif in lifs.items():
        sinks[name] = Sink(shape=lif.s_out.shape, buffer=steps)
        lif.s_out.connect(sinks[name].a_in)
    tap_sinks = {}
    for name, acc in taps.items():
        tap_sinks[name] = Sink(shape=acc.out.shape, buffer=steps)
        acc.out.connect(tap_sinks[name].a_in)
    starts = {**{n: latency[n] for n in lifs}, **p.tap_starts}
    return LavaNetwork(steps, sources, lifs, sinks, starts,
                       sorted(bias_on, key=lambda b: b[0]), tap_sinks)


def _accumulate(start: int, steps: int) -> Callable[[list[np.ndarray], int], np.ndarray]:
    """A readout accumulator's step: non-spiking neurons that add what they receive on
    the steps ``start .. start + steps - 1`` (an aligned run's window; all of a Lava-timed
    run) and hold the running sum, which the host reads at the end."""
    total: np.ndarray | None = None

    def step(xs: list[np.ndarray], t: int) -> np.ndarray:
        nonlocal total
        if total is None:
            total = np.zeros(xs[0].shape, dtype=np.int64)
        if start <= t < start + steps:
            total += xs[0]
        return total.astype(np.int32)

    return step


def _ones(n: int) -> Any:
    """The identity of ``n`` elements as a sparse matrix."""
    from scipy.sparse import identity

    return identity(n, dtype=np.int32, format="csr")


def _forward(source: Any, matrix: Any, delay: int, weight_exp: int = 0) -> Any:
    """Lava ``Sparse`` synapses of the ones in ``matrix`` [readers, sources] forwarding
    graded payloads from port ``source``, shifted by ``weight_exp``, ``delay`` steps
    beyond their own one; the out port to connect. A delay is a chain of GradedVec
    relays and identity synapses, a step each: Lava's DelaySparse builds a dense delay
    matrix per synapse (gigabytes at a CIFAR residual stream's 24,576 elements)."""
    from lava.proc.graded.process import GradedVec
    from lava.proc.sparse.process import Sparse

    syn = Sparse(weights=matrix, weight_exp=int(weight_exp), num_message_bits=24)
    source.connect(syn.s_in)
    for _ in range(delay):
        held = GradedVec(shape=(matrix.shape[0],), vth=0)
        syn.a_out.connect(held.a_in)
        syn = Sparse(weights=_ones(matrix.shape[0]), num_message_bits=24)
        held.s_out.connect(syn.s_in)
    return syn.a_out


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
