"""The frontend against PyTorch, one idiom per test, written the way published
spiking code writes it (Spikformer, Spikingformer, Spike-driven Transformer V1/V2,
SEW-ResNet, SpikingJelly's own layers and tutorials).

Each model is a few lines using ONE idiom; it is calibrated (`zoo.calibrate`: BN
statistics and thresholds so that every neuron layer fires about 15 %), traced,
run on snncc's interpreter and compared with the model's own forward from a reset
state: spikes exactly, other outputs to 1e-5. `traced_equals_pytorch` also fails
when a neuron layer stayed silent or saturated, so no comparison passes on zeros.
Where the idiom decides what is a spike (pools, interpolation, cat/stack, event
input) the spike-only verdicts are compared with `oracle.py` too.
"""

from __future__ import annotations

import inspect
import os

import einops
import pytest
import torch
import torch.nn.functional as F
from einops.layers.torch import Rearrange
from oracle import NEURONS as SJ_NEURONS
from oracle import RANK, spike_only_oracle
from spikingjelly.activation_based import functional as ab_functional
from spikingjelly.activation_based import layer as ab_layer
from spikingjelly.activation_based import neuron as ab_neuron
from spikingjelly.activation_based import surrogate as ab_surrogate
from spikingjelly.clock_driven import functional as cd_functional
from spikingjelly.clock_driven import layer as cd_layer
from spikingjelly.clock_driven import neuron as cd_neuron
from spikingjelly.clock_driven import surrogate as cd_surrogate
from torch import nn
from zoo import calibrate, forward, reset

import snncc
from snncc.diagnostics import SnnccError
from snncc.ir import interpreter
from snncc.loading import load_model

torch.set_num_threads(2)

T, B = 4, 2
WEIGHT_OPS = {"conv1d", "conv2d", "linear", "matmul"}


# -- helpers ---------------------------------------------------------------------------

def _binary(t: torch.Tensor) -> bool:
    return bool(((t == 0) | (t == 1)).all())


def _same(out: torch.Tensor, ref: torch.Tensor) -> None:
    assert tuple(out.shape) == tuple(ref.shape)
    if _binary(ref):
        assert torch.equal(out, ref), f"{int((out != ref).sum())} of {ref.numel()} spikes differ"
    else:
        assert torch.allclose(out, ref, atol=1e-5, rtol=0), float((out - ref).abs().max())


def _x(*shape: int, seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * scale


def _events(*shape: int, seed: int = 0) -> torch.Tensor:
    return (_x(*shape, seed=seed) < 0.25).float()


def _ready(model: nn.Module, x: torch.Tensor | tuple, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    for p in model.parameters():  # weights as training leaves them, not all small
        if p.dim() > 1:
            nn.init.normal_(p, 0.0, 1.0 / max(p[0].numel(), 1) ** 0.5)
    return calibrate(model, x)


def traced_equals_pytorch(model: nn.Module, x: torch.Tensor, **trace_kwargs: object) -> snncc.Graph:
    """Calibrate, trace, run the interpreter; its output must equal the model's own."""
    model = _ready(model, x)
    ref, spikes = forward(model, x)
    rates = {p: float(s.mean()) for p, s in spikes.items()}
    assert rates and all(0.0 < r < 1.0 for r in rates.values()), f"test model does not fire: {rates}"
    g = snncc.trace(model, x, **trace_kwargs)
    (out,), _ = interpreter.run(g, [x])
    _same(out, ref)
    return g


def snncc_classes(g: snncc.Graph) -> dict[str, str]:
    out: dict[str, str] = {}
    for f in snncc.check_spike_only(g).report.findings:
        if f.op in WEIGHT_OPS and RANK[f.cls.value] >= RANK.get(out.get(f.module_path, "AC"), 0):
            out[f.module_path] = f.cls.value
    return out


def agrees_with_oracle(model: nn.Module, g: snncc.Graph, inputs: list[torch.Tensor]) -> dict[str, str]:
    expected = spike_only_oracle(model, inputs).classes
    assert snncc_classes(g) == expected
    return expected


def lif(**kw: object) -> nn.Module:
    return ab_neuron.LIFNode(tau=2.0, step_mode="m", detach_reset=True, **kw)


class ConvBNLIF(nn.Module):
    """The unit every idiom below is built around: [T, B, C, H, W] -> spikes."""

    def __init__(self, cin: int = 2, cout: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.lif = lif()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        return self.lif(self.bn(self.conv(x.flatten(0, 1))).reshape(T, B, -1, H, W))


# -- shapes as Python values -------------------------------------------------------------

class StarReshape(nn.Module):  # Spikformer's SPS
    def __init__(self) -> None:
        super().__init__()
        self.proj_conv = nn.Conv2d(2, 4, 3, padding=1, bias=False)
        self.proj_bn = nn.BatchNorm2d(4)
        self.proj_lif = lif()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        y = self.proj_bn(self.proj_conv(x.flatten(0, 1)))
        y = y.reshape(T, B, *y.shape[1:])
        return self.proj_lif(y)


def test_shape_slice_unpack_and_star_reshape() -> None:
    traced_equals_pytorch(StarReshape(), _x(T, B, 2, 8, 8))


class LenShape(nn.Module):  # Spike-driven Transformer: a static image is repeated over T
    def __init__(self) -> None:
        super().__init__()
        self.T = T
        self.block = ConvBNLIF()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(x.shape) < 5:
            x = (x.unsqueeze(0)).repeat(self.T, 1, 1, 1, 1)
        return self.block(x)


@pytest.mark.parametrize("shape", [(T, B, 2, 8, 8), (B, 2, 8, 8)], ids=["5d", "4d"])
def test_len_of_shape(shape: tuple[int, ...]) -> None:
    g = traced_equals_pytorch(LenShape(), _x(*shape))
    assert g.time_steps == T


class IntShape(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.lif = lif()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = int(x.shape[0]), int(x.shape[1])
        y = self.conv(x.reshape(T * B, *x.shape[2:]))
        return self.lif(y.reshape(T, B, y.shape[1], y.shape[2], y.shape[3]))


def test_int_of_shape() -> None:
    traced_equals_pytorch(IntShape(), _x(T, B, 2, 8, 8))


def test_dim_check_that_raises_in_layer_adaptive_avg_pool2d() -> None:
    # layer.AdaptiveAvgPool2d (like every SpikingJelly layer in 'm' mode) does
    # `if x.dim() != 5: raise ValueError(...)`
    net = nn.Sequential(ab_layer.Conv2d(2, 4, 3, padding=1), ab_layer.BatchNorm2d(4),
                        ab_neuron.LIFNode(detach_reset=True), ab_layer.AdaptiveAvgPool2d((1, 1)),
                        ab_layer.Flatten(), ab_layer.Linear(4, 10))
    ab_functional.set_step_mode(net, "m")
    traced_equals_pytorch(net, _x(T, B, 2, 8, 8))


# -- SpikingJelly's containers -------------------------------------------------------------

class SeqToANN(nn.Module):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        if how == "ab.SeqToANNContainer":
            self.conv_bn = ab_layer.SeqToANNContainer(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4))
        elif how == "cd.SeqToANNContainer":
            self.conv_bn = cd_layer.SeqToANNContainer(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4))
        else:
            self.conv, self.bn = nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.lif = lif()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.how == "ab.seq_to_ann_forward":
            y = ab_functional.seq_to_ann_forward(x, [self.conv, self.bn])
        elif self.how == "cd.seq_to_ann_forward":
            y = cd_functional.seq_to_ann_forward(x, [self.conv, self.bn])
        else:
            y = self.conv_bn(x)
        return self.lif(y)


@pytest.mark.parametrize("how", ["ab.SeqToANNContainer", "cd.SeqToANNContainer",
                                 "ab.seq_to_ann_forward", "cd.seq_to_ann_forward"])
def test_seq_to_ann_with_y_shape_extend(how: str) -> None:
    # seq_to_ann_forward: y_shape = [x.shape[0], x.shape[1]]; y_shape.extend(y.shape[1:]); y.view(y_shape)
    traced_equals_pytorch(SeqToANN(how), _x(T, B, 2, 8, 8))


class MultiStep(nn.Module):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        conv, bn = nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4)
        if how == "ab.MultiStepContainer":
            self.body = ab_layer.MultiStepContainer(conv, bn)
        elif how == "ab.MultiStepContainer+single-step LIF":
            self.body = ab_layer.MultiStepContainer(conv, bn, ab_neuron.LIFNode(detach_reset=True))
        elif how == "cd.MultiStepContainer+single-step LIF":
            self.body = cd_layer.MultiStepContainer(conv, bn, cd_neuron.LIFNode(detach_reset=True))
        else:
            self.conv, self.bn = conv, bn
        if "single-step" not in how:
            self.lif = lif()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.how == "ab.multi_step_forward":
            return self.lif(ab_functional.multi_step_forward(x, [self.conv, self.bn]))
        if self.how == "cd.multi_step_forward":
            return self.lif(cd_functional.multi_step_forward(x, [self.conv, self.bn]))
        y = self.body(x)
        return y if "single-step" in self.how else self.lif(y)


@pytest.mark.parametrize("how", ["ab.MultiStepContainer", "ab.MultiStepContainer+single-step LIF",
                                 "cd.MultiStepContainer+single-step LIF", "ab.multi_step_forward",
                                 "cd.multi_step_forward"])
def test_multi_step_container_loops_over_time(how: str) -> None:
    traced_equals_pytorch(MultiStep(how), _x(T, B, 2, 8, 8))


# -- loops over T, time inside the model -------------------------------------------------------

class StepLoop(nn.Module):  # SpikingJelly's tutorials: single-step neurons in a loop
    def __init__(self, api: str) -> None:
        super().__init__()
        make = (lambda: ab_neuron.LIFNode(detach_reset=True)) if api == "ab" else \
            (lambda: cd_neuron.LIFNode(detach_reset=True))
        self.conv, self.bn, self.sn1 = nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), make()
        self.fc, self.sn2 = nn.Linear(4 * 8 * 8, 10), make()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = []
        for t in range(x.shape[0]):
            y = self.sn1(self.bn(self.conv(x[t])))
            out.append(self.sn2(self.fc(y.flatten(1))))
        return torch.stack(out)


@pytest.mark.parametrize("api", ["ab", "cd"])
def test_python_loop_over_single_step_neurons_and_stack(api: str) -> None:
    traced_equals_pytorch(StepLoop(api), _x(T, B, 2, 8, 8))


class Accumulate(nn.Module):
    def __init__(self, init: str) -> None:
        super().__init__()
        self.T, self.init = T, init
        self.conv, self.bn = nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.sn = ab_neuron.LIFNode(detach_reset=True)
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = 0.0
        for t in range(self.T):
            s = self.sn(self.bn(self.conv(x[t])))
            if self.init == "first step" and t == 0:
                out = self.fc(s.flatten(1))
            else:
                out += self.fc(s.flatten(1))
        return out / self.T


@pytest.mark.parametrize("init", ["zero", "first step"])
def test_loop_accumulating_head_outputs_then_dividing_by_T(init: str) -> None:
    traced_equals_pytorch(Accumulate(init), _x(T, B, 2, 8, 8))


class RepeatAttr(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.T = T
        self.block = ConvBNLIF()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(0).repeat(self.T, 1, 1, 1, 1)
        return self.block(x).mean(0)


class RepeatArg(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = ConvBNLIF()

    def forward(self, x: torch.Tensor, T: int = T) -> torch.Tensor:
        x = x.unsqueeze(0).repeat(T, 1, 1, 1, 1)
        return self.block(x).mean(0)


@pytest.mark.parametrize("model", [RepeatAttr, RepeatArg], ids=["T attribute", "T argument"])
def test_static_input_repeated_over_T_inside_forward(model: type[nn.Module]) -> None:
    g = traced_equals_pytorch(model(), _x(B, 2, 8, 8))
    assert g.time_steps == T


@pytest.mark.parametrize("api", ["ab", "cd"])
def test_single_step_model_with_time_steps(api: str) -> None:
    make = (lambda: ab_neuron.LIFNode(detach_reset=True)) if api == "ab" else \
        (lambda: cd_neuron.LIFNode(detach_reset=True))
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), make(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(4 * 4 * 4, 10), make())
    x = _x(B, 2, 8, 8)  # one frame, as single-step code sees it
    model = _ready(model, x)
    g = snncc.trace(model, x, time_steps=T)
    assert g.time_steps == T
    # the graph runs T steps: of a [T, B, ...] sequence, or of the one frame repeated
    shape = g.nodes[g.inputs[0]].type.shape
    assert shape in ((T, *x.shape), tuple(x.shape))
    frames = _x(T, B, 2, 8, 8, seed=1) if shape[0] == T else x.expand(T, *x.shape)
    reset(model)
    with torch.no_grad():  # single-step code: one call per step
        ref = torch.stack([model(frames[t]) for t in range(T)])
    reset(model)
    assert 0 < float(ref.mean()) < 1
    (out,), _ = interpreter.run(g, [frames if shape[0] == T else x])
    _same(out, ref)


class HookArg(nn.Module):  # Spike-driven Transformer: forward(x, hook=None)
    def __init__(self) -> None:
        super().__init__()
        self.block = ConvBNLIF()
        self.head = nn.Linear(4, 10)

    def forward(self, x: torch.Tensor, hook: dict | None = None):  # noqa: ANN201
        x = self.block(x)
        if hook is not None:
            hook[self._get_name() + "_lif"] = x.detach()
        x = self.head(x.flatten(3).mean(3))
        if hook is not None:
            return x, hook
        return x


def test_forward_with_an_optional_hook_dict() -> None:
    model = HookArg()
    x = _x(T, B, 2, 8, 8)
    traced_equals_pytorch(model, x)
    reset(model)
    with torch.no_grad():
        _, hook = model(x, hook={})
    assert set(hook) == {"HookArg_lif"}


# -- tensor functions on spikes ----------------------------------------------------------------

class CatStack(nn.Module):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.a, self.b = ConvBNLIF(), ConvBNLIF()
        self.conv = nn.Conv2d(8, 4, 1)
        self.lif = lif()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        a, b = self.a(x), self.b(x)
        y = torch.cat([a, b], dim=2) if self.how == "cat" else torch.stack([a, b], dim=2).flatten(2, 3)
        return self.lif(self.conv(y.flatten(0, 1)).reshape(T, B, -1, H, W))


@pytest.mark.parametrize("how", ["cat", "stack"])
def test_cat_and_stack_of_spike_tensors(how: str) -> None:
    model, x = CatStack(how), _x(T, B, 2, 8, 8)
    g = traced_equals_pytorch(model, x)
    assert agrees_with_oracle(model, g, [x, _x(T, B, 2, 8, 8, seed=1)])["conv"] == "AC"


class ChunkSplit(nn.Module):  # q, k, v = qkv.chunk(3, dim=2)
    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.qkv = ConvBNLIF(2, 6)
        self.fc_a, self.fc_b = nn.Linear(3 * 64, 10), nn.Linear(3 * 64, 10)
        self.lif = lif()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.qkv(x)
        if self.how == "chunk":
            a, b = s.chunk(2, dim=2)
        elif self.how == "torch.split sizes":
            a, b = torch.split(s, [3, 3], dim=2)
        else:
            a, b = s.split(3, dim=2)
        return self.lif(self.fc_a(a.flatten(2)) + self.fc_b(b.flatten(2)))


@pytest.mark.parametrize("how", ["chunk", "torch.split sizes", "Tensor.split"])
def test_chunk_and_split(how: str) -> None:
    traced_equals_pytorch(ChunkSplit(how), _x(T, B, 2, 8, 8))


SLICES = {
    "x[..., :4]": (lambda s: s[..., :4], 4 * 8 * 4),
    "x[:, :, 0]": (lambda s: s[:, :, 0], 8 * 8),
    "x[:, :, 1:3]": (lambda s: s[:, :, 1:3], 2 * 8 * 8),
    "x[:, :, :, ::2]": (lambda s: s[:, :, :, ::2], 4 * 4 * 8),
}


class Slice(nn.Module):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.pick, features = SLICES[name]
        self.block = ConvBNLIF()
        self.fc = nn.Linear(features, 10)
        self.lif = lif()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        return self.lif(self.fc(self.pick(self.block(x)).reshape(T, B, -1)))


@pytest.mark.parametrize("name", list(SLICES))
def test_slicing(name: str) -> None:
    traced_equals_pytorch(Slice(name), _x(T, B, 2, 8, 8))


class SqueezeExpand(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.lif1 = nn.Linear(6, 5), lif()
        self.fc2, self.lif2 = nn.Linear(5 * 3, 4), lif()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [T, B, 6]
        s = self.lif1(self.fc1(x)).unsqueeze(2)  # [T, B, 1, 5]
        s = s.expand(-1, -1, 3, -1).unsqueeze(-1)  # [T, B, 3, 5, 1]
        return self.lif2(self.fc2(s.squeeze(-1).flatten(2)))


def test_squeeze_unsqueeze_expand() -> None:
    traced_equals_pytorch(SqueezeExpand(), _x(T, B, 6, scale=3.0))


class Pad(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value
        self.block = ConvBNLIF()
        self.conv = nn.Conv2d(4, 4, 3)  # no padding of its own
        self.lif = lif()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        y = F.pad(self.block(x).flatten(0, 1), (1, 1, 1, 1), mode="constant", value=self.value)
        return self.lif(self.conv(y).reshape(T, B, -1, H, W))


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_constant_pad(value: float) -> None:
    traced_equals_pytorch(Pad(value), _x(T, B, 2, 8, 8))


class AdaptivePool(nn.Module):
    def __init__(self, pool: type[nn.Module], size: int, out: int) -> None:
        super().__init__()
        self.block = ConvBNLIF()
        self.pool = pool((out, out))
        self.fc = nn.Linear(4 * out * out, 10)
        self.lif = lif()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        y = self.pool(self.block(x).flatten(0, 1))
        return self.lif(self.fc(y.reshape(T, B, -1)))


POOLS = [(nn.AdaptiveAvgPool2d, 4, 2), (nn.AdaptiveAvgPool2d, 5, 3), (nn.AdaptiveAvgPool2d, 1, 7),
         (nn.AdaptiveAvgPool2d, 2, 7), (nn.AdaptiveMaxPool2d, 4, 2), (nn.AdaptiveMaxPool2d, 5, 3),
         (nn.AdaptiveMaxPool2d, 1, 7)]


@pytest.mark.parametrize("pool,size,out", POOLS,
                         ids=[f"{p.__name__}-{s}to{o}" for p, s, o in POOLS])
def test_adaptive_pools_including_output_larger_than_input(pool: type[nn.Module], size: int,
                                                           out: int) -> None:
    model, x = AdaptivePool(pool, size, out), _x(T, B, 2, size, size)
    g = traced_equals_pytorch(model, x)
    verdicts = agrees_with_oracle(model, g, [x, _x(T, B, 2, size, size, seed=1)])
    # a max pool of spikes, and any pool of one value per window, is spikes
    assert (verdicts["fc"] == "AC") == (pool is nn.AdaptiveMaxPool2d or size == 1)


class Interpolate(nn.Module):
    def __init__(self, kwargs: dict) -> None:
        super().__init__()
        self.kwargs = kwargs
        self.block = ConvBNLIF()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.lif = lif()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        y = F.interpolate(self.block(x).flatten(0, 1), mode="nearest", **self.kwargs)
        return self.lif(self.conv(y).reshape(T, B, *y.shape[1:]))


@pytest.mark.parametrize("kwargs", [{"size": (8, 8)}, {"size": (6, 10)}, {"scale_factor": 2},
                                    {"scale_factor": (2, 3)}], ids=str)
def test_nearest_interpolation(kwargs: dict) -> None:
    model, x = Interpolate(kwargs), _x(T, B, 2, 4, 4)
    g = traced_equals_pytorch(model, x)
    assert agrees_with_oracle(model, g, [x, _x(T, B, 2, 4, 4, seed=1)])["conv"] == "AC"


class Einops(nn.Module):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.how, self.T = how, T
        self.conv, self.bn, self.lif = nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), lif()
        self.to_seq = nn.Sequential(Rearrange("t b c h w -> (t b) c h w"), nn.Conv2d(2, 4, 3, padding=1),
                                    nn.BatchNorm2d(4), Rearrange("(t b) c h w -> t b c h w", t=T))
        self.head = nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.how == "Rearrange layer":
            return self.lif(self.to_seq(x))
        if self.how == "repeat":  # x: [B, C, H, W]
            x = einops.repeat(x, "b c h w -> t b c h w", t=self.T)
        y = self.bn(self.conv(einops.rearrange(x, "t b c h w -> (t b) c h w")))
        s = self.lif(einops.rearrange(y, "(t b) c h w -> t b c h w", t=self.T))
        if self.how == "reduce":
            return self.head(einops.reduce(s, "t b c h w -> t b c", "mean"))
        return s


@pytest.mark.parametrize("how,shape", [("rearrange", (T, B, 2, 8, 8)), ("repeat", (B, 2, 8, 8)),
                                       ("reduce", (T, B, 2, 8, 8)),
                                       ("Rearrange layer", (T, B, 2, 8, 8))],
                         ids=["rearrange", "repeat", "reduce", "Rearrange layer"])
def test_einops(how: str, shape: tuple[int, ...]) -> None:
    traced_equals_pytorch(Einops(how), _x(*shape))


class MergeTB(nn.Module):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.conv, self.bn, self.lif = nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), lif()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        if self.how == "flatten(0, 1)":
            y = x.flatten(0, 1)
        elif self.how == "reshape(T * B, ...)":
            y = x.reshape(T * B, C, H, W)
        else:
            y = x.contiguous().view(-1, C, H, W)
        y = self.bn(self.conv(y))
        return self.lif(y.view(T, B, -1, H, W) if self.how.startswith("view") else y.reshape(T, B, -1, H, W))


@pytest.mark.parametrize("how", ["flatten(0, 1)", "reshape(T * B, ...)", "view(-1, C, H, W)"])
def test_time_and_batch_merged(how: str) -> None:
    traced_equals_pytorch(MergeTB(how), _x(T, B, 2, 8, 8))


class PerStepLogits(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = ConvBNLIF()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        return self.head(self.pool(self.block(x).flatten(0, 1)).reshape(T, B, -1))  # [T, B, classes]


def test_per_step_outputs_averaged_outside_the_model() -> None:
    model, x = PerStepLogits(), _x(T, B, 2, 8, 8)
    g = traced_equals_pytorch(model, x)
    (out,), _ = interpreter.run(g, [x])
    ref, _ = forward(model, x)
    assert out.shape == (T, B, 10)
    assert torch.allclose(out.mean(0), ref.mean(0), atol=1e-5, rtol=0)
    assert agrees_with_oracle(model, g, [x, _x(T, B, 2, 8, 8, seed=1)])["head"] == "READOUT_MAC"


@pytest.mark.parametrize("batch", [1, 2])
def test_layer_flatten_and_linear_in_multi_step_mode(batch: int) -> None:
    net = nn.Sequential(ab_layer.Conv2d(2, 4, 3, padding=1), ab_layer.BatchNorm2d(4),
                        ab_neuron.LIFNode(detach_reset=True), ab_layer.MaxPool2d(2),
                        ab_layer.Flatten(), ab_layer.Linear(4 * 4 * 4, 10))
    ab_functional.set_step_mode(net, "m")
    x = _x(T, batch, 2, 8, 8)
    g = traced_equals_pytorch(net, x)
    (out,), _ = interpreter.run(g, [x])
    assert out.shape == (T, batch, 10)


class DVSNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1, self.sn1 = nn.Conv2d(2, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), lif()
        self.conv2, self.bn2, self.sn2 = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), lif()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        x = self.sn1(self.bn1(self.conv1(x.flatten(0, 1))).reshape(T, B, -1, H, W))
        return self.sn2(self.bn2(self.conv2(x.flatten(0, 1))).reshape(T, B, -1, H, W))


def test_event_input_makes_the_first_conv_an_accumulate() -> None:
    model, x = DVSNet(), _events(T, B, 2, 8, 8)
    g = traced_equals_pytorch(model, x, input_kind="spikes")
    assert agrees_with_oracle(model, g, [x, _events(T, B, 2, 8, 8, seed=1)]) == \
        {"conv1": "AC", "conv2": "AC"}
    assert snncc_classes(snncc.trace(model, x))["conv1"] == "ENCODING_MAC"  # the default: analog


# -- neurons ---------------------------------------------------------------------------------------

NEURONS = {
    "cd.MultiStepLIF hard ATan": lambda: cd_neuron.MultiStepLIFNode(
        tau=2.0, detach_reset=True, surrogate_function=cd_surrogate.ATan()),
    "cd.MultiStepLIF soft Sigmoid": lambda: cd_neuron.MultiStepLIFNode(
        tau=3.0, v_reset=None, detach_reset=True, surrogate_function=cd_surrogate.Sigmoid(alpha=2.0)),
    "ab.LIF hard ATan store_v_seq": lambda: ab_neuron.LIFNode(
        tau=2.0, step_mode="m", detach_reset=True, surrogate_function=ab_surrogate.ATan(),
        store_v_seq=True),
    "ab.LIF soft PiecewiseQuadratic": lambda: ab_neuron.LIFNode(
        tau=2.0, v_reset=None, step_mode="m", detach_reset=True,
        surrogate_function=ab_surrogate.PiecewiseQuadratic()),
    "ab.IF hard SoftSign store_v_seq": lambda: ab_neuron.IFNode(
        step_mode="m", detach_reset=True, surrogate_function=ab_surrogate.SoftSign(), store_v_seq=True),
    "ab.IF soft ATan": lambda: ab_neuron.IFNode(
        v_reset=None, step_mode="m", detach_reset=True, surrogate_function=ab_surrogate.ATan()),
    "ab.ParametricLIF hard ATan store_v_seq": lambda: ab_neuron.ParametricLIFNode(
        init_tau=3.0, step_mode="m", detach_reset=True, surrogate_function=ab_surrogate.ATan(),
        store_v_seq=True),
    "ab.ParametricLIF soft Sigmoid": lambda: ab_neuron.ParametricLIFNode(
        init_tau=2.0, v_reset=None, step_mode="m", detach_reset=True,
        surrogate_function=ab_surrogate.Sigmoid(alpha=3.0)),
}


class TwoLayers(nn.Module):
    def __init__(self, make) -> None:  # noqa: ANN001
        super().__init__()
        self.conv1, self.bn1, self.sn1 = nn.Conv2d(2, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), make()
        self.conv2, self.bn2, self.sn2 = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), make()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        x = self.sn1(self.bn1(self.conv1(x.flatten(0, 1))).reshape(T, B, -1, H, W))
        return self.sn2(self.bn2(self.conv2(x.flatten(0, 1))).reshape(T, B, -1, H, W))


@pytest.mark.parametrize("name", list(NEURONS))
def test_neuron_variants(name: str) -> None:
    model = TwoLayers(NEURONS[name])
    traced_equals_pytorch(model, _x(T, B, 2, 8, 8))
    assert model.sn1.v_threshold != 1.0  # calibrated: the traced threshold is the model's


@pytest.mark.parametrize("api", ["ab", "cd"])
def test_neuron_saved_with_the_cupy_backend(api: str, tmp_path) -> None:  # noqa: ANN001
    # no GPU here: built with backend='torch', then switched to 'cupy' as a GPU-trained file is
    if api == "ab":
        model = nn.Sequential(ab_layer.Conv2d(2, 4, 3, padding=1, bias=False), ab_layer.BatchNorm2d(4),
                              ab_neuron.LIFNode(detach_reset=True, backend="torch"),
                              ab_layer.Flatten(), ab_layer.Linear(4 * 8 * 8, 10))
        ab_functional.set_step_mode(model, "m")
    else:
        model = nn.Sequential(cd_layer.SeqToANNContainer(nn.Conv2d(2, 4, 3, padding=1, bias=False),
                                                         nn.BatchNorm2d(4)),
                              cd_neuron.MultiStepLIFNode(detach_reset=True, backend="torch"),
                              cd_layer.SeqToANNContainer(nn.Flatten(), nn.Linear(4 * 8 * 8, 10)))
    x = _x(T, B, 2, 8, 8)
    model = _ready(model, x)
    ref, _ = forward(model, x)
    neuron = next(m for m in model.modules() if isinstance(m, SJ_NEURONS))
    if api == "ab":  # its backend setter refuses 'cupy' without CuPy; a file from a GPU
        neuron._backend = "cupy"  # machine holds the attribute itself, as here
    else:
        neuron.backend = "cupy"
    torch.save(model, tmp_path / "model.pt")
    loaded = load_model(tmp_path / "model.pt").module
    assert next(m for m in loaded.modules() if isinstance(m, SJ_NEURONS)).backend == "cupy"
    g = snncc.trace(loaded, x)
    (out,), _ = interpreter.run(g, [x])
    _same(out, ref)


# -- what cannot be traced ---------------------------------------------------------------------------

class BranchOnValues(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lif = lif()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            x = x * 2
        return self.lif(x)


def test_branch_on_tensor_values_names_the_file_and_line() -> None:
    lines, start = inspect.getsourcelines(BranchOnValues.forward)
    line = start + next(i for i, text in enumerate(lines) if "if x.sum() > 0" in text)
    with pytest.raises(SnnccError) as info:
        snncc.trace(BranchOnValues().eval(), _x(T, B, 4))
    assert f"{os.path.basename(__file__)}:{line}" in str(info.value)


# -- a linear chain with no neuron between: Spike-driven Transformer V2's RepConv -------------------

class BNAndPad(nn.Module):
    """BatchNorm, then a border holding what the BN makes of a zero input, so that
    the chain around it is one 3x3 conv (SDT-V2's BNAndPadLayer)."""

    def __init__(self, pad: int, channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(x)
        p, bn = self.pad, self.bn
        border = (bn.bias - bn.running_mean * bn.weight / torch.sqrt(bn.running_var + bn.eps))
        border = border.view(1, -1, 1, 1)
        y = F.pad(y, [p] * 4)
        y[:, :, :p, :] = border
        y[:, :, -p:, :] = border
        y[:, :, :, :p] = border
        y[:, :, :, -p:] = border
        return y


class RepConv(nn.Module):  # conv1x1 -> BN -> pad -> depthwise 3x3 -> pointwise 1x1 -> BN
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cin, 1, bias=False),
            BNAndPad(1, cin),
            nn.Sequential(nn.Conv2d(cin, cin, 3, groups=cin, bias=False),
                          nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class RepConvQ(nn.Module):  # SDT-V2 attention's q branch
    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.head_lif = lif()
        self.q_conv = nn.Sequential(RepConv(dim, dim), nn.BatchNorm2d(dim))
        self.q_lif = lif()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        x = self.head_lif(x)
        q = self.q_conv(x.flatten(0, 1)).reshape(T, B, C, H, W)
        return self.q_lif(q)


def test_repconv_chain_is_merged_into_one_weight_op_fed_spikes() -> None:
    model, x = RepConvQ(), _x(T, B, 8, 6, 6, scale=2.0)
    g = traced_equals_pytorch(model, x)
    report = snncc.check_spike_only(g).report
    assert not report.violations, [f.message for f in report.violations]
    weight_ops = [f for f in report.findings if f.op in WEIGHT_OPS]
    assert len(weight_ops) == 1 and weight_ops[0].cls.value == "AC"
    assert len(report.merged) == 1
    chain = " ".join(report.merged[0].chain)
    for path in ("q_conv.0.body.0", "q_conv.0.body.2.0", "q_conv.0.body.2.1"):
        assert path in chain, chain
    assert "merged" in report.merged[0].note
