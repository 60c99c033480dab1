"""fold-batchnorm-forward: a BN after a pad (or pool) folds into the unpadded weight op
after it, exactly; a padded consumer keeps its BN (the border would be wrong)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from snn_models import randomize_bn
from torch import nn

from snncc.frontends.torch import trace
from snncc.ir import run
from snncc.passes import get_pass


class PadBnConv(nn.Module):
    def __init__(self, groups: int, padding: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(4)
        self.conv = nn.Conv2d(4, 6, 3, groups=groups, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.bn(F.pad(x, [1, 1, 1, 1])))


class PoolBnLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bn(x.mean((-1, -2))))


@pytest.mark.parametrize("model,folded", [
    (PadBnConv(groups=1, padding=0), True),
    (PadBnConv(groups=2, padding=0), True),
    (PoolBnLinear(), True),
    (PadBnConv(groups=1, padding=1), False),
], ids=["conv", "grouped conv", "linear", "padded conv keeps its BN"])
def test_folded_graph_computes_what_the_model_computes(model: nn.Module, folded: bool) -> None:
    torch.manual_seed(0)
    model = randomize_bn(model)
    x = torch.rand(6, 4, 6, 6)
    g = trace(model, x)
    after = get_pass("fold-batchnorm-forward")(g.copy()).graph
    assert any(n.op == "batchnorm" for n in after) != folded
    (ref,), _ = run(g, [x])
    (out,), _ = run(after, [x])
    assert torch.allclose(out, model(x), atol=1e-5) and torch.allclose(out, ref, atol=1e-5)
