"""Resource use against the target's limits: per chip, per core, and what each split cost.

Why its own module: whether a model fits, and how close it is, is read from
the lowering (:mod:`snncc.lower`) and the mapping (:mod:`snncc.passes.map_cores`)
alone; the text, JSON and HTML reports all show this one dict.
"""

from __future__ import annotations

from typing import Any

from snncc.lower import LayerProgram
from snncc.passes.map_cores import Mapping, core_bytes, synapse_bytes
from snncc.targets import Target

__all__ = ["resources"]


def _split_costs(lowered: LayerProgram, mapping: Mapping,
                 messages: dict[str, float] | None) -> list[dict[str, Any]]:
    """Per split (and relay): the cores its extra layers take, the step of delay it adds
    on a Lava-timed chip, and the graded spikes it sent per inference (if a run is given)."""
    out: list[dict[str, Any]] = []
    for split in lowered.splits.values():
        parts = [layer for layer in lowered.layers if layer.of_op == split.op]
        out.append({
            "op": split.op, "kind": "split", "parts": len(parts),
            "channels": [list(c) for c in split.channels], "why": split.why,
            "extra_neurons": sum(p.neurons for p in parts),
            "extra_cores": sum(len(mapping.layers[p.name].cores) for p in parts),
            "extra_steps": 1,
            "messages": None if messages is None else sum(messages.get(p.name, 0.0)
                                                          for p in parts)})
    for relay in lowered.relays:
        layer = lowered.layer(relay)
        out.append({
            "op": relay, "kind": "relay", "parts": 1, "channels": None,
            "why": "a residual stream read by several layers",
            "extra_neurons": layer.neurons, "extra_cores": len(mapping.layers[relay].cores),
            "extra_steps": 1, "messages": None if messages is None else messages.get(relay, 0.0)})
    return out


def resources(lowered: LayerProgram, mapping: Mapping, target: Target,
              messages: dict[str, float] | None = None) -> dict[str, Any]:
    """Per chip and per core: neurons, stored synapses, fan-in and synaptic memory, each
    beside its limit; per split and relay its cost. ``messages``: per layer, the
    (graded) spikes it sent per inference, from a run's counts."""
    assert target.limits is not None and target.formats is not None
    lim, syn_bytes = target.limits, synapse_bytes(target.formats.weight_bits)
    by_name = {layer.name: layer for layer in lowered.layers}
    cores: list[dict[str, Any]] = []
    for name, c in mapping.cores:
        layer = by_name[name]
        cores.append({
            "core": c.core, "chip": c.chip, "tile": c.tile, "layer": name, "kind": layer.kind,
            "neurons": c.neurons, "fan_in": layer.fan_in,
            "memory_bytes": core_bytes(layer, c.neurons, syn_bytes, lim.shared_weights)})
    chips: list[dict[str, Any]] = []
    for chip in sorted({c["chip"] for c in cores}):
        mine = [c for c in cores if c["chip"] == chip]
        chips.append({"chip": chip, "cores": len(mine),
                      "neurons": sum(c["neurons"] for c in mine),
                      "synapses": sum(-(-c["memory_bytes"] // syn_bytes) for c in mine)})
    return {
        "limits": {"chips": lim.chips, "cores_per_chip": lim.cores_available,
                   "neurons_per_core": lim.neurons_per_core, "fan_in_per_core": lim.fan_in_per_core,
                   "memory_bytes_per_core": lim.synaptic_memory_bytes_per_core,
                   "neurons_per_chip": lim.max_neurons_per_chip,
                   "synapses_per_chip": lim.max_synapses_per_chip,
                   "shared_weights": lim.shared_weights},
        "chips": chips, "cores": cores,
        "splits": _split_costs(lowered, mapping, messages),
        "depth": lowered.depth,
    }
