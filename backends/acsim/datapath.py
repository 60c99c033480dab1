"""acsim's integer datapath: every function that computes an activation on chip.

Why its own module: acsim's claim is that the chip side of a model runs with
integer adds, shifts, compares and selects only. ``ACTIVATION_PATH`` names the
functions here, and ``tests/test_acsim_simulator.py`` walks this module's AST
to check that none of them multiplies and that they call only each other; the
Lava kernels they call (:mod:`.fixedpoint`, :mod:`.kernels`) have tests of
their own, where the neuron's decay by a 12-bit constant is the one, isolated,
exception. With the path in one module, the claim is checked by reading one
file. Which function runs for which op, and on which steps, is decided by the
run (:mod:`.simulator`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from snncc.backends.acsim.fixedpoint import (
    A_IN_MAX,
    ConvWeights,
    DenseWeights,
    apply_weight_exp,
    conv_accumulate,
    dense_accumulate,
    dense_accumulate_graded,
    nchw_to_lava,
    wrap_conv,
)
from snncc.backends.acsim.kernels import I32, gather_sum_columns, lif_update, stacked_gather_sum
from snncc.backends.acsim.program import ChipWeights, NeuronConsts
from snncc.passes.quantize import Cat

# Functions on the activation path (integer datapath); the no-multiply test walks these.
ACTIVATION_PATH: tuple[str, ...] = (
    "dense_rows",
    "conv_nchw",
    "chip_weight_op",
    "lif_layer",
    "maxpool_or",
    "adaptive_max_or",
    "max_reduce",
    "_stacked",
    "matmul_and_count",
    "matmul_select_sum",
    "to_domain",
    "add_sub",
    "time_mask",
    "integer_sum",
    "mul_chip",
    "rf_counts",
    "graded_payload",
    "join_parts",
)


def dense_rows(dw: DenseWeights, x: np.ndarray, graded: bool) -> I32:
    """Dense over the rows of ``x`` ([R, n_in]): a gather-sum of weight rows (shift-add if graded)."""
    acc = dense_accumulate_graded(dw, x) if graded else dense_accumulate(dw, x)
    return acc


def conv_nchw(cw: ConvWeights, x: np.ndarray, graded: bool) -> I32:
    """Lava Conv on ``[N, C, H, W]`` (the kernel works in Lava's (W, H, C) layout); the
    result is a transposed view of the kernel's output (the caller copies it once)."""
    return np.transpose(conv_accumulate(cw, nchw_to_lava(x), graded=graded), (0, 3, 2, 1))


def chip_weight_op(cw: ChipWeights, x: np.ndarray, lead: tuple[int, ...],
                    out_item: tuple[int, ...]) -> I32:
    """A weight op on chip: ``x`` [*lead, *item] spikes (or counts) -> a [*lead, *out_item]."""
    if cw.layout == "linear":
        assert cw.dense is not None
        acc = dense_rows(cw.dense, x.reshape(-1, x.shape[-1]), cw.graded)
        acc = acc.reshape(*lead, *out_item)
    elif cw.layout == "pointwise" and not cw.graded and x.size:  # [.., C, N]: a Dense per token
        assert cw.dense is not None and cw.dense.n_in == x.shape[-2]
        stack = x.reshape(-1, *x.shape[-2:]) != 0
        return gather_sum_columns(cw.dense.rows, stack, cw.weight_exp).reshape(*lead, *out_item)
    elif cw.layout == "pointwise":
        assert cw.dense is not None
        tokens = np.moveaxis(x, -1, -2)
        acc = dense_rows(cw.dense, tokens.reshape(-1, tokens.shape[-1]), cw.graded)
        acc = np.moveaxis(acc.reshape(*tokens.shape[:-1], cw.c_out), -1, -2)
    else:
        assert cw.conv is not None
        flat = x.reshape(-1, x.shape[len(lead)], *([1] if cw.layout == "conv1d" else []),
                         *x.shape[len(lead) + 1:])
        acc = conv_nchw(cw.conv, flat, cw.graded).reshape(*lead, *out_item)
    # The shift writes the (contiguous) result: in place when acc already is, else in one
    # pass that also undoes the transposes above.
    own = acc.dtype == np.int32 and acc.flags.c_contiguous
    return apply_weight_exp(acc, cw.weight_exp, out=acc if own else np.empty(acc.shape, np.int32))


def rf_counts(cw: ChipWeights, x: np.ndarray, lead: tuple[int, ...],
               out_item: tuple[int, ...]) -> I32:
    """Synaptic events each output receives: its receptive field's active inputs."""
    active = x != 0
    if cw.layout == "linear":
        n = np.count_nonzero(active, axis=-1).astype(np.int32)
        return np.ascontiguousarray(np.broadcast_to(n[..., np.newaxis], (*lead, *out_item)))
    if cw.layout == "pointwise":
        n = np.count_nonzero(active, axis=-2).astype(np.int32)  # per token
        return np.ascontiguousarray(np.broadcast_to(n[..., np.newaxis, :], (*lead, *out_item)))
    flat = active.reshape(-1, cw.groups, x.shape[len(lead)] // cw.groups,
                          *([1] if cw.layout == "conv1d" else []), *x.shape[len(lead) + 1:])
    per_group = np.pad(np.count_nonzero(flat, axis=2).astype(np.int32),
                       ((0, 0), (0, 0), *cw.rf_pad))  # [N, groups, H, W]: active inputs
    window = np.zeros((*per_group.shape[:2], *out_item[-2:]) if cw.layout == "conv2d"
                      else (*per_group.shape[:2], 1, out_item[-1]), dtype=np.int32)
    for rows, cols in cw.rf_taps:  # a box sum over the kernel taps
        window += per_group[:, :, rows, cols]
    full = np.repeat(window, cw.c_out // cw.groups, axis=1)
    return full.reshape(*lead, *out_item)


def lif_layer(k: NeuronConsts, a: I32, steps: set[int], voltages: I32 | None = None,
               ) -> tuple[NDArray[np.bool_], NDArray[np.bool_], int]:
    """Lava's LIF over time for a whole layer and batch: a [T, B, *item] -> spikes, active, wraps.

    ``active``: the neuron received input or spiked (it pays the active update).
    ``wraps``: inputs large enough to wrap Lava's 24-bit current (should be 0).
    ``voltages``: if given ([T, B, *item]), filled with v after each step.
    """
    T = a.shape[0]
    u = np.zeros(a.shape[1:], dtype=np.int32)
    v = np.zeros(a.shape[1:], dtype=np.int32)
    spikes = np.zeros(a.shape, dtype=bool)  # skipped steps stay 0
    active = np.zeros(a.shape, dtype=bool)
    wraps = 0
    for t in range(T):
        if t not in steps:
            continue
        a_t = a[t]
        if k.shift is not None:
            a_t = np.left_shift(a_t.astype(np.int32), k.shift)
        if a_t.size and (int(a_t.max()) > A_IN_MAX or int(a_t.min()) < -A_IN_MAX - 1):  # rare
            wraps += int(np.count_nonzero((a_t > A_IN_MAX) | (a_t < -A_IN_MAX - 1)))
        u, v, _ = lif_update(u, v, a_t, k.mult_u, k.mult_v, k.bias, k.vth_eff, spikes=spikes[t])
        np.not_equal(a_t, 0, out=active[t])
        np.logical_or(active[t], spikes[t], out=active[t])
        if voltages is not None:
            voltages[t] = v
    return spikes, active, wraps


def maxpool_or(x: np.ndarray, win: tuple[int, int], stride: tuple[int, int],
                pads: tuple[tuple[int, int], tuple[int, int]], out_hw: tuple[int, int]) -> np.ndarray:
    """Max-pooling: OR of spikes (max of counts) over each window; padding never wins."""
    lead = [(0, 0) for _ in range(x.ndim - 2)]
    xp = np.pad(x, [*lead, pads[0], pads[1]])
    out = np.zeros((*x.shape[:-2], *out_hw), dtype=x.dtype)
    for a in range(win[0]):  # one strided view per window tap; max of bools is OR
        for b in range(win[1]):
            np.maximum(out, xp[..., a::stride[0], b::stride[1]][..., :out_hw[0], :out_hw[1]], out=out)
    return out


def adaptive_max_or(x: np.ndarray, rows: list[np.ndarray], cols: list[np.ndarray]) -> np.ndarray:
    """Adaptive max-pooling: OR of spikes (max of counts) over PyTorch's bins, one gather
    per bin offset (``rows``/``cols``, prepared by the quantizer, clip each offset to its
    bin, so a short bin repeats an element, which never changes a max)."""
    out = x[..., rows[0][:, np.newaxis], cols[0][np.newaxis, :]]
    for r in rows:
        for c in cols:
            np.maximum(out, x[..., r[:, np.newaxis], c[np.newaxis, :]], out=out)
    return out


def max_reduce(x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    """amax: OR of spikes (max of counts) over axes, by compare-select."""
    return np.max(x, axis=axes, keepdims=keepdims)


def _stacked(a: np.ndarray, b: np.ndarray) -> tuple[tuple[int, ...], np.ndarray, np.ndarray]:
    """Two matmul factors ``[.., M, K]`` and ``[.., K, N]`` as stacks over their common
    (broadcast) leading axes: ``[G, M, K]`` and ``[G, K, N]``."""
    lead = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    g = np.empty(lead, dtype=np.bool_).size  # the stack's depth (also when a dim is 0)
    a3 = np.broadcast_to(a, (*lead, *a.shape[-2:])).reshape(g, *a.shape[-2:])
    b3 = np.broadcast_to(b, (*lead, *b.shape[-2:])).reshape(g, *b.shape[-2:])
    return lead, a3, b3


def matmul_and_count(a: np.ndarray, b: np.ndarray) -> I32:
    """Spike x spike matmul: out[i, j] = popcount(a[i, :] AND b[:, j]).

    Event-driven: each spike ``a[i, k]`` adds row k of ``b`` (0/1) to output row i."""
    lead, a3, b3 = _stacked(a, b)
    out = stacked_gather_sum(b3 != 0, a3 != 0)
    return out.reshape(*lead, *out.shape[-2:])


def matmul_select_sum(counts: np.ndarray, spikes: np.ndarray, spikes_right: bool) -> I32:
    """Count x spike matmul: each spike selects a count, the selected counts are summed.

    Event-driven: with spikes on the left ([.., M, K] @ counts [.., K, N]), spike (m, k)
    adds row k of the counts to output row m; with spikes on the right (counts [.., M, K]
    @ spikes [.., K, N]), spike (k, n) adds column k of the counts to output column n
    (the same gather-sum on the transposes)."""
    if spikes_right:
        lead, c3, s3 = _stacked(counts, spikes)
        out = np.swapaxes(stacked_gather_sum(np.swapaxes(c3, -1, -2), np.swapaxes(s3, -1, -2) != 0),
                          -1, -2)
    else:
        lead, s3, c3 = _stacked(spikes, counts)
        out = stacked_gather_sum(c3, s3 != 0)
    return np.ascontiguousarray(out).reshape(*lead, *out.shape[-2:])


def to_domain(x: np.ndarray, cat: Cat, shift: int | None) -> np.ndarray:
    """A value as integer synaptic units of a current domain (counts enter by a shift)."""
    if cat == Cat.CURRENT:
        return x
    if shift is None:
        return x.astype(np.int32)
    return np.left_shift(x.astype(np.int32), shift)


def add_sub(a: np.ndarray, b: np.ndarray, sub: bool) -> np.ndarray:
    return np.subtract(a, b) if sub else np.add(a, b)


def time_mask(x: np.ndarray, mask: tuple[int, ...]) -> np.ndarray:
    keep = np.asarray(mask, dtype=bool).reshape(-1, *(1 for _ in range(x.ndim - 1)))
    return np.where(keep, x, np.zeros((), dtype=x.dtype))


def integer_sum(x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    return np.sum(x, axis=axes, dtype=np.int64, keepdims=keepdims)


def mul_chip(a: np.ndarray, b: np.ndarray, ca: Cat, cb: Cat) -> np.ndarray:
    """Spike AND spike, or a count selected by a spike (SEW's AND/IAND shapes)."""
    if ca == Cat.SPIKE and cb == Cat.SPIKE:
        return np.logical_and(a, b)
    if ca == Cat.SPIKE:
        return np.where(a, b, np.zeros((), dtype=b.dtype))
    return np.where(b, a, np.zeros((), dtype=a.dtype))


def graded_payload(x: np.ndarray) -> tuple[I32, int]:
    """A current sent as a graded spike (a relay's stream, a partial sum): wrapped into
    the 24-bit payload, and how many elements did not fit (0 for an exact relay)."""
    v = np.asarray(x, dtype=np.int32)
    wrapped = wrap_conv(v)
    return wrapped, int(np.count_nonzero(wrapped != v))


def join_parts(parts: list[I32], conv: bool, weight_exp: int) -> I32:
    """The reader's sum of a split op's partial sums (graded spikes of exponent 0), then the
    op's exponent, once; a conv's sum wraps to 24 bits as the unsplit Conv's does."""
    total = np.zeros(parts[0].shape, dtype=np.int32)
    for p in parts:
        total += p
    if conv:
        total = wrap_conv(total)
    return apply_weight_exp(total, weight_exp)
