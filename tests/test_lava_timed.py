"""acsim's Lava-timed mode against real Lava 0.10.0 fixed_pt, whole networks, every step.

The aligned mode (acsim's default) shows at step t what a Lava network shows at
step t + depth, and Lava's LIF also adds its bias on the steps before its first
input arrives; the Lava-timed mode runs on Lava's clock instead (a step per
synapse layer, T + depth steps, bias on every step), so no correction is
needed: every layer's spikes must equal Lava's, step for step.
"""

from __future__ import annotations

import numpy as np
import torch
from spikingjelly.clock_driven.neuron import MultiStepLIFNode
from torch import nn

import snncc
from snncc.backends.acsim.chain import DenseSpec, LifSpec
from snncc.backends.acsim.simulator import run_quantized
from snncc.backends.lava.chain import run_lava_chain
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
