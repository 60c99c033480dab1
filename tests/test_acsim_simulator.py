"""acsim's whole-graph simulator against its oracles: real Lava on the digits model's
layers, the float PyTorch model's accuracy, hand-counted events, and no multiply
on its datapath."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import pytest
import torch
from spikingjelly.clock_driven import functional
from spikingjelly.clock_driven.neuron import MultiStepLIFNode
from test_acsim_fixedpoint import _called_module_functions, _multiplies

import snncc
from snncc.api import acsim_spikes
from snncc.backends.acsim import datapath
from snncc.backends.acsim.chain import (
    ConvSpec,
    DenseSpec,
    LifSpec,
)
from snncc.backends.acsim.fixedpoint import (
    nchw_to_lava,
    torch_conv_params_to_lava,
    torch_conv_weight_to_lava,
)
from snncc.backends.acsim.program import Program
from snncc.backends.acsim.simulator import run_batch, run_quantized
from snncc.backends.lava.chain import run_lava_chain
from snncc.diagnostics import SnnccError
from snncc.examples.digits import encode, load_digits_split
from snncc.ir.ops.neurons import run_neuron
from snncc.loading import load_model
from snncc.passes.quantize import QuantizedGraph, item_shape, quantize

CKPT = "examples/checkpoints/spikingformer_digits.pt"


@lru_cache(maxsize=3)
def _digits(ckpt: str = CKPT) -> tuple[torch.nn.Module, QuantizedGraph, torch.Tensor, np.ndarray]:
    model = load_model(ckpt).module.eval()
    xtr, _, xte, yte = load_digits_split()
    graph = snncc.compile(model, torch.zeros(4, 1, 1, 8, 8)).graph
    qg = quantize(graph, "loihi2", calibration=encode(xtr[:64]), simulate=acsim_spikes)
    return model, qg, encode(xte), yte.numpy()


@pytest.mark.parametrize("ckpt", [CKPT, "examples/checkpoints/spikformer_digits.pt"])
def test_digits_accuracy_within_one_point_of_the_float_model(ckpt: str) -> None:
    """Spikingformer (binary spikes everywhere) and Spikformer (its integer residual
    stream reaches q, k, v and fc1 as graded spikes) on the digits test set."""
    model, qg, x, y = _digits(ckpt)
    res = run_quantized(qg, x)
    with torch.no_grad():
        functional.reset_net(model)
        float_pred = model(x).argmax(-1).numpy()
    acc_float = float((float_pred == y).mean())
    acc_acsim = float((res.predictions == y).mean())
    assert acc_float > 0.9
    assert abs(acc_acsim - acc_float) <= 0.01, (acc_acsim, acc_float)
    assert res.wraps == 0
    # the quantizer measured per-layer spike agreement on its calibration inputs
    agreements = [r.spike_agreement for r in qg.layers if r.vth is not None]
    assert agreements and all(a is not None and a > 0.9 for a in agreements)


def test_pruned_time_steps_change_nothing_but_the_work() -> None:
    """The DTS model compiled with and without prune-timesteps: identical acsim outputs
    and spikes, fewer synaptic events with pruning."""
    model = load_model("examples/checkpoints/spikingformer_digits_dts.pt").module.eval()
    xtr, _, xte, _ = load_digits_split()
    x, cal = encode(xte[:100]), encode(xtr[:32])
    results = [snncc.compile(model, torch.zeros(4, 1, 1, 8, 8), target="acsim",
                             calibration=cal, prune=prune) for prune in (False, True)]
    full, pruned = (snncc.simulate(r, x) for r in results)
    assert np.array_equal(full.outputs[0], pruned.outputs[0])
    assert full.spikes.keys() == pruned.spikes.keys()
    # a neuron's skipped steps emit nothing, and what it would have emitted is masked
    schedule = results[1].graph.meta["schedule"]
    assert isinstance(schedule, dict) and schedule
    for name, spikes in full.spikes.items():
        steps = schedule.get(name, list(range(4)))
        assert np.array_equal(spikes[steps], pruned.spikes[name][steps]), name
        assert not pruned.spikes[name][[t for t in range(4) if t not in steps]].any()
    # event-driven: a masked step carries no spikes, so pruning saves no synaptic event...
    assert pruned.counts.total_sops() == full.counts.total_sops()
    # ...but the neuron updates of the steps it removed, and so energy
    skipped = [lc for lc in pruned.counts.layers.values() if not lc.executed_steps().all()]
    assert skipped
    costs = [snncc.estimate(r, s) for r, s in zip(results, (full, pruned))]
    assert costs[1].totals.energy_pj < costs[0].totals.energy_pj


def test_attention_lif_is_bit_exact_to_spikingjelly() -> None:
    """The attention LIF reads exact spike counts at a power-of-two scale (quantize's
    docstring): on the same input counts it must fire exactly as SpikingJelly's LIF."""
    _, qg, x, _ = _digits()
    [name] = [n for n in qg.neurons if "attn_attn_lif" in n]
    assert qg.neurons[name].threshold_exact
    run, _ = run_batch(Program(qg), x[:, :60].numpy())
    node = qg.graph.nodes[name]
    counts = torch.from_numpy(np.asarray(run.values[node.inputs[0]])).float()
    ref = run_neuron(counts, node.attrs, node.opdef.charge, None)[0]  # type: ignore[attr-defined]
    assert ref.sum() > 0
    assert np.array_equal(run.spikes[name], ref.numpy() != 0)


def _lif_spec(qg: QuantizedGraph, name: str, bias: np.ndarray) -> LifSpec:
    """The quantized neuron as a Lava LIF that starts one (delay) step early.

    Lava's LIF adds its bias on the step before the first synaptic input arrives;
    acsim's time-aligned layers do not have that step. Starting v at
    ``-bias * 4096 / (4096 - dv)`` (exact for dv = 2048) leaves v = 0 and no
    spike after it, so from then on Lava must match acsim step for step."""
    nq = qg.neurons[name]
    eff = np.left_shift(bias.astype(np.int64), nq.bias_exp)
    assert nq.dv == 2048
    return LifSpec(du=nq.du, dv=nq.dv, vth=nq.vth, bias_mant=bias, bias_exp=nq.bias_exp,
                   v0=-2 * eff)


def _lava_expressible(qg: QuantizedGraph) -> list[tuple[str, str]]:
    """(weight op, LIF) pairs of the model that Lava's Dense or Conv + LIF can run alone:
    a chip weight op fed binary spikes whose only reader is a LIF reading only it."""
    users = qg.graph.users_map()
    pairs = []
    for name, wq in qg.weights.items():
        readers = users[name]
        if not wq.graded and len(readers) == 1 and readers[0].op == "lif":
            pairs.append((name, readers[0].name))
    return pairs


def _as_lava_layer(qg: QuantizedGraph, op: str, lif: str, x: np.ndarray
                   ) -> tuple[ConvSpec | DenseSpec, LifSpec, np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """The layer as a Lava spec, its input spikes [T, ...] in Lava's layout, and the map
    from acsim's [T, *item] values to Lava's layout."""
    wq, node = qg.weights[op], qg.graph.nodes[op]
    if node.op == "conv2d":
        assert wq.weight_exp >= 0  # Lava's Conv ignores weight_exp: fold it into the weights
        weight = torch_conv_weight_to_lava(np.left_shift(wq.mantissa.astype(np.int64), wq.weight_exp))
        a = node.attrs
        spec = ConvSpec(weight=weight, input_shape=nchw_to_lava(x[0]).shape,
                        padding=torch_conv_params_to_lava(a.padding),  # type: ignore[attr-defined]
                        stride=torch_conv_params_to_lava(a.stride))  # type: ignore[attr-defined]
        bias = nchw_to_lava(qg.neurons[lif].bias_mant)
        return spec, _lif_spec(qg, lif, bias), nchw_to_lava(x), nchw_to_lava
    w = wq.mantissa.reshape(wq.mantissa.shape[0], -1)  # linear, or a pointwise conv1d
    n_tok = x.shape[-1] if node.op == "conv1d" else 1
    big = np.kron(w, np.eye(n_tok, dtype=np.int64))  # [(o, n), (c, n)]: one Dense per token
    bias = np.broadcast_to(qg.neurons[lif].bias_mant, (w.shape[0], n_tok)).reshape(-1)
    spec = DenseSpec(weights=big, weight_exp=wq.weight_exp)
    return spec, _lif_spec(qg, lif, bias), x.reshape(x.shape[0], -1), \
        lambda y: y.reshape(y.shape[0], -1)


def test_digits_model_has_lava_expressible_layers() -> None:
    _, qg, _, _ = _digits()
    kinds = {qg.graph.nodes[op].op for op, _ in _lava_expressible(qg)}
    assert kinds == {"conv2d", "conv1d"} and len(_lava_expressible(qg)) == 7


@pytest.mark.parametrize("index", range(7))
def test_digits_layer_matches_lava(index: int) -> None:
    """Each Lava-expressible layer of the quantized digits Spikingformer, fed acsim's own
    input spikes, in real Lava fixed_pt: identical spikes and membrane voltages at every
    step, one step later (Lava's synaptic delay)."""
    _, qg, x, _ = _digits()
    op, lif = _lava_expressible(qg)[index]
    program = Program(qg)
    run, _ = run_batch(program, x[:, :1].numpy(), record_voltage=True)
    spikes_in = np.asarray(run.values[qg.graph.nodes[op].inputs[0]])[:, 0]
    spec, lif_spec, lava_in, to_lava = _as_lava_layer(qg, op, lif, spikes_in)
    lava = run_lava_chain([(spec, lif_spec)], lava_in, num_steps=qg.graph.time_steps + 1)
    ours_s = to_lava(run.spikes[lif][:, 0])
    ours_v = to_lava(run.voltages[lif][:, 0])
    assert ours_s.any(), f"{lif} never fires on this input: the comparison would be weak"
    assert np.array_equal(lava.spikes[0][1:], ours_s)
    assert np.array_equal(lava.v[0][1:], ours_v)


class _DenseLif(torch.nn.Module):
    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(n_in, n_out, bias=False)
        self.lif = MultiStepLIFNode(tau=2.0, detach_reset=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lif(self.fc(x))


def test_counts_equal_a_hand_calculation() -> None:
    """N_in inputs with exactly k spikes per step into N_out neurons: k * N_out synaptic
    ops per step and sample, counted once per op and once at the receiving layer."""
    torch.manual_seed(0)
    n_in, n_out, k, T, B = 40, 25, 7, 5, 3
    model = _DenseLif(n_in, n_out).eval()
    graph = snncc.trace(model, torch.zeros(T, 1, n_in), input_kind="spikes")
    qg = quantize(snncc.compile(graph).graph, "loihi2")
    x = np.zeros((T, B, n_in), dtype=np.float32)
    rng = np.random.default_rng(1)
    for t in range(T):
        for b in range(B):
            x[t, b, rng.choice(n_in, k, replace=False)] = 1
    res = run_quantized(qg, x, batch_size=2)  # two batches: totals must add up
    [layer] = res.counts.layers.values()
    assert layer.sops.shape == (T, n_out)
    assert layer.sops.sum(axis=1).tolist() == [k * n_out * B] * T
    assert layer.spikes.sum() == res.spikes[layer.layer.name].sum()
    [op] = res.counts.ops.values()
    assert op.where == "chip" and op.sops.tolist() == [k * n_out * B] * T
    assert res.counts.batch == B and layer.layer.fan_in == n_in
    assert layer.layer.synapses == n_in * n_out and layer.layer.synapse_kind == "dense"


def test_wrong_input_shape_is_a_clear_error() -> None:
    _, qg, x, _ = _digits()
    with pytest.raises(SnnccError, match="compiled for") as e:
        run_quantized(qg, x[:, :2, :, :4])
    assert e.value.diagnostic.code == "SNN-SIM002"


def test_non_finite_or_non_spike_inputs_are_refused() -> None:
    _, qg, x, _ = _digits()
    bad = x[:, :3].clone()
    bad[1, 2, 0, 4, 5] = float("nan")
    with pytest.raises(SnnccError, match=r"NaN or infinity \(first at index \(1, 2, 0, 4, 5\)\)"):
        run_quantized(qg, bad)
    model = _DenseLif(6, 4).eval()
    graph = snncc.compile(snncc.trace(model, torch.zeros(3, 1, 6), input_kind="spikes")).graph
    spiking = quantize(graph, "loihi2")
    with pytest.raises(SnnccError, match="other than 0 and 1"):
        run_quantized(spiking, np.full((3, 2, 6), 0.5, dtype=np.float32))
    assert run_quantized(spiking, np.ones((3, 2, 6), dtype=np.float32)).counts.batch == 2


# ------------------------------------------------------- no multiply ----


def _functions() -> dict[str, ast.FunctionDef]:
    tree = ast.parse(inspect.getsource(datapath))
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def test_simulator_datapath_has_no_multiply() -> None:
    funcs = _functions()
    assert set(datapath.ACTIVATION_PATH) <= set(funcs)
    for name in datapath.ACTIVATION_PATH:
        assert _multiplies(funcs[name]) == [], f"{name} multiplies"
        callees = _called_module_functions(funcs[name], set(funcs))
        assert callees <= set(datapath.ACTIVATION_PATH), f"{name} calls {callees}"


@pytest.mark.parametrize("stride,padding,dilation,groups", [(1, 1, 1, 1), (2, 0, 1, 2), (1, 2, 2, 1)])
def test_conv_event_counts_equal_a_ones_kernel_convolution(stride: int, padding: int,
                                                          dilation: int, groups: int) -> None:
    """Events an output receives = active inputs in its receptive field: the oracle is
    PyTorch's convolution of the activity map with an all-ones kernel."""
    conv = torch.nn.Conv2d(4, 6, 3, stride=stride, padding=padding, dilation=dilation,
                           groups=groups, bias=False)
    model = torch.nn.Sequential(conv, MultiStepLIFNode(tau=2.0))
    graph = snncc.compile(snncc.trace(model, torch.zeros(2, 1, 4, 9, 7), input_kind="spikes")).graph
    qg = quantize(graph, "loihi2")
    program = Program(qg)
    [name] = list(program.weights)
    x = (np.random.default_rng(3).random((2, 5, 4, 9, 7)) < 0.3)
    node = qg.graph.nodes[name]
    got = datapath.rf_counts(program.weights[name], x, (2, 5), item_shape(node))
    ones = torch.ones(6, 4 // groups, 3, 3, dtype=torch.float64)
    want = torch.nn.functional.conv2d(torch.from_numpy(x.reshape(10, 4, 9, 7)).double(), ones,
                                      stride=stride, padding=padding, dilation=dilation,
                                      groups=groups)
    assert np.array_equal(got.reshape(want.shape), want.numpy().astype(np.int64))


@pytest.mark.parametrize("kernel,stride,padding", [(3, 2, 1), (2, 2, 0), (3, 1, 1)])
def test_maxpool_of_spikes_is_torchs_maxpool(kernel: int, stride: int, padding: int) -> None:
    x = np.random.default_rng(kernel + stride).random((3, 2, 4, 9, 7)) < 0.2
    want = torch.nn.functional.max_pool2d(torch.from_numpy(x.reshape(6, 4, 9, 7)).float(), kernel,
                                          stride, padding)
    got = datapath.maxpool_or(x, (kernel, kernel), (stride, stride),
                               ((padding, padding), (padding, padding)), tuple(want.shape[-2:]))
    assert got.dtype == np.bool_
    assert np.array_equal(got.reshape(want.shape), want.numpy() != 0)
    counts = (x * 3).astype(np.int32)  # counts take the max
    got_c = datapath.maxpool_or(counts, (kernel, kernel), (stride, stride),
                                 ((padding, padding), (padding, padding)), tuple(want.shape[-2:]))
    assert np.array_equal(got_c.reshape(want.shape), (want * 3).numpy().astype(np.int32))


# ------------------------------------------------- attention products ----


def _and_count_oracle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Every (i, k, j) AND, then a count over k (the dense form the kernels replace)."""
    both = np.logical_and(a[..., :, :, np.newaxis], b[..., np.newaxis, :, :])
    return np.count_nonzero(both, axis=-2).astype(np.int32)


def _select_sum_oracle(counts: np.ndarray, spikes: np.ndarray, spikes_right: bool) -> np.ndarray:
    if spikes_right:
        picked = np.where(spikes[..., np.newaxis, :, :], counts[..., :, :, np.newaxis], 0)
    else:
        picked = np.where(spikes[..., :, :, np.newaxis], counts[..., np.newaxis, :, :], 0)
    return np.sum(picked, axis=-2, dtype=np.int32)


@pytest.mark.parametrize("lead_a,lead_b", [((2, 3), (2, 3)), ((2, 1), (1, 3)), ((), ()),
                                           ((4,), (1,)), ((0,), (0,))])
def test_event_driven_products_equal_their_dense_forms(lead_a: tuple[int, ...],
                                                       lead_b: tuple[int, ...]) -> None:
    """The event-driven products (each spike adds a row or a column) against the dense
    AND-count and select-sum they replace: broadcast leading axes, int32 wrapping of
    large counts, and empty stacks."""
    rng = np.random.default_rng(len(lead_a) + len(lead_b))
    a = rng.random((*lead_a, 5, 7)) < 0.3
    b = rng.random((*lead_b, 7, 6)) < 0.3
    got = datapath.matmul_and_count(a, b)
    assert got.dtype == np.int32 and np.array_equal(got, _and_count_oracle(a, b))
    counts = rng.integers(-3, 9, (*lead_a, 5, 7))
    assert np.array_equal(datapath.matmul_select_sum(counts, b, True),
                          _select_sum_oracle(counts, b, True))
    right = rng.integers(0, 9, (*lead_b, 7, 6)).astype(np.int32)
    assert np.array_equal(datapath.matmul_select_sum(right, a, False),
                          _select_sum_oracle(right, a, False))
    huge = np.full((*lead_a, 5, 7), 2**31 - 1, dtype=np.int64)  # sums wrap as int32
    assert np.array_equal(datapath.matmul_select_sum(huge, b, True),
                          _select_sum_oracle(huge, b, True))
    empty_k = datapath.matmul_and_count(a[..., :0], b[..., :0, :])
    assert empty_k.shape == (*np.broadcast_shapes(lead_a, lead_b), 5, 6) and not empty_k.any()


def test_lif_layer_marks_active_the_neurons_with_input_or_a_spike() -> None:
    """``active`` (written by the LIF kernel itself) is ``(a != 0) | spike`` on the run's
    steps and False on skipped ones; the spikes are lif_update's, step by step."""
    from snncc.backends.acsim.kernels import lif_update
    from snncc.backends.acsim.program import NeuronConsts

    rng = np.random.default_rng(4)
    a = (rng.integers(-900, 3000, (5, 3, 4, 6)) * (rng.random((5, 3, 4, 6)) < 0.6)).astype(np.int32)
    k = NeuronConsts(mult_u=1024, mult_v=2048, bias=rng.integers(0, 3, (4, 6)).astype(np.int32),
                     vth_eff=64 * 1500, shift=None)
    spikes, active, wraps = datapath.lif_layer(k, a, {0, 1, 3, 4})
    u = v = np.zeros(a.shape[1:], dtype=np.int32)
    for t in range(5):
        if t == 2:
            assert not spikes[t].any() and not active[t].any()
            continue
        u, v, s = lif_update(u, v, a[t], k.mult_u, k.mult_v, k.bias, k.vth_eff)
        assert np.array_equal(spikes[t], s)
        assert np.array_equal(active[t], (a[t] != 0) | s)
    assert spikes.any() and wraps == 0
