"""Bit-exact integer kernels for Lava 0.10.0's ``fixed_pt`` Dense, Conv and LIF.

Why this module exists: snncc's accumulate-only simulator (acsim) must give the
*same* spikes and membrane voltages as Lava's bit-accurate models -- the
models that mimic Loihi -- while running orders of magnitude faster and on a
batch of inputs at once. "Same" means identical integers at every step, so the
kernels reproduce Lava's arithmetic including its quirks (see FACTS.md sec. 3
and the Lava sources named below), and the tests compare against real Lava.

Why no multiplies: a spiking chip never multiplies an activation by a weight.
A binary spike *selects* a row of weights, and the synapse adds it; a graded
spike is a small integer, and bit-serial hardware adds shifted copies. The
activation path here (``ACTIVATION_PATH``) uses only gathers, adds, shifts,
compares and selects, and the compiled synapse and neuron of :mod:`.kernels`;
``tests/test_acsim_fixedpoint.py`` walks their AST to keep it that way. The
single exception is the neuron decay, ``kernels._decay``: Loihi's neuron
multiplies its state by a 12-bit decay *constant* (``u * (4096 - du)``), which
is a state-times-constant multiply inside the neuron, not an
activation-times-weight multiply, and is isolated in that one function.

Layouts follow Lava: Dense weights are ``[n_out, n_in]``; Conv tensors are
``(W, H, C)`` and Conv weights ``(C_out, kx, ky, C_in)``. Every kernel accepts
an optional leading batch axis: ``[B, ...]`` runs B independent samples.

Timing convention (the one-step synaptic delay): Lava's Dense and Conv send, at
step t, the accumulation of the spikes they received at step t-1 (zeros at the
first step). :class:`.chain.SynapseDelay` is that buffer;
:class:`.chain.FixedPointChain` shows the order of operations that matches
Lava step for step.

Sources read: ``lava/proc/lif/models.py`` (AbstractPyLifModelFixed,
PyLifModelBitAcc), ``lava/proc/dense/models.py`` (AbstractPyDenseModelBitAcc),
``lava/utils/weightutils.py`` (clip_weights, truncate_weights,
determine_sign_mode), ``lava/proc/conv/models.py`` and ``lava/proc/conv/utils.py``
(conv_scipy, signed_clamp), ``lava/magma/compiler/channels/pypychannel.py``
(int32 channels).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from snncc.backends.acsim.kernels import (
    bit_serial,
    gather_sum_rows,
    graded_gather_sum,
    lif_update,
    receptive_field_sum,
    scatter_sum_rows,
)

I32 = NDArray[np.int32]
Bools = NDArray[np.bool_]

# --- Loihi / Lava fixed-point constants (lava/proc/lif/models.py) -----------------
UV_BITS = 24
UV_MAX = 1 << (UV_BITS - 1)  # Lava's max_uv_val = 2**23
UV_WRAP = 1 << UV_BITS  # 2**24, subtracted/added once when u leaves its range
V_LIMIT = UV_MAX - 1  # v is clipped to [-(2**23 - 1), 2**23 - 1]
DECAY_SHIFT = 12
DECAY_UNITY = 1 << DECAY_SHIFT  # 4096
DU_OFFSET = 1  # Lava's ds_offset: the effective current decay is du + 1
DV_OFFSET = 0  # Lava's dm_offset
VTH_SHIFT = 6  # threshold is MSB-aligned: vth << 6
ACT_SHIFT = 6  # synaptic input is MSB-aligned: a_in << 6
# The largest synaptic input that still fits the 24-bit current once shifted in.
A_IN_MAX = (1 << (24 - 1 - ACT_SHIFT)) - 1
CONV_BITS = 24  # Conv's a_buf wraps modulo 2**24 (signed_clamp)
_CONV_HALF = 1 << (CONV_BITS - 1)
_CONV_MASK = (1 << CONV_BITS) - 1
DENSE_MAX_WEIGHT_BITS = 8  # Dense clips to 8 magnitude bits (+ sign)
# Conv outputs at least this wide are delivered output-stationary (receptive_field_sum):
# 1.3-2.3x the event-driven fan-out from 96 channels up, half its speed at 16 (measured).
OUTPUT_STATIONARY_WIDTH = 64

# Functions on the activation path; the no-multiply test walks exactly these.
ACTIVATION_PATH: tuple[str, ...] = (
    "lif_step",
    "lif_effective_bias",
    "apply_weight_exp",
    "dense_accumulate",
    "dense_accumulate_graded",
    "dense_step",
    "conv_accumulate",
    "conv_step",
    "_as_batch",
    "wrap_conv",
)


class SignMode(Enum):
    """Sign mode of a weight matrix, numbered as ``lava.utils.weightutils.SignMode``."""

    NULL = 0
    MIXED = 1
    EXCITATORY = 2
    INHIBITORY = 3


# ===================================================================== LIF ====


def decay_multiplier_u(du: int) -> int:
    """The constant Lava multiplies u by: ``4096 - (du + 1)``.

    ``du = -1`` means no decay (multiplier 4096), ``du = 4095`` means u holds
    only this step's input (multiplier 0).
    """
    mult = DECAY_UNITY - (int(du) + DU_OFFSET)
    if not 0 <= mult <= DECAY_UNITY:
        raise ValueError(f"du must be in [-1, 4095], got {du}")
    return mult


def decay_multiplier_v(dv: int) -> int:
    """The constant Lava multiplies v by: ``4096 - dv`` (dv in [0, 4096])."""
    mult = DECAY_UNITY - (int(dv) + DV_OFFSET)
    if not 0 <= mult <= DECAY_UNITY:
        raise ValueError(f"dv must be in [0, 4096], got {dv}")
    return mult


def lif_effective_bias(bias_mant: ArrayLike, bias_exp: ArrayLike) -> I32:
    """``bias_mant << bias_exp`` (``>> -bias_exp`` when negative), as Lava's scale_bias.

    Lava stores both as int16 Vars, so values are first cast to int16 as Lava
    does when it initialises them.
    """
    mant = np.asarray(bias_mant).astype(np.int16).astype(np.int32)
    exp = np.asarray(bias_exp).astype(np.int16)
    return np.where(exp >= 0, np.left_shift(mant, exp), np.right_shift(mant, np.negative(exp))).astype(
        np.int32
    )


def lif_step(
    u: ArrayLike,
    v: ArrayLike,
    a_in: ArrayLike,
    du: int,
    dv: int,
    vth: int,
    bias_mant: ArrayLike,
    bias_exp: ArrayLike,
) -> tuple[I32, I32, Bools]:
    """One step of Lava's bit-accurate LIF (PyLifModelBitAcc); returns (u, v, s).

    ``u``, ``v``, ``a_in`` have shape ``[N]`` or ``[B, N]`` (any shape that
    broadcasts with ``bias_*``). ``a_in`` is what the LIF receives this step,
    i.e. the *delayed* synaptic output. Spike is ``v > vth << 6`` (strict),
    v resets to 0, u never resets.
    """
    return lif_update(
        np.asarray(u).astype(np.int32),
        np.asarray(v).astype(np.int32),
        np.asarray(a_in),
        decay_multiplier_u(du),
        decay_multiplier_v(dv),
        lif_effective_bias(bias_mant, bias_exp),
        int(vth) << VTH_SHIFT,
    )


# =========================================================== accumulation ====


def _as_batch(x: ArrayLike, item_ndim: int) -> tuple[np.ndarray, bool]:
    """View ``x`` as ``[B, ...]``; say whether a batch axis was added."""
    a = np.asarray(x)
    if a.ndim == item_ndim:
        return a[np.newaxis], True
    if a.ndim != item_ndim + 1:
        raise ValueError(f"expected {item_ndim} or {item_ndim + 1} dims, got shape {a.shape}")
    return a, False


def apply_weight_exp(acc: I32, weight_exp: int, out: I32 | None = None) -> I32:
    """Lava Dense's ``acc << weight_exp`` (``>> -weight_exp``: a floor shift when negative).

    The exponent scales the *sum*, not each weight. Computed in int32, which
    wraps exactly as Lava's int64 result does when it is written into the
    int32 channel (the sum itself always fits in int32: |w| <= 256).
    ``out`` (int32, ``acc``'s shape; may be ``acc`` itself): where to write the
    result, saving a pass when ``acc`` is a transposed view that needs a copy anyway.
    """
    if weight_exp > 0:
        return np.left_shift(acc, weight_exp, out=out)
    if weight_exp < 0:
        return np.right_shift(acc, -weight_exp, out=out)
    if out is None or out is acc:
        return acc
    np.copyto(out, acc, casting="unsafe")  # int32 cast wraps, as Lava's channel does
    return out


# ================================================================== Dense ====


def determine_sign_mode(weights: np.ndarray) -> SignMode:
    """Lava's rule: all >= 0 is excitatory, all <= 0 inhibitory, else mixed."""
    if np.min(weights) >= 0:
        return SignMode.EXCITATORY
    if np.max(weights) <= 0:
        return SignMode.INHIBITORY
    return SignMode.MIXED


@dataclass(frozen=True)
class DenseWeights:
    """Dense weights as Lava's fixed-point Dense holds them after its first step.

    ``rows[i]`` holds the weights *from* input i (a column of Lava's
    ``[n_out, n_in]`` matrix) so that a spike gathers one contiguous row;
    ``rows[n_in]`` is zero (the padding target of batched gathers). Stored as
    int16: Lava's Dense weights have at most 9 bits, and half the bytes is
    twice the rows per second once the matrix no longer fits in cache (sums
    are still int32, exactly as before).
    """

    rows: NDArray[np.int16]
    weight_exp: int = 0

    @property
    def n_in(self) -> int:
        return self.rows.shape[0] - 1

    @property
    def n_out(self) -> int:
        return self.rows.shape[1]

    @property
    def matrix(self) -> I32:
        """The effective weights in Lava's ``[n_out, n_in]`` layout."""
        return np.ascontiguousarray(self.rows[:-1].T, dtype=np.int32)


def quantize_dense_weights(
    weights: ArrayLike, *, num_weight_bits: int = 8, sign_mode: SignMode | None = None
) -> I32:
    """Lava Dense's first-step weight preparation, ``[n_out, n_in]`` in and out.

    Cast to int32 (as Lava's Var), clip to 8 bits ([-256, 255] mixed,
    [0, 255] excitatory, [-255, 0] inhibitory), then drop
    ``8 - num_weight_bits + (1 if mixed)`` least significant bits with a floor
    shift (on the magnitude for inhibitory). With the default 8 bits a mixed
    matrix loses its LSB: 3 acts as 2 and -3 as -4.
    """
    w = np.asarray(weights).astype(np.int32)
    if w.ndim != 2:
        raise ValueError(f"Dense weights must be 2-D [n_out, n_in], got shape {w.shape}")
    mode = sign_mode if sign_mode is not None else determine_sign_mode(w)
    mixed = int(mode is SignMode.MIXED)
    inhibitory = mode is SignMode.INHIBITORY
    if inhibitory:
        w = -w
    w = np.clip(w, -(1 << DENSE_MAX_WEIGHT_BITS) if mixed else 0, (1 << DENSE_MAX_WEIGHT_BITS) - 1)
    drop = DENSE_MAX_WEIGHT_BITS - int(num_weight_bits) + mixed
    w = np.left_shift(np.right_shift(w, drop), drop)
    if inhibitory:
        w = -w
    return w.astype(np.int32)


def prepare_dense_weights(
    weights: ArrayLike,
    *,
    weight_exp: int = 0,
    num_weight_bits: int = 8,
    sign_mode: SignMode | None = None,
) -> DenseWeights:
    """Quantise as Lava does (:func:`quantize_dense_weights`) and lay out for gathers."""
    w = quantize_dense_weights(weights, num_weight_bits=num_weight_bits, sign_mode=sign_mode)
    n_out, n_in = w.shape
    if n_in >= 1 << 23:
        raise ValueError("n_in >= 2**23 could overflow the int32 accumulator")
    rows = np.zeros((n_in + 1, n_out), dtype=np.int16)
    rows[:n_in] = w.T  # |w| <= 256 after Lava's clip
    return DenseWeights(rows=rows, weight_exp=int(weight_exp))


def dense_accumulate(weights: DenseWeights, spikes: ArrayLike) -> I32:
    """Sum of the weight columns of the spiking inputs (binary spikes; no multiply).

    ``spikes`` is ``[n_in]`` or ``[B, n_in]``; nonzero means spike (Lava casts
    to bool). Returns the raw int32 accumulation, before ``weight_exp``.
    """
    s, added = _as_batch(spikes, 1)
    if s.shape[-1] != weights.n_in:
        raise ValueError(f"expected {weights.n_in} inputs, got shape {s.shape}")
    out = gather_sum_rows(weights.rows, s)
    return out[0] if added else out


def dense_accumulate_graded(weights: DenseWeights, values: ArrayLike) -> I32:
    """Graded spikes (``num_message_bits > 0``): ``W @ values`` by shift-and-add.

    ``values`` are integers (Lava's graded path only works with integer
    payloads), ``[n_in]`` or ``[B, n_in]``. Wraps to int32 like Lava's dot.
    """
    x, added = _as_batch(values, 1)
    if x.shape[-1] != weights.n_in:
        raise ValueError(f"expected {weights.n_in} inputs, got shape {x.shape}")
    out = graded_gather_sum(weights.rows, x)
    return out[0] if added else out


def dense_step(weights: DenseWeights, spikes: ArrayLike, *, graded: bool = False) -> I32:
    """What Lava's Dense puts in its buffer this step: accumulate, then ``weight_exp``."""
    acc = dense_accumulate_graded(weights, spikes) if graded else dense_accumulate(weights, spikes)
    return apply_weight_exp(acc, weights.weight_exp)


# =================================================================== Conv ====


def pair(x: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(x, (int, np.integer)):
        return int(x), int(x)
    t = tuple(int(i) for i in x)
    if len(t) == 1:
        return t[0], t[0]
    if len(t) != 2:
        raise ValueError(f"expected an int or a pair, got {x}")
    return t[0], t[1]


@dataclass(frozen=True)
class ConvWeights:
    """A Lava Conv, prepared: per group, a weight table and each input's fan-out.

    Output positions P are x-major, like Lava's (W, H) layout; a receptive
    field's K inputs of group g are ordered (tap x, tap y, channel).
    ``cols[g]`` is ``[K + 1, C_out/groups]``: the weight each of those inputs
    contributes (the flipped kernel: Lava computes a true convolution), plus
    a zero padding row.
    """

    input_shape: tuple[int, int, int]
    output_shape: tuple[int, int, int]
    padding: tuple[int, int]
    groups: int
    cols: tuple[NDArray[np.int16] | I32, ...]
    # Per group, each input's synapses as CSR lists (ptr, output position, row of cols):
    # a spike is delivered by walking its own list (event-driven fan-out).
    fan_out: tuple[tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int32]], ...]
    fanout: NDArray[np.int64]  # (W, H, C): synapses each input reaches (for event counts)
    # groups = 1: input position (x * H + y, or W * H for padding) each output position
    # reads through each tap (tap x, tap y), for the output-stationary kernel.
    taps: NDArray[np.int32] | None = None

    @property
    def positions(self) -> int:
        """Output positions (W x H)."""
        return self.output_shape[0] * self.output_shape[1]


def conv_output_shape(
    input_shape: tuple[int, int, int],
    out_channels: int,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
) -> tuple[int, int, int]:
    """Output (W, H, C) of a Lava Conv."""
    dims = []
    for i in range(2):
        span = dilation[i] * (kernel_size[i] - 1) + 1
        n = (input_shape[i] + 2 * padding[i] - span) // stride[i] + 1
        if n < 1:
            raise ValueError(f"conv output dimension {i} would be {n} < 1")
        dims.append(n)
    return dims[0], dims[1], out_channels


def prepare_conv_weights(
    weight: ArrayLike,
    input_shape: tuple[int, int, int],
    *,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> ConvWeights:
    """Prepare a Lava Conv: ``weight`` is ``(C_out, kx, ky, C_in/groups)``, input (W, H, C).

    Lava's fixed-point Conv casts weights to int32 and neither clips them nor
    applies ``weight_exp`` or ``num_weight_bits`` (declared, unused), so
    neither do we.
    """
    w = np.asarray(weight).astype(np.int32)
    if w.ndim != 4:
        raise ValueError(f"Conv weight must be 4-D (C_out, kx, ky, C_in), got {w.shape}")
    s, p, d = pair(stride), pair(padding), pair(dilation)
    c_out, kx, ky, cin_g = w.shape
    wi, hi, c_in = (int(i) for i in input_shape)
    if c_in % groups or c_out % groups or c_in // groups != cin_g:
        raise ValueError(
            f"channels do not fit groups={groups}: C_in={c_in}, C_out={c_out}, weight C_in={cin_g}"
        )
    out_shape = conv_output_shape((wi, hi, c_in), c_out, (kx, ky), s, p, d)
    wo, ho, _ = out_shape
    hp = hi + 2 * p[1]
    # Padded-input coordinates of every (output x, output y, tap x, tap y).
    px = (np.arange(wo) * s[0])[:, None, None, None] + (np.arange(kx) * d[0])[None, None, :, None]
    py = (np.arange(ho) * s[1])[None, :, None, None] + (np.arange(ky) * d[1])[None, None, None, :]
    base = (px * hp + py) * c_in  # [wo, ho, kx, ky]
    # Lava's true convolution: input tap (a, b) meets weight[:, kx-1-a, ky-1-b, :].
    flipped = w[:, ::-1, ::-1, :]  # (C_out, kx, ky, cin_g)
    cout_g = c_out // groups
    gathers: list[NDArray[np.intp]] = []
    cols: list[NDArray[np.int16] | I32] = []
    for g in range(groups):
        chans = np.arange(cin_g) + g * cin_g
        idx = base[..., None] + chans  # [wo, ho, kx, ky, cin_g]
        gathers.append(np.ascontiguousarray(idx.reshape(wo * ho, kx * ky * cin_g)).astype(np.intp))
        wg = flipped[g * cout_g : (g + 1) * cout_g]  # (cout_g, kx, ky, cin_g)
        # int16 where the weights fit (half the bytes per synapse visit; sums stay int32)
        table = np.zeros((kx * ky * cin_g + 1, cout_g), dtype=np.int32)
        table[:-1] = wg.reshape(cout_g, -1).T
        small = bool(np.abs(table).max(initial=0) < 1 << 15)
        cols.append(table.astype(np.int16) if small else table)
    rx, ry = px - p[0], py - p[1]
    inside = (rx >= 0) & (rx < wi) & (ry >= 0) & (ry < hi)
    taps = np.where(inside, rx * hi + ry, wi * hi).reshape(wo * ho, kx * ky).astype(np.int32)
    wp = wi + 2 * p[0]
    reach = np.zeros(wp * hp * c_in, dtype=np.int64)
    for idx in gathers:
        reach += np.bincount(idx.reshape(-1), minlength=reach.size)
    fanout = reach.reshape(wp, hp, c_in)[p[0] : p[0] + wi, p[1] : p[1] + hi] * cout_g
    return ConvWeights(
        input_shape=(wi, hi, c_in),
        output_shape=out_shape,
        padding=p,
        groups=groups,
        cols=tuple(cols),
        fan_out=tuple(_fan_out_lists(idx, (wi, hi, c_in), p) for idx in gathers),
        fanout=np.ascontiguousarray(fanout),
        taps=np.ascontiguousarray(taps) if groups == 1 else None,
    )


def _fan_out_lists(gather: NDArray[np.intp], input_shape: tuple[int, int, int],
                   padding: tuple[int, int]
                   ) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int32]]:
    """Invert a receptive-field table (``gather`` [P, K]: padded-input index of each
    output position's K inputs) into each real input's synapses, as CSR lists:
    input i reaches output ``dst[e]`` through weight row ``src[e]`` for
    ``ptr[i] <= e < ptr[i + 1]``. Padding inputs never spike and are dropped."""
    wi, hi, c_in = input_shape
    n_pos, k = gather.shape
    hp = hi + 2 * padding[1]
    flat = gather.reshape(-1)
    x = flat // (hp * c_in) - padding[0]
    y = (flat // c_in) % hp - padding[1]
    c = flat % c_in
    real = (x >= 0) & (x < wi) & (y >= 0) & (y < hi)
    inp = ((x * hi + y) * c_in + c)[real]
    order = np.argsort(inp, kind="stable")
    ptr = np.zeros(wi * hi * c_in + 1, dtype=np.int64)
    np.cumsum(np.bincount(inp, minlength=wi * hi * c_in), out=ptr[1:])
    dst = np.repeat(np.arange(n_pos, dtype=np.int32), k)[real][order]
    src = np.tile(np.arange(k, dtype=np.int32), n_pos)[real][order]
    return ptr, np.ascontiguousarray(dst), np.ascontiguousarray(src)


def wrap_conv(acc: I32) -> I32:
    """Lava Conv's ``signed_clamp(x, 24)``: wrap into [-2**23, 2**23) (int32 math, as Lava).

    Two reductions first: sums that already fit (nearly always) are returned as they are.
    """
    if not acc.size or (int(np.max(acc)) < _CONV_HALF and int(np.min(acc)) >= -_CONV_HALF):
        return acc
    return ((acc + _CONV_HALF) & _CONV_MASK) - _CONV_HALF


def conv_accumulate(cw: ConvWeights, spikes: ArrayLike, *, graded: bool = False) -> I32:
    """Lava Conv's output for input ``(W, H, C)`` or ``[B, W, H, C]``, wrapped to 24 bits.

    Binary: each spiking input adds its weights to the output positions it
    reaches (event-driven fan-out: the work is the spikes times their
    synapses). Graded: shift-and-add over the payload bits.
    """
    x, added = _as_batch(spikes, 3)
    if tuple(x.shape[1:]) != cw.input_shape:
        raise ValueError(f"expected input {cw.input_shape}, got {x.shape}")
    n_b = x.shape[0]
    flat = x.reshape(n_b, -1)  # (W, H, C) in C order: the fan-out lists' input index
    wo, ho, c_out = cw.output_shape
    if not graded and cw.taps is not None and c_out >= OUTPUT_STATIONARY_WIDTH and x.size:
        # wide outputs: each output row summed in one place (kernels.receptive_field_sum)
        acc = receptive_field_sum(cw.taps, cw.cols[0], x.reshape(n_b, -1, x.shape[-1]) != 0)
        out = wrap_conv(acc.reshape(n_b, wo, ho, c_out))
        return out[0] if added else out
    parts = []
    for fan_out, table in zip(cw.fan_out, cw.cols):

        def deliver(mask: np.ndarray, fan_out: tuple = fan_out, table: np.ndarray = table) -> I32:
            return scatter_sum_rows(fan_out, table, mask, cw.positions)

        parts.append(bit_serial(deliver, flat) if graded else deliver(flat != 0))
    acc = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)
    out = acc.reshape(n_b, wo, ho, c_out)
    out = wrap_conv(out)
    return out[0] if added else out


def conv_step(cw: ConvWeights, spikes: ArrayLike, *, graded: bool = False) -> I32:
    """What Lava's Conv puts in its buffer this step (same as :func:`conv_accumulate`)."""
    return conv_accumulate(cw, spikes, graded=graded)


# ------------------------------------------------------- PyTorch layouts ----


def torch_conv_weight_to_lava(weight: ArrayLike) -> np.ndarray:
    """PyTorch ``[C_out, C_in, kh, kw]`` (correlation) -> Lava ``(C_out, kx, ky, C_in)``.

    Lava convolves (flipped kernel) over (x=W, y=H); PyTorch correlates over
    (H, W). So transpose to (C_out, kw, kh, C_in) and flip both spatial axes
    (the layout bug of lava-dl issue 260).
    """
    w = np.asarray(weight)
    return np.ascontiguousarray(w.transpose(0, 3, 2, 1)[:, ::-1, ::-1, :])


def torch_conv_params_to_lava(value: int | Sequence[int]) -> tuple[int, int]:
    """PyTorch (h, w) stride/padding/dilation -> Lava (x=w, y=h)."""
    h, w = pair(value)
    return w, h


def nchw_to_lava(x: ArrayLike) -> np.ndarray:
    """``[N, C, H, W]`` -> ``[N, W, H, C]`` (or ``[C, H, W]`` -> ``(W, H, C)``)."""
    a = np.asarray(x)
    axes = (0, 3, 2, 1) if a.ndim == 4 else (2, 1, 0)
    return np.ascontiguousarray(a.transpose(axes))


def lava_to_nchw(x: ArrayLike) -> np.ndarray:
    """``[N, W, H, C]`` -> ``[N, C, H, W]`` (or ``(W, H, C)`` -> ``[C, H, W]``)."""
    return nchw_to_lava(x)  # the permutation is its own inverse
