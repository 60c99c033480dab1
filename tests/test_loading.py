"""Model files load without running their code; anything else is refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from spikingjelly.activation_based import neuron as ab
from spikingjelly.clock_driven import neuron as cd
from torch import nn

from snncc.diagnostics import SnnccError
from snncc.loading import load_model, pickle_globals


class Outsider(nn.Module):
    """A user's class outside the allowlist (this test module)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def factory() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), cd.MultiStepLIFNode(tau=2.0, backend="torch"))


def test_spikingjelly_modules_round_trip(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(3, 4), cd.MultiStepLIFNode(tau=2.0, detach_reset=True),
                          nn.Linear(4, 4), ab.LIFNode(step_mode="m"),
                          cd.MultiStepParametricLIFNode(), cd.MultiStepIFNode()).eval()
    torch.save(model, tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt").module
    x = torch.rand(4, 2, 3) * 3
    assert torch.equal(loaded(x), model(x))


def test_dict_with_example_input(tmp_path: Path) -> None:
    torch.save({"model": factory(), "example_input": torch.zeros(4, 1, 3)}, tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    assert loaded.example_input is not None and loaded.example_input.shape == (4, 1, 3)


def test_state_dict_needs_and_uses_arch(tmp_path: Path) -> None:
    model = factory()
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    with pytest.raises(SnnccError) as info:
        load_model(tmp_path / "sd.pt")
    assert info.value.code == "SNN-LOAD004" and "--arch" in (info.value.diagnostic.hint or "")
    loaded = load_model(tmp_path / "sd.pt", arch="test_loading:factory").module
    assert torch.equal(loaded[0].weight, model[0].weight)
    with pytest.raises(SnnccError) as info:
        load_model(tmp_path / "sd.pt", arch="test_loading:Outsider")
    assert info.value.code == "SNN-LOAD006"
    with pytest.raises(SnnccError) as info:
        load_model(tmp_path / "sd.pt", arch="no_such_module:f")
    assert info.value.code == "SNN-LOAD005"


def test_class_outside_the_allowlist_is_named_and_can_be_allowed(tmp_path: Path) -> None:
    torch.save(Outsider(), tmp_path / "m.pt")
    with pytest.raises(SnnccError) as info:
        load_model(tmp_path / "m.pt")
    assert info.value.code == "SNN-LOAD003"
    assert "test_loading.Outsider" in str(info.value) and "--allow test_loading" in str(info.value)
    assert isinstance(load_model(tmp_path / "m.pt", allow=["test_loading"]).module, Outsider)
    assert isinstance(load_model(tmp_path / "m.pt", trust=True).module, Outsider)


def test_globals_are_read_without_unpickling(tmp_path: Path) -> None:
    import zipfile

    torch.save(factory(), tmp_path / "m.pt")
    with zipfile.ZipFile(tmp_path / "m.pt") as z:
        data = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    names = pickle_globals(data)
    assert "spikingjelly.clock_driven.neuron.MultiStepLIFNode" in names
    assert "torch.nn.modules.linear.Linear" in names
