"""prune-timesteps removes only work whose result is known: outputs stay
bit-identical, and a bias that can still drive a neuron keeps its steps."""

from __future__ import annotations

import pytest
import torch
from spikingjelly.clock_driven.neuron import MultiStepLIFNode
from torch import nn

from snncc.diagnostics import SnnccError
from snncc.examples.spikformer import spikformer_digits
from snncc.frontends.torch import trace
from snncc.ir import run
from snncc.passes import CANONICALIZE, run_passes


class Mask(nn.Module):
    """A user's own mask: spikes times a constant 0/1 vector over time."""

    def __init__(self, mask: list[float]) -> None:
        super().__init__()
        self.register_buffer("m", torch.tensor(mask).reshape(-1, 1, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.m


class Chain(nn.Module):
    def __init__(self, mask1: list[float], mask2: list[float], bias2: float) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.sn1 = MultiStepLIFNode(tau=2.0)
        self.mask1 = Mask(mask1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        nn.init.constant_(self.conv2.bias, bias2)
        self.sn2 = MultiStepLIFNode(tau=2.0)
        self.mask2 = Mask(mask2)
        self.conv3 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.sn3 = MultiStepLIFNode(tau=2.0, v_reset=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        s = self.mask1(self.sn1(self.conv1(x.flatten(0, 1)).reshape(T, B, 4, H, W)))
        s = self.mask2(self.sn2(self.conv2(s.flatten(0, 1)).reshape(T, B, 4, H, W)))
        return self.sn3(self.conv3(s.flatten(0, 1)).reshape(T, B, 4, H, W)).mean(0)


def _pruned(model: nn.Module, T: int = 4):
    x = torch.rand(T, 3, 1, 6, 6) * 4
    g = run_passes(trace(model.eval(), x), CANONICALIZE).graph
    p = run_passes(g, ["prune-timesteps"]).graph
    _, full = run(g, [x], record=True)
    _, pruned = run(p, [x], record=True)
    users = p.users_map()
    for name in full:  # every value of every layer, bit for bit, as it leaves its layer:
        # a neuron's raw spikes at steps its own time mask drops are consumed by nobody
        if p.nodes[name].opdef.is_neuron and [u.op for u in users[name]] == ["time_mask"]:
            continue
        assert torch.equal(full[name], pruned[name]), name
    by_path = {n.origin.module_path: n.name for n in p}
    return p, p.meta["schedule"], by_path, full


def test_steps_after_a_masked_layer_are_pruned() -> None:
    p, sched, node, _ = _pruned(Chain([1, 1, 0, 0], [1, 1, 1, 1], 0.0))
    assert sched[node["conv2"]] == [0, 1]
    assert sched[node["sn2"]] == [0, 1]  # never fires again after step 1
    assert p.meta["timesteps"]["per_layer"]["sn1"] == [0, 1]
    assert p.meta["timesteps"]["synaptic_ops_after"] < p.meta["timesteps"]["synaptic_ops_before"]


def test_first_step_disabled_keeps_the_neuron_at_rest() -> None:
    _, sched, node, _ = _pruned(Chain([0, 1, 1, 1], [1, 1, 1, 1], 0.0))
    assert sched[node["conv2"]] == [1, 2, 3]
    assert sched[node["sn2"]] == [1, 2, 3]


def test_a_bias_that_can_fire_the_next_neuron_keeps_the_step() -> None:
    p, sched, node, full = _pruned(Chain([1, 0, 1, 0], [1, 1, 1, 1], 0.8))
    assert node["sn2"] not in sched  # the bias drives sn2 at masked steps: nothing pruned
    assert node["conv2"] in sched and sched[node["conv2"]] == [0, 2]  # no synaptic work though
    assert any("conv2 step 1" in k and "bias" in k for k in p.meta["timesteps"]["kept"])


def test_negative_bias_cannot_fire_so_downstream_is_pruned() -> None:
    p, sched, node, _ = _pruned(Chain([1, 1, 0, 0], [1, 1, 1, 1], -0.5))
    assert sched[node["conv3"]] == [0, 1]  # sn2 provably silent at steps 2, 3


def test_all_zero_mask_silences_the_rest() -> None:
    p, sched, node, full = _pruned(Chain([0, 0, 0, 0], [1, 1, 1, 1], 0.0))
    assert sched[node["conv2"]] == [] and sched[node["sn2"]] == [] and sched[node["conv3"]] == []
    assert p.meta["timesteps"]["per_layer"]["sn1"] == []
    assert p.meta["timesteps"]["per_layer_effective"]["sn2"] == []


def test_single_time_step() -> None:
    _, sched, node, _ = _pruned(Chain([0], [1], 0.0), T=1)
    assert sched[node["conv2"]] == []


def test_masks_on_the_attention_path() -> None:
    torch.manual_seed(0)
    model = spikformer_digits().eval()
    attn = model.block[0].attn
    attn.q_lif = nn.Sequential(attn.q_lif, Mask([1, 0, 1, 0]))
    attn.k_lif = nn.Sequential(attn.k_lif, Mask([1, 1, 0, 0]))
    p, sched, node, _ = _pruned(model)
    matmul = next(n for n in p if n.op == "matmul" and "attn" in n.origin.module_path)
    assert sched[matmul.name] == [0]  # q and k are both active only at step 0


@pytest.mark.parametrize("mask,needle", [([1, 0, 1], "T=4"), ([1, 0.5, 1, 0], "not binary")])
def test_bad_masks_are_clear_errors(mask: list[float], needle: str) -> None:
    with pytest.raises(SnnccError) as info:
        trace(Chain(mask, [1, 1, 1, 1], 0.0).eval(), torch.zeros(4, 1, 1, 6, 6))
    assert info.value.code == "SNN-FE006" and needle in str(info.value)
    assert info.value.diagnostic.location.module_path == "mask1"


def test_mask_on_a_non_neuron_output_is_refused() -> None:
    class Bad(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.mask = Mask([1, 0, 1, 0])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            T, B = x.shape[:2]
            return self.mask(self.conv(x.flatten(0, 1)).reshape(T, B, 2, 4, 4))

    with pytest.raises(SnnccError, match="not to a neuron's spikes"):
        trace(Bad(), torch.zeros(4, 1, 1, 6, 6))
