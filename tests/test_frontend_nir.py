"""The NIR frontend: every primitive it imports against a direct numpy transcription of
the discretization rule (frontends/nir/discretize.py), nested graphs and summed edges,
and bad files as named errors (exit 2 from the CLI)."""

from __future__ import annotations

from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
import torch
from click.testing import CliRunner

import snncc
from snncc.cli import main
from snncc.diagnostics import SnnccError
from snncc.ir.graph import verify
from snncc.ir.interpreter import run

T, B = 12, 3
rng = np.random.default_rng(0)


def _f32(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _write(tmp_path: Path, g: nir.NIRGraph, name: str = "m.nir") -> Path:
    path = tmp_path / name
    nir.write(path, g)
    return path


def _chain(*nodes: nir.NIRNode, n_in: int) -> nir.NIRGraph:
    named = {"input": nir.Input(input_type=np.array([n_in]))}
    named.update({f"n{i}": n for i, n in enumerate(nodes)})
    named["output"] = nir.Output(output_type=np.array([1]))
    keys = list(named)
    return nir.NIRGraph(nodes=named, edges=list(zip(keys, keys[1:])), type_check=False)


def _run(path: Path, x: np.ndarray, **kw: object) -> np.ndarray:
    graph = snncc.load(path, input_shape=x.shape, **kw)
    verify(graph)
    return run(graph, [torch.from_numpy(x)])[0][0].numpy()


def _lif_ref(cur: np.ndarray, k: float, theta: float, v_reset: float = 0.0) -> np.ndarray:
    """Forward Euler of tau dv/dt = -v + r I with r = tau / dt (input gain 1)."""
    v = np.zeros(cur.shape[1:], np.float32)
    out = []
    for t in range(cur.shape[0]):
        v = v * np.float32(1.0 - k) + cur[t]
        s = (v > theta).astype(np.float32)
        v = np.where(s > 0, np.float32(v_reset), v)
        out.append(s)
    return np.stack(out)


def test_affine_lif_matches_the_euler_rule(tmp_path: Path) -> None:
    dt, tau = 1e-3, 5e-3
    w, b = _f32(6, 4), _f32(6, scale=0.1)
    lif = nir.LIF(tau=np.full(6, tau), r=np.full(6, tau / dt), v_leak=np.zeros(6),
                  v_threshold=np.full(6, 0.7), v_reset=np.zeros(6))
    path = _write(tmp_path, _chain(nir.Affine(weight=w, bias=b), lif, n_in=4))
    x = _f32(T, B, 4)
    got = _run(path, x, dt=dt)
    want = _lif_ref(np.einsum("tbi,oi->tbo", x, w) + b, dt / tau, 0.7)
    assert got.sum() > 0 and np.array_equal(got, want)


def test_dt_comes_from_the_metadata_and_option_overrides_it(tmp_path: Path) -> None:
    lif = nir.LIF(tau=np.full(3, 1e-2), r=np.full(3, 1.0), v_leak=np.zeros(3),
                  v_threshold=np.full(3, 1.0))
    g = _chain(nir.Linear(weight=np.eye(3, dtype=np.float32)), lif, n_in=3)
    g.metadata = {"dt": 1e-3}
    path = _write(tmp_path, g)
    graph = snncc.load(path)
    assert graph.meta["nir"]["dt"] == 1e-3
    assert graph.nodes["n1"].attrs.tau == pytest.approx(10.0)  # tau / dt steps
    assert snncc.load(path, dt=5e-3).nodes["n1"].attrs.tau == pytest.approx(2.0)
    g.metadata = {}
    assert snncc.load(_write(tmp_path, g, "n.nir")).meta["nir"]["dt"] == 1e-4


def test_every_neuron_type_steps_as_documented(tmp_path: Path) -> None:
    dt = 1e-3
    n = 5
    ones = np.ones(n)
    x = np.abs(_f32(T, B, n))
    cases: dict[str, tuple[nir.NIRNode, np.ndarray]] = {}
    # IF: v += r I per step, fire on v > theta, reset to v_reset
    v = np.zeros((B, n), np.float32)
    out = []
    for t in range(T):
        v = v + np.float32(2.0) * x[t]
        s = (v > 1.5).astype(np.float32)
        v = np.where(s > 0, np.float32(0.0), v)
        out.append(s)
    cases["IF"] = (nir.IF(r=2 * ones, v_threshold=1.5 * ones), np.stack(out))
    # I: an integrator's value
    cases["I"] = (nir.I(r=ones), np.cumsum(x, axis=0))
    # LI: v = (1 - k) v + k (r I + v_leak)
    k = dt / 4e-3
    v = np.zeros((B, n), np.float32)
    out = []
    for t in range(T):
        v = np.float32(1 - k) * v + (np.float32(k * 1.0) * x[t] + np.float32(k * 0.5))
        out.append(v)
    cases["LI"] = (nir.LI(tau=4e-3 * ones, r=ones, v_leak=0.5 * ones), np.stack(out))
    # Threshold: stateless x > theta
    cases["Threshold"] = (nir.Threshold(threshold=0.8 * ones), (x > 0.8).astype(np.float32))
    # CubaLIF: I = (1-ks) I + ks w_in S, then v = (1-km) v + km r I, fire, reset
    ks, km = dt / 2e-3, dt / 5e-3
    i = np.zeros((B, n), np.float32)
    v = np.zeros((B, n), np.float32)
    out = []
    for t in range(T):
        i = np.float32(1 - ks) * i + np.float32(ks * 3.0) * x[t]
        v = v * np.float32(1 - km) + np.float32(km * 4.0) * i
        s = (v > 0.9).astype(np.float32)
        v = np.where(s > 0, np.float32(0.0), v)
        out.append(s)
    cases["CubaLIF"] = (nir.CubaLIF(tau_syn=2e-3 * ones, tau_mem=5e-3 * ones, r=4 * ones,
                                    v_leak=0 * ones, v_threshold=0.9 * ones, w_in=3 * ones),
                        np.stack(out))
    # Delay by 3 steps of dt
    d = np.concatenate([np.zeros_like(x[:3]), x[:-3]])
    cases["Delay"] = (nir.Delay(delay=3 * dt * ones), d)
    for kind, (node, want) in cases.items():
        path = _write(tmp_path, _chain(node, n_in=n), f"{kind}.nir")
        got = _run(path, x, dt=dt)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=kind)
        if kind in ("IF", "CubaLIF", "Threshold"):
            assert np.array_equal(got, want), kind


def test_cuba_li_is_two_leaky_integrators(tmp_path: Path) -> None:
    ones = np.ones(2)
    path = _write(tmp_path, _chain(nir.CubaLI(tau_syn=ones * 2e-4, tau_mem=ones * 1e-3, r=ones,
                                              v_leak=0 * ones, w_in=ones), n_in=2))
    graph = snncc.load(path)
    assert [n.op for n in graph] == ["input", "scale", "leaky_integrator", "scale",
                                     "leaky_integrator"]


def test_conv_pool_flatten_scale(tmp_path: Path) -> None:
    w, b = _f32(4, 2, 3, 3), _f32(4)
    nodes = {
        "input": nir.Input(input_type=np.array([2, 8, 8])),
        "conv": nir.Conv2d(input_shape=(8, 8), weight=w, stride=1, padding=1, dilation=1,
                           groups=1, bias=b),
        "sum": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                             padding=np.array([0, 0])),
        "avg": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                             padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([4, 2, 2])}, start_dim=0, end_dim=-1),
        "scale": nir.Scale(scale=np.full(16, 0.5, np.float32)),
        "output": nir.Output(output_type=np.array([16])),
    }
    keys = list(nodes)
    path = _write(tmp_path, nir.NIRGraph(nodes=nodes, edges=list(zip(keys, keys[1:])),
                                         type_check=False))
    x = _f32(T, B, 2, 8, 8)
    got = _run(path, x)
    xt = torch.from_numpy(x).flatten(0, 1)
    y = torch.nn.functional.conv2d(xt, torch.from_numpy(w), torch.from_numpy(b), padding=1)
    y = torch.nn.functional.avg_pool2d(y, 2) * 4
    y = torch.nn.functional.avg_pool2d(y, 2).flatten(1) * 0.5
    np.testing.assert_allclose(got, y.reshape(T, B, 16).numpy(), rtol=1e-5, atol=1e-5)


def test_conv1d_same_padding(tmp_path: Path) -> None:
    w = _f32(3, 2, 5)
    conv = nir.Conv1d(input_shape=10, weight=w, stride=1, padding="same", dilation=1, groups=1,
                      bias=np.zeros(3, np.float32))
    nodes = {"input": nir.Input(input_type=np.array([2, 10])), "c": conv,
             "output": nir.Output(output_type=np.array([3, 10]))}
    path = _write(tmp_path, nir.NIRGraph(nodes=nodes, edges=[("input", "c"), ("c", "output")],
                                         type_check=False))
    x = _f32(T, B, 2, 10)
    got = _run(path, x)
    want = torch.nn.functional.conv1d(torch.from_numpy(x).flatten(0, 1), torch.from_numpy(w),
                                      padding=2).reshape(T, B, 3, 10)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-5)


def test_nested_graph_and_summed_edges(tmp_path: Path) -> None:
    w1, w2 = _f32(4, 3), _f32(4, 3)
    lif = nir.LIF(tau=np.full(4, 1e-3), r=np.full(4, 10.0), v_leak=np.zeros(4),
                  v_threshold=np.full(4, 0.5))
    inner = nir.NIRGraph(nodes={"in": nir.Input(input_type=np.array([4])), "lif": lif,
                                "out": nir.Output(output_type=np.array([4]))},
                         edges=[("in", "lif"), ("lif", "out")], type_check=False)
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([3])),
                            "a": nir.Linear(weight=w1), "b": nir.Linear(weight=w2),
                            "sub": inner, "output": nir.Output(output_type=np.array([4]))},
                     edges=[("input", "a"), ("input", "b"), ("a", "sub"), ("b", "sub"),
                            ("sub", "output")], type_check=False)
    path = _write(tmp_path, g)
    x = _f32(T, B, 3)
    graph = snncc.load(path, input_shape=x.shape)
    assert "sub.lif" in {n.origin.module_path for n in graph}
    got = run(graph, [torch.from_numpy(x)])[0][0].numpy()
    cur = np.einsum("tbi,oi->tbo", x, w1) + np.einsum("tbi,oi->tbo", x, w2)
    assert np.array_equal(got, _lif_ref(cur, 1e-4 / 1e-3, 0.5))


def test_compile_a_nir_file_for_acsim(tmp_path: Path) -> None:
    lif = nir.LIF(tau=np.full(6, 1e-3), r=np.full(6, 10.0), v_leak=np.zeros(6),
                  v_threshold=np.full(6, 1.0))
    path = _write(tmp_path, _chain(nir.Affine(weight=_f32(6, 4), bias=_f32(6, scale=0.1)),
                                   lif, nir.Linear(weight=_f32(3, 6)), n_in=4))
    out = tmp_path / "m.acsim"
    r = CliRunner().invoke(main, ["compile", str(path), "--target", "acsim", "--time-steps", "8",
                                  "--dt", "1e-4", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert out.exists()


# ----------------------------------------------------------------------------- bad files

def _good(tmp_path: Path) -> Path:
    lif = nir.LIF(tau=np.full(2, 1e-3), r=np.full(2, 10.0), v_leak=np.zeros(2),
                  v_threshold=np.full(2, 1.0))
    return _write(tmp_path, _chain(nir.Linear(weight=_f32(2, 2)), lif, n_in=2), "good.nir")


def _code(path: Path) -> str:
    with pytest.raises(SnnccError) as e:
        snncc.load(path)
    return e.value.diagnostic.code + " " + e.value.diagnostic.render()


def _cli_exit(path: Path) -> tuple[int, str]:
    r = CliRunner().invoke(main, ["inspect", str(path)])
    return r.exit_code, r.output


def test_truncated_file(tmp_path: Path) -> None:
    data = _good(tmp_path).read_bytes()
    bad = tmp_path / "cut.nir"
    bad.write_bytes(data[: len(data) // 2])
    assert _code(bad).startswith("SNN-NIR001")
    code, text = _cli_exit(bad)
    assert code == 2 and "SNN-NIR001" in text


def test_unknown_node_type_names_the_node(tmp_path: Path) -> None:
    path = _good(tmp_path)
    with h5py.File(path, "r+") as f:
        del f["node/nodes/n0/type"]
        f["node/nodes/n0/type"] = np.bytes_("Spiketron")
    msg = _code(path)
    assert msg.startswith("SNN-NIR002") and "'n0'" in msg and "Spiketron" in msg
    assert _cli_exit(path)[0] == 2


def test_dangling_edge_names_the_node(tmp_path: Path) -> None:
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([2])),
                            "w": nir.Linear(weight=_f32(2, 2)),
                            "output": nir.Output(output_type=np.array([2]))},
                     edges=[("input", "w"), ("w", "ghost"), ("w", "output")], type_check=False)
    path = _write(tmp_path, g)
    msg = _code(path)
    assert msg.startswith("SNN-NIR004") and "ghost" in msg
    assert _cli_exit(path)[0] == 2


@pytest.mark.parametrize("shape", ["two_neurons", "weight_read_outside", "self_loop"])
def test_recurrent_loop_of_another_shape_is_named(tmp_path: Path, shape: str) -> None:
    """Only one neuron plus the one weight that feeds it back is a recurrent layer."""
    lif = nir.LIF(tau=np.full(2, 1e-3), r=np.full(2, 10.0), v_leak=np.zeros(2),
                  v_threshold=np.full(2, 1.0))
    nodes = {"input": nir.Input(input_type=np.array([2])), "lif": lif,
             "rec": nir.Linear(weight=_f32(2, 2)), "output": nir.Output(output_type=np.array([2]))}
    edges = [("input", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")]
    if shape == "two_neurons":  # lif -> rec -> lif2 -> lif
        nodes["lif2"] = lif
        edges = [("input", "lif"), ("lif", "rec"), ("rec", "lif2"), ("lif2", "lif"),
                 ("lif", "output")]
    elif shape == "weight_read_outside":
        edges.append(("rec", "output"))
    else:
        edges = [("input", "lif"), ("lif", "lif"), ("lif", "output")]
    g = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    path = _write(tmp_path, g)
    msg = _code(path)
    assert msg.startswith("SNN-NIR005") and "lif" in msg and "Linear or Affine" in msg
    assert _cli_exit(path)[0] == 2


def test_per_neuron_thresholds_and_gains_fold_into_the_weights(tmp_path: Path) -> None:
    """frontends/nir/fold.py: v > theta_i with gain r_i is u > theta_0 with the input row
    scaled by (r_i / theta_i) / (r_0 / theta_0)."""
    dt, tau = 1e-3, 4e-3
    theta = np.array([0.5, 1.0, 2.0, 0.8], np.float32)
    r = np.array([4.0, 4.0, 8.0, 2.0])
    w, b = _f32(4, 3), _f32(4, scale=0.2)
    lif = nir.LIF(tau=np.full(4, tau), r=r, v_leak=np.zeros(4), v_threshold=theta)
    path = _write(tmp_path, _chain(nir.Affine(weight=w, bias=b), lif, n_in=3))
    x = np.abs(_f32(40, B, 3)) * 2
    graph = snncc.load(path, input_shape=x.shape, dt=dt)
    assert graph.nodes["n1"].attrs.v_threshold == pytest.approx(0.5)
    got = run(graph, [torch.from_numpy(x)])[0][0].numpy()
    cur = (np.einsum("tbi,oi->tbo", x, w) + b).astype(np.float64) * (dt / tau) * r
    v = np.zeros((B, 4))
    want = []
    for t in range(x.shape[0]):
        v = v * (1 - dt / tau) + cur[t]
        s = v > theta
        v = np.where(s, 0.0, v)
        want.append(s)
    want_arr = np.stack(want).astype(np.float32)
    assert want_arr.sum() > 20 and (got != want_arr).mean() < 0.01


def test_per_neuron_values_that_cannot_fold(tmp_path: Path) -> None:
    lif = nir.LIF(tau=np.full(2, 1e-3), r=np.full(2, 10.0), v_leak=np.array([0.1, 0.1]),
                  v_threshold=np.array([1.0, 2.0]))
    msg = _code(_write(tmp_path, _chain(nir.Linear(weight=_f32(2, 2)), lif, n_in=2)))
    assert msg.startswith("SNN-NIR006") and "'n1'" in msg and "v_leak" in msg
    # time constants that differ are taken per neuron, but then the input gains r dt / tau
    # differ too, and with a leak offset they cannot be folded
    lif = nir.LIF(tau=np.array([1e-3, 2e-3]), r=np.full(2, 10.0), v_leak=np.full(2, 0.1),
                  v_threshold=np.ones(2))
    msg = _code(_write(tmp_path, _chain(nir.Linear(weight=_f32(2, 2)), lif, n_in=2), "t.nir"))
    assert msg.startswith("SNN-NIR006") and "v_leak" in msg
    lif = nir.LIF(tau=np.full(2, 1e-3), r=np.full(2, 10.0), v_leak=np.zeros(2),
                  v_threshold=np.array([1.0, 2.0]))
    direct = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([2])), "lif": lif,
                                 "output": nir.Output(output_type=np.array([2]))},
                          edges=[("input", "lif"), ("lif", "output")], type_check=False)
    msg = _code(_write(tmp_path, direct, "d.nir"))
    assert msg.startswith("SNN-NIR006") and "folded" in msg


def test_dt_only_for_nir_files(tmp_path: Path) -> None:
    from snncc.ir.serialize import save_graph

    graph = snncc.load(_good(tmp_path))
    save_graph(graph, tmp_path / "g.snnir")
    with pytest.raises(SnnccError) as e:
        snncc.load(tmp_path / "g.snnir", dt=1e-3)
    assert e.value.diagnostic.code == "SNN-IN002"
    with pytest.raises(SnnccError) as e:
        snncc.load(tmp_path / "good.nir", dt=-1.0)
    assert e.value.diagnostic.code == "SNN-IN002"


def test_byte_mutations_are_named_errors(tmp_path: Path) -> None:
    """Seeded byte mutations of a NIR file: each loads to a verified graph or raises
    SnnccError; never another exception (h5py's, numpy's, nir's asserts)."""
    import random

    from test_fuzz_readers import mutate_bytes

    data = _good(tmp_path).read_bytes()
    rng = random.Random("nir-bytes")
    outcomes = {"ok": 0, "error": 0}
    for i in range(200):
        path = tmp_path / f"mutant{i}.nir"
        path.write_bytes(mutate_bytes(data, rng))
        try:
            verify(snncc.load(path))
            outcomes["ok"] += 1
        except SnnccError:
            outcomes["error"] += 1
    assert outcomes["error"] > 50, outcomes


def test_non_finite_weights(tmp_path: Path) -> None:
    w = _f32(2, 2)
    w[0, 1] = np.nan
    msg = _code(_write(tmp_path, _chain(nir.Linear(weight=w), n_in=2)))
    assert msg.startswith("SNN-NIR003") and "'n0'" in msg and "weight" in msg


@pytest.mark.parametrize("fire", [">", ">="])
def test_strict_and_non_strict_neurons_are_exact_on_acsim(tmp_path: Path, fire: str) -> None:
    """Spike counts into IF(theta=1) quantize exactly; Lava's v > vth takes NIR's v > theta
    with vth = floor(K / 64) and SpikingJelly's v >= theta with ceil(K / 64) - 1."""
    ones = np.ones(6)
    meta = {} if fire == ">" else {"fire": ">="}
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([6])),
                            "if": nir.IF(r=ones, v_threshold=ones, metadata=meta),
                            "output": nir.Output(output_type=np.array([6]))},
                     edges=[("input", "if"), ("if", "output")], type_check=False)
    path = _write(tmp_path, g)
    x = (torch.rand(8, 4, 6, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    graph = snncc.load(path, input_shape=tuple(x.shape), input_kind="spikes")
    assert graph.nodes["if"].attrs.strict == (fire == ">")
    want = run(graph, [x])[0][0]
    if fire == ">=":
        assert torch.equal(want, x)  # fires on every input spike
    result = snncc.compile(graph, target="acsim")
    assert result.compiled.qg.report_json()["domains"][0]["exact"]
    got = np.asarray(snncc.simulate(result, x).spikes["if"]).reshape(want.shape)
    assert want.sum() > 10 and np.array_equal(got, want.numpy())
