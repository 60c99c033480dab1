"""The ops a chip runs by moving values: cat, slice, pad, nearest upsampling, and
adaptive pools whose every bin holds one input (a gather); and the two max ops
(adaptive max-pooling, amax) that are compare-selects of spikes or counts.

Why its own module: each of these needs the same three things in quantization
and in acsim -- whether it is a move at all (:func:`is_move`; the category
rule is with the others in :mod:`.values`), its application to per-sample arrays whatever the batch size (:func:`apply_move`,
for values, pending biases and event counts alike), and the refusal of an op
that would move the batch or time axis (:func:`check_per_sample`) -- and the
index arithmetic (PyTorch's bins and nearest indices) belongs with them, not
on acsim's no-multiply datapath, which only gathers and compares.
"""

from __future__ import annotations

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.ir.graph import Node
from snncc.ir.ops.combine import CatAttrs, PadAttrs, SliceAttrs
from snncc.ir.ops.pool import AdaptivePoolAttrs, adaptive_bins
from snncc.ir.ops.reduce import ReduceAttrs
from snncc.ir.ops.upsample import UpsampleAttrs, source_indices
from snncc.ir.types import Layout

NEW_OPS = ("cat", "slice", "pad", "upsample_nearest", "adaptive_avgpool2d",
           "adaptive_maxpool2d", "amax")
MAX_OPS = ("adaptive_maxpool2d", "amax")


def _lead(node: Node) -> int:
    return 2 if node.type.layout == Layout.TIME else 1


def _refuse(node: Node, why: str) -> SnnccError:
    return SnnccError(
        "SNN-Q001", f"acsim cannot place {node.op} %{node.name}: {why}",
        location=node.location(),
        hint="only per-sample ops can run on a chip; compile with --target ir to inspect the graph",
    )


def single_bins(node: Node, src: Node) -> bool:
    """An adaptive pool whose every bin holds one input: a copy of those inputs."""
    a = node.attrs
    assert isinstance(a, AdaptivePoolAttrs)
    return all(e - s == 1 for n, o in zip(src.type.shape[-2:], a.output_size)
               for s, e in adaptive_bins(n, o))


def is_move(node: Node, src: Node) -> bool:
    if node.op in ("cat", "slice", "pad", "upsample_nearest"):
        return True
    return node.op in ("adaptive_avgpool2d", "adaptive_maxpool2d") and single_bins(node, src)


def touched_axes(node: Node, src: Node) -> list[int]:
    """The input axes the op reads across (which must not be time or batch)."""
    ndim = len(src.type.shape)
    a = node.attrs
    if isinstance(a, CatAttrs):
        return [a.dim % ndim]
    if isinstance(a, SliceAttrs):
        return [] if (a.start, a.stop, a.step) == (0, src.type.shape[a.dim], 1) else [a.dim]
    if isinstance(a, PadAttrs):
        return [ndim - 1 - j for j in range(len(a.pads) // 2) if a.pads[2 * j] or a.pads[2 * j + 1]]
    if isinstance(a, UpsampleAttrs):
        return list(range(ndim - len(a.size), ndim))
    if isinstance(a, AdaptivePoolAttrs):
        return [ndim - 2, ndim - 1]
    assert isinstance(a, ReduceAttrs)
    return sorted({d % ndim for d in a.dims})


def check_per_sample(node: Node, src: Node) -> None:
    """acsim runs any batch size, one sample at a time: refuse an op across the batch
    axis (and across time, but for amax, which may reduce time like sum)."""
    lead = _lead(src)
    axes = touched_axes(node, src)
    if node.op == "amax":
        if lead - 1 in axes:
            raise _refuse(node, "it reduces over the batch axis")
    elif any(d < lead for d in axes):
        raise _refuse(node, "it moves the time or batch axis")


def _gather(x: np.ndarray, index: list[np.ndarray]) -> np.ndarray:
    k = len(index)
    for j, idx in enumerate(index):
        x = np.take(x, idx, axis=x.ndim - k + j)
    return x


def apply_move(node: Node, srcs: list[Node], xs: list[np.ndarray],
               fill: float | None = None) -> np.ndarray:
    """A move op on per-sample arrays (leading axes of any size). `fill` replaces a pad's
    value (0 for pending biases and event counts: padding carries neither)."""
    a = node.attrs
    x = xs[0]
    if isinstance(a, CatAttrs):
        return np.concatenate(xs, axis=a.dim % len(srcs[0].type.shape))
    if isinstance(a, SliceAttrs):
        return x[(slice(None),) * a.dim + (slice(a.start, a.stop, a.step),)]
    if isinstance(a, PadAttrs):
        value = a.value if fill is None else fill
        if x.dtype == np.bool_ and value not in (0.0, 1.0):
            x = x.astype(np.int32)
        widths = [(0, 0)] * x.ndim
        for j in range(len(a.pads) // 2):
            widths[x.ndim - 1 - j] = (a.pads[2 * j], a.pads[2 * j + 1])
        return np.pad(x, widths, constant_values=np.array(value).astype(x.dtype))
    if isinstance(a, UpsampleAttrs):
        return _gather(x, source_indices(a, srcs[0].type.shape[-len(a.size):]))
    assert isinstance(a, AdaptivePoolAttrs) and single_bins(node, srcs[0])
    starts = [np.array([s for s, _ in adaptive_bins(n, o)], dtype=np.int64)
              for n, o in zip(srcs[0].type.shape[-2:], a.output_size)]
    return _gather(x, starts)


def adaptive_taps(node: Node, src: Node) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Row and column indices per bin offset: offset t of bin i reads start_i + t,
    clipped to the bin's last element (a repeated element never changes a max)."""
    a = node.attrs
    assert isinstance(a, AdaptivePoolAttrs)
    taps = []
    for n, o in zip(src.type.shape[-2:], a.output_size):
        bins = adaptive_bins(n, o)
        width = max(e - s for s, e in bins)
        taps.append([np.array([min(s + t, e - 1) for s, e in bins], dtype=np.int64)
                     for t in range(width)])
    return taps[0], taps[1]


def max_axes(node: Node, src: Node) -> tuple[int, ...]:
    assert isinstance(node.attrs, ReduceAttrs)
    return tuple(touched_axes(node, src))
