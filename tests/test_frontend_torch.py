"""The torch frontend: traced graphs compute what PyTorch computes, and
unsupported code gets a diagnostic naming the module."""

from __future__ import annotations

import pytest
import torch
from snn_models import NEURON_VARIANTS, ConvNet, forward_reset, randomize_bn
from spikingjelly.clock_driven import neuron as cd
from torch import nn

from snncc.diagnostics import SnnccError
from snncc.frontends.torch import trace
from snncc.ir import run


@pytest.mark.parametrize("neuron,kwargs", NEURON_VARIANTS,
                         ids=[f"{n.__module__.split('.')[1]}.{n.__name__}-{i}"
                              for i, (n, _) in enumerate(NEURON_VARIANTS)])
def test_interpreter_matches_pytorch_for_each_neuron(neuron: type[nn.Module], kwargs: dict) -> None:
    torch.manual_seed(1)
    model = randomize_bn(ConvNet(neuron, **kwargs))
    x = torch.rand(4, 3, 1, 8, 8) * 3
    graph = trace(model, x)
    (out,), values = run(graph, [x], record=True)
    ref = forward_reset(model, x)
    assert torch.allclose(out, ref, atol=1e-6, rtol=0)
    # the spikes of the first neuron layer are exactly SpikingJelly's
    sn1 = next(n for n in graph if n.origin.module_path == "sn1")
    assert set(values[sn1.name].unique().tolist()) <= {0.0, 1.0}
    assert values[sn1.name].sum() > 0, "test input should make neurons fire"


def test_graph_records_module_paths_and_time_layout() -> None:
    model = randomize_bn(ConvNet())
    graph = trace(model, torch.zeros(4, 2, 1, 8, 8))
    paths = {n.origin.module_path for n in graph}
    assert {"conv1", "bn1", "sn1", "pool", "fc"} <= paths
    neuron = next(n for n in graph if n.op == "lif")
    assert neuron.type.shape == (4, 2, 8, 8, 8)
    assert graph.time_steps == 4


class _Unsupported(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 4), nn.GELU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _UsesSigmoid(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc(x))


class _Branches(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return x
        return -x


class _SingleStep(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.sn = cd.LIFNode()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sn(x)


@pytest.mark.parametrize("model,shape,code,needle", [
    (_Unsupported(), (4, 1, 4), "SNN-FE003", "body.1"),
    (_UsesSigmoid(), (4, 1, 4), "SNN-FE003", "sigmoid"),
    (_Branches(), (4, 1, 4), "SNN-FE001", "_Branches"),
    (_SingleStep(), (4, 1, 4), "SNN-FE002", "MultiStep"),
    (ConvNet(), (4, 1, 3, 8, 8), "SNN-FE004", "conv1"),
    (ConvNet(), (4, 8, 8), "SNN-FE004", "shape"),
])
def test_unsupported_code_gets_a_located_diagnostic(model: nn.Module, shape: tuple[int, ...],
                                                     code: str, needle: str) -> None:
    with pytest.raises(SnnccError) as info:
        trace(model.eval(), torch.zeros(shape))
    d = info.value.diagnostic
    assert d.code == code
    assert needle in d.render()
    assert d.hint


def test_an_exception_in_the_models_own_code_is_a_diagnostic_at_that_line() -> None:
    """SpikingJelly's own shape check refuses a 4-D input in multi-step mode: one
    located diagnostic, not the ValueError's traceback."""
    from spikingjelly.activation_based import functional, layer, neuron

    model = nn.Sequential(layer.Conv2d(3, 4, 3), neuron.LIFNode())
    functional.set_step_mode(model, "m")
    with pytest.raises(SnnccError) as info:
        trace(model.eval(), torch.zeros(2, 3, 8, 8))
    d = info.value.diagnostic
    assert d.code == "SNN-FE008" and "ValueError" in d.message
    assert d.location.file is not None and d.location.file.endswith("activation_based/layer.py")


class _BatchFirst(nn.Module):
    """Event-frame models take [B, T, 2, H, W] and move time first themselves
    (Spikingformer's and the Spike-driven Transformer's DVS code)."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.sn = cd.MultiStepLIFNode(v_threshold=0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(1, 0, 2, 3, 4) if self.how == "permute" else x.transpose(0, 1).contiguous()
        T, B = x.shape[:2]
        return self.sn(self.conv(x.flatten(0, 1)).reshape(T, B, 4, 6, 6)).mean(0)


@pytest.mark.parametrize("how", ["permute", "transpose"])
def test_batch_first_input_made_time_first_by_the_model(how: str) -> None:
    torch.manual_seed(0)
    model = _BatchFirst(how).eval()
    x = (torch.rand(2, 3, 2, 6, 6) > 0.6).float()  # [B=2, T=3, ...]
    graph = trace(model, x, input_kind="spikes")
    assert graph.time_steps == 3
    (out,), _ = run(graph, [x])
    assert torch.equal(out, forward_reset(model, x))
    neuron = next(n for n in graph if n.op == "lif")
    assert neuron.type.shape[:2] == (3, 2)
