"""What on Loihi 2 would run each process of a compiled model's Lava network, the
traffic it carries, and its cores against the target's per-core limits."""

from __future__ import annotations

from typing import Any

import numpy as np

from snncc.backends.acsim.program import Program
from snncc.backends.lava.lowering import LavaPlan, flat_size, plan
from snncc.passes.quantize import Cat

WHERE = {
    "lif": "Loihi 2 neurocore (LIF neurons)",
    "dense": "Loihi 2 neurocore (synapses)",
    "maxpool2d": "Loihi 2 neurocore (an OR: unit synapses into a threshold-0 neuron)",
    "add": "Loihi 2 neurocore (graded relay neurons summing spikes into counts)",
    "matmul": "programmable neurons (Loihi 2 microcode) or the embedded CPUs: a product of "
              "two spike tensors is not a synapse",
    "time_mask": "programmable neurons or the host's schedule: a per-step enable",
    "relabel": "the reading neuron's input (a move and a shift of counts)",
    "relay": "Loihi 2 neurocore (graded relay neurons forwarding a residual stream)",
    "join": "Loihi 2 neurocore (partial-sum neurons joining a split's parts)",
    "accumulate": "Loihi 2 neurocore (non-spiking accumulator neurons the host reads at "
                  "the end)",
}


GRADED = "graded 24-bit (non-spike)"


def placement(program: Program, p: LavaPlan | None = None,
              resources: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Per Lava process of the network: what it is, what on Loihi 2 would run it
    (standard neurocores, or programmable neurons / embedded CPUs for what is not a
    synapse or a LIF), the traffic it carries (binary spikes, or graded multi-bit
    payloads: non-spike traffic), and, given the target's ``resources``
    (:func:`snncc.report.resources.resources`), the cores of its chip layer and the
    fullest one's use against the per-core limits (a synapse is stored with the
    neurons that read it)."""
    p = plan(program) if p is None else p
    qg = program.qg
    cores: dict[str, list[dict[str, Any]]] = {}
    for c in (resources or {}).get("cores", []):
        cores.setdefault(c["layer"], []).append(c)

    def on_cores(*layers: str) -> dict[str, Any]:
        mine = [c for layer in layers for c in cores.get(layer, [])]
        if not mine:
            return {}
        return {"cores": len(mine), "core_neurons": max(c["neurons"] for c in mine),
                "core_memory_bytes": max(c["memory_bytes"] for c in mine),
                "core_fan_in": max(c["fan_in"] for c in mine)}

    def traffic(name: str) -> str:
        return "spikes" if qg.categories[name] == Cat.SPIKE else GRADED

    out: list[dict[str, Any]] = []
    for name in p.neurons:
        out.append({"process": f"LIF %{name}", "kind": "lif", "where": WHERE["lif"],
                    "neurons": flat_size(program, name), "traffic": "spikes", **on_cores(name)})
    for c in p.connections:
        kind = "Conv" if c.conv else "DelayDense" if c.delay else "Dense"
        stored = np.asarray(c.conv.kwargs["weight"] if c.conv else c.weights)
        out.append({"process": f"{kind} %{c.source} -> %{c.target}", "kind": "dense",
                    "where": WHERE["dense"], "weights": int(np.count_nonzero(stored)),
                    "graded": c.graded, "traffic": GRADED if c.graded else "spikes",
                    **on_cores(c.target)})
    for name, n in {**p.relays, **p.joins}.items():
        kind = "relay" if name in p.relays else "join"
        parts = [layer.name for layer in program.lowered.layers if layer.of_op == name]
        out.append({"process": f"GradedVec %{name}", "kind": kind, "where": WHERE[kind],
                    "neurons": n, "traffic": GRADED,
                    **on_cores(*(parts if kind == "join" else [name]))})
    for name, n in p.taps.items():
        out.append({"process": f"SnnccOp %{name} (accumulator)", "kind": "accumulate",
                    "where": WHERE["accumulate"], "neurons": n, "traffic": traffic(name),
                    **on_cores(p.tap_layers[name])})
    for op in p.ops:
        op_kind = "relabel" if op.target is not None else program.graph.nodes[op.name].op
        out.append({"process": f"SnnccOp %{op.name}", "kind": op_kind, "where": WHERE[op_kind],
                    "neurons": op.out_size,
                    "traffic": traffic(op.sources[0] if op.target is not None else op.name),
                    **on_cores(op.name)})
    return out
