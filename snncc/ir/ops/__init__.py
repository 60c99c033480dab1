"""Importing this package registers every op in the op table."""

from snncc.ir.ops import (
    combine,
    elementwise,
    io,
    neurons,
    norm,
    pool,
    recurrent,
    reduce,
    structure,
    synapses,
    timemask,
    upsample,
    weights,
)

__all__ = ["combine", "elementwise", "io", "neurons", "norm", "pool", "recurrent", "reduce",
           "structure", "synapses", "timemask", "upsample", "weights"]
