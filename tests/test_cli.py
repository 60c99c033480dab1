"""The command line as a user meets it: exit codes, one-line errors, no partial files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "examples" / "checkpoints"
SHAPE = ["--input-shape", "4,1,1,8,8"]


def snncc(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "snncc.cli", *args], capture_output=True,
                          text=True, cwd=cwd or ROOT, timeout=300)


def test_check_spike_only_json_on_trained_models() -> None:
    ok = snncc("check-spike-only", str(CKPT / "spikingformer_digits.pt"), *SHAPE, "--json")
    assert ok.returncode == 0, ok.stderr
    obj = json.loads(ok.stdout)
    classes = {f["class"] for f in obj["findings"]}
    assert classes == {"AC", "ENCODING_MAC", "READOUT_MAC"}
    for f in obj["findings"]:
        assert {"class", "module_path", "op", "operand_kinds", "message", "hint"} <= set(f)
    bad = snncc("check-spike-only", str(CKPT / "spikformer_digits.pt"), *SHAPE, "--json")
    assert bad.returncode == 1
    violations = [f for f in json.loads(bad.stdout)["findings"] if f["class"] == "VIOLATION"]
    assert {f["module_path"] for f in violations} == {
        "block.0.attn.q_linear", "block.0.attn.k_linear", "block.0.attn.v_linear",
        "block.0.mlp.fc1_linear"}
    assert json.loads(bad.stdout)["summary"]["VIOLATION"] == 4


def test_sarif_output_is_sarif_2_1_0() -> None:
    r = snncc("check-spike-only", str(CKPT / "spikformer_digits.pt"), *SHAPE, "--sarif")
    assert r.returncode == 1
    log = json.loads(r.stdout)
    assert log["version"] == "2.1.0"
    results = log["runs"][0]["results"]
    errors = [x for x in results if x["level"] == "error"]
    assert len(errors) == 4 and all(x["ruleId"] == "SNN-SPK001" for x in errors)
    names = {x["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] for x in errors}
    assert "block.0.mlp.fc1_linear" in names


def test_inputs_confirm_the_analysis(tmp_path: Path) -> None:
    from snncc.examples.digits import encode, load_digits_split

    x = encode(load_digits_split()[2][:16], 4)
    torch.save(x, tmp_path / "x.pt")
    r = snncc("check-spike-only", str(CKPT / "spikingformer_digits.pt"), *SHAPE,
              "--inputs", str(tmp_path / "x.pt"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 outside the analysis" in r.stdout


def test_compile_writes_ir_and_prints_ir_after(tmp_path: Path) -> None:
    out = tmp_path / "m.snnir"
    r = snncc("compile", str(CKPT / "spikingformer_digits.pt"), *SHAPE, "--target", "ir",
              "-o", str(out), "--print-ir-after", "fold-batchnorm", "--json")
    assert r.returncode == 0, r.stderr
    assert out.exists() and json.loads(r.stdout)["output"] == str(out)
    assert "IR after fold-batchnorm" in r.stderr
    r2 = snncc("inspect", str(out), "--json")
    assert r2.returncode == 0 and json.loads(r2.stdout)["nodes"] > 10


def test_inspect_reports_the_module_parameter_count() -> None:
    r = snncc("inspect", str(CKPT / "spikformer_digits.pt"), *SHAPE, "--json")
    model = torch.load(CKPT / "spikformer_digits.pt", weights_only=False)
    assert json.loads(r.stdout)["parameters"] == sum(p.numel() for p in model.parameters())


def _truncated(tmp_path: Path) -> str:
    data = (CKPT / "spikingformer_digits.pt").read_bytes()
    p = tmp_path / "trunc.pt"
    p.write_bytes(data[: len(data) // 2])
    return str(p)


def _non_model(tmp_path: Path) -> str:
    p = tmp_path / "list.pt"
    torch.save([1, 2, 3], p)
    return str(p)


class _Evil:
    def __reduce__(self):  # noqa: D105
        return (os.system, ("touch PWNED",))


def _evil(tmp_path: Path) -> str:
    p = tmp_path / "evil.pt"
    torch.save({"model": _Evil()}, p)
    return str(p)


def _unsupported(tmp_path: Path) -> str:
    p = tmp_path / "gru.pt"
    torch.save(torch.nn.Sequential(torch.nn.Linear(64, 8), torch.nn.GELU()), p)
    return str(p)


@pytest.mark.parametrize("make,extra,code", [
    (lambda t: str(t / "missing.pt"), SHAPE, "SNN-LOAD001"),
    (_truncated, SHAPE, "SNN-LOAD002"),
    (_non_model, SHAPE, "SNN-LOAD004"),
    (_evil, SHAPE, "SNN-LOAD003"),
    (_unsupported, ["--input-shape", "4,1,64"], "SNN-FE003"),
    (lambda t: str(CKPT / "spikingformer_digits.pt"), ["--input-shape", "4,1,3,8,8"], "SNN-FE004"),
    (lambda t: str(CKPT / "spikingformer_digits.pt"), ["--input-shape", "4,a"], "SNN-CLI001"),
    (lambda t: str(CKPT / "spikingformer_digits.pt"), [], "SNN-CLI002"),
])
def test_bad_input_is_one_clear_line_and_exit_2(tmp_path: Path, make, extra: list[str],
                                                code: str) -> None:
    model = make(tmp_path)
    out = tmp_path / "out.snnir"
    r = snncc("compile", model, *extra, "-o", str(out), cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and code in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists(), "no partial output file"
    assert not (tmp_path / "PWNED").exists(), "the file's code must not run"
