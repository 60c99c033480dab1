"""What one acsim run counted: the events the latency and energy models price.

Why its own module: the simulator produces these numbers, the mapper
(``snncc.passes.map_cores``) places the layers they belong to on cores, and
the cost model (:mod:`.costs`) prices them per core and step; none of the
three should need the others' internals to read them.

The layers counted are the lowering's chip layers
(:class:`snncc.lower.ChipLayer`): neuron layers, relays, partial sums and
readout accumulators. Synapses live with their destination: a layer's synaptic
events are all the events of the connections into it.

All arrays are totals over the batch; divide by ``batch`` for one inference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from snncc.lower import ChipLayer

I64 = NDArray[np.int64]


@dataclass
class LayerCounts:
    """Per step and neuron, the events of one chip layer (summed over the batch)."""

    layer: ChipLayer
    sops: I64  # [T, N] synaptic events received
    spikes: I64  # [T, N] spikes emitted (zeros for an accumulator)
    active: I64  # [T, N] updates that received input or spiked (the rest are inactive)
    # [T] whether the layer runs at each step: prune-timesteps removes steps it proved
    # inert from a layer's schedule, and a removed step costs no neuron update at all.
    executed: NDArray[np.bool_] | None = None  # None: every step

    def executed_steps(self) -> NDArray[np.bool_]:
        n = self.sops.shape[0]
        return np.ones(n, dtype=bool) if self.executed is None else self.executed


@dataclass
class OpCounts:
    """Per weight op: what the papers count (events times fan-out, once) and host MACs."""

    name: str
    module_path: str
    where: str  # "chip" | "host-encoding" | "host-readout"
    sops: I64  # [T] synaptic operations on chip (0 for host ops)
    macs: int  # multiply-accumulates on the host, whole run (0 for chip ops)


@dataclass
class SimCounts:
    time_steps: int
    batch: int
    layers: dict[str, LayerCounts]  # chip layers, in graph order
    ops: dict[str, OpCounts]  # weight ops, in graph order

    def total_sops(self) -> int:
        """Synaptic events delivered to neurons (each reader of a current counts)."""
        return int(sum(int(c.sops.sum()) for c in self.layers.values()))

    def paper_sops(self) -> int:
        """The papers' SOPs: each on-chip weight op's events once."""
        return int(sum(int(o.sops.sum()) for o in self.ops.values()))

    def encoding_macs(self) -> int:
        return int(sum(o.macs for o in self.ops.values() if o.where == "host-encoding"))

    def readout_macs(self) -> int:
        return int(sum(o.macs for o in self.ops.values() if o.where == "host-readout"))
