"""SpikingJelly 0.0.0.0.14's own model zoo, small and firing, ready to trace.

Every model is built by SpikingJelly's own factory or class (nothing of ours but
the constructor arguments; `WithT` passes the `T` that clock_driven's CIFAR-10
net takes as a required forward argument), in multi-step mode, with 10 classes,
T=2 and small inputs. `calibrate` then gives it what a trained model has: BN
running statistics of the data it sees (with noise, and random affine weights)
and a threshold per neuron layer set so that the layer fires about `RATE` of
the time on random inputs (the threshold is the (1 - RATE) quantile of the
layer's first-step membrane charge), so that no comparison passes on silent
layers. The ResNets get 48x48 inputs: at 32x32 ResNet-18's last stage is 1x1, its
AdaptiveAvgPool2d averages one value, and `fc` is fed spikes (an AC, not the
readout the papers mean).

Each `ZooCase` also says what the papers say about it, which `test_zoo` checks
against both the oracle (`oracle.py`) and snncc: SEW-ResNet's ADD connections make
`conv1` of every block after the first and the downsampling convs violations, AND
and IAND and the plain spiking ResNets have none, and the ResNets' `fc` after
AdaptiveAvgPool2d is a readout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from oracle import NEURONS
from oracle import reset_state as reset
from spikingjelly.activation_based import functional as ab_functional
from spikingjelly.activation_based import neuron as ab_neuron
from spikingjelly.activation_based import surrogate as ab_surrogate
from spikingjelly.activation_based.model import parametric_lif_net as ab_plif_net
from spikingjelly.activation_based.model import sew_resnet as ab_sew
from spikingjelly.activation_based.model import spiking_resnet as ab_resnet
from spikingjelly.activation_based.model import spiking_vgg as ab_vgg
from spikingjelly.clock_driven import neuron as cd_neuron
from spikingjelly.clock_driven import surrogate as cd_surrogate
from spikingjelly.clock_driven.model import parametric_lif_net as cd_plif_net
from spikingjelly.clock_driven.model import sew_resnet as cd_sew
from spikingjelly.clock_driven.model import spiking_resnet as cd_resnet
from torch import nn

T = 2
RATE = 0.15  # target firing rate of every neuron layer
NUM_CLASSES = 10


def _charge(m: nn.Module) -> float:
    """What one step of input adds to a resting neuron's membrane (per unit input)."""
    if not getattr(m, "decay_input", False):
        return 1.0
    if isinstance(getattr(m, "w", None), torch.Tensor):  # ParametricLIF: 1/tau = sigmoid(w)
        return float(m.w.detach().sigmoid())
    return 1.0 / float(m.tau)


@torch.no_grad()
def calibrate(model: nn.Module, x: torch.Tensor | tuple, *, rate: float = RATE,
              seed: int = 0) -> nn.Module:
    """One forward on `x` that sets, in the order the forward reaches them, every BN's
    running statistics (the batch's own, with noise; random weight and bias) and every
    neuron's threshold (see the module doc). Returns the model in eval mode."""
    g = torch.Generator().manual_seed(seed)

    def bn(m: nn.modules.batchnorm._BatchNorm, args: tuple) -> None:
        inp = args[0]
        axis = 2 if getattr(m, "step_mode", "s") == "m" else 1
        dims = [d for d in range(inp.dim()) if d != axis]
        c = m.num_features
        mean, var = inp.mean(dims), inp.var(dims) + 1e-3
        m.running_mean.copy_(mean + 0.1 * var.sqrt() * torch.randn(c, generator=g))
        m.running_var.copy_(var * (0.8 + 0.4 * torch.rand(c, generator=g)))
        m.weight.copy_(0.6 + 0.8 * torch.rand(c, generator=g))
        m.bias.copy_(0.4 * torch.rand(c, generator=g) - 0.1)

    def neuron(m: nn.Module, args: tuple) -> None:
        inp = args[0].flatten()
        sample = inp[torch.randint(inp.numel(), (min(inp.numel(), 200_000),), generator=g)]
        q = max(round(float(torch.quantile(sample, 1.0 - rate)) * _charge(m), 3), 0.05)
        m.v_threshold = q
        if "v_threshold" in getattr(m, "_memories_rv", {}):
            # clock_driven keeps v_threshold as a *memory*: reset() would restore 1.0
            m.set_reset_value("v_threshold", q)

    handles = []
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            handles.append(m.register_forward_pre_hook(bn))
        elif isinstance(m, NEURONS):
            handles.append(m.register_forward_pre_hook(neuron))
    model.eval()
    reset(model)
    try:
        model(*(x if isinstance(x, tuple) else (x,)))
    finally:
        for h in handles:
            h.remove()
        reset(model)
    return model


@torch.no_grad()
def forward(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The model's own output on `x` and every neuron layer's spikes (by module path;
    a neuron called once per step has its steps stacked), from a reset state."""
    spikes: dict[str, list[torch.Tensor]] = {}
    handles = []
    for path, m in model.named_modules():
        if isinstance(m, NEURONS):
            def hook(_m: nn.Module, _a: tuple, out: torch.Tensor, path: str = path) -> None:
                spikes.setdefault(path, []).append(out.detach().clone())
            handles.append(m.register_forward_hook(hook))
    model.eval()
    reset(model)
    try:
        out = model(x)
    finally:
        for h in handles:
            h.remove()
        reset(model)
    return out, {p: v[0] if len(v) == 1 else torch.stack(v) for p, v in spikes.items()}


class WithT(nn.Module):
    """clock_driven's MultiStepCIFAR10Net takes `forward(x, T)` with T required."""

    def __init__(self, net: nn.Module, T: int) -> None:
        super().__init__()
        self.net = net
        self.T = T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, self.T)


@dataclass
class ZooCase:
    name: str
    model: nn.Module
    inputs: list[torch.Tensor]  # random inputs; the first is the example input
    input_kind: str = "analog"
    encoding: frozenset[str] = frozenset()  # what the papers say: ENCODING_MAC paths,
    readout: frozenset[str] = frozenset()  # READOUT_MAC paths,
    violations: frozenset[str] = frozenset()  # VIOLATION paths (everything else: AC)
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def example(self) -> torch.Tensor:
        return self.inputs[0]

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        """`make()` once per case (its exception too: a failed trace fails every test
        that needs it with the same error, without tracing again)."""
        if key not in self.cache:
            try:
                self.cache[key] = (True, make())
            except Exception as e:  # noqa: BLE001 - re-raised below, to each caller
                self.cache[key] = (False, e)
        ok, value = self.cache[key]
        if not ok:
            raise value
        return value


def _analog(shape: tuple[int, ...], n: int = 3, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(shape, generator=g) for _ in range(n)]


def _events(shape: tuple[int, ...], n: int = 3, seed: int = 0, p: float = 0.2) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(shape, generator=g) < p).float() for _ in range(n)]


AB_KW = dict(surrogate_function=ab_surrogate.ATan(), detach_reset=True)
CD_KW = dict(surrogate_function=cd_surrogate.ATan(), detach_reset=True)
RESNET_ENC, RESNET_HEAD = frozenset({"conv1"}), frozenset({"fc"})
SEW_ADD_VIOLATIONS = frozenset(
    {f"layer{i}.{b}.conv1" for i in range(1, 5) for b in range(2) if (i, b) != (1, 0)}
    | {f"layer{i}.0.downsample.0" for i in range(2, 5)})


def _multi_step(model: nn.Module) -> nn.Module:
    ab_functional.set_step_mode(model, "m")
    return model


def _resnet_case(name: str, model: nn.Module, inputs: list[torch.Tensor],
                 violations: frozenset[str] = frozenset()) -> ZooCase:
    return ZooCase(name, calibrate(model, inputs[0]), inputs, encoding=RESNET_ENC,
                   readout=RESNET_HEAD, violations=violations)


def ab_spiking_resnet18(neuron: type[nn.Module]) -> ZooCase:
    torch.manual_seed(0)
    model = _multi_step(ab_resnet.spiking_resnet18(num_classes=NUM_CLASSES, spiking_neuron=neuron,
                                                   **AB_KW))
    return _resnet_case(f"ab.spiking_resnet18[{neuron.__name__}]", model,
                        _analog((T, 2, 3, 48, 48)))


def ab_sew_resnet18(cnf: str) -> ZooCase:
    torch.manual_seed(1)
    model = _multi_step(ab_sew.sew_resnet18(num_classes=NUM_CLASSES, cnf=cnf,
                                            spiking_neuron=ab_neuron.LIFNode, **AB_KW))
    return _resnet_case(f"ab.sew_resnet18[{cnf}]", model, _analog((T, 2, 3, 48, 48), seed=1),
                        SEW_ADD_VIOLATIONS if cnf == "ADD" else frozenset())


def ab_spiking_vgg11_bn() -> ZooCase:
    # 32x32 leaves 1x1 after the five max pools; AdaptiveAvgPool2d((7, 7)) copies it
    # to 7x7, so classifier.0 is fed spikes. Its 4096-wide classifier is fixed (129 M
    # parameters), so B=1.
    torch.manual_seed(2)
    model = _multi_step(ab_vgg.spiking_vgg11_bn(num_classes=NUM_CLASSES,
                                                spiking_neuron=ab_neuron.IFNode, **AB_KW))
    inputs = _analog((T, 1, 3, 32, 32), seed=2)
    return ZooCase("ab.spiking_vgg11_bn", calibrate(model, inputs[0]), inputs,
                   encoding=frozenset({"features.0"}))


def ab_plif_cifar10net() -> ZooCase:
    torch.manual_seed(3)
    model = _multi_step(ab_plif_net.CIFAR10Net(channels=32, spiking_neuron=ab_neuron.ParametricLIFNode,
                                               init_tau=2.0, **AB_KW))
    inputs = _analog((T, 2, 3, 32, 32), seed=3)
    return ZooCase("ab.parametric_lif_net.CIFAR10Net", calibrate(model, inputs[0]), inputs,
                   encoding=frozenset({"conv_fc.0"}))


def ab_plif_mnistnet() -> ZooCase:
    torch.manual_seed(4)
    model = _multi_step(ab_plif_net.MNISTNet(channels=16, spiking_neuron=ab_neuron.ParametricLIFNode,
                                             init_tau=2.0, **AB_KW))
    inputs = _analog((T, 2, 1, 28, 28), seed=4)
    return ZooCase("ab.parametric_lif_net.MNISTNet", calibrate(model, inputs[0]), inputs,
                   encoding=frozenset({"conv_fc.0"}))


def cd_sew_resnet18(cnf: str, static_input: bool = False) -> ZooCase:
    """clock_driven's multi-step SEW ResNet-18; with `static_input` the input is
    [B, C, H, W] and the model repeats conv1's output over its own `T`."""
    torch.manual_seed(5)
    model = cd_sew.multi_step_sew_resnet18(num_classes=NUM_CLASSES, T=T, cnf=cnf,
                                           multi_step_neuron=cd_neuron.MultiStepLIFNode, **CD_KW)
    shape = (2, 3, 48, 48) if static_input else (T, 2, 3, 48, 48)
    name = f"cd.multi_step_sew_resnet18[{cnf}{', static input' if static_input else ''}]"
    return _resnet_case(name, model, _analog(shape, seed=5),
                        SEW_ADD_VIOLATIONS if cnf == "ADD" else frozenset())


def cd_spiking_resnet18() -> ZooCase:
    torch.manual_seed(6)
    model = cd_resnet.multi_step_spiking_resnet18(num_classes=NUM_CLASSES,
                                                  multi_step_neuron=cd_neuron.MultiStepIFNode, **CD_KW)
    return _resnet_case("cd.multi_step_spiking_resnet18", model, _analog((T, 2, 3, 48, 48), seed=6))


def cd_plif_nmnist() -> ZooCase:
    torch.manual_seed(7)
    model = cd_plif_net.MultiStepNMNISTNet(channels=16,
                                           multi_step_neuron=cd_neuron.MultiStepParametricLIFNode,
                                           init_tau=2.0, **CD_KW)
    inputs = _events((T, 2, 2, 34, 34), seed=7)
    return ZooCase("cd.parametric_lif_net.MultiStepNMNISTNet", calibrate(model, inputs[0]), inputs,
                   input_kind="spikes")


def cd_plif_cifar10() -> ZooCase:
    torch.manual_seed(8)
    net = cd_plif_net.MultiStepCIFAR10Net(channels=32,
                                          multi_step_neuron=cd_neuron.MultiStepParametricLIFNode,
                                          init_tau=2.0, **CD_KW)
    inputs = _analog((2, 3, 32, 32), seed=8)  # [B, C, H, W]: the net repeats over T itself
    model = WithT(net, T)
    return ZooCase("cd.parametric_lif_net.MultiStepCIFAR10Net", calibrate(model, inputs[0]), inputs,
                   encoding=frozenset({"net.conv1"}))


ZOO: dict[str, Callable[[], ZooCase]] = {
    "ab_spiking_resnet18_lif": lambda: ab_spiking_resnet18(ab_neuron.LIFNode),
    "ab_spiking_resnet18_if": lambda: ab_spiking_resnet18(ab_neuron.IFNode),
    "ab_sew_resnet18_add": lambda: ab_sew_resnet18("ADD"),
    "ab_sew_resnet18_and": lambda: ab_sew_resnet18("AND"),
    "ab_sew_resnet18_iand": lambda: ab_sew_resnet18("IAND"),
    "ab_spiking_vgg11_bn": ab_spiking_vgg11_bn,
    "ab_plif_cifar10net": ab_plif_cifar10net,
    "ab_plif_mnistnet": ab_plif_mnistnet,
    "cd_sew_resnet18_add": lambda: cd_sew_resnet18("ADD"),
    "cd_sew_resnet18_iand_static": lambda: cd_sew_resnet18("IAND", static_input=True),
    "cd_spiking_resnet18": cd_spiking_resnet18,
    "cd_plif_nmnist": cd_plif_nmnist,
    "cd_plif_cifar10": cd_plif_cifar10,
}
