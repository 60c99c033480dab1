"""hoist-time-repeat: an image encoded once and then repeated over T is repeated first,
with identical outputs, so the encoding conv reads the analog input (ENCODING_MAC)."""

from __future__ import annotations

import torch
from snn_models import forward_reset, randomize_bn
from spikingjelly.clock_driven.neuron import MultiStepLIFNode
from torch import nn

import snncc
from snncc.ir import run
from snncc.ir.types import Layout


class EncodeThenRepeat(nn.Module):  # as SpikingJelly's MultiStepCIFAR10Net.forward(x, T)
    def __init__(self, T: int = 3) -> None:
        super().__init__()
        self.T = T
        self.conv = nn.Conv2d(2, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.sn = MultiStepLIFNode(v_threshold=0.3)
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        x.unsqueeze_(0)
        x = x.repeat(self.T, 1, 1, 1, 1)
        return self.fc(self.sn(x).flatten(2)).mean(0)


def test_repeat_moves_to_the_input_and_nothing_changes() -> None:
    torch.manual_seed(0)
    model = randomize_bn(EncodeThenRepeat())
    x = torch.rand(2, 2, 6, 6)
    result = snncc.check_spike_only(model, x)
    conv = next(n for n in result.graph if n.op == "conv2d")
    assert result.graph.nodes[conv.inputs[0]].type.layout == Layout.TIME
    (out,), _ = run(result.graph, [x])
    assert torch.allclose(out, forward_reset(model, x), atol=1e-5)
    classes = {f.module_path: f.cls.value for f in result.report.findings}
    assert classes["conv"] == "ENCODING_MAC" and classes["fc"] == "AC"
