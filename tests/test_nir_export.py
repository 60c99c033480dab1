"""NIR export: what NIR expresses round-trips bit for bit (snncc -> NIR -> snncc), what
it does not is a named error listing every offending node (or, with ``partial``, the
expressible prefix), and files snncc writes give the same spikes in snnTorch's
``import_from_nir`` and Norse's ``from_nir`` for the same dt."""

from __future__ import annotations

import warnings
from pathlib import Path

import nir
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from snn_models import NEURON_VARIANTS, randomize_bn
from spikingjelly.clock_driven import neuron as cd
from torch import nn

import snncc
from snncc.api import canonicalize
from snncc.backends.nir import save_nir, to_nir
from snncc.cli import main
from snncc.diagnostics import SnnccError
from snncc.ir.interpreter import run

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "examples" / "checkpoints"
DIGITS = ["spikformer_digits", "spikingformer_digits", "spikingformer_digits_dts"]
T = 6


class ConvDense(nn.Module):
    """conv -> BN -> neuron -> avgpool -> conv -> neuron -> flatten -> linear -> neuron:
    every op of it is one NIR can express."""

    def __init__(self, make: type[nn.Module], **kw: object) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.sn1 = make(**kw)
        self.avg = nn.AvgPool2d(2)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.sn2 = make(**kw)
        self.fc = nn.Linear(4 * 4 * 4, 10)
        self.sn3 = make(**kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        y = self.sn1(self.bn1(self.conv1(x.flatten(0, 1))).reshape(T, B, 4, 8, 8))
        y = self.avg(y.flatten(0, 1))
        y = self.sn2(self.conv2(y).reshape(T, B, 4, 4, 4))
        return self.sn3(self.fc(y.flatten(2)))


def _graph(make: type[nn.Module], kw: dict[str, object], x: torch.Tensor, gain: float = 3.0):
    torch.manual_seed(0)
    net = randomize_bn(ConvDense(make, **kw))
    with torch.no_grad():
        net.conv1.weight.mul_(gain)  # mostly excitatory deeper layers, so every layer fires
        net.conv2.weight.abs_().mul_(gain)
        net.fc.weight.abs_().sub_(0.02).mul_(2 * gain)
    return canonicalize(snncc.trace(net, x))


@pytest.mark.parametrize(("make", "kw"), NEURON_VARIANTS,
                         ids=[f"{m.__name__}-{kw}" for m, kw in NEURON_VARIANTS])
def test_round_trip_is_bit_for_bit(tmp_path: Path, make: type[nn.Module],
                                   kw: dict[str, object]) -> None:
    x = torch.rand(T, 2, 1, 8, 8) * 2
    graph = _graph(make, kw, x)
    export = to_nir(graph)
    assert export.stopped_at == []
    path = tmp_path / "m.nir"
    save_nir(export, path)
    back = snncc.load(path, input_shape=tuple(x.shape))
    assert [n.op for n in back] == [n.op for n in graph if n.op not in ("add", "identity")]
    _, want = run(graph, [x], record=True)
    _, got = run(back, [x], record=True)
    common = [n.name for n in back if n.name in want]
    assert len(common) == len(back)  # the NIR nodes keep the IR names
    for name in common:
        assert torch.equal(got[name], want[name]), name
    spikes = [want[n.name].sum() for n in graph if n.opdef.is_neuron]
    assert all(s > 0 for s in spikes[:2]), spikes


def test_metadata_and_explicit_flatten(tmp_path: Path) -> None:
    x = torch.rand(T, 1, 1, 8, 8)
    graph = _graph(cd.MultiStepLIFNode, {"tau": 2.0, "v_reset": None}, x)
    g = to_nir(graph).graph
    assert g.metadata["dt"] == 1e-4 and g.metadata["time_steps"] == T
    lifs = [n for n in g.nodes.values() if isinstance(n, nir.LIF)]
    assert lifs and all(n.metadata["reset_mode"] == "subtract" and n.metadata["fire"] == ">="
                        for n in lifs)
    assert all(np.asarray(n.v_threshold).shape == np.asarray(n.tau).shape != () for n in lifs)
    flat = [n for n in g.nodes.values() if isinstance(n, nir.Flatten)]
    assert [(f.start_dim, f.end_dim) for f in flat] == [(0, 2)]
    # a NIR file's dt travels through an import into the export
    save_nir(to_nir(graph, dt=1e-3), tmp_path / "a.nir")
    again = to_nir(snncc.load(tmp_path / "a.nir"))
    assert again.dt == 1e-3


@pytest.mark.parametrize("name", DIGITS)
def test_digits_models_name_every_inexpressible_node(name: str) -> None:
    graph = canonicalize(snncc.load(CKPT / f"{name}.pt", input_shape=(4, 1, 1, 8, 8)))
    with pytest.raises(SnnccError) as e:
        to_nir(graph)
    d = e.value.diagnostic
    assert d.code == "SNN-NIR010"
    for n in graph:
        if n.op in ("maxpool2d", "matmul", "time_mask"):
            assert f"%{n.name} ({n.op}" in d.message


@pytest.mark.parametrize("name", DIGITS)
def test_digits_partial_export_round_trips(tmp_path: Path, name: str) -> None:
    """The expressible prefix (the encoder convs and neurons, up to the first max-pool or
    time mask) computes bit for bit what the graph computes at the cut."""
    graph = canonicalize(snncc.load(CKPT / f"{name}.pt", input_shape=(4, 1, 1, 8, 8)))
    export = to_nir(graph, partial=True)
    assert export.stopped_at and all(s in graph.nodes for s in export.stopped_at)
    path = tmp_path / "p.nir"
    save_nir(export, path)
    back = snncc.load(path)
    x = torch.rand(4, 1, 1, 8, 8)
    _, values = run(graph, [x], record=True)
    outs, _ = run(back, [x])
    assert len(outs) == len(export.outputs)
    for got, ir_name in zip(outs, export.outputs.values()):
        assert torch.equal(got, values[ir_name]), ir_name


def test_cli_export(tmp_path: Path) -> None:
    model = str(CKPT / "spikformer_digits.pt")
    out = tmp_path / "s.nir"
    args = ["compile", model, "--input-shape", "4,1,1,8,8", "--target", "nir", "-o", str(out)]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2 and "SNN-NIR010" in r.output and "maxpool2d" in r.output
    assert not out.exists()
    r = CliRunner().invoke(main, [*args, "--partial"])
    assert r.exit_code == 0, r.output
    assert "stopped before %patch_embed_maxpool2" in r.output and out.exists()
    r = CliRunner().invoke(main, ["compile", model, "--input-shape", "4,1,1,8,8", "--partial",
                                  "-o", str(tmp_path / "x.snnir")])
    assert r.exit_code == 2 and "SNN-CLI006" in r.output
    # the exported prefix compiles for the chip: a NIR file in, an acsim artifact out
    r = CliRunner().invoke(main, ["compile", str(out), "--target", "acsim",
                                  "-o", str(tmp_path / "p.acsim")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "p.acsim").exists()


def test_cli_dt_sets_the_written_step(tmp_path: Path) -> None:
    model = str(CKPT / "spikformer_digits.pt")
    out = tmp_path / "s.nir"
    r = CliRunner().invoke(main, ["compile", model, "--input-shape", "4,1,1,8,8", "--target",
                                  "nir", "--partial", "--dt", "1e-3", "-o", str(out)])
    assert r.exit_code == 0, r.output
    g = nir.read(out)
    assert g.metadata["dt"] == pytest.approx(1e-3)
    lif = next(n for n in g.nodes.values() if isinstance(n, nir.LIF))
    assert np.allclose(lif.tau, 2 * 1e-3)  # tau = 2 steps of 1 ms
    r = CliRunner().invoke(main, ["compile", model, "--input-shape", "4,1,1,8,8", "--dt", "1e-3",
                                  "-o", str(tmp_path / "x.snnir")])
    assert r.exit_code == 2 and "SNN-IN002" in r.output  # --dt only where NIR is read or written


def test_snntorch_imports_what_snncc_writes(tmp_path: Path) -> None:
    """snnTorch reads the conv/dense net (its importer applies NIR's per-sample Flatten
    dims to whatever it is given, so it runs one sample at a time)."""
    pytest.importorskip("snntorch")
    from snntorch.import_nir import import_from_nir

    x = torch.rand(T * 2, 1, 1, 8, 8) * 2
    graph = _graph(cd.MultiStepLIFNode, {"tau": 2.0}, x, gain=4.0)
    path = tmp_path / "m.nir"
    save_nir(to_nir(graph), path)
    want = run(graph, [x])[0][0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = import_from_nir(nir.read(path))
    outs, state = [], None
    with torch.no_grad():
        for t in range(x.shape[0]):
            y, state = module(x[t, 0], state)
            outs.append(y)
    got = torch.stack(outs).reshape(want.shape)
    assert want.sum() > 5 and torch.equal(got, want)


def test_norse_imports_what_snncc_writes(tmp_path: Path) -> None:
    """Norse reads a dense net (its importer has no AvgPool2d, and ignores r, so the
    neurons are SpikingJelly's decay_input form, which snncc writes with r = 1)."""
    norse = pytest.importorskip("norse.torch")

    class Dense(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.sn1 = nn.Linear(12, 16), cd.MultiStepLIFNode(tau=2.0)
            self.fc2, self.sn2 = nn.Linear(16, 5), cd.MultiStepLIFNode(tau=4.0)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.sn2(self.fc2(self.sn1(self.fc1(x))))

    torch.manual_seed(1)
    net = Dense()
    with torch.no_grad():
        net.fc1.weight.mul_(4)
        net.fc2.weight.abs_().mul_(4)
    x = torch.rand(20, 3, 12) * 2
    graph = canonicalize(snncc.trace(net, x))
    path = tmp_path / "d.nir"
    save_nir(to_nir(graph), path)
    want = run(graph, [x])[0][0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = norse.from_nir(nir.read(path), dt=1e-4)
    outs, state = [], None
    with torch.no_grad():
        for t in range(x.shape[0]):
            y, state = module(x[t], state)
            outs.append(y)
    got = torch.stack(outs)
    assert want.sum() > 10
    assert torch.equal(got, want)
