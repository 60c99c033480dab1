"""The ops the PyTorch frontend emits for joins, cuts, borders, resampling and max
reductions (cat, slice, pad, adaptive avg/max pool, nearest upsampling, amax):
the interpreter equals PyTorch's own functions bit for bit, the type rules keep
spikes spikes where they promise to, bad attributes are ValueErrors, a graph of
all of them round-trips through .snnir, canonicalization pushes time merges
through them, and acsim runs each one (equal to the interpreter) or refuses it
with a diagnostic naming the op."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import snncc
from snncc.backends.acsim import datapath
from snncc.backends.acsim.simulator import _host_value, run_batch
from snncc.diagnostics import SnnccError
from snncc.ir import IRVerificationError, graph_text, load_graph, run, save_graph, verify
from snncc.ir.graph import Graph, Origin
from snncc.ir.op import Attrs, InferContext, Temporal, get_op
from snncc.ir.ops.combine import CatAttrs, PadAttrs, SliceAttrs
from snncc.ir.ops.elementwise import ScalarAttrs
from snncc.ir.ops.io import InputAttrs
from snncc.ir.ops.neurons import LIFAttrs
from snncc.ir.ops.pool import AdaptivePoolAttrs
from snncc.ir.ops.reduce import ReduceAttrs
from snncc.ir.ops.structure import FlattenAttrs, ReshapeAttrs
from snncc.ir.ops.timemask import TimeMaskAttrs
from snncc.ir.ops.upsample import UpsampleAttrs
from snncc.ir.ops.weights import ConvAttrs
from snncc.ir.types import Layout, TensorType, ValueKind, real_type, spike_type
from snncc.passes import get_pass
from snncc.passes.prune_timesteps import step_states
from snncc.passes.quantize.moves import adaptive_taps

T, B = 3, 2
CTX = InferContext(time_steps=T)


def _ev(op: str, attrs: Attrs, *xs: torch.Tensor) -> torch.Tensor:
    return get_op(op).evaluate(attrs, {}, list(xs))


def _ty(op: str, attrs: Attrs, *ins: TensorType) -> TensorType:
    return get_op(op).infer(attrs, list(ins), {}, CTX)


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# -- the interpreter equals PyTorch ------------------------------------------------


@pytest.mark.parametrize("dim", [2, -1, -3])
def test_cat_equals_torch_cat(dim: int) -> None:
    xs = [_rand(T, B, 3, 4, 5, seed=i) for i in range(3)]
    assert torch.equal(_ev("cat", CatAttrs(dim=dim), *xs), torch.cat(xs, dim=dim))


@pytest.mark.parametrize("dim,start,stop,step", [(2, 1, 3, 1), (3, 0, 7, 2), (4, 2, 8, 3),
                                                 (4, 5, 5, 1), (1, 0, 2, 1)])
def test_slice_equals_torch_indexing(dim: int, start: int, stop: int, step: int) -> None:
    x = _rand(T, B, 3, 7, 8)
    want = x[(slice(None),) * dim + (slice(start, stop, step),)]
    attrs = SliceAttrs(dim=dim, start=start, stop=stop, step=step)
    assert torch.equal(_ev("slice", attrs, x), want)
    assert _ty("slice", attrs, real_type(tuple(x.shape))).shape == tuple(want.shape)


@pytest.mark.parametrize("pads,value", [((1, 1), 0.0), ((0, 2, 1, 0), 0.375), ((1, 1, 1, 1, 2, 0), -1.0)])
def test_pad_equals_f_pad(pads: tuple[int, ...], value: float) -> None:
    x = _rand(T, B, 3, 4, 5)
    want = F.pad(x, pads, value=value)
    attrs = PadAttrs(pads=pads, value=value)
    assert torch.equal(_ev("pad", attrs, x), want)
    assert _ty("pad", attrs, real_type(tuple(x.shape))).shape == tuple(want.shape)


POOL_SIZES = [((4, 4), (2, 2)), ((5, 5), (3, 3)), ((7, 5), (3, 2)), ((1, 1), (7, 7)),
              ((2, 3), (7, 5)), ((6, 6), (4, 4)), ((3, 3), (5, 5))]


@pytest.mark.parametrize("op,fn", [("adaptive_avgpool2d", F.adaptive_avg_pool2d),
                                   ("adaptive_maxpool2d", F.adaptive_max_pool2d)])
@pytest.mark.parametrize("hw,out", POOL_SIZES, ids=[f"{a}to{b}" for a, b in POOL_SIZES])
def test_adaptive_pools_equal_pytorch(op: str, fn: object, hw: tuple[int, int],
                                      out: tuple[int, int]) -> None:
    """PyTorch's bins, also for non-divisible sizes and outputs larger than the input."""
    x = _rand(T, B, 3, *hw)
    want = fn(x.flatten(0, 1), out).reshape(T, B, 3, *out)  # type: ignore[operator]
    attrs = AdaptivePoolAttrs(output_size=out)
    assert torch.equal(_ev(op, attrs, x), want)
    assert _ty(op, attrs, real_type(tuple(x.shape))).shape == tuple(want.shape)


UPSAMPLE = [((4, 4), {"size": (8, 8)}), ((4, 4), {"size": (6, 10)}), ((5,), {"size": (12,)}),
            ((4, 4), {"scale_factor": 2.0}), ((4, 5), {"scale_factor": 1.5}),
            ((5,), {"scale_factor": 1.5}), ((4, 3), {"scale_factor": (2.0, 3.0)}),
            ((4, 4), {"scale_factor": 1.7}), ((3, 4), {"scale_factor": (2.2, 1.1)})]


def _upsample_attrs(spatial: tuple[int, ...], kwargs: dict) -> UpsampleAttrs:
    """What the frontend emits for F.interpolate(**kwargs)."""
    if "size" in kwargs:
        return UpsampleAttrs(size=kwargs["size"])
    sf = kwargs["scale_factor"]
    sf = tuple(float(f) for f in sf) if isinstance(sf, tuple) else (float(sf),) * len(spatial)
    return UpsampleAttrs(size=tuple(int(np.floor(n * f)) for n, f in zip(spatial, sf)),
                         scale_factor=sf)


@pytest.mark.parametrize("spatial,kwargs", UPSAMPLE, ids=[str(k) for _, k in UPSAMPLE])
def test_upsample_nearest_equals_interpolate(spatial: tuple[int, ...], kwargs: dict) -> None:
    x = _rand(T, B, 3, *spatial)
    want = F.interpolate(x.flatten(0, 1), mode="nearest", **kwargs)
    want = want.reshape(T, B, 3, *want.shape[2:])
    attrs = _upsample_attrs(spatial, kwargs)
    assert torch.equal(_ev("upsample_nearest", attrs, x), want)
    assert _ty("upsample_nearest", attrs, real_type(tuple(x.shape))).shape == tuple(want.shape)


def test_upsample_keeps_how_the_user_asked() -> None:
    """By size and by scale factor PyTorch picks different sources for the same output
    size (here 4 -> 6): the attribute decides which rule evaluate uses."""
    x = torch.arange(4.0).reshape(1, 1, 4)
    by_factor = _ev("upsample_nearest", UpsampleAttrs(size=(6,), scale_factor=(1.7,)), x)
    by_size = _ev("upsample_nearest", UpsampleAttrs(size=(6,)), x)
    assert torch.equal(by_factor, F.interpolate(x, scale_factor=1.7, mode="nearest"))
    assert torch.equal(by_size, F.interpolate(x, size=6, mode="nearest"))
    assert not torch.equal(by_factor, by_size)


@pytest.mark.parametrize("dims,keepdim", [((-1,), False), ((2, 4), True), ((0,), False),
                                          ((0, 3), True)])
def test_amax_equals_torch_amax(dims: tuple[int, ...], keepdim: bool) -> None:
    x = _rand(T, B, 3, 4, 5)
    attrs = ReduceAttrs(dims=dims, keepdim=keepdim)
    want = x.amax(dim=dims, keepdim=keepdim)
    assert torch.equal(_ev("amax", attrs, x), want)
    ty = _ty("amax", attrs, real_type(tuple(x.shape)))
    assert ty.shape == tuple(want.shape)
    over_time = 0 in dims
    assert (ty.layout == Layout.STATIC) == over_time
    assert get_op("amax").temporal(attrs, [real_type(tuple(x.shape))]) == \
        (Temporal.REDUCE_TIME if over_time else Temporal.PER_STEP)


# -- type rules ------------------------------------------------------------------------


S = spike_type((T, B, 4, 6, 6))
COUNT = TensorType(shape=(T, B, 2, 6, 6), lo=0, hi=3, integer=True)


def test_cat_type_is_the_union() -> None:
    assert _ty("cat", CatAttrs(dim=2), S, S, S).shape == (T, B, 12, 6, 6)
    assert _ty("cat", CatAttrs(dim=2), S, S).kind == ValueKind.SPIKE
    mixed = _ty("cat", CatAttrs(dim=-3), S, COUNT)
    assert (mixed.kind, mixed.lo, mixed.hi, mixed.shape) == (ValueKind.COUNT, 0, 3, (T, B, 6, 6, 6))
    analog = TensorType(shape=S.shape, analog=True)
    assert _ty("cat", CatAttrs(dim=2), S, analog).kind == ValueKind.ANALOG_INPUT
    real = _ty("cat", CatAttrs(dim=2), S, real_type(S.shape))
    assert real.kind == ValueKind.REAL and not real.integer


@pytest.mark.parametrize("value,kind,lo,hi", [(0.0, ValueKind.SPIKE, 0, 1), (1.0, ValueKind.SPIKE, 0, 1),
                                              (2.0, ValueKind.COUNT, 0, 2), (-1.0, ValueKind.INT, -1, 1),
                                              (0.5, ValueKind.REAL, 0, 1)])
def test_pad_value_joins_the_range(value: float, kind: ValueKind, lo: float, hi: float) -> None:
    ty = _ty("pad", PadAttrs(pads=(1, 1, 2, 0), value=value), S)
    assert (ty.kind, ty.lo, ty.hi, ty.shape) == (kind, lo, hi, (T, B, 4, 8, 8))


def test_moves_keep_spikes_and_averages_do_not() -> None:
    keeps = [("slice", SliceAttrs(dim=3, start=0, stop=6, step=2)),
             ("upsample_nearest", UpsampleAttrs(size=(12, 12))),
             ("upsample_nearest", UpsampleAttrs(size=(9, 9), scale_factor=(1.5, 1.5))),
             ("adaptive_maxpool2d", AdaptivePoolAttrs(output_size=(4, 4))),
             ("adaptive_avgpool2d", AdaptivePoolAttrs(output_size=(12, 12))),  # 1 per bin
             ("amax", ReduceAttrs(dims=(0, -1)))]
    for op, attrs in keeps:
        assert _ty(op, attrs, S).kind == ValueKind.SPIKE, op
        assert _ty(op, attrs, COUNT).kind == ValueKind.COUNT, op
    avg = _ty("adaptive_avgpool2d", AdaptivePoolAttrs(output_size=(4, 4)), S)
    assert (avg.kind, avg.lo, avg.hi) == (ValueKind.REAL, 0, 1)
    one = spike_type((T, B, 4, 1, 1))  # spiking_vgg11_bn's 7x7 pool of a 1x1 map copies it
    assert _ty("adaptive_avgpool2d", AdaptivePoolAttrs(output_size=(7, 7)), one).kind == ValueKind.SPIKE
    assert _ty("slice", SliceAttrs(dim=0, start=0, stop=T), S).layout == Layout.TIME
    assert get_op("slice").temporal(SliceAttrs(dim=2, start=0, stop=1), [S]) == Temporal.STRUCTURAL
    assert get_op("cat").temporal(CatAttrs(dim=2), [S, S]) == Temporal.STRUCTURAL


BAD: list[tuple[str, Attrs, list[TensorType]]] = [
    ("cat", CatAttrs(dim=0), [S, S]),  # the time axis
    ("cat", CatAttrs(dim=2), [S, spike_type((T, B, 4, 5, 6))]),  # off-axis sizes differ
    ("cat", CatAttrs(dim=2), [S, spike_type((T, B, 4, 6))]),  # ranks differ
    ("cat", CatAttrs(dim=2), [S, spike_type(S.shape, Layout.STATIC)]),  # layouts differ
    ("cat", CatAttrs(dim=5), [S, S]),
    ("cat", CatAttrs(dim=1), []),
    ("slice", SliceAttrs(dim=3, start=4, stop=2), [S]),
    ("slice", SliceAttrs(dim=3, start=0, stop=7), [S]),
    ("slice", SliceAttrs(dim=3, start=0, stop=6, step=0), [S]),
    ("slice", SliceAttrs(dim=-1, start=0, stop=2), [S]),
    ("slice", SliceAttrs(dim=5, start=0, stop=1), [S]),
    ("slice", SliceAttrs(dim=0, start=1, stop=T), [S]),  # drops time steps
    ("pad", PadAttrs(pads=(1,)), [S]),
    ("pad", PadAttrs(pads=(1, -1)), [S]),
    ("pad", PadAttrs(pads=(1, 1) * 6), [S]),
    ("pad", PadAttrs(pads=(0, 0) * 4 + (1, 0)), [S]),  # pads time
    ("pad", PadAttrs(pads=(1, 1), value=float("inf")), [S]),
    ("adaptive_avgpool2d", AdaptivePoolAttrs(output_size=(2, 2)), [spike_type((4, 6))]),
    ("adaptive_maxpool2d", AdaptivePoolAttrs(output_size=(0, 2)), [S]),
    ("upsample_nearest", UpsampleAttrs(size=(2, 2, 2)), [S]),
    ("upsample_nearest", UpsampleAttrs(size=(12, 12)), [spike_type((6, 6))]),
    ("upsample_nearest", UpsampleAttrs(size=(12, 12), scale_factor=(1.5, 1.5)), [S]),
    ("upsample_nearest", UpsampleAttrs(size=(12,), scale_factor=(2.0, 2.0)), [S]),
    ("upsample_nearest", UpsampleAttrs(size=(0, 3)), [S]),
    ("amax", ReduceAttrs(dims=()), [S]),
    ("amax", ReduceAttrs(dims=(7,)), [S]),
]


@pytest.mark.parametrize("op,attrs,ins", BAD, ids=[f"{o}-{i}" for i, (o, _, _) in enumerate(BAD)])
def test_bad_attributes_are_value_errors(op: str, attrs: Attrs, ins: list[TensorType]) -> None:
    with pytest.raises(ValueError):
        _ty(op, attrs, *ins)


# -- the graph: verify, .snnir, text --------------------------------------------------


def _all_ops_graph() -> Graph:
    g = Graph(time_steps=T)
    x = g.add("input", [], InputAttrs(index=0, shape=(T, B, 4, 5, 5), spikes=True))
    g.inputs.append(x.name)
    c = g.add("cat", [x.name, x.name, x.name], CatAttrs(dim=-3), origin=Origin("blk.cat"))
    s = g.add("slice", [c.name], SliceAttrs(dim=3, start=1, stop=5, step=2))
    p = g.add("pad", [s.name], PadAttrs(pads=(1, 1, 0, 2), value=0.375))
    a = g.add("adaptive_avgpool2d", [p.name], AdaptivePoolAttrs(output_size=(3, 7)))
    m = g.add("adaptive_maxpool2d", [x.name], AdaptivePoolAttrs(output_size=(7, 7)))
    u = g.add("upsample_nearest", [m.name], UpsampleAttrs(size=(10, 10), scale_factor=(1.5, 1.5)))
    v = g.add("upsample_nearest", [u.name], UpsampleAttrs(size=(13, 11)))
    r = g.add("amax", [v.name], ReduceAttrs(dims=(0, -1), keepdim=True))
    g.outputs += [a.name, r.name]
    return g


def test_verify_takes_a_variadic_cat_and_refuses_wrong_arity() -> None:
    g = _all_ops_graph()
    verify(g)
    assert len(g.nodes["cat"].inputs) == 3
    g.nodes["cat"].inputs = []
    with pytest.raises(IRVerificationError, match="0 inputs, op takes 1 or more"):
        verify(g)
    h = _all_ops_graph()
    h.nodes["slice"].inputs = ["cat", "cat"]
    with pytest.raises(IRVerificationError, match="2 inputs, op takes 1"):
        verify(h)


def test_snnir_round_trip_of_every_new_op(tmp_path: Path) -> None:
    g = _all_ops_graph()
    path = tmp_path / "new.snnir"
    save_graph(g, path)
    h = load_graph(path)
    assert graph_text(h) == graph_text(g)
    for n in g:
        assert h.nodes[n.name].attrs == n.attrs and h.nodes[n.name].inputs == n.inputs
    assert h.nodes["upsample_nearest"].attrs.scale_factor == (1.5, 1.5)  # type: ignore[attr-defined]
    assert h.nodes["upsample_nearest_1"].attrs.scale_factor is None  # type: ignore[attr-defined]
    assert isinstance(h.nodes["pad"].attrs.pads, tuple)  # type: ignore[attr-defined]
    x = (torch.rand(T, B, 4, 5, 5, generator=torch.Generator().manual_seed(0)) < 0.4).float()
    for a, b in zip(run(g, [x])[0], run(h, [x])[0]):
        assert torch.equal(a, b)
    text = graph_text(g)
    assert "cat[dim=-3](%input, %input, %input)" in text
    assert "scale_factor=(1.5, 1.5)" in text and "pads=(1, 1, 0, 2), value=0.375" in text


# -- canonicalization -------------------------------------------------------------------


def _merged_graph(op: str, attrs: Attrs, n_in: int = 1) -> Graph:
    """SpikingJelly's pattern: flatten(0, 1) -> op -> reshape back to [T, B, ...]."""
    g = Graph(time_steps=T)
    srcs = []
    for i in range(n_in):
        x = g.add("input", [], InputAttrs(index=i, shape=(T, B, 4, 6, 6), spikes=True))
        g.inputs.append(x.name)
        srcs.append(g.add("flatten", [x.name], FlattenAttrs(start=0, end=1)).name)
    y = g.add(op, srcs, attrs)
    back = g.add("reshape", [y.name], ReshapeAttrs(shape=(T, B, *y.type.shape[1:])))
    g.outputs.append(g.add("lif", [back.name], LIFAttrs(tau=2.0, v_threshold=0.5)).name)
    return g


@pytest.mark.parametrize("op,attrs,n_in", [
    ("cat", CatAttrs(dim=1), 3), ("cat", CatAttrs(dim=-1), 2),
    ("slice", SliceAttrs(dim=2, start=1, stop=6, step=2), 1),
    ("pad", PadAttrs(pads=(1, 1, 2, 0), value=1.0), 1),
    ("upsample_nearest", UpsampleAttrs(size=(9, 9), scale_factor=(1.5, 1.5)), 1),
    ("adaptive_maxpool2d", AdaptivePoolAttrs(output_size=(4, 4)), 1),
    ("adaptive_avgpool2d", AdaptivePoolAttrs(output_size=(4, 5)), 1),
    ("amax", ReduceAttrs(dims=(-1,), keepdim=True), 1)])
def test_unmerge_time_pushes_through(op: str, attrs: Attrs, n_in: int) -> None:
    g = _merged_graph(op, attrs, n_in)
    xs = [(torch.rand(T, B, 4, 6, 6, generator=torch.Generator().manual_seed(i)) < 0.5).float()
          for i in range(n_in)]
    before = run(g, xs)[0][0]
    h = get_pass("unmerge-time")(g.copy()).graph
    verify(h)
    assert [n.op for n in h if n.op not in ("input", "lif")] == [op]
    assert next(n for n in h if n.op == op).type.layout == Layout.TIME
    assert torch.equal(run(h, xs)[0][0], before)


def test_fold_scales_only_through_what_commutes() -> None:
    """A positive scale passes slice and amax into the LIF's threshold; a pad with 1 or
    a negative scale into amax does not commute, so the scale stays."""
    def chain(op: str, attrs: Attrs, c: float) -> list[str]:
        g = Graph(time_steps=T)
        x = g.add("input", [], InputAttrs(index=0, shape=(T, B, 4, 6, 6), spikes=True))
        g.inputs.append(x.name)
        sc = g.add("scale", [x.name], ScalarAttrs(value=c))
        y = g.add(op, [sc.name], attrs)
        g.outputs.append(g.add("lif", [y.name], LIFAttrs(tau=2.0, v_threshold=0.5)).name)
        return [n.op for n in get_pass("fold-scales")(g).graph if n.op != "input"]

    assert chain("slice", SliceAttrs(dim=3, start=0, stop=4), 0.5) == ["slice", "lif"]
    assert chain("amax", ReduceAttrs(dims=(-1,)), 0.5) == ["amax", "lif"]
    assert chain("pad", PadAttrs(pads=(1, 1)), 0.5) == ["pad", "lif"]
    assert chain("pad", PadAttrs(pads=(1, 1), value=1.0), 0.5) == ["scale", "pad", "lif"]
    assert chain("amax", ReduceAttrs(dims=(-1,)), -0.5) == ["scale", "amax", "lif"]
    assert chain("adaptive_maxpool2d", AdaptivePoolAttrs(output_size=(3, 3)), -2.0)[0] == "scale"


# -- acsim -------------------------------------------------------------------------------


def _acsim_graph(op: str, attrs: Attrs, *, n_in: int = 1, current: bool = False,
                 shape: tuple[int, ...] = (4, 6, 6)) -> Graph:
    """spikes [-> 1x1 conv: a current] -> op -> [3x3 conv ->] LIF."""
    rng = np.random.default_rng(0)
    g = Graph(time_steps=T)
    x = g.add("input", [], InputAttrs(index=0, shape=(T, B, *shape), spikes=True))
    g.inputs.append(x.name)
    src = x.name
    conv = ConvAttrs(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)
    if current:
        params = {"weight": (rng.standard_normal((4, shape[0], 1, 1)) * 0.5).astype(np.float32),
                  "bias": (rng.standard_normal(4) * 0.2).astype(np.float32)}
        src = g.add("conv2d", [src], conv, params, Origin("pre")).name
    y = g.add(op, [src] * n_in, attrs, origin=Origin("blk.op"))
    nxt = y.name
    if not current and len(y.type.shape) == 5:
        w = (rng.standard_normal((3, y.type.shape[2], 3, 3)) * 0.5).astype(np.float32)
        nxt = g.add("conv2d", [nxt], conv.model_copy(update={"padding": (1, 1)}), {"weight": w},
                    Origin("conv")).name
    g.outputs.append(g.add("lif", [nxt], LIFAttrs(tau=2.0, v_threshold=0.3), origin=Origin("lif")).name)
    return g


ON_CHIP = [
    ("cat", CatAttrs(dim=-3), 3, False), ("cat", CatAttrs(dim=-1), 2, True),
    ("slice", SliceAttrs(dim=3, start=1, stop=6, step=2), 1, False),
    ("slice", SliceAttrs(dim=4, start=0, stop=5, step=3), 1, True),
    ("pad", PadAttrs(pads=(1, 2, 0, 1)), 1, False), ("pad", PadAttrs(pads=(1, 2, 0, 1)), 1, True),
    ("pad", PadAttrs(pads=(1, 1, 1, 1), value=1.0), 1, False),
    ("upsample_nearest", UpsampleAttrs(size=(9, 9), scale_factor=(1.5, 1.5)), 1, False),
    ("upsample_nearest", UpsampleAttrs(size=(8, 11)), 1, True),
    ("adaptive_maxpool2d", AdaptivePoolAttrs(output_size=(4, 4)), 1, False),
    ("adaptive_maxpool2d", AdaptivePoolAttrs(output_size=(12, 12)), 1, True),  # 1 per bin
    ("adaptive_avgpool2d", AdaptivePoolAttrs(output_size=(12, 12)), 1, False),
    ("adaptive_avgpool2d", AdaptivePoolAttrs(output_size=(12, 6)), 1, True),
    ("amax", ReduceAttrs(dims=(-1,), keepdim=True), 1, False),
    ("amax", ReduceAttrs(dims=(2, 3)), 1, False),
]


@pytest.mark.parametrize("op,attrs,n_in,current", ON_CHIP,
                         ids=[f"{o}-{'current' if c else 'spikes'}-{i}"
                              for i, (o, _, _, c) in enumerate(ON_CHIP)])
def test_acsim_runs_the_op_as_the_interpreter_does(op: str, attrs: Attrs, n_in: int,
                                                   current: bool) -> None:
    """Spikes and counts equal the interpreter's; a moved current, dequantized, equals
    the op applied to the dequantized current (its pending bias moved with it)."""
    g = _acsim_graph(op, attrs, n_in=n_in, current=current)
    compiled = snncc.compile(g, target="acsim").compiled
    assert compiled is not None
    program = compiled.program
    x = (torch.rand(T, 5, 4, 6, 6, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    r, _ = run_batch(program, x.numpy())  # another batch size than the graph's
    node = program.graph.nodes[op]
    if current:
        src = node.inputs[0]
        got = _host_value(program.qg, op, r.values[op])
        want = node.opdef.evaluate(node.attrs, {}, [_host_value(program.qg, src, r.values[src])] * n_in)
        assert program.qg.categories[op].value == "current"
        assert torch.equal(got, want)
    else:
        (_,), ref = run(program.graph, [x], record=True)
        assert program.qg.categories[op].value in ("spike", "count")
        assert np.array_equal(np.asarray(r.values[op], dtype=np.float32), ref[op].numpy())
    assert r.values[program.graph.outputs[0]].shape[1] == 5


REFUSED = [
    ("adaptive_avgpool2d", AdaptivePoolAttrs(output_size=(4, 4)), 1, False, "SNN-Q003"),
    ("adaptive_maxpool2d", AdaptivePoolAttrs(output_size=(4, 4)), 1, True, "SNN-Q003"),
    ("pad", PadAttrs(pads=(1, 1), value=0.5), 1, False, "SNN-Q003"),
    ("amax", ReduceAttrs(dims=(-1,)), 1, True, "SNN-Q003"),
    ("cat", CatAttrs(dim=1), 2, False, "SNN-Q001"),  # the batch axis
    ("amax", ReduceAttrs(dims=(1,)), 1, False, "SNN-Q001"),
]


@pytest.mark.parametrize("op,attrs,n_in,current,code", REFUSED,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(REFUSED)])
def test_acsim_refuses_what_it_cannot_run_naming_the_op(op: str, attrs: Attrs, n_in: int,
                                                        current: bool, code: str) -> None:
    g = _acsim_graph(op, attrs, n_in=n_in, current=current)
    with pytest.raises(SnnccError) as info:
        snncc.compile(g, target="acsim")
    d = info.value.diagnostic
    assert d.code == code and d.hint
    assert f"{op} %{op}" in d.message or f"op {op} (node %{op}, module 'blk.op')" in d.message


def test_acsim_runs_an_average_pooled_head_on_the_host() -> None:
    """spikes -> adaptive avg pool -> flatten -> linear: the readout, in float on the host."""
    g = Graph(time_steps=T)
    x = g.add("input", [], InputAttrs(index=0, shape=(T, B, 4, 5, 5), spikes=True))
    g.inputs.append(x.name)
    p = g.add("adaptive_avgpool2d", [x.name], AdaptivePoolAttrs(output_size=(2, 2)))
    f = g.add("flatten", [p.name], FlattenAttrs(start=2, end=-1))
    w = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)
    g.outputs.append(g.add("linear", [f.name], None, {"weight": w}, Origin("head")).name)
    compiled = snncc.compile(g, target="acsim").compiled
    assert compiled is not None
    xs = (torch.rand(T, 4, 4, 5, 5, generator=torch.Generator().manual_seed(2)) < 0.4).float()
    _, (out,) = run_batch(compiled.program, xs.numpy())
    (want,), _ = run(compiled.program.graph, [xs])
    assert np.allclose(out, want.numpy(), atol=1e-5)


@pytest.mark.parametrize("hw,out", [((5, 7), (3, 2)), ((4, 4), (3, 3)), ((2, 3), (7, 5))])
def test_acsim_adaptive_max_of_counts_is_torchs(hw: tuple[int, int], out: tuple[int, int]) -> None:
    """The datapath's OR/max over PyTorch's bins, for counts as for spikes."""
    g = Graph(time_steps=T)
    x = g.add("input", [], InputAttrs(index=0, shape=(T, B, 4, *hw), spikes=True))
    node = g.add("adaptive_maxpool2d", [x.name], AdaptivePoolAttrs(output_size=out))
    counts = np.random.default_rng(3).integers(0, 4, size=(T, 5, 4, *hw)).astype(np.int32)
    rows, cols = adaptive_taps(node, x)
    got = datapath.adaptive_max_or(counts, rows, cols)
    want = F.adaptive_max_pool2d(torch.from_numpy(counts).flatten(0, 1).float(), out)
    assert np.array_equal(got, want.reshape(T, 5, 4, *out).numpy().astype(np.int32))
    assert datapath.adaptive_max_or(counts > 1, rows, cols).dtype == np.bool_


def test_acsim_amax_over_time_feeds_a_head_on_chip() -> None:
    """amax over time and space of spikes is an OR on chip; the head after it accumulates."""
    g = Graph(time_steps=T)
    x = g.add("input", [], InputAttrs(index=0, shape=(T, B, 4, 5, 5), spikes=True))
    g.inputs.append(x.name)
    m = g.add("amax", [x.name], ReduceAttrs(dims=(0, 3)))
    f = g.add("flatten", [m.name], FlattenAttrs(start=1, end=-1))
    w = (np.random.default_rng(0).standard_normal((3, 20)) * 0.5).astype(np.float32)
    g.outputs.append(g.add("linear", [f.name], None, {"weight": w}, Origin("head")).name)
    compiled = snncc.compile(g, target="acsim").compiled
    assert compiled is not None and compiled.qg.categories[m.name].value == "spike"
    xs = (torch.rand(T, 4, 4, 5, 5, generator=torch.Generator().manual_seed(2)) < 0.2).float()
    r, (out,) = run_batch(compiled.program, xs.numpy())
    (want,), ref = run(compiled.program.graph, [xs], record=True)
    assert np.array_equal(r.values[m.name], ref[m.name].numpy() != 0)
    assert np.allclose(out, want.numpy(), atol=0.02 * float(np.abs(w).sum(axis=1).max()))


def test_prune_timesteps_sees_masked_steps_through_the_moves() -> None:
    g = Graph(time_steps=T)
    x = g.add("input", [], InputAttrs(index=0, shape=(T, B, 4, 6, 6), spikes=True))
    g.inputs.append(x.name)
    masked = g.add("time_mask", [x.name], TimeMaskAttrs(mask=(1, 0, 1)))
    moved = {
        "cat": g.add("cat", [masked.name, masked.name], CatAttrs(dim=2)),
        "slice": g.add("slice", [masked.name], SliceAttrs(dim=3, start=0, stop=3)),
        "pad0": g.add("pad", [masked.name], PadAttrs(pads=(1, 1))),
        "pad1": g.add("pad", [masked.name], PadAttrs(pads=(1, 1), value=1.0)),
        "up": g.add("upsample_nearest", [masked.name], UpsampleAttrs(size=(12, 12))),
        "max": g.add("adaptive_maxpool2d", [masked.name], AdaptivePoolAttrs(output_size=(4, 4))),
        "amax": g.add("amax", [masked.name], ReduceAttrs(dims=(-1,))),
    }
    g.outputs += [n.name for n in moved.values()]
    st = step_states(g)
    for key, n in moved.items():
        assert st[n.name] == (["A", "A", "A"] if key == "pad1" else ["A", "Z", "A"]), key
