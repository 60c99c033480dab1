"""acsim's program: a quantized graph with its chip kernels prepared once.

Why its own module: a compiled model is run many times, batch after batch,
and read by more than the run. Its kernels (the weight ops in Lava's layouts,
each conv's padding and the input window of every kernel tap, each neuron's
Lava constants) and its readout accumulators are worked out once, here, and
shared by the run (:mod:`.simulator`), the event counting (:mod:`.hardware`)
and the artifact (:mod:`.artifact`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snncc.backends.acsim.fixedpoint import (
    VTH_SHIFT,
    ConvWeights,
    DenseWeights,
    decay_multiplier_u,
    decay_multiplier_v,
    lif_effective_bias,
    prepare_conv_weights,
    prepare_dense_weights,
    torch_conv_params_to_lava,
    torch_conv_weight_to_lava,
)
from snncc.backends.acsim.kernels import I32
from snncc.ir.graph import Node
from snncc.ir.ops.weights import ConvAttrs
from snncc.lower import LayerProgram, is_pointwise, lower
from snncc.passes.quantize import QuantizedGraph, item_shape


@dataclass
class ChipWeights:
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
class NeuronConsts:
    mult_u: int
    mult_v: int
    bias: I32  # item shape: Lava's bias_mant << bias_exp
    vth_eff: int  # vth << 6
    shift: int | None  # reads counts: a = count << shift


def _prepare_weights(node: Node, src: Node, mant: np.ndarray, e: int, graded: bool) -> ChipWeights:
    """Lava-layout kernels for one weight op (weights in PyTorch layout; ``mant`` may hold
    a range of the op's input channels, a split's part)."""
    if node.op == "linear" or (node.op == "conv1d" and is_pointwise(node)):
        w2 = mant.reshape(mant.shape[0], -1)
        return ChipWeights("dense", "linear" if node.op == "linear" else "pointwise", e, graded,
                            w2.shape[0], dense=prepare_dense_weights(w2, weight_exp=e))
    attrs = node.attrs
    assert isinstance(attrs, ConvAttrs)
    item = item_shape(src)
    if node.op == "conv1d":  # a general conv1d is a conv2d over [C, 1, L]
        mant = mant[:, :, np.newaxis, :]
        c, h, w = mant.shape[1] * attrs.groups, 1, item[1]
        stride: tuple[int, ...] = (1, attrs.stride[0])
        padding: tuple[int, ...] = (0, attrs.padding[0])
        dilation: tuple[int, ...] = (1, attrs.dilation[0])
    else:
        _, h, w = item
        c = mant.shape[1] * attrs.groups
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
    return ChipWeights("conv", node.op, e, graded, mant.shape[0], attrs.groups, conv=conv,
                        rf_pad=((padding[0], padding[0]), (padding[1], padding[1])), rf_taps=taps)


class Program:
    """A quantized graph with its kernels prepared once, ready to run many batches.

    ``lowered``: its layer program (:func:`snncc.lower.lower` for the graph's target
    when not given); a split weight op also gets the kernels of its parts, each with
    exponent 0, since the op's exponent applies once, to the joined sum.
    """

    def __init__(self, qg: QuantizedGraph, lowered: LayerProgram | None = None) -> None:
        self.qg = qg
        self.graph = qg.graph
        self.lowered = lower(qg) if lowered is None else lowered
        self.schedule: dict[str, list[int]] = {k: list(v) for k, v in self.lowered.schedule.items()}
        self.weights: dict[str, ChipWeights] = {
            name: _prepare_weights(self.graph.nodes[name],
                                   self.graph.nodes[self.graph.nodes[name].inputs[0]],
                                   wq.mantissa, wq.weight_exp, wq.graded)
            for name, wq in qg.weights.items()
        }
        self.neurons: dict[str, NeuronConsts] = {
            name: NeuronConsts(decay_multiplier_u(nq.du), decay_multiplier_v(nq.dv),
                                lif_effective_bias(nq.bias_mant, nq.bias_exp),
                                int(nq.vth) << VTH_SHIFT, nq.input_shift)
            for name, nq in qg.neurons.items()
        }
        self.parts: dict[str, list[ChipWeights]] = {
            op: [_prepare_weights(self.graph.nodes[op],
                                  self.graph.nodes[self.graph.nodes[op].inputs[0]],
                                  qg.weights[op].mantissa[:, c0:c1], 0, qg.weights[op].graded)
                 for c0, c1 in split.channels]
            for op, split in self.lowered.splits.items()}
        self.relays = set(self.lowered.relays)
        self.accumulators = self.lowered.accumulators

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.graph.nodes[self.graph.inputs[0]].type.shape
