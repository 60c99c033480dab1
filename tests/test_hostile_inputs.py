"""Careless data files and options: each one line and exit 2 (issue 13, items 4-5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from snncc.cli import main

MODEL = str(Path(__file__).resolve().parents[1] / "examples" / "checkpoints" /
            "spikingformer_digits.pt")
SHAPE = ["--input-shape", "4,1,1,8,8"]


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("art") / "m.acsim"
    r = CliRunner().invoke(main, ["compile", MODEL, *SHAPE, "--target", "acsim", "-o", str(out)])
    assert r.exit_code == 0, r.output
    return out


def _save(tmp_path: Path, name: str, t: torch.Tensor) -> str:
    torch.save(t, tmp_path / name)
    return str(tmp_path / name)


def _one_line(args: list[str], code: str, needle: str) -> None:
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and code in lines[0] and needle in lines[0], r.output


def test_empty_nan_and_badly_labelled_inputs(tmp_path: Path, artifact: Path) -> None:
    good = _save(tmp_path, "x.pt", torch.rand(4, 2, 1, 8, 8))
    nan = torch.rand(4, 2, 1, 8, 8)
    nan[0, 0, 0, 0, 0] = float("nan")
    _one_line(["run", str(artifact), "--inputs", _save(tmp_path, "e.pt", torch.zeros(4, 0, 1, 8, 8))],
              "SNN-CLI003", "no samples")
    _one_line(["check-spike-only", MODEL, *SHAPE, "--inputs", _save(tmp_path, "n.pt", nan)],
              "SNN-CLI003", "NaN")
    for labels in (torch.tensor([0.5, 1.0]), torch.tensor([-1, 2])):
        _one_line(["run", str(artifact), "--inputs", good, "--labels",
                   _save(tmp_path, "y.pt", labels)], "SNN-CLI003", "class indices")


def test_calibration_of_the_wrong_shape(tmp_path: Path) -> None:
    cal = _save(tmp_path, "c.pt", torch.rand(4, 2, 1, 9, 9))
    _one_line(["compile", MODEL, *SHAPE, "--target", "acsim", "--calibration", cal,
               "-o", str(tmp_path / "o.acsim")], "SNN-CLI004", "traced for")


def test_a_binary_file_as_hardware(tmp_path: Path) -> None:
    (tmp_path / "chip.yaml").write_bytes(bytes(range(256)) * 8)
    _one_line(["compile", MODEL, *SHAPE, "--target", "acsim", "--hardware",
               str(tmp_path / "chip.yaml"), "-o", str(tmp_path / "o.acsim")], "SNN-TGT003",
              "not text")


def test_inputs_too_large_for_the_chip_are_reported_not_silent(tmp_path: Path,
                                                               artifact: Path) -> None:
    """1e9 overflows the 24-bit current that Lava's neuron holds: acsim wraps it exactly as
    the chip would and says how often, in text and in --json."""
    big = _save(tmp_path, "big.pt", torch.full((4, 2, 1, 8, 8), 1e9))
    text = CliRunner().invoke(main, ["run", str(artifact), "--inputs", big])
    assert text.exit_code == 0 and "exceeded the 24-bit current and wrapped" in text.output
    js = CliRunner().invoke(main, ["run", str(artifact), "--inputs", big, "--json"])
    assert json.loads(js.output)["current_wraps"] > 0
