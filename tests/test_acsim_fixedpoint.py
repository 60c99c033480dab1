"""acsim's fixed-point kernels: Lava's quirks by hand-worked cases, batch = loop,
Conv layout against PyTorch, and no multiply on the activation path.

Bit-exactness against real Lava over whole runs is in ``test_lava_oracle.py``.
"""

from __future__ import annotations

import ast
import inspect
from types import ModuleType

import numpy as np
import pytest
import torch

from snncc.backends.acsim import fixedpoint as fp
from snncc.backends.acsim import kernels
from snncc.backends.acsim.chain import (
    ConvSpec,
    DenseSpec,
    FixedPointChain,
    LifSpec,
    SynapseDelay,
)
from snncc.backends.acsim.fixedpoint import (
    SignMode,
    conv_accumulate,
    dense_accumulate,
    dense_accumulate_graded,
    dense_step,
    lif_step,
    nchw_to_lava,
    prepare_conv_weights,
    prepare_dense_weights,
    quantize_dense_weights,
    torch_conv_params_to_lava,
    torch_conv_weight_to_lava,
)
from snncc.backends.acsim.kernels import gather_sum_rows

# ------------------------------------------------------------------ LIF ----


def _lif(u: int, v: int, a: int, **kw: int) -> tuple[int, int, bool]:
    p = {"du": 0, "dv": 0, "vth": 10, "bias_mant": 0, "bias_exp": 0} | kw
    un, vn, s = lif_step(np.array([u]), np.array([v]), np.array([a]), **p)
    return int(un[0]), int(vn[0]), bool(s[0])


def test_current_decay_truncates_toward_zero() -> None:
    # du=0 still decays by 1/4096 (Lava's +1 offset): -5 * 4095 / 4096 = -4.9988 -> -4
    assert _lif(-5, 0, 0, vth=1000)[0] == -4
    assert _lif(5, 0, 0, vth=1000)[0] == 4
    assert _lif(-5, 0, 0, du=-1, vth=1000)[0] == -5  # du=-1: no decay
    assert _lif(-5000, 0, 0, du=4095, vth=1000)[0] == 0  # du=4095: only this step's input


def test_voltage_decay_truncates_toward_zero() -> None:
    # dv=2048 halves: trunc(-7/2) = -3, trunc(7/2) = 3; u=0 so v is only the decay
    assert _lif(0, -7, 0, du=4095, dv=2048, vth=1000)[1] == -3
    assert _lif(0, 7, 0, du=4095, dv=2048, vth=1000)[1] == 3


def _lava_decay(x: np.ndarray, mult: int) -> np.ndarray:
    """Lava's own formula (AbstractPyLifModelFixed.subthr_dynamics)."""
    p = np.int64(x) * mult if np.ndim(x) == 0 else x.astype(np.int64) * mult
    return np.int32(np.sign(p) * np.right_shift(np.abs(p), 12))


def test_decay_equals_lavas_integer_formula() -> None:
    rng = np.random.default_rng(7)
    i32 = np.iinfo(np.int32)
    edges = [0, 1, -1, 4095, -4095, 4096, -4096, (1 << 23) - 1, -(1 << 23), 1 << 23, i32.max, i32.min + 1]
    x = np.concatenate([np.array(edges), rng.integers(i32.min + 1, i32.max, 20000)]).astype(np.int32)
    decay = np.vectorize(kernels._decay, otypes=[np.int64])
    for mult in [1, 2, 7, 2048, 4095, 4094, 3000, 1234, 4096, 0]:
        assert (decay(x.astype(np.int64), mult) == _lava_decay(x, mult)).all(), mult


def test_input_is_shifted_by_six_and_threshold_is_strict() -> None:
    # a=1 -> u=64; v=64; vth=1 -> 64 is not > 64
    u, v, s = _lif(0, 0, 1, du=4095, dv=4096, vth=1)
    assert (u, v, s) == (64, 64, False)
    u, v, s = _lif(0, 0, 2, du=4095, dv=4096, vth=1)
    assert (u, v, s) == (128, 0, True)  # v reset to 0, u kept


def test_bias_mantissa_and_exponent() -> None:
    assert _lif(0, 0, 0, du=4095, dv=4096, bias_mant=3, bias_exp=2, vth=100)[1] == 12
    assert _lif(0, 0, 0, du=4095, dv=4096, bias_mant=-7, bias_exp=-1, vth=100)[1] == -4  # floor shift


def test_current_wraps_once_at_24_bits_and_voltage_clips() -> None:
    big = (1 << 23) - 64
    # u = big + 128 -> > 2**23 -> minus 2**24
    u, v, _ = _lif(big, 0, 2, du=-1, dv=4096, vth=1 << 16)
    assert u == big + 128 - (1 << 24)
    # v clips at -(2**23 - 1) ...
    lo = -((1 << 23) - 1)
    assert _lif(-(1 << 22), lo, 0, du=-1, dv=0, vth=0)[1] == lo
    # ... and at 2**23 - 1, which is above every threshold ((2**17 - 1) << 6), so it spikes
    assert _lif(1 << 22, (1 << 23) - 1, 0, du=-1, dv=0, vth=(1 << 17) - 1) == (1 << 22, 0, True)


def test_lif_step_batches_like_a_loop() -> None:
    rng = np.random.default_rng(0)
    u = rng.integers(-(1 << 20), 1 << 20, (5, 7))
    v = rng.integers(-(1 << 20), 1 << 20, (5, 7))
    a = rng.integers(-3000, 3000, (5, 7))
    bm = rng.integers(-100, 100, 7)
    args = {"du": 123, "dv": 456, "vth": 500, "bias_mant": bm, "bias_exp": 3}
    ub, vb, sb = lif_step(u, v, a, **args)
    for b in range(5):
        ui, vi, si = lif_step(u[b], v[b], a[b], **args)
        assert (ui == ub[b]).all() and (vi == vb[b]).all() and (si == sb[b]).all()


# ---------------------------------------------------------------- Dense ----


def test_mixed_sign_weights_lose_their_lsb() -> None:
    w = np.array([[3, -3, 255, -256, 300, -400]])
    assert quantize_dense_weights(w).tolist() == [[2, -4, 254, -256, 254, -256]]


def test_single_sign_weights_keep_8_bits_and_clip() -> None:
    assert quantize_dense_weights(np.array([[3, 0, 300]])).tolist() == [[3, 0, 255]]
    assert quantize_dense_weights(np.array([[-3, 0, -300]])).tolist() == [[-3, 0, -255]]
    # fewer weight bits drop more LSBs (floor on the magnitude for inhibitory)
    assert quantize_dense_weights(np.array([[7, 13]]), num_weight_bits=6).tolist() == [[4, 12]]
    assert quantize_dense_weights(np.array([[-7, -13]]), num_weight_bits=6).tolist() == [[-4, -12]]
    # an explicit sign mode overrides the detected one
    w = np.array([[5, 3]])
    assert quantize_dense_weights(w, sign_mode=SignMode.MIXED).tolist() == [[4, 2]]


def test_weight_exp_shifts_the_sum_with_floor() -> None:
    w = prepare_dense_weights(np.array([[-3, 2]]), weight_exp=-1)  # mixed: -3 -> -4
    assert dense_step(w, np.array([1, 0])).tolist() == [-2]
    assert dense_step(w, np.array([1, 1])).tolist() == [-1]  # (-4 + 2) >> 1
    w = prepare_dense_weights(np.array([[1, 1]]), weight_exp=-1)  # excitatory, exact
    assert dense_step(w, np.array([1, 0])).tolist() == [0]  # the exponent applies to the sum
    assert dense_step(w, np.array([1, 1])).tolist() == [1]
    w = prepare_dense_weights(np.array([[5]]), weight_exp=3)
    assert dense_step(w, np.array([1])).tolist() == [40]


def test_dense_accumulate_is_the_spiking_columns_sum() -> None:
    rng = np.random.default_rng(1)
    w = rng.integers(-256, 256, (37, 53))
    prep = prepare_dense_weights(w)
    s = rng.random(53) < 0.3
    assert (dense_accumulate(prep, s) == prep.matrix @ s.astype(np.int64)).all()
    assert (dense_accumulate(prep, np.zeros(53, bool)) == 0).all()


@pytest.mark.parametrize("n_out", [5, 3000])  # narrow: padded blocks; wide: per-row lists
def test_dense_batch_equals_loop(n_out: int) -> None:
    rng = np.random.default_rng(2)
    prep = prepare_dense_weights(rng.integers(-256, 256, (n_out, 40)))
    s = rng.random((9, 40)) < rng.random((9, 1))
    s[3] = False  # a silent sample
    batch = dense_accumulate(prep, s)
    for b in range(9):
        assert (batch[b] == dense_accumulate(prep, s[b])).all()


@pytest.mark.parametrize(("n_rows", "n_in", "n_out"),
                         [(1, 30, 7), (5, 64, 900), (70, 40, 33), (300, 20, 5), (3, 0, 4), (0, 5, 2)])
def test_gather_sum_is_exact(n_rows: int, n_in: int, n_out: int) -> None:
    rng = np.random.default_rng(n_rows)
    rows = np.zeros((n_in + 1, n_out), np.int32)
    rows[:n_in] = rng.integers(-256, 256, (n_in, n_out))
    mask = rng.random((n_rows, n_in)) < rng.random((n_rows, 1))  # rates from 0 to 1 per row
    if n_rows:
        mask[0] = False
    ref = mask.astype(np.int64) @ rows[:n_in].astype(np.int64)
    assert (gather_sum_rows(rows, mask) == ref).all()
    assert (gather_sum_rows(rows, np.zeros_like(mask)) == 0).all()


def test_gather_sum_wraps_like_int32() -> None:
    rows = np.full((3, 2), 2**30, np.int32)
    got = gather_sum_rows(rows, np.ones((1, 3), bool))
    assert got.tolist() == [[np.int32(-(2**30)), np.int32(-(2**30))]]


def test_graded_dense_equals_integer_dot_with_int32_wrap() -> None:
    rng = np.random.default_rng(3)
    w = rng.integers(-256, 256, (11, 17))
    prep = prepare_dense_weights(w)
    x = rng.integers(-1000, 1000, (4, 17))
    ref = (x.astype(np.int64) @ prep.matrix.T.astype(np.int64)).astype(np.int32)
    assert (dense_accumulate_graded(prep, x) == ref).all()
    huge = np.full(17, (1 << 30) - 7)  # overflows int32: Lava's int32 dot wraps
    ref = (prep.matrix.astype(np.int64) @ huge).astype(np.int32)
    assert (dense_accumulate_graded(prep, huge) == ref).all()


# ----------------------------------------------------------------- Conv ----


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups"),
    [(1, 0, 1, 1), (2, 1, 1, 1), ((1, 2), (2, 0), (2, 1), 1), (1, 1, 1, 2), (2, 2, 2, 4)],
)
def test_conv_matches_torch_through_the_layout_helpers(
    stride: int | tuple[int, int],
    padding: int | tuple[int, int],
    dilation: int | tuple[int, int],
    groups: int,
) -> None:
    rng = np.random.default_rng(4)
    c_in, c_out, h, w = 4, 8, 9, 7
    wt = rng.integers(-100, 100, (c_out, c_in // groups, 3, 2))
    x = rng.random((3, c_in, h, w)) < 0.4
    ref = torch.nn.functional.conv2d(
        torch.tensor(x, dtype=torch.float64),
        torch.tensor(wt, dtype=torch.float64),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
    ).numpy()
    cw = prepare_conv_weights(
        torch_conv_weight_to_lava(wt),
        (w, h, c_in),
        stride=torch_conv_params_to_lava(stride),
        padding=torch_conv_params_to_lava(padding),
        dilation=torch_conv_params_to_lava(dilation),
        groups=groups,
    )
    out = conv_accumulate(cw, nchw_to_lava(x))
    assert (out == nchw_to_lava(ref).astype(np.int32)).all()
    # a single sample is the same as its batch row; graded 0/1 is the same as binary
    assert (conv_accumulate(cw, nchw_to_lava(x)[1]) == out[1]).all()
    assert (conv_accumulate(cw, nchw_to_lava(x).astype(np.int32), graded=True) == out).all()


def test_conv_graded_and_24_bit_wrap() -> None:
    rng = np.random.default_rng(5)
    wt = rng.integers(-(1 << 20), 1 << 20, (2, 3, 3, 3))  # Lava's Conv does not clip weights
    x = rng.integers(0, 200, (1, 3, 6, 6))
    exact = torch.nn.functional.conv2d(
        torch.tensor(x, dtype=torch.float64), torch.tensor(wt, dtype=torch.float64)
    ).numpy()
    exact = nchw_to_lava(exact).astype(np.int64)[0]
    cw = prepare_conv_weights(torch_conv_weight_to_lava(wt), (6, 6, 3))
    out = conv_accumulate(cw, nchw_to_lava(x)[0], graded=True)
    wrapped = ((exact + (1 << 23)) % (1 << 24)) - (1 << 23)
    assert np.abs(exact).max() > 1 << 23  # the case really wraps
    assert (out == wrapped).all()


# ---------------------------------------------------------------- delay ----


def test_synapse_delay_returns_last_steps_buffer() -> None:
    d = SynapseDelay((2,))
    assert d.push(np.array([1, 2], np.int32)).tolist() == [0, 0]
    assert d.push(np.array([3, 4], np.int32)).tolist() == [1, 2]
    assert d.peek().tolist() == [3, 4]


def test_chain_depth_shifts_outputs_by_one_step_per_layer() -> None:
    # each layer fires on any input spike: the first spike at step 0 reaches
    # layer 1 at step 1 and layer 2 at step 2
    layers = [
        (DenseSpec(weights=np.full((3, 3), 100)), LifSpec(du=4095, dv=4096, vth=1)),
        (DenseSpec(weights=np.full((2, 3), 100)), LifSpec(du=4095, dv=4096, vth=1)),
    ]
    x = np.zeros((5, 3), bool)
    x[0, 0] = True
    tr = FixedPointChain(layers).run(x)
    assert tr.spikes[0][:, 0].tolist() == [False, True, False, False, False]
    assert tr.spikes[1][:, 0].tolist() == [False, False, True, False, False]


def test_chain_batch_equals_loop() -> None:
    rng = np.random.default_rng(6)
    conv = ConvSpec(weight=rng.integers(-50, 100, (4, 3, 3, 2)), input_shape=(5, 5, 2), padding=(1, 1))
    layers = [
        (conv, LifSpec(du=100, dv=200, vth=20)),
        (DenseSpec(weights=rng.integers(-60, 120, (6, 100))), LifSpec(du=50, dv=10, vth=15, bias_mant=2)),
    ]
    x = rng.random((8, 4, 5, 5, 2)) < 0.3
    chain = FixedPointChain(layers)
    batch = chain.run(x)
    for b in range(4):
        one = chain.run(x[:, b])
        for k in range(2):
            assert (one.spikes[k] == batch.spikes[k][:, b]).all()
            assert (one.v[k] == batch.v[k][:, b]).all()
            assert (one.u[k] == batch.u[k][:, b]).all()


# ------------------------------------------------------- no multiplies ----

_FORBIDDEN_CALLS = {
    "dot", "matmul", "multiply", "einsum", "tensordot", "inner", "outer", "vdot",
    "kron", "prod", "convolve", "convolve2d", "correlate", "conv2d",
}


def _functions(module: ModuleType = fp) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(inspect.getsource(module))
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def _multiplies(node: ast.AST) -> list[str]:
    found = []
    for n in ast.walk(node):
        if isinstance(n, (ast.BinOp, ast.AugAssign)) and isinstance(n.op, (ast.Mult, ast.MatMult, ast.Pow)):
            found.append(f"line {n.lineno}: {ast.unparse(n)}")
        if isinstance(n, ast.Call):
            name = n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "")
            if name in _FORBIDDEN_CALLS:
                found.append(f"line {n.lineno}: call to {name}")
    return found


def _called_module_functions(node: ast.AST, module_funcs: set[str]) -> set[str]:
    return {
        n.func.id
        for n in ast.walk(node)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in module_funcs
    }


def test_activation_path_has_no_multiply() -> None:
    funcs = _functions()
    assert set(fp.ACTIVATION_PATH) <= set(funcs), "ACTIVATION_PATH names a missing function"
    for name in fp.ACTIVATION_PATH:
        assert _multiplies(funcs[name]) == [], f"{name} multiplies"


def test_activation_path_is_closed() -> None:
    funcs = _functions()
    allowed = set(fp.ACTIVATION_PATH) | {"decay_multiplier_u", "decay_multiplier_v"}
    for name in fp.ACTIVATION_PATH:
        callees = _called_module_functions(funcs[name], set(funcs))
        assert callees <= allowed, f"{name} calls {callees - allowed} outside the checked path"
    # the decay parameter helpers do not multiply either
    for name in ("decay_multiplier_u", "decay_multiplier_v"):
        assert _multiplies(funcs[name]) == []


def test_compiled_kernels_add_and_only_the_decay_multiplies() -> None:
    """The compiled synapse and neuron (what fixedpoint calls) only add, shift, compare
    and select; the decay by a constant is the one multiply, used only by the LIF."""
    funcs = _functions(kernels)
    assert set(kernels.ACTIVATION_PATH) <= set(funcs)
    for name in kernels.ACTIVATION_PATH:
        assert _multiplies(funcs[name]) == [], f"{name} multiplies"
        callees = _called_module_functions(funcs[name], set(funcs))
        assert callees <= set(kernels.ACTIVATION_PATH) | {"_decay"}, name
    assert len(_multiplies(funcs["_decay"])) == 1
    users = {n for n, f in funcs.items() if "_decay" in _called_module_functions(f, set(funcs))}
    assert users == {"_lif_kernel"}
    assert set(funcs) <= set(kernels.ACTIVATION_PATH) | {"_decay"}  # nothing unchecked
    imported = {n.id for f in _functions().values() for n in ast.walk(f) if isinstance(n, ast.Name)}
    assert {"gather_sum_rows", "graded_gather_sum", "lif_update"} <= imported


def test_the_no_multiply_check_catches_a_multiply() -> None:
    bad = ast.parse("def f(w, s):\n    return (w * s).sum() + np.dot(w, s)\n").body[0]
    assert len(_multiplies(bad)) == 2


def test_chain_counts_synaptic_events_and_records_chosen_layers() -> None:
    rng = np.random.default_rng(8)
    conv = ConvSpec(weight=rng.integers(0, 50, (3, 3, 3, 2)), input_shape=(5, 4, 2), padding=(1, 1))
    dense = DenseSpec(weights=rng.integers(0, 50, (7, int(np.prod(conv.out_shape)))))
    layers = [(conv, LifSpec(vth=20)), (dense, LifSpec(vth=20))]
    x = rng.random((6, 3, 5, 4, 2)) < 0.4
    full = FixedPointChain(layers).run(x)
    last = FixedPointChain(layers).run(x, record_state=False, record_layers=[-1])
    assert last.layers == [1] and len(last.spikes) == 1 and last.v == []
    assert (last.spikes[0] == full.spikes[1]).all()
    # oracle for the count: each spiking input times the outputs it is wired to, i.e.
    # the output positions whose receptive field holds it (PyTorch: the transposed
    # convolution of an all-ones map with an all-ones kernel), times 3 output channels
    reach = torch.nn.functional.conv_transpose2d(
        torch.ones(1, 1, *conv.out_shape[:2], dtype=torch.float64),
        torch.ones(1, 2, 3, 3, dtype=torch.float64), padding=1)
    assert reach.shape == (1, 2, 5, 4)  # [N, C, W, H]: Lava's (W, H, C) input
    fan = reach[0].permute(1, 2, 0).numpy().astype(np.int64) * 3  # (W, H, C)
    expected = int((x * fan).sum()) + int(full.spikes[0].sum()) * 7
    assert full.synaptic_events == last.synaptic_events == expected


@pytest.mark.parametrize("shape,kernel,stride,padding,dilation", [
    ((7, 5, 3), (3, 3), 1, 1, 1), ((9, 6, 4), (3, 2), 2, 0, 1), ((8, 8, 5), (3, 3), 1, 2, 2),
    ((6, 9, 2), (1, 1), 1, 0, 1), ((10, 7, 3), (5, 3), (2, 1), (2, 1), (1, 2))])
def test_output_stationary_conv_equals_the_fan_out(monkeypatch: pytest.MonkeyPatch,
                                                   shape: tuple[int, int, int],
                                                   kernel: tuple[int, int], stride: object,
                                                   padding: object, dilation: object) -> None:
    """Wide Convs sum each output row in place (receptive_field_sum); the spike-driven
    fan-out (scatter_sum_rows) is the oracle, 24-bit wrap included."""
    rng = np.random.default_rng(shape[0])
    x = rng.random((4, *shape)) < 0.5
    for top in (1 << 14, 1 << 21):  # int16 table; int32 table with sums that wrap 24 bits
        weight = rng.integers(-top, top, (70, *kernel, shape[2]))
        cw = prepare_conv_weights(weight, shape, stride=stride,  # type: ignore[arg-type]
                                  padding=padding, dilation=dilation)  # type: ignore[arg-type]
        assert cw.taps is not None and cw.output_shape[2] >= fp.OUTPUT_STATIONARY_WIDTH
        wide = conv_accumulate(cw, x), conv_accumulate(cw, x[0])
        with monkeypatch.context() as m:
            m.setattr(fp, "OUTPUT_STATIONARY_WIDTH", 1 << 30)
            fan_out = conv_accumulate(cw, x), conv_accumulate(cw, x[0])
        assert all(np.array_equal(a, b) for a, b in zip(wide, fan_out))
    big = np.abs(fan_out[0]).max()
    assert big > 1 << 20  # the large weights reach the wrap's range


@pytest.mark.parametrize("shift", [0, 3, -2, 31])
def test_per_column_gather_equals_the_row_gather_transposed(shift: int) -> None:
    """``gather_sum_columns`` (a Dense on every token of [G, C, N], acsim's pointwise
    layout) is ``gather_sum_rows`` on the transposed spikes, transposed back and shifted
    as Lava Dense applies ``weight_exp``."""
    rng = np.random.default_rng(shift + 5)
    for g, k, n, w, dtype in [(3, 17, 21, 13, np.int16), (5, 40, 9, 70, np.int32), (1, 1, 1, 1, np.int16)]:
        rows = np.zeros((k + 1, w), dtype=dtype)
        rows[:-1] = rng.integers(-30000, 30000, (k, w))
        mask = rng.random((g, k, n)) < 0.4
        flat = gather_sum_rows(rows, np.swapaxes(mask, 1, 2).reshape(-1, k)).reshape(g, n, w)
        want = np.swapaxes(fp.apply_weight_exp(flat, shift), 1, 2)
        assert np.array_equal(kernels.gather_sum_columns(rows, mask, shift), want)
