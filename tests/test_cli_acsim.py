"""`snncc compile --target acsim`, `snncc run` and `snncc report` as a user meets them:
the figures agree with each other and with the float model, bad input exits 2."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cli import CKPT, SHAPE, snncc

from snncc.examples.digits import encode, load_digits_split

MODEL = str(CKPT / "spikingformer_digits.pt")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("acsim")
    xtr, _, xte, yte = load_digits_split()
    torch.save(encode(xtr[:32]), d / "cal.pt")
    torch.save({"inputs": encode(xte[:120]), "labels": yte[:120]}, d / "test.pt")
    out = d / "sf.acsim"
    r = snncc("compile", MODEL, *SHAPE, "--target", "acsim", "--calibration", str(d / "cal.pt"),
              "-o", str(out), "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["mapping"]["hardware"] == "loihi2" and summary["mapping"]["cores"] >= 10
    agreements = [x["spike_agreement"] for x in summary["quantization"]["layers"]
                  if x["vth"] is not None]
    assert agreements and min(agreements) > 0.9
    return {"dir": d, "artifact": out, "test": d / "test.pt"}


def test_run_and_report_agree(compiled: dict[str, Path]) -> None:
    run = snncc("run", str(compiled["artifact"]), "--inputs", str(compiled["test"]), "--json")
    assert run.returncode == 0, run.stderr
    r = json.loads(run.stdout)
    html = compiled["dir"] / "report.html"
    rep = snncc("report", str(compiled["artifact"]), "--inputs", str(compiled["test"]), "--json",
                "--html", str(html))
    assert rep.returncode == 0, rep.stderr
    report = json.loads(rep.stdout)
    assert r["samples"] == report["samples"] == 120 and len(r["predictions"]) == 120
    assert r["predictions"] == report["predictions"]
    assert abs(report["accuracy"] - report["float_model"]["accuracy"]) <= 0.025
    cost = report["cost"]
    # the headline figures are the breakdown's sums
    assert r["energy_uj_per_inference"] == pytest.approx(cost["totals"]["energy_pj"] / 1e6)
    assert cost["totals"]["latency_ns"] == pytest.approx(sum(s["latency_ns"] for s in cost["per_step"]))
    layer_energy = sum(x["energy_pj"] for x in cost["per_layer"])
    assert layer_energy + cost["totals"]["barrier_energy_pj"] == pytest.approx(cost["totals"]["energy_pj"])
    assert html.read_text().lstrip().lower().startswith("<!doctype html")


def test_text_output_names_the_figures(compiled: dict[str, Path]) -> None:
    r = snncc("run", str(compiled["artifact"]), "--inputs", str(compiled["test"]))
    assert r.returncode == 0, r.stderr
    assert "accuracy:" in r.stdout and "latency" in r.stdout and "uJ" in r.stdout


def test_wrong_input_shape_exits_2(compiled: dict[str, Path]) -> None:
    bad = compiled["dir"] / "bad.pt"
    torch.save(torch.zeros(4, 3, 1, 6, 6), bad)
    r = snncc("run", str(compiled["artifact"]), "--inputs", str(bad))
    assert r.returncode == 2
    assert "SNN-SIM002" in r.stderr and "Traceback" not in r.stderr


def _rewrite(src: Path, dst: Path, member: str, change: Callable[[bytes], bytes]) -> Path:
    """A copy of the artifact zip with one member changed."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.namelist():
            data = zin.read(item)
            zout.writestr(item, change(data) if item == member else data)
    return dst


def test_artifact_from_another_version_exits_2(compiled: dict[str, Path]) -> None:
    def future(data: bytes) -> bytes:
        return json.dumps(json.loads(data) | {"version": 99}).encode()

    dst = _rewrite(compiled["artifact"], compiled["dir"] / "future.acsim", "artifact.json", future)
    r = snncc("run", str(dst), "--inputs", str(compiled["test"]))
    assert r.returncode == 2 and "SNN-ART002" in r.stderr and "version 99" in r.stderr


def test_tampered_integers_are_refused(compiled: dict[str, Path]) -> None:
    def tamper(data: bytes) -> bytes:
        arrays = dict(np.load(io.BytesIO(data)))
        key = next(k for k in arrays if k.endswith("/mantissa"))
        arrays[key] = arrays[key] + 2
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()

    dst = _rewrite(compiled["artifact"], compiled["dir"] / "tampered.acsim", "integers.npz", tamper)
    r = snncc("run", str(dst), "--inputs", str(compiled["test"]))
    assert r.returncode == 2 and "SNN-ART003" in r.stderr


def test_not_an_artifact_exits_2(tmp_path: Path) -> None:
    junk = tmp_path / "junk.acsim"
    junk.write_bytes(b"not a zip")
    r = snncc("run", str(junk), "--inputs", str(junk))
    assert r.returncode == 2 and "SNN-ART001" in r.stderr and "Traceback" not in r.stderr


def test_model_that_does_not_fit_the_target_exits_2(tmp_path: Path) -> None:
    """Without graded spikes nothing can be split: a fan-in of 100 is too small for the
    digits model's layers, and the error names the layer and the numbers."""
    text = Path("snncc/targets/loihi2.yaml").read_text()
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(text.replace("name: loihi2", "name: tiny")
                    .replace("fan_in_per_core: 4096", "fan_in_per_core: 100")
                    .replace("max_message_bits: 32", "max_message_bits: 0"))
    out = tmp_path / "x.acsim"
    r = snncc("compile", MODEL, *SHAPE, "--target", "acsim", "--hardware", str(tiny), "-o", str(out))
    assert r.returncode == 2, r.stderr
    assert "SNN-MAP001" in r.stderr and "fan-in" in r.stderr and "Traceback" not in r.stderr
    assert "more than the 100 fan-in of a core" in r.stderr and "graded spikes" in r.stderr
    assert not out.exists()


def test_a_small_fan_in_is_met_by_splits_and_relays(tmp_path: Path,
                                                    compiled: dict[str, Path]) -> None:
    """With graded spikes the same fan-in of 100 is met: the compile says what it split,
    the artifact runs with the predictions of the unsplit one, and the report's resources
    list every split with its cost and every core within the fan-in."""
    text = Path("snncc/targets/loihi2.yaml").read_text()
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(text.replace("name: loihi2", "name: tiny")
                    .replace("fan_in_per_core: 4096", "fan_in_per_core: 100"))
    out = tmp_path / "x.acsim"
    r = snncc("compile", MODEL, *SHAPE, "--target", "acsim", "--hardware", str(tiny),
              "--calibration", str(compiled["dir"] / "cal.pt"), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "weight ops split by input channels" in r.stdout
    assert out.exists()
    rep = snncc("report", str(out), "--inputs", str(compiled["test"]), "--json")
    assert rep.returncode == 0, rep.stderr
    report = json.loads(rep.stdout)
    unsplit = json.loads(snncc("run", str(compiled["artifact"]), "--inputs",
                               str(compiled["test"]), "--json").stdout)
    res = report["resources"]
    assert res["splits"] and all(s["extra_cores"] >= 1 for s in res["splits"])
    assert max(c["fan_in"] for c in res["cores"]) <= 100 == res["limits"]["fan_in_per_core"]
    assert sum(c["cores"] for c in res["chips"]) == report["cost"]["totals"]["cores"]
    # the same graph and calibration, so the same integers: splitting changes no prediction
    assert report["predictions"] == unsplit["predictions"]
    assert report["accuracy"] == unsplit["accuracy"]


def test_formats_acsim_cannot_hold_are_refused(tmp_path: Path) -> None:
    """A target asking for 14-bit weights would be quantized for numbers that Lava's
    Dense (and so acsim) clips to 8 bits: refused, with every field named."""
    text = Path("snncc/targets/loihi2.yaml").read_text()
    wide = tmp_path / "wide.yaml"
    wide.write_text(text.replace("name: loihi2", "name: wide")
                    .replace("  weight_bits: 8 ", "  weight_bits: 14 ")
                    .replace("  u_bits: 24", "  u_bits: 32"))
    r = snncc("compile", MODEL, *SHAPE, "--target", "acsim", "--hardware", str(wide),
              "-o", str(tmp_path / "x.acsim"))
    assert r.returncode == 2 and "SNN-Q007" in r.stderr
    assert "formats.weight_bits is 14, must be <= 8" in r.stderr
    assert "formats.u_bits is 32, must be == 24" in r.stderr
    assert not (tmp_path / "x.acsim").exists()
