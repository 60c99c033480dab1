"""map-cores: place each chip layer's neurons on the cores of a target's chips.

Why greedy and simple: the cost model (:mod:`snncc.backends.acsim.costs`) needs
*a* placement to price messages, hops and the per-core critical path, and a
user needs to know early, with numbers, whether a model fits at all. So each
layer of the lowering (:mod:`snncc.lower`), in order, is split into the fewest
equal-ish chunks of contiguous neurons (flat C order of the layer's item shape)
that satisfy a core's limits, and chunks take consecutive cores from 0 upwards,
chip after chip.

Modelling decisions (each a simplification, stated so reports can be read):

- Layers never share a core, even when a small layer leaves most of one empty.
  This wastes cores but makes per-core cost attribution exact.
- A core's synaptic memory holds its neurons' incoming synapses. Where the
  target stores every synapse (``shared_weights: false``, Loihi 1: no shared
  conv kernels) each synapse is counted, spread evenly over the layer's
  neurons. Where it shares weights (``shared_weights: true``, our assumption
  for Loihi 2) a core stores each weight row its neurons use once: a conv
  kernel's output channel for all the positions on the core, a per-token
  linear's rows for all its tokens. A weight takes ``ceil((weight_bits + 1) /
  8)`` bytes (magnitude bits plus the sign; index bits are not modelled).
- A neuron's fan-in must fit one core's input axons (``fan_in_per_core``); the
  lowering has already split what graded spikes allow. Fan-out is not checked.
- Chips: ``limits.chips`` chips of ``cores_available`` cores each; a layer may
  span chips. A chip also holds at most ``max_neurons_per_chip`` neurons and
  ``max_synapses_per_chip`` stored synapses; a chunk that would exceed either
  (or the chip's cores) starts the next chip.
- Tiles hold ``cores_per_tile`` consecutive cores of a chip; tile ``i`` of a chip
  sits at ``(i % mesh_tiles_x, i // mesh_tiles_x)`` on that chip's mesh
  (row-major); tile numbers count on over chips.

There is no registered IR pass: mapping does not change the IR, and a pass
that only returned its input would be noise in ``--print-ir-after``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from snncc.diagnostics import Location, SnnccError
from snncc.lower import ChipLayer
from snncc.targets.model import ResourceLimits, Target

__all__ = ["CorePlacement", "LayerPlacement", "Mapping", "core_bytes", "map_to_cores",
           "stored_synapses", "synapse_bytes"]


@dataclass(frozen=True)
class CorePlacement:
    """One core's share of one layer: neurons ``[start, stop)`` and where the core sits."""

    core: int
    start: int
    stop: int
    tile: int
    x: int
    y: int
    chip: int = 0

    @property
    def neurons(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class LayerPlacement:
    """A layer's cores, and what limited its neurons per core (for reports and hints)."""

    name: str
    module_path: str
    neurons: int
    per_core_limit: int  # most neurons a core of this layer may hold
    limited_by: str  # "neurons" | "synaptic memory"
    cores: list[CorePlacement] = field(default_factory=list)
    synapses: int = 0  # stored synapses (weights) over its cores


@dataclass
class Mapping:
    """Where every hardware layer lives; JSON round-trips via ``to_json``/``from_json``."""

    target: str
    neurons_per_core: int
    layers: dict[str, LayerPlacement]

    @property
    def cores(self) -> list[tuple[str, CorePlacement]]:
        """Every used core with its layer, in core order."""
        pairs = [(lp.name, c) for lp in self.layers.values() for c in lp.cores]
        return sorted(pairs, key=lambda p: p[1].core)

    @property
    def cores_used(self) -> int:
        return sum(len(lp.cores) for lp in self.layers.values())

    @property
    def chips_used(self) -> int:
        return len({c.chip for lp in self.layers.values() for c in lp.cores})

    @property
    def tiles_used(self) -> int:
        return len({c.tile for lp in self.layers.values() for c in lp.cores})

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types: ``{"target", "neurons_per_core", "layers": [...]}``."""
        return {
            "target": self.target,
            "neurons_per_core": self.neurons_per_core,
            "layers": [asdict(lp) for lp in self.layers.values()],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> Mapping:
        """Inverse of :meth:`to_json`; accepts the dict or its JSON text."""
        d = json.loads(data) if isinstance(data, str) else data
        layers: dict[str, LayerPlacement] = {}
        for raw in d["layers"]:
            cores = [CorePlacement(**c) for c in raw["cores"]]
            layers[raw["name"]] = LayerPlacement(**{**raw, "cores": cores})
        return cls(target=d["target"], neurons_per_core=int(d["neurons_per_core"]), layers=layers)


def synapse_bytes(weight_bits: int) -> int:
    """Bytes one stored synapse takes: magnitude bits plus sign, whole bytes."""
    return -(-(weight_bits + 1) // 8)


def _loc(layer: ChipLayer) -> Location:
    return Location(module_path=layer.module_path, node=layer.name)


def _check_fan_in(layer: ChipLayer, lim: ResourceLimits) -> None:
    if layer.fan_in > lim.fan_in_per_core:
        widest = max(layer.inputs, key=lambda s: s.fan_in)
        what = f"%{widest.op}" if widest.op else "an identity connection"
        raise SnnccError(
            "SNN-MAP001",
            f"layer {layer.name}: each neuron reads {layer.fan_in} inputs, "
            f"{layer.fan_in - lim.fan_in_per_core} more than the {lim.fan_in_per_core} "
            f"fan-in of a core (the widest input, {widest.fan_in}, through {what})",
            location=_loc(layer),
            hint=f"a neuron may read at most {lim.fan_in_per_core} inputs on this target, and "
            "the lowering could not split this layer further (a spike product, a grouped "
            "conv, or a target without graded spikes): give the layer fewer inputs, or use a "
            "target with graded spikes (max_message_bits > 0)",
        )


def core_bytes(layer: ChipLayer, neurons: int, syn_bytes: int, shared: bool) -> int:
    """Synaptic memory ``neurons`` consecutive neurons of ``layer`` need on one core."""
    n = max(layer.neurons, 1)
    if not shared:
        return -(-neurons * layer.synapses * syn_bytes // n)
    total = 0
    for s in layer.inputs:
        if s.weight_rows:
            span = neurons if s.row_stride == 1 else -(-neurons // s.row_stride) + 1
            total += min(s.weight_rows, span) * (s.weights // s.weight_rows) * syn_bytes
        elif s.kind == "sparse" and not s.weights:
            continue  # a spike product: no stored weights (its neurons compute it)
        else:
            total += -(-neurons * s.count * syn_bytes // n)
    return total


def stored_synapses(layer: ChipLayer, neurons: int, syn_bytes: int, shared: bool) -> int:
    """The synapses (weights) ``neurons`` consecutive neurons of ``layer`` store."""
    return -(-core_bytes(layer, neurons, syn_bytes, shared) // syn_bytes)


def _per_core_limit(layer: ChipLayer, lim: ResourceLimits, syn_bytes: int) -> tuple[int, str]:
    """Most neurons one core can hold for this layer, and which limit binds."""
    n, mem = layer.neurons, lim.synaptic_memory_bytes_per_core
    cap = min(lim.neurons_per_core, n) if n else lim.neurons_per_core
    if core_bytes(layer, cap, syn_bytes, lim.shared_weights) <= mem:
        return lim.neurons_per_core, "neurons"
    lo, hi = 0, cap  # bytes grow with neurons: the largest count that fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if core_bytes(layer, mid, syn_bytes, lim.shared_weights) <= mem:
            lo = mid
        else:
            hi = mid - 1
    if lo < 1:
        need = core_bytes(layer, 1, syn_bytes, lim.shared_weights)
        raise SnnccError(
            "SNN-MAP002",
            f"layer {layer.name}: one neuron's synapses take {need} bytes "
            f"({layer.synapses / max(n, 1):.0f} synapses x {syn_bytes} bytes), "
            f"{need - mem} more than the {mem} bytes of synaptic memory of a core",
            location=_loc(layer),
            hint=f"a neuron may have at most {mem // syn_bytes} synapses on this target: "
            "give the layer fewer inputs or use fewer weight bits",
        )
    return lo, "synaptic memory"


class _Cursor:
    """The next free core, and what the current chip holds already."""

    def __init__(self, lim: ResourceLimits) -> None:
        self.lim = lim
        self.chip, self.local, self.neurons, self.synapses = 0, 0, 0, 0

    def take(self, neurons: int, synapses: int) -> CorePlacement:
        lim = self.lim
        full = (self.local >= lim.cores_available
                or lim.max_neurons_per_chip is not None
                and self.neurons + neurons > lim.max_neurons_per_chip
                or lim.max_synapses_per_chip is not None
                and self.synapses + synapses > lim.max_synapses_per_chip)
        if full and (self.local or self.neurons):
            self.chip, self.local, self.neurons, self.synapses = self.chip + 1, 0, 0, 0
        local_tile = self.local // lim.cores_per_tile
        core = self.chip * lim.cores_available + self.local
        placement = CorePlacement(core, 0, 0, self.chip * lim.tiles + local_tile,
                                  local_tile % lim.mesh_tiles_x, local_tile // lim.mesh_tiles_x,
                                  self.chip)
        self.local += 1
        self.neurons += neurons
        self.synapses += synapses
        return placement


def _place_layer(layer: ChipLayer, cursor: _Cursor, syn_bytes: int) -> LayerPlacement:
    """Split one layer into the fewest equal-ish chunks, on the cursor's next cores."""
    lim = cursor.lim
    _check_fan_in(layer, lim)
    n = layer.neurons
    if n == 0:
        return LayerPlacement(layer.name, layer.module_path, 0, lim.neurons_per_core, "neurons")
    limit, why = _per_core_limit(layer, lim, syn_bytes)
    k = -(-n // limit)
    cores = []
    for i in range(k):  # bounds i*n//k give chunk sizes floor(n/k) or ceil(n/k) <= limit
        start, stop = i * n // k, (i + 1) * n // k
        stored = stored_synapses(layer, stop - start, syn_bytes, lim.shared_weights)
        c = cursor.take(stop - start, stored)
        cores.append(replace(c, start=start, stop=stop))
    return LayerPlacement(layer.name, layer.module_path, n, limit, why, cores,
                          synapses=sum(stored_synapses(layer, c.neurons, syn_bytes,
                                                       lim.shared_weights) for c in cores))


def _check_chips(layers: list[ChipLayer], placed: list[LayerPlacement], target: Target) -> None:
    """The chips the placement needs against the target's, naming the first layer that
    does not fit and how many chips would."""
    assert target.limits is not None
    lim = target.limits
    chips = 1 + max((c.chip for p in placed for c in p.cores), default=0)
    if chips <= lim.chips:
        return
    first = next(i for i, p in enumerate(placed) if any(c.chip >= lim.chips for c in p.cores))
    p = placed[first]
    used = sum(len(q.cores) for q in placed)
    capacity = lim.chips * lim.cores_available
    raise SnnccError(
        "SNN-MAP005",
        f"the model needs {chips} chips ({used} cores, {sum(x.neurons for x in layers)} "
        f"neurons), {chips - lim.chips} more than the {lim.chips} chip"
        f"{'s' if lim.chips > 1 else ''} of {target.name} ({capacity} cores); layer "
        f"{p.name} is the first that does not fit",
        location=_loc(layers[first]),
        hint=f"the first {first} of {len(layers)} layers fit; the whole model needs "
        f"{chips} chips: use a target with `chips: {chips}` (or more) under limits, or a "
        "smaller model",
        notes=[f"layer {q.name}: {len(q.cores)} cores of at most {q.per_core_limit} "
               f"neurons (limited by {q.limited_by})"
               for q in sorted(placed, key=lambda q: -len(q.cores))[:5]],
    )


def map_to_cores(layers: list[ChipLayer], target: Target) -> Mapping:
    """Place ``layers`` (in order) on ``target``'s cores, or raise ``SNN-MAP00x``.

    Codes: MAP001 fan-in, MAP002 one neuron's synapses exceed a core's memory,
    MAP005 more chips than the target has, MAP006 the target is not a chip.
    """
    if target.limits is None or target.formats is None:
        raise SnnccError(
            "SNN-MAP006",
            f"target {target.name} describes no chip (no limits), so nothing can be mapped",
            hint="use a hardware target such as loihi2 or loihi1",
        )
    lim, syn_bytes = target.limits, synapse_bytes(target.formats.weight_bits)
    cursor = _Cursor(lim)
    placed = [_place_layer(layer, cursor, syn_bytes) for layer in layers]
    _check_chips(layers, placed, target)
    return Mapping(target.name, lim.neurons_per_core, {p.name: p for p in placed})
