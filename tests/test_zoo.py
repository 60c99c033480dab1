"""SpikingJelly 0.0.0.0.14's own model zoo through snncc, judged by code we did not
write: the models' own PyTorch forward (for the interpreter) and an oracle that
watches that forward run (for the spike-only check; see `oracle.py`).

Each model (see `zoo.py`) is built once per module; the tests per model are: the
oracle saw every layer fire and finds what the papers say; snncc traces it and its
interpreter computes the same spikes and outputs; snncc's verdict for every weight
op equals the oracle's; acsim compiles it or refuses with a mapping error.
"""

from __future__ import annotations

import pytest
import torch
from oracle import NEURONS, RANK, OracleReport, spike_only_oracle
from torch import nn
from zoo import ZOO, T, ZooCase, forward

import snncc
from snncc.diagnostics import SnnccError
from snncc.ir import interpreter

torch.set_num_threads(2)

WEIGHT_OPS = {"conv1d", "conv2d", "linear", "matmul"}


@pytest.fixture(scope="module", params=list(ZOO))
def case(request: pytest.FixtureRequest) -> ZooCase:
    return ZOO[request.param]()


def _oracle(case: ZooCase) -> OracleReport:
    return case.once("oracle", lambda: spike_only_oracle(case.model, case.inputs))


def _graph(case: ZooCase) -> snncc.Graph:
    kwargs = {} if case.input_kind == "analog" else {"input_kind": case.input_kind}
    return case.once("graph", lambda: snncc.trace(case.model, case.example, **kwargs))


def _snncc_classes(case: ZooCase) -> dict[str, str]:
    """snncc's verdict per module path for the weight ops (the worst, if several)."""
    report = case.once("check", lambda: snncc.check_spike_only(_graph(case)).report)
    out: dict[str, str] = {}
    for f in report.findings:
        if f.op in WEIGHT_OPS and RANK[f.cls.value] >= RANK.get(out.get(f.module_path, "AC"), 0):
            out[f.module_path] = f.cls.value
    return out


def _weight_modules(model: nn.Module) -> set[str]:
    return {p for p, m in model.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))}


def test_oracle_sees_every_layer_fire(case: ZooCase) -> None:
    r = _oracle(case)
    neurons = {p for p, m in case.model.named_modules() if isinstance(m, NEURONS)}
    assert neurons == set(r.firing) and len(neurons) >= 4
    silent_or_saturated = {p: v for p, v in r.firing.items() if not 0.02 < v < 0.5}
    assert not silent_or_saturated, f"calibration failed: firing rates {silent_or_saturated}"
    assert r.ones_seen > 0
    # every conv/linear of the model was seen and judged
    assert set(r.classes) == _weight_modules(case.model)


def test_oracle_finds_what_the_papers_say(case: ZooCase) -> None:
    r = _oracle(case)
    assert r.paths("VIOLATION") == case.violations
    assert r.paths("ENCODING_MAC") == case.encoding
    assert r.paths("READOUT_MAC") == case.readout
    if "sew_resnet18[ADD" in case.name:  # the SEW paper: ADD makes integer inputs
        assert {"layer1.1.conv1", "layer4.1.conv1", "layer2.0.downsample.0"} <= r.paths("VIOLATION")
        assert r.classes["layer1.0.conv1"] == "AC" and r.classes["layer1.0.conv2"] == "AC"
    if "resnet" in case.name:  # fc after AdaptiveAvgPool2d is the readout
        assert r.classes["fc"] == "READOUT_MAC" and r.classes["conv1"] == "ENCODING_MAC"
        if "ADD" not in case.name:
            assert not r.paths("VIOLATION")
    if case.input_kind == "spikes":  # event frames: the first conv accumulates
        assert r.classes["conv1"] == "AC"


def test_interpreter_equals_the_models_own_forward(case: ZooCase) -> None:
    g = _graph(case)
    assert g.time_steps == T
    ref, ref_spikes = forward(case.model, case.example)
    (out,), values = interpreter.run(g, [case.example], record=True)
    assert out.shape == ref.shape
    if bool(((ref == 0) | (ref == 1)).all()):
        assert torch.equal(out, ref)
    else:
        assert torch.allclose(out, ref, atol=1e-5, rtol=0), (out - ref).abs().max()
    spikes = {n.origin.module_path: values[n.name] for n in g if n.opdef.is_neuron}
    assert set(spikes) == set(ref_spikes)
    for path, s in ref_spikes.items():
        assert spikes[path].numel() == s.numel(), path
        mismatched = int((spikes[path].reshape(s.shape) != s).sum())
        assert mismatched == 0, f"{path}: {mismatched} of {s.numel()} spikes differ"


def test_check_spike_only_agrees_with_the_oracle(case: ZooCase) -> None:
    expected = _oracle(case).classes
    got = _snncc_classes(case)
    diff = {p: (got.get(p), expected.get(p)) for p in set(got) | set(expected)
            if got.get(p) != expected.get(p)}
    assert not diff, f"(snncc, oracle) per module path: {diff}"


def test_acsim_compiles_or_refuses_with_a_mapping_error(case: ZooCase) -> None:
    try:
        if case.input_kind == "analog":
            snncc.compile(case.model, case.example, target="acsim")
        else:
            snncc.compile(_graph(case), target="acsim")
    except SnnccError as e:
        assert e.code.startswith("SNN-MAP"), f"{e.code}: {e}"
