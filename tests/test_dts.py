"""Dynamic time steps end to end: the training-side mask, the trained DTS
digits model, and its compiled, pruned graph."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from spikingjelly.clock_driven import functional
from spikingjelly.clock_driven.neuron import MultiStepLIFNode
from torch import nn

from snncc.api import compile as compile_model
from snncc.examples.digits import encode, load_digits_split
from snncc.examples.train_digits import accuracy
from snncc.frontends.torch import trace
from snncc.ir import run
from snncc.loading import load_model
from snncc.nn import (
    TimestepMask,
    average_timesteps,
    insert_timestep_masks,
    mask_report,
    timestep_masks,
    timestep_regularizer,
)

CKPT = Path(__file__).resolve().parents[1] / "examples" / "checkpoints"
RESULTS = json.loads((CKPT / "results.json").read_text())


def test_mask_is_binary_forward_and_trains_through_the_ste() -> None:
    m = TimestepMask(4, init=0.5)
    with torch.no_grad():
        m.score.copy_(torch.tensor([1.0, -1.0, 0.3, -0.2]))
    x = torch.ones(4, 2, 3, requires_grad=True)
    y = m(x)
    assert torch.equal(y[:, 0, 0], torch.tensor([1.0, 0.0, 1.0, 0.0]))
    assert torch.equal(m.mask(), torch.tensor([1.0, 0.0, 1.0, 0.0]))
    y.sum().backward()
    assert m.score.grad is not None and bool((m.score.grad != 0).all())
    reg = timestep_regularizer(nn.Sequential(m))
    reg.backward()
    assert float(reg.detach()) > 0


def test_shared_mask_per_block_and_reports() -> None:
    model = nn.Module()
    model.block = nn.ModuleList([nn.Sequential(MultiStepLIFNode(), MultiStepLIFNode())])
    insert_timestep_masks(model, 4, (MultiStepLIFNode,), per="block")
    masks = timestep_masks(model)
    assert len(masks) == 1  # one mask shared by the block's two neurons
    with torch.no_grad():
        next(iter(masks.values())).score.copy_(torch.tensor([1.0, -1.0, -1.0, 1.0]))
    assert list(mask_report(model).values()) == [[1, 0, 0, 1]]
    assert average_timesteps(model) == 2.0


def test_dts_checkpoint_meets_its_targets_and_reproduces_its_accuracy() -> None:
    rec = RESULTS["spikingformer_digits_dts"]
    model = load_model(CKPT / "spikingformer_digits_dts.pt").module
    _, _, xte, yte = load_digits_split()
    assert accuracy(model, xte, yte) == rec["test_accuracy"]
    masks = [m.mask() for m in timestep_masks(model).values()]
    direct = float(torch.stack([m.sum() for m in masks]).mean())
    assert abs(average_timesteps(model) - direct) < 1e-6
    assert direct <= 0.7 * 4, "at least 30% fewer time steps than T"
    assert rec["test_accuracy"] >= RESULTS["spikingformer_digits"]["test_accuracy"] - 0.01


def test_compiled_dts_model_reports_the_trained_average_and_prunes_exactly() -> None:
    model = load_model(CKPT / "spikingformer_digits_dts.pt").module.eval()
    _, _, xte, yte = load_digits_split()
    x = encode(xte, 4)
    graph = trace(model, x)
    full = compile_model(graph, prune=False).graph
    result = compile_model(graph)
    ts = result.timesteps
    assert ts is not None
    masks = [m.mask() for m in timestep_masks(model).values()]
    assert abs(ts["average"] - float(torch.stack([m.sum() for m in masks]).mean())) < 1e-6
    assert ts["synaptic_ops_after"] < ts["synaptic_ops_before"]
    assert ts["neuron_updates_after"] < ts["neuron_updates_before"]
    (y_full,), v_full = run(full, [x], record=True)
    (y_pruned,), v_pruned = run(result.graph, [x], record=True)
    assert torch.equal(y_full, y_pruned)  # identical logits on the whole test set
    masked = [n.name for n in result.graph if n.op == "time_mask"]
    assert masked and all(torch.equal(v_full[k], v_pruned[k]) for k in masked)
    functional.reset_net(model)
    with torch.no_grad():
        ref = model(x)
    assert torch.allclose(y_pruned, ref, atol=1e-5)
    correct = int((y_pruned.argmax(1) == yte).sum())
    assert correct / len(yte) == RESULTS["spikingformer_digits_dts"]["test_accuracy"]
