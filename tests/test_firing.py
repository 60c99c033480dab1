"""``snncc.examples.firing``: thresholds that make every layer of a random model fire
within a chosen range (what the speed benchmarks rely on)."""

from __future__ import annotations

import pytest
import torch
from spikingjelly.clock_driven import functional
from torch import nn

from snncc.examples.firing import neuron_modules, set_firing_rates
from snncc.examples.spikingformer import lif


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(12, 20)
        self.lif1 = lif()
        self.fc2 = nn.Linear(20, 16)
        self.lif2 = lif()
        self.fc3 = nn.Linear(16, 8)
        self.lif3 = lif(v_threshold=0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lif3(self.fc3(self.lif2(self.fc2(self.lif1(self.fc1(x))))))


def _rates(model: nn.Module, x: torch.Tensor) -> list[float]:
    out: list[float] = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: out.append(float(o.float().mean())))
             for _, m in neuron_modules(model)]
    with torch.no_grad():
        functional.reset_net(model)  # also what every later forward does first
        model(x)
    for h in hooks:
        h.remove()
    return out


def test_every_layer_fires_within_the_range_and_keeps_its_threshold() -> None:
    torch.manual_seed(0)
    model = _Tiny().eval()
    x = torch.rand(6, 32, 12)
    before = _rates(model, x)
    assert not all(0.05 <= r <= 0.20 for r in before)  # random weights: degenerate rates
    found = set_firing_rates(model, x, low=0.05, high=0.20)
    assert [f.name for f in found] == ["lif1", "lif2", "lif3"]
    assert all(f.in_range for f in found)
    after = _rates(model, x)  # survives reset_net: the reset value is the new threshold
    assert after == pytest.approx([f.rate for f in found])
    assert all(0.05 <= r <= 0.20 for r in after)
    assert [m.v_threshold for _, m in neuron_modules(model)] == [f.threshold for f in found]


def test_a_layer_that_cannot_reach_the_range_is_reported() -> None:
    model = _Tiny().eval()
    with torch.no_grad():
        model.fc1.weight.zero_()
        model.fc1.bias.fill_(-1.0)  # lif1 never fires, whatever its threshold
    found = set_firing_rates(model, torch.rand(4, 8, 12))
    assert not found[0].in_range and found[0].rate == 0.0


def test_the_range_is_checked() -> None:
    with pytest.raises(ValueError, match="low < high"):
        set_firing_rates(_Tiny(), torch.rand(2, 1, 12), low=0.3, high=0.2)
