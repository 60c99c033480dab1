"""The events each chip layer receives in an acsim run, per step.

Why its own module: the run (:mod:`.simulator`) computes values and leaves raw
per-element event arrays behind; which layers a chip has is the lowering's
(:mod:`snncc.lower`), and how one batch's arrays become per-layer, per-step
counts (:mod:`.counts`, read by the cost model) is a question of its own.

Counting (for :mod:`.costs`): per chip layer -- neuron layers, relays and
partial sums, and the readout accumulators that integrate a current for the
host -- per step and sample: spikes (graded spikes for relays and partial
sums), active neurons, and the synaptic events delivered to every neuron
(``sops``). Synapses live with their destination neuron, so a current read by
several neuron layers without a relay is accumulated by each of them. Per op,
the papers' SOPs (events x fan-out, once) and the host's MACs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from snncc.backends.acsim.counts import LayerCounts, OpCounts, SimCounts
from snncc.backends.acsim.program import Program
from snncc.ir.types import Layout
from snncc.lower import ChipLayer
from snncc.passes.quantize import WEIGHT_OPS, Cat

if TYPE_CHECKING:  # the run imports this module for its counting
    from snncc.backends.acsim.simulator import _Run


def per_step(x: np.ndarray | None, time_first: bool, steps: int, neurons: int
              ) -> NDArray[np.int64]:
    """Totals over the batch as ``[T, N]``: ``[T, B, *item]`` per step, or ``[B, *item]``
    (a value computed once, after the run) at the last step; zeros when absent."""
    out = np.zeros((steps, neurons), dtype=np.int64)
    if x is None:
        return out
    a = np.asarray(x)
    if time_first:
        return a.reshape(a.shape[0], a.shape[1], -1).sum(axis=1, dtype=np.int64)
    out[-1] = a.reshape(a.shape[0], -1).sum(axis=0, dtype=np.int64)
    return out


def _in_chip_order(x: np.ndarray | None, layer: ChipLayer, time_first: bool) -> np.ndarray | None:
    """An event array ``[T, B, *item]`` (or ``[B, *item]``) with its item axes in the order
    the chip numbers the layer's neurons (the mapper's cores hold ranges of that order)."""
    if x is None or layer.order is None:
        return x
    lead = 2 if time_first else 1
    return np.transpose(np.asarray(x), (*range(lead), *(lead + a for a in layer.order)))


def count_batch(program: Program, run: _Run) -> SimCounts:
    """The events of one batch, per chip layer and per weight op."""
    graph = program.graph
    T = run.steps or graph.time_steps
    batch = 0
    hw: dict[str, LayerCounts] = {}
    for layer in program.lowered.layers:
        node = graph.nodes[layer.of_op or layer.name]
        time_first = node.type.layout == Layout.TIME
        batch = int(run.values[node.name].shape[1 if time_first else 0])
        neurons = layer.neurons

        def count(x: np.ndarray | None, tf: bool = time_first, layer: ChipLayer = layer,
                  n: int = neurons) -> NDArray[np.int64]:
            return per_step(_in_chip_order(x, layer, tf), tf, T, n)

        executed = None
        if layer.kind in ("relay", "partial"):
            got, sent = run.layer_received[layer.name], run.layer_sent[layer.name]
            hw[layer.name] = LayerCounts(layer, count(got), count(sent), count((got != 0) | sent))
            continue
        src = node.inputs[0] if layer.kind == "neuron" else node.name
        received = run.received.get(src)
        if received is None and program.qg.categories[src] in (Cat.SPIKE, Cat.COUNT):
            received = (run.values[src] != 0).astype(np.int32)
        sops = count(received)
        if layer.kind == "neuron":
            spikes, active = count(run.spikes[node.name], True), count(run.active[node.name], True)
            if layer.steps is not None and not run.latency:  # Lava-timed: every step
                executed = np.isin(np.arange(T), list(layer.steps))
        else:
            spikes = np.zeros_like(sops)
            active = count(received != 0 if received is not None else None)
        hw[layer.name] = LayerCounts(layer, sops, spikes, active, executed)
    ops: dict[str, OpCounts] = {}
    for n in graph:
        if n.op not in WEIGHT_OPS and not (n.op == "matmul" and n.name in run.op_sops):
            continue
        cat_in = program.qg.categories[n.inputs[0]]
        where = ("chip" if n.name in run.op_sops else
                 "host-encoding" if cat_in == Cat.ANALOG else "host-readout")
        sops = run.op_sops.get(n.name, np.zeros(T, dtype=np.int64))
        ops[n.name] = OpCounts(n.name, n.origin.module_path, where, sops, run.macs.get(n.name, 0))
    return SimCounts(time_steps=T, batch=batch, layers=hw, ops=ops)


def merge_counts(a: SimCounts | None, b: SimCounts) -> SimCounts:
    """Totals of two batches' counts."""
    if a is None:
        return b
    layers = {k: LayerCounts(v.layer, v.sops + b.layers[k].sops, v.spikes + b.layers[k].spikes,
                             v.active + b.layers[k].active, v.executed) for k, v in a.layers.items()}
    ops = {k: OpCounts(v.name, v.module_path, v.where, v.sops + b.ops[k].sops, v.macs + b.ops[k].macs)
           for k, v in a.ops.items()}
    return SimCounts(a.time_steps, a.batch + b.batch, layers, ops)
