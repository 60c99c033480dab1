"""Ops that move data without computing: reshape, flatten, transpose, permute,
unsqueeze, repeat, identity. They keep value kinds and ranges, and track where
the time axis goes (SpikingJelly's `flatten(0, 1)` merges time into batch)."""

from __future__ import annotations

import math

import numpy as np
import torch

from snncc.ir.op import Attrs, InferContext, OpDef, register_op
from snncc.ir.types import Layout, TensorType


def _norm(dim: int, ndim: int) -> int:
    d = dim + ndim if dim < 0 else dim
    if not 0 <= d < ndim:
        raise ValueError(f"dimension {dim} out of range for {ndim} axes")
    return d


class _Structural(OpDef):
    scale_commutes = True

    moves_data = True  # computes nothing: Temporal.STRUCTURAL
    relabels = True  # each input element once, elsewhere (Repeat copies: it does not)
    zero_preserving = True
    monotone = True

    @classmethod
    def out_shape_layout(
        cls, attrs: Attrs, x: TensorType, ctx: InferContext
    ) -> tuple[tuple[int, ...], Layout]:
        raise NotImplementedError

    @classmethod
    def infer(
        cls, attrs: Attrs, ins: list[TensorType], params: dict[str, np.ndarray], ctx: InferContext
    ) -> TensorType:
        shape, layout = cls.out_shape_layout(attrs, ins[0], ctx)
        return ins[0].with_(shape=shape, layout=layout)


@register_op
class Identity(_Structural):
    """Dropout in eval mode, `contiguous()`, nn.Identity: removed by canonicalization."""

    name = "identity"
    leading_dims_agnostic = True

    @classmethod
    def out_shape_layout(cls, attrs: Attrs, x: TensorType, ctx: InferContext) -> tuple[tuple[int, ...], Layout]:
        return x.shape, x.layout

    @classmethod
    def evaluate(cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]) -> torch.Tensor:
        return ins[0]


class ReshapeAttrs(Attrs):
    shape: tuple[int, ...]  # fully resolved, no -1


def reshape_layout(old: TensorType, new: tuple[int, ...], ctx: InferContext) -> Layout:
    """Where time is after a reshape: kept if axis 0 still has T entries and the
    split of a merged T*B axis puts T first."""
    T = ctx.time_steps
    if old.layout == Layout.STATIC:
        return Layout.STATIC
    if new and new[0] == T and (old.layout == Layout.TIME and old.shape[0] == T
                                or old.layout == Layout.MERGED):
        return Layout.TIME
    if old.layout == Layout.TIME and new and len(old.shape) > 1 and new[0] == T * old.shape[1]:
        return Layout.MERGED
    if old.layout == Layout.MERGED and new and new[0] == old.shape[0]:
        return Layout.MERGED
    return Layout.STATIC


@register_op
class Reshape(_Structural):
    name = "reshape"
    attrs_type = ReshapeAttrs

    @classmethod
    def out_shape_layout(cls, attrs: Attrs, x: TensorType, ctx: InferContext) -> tuple[tuple[int, ...], Layout]:
        assert isinstance(attrs, ReshapeAttrs)
        if math.prod(attrs.shape) != x.numel:
            raise ValueError(f"reshape: cannot view {x.shape} as {attrs.shape}")
        return attrs.shape, reshape_layout(x, attrs.shape, ctx)

    @classmethod
    def evaluate(cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]) -> torch.Tensor:
        assert isinstance(attrs, ReshapeAttrs)
        return ins[0].reshape(attrs.shape)


class FlattenAttrs(Attrs):
    start: int
    end: int


@register_op
class Flatten(_Structural):
    name = "flatten"
    attrs_type = FlattenAttrs

    @classmethod
    def out_shape_layout(cls, attrs: Attrs, x: TensorType, ctx: InferContext) -> tuple[tuple[int, ...], Layout]:
        assert isinstance(attrs, FlattenAttrs)
        n = len(x.shape)
        if n == 0:
            return (1,), x.layout
        s, e = _norm(attrs.start, n), _norm(attrs.end, n)
        shape = (*x.shape[:s], math.prod(x.shape[s : e + 1]), *x.shape[e + 1 :])
        layout = x.layout
        if s == 0 and e >= 1 and x.layout == Layout.TIME:
            layout = Layout.MERGED if e == 1 else Layout.STATIC
        return shape, layout

    @classmethod
    def evaluate(cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]) -> torch.Tensor:
        assert isinstance(attrs, FlattenAttrs)
        return ins[0].flatten(attrs.start, attrs.end)

    @classmethod
    def split_leading(cls, attrs: Attrs, ndim: int) -> Attrs | None:
        assert isinstance(attrs, FlattenAttrs)
        s, e = _norm(attrs.start, ndim), _norm(attrs.end, ndim)
        return FlattenAttrs(start=s + 1, end=e + 1) if s >= 1 else None


class TransposeAttrs(Attrs):
    dim0: int
    dim1: int


@register_op
class Transpose(_Structural):
    name = "transpose"
    attrs_type = TransposeAttrs

    @classmethod
    def out_shape_layout(cls, attrs: Attrs, x: TensorType, ctx: InferContext) -> tuple[tuple[int, ...], Layout]:
        assert isinstance(attrs, TransposeAttrs)
        n = len(x.shape)
        a, b = _norm(attrs.dim0, n), _norm(attrs.dim1, n)
        shape = list(x.shape)
        shape[a], shape[b] = shape[b], shape[a]
        layout = x.layout if 0 not in (a, b) or a == b else Layout.STATIC
        return tuple(shape), layout

    @classmethod
    def evaluate(cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]) -> torch.Tensor:
        assert isinstance(attrs, TransposeAttrs)
        return ins[0].transpose(attrs.dim0, attrs.dim1)

    @classmethod
    def split_leading(cls, attrs: Attrs, ndim: int) -> Attrs | None:
        assert isinstance(attrs, TransposeAttrs)
        a, b = _norm(attrs.dim0, ndim), _norm(attrs.dim1, ndim)
        return TransposeAttrs(dim0=a + 1, dim1=b + 1) if min(a, b) >= 1 else None


class PermuteAttrs(Attrs):
    dims: tuple[int, ...]
    # The axis moved to the front is time: a batch-first input [B, T, ...] made
    # time-first by the model itself (`x.permute(1, 0, 2, 3, 4)` of event frames).
    declares_time: bool = False


@register_op
class Permute(_Structural):
    name = "permute"
    attrs_type = PermuteAttrs

    @classmethod
    def out_shape_layout(cls, attrs: Attrs, x: TensorType, ctx: InferContext) -> tuple[tuple[int, ...], Layout]:
        assert isinstance(attrs, PermuteAttrs)
        n = len(x.shape)
        dims = [_norm(d, n) for d in attrs.dims]
        if sorted(dims) != list(range(n)):
            raise ValueError(f"permute: {attrs.dims} is not a permutation of {n} axes")
        layout = x.layout if dims[0] == 0 else Layout.STATIC
        if attrs.declares_time:
            if x.layout != Layout.STATIC or x.shape[dims[0]] != ctx.time_steps:
                raise ValueError(f"permute: axis {dims[0]} of {x.shape} ({x.layout.value}) "
                                 f"cannot become the time axis of T={ctx.time_steps} steps")
            layout = Layout.TIME
        return tuple(x.shape[d] for d in dims), layout

    @classmethod
    def evaluate(cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]) -> torch.Tensor:
        assert isinstance(attrs, PermuteAttrs)
        return ins[0].permute(attrs.dims)

    @classmethod
    def split_leading(cls, attrs: Attrs, ndim: int) -> Attrs | None:
        assert isinstance(attrs, PermuteAttrs)
        dims = [_norm(d, ndim) for d in attrs.dims]
        return PermuteAttrs(dims=(0, 1, *(d + 1 for d in dims[1:]))) if dims[0] == 0 else None


class DimAttrs(Attrs):
    dim: int


@register_op
class Unsqueeze(_Structural):
    name = "unsqueeze"
    attrs_type = DimAttrs

    @classmethod
    def out_shape_layout(cls, attrs: Attrs, x: TensorType, ctx: InferContext) -> tuple[tuple[int, ...], Layout]:
        assert isinstance(attrs, DimAttrs)
        d = _norm(attrs.dim, len(x.shape) + 1)
        shape = (*x.shape[:d], 1, *x.shape[d:])
        return shape, (x.layout if d > 0 else Layout.STATIC)

    @classmethod
    def evaluate(cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]) -> torch.Tensor:
        assert isinstance(attrs, DimAttrs)
        return ins[0].unsqueeze(attrs.dim)

    @classmethod
    def split_leading(cls, attrs: Attrs, ndim: int) -> Attrs | None:
        assert isinstance(attrs, DimAttrs)
        d = _norm(attrs.dim, ndim + 1)
        return DimAttrs(dim=d + 1) if d >= 1 else None


class RepeatAttrs(Attrs):
    repeats: tuple[int, ...]


@register_op
class Repeat(_Structural):
    """`x.repeat(T, 1, ...)`: direct encoding repeats the image over time."""

    name = "repeat"
    attrs_type = RepeatAttrs
    # A copy, not a view: every element appears once per repeat, so it is no relabeling
    # (acsim's per-sample relabelings, STRUCTURAL_OPS, exclude it); zeros stay zeros.
    relabels = False

    @classmethod
    def out_shape_layout(cls, attrs: Attrs, x: TensorType, ctx: InferContext) -> tuple[tuple[int, ...], Layout]:
        assert isinstance(attrs, RepeatAttrs)
        r = attrs.repeats
        if len(r) < len(x.shape):
            raise ValueError(f"repeat: {len(r)} repeats for {len(x.shape)} axes")
        padded = (1,) * (len(r) - len(x.shape)) + x.shape
        shape = tuple(a * b for a, b in zip(padded, r))
        layout = x.layout
        if x.layout == Layout.STATIC and padded[0] == 1 and r[0] == ctx.time_steps:
            layout = Layout.TIME
        return shape, layout

    @classmethod
    def evaluate(cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]) -> torch.Tensor:
        assert isinstance(attrs, RepeatAttrs)
        return ins[0].repeat(*attrs.repeats)
