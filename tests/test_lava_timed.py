"""acsim's Lava-timed mode against real Lava 0.10.0 fixed_pt, whole networks, every step.

The aligned mode (acsim's default) shows at step t what a Lava network shows at
step t + depth, and Lava's LIF also adds its bias on the steps before its first
input arrives; the Lava-timed mode runs on Lava's clock instead (a step per
synapse layer, T + depth steps, bias on every step), so no correction is
needed: every layer's spikes must equal Lava's, step for step.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spikingjelly.clock_driven.neuron import MultiStepLIFNode
from test_lower import _randomize, _RandomNet
from torch import nn

import snncc
from snncc.backends.acsim.chain import DenseSpec, LifSpec
from snncc.backends.acsim.simulator import run_quantized
from snncc.backends.lava.chain import run_lava_chain
from snncc.examples.firing import set_firing_rates
from snncc.lower import lava_timing
from snncc.passes.quantize import quantize


def _chain(widths: list[int]) -> nn.Module:
    layers: list[nn.Module] = []
    for a, b in zip(widths, widths[1:]):
        layers += [nn.Linear(a, b), MultiStepLIFNode(tau=2.0, v_threshold=0.4, detach_reset=True)]
    return nn.Sequential(*layers)


def test_a_chain_on_lavas_clock_equals_lava_at_every_step() -> None:
    torch.manual_seed(3)
    model = _chain([24, 20, 16, 10]).eval()
    T = 6
    x = (torch.rand(T, 1, 24) < 0.4).float()
    graph = snncc.compile(snncc.trace(model, x, input_kind="spikes")).graph
    qg = quantize(graph, "loihi2")
    latency, _ = lava_timing(qg)
    depth = max(latency.values())
    assert depth == 3
    ours = run_quantized(qg, x, lava_timed=True)
    lifs = [n.name for n in qg.graph if n.opdef.is_neuron]
    specs = []
    for n in qg.graph:
        if n.op == "linear":
            wq = qg.weights[n.name]
            lif = next(u for u in lifs if qg.graph.nodes[u].inputs[0] == n.name)
            nq = qg.neurons[lif]
            specs.append((DenseSpec(weights=wq.mantissa, weight_exp=wq.weight_exp),
                          LifSpec(du=nq.du, dv=nq.dv, vth=nq.vth, bias_mant=nq.bias_mant,
                                  bias_exp=nq.bias_exp)))
    spikes_in = np.concatenate([x[:, 0].numpy(), np.zeros((depth, 24), np.float32)])
    lava = run_lava_chain(specs, spikes_in, num_steps=T + depth)
    for k, lif in enumerate(lifs):
        mine = ours.spikes[lif][:, 0]
        assert mine.shape == (T + depth, lava.spikes[k].shape[1])
        assert np.array_equal(mine, lava.spikes[k] != 0), f"{lif} differs from Lava"
    assert any(s.any() for s in lava.spikes)  # not a comparison of silence


class _Residual(nn.Module):
    """Paths of different depth into one current: fc3(lif2(fc2(lif1(fc1(x))))) + fc4(x)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3, self.fc4 = (nn.Linear(16, 12), nn.Linear(12, 12),
                                                  nn.Linear(12, 8), nn.Linear(16, 8))
        self.lif1, self.lif2, self.lif3 = (MultiStepLIFNode(tau=2.0, v_threshold=0.3,
                                                            detach_reset=True) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s2 = self.lif2(self.fc2(self.lif1(self.fc1(x))))
        return self.lif3(self.fc3(s2) + self.fc4(x))


class _ConvNet(nn.Module):
    """An analog image, encoded on the host, then convs and a flatten into a linear."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Conv2d(1, 4, 3, padding=1)
        self.conv = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.fc = nn.Linear(6 * 3 * 3, 5)
        self.lif0, self.lif1, self.lif2 = (MultiStepLIFNode(tau=2.0, v_threshold=0.3,
                                                            detach_reset=True) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        s = self.lif0(self.enc(x.flatten(0, 1)).reshape(T, B, 4, 6, 6))
        s = self.lif1(self.conv(s.flatten(0, 1)).reshape(T, B, 6, 3, 3))
        return self.lif2(self.fc(s.flatten(2)))


def _lava_equals_acsim(model: nn.Module, x: torch.Tensor, input_kind: str,
                       every_layer_fires: bool = True) -> None:
    from snncc.backends.acsim.program import Program
    from snncc.backends.lava.run import run_lava

    set_firing_rates(model, x)
    graph = snncc.compile(snncc.trace(model, x, input_kind=input_kind)).graph
    qg = quantize(graph, "loihi2", calibration=x)
    program = Program(qg)
    ours = run_quantized(program, x, lava_timed=True)
    lava = run_lava(program, x[:, 0].numpy(), aligned=False)
    assert lava.spikes.keys() == {n.name for n in qg.graph if n.opdef.is_neuron}
    for name, spikes in lava.spikes.items():
        assert np.array_equal(spikes, ours.spikes[name][:, 0]), name
    fired = [s.any() for s in lava.spikes.values()]
    assert all(fired) if every_layer_fires else sum(fired) > len(fired) // 2  # not silence


def test_paths_of_different_depth_are_delayed_to_meet_in_lava() -> None:
    torch.manual_seed(1)
    x = (torch.rand(5, 1, 16) < 0.5).float()
    _lava_equals_acsim(_Residual().eval(), x, "spikes")


def test_an_encoded_conv_net_in_lava_equals_acsim_on_lavas_clock() -> None:
    torch.manual_seed(2)
    x = torch.rand(4, 1, 1, 6, 6)
    _lava_equals_acsim(_ConvNet().eval(), x, "analog")


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(branches=st.lists(st.tuples(st.sampled_from(["attn", "mlp", "conv2"]), st.booleans()),
                         min_size=1, max_size=3),
       heads=st.sampled_from([1, 2]), seed=st.integers(0, 1000))
def test_random_dags_in_lava_equal_acsim_on_lavas_clock(branches: list[tuple[str, bool]],
                                                        heads: int, seed: int) -> None:
    """Random residual DAGs (attention, MLP, two-deep branches, long skips; the host's
    encoding summed into the stream): every layer in real Lava equals acsim's run."""
    torch.manual_seed(seed)
    model = _randomize(_RandomNet(8, heads, branches), seed)
    x = torch.rand(3, 2, 3, 4)
    _lava_equals_acsim(model, x, "analog", every_layer_fires=False)


def test_an_asymmetric_conv_kernel_keeps_pytorchs_orientation_in_lava() -> None:
    """The lava-dl bug (FACTS.md section 3) must not happen here: the Lava ``Conv`` built
    for a conv with a non-square, asymmetric kernel computes, by Lava's own convolution
    code, PyTorch's conv2d of the quantized weights (scaled by the exponent Lava's Conv
    ignores), and Lava's spikes equal acsim's."""
    from lava.proc.conv import utils as lava_conv

    from snncc.backends.acsim.program import Program
    from snncc.backends.lava.lowering import plan
    from snncc.backends.lava.run import run_lava

    torch.manual_seed(7)
    conv = nn.Conv2d(2, 3, (3, 2), padding=(1, 0), bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.arange(36, dtype=torch.float32).reshape(3, 2, 3, 2) / 36 - 0.3)
    model = nn.Sequential(conv, MultiStepLIFNode(tau=2.0, v_threshold=0.2, detach_reset=True))
    x = (torch.rand(4, 1, 2, 5, 4) < 0.5).float()
    graph = snncc.compile(snncc.trace(model, x, input_kind="spikes")).graph
    qg = quantize(graph, "loihi2")
    program = Program(qg)
    [c] = plan(program).connections
    assert c.conv is not None and c.weights is None  # Lava's Conv, not a composed matrix
    [op] = list(qg.weights)
    wq = qg.weights[op]
    mant = torch.from_numpy(wq.mantissa.astype(np.float64))
    k = c.conv.kwargs
    for t in range(4):
        want = torch.nn.functional.conv2d(x[t].double(), mant, padding=(1, 0)) * 2 ** wq.weight_exp
        got = lava_conv.conv(x[t, 0].numpy().transpose(2, 1, 0), k["weight"],
                             k["weight"].shape[1:3], k["stride"], k["padding"], k["dilation"],
                             k["groups"])  # what Lava's PyConvModelFixed computes, (W, H, C)
        assert np.array_equal(got.transpose(2, 1, 0), want[0].numpy())
    ours = run_quantized(program, x, lava_timed=True)
    [lif] = [n.name for n in qg.graph if n.opdef.is_neuron]
    lava = run_lava(program, x[:, 0].numpy(), aligned=False)
    assert lava.spikes[lif].any() and np.array_equal(lava.spikes[lif], ours.spikes[lif][:, 0])


def test_spikingjellys_own_spiking_resnet18_in_lava_equals_acsim() -> None:
    """A model we did not write: SpikingJelly's zoo ResNet-18 (LIFNode, multi-step), whose
    identity shortcuts add spikes straight into the residual current (shifted into its
    domain, delayed to meet the conv path): all 17 LIF layers equal in Lava, every step."""
    from spikingjelly.activation_based import functional
    from spikingjelly.activation_based import neuron as ab_neuron
    from spikingjelly.activation_based.model import spiking_resnet

    torch.manual_seed(0)
    model = spiking_resnet.spiking_resnet18(num_classes=10, spiking_neuron=ab_neuron.LIFNode,
                                            detach_reset=True)
    functional.set_step_mode(model, "m")
    _lava_equals_acsim(model.eval(), torch.rand(4, 2, 3, 16, 16), "analog",
                       every_layer_fires=False)


@pytest.mark.parametrize(("seed", "limit"), [(1, 7), (2, 20)])
def test_the_lowerings_relays_and_splits_run_in_lava(seed: int, limit: int) -> None:
    """A fan-in limit that forces the lowering's relays (residual streams forwarded by
    graded relay neurons) and splits (partial sums over input-channel ranges, joined and
    then shifted by the op's exponent): built in Lava as GradedVec relays, part synapses
    and forwarding Sparse synapses, every layer equals acsim's Lava-timed run of the
    same layer program, and the aligned run equals the unsplit model's."""
    from snncc.backends.acsim.program import Program
    from snncc.backends.lava.lowering import plan
    from snncc.backends.lava.placement import placement
    from snncc.backends.lava.run import run_lava
    from snncc.lower import lava_timing, lower

    torch.manual_seed(seed)
    model = _randomize(_RandomNet(8, 1, [("mlp", False), ("attn", True), ("conv2", False)]), seed)
    x = torch.rand(3, 2, 3, 4)
    set_firing_rates(model, x)
    qg = quantize(snncc.compile(snncc.trace(model, x[:, :1])).graph, "loihi2", calibration=x)
    lowered = lower(qg, fan_in_limit=limit)
    program = Program(qg, lowered)
    p = plan(program)
    assert set(p.relays) == set(lowered.relays) and lowered.relays
    # every split the network computes is joined in Lava (a readout's is the host's)
    assert set(p.joins) <= set(lowered.splits) and bool(p.joins) == bool(lowered.splits)
    assert (limit == 7) == bool(lowered.splits)
    deeper = max(lava_timing(qg, lowered)[0].values()) - max(lava_timing(qg)[0].values())
    assert deeper > 0  # each relay and join is one more synapse layer on Lava's clock
    ours = run_quantized(program, x, lava_timed=True)
    lava = run_lava(program, x[:, 0].numpy(), aligned=False)
    for name, spikes in lava.spikes.items():
        assert np.array_equal(spikes, ours.spikes[name][:, 0]), name
    aligned = run_lava(program, x[:, 0].numpy()).windows(x.shape[0])
    unsplit = run_quantized(Program(qg, lower(qg, fan_in_limit=10**9)), x)
    for name, spikes in aligned.items():
        assert np.array_equal(spikes, unsplit.spikes[name][:, 0]), name
    assert sum(int(s.sum()) for s in aligned.values()) > 0
    kinds = {w["kind"] for w in placement(program, p)}
    assert "relay" in kinds and ("join" in kinds) == bool(p.joins)


@settings(max_examples=25, deadline=None)
@given(c_in=st.sampled_from([1, 2, 4]), c_out=st.sampled_from([1, 2, 4]),
       groups=st.sampled_from([1, 2]), kx=st.integers(1, 3), ky=st.integers(1, 3),
       stride=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       padding=st.tuples(st.integers(0, 1), st.integers(0, 2)),
       dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       graded=st.booleans(), seed=st.integers(0, 1000))
def test_snnccs_conv_model_computes_lavas_own_convolution(
        c_in: int, c_out: int, groups: int, kx: int, ky: int, stride: tuple[int, int],
        padding: tuple[int, int], dilation: tuple[int, int], graded: bool, seed: int) -> None:
    """The faster Conv model the runner uses gives, for any geometry, exactly what Lava's
    own ``utils.conv`` (its PyConvModelFixed's arithmetic) gives."""
    from lava.proc.conv import utils as lava_conv_utils

    from snncc.backends.lava.procs.conv_model import lava_conv

    if c_in % groups or c_out % groups:
        return
    rng = np.random.default_rng(seed)
    x = rng.integers(-300, 300, (7, 6, c_in)) if graded else rng.random((7, 6, c_in)) < 0.4
    w = rng.integers(-256, 256, (c_out, kx, ky, c_in // groups))
    want = lava_conv_utils.conv(np.asarray(x), w, (kx, ky), stride, padding, dilation, groups)
    got = lava_conv(np.asarray(x), w, stride, padding, dilation, groups)
    assert got.shape == want.shape and np.array_equal(got, want)


def test_a_zoo_models_per_step_output_predicts_in_lava_as_in_acsim() -> None:
    """SpikingJelly's zoo ResNet-18 returns ``[T, B, classes]`` (its users average over
    T): Lava's outputs keep the time axis, and the predictions (summed over time) are
    acsim's, sample for sample."""
    from spikingjelly.activation_based import functional
    from spikingjelly.activation_based import neuron as ab_neuron
    from spikingjelly.activation_based.model import spiking_resnet

    from snncc.backends.acsim.program import Program
    from snncc.backends.lava import predict

    torch.manual_seed(0)
    model = spiking_resnet.spiking_resnet18(num_classes=10, spiking_neuron=ab_neuron.LIFNode,
                                            detach_reset=True)
    functional.set_step_mode(model, "m")
    x = torch.rand(4, 2, 3, 16, 16)
    model = model.eval()
    set_firing_rates(model, x)
    qg = quantize(snncc.compile(snncc.trace(model, x, input_kind="analog")).graph, "loihi2",
                  calibration=x)
    program = Program(qg)
    lava = predict(program, x.numpy())
    ours = run_quantized(program, x)
    assert lava.outputs.shape == ours.outputs[0].shape == (4, 2, 10)
    assert np.array_equal(lava.outputs, ours.outputs[0])
    want = ours.outputs[0].sum(axis=0).argmax(axis=-1)
    assert lava.predictions.tolist() == ours.predictions.tolist() == want.tolist()
