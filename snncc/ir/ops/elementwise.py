"""Elementwise arithmetic on activations, with interval rules for value ranges.

Ranges are what make the spike-only check precise: `x + y` of two spikes is a
COUNT in [0, 2]; `1 - s` is SPIKE again; `x * y` of spikes (SEW's AND) stays SPIKE.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from snncc.ir.op import Attrs, Cost, InferContext, Multiplies, OpDef, register_op
from snncc.ir.types import Layout, TensorType


def _broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(torch.broadcast_shapes(torch.Size(a), torch.Size(b)))


def _mul_range(alo: float, ahi: float, blo: float, bhi: float) -> tuple[float, float]:
    def m(x: float, y: float) -> float:
        if x == 0 or y == 0:
            return 0.0  # 0 * inf is 0 here: a zero operand stays zero
        return x * y

    prods = [m(alo, blo), m(alo, bhi), m(ahi, blo), m(ahi, bhi)]
    return min(prods), max(prods)


def _layout(ins: list[TensorType]) -> Layout:
    layouts = {t.layout for t in ins if t.layout != Layout.STATIC or len(ins) == 1}
    return layouts.pop() if len(layouts) == 1 else ins[0].layout


class _Binary(OpDef):
    num_inputs = 2

    @classmethod
    def range(cls, a: TensorType, b: TensorType) -> tuple[float, float]:
        raise NotImplementedError

    @classmethod
    def infer(
        cls, attrs: Attrs, ins: list[TensorType], params: dict[str, np.ndarray], ctx: InferContext
    ) -> TensorType:
        a, b = ins
        try:
            shape = _broadcast(a.shape, b.shape)
        except RuntimeError:
            raise ValueError(f"{cls.name}: shapes {a.shape} and {b.shape} do not broadcast") from None
        lo, hi = cls.range(a, b)
        return TensorType(shape=shape, lo=lo, hi=hi, integer=a.integer and b.integer,
                          layout=_layout(ins))


@register_op
class Add(_Binary):
    name = "add"
    zero_preserving = True
    monotone = True

    @classmethod
    def range(cls, a: TensorType, b: TensorType) -> tuple[float, float]:
        return a.lo + b.lo, a.hi + b.hi

    @classmethod
    def evaluate(cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]) -> torch.Tensor:
        return ins[0] + ins[1]


@register_op
class Sub(_Binary):
    name = "sub"
    zero_preserving = True

    @classmethod
    def range(cls, a: TensorType, b: TensorType) -> tuple[float, float]:
        return a.lo - b.hi, a.hi - b.lo

    @classmethod
    def evaluate(cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]) -> torch.Tensor:
        return ins[0] - ins[1]


@register_op
class Mul(_Binary):
    name = "mul"
    zero_preserving = True
    multiplies = Multiplies.ACTIVATION

    @classmethod
    def range(cls, a: TensorType, b: TensorType) -> tuple[float, float]:
        return _mul_range(a.lo, a.hi, b.lo, b.hi)

    @classmethod
    def evaluate(cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]) -> torch.Tensor:
        return ins[0] * ins[1]


class ScalarAttrs(Attrs):
    value: float


def _is_int(x: float) -> bool:
    return math.isfinite(x) and float(x).is_integer()


class _ScalarOp(OpDef):
    """An activation and a constant scalar c; subclasses give the range rule and the arithmetic."""

    attrs_type = ScalarAttrs
    leading_dims_agnostic = True

    @classmethod
    def range(cls, x: TensorType, c: float) -> tuple[float, float]:
        raise NotImplementedError

    @classmethod
    def apply(cls, x: torch.Tensor, c: float) -> torch.Tensor:
        raise NotImplementedError

    @classmethod
    def infer(
        cls, attrs: Attrs, ins: list[TensorType], params: dict[str, np.ndarray], ctx: InferContext
    ) -> TensorType:
        assert isinstance(attrs, ScalarAttrs)
        x = ins[0]
        lo, hi = cls.range(x, attrs.value)
        return TensorType(shape=x.shape, lo=lo, hi=hi, integer=x.integer and _is_int(attrs.value),
                          layout=x.layout)

    @classmethod
    def evaluate(cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]) -> torch.Tensor:
        assert isinstance(attrs, ScalarAttrs)
        return cls.apply(ins[0], attrs.value)


@register_op
class Scale(_ScalarOp):
    """x * c for a constant scalar c (attention's 0.125, a mean's 1/N)."""

    name = "scale"
    zero_preserving = True  # monotone only for c >= 0: not flagged
    multiplies = Multiplies.SCALAR
    scale_commutes = True

    @classmethod
    def range(cls, x: TensorType, c: float) -> tuple[float, float]:
        return _mul_range(x.lo, x.hi, c, c)

    @classmethod
    def apply(cls, x: torch.Tensor, c: float) -> torch.Tensor:
        return x * c


@register_op
class Shift(_ScalarOp):
    """x + c for a constant scalar c."""

    name = "shift"

    @classmethod
    def range(cls, x: TensorType, c: float) -> tuple[float, float]:
        return x.lo + c, x.hi + c

    @classmethod
    def apply(cls, x: torch.Tensor, c: float) -> torch.Tensor:
        return x + c


@register_op
class RSub(_ScalarOp):
    """c - x for a constant scalar c: `1 - s` of a spike is a spike (SEW's IAND)."""

    name = "rsub"

    @classmethod
    def range(cls, x: TensorType, c: float) -> tuple[float, float]:
        return c - x.hi, c - x.lo

    @classmethod
    def apply(cls, x: torch.Tensor, c: float) -> torch.Tensor:
        return c - x


@register_op
class MatMul(OpDef):
    """Batched activation x activation product (attention's q @ k^T and attn @ v)."""

    name = "matmul"
    zero_preserving = True
    num_inputs = 2
    multiplies = Multiplies.ACTIVATION
    scale_commutes = True

    @classmethod
    def infer(
        cls, attrs: Attrs, ins: list[TensorType], params: dict[str, np.ndarray], ctx: InferContext
    ) -> TensorType:
        a, b = ins
        if len(a.shape) < 2 or len(b.shape) < 2 or a.shape[-1] != b.shape[-2]:
            raise ValueError(f"matmul: shapes {a.shape} @ {b.shape} do not match")
        try:
            batch = _broadcast(a.shape[:-2], b.shape[:-2])
        except RuntimeError:  # torch's message for shapes that do not broadcast
            raise ValueError(f"matmul: batch shapes of {a.shape} @ {b.shape} do not "
                             "broadcast") from None
        k = a.shape[-1]
        plo, phi = _mul_range(a.lo, a.hi, b.lo, b.hi)
        return TensorType(shape=(*batch, a.shape[-2], b.shape[-1]), lo=k * plo if plo else 0.0,
                          hi=k * phi if phi else 0.0, integer=a.integer and b.integer,
                          layout=_layout(ins))

    @classmethod
    def evaluate(cls, attrs: Attrs, params: dict[str, torch.Tensor], ins: list[torch.Tensor]) -> torch.Tensor:
        return ins[0] @ ins[1]


def _matmul_cost(
    cls: type[OpDef], attrs: Attrs, ins: list[TensorType], out: TensorType,
    params: dict[str, np.ndarray],
) -> Cost:
    return Cost(synapses=out.numel * ins[0].shape[-1])


MatMul.cost = classmethod(_matmul_cost)  # type: ignore[method-assign,assignment]
