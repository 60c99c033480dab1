"""The IR's file form round-trips; the verifier and attribute models reject bad graphs."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pydantic
import pytest
import torch
from snn_models import ConvNet, randomize_bn

from snncc.diagnostics import SnnccError
from snncc.frontends.torch import trace
from snncc.ir import (
    FORMAT_VERSION,
    IRVerificationError,
    graph_text,
    load_graph,
    run,
    save_graph,
    verify,
)
from snncc.ir.ops.structure import TransposeAttrs
from snncc.passes import CANONICALIZE, run_passes


def _graph(canonical: bool):
    torch.manual_seed(0)
    g = trace(randomize_bn(ConvNet()), torch.zeros(4, 2, 1, 8, 8))
    return run_passes(g, CANONICALIZE).graph if canonical else g


@pytest.mark.parametrize("canonical", [False, True])
def test_snnir_round_trip_is_identical(tmp_path: Path, canonical: bool) -> None:
    g = _graph(canonical)
    path = tmp_path / "m.snnir"
    save_graph(g, path)
    h = load_graph(path)
    assert graph_text(h) == graph_text(g)
    assert h.meta == json.loads(json.dumps(g.meta))
    for n in g:
        for k, v in n.params.items():
            assert np.array_equal(h.nodes[n.name].params[k], v)
            assert h.nodes[n.name].params[k].dtype == v.dtype
    x = torch.rand(4, 2, 1, 8, 8) * 2
    assert torch.equal(run(g, [x])[0][0], run(h, [x])[0][0])


def test_newer_format_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.snnir"
    save_graph(_graph(False), path)
    with zipfile.ZipFile(path) as z:
        meta = json.loads(z.read("graph.json"))
        tensors = z.read("tensors.npz")
    meta["version"] = FORMAT_VERSION + 1
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("graph.json", json.dumps(meta))
        z.writestr("tensors.npz", tensors)
    with pytest.raises(SnnccError) as info:
        load_graph(path)
    assert info.value.code == "SNN-IR003"
    assert "upgrade" in (info.value.diagnostic.hint or "")


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    good = tmp_path / "m.snnir"
    save_graph(_graph(False), good)
    bad = tmp_path / "bad.snnir"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(SnnccError) as info:
        load_graph(bad)
    assert info.value.code == "SNN-IR002"


def test_verifier_reports_broken_graphs() -> None:
    g = _graph(False)
    conv = next(n for n in g if n.op == "conv2d")
    conv.params = {"bias": conv.params["weight"]}
    with pytest.raises(IRVerificationError, match="params missing"):
        verify(g)


def test_attributes_reject_unknown_fields() -> None:
    with pytest.raises(pydantic.ValidationError):
        TransposeAttrs(dim0=0, dim1=1, dimm2=3)  # type: ignore[call-arg]


def test_written_files_get_the_users_usual_mode(tmp_path: Path) -> None:
    import os

    from snncc.ir.serialize import atomic_write

    umask = os.umask(0o022)
    try:
        atomic_write(tmp_path / "x.bin", b"data")
    finally:
        os.umask(umask)
    assert (tmp_path / "x.bin").stat().st_mode & 0o777 == 0o644
