"""The HTML report: self-contained, well-formed, escaped, robust to empty or partial data.

A synthetic report dict (the shape `snncc report --json` prints), no simulator:
the renderer only lays numbers out, so its failure modes are markup, escaping,
division by zero on empty lists and non-atomic writes.
"""

from __future__ import annotations

import copy
import dataclasses
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from snncc.backends.acsim.costs import CoreCost, LayerCost, PaperEnergy, StepCost, Totals
from snncc.diagnostics import SnnccError
from snncc.ir import serialize
from snncc.passes.map_cores import LayerPlacement
from snncc.passes.quantize import LayerReport
from snncc.report.html import render_html, write_html_report

NASTY = 'blk.<0>&"x"'
LONG = "encoder.blocks.11.attention.heads.query_projection.spiking_neuron_lif_node"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}
STEPS = 3


def _layer(name: str, path: str, neurons: int, cores: int, spikes: list[float]) -> dict[str, Any]:
    cats = {"synaptic": 1200.0, "neuron": 300.0, "spike": 40.0, "message": 80.0}
    return {"name": name, "module_path": path, "kind": "neuron", "synapse_kind": "dense",
            "neurons": neurons, "cores": cores, "sops": 1500.0, "spikes": sum(spikes),
            "messages_out": 20.0, "energy_pj": sum(cats.values()), "energy_by_category": cats,
            "spikes_per_step": spikes}


def _core(core: int, layer: str) -> dict[str, Any]:
    return {"core": core, "tile": core // 2, "x": core // 2, "y": 0, "layer": layer,
            "neurons": 100 + core, "utilisation": 0.1 * (core + 1), "sops": 10.0 * core,
            "spikes": 2.5, "messages_out": 4.0, "messages_in": 3.0, "hops": 1.0,
            "energy_pj": 500.0 + core, "busy_ns": 1000.0 * (core + 1)}


def _report() -> dict[str, Any]:
    """3 layers (one with a hostile module path, one with a long one), 4 cores, 3 steps."""
    layers = [_layer("in_lif", NASTY, 200, 2, [10.0, 30.0, 5.0]),
              _layer("mid_lif", LONG, 100, 1, [0.0, 12.5, 8.0]),
              _layer("out_lif", "head.lif", 10, 1, [0.0, 1.0, 2.0])]
    cores = [_core(0, "in_lif"), _core(1, "in_lif"), _core(2, "mid_lif"), _core(3, "out_lif")]
    steps = [{"step": t, "latency_ns": 2000.0 + 100 * t, "energy_pj": 1500.0, "barrier_ns": 300.0,
              "bottleneck_core": t, "bottleneck_layer": cores[t]["layer"], "bound": "neuron"}
             for t in range(STEPS)]
    return {
        "target": "loihi2", "samples": 8, "time_steps": STEPS, "predictions": [1, 2, 3, 4] * 2,
        "accuracy": 0.875, "latency_us_per_inference": 6.6, "energy_uj_per_inference": 0.0045,
        "paper_energy_uj_per_inference": 0.0123, "cores": 4, "current_wraps": 0,
        "simulation": {"wall_s": 0.5, "images_per_s": 16.0, "synaptic_events": 4500,
                       "events_per_s": 9000.0},
        "float_model": {"accuracy": 0.9, "prediction_agreement": 0.95},
        "resources": {
            "limits": {"chips": 8, "cores_per_chip": 120, "neurons_per_core": 8192,
                       "fan_in_per_core": 4096, "memory_bytes_per_core": 196608,
                       "neurons_per_chip": 1048576, "synapses_per_chip": 120000000},
            "chips": [{"chip": 0, "cores": 4, "neurons": 310, "synapses": 2100}],
            "cores": [{"core": 0, "chip": 0, "fan_in": 1, "memory_bytes": 4}],
            "splits": [{"op": "fc<2>", "kind": "split", "parts": 2, "extra_neurons": 20,
                        "extra_cores": 2, "extra_steps": 1, "messages": 7.0,
                        "why": "out_lif reads 5000 inputs"}]},
        "quantization": {"target": "loihi2", "domains": [{"id": 0}], "layers": [
            {"node": "fc1", "module_path": NASTY, "op": "linear", "domain": 0, "scale": 64.0,
             "weight_exp": -3, "max_abs_weight_error": 0.002, "rel_weight_error": 0.0123,
             "vth": None, "threshold_exact": None, "spike_agreement": None,
             "notes": ["bias folded"]},
            {"node": "lif1", "module_path": "enc.lif", "op": "lif", "domain": 0, "scale": 64.0,
             "weight_exp": None, "max_abs_weight_error": None, "rel_weight_error": None,
             "vth": 64, "threshold_exact": True, "spike_agreement": 0.9876, "notes": []}]},
        "mapping": {"target": "loihi2", "neurons_per_core": 8192, "layers": [
            {"name": "in_lif", "module_path": NASTY, "neurons": 200, "per_core_limit": 100,
             "limited_by": "synaptic memory", "cores": []}]},
        "cost": {"target": "loihi2", "per_step": steps, "per_core": cores, "per_layer": layers,
                 "totals": {"time_steps": STEPS, "batch": 8, "cores": 4, "tiles": 2,
                            "latency_ns": 6600.0, "energy_pj": 4500.0,
                            "barrier_energy_pj": 30.0, "sops": 4500.0, "spikes": 68.5,
                            "messages": 60.0, "hops": 4.0},
                 "paper": {"e_mac_pj": 4.6, "e_ac_pj": 0.9, "process_node": "45nm",
                           "encoding_macs": 1000.0, "readout_macs": 50.0, "sops": 4500.0,
                           "energy_pj": 12350.0, "energy_with_readout_pj": 12580.0}},
    }


class _Checker(HTMLParser):
    """Collects tags, text and attribute values, and every unbalanced or misnested tag."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.counts: dict[str, int] = {}
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1
        self.text += [v for _, v in attrs if v]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.errors == [] and checker.stack == [], (checker.errors, checker.stack)
    return checker


def test_writes_one_self_contained_page(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    write_html_report(_report(), path)
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    for forbidden in ("http://", "https://", "<script", "<link", "@import", "url("):
        assert forbidden not in page
    assert page.count("<svg") == 4
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary left over


def test_markup_is_balanced_and_has_the_tables() -> None:
    checker = _parse(render_html(_report()))
    assert checker.counts["svg"] == 4
    # per layer, per step, per core, per chip, splits and relays, quantization
    assert checker.counts["table"] == 6
    assert checker.counts["rect"] > 3 * STEPS  # heatmap cells at least


def test_resources_show_chips_and_splits() -> None:
    page = render_html(_report())
    assert "<td>310 / 1.049M</td>" in page and "<td>4 / 120</td>" in page
    assert "fc&lt;2&gt;" in page and "out_lif reads 5000 inputs" in page


def test_module_paths_are_escaped() -> None:
    page = render_html(_report())
    assert NASTY not in page
    assert "blk.&lt;0&gt;&amp;&quot;x&quot;" in page
    assert any(NASTY in t for t in _parse(page).text)  # and reads back as the original name


def test_long_names_are_truncated_with_the_full_name_as_tooltip() -> None:
    page = render_html(_report())
    assert f"<title>{LONG}</title>" in page  # SVG tooltip
    assert f'title="{LONG}"' in page  # table / legend tooltip
    assert "…" + LONG[-27:] in page  # the tail names the layer


def test_headline_numbers() -> None:
    page = render_html(_report())
    for shown in ("87.50%", "90.00%", "95.00%", "6.6 µs", "0.0045 µJ", "0.0123 µJ", "loihi2"):
        assert shown in page
    for label in ("head.lif", "bias folded", "98.76%", "1.23%", "synaptic memory"):
        assert label in page


def test_every_core_gets_a_row_and_a_bar() -> None:
    report = _report()
    report["cost"]["per_layer"] = report["cost"]["per_layer"][:1]
    report["cost"]["per_core"] = [_core(i, "in_lif") for i in range(200)]
    page = render_html(report)
    _parse(page)
    assert page.count("<title>core ") == 2 * 200  # utilisation and busy-time bar per core
    assert page.count('<tr><td class="n">') >= 200 + STEPS


def test_empty_lists_do_not_crash() -> None:
    report = _report()
    cost = report["cost"]
    cost["per_core"], cost["per_step"], cost["per_layer"] = [], [], []
    report["quantization"]["layers"] = []
    page = render_html(report)
    assert page.count("<svg") == 4
    assert "no cores" in page and "no time steps" in page and "no layers" in page
    _parse(page)


def test_zeros_none_and_missing_fields_degrade() -> None:
    report = _report()
    report["accuracy"] = None
    report["float_model"]["accuracy"] = None
    report["simulation"] = {"wall_s": 0.0, "images_per_s": None, "events_per_s": None}
    for row in report["cost"]["per_layer"]:
        row["energy_by_category"] = {k: 0.0 for k in row["energy_by_category"]}
        row["energy_pj"], row["spikes_per_step"] = 0.0, [0.0] * STEPS
    for row in report["cost"]["per_core"] + report["cost"]["per_step"]:
        row.update(busy_ns=0.0, latency_ns=0.0, utilisation=0.0, energy_pj=0.0)
    report["cost"]["per_step"][0]["bottleneck_layer"] = None
    report["cost"]["totals"]["energy_pj"] = 0.0
    del report["cost"]["paper"]
    assert "no labels" in render_html(report)
    _parse(render_html(report))
    for partial in ({}, {"cost": None, "mapping": [], "target": NASTY}):
        page = render_html(partial)
        assert page.count("<svg") == 4
        _parse(page)


@pytest.mark.parametrize("cls, rows", [
    (StepCost, lambda r: r["cost"]["per_step"]), (CoreCost, lambda r: r["cost"]["per_core"]),
    (LayerCost, lambda r: r["cost"]["per_layer"]), (Totals, lambda r: [r["cost"]["totals"]]),
    (PaperEnergy, lambda r: [r["cost"]["paper"]]),
    (LayerPlacement, lambda r: r["mapping"]["layers"]),
    (LayerReport, lambda r: r["quantization"]["layers"])])
def test_synthetic_report_uses_the_real_field_names(cls: type, rows: Any) -> None:
    """A renamed cost/mapping/quantization field shows here: fixture and renderer must follow."""
    names = {f.name for f in dataclasses.fields(cls)}
    for row in rows(_report()):
        assert set(row) <= names, set(row) - names


def test_cost_only_report_takes_headline_figures_from_the_totals() -> None:
    report = _report()
    del report["latency_us_per_inference"], report["energy_uj_per_inference"]
    page = render_html(report)
    assert "6.6 µs" in page and "0.0045 µJ" in page


def test_failed_write_raises_and_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "report.html"
    with pytest.raises(SnnccError, match="SNN-OUT002"):
        write_html_report(_report(), path)
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_failed_replace_keeps_the_old_report(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "report.html"
    path.write_text("old")

    def fail(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(serialize.os, "replace", fail)
    with pytest.raises(SnnccError, match="disk full"):  # one clear error, not an OSError
        write_html_report(copy.deepcopy(_report()), path)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
