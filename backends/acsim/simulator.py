"""acsim: run a quantized graph with integer adds, shifts, compares and selects.

Why a graph runner and not a chain of Lava processes: the models snncc
compiles (Spikingformer) have residual sums, attention products and pooling,
which Lava's processes do not offer, and Lava runs one OS process per layer.
acsim executes the whole quantized graph, vectorised over the batch and over
whole layers, looping over time only inside neurons.

Semantics, op by op (the integer kernels come from :mod:`.fixedpoint`, which
is bit-exact to Lava 0.10.0 ``fixed_pt``):

- weight op fed binary spikes: Lava's Dense (``dense_accumulate``; a kernel-1
  ``conv1d`` is a Dense per token) or Conv (``conv_accumulate``, 24-bit wrap),
  then the op's ``weight_exp`` as a shift of the sum (Lava's Dense does this;
  Lava's Conv ignores its ``weight_exp``, so a Conv with ``e != 0`` is acsim's
  extension, as on Loihi, where the exponent belongs to the synapse format).
- weight op fed counts: graded spikes, shift-and-add (``*_graded``).
- neuron: Lava's LIF step (``kernels.lif_update``: truncating leak, 24-bit current
  wrap, clip, strict ``>``, reset to 0) with the quantizer's du, dv, vth, bias.
- ``q @ k^T`` of spikes: AND, then count (a popcount per output).
- counts @ spikes: select the count where the spike is 1, then sum.
- max-pooling of spikes: OR over the window; of counts: max (compare-select); the
  same for adaptive max-pooling (PyTorch's bins) and ``amax``.
- ``cat``, ``slice``, ``pad`` (with 0; spikes and counts also with a count),
  nearest upsampling and adaptive pools with one input per bin: moves and gathers
  (:mod:`snncc.passes.quantize.moves`); a current's pending bias moves with it.
- residual ``add``/``sub``: integer add of values in one current domain; counts
  entering a domain are shifted left by its ``shift``.
- ``time_mask``: select (a masked step passes zeros).
- ``sum``: integer adds (over tokens; over time for the readout).
- the encoding layer (a weight op fed the analog input) runs on the host as
  float MACs, rounded to the domain's integer units; the readout (a weight op
  fed currents) runs on the host in float, from the dequantized integer sums.

Timing: layers are *time-aligned* here -- a spike at step t reaches the next
neuron at step t. Lava's Dense and Conv send last step's buffer, so each
synapse layer of a chain adds one step of delay: layer k of a Lava chain shows
at step t + k what acsim shows at step t (for T + depth steps with zero input
after T). That is a pure shift for a chain, but for the bias: Lava's LIF also
adds its bias on the step before its first input arrives, which acsim's
aligned layers do not have (``tests/test_acsim_simulator.py`` cancels it with
an initial ``v = -bias * 4096 / (4096 - dv)`` and then finds every
Lava-expressible layer of the digits model identical to Lava, spikes and
voltages). Graphs with residual paths of different depth would need matching
delays on Lava, which acsim's aligned semantics presuppose.

The prune-timesteps schedule (``graph.meta["schedule"]``) is honoured: a
skipped step of a weight op or product does no work and holds zeros (its bias
is the reading neuron's), a skipped neuron step neither updates nor spikes.

The kernels are prepared once in :mod:`.program`; the integer functions the
run calls on chip are in :mod:`.datapath`; the run's events become per-layer
counts in :mod:`.hardware`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from numpy.typing import NDArray

from snncc.backends.acsim.counts import SimCounts
from snncc.backends.acsim.datapath import (
    adaptive_max_or,
    add_sub,
    chip_weight_op,
    graded_payload,
    integer_sum,
    join_parts,
    lif_layer,
    matmul_and_count,
    matmul_select_sum,
    max_reduce,
    maxpool_or,
    mul_chip,
    rf_counts,
    time_mask,
    to_domain,
)
from snncc.backends.acsim.hardware import count_batch, merge_counts, per_step
from snncc.backends.acsim.kernels import I32
from snncc.backends.acsim.program import Program
from snncc.diagnostics import SnnccError
from snncc.ir.graph import Node
from snncc.ir.ops.elementwise import ScalarAttrs
from snncc.ir.ops.pool import PoolAttrs
from snncc.ir.ops.reduce import ReduceAttrs
from snncc.ir.ops.timemask import TimeMaskAttrs
from snncc.ir.types import Layout
from snncc.lower import lava_timing
from snncc.passes.quantize import (
    STRUCTURAL_OPS,
    WEIGHT_OPS,
    Cat,
    QuantizedGraph,
    item_shape,
    item_structural,
    lead_axes,
    sum_axes,
)
from snncc.passes.quantize.moves import NEW_OPS, adaptive_taps, apply_move, is_move, max_axes


@dataclass
class SimResult:
    """What one acsim run gives: the graph's outputs (host floats), the predicted
    class per sample, every neuron layer's spikes ``[T, B, *item]`` and the counts."""

    outputs: list[np.ndarray]
    spikes: dict[str, NDArray[np.bool_]]
    counts: SimCounts
    wraps: int = 0  # inputs that would wrap Lava's 24-bit current (0 for a sound quantization)
    voltages: dict[str, I32] = field(default_factory=dict)  # v [T, B, *item], if recorded
    time_first: bool = False  # the first output is [T, B, ...] (a head applied per step)

    @property
    def predictions(self) -> NDArray[np.int64]:
        return class_predictions(self.outputs[0], self.time_first)


def class_predictions(output: np.ndarray, time_first: bool) -> NDArray[np.int64]:
    """The predicted class per sample: the argmax of the output, summed over time first
    when it is per step (SpikingJelly's zoo models return ``[T, B, classes]``, which
    their users average over T)."""
    x = np.asarray(output)
    x = x.sum(axis=0) if time_first else x
    return x.reshape(x.shape[0], -1).argmax(axis=-1)


@dataclass
class _Run:
    """Values and event counts of one batch, filled in graph order."""

    values: dict[str, np.ndarray] = field(default_factory=dict)
    # Per CURRENT/COUNT value element: synaptic events that built it ([T, B, *item]).
    received: dict[str, np.ndarray] = field(default_factory=dict)
    op_sops: dict[str, NDArray[np.int64]] = field(default_factory=dict)
    macs: dict[str, int] = field(default_factory=dict)
    spikes: dict[str, NDArray[np.bool_]] = field(default_factory=dict)
    active: dict[str, np.ndarray] = field(default_factory=dict)
    record_voltage: bool = False
    voltages: dict[str, I32] = field(default_factory=dict)
    wraps: int = 0
    # Relay and partial-sum layers: per element, the events received and the graded
    # spikes sent ([T, B, *item]), by layer name.
    layer_received: dict[str, np.ndarray] = field(default_factory=dict)
    layer_sent: dict[str, np.ndarray] = field(default_factory=dict)
    steps: int = 0  # time steps of this run: T, or T + depth when Lava-timed
    latency: dict[str, int] = field(default_factory=dict)  # Lava-timed: steps to each node
    given_spikes: dict[str, np.ndarray] = field(default_factory=dict)  # neuron -> [T, B, *item]


def _steps_of(program: Program, node: Node) -> list[int] | None:
    steps = program.schedule.get(node.name)
    return None if steps is None or len(steps) == node.type.shape[0] else list(steps)


def _on_steps(steps: list[int] | None, fn: Callable[..., np.ndarray], *xs: np.ndarray) -> np.ndarray:
    """Apply a per-step function only on the scheduled steps; skipped steps hold zeros."""
    if steps is None:
        return fn(*xs)
    part = fn(*(x[steps] for x in xs))
    out = np.zeros((xs[0].shape[0], *part.shape[1:]), dtype=part.dtype)
    out[steps] = part
    return out


def _host_value(qg: QuantizedGraph, name: str, x: np.ndarray) -> torch.Tensor:
    """A value as the float model sees it: currents are dequantized, plus their bias."""
    if qg.categories[name] != Cat.CURRENT:
        return torch.from_numpy(np.asarray(x, dtype=np.float32))
    node = qg.graph.nodes[name]
    bias = qg.pending_bias[name][(np.newaxis,) * lead_axes(node)]
    return torch.from_numpy((x / qg.domain_scale(name) + bias).astype(np.float32))


def _host_op(program: Program, node: Node, run: _Run) -> np.ndarray:
    """A host op (encoding, readout) in float with the op's reference semantics."""
    qg = program.qg
    ins = [_host_value(qg, i, run.values[i]) for i in node.inputs]
    if node.op in STRUCTURAL_OPS:
        return item_structural(node, qg.graph.nodes[node.inputs[0]], ins[0].numpy())
    params = {k: torch.from_numpy(v) for k, v in node.params.items()}
    if node.op in WEIGHT_OPS:
        w = node.params["weight"]
        run.macs[node.name] = int(np.prod(ins[0].shape[:lead_axes(node)])) \
            * int(np.prod(item_shape(node))) * int(np.prod(w.shape[1:]))
    return node.opdef.evaluate(node.attrs, params, ins).numpy()


def _encode(program: Program, node: Node, run: _Run) -> np.ndarray:
    """The encoding layer: float MACs on the host, rounded to the domain's integer units
    (its bias stays pending and reaches the reading neuron as Lava's bias)."""
    params = {"weight": torch.from_numpy(node.params["weight"])}
    x = torch.from_numpy(np.asarray(run.values[node.inputs[0]], dtype=np.float32))
    y = node.opdef.evaluate(node.attrs, params, [x]).double().numpy()
    w = node.params["weight"]
    run.macs[node.name] = int(np.prod(y.shape)) * int(np.prod(w.shape[1:]))
    return np.rint(y * program.qg.domain_scale(node.name)).astype(np.int32)


def _weight_op(program: Program, node: Node, run: _Run) -> np.ndarray:
    if node.name in program.parts:
        return _split_op(program, node, run)
    cw = program.weights[node.name]
    x = run.values[node.inputs[0]]
    lead = x.shape[:lead_axes(node)]
    out_item = item_shape(node)
    steps = _steps_of(program, node)
    acc = _on_steps(steps, lambda v: chip_weight_op(cw, v, v.shape[:len(lead)], out_item), x)
    rf = _on_steps(steps, lambda v: rf_counts(cw, v, v.shape[:len(lead)], out_item), x)
    run.received[node.name] = rf
    run.op_sops[node.name] = per_step(rf, node.type.layout == Layout.TIME, run.steps,
                                       int(np.prod(out_item))).sum(axis=1)
    return acc


def _split_op(program: Program, node: Node, run: _Run) -> np.ndarray:
    """A weight op computed in parts over input-channel ranges (the lowering's split):
    each part's sum is sent as a graded spike, the reader joins them and applies the
    op's exponent once. Events: each part's receptive fields; the reader receives one
    graded spike per nonzero part."""
    split = program.lowered.splits[node.name]
    x = run.values[node.inputs[0]]
    n_lead = lead_axes(node)
    axis = x.ndim - 1 if node.op == "linear" else n_lead  # the input-channel axis
    out_item = item_shape(node)
    steps = _steps_of(program, node)
    parts, sops = [], np.zeros(run.steps, dtype=np.int64)
    joined = np.zeros((), dtype=np.int32)
    for g, (cw, (c0, c1)) in enumerate(zip(program.parts[node.name], split.channels)):
        xg = np.take(x, np.arange(c0, c1), axis=axis)
        p = _on_steps(steps, lambda v, w=cw: chip_weight_op(w, v, v.shape[:n_lead], out_item), xg)
        p, wraps = graded_payload(p)
        run.wraps += wraps
        rf = _on_steps(steps, lambda v, w=cw: rf_counts(w, v, v.shape[:n_lead], out_item), xg)
        name = f"{node.name}.part{g}"
        run.layer_received[name] = rf
        run.layer_sent[name] = p != 0
        sops += per_step(rf, node.type.layout == Layout.TIME, run.steps,
                         int(np.prod(out_item))).sum(axis=1)
        joined = joined + run.layer_sent[name].astype(np.int32)
        parts.append(p)
    run.received[node.name] = np.asarray(joined, dtype=np.int32)
    run.op_sops[node.name] = sops
    return join_parts(parts, program.weights[node.name].kind == "conv",
                      program.weights[node.name].weight_exp)


def _relay(node: Node, value: np.ndarray, run: _Run) -> np.ndarray:
    """A residual stream held in relay neurons: what they received, forwarded as graded
    spikes (one per nonzero element) to every reader."""
    sent, wraps = graded_payload(value)
    run.wraps += wraps
    run.layer_received[node.name] = run.received.get(node.name, np.zeros(value.shape, np.int32))
    run.layer_sent[node.name] = sent != 0
    run.received[node.name] = run.layer_sent[node.name].astype(np.int32)
    return sent


def _neuron(program: Program, node: Node, run: _Run) -> np.ndarray:
    qg = program.qg
    src = node.inputs[0]
    a = run.values[src]
    k = program.neurons[node.name]
    if qg.categories[src] == Cat.ANALOG:  # a neuron fed the image: the host converts
        a = np.rint(np.asarray(a, dtype=np.float64) * qg.neuron_domain(node.name).scale)
        a = a.astype(np.int32)
    steps = program.schedule.get(node.name)
    v = np.zeros(a.shape, dtype=np.int32) if run.record_voltage else None
    spikes, active, wraps = lif_layer(k, np.asarray(a).astype(np.int32, copy=False),
                                       set(range(a.shape[0]) if steps is None else steps), v)
    if v is not None:
        run.voltages[node.name] = v
    run.wraps += wraps
    if node.name in run.given_spikes:  # another engine's neurons (Lava), for the readout
        spikes = run.given_spikes[node.name]
    run.spikes[node.name] = spikes
    run.active[node.name] = active
    return spikes


def _product(node: Node, ins: list[np.ndarray], cats: list[Cat], run: _Run,
             steps: list[int] | None) -> np.ndarray:
    """matmul and mul of spikes and counts, and the accumulates each output received."""
    a, b = ins
    if node.op == "mul":
        out = _on_steps(steps, lambda x, y: mul_chip(x, y, cats[0], cats[1]), a, b)
        run.received[node.name] = np.zeros(out.shape, dtype=np.int32)
        return out
    if cats == [Cat.SPIKE, Cat.SPIKE]:
        out = _on_steps(steps, matmul_and_count, a, b)
        events = out
    else:
        spikes_right = cats[1] == Cat.SPIKE
        out = _on_steps(steps, lambda x, y: matmul_select_sum(x, y, spikes_right)
                        if spikes_right else matmul_select_sum(y, x, False), a, b)
        nz = (a != 0, b) if spikes_right else (a, b != 0)
        events = _on_steps(steps, matmul_and_count, *nz)
    run.received[node.name] = events
    run.op_sops[node.name] = events.reshape(events.shape[0], -1).sum(axis=1, dtype=np.int64)
    return out


def _received_through(node: Node, src: Node, run: _Run) -> np.ndarray | None:
    """Carry per-element event counts through an op that moves or sums a current."""
    r = run.received.get(src.name)
    if r is None:
        return None
    if node.op in STRUCTURAL_OPS:
        return item_structural(node, src, r)
    if node.op == "sum":
        dims, _ = sum_axes(node, src)
        assert isinstance(node.attrs, ReduceAttrs)
        return integer_sum(r, tuple(dims), node.attrs.keepdim)
    return r


def _new_op(node: Node, srcs: list[Node], ins: list[np.ndarray], cats: list[Cat],
            run: _Run) -> np.ndarray:
    """cat, slice, pad, nearest upsampling, one-element-bin pools: moves, which carry the
    events each element received along; adaptive max-pooling and amax: compare-selects,
    whose outputs are counted as the spikes or counts they are (no events carried)."""
    if node.op == "adaptive_maxpool2d" and not is_move(node, srcs[0]):
        rows, cols = adaptive_taps(node, srcs[0])
        return adaptive_max_or(ins[0], rows, cols)
    if node.op == "amax":
        assert isinstance(node.attrs, ReduceAttrs)
        return max_reduce(ins[0], max_axes(node, srcs[0]), node.attrs.keepdim)
    got = [run.received.get(s.name) for s in srcs]
    if any(r is not None for r in got):
        parts = [r if r is not None else
                 (x != 0).astype(np.int32) if c in (Cat.SPIKE, Cat.COUNT) else
                 np.zeros(x.shape, dtype=np.int32) for r, x, c in zip(got, ins, cats)]
        run.received[node.name] = apply_move(node, srcs, parts, fill=0.0)
    return apply_move(node, srcs, ins)


def _mask_at(mask: tuple[int, ...], run: _Run, name: str) -> tuple[int, ...]:
    """A time mask on the run's clock: Lava-timed, step t of the model arrives at step
    t + latency, and the steps after the model's T are masked."""
    if not run.latency:
        return mask
    shifted = [0] * run.steps
    offset = run.latency[name]
    shifted[offset:offset + len(mask)] = mask[:max(0, run.steps - offset)]
    return tuple(shifted)


def _chip_op(program: Program, node: Node, run: _Run) -> np.ndarray:
    qg = program.qg
    cats = [qg.categories[i] for i in node.inputs]
    ins = [run.values[i] for i in node.inputs]
    srcs = [qg.graph.nodes[i] for i in node.inputs]
    steps = _steps_of(program, node) if node.type.layout == Layout.TIME else None
    if node.op in ("add", "sub"):
        shift = qg.domains[qg.domain_of[node.name]].shift if node.name in qg.domain_of else None
        cat = qg.categories[node.name]
        xs = [to_domain(x, c, shift) if cat == Cat.CURRENT else x.astype(np.int32)
              for x, c in zip(ins, cats)]
        parts = [run.received.get(s.name) for s in srcs]
        got = [p for p in parts if p is not None]
        if got:
            shape = np.broadcast_shapes(*(x.shape for x in xs))
            total = np.zeros(shape, dtype=np.int32)
            for p in got:
                total += p
            run.received[node.name] = total
        out = add_sub(xs[0], xs[1], node.op == "sub")
        return _relay(node, out, run) if node.name in program.relays else out
    if node.op in ("matmul", "mul"):
        return _product(node, ins, cats, run, steps)
    if node.op in NEW_OPS:
        return _new_op(node, srcs, ins, cats, run)
    r = _received_through(node, srcs[0], run)
    if r is not None:
        run.received[node.name] = r
    if node.op in STRUCTURAL_OPS:
        return item_structural(node, srcs[0], ins[0])
    if node.op == "sum":
        dims, _ = sum_axes(node, srcs[0])
        assert isinstance(node.attrs, ReduceAttrs)
        return integer_sum(ins[0], tuple(dims), node.attrs.keepdim)
    if node.op == "maxpool2d":
        a = node.attrs
        assert isinstance(a, PoolAttrs)
        h, w = node.type.shape[-2:]
        pads = ((a.padding[0], a.padding[0]), (a.padding[1], a.padding[1]))
        return maxpool_or(ins[0], a.kernel, a.stride, pads, (h, w))
    if node.op == "time_mask":
        a = node.attrs
        assert isinstance(a, TimeMaskAttrs)
        return time_mask(ins[0], _mask_at(a.mask, run, node.name))
    if node.op == "rsub":
        assert isinstance(node.attrs, ScalarAttrs)
        return np.logical_not(ins[0])
    raise SnnccError("SNN-SIM001", f"acsim has no on-chip form of {node.op} %{node.name}",
                     location=node.location(), hint="compile with --target ir to inspect the graph")


def _evaluate(program: Program, node: Node, run: _Run) -> np.ndarray:
    qg = program.qg
    cat = qg.categories[node.name]
    src_cat = qg.categories[node.inputs[0]] if node.inputs else None
    if cat == Cat.HOST or (cat == Cat.ANALOG and node.op != "input"):
        return _host_op(program, node, run)
    if node.opdef.is_neuron:
        return _neuron(program, node, run)
    if node.op in WEIGHT_OPS:
        return _encode(program, node, run) if src_cat == Cat.ANALOG else _weight_op(program, node, run)
    return _chip_op(program, node, run)


def _check_inputs(program: Program, inputs: np.ndarray) -> None:
    want = program.input_shape
    if inputs.ndim != len(want) or inputs.shape[0] != want[0] or inputs.shape[2:] != want[2:]:
        raise SnnccError(
            "SNN-SIM002",
            f"inputs have shape {tuple(inputs.shape)}, the model was compiled for "
            f"[T={want[0]}, B, {', '.join(str(d) for d in want[2:])}]",
            hint=f"give a tensor of shape ({want[0]}, B, {', '.join(str(d) for d in want[2:])}); "
                 "any batch size B works")
    if not np.issubdtype(inputs.dtype, np.number) and inputs.dtype != np.bool_:
        raise SnnccError("SNN-SIM003", f"inputs have dtype {inputs.dtype}, not numbers",
                         hint="give a float (or, for spiking inputs, 0/1) tensor")
    if np.issubdtype(inputs.dtype, np.floating) and not np.isfinite(inputs).all():
        bad = np.argwhere(~np.isfinite(inputs))[0]
        raise SnnccError("SNN-SIM003", f"inputs hold NaN or infinity (first at index "
                         f"{tuple(int(i) for i in bad)})",
                         hint="clean or re-encode the inputs; acsim cannot quantize them")
    spiking = program.qg.categories[program.graph.inputs[0]] == Cat.SPIKE
    if spiking and inputs.dtype != np.bool_ and not np.isin(inputs, (0, 1)).all():
        raise SnnccError("SNN-SIM003", "the model takes spikes, but the inputs hold values "
                         "other than 0 and 1",
                         hint="encode the inputs as spikes (0/1), or trace the model with "
                              "input_spikes=False to feed analog values")


def run_batch(program: Program, inputs: np.ndarray, *, record_voltage: bool = False,
              lava_timed: bool = False, given_spikes: dict[str, np.ndarray] | None = None,
              given_values: dict[str, np.ndarray] | None = None
              ) -> tuple[_Run, list[np.ndarray]]:
    """Run one batch ``[T, B, ...]`` through the whole program. ``given_spikes``: every
    neuron's spikes from another engine (Lava's, ``[T + depth, B, *item]`` on its clock),
    used in place of acsim's so the host's readout is computed from them;
    ``given_values``: values (the readout accumulators' per-step sums) taken as given."""
    x = np.asarray(inputs)
    _check_inputs(program, x)
    return _run_checked(program, x, record_voltage, lava_timed, given_spikes, given_values)


def _later(x: np.ndarray, d: int) -> np.ndarray:
    """A time-first array ``d`` steps later, zeros before: a delay on a Lava-timed chip."""
    out = np.zeros_like(x)
    if d < x.shape[0]:
        out[d:] = x[:x.shape[0] - d]
    return out


def _lava_clock(program: Program, x: np.ndarray
                ) -> tuple[Program, np.ndarray, _Run, dict[str, dict[str, int]]]:
    """Lava's timing: each synapse layer adds a step, the inputs of a join are delayed to
    arrive together, every neuron runs (and adds its bias) on each of T + depth steps,
    the input is followed by zeros; a pruned schedule is not applied (Lava's LIF has no
    skipped steps)."""
    latency, delays = lava_timing(program.qg, program.lowered)
    depth = max(latency.values(), default=0)
    pad = np.zeros((depth, *x.shape[1:]), dtype=x.dtype)
    timed = copy.copy(program)
    timed.schedule = {}
    return timed, np.concatenate([x, pad]), _Run(steps=x.shape[0] + depth, latency=latency), delays


def _evaluate_delayed(program: Program, node: Node, run: _Run,
                      delays: dict[str, int]) -> np.ndarray:
    """Evaluate ``node`` with its inputs delayed as the Lava build delays them, then delay
    a synapse layer's output by its step."""
    saved = {i: (run.values[i], run.received.get(i)) for i in delays}
    for i, d in delays.items():
        run.values[i] = _later(run.values[i], d)
        got = saved[i][1]
        if got is not None:
            run.received[i] = _later(got, d)
    try:
        out = _evaluate(program, node, run)
    finally:
        for i, (v, r) in saved.items():
            run.values[i] = v
            if r is not None:
                run.received[i] = r
    arrive = max((run.latency[i] for i in node.inputs), default=0)
    late = run.latency[node.name] - arrive
    if late and node.type.layout == Layout.TIME:
        # a synapse layer: last step's sums (two layers for a split's parts and join, a
        # relay's forwarding synapses); a value computed once, after the run, has no
        # steps to be late by
        out = _later(out, late)
        if node.name in run.received:
            run.received[node.name] = _later(run.received[node.name], late)
    return out


def _run_checked(program: Program, x: np.ndarray, record_voltage: bool,
                 lava_timed: bool = False, given_spikes: dict[str, np.ndarray] | None = None,
                 given_values: dict[str, np.ndarray] | None = None
                 ) -> tuple[_Run, list[np.ndarray]]:
    graph = program.graph
    if lava_timed:
        program, x, run, delays = _lava_clock(program, x)
    else:
        run, delays = _Run(steps=x.shape[0]), {}
    run.record_voltage = record_voltage
    run.given_spikes = given_spikes or {}
    for node in graph:
        if node.op == "input":
            spiking = program.qg.categories[node.name] == Cat.SPIKE
            run.values[node.name] = x.astype(bool) if spiking else x.astype(np.float32)
            continue
        if given_values and node.name in given_values:
            run.values[node.name] = given_values[node.name]
            continue
        run.values[node.name] = (_evaluate_delayed(program, node, run, delays[node.name])
                                 if lava_timed else _evaluate(program, node, run))
    outs = [np.asarray(run.values[o], dtype=np.float64) if program.qg.categories[o] != Cat.CURRENT
            else _host_value(program.qg, o, run.values[o]).double().numpy() for o in graph.outputs]
    return run, outs


def run_quantized(qg: QuantizedGraph | Program, inputs: np.ndarray | torch.Tensor, *,
                  batch_size: int = 256, record_voltage: bool = False,
                  progress: Callable[[int, int], None] | None = None,
                  lava_timed: bool = False) -> SimResult:
    """Run ``inputs`` ``[T, B, ...]`` through acsim in batches; ``progress(done, total)``
    is called after each batch. ``record_voltage`` keeps every neuron's v per step.
    Events are counted per chip layer of the program's lowering. ``lava_timed``: run
    on Lava's clock (:func:`_lava_clock`: T + depth steps, a step per synapse layer,
    delays at joins), the mode the Lava backend is compared with bit for bit."""
    program = qg if isinstance(qg, Program) else Program(qg)
    x = inputs.detach().cpu().numpy() if isinstance(inputs, torch.Tensor) else np.asarray(inputs)
    _check_inputs(program, x)  # once, for the whole input
    total = x.shape[1]
    outs: list[list[np.ndarray]] = []
    spikes: dict[str, list[np.ndarray]] = {}
    voltages: dict[str, list[np.ndarray]] = {}
    counts: SimCounts | None = None
    wraps = 0
    for b0 in range(0, total, batch_size):
        run, out = _run_checked(program, x[:, b0:b0 + batch_size], record_voltage, lava_timed)
        outs.append(out)
        for name, s in run.spikes.items():
            spikes.setdefault(name, []).append(s)
        for name, v in run.voltages.items():
            voltages.setdefault(name, []).append(v)
        counts = merge_counts(counts, count_batch(program, run))
        wraps += run.wraps
        if progress is not None:
            progress(min(b0 + batch_size, total), total)
    assert counts is not None, "no samples to run"
    batch_axis = [1 if program.graph.nodes[o].type.layout == Layout.TIME else 0
                  for o in program.graph.outputs]
    return SimResult(
        outputs=[np.concatenate([o[i] for o in outs], axis=ax) for i, ax in enumerate(batch_axis)],
        spikes={k: np.concatenate(v, axis=1) for k, v in spikes.items()},
        counts=counts, wraps=wraps, voltages={k: np.concatenate(v, axis=1) for k, v in voltages.items()},
        time_first=bool(batch_axis[0]))
