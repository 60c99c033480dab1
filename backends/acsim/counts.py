"""What one acsim run counted: the events the latency and energy models price.

Why its own module: the simulator produces these numbers, the mapper
(``snncc.passes.map_cores``) places the layers they belong to on cores, and
the cost model (:mod:`.costs`) prices them per core and step; none of the
three should need the others' internals to read them.

A *hardware layer* is what occupies neurons on a chip: every neuron layer of
the graph, plus each readout accumulator (a current the host reads at the end,
which a chip would integrate in non-spiking neurons). Synapses live with their
destination: a hardware layer's synaptic events are all the events of the
weight ops whose currents reach its input (through residual adds, reshapes,
sums), so a current read by two layers is accumulated by both, as on a chip
without graded relays.

All arrays are totals over the batch; divide by ``batch`` for one inference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

I64 = NDArray[np.int64]


@dataclass(frozen=True)
class HardwareLayer:
    """The static facts of one hardware layer: what the mapper needs to place it."""

    name: str  # IR node (a neuron, or the current an accumulator integrates)
    module_path: str
    kind: str  # "neuron" | "accumulator"
    shape: tuple[int, ...]  # one sample's neurons (item shape); N = prod(shape)
    synapse_kind: str  # "dense" | "conv" | "sparse": how its incoming synapses are stored
    fan_in: int  # presynaptic inputs one neuron reads (max over its neurons, all sources)
    synapses: int  # stored synapses of the whole layer
    sources: tuple[str, ...] = ()  # hardware layers whose spikes reach it
    host_input: bool = False  # also reads a host value (the encoding layer's output)

    @property
    def neurons(self) -> int:
        return int(np.prod(self.shape))


@dataclass
class LayerCounts:
    """Per step and neuron, the events of one hardware layer (summed over the batch)."""

    layer: HardwareLayer
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
    layers: dict[str, LayerCounts]  # hardware layers, in graph order
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
