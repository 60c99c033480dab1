"""Canonicalization folds BN and scales and removes time merges without
changing what the model computes."""

from __future__ import annotations

import torch
from snn_models import ConvNet, forward_reset, randomize_bn

from snncc.frontends.torch import trace
from snncc.ir import Layout, run
from snncc.passes import CANONICALIZE, run_passes


def _spikes_by_module(graph, values):
    return {n.origin.module_path: values[n.name] for n in graph if n.opdef.is_neuron}


def test_canonical_graph_is_explicit_and_equivalent() -> None:
    torch.manual_seed(0)
    model = randomize_bn(ConvNet())
    x = torch.rand(4, 8, 1, 8, 8) * 3
    g = trace(model, x)
    result = run_passes(g, CANONICALIZE)
    c = result.graph
    assert not [n for n in c if n.op in ("batchnorm", "identity", "mean")]
    assert all(n.type.layout != Layout.MERGED for n in c)
    (before,), vb = run(g, [x], record=True)
    (after,), va = run(c, [x], record=True)
    assert torch.allclose(before, forward_reset(model, x), atol=1e-6)
    assert torch.allclose(after, before, atol=1e-5)
    sb, sa = _spikes_by_module(g, vb), _spikes_by_module(c, va)
    assert sb.keys() == sa.keys()
    for k in sb:
        assert torch.equal(sb[k], sa[k]), f"spikes of {k} changed"
    assert ("fold-batchnorm", True) in [(n, m) for n, m, _ in result.log]


def test_print_ir_after_prints_the_named_pass() -> None:
    g = trace(randomize_bn(ConvNet()), torch.zeros(4, 1, 1, 8, 8))
    printed: list[str] = []
    run_passes(g, CANONICALIZE, print_ir_after=["fold-batchnorm"], printer=printed.append)
    assert len(printed) == 1 and "IR after fold-batchnorm" in printed[0]
    assert "batchnorm" not in printed[0].split("\n", 1)[1]


def test_passes_do_not_modify_their_input() -> None:
    g = trace(randomize_bn(ConvNet()), torch.zeros(4, 1, 1, 8, 8))
    n_before = len(g)
    run_passes(g, CANONICALIZE)
    assert len(g) == n_before and any(n.op == "batchnorm" for n in g)
