"""map-cores: place each hardware layer's neurons on the cores of a target chip.

Why greedy and simple: the cost model (:mod:`snncc.backends.acsim.costs`) needs
*a* placement to price messages, hops and the per-core critical path, and a
user needs to know early, with numbers, whether a model fits the chip at all.
So each layer, in graph order, is split into the fewest equal-ish chunks of
contiguous neurons (flat C order of the layer's item shape) that satisfy a
core's limits, and chunks take consecutive cores from 0 upwards.

Modelling decisions (each a simplification, stated so reports can be read):

- Layers never share a core, even when a small layer leaves most of one empty.
  This wastes cores but makes per-core cost attribution exact.
- A core's synaptic memory holds its neurons' incoming synapses, each stored
  explicitly (Loihi 1 stores every synapse; it has no shared conv kernels), so
  a conv layer's synapses are counted per synapse, not per shared weight. A
  synapse takes ``ceil((weight_bits + 1) / 8)`` bytes (magnitude bits plus the
  sign, rounded up to whole bytes; Loihi's packed formats and the index bits
  are not modelled). Synapses are assumed spread evenly over the layer's
  neurons (a chunk of ``c`` of ``N`` neurons holds ``c/N`` of the synapses).
- A neuron's fan-in must fit one core's input axons (``fan_in_per_core``); no
  split helps a neuron that reads more. Fan-out per core is not checked.
- Tiles hold ``cores_per_tile`` consecutive cores; tile ``i`` sits at
  ``(i % mesh_tiles_x, i // mesh_tiles_x)`` on the mesh (row-major).

There is no registered IR pass: mapping does not change the IR, and a pass
that only returned its input would be noise in ``--print-ir-after``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from snncc.lower import ChipLayer
from snncc.diagnostics import Location, SnnccError
from snncc.targets.model import ResourceLimits, Target

__all__ = ["CorePlacement", "LayerPlacement", "Mapping", "map_to_cores", "synapse_bytes"]


@dataclass(frozen=True)
class CorePlacement:
    """One core's share of one layer: neurons ``[start, stop)`` and where the core sits."""

    core: int
    start: int
    stop: int
    tile: int
    x: int
    y: int

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
        raise SnnccError(
            "SNN-MAP001",
            f"layer {layer.name}: each neuron reads {layer.fan_in} inputs, "
            f"{layer.fan_in - lim.fan_in_per_core} more than the {lim.fan_in_per_core} "
            "fan-in of a core",
            location=_loc(layer),
            hint=f"a neuron may read at most {lim.fan_in_per_core} inputs on this target: "
            "give the layer fewer inputs (channels, features or kernel size); "
            "splitting it over more cores does not help",
        )


def _per_core_limit(layer: ChipLayer, lim: ResourceLimits, syn_bytes: int) -> tuple[int, str]:
    """Most neurons one core can hold for this layer, and which limit binds.

    ``c`` neurons need ``c * synapses * syn_bytes / N`` bytes; kept in integers
    so the bound is exact.
    """
    n, mem = layer.neurons, lim.synaptic_memory_bytes_per_core
    need = layer.synapses * syn_bytes  # bytes for the whole layer
    by_memory = (mem * n) // need if need else lim.neurons_per_core
    if by_memory < 1:
        per_neuron = need / n
        raise SnnccError(
            "SNN-MAP002",
            f"layer {layer.name}: one neuron's synapses take {per_neuron:.0f} bytes "
            f"({layer.synapses / n:.0f} synapses x {syn_bytes} bytes), "
            f"{per_neuron - mem:.0f} more than the {mem} bytes of synaptic memory of a core",
            location=_loc(layer),
            hint=f"a neuron may have at most {mem // syn_bytes} synapses on this target: "
            "give the layer fewer inputs or use fewer weight bits",
        )
    if by_memory < lim.neurons_per_core:
        return by_memory, "synaptic memory"
    return lim.neurons_per_core, "neurons"


def _place_layer(
    layer: ChipLayer, first_core: int, lim: ResourceLimits, syn_bytes: int
) -> LayerPlacement:
    """Split one layer into the fewest equal-ish chunks, on cores from ``first_core``."""
    _check_fan_in(layer, lim)
    n = layer.neurons
    if n == 0:
        return LayerPlacement(layer.name, layer.module_path, 0, lim.neurons_per_core, "neurons")
    limit, why = _per_core_limit(layer, lim, syn_bytes)
    k = -(-n // limit)
    cores = []
    for i in range(k):  # bounds i*n//k give chunk sizes floor(n/k) or ceil(n/k) <= limit
        core = first_core + i
        tile = core // lim.cores_per_tile
        cores.append(CorePlacement(core, i * n // k, (i + 1) * n // k, tile,
                                   tile % lim.mesh_tiles_x, tile // lim.mesh_tiles_x))
    return LayerPlacement(layer.name, layer.module_path, n, limit, why, cores)


def _check_chip(layers: list[ChipLayer], placed: list[LayerPlacement], target: Target) -> None:
    """Whole-chip totals: neurons, synapses and cores against the target's limits."""
    assert target.limits is not None
    lim = target.limits
    totals = [("SNN-MAP003", "neurons", "has", sum(layer.neurons for layer in layers),
               lim.max_neurons_per_chip),
              ("SNN-MAP004", "synapses", "stores", sum(layer.synapses for layer in layers),
               lim.max_synapses_per_chip)]
    for code, what, verb, total, limit in totals:
        if limit is not None and total > limit:
            raise SnnccError(
                code,
                f"the model {verb} {total} {what}, {total - limit} more than the {limit} "
                f"{what} of a {target.name} chip",
                hint=f"use a target with more {what} per chip or a smaller model",
            )
    used = sum(len(p.cores) for p in placed)
    if used > lim.cores_available:
        biggest = sorted(placed, key=lambda p: -len(p.cores))[:5]
        raise SnnccError(
            "SNN-MAP005",
            f"the model needs {used} cores, {used - lim.cores_available} more than the "
            f"{lim.cores_available} cores available on {target.name}",
            hint=f"the model needs {used} cores, the target has {lim.cores_available}: "
            "use a target with more cores or a smaller model",
            notes=[f"layer {p.name}: {len(p.cores)} cores of at most {p.per_core_limit} "
                   f"neurons (limited by {p.limited_by})" for p in biggest],
        )


def map_to_cores(layers: list[ChipLayer], target: Target) -> Mapping:
    """Place ``layers`` (in order) on ``target``'s cores, or raise ``SNN-MAP00x``.

    Codes: MAP001 fan-in, MAP002 one neuron's synapses exceed a core's memory,
    MAP003 neurons per chip, MAP004 synapses per chip, MAP005 cores,
    MAP006 the target is not a chip.
    """
    if target.limits is None or target.formats is None:
        raise SnnccError(
            "SNN-MAP006",
            f"target {target.name} describes no chip (no limits), so nothing can be mapped",
            hint="use a hardware target such as loihi2 or loihi1",
        )
    lim, syn_bytes = target.limits, synapse_bytes(target.formats.weight_bits)
    placed: list[LayerPlacement] = []
    next_core = 0
    for layer in layers:
        lp = _place_layer(layer, next_core, lim, syn_bytes)
        placed.append(lp)
        next_core += len(lp.cores)
    _check_chip(layers, placed, target)
    return Mapping(target.name, lim.neurons_per_core, {p.name: p for p in placed})
