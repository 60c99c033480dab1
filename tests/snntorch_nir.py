"""Helpers shared by the tests of NIR files snnTorch writes: export with snnTorch's own
exporter, its own forward pass (the oracle), and the identity of two snncc graphs."""

from __future__ import annotations

import warnings
from pathlib import Path

import nir
import numpy as np
import torch

from snncc.ir.graph import Graph


def export(net: torch.nn.Module, n_in: int, path: Path) -> Path:
    """``net`` written by snnTorch's ``export_to_nir`` (a sample without batch axis)."""
    from snntorch.export_nir import export_to_nir

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nir.write(path, export_to_nir(net, torch.randn(n_in)))
    return path


def forward(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """snnTorch's own spikes, one step at a time (the last layer returns (spk, mem))."""
    from snntorch import utils

    utils.reset(net)
    with torch.no_grad():
        return torch.stack([net(x[t])[0] for t in range(x.shape[0])])


def export_and_load(net: torch.nn.Module, x: torch.Tensor, path: Path
                    ) -> tuple[torch.Tensor, Graph]:
    """(snnTorch's spikes for ``x`` [T, B, n], snncc's verified graph of its export)."""
    import snncc
    from snncc.ir.graph import verify

    export(net, x.shape[-1], path)
    want = forward(net, x)
    graph = snncc.load(path, input_shape=tuple(x.shape))
    verify(graph)
    return want, graph


def assert_same(a: Graph, b: Graph) -> None:
    """The same nodes, ops, attributes and parameters, bit for bit."""
    assert [(n.name, n.op, n.attrs) for n in a] == [(n.name, n.op, n.attrs) for n in b]
    for n in a:
        m = b.nodes[n.name]
        assert n.params.keys() == m.params.keys(), n.name
        assert all(np.array_equal(v, m.params[k]) for k, v in n.params.items()), n.name
