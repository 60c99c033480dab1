"""The classifier head fed averaged spikes is the readout (also with per-step
logits), and merge-linear-chains folds weight op -> weight op chains into one
weight op exactly: the interpreter computes the same before and after."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from snn_models import ConvNet, randomize_bn

from snncc.analysis.spike_only import SpikeOnlyReport, check_spike_only
from snncc.api import check_spike_only as check_model
from snncc.ir import run
from snncc.ir.graph import Graph, Origin
from snncc.ir.op import get_op
from snncc.ir.ops.io import InputAttrs
from snncc.ir.ops.neurons import LIFAttrs
from snncc.ir.ops.norm import BatchNormAttrs
from snncc.ir.ops.pool import AvgPoolAttrs
from snncc.ir.ops.reduce import ReduceAttrs
from snncc.ir.ops.structure import FlattenAttrs
from snncc.ir.ops.weights import ConvAttrs
from snncc.passes import CANONICALIZE, get_pass, run_passes

T, B = 3, 2


class Net:
    """A tiny graph builder: every layer gets a module path and random weights."""

    def __init__(self, shape: tuple[int, ...], spikes: bool = True, seed: int = 0) -> None:
        self.g = Graph(time_steps=T)
        self.rng = np.random.default_rng(seed)
        x = self.g.add("input", [], InputAttrs(index=0, shape=(T, B, *shape), spikes=spikes))
        self.g.inputs.append(x.name)
        self.x = x.name
        self.spikes = spikes

    def _w(self, *shape: int) -> np.ndarray:
        return (self.rng.standard_normal(shape) * 0.5).astype(np.float32)

    def conv(self, x: str, path: str, cout: int, k: int, *, stride: int = 1, padding: int = 0,
             groups: int = 1, bias: bool = True, dilation: int = 1, dim: int = 2) -> str:
        cin = self.g.nodes[x].type.shape[-dim - 1]
        params = {"weight": self._w(cout, cin // groups, *(k,) * dim)}
        if bias:
            params["bias"] = self._w(cout)
        attrs = ConvAttrs(stride=(stride,) * dim, padding=(padding,) * dim,
                          dilation=(dilation,) * dim, groups=groups)
        return self.g.add(f"conv{dim}d", [x], attrs, params, Origin(path)).name

    def linear(self, x: str, path: str, out: int, bias: bool = True) -> str:
        params = {"weight": self._w(out, self.g.nodes[x].type.shape[-1])}
        if bias:
            params["bias"] = self._w(out)
        return self.g.add("linear", [x], None, params, Origin(path)).name

    def bn(self, x: str, path: str) -> str:
        c = self.g.nodes[x].type.shape[-3]
        params = {"running_mean": self._w(c), "running_var": np.abs(self._w(c)) + 0.5,
                  "weight": self._w(c) + 1.0, "bias": self._w(c)}
        return self.g.add("batchnorm", [x], BatchNormAttrs(channel_axis=-3, eps=1e-5), params,
                          Origin(path)).name

    def lif(self, x: str, path: str) -> str:
        return self.g.add("lif", [x], LIFAttrs(tau=2.0, v_threshold=0.3), origin=Origin(path)).name

    def op(self, op: str, x: list[str] | str, attrs: object = None, path: str = "") -> str:
        ins = [x] if isinstance(x, str) else x
        return self.g.add(op, ins, attrs, origin=Origin(path)).name  # type: ignore[arg-type]

    def out(self, *names: str) -> Graph:
        self.g.outputs.extend(names)
        return self.g

    def sample(self, seed: int = 1) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        shape = self.g.nodes[self.x].type.shape
        if self.spikes:
            return (torch.rand(shape, generator=gen) < 0.4).float()
        return torch.rand(shape, generator=gen) * 2


def _classes(report: SpikeOnlyReport) -> dict[str, str]:
    return {f.module_path: f.cls.value for f in report.findings}


def _canonical(g: Graph) -> tuple[Graph, list[str]]:
    result = run_passes(g, CANONICALIZE)
    notes = [n for name, _, ns in result.log if name == "merge-linear-chains" for n in ns]
    return result.graph, notes


def _same(before: Graph, after: Graph, x: torch.Tensor) -> None:
    for a, b in zip(run(before, [x])[0], run(after, [x])[0]):
        assert a.shape == b.shape
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-5), (a - b).abs().max()


def _spiking_trunk(net: Net) -> str:
    """conv (encoding) -> LIF -> conv -> LIF: spikes [T, B, 4, 6, 6]."""
    s = net.lif(net.conv(net.x, "conv1", 4, 3, padding=1), "sn1")
    return net.lif(net.conv(s, "conv2", 4, 3, padding=1), "sn2")


# -- readout ------------------------------------------------------------------


@pytest.mark.parametrize("pool", ["mean", "avgpool", "avgpool_flatten"])
def test_per_step_logits_head_is_readout(pool: str) -> None:
    """[T, B, C, H, W] spikes -> mean/avgpool over space per step -> fc -> [T, B, classes]."""
    net = Net((2, 6, 6), spikes=False)
    s = _spiking_trunk(net)
    if pool == "mean":
        y = net.op("mean", s, ReduceAttrs(dims=(-1, -2)), "avg")
    else:
        attrs = AvgPoolAttrs(kernel=(6, 6) if pool == "avgpool" else (3, 3),
                             stride=(6, 6) if pool == "avgpool" else (3, 3), padding=(0, 0))
        y = net.op("flatten", net.op("avgpool2d", s, attrs, "avg"), FlattenAttrs(start=2, end=-1))
    g = net.out(net.linear(y, "fc", 10))
    c, _ = _canonical(g)
    report = check_spike_only(c)
    assert _classes(report) == {"conv1": "ENCODING_MAC", "conv2": "AC", "fc": "READOUT_MAC"}
    fc = next(f for f in report.findings if f.module_path == "fc")
    assert "classifier head fed averaged spikes" in fc.message
    assert "classifier head fed averaged spikes" in (fc.hint or "")
    assert c.nodes[c.outputs[0]].type.shape == (T, B, 10)
    _same(g, c, net.sample())


@pytest.mark.parametrize("out", [1, 2])
def test_per_step_logits_after_adaptive_avgpool_is_readout(out: int) -> None:
    """SpikingJelly's zoo ResNets in multi-step mode: AdaptiveAvgPool2d -> flatten -> fc."""
    net = Net((2, 6, 6), spikes=False)
    attrs = get_op("adaptive_avgpool2d").attrs_type(output_size=(out, out))  # type: ignore[call-arg]
    y = net.op("adaptive_avgpool2d", _spiking_trunk(net), attrs, "avgpool")
    g = net.out(net.linear(net.op("flatten", y, FlattenAttrs(start=2, end=-1)), "fc", 10))
    c, _ = _canonical(g)
    assert _classes(check_spike_only(c))["fc"] == "READOUT_MAC"
    _same(g, c, net.sample())


def test_head_after_mean_over_time_is_readout() -> None:
    net = Net((2, 6, 6), spikes=False)
    s = _spiking_trunk(net)
    y = net.op("mean", net.op("mean", s, ReduceAttrs(dims=(0,))), ReduceAttrs(dims=(-1, -2)))
    c, _ = _canonical(net.out(net.linear(y, "fc", 10)))
    assert _classes(check_spike_only(c))["fc"] == "READOUT_MAC"


def test_traced_convnet_head_fed_pooled_spikes_per_step_is_readout() -> None:
    """ConvNet's fc sees avg-pooled spikes at every step, the mean over time after it."""
    fc = next(f for f in check_model(randomize_bn(ConvNet()), torch.rand(4, 2, 1, 8, 8))
              .report.findings if f.module_path == "fc")
    assert fc.cls.value == "READOUT_MAC" and "averaged spikes" in fc.message


def test_averaged_spikes_feeding_a_neuron_are_not_readout() -> None:
    net = Net((2, 6, 6), spikes=False)
    s = _spiking_trunk(net)
    y = net.op("mean", s, ReduceAttrs(dims=(-1, -2)), "avg")
    h = net.lif(net.linear(y, "fc1", 8), "sn3")
    report = check_spike_only(_canonical(net.out(net.linear(h, "fc2", 10)))[0])
    assert _classes(report)["fc1"] == "VIOLATION"
    assert _classes(report)["fc2"] == "AC"


def test_averaged_spikes_feeding_a_weight_op_and_a_neuron_are_not_readout() -> None:
    """A second branch with a neuron after the fc keeps today's rule."""
    net = Net((2, 6, 6), spikes=False)
    y = net.op("mean", _spiking_trunk(net), ReduceAttrs(dims=(-1, -2)), "avg")
    fc = net.linear(y, "fc", 10)
    report = check_spike_only(_canonical(net.out(fc, net.lif(fc, "sn_out")))[0])
    assert _classes(report)["fc"] == "VIOLATION"


def test_head_of_two_linears_merges_into_one_readout() -> None:
    net = Net((2, 6, 6), spikes=False)
    y = net.op("mean", _spiking_trunk(net), ReduceAttrs(dims=(-1, -2)), "avg")
    g = net.out(net.linear(net.linear(y, "head.fc1", 16), "head.fc2", 10))
    c, notes = _canonical(g)
    report = check_spike_only(c)
    assert _classes(report) == {"conv1": "ENCODING_MAC", "conv2": "AC", "head": "READOUT_MAC"}
    assert notes == ["merged linear `head.fc1` -> linear `head.fc2` into one linear (fed COUNT)"]
    _same(g, c, net.sample())


def test_sew_add_residual_stream_head_is_readout() -> None:
    """SEW-ResNet ADD: the last block's output (a sum of spikes) -> pool -> fc is the head;
    the same stream into a conv with a neuron after it is still a violation."""
    net = Net((2, 6, 6), spikes=False)
    s1 = net.lif(net.conv(net.x, "conv1", 4, 3, padding=1), "sn1")
    s2 = net.lif(net.conv(s1, "layer.conv", 4, 3, padding=1), "layer.sn")
    z = net.op("add", [s1, s2], path="layer")
    assert net.g.nodes[z].type.kind.value == "COUNT"
    pooled = net.op("avgpool2d", z, AvgPoolAttrs(kernel=(2, 2), stride=(2, 2), padding=(0, 0)))
    head = net.linear(net.op("flatten", pooled, FlattenAttrs(start=2, end=-1)), "fc", 10)
    side = net.lif(net.conv(z, "next.conv", 4, 3, padding=1), "next.sn")
    report = check_spike_only(_canonical(net.out(head, side))[0])
    assert _classes(report)["fc"] == "READOUT_MAC"
    assert _classes(report)["next.conv"] == "VIOLATION"
    fc = next(f for f in report.findings if f.module_path == "fc")
    assert "add" in fc.message


def test_event_frames_make_the_first_weight_op_ac() -> None:
    net = Net((2, 6, 6), spikes=True)
    y = net.op("mean", _spiking_trunk(net), ReduceAttrs(dims=(-1, -2)))
    report = check_spike_only(_canonical(net.out(net.linear(y, "fc", 10)))[0])
    assert _classes(report) == {"conv1": "AC", "conv2": "AC", "fc": "READOUT_MAC"}
    assert report.ok


# -- merge-linear-chains: exact cases ----------------------------------------------


def _merge(g: Graph) -> tuple[Graph, list[str]]:
    result = get_pass("merge-linear-chains")(g.copy())
    return result.graph, result.notes


def _weight_ops(g: Graph) -> list[str]:
    return [n.op for n in g if n.opdef.multiplies.value == "weight"]


@pytest.mark.parametrize("bias1,bias2", [(True, True), (False, True), (True, False)])
def test_linear_of_linear_is_one_linear(bias1: bool, bias2: bool) -> None:
    net = Net((12,))
    g = net.out(net.linear(net.linear(net.x, "fc1", 8, bias1), "fc2", 5, bias2))
    m, notes = _merge(g)
    assert _weight_ops(m) == ["linear"]
    assert notes == ["merged linear `fc1` -> linear `fc2` into one linear (fed SPIKE)"]
    _same(g, m, net.sample())
    report = check_spike_only(m)
    assert [f.cls.value for f in report.findings] == ["AC"]
    assert report.merged[0].chain == ["linear `fc1`", "linear `fc2`"]
    assert report.to_json()["merged"][0]["into"] == "linear"  # type: ignore[index]


CONV_CASES = [
    # (k1, s1, p1, bias1, k2, s2, p2, into)
    (1, 1, 0, False, 3, 1, 1, "3x3 conv"),  # 1x1 (no bias) then a padded 3x3
    (3, 1, 1, True, 1, 1, 0, "3x3 conv"),  # kxk then 1x1
    (3, 1, 0, True, 3, 1, 0, "5x5 conv"),  # no padding between
    (3, 2, 1, True, 1, 1, 0, "3x3 conv (stride 2)"),
    (3, 1, 1, True, 2, 2, 0, "4x4 conv (stride 2)"),  # a stride-2 second conv is exact too
    (1, 2, 0, False, 3, 2, 1, "5x5 conv (stride 4)"),  # a strided 1x1 spreads the taps
    (2, 2, 0, True, 3, 1, 0, "6x6 conv (stride 2)"),
]


@pytest.mark.parametrize("k1,s1,p1,bias1,k2,s2,p2,into", CONV_CASES)
@pytest.mark.parametrize("size", [7, 8])
def test_conv_of_conv_is_one_conv(k1: int, s1: int, p1: int, bias1: bool, k2: int, s2: int,
                                  p2: int, into: str, size: int) -> None:
    net = Net((3, size, size))
    a = net.conv(net.x, "blk.a", 4, k1, stride=s1, padding=p1, bias=bias1)
    g = net.out(net.conv(a, "blk.b", 5, k2, stride=s2, padding=p2))
    m, notes = _merge(g)
    assert _weight_ops(m) == ["conv2d"], notes
    assert notes == [f"merged conv `blk.a` -> conv `blk.b` into one {into} (fed SPIKE)"]
    merged = next(n for n in m if n.op == "conv2d")
    assert merged.origin.module_path == "blk"
    _same(g, m, net.sample())
    assert [f.cls.value for f in check_spike_only(m).findings] == ["AC"]


@pytest.mark.parametrize("g1,g2,groups", [(4, 1, 1), (4, 4, 4), (2, 2, 2), (2, 1, 1), (1, 4, 1)])
def test_grouped_convs_merge(g1: int, g2: int, groups: int) -> None:
    """Depthwise then pointwise is a full conv; equal groups stay grouped."""
    net = Net((4, 6, 6))
    a = net.conv(net.x, "dw", 4, 3, padding=1, groups=g1)
    g = net.out(net.conv(a, "pw", 4, 1, groups=g2))
    m, _ = _merge(g)
    merged = next(n for n in m if n.op == "conv2d")
    assert merged.attrs.groups == groups  # type: ignore[attr-defined]
    _same(g, m, net.sample())


def test_conv1d_chain_merges() -> None:
    net = Net((6, 9))
    a = net.conv(net.x, "q.a", 6, 1, dim=1, bias=False)
    g = net.out(net.conv(a, "q.b", 4, 3, padding=1, dim=1))
    m, notes = _merge(g)
    assert _weight_ops(m) == ["conv1d"]
    assert notes == ["merged conv `q.a` -> conv `q.b` into one kernel-3 conv1d (fed SPIKE)"]
    _same(g, m, net.sample())


def test_conv_bn_conv_merges_after_folding_and_chain_of_three_is_one_note() -> None:
    """conv1x1 -> BN -> depthwise 3x3 (padding 0) -> pointwise 1x1 -> BN: one 3x3 conv."""
    net = Net((4, 7, 7))
    a = net.bn(net.conv(net.x, "blk.pw1", 4, 1, bias=False), "blk.bn1")
    b = net.conv(a, "blk.dw", 4, 3, groups=4, bias=False)
    c = net.bn(net.conv(b, "blk.pw2", 6, 1, bias=False), "blk.bn2")
    g = net.out(net.lif(c, "blk.sn"))
    m, notes = _canonical(g)
    assert _weight_ops(m) == ["conv2d"]
    assert notes == ["merged conv `blk.pw1` -> conv `blk.dw` -> conv `blk.pw2` into one 3x3 conv "
                     "(fed SPIKE)"]
    _same(g, m, net.sample())
    report = check_spike_only(m)
    assert [(f.module_path, f.cls.value) for f in report.findings] == [("blk", "AC")]
    assert "merged from conv `blk.pw1`" in report.findings[0].message
    assert [e.module_path for e in report.merged] == ["blk"]


def test_merging_the_encoding_conv_keeps_it_encoding() -> None:
    net = Net((2, 6, 6), spikes=False)
    a = net.bn(net.conv(net.x, "stem.conv1", 4, 3, padding=1), "stem.bn1")
    g = net.out(net.lif(net.conv(a, "stem.conv2", 4, 1), "stem.sn"))
    m, notes = _canonical(g)
    assert notes == ["merged conv `stem.conv1` -> conv `stem.conv2` into one 3x3 conv "
                     "(fed ANALOG_INPUT)"]
    assert _classes(check_spike_only(m)) == {"stem": "ENCODING_MAC"}
    _same(g, m, net.sample())


def test_merge_is_idempotent_and_keeps_the_record() -> None:
    net = Net((12,))
    g = net.out(net.linear(net.linear(net.x, "fc1", 8), "fc2", 5))
    m, _ = _merge(g)
    again = get_pass("merge-linear-chains")(m)
    assert not again.modified and not again.notes
    assert len(check_spike_only(again.graph).merged) == 1


@settings(max_examples=60, deadline=None)
@given(k1=st.integers(1, 3), k2=st.integers(1, 3), s1=st.integers(1, 2), s2=st.integers(1, 2),
       p1=st.integers(0, 2), p2=st.integers(0, 2), bias1=st.booleans(), size=st.integers(5, 9),
       groups=st.sampled_from([(1, 1), (2, 2), (2, 1), (1, 2)]), seed=st.integers(0, 2**16))
def test_every_conv_merge_the_pass_makes_is_exact(k1: int, k2: int, s1: int, s2: int, p1: int,
                                                   p2: int, bias1: bool, size: int,
                                                   groups: tuple[int, int], seed: int) -> None:
    net = Net((2, size, size), seed=seed)
    a = net.conv(net.x, "a", 4, k1, stride=s1, padding=p1, groups=groups[0], bias=bias1)
    if net.g.nodes[a].type.shape[-1] + 2 * p2 < k2:
        return
    g = net.out(net.conv(a, "b", 4, k2, stride=s2, padding=p2, groups=groups[1]))
    m, notes = _merge(g)
    n1 = net.g.nodes[a].type.shape[-1]
    border_reads_input = k1 > p1 + s1 or n1 * s1 - p1 < size
    assert bool(notes) == (p2 == 0 or not (bias1 or border_reads_input))
    if notes:
        _same(g, m, net.sample(seed))


# -- merge-linear-chains: refused chains stay violations naming the chain -----------


def _violation(g: Graph, path: str) -> str:
    report = check_spike_only(run_passes(g, CANONICALIZE).graph)
    f = next(f for f in report.findings if f.module_path == path)
    assert f.cls.value == "VIOLATION", f.message
    assert f.provenance and f.provenance[0] in f.message
    return f.message


def test_zero_padding_around_a_biased_conv_is_not_merged() -> None:
    net = Net((3, 6, 6))
    a = net.conv(net.x, "blk.pw1", 4, 1, bias=True)
    msg = _violation(net.out(net.conv(a, "blk.conv", 4, 3, padding=1)), "blk.conv")
    assert "fed the linear output of conv `blk.pw1` with no neuron between" in msg
    assert "not merged because" in msg and "bias" in msg


def test_padding_around_a_padded_kxk_conv_is_not_merged() -> None:
    net = Net((3, 6, 6))
    a = net.conv(net.x, "c1", 4, 3, padding=1, bias=False)
    msg = _violation(net.out(net.conv(a, "c2", 4, 3, padding=1)), "c2")
    assert "fed the linear output of conv `c1`" in msg and "border" in msg


def test_dilated_and_shared_and_pooled_chains_are_not_merged() -> None:
    net = Net((3, 8, 8))
    a = net.conv(net.x, "c1", 4, 3)
    dil = net.conv(a, "dil", 4, 3, dilation=2)
    b = net.conv(net.x, "c2", 4, 1)
    used_twice = [net.conv(b, "u1", 4, 1), net.conv(b, "u2", 4, 1)]
    c = net.conv(net.x, "c3", 4, 1)
    pooled = net.conv(net.op("avgpool2d", c, AvgPoolAttrs(kernel=(2, 2), stride=(2, 2),
                                                           padding=(0, 0)), "pool"), "after", 4, 1)
    g = net.out(dil, *used_twice, pooled)
    assert "dilated" in _violation(g, "dil")
    assert "conv `c2`" in _violation(g, "u1") and "2 users" in _violation(g, "u2")
    assert "the avgpool2d at `pool` between them" in _violation(g, "after")


# -- with an explicit pad between (RepConv's BNAndPadLayer) ---------------------------

def _pad(net: Net, x: str, p: int, value: float) -> str:
    attrs = get_op("pad").attrs_type(pads=(p, p, p, p), value=value)  # type: ignore[call-arg]
    return net.op("pad", x, attrs, "blk.pad")


def test_repconv_pad_with_the_bias_merges_into_one_3x3_conv() -> None:
    net = Net((4, 7, 7))
    a = net.conv(net.x, "blk.pw1", 4, 1, bias=False)
    # one pad value for every channel: the first conv's bias, constant per channel
    net.g.nodes[a].params["bias"] = np.full(4, 0.375, dtype=np.float32)
    b = net.conv(_pad(net, a, 1, 0.375), "blk.dw", 4, 3, groups=4)
    g = net.out(net.conv(b, "blk.pw2", 6, 1))
    m, notes = _merge(g)
    assert notes == ["merged conv `blk.pw1` -> pad -> conv `blk.dw` -> conv `blk.pw2` into one "
                     "3x3 conv (fed SPIKE)"]
    assert [n.op for n in m if n.op != "input"] == ["conv2d"]
    _same(g, m, net.sample())


@pytest.mark.parametrize("bias", [False, True])
def test_zero_pad_merges_only_without_bias(bias: bool) -> None:
    net = Net((4, 7, 7))
    a = net.conv(net.x, "blk.pw1", 4, 1, bias=bias)
    g = net.out(net.conv(_pad(net, a, 1, 0.0), "blk.dw", 4, 3, groups=4))
    m, notes = _merge(g)
    if bias:
        assert not notes
        assert "not merged because the pad between them fills with 0" in _violation(g, "blk.dw")
    else:
        assert len(notes) == 1
        _same(g, m, net.sample())


@settings(max_examples=60, deadline=None)
@given(k1=st.integers(1, 3), s1=st.integers(1, 2), p1=st.integers(0, 1), pad=st.integers(0, 2),
       k2=st.integers(1, 3), s2=st.integers(1, 2), p2=st.integers(0, 1), bias1=st.booleans(),
       by_bias=st.booleans(), size=st.integers(5, 8), seed=st.integers(0, 2**16))
def test_every_merge_through_a_pad_is_exact(k1: int, s1: int, p1: int, pad: int, k2: int,
                                            s2: int, p2: int, bias1: bool, by_bias: bool,
                                            size: int, seed: int) -> None:
    """pad with the first conv's (constant) bias, or with 0; merged exactly when the pad
    value and the second conv's zero padding are what the first conv outputs there."""
    net = Net((2, size, size), seed=seed)
    a = net.conv(net.x, "a", 3, k1, stride=s1, padding=p1, bias=bias1)
    if bias1:
        net.g.nodes[a].params["bias"] = np.full(3, 0.375, dtype=np.float32)
    value = 0.375 if bias1 and by_bias else 0.0
    if net.g.nodes[a].type.shape[-1] + 2 * (pad + p2) < k2:
        return
    mid = _pad(net, a, pad, value) if pad else a
    g = net.out(net.conv(mid, "b", 4, k2, stride=s2, padding=p2))
    m, notes = _merge(g)
    n1 = net.g.nodes[a].type.shape[-1]
    border_ok = k1 <= p1 + s1 and n1 * s1 - p1 >= size
    exact = pad + p2 == 0 or (border_ok and (not pad or value == (0.375 if bias1 else 0.0))
                               and (not p2 or not bias1))
    assert bool(notes) == exact, (notes, n1)
    if notes:
        _same(g, m, net.sample(seed))


def test_asymmetric_and_channel_pads_are_not_merged() -> None:
    net = Net((4, 7, 7))
    a = net.conv(net.x, "c1", 4, 1, bias=False)
    attrs = get_op("pad").attrs_type(pads=(1, 0, 1, 0), value=0.0)  # type: ignore[call-arg]
    asym = net.conv(net.op("pad", a, attrs, "p1"), "asym", 4, 3)
    b = net.conv(net.x, "c2", 4, 1, bias=False)
    attrs = get_op("pad").attrs_type(pads=(0, 0, 0, 0, 1, 1), value=0.0)  # type: ignore[call-arg]
    chan = net.conv(net.op("pad", b, attrs, "p2"), "chan", 4, 1)
    g = net.out(asym, chan)
    assert "asymmetric" in _violation(g, "asym")
    assert "non-spatial axis" in _violation(g, "chan")
