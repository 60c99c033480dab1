"""The lowering: relays and splits change where sums are computed, never their values.

The oracle is the unsplit program of the same quantized graph (acsim, whose
own bit-exactness against Lava and PyTorch is tested elsewhere): random DAGs
of residual branches of different depth, attention and fan-in above a small
limit are lowered twice, with the limit and without, and run on the same
inputs; outputs, every neuron's spikes and the papers' SOPs must be equal.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import snncc
from snncc.backends.acsim.datapath import graded_payload, join_parts
from snncc.backends.acsim.program import Program
from snncc.backends.acsim.simulator import run_quantized
from snncc.diagnostics import SnnccError
from snncc.examples.spikingformer import MLP, SpikingSelfAttention, lif
from snncc.lower import ChipLayer, LayerProgram, lower, to_text, verify
from snncc.passes.map_cores import map_to_cores
from snncc.passes.quantize import quantize
from snncc.targets import load_target

UNLIMITED = 10**9


class _Conv2(nn.Module):
    """A residual branch two synapse layers deep: LIF -> conv -> BN -> LIF -> conv -> BN."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.lif1, self.lif2 = lif(0.5), lif(0.5)
        self.conv1, self.conv2 = nn.Conv1d(dim, 2 * dim, 1), nn.Conv1d(2 * dim, dim, 1)
        self.bn1, self.bn2 = nn.BatchNorm1d(2 * dim), nn.BatchNorm1d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, N = x.shape
        y = self.bn1(self.conv1(self.lif1(x).flatten(0, 1))).reshape(T, B, 2 * C, N)
        return self.bn2(self.conv2(self.lif2(y).flatten(0, 1))).reshape(T, B, C, N)


class _RandomNet(nn.Module):
    """An encoding conv, then residual branches (attention, MLP, a two-deep conv), some
    added to the stream and some skipping a branch (a long residual), then a head."""

    def __init__(self, dim: int, heads: int, branches: list[tuple[str, bool]]) -> None:
        super().__init__()
        self.enc = nn.Conv1d(3, dim, 1)
        self.enc_bn = nn.BatchNorm1d(dim)
        make = {"attn": lambda: SpikingSelfAttention(dim, heads), "mlp": lambda: MLP(dim, 2 * dim),
                "conv2": lambda: _Conv2(dim)}
        self.branches = nn.ModuleList(make[kind]() for kind, _ in branches)
        self.long = [skip for _, skip in branches]
        self.head_lif = lif(0.5)
        self.head = nn.Linear(dim, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, _, N = x.shape
        x = self.enc_bn(self.enc(x.flatten(0, 1))).reshape(T, B, -1, N)
        before = x
        for branch, long in zip(self.branches, self.long):
            y = x + branch(x)
            x, before = (y + before, x) if long else (y, x)
        s = self.head_lif(x).flatten(3).mean(3)
        return self.head(s.mean(0))


def _randomize(model: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.2)
    return model.eval()


def _run(qg: snncc.passes.quantize.QuantizedGraph, lowered: LayerProgram, x: torch.Tensor
         ):  # type: ignore[no-untyped-def]
    return run_quantized(Program(qg, lowered), x)


def _assert_same(a, b) -> None:  # type: ignore[no-untyped-def]
    for oa, ob in zip(a.outputs, b.outputs):
        assert np.array_equal(oa, ob)
    assert a.spikes.keys() == b.spikes.keys()
    for k in a.spikes:
        assert np.array_equal(a.spikes[k], b.spikes[k]), k
    assert a.counts.paper_sops() == b.counts.paper_sops()


def _unsplittable(layer: ChipLayer, lowered: LayerProgram) -> bool:
    """Every input of an over-limit layer is one the lowering cannot split further."""
    return all(not s.op or s.op not in lowered.weights or s.op in lowered.splits
               or s.kind == "graded" for s in layer.inputs)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dim=st.sampled_from([8, 12, 16]), heads=st.sampled_from([1, 2]),
       tokens=st.sampled_from([4, 6]),
       branches=st.lists(st.tuples(st.sampled_from(["attn", "mlp", "conv2"]), st.booleans()),
                         min_size=1, max_size=4),
       limit=st.sampled_from([7, 12, 20]), seed=st.integers(0, 10_000))
def test_split_program_equals_the_unsplit_one(dim: int, heads: int, tokens: int,
                                               branches: list[tuple[str, bool]], limit: int,
                                               seed: int) -> None:
    torch.manual_seed(seed)
    model = _randomize(_RandomNet(dim, heads, branches), seed)
    x = torch.rand(3, 4, 3, tokens)
    graph = snncc.compile(model, x[:, :1], target="ir").graph
    qg = quantize(graph, "loihi2")
    whole, split = lower(qg, fan_in_limit=UNLIMITED), lower(qg, fan_in_limit=limit)
    verify(whole)
    verify(split)
    assert not whole.splits and not whole.relays
    if max(layer.fan_in for layer in whole.layers) > limit:
        assert split.splits or split.relays  # the limit was met by lowering, not ignored
    for layer in split.layers:
        assert layer.fan_in <= limit or _unsplittable(layer, split), to_text(split)
    a, b = _run(qg, whole, x), _run(qg, split, x)
    assert a.wraps == b.wraps == 0
    _assert_same(a, b)


def test_relays_bound_a_stream_readers_fan_in_by_its_width() -> None:
    """Four residual blocks: without relays the last LIF reads every projection before
    it; with relays each reader of the stream takes one graded synapse per element."""
    torch.manual_seed(0)
    model = _randomize(_RandomNet(8, 1, [("mlp", False)] * 4), 0)
    x = torch.rand(3, 2, 3, 4)
    qg = quantize(snncc.compile(model, x[:, :1], target="ir").graph, "loihi2")
    whole, relayed = lower(qg, fan_in_limit=UNLIMITED), lower(qg, fan_in_limit=20)
    head = whole.layer("head_lif")
    assert head.fan_in == 1 + 4 * 16  # the encoding's current and four 16-wide projections
    # the last sum has one reader, so it stays a current: the head reads the relayed
    # stream before it (one synapse per element) and the last projection
    assert relayed.relays == ["add", "add_1", "add_2"]
    assert relayed.layer("head_lif").fan_in == 1 + 16
    assert all(relayed.layer(r).kind == "relay" for r in relayed.relays)
    assert relayed.depth > whole.depth  # a relay is one more synapse layer on Lava
    _assert_same(_run(qg, whole, x), _run(qg, relayed, x))
    text = to_text(relayed)
    assert "relay %" in text and "via identity graded" in text


def test_a_payload_that_leaves_24_bits_is_counted_not_hidden() -> None:
    """A binary-spike part never leaves the payload (fan-in 4096 x 8-bit weights < 2**23);
    a graded one can, and then the run counts it as a wrap instead of hiding it."""
    sent, wraps = graded_payload(np.array([5, -(1 << 23), (1 << 23) - 1, 1 << 23], np.int32))
    assert wraps == 1 and sent.tolist() == [5, -(1 << 23), (1 << 23) - 1, -(1 << 23)]
    parts = [np.array([7, -9], np.int32), np.array([100, 3], np.int32)]
    assert join_parts(parts, conv=False, weight_exp=-2).tolist() == [107 >> 2, -6 >> 2]
    assert join_parts(parts, conv=False, weight_exp=3).tolist() == [107 << 3, -6 << 3]


# ------------------------------------------------------------- the papers' models ----


def _firing(model: nn.Module, x: torch.Tensor) -> nn.Module:
    from snncc.examples.firing import set_firing_rates

    set_firing_rates(model, x)
    return model


def _spikingformer() -> nn.Module:
    from snncc.examples.spikingformer import spikingformer_cifar_4_384
    return spikingformer_cifar_4_384()


def _spikformer() -> nn.Module:
    from snncc.examples.spikformer import spikformer_cifar_4_384
    return spikformer_cifar_4_384()


def _resnet18() -> nn.Module:
    from spikingjelly.activation_based import functional, neuron
    from spikingjelly.activation_based.model import spiking_resnet

    m = spiking_resnet.spiking_resnet18(num_classes=10, spiking_neuron=neuron.LIFNode,
                                        detach_reset=True)
    functional.set_step_mode(m, "m")
    return m


@pytest.mark.parametrize("factory", [_spikingformer, _spikformer, _resnet18],
                         ids=["spikingformer-4-384", "spikformer-4-384", "sj-spiking_resnet18"])
def test_the_papers_models_fit_loihi2_and_run(factory) -> None:  # type: ignore[no-untyped-def]
    """Compiled for loihi2 (8 chips) with thresholds set so layers fire 5-20 %: every
    layer fits a core's fan-in, and acsim's run of the fitted program equals the run of
    the same quantized graph lowered without limits, bit for bit."""
    torch.manual_seed(0)
    x = torch.rand(4, 1, 3, 32, 32)
    model = _firing(factory().eval(), x)
    result = snncc.compile(model, x, target="acsim", hardware="loihi2", calibration=x)
    compiled = result.compiled
    assert compiled is not None
    lowered, target = compiled.program.lowered, load_target("loihi2")
    assert target.limits is not None
    assert all(layer.fan_in <= target.limits.fan_in_per_core for layer in lowered.layers)
    assert compiled.mapping.chips_used <= target.limits.chips
    fitted = snncc.simulate(result, x)
    rates = [float(s.mean()) for s in fitted.spikes.values() if s.size]
    assert 0.02 < np.median(rates) < 0.3  # the layers fire: the comparison is not of zeros
    whole = _run(compiled.qg, lower(compiled.qg, fan_in_limit=UNLIMITED), x)
    _assert_same(fitted, whole)
    assert fitted.wraps == whole.wraps == 0


def test_a_model_too_big_for_the_chips_names_the_layer_and_what_would_fit() -> None:
    torch.manual_seed(0)
    model = _spikformer().eval()
    x = torch.rand(4, 1, 3, 32, 32)
    graph = snncc.compile(model, x, target="ir").graph
    t = load_target("loihi2")
    assert t.limits is not None
    one = t.model_copy(update={"limits": t.limits.model_copy(update={"chips": 1})})
    qg = quantize(graph, one)
    with pytest.raises(SnnccError) as e:
        map_to_cores(lower(qg).layers, one)
    d = e.value.diagnostic
    assert d.code == "SNN-MAP005"
    assert "needs 2 chips" in d.message and "1 more than the 1 chip of loihi2 (120 cores)" in d.message
    assert "is the first that does not fit" in d.message and d.location.node
    assert d.hint is not None and "chips: 2" in d.hint and "layers fit" in d.hint


def test_print_ir_after_lower_shows_the_layer_program() -> None:
    torch.manual_seed(0)
    model = _randomize(_RandomNet(8, 1, [("mlp", False)] * 2), 0)
    x = torch.rand(3, 1, 3, 4)
    printed: list[str] = []
    result = snncc.compile(model, x, target="acsim", hardware="loihi2",
                           print_ir_after=["lower"], printer=printed.append)
    assert result.compiled is not None
    [text] = [p for p in printed if "layer program after lower" in p]
    assert text.endswith(to_text(result.compiled.lowered))
    assert "neuron %head_lif" in text and "host encoding %" in text and "du=4095" in text


def test_verify_rejects_a_layer_that_reads_a_later_one() -> None:
    torch.manual_seed(0)
    model = _randomize(_RandomNet(8, 1, [("mlp", False)]), 0)
    x = torch.rand(3, 1, 3, 4)
    lowered = lower(quantize(snncc.compile(model, x, target="ir").graph, "loihi2"))
    verify(lowered)
    lowered.layers.reverse()
    with pytest.raises(ValueError, match="which is not a layer before it"):
        verify(lowered)
