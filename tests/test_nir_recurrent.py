"""Recurrent NIR layers: a neuron whose spikes come back to it through one Linear/Affine
(snnTorch's ``RLeaky``/``RSynaptic``, exported by snnTorch's own ``export_to_nir``) is
imported as one ``recurrent`` op, whose interpreter spikes equal snnTorch's forward bit
for bit, and written back as the same loop.

Found here (snnTorch 1.0.0, nir 1.0.8, nirtorch 2.6):
- ``RLeaky``'s forward at step t is ``mem = beta mem + x_t + V(spk_{t-1})``, the recurrent
  spike of step t-1 entering at step t (NIR's one-step delay on a recurrent edge). Its
  export writes ``v_reset = 0`` whatever the reset mechanism; with
  ``reset_mechanism="zero", reset_delay=False`` (what snnTorch's own importer builds) it
  resets right after the spike, as NIR says. The default ``reset_delay=True`` zeroes
  the membrane of the step *after* a spike, input included, which NIR cannot express.
- ``RSynaptic`` always resets that way: its ``reset_delay=False`` branch resets a local
  variable it then drops. Its export is checked here against a numpy transcription of
  NIR's CubaLIF equations instead.
- snnTorch's ``import_from_nir`` fails on its own ``RLeaky`` export (nirtorch:
  ``'GraphModule' object has no attribute 'items'``), so it cannot serve as an oracle for
  the files snncc writes.
"""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np
import pytest
import snntorch as snn
import torch
from click.testing import CliRunner
from snntorch_nir import assert_same, export, export_and_load, forward

import snncc
from snncc.analysis.spike_only import MulClass, check_spike_only
from snncc.backends.nir import save_nir, to_nir
from snncc.backends.onnx import save_onnx, to_onnx
from snncc.cli import main
from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph
from snncc.ir.interpreter import run
from snncc.ir.ops.io import InputAttrs
from snncc.ir.ops.recurrent import RecurrentAttrs

T, B = 30, 4
SEEDS = range(5)


def _rleaky(n: int, seed: int, all_to_all: bool, output: bool) -> torch.nn.Module:
    torch.manual_seed(seed)
    kw: dict[str, object] = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False,
                                 output=output, threshold=torch.ones(n))
    if all_to_all:
        layer = snn.RLeaky(beta=torch.full((n,), 0.85), linear_features=n, **kw)
        with torch.no_grad():
            layer.recurrent.weight.mul_(3.0)  # recurrence strong enough to change the spikes
    else:
        layer = snn.RLeaky(beta=torch.full((n,), 0.8), V=torch.rand(n) * 1.6 - 0.8,
                           all_to_all=False, **kw)
    return layer


def _net(seed: int, all_to_all: bool) -> torch.nn.Sequential:
    """Linear -> RLeaky -> Linear -> RLeaky, the Linears mostly excitatory so that both
    layers fire (measured over the 5 seeds and both recurrences: 32-55% and 9-72% of
    steps)."""
    first = _rleaky(10, seed, all_to_all, output=False)
    torch.manual_seed(seed + 100)
    net = torch.nn.Sequential(torch.nn.Linear(6, 10), first, torch.nn.Linear(10, 5),
                              _rleaky(5, seed + 1, all_to_all, output=True))
    with torch.no_grad():
        for lin in (net[0], net[2]):
            lin.weight.abs_().mul_(0.6)
    return net


def _without_recurrence(graph: Graph) -> Graph:
    """The graph with every recurrent weight and bias zeroed: what a wrong import gives."""
    out = graph.copy()
    for n in out:
        if n.op == "recurrent":
            out.rebuild(n, params={k: np.zeros_like(v) for k, v in n.params.items()})
    return out


@pytest.mark.parametrize("all_to_all", [True, False], ids=["all_to_all", "one_to_one"])
@pytest.mark.parametrize("seed", SEEDS)
def test_snntorch_rleaky_spikes_bit_for_bit(tmp_path: Path, seed: int, all_to_all: bool) -> None:
    net = _net(seed, all_to_all)
    x = torch.rand(T, B, 6) * 1.5
    want, graph = export_and_load(net, x, tmp_path / "r.nir")
    assert [n.op for n in graph] == ["input", "linear", "recurrent", "linear", "recurrent"]
    outs, values = run(graph, [x], record=True)
    assert torch.equal(outs[0], want)
    for layer in (n for n in graph if n.op == "recurrent"):  # every layer fires, not always
        rate = values[layer.name].mean().item()
        assert 0.02 < rate < 0.9, (layer.name, rate)
    assert not torch.equal(run(_without_recurrence(graph), [x])[0][0], want)


def test_per_neuron_thresholds_fold_into_both_weights(tmp_path: Path) -> None:
    """Per-neuron thresholds fold into the rows of the feed-forward Linear and of the
    recurrent weight alike (frontends/nir/fold.py): exact in real arithmetic, and over 5
    seeds 0 of 6,000 spikes differ from snnTorch's in float32."""
    diff = total = 0
    for seed in SEEDS:
        torch.manual_seed(seed)
        n = 10
        net = torch.nn.Sequential(torch.nn.Linear(6, n), snn.RLeaky(
            beta=torch.full((n,), 0.85), linear_features=n, threshold=torch.rand(n) + 0.5,
            learn_threshold=True, init_hidden=True, reset_mechanism="zero",
            reset_delay=False, output=True))
        with torch.no_grad():
            net[0].weight.abs_().mul_(0.6)
            net[1].recurrent.weight.mul_(3.0)
        x = torch.rand(T, B, 6) * 1.5
        want, graph = export_and_load(net, x, tmp_path / f"t{seed}.nir")
        rec = next(nd for nd in graph if nd.op == "recurrent")
        assert isinstance(rec.attrs, RecurrentAttrs)
        assert rec.attrs.v_threshold == pytest.approx(float(net[1].threshold.detach()[0]))
        assert 0.02 < want.mean() < 0.9
        diff += int((run(graph, [x])[0][0] != want).sum())
        total += want.numel()
    assert diff <= 0.005 * total


def test_the_reset_delay_snntorch_defaults_to_is_not_nir(tmp_path: Path) -> None:
    """With reset_delay=True snnTorch drops the input of the step after a spike: the file
    (v_reset = 0, NIR's immediate reset) means something else, and the spikes differ."""
    torch.manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), snn.RLeaky(
        beta=torch.full((8,), 0.85), linear_features=8, threshold=torch.ones(8),
        init_hidden=True, reset_mechanism="zero", output=True))
    x = torch.rand(T, B, 6) * 1.5
    want = forward(net, x)
    got = run(snncc.load(export(net, 6, tmp_path / "d.nir"), input_shape=tuple(x.shape)),
              [x])[0][0]
    assert want.sum() > 10 and not torch.equal(got, want)


def _cuba_ref(x: np.ndarray, w_in: np.ndarray, b_in: np.ndarray, w_rec: np.ndarray,
              b_rec: np.ndarray, k_syn: float, k_mem: float, r: float, theta: float
              ) -> np.ndarray:
    """NIR's CubaLIF (v_leak = v_reset = 0) stepped with forward Euler, its input the sum
    of the feed-forward Affine and the recurrent Affine of the spikes one step before."""
    cur, v = np.zeros((x.shape[1], w_rec.shape[0])), np.zeros((x.shape[1], w_rec.shape[0]))
    s = np.zeros_like(v)
    out = []
    for t in range(x.shape[0]):
        inp = x[t] @ w_in.T + b_in + s @ w_rec.T + b_rec
        cur = cur + k_syn * (-cur + (1.0 / k_syn) * inp)  # w_in = tau_syn / dt
        v = v + k_mem * (-v) + k_mem * r * cur
        s = (v > theta).astype(np.float64)
        v = np.where(s > 0, 0.0, v)
        out.append(s)
    return np.stack(out)


@pytest.mark.parametrize("seed", SEEDS)
def test_snntorch_rsynaptic_file_follows_nir(tmp_path: Path, seed: int) -> None:
    torch.manual_seed(seed)
    n = 8
    net = torch.nn.Sequential(torch.nn.Linear(6, n), snn.RSynaptic(
        alpha=torch.full((n,), 0.7), beta=torch.full((n,), 0.8), linear_features=n,
        threshold=torch.ones(n), init_hidden=True, reset_mechanism="zero", output=True))
    with torch.no_grad():
        net[1].recurrent.weight.mul_(2.0)
    path = export(net, 6, tmp_path / "s.nir")
    x = torch.rand(T, B, 6)
    graph = snncc.load(path, input_shape=tuple(x.shape))
    rec = next(nd for nd in graph if nd.op == "recurrent")
    assert isinstance(rec.attrs, RecurrentAttrs) and rec.attrs.synapse_decay is not None
    got = run(graph, [x])[0][0].numpy()
    lin, layer = net[0], net[1]
    want = _cuba_ref(x.numpy().astype(np.float64), lin.weight.detach().double().numpy(),
                     lin.bias.detach().double().numpy(),
                     layer.recurrent.weight.detach().double().numpy(),
                     layer.recurrent.bias.detach().double().numpy(),
                     1 - 0.7, 1 - 0.8, 1 / (1 - 0.8), 1.0)
    assert 0.02 < want.mean() < 0.9
    assert (got != want).mean() < 0.002  # float32 vs float64: an ulp at the threshold may flip
    back = _round_trip(graph, tmp_path)
    assert torch.equal(run(back, [x])[0][0], run(graph, [x])[0][0])


def test_gain_and_offset_enter_the_loop(tmp_path: Path) -> None:
    """A LIF with r != tau / dt scales the recurrent current as much as the feed-forward
    one (NIR sums the edges into the node, then applies r dt / tau); v_leak != 0 adds
    dt / tau v_leak per step. Checked against a numpy transcription of the Euler rule."""
    rng = np.random.default_rng(4)
    dt, tau, r, v_leak, n = 1e-3, 4e-3, 2.5, 0.1, 6
    w_in = rng.standard_normal((n, 3)).astype(np.float32)
    w_rec = (rng.standard_normal((n, n)) * 0.8).astype(np.float32)
    b_rec = (rng.standard_normal(n) * 0.2).astype(np.float32)
    lif = nir.LIF(tau=np.full(n, tau), r=np.full(n, r), v_leak=np.full(n, v_leak),
                  v_threshold=np.full(n, 0.6), v_reset=np.zeros(n))
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([3])),
                            "w": nir.Linear(weight=w_in), "lif": lif,
                            "rec": nir.Affine(weight=w_rec, bias=b_rec),
                            "output": nir.Output(output_type=np.array([n]))},
                     edges=[("input", "w"), ("w", "lif"), ("lif", "rec"), ("rec", "lif"),
                            ("lif", "output")], type_check=False)
    path = tmp_path / "g.nir"
    nir.write(path, g)
    x = rng.standard_normal((T, B, 3)).astype(np.float32)
    got = run(snncc.load(path, input_shape=x.shape, dt=dt), [torch.from_numpy(x)])[0][0]
    k = dt / tau
    v, s, out = np.zeros((B, n)), np.zeros((B, n)), []
    for t in range(T):
        i = x[t].astype(np.float64) @ w_in.T + s @ w_rec.T + b_rec
        v = v + k * (v_leak - v) + k * r * i
        s = (v > 0.6).astype(np.float64)
        v = np.where(s > 0, 0.0, v)
        out.append(s)
    want = np.stack(out)
    assert 0.02 < want.mean() < 0.9 and (got.numpy() != want).mean() < 0.002


def _round_trip(graph: Graph, tmp_path: Path) -> Graph:
    path = tmp_path / "back.nir"
    save_nir(to_nir(graph), path)
    node = nir.read(path)
    loops = [(a, b) for a, b in node.edges if (b, a) in node.edges]
    assert len(loops) == 2 * sum(n.op == "recurrent" for n in graph)
    return snncc.load(path, input_shape=graph.nodes[graph.inputs[0]].type.shape)


@pytest.mark.parametrize("all_to_all", [True, False], ids=["all_to_all", "one_to_one"])
def test_round_trip_through_nir_and_onnx(tmp_path: Path, all_to_all: bool) -> None:
    net = _net(7, all_to_all)
    graph = snncc.load(export(net, 6, tmp_path / "r.nir"), input_shape=(T, B, 6))
    x = torch.rand(T, B, 6) * 1.5
    want = run(graph, [x])[0][0]
    back = _round_trip(graph, tmp_path)
    assert_same(graph, back)
    assert torch.equal(run(back, [x])[0][0], want)
    save_onnx(to_onnx(graph), tmp_path / "r.onnx")
    via_onnx = snncc.load(tmp_path / "r.onnx")
    # ONNX float attributes are float32: tau (snnTorch's 1 / (1 - beta)) comes back rounded
    got = [n.attrs.model_dump() for n in via_onnx if n.op == "recurrent"]
    sent = [n.attrs.model_dump() for n in graph if n.op == "recurrent"]
    assert [{**a, "tau": None} for a in got] == [{**a, "tau": None} for a in sent]
    assert all(abs(a["tau"] - b["tau"]) < 1e-6 * b["tau"] for a, b in zip(got, sent))
    assert torch.equal(run(via_onnx, [x])[0][0], want)


def test_soft_reset_and_decay_input_round_trip(tmp_path: Path) -> None:
    """What NIR leaves open (subtract reset, >=, SpikingJelly's decay_input form) is in the
    neuron's metadata, so these recurrent layers come back bit for bit too."""
    rng = np.random.default_rng(9)
    g = Graph(time_steps=T)
    x = g.add("input", [], InputAttrs(index=0, shape=(T, B, 4)), name="x")
    g.inputs.append(x.name)
    lin = g.add("linear", [x.name], None, {"weight": rng.standard_normal((5, 4)).astype(np.float32)})
    params = {"rec_weight": rng.standard_normal((5, 5)).astype(np.float32),
              "rec_bias": rng.standard_normal(5).astype(np.float32) * 0.1}
    a = g.add("recurrent", [lin.name], RecurrentAttrs(tau=3.0, decay_input=True, v_reset=None,
                                                      v_threshold=0.8), params, name="a")
    c = g.add("recurrent", [a.name], RecurrentAttrs(cell="if", strict=True, synapse_decay=0.6),
              {"rec_weight": params["rec_weight"] * 0.5}, name="c")
    g.outputs.append(c.name)
    back = _round_trip(g, tmp_path)
    assert_same(g, back)
    inp = torch.rand(T, B, 4) * 2
    _, want = run(g, [inp], record=True)
    _, got = run(back, [inp], record=True)
    assert want["a"].mean() > 0.02 and want["c"].mean() > 0.02
    assert torch.equal(got["a"], want["a"]) and torch.equal(got["c"], want["c"])


def test_cli_and_targets(tmp_path: Path) -> None:
    """`snncc compile x.nir --target ir` keeps the layer; acsim (and Lava, which quantizes
    the same way first) refuse it by name; the spike-only check counts its recurrent
    weights as accumulates of its own spikes."""
    net = _net(2, True)
    path = export(net, 6, tmp_path / "r.nir")
    out = tmp_path / "r.snnir"
    res = CliRunner().invoke(main, ["compile", str(path), "--target", "ir", "--time-steps",
                                    str(T), "-o", str(out)])
    assert res.exit_code == 0, res.output
    x = torch.rand(T, 1, 6) * 1.5
    assert torch.equal(run(snncc.load(out), [x])[0][0], forward(net, x))
    res = CliRunner().invoke(main, ["compile", str(path), "--target", "acsim", "-o",
                                    str(tmp_path / "r.acsim")])
    assert res.exit_code == 2 and "SNN-Q001" in res.output and "recurrent" in res.output
    with pytest.raises(SnnccError, match="SNN-Q001"):
        snncc.compile(snncc.load(path), target="acsim")
    report = check_spike_only(snncc.load(path))
    recurrent = [f for f in report.findings if f.op == "recurrent"]
    assert len(recurrent) == 2 and all(f.cls == MulClass.AC for f in recurrent)
    assert report.ok
