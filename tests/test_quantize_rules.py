"""The quantizer meets a neuron op it has no rule for: a diagnostic (SNN-Q008) naming
the op and pointing at the node, never an assertion; its rules are a table by op name."""

from __future__ import annotations

import numpy as np
import pytest

import snncc
from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph, Origin
from snncc.ir.op import OPS
from snncc.ir.ops.io import InputAttrs
from snncc.ir.ops.neurons import IF, LIFAttrs, NeuronAttrs
from snncc.ir.ops.weights import ConvAttrs
from snncc.passes.quantize import quantize
from snncc.passes.quantize.scales import NEURON_RULES

T, B = 3, 2


class Quadratic(IF):
    """A user's own neuron (here with IF's arithmetic), registered under its own name."""

    name = "qif"


def _graph(neuron: str, attrs: NeuronAttrs) -> Graph:
    g = Graph(time_steps=T)
    x = g.add("input", [], InputAttrs(index=0, shape=(T, B, 4, 6, 6), spikes=True))
    g.inputs.append(x.name)
    w = (np.random.default_rng(0).standard_normal((3, 4, 3, 3)) * 0.5).astype(np.float32)
    conv = ConvAttrs(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
    c = g.add("conv2d", [x.name], conv, {"weight": w}, Origin("conv"))
    g.outputs.append(g.add(neuron, [c.name], attrs, origin=Origin("sn")).name)
    return g


def _refused(g: Graph, op: str) -> None:
    for compile_it in (lambda: quantize(g, "loihi2"), lambda: snncc.compile(g, target="acsim")):
        with pytest.raises(SnnccError) as info:
            compile_it()
        d = info.value.diagnostic
        assert d.code == "SNN-Q008"
        assert f"no quantization rule for op {op}" in d.message
        assert d.location.node == op and d.location.module_path == "sn" and d.hint


def test_a_registered_neuron_without_a_rule_is_a_diagnostic(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(OPS, "qif", Quadratic)
    _refused(_graph("qif", NeuronAttrs(v_threshold=0.5)), "qif")


def test_the_rules_are_a_table_by_op_name(monkeypatch: pytest.MonkeyPatch) -> None:
    g = _graph("lif", LIFAttrs(tau=2.0, v_threshold=0.3))
    assert quantize(g, "loihi2").neurons  # quantizes with its rule
    monkeypatch.delitem(NEURON_RULES, "lif")
    _refused(g, "lif")
    # a rule added for the user's op is all it takes
    monkeypatch.setitem(OPS, "qif", Quadratic)
    monkeypatch.setitem(NEURON_RULES, "qif", NEURON_RULES["if"])
    assert quantize(_graph("qif", NeuronAttrs(v_threshold=0.5)), "loihi2").neurons
