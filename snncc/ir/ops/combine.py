"""Ops that join, cut or border tensors: cat, slice, pad.

They compute nothing (a pad writes a constant), so value kinds survive them:
spikes joined, cut or padded with 0 are spikes. None of them may act on axis 0
of a TIME or MERGED tensor: that axis is time (or time x batch), and joining or
cutting time steps is the frontend's business (it stacks a loop's steps
itself); the IR's time axis always holds all T steps.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from snncc.ir.op import Attrs, InferContext, OpDef, register_op
from snncc.ir.ops.elementwise import _is_int
from snncc.ir.ops.structure import _norm
from snncc.ir.types import Layout, TensorType


class CatAttrs(Attrs):
    dim: int  # may be negative


@register_op
class Cat(OpDef):
    """torch.cat: one or more tensors joined along `dim`."""

    name = "cat"
    attrs_type = CatAttrs
    num_inputs = None
    # Not scale-commuting: fold-scales moves a scale of *one* input, and
    # cat(c x, y) != c cat(x, y).

    moves_data = True  # computes nothing: Temporal.STRUCTURAL
    zero_preserving = True
    monotone = True

    @classmethod
    def infer(
        cls, attrs: Attrs, ins: list[TensorType], params: dict[str, np.ndarray], ctx: InferContext
    ) -> TensorType:
        assert isinstance(attrs, CatAttrs)
        if not ins:
            raise ValueError("cat: no inputs")
        first = ins[0]
        n = len(first.shape)
        d = _norm(attrs.dim, n)
        for t in ins[1:]:
            if len(t.shape) != n or any(a != b for i, (a, b) in enumerate(zip(t.shape, first.shape))
                                        if i != d):
                raise ValueError(f"cat: shapes {[t.shape for t in ins]} differ off axis {d}")
        layouts = {t.layout for t in ins}
        if len(layouts) > 1:
            raise ValueError(f"cat: inputs have different time layouts "
                             f"({', '.join(sorted(x.value for x in layouts))})")
        if d == 0 and first.layout != Layout.STATIC:
            raise ValueError("cat: axis 0 is the time axis; time steps are joined by the frontend")
        shape = (*first.shape[:d], sum(t.shape[d] for t in ins), *first.shape[d + 1:])
        return TensorType(shape=shape, lo=min(t.lo for t in ins), hi=max(t.hi for t in ins),
                          integer=all(t.integer for t in ins), analog=any(t.analog for t in ins),
                          layout=first.layout)

    @classmethod
    def evaluate(cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]) -> torch.Tensor:
        assert isinstance(attrs, CatAttrs)
        return torch.cat(ins, dim=attrs.dim)

    @classmethod
    def split_leading(cls, attrs: Attrs, ndim: int) -> Attrs | None:
        assert isinstance(attrs, CatAttrs)
        d = _norm(attrs.dim, ndim)
        return CatAttrs(dim=d + 1) if d >= 1 else None


class SliceAttrs(Attrs):
    """x[..., start:stop:step, ...] on axis `dim`, normalized by the frontend:
    0 <= start <= stop <= size, step >= 1, dim >= 0."""

    dim: int
    start: int
    stop: int
    step: int = 1


@register_op
class Slice(OpDef):
    name = "slice"
    attrs_type = SliceAttrs
    scale_commutes = True

    moves_data = True  # computes nothing: Temporal.STRUCTURAL
    zero_preserving = True
    monotone = True

    @classmethod
    def infer(
        cls, attrs: Attrs, ins: list[TensorType], params: dict[str, np.ndarray], ctx: InferContext
    ) -> TensorType:
        assert isinstance(attrs, SliceAttrs)
        x = ins[0]
        a = attrs
        if not 0 <= a.dim < len(x.shape):
            raise ValueError(f"slice: axis {a.dim} out of range for {len(x.shape)} axes "
                             "(the frontend gives a non-negative axis)")
        size = x.shape[a.dim]
        if not (0 <= a.start <= a.stop <= size and a.step >= 1):
            raise ValueError(f"slice: {a.start}:{a.stop}:{a.step} of an axis of {size} is not "
                             "normalized (0 <= start <= stop <= size, step >= 1)")
        whole = (a.start, a.stop, a.step) == (0, size, 1)
        if a.dim == 0 and x.layout != Layout.STATIC and not whole:
            raise ValueError("slice: axis 0 is the time axis; the IR keeps every time step")
        shape = list(x.shape)
        shape[a.dim] = -(-(a.stop - a.start) // a.step)
        return x.with_(shape=tuple(shape))

    @classmethod
    def evaluate(cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]) -> torch.Tensor:
        assert isinstance(attrs, SliceAttrs)
        index = (slice(None),) * attrs.dim + (slice(attrs.start, attrs.stop, attrs.step),)
        return ins[0][index]

    @classmethod
    def split_leading(cls, attrs: Attrs, ndim: int) -> Attrs | None:
        assert isinstance(attrs, SliceAttrs)
        return attrs.model_copy(update={"dim": attrs.dim + 1}) if attrs.dim >= 1 else None


class PadAttrs(Attrs):
    """Constant padding as `F.pad(x, pads, value=value)`: (before, after) pairs, last
    axis first, non-negative (a negative pad would crop, which is a slice)."""

    pads: tuple[int, ...]
    value: float = 0.0


def _padded_axes(pads: tuple[int, ...], ndim: int) -> dict[int, tuple[int, int]]:
    """Axis -> (before, after), for the axes `pads` touches (validated)."""
    if len(pads) % 2 or len(pads) > 2 * ndim:
        raise ValueError(f"pad: {len(pads)} pads for {ndim} axes (give (before, after) pairs, "
                         "at most one per axis)")
    if any(p < 0 for p in pads):
        raise ValueError(f"pad: negative pads {pads} (only constant, non-negative padding)")
    return {ndim - 1 - j: (pads[2 * j], pads[2 * j + 1]) for j in range(len(pads) // 2)}


@register_op
class Pad(OpDef):
    """Constant padding (RepConv's BNAndPadLayer, explicit `F.pad`); merge-linear-chains
    folds a pad between two convs into the merged conv where exact."""

    name = "pad"
    attrs_type = PadAttrs
    # pad(c x, v) == c pad(x, v) only for v == 0: see commutes_with_scale.
    monotone = True  # the fill is a constant; zeros stay zeros only for v == 0: preserves_zero

    @classmethod
    def preserves_zero(cls, attrs: Attrs) -> bool:
        assert isinstance(attrs, PadAttrs)
        return attrs.value == 0.0

    @classmethod
    def commutes_with_scale(cls, attrs: Attrs, c: float) -> bool:
        assert isinstance(attrs, PadAttrs)
        return attrs.value == 0.0

    @classmethod
    def infer(
        cls, attrs: Attrs, ins: list[TensorType], params: dict[str, np.ndarray], ctx: InferContext
    ) -> TensorType:
        assert isinstance(attrs, PadAttrs)
        x = ins[0]
        axes = _padded_axes(attrs.pads, len(x.shape))
        if x.layout != Layout.STATIC and any(axes.get(0, (0, 0))):
            raise ValueError("pad: axis 0 is the time axis; the IR does not pad time steps")
        if not math.isfinite(attrs.value):
            raise ValueError(f"pad: value {attrs.value} is not finite")
        shape = tuple(s + sum(axes.get(i, (0, 0))) for i, s in enumerate(x.shape))
        if not any(attrs.pads):
            return x
        v = attrs.value
        return x.with_(shape=shape, lo=min(x.lo, v), hi=max(x.hi, v),
                       integer=x.integer and _is_int(v))

    @classmethod
    def evaluate(cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]) -> torch.Tensor:
        assert isinstance(attrs, PadAttrs)
        return F.pad(ins[0], attrs.pads, mode="constant", value=attrs.value)

    @classmethod
    def split_leading(cls, attrs: Attrs, ndim: int) -> Attrs | None:
        """Leading-dims agnostic when no pad reaches axis 0 (zero pads there are dropped)."""
        assert isinstance(attrs, PadAttrs)
        keep = 2 * (ndim - 1)
        if any(attrs.pads[keep:]):
            return None
        return attrs.model_copy(update={"pads": attrs.pads[:keep]})
