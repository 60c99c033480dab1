"""Reductions. A reduction over axis 0 of a [T, ...] tensor reduces over time:
that is the readout (the classifier's mean over time steps)."""

from __future__ import annotations

import math

import numpy as np
import torch

from snncc.ir.op import Attrs, InferContext, OpDef, Temporal, register_op
from snncc.ir.types import Layout, TensorType


class ReduceAttrs(Attrs):
    dims: tuple[int, ...]
    keepdim: bool = False


def _dims(attrs: ReduceAttrs, ndim: int) -> list[int]:
    out = []
    for d in attrs.dims:
        n = d + ndim if d < 0 else d
        if not 0 <= n < ndim:
            raise ValueError(f"reduction axis {d} out of range for {ndim} axes")
        out.append(n)
    return sorted(set(out))


class _Reduce(OpDef):
    attrs_type = ReduceAttrs
    zero_preserving = True  # mean, sum and amax of zeros
    monotone = True

    @classmethod
    def temporal(cls, attrs: Attrs, ins: list[TensorType]) -> Temporal:
        assert isinstance(attrs, ReduceAttrs)
        x = ins[0]
        if x.layout != Layout.STATIC and 0 in _dims(attrs, len(x.shape)):
            return Temporal.REDUCE_TIME
        return Temporal.PER_STEP

    @classmethod
    def reduced(cls, attrs: ReduceAttrs, x: TensorType) -> tuple[tuple[int, ...], Layout, int]:
        dims = _dims(attrs, len(x.shape))
        n = math.prod(x.shape[d] for d in dims)
        if attrs.keepdim:
            shape = tuple(1 if i in dims else s for i, s in enumerate(x.shape))
        else:
            shape = tuple(s for i, s in enumerate(x.shape) if i not in dims)
        layout = Layout.STATIC if 0 in dims else x.layout
        return shape, layout, n

    @classmethod
    def split_leading(cls, attrs: Attrs, ndim: int) -> Attrs | None:
        assert isinstance(attrs, ReduceAttrs)
        dims = _dims(attrs, ndim)
        if 0 in dims:
            return None
        return ReduceAttrs(dims=tuple(d + 1 for d in dims), keepdim=attrs.keepdim)


@register_op
class Mean(_Reduce):
    name = "mean"

    @classmethod
    def infer(
        cls, attrs: Attrs, ins: list[TensorType], params: dict[str, np.ndarray], ctx: InferContext
    ) -> TensorType:
        assert isinstance(attrs, ReduceAttrs)
        x = ins[0]
        shape, layout, n = cls.reduced(attrs, x)
        return TensorType(shape=shape, lo=x.lo, hi=x.hi, integer=x.integer and n == 1,
                          layout=layout)

    @classmethod
    def evaluate(cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]) -> torch.Tensor:
        assert isinstance(attrs, ReduceAttrs)
        return ins[0].mean(dim=attrs.dims, keepdim=attrs.keepdim)


@register_op
class Sum(_Reduce):
    name = "sum"
    scale_commutes = True

    @classmethod
    def infer(
        cls, attrs: Attrs, ins: list[TensorType], params: dict[str, np.ndarray], ctx: InferContext
    ) -> TensorType:
        assert isinstance(attrs, ReduceAttrs)
        x = ins[0]
        shape, layout, n = cls.reduced(attrs, x)
        lo = n * x.lo if x.lo else 0.0
        hi = n * x.hi if x.hi else 0.0
        return TensorType(shape=shape, lo=lo, hi=hi, integer=x.integer, layout=layout)

    @classmethod
    def evaluate(cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]) -> torch.Tensor:
        assert isinstance(attrs, ReduceAttrs)
        return ins[0].sum(dim=attrs.dims, keepdim=attrs.keepdim)


@register_op
class Amax(_Reduce):
    """Max over axes: of spikes an OR (SPIKE stays SPIKE); over axis 0 of a [T, ...]
    tensor it reduces time (a readout), as sum and mean do."""

    name = "amax"
    scale_commutes = True  # for positive scales: max(c x) == c max(x)

    @classmethod
    def commutes_with_scale(cls, attrs: Attrs, c: float) -> bool:
        return c > 0

    @classmethod
    def infer(
        cls, attrs: Attrs, ins: list[TensorType], params: dict[str, np.ndarray], ctx: InferContext
    ) -> TensorType:
        assert isinstance(attrs, ReduceAttrs)
        x = ins[0]
        if not attrs.dims:
            raise ValueError("amax: no axes to reduce (give them; () would reduce all)")
        shape, layout, n = cls.reduced(attrs, x)
        if n == 0:
            raise ValueError(f"amax: reduces an empty axis of {x.shape}")
        return x.with_(shape=shape, layout=layout, analog=False)

    @classmethod
    def evaluate(cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]) -> torch.Tensor:
        assert isinstance(attrs, ReduceAttrs)
        return ins[0].amax(dim=attrs.dims, keepdim=attrs.keepdim)
