"""The .snnir reader against random graphs: every valid graph round-trips exactly, and
every graph made invalid in one place is refused with a diagnostic (never loaded, never
an internal error)."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph
from snncc.ir.ops.elementwise import ScalarAttrs
from snncc.ir.ops.io import InputAttrs
from snncc.ir.ops.neurons import LIFAttrs, NeuronAttrs
from snncc.ir.ops.reduce import ReduceAttrs
from snncc.ir.serialize import graph_from_bytes, graph_to_bytes

finite = st.floats(-4, 4, allow_nan=False, width=32)


@st.composite
def graphs(draw: st.DrawFn) -> Graph:
    T, B, F = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 6))
    g = Graph(time_steps=T)
    x = g.add("input", [], InputAttrs(index=0, shape=(T, B, F)), name="x").name
    g.inputs.append(x)
    values = [x]
    for _ in range(draw(st.integers(1, 8))):
        src = draw(st.sampled_from(values))
        n_in = g.nodes[src].type.shape[-1]
        kind = draw(st.sampled_from(["linear", "lif", "if", "scale", "shift", "add"]))
        if kind == "linear":
            n_out = draw(st.integers(1, 6))
            w = np.asarray(draw(st.lists(finite, min_size=n_out * n_in, max_size=n_out * n_in)),
                           dtype=np.float32).reshape(n_out, n_in)
            node = g.add("linear", [src], None, {"weight": w})
        elif kind == "lif":
            node = g.add("lif", [src], LIFAttrs(tau=draw(st.floats(1.0, 8.0)),
                                                v_threshold=draw(st.floats(0.1, 2.0))))
        elif kind == "if":
            node = g.add("if", [src], NeuronAttrs(v_reset=draw(st.sampled_from([None, 0.0]))))
        elif kind in ("scale", "shift"):
            node = g.add(kind, [src], ScalarAttrs(value=draw(finite)))
        else:
            same = [v for v in values if g.nodes[v].type.shape == g.nodes[src].type.shape]
            node = g.add("add", [src, draw(st.sampled_from(same))])
        values.append(node.name)
    out = g.add("sum", [values[-1]], ReduceAttrs(dims=(0,)))
    g.outputs.append(out.name)
    return g


def _same(a: Graph, b: Graph) -> None:
    assert list(a.nodes) == list(b.nodes) and a.inputs == b.inputs and a.outputs == b.outputs
    assert a.time_steps == b.time_steps
    for n, m in zip(a, b):
        assert (n.op, n.inputs, n.attrs, n.type, n.origin) == (m.op, m.inputs, m.attrs, m.type,
                                                               m.origin)
        assert n.params.keys() == m.params.keys()
        assert all(np.array_equal(n.params[k], m.params[k]) for k in n.params)


@settings(max_examples=40, deadline=None)
@given(graphs())
def test_valid_graphs_round_trip_exactly(g: Graph) -> None:
    _same(g, graph_from_bytes(graph_to_bytes(g), "random.snnir"))


def _break(meta: dict, how: str, node: int) -> None:
    nodes = meta["nodes"]
    d = nodes[node % len(nodes)]
    if how == "unknown op":
        d["op"] = "no_such_op"
    elif how == "dangling input":
        d["inputs"] = ["nowhere"]
    elif how == "wrong attr type":
        d["attrs"] = {"unexpected": [1, 2]}
    elif how == "wrong type":
        d["type"] = {"shape": "x"}
    elif how == "missing key":
        del d["origin"]
    elif how == "bad time steps":
        meta["time_steps"] = 0
    elif how == "undefined output":
        meta["outputs"] = ["nowhere"]


@settings(max_examples=60, deadline=None)
@given(graphs(), st.sampled_from(["unknown op", "dangling input", "wrong attr type",
                                  "wrong type", "missing key", "bad time steps",
                                  "undefined output"]), st.integers(0, 100))
def test_graphs_broken_in_one_place_are_refused(g: Graph, how: str, node: int) -> None:
    data = graph_to_bytes(g)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    meta = json.loads(members["graph.json"])
    if how in ("dangling input", "wrong attr type") and node % len(meta["nodes"]) == 0:
        node += 1  # the input node has no inputs and checks its attrs like any other
    _break(meta, how, node)
    members["graph.json"] = json.dumps(meta).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, v in members.items():
            z.writestr(n, v)
    with pytest.raises(SnnccError) as info:
        graph_from_bytes(buf.getvalue(), "broken.snnir")
    assert info.value.code.startswith("SNN-IR")
