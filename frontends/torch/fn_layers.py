"""Layer functions: convolution, linear, batch norm, pooling, resampling, padding.

`nn.Conv2d`, `nn.Linear`, SpikingJelly's `layer.*` wrappers and users' own
modules all end in these functions (`F.conv2d(x, self.weight, ...)`), so the
layers are converted here, once, with the arguments the module really passed;
the weights are the module's tensors, copied to the IR once per trace.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from snncc.frontends.torch.fn_shapes import reshape_to
from snncc.frontends.torch.functions import arg, handles, ints, tensor_arg
from snncc.frontends.torch.tensor import TracedTensor
from snncc.ir.ops.combine import PadAttrs
from snncc.ir.ops.norm import BatchNormAttrs

if TYPE_CHECKING:
    from snncc.frontends.torch.session import Session


def _n(v: Any, n: int) -> tuple[int, ...]:
    t = ints(v)
    return t * n if len(t) == 1 else t


def _constant(s: Session, v: Any, what: str) -> torch.Tensor | None:
    if isinstance(v, TracedTensor):
        raise s.error("SNN-FE003", f"'{s.current}' with a {what} computed from activations",
                      f"the {what} must be a trained parameter of the model")
    return v


@handles("conv1d", "conv2d")
def _conv(s: Session, args: list[Any], kwargs: dict[str, Any]) -> TracedTensor:
    n = 2 if s.current == "conv2d" else 1
    x = tensor_arg(s, args, kwargs)
    w = _constant(s, arg(args, kwargs, 1, "weight"), "weight")
    b = _constant(s, arg(args, kwargs, 2, "bias"), "bias")
    assert w is not None
    stride = _n(arg(args, kwargs, 3, "stride", 1), n)
    dilation = _n(arg(args, kwargs, 5, "dilation", 1), n)
    padding = arg(args, kwargs, 4, "padding", 0)
    if padding == "valid":
        padding = 0
    elif padding == "same":
        total = [d * (k - 1) for d, k in zip(dilation, w.shape[2:])]
        if any(t % 2 for t in total) or any(st != 1 for st in stride):
            raise s.error("SNN-FE003", "padding='same' with an even kernel or a stride",
                          "give the padding as integers")
        padding = tuple(t // 2 for t in total)
    params = {"weight": w} if b is None else {"weight": w, "bias": b}
    attrs = {"stride": stride, "padding": _n(padding, n), "dilation": dilation,
             "groups": int(arg(args, kwargs, 6, "groups", 1))}
    return s.emit(f"conv{n}d", [x], attrs, params)


@handles("linear")
def _linear(s: Session, args: list[Any], kwargs: dict[str, Any]) -> TracedTensor:
    x = tensor_arg(s, args, kwargs)
    w = _constant(s, arg(args, kwargs, 1, "weight"), "weight")
    b = _constant(s, arg(args, kwargs, 2, "bias"), "bias")
    assert w is not None
    return s.emit("linear", [x], None, {"weight": w} if b is None else {"weight": w, "bias": b})


@handles("batch_norm")
def _batch_norm(s: Session, args: list[Any], kwargs: dict[str, Any]) -> TracedTensor:
    x = tensor_arg(s, args, kwargs)
    mean, var = arg(args, kwargs, 1, "running_mean"), arg(args, kwargs, 2, "running_var")
    weight, bias = arg(args, kwargs, 3, "weight"), arg(args, kwargs, 4, "bias")
    if mean is None or var is None or arg(args, kwargs, 5, "training", False):
        raise s.error("SNN-FE002", "BatchNorm without running statistics "
                      "(track_running_stats=False) normalises with each batch's own statistics",
                      "train with track_running_stats=True so inference uses fixed statistics")
    if x.dim() < 2:
        raise s.error("SNN-FE004", f"batch norm of a {x.dim()}-D tensor", "give it [N, C, ...]")
    eps = float(arg(args, kwargs, 7, "eps", 1e-5))
    if bool((var.detach() + eps <= 0).any()):
        raise s.error("SNN-FE009", "BatchNorm running variance plus eps is not positive",
                      "the checkpoint is damaged: a variance is never negative")
    params = {"running_mean": mean, "running_var": var}
    if weight is not None:
        params["weight"] = _constant(s, weight, "weight")
    if bias is not None:
        params["bias"] = _constant(s, bias, "bias")
    attrs = {"channel_axis": 1 - x.dim(), "eps": eps}
    return s.emit("batchnorm", [x], attrs, params)


def _pool_args(args: list[Any], kwargs: dict[str, Any], n: int) -> tuple[tuple[int, ...], ...]:
    k = _n(arg(args, kwargs, 1, "kernel_size"), n)
    stride = arg(args, kwargs, 2, "stride")
    st = k if stride is None or stride == [] or stride == () else _n(stride, n)
    return k, st, _n(arg(args, kwargs, 3, "padding", 0), n)


@handles("max_pool2d", "max_pool2d_with_indices")
def _max_pool2d(s: Session, args: list[Any], kwargs: dict[str, Any]) -> TracedTensor:
    x = tensor_arg(s, args, kwargs)
    k, st, p = _pool_args(args, kwargs, 2)
    if _n(arg(args, kwargs, 4, "dilation", 1), 2) != (1, 1) or \
            arg(args, kwargs, 6, "return_indices", False):
        raise s.error("SNN-FE003", "max pooling with dilation or return_indices",
                      "use a plain MaxPool2d")
    return s.emit("maxpool2d", [x], {"kernel": k, "stride": st, "padding": p,
                                     "ceil_mode": bool(arg(args, kwargs, 5, "ceil_mode", False))})


@handles("avg_pool2d")
def _avg_pool2d(s: Session, args: list[Any], kwargs: dict[str, Any]) -> TracedTensor:
    x = tensor_arg(s, args, kwargs)
    k, st, p = _pool_args(args, kwargs, 2)
    if arg(args, kwargs, 6, "divisor_override") is not None:
        raise s.error("SNN-FE003", "avg_pool2d with divisor_override", "remove divisor_override")
    return s.emit("avgpool2d", [x], {
        "kernel": k, "stride": st, "padding": p,
        "ceil_mode": bool(arg(args, kwargs, 4, "ceil_mode", False)),
        "count_include_pad": bool(arg(args, kwargs, 5, "count_include_pad", True))})


@handles("max_pool1d", "avg_pool1d")
def _pool1d(s: Session, args: list[Any], kwargs: dict[str, Any]) -> TracedTensor:
    """A 1-D pool is the 2-D pool of a height-1 map (SpikingJelly's VotingLayer)."""
    x = tensor_arg(s, args, kwargs)
    k, st, p = _pool_args(args, kwargs, 1)
    x2 = reshape_to(s, x, (*x.shape[:-1], 1, x.shape[-1]))
    two = [(1, k[0]), (1, st[0]), (0, p[0])]
    if s.current == "max_pool1d":
        out = _max_pool2d(s, [x2, *two], {"ceil_mode": arg(args, kwargs, 5, "ceil_mode", False)})
    else:
        out = _avg_pool2d(s, [x2, *two], {
            "ceil_mode": arg(args, kwargs, 4, "ceil_mode", False),
            "count_include_pad": arg(args, kwargs, 5, "count_include_pad", True)})
    return reshape_to(s, out, (*out.shape[:-2], out.shape[-1]))


@handles("adaptive_avg_pool2d", "adaptive_max_pool2d")
def _adaptive_pool2d(s: Session, args: list[Any], kwargs: dict[str, Any]) -> TracedTensor:
    x = tensor_arg(s, args, kwargs)
    if x.dim() < 3:
        raise s.error("SNN-FE004", f"adaptive pooling of a {x.dim()}-D tensor",
                      "give it [..., C, H, W]")
    size = arg(args, kwargs, 1, "output_size")
    size = (size, size) if not isinstance(size, (tuple, list)) else tuple(size)
    out = tuple(int(o) if o is not None else x.shape[-2 + i] for i, o in enumerate(size))
    if arg(args, kwargs, 2, "return_indices", False):
        raise s.error("SNN-FE003", "adaptive max pooling with return_indices", "remove it")
    if out == tuple(x.shape[-2:]):
        return x
    op = "adaptive_maxpool2d" if "max" in s.current else "adaptive_avgpool2d"
    return s.emit(op, [x], {"output_size": out})


@handles("interpolate", "upsample", "upsample_nearest")
def _interpolate(s: Session, args: list[Any], kwargs: dict[str, Any]) -> TracedTensor:
    x = tensor_arg(s, args, kwargs)
    mode = arg(args, kwargs, 3, "mode", "nearest")
    if mode != "nearest":
        raise s.error("SNN-FE003", f"interpolate(mode={mode!r}) turns spikes into fractions",
                      "use mode='nearest' (spikes stay spikes)")
    spatial = x.dim() - 2
    size, scale = arg(args, kwargs, 1, "size"), arg(args, kwargs, 2, "scale_factor")
    recompute = arg(args, kwargs, 5, "recompute_scale_factor")
    factors: tuple[float, ...] | None = None
    if size is not None:
        out = _n(size, spatial)
    else:
        sc = tuple(float(v) for v in (scale if isinstance(scale, (tuple, list))
                                      else [scale] * spatial))
        out = tuple(int(math.floor(n * f)) for n, f in zip(x.shape[2:], sc))
        factors = None if recompute else sc
    return s.emit("upsample_nearest", [x], {"size": out, "scale_factor": factors})


@handles("pad")
def _pad(s: Session, args: list[Any], kwargs: dict[str, Any]) -> TracedTensor:
    x = tensor_arg(s, args, kwargs)
    pads = ints(arg(args, kwargs, 1, "pad"))
    mode = arg(args, kwargs, 2, "mode", "constant")
    if mode != "constant" or any(p < 0 for p in pads):
        raise s.error("SNN-FE003", f"pad(mode={mode!r}) with pads {pads}",
                      "use constant, non-negative padding")
    if not any(pads):
        return x
    value = arg(args, kwargs, 3, "value")
    return s.emit("pad", [x], {"pads": pads, "value": float(value or 0.0)})


@handles("dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
         "feature_alpha_dropout")
def _dropout(s: Session, args: list[Any], kwargs: dict[str, Any]) -> TracedTensor:
    x = tensor_arg(s, args, kwargs)
    if arg(args, kwargs, 2, "training", True):
        raise s.error("SNN-FE003", f"{s.current} with training=True drops activations at "
                      "random at inference", "pass training=self.training (or use nn.Dropout)")
    return x


# -- a border written in place: SDT-V2's BNAndPadLayer ----------------------------------
def _border_side(s: Session, y: TracedTensor, idx: Any, pads: tuple[int, ...]) -> str:
    """Which padded border strip `y[idx]` is: all of H or W but the first/last p rows."""
    idx = idx if isinstance(idx, tuple) else (idx,)
    if Ellipsis in idx:
        k = idx.index(Ellipsis)
        idx = idx[:k] + (slice(None),) * (y.dim() - len(idx) + 1) + idx[k + 1:]
    idx = idx + (slice(None),) * (y.dim() - len(idx))
    spans = [i.indices(n) if isinstance(i, slice) else None for i, n in zip(idx, y.shape)]
    whole = [sp == (0, n, 1) for sp, n in zip(spans, y.shape)]
    left, right, top, bottom = (pads + (0, 0, 0, 0))[:4]
    if None not in spans and sum(not w for w in whole) == 1:
        axis = whole.index(False)
        start, stop, step = spans[axis]  # type: ignore[misc]
        n = y.shape[axis]
        if step == 1 and axis == y.dim() - 2:
            if (start, stop) == (0, top) and top:
                return "top"
            if (start, stop) == (n - bottom, n) and bottom:
                return "bottom"
        if step == 1 and axis == y.dim() - 1:
            if (start, stop) == (0, left) and left:
                return "left"
            if (start, stop) == (n - right, n) and right:
                return "right"
    raise s.error("SNN-FE003", "writing into part of an activation (__setitem__) other than the "
                  "border strips of a padded BatchNorm output",
                  "build the value with torch functions (cat, pad) instead of item assignment")


@handles("__setitem__")
def _setitem(s: Session, args: list[Any], kwargs: dict[str, Any]) -> None:
    """`y = F.pad(bn(x), [p]*4); y[:, :, :p, :] = bn(0); ...` (BNAndPadLayer): a border
    holding what the BatchNorm makes of zero is the BatchNorm of a zero-padded input,
    so once all four strips are written, `y` becomes `batchnorm(pad(x, 0))`."""
    y, idx, value = args[0], args[1], args[2]
    pad = s.graph.nodes[y.ir_ref] if isinstance(y, TracedTensor) else None
    state = s.borders.get(id(y))
    if state is not None:
        pad = s.graph.nodes[state[0]]
    if pad is None or pad.op != "pad" or isinstance(value, TracedTensor) \
            or s.graph.nodes[pad.inputs[0]].op != "batchnorm":
        raise s.error("SNN-FE003", "item assignment into an activation (__setitem__)",
                      "build the value with torch functions (cat, pad) instead")
    assert isinstance(y, TracedTensor)
    bn = s.graph.nodes[pad.inputs[0]]
    assert isinstance(pad.attrs, PadAttrs) and isinstance(bn.attrs, BatchNormAttrs)
    pads = tuple(pad.attrs.pads)
    side = _border_side(s, y, idx, pads)
    p = {k: v.astype(np.float64) for k, v in bn.params.items()}
    c = p["running_mean"].shape[0]
    zero = p.get("bias", np.zeros(c)) - p["running_mean"] * p.get("weight", np.ones(c)) / \
        np.sqrt(p["running_var"] + bn.attrs.eps)
    v = np.broadcast_to(np.asarray(torch.as_tensor(value, dtype=torch.float64).reshape(-1)), (c,))
    if not np.allclose(v, zero, rtol=1e-5, atol=1e-6):
        raise s.error("SNN-FE003", "the padded border is written with values other than what "
                      "the BatchNorm before it makes of zero", "pad with BN(0), as BNAndPadLayer")
    sides = (state[1] if state else frozenset()) | {side}
    needed = {name for name, n in zip(("left", "right", "top", "bottom"), pads + (0,) * 4) if n}
    if sides < needed:
        s.borders[id(y)] = (pad.name, sides)
        return
    s.borders.pop(id(y), None)
    src = s.wrap(bn.inputs[0], y.time_view)
    padded = s.emit("pad", [src], {"pads": pads, "value": 0.0})
    params: dict[str, Any] = dict(bn.params)  # already the IR's numpy arrays
    out = s.emit("batchnorm", [padded], bn.attrs.model_dump(), params)
    y.ir_ref = out.ir_ref
