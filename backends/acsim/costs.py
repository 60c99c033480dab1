"""Price one acsim run on a mapped chip: latency and energy per core and step.

Why a model this simple: it is SANA-FE's *simple* latency model (per core
``max(neuron time, message time)``, then the slowest core, plus the barrier),
which its authors report within 25% of real Loihi for latency and 12% for
energy, fed with event counts the simulator already has. Everything is per
ONE inference: batch totals are divided by ``counts.batch`` and kept as floats.

Per core and step the model counts:

- synaptic ops: the events its neurons received, priced by the layer's
  ``synapse_kind`` (``synaptic_op_dense``/``_conv``/``_sparse``);
- neuron updates: ``active`` ones, and ``neurons - active`` inactive ones, on the
  steps the layer runs (a step prune-timesteps removed costs no update);
- spikes out: one ``spike_out`` per spike;
- messages: a spike is one message from its core to *every* core of every
  hardware layer that lists the spiking layer in ``sources``. That is exact
  for dense layers; a conv layer's receptive fields mean a real router would
  reach fewer cores, so messages are an upper bound there. Each message counts
  once as ``message_out`` at the source core and once as ``message_in`` at the
  destination core. Messages to the sending core itself (a recurrent layer)
  are counted too, with zero hops: the chip sends them through the same
  axon-out/axon-in path;
- hops: the Manhattan distance between source and destination tiles, x hops
  priced ``hop_east_west`` and y hops ``hop_north_south``, charged to the
  *sending* core's message time. Between chips (a target of several chips) a
  message also pays ``chip_link`` once, on top of the hops within the meshes
  (computed as if both tiles were on one mesh: the board's routing is not
  modelled).

Host inputs (the encoding layer's values) and readout are host work: they are
not priced here but in the papers' estimate (:func:`paper_energy`).
Step latency = max over cores of ``max(neuron_time, message_time)`` plus
``barrier_sync.time_ns(tiles used)``; step energy = every count times its
energy plus ``barrier_sync.energy_pj(tiles used)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from snncc.backends.acsim.counts import SimCounts
from snncc.diagnostics import Location, SnnccError
from snncc.lower import ChipLayer
from snncc.passes.map_cores import CorePlacement, Mapping
from snncc.targets.model import OpCosts, PaperEstimate, Target

__all__ = ["CoreCost", "CostReport", "LayerCost", "PaperEnergy", "StepCost", "Totals",
           "estimate", "paper_energy"]

F64 = NDArray[np.float64]
# The SNN papers' 45 nm figures, used when a target has no ``paper`` section.
DEFAULT_PAPER = PaperEstimate(e_mac_pj=4.6, e_ac_pj=0.9, process_node="45nm")
# Count name -> OpCosts field; "sops" is priced per layer by synapse kind.
_PRICED = {"active": "neuron_update_active", "inactive": "neuron_update_inactive",
           "spikes": "spike_out", "msg_out": "message_out", "msg_in": "message_in",
           "hops_x": "hop_east_west", "hops_y": "hop_north_south", "chip_msgs": "chip_link"}
_CATEGORY = {"sops": "synaptic", "active": "neuron", "inactive": "neuron", "spikes": "spike",
             "msg_out": "message", "msg_in": "message", "chip_msgs": "message", "hops_x": "message",
             "hops_y": "message"}


@dataclass(frozen=True)
class PaperEnergy:
    """The SNN papers' estimate for one inference, in two variants.

    ``energy_pj`` = E_MAC * encoding MACs + E_AC * SOPs (Spikformer's formula);
    ``energy_with_readout_pj`` also charges the readout (head) MACs at E_MAC, as
    Spikingformer's counter does. MACs are the simulator's host counts for the
    whole run (so T x per-step MACs where the encoder runs every step).
    """

    e_mac_pj: float
    e_ac_pj: float
    process_node: str | None
    encoding_macs: float
    readout_macs: float
    sops: float
    energy_pj: float
    energy_with_readout_pj: float


@dataclass(frozen=True)
class StepCost:
    step: int
    latency_ns: float
    energy_pj: float
    barrier_ns: float
    bottleneck_core: int | None
    bottleneck_layer: str | None
    bound: str | None  # "neuron" | "message": which side of max() set the bottleneck's time
    neuron_ns: float | None  # the bottleneck core's neuron-processing time
    message_ns: float | None  # the bottleneck core's message-processing time


@dataclass(frozen=True)
class CoreCost:
    core: int
    chip: int
    tile: int
    x: int
    y: int
    layer: str
    neurons: int
    utilisation: float  # neurons / neurons_per_core
    sops: float
    spikes: float
    messages_out: float
    messages_in: float
    hops: float
    energy_pj: float
    busy_ns: float  # sum over steps of max(neuron time, message time)


@dataclass(frozen=True)
class LayerCost:
    name: str
    module_path: str
    kind: str
    synapse_kind: str
    neurons: int
    cores: int
    sops: float
    spikes: float
    messages_out: float
    energy_pj: float
    energy_by_category: dict[str, float]  # synaptic, neuron, spike, message (incl. hops)
    spikes_per_step: list[float]


@dataclass(frozen=True)
class Totals:
    time_steps: int
    batch: int
    cores: int
    tiles: int
    latency_ns: float
    energy_pj: float
    barrier_energy_pj: float
    sops: float
    spikes: float
    messages: float
    hops: float
    chips: int = 1
    chip_messages: float = 0.0  # messages between chips (each priced costs.chip_link)


@dataclass(frozen=True)
class CostReport:
    """Latency and energy of one inference on ``target``; ``to_json`` gives plain JSON."""

    target: str
    per_step: list[StepCost]
    per_core: list[CoreCost]
    per_layer: list[LayerCost]
    totals: Totals
    paper: PaperEnergy

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def paper_energy(counts: SimCounts, paper: PaperEstimate) -> PaperEnergy:
    """E = E_MAC * MACs + E_AC * SOPs per inference (FACTS.md section 5), both variants."""
    b = counts.batch
    enc, ro, sops = counts.encoding_macs() / b, counts.readout_macs() / b, counts.paper_sops() / b
    base = paper.e_mac_pj * enc + paper.e_ac_pj * sops
    return PaperEnergy(paper.e_mac_pj, paper.e_ac_pj, paper.process_node, enc, ro, sops,
                       base, base + paper.e_mac_pj * ro)


def _offsets(layers: list[ChipLayer], mapping: Mapping) -> dict[str, int]:
    """Each layer's first column in the ``[T, cores]`` arrays (layers' cores are consecutive)."""
    first: dict[str, int] = {}
    j = 0
    for layer in layers:
        first[layer.name] = j
        j += _ncores(mapping, layer.name)
    return first


def _ncores(mapping: Mapping, name: str) -> int:
    return len(mapping.layers[name].cores)


def _core_counts(counts: SimCounts, layers: list[ChipLayer], mapping: Mapping,
                 first: dict[str, int], n_cols: int) -> dict[str, F64]:
    """Per-inference counts as ``[T, cores]`` arrays; neurons summed per core with reduceat."""
    b = counts.batch
    out = {k: np.zeros((counts.time_steps, n_cols)) for k in _CATEGORY}
    for layer in layers:
        lc, cores = counts.layers[layer.name], mapping.layers[layer.name].cores
        if not cores:
            continue
        sl = slice(first[layer.name], first[layer.name] + len(cores))
        starts = np.array([c.start for c in cores])
        sizes = np.array([c.neurons for c in cores], dtype=np.float64)
        for key in ("sops", "active", "spikes"):
            arr = getattr(lc, key).reshape(counts.time_steps, -1)
            out[key][:, sl] = np.add.reduceat(arr, starts, axis=1) / b
        run = lc.executed_steps().astype(np.float64)[:, None]
        out["inactive"][:, sl] = sizes[None, :] * run - out["active"][:, sl]
    _messages(out, layers, mapping, first)
    return out


def _messages(out: dict[str, F64], layers: list[ChipLayer], mapping: Mapping,
              first: dict[str, int]) -> None:
    """Fill msg_out, msg_in and hops: every spike goes to every core of each reader layer."""
    for src in layers:
        readers = [d for d in layers if src.name in d.sources]
        src_cores = mapping.layers[src.name].cores
        if not readers or not src_cores:
            continue
        s0, n_src = first[src.name], len(src_cores)
        spikes = out["spikes"][:, s0:s0 + n_src]  # [T, k_src]
        dst = [c for d in readers for c in mapping.layers[d.name].cores]
        sx, sy = np.array([c.x for c in src_cores]), np.array([c.y for c in src_cores])
        dx, dy = np.array([c.x for c in dst]), np.array([c.y for c in dst])
        out["msg_out"][:, s0:s0 + n_src] += spikes * len(dst)
        sc, dc = np.array([c.chip for c in src_cores]), np.array([c.chip for c in dst])
        out["chip_msgs"][:, s0:s0 + n_src] += spikes * (sc[:, None] != dc[None, :]).sum(1)
        out["hops_x"][:, s0:s0 + n_src] += spikes * np.abs(sx[:, None] - dx[None, :]).sum(1)
        out["hops_y"][:, s0:s0 + n_src] += spikes * np.abs(sy[:, None] - dy[None, :]).sum(1)
        total = spikes.sum(axis=1, keepdims=True)  # [T, 1]: all of src's spikes reach each core
        for d in readers:
            d0 = first[d.name]
            out["msg_in"][:, d0:d0 + _ncores(mapping, d.name)] += total


def _unit(costs: OpCosts, layers: list[ChipLayer], mapping: Mapping,
          attr: str) -> dict[str, F64]:
    """Per count, its unit cost (``attr`` = "time_ns" or "energy_pj") per column."""
    syn = []
    for layer in layers:
        op = getattr(costs, f"synaptic_op_{layer.synapse_kind}", None)
        if op is None:
            raise SnnccError("SNN-COST003", f"layer {layer.name}: unknown synapse kind "
                             f"'{layer.synapse_kind}' (known: dense, conv, sparse)",
                             location=Location(module_path=layer.module_path, node=layer.name))
        syn += [getattr(op, attr)] * _ncores(mapping, layer.name)
    unit = {k: np.full(len(syn), float(getattr(getattr(costs, f), attr))
                       if getattr(costs, f) is not None else 0.0)
            for k, f in _PRICED.items()}
    unit["sops"] = np.array(syn, dtype=np.float64)
    return unit


def _weighted(c: dict[str, F64], unit: dict[str, F64], keys: tuple[str, ...]) -> F64:
    return sum((c[k] * unit[k][None, :] for k in keys), np.zeros_like(c["sops"]))


def _check_inputs(counts: SimCounts, layers: list[ChipLayer], mapping: Mapping,
                  target: Target) -> OpCosts:
    """The target can be priced and counts, layers and mapping describe the same model."""
    if target.costs is None:
        raise SnnccError(
            "SNN-COST001",
            f"target {target.name} has no per-event hardware costs, so no chip latency or "
            "energy can be estimated",
            hint="use a hardware target (loihi2, loihi1, loihi-calibrated) for a hardware "
            "estimate, or paper_energy() for the papers' E_MAC/E_AC estimate",
        )
    for layer in layers:
        lp = mapping.layers.get(layer.name)
        lc = counts.layers.get(layer.name)
        ok = lp is not None and lc is not None and lc.sops.size == lc.spikes.size \
            == lc.active.size == counts.time_steps * layer.neurons
        spans = [(c.start, c.stop) for c in lp.cores] if lp is not None else []
        bounds = [0] + [s for _, s in spans]
        if not ok or bounds[:-1] != [s for s, _ in spans] or bounds[-1] != layer.neurons:
            raise SnnccError(
                "SNN-COST002",
                f"layer {layer.name}: the mapping or the counts do not cover its "
                f"{layer.neurons} neurons in order",
                location=Location(module_path=layer.module_path, node=layer.name),
                hint="map and simulate the same model (map_to_cores on these layers)",
            )
    return target.costs


def estimate(counts: SimCounts, layers: list[ChipLayer], mapping: Mapping,
             target: Target, paper: PaperEstimate | None = None) -> CostReport:
    """Latency and energy of one inference; ``paper`` defaults to the target's or 45 nm's."""
    costs = _check_inputs(counts, layers, mapping, target)
    cols = [(layer.name, p) for layer in layers for p in mapping.layers[layer.name].cores]
    c = _core_counts(counts, layers, mapping, _offsets(layers, mapping), len(cols))
    t_unit, e_unit = _unit(costs, layers, mapping, "time_ns"), _unit(costs, layers, mapping,
                                                                     "energy_pj")
    neuron_ns = _weighted(c, t_unit, ("sops", "active", "inactive", "spikes"))
    message_ns = _weighted(c, t_unit, ("msg_out", "msg_in", "chip_msgs", "hops_x", "hops_y"))
    busy = np.maximum(neuron_ns, message_ns)  # [T, cores]
    energy = {k: c[k] * e_unit[k][None, :] for k in _CATEGORY}  # [T, cores] each
    core_energy = sum(energy.values(), np.zeros_like(busy))
    tiles = mapping.tiles_used
    barrier_ns, barrier_pj = costs.barrier_sync.time_ns(tiles), costs.barrier_sync.energy_pj(tiles)
    steps = _steps(busy, neuron_ns, message_ns, core_energy, cols, barrier_ns, barrier_pj)
    per_layer = _layers(c, energy, layers, mapping)
    per_core = _cores(c, busy, core_energy, cols, mapping)
    msgs = float(c["msg_out"].sum())
    totals = Totals(counts.time_steps, counts.batch, len(cols), tiles,
                    sum(s.latency_ns for s in steps), sum(s.energy_pj for s in steps),
                    barrier_pj * counts.time_steps, float(c["sops"].sum()),
                    float(c["spikes"].sum()), msgs, float((c["hops_x"] + c["hops_y"]).sum()),
                    mapping.chips_used, float(c["chip_msgs"].sum()))
    pe = paper_energy(counts, paper or target.paper or DEFAULT_PAPER)
    return CostReport(target.name, steps, per_core, per_layer, totals, pe)


def _steps(busy: F64, neuron_ns: F64, message_ns: F64, core_energy: F64,
           cols: list[tuple[str, CorePlacement]], barrier_ns: float,
           barrier_pj: float) -> list[StepCost]:
    """Per step: slowest core (and what bound it), latency and energy."""
    out = []
    for t in range(busy.shape[0]):
        energy = float(core_energy[t].sum()) + barrier_pj
        if not cols:
            out.append(StepCost(t, barrier_ns, energy, barrier_ns, None, None, None, None, None))
            continue
        j = int(np.argmax(busy[t]))
        bound = "neuron" if neuron_ns[t, j] >= message_ns[t, j] else "message"
        out.append(StepCost(t, float(busy[t, j]) + barrier_ns, energy, barrier_ns,
                            cols[j][1].core, cols[j][0], bound, float(neuron_ns[t, j]),
                            float(message_ns[t, j])))
    return out


def _layers(c: dict[str, F64], energy: dict[str, F64], layers: list[ChipLayer],
            mapping: Mapping) -> list[LayerCost]:
    out, j = [], 0
    for layer in layers:
        k = _ncores(mapping, layer.name)
        cat = {name: 0.0 for name in ("synaptic", "neuron", "spike", "message")}
        for key, name in _CATEGORY.items():
            cat[name] += float(energy[key][:, j:j + k].sum())
        spikes = c["spikes"][:, j:j + k].sum(axis=1)
        out.append(LayerCost(layer.name, layer.module_path, layer.kind, layer.synapse_kind,
                             layer.neurons, k, float(c["sops"][:, j:j + k].sum()),
                             float(spikes.sum()), float(c["msg_out"][:, j:j + k].sum()),
                             sum(cat.values()), cat, [float(s) for s in spikes]))
        j += k
    return out


def _cores(c: dict[str, F64], busy: F64, core_energy: F64, cols: list[tuple[str, CorePlacement]],
           mapping: Mapping) -> list[CoreCost]:
    out = []
    for j, (name, p) in enumerate(cols):
        out.append(CoreCost(
            p.core, p.chip, p.tile, p.x, p.y, name, p.neurons, p.neurons / mapping.neurons_per_core,
            float(c["sops"][:, j].sum()), float(c["spikes"][:, j].sum()),
            float(c["msg_out"][:, j].sum()), float(c["msg_in"][:, j].sum()),
            float((c["hops_x"][:, j] + c["hops_y"][:, j]).sum()),
            float(core_energy[:, j].sum()), float(busy[:, j].sum())))
    return out
