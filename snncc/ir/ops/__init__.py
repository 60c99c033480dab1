"""Importing this package registers every op in the op table."""

from snncc.ir.ops import (
    elementwise,
    io,
    neurons,
    norm,
    pool,
    reduce,
    structure,
    timemask,
    weights,
)

__all__ = ["elementwise", "io", "neurons", "norm", "pool", "reduce", "structure", "timemask",
           "weights"]
