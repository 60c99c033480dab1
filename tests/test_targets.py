"""Targets are data: builtins load and carry their citations; bad files fail
with a diagnostic that names the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import snncc.targets as targets_pkg
from snncc.diagnostics import SnnccError
from snncc.targets import builtin_targets, load_target, parse_target

BUILTINS = ["loihi-calibrated", "loihi1", "loihi2", "paper-45nm"]


def test_builtins_are_listed() -> None:
    assert builtin_targets() == BUILTINS


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_loads_with_name_and_sources(name: str) -> None:
    t = load_target(name)
    assert t.name == name
    assert t.sources and all(s.strip() for s in t.sources)


def test_loihi1_numbers_are_davies_2018() -> None:
    t = load_target("loihi1")
    assert t.costs is not None and t.limits is not None and t.formats is not None
    assert t.costs.synaptic_op_dense.energy_pj == 23.6
    assert t.costs.synaptic_op_dense.time_ns == 3.5
    assert (t.costs.neuron_update_active.energy_pj, t.costs.neuron_update_active.time_ns) == (81.0, 8.4)
    assert (t.costs.neuron_update_inactive.energy_pj, t.costs.neuron_update_inactive.time_ns) == (52.0, 5.3)
    assert t.costs.spike_out.energy_pj == 1.7
    assert t.costs.barrier_sync.time_ns(1) == 113.0
    assert t.costs.barrier_sync.time_ns(32) == 465.0
    assert t.limits.cores == 128 and t.limits.neurons_per_core == 1024
    assert t.limits.synaptic_memory_bytes_per_core == 128 * 1024
    assert t.limits.fan_in_per_core == t.limits.fan_out_per_core == 4096
    assert t.formats.u_bits == t.formats.v_bits == 24
    assert t.formats.threshold_bits == 17 and t.formats.threshold_shift == 6
    assert t.formats.decay_bits == 12


def test_calibrated_numbers_are_sanafe() -> None:
    c = load_target("loihi-calibrated").costs
    assert c is not None
    assert (c.synaptic_op_dense.energy_pj, c.synaptic_op_dense.time_ns) == (35.5, 3.8)
    assert (c.synaptic_op_sparse.energy_pj, c.synaptic_op_sparse.time_ns) == (33.6, 4.7)
    assert (c.synaptic_op_conv.energy_pj, c.synaptic_op_conv.time_ns) == (24.0, 3.1)
    # access 51.2 pJ / 6.0 ns plus update 21.6 pJ / 3.7 ns
    assert c.neuron_update_active.energy_pj == pytest.approx(51.2 + 21.6)
    assert c.neuron_update_active.time_ns == pytest.approx(6.0 + 3.7)
    assert (c.message_out.energy_pj, c.message_out.time_ns) == (111.0, 5.1)
    assert c.message_in.time_ns == 16.0
    assert (c.hop_north_south.energy_pj, c.hop_north_south.time_ns) == (4.2, 6.5)
    assert c.barrier_sync.time_ns(1) == 600.0
    assert c.barrier_sync.time_ns(29) == c.barrier_sync.time_ns(32) == 1800.0
    assert 600.0 < c.barrier_sync.time_ns(15) < 1800.0


def test_paper_target_has_only_the_estimate() -> None:
    t = load_target("paper-45nm")
    assert not t.is_hardware
    assert t.paper is not None and (t.paper.e_mac_pj, t.paper.e_ac_pj) == (4.6, 0.9)


def test_loihi2_marks_its_assumptions() -> None:
    t = load_target("loihi2")
    assert t.limits is not None and t.formats is not None
    assert t.limits.cores_available == 120
    assert t.formats.max_message_bits == 32
    assert t.is_assumed("costs.spike_out.energy_pj")
    assert t.is_assumed("limits.neurons_per_core")
    assert not t.is_assumed("limits.cores")


def _loihi1_dict() -> dict:
    return yaml.safe_load((Path(targets_pkg.__file__).parent / "loihi1.yaml").read_text())


def test_user_yaml_path_loads(tmp_path: Path) -> None:
    d = _loihi1_dict()
    d["name"] = "my-chip"
    d["limits"]["cores"] = 64
    p = tmp_path / "chip.yaml"
    p.write_text(yaml.safe_dump(d))
    t = load_target(str(p))
    assert t.name == "my-chip" and t.limits is not None and t.limits.cores == 64


def test_unknown_field_is_named(tmp_path: Path) -> None:
    d = _loihi1_dict()
    d["costs"]["synaptic_op_dense"]["energy_nj"] = 1.0
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(d))
    with pytest.raises(SnnccError) as e:
        load_target(str(p))
    assert e.value.code == "SNN-TGT001"
    assert "costs.synaptic_op_dense.energy_nj" in str(e.value)


def test_bad_value_is_named() -> None:
    d = _loihi1_dict()
    d["limits"]["neurons_per_core"] = -5
    with pytest.raises(SnnccError) as e:
        parse_target(yaml.safe_dump(d))
    assert e.value.code == "SNN-TGT001" and "limits.neurons_per_core" in str(e.value)


def test_missing_field_is_named() -> None:
    d = _loihi1_dict()
    del d["costs"]["spike_out"]
    with pytest.raises(SnnccError) as e:
        parse_target(yaml.safe_dump(d))
    assert "costs.spike_out" in str(e.value) and "missing" in str(e.value)


def test_assumption_must_name_a_field() -> None:
    d = _loihi1_dict()
    d["assumptions"] = {"costs.no_such_cost": "why"}
    with pytest.raises(SnnccError) as e:
        parse_target(yaml.safe_dump(d))
    assert "costs.no_such_cost" in str(e.value)


def test_partial_hardware_target_is_rejected() -> None:
    d = _loihi1_dict()
    del d["costs"]
    with pytest.raises(SnnccError, match="formats, limits and costs"):
        parse_target(yaml.safe_dump(d))


def test_malformed_yaml_reports_line() -> None:
    with pytest.raises(SnnccError) as e:
        parse_target("name: x\ncosts: [1, 2\n")
    assert e.value.code == "SNN-TGT001" and "line" in str(e.value)


def test_non_mapping_yaml_is_rejected() -> None:
    with pytest.raises(SnnccError, match="mapping"):
        parse_target("- just\n- a list\n")


def test_unknown_name_lists_builtins() -> None:
    with pytest.raises(SnnccError) as e:
        load_target("loihi3")
    assert e.value.code == "SNN-TGT002"
    for name in BUILTINS:
        assert name in str(e.value)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SnnccError) as e:
        load_target(str(tmp_path / "nope.yaml"))
    assert e.value.code == "SNN-TGT003"


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_an_infinite_or_nan_cost_is_named(value: float) -> None:
    """inf would make every latency nan and --json invalid (a bare NaN): refused up front."""
    d = _loihi1_dict()
    d["costs"]["synaptic_op_dense"]["energy_pj"] = value
    with pytest.raises(SnnccError) as e:
        parse_target(yaml.safe_dump(d))
    assert e.value.code == "SNN-TGT001" and "costs.synaptic_op_dense.energy_pj" in str(e.value)


def test_json_output_never_holds_a_bare_nan() -> None:
    import json

    from snncc.cli.render import dumps_json

    text = dumps_json({"latency": float("nan"), "per_step": [1.0, float("inf")]})
    assert json.loads(text) == {"latency": None, "per_step": [1.0, None]}
