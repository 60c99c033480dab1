"""Seeded mutations of every file kind snncc reads, through the CLI entry points.

Each damaged file must give either exactly the unmutated file's result, or exit 2
with one line; never exit 3 (an internal error), a traceback, or a hang. Byte
mutations (flip, set, truncate, zero a span) exercise the containers (zip, CRCs,
zlib, pickle); JSON mutations re-zipped validly exercise what the readers do with
well-formed but wrong content (missing keys, wrong types, absurd values).
"""

from __future__ import annotations

import io
import json
import random
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

from snncc.cli import main

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "checkpoints" / "spikingformer_digits.pt"
SHAPE = ["--input-shape", "4,1,1,8,8"]


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    p = rng.randrange(len(b))
    op = rng.choice(("flip", "set", "truncate", "zero"))
    if op == "flip":
        b[p] ^= 1 << rng.randrange(8)
    elif op == "set":
        b[p] = rng.randrange(256)
    elif op == "truncate":
        del b[p:]
    else:
        n = rng.randrange(1, 64)
        b[p:p + n] = bytes(len(b[p:p + n]))
    return bytes(b)


_ODD = (None, -1, 0, 2**40, 1.5, float("nan"), "x", [], {}, True)


def mutate_json(obj: Any, rng: random.Random) -> Any:
    """Delete a key, or replace a value (anywhere in the tree) by an odd one."""
    paths: list[tuple[Any, Any]] = []

    def walk(o: Any) -> None:
        items = o.items() if isinstance(o, dict) else enumerate(o) if isinstance(o, list) else []
        for k, v in items:
            paths.append((o, k))
            walk(v)

    walk(obj)
    parent, key = rng.choice(paths)
    if isinstance(parent, dict) and rng.random() < 0.3:
        del parent[key]
    else:
        parent[key] = rng.choice(_ODD)
    return obj


def rezip_json(data: bytes, member: str, rng: random.Random) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members[member] = json.dumps(mutate_json(json.loads(members[member]), rng)).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for n, v in members.items():
            z.writestr(n, v)
    return out.getvalue()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("fuzz")
    runner = CliRunner()
    for target, name in (("ir", "m.snnir"), ("acsim", "m.acsim")):
        r = runner.invoke(main, ["compile", str(MODEL), *SHAPE, "--target", target,
                                 "-o", str(d / name)])
        assert r.exit_code == 0, r.output
    torch.manual_seed(0)
    torch.save((torch.rand(4, 2, 1, 8, 8) > 0.5).float(), d / "inputs.pt")
    return {"snnir": d / "m.snnir", "acsim": d / "m.acsim", "pt": MODEL, "dir": d,
            "inputs": d / "inputs.pt"}


def _argv(kind: str, path: Path, files: dict[str, Path]) -> list[str]:
    if kind == "snnir":
        return ["inspect", str(path), "--json"]
    if kind == "acsim":
        return ["run", str(path), "--inputs", str(files["inputs"]), "--json"]
    return ["check-spike-only", str(path), *SHAPE, "--json"]


_TIMINGS = {"wall_s", "images_per_s", "events_per_s"}  # how fast, not what: never compared


def _result(output: str) -> Any:
    def drop(o: Any) -> Any:
        if isinstance(o, dict):
            return {k: drop(v) for k, v in o.items() if k not in _TIMINGS}
        return [drop(v) for v in o] if isinstance(o, list) else o

    return drop(json.loads(output))


def _judge(kind: str, data: bytes, files: dict[str, Path], expected: Any, what: str) -> None:
    path = files["dir"] / f"mutant.{kind}"
    path.write_bytes(data)
    r = CliRunner().invoke(main, _argv(kind, path, files))
    assert r.exit_code in (0, 1, 2), f"{what}: exit {r.exit_code}: {r.output[-400:]}"
    assert "Traceback" not in r.output, what
    if r.exit_code == 2:
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("snncc: error SNN-"), (what, r.output)
    else:
        assert _result(r.output) == expected, f"{what}: a damaged file gave another result"


def _expected(kind: str, files: dict[str, Path]) -> Any:
    r = CliRunner().invoke(main, _argv(kind, files[kind], files))
    assert r.exit_code in (0, 1), r.output
    return _result(r.output)


@pytest.mark.parametrize("kind,count", [("snnir", 300), ("acsim", 200), ("pt", 150)])
def test_byte_mutations(files: dict[str, Path], kind: str, count: int) -> None:
    expected = _expected(kind, files)
    data = files[kind].read_bytes()
    rng = random.Random(f"bytes-{kind}")
    for i in range(count):
        _judge(kind, mutate_bytes(data, rng), files, expected, f"{kind} byte mutation {i}")


@pytest.mark.parametrize("kind,member,count", [
    ("snnir", "graph.json", 300), ("acsim", "artifact.json", 200)])
def test_json_mutations_rezipped(files: dict[str, Path], kind: str, member: str,
                                 count: int) -> None:
    expected = _expected(kind, files)
    data = files[kind].read_bytes()
    rng = random.Random(f"json-{kind}")
    for i in range(count):
        _judge(kind, rezip_json(data, member, rng), files, expected, f"{kind} json mutation {i}")
