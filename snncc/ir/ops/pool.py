"""Pooling. Max-pooling of spikes is an OR and stays SPIKE; average pooling is a
scaled sum, so it turns spikes into REAL values in [0, 1]."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from snncc.ir.op import Attrs, InferContext, OpDef, register_op
from snncc.ir.types import TensorType


class PoolAttrs(Attrs):
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    ceil_mode: bool = False


def _out(size: int, k: int, s: int, p: int, ceil: bool) -> int:
    n = size + 2 * p - k
    o = (-(-n // s) if ceil else n // s) + 1
    if ceil and (o - 1) * s >= size + p:
        o -= 1
    return o


class _Pool2d(OpDef):
    attrs_type = PoolAttrs
    leading_dims_agnostic = True

    @classmethod
    def out_shape(cls, attrs: PoolAttrs, x: TensorType) -> tuple[int, ...]:
        if len(x.shape) < 3:
            raise ValueError(f"{cls.name}: input {x.shape} has no [C, H, W] trailing axes")
        h = _out(x.shape[-2], attrs.kernel[0], attrs.stride[0], attrs.padding[0], attrs.ceil_mode)
        w = _out(x.shape[-1], attrs.kernel[1], attrs.stride[1], attrs.padding[1], attrs.ceil_mode)
        return (*x.shape[:-2], h, w)

    @classmethod
    def apply(cls, attrs: PoolAttrs, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @classmethod
    def evaluate(cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]) -> torch.Tensor:
        assert isinstance(attrs, PoolAttrs)
        x = ins[0]
        flat = x.reshape(-1, *x.shape[-3:])
        y = cls.apply(attrs, flat)
        return y.reshape(*x.shape[:-2], *y.shape[-2:])


@register_op
class MaxPool2d(_Pool2d):
    name = "maxpool2d"
    scale_commutes = True  # for positive scales: max(c x) == c max(x)

    @classmethod
    def infer(
        cls, attrs: Attrs, ins: list[TensorType], params: dict[str, np.ndarray], ctx: InferContext
    ) -> TensorType:
        assert isinstance(attrs, PoolAttrs)
        return ins[0].with_(shape=cls.out_shape(attrs, ins[0]), analog=False)

    @classmethod
    def apply(cls, attrs: PoolAttrs, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x, attrs.kernel, attrs.stride, attrs.padding, ceil_mode=attrs.ceil_mode)


class AvgPoolAttrs(PoolAttrs):
    count_include_pad: bool = True


@register_op
class AvgPool2d(_Pool2d):
    name = "avgpool2d"
    attrs_type = AvgPoolAttrs

    @classmethod
    def infer(
        cls, attrs: Attrs, ins: list[TensorType], params: dict[str, np.ndarray], ctx: InferContext
    ) -> TensorType:
        assert isinstance(attrs, AvgPoolAttrs)
        x = ins[0]
        return TensorType(shape=cls.out_shape(attrs, x), lo=min(x.lo, 0.0), hi=max(x.hi, 0.0),
                          layout=x.layout)

    @classmethod
    def apply(cls, attrs: PoolAttrs, x: torch.Tensor) -> torch.Tensor:
        assert isinstance(attrs, AvgPoolAttrs)
        return F.avg_pool2d(x, attrs.kernel, attrs.stride, attrs.padding, ceil_mode=attrs.ceil_mode,
                            count_include_pad=attrs.count_include_pad)
