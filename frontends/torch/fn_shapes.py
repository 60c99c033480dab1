"""Sizes, moves, indexing and joins: the structural torch functions.

Size queries are answered from the meta tensor (plain Python ints). Moves are
emitted on the IR value with the user's dims shifted past a hidden time axis.
Two idioms build the time axis itself: repeating a static image over a new
leading axis (`x.unsqueeze(0).repeat(T, 1, 1, 1, 1)`, einops `repeat`) fixes T
when the input had no time axis, and `torch.stack` of the T steps of a loop
gives back the whole time series.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from snncc.frontends.torch.functions import arg, handles, ints, tensor_arg
from snncc.frontends.torch.tensor import FULL, TracedTensor, View
from snncc.ir.types import Layout

if TYPE_CHECKING:
    from snncc.frontends.torch.session import Session


# -- what the user's Python asks about a tensor ---------------------------------
@handles("get:shape", "size", "dim", "get:ndim", "numel", "nelement", "__len__", "__format__",
         "get:is_cuda", "get:is_sparse", "get:layout", "element_size", "__hash__")
def _meta_query(s: Session, args: list[Any], kwargs: dict[str, Any]) -> Any:
    with torch._C.DisableTorchFunctionSubclass():
        if s.current == "__hash__":
            return id(args[0])
        return s.func(*args, **kwargs)


@handles("get:dtype")
def _dtype(s: Session, args: list[Any], kwargs: dict[str, Any]) -> Any:
    return torch.float32


@handles("get:device")
def _device(s: Session, args: list[Any], kwargs: dict[str, Any]) -> Any:
    return torch.device("cpu")


@handles("get:requires_grad")
def _requires_grad(s: Session, args: list[Any], kwargs: dict[str, Any]) -> Any:
    return False


@handles("get:grad_fn", "get:grad")
def _none(s: Session, args: list[Any], kwargs: dict[str, Any]) -> Any:
    return None


@handles("contiguous", "clone", "detach", "detach_", "float", "double", "half", "to", "type_as",
         "cpu", "cuda", "requires_grad_", "get:data", "__deepcopy__")
def _same(s: Session, args: list[Any], kwargs: dict[str, Any]) -> TracedTensor:
    return tensor_arg(s, args, kwargs, 0, "self")


# -- moves --------------------------------------------------------------------------
def ir_shape(x: TracedTensor, visible: tuple[int, ...], s: Session) -> tuple[int, ...]:
    return (s.ir_type(x).shape[0], *visible) if x.time_view.hides_time else visible


def reshape_to(s: Session, x: TracedTensor, visible: tuple[int, ...]) -> TracedTensor:
    if visible == tuple(x.shape):
        return x
    return s.emit("reshape", [x], {"shape": ir_shape(x, visible, s)})


@handles("reshape", "view")
def _reshape(s: Session, args: list[Any], kwargs: dict[str, Any]) -> TracedTensor:
    x = tensor_arg(s, args, kwargs, 0, "self")
    spec = args[1:] if len(args) > 1 else [kwargs.get("shape", kwargs.get("size", ()))]
    if len(spec) == 1 and isinstance(spec[0], torch.dtype):
        return x  # x.view(dtype): the IR computes in float
    shape = list(ints(spec))
    numel = math.prod(x.shape)
    if shape.count(-1) == 1:
        known = math.prod(d for d in shape if d != -1)
        shape[shape.index(-1)] = numel // known if known and numel % known == 0 else -1
    if math.prod(shape) != numel or any(d < 0 for d in shape):
        raise s.error("SNN-FE004", f"cannot reshape a tensor of shape {tuple(x.shape)} to "
                      f"{tuple(ints(spec))}", "the example input's shape does not fit the model "
                      "(--input-shape)")
    return reshape_to(s, x, tuple(shape))


@handles("flatten")
def _flatten(s: Session, args: list[Any], kwargs: dict[str, Any]) -> TracedTensor:
    x = tensor_arg(s, args, kwargs, 0, "self")
    if x.dim() == 0:
        return reshape_to(s, x, (1,))
    start = s.axis(x, arg(args, kwargs, 1, "start_dim", 0))
    end = s.axis(x, arg(args, kwargs, 2, "end_dim", -1))
    if start >= end:
        return x
    return s.emit("flatten", [x], {"start": start, "end": end})


@handles("transpose", "swapaxes", "swapdims")
def _transpose(s: Session, args: list[Any], kwargs: dict[str, Any]) -> TracedTensor:
    x = tensor_arg(s, args, kwargs, 0, "self")
    a = s.axis(x, arg(args, kwargs, 1, "dim0"))
    b = s.axis(x, arg(args, kwargs, 2, "dim1"))
    if a == b:
        return x
    if s.graph.nodes[x.ir_ref].op == "input" and 0 in (a, b):  # may declare time: a permute
        order = list(range(x.dim()))
        order[a], order[b] = order[b], order[a]
        return permute(s, x, tuple(order))
    return s.emit("transpose", [x], {"dim0": a, "dim1": b})


@handles("t", "get:T", "get:mT")
def _t(s: Session, args: list[Any], kwargs: dict[str, Any]) -> TracedTensor:
    x = tensor_arg(s, args, kwargs, 0, "self")
    if x.dim() < 2:
        return x
    return _transpose(s, [x, -2, -1], {})


def permute(s: Session, x: TracedTensor, dims: tuple[int, ...]) -> TracedTensor:
    ir = [s.axis(x, d) for d in dims]
    if sorted(ir) != sorted(set(ir)) or len(ir) != x.dim():
        raise s.error("SNN-FE004", f"{dims} is not a permutation of {x.dim()} axes",
                      "give each axis once")
    full = ([0] if x.time_view.hides_time else []) + ir
    if full == sorted(full):
        return x
    if s.graph.nodes[x.ir_ref].op == "input" and full[0] != 0:  # [B, T, ...] -> [T, B, ...]?
        s.moved_input_axis = full[0]
        if s.mode.time_axis == full[0]:
            return s.emit("permute", [x], {"dims": tuple(full), "declares_time": True})
    return s.emit("permute", [x], {"dims": tuple(full)})


@handles("permute")
def _permute(s: Session, args: list[Any], kwargs: dict[str, Any]) -> TracedTensor:
    x = tensor_arg(s, args, kwargs, 0, "self")
    return permute(s, x, ints(args[1:] if len(args) > 1 else kwargs["dims"]))


@handles("movedim", "moveaxis")
def _movedim(s: Session, args: list[Any], kwargs: dict[str, Any]) -> TracedTensor:
    x = tensor_arg(s, args, kwargs, 0, "self")
    n = x.dim()
    src = [d % n for d in ints(arg(args, kwargs, 1, "source"))]
    dst = [d % n for d in ints(arg(args, kwargs, 2, "destination"))]
    order = [d for d in range(n) if d not in src]
    for d, sd in sorted(zip(dst, src)):
        order.insert(d, sd)
    return permute(s, x, tuple(order))


@handles("unsqueeze")
def _unsqueeze(s: Session, args: list[Any], kwargs: dict[str, Any]) -> TracedTensor:
    x = tensor_arg(s, args, kwargs, 0, "self")
    dim = int(arg(args, kwargs, 1, "dim"))
    step = x.time_view.step
    if step is not None and step >= 0 and not x.time_view.slab and dim in (0, -x.dim() - 1):
        return s.wrap(x.ir_ref, View(step=step, slab=True))  # y_seq[t].unsqueeze(0)
    return s.emit("unsqueeze", [x], {"dim": s.axis(x, dim, extra=1)})


@handles("squeeze")
def _squeeze(s: Session, args: list[Any], kwargs: dict[str, Any]) -> TracedTensor:
    x = tensor_arg(s, args, kwargs, 0, "self")
    dim = arg(args, kwargs, 1, "dim")
    n = x.dim()
    dims = set(range(n)) if dim is None else {int(d) % n for d in ints(dim)} if n else set()
    shape = tuple(d for i, d in enumerate(x.shape) if not (i in dims and d == 1))
    return reshape_to(s, x, shape)


def _starts_time(s: Session, x: TracedTensor, new_axis: bool, count: int) -> None:
    """A static value repeated over a new leading axis, while T is unknown: that
    axis is time (`x.unsqueeze(0).repeat(T, ...)` of a [B, C, H, W] image)."""
    if s.graph.time_steps or s.mode.probe or x.time_view.hides_time or count < 1:
        return
    node = s.graph.nodes[x.ir_ref]
    fresh = new_axis or (node.op == "unsqueeze" and getattr(node.attrs, "dim", None) == 0)
    if fresh and node.type.layout == Layout.STATIC:
        s.graph.time_steps = count


def repeat(s: Session, x: TracedTensor, reps: tuple[int, ...]) -> TracedTensor:
    if len(reps) < x.dim():
        raise s.error("SNN-FE004", f"repeat of a {x.dim()}-D tensor with {len(reps)} counts",
                      "give one count per axis")
    while len(reps) > x.dim():  # new leading axes
        _starts_time(s, x, True, reps[0])
        x = s.emit("unsqueeze", [x], {"dim": s.axis(x, 0, extra=1)})
    _starts_time(s, x, False, reps[0] if x.shape[0] == 1 else 0)
    if all(r == 1 for r in reps):
        return x
    full = ((1,) if x.time_view.hides_time else ()) + tuple(reps)
    return s.emit("repeat", [x], {"repeats": full})


@handles("repeat")
def _repeat(s: Session, args: list[Any], kwargs: dict[str, Any]) -> TracedTensor:
    x = tensor_arg(s, args, kwargs, 0, "self")
    return repeat(s, x, ints(args[1:] if len(args) > 1 else kwargs["repeats"]))


@handles("expand", "expand_as")
def _expand(s: Session, args: list[Any], kwargs: dict[str, Any]) -> TracedTensor:
    x = tensor_arg(s, args, kwargs, 0, "self")
    if s.current == "expand_as":
        sizes = tuple(args[1].shape)
    else:
        sizes = ints(args[1:] if len(args) > 1 else kwargs["size"])
    lead = len(sizes) - x.dim()
    if lead < 0:
        raise s.error("SNN-FE004", f"expand of a {x.dim()}-D tensor to {sizes}",
                      "give at least one size per axis")
    have = (1,) * lead + tuple(x.shape)
    reps = []
    for want, cur in zip(sizes, have):
        if want == -1 or want == cur:
            reps.append(1)
        elif cur == 1:
            reps.append(want)
        else:
            raise s.error("SNN-FE004", f"cannot expand axis of size {cur} to {want}",
                          "only axes of size 1 expand")
    return repeat(s, x, tuple(reps))


# -- indexing ------------------------------------------------------------------------
def take(s: Session, x: TracedTensor, dim: int, start: int, stop: int, step: int = 1
         ) -> TracedTensor:
    """x[..., start:stop:step, ...] on visible axis `dim`."""
    size = x.shape[dim]
    if (start, stop, step) == (0, size, 1):
        return x
    return s.emit("slice", [x], {"dim": s.axis(x, dim), "start": start, "stop": stop,
                                 "step": step})


def _is_time_axis(s: Session, x: TracedTensor) -> bool:
    ty = s.ir_type(x)
    return not x.time_view.hides_time and ty.layout == Layout.TIME and bool(s.graph.time_steps)


@handles("__getitem__")
def _getitem(s: Session, args: list[Any], kwargs: dict[str, Any]) -> TracedTensor:
    x, idx = args[0], args[1]
    idx = idx if isinstance(idx, tuple) else (idx,)
    if any(isinstance(i, (torch.Tensor, list)) for i in idx):
        raise s.error("SNN-FE003", "indexing with a tensor or a list (gather) is not supported",
                      "index with integers and slices")
    real = sum(1 for i in idx if i is not None and i is not Ellipsis)
    if Ellipsis in idx:
        k = idx.index(Ellipsis)
        idx = idx[:k] + (slice(None),) * (x.dim() - real) + idx[k + 1:]
    out, d = x, 0
    drop: list[int] = []
    for i in idx:
        if i is None:
            out = s.emit("unsqueeze", [out], {"dim": s.axis(out, d, extra=1)})
            d += 1
        elif isinstance(i, slice):
            start, stop, step = i.indices(out.shape[d])
            if step < 0:
                raise s.error("SNN-FE003", "slicing with a negative step is not supported",
                              "use flip-free slices")
            out = take(s, out, d, start, max(start, stop), step)
            d += 1
        else:
            k = int(i)
            size = out.shape[d]
            if not -size <= k < size:
                raise s.error("SNN-FE004", f"index {k} is out of range for an axis of size "
                              f"{size}", "check the example input's shape")
            k %= size
            if d == 0 and out is x and _is_time_axis(s, x) and not drop:
                out = s.wrap(x.ir_ref, View(step=k))  # x_seq[t]: one step of the sequence
                continue
            out = take(s, out, d, k, k + 1)
            drop.append(d)
            d += 1
    if drop:
        out = reshape_to(s, out, tuple(n for j, n in enumerate(out.shape) if j not in drop))
    return out


def _pieces(s: Session, x: TracedTensor, dim: int, sizes: list[int]) -> tuple[TracedTensor, ...]:
    out, start = [], 0
    for n in sizes:
        out.append(take(s, x, dim, start, start + n))
        start += n
    return tuple(out)


@handles("chunk")
def _chunk(s: Session, args: list[Any], kwargs: dict[str, Any]) -> tuple[TracedTensor, ...]:
    x = tensor_arg(s, args, kwargs, 0, "self")
    chunks = int(arg(args, kwargs, 1, "chunks"))
    dim = int(arg(args, kwargs, 2, "dim", 0)) % x.dim()
    size = x.shape[dim]
    each = -(-size // chunks)
    return _pieces(s, x, dim, [min(each, size - i) for i in range(0, size, each)])


@handles("split")
def _split(s: Session, args: list[Any], kwargs: dict[str, Any]) -> tuple[TracedTensor, ...]:
    x = tensor_arg(s, args, kwargs, 0, "self")
    spec = arg(args, kwargs, 1, "split_size_or_sections", kwargs.get("split_size"))
    dim = int(arg(args, kwargs, 2, "dim", 0)) % x.dim()
    size = x.shape[dim]
    if isinstance(spec, (list, tuple)):
        sizes = [int(v) for v in spec]
    else:
        sizes = [min(int(spec), size - i) for i in range(0, size, int(spec))]
    return _pieces(s, x, dim, sizes)


@handles("unbind")
def _unbind(s: Session, args: list[Any], kwargs: dict[str, Any]) -> tuple[TracedTensor, ...]:
    x = tensor_arg(s, args, kwargs, 0, "self")
    dim = int(arg(args, kwargs, 1, "dim", 0)) % x.dim()
    return tuple(_getitem(s, [x, (slice(None),) * dim + (i,)], {}) for i in range(x.shape[dim]))


# -- joins -----------------------------------------------------------------------------
def _tensors(s: Session, seq: Any) -> list[TracedTensor]:
    items = list(seq)
    if not items or not all(isinstance(t, TracedTensor) for t in items):
        raise s.error("SNN-FE003", f"'{s.current}' of constant tensors with activations",
                      "join activations only; add constants through a layer")
    return items


@handles("cat", "concat", "concatenate")
def _cat(s: Session, args: list[Any], kwargs: dict[str, Any]) -> TracedTensor:
    ts = _tensors(s, arg(args, kwargs, 0, "tensors"))
    if all(t.time_view.slab for t in ts):
        return _join_steps(s, ts, int(arg(args, kwargs, 1, "dim", 0)))
    if len(ts) == 1:
        return ts[0]
    return s.emit("cat", ts, {"dim": s.axis(ts[0], arg(args, kwargs, 1, "dim", 0))})


def _join_steps(s: Session, ts: list[TracedTensor], dim: int) -> TracedTensor:
    """The T steps of a loop, stacked (or cat of `x_t.unsqueeze(0)`): the whole sequence,
    with time moved to `dim`."""
    steps = [t.time_view.step for t in ts]
    T = s.graph.time_steps
    if steps != list(range(T)) or len({t.ir_ref for t in ts}) != 1:
        raise s.error("SNN-FE007", f"'{s.current}' of time steps {steps} of a loop over "
                      f"T={T} steps", "join every step of one value, in order")
    whole = s.wrap(ts[0].ir_ref, FULL)
    d = dim % whole.dim()
    if d == 0:
        return whole
    order = list(range(1, whole.dim()))
    order.insert(d, 0)
    return permute(s, whole, tuple(order))


@handles("stack")
def _stack(s: Session, args: list[Any], kwargs: dict[str, Any]) -> TracedTensor:
    ts = _tensors(s, arg(args, kwargs, 0, "tensors"))
    dim = int(arg(args, kwargs, 1, "dim", 0))
    steps = [t.time_view.step for t in ts]
    if all(st is not None and st >= 0 for st in steps):
        return _join_steps(s, ts, dim)
    ups = [s.emit("unsqueeze", [t], {"dim": s.axis(t, dim, extra=1)}) for t in ts]
    return ups[0] if len(ups) == 1 else s.emit("cat", ups, {"dim": s.axis(ups[0], dim)})
