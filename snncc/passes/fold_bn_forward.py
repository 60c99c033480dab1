"""fold-batchnorm-forward: a BatchNorm with no weight op before it (it follows a pad,
a pool, a reshape) folds into the weight op after it, when that op adds no padding.

BN is a per-channel affine map `a * z + beta`; a conv (or linear) W that reads it
without padding computes `W (a z + beta) = (W a) z + W beta`, exactly, on every
output: scale W's input channels by `a`, add `W beta` to its bias. This is what
makes SDT-V2's BNAndPadLayer (`F.pad(bn(x))` with a border of `bn(0)`, which the
frontend reads as `bn(pad(x, 0))`) foldable, so the RepConv chain around it is
one linear map on spikes that merge-linear-chains can fuse.
"""

from __future__ import annotations

import numpy as np

from snncc.ir.graph import Graph, Node
from snncc.ir.ops.norm import BatchNormAttrs
from snncc.ir.ops.weights import ConvAttrs
from snncc.passes.manager import PassResult, register_pass

# the axis (from the end) of a weight op's input that holds its input channels
_INPUT_CHANNEL_AXIS = {"conv2d": -3, "conv1d": -2, "linear": -1}


def _foldable(graph: Graph, bn: Node, users: dict[str, list[Node]]) -> Node | None:
    if bn.name in graph.outputs or len(users[bn.name]) != 1:
        return None
    w = users[bn.name][0]
    axis = _INPUT_CHANNEL_AXIS.get(w.op)
    if axis is None or w.inputs != [bn.name]:
        return None
    assert isinstance(bn.attrs, BatchNormAttrs)
    if bn.attrs.channel_axis != axis:
        return None
    if isinstance(w.attrs, ConvAttrs) and any(w.attrs.padding):
        return None  # the padded border would be 0, not beta
    return w


def _fold(graph: Graph, bn: Node, w: Node) -> None:
    p = {k: v.astype(np.float64) for k, v in bn.params.items()}
    c = p["running_mean"].shape[0]
    assert isinstance(bn.attrs, BatchNormAttrs)
    a = p.get("weight", np.ones(c)) / np.sqrt(p["running_var"] + bn.attrs.eps)
    beta = p.get("bias", np.zeros(c)) - p["running_mean"] * a
    weight = w.params["weight"].astype(np.float64)
    cout, cin_g = weight.shape[0], weight.shape[1]
    groups = w.attrs.groups if isinstance(w.attrs, ConvAttrs) else 1
    # input channel read by weight[o, j]: group of o times channels per group, plus j
    ch = (np.arange(cout)[:, None] // (cout // groups)) * cin_g + np.arange(cin_g)[None, :]
    shape = (cout, cin_g) + (1,) * (weight.ndim - 2)
    bias = w.params.get("bias", np.zeros(cout, dtype=np.float32)).astype(np.float64)
    spatial = tuple(range(2, weight.ndim))
    bias = bias + (weight.sum(axis=spatial) * beta[ch]).sum(axis=1)
    params = {"weight": (weight * a[ch].reshape(shape)).astype(np.float32),
              "bias": bias.astype(np.float32)}
    graph.rebuild(w, inputs=[bn.inputs[0]], params=params)


@register_pass("fold-batchnorm-forward")
def fold_batchnorm_forward(graph: Graph) -> PassResult:
    notes: list[str] = []
    for bn in graph:
        if bn.op != "batchnorm" or bn.name not in graph.nodes:
            continue
        w = _foldable(graph, bn, graph.users_map())
        if w is None:
            continue
        _fold(graph, bn, w)
        del graph.nodes[bn.name]
        notes.append(f"folded BN %{bn.name} ({bn.origin.module_path}) into the weight op "
                     f"after it, %{w.name} ({w.origin.module_path})")
    if notes:
        graph.toposort()
    return PassResult(graph, bool(notes), notes)
