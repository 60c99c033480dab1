"""Small spiking models for tests: each exercises one piece of the frontend."""

from __future__ import annotations

import torch
from spikingjelly.activation_based import neuron as ab
from spikingjelly.clock_driven import functional
from spikingjelly.clock_driven import neuron as cd
from torch import nn


def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial statistics, so folding them is really tested."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            c = m.num_features
            m.running_mean.copy_(torch.rand(c, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(c, generator=g) * 0.6 - 0.1)
    return model.eval()


class ConvNet(nn.Module):
    """conv -> BN -> neuron -> maxpool -> conv -> BN -> neuron -> avgpool -> flatten -> linear."""

    def __init__(self, neuron: type[nn.Module] | None = None, **neuron_kwargs: object) -> None:
        super().__init__()
        make = neuron or cd.MultiStepLIFNode
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.sn1 = make(**neuron_kwargs)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.sn2 = make(**neuron_kwargs)
        self.avg = nn.AvgPool2d(2)
        self.flat = nn.Flatten(2)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(8 * 2 * 2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        y = self.bn1(self.conv1(x.flatten(0, 1))).reshape(T, B, 8, 8, 8)
        y = self.pool(self.sn1(y).flatten(0, 1))
        y = self.bn2(self.conv2(y)).reshape(T, B, 8, 4, 4)
        y = self.avg(self.sn2(y).flatten(0, 1)).reshape(T, B, 8, 2, 2)
        return self.fc(self.drop(self.flat(y))).mean(0)


class SEWBlock(nn.Module):
    """SEW-ResNet connections: ADD gives counts, AND and IAND stay binary."""

    def __init__(self, connect: str) -> None:
        super().__init__()
        self.connect = connect
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.sn = cd.MultiStepLIFNode(tau=2.0)
        self.conv_in = nn.Conv2d(1, 4, 3, padding=1)
        self.sn_in = cd.MultiStepLIFNode(tau=2.0)
        self.conv_next = nn.Conv2d(4, 4, 3, padding=1)
        self.sn_next = cd.MultiStepLIFNode(tau=2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        s = self.sn_in(self.conv_in(x.flatten(0, 1)).reshape(T, B, 4, H, W))
        y = self.sn(self.conv(s.flatten(0, 1)).reshape(T, B, 4, H, W))
        if self.connect == "ADD":
            z = s + y
        elif self.connect == "AND":
            z = s * y
        else:  # IAND
            z = s * (1.0 - y)
        out = self.sn_next(self.conv_next(z.flatten(0, 1)).reshape(T, B, 4, H, W))
        return out.mean(0)


def forward_reset(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    functional.reset_net(model)
    with torch.no_grad():
        y = model(x)
    functional.reset_net(model)
    return y


NEURON_VARIANTS: list[tuple[type[nn.Module], dict[str, object]]] = [
    (cd.MultiStepLIFNode, {"tau": 2.0}),
    (cd.MultiStepLIFNode, {"tau": 3.0, "decay_input": False}),
    (cd.MultiStepLIFNode, {"tau": 2.0, "v_reset": None}),
    (cd.MultiStepLIFNode, {"tau": 2.0, "v_reset": -0.2, "v_threshold": 0.8}),
    (cd.MultiStepIFNode, {}),
    (cd.MultiStepIFNode, {"v_reset": None}),
    (cd.MultiStepParametricLIFNode, {"init_tau": 2.5}),
    (ab.LIFNode, {"tau": 2.0, "step_mode": "m"}),
    (ab.LIFNode, {"tau": 2.0, "step_mode": "m", "decay_input": False, "v_reset": None}),
    (ab.IFNode, {"step_mode": "m"}),
    (ab.ParametricLIFNode, {"init_tau": 2.0, "step_mode": "m"}),
]
