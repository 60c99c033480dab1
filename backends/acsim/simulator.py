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
- max-pooling of spikes: OR over the window; of counts: max (compare-select).
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
after T). That is a pure shift for chains, and ``tests/test_acsim_simulator.py``
checks it against real Lava; for graphs with residual paths of different depth
Lava would need matching delays, which acsim's aligned semantics presuppose.

The prune-timesteps schedule (``graph.meta["schedule"]``) is honoured: a
skipped step of a weight op or product does no work and holds zeros (its bias
is the reading neuron's), a skipped neuron step neither updates nor spikes.

Counting (for :mod:`.costs`): per hardware layer -- each neuron layer, and the
readout accumulators that integrate a current for the host -- per step and
sample: spikes, active neurons, and the synaptic events delivered to every
neuron (``sops``, split by synapse kind). Synapses live with their destination
neuron, so a current read by several neuron layers (the residual stream) is
accumulated by each of them, as on a chip without graded relays. Per op, the
papers' SOPs (events x fan-out, once) and the host's MACs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from numpy.typing import NDArray

from snncc.backends.acsim.counts import HardwareLayer, LayerCounts, OpCounts, SimCounts
from snncc.backends.acsim.fixedpoint import (
    ConvWeights,
    DenseWeights,
    apply_weight_exp,
    conv_accumulate,
    decay_multiplier_u,
    decay_multiplier_v,
    dense_accumulate,
    dense_accumulate_graded,
    lava_to_nchw,
    lif_effective_bias,
    nchw_to_lava,
    prepare_conv_weights,
    prepare_dense_weights,
    torch_conv_params_to_lava,
    torch_conv_weight_to_lava,
)
from snncc.backends.acsim.kernels import lif_update
from snncc.diagnostics import SnnccError
from snncc.ir.graph import Node
from snncc.ir.ops.elementwise import ScalarAttrs
from snncc.ir.ops.pool import PoolAttrs
from snncc.ir.ops.reduce import ReduceAttrs
from snncc.ir.ops.timemask import TimeMaskAttrs
from snncc.ir.ops.weights import ConvAttrs
from snncc.ir.types import Layout
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

I32 = NDArray[np.int32]

# Functions on the activation path (integer datapath); the no-multiply test walks these.
ACTIVATION_PATH: tuple[str, ...] = (
    "_dense_rows",
    "_conv_nchw",
    "_chip_weight_op",
    "_lif_layer",
    "_maxpool_or",
    "_matmul_and_count",
    "_matmul_select_sum",
    "_to_domain",
    "_add_sub",
    "_time_mask",
    "_integer_sum",
    "_mul_chip",
    "_rf_counts",
)

SYNAPSE_KINDS = ("dense", "conv", "sparse")


# ------------------------------------------------------------ the program ----


@dataclass
class _ChipWeights:
    """A chip weight op, prepared once: Lava-layout kernels, plus (conv) the padding and
    the input window of every kernel tap, which count each output's active inputs."""

    kind: str  # "dense" (linear, kernel-1 conv1d) or "conv"
    layout: str  # "linear" | "pointwise" | "conv2d" | "conv1d"
    weight_exp: int
    graded: bool
    c_out: int
    groups: int = 1
    dense: DenseWeights | None = None
    conv: ConvWeights | None = None
    rf_pad: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0))
    rf_taps: tuple[tuple[slice, slice], ...] = ()


@dataclass
class _NeuronConsts:
    mult_u: int
    mult_v: int
    bias: I32  # item shape: Lava's bias_mant << bias_exp
    vth_eff: int  # vth << 6
    shift: int | None  # reads counts: a = count << shift


def _is_pointwise(node: Node) -> bool:
    a = node.attrs
    assert isinstance(a, ConvAttrs)
    return (node.params["weight"].shape[-1] == 1 and a.stride == (1,) and a.padding == (0,)
            and a.dilation == (1,) and a.groups == 1)


def _prepare_weights(node: Node, src: Node, mant: np.ndarray, e: int, graded: bool) -> _ChipWeights:
    """Lava-layout kernels for one weight op (weights in PyTorch layout)."""
    if node.op == "linear" or (node.op == "conv1d" and _is_pointwise(node)):
        w2 = mant.reshape(mant.shape[0], -1)
        return _ChipWeights("dense", "linear" if node.op == "linear" else "pointwise", e, graded,
                            w2.shape[0], dense=prepare_dense_weights(w2, weight_exp=e))
    attrs = node.attrs
    assert isinstance(attrs, ConvAttrs)
    item = item_shape(src)
    if node.op == "conv1d":  # a general conv1d is a conv2d over [C, 1, L]
        mant = mant[:, :, np.newaxis, :]
        c, h, w = item[0], 1, item[1]
        stride: tuple[int, ...] = (1, attrs.stride[0])
        padding: tuple[int, ...] = (0, attrs.padding[0])
        dilation: tuple[int, ...] = (1, attrs.dilation[0])
    else:
        c, h, w = item
        stride, padding, dilation = attrs.stride, attrs.padding, attrs.dilation
    conv = prepare_conv_weights(torch_conv_weight_to_lava(mant), (w, h, c),
                                stride=torch_conv_params_to_lava(stride),
                                padding=torch_conv_params_to_lava(padding),
                                dilation=torch_conv_params_to_lava(dilation), groups=attrs.groups)
    rows, cols = node.type.shape[-2:] if node.op == "conv2d" else (1, node.type.shape[-1])
    taps = tuple(
        (slice(a * dilation[0], a * dilation[0] + (rows - 1) * stride[0] + 1, stride[0]),
         slice(b * dilation[1], b * dilation[1] + (cols - 1) * stride[1] + 1, stride[1]))
        for a in range(mant.shape[2]) for b in range(mant.shape[3]))
    return _ChipWeights("conv", node.op, e, graded, mant.shape[0], attrs.groups, conv=conv,
                        rf_pad=((padding[0], padding[0]), (padding[1], padding[1])), rf_taps=taps)


class Program:
    """A quantized graph with its kernels prepared once, ready to run many batches."""

    def __init__(self, qg: QuantizedGraph) -> None:
        self.qg = qg
        self.graph = qg.graph
        sched = self.graph.meta.get("schedule", {})
        self.schedule: dict[str, list[int]] = dict(sched) if isinstance(sched, dict) else {}
        self.weights: dict[str, _ChipWeights] = {
            name: _prepare_weights(self.graph.nodes[name],
                                   self.graph.nodes[self.graph.nodes[name].inputs[0]],
                                   wq.mantissa, wq.weight_exp, wq.graded)
            for name, wq in qg.weights.items()
        }
        self.neurons: dict[str, _NeuronConsts] = {
            name: _NeuronConsts(decay_multiplier_u(nq.du), decay_multiplier_v(nq.dv),
                                lif_effective_bias(nq.bias_mant, nq.bias_exp),
                                int(nq.vth) << 6, nq.input_shift)
            for name, nq in qg.neurons.items()
        }
        self.accumulators = readout_accumulators(qg)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.graph.nodes[self.graph.inputs[0]].type.shape


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


# ------------------------------------------------------------ datapath ----


def _dense_rows(dw: DenseWeights, x: np.ndarray, graded: bool) -> I32:
    """Dense over the rows of ``x`` ([R, n_in]): a gather-sum of weight rows (shift-add if graded)."""
    acc = dense_accumulate_graded(dw, x) if graded else dense_accumulate(dw, x)
    return acc


def _conv_nchw(cw: ConvWeights, x: np.ndarray, graded: bool) -> I32:
    """Lava Conv on ``[N, C, H, W]`` (the kernel works in Lava's (W, H, C) layout)."""
    return lava_to_nchw(conv_accumulate(cw, nchw_to_lava(x), graded=graded))


def _chip_weight_op(cw: _ChipWeights, x: np.ndarray, lead: tuple[int, ...],
                    out_item: tuple[int, ...]) -> I32:
    """A weight op on chip: ``x`` [*lead, *item] spikes (or counts) -> a [*lead, *out_item]."""
    if cw.layout == "linear":
        assert cw.dense is not None
        acc = _dense_rows(cw.dense, x.reshape(-1, x.shape[-1]), cw.graded)
        acc = acc.reshape(*lead, *out_item)
    elif cw.layout == "pointwise":  # [.., C, N]: a Dense per token
        assert cw.dense is not None
        tokens = np.moveaxis(x, -1, -2)
        acc = _dense_rows(cw.dense, tokens.reshape(-1, tokens.shape[-1]), cw.graded)
        acc = np.moveaxis(acc.reshape(*tokens.shape[:-1], cw.c_out), -1, -2)
    else:
        assert cw.conv is not None
        flat = x.reshape(-1, x.shape[len(lead)], *([1] if cw.layout == "conv1d" else []),
                         *x.shape[len(lead) + 1:])
        acc = _conv_nchw(cw.conv, flat, cw.graded).reshape(*lead, *out_item)
    return apply_weight_exp(np.ascontiguousarray(acc, dtype=np.int32), cw.weight_exp)


def _rf_counts(cw: _ChipWeights, x: np.ndarray, lead: tuple[int, ...],
               out_item: tuple[int, ...]) -> I32:
    """Synaptic events each output receives: its receptive field's active inputs."""
    active = x != 0
    if cw.layout == "linear":
        n = np.count_nonzero(active, axis=-1).astype(np.int32)
        return np.ascontiguousarray(np.broadcast_to(n[..., np.newaxis], (*lead, *out_item)))
    if cw.layout == "pointwise":
        n = np.count_nonzero(active, axis=-2).astype(np.int32)  # per token
        return np.ascontiguousarray(np.broadcast_to(n[..., np.newaxis, :], (*lead, *out_item)))
    flat = active.reshape(-1, cw.groups, x.shape[len(lead)] // cw.groups,
                          *([1] if cw.layout == "conv1d" else []), *x.shape[len(lead) + 1:])
    per_group = np.pad(np.count_nonzero(flat, axis=2).astype(np.int32),
                       ((0, 0), (0, 0), *cw.rf_pad))  # [N, groups, H, W]: active inputs
    window = np.zeros((*per_group.shape[:2], *out_item[-2:]) if cw.layout == "conv2d"
                      else (*per_group.shape[:2], 1, out_item[-1]), dtype=np.int32)
    for rows, cols in cw.rf_taps:  # a box sum over the kernel taps
        window += per_group[:, :, rows, cols]
    full = np.repeat(window, cw.c_out // cw.groups, axis=1)
    return full.reshape(*lead, *out_item)


def _lif_layer(k: _NeuronConsts, a: I32, steps: set[int], voltages: I32 | None = None,
               ) -> tuple[NDArray[np.bool_], NDArray[np.bool_], int]:
    """Lava's LIF over time for a whole layer and batch: a [T, B, *item] -> spikes, active, wraps.

    ``active``: the neuron received input or spiked (it pays the active update).
    ``wraps``: inputs large enough to wrap Lava's 24-bit current (should be 0).
    ``voltages``: if given ([T, B, *item]), filled with v after each step.
    """
    T = a.shape[0]
    u = np.zeros(a.shape[1:], dtype=np.int32)
    v = np.zeros(a.shape[1:], dtype=np.int32)
    spikes = np.zeros(a.shape, dtype=bool)
    active = np.zeros(a.shape, dtype=bool)
    wraps = 0
    for t in range(T):
        if t not in steps:
            continue
        a_t = a[t]
        if k.shift is not None:
            a_t = np.left_shift(a_t.astype(np.int32), k.shift)
        wraps += int(np.count_nonzero((a_t > 131071) | (a_t < -131072)))
        u, v, s = lif_update(u, v, a_t, k.mult_u, k.mult_v, k.bias, k.vth_eff)
        spikes[t] = s
        active[t] = (a_t != 0) | s
        if voltages is not None:
            voltages[t] = v
    return spikes, active, wraps


def _maxpool_or(x: np.ndarray, win: tuple[int, int], stride: tuple[int, int],
                pads: tuple[tuple[int, int], tuple[int, int]], out_hw: tuple[int, int]) -> np.ndarray:
    """Max-pooling: OR of spikes (max of counts) over each window; padding never wins."""
    lead = [(0, 0) for _ in range(x.ndim - 2)]
    xp = np.pad(x, [*lead, pads[0], pads[1]])
    out = np.zeros((*x.shape[:-2], *out_hw), dtype=x.dtype)
    for a in range(win[0]):  # one strided view per window tap; max of bools is OR
        for b in range(win[1]):
            np.maximum(out, xp[..., a::stride[0], b::stride[1]][..., :out_hw[0], :out_hw[1]], out=out)
    return out


def _matmul_and_count(a: np.ndarray, b: np.ndarray) -> I32:
    """Spike x spike matmul: out[i, j] = popcount(a[i, :] AND b[:, j])."""
    both = np.logical_and(a[..., :, :, np.newaxis], b[..., np.newaxis, :, :])
    return np.count_nonzero(both, axis=-2).astype(np.int32)


def _matmul_select_sum(counts: np.ndarray, spikes: np.ndarray, spikes_right: bool) -> I32:
    """Count x spike matmul: each spike selects a count, the selected counts are summed."""
    if spikes_right:  # counts [.., M, K] @ spikes [.., K, N]
        picked = np.where(spikes[..., np.newaxis, :, :], counts[..., :, :, np.newaxis], 0)
    else:  # spikes [.., M, K] @ counts [.., K, N]
        picked = np.where(spikes[..., :, :, np.newaxis], counts[..., np.newaxis, :, :], 0)
    return np.sum(picked, axis=-2, dtype=np.int32)


def _to_domain(x: np.ndarray, cat: Cat, shift: int | None) -> np.ndarray:
    """A value as integer synaptic units of a current domain (counts enter by a shift)."""
    if cat == Cat.CURRENT:
        return x
    if shift is None:
        return x.astype(np.int32)
    return np.left_shift(x.astype(np.int32), shift)


def _add_sub(a: np.ndarray, b: np.ndarray, sub: bool) -> np.ndarray:
    return np.subtract(a, b) if sub else np.add(a, b)


def _time_mask(x: np.ndarray, mask: tuple[int, ...]) -> np.ndarray:
    keep = np.asarray(mask, dtype=bool).reshape(-1, *(1 for _ in range(x.ndim - 1)))
    return np.where(keep, x, np.zeros((), dtype=x.dtype))


def _integer_sum(x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    return np.sum(x, axis=axes, dtype=np.int64, keepdims=keepdims)


def _mul_chip(a: np.ndarray, b: np.ndarray, ca: Cat, cb: Cat) -> np.ndarray:
    """Spike AND spike, or a count selected by a spike (SEW's AND/IAND shapes)."""
    if ca == Cat.SPIKE and cb == Cat.SPIKE:
        return np.logical_and(a, b)
    if ca == Cat.SPIKE:
        return np.where(a, b, np.zeros((), dtype=b.dtype))
    return np.where(b, a, np.zeros((), dtype=a.dtype))


# ------------------------------------------------------------ the run ----


@dataclass
class SimResult:
    """What one acsim run gives: the graph's outputs (host floats), the predicted
    class per sample, every neuron layer's spikes ``[T, B, *item]`` and the counts."""

    outputs: list[np.ndarray]
    spikes: dict[str, NDArray[np.bool_]]
    counts: SimCounts
    wraps: int = 0  # inputs that would wrap Lava's 24-bit current (0 for a sound quantization)
    voltages: dict[str, I32] = field(default_factory=dict)  # v [T, B, *item], if recorded

    @property
    def predictions(self) -> NDArray[np.int64]:
        return np.asarray(self.outputs[0]).reshape(self.counts.batch, -1).argmax(axis=-1)


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
    run.received[node.name] = np.zeros(y.shape, dtype=np.int32)
    return np.rint(y * program.qg.domain_scale(node.name)).astype(np.int32)


def _weight_op(program: Program, node: Node, run: _Run) -> np.ndarray:
    cw = program.weights[node.name]
    x = run.values[node.inputs[0]]
    lead = x.shape[:lead_axes(node)]
    out_item = item_shape(node)
    steps = _steps_of(program, node)
    acc = _on_steps(steps, lambda v: _chip_weight_op(cw, v, v.shape[:len(lead)], out_item), x)
    rf = _on_steps(steps, lambda v: _rf_counts(cw, v, v.shape[:len(lead)], out_item), x)
    run.received[node.name] = rf
    run.op_sops[node.name] = _per_step(rf, node.type.layout == Layout.TIME, program.graph.time_steps,
                                       int(np.prod(out_item))).sum(axis=1)
    return acc


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
    spikes, active, wraps = _lif_layer(k, np.asarray(a).astype(np.int32, copy=False),
                                       set(range(a.shape[0]) if steps is None else steps), v)
    if v is not None:
        run.voltages[node.name] = v
    run.wraps += wraps
    run.spikes[node.name] = spikes
    run.active[node.name] = active
    return spikes


def _product(node: Node, ins: list[np.ndarray], cats: list[Cat], run: _Run,
             steps: list[int] | None) -> np.ndarray:
    """matmul and mul of spikes and counts, and the accumulates each output received."""
    a, b = ins
    if node.op == "mul":
        out = _on_steps(steps, lambda x, y: _mul_chip(x, y, cats[0], cats[1]), a, b)
        run.received[node.name] = np.zeros(out.shape, dtype=np.int32)
        return out
    if cats == [Cat.SPIKE, Cat.SPIKE]:
        out = _on_steps(steps, _matmul_and_count, a, b)
        events = out
    else:
        spikes_right = cats[1] == Cat.SPIKE
        out = _on_steps(steps, lambda x, y: _matmul_select_sum(x, y, spikes_right)
                        if spikes_right else _matmul_select_sum(y, x, False), a, b)
        nz = (a != 0, b) if spikes_right else (a, b != 0)
        events = _on_steps(steps, _matmul_and_count, *nz)
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
        return _integer_sum(r, tuple(dims), node.attrs.keepdim)
    return r


def _chip_op(program: Program, node: Node, run: _Run) -> np.ndarray:
    qg = program.qg
    cats = [qg.categories[i] for i in node.inputs]
    ins = [run.values[i] for i in node.inputs]
    srcs = [qg.graph.nodes[i] for i in node.inputs]
    steps = _steps_of(program, node) if node.type.layout == Layout.TIME else None
    if node.op in ("add", "sub"):
        shift = qg.domains[qg.domain_of[node.name]].shift if node.name in qg.domain_of else None
        cat = qg.categories[node.name]
        xs = [_to_domain(x, c, shift) if cat == Cat.CURRENT else x.astype(np.int32)
              for x, c in zip(ins, cats)]
        parts = [run.received.get(s.name) for s in srcs]
        got = [p for p in parts if p is not None]
        if got:
            shape = np.broadcast_shapes(*(x.shape for x in xs))
            total = np.zeros(shape, dtype=np.int32)
            for p in got:
                total += p
            run.received[node.name] = total
        return _add_sub(xs[0], xs[1], node.op == "sub")
    if node.op in ("matmul", "mul"):
        return _product(node, ins, cats, run, steps)
    r = _received_through(node, srcs[0], run)
    if r is not None:
        run.received[node.name] = r
    if node.op in STRUCTURAL_OPS:
        return item_structural(node, srcs[0], ins[0])
    if node.op == "sum":
        dims, _ = sum_axes(node, srcs[0])
        assert isinstance(node.attrs, ReduceAttrs)
        return _integer_sum(ins[0], tuple(dims), node.attrs.keepdim)
    if node.op == "maxpool2d":
        a = node.attrs
        assert isinstance(a, PoolAttrs)
        h, w = node.type.shape[-2:]
        pads = ((a.padding[0], a.padding[0]), (a.padding[1], a.padding[1]))
        return _maxpool_or(ins[0], a.kernel, a.stride, pads, (h, w))
    if node.op == "time_mask":
        a = node.attrs
        assert isinstance(a, TimeMaskAttrs)
        return _time_mask(ins[0], a.mask)
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


def run_batch(program: Program, inputs: np.ndarray, *, record_voltage: bool = False
              ) -> tuple[_Run, list[np.ndarray]]:
    """Run one batch ``[T, B, ...]`` through the whole program."""
    x = np.asarray(inputs)
    _check_inputs(program, x)
    graph = program.graph
    run = _Run(record_voltage=record_voltage)
    for node in graph:
        if node.op == "input":
            spiking = program.qg.categories[node.name] == Cat.SPIKE
            run.values[node.name] = x.astype(bool) if spiking else x.astype(np.float32)
            continue
        run.values[node.name] = _evaluate(program, node, run)
    outs = [np.asarray(run.values[o], dtype=np.float64) if program.qg.categories[o] != Cat.CURRENT
            else _host_value(program.qg, o, run.values[o]).double().numpy() for o in graph.outputs]
    return run, outs


# ---------------------------------------------------------- hardware layers ----


def _contributors(program: Program) -> dict[str, list[str]]:
    """Per value: the weight ops and spike products whose events built it."""
    qg = program.qg
    out: dict[str, list[str]] = {}
    for n in qg.graph:
        cat = qg.categories[n.name]
        if n.op in WEIGHT_OPS and cat == Cat.CURRENT or n.op == "matmul" and cat == Cat.COUNT:
            out[n.name] = [n.name]
        elif cat in (Cat.CURRENT, Cat.COUNT) and not n.opdef.is_neuron:
            out[n.name] = list(dict.fromkeys(c for i in n.inputs for c in out.get(i, [])))
    return out


def _spike_sources(program: Program, name: str) -> list[str]:
    """The neuron layers (or spiking inputs) whose spikes reach value ``name`` without a synapse."""
    node = program.graph.nodes[name]
    if node.opdef.is_neuron or node.op == "input":
        return [name]
    return list(dict.fromkeys(s for i in node.inputs for s in _spike_sources(program, i)))


def _op_fan_in(program: Program, op: str) -> int:
    node = program.graph.nodes[op]
    if node.op == "matmul":
        return int(program.graph.nodes[node.inputs[0]].type.shape[-1])
    return int(np.prod(node.params["weight"].shape[1:]))


def _op_kind(program: Program, op: str) -> str:
    if op in program.weights:
        return program.weights[op].kind
    return "sparse" if program.graph.nodes[op].op == "matmul" else "dense"


def hardware_layers(program: Program) -> list[HardwareLayer]:
    """Every neuron layer and readout accumulator, with its fan-in, synapses and sources."""
    qg, graph = program.qg, program.graph
    contrib = _contributors(program)
    out: list[HardwareLayer] = []
    accumulators = set(program.accumulators)
    for n in graph:
        if n.opdef.is_neuron:
            src, kind = n.inputs[0], "neuron"
        elif n.name in accumulators:
            src, kind = n.name, "accumulator"
        else:
            continue
        neurons = int(np.prod(item_shape(n)))
        ops = contrib.get(src, [])
        fan_in, synapses, by_kind = 0, 0, {"dense": 0, "conv": 0, "sparse": 0}
        sources: list[str] = []
        host = qg.categories[src] == Cat.ANALOG
        for op in ops:
            op_node = graph.nodes[op]
            if qg.categories[op_node.inputs[0]] == Cat.ANALOG:
                host = True  # the host sends the encoded current: one input, no synapses
                fan_in += 1
                continue
            per_out = _op_fan_in(program, op)
            outs = int(np.prod(item_shape(op_node)))
            fan_in += per_out * max(1, outs // max(neurons, 1))
            synapses += per_out * outs
            by_kind[_op_kind(program, op)] += per_out * outs
            sources += [s for i in op_node.inputs for s in _spike_sources(program, i)]
        if not ops and qg.categories[src] in (Cat.SPIKE, Cat.COUNT):
            sources = _spike_sources(program, src)
            fan_in, synapses = 1, neurons
        out.append(HardwareLayer(
            name=n.name, module_path=n.origin.module_path or graph.nodes[src].origin.module_path,
            kind=kind, shape=item_shape(n), synapse_kind=max(by_kind, key=lambda k: by_kind[k]),
            fan_in=fan_in, synapses=synapses, sources=tuple(dict.fromkeys(sources)),
            host_input=host))
    return out


def _per_step(x: np.ndarray | None, time_first: bool, steps: int, neurons: int
              ) -> NDArray[np.int64]:
    """Totals over the batch as ``[T, N]``: ``[T, B, *item]`` per step, or ``[B, *item]``
    (a value computed once, after the run) at the last step; zeros when absent."""
    out = np.zeros((steps, neurons), dtype=np.int64)
    if x is None:
        return out
    a = np.asarray(x)
    if time_first:
        return a.reshape(a.shape[0], a.shape[1], -1).sum(axis=1, dtype=np.int64)
    out[-1] = a.reshape(a.shape[0], -1).sum(axis=0, dtype=np.int64)
    return out


def count_batch(program: Program, layers: list[HardwareLayer], run: _Run) -> SimCounts:
    """The events of one batch, per hardware layer and per weight op."""
    graph = program.graph
    T = graph.time_steps
    batch = 0
    hw: dict[str, LayerCounts] = {}
    for layer in layers:
        n = graph.nodes[layer.name]
        src = n.inputs[0] if layer.kind == "neuron" else n.name
        time_first = n.type.layout == Layout.TIME
        batch = int(run.values[n.name].shape[1 if time_first else 0])
        received = run.received.get(src)
        if received is None and program.qg.categories[src] in (Cat.SPIKE, Cat.COUNT):
            received = (run.values[src] != 0).astype(np.int32)
        sops = _per_step(received, time_first, T, layer.neurons)
        if layer.kind == "neuron":
            spikes = _per_step(run.spikes[n.name], True, T, layer.neurons)
            active = _per_step(run.active[n.name], True, T, layer.neurons)
        else:
            spikes = np.zeros_like(sops)
            active = _per_step(received != 0 if received is not None else None, time_first, T,
                               layer.neurons)
        steps = program.schedule.get(n.name) if layer.kind == "neuron" else None
        executed = None if steps is None else np.isin(np.arange(T), list(steps))
        hw[layer.name] = LayerCounts(layer, sops, spikes, active, executed)
    ops: dict[str, OpCounts] = {}
    for n in graph:
        if n.op not in WEIGHT_OPS and not (n.op == "matmul" and n.name in run.op_sops):
            continue
        cat_in = program.qg.categories[n.inputs[0]]
        where = ("chip" if n.name in run.op_sops else
                 "host-encoding" if cat_in == Cat.ANALOG else "host-readout")
        sops = run.op_sops.get(n.name, np.zeros(T, dtype=np.int64))
        ops[n.name] = OpCounts(n.name, n.origin.module_path, where, sops, run.macs.get(n.name, 0))
    return SimCounts(time_steps=T, batch=batch, layers=hw, ops=ops)


def merge_counts(a: SimCounts | None, b: SimCounts) -> SimCounts:
    """Totals of two batches' counts."""
    if a is None:
        return b
    layers = {k: LayerCounts(v.layer, v.sops + b.layers[k].sops, v.spikes + b.layers[k].spikes,
                             v.active + b.layers[k].active, v.executed) for k, v in a.layers.items()}
    ops = {k: OpCounts(v.name, v.module_path, v.where, v.sops + b.ops[k].sops, v.macs + b.ops[k].macs)
           for k, v in a.ops.items()}
    return SimCounts(a.time_steps, a.batch + b.batch, layers, ops)


def run_quantized(qg: QuantizedGraph | Program, inputs: np.ndarray | torch.Tensor, *,
                  batch_size: int = 256, record_voltage: bool = False,
                  progress: Callable[[int, int], None] | None = None) -> SimResult:
    """Run ``inputs`` ``[T, B, ...]`` through acsim in batches; ``progress(done, total)``
    is called after each batch. ``record_voltage`` keeps every neuron's v per step."""
    program = qg if isinstance(qg, Program) else Program(qg)
    x = inputs.detach().cpu().numpy() if isinstance(inputs, torch.Tensor) else np.asarray(inputs)
    _check_inputs(program, x)
    layers = hardware_layers(program)
    total = x.shape[1]
    outs: list[list[np.ndarray]] = []
    spikes: dict[str, list[np.ndarray]] = {}
    voltages: dict[str, list[np.ndarray]] = {}
    counts: SimCounts | None = None
    wraps = 0
    for b0 in range(0, total, batch_size):
        run, out = run_batch(program, x[:, b0:b0 + batch_size], record_voltage=record_voltage)
        outs.append(out)
        for name, s in run.spikes.items():
            spikes.setdefault(name, []).append(s)
        for name, v in run.voltages.items():
            voltages.setdefault(name, []).append(v)
        counts = merge_counts(counts, count_batch(program, layers, run))
        wraps += run.wraps
        if progress is not None:
            progress(min(b0 + batch_size, total), total)
    assert counts is not None, "no samples to run"
    batch_axis = [1 if program.graph.nodes[o].type.layout == Layout.TIME else 0
                  for o in program.graph.outputs]
    return SimResult(
        outputs=[np.concatenate([o[i] for o in outs], axis=ax) for i, ax in enumerate(batch_axis)],
        spikes={k: np.concatenate(v, axis=1) for k, v in spikes.items()},
        counts=counts, wraps=wraps, voltages={k: np.concatenate(v, axis=1) for k, v in voltages.items()})
