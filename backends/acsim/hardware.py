"""acsim's hardware layers, and the events each one receives in a run.

Why its own module: the run (:mod:`.simulator`) computes values and leaves raw
per-element event arrays behind; which layers a chip has, what feeds each, and
how one batch's arrays become per-layer, per-step counts is a question of its
own, whose answers (:mod:`.counts`) the mapper and the cost model read.

Counting (for :mod:`.costs`): per hardware layer -- each neuron layer, and the
readout accumulators that integrate a current for the host -- per step and
sample: spikes, active neurons, and the synaptic events delivered to every
neuron (``sops``, split by synapse kind). Synapses live with their destination
neuron, so a current read by several neuron layers (the residual stream) is
accumulated by each of them, as on a chip without graded relays. Per op, the
papers' SOPs (events x fan-out, once) and the host's MACs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from snncc.backends.acsim.counts import HardwareLayer, LayerCounts, OpCounts, SimCounts
from snncc.backends.acsim.program import Program
from snncc.ir.types import Layout
from snncc.passes.quantize import WEIGHT_OPS, Cat, item_shape

if TYPE_CHECKING:  # the run imports this module for its counting
    from snncc.backends.acsim.simulator import _Run


def _contributors(program: Program) -> dict[str, list[str]]:
    """Per value: the weight ops and spike products whose events built it."""
    qg = program.qg
    out: dict[str, list[str]] = {}
    for n in qg.graph:
        cat = qg.categories[n.name]
        if n.op in WEIGHT_OPS and cat == Cat.CURRENT or n.op == "matmul" and cat == Cat.COUNT:
            out[n.name] = [n.name]
        elif cat in (Cat.CURRENT, Cat.COUNT) and not n.opdef.is_neuron:
            out[n.name] = list(dict.fromkeys(c for i in n.inputs for c in out.get(i, [])))
    return out


def _spike_sources(program: Program, name: str) -> list[str]:
    """The neuron layers (or spiking inputs) whose spikes reach value ``name`` without a synapse."""
    node = program.graph.nodes[name]
    if node.opdef.is_neuron or node.op == "input":
        return [name]
    return list(dict.fromkeys(s for i in node.inputs for s in _spike_sources(program, i)))


def _op_fan_in(program: Program, op: str) -> int:
    node = program.graph.nodes[op]
    if node.op == "matmul":
        return int(program.graph.nodes[node.inputs[0]].type.shape[-1])
    return int(np.prod(node.params["weight"].shape[1:]))


def _op_kind(program: Program, op: str) -> str:
    if op in program.weights:
        return program.weights[op].kind
    return "sparse" if program.graph.nodes[op].op == "matmul" else "dense"


def hardware_layers(program: Program) -> list[HardwareLayer]:
    """Every neuron layer and readout accumulator, with its fan-in, synapses and sources."""
    qg, graph = program.qg, program.graph
    contrib = _contributors(program)
    out: list[HardwareLayer] = []
    accumulators = set(program.accumulators)
    for n in graph:
        if n.opdef.is_neuron:
            src, kind = n.inputs[0], "neuron"
        elif n.name in accumulators:
            src, kind = n.name, "accumulator"
        else:
            continue
        neurons = int(np.prod(item_shape(n)))
        ops = contrib.get(src, [])
        fan_in, synapses, by_kind = 0, 0, {"dense": 0, "conv": 0, "sparse": 0}
        sources: list[str] = []
        host = qg.categories[src] == Cat.ANALOG
        for op in ops:
            op_node = graph.nodes[op]
            if qg.categories[op_node.inputs[0]] == Cat.ANALOG:
                host = True  # the host sends the encoded current: one input, no synapses
                fan_in += 1
                continue
            per_out = _op_fan_in(program, op)
            outs = int(np.prod(item_shape(op_node)))
            fan_in += per_out * max(1, outs // max(neurons, 1))
            synapses += per_out * outs
            by_kind[_op_kind(program, op)] += per_out * outs
            sources += [s for i in op_node.inputs for s in _spike_sources(program, i)]
        if not ops and qg.categories[src] in (Cat.SPIKE, Cat.COUNT):
            sources = _spike_sources(program, src)
            fan_in, synapses = 1, neurons
        out.append(HardwareLayer(
            name=n.name, module_path=n.origin.module_path or graph.nodes[src].origin.module_path,
            kind=kind, shape=item_shape(n), synapse_kind=max(by_kind, key=lambda k: by_kind[k]),
            fan_in=fan_in, synapses=synapses, sources=tuple(dict.fromkeys(sources)),
            host_input=host))
    return out


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


def count_batch(program: Program, layers: list[HardwareLayer], run: _Run) -> SimCounts:
    """The events of one batch, per hardware layer and per weight op."""
    graph = program.graph
    T = graph.time_steps
    batch = 0
    hw: dict[str, LayerCounts] = {}
    for layer in layers:
        n = graph.nodes[layer.name]
        src = n.inputs[0] if layer.kind == "neuron" else n.name
        time_first = n.type.layout == Layout.TIME
        batch = int(run.values[n.name].shape[1 if time_first else 0])
        received = run.received.get(src)
        if received is None and program.qg.categories[src] in (Cat.SPIKE, Cat.COUNT):
            received = (run.values[src] != 0).astype(np.int32)
        sops = per_step(received, time_first, T, layer.neurons)
        if layer.kind == "neuron":
            spikes = per_step(run.spikes[n.name], True, T, layer.neurons)
            active = per_step(run.active[n.name], True, T, layer.neurons)
        else:
            spikes = np.zeros_like(sops)
            active = per_step(received != 0 if received is not None else None, time_first, T,
                               layer.neurons)
        steps = program.schedule.get(n.name) if layer.kind == "neuron" else None
        executed = None if steps is None else np.isin(np.arange(T), list(steps))
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
