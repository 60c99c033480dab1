"""Pooling. Max-pooling of spikes is an OR and stays SPIKE; average pooling is a
scaled sum, so it turns spikes into REAL values in [0, 1]. The adaptive pools
use PyTorch's bins (start floor(i * H / out), end ceil((i + 1) * H / out)),
which also cover an output larger than the input: then bins repeat inputs, and
an average of a one-element bin is a copy, so spikes stay spikes."""

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
    zero_preserving = True  # max pads with -inf, average with 0
    monotone = True

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
    def commutes_with_scale(cls, attrs: Attrs, c: float) -> bool:
        return c > 0

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


class AdaptivePoolAttrs(Attrs):
    output_size: tuple[int, int]


def adaptive_bins(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive pooling bins [start, end) over an axis of `size` for `out` outputs."""
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


class _AdaptivePool2d(OpDef):
    """Adaptive pooling over the last two axes of [..., C, H, W]; any leading axes are batch."""

    attrs_type = AdaptivePoolAttrs
    zero_preserving = True
    monotone = True
    leading_dims_agnostic = True

    @classmethod
    def out_shape(cls, attrs: AdaptivePoolAttrs, x: TensorType) -> tuple[int, ...]:
        if len(x.shape) < 3:
            raise ValueError(f"{cls.name}: input {x.shape} has no [C, H, W] trailing axes")
        if min(attrs.output_size) < 1 or min(x.shape[-2:]) < 1:
            raise ValueError(f"{cls.name}: output size {attrs.output_size} of a "
                             f"{x.shape[-2]}x{x.shape[-1]} map")
        return (*x.shape[:-2], *attrs.output_size)

    @classmethod
    def single_bins(cls, attrs: AdaptivePoolAttrs, x: TensorType) -> bool:
        """Every bin holds exactly one input: the pool is a copy (a gather)."""
        return all(e - s == 1 for n, o in zip(x.shape[-2:], attrs.output_size)
                   for s, e in adaptive_bins(n, o))

    @classmethod
    def apply(cls, attrs: AdaptivePoolAttrs, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @classmethod
    def infer(
        cls, attrs: Attrs, ins: list[TensorType], params: dict[str, np.ndarray], ctx: InferContext
    ) -> TensorType:
        assert isinstance(attrs, AdaptivePoolAttrs)
        x = ins[0]
        shape = cls.out_shape(attrs, x)
        single = cls.single_bins(attrs, x)
        # a copy of the analog input is still the analog input; a max or mean of it is not
        return x.with_(shape=shape, analog=x.analog and single,
                       integer=x.integer and cls.keeps_integer(single))

    @classmethod
    def keeps_integer(cls, single: bool) -> bool:
        raise NotImplementedError

    @classmethod
    def evaluate(cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]) -> torch.Tensor:
        assert isinstance(attrs, AdaptivePoolAttrs)
        x = ins[0]
        y = cls.apply(attrs, x.reshape(-1, *x.shape[-3:]))
        return y.reshape(*x.shape[:-2], *y.shape[-2:])


@register_op
class AdaptiveMaxPool2d(_AdaptivePool2d):
    name = "adaptive_maxpool2d"
    scale_commutes = True  # for positive scales, as maxpool2d

    @classmethod
    def commutes_with_scale(cls, attrs: Attrs, c: float) -> bool:
        return c > 0

    @classmethod
    def keeps_integer(cls, single: bool) -> bool:
        return True

    @classmethod
    def apply(cls, attrs: AdaptivePoolAttrs, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_max_pool2d(x, attrs.output_size)


@register_op
class AdaptiveAvgPool2d(_AdaptivePool2d):
    """Its range is the input's (no padding enters a bin); integer only if every bin
    averages one element."""

    name = "adaptive_avgpool2d"

    @classmethod
    def keeps_integer(cls, single: bool) -> bool:
        return single

    @classmethod
    def apply(cls, attrs: AdaptivePoolAttrs, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x, attrs.output_size)
