"""Weight ops: conv and linear. Each output is a sum of weight x activation products,
so the spike-only check classifies them by the kind of their activation input."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from snncc.ir.op import Attrs, Cost, InferContext, Multiplies, OpDef, register_op
from snncc.ir.types import TensorType


class ConvAttrs(Attrs):
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int = 1


def _conv_out(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


class _Conv(OpDef):
    attrs_type = ConvAttrs
    params = ("weight",)
    optional_params = ("bias",)
    multiplies = Multiplies.WEIGHT
    leading_dims_agnostic = True
    spatial: int = 2

    @classmethod
    def infer(
        cls, attrs: Attrs, ins: list[TensorType], params: dict[str, np.ndarray], ctx: InferContext
    ) -> TensorType:
        assert isinstance(attrs, ConvAttrs)
        x = ins[0]
        w = params["weight"]
        n = cls.spatial
        if len(x.shape) < n + 2 or x.shape[-n - 1] != w.shape[1] * attrs.groups:
            raise ValueError(
                f"{cls.name}: input {x.shape} has {x.shape[-n - 1] if len(x.shape) > n else '?'}"
                f" channels, weight {w.shape} expects {w.shape[1] * attrs.groups}"
            )
        spatial = tuple(
            _conv_out(x.shape[-n + i], w.shape[2 + i], attrs.stride[i], attrs.padding[i],
                      attrs.dilation[i])
            for i in range(n)
        )
        return TensorType(shape=(*x.shape[: -n - 1], w.shape[0], *spatial), layout=x.layout)

    @classmethod
    def evaluate(
        cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]
    ) -> torch.Tensor:
        assert isinstance(attrs, ConvAttrs)
        x = ins[0]
        n = cls.spatial
        lead = x.shape[: -n - 1]
        flat = x.reshape(-1, *x.shape[-n - 1 :])
        fn = F.conv2d if n == 2 else F.conv1d
        y = fn(flat, params["weight"], params.get("bias"), attrs.stride, attrs.padding,
               attrs.dilation, attrs.groups)
        return y.reshape(*lead, *y.shape[1:])

    @classmethod
    def cost(
        cls, attrs: Attrs, ins: list[TensorType], out: TensorType, params: dict[str, np.ndarray]
    ) -> Cost:
        w = params["weight"]
        fan_in = math.prod(w.shape[1:])
        return Cost(synapses=out.numel * fan_in)


@register_op
class Conv2d(_Conv):
    name = "conv2d"
    spatial = 2
    channel_axis = -3


@register_op
class Conv1d(_Conv):
    name = "conv1d"
    spatial = 1
    channel_axis = -2


@register_op
class Linear(OpDef):
    name = "linear"
    channel_axis = -1
    params = ("weight",)
    optional_params = ("bias",)
    multiplies = Multiplies.WEIGHT
    leading_dims_agnostic = True

    @classmethod
    def infer(
        cls, attrs: Attrs, ins: list[TensorType], params: dict[str, np.ndarray], ctx: InferContext
    ) -> TensorType:
        x = ins[0]
        w = params["weight"]
        if not x.shape or x.shape[-1] != w.shape[1]:
            raise ValueError(f"linear: input {x.shape} does not end in {w.shape[1]} features")
        return TensorType(shape=(*x.shape[:-1], w.shape[0]), layout=x.layout)

    @classmethod
    def evaluate(
        cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]
    ) -> torch.Tensor:
        return F.linear(ins[0], params["weight"], params.get("bias"))

    @classmethod
    def cost(
        cls, attrs: Attrs, ins: list[TensorType], out: TensorType, params: dict[str, np.ndarray]
    ) -> Cost:
        return Cost(synapses=out.numel * params["weight"].shape[1])
