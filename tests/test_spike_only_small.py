"""The spike-only check on hand-built models whose answer is known."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from snn_models import ConvNet, SEWBlock, randomize_bn

from snncc.analysis.observe import observe_ranges
from snncc.api import check_spike_only
from snncc.frontends.torch import trace


def _by_module(report):
    return {f.module_path: f for f in report.findings}


@pytest.mark.parametrize("connect,expected", [("ADD", "VIOLATION"), ("AND", "AC"), ("IAND", "AC")])
def test_sew_connections(connect: str, expected: str) -> None:
    x = torch.rand(4, 2, 1, 6, 6)
    result = check_spike_only(SEWBlock(connect).eval(), x)
    f = _by_module(result.report)["conv_next"]
    assert f.cls.value == expected
    assert _by_module(result.report)["conv_in"].cls.value == "ENCODING_MAC"
    if connect == "ADD":
        assert f.operand_ranges == ["[0, 2]"]
        assert "add" in f.message and f.provenance
        assert "Spikingformer" in (f.hint or "")
    else:
        mul = [g for g in result.report.findings if g.op == "mul"]
        assert mul and all(g.cls.value == "AC" for g in mul)
    # the analysis agrees with real data: SPIKE values are binary, ranges hold
    observed = observe_ranges(result.graph, [x * 3])
    assert not observed.mismatches


def test_readout_after_temporal_mean_is_readout_mac_not_violation() -> None:
    result = check_spike_only(randomize_bn(ConvNet()), torch.rand(4, 2, 1, 8, 8))
    fc = _by_module(result.report)["fc"]
    # ConvNet's fc sees avg-pooled spikes per step, before the mean over time, and only
    # the outputs come after it: it is the classifier head (READOUT), not a violation
    assert fc.cls.value == "READOUT_MAC"
    assert "averaged spikes" in fc.message and "avgpool" in fc.message
    assert result.report.summary()["ENCODING_MAC"] == 1


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(["add", "mul", "iand", "sub", "rsub"]), min_size=1, max_size=5),
       st.integers(0, 2**31 - 1))
def test_value_ranges_contain_every_observed_value(ops: list[str], seed: int) -> None:
    """Interval rules are sound: random chains of spike arithmetic stay in range."""

    class Chain(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            from spikingjelly.clock_driven.neuron import MultiStepIFNode

            self.a = MultiStepIFNode(v_threshold=0.5)
            self.b = MultiStepIFNode(v_threshold=0.5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            s, t = self.a(x), self.b(x * 0.5)
            y = s
            for op in ops:
                if op == "add":
                    y = y + t
                elif op == "mul":
                    y = y * t
                elif op == "iand":
                    y = y * (1 - t)
                elif op == "sub":
                    y = y - t
                else:
                    y = 1 - y
            return y

    g = torch.Generator().manual_seed(seed)
    x = torch.rand(3, 2, 5, generator=g) * 2
    graph = trace(Chain(), x)
    assert not observe_ranges(graph, [x]).mismatches
