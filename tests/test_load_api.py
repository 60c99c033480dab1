"""`snncc.load` and the frontend registry it shares with the CLI: every kind of file in,
by content or suffix; unknown kinds and bad option combinations are named errors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import snncc
from snncc.diagnostics import SnnccError
from snncc.frontends import registry
from snncc.frontends.registry import FRONTENDS, Loaded, LoadRequest, detect_kind, register_frontend
from snncc.ir.graph import Graph
from snncc.ir.serialize import save_graph

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "examples" / "checkpoints"
DIGITS = CKPT / "spikingformer_digits.pt"
SHAPE = (4, 1, 1, 8, 8)

# A tiny event-camera model: conv -> BN -> LIF on [T, B, 2, H, W] polarity frames. It lives in
# a module of its own (written to a temporary folder) so that a whole-model file names it.
TINY_EVENT = '''
import torch
from spikingjelly.clock_driven import neuron as cd
from torch import nn


class TinyEvent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.sn = cd.MultiStepLIFNode(tau=2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        y = self.bn(self.conv(x.flatten(0, 1))).reshape(T, B, 4, H, W)
        return self.sn(y)
'''


def refused(code: str, *words: str, **kwargs: object) -> SnnccError:
    path = kwargs.pop("path")
    with pytest.raises(SnnccError) as info:
        snncc.load(path, **kwargs)  # type: ignore[arg-type]
    err = info.value
    assert err.code == code, err
    for w in words:
        assert w in str(err), (w, str(err))
    return err


def params(graph: Graph) -> dict[str, np.ndarray]:
    return {f"{n.name}/{k}": v for n in graph for k, v in n.params.items()}


@pytest.fixture(scope="module")
def digits_graph() -> Graph:
    return snncc.load(DIGITS, input_shape=SHAPE)


def test_whole_model_file_with_an_input_shape(digits_graph: Graph) -> None:
    model = torch.load(DIGITS, weights_only=False)
    assert digits_graph.time_steps == 4
    assert digits_graph.nodes[digits_graph.inputs[0]].type.shape == SHAPE
    assert digits_graph.meta["source_parameters"] == sum(p.numel() for p in model.parameters())
    # the same graph as tracing the module itself, and as an example input of that shape
    direct = snncc.trace(model.eval(), torch.zeros(SHAPE))
    assert len(direct) == len(digits_graph)
    same = snncc.load(str(DIGITS), torch.zeros(SHAPE))
    assert [n.op for n in same] == [n.op for n in digits_graph]
    refused("SNN-CLI002", str(DIGITS), "--input-shape", path=DIGITS)


def test_state_dict_with_arch(tmp_path: Path, digits_graph: Graph) -> None:
    model = torch.load(DIGITS, weights_only=False)
    torch.save(model.state_dict(), tmp_path / "sd.pth")
    graph = snncc.load(tmp_path / "sd.pth", input_shape=SHAPE,
                       arch="snncc.examples.spikingformer:spikingformer_digits")
    a, b = params(graph), params(digits_graph)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    refused("SNN-LOAD004", "state_dict", "--arch", path=tmp_path / "sd.pth", input_shape=SHAPE)


def test_snnir_file_by_suffix_and_by_content(tmp_path: Path, digits_graph: Graph) -> None:
    canonical = snncc.canonicalize(digits_graph)
    save_graph(canonical, tmp_path / "m.snnir")
    back = snncc.load(tmp_path / "m.snnir")
    assert len(back) == len(canonical) and back.time_steps == 4
    assert all(np.array_equal(v, params(canonical)[k]) for k, v in params(back).items())
    # the contents decide: a .snnir under a model-file name, a model under no suffix at all
    (tmp_path / "graph.pt").write_bytes((tmp_path / "m.snnir").read_bytes())
    assert detect_kind(tmp_path / "graph.pt") == "snnir"
    assert len(snncc.load(tmp_path / "graph.pt")) == len(canonical)
    (tmp_path / "model").write_bytes(DIGITS.read_bytes())
    assert detect_kind(tmp_path / "model") == "torch"
    assert len(snncc.load(tmp_path / "model", input_shape=SHAPE)) == len(digits_graph)
    # options that contradict the traced graph
    refused("SNN-CLI004", "compiled for (4, 1, 1, 8, 8)", path=tmp_path / "m.snnir",
            input_shape=(4, 2, 1, 8, 8))
    refused("SNN-IN002", "T=4, not 8", path=tmp_path / "m.snnir", time_steps=8)
    refused("SNN-IN002", "analog input", path=tmp_path / "m.snnir", input_kind="spikes")
    refused("SNN-IN002", "--arch", path=tmp_path / "m.snnir", arch="a:b")
    assert len(snncc.load(tmp_path / "m.snnir", input_shape=SHAPE, time_steps=4)) == len(back)
    refused("SNN-IR001", "no such file", path=tmp_path / "missing.snnir")


def test_unknown_kind_names_the_path_and_the_known_kinds(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    err = refused("SNN-IN001", "notes.txt", path=tmp_path / "notes.txt")
    assert err.diagnostic.hint is not None
    assert "snnir (.snnir)" in err.diagnostic.hint and "torch (.pt" in err.diagnostic.hint
    refused("SNN-LOAD001", "no such model file", path=tmp_path / "missing")
    refused("SNN-LOAD001", "no such model file", path=tmp_path / "missing.pt")
    # a model-file suffix with other contents: the torch loader says what is wrong
    (tmp_path / "notes.pt").write_text("hello")
    refused("SNN-LOAD002", "not a PyTorch model file", path=tmp_path / "notes.pt")


@pytest.mark.parametrize("kwargs,words", [
    ({"time_steps": 0}, ["positive integer, got 0"]),
    ({"time_steps": True}, ["positive integer"]),
    ({"input_kind": "rgb"}, ["'rgb'"]),
    ({"input_shape": (4, 0, 8)}, ["positive integers"]),
    ({"input_shape": SHAPE, "example_input": torch.zeros(SHAPE)}, ["both"]),
])
def test_bad_options_are_refused_before_reading(tmp_path: Path, kwargs: dict[str, object],
                                                words: list[str]) -> None:
    refused("SNN-IN002", *words, path=tmp_path / "never_read.pt", **kwargs)


@pytest.fixture
def fake_kind() -> Iterator[list[Path]]:
    seen: list[Path] = []

    @register_frontend("fake", suffixes=(".fake",), sniff=lambda p: p.head.startswith(b"FAKE"))
    def _load(path: Path, request: LoadRequest) -> Loaded:
        seen.append(path)
        return registry.FRONTENDS["snnir"].load(Path(path.read_bytes()[4:].decode()), request)

    try:
        yield seen
    finally:
        del FRONTENDS["fake"]


def test_a_new_kind_is_one_register_call(tmp_path: Path, digits_graph: Graph,
                                         fake_kind: list[Path]) -> None:
    save_graph(snncc.canonicalize(digits_graph), tmp_path / "m.snnir")
    (tmp_path / "m.whatever").write_bytes(b"FAKE" + str(tmp_path / "m.snnir").encode())
    assert detect_kind(tmp_path / "m.whatever") == "fake"
    assert detect_kind(tmp_path / "absent.fake") == "fake"
    assert snncc.load(tmp_path / "m.whatever").time_steps == 4
    assert fake_kind == [tmp_path / "m.whatever"]
    with pytest.raises(ValueError, match="already registered"):
        register_frontend("fake", suffixes=(".other",))
    with pytest.raises(ValueError, match="already claimed"):
        register_frontend("fake2", suffixes=(".pt",))


# --- the CLI ------------------------------------------------------------------------------

def snncc_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "snncc.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


@pytest.fixture
def tiny_event(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "tiny_event.py").write_text(TINY_EVENT)
    monkeypatch.syspath_prepend(str(tmp_path))
    import tiny_event  # type: ignore[import-not-found]

    torch.save(tiny_event.TinyEvent().eval(), tmp_path / "event.pt")
    try:
        yield tmp_path / "event.pt"
    finally:
        sys.modules.pop("tiny_event", None)


def test_input_kind_spikes_makes_the_first_conv_an_ac(tiny_event: Path) -> None:
    def first_conv(*extra: str) -> str:
        r = snncc_cli("check-spike-only", tiny_event.name, "--input-shape", "4,1,2,8,8",
                      "--allow", "tiny_event", "--json", *extra, cwd=tiny_event.parent)
        assert r.returncode == 0, r.stdout + r.stderr
        (conv,) = [f for f in json.loads(r.stdout)["findings"] if f["module_path"] == "conv"]
        return str(conv["class"])

    assert first_conv() == "ENCODING_MAC"
    assert first_conv("--input-kind", "analog") == "ENCODING_MAC"
    assert first_conv("--input-kind", "spikes") == "AC"
    # the same through the Python API
    graph = snncc.load(tiny_event, input_shape=(4, 1, 2, 8, 8), input_kind="spikes",
                       allow="tiny_event")
    findings = snncc.check_spike_only(graph).report.findings
    assert [f.cls.value for f in findings if f.module_path == "conv"] == ["AC"]


@pytest.mark.parametrize("command", ["check-spike-only", "compile", "inspect"])
def test_time_steps_0_is_one_line_and_exit_2(tmp_path: Path, command: str) -> None:
    r = snncc_cli(command, str(DIGITS), "--input-shape", "1,1,8,8", "--time-steps", "0",
                  "-o" if command == "compile" else "--json",
                  *([str(tmp_path / "out.snnir")] if command == "compile" else []), cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "SNN-IN002" in lines[0] and "got 0" in lines[0], r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "out.snnir").exists()


def test_cli_options_that_contradict_a_snnir_graph(tmp_path: Path, digits_graph: Graph) -> None:
    save_graph(snncc.canonicalize(digits_graph), tmp_path / "m.snnir")
    r = snncc_cli("inspect", "m.snnir", "--input-kind", "spikes", cwd=tmp_path)
    assert r.returncode == 2 and "SNN-IN002" in r.stderr and len(r.stderr.splitlines()) == 1
    r = snncc_cli("inspect", "m.snnir", "--time-steps", "4", "--json", cwd=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["time_steps"] == 4, r.stderr
    (tmp_path / "notes.txt").write_text("hello")
    r = snncc_cli("inspect", "notes.txt", cwd=tmp_path)
    assert r.returncode == 2 and "SNN-IN001" in r.stderr and "known kinds" in r.stderr
