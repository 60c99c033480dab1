"""Damaged, edited and hostile files: each refused with one diagnostic, never loaded
as something else (issue 13, items 4 to 6)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
import torch

from snncc.diagnostics import SnnccError
from snncc.examples.spikingformer import spikingformer_digits
from snncc.frontends.torch import trace
from snncc.ir.serialize import graph_from_bytes, graph_to_bytes
from snncc.loading import load_model


@pytest.fixture(scope="module")
def snnir() -> bytes:
    return graph_to_bytes(trace(spikingformer_digits().eval(), torch.zeros(4, 1, 1, 8, 8)))


def _rezip(data: bytes, **replace: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members.update(replace)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for n, v in members.items():
            z.writestr(n, v)
    return out.getvalue()


@pytest.mark.parametrize("version", [0, -5, True, "1", 99])
def test_versions_outside_what_this_snncc_writes_are_refused(snnir: bytes, version: object) -> None:
    with zipfile.ZipFile(io.BytesIO(snnir)) as z:
        meta = json.loads(z.read("graph.json"))
    meta["version"] = version
    with pytest.raises(SnnccError) as info:
        graph_from_bytes(_rezip(snnir, **{"graph.json": json.dumps(meta).encode()}), "g.snnir")
    assert info.value.code == "SNN-IR003"


def test_a_zip_bomb_is_refused_before_it_expands(snnir: bytes) -> None:
    bomb = _rezip(snnir, **{"tensors.npz": bytes(1 << 29)})  # 512 MiB of zeros
    assert len(bomb) < 2 << 20  # about 0.6 MB on disk
    with pytest.raises(SnnccError) as info:
        graph_from_bytes(bomb, "bomb.snnir")
    assert info.value.code == "SNN-IR005" and "zip bomb" in str(info.value)


def test_a_flipped_byte_in_a_weight_storage_is_found(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    torch.save(torch.nn.Linear(64, 64), path)
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if "/data/" in i.filename)
    data = bytearray(path.read_bytes())
    data[info.header_offset + 30 + len(info.filename.encode()) + info.extra.__len__() + 100] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(SnnccError) as e:
        load_model(path)
    assert e.value.code == "SNN-LOAD002" and "CRC" in str(e.value)
