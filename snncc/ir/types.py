"""Value types: shape, value kind, known range and time layout of every tensor.

The value kind is *derived* from a range and an integrality flag, so the
lattice SPIKE < COUNT < INT < REAL falls out of interval arithmetic instead of
being a second thing to keep in sync: `1 - s` of a spike has range [0, 1] and
is integral, hence SPIKE again. ANALOG_INPUT marks the model input (and values
that only reshape it), the one place a real-valued activation may meet a weight.
"""

from __future__ import annotations

import math
from enum import Enum

from pydantic import BaseModel, ConfigDict


class ValueKind(str, Enum):
    SPIKE = "SPIKE"
    COUNT = "COUNT"
    INT = "INT"
    REAL = "REAL"
    ANALOG_INPUT = "ANALOG_INPUT"


class Layout(str, Enum):
    """Where time lives in a tensor.

    TIME: axis 0 is the time step (the canonical layout, [T, B, ...]).
    MERGED: axis 0 is time and batch merged (SpikingJelly's `x.flatten(0, 1)`);
        canonicalization removes it.
    STATIC: no time axis (after the readout's mean over time, or a constant).
    """

    TIME = "T"
    MERGED = "TB"
    STATIC = "-"


class TensorType(BaseModel):
    model_config = ConfigDict(frozen=True)

    shape: tuple[int, ...]
    lo: float = -math.inf
    hi: float = math.inf
    integer: bool = False
    analog: bool = False
    layout: Layout = Layout.TIME

    @property
    def kind(self) -> ValueKind:
        if self.analog:
            return ValueKind.ANALOG_INPUT
        if self.integer:
            if self.lo >= 0 and self.hi <= 1:
                return ValueKind.SPIKE
            if self.lo >= 0:
                return ValueKind.COUNT
            return ValueKind.INT
        return ValueKind.REAL

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    def with_(self, **changes: object) -> TensorType:
        return self.model_copy(update=changes)

    def range_text(self) -> str:
        def fmt(x: float) -> str:
            if math.isinf(x):
                return "-inf" if x < 0 else "inf"
            return f"{int(x)}" if self.integer else f"{x:.4g}"

        return f"[{fmt(self.lo)}, {fmt(self.hi)}]"

    def render(self) -> str:
        dims = "x".join(str(d) for d in self.shape)
        return f"{self.kind.value.lower()}{self.range_text()}<{dims}|{self.layout.value}>"


def spike_type(shape: tuple[int, ...], layout: Layout = Layout.TIME) -> TensorType:
    return TensorType(shape=shape, lo=0.0, hi=1.0, integer=True, layout=layout)


def real_type(shape: tuple[int, ...], layout: Layout = Layout.TIME) -> TensorType:
    return TensorType(shape=shape, layout=layout)
