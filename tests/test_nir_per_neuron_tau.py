"""Per-neuron time constants: NIR neurons whose tau differ per neuron import as the neuron
op's per-neuron ``decay`` param (``1 - dt / tau_i``), give the exporting library's own
spikes, and are written back as per-neuron arrays.

Found here (snnTorch 1.0.0, Norse 1.1.0, nir 1.0.8):
- snnTorch's ``Leaky(beta=tensor, learn_beta=True)`` writes ``tau_i = dt / (1 - beta_i)`` in
  float32 and ``r_i = tau_i / dt``: an input gain of 1 for every neuron, so nothing is
  folded, and ``1 - dt / tau_i`` in float32 gives back ``beta_i`` exactly for
  ``beta_i >= 0.5`` (measured: 99.6% of 100,000 random betas; 61% over [0, 1)), so the
  spikes are snnTorch's bit for bit. A smaller beta may come back an ulp off.
- Norse's ``LIFBoxCell`` writes ``r = 1``, so the input gain ``dt / tau_i`` differs per
  neuron; it is folded into the rows of the Affine before the layer
  (``frontends/nir/fold.py``), exact in real arithmetic, not in float32.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import nir
import norse.torch as norse
import numpy as np
import pytest
import snntorch as snn
import torch
from snntorch_nir import assert_same, export, export_and_load

import snncc
from snncc.backends.nir import save_nir, to_nir
from snncc.backends.onnx import save_onnx, to_onnx
from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph
from snncc.ir.interpreter import run

T, B = 40, 4
SEEDS = range(5)


def _betas(n: int) -> torch.Tensor:
    return 0.5 + 0.49 * torch.rand(n)


def _net(seed: int, recurrent: bool) -> torch.nn.Sequential:
    """Linear -> (R)Leaky -> Linear -> Leaky, every beta its own and learnable."""
    torch.manual_seed(seed)
    kw: dict[str, object] = dict(learn_beta=True, init_hidden=True, reset_mechanism="zero")
    first = (snn.RLeaky(beta=_betas(12), linear_features=12, threshold=torch.ones(12),
                        reset_delay=False, **kw) if recurrent else
             snn.Leaky(beta=_betas(12), threshold=torch.ones(12), **kw))
    net = torch.nn.Sequential(torch.nn.Linear(5, 12), first, torch.nn.Linear(12, 4),
                              snn.Leaky(beta=_betas(4), threshold=torch.ones(4), output=True,
                                        **kw))
    with torch.no_grad():
        net[0].weight.abs_()
        net[2].weight.abs_()
    return net


def _with_mean_decay(graph: Graph) -> Graph:
    """The graph with each layer's decays replaced by their mean: one tau per layer."""
    out = graph.copy()
    for n in out:
        if "decay" in n.params:
            d = n.params["decay"]
            out.rebuild(n, params={**n.params, "decay": np.full_like(d, d.mean())})
    return out


@pytest.mark.parametrize("recurrent", [False, True], ids=["leaky", "rleaky"])
@pytest.mark.parametrize("seed", SEEDS)
def test_snntorch_per_neuron_beta_bit_for_bit(tmp_path: Path, seed: int, recurrent: bool
                                              ) -> None:
    net = _net(seed, recurrent)
    x = torch.rand(T, B, 5) * 1.5
    want, graph = export_and_load(net, x, tmp_path / "b.nir")
    decays = [n for n in graph if "decay" in n.params]
    assert [n.op for n in decays] == ["recurrent" if recurrent else "lif", "lif"]
    assert all(np.unique(n.params["decay"]).size == n.params["decay"].size for n in decays)
    assert np.array_equal(decays[0].params["decay"], net[1].beta.detach().numpy())
    outs, values = run(graph, [x], record=True)
    assert torch.equal(outs[0], want)
    for n in decays:
        assert 0.02 < values[n.name].mean().item() < 0.95, n.name
    assert not torch.equal(run(_with_mean_decay(graph), [x])[0][0], want)


def test_norse_per_neuron_tau_folds_its_gain(tmp_path: Path) -> None:
    from norse.torch import LIFBoxCell, LIFBoxParameters, SequentialState

    torch.manual_seed(8)
    n = 10
    p = LIFBoxParameters(tau_mem_inv=50.0 + 150.0 * torch.rand(n), v_th=torch.full((n,), 0.3),
                         v_leak=torch.zeros(n), v_reset=torch.zeros(n))
    net = SequentialState(torch.nn.Linear(8, n), LIFBoxCell(p, dt=1e-3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = norse.to_nir(net, torch.randn(1, 8), dt=1.0)  # tau = 1 / tau_mem_inv
    path = tmp_path / "norse.nir"
    nir.write(path, g)
    x = torch.rand(T, B, 8) * 3
    state, outs = None, []
    with torch.no_grad():
        for t in range(T):
            z, state = net(x[t], state)
            outs.append(z)
    want = torch.stack(outs)
    graph = snncc.load(path, input_shape=(T, B, 1, 8), dt=1e-3)
    assert any("decay" in nd.params for nd in graph)
    got = run(graph, [x.unsqueeze(2)])[0][0].squeeze(2)
    assert 0.02 < want.mean() < 0.9
    # folded float32 rows round differently from Norse's dt * tau_inv * i (measured: 0 of
    # 1,600 differ)
    assert (got != want).float().mean() < 0.01


def _chain(nodes: dict[str, nir.NIRNode], n_in: int, n_out: int) -> nir.NIRGraph:
    named = {"input": nir.Input(input_type=np.array([n_in])), **nodes,
             "output": nir.Output(output_type=np.array([n_out]))}
    keys = list(named)
    return nir.NIRGraph(nodes=named, edges=list(zip(keys, keys[1:])), type_check=False)


def test_cuba_lif_and_li_with_per_neuron_taus_follow_euler(tmp_path: Path) -> None:
    """Affine -> CubaLIF (tau_syn and tau_mem per neuron) -> Affine -> LI (tau per neuron)
    against a numpy transcription of NIR's equations with forward Euler."""
    rng = np.random.default_rng(2)
    dt, n, m = 1e-3, 6, 3
    w1 = (np.abs(rng.standard_normal((n, 4))) * 0.1).astype(np.float32)
    w2 = rng.standard_normal((m, n)).astype(np.float32)
    b1, b2 = np.zeros(n, np.float32), np.zeros(m, np.float32)
    tau_syn, tau_mem = rng.uniform(2e-3, 8e-3, n), rng.uniform(3e-3, 2e-2, n)
    tau_li = rng.uniform(2e-3, 1e-2, m)
    cuba = nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt, v_leak=np.zeros(n),
                       v_threshold=np.full(n, 0.8), v_reset=np.zeros(n), w_in=tau_syn / dt)
    li = nir.LI(tau=tau_li, r=tau_li / dt, v_leak=np.zeros(m))
    path = tmp_path / "c.nir"
    nir.write(path, _chain({"a1": nir.Affine(weight=w1, bias=b1), "cuba": cuba,
                            "a2": nir.Affine(weight=w2, bias=b2), "li": li}, 4, m))
    x = rng.uniform(0, 1, (T, B, 4)).astype(np.float32)
    graph = snncc.load(path, input_shape=x.shape, dt=dt)
    _, values = run(graph, [torch.from_numpy(x)], record=True)
    ks, km, kl = dt / tau_syn, dt / tau_mem, dt / tau_li
    i, v, u = np.zeros((B, n)), np.zeros((B, n)), np.zeros((B, m))
    spikes, readout = [], []
    for t in range(T):
        i = i + ks * (-i + (tau_syn / dt) * (x[t] @ w1.T))
        v = v + km * (-v) + km * (tau_mem / dt) * i
        s = (v > 0.8).astype(np.float64)
        v = np.where(s > 0, 0.0, v)
        u = u + kl * (-u) + kl * (tau_li / dt) * (s @ w2.T)
        spikes.append(s)
        readout.append(u)
    want_s = np.stack(spikes)
    got_s = values["cuba"].numpy()
    assert 0.02 < want_s.mean() < 0.9 and np.array_equal(got_s, want_s)
    got_u = values[graph.outputs[0]].numpy()
    assert np.allclose(got_u, np.stack(readout), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("recurrent", [False, True], ids=["leaky", "rleaky"])
def test_round_trips_and_targets(tmp_path: Path, recurrent: bool) -> None:
    """snncc -> NIR -> snncc and snncc -> ONNX -> snncc keep every per-neuron decay bit for
    bit; acsim (and Lava) refuse a layer with per-neuron time constants by name."""
    graph = snncc.load(export(_net(3, recurrent), 5, tmp_path / "b.nir"),
                       input_shape=(T, B, 5))
    x = torch.rand(T, B, 5) * 1.5
    want = run(graph, [x])[0][0]
    path = tmp_path / "back.nir"
    save_nir(to_nir(graph), path)
    back = snncc.load(path, input_shape=(T, B, 5))
    assert_same(graph, back)
    assert torch.equal(run(back, [x])[0][0], want)
    save_onnx(to_onnx(graph), tmp_path / "b.onnx")
    via_onnx = snncc.load(tmp_path / "b.onnx")
    assert all(np.array_equal(n.params["decay"], via_onnx.nodes[n.name].params["decay"])
               for n in graph if "decay" in n.params)
    assert torch.equal(run(via_onnx, [x])[0][0], want)
    with pytest.raises(SnnccError, match="SNN-Q001.*time constants that differ"):
        snncc.compile(graph, target="acsim")
