"""Check the static value-kind analysis against real data.

Runs the reference interpreter on sample inputs and records each node's
observed minimum and maximum; a value the analysis calls SPIKE that is not
binary, or a value outside its inferred range, is a bug in the analysis (or a
model the frontend misread), and is reported as such.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pydantic import BaseModel

from snncc.ir.graph import Graph
from snncc.ir.interpreter import run
from snncc.ir.types import ValueKind


class Observation(BaseModel):
    node: str
    module_path: str
    kind: str
    inferred: str
    observed_min: float
    observed_max: float
    consistent: bool


class ObservedRanges(BaseModel):
    observations: list[Observation]

    @property
    def mismatches(self) -> list[Observation]:
        return [o for o in self.observations if not o.consistent]


def observe_ranges(graph: Graph, inputs: Sequence[torch.Tensor]) -> ObservedRanges:
    _, values = run(graph, inputs, record=True)
    out = []
    for n in graph:
        v = values[n.name]
        lo, hi = float(v.min()), float(v.max())
        ok = n.type.lo <= lo and hi <= n.type.hi
        if n.type.integer:
            ok = ok and bool(torch.all(v == v.round()))
        if n.type.kind == ValueKind.SPIKE:
            ok = ok and bool(torch.all((v == 0) | (v == 1)))
        out.append(Observation(node=n.name, module_path=n.origin.module_path,
                               kind=n.type.kind.value, inferred=n.type.range_text(),
                               observed_min=lo, observed_max=hi, consistent=ok))
    return ObservedRanges(observations=out)
