"""-o as a careless or hostile user gives it: special files are never replaced, the
model itself is never overwritten, and a folder that is missing, read-only or full
is one clear line (exit 2) with any old file left as it was."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from snncc.diagnostics import SnnccError
from snncc.ir.serialize import atomic_write

ROOT = Path(__file__).resolve().parents[1]
MODEL = str(ROOT / "examples" / "checkpoints" / "spikingformer_digits.pt")
SHAPE = ["--input-shape", "4,1,1,8,8"]


def _compile(out: str | Path, model: str = MODEL) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "snncc.cli", "compile", model, *SHAPE,
                           "-o", str(out)], capture_output=True, text=True, timeout=300)


def _one_line(r: subprocess.CompletedProcess[str], code: str) -> None:
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and code in lines[0] and "Traceback" not in r.stderr


def test_special_files_are_refused_and_stay_what_they_were(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "null"  # a name that leads to a device
    link.symlink_to("/dev/null")
    for target in (fifo, link):
        _one_line(_compile(target), "SNN-OUT001")
    assert fifo.is_fifo() and os.path.realpath(link) == "/dev/null"
    assert Path("/dev/null").is_char_device()


def test_a_folder_or_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    _one_line(_compile(tmp_path), "SNN-OUT001")
    _one_line(_compile(tmp_path / "no" / "such" / "x.snnir"), "SNN-OUT002")


def test_the_model_file_is_not_overwritten(tmp_path: Path) -> None:
    model = tmp_path / "m.pt"
    model.write_bytes(Path(MODEL).read_bytes())
    _one_line(_compile(model, str(model)), "SNN-OUT004")
    assert model.read_bytes() == Path(MODEL).read_bytes()


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_full_or_read_only_file_system_keeps_the_old_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int) -> None:
    out = tmp_path / "out.snnir"
    out.write_bytes(b"old")

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(os, "fsync", fail)  # the write reaches the disk, which refuses it
    with pytest.raises(SnnccError) as info:
        atomic_write(out, b"new contents")
    assert info.value.code == "SNN-OUT003" and os.strerror(err) in str(info.value)
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.snnir"]  # no temporary left
