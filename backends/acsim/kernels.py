"""acsim's two compiled kernels: the synapse and the neuron.

The synapse: for every spiking input, add its row of weights. Nothing else.
Why compiled: an accumulate-only simulator spends its time adding
weight rows selected by spikes. numpy can only do that through a gather (which
copies every selected row) and a reduction; the copy halves the memory
bandwidth and the per-call overhead dominates small layers. A numba kernel
adds each selected row straight into its accumulator row, SIMD-vectorised by
LLVM, and splits the rows of a batch over the cores: 4x numpy's best
gather-and-sum here (``benchmarks/bench_acsim.py``), still event-driven (the
work is the number of spikes times the row length) and still integer adds
only. int32 additions wrap exactly as numpy's do, so results are identical.

The neuron: Lava 0.10.0's bit-accurate LIF step (``PyLifModelBitAcc``, FACTS.md
sec. 3), one pass over the state instead of numpy's dozen. numba computes in
int64, so every place where Lava's (and numpy's) int32 arithmetic wraps is
wrapped explicitly (``_wrap32``); the only multiply is the decay by a 12-bit
constant, isolated in ``_decay`` (state times a constant, inside the neuron --
not an activation times a weight).

Both kernels are compiled on first use and cached next to this file.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

I32 = NDArray[np.int32]

# The functions on the activation path (tests/test_acsim_fixedpoint.py walks them);
# ``_decay`` is the neuron's one multiply by a constant, walked separately.
ACTIVATION_PATH: tuple[str, ...] = ("_spiking", "_add_selected_rows", "gather_sum_rows", "graded_gather_sum",
                                    "_scatter_selected_rows", "scatter_sum_rows", "bit_serial",
                                    "_wrap32", "_lif_kernel", "lif_update", "_as_rows", "_add_rows",
                                    "_add_selected_rows_stacked", "stacked_gather_sum",
                                    "_add_receptive_fields", "receptive_field_sum",
                                    "_add_selected_rows_per_column", "gather_sum_columns")

# Lava's fixed-point LIF (lava/proc/lif/models.py); fixedpoint.py documents each.
_ACT_SHIFT = 6
_UV_MAX = 1 << 23
_UV_WRAP = 1 << 24
_V_LIMIT = (1 << 23) - 1
_DECAY_SHIFT = 12
_I32_HALF = 1 << 31
_U32_MASK = (1 << 32) - 1


@njit(cache=True, inline="always")  # type: ignore[misc]
def _spiking(sel: NDArray[np.bool_]) -> tuple[NDArray[np.int64], int]:  # pragma: no cover
    """The indices of the set entries of ``sel`` (the first ``count`` of the array).

    Compacted without a branch (a store, then the count advances by the mask
    bit): at 10% firing a branch per input mispredicts on every spike, which
    halved the throughput.
    """
    spiking = np.empty(sel.shape[0], dtype=np.int64)
    count = 0
    for i in range(sel.shape[0]):
        spiking[count] = i
        count += sel[i]
    return spiking, count


@njit(cache=True, inline="always", boundscheck=False)  # type: ignore[misc]
def _add_rows(acc: I32, rows: np.ndarray, spiking: NDArray[np.int64], count: int) -> None:  # pragma: no cover
    """``acc += rows[spiking[q]]`` for q < count, four rows per pass over ``acc``.

    Why four: adding one row per pass loads and stores ``acc`` once per row, and those
    stores, not the adds, bounded the kernel; summing four rows first stores a quarter
    as often. Integer adds wrap modulo 2**32 in any order, so the int32 sums are
    the same as one row at a time.
    """
    n = rows.shape[1]
    q = 0
    while q + 4 <= count:
        w0 = rows[spiking[q]]
        w1 = rows[spiking[q + 1]]
        w2 = rows[spiking[q + 2]]
        w3 = rows[spiking[q + 3]]
        for j in range(n):
            acc[j] += (np.int32(w0[j]) + np.int32(w1[j])) + (np.int32(w2[j]) + np.int32(w3[j]))
        q += 4
    while q < count:
        w = rows[spiking[q]]
        for j in range(n):
            acc[j] += w[j]
        q += 1


@njit(parallel=True, cache=True, nogil=True, boundscheck=False)  # type: ignore[misc]
def _add_selected_rows(rows: I32, mask: NDArray[np.bool_], out: I32) -> None:  # pragma: no cover
    """``out[r] += rows[i]`` for every set ``mask[r, i]`` (rows of ``out`` in parallel)."""
    for r in prange(mask.shape[0]):
        spiking, count = _spiking(mask[r])
        _add_rows(out[r], rows, spiking, count)


def gather_sum_rows(rows: NDArray[np.int16] | I32, mask: np.ndarray) -> I32:
    """For each row r of ``mask`` ([R, n_in]), the sum of ``rows[i]`` over i where mask[r, i].

    ``rows`` is ``[n_in (+ 1 padding row), n_out]`` of int16 or int32 (sums are int32,
    wrapping as int32 adds do); only the first n_in rows are read.
    """
    m = np.ascontiguousarray(mask, dtype=np.bool_)
    out = np.zeros((m.shape[0], rows.shape[1]), dtype=np.int32)
    if m.shape[0] and m.shape[1]:
        _add_selected_rows(np.ascontiguousarray(rows), m, out)
    return out


@njit(parallel=True, cache=True, nogil=True, boundscheck=False)  # type: ignore[misc]
def _add_selected_rows_stacked(tables: np.ndarray, mask: NDArray[np.bool_], rows_per_table: int,
                               out: I32) -> None:  # pragma: no cover
    """``out[r] += tables[r // rows_per_table][i]`` for every set ``mask[r, i]``: a stack of
    independent gather-sums, each row of ``mask`` selecting rows of its own table
    (all rows of the stack in parallel)."""
    for r in prange(mask.shape[0]):
        spiking, count = _spiking(mask[r])
        _add_rows(out[r], tables[r // rows_per_table], spiking, count)


def stacked_gather_sum(tables: np.ndarray, mask: np.ndarray) -> I32:
    """For a stack of G tables ``[G, K, W]`` and masks ``[G, R, K]``: ``out[g, r]`` is the
    sum of ``tables[g, k]`` over the k where ``mask[g, r, k]`` ([G, R, W], int32 sums).

    The event-driven form of a product whose left factor is binary: each set bit adds
    one row, so the work is the number of spikes times the row length. ``tables`` may be
    bool (added as 0/1) or integers.
    """
    t = np.ascontiguousarray(tables)
    if t.dtype == np.bool_:
        t = t.view(np.uint8)
    elif t.dtype != np.int32:
        t = t.astype(np.int32)  # int32 adds wrap as numpy's int32 sums do
    m = np.ascontiguousarray(mask, dtype=np.bool_)
    out = np.zeros((*m.shape[:2], t.shape[2]), dtype=np.int32)
    if out.size and m.shape[2]:
        _add_selected_rows_stacked(t, m.reshape(-1, m.shape[2]), m.shape[1],
                                   out.reshape(-1, t.shape[2]))
    return out


@njit(parallel=True, cache=True, nogil=True, boundscheck=False)  # type: ignore[misc]
def _add_selected_rows_per_column(rows: np.ndarray, mask: NDArray[np.bool_], left: int, right: int,
                                  out: I32) -> None:  # pragma: no cover
    """``out[g, :, n] = (sum of rows[k] over set mask[g, k, n]) << left >> right`` (int32),
    eight columns n at a time through a small buffer (stacks g in parallel)."""
    n_k, n_cols = mask.shape[1], mask.shape[2]
    width = rows.shape[1]
    for g in prange(mask.shape[0]):
        m = mask[g]
        o = out[g]
        spiking = np.empty(n_k, dtype=np.int64)
        block = np.zeros((8, width), dtype=np.int32)
        for n0 in range(0, n_cols, 8):
            n1 = min(n0 + 8, n_cols)
            for n in range(n0, n1):
                count = 0
                for k in range(n_k):  # branchless compaction down a column, as in _spiking
                    spiking[count] = k
                    count += m[k, n]
                acc = block[n - n0]
                acc[:] = 0
                _add_rows(acc, rows, spiking, count)
            for j in range(width):
                for n in range(n0, n1):
                    o[j, n] = (np.int64(block[n - n0, j]) << left) >> right


def gather_sum_columns(rows: NDArray[np.int16] | I32, mask: np.ndarray, shift: int) -> I32:
    """A Dense applied to every column of ``mask`` ([G, n_in, N] spikes): ``out[g, :, n]``
    is the sum of ``rows[k]`` over the k spiking in column n, shifted left by ``shift``
    (right, flooring, when negative; int32 wrapping). What :func:`gather_sum_rows` gives
    on the transposed mask, transposed back and shifted, without either transpose.
    Returns ``[G, n_out, N]``."""
    m = np.ascontiguousarray(mask, dtype=np.bool_)
    out = np.empty((m.shape[0], rows.shape[1], m.shape[2]), dtype=np.int32)
    if out.size:
        _add_selected_rows_per_column(np.ascontiguousarray(rows), m, max(shift, 0),
                                      max(-shift, 0), out)
    return out


def bit_serial(accumulate: Callable[[NDArray[np.bool_]], I32], values: np.ndarray) -> I32:
    """Graded spikes by shift-and-add: ``accumulate`` sums the weights of a binary mask;
    for each bit k of |value| it runs on the values with that bit (positive minus
    negative ones) and the result is added shifted left by k. Accumulates in int64,
    then wraps to int32 as Lava's int32 ``dot`` does."""
    vals = values.astype(np.int64)
    mag = np.abs(vals)
    pos = vals > 0
    neg = vals < 0
    acc: NDArray[np.int64] | None = None
    top = int(mag.max(initial=0))
    k = 0
    while (top >> k) > 0:
        bit = (np.right_shift(mag, k) & 1).astype(bool)
        part = accumulate(bit & pos).astype(np.int64)
        part -= accumulate(bit & neg)
        acc = np.left_shift(part, k) if acc is None else acc + np.left_shift(part, k)
        k += 1
    if acc is None:
        return accumulate(np.zeros(values.shape, dtype=bool))
    return acc.astype(np.int32)


def graded_gather_sum(rows: NDArray[np.int16] | I32, values: np.ndarray) -> I32:
    """``values @ rows[:-1]`` for integer ``values`` ([R, n_in]), bit-serially."""
    return bit_serial(lambda mask: gather_sum_rows(rows, mask), values)


@njit(parallel=True, cache=True, nogil=True, boundscheck=False)  # type: ignore[misc]
def _scatter_selected_rows(ptr: NDArray[np.int64], dst: NDArray[np.int32],
                           src: NDArray[np.int32], table: I32, mask: NDArray[np.bool_],
                           out: I32) -> None:  # pragma: no cover
    """For every set ``mask[b, i]`` and every synapse e of input i (``ptr[i] <= e <
    ptr[i + 1]``): ``out[b, dst[e]] += table[src[e]]`` (samples in parallel)."""
    n_out = table.shape[1]
    for b in prange(mask.shape[0]):
        spiking, count = _spiking(mask[b])
        acc = out[b]
        for q in range(count):
            i = spiking[q]
            for e in range(ptr[i], ptr[i + 1]):
                row = acc[dst[e]]
                w = table[src[e]]
                for j in range(n_out):
                    row[j] += w[j]


def scatter_sum_rows(fan_out: tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int32]],
                     table: NDArray[np.int16] | I32, mask: np.ndarray, n_dst: int) -> I32:
    """Event-driven fan-out, as a neuromorphic core delivers a spike: each spiking input
    ``i`` of ``mask`` ([B, n_in]) adds ``table[src]`` to output row ``dst`` for each
    of its synapses in the CSR lists ``fan_out = (ptr, dst, src)``. Returns
    ``[B, n_dst, n_out]``."""
    m = np.ascontiguousarray(mask, dtype=np.bool_)
    out = np.zeros((m.shape[0], n_dst, table.shape[1]), dtype=np.int32)
    if m.size:
        ptr, dst, src = fan_out
        _scatter_selected_rows(ptr, dst, src, table, m, out)
    return out


@njit(parallel=True, cache=True, nogil=True, boundscheck=False)  # type: ignore[misc]
def _add_receptive_fields(taps: NDArray[np.int32], tap_rows: NDArray[np.int64], table: np.ndarray,
                          mask: NDArray[np.bool_], out: I32) -> None:  # pragma: no cover
    """``out[b, p] += table[tap_rows[t] + c]`` for every tap t of output p whose input
    position ``taps[p, t]`` has channel c spiking in ``mask[b]`` ([B, positions + 1, C],
    the last position never spikes: padding). Samples in parallel."""
    n_pos, n_taps = taps.shape
    n_in, c_in = mask.shape[1], mask.shape[2]
    for b in prange(mask.shape[0]):
        m = mask[b]
        lists = np.empty((n_in, c_in), dtype=np.int64)
        counts = np.zeros(n_in, dtype=np.int64)
        for i in range(n_in):  # each input position's spiking channels, once per sample
            count = 0
            for c in range(c_in):
                lists[i, count] = c
                count += m[i, c]
            counts[i] = count
        selected = np.empty(table.shape[0], dtype=np.int64)
        for p in range(n_pos):
            count = 0
            for t in range(n_taps):
                i = taps[p, t]
                base = tap_rows[t]
                for q in range(counts[i]):
                    selected[count + q] = base + lists[i, q]
                count += counts[i]
            _add_rows(out[b, p], table, selected, count)


def receptive_field_sum(taps: NDArray[np.int32], table: NDArray[np.int16] | I32,
                        mask: np.ndarray) -> I32:
    """Output-stationary delivery of binary spikes to a (groups = 1) convolution.

    ``mask`` is ``[B, positions, C]``; output position ``p`` reads input position
    ``taps[p, t]`` through tap t (``positions`` for a padding tap), whose weights for
    channel c are row ``t * C + c`` of ``table`` ([taps * C (+ 1), width]). The sums of
    :func:`scatter_sum_rows` (int32 adds commute), but each output row is summed in
    one place, four weight rows per pass, instead of every spike updating its taps'
    rows in memory. Returns ``[B, P, width]``."""
    b, n_in, c_in = mask.shape
    m = np.zeros((b, n_in + 1, c_in), dtype=np.bool_)  # + the padding position
    m[:, :-1] = mask
    # row t * C of each tap, without a multiply (the table's last row is padding)
    tap_rows = np.arange(table.shape[0] - 1, dtype=np.int64).reshape(taps.shape[1], c_in)[:, 0].copy()
    out = np.zeros((b, taps.shape[0], table.shape[1]), dtype=np.int32)
    if out.size and c_in:
        _add_receptive_fields(taps, tap_rows, np.ascontiguousarray(table), m, out)
    return out


@njit(cache=True, inline="always")  # type: ignore[misc]
def _wrap32(x: int) -> int:  # pragma: no cover
    """The int32 two's-complement value of ``x`` (what an int32 add or shift leaves)."""
    return ((x + _I32_HALF) & _U32_MASK) - _I32_HALF


@njit(cache=True, inline="always")  # type: ignore[misc]
def _decay(x: int, mult: int) -> int:  # pragma: no cover
    """``sign(p) * (|p| >> 12)`` with ``p = x * mult``: Lava's truncating decay."""
    p = x * mult
    return p >> _DECAY_SHIFT if p >= 0 else -((-p) >> _DECAY_SHIFT)


@njit(parallel=True, cache=True, nogil=True, boundscheck=False)  # type: ignore[misc]
def _lif_kernel(u: I32, v: I32, a: I32, bias: I32, mult_u: int, mult_v: int, vth: int,
                u_out: I32, v_out: I32, s: NDArray[np.bool_]) -> None:  # pragma: no cover
    """One LIF step over ``[M, N]`` states (rows in parallel); ``bias`` is ``[N]``."""
    n_rows, n = u.shape
    for r in prange(n_rows):
        for i in range(n):
            un = _wrap32(_decay(u[r, i], mult_u) + _wrap32(a[r, i] << _ACT_SHIFT))
            if un > _UV_MAX:  # one conditional wrap into 24 bits, as Lava does it
                un -= _UV_WRAP
            if un <= -_UV_MAX:
                un += _UV_WRAP
            vn = _wrap32(_wrap32(_decay(v[r, i], mult_v) + un) + bias[i])
            vn = min(max(vn, -_V_LIMIT), _V_LIMIT)
            fire = vn > vth
            s[r, i] = fire
            u_out[r, i] = un
            v_out[r, i] = 0 if fire else vn


def _as_rows(x: np.ndarray, shape: tuple[int, ...], width: int) -> I32:
    """``x`` as a C-contiguous int32 ``[rows, width]`` view (copying only when it must)."""
    if x.shape != shape:
        x = np.broadcast_to(x, shape)
    if x.dtype != np.int32 or not x.flags.c_contiguous:
        x = np.ascontiguousarray(x, dtype=np.int32)  # int32 cast wraps, as Lava's channel does
    return x.reshape(-1, width)


def lif_update(u: I32, v: I32, a_in: np.ndarray, mult_u: int, mult_v: int, bias: I32,
               vth_eff: int, spikes: NDArray[np.bool_] | None = None
               ) -> tuple[I32, I32, NDArray[np.bool_]]:
    """One LIF step with precomputed constants; returns new (u, v, spikes), shaped as u.

    ``bias`` broadcasts against u (its trailing axes, or the whole shape). Lava's
    a_in arrives through an int32 channel, so it is cast (wrapping) to int32.
    ``spikes`` (optional, C-contiguous bool shaped as u): where to write the spikes
    (a step of a layer's ``[T, ...]`` record, saving a copy).
    """
    shape = u.shape
    b = np.asarray(bias)
    if b.ndim > len(shape) or shape[len(shape) - b.ndim:] != b.shape:
        b = np.broadcast_to(b, shape)
    width = max(b.size, 1)
    u_out = np.empty(shape, dtype=np.int32)
    v_out = np.empty(shape, dtype=np.int32)
    s = np.empty(shape, dtype=np.bool_) if spikes is None else spikes
    if s.shape != shape or s.dtype != np.bool_ or not s.flags.c_contiguous:
        raise ValueError("spikes must be a C-contiguous bool array shaped as u")
    if u_out.size:
        _lif_kernel(_as_rows(u, shape, width), _as_rows(v, shape, width),
                    _as_rows(np.asarray(a_in), shape, width), _as_rows(b, b.shape, width)[0],
                    int(mult_u), int(mult_v), int(vth_eff), u_out.reshape(-1, width),
                    v_out.reshape(-1, width), s.reshape(-1, width))
    return u_out, v_out, s
