"""acsim's kernels against real Lava 0.10.0 (``fixed_pt``): identical spikes, u
and v at every step, for random Dense+LIF and Conv+LIF chains.

Each Lava run starts a runtime with one OS process per Lava process, so the
networks are small and few.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snncc.backends.acsim.chain import (
    ConvSpec,
    DenseSpec,
    FixedPointChain,
    LifSpec,
)
from snncc.backends.acsim.fixedpoint import (
    SignMode,
)
from snncc.backends.lava import run_lava_chain

Layers = list[tuple[DenseSpec | ConvSpec, LifSpec]]


def _assert_same(layers: Layers, x: np.ndarray, *, min_spikes: int = 1) -> None:
    lava = run_lava_chain(layers, x)
    ours = FixedPointChain(layers).run(x)
    for k in range(len(layers)):
        assert lava.spikes[k].shape == ours.spikes[k].shape
        # the network must do something, or the comparison proves little
        assert lava.spikes[k].sum() >= min_spikes, f"layer {k} is silent in Lava"
        for t in range(x.shape[0]):
            assert (ours.spikes[k][t] == lava.spikes[k][t]).all(), f"spikes differ: layer {k}, step {t}"
            assert (ours.v[k][t] == lava.v[k][t]).all(), f"v differs: layer {k}, step {t}"
            assert (ours.u[k][t] == lava.u[k][t]).all(), f"u differs: layer {k}, step {t}"


def _random_lif(rng: np.random.Generator, n: int | tuple[int, ...], vth_hi: int) -> LifSpec:
    shape = (n,) if isinstance(n, int) else n
    return LifSpec(
        du=int(rng.choice([-1, 0, int(rng.integers(1, 4095)), 4095])),
        dv=int(rng.choice([0, int(rng.integers(1, 4096)), 4096])),
        vth=int(rng.integers(20, vth_hi)),
        bias_mant=rng.integers(-30, 60, shape),
        bias_exp=int(rng.integers(-2, 4)),
    )


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_dense_chain_matches_lava(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sizes = [int(rng.integers(6, 20)) for _ in range(int(rng.integers(3, 5)))]  # 2-3 layers
    layers: Layers = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        w = rng.integers(-200, 256, (n_out, n_in))  # mixed sign: the LSB is dropped
        layers.append(
            (
                DenseSpec(weights=w, weight_exp=int(rng.integers(-3, 2))),
                _random_lif(rng, n_out, vth_hi=400),
            )
        )
    x = rng.random((30, sizes[0])) < 0.3
    _assert_same(layers, x)


def test_dense_weight_options_and_state_extremes_match_lava() -> None:
    rng = np.random.default_rng(10)
    n = 16
    layers: Layers = [
        # float weights (Lava truncates them), fewer weight bits, explicit sign mode
        (
            DenseSpec(weights=rng.normal(40, 60, (n, n)), num_weight_bits=5, sign_mode=SignMode.MIXED),
            LifSpec(du=10, dv=20, vth=30, u0=rng.integers(-5000, 5000, n), v0=rng.integers(-9000, 9000, n)),
        ),
        # excitatory, full weights, large positive exponent: u leaves 24 bits and wraps
        (DenseSpec(weights=np.full((n, n), 255), weight_exp=7), LifSpec(du=-1, dv=0, vth=(1 << 17) - 1)),
        # inhibitory weights with a positive bias
        (
            DenseSpec(weights=-rng.integers(0, 256, (n, n)), num_weight_bits=7, weight_exp=-2),
            LifSpec(du=2000, dv=100, vth=5, bias_mant=400, bias_exp=3),
        ),
    ]
    x = rng.random((25, n)) < 0.4
    _assert_same(layers, x)
    ours = FixedPointChain(layers).run(x)
    assert ours.u[1].min() < -(1 << 22) or ours.u[1].max() > 1 << 22  # the wrap did happen


def test_threshold_equality_and_reset_match_lava() -> None:
    # du=4095, dv=4096: v = u = (input << 6); one spike of weight 10 puts v exactly
    # at vth << 6 (no spike: the test is strict), two put it above
    layers: Layers = [(DenseSpec(weights=np.full((3, 2), 10)), LifSpec(du=4095, dv=4096, vth=10))]
    x = np.array([[1, 0], [1, 1], [0, 1], [1, 1], [0, 0], [0, 0]], bool)
    _assert_same(layers, x)
    ours = FixedPointChain(layers).run(x)
    assert ours.spikes[0][:, 0].tolist() == [False, False, True, False, True, False]
    assert ours.v[0][1, 0] == 10 << 6


def test_conv_chain_matches_lava() -> None:
    rng = np.random.default_rng(20)
    c1 = ConvSpec(
        weight=rng.integers(-40, 90, (6, 3, 2, 4)),
        input_shape=(9, 7, 4),
        stride=(2, 1),
        padding=(1, 1),
        dilation=(1, 2),
        weight_exp=3,  # Lava's Conv ignores it
    )
    c2 = ConvSpec(weight=rng.integers(-300, 400, (4, 3, 3, 3)), input_shape=c1.out_shape, padding=(1, 1), groups=2)
    dense = DenseSpec(weights=rng.integers(-50, 100, (7, int(np.prod(c2.out_shape)))))
    layers: Layers = [
        (c1, _random_lif(rng, c1.out_shape, vth_hi=400)),
        (c2, LifSpec(du=0, dv=100, vth=50)),
        (dense, LifSpec(du=2000, dv=800, vth=8000)),  # the Conv output is flattened (W, H, C) C-order
    ]
    x = rng.random((14, 9, 7, 4)) < 0.35
    _assert_same(layers, x)


def test_conv_wraps_at_24_bits_like_lava() -> None:
    rng = np.random.default_rng(30)
    c = ConvSpec(weight=rng.integers(-(1 << 20), 1 << 21, (3, 3, 3, 8)), input_shape=(6, 6, 8), padding=(1, 1))
    layers: Layers = [(c, LifSpec(du=4095, dv=4096, vth=1))]
    x = rng.random((6, 6, 6, 8)) < 0.9
    _assert_same(layers, x)
    # the unwrapped sums really leave 24 bits (PyTorch correlates: undo Lava's flip)
    exact = torch.nn.functional.conv2d(
        torch.tensor(x.transpose(0, 3, 2, 1), dtype=torch.float64),
        torch.tensor(c.weight[:, ::-1, ::-1, :].transpose(0, 3, 2, 1).copy(), dtype=torch.float64),
        padding=1,
    )
    assert float(exact.abs().max()) > 1 << 23


def test_graded_inputs_match_lava() -> None:
    rng = np.random.default_rng(40)
    xd = rng.integers(-5, 40, (15, 10)) * (rng.random((15, 10)) < 0.5)
    dense_layers: Layers = [
        (DenseSpec(weights=rng.integers(-60, 120, (12, 10)), num_message_bits=8), LifSpec(du=300, dv=500, vth=4000)),
        (DenseSpec(weights=rng.integers(-60, 120, (6, 12)), num_message_bits=8), LifSpec(du=300, dv=500, vth=2000)),
    ]
    _assert_same(dense_layers, xd)
    xc = rng.integers(-5, 30, (10, 6, 5, 3))
    conv_layers: Layers = [
        (
            ConvSpec(weight=rng.integers(-40, 90, (3, 3, 3, 3)), input_shape=(6, 5, 3), num_message_bits=8),
            LifSpec(du=1000, dv=1000, vth=60000),
        )
    ]
    _assert_same(conv_layers, xc)


def test_batched_acsim_matches_lava_per_sample() -> None:
    rng = np.random.default_rng(50)
    layers: Layers = [
        (DenseSpec(weights=rng.integers(-100, 200, (10, 8))), LifSpec(du=100, dv=200, vth=30)),
        (DenseSpec(weights=rng.integers(-100, 200, (5, 10))), LifSpec(du=100, dv=200, vth=30)),
    ]
    x = rng.random((20, 2, 8)) < rng.random((1, 2, 1))  # two samples, different rates
    ours = FixedPointChain(layers).run(x)
    for b in range(2):
        lava = run_lava_chain(layers, x[:, b], record_state=False)
        for k in range(2):
            assert (ours.spikes[k][:, b] == lava.spikes[k]).all()


def test_lava_chain_runs_extra_steps_with_silent_input() -> None:
    rng = np.random.default_rng(60)
    layers: Layers = [(DenseSpec(weights=rng.integers(0, 200, (4, 4))), LifSpec(du=-1, dv=0, vth=10))]
    x = np.ones((3, 4), bool)
    lava = run_lava_chain(layers, x, num_steps=8, record_state=False)
    padded = np.concatenate([x, np.zeros((5, 4), bool)])
    ours = FixedPointChain(layers).run(padded, record_state=False)
    assert lava.spikes[0].shape == (8, 4)
    assert (ours.spikes[0] == lava.spikes[0]).all()


def test_lava_chain_rejects_a_wrong_input_shape() -> None:
    layers: Layers = [(DenseSpec(weights=np.ones((2, 3))), LifSpec())]
    with pytest.raises(ValueError, match="inputs must be"):
        run_lava_chain(layers, np.zeros((4, 5)))


def test_lava_chain_in_chunks_equals_one_run() -> None:
    rng = np.random.default_rng(70)
    layers: Layers = [(DenseSpec(weights=rng.integers(-50, 200, (6, 5))), LifSpec(du=100, dv=100, vth=20))]
    x = rng.random((12, 5)) < 0.5
    one = run_lava_chain(layers, x)
    split = run_lava_chain(layers, x, chunks=[3, 9])
    assert len(split.chunk_s) == 2
    assert (one.spikes[0] == split.spikes[0]).all() and (one.v[0] == split.v[0]).all()
