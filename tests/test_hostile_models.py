"""Models with impossible contents: one line and exit 2 from compile (any target),
naming the module; never an internal error or a compiled model of NaNs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from spikingjelly.clock_driven.layer import SeqToANNContainer
from spikingjelly.clock_driven.neuron import MultiStepLIFNode
from torch import nn

from snncc.cli import main


def _net() -> nn.Sequential:
    """[T, B, 16] -> Linear+BN (per step, as SpikingJelly's container runs them) -> LIF -> Linear."""
    torch.manual_seed(0)
    return nn.Sequential(SeqToANNContainer(nn.Linear(16, 8), nn.BatchNorm1d(8)),
                         MultiStepLIFNode(), nn.Linear(8, 3)).eval()


def _nan_weight(m: nn.Sequential) -> None:
    m[0][0].weight.data[0, 0] = float("nan")


def _inf_bias(m: nn.Sequential) -> None:
    m[2].bias.data[1] = float("inf")


def _negative_variance(m: nn.Sequential) -> None:
    m[0][1].running_var.data[0] = -1.0


def _nan_threshold(m: nn.Sequential) -> None:
    m[1].v_threshold = float("nan")


def _tau_zero(m: nn.Sequential) -> None:
    m[1].tau = 0.0


CASES: list[tuple[str, Callable[[nn.Sequential], None], str, str]] = [
    ("nan weight", _nan_weight, "SNN-FE009", "module '0.0'"),
    ("inf bias", _inf_bias, "SNN-FE009", "module '2'"),
    ("negative BN variance", _negative_variance, "SNN-FE009", "module '0.1'"),
    ("NaN threshold", _nan_threshold, "SNN-FE009", "v_threshold"),
    ("tau 0", _tau_zero, "SNN-FE009", "tau"),
]


@pytest.mark.parametrize("target", ["ir", "acsim"])
@pytest.mark.parametrize("name,damage,code,where", CASES, ids=[c[0] for c in CASES])
def test_impossible_values_are_one_line(tmp_path: Path, target: str, name: str,
                                        damage: Callable[[nn.Sequential], None], code: str,
                                        where: str) -> None:
    model = _net()
    damage(model)
    torch.save(model, tmp_path / "m.pt")
    r = CliRunner().invoke(main, ["compile", str(tmp_path / "m.pt"), "--input-shape", "4,1,16",
                                  "--target", target, "-o", str(tmp_path / "out")])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and code in lines[0] and where in lines[0], r.output
    assert not (tmp_path / "out").exists()


def test_a_zero_size_layer_and_a_model_without_neurons(tmp_path: Path) -> None:
    empty = nn.Sequential(nn.Linear(16, 0), MultiStepLIFNode()).eval()
    no_neuron = nn.Sequential(nn.Linear(16, 3)).eval()
    for model, target, code in ((empty, "ir", "SNN-FE004"), (no_neuron, "acsim", "SNN-Q010")):
        torch.save(model, tmp_path / "m.pt")
        r = CliRunner().invoke(main, ["compile", str(tmp_path / "m.pt"), "--input-shape",
                                      "4,1,16", "--target", target, "-o", str(tmp_path / "o")])
        assert r.exit_code == 2 and code in r.output, r.output
