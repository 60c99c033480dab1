"""Arithmetic, products, reductions and masks over time.

Elementwise ops of two activations become `add`/`sub`/`mul`; with a Python
number (or a one-element constant) `shift`/`scale`/`rsub`; with a constant 0/1
vector over time steps a `time_mask`. Adding up the steps of a loop
(`out += fc(s[t])`) is kept as a partial sum over steps until every step is in
it, when it becomes a sum over the time axis (the session does that).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from snncc.frontends.torch.functions import arg, handles, tensor_arg
from snncc.frontends.torch.tensor import TracedTensor, View
from snncc.ir.types import ValueKind

if TYPE_CHECKING:
    from snncc.frontends.torch.session import Session

_KINDS = {
    "add": ("add", "__add__", "__iadd__", "__radd__"),
    "sub": ("sub", "subtract", "__sub__", "__isub__", "__rsub__", "rsub"),
    "mul": ("mul", "multiply", "__mul__", "__imul__", "__rmul__"),
    "div": ("div", "divide", "true_divide", "__truediv__", "__itruediv__",
            "__rtruediv__", "__div__", "__rdiv__"),
}
_REFLECTED = {"__radd__", "__rsub__", "__rmul__", "__rtruediv__", "__rdiv__"}


def _scalar(s: Session, v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, torch.Tensor) and not isinstance(v, TracedTensor) and v.numel() == 1:
        return float(v.detach().reshape(()))
    return None


def _steps(v: View) -> frozenset[int] | None:
    """The time steps a view adds up; None for a whole tensor or hidden time."""
    if v.summed:
        return v.summed
    if v.step is None or v.step < 0 or v.slab:
        return None
    return frozenset({v.step})


def _accumulate(s: Session, a: TracedTensor, b: TracedTensor) -> TracedTensor | None:
    """s[t0] + s[t1] (+ ...) of one sequence inside a loop over time: a partial sum."""
    if a.ir_ref != b.ir_ref or not (a.time_view.hides_time and b.time_view.hides_time):
        return None
    sa, sb = _steps(a.time_view), _steps(b.time_view)
    if sa is None or sb is None or sa & sb:
        return None
    return s.wrap(a.ir_ref, View(summed=sa | sb))


def _arith(kind: str) -> Any:
    def handler(s: Session, args: list[Any], kwargs: dict[str, Any]) -> Any:
        a, b = args[0], arg(args, kwargs, 1, "other")
        if s.current in _REFLECTED:
            a, b = b, a
        alpha = kwargs.get("alpha", 1)
        if alpha != 1:
            if not isinstance(b, TracedTensor):
                b = b * alpha
            else:
                b = s.emit("scale", [b], {"value": float(alpha)})
        if isinstance(a, TracedTensor) and isinstance(b, TracedTensor):
            if kind == "add":
                acc = _accumulate(s, a, b)
                if acc is not None:
                    return acc
            if kind == "div":
                raise s.error("SNN-FE003", "division of two activations",
                              "a spiking model divides by constants only")
            return s.emit(kind, [a, b])
        x, c = (a, b) if isinstance(a, TracedTensor) else (b, a)
        if kind == "mul" and _over_time(s, x, c):
            return time_mask(s, x, c)
        value = _scalar(s, c)
        if value is None:
            return _with_constant(s, kind, x, c)
        if x is a:  # x (op) c
            if kind in ("add", "sub"):
                v = value if kind == "add" else -value
                return x if v == 0 else s.emit("shift", [x], {"value": v})
            v = value if kind == "mul" else (1.0 / value if value else math.inf)
            return x if v == 1 else s.emit("scale", [x], {"value": v})
        # c (op) x
        if kind == "add":
            return x if value == 0 else s.emit("shift", [x], {"value": value})
        if kind == "mul":
            return x if value == 1 else s.emit("scale", [x], {"value": value})
        if kind == "sub":
            return s.emit("rsub", [x], {"value": value})
        raise s.error("SNN-FE003", "a number divided by an activation",
                      "a spiking model divides by constants only")

    return handler


for _kind, _names in _KINDS.items():
    handles(*_names)(_arith(_kind))


def _over_time(s: Session, x: TracedTensor, c: Any) -> bool:
    """A constant [T] or [T, 1, ...] tensor times a time-major activation: a mask over
    time (even at T=1, where it has one element like a scalar)."""
    T = s.graph.time_steps
    return (isinstance(c, torch.Tensor) and c.dim() >= 1 and c.shape[0] == T == c.numel()
            and not x.time_view.hides_time and s.ir_type(x).layout.value == "T")


def _with_constant(s: Session, kind: str, x: TracedTensor, c: Any) -> TracedTensor:
    if isinstance(c, torch.Tensor) and kind == "mul":
        return time_mask(s, x, c)
    if isinstance(c, torch.Tensor) and kind in ("add", "sub") and not bool((c != 0).any()):
        return x  # adding zeros (an accumulator started with torch.zeros)
    what = f"a constant tensor of shape {tuple(c.shape)}" if isinstance(c, torch.Tensor) \
        else f"a {type(c).__name__}"
    raise s.error("SNN-FE003", f"'{s.current}' of an activation with {what}",
                  "only binary masks over time steps ([T, 1, ...] of 0/1) may multiply "
                  "activations; put weights and additive constants in a Linear or Conv module")


@handles("neg", "__neg__", "negative")
def _neg(s: Session, args: list[Any], kwargs: dict[str, Any]) -> TracedTensor:
    return s.emit("scale", [tensor_arg(s, args, kwargs, 0, "self")], {"value": -1.0})


@handles("zeros_like")
def _zeros_like(s: Session, args: list[Any], kwargs: dict[str, Any]) -> TracedTensor:
    return s.emit("scale", [tensor_arg(s, args, kwargs)], {"value": 0.0})


@handles("matmul", "__matmul__", "__rmatmul__", "bmm")
def _matmul(s: Session, args: list[Any], kwargs: dict[str, Any]) -> TracedTensor:
    a, b = args[0], arg(args, kwargs, 1, "other", kwargs.get("mat2"))
    if s.current == "__rmatmul__":
        a, b = b, a
    if not (isinstance(a, TracedTensor) and isinstance(b, TracedTensor)):
        raise s.error("SNN-FE003", "matmul of an activation with a constant",
                      "put weights in an nn.Linear")
    return s.emit("matmul", [a, b])


def _reduce(op: str) -> Any:
    def handler(s: Session, args: list[Any], kwargs: dict[str, Any]) -> TracedTensor:
        x = tensor_arg(s, args, kwargs, 0, "self")
        dim = arg(args, kwargs, 1, "dim")
        keepdim = bool(arg(args, kwargs, 2, "keepdim", False))
        if dim is None or dim == () or dim == []:
            dims = tuple(range(x.dim()))
        else:
            dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
        ir = tuple(sorted({s.axis(x, d) for d in dims}))
        if not ir:
            return x
        return s.emit(op, [x], {"dims": ir, "keepdim": keepdim})

    return handler


handles("mean")(_reduce("mean"))
handles("sum")(_reduce("sum"))
handles("amax")(_reduce("amax"))


def time_mask(s: Session, x: TracedTensor, mask: torch.Tensor,
              module: nn.Module | None = None) -> TracedTensor:
    """x * m for a constant m that is binary and varies over time only: a time_mask."""
    T = s.graph.time_steps
    m = mask.detach().to("cpu", torch.float32)
    if x.time_view.hides_time or m.dim() > 1 and any(d != 1 for d in m.shape[1:]):
        raise s.error("SNN-FE006", f"constant tensor of shape {tuple(m.shape)} multiplies "
                      f"{x.time_view.describe()} of shape {tuple(x.shape)}; only a mask over time "
                      f"of shape [{T}, 1, ...] is supported", "use a TimestepMask (snncc.nn)")
    m = m.flatten()
    if m.numel() != T:
        raise s.error("SNN-FE006", f"time-step mask has {m.numel()} steps but the model runs "
                      f"T={T}", f"give one mask entry per time step ({T})")
    if not bool(((m == 0) | (m == 1)).all()):
        raise s.error("SNN-FE006", f"time-step mask is not binary: {m.tolist()}",
                      "binarize the trained scores (TimestepMask.mask())")
    if s.ir_type(x).kind != ValueKind.SPIKE:
        raise s.error("SNN-FE006", f"time-step mask applied to a {s.ir_type(x).kind.value} "
                      "value, not to a neuron's spikes",
                      "place the mask right after a spiking neuron layer")
    return s.emit("time_mask", [x], {"mask": tuple(int(v) for v in m.tolist())}, module=module)
