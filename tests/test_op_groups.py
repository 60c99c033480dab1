"""The op groups passes and backends dispatch on are derived from the op table, and each
op's flags agree with its own reference semantics (`evaluate`): a zero-preserving op maps
all-zero inputs to all zeros, a monotone one keeps order, a relabeling only rearranges
its input's elements and a data move only copies them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from snncc.ir.groups import NEURON_OPS, STRUCTURAL_OPS, WEIGHT_OPS, ZERO_PRESERVING, OpGroup
from snncc.ir.op import OPS, Attrs, NoAttrs, OpDef
from snncc.ir.ops.combine import CatAttrs, PadAttrs, SliceAttrs
from snncc.ir.ops.elementwise import ScalarAttrs
from snncc.ir.ops.pool import AdaptivePoolAttrs, AvgPoolAttrs, PoolAttrs
from snncc.ir.ops.reduce import ReduceAttrs
from snncc.ir.ops.structure import (
    DimAttrs,
    FlattenAttrs,
    PermuteAttrs,
    RepeatAttrs,
    ReshapeAttrs,
    TransposeAttrs,
)
from snncc.ir.ops.timemask import TimeMaskAttrs
from snncc.ir.ops.upsample import UpsampleAttrs

Shapes = tuple[tuple[int, ...], ...]
X, IMG = (2, 3, 4), (2, 3, 5, 5)
# One or more (attributes, input shapes) per op whose flags make a promise; a new op with
# such a flag needs an example here (test_every_flagged_op_has_an_example).
EXAMPLES: dict[str, list[tuple[Attrs, Shapes]]] = {
    "add": [(NoAttrs(), (X, X)), (NoAttrs(), (X, (4,)))],
    "sub": [(NoAttrs(), (X, X))],
    "mul": [(NoAttrs(), (X, X))],
    "matmul": [(NoAttrs(), (X, (2, 4, 5)))],
    "scale": [(ScalarAttrs(value=-2.5), (X,))],
    "maxpool2d": [(PoolAttrs(kernel=(2, 2), stride=(2, 2), padding=(1, 1)), (IMG,)),
                  (PoolAttrs(kernel=(3, 3), stride=(2, 2), padding=(0, 0), ceil_mode=True), (IMG,))],
    "avgpool2d": [(AvgPoolAttrs(kernel=(3, 3), stride=(2, 2), padding=(1, 1)), (IMG,)),
                  (AvgPoolAttrs(kernel=(2, 2), stride=(2, 2), padding=(1, 1),
                                count_include_pad=False), (IMG,))],
    "adaptive_maxpool2d": [(AdaptivePoolAttrs(output_size=(2, 3)), (IMG,))],
    "adaptive_avgpool2d": [(AdaptivePoolAttrs(output_size=(2, 3)), (IMG,)),
                           (AdaptivePoolAttrs(output_size=(7, 7)), (IMG,))],
    "sum": [(ReduceAttrs(dims=(1, -1)), (X,)), (ReduceAttrs(dims=(0,), keepdim=True), (X,))],
    "mean": [(ReduceAttrs(dims=(1, -1)), (X,))],
    "amax": [(ReduceAttrs(dims=(-1,)), (X,))],
    "identity": [(NoAttrs(), (X,))],
    "reshape": [(ReshapeAttrs(shape=(6, 4)), (X,))],
    "flatten": [(FlattenAttrs(start=1, end=2), (X,)), (FlattenAttrs(start=0, end=1), (X,))],
    "transpose": [(TransposeAttrs(dim0=0, dim1=2), (X,))],
    "permute": [(PermuteAttrs(dims=(2, 0, 1)), (X,))],
    "unsqueeze": [(DimAttrs(dim=1), (X,))],
    "repeat": [(RepeatAttrs(repeats=(3, 1, 1, 2)), (X,))],
    "cat": [(CatAttrs(dim=1), (X, (2, 2, 4))), (CatAttrs(dim=-1), (X, X, X))],
    "slice": [(SliceAttrs(dim=2, start=1, stop=4, step=2), (X,))],
    "pad": [(PadAttrs(pads=(1, 2, 0, 1)), (X,)), (PadAttrs(pads=(1, 1), value=0.7), (X,))],
    "upsample_nearest": [(UpsampleAttrs(size=(7, 9)), (IMG,)), (UpsampleAttrs(size=(11,)), (X,))],
    "time_mask": [(TimeMaskAttrs(mask=(1, 0)), (X,))],
}


def _flagged(d: type[OpDef]) -> bool:
    overrides = d.preserves_zero.__func__ is not OpDef.preserves_zero.__func__  # type: ignore[attr-defined]
    promises_zero = d.zero_preserving or overrides
    return d.num_inputs != 0 and (promises_zero or d.monotone or d.relabels or d.moves_data)


CASES = [(name, attrs, shapes) for name, cases in EXAMPLES.items() for attrs, shapes in cases]


def _cases(keep: Callable[[type[OpDef], Attrs], bool]) -> Any:
    """The examples whose op makes the promise under test (each test checks one flag)."""
    return [pytest.param(n, a, s, id=f"{n}-{i}") for i, (n, a, s) in enumerate(CASES)
            if keep(OPS[n], a)]


def _eval(name: str, attrs: Attrs, xs: list[torch.Tensor]) -> torch.Tensor:
    return OPS[name].evaluate(attrs, {}, xs)


def _rand(shapes: Shapes, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]


def test_every_flagged_op_has_an_example() -> None:
    missing = sorted(n for n, d in OPS.items() if _flagged(d) and n not in EXAMPLES)
    assert not missing, f"add examples for {missing}"


@pytest.mark.parametrize("name,attrs,shapes", _cases(lambda d, a: d.preserves_zero(a)))
def test_zero_preserving_ops_map_zeros_to_zeros(name: str, attrs: Attrs, shapes: Shapes) -> None:
    d = OPS[name]
    y = _eval(name, attrs, [torch.zeros(s, dtype=torch.float64) for s in shapes])
    assert y.numel() and torch.all(y == 0)
    if d.monotone:  # then inputs <= 0 give an output <= 0 (prune-timesteps' N state)
        y = _eval(name, attrs, [-x.abs() for x in _rand(shapes, 1)])
        assert torch.all(y <= 0)


@pytest.mark.parametrize("name,attrs,shapes", _cases(lambda d, a: d.monotone))
def test_monotone_ops_keep_order(name: str, attrs: Attrs, shapes: Shapes) -> None:
    xs = _rand(shapes, 2)
    ys = [x + d.abs() for x, d in zip(xs, _rand(shapes, 3))]
    assert torch.all(_eval(name, attrs, xs) <= _eval(name, attrs, ys))


@pytest.mark.parametrize("name,attrs,shapes", _cases(lambda d, a: d.moves_data or d.relabels))
def test_data_moves_only_copy_and_relabelings_only_rearrange(name: str, attrs: Attrs,
                                                            shapes: Shapes) -> None:
    d = OPS[name]
    assert d.moves_data or not d.relabels, "a relabeling moves data"
    xs = _rand(shapes, 4)  # distinct values: where each output element came from is clear
    y = _eval(name, attrs, xs)
    given = torch.cat([x.flatten() for x in xs])
    assert torch.isin(y.flatten(), given).all(), "a move only copies its inputs' elements"
    if d.relabels:
        assert torch.equal(y.flatten().sort().values, given.sort().values), \
            "a relabeling holds each input element exactly once"


def test_repeat_moves_and_keeps_zeros_but_is_no_relabeling() -> None:
    """prune-timesteps and the quantizer once disagreed about repeat: it is zero-preserving
    (prune may propagate Z through it) but copies elements, so it is not one of the
    per-sample relabelings acsim applies by addressing (STRUCTURAL_OPS)."""
    rep = OPS["repeat"]
    assert rep.moves_data and rep.zero_preserving and rep.monotone and not rep.relabels
    assert "repeat" in ZERO_PRESERVING and "repeat" not in STRUCTURAL_OPS
    attrs, shapes = EXAMPLES["repeat"][0]
    x = _rand(shapes, 5)[0]
    assert _eval("repeat", attrs, [x]).numel() == 6 * x.numel()


def test_groups_are_derived_from_the_op_table() -> None:
    assert set(WEIGHT_OPS) == {"conv1d", "conv2d", "linear"}
    assert set(NEURON_OPS) == {"if", "lif", "plif"}
    assert set(STRUCTURAL_OPS) == {"identity", "reshape", "flatten", "transpose", "permute",
                                   "unsqueeze"}
    # every op prune-timesteps propagated zeros through before the groups were derived
    assert {"add", "sub", "mul", "matmul", "maxpool2d", "avgpool2d", "sum", "identity",
            "reshape", "flatten", "transpose", "permute", "unsqueeze", "repeat", "cat", "slice",
            "upsample_nearest", "adaptive_maxpool2d", "adaptive_avgpool2d",
            "amax"} <= set(ZERO_PRESERVING)
    assert not {"input", "shift", "rsub", "batchnorm", "conv2d", "lif"} & set(ZERO_PRESERVING)
    assert "pad" not in ZERO_PRESERVING  # only with a zero fill: OpDef.preserves_zero
    assert OPS["pad"].preserves_zero(PadAttrs(pads=(1, 1)))
    assert not OPS["pad"].preserves_zero(PadAttrs(pads=(1, 1), value=0.7))
    assert "no_such_op" not in WEIGHT_OPS and 3 not in WEIGHT_OPS


def test_a_group_sees_an_op_registered_later(monkeypatch: pytest.MonkeyPatch) -> None:
    class Scatter(OpDef):  # a user's relabeling, registered after the groups were made
        name = "my_view"
        moves_data = relabels = zero_preserving = monotone = True

    monkeypatch.setitem(OPS, "my_view", Scatter)
    assert "my_view" in STRUCTURAL_OPS and "my_view" in ZERO_PRESERVING
    assert "my_view" not in WEIGHT_OPS
    assert len(OpGroup("any", lambda d: True)) == len(OPS)
