"""The lowered form every backend reads: chip layers, relays, splits, host ops.

:func:`lower` builds a :class:`LayerProgram` from a quantized graph,
:func:`verify` checks it, :func:`to_text` prints it.
"""

from snncc.lower.build import is_pointwise, lava_timing, lower, readout_accumulators
from snncc.lower.program import (
    HOST,
    ChipLayer,
    HostOp,
    LayerProgram,
    Split,
    Synapses,
    to_text,
    verify,
)

__all__ = ["HOST", "ChipLayer", "HostOp", "LayerProgram", "Split", "Synapses", "is_pointwise", "lava_timing", "lower",
           "readout_accumulators", "to_text", "verify"]
