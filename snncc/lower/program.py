"""The layer program: what a chip runs, as typed data every backend reads.

Why its own form: the quantized graph says *what* is computed; a chip also
needs to know *where* -- which neurons hold which currents, which synapses
feed them and from where, what the host does. Built once by :func:`lower`
(:mod:`.build`), verified (:func:`verify`), printed (:func:`to_text`), and read
by the core mapper, the cost model, acsim and the Lava backend, so none of
them re-derives the chip's layers from the graph.

A *chip layer* is a population of neurons on cores:

- ``neuron``: a spiking neuron layer of the graph (LIF, IF), with the
  quantizer's constants;
- ``relay``: an accumulator neuron that holds a residual-stream current and
  forwards it each step as a graded spike (Loihi 2's graded spikes, Lava's
  ``GradedVec``), so each reader takes one synapse per element instead of every
  projection that built the stream;
- ``partial``: the partial sum of one weight op over a range of its input
  channels, forwarded as a graded spike, when a reader's fan-in exceeds a
  core's (the reader joins the parts with one graded synapse each);
- ``accumulator``: a non-spiking neuron that integrates a current the host
  reads at the end (the readout).

Each layer's inputs are :class:`Synapses`: one connection from a source (a chip
layer, or the host's encoded input) through a weight op (or an identity), with
its fan-in and its synapse count (the delays a Lava-timed chip needs at joins are
:func:`snncc.lower.lava_timing`'s).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from snncc.passes.quantize.integers import NeuronQuant, WeightQuant

HOST = "host"  # the source name of the host's encoded input
LAYER_KINDS = ("neuron", "relay", "partial", "accumulator")
SYNAPSE_KINDS = ("dense", "conv", "sparse", "graded")


@dataclass(frozen=True)
class Synapses:
    """One incoming connection of a chip layer.

    ``fan_in`` is per neuron of the reading layer; ``count`` is the layer's
    total connections (what the papers call synapses); ``weights`` the distinct
    weights behind them (a conv kernel is shared by every output position).
    ``channels`` is the op's input-channel range for a partial sum.
    """

    op: str  # IR node of the weights ("" for an identity: relay, join, spike pass-through)
    sources: tuple[str, ...]  # chip layers (or HOST) whose outputs it reads
    kind: str  # one of SYNAPSE_KINDS
    fan_in: int
    count: int
    weights: int
    channels: tuple[int, int] | None = None
    # Shared weights (a conv kernel, a per-token linear): ``weight_rows`` distinct rows of
    # ``fan_in`` weights, each read by ``row_stride`` consecutive neurons (1: the rows
    # cycle, token-major); 0 rows: every synapse has its own weight.
    weight_rows: int = 0
    row_stride: int = 1

    def __post_init__(self) -> None:
        if self.kind not in SYNAPSE_KINDS:
            raise ValueError(f"synapse kind {self.kind!r} is not one of {SYNAPSE_KINDS}")


@dataclass(frozen=True)
class ChipLayer:
    """One population of neurons on chip, with its inputs and (for neurons) constants."""

    name: str  # IR node (a neuron, relayed add, accumulated current) or "<op>.part<g>"
    module_path: str
    kind: str  # one of LAYER_KINDS
    shape: tuple[int, ...]  # one sample's neurons (item shape)
    inputs: tuple[Synapses, ...] = ()
    neuron: NeuronQuant | None = None
    steps: tuple[int, ...] | None = None  # the pruned schedule; None: every step
    depth: int = 0  # synapse layers from the host to here (Lava's delay alignment)
    of_op: str = ""  # a partial: the weight op it sums part of
    # The item axes in the order the chip numbers the neurons (None: the item's own C
    # order). A per-token linear's neurons are numbered feature-major, so that a core
    # holds a range of features for every token and stores only those weight rows.
    order: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in LAYER_KINDS:
            raise ValueError(f"layer kind {self.kind!r} is not one of {LAYER_KINDS}")

    @property
    def neurons(self) -> int:
        return int(np.prod(self.shape))

    @property
    def fan_in(self) -> int:
        """Inputs one neuron reads, over every connection."""
        return sum(s.fan_in for s in self.inputs)

    @property
    def synapses(self) -> int:
        return sum(s.count for s in self.inputs)

    @property
    def sources(self) -> tuple[str, ...]:
        """Chip layers whose outputs reach this one (the host excluded)."""
        return tuple(dict.fromkeys(s for syn in self.inputs for s in syn.sources if s != HOST))

    @property
    def host_input(self) -> bool:
        return any(HOST in syn.sources for syn in self.inputs)

    @property
    def synapse_kind(self) -> str:
        """The kind most of its synapses are (what a core's synaptic op costs)."""
        by: dict[str, int] = {k: 0 for k in SYNAPSE_KINDS}
        for s in self.inputs:
            by[s.kind] += s.count
        kind = max(by, key=lambda k: by[k])
        return "dense" if kind == "graded" else kind  # a graded synapse is a dense one


@dataclass(frozen=True)
class HostOp:
    """An op the host computes: the encoding layer before the chip, the readout after."""

    name: str
    module_path: str
    role: str  # "encoding" | "readout"


@dataclass(frozen=True)
class Split:
    """A weight op whose sum is computed in parts over input-channel ranges."""

    op: str
    channels: tuple[tuple[int, int], ...]  # [c0, c1) per part, covering the op's inputs
    weight_exp: int
    why: str  # which reader's fan-in forced it, against which limit


@dataclass
class LayerProgram:
    """The chip layers in dependency order, the host's ops, relays and splits."""

    time_steps: int
    layers: list[ChipLayer]
    host: list[HostOp] = field(default_factory=list)
    relays: list[str] = field(default_factory=list)  # IR add/sub nodes held by relay layers
    splits: dict[str, Split] = field(default_factory=dict)  # by weight op
    payload_bits: int = 24  # a graded spike's payload (relays and partial sums)
    weights: dict[str, WeightQuant] = field(default_factory=dict)
    accumulators: list[str] = field(default_factory=list)  # currents the host reads
    schedule: dict[str, tuple[int, ...]] = field(default_factory=dict)  # pruned steps per node

    def layer(self, name: str) -> ChipLayer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    @property
    def depth(self) -> int:
        """Synapse layers on the longest path: a Lava-timed run needs T + depth steps."""
        return max((layer.depth for layer in self.layers), default=0)


def verify(program: LayerProgram) -> None:
    """What is legal after lowering: layers in dependency order, unique names, every
    source a layer before it (or the host), every split covering its op's inputs once.

    Raises ``ValueError`` naming the layer (a bug of the lowering, not of the model).
    """
    seen: set[str] = set()
    for layer in program.layers:
        if layer.name in seen:
            raise ValueError(f"layer {layer.name} appears twice")
        for src in layer.sources:
            if src not in seen and src not in program.accumulators:
                raise ValueError(f"layer {layer.name} reads {src}, which is not a layer before it")
        if layer.kind == "neuron" and layer.neuron is None:
            raise ValueError(f"neuron layer {layer.name} has no neuron constants")
        if layer.kind == "partial" and layer.of_op not in program.splits:
            raise ValueError(f"partial layer {layer.name} belongs to no split")
        seen.add(layer.name)
    for split in program.splits.values():
        ends = [c for c in split.channels]
        if ends[0][0] != 0 or any(a[1] != b[0] for a, b in zip(ends, ends[1:])):
            raise ValueError(f"split of {split.op} does not cover its inputs once: {ends}")
    for relay in program.relays:
        if relay not in seen:
            raise ValueError(f"relay {relay} has no layer")


def to_text(program: LayerProgram) -> str:
    """The layer program as text (``--print-ir-after lower``): one line per layer, then
    its connections."""
    lines = [f"layer_program T={program.time_steps} depth={program.depth} "
             f"layers={len(program.layers)} relays={len(program.relays)} "
             f"splits={len(program.splits)} payload={program.payload_bits}b"]
    for h in program.host:
        lines.append(f"  host {h.role} %{h.name}")
    for layer in program.layers:
        extra = ""
        if layer.neuron is not None:
            q = layer.neuron
            extra = f" du={q.du} dv={q.dv} vth={q.vth}"
        if layer.steps is not None:
            extra += f" steps={list(layer.steps)}"
        lines.append(f"  {layer.kind} %{layer.name} {list(layer.shape)} fan_in={layer.fan_in} "
                     f"synapses={layer.synapses} depth={layer.depth}{extra}")
        for s in layer.inputs:
            what = f"%{s.op}" if s.op else "identity"
            ch = f" channels=[{s.channels[0]}, {s.channels[1]})" if s.channels else ""
            lines.append(f"    <- {', '.join('%' + x for x in s.sources)} via {what} "
                         f"{s.kind} fan_in={s.fan_in} count={s.count}{ch}")
    for split in program.splits.values():
        lines.append(f"  split %{split.op} into {len(split.channels)} parts, exp={split.weight_exp}: "
                     f"{split.why}")
    return "\n".join(lines)
