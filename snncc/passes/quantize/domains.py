"""Current domains: the currents that are added together, and so share one scale.

Why its own module: an integer add is only meaningful if all its terms are in
the same integer units, so the residual stream's currents, the ops that move or
sum them, and the neurons that read them must be grouped before any scale is
chosen (:mod:`.scales`). Union-find over ``add``/``sub`` and the current-moving
ops yields the groups; the domains are numbered in graph order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from networkx.utils import UnionFind

from snncc.ir.graph import Graph
from snncc.passes.quantize.values import WEIGHT_OPS, Cat


@dataclass
class Domain:
    """Currents that are added together and so share one integer scale ``s``."""

    id: int
    nodes: list[str] = field(default_factory=list)  # CURRENT nodes
    sources: list[str] = field(default_factory=list)  # weight ops on chip (fed spikes or counts)
    host_entries: list[str] = field(default_factory=list)  # encoding ops / analog values (host MACs)
    count_entries: list[str] = field(default_factory=list)  # count/spike values added in by a shift
    readers: list[str] = field(default_factory=list)  # neurons reading a value of the domain
    exits: list[str] = field(default_factory=list)  # domain values read by the host (readout)
    scale: float = 1.0  # s: integer units per unit of float current
    shift: int | None = None  # s = 2**shift when counts enter
    exact: bool = False  # the readers' integer dynamics equal SpikingJelly's exactly
    limit: str = ""  # the constraint that set the scale

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "scale": self.scale, "shift": self.shift, "exact": self.exact,
                "limit": self.limit, "nodes": self.nodes, "sources": self.sources,
                "host_entries": self.host_entries, "count_entries": self.count_entries,
                "readers": self.readers, "exits": self.exits}


def find_domains(graph: Graph, cat: dict[str, Cat]) -> tuple[list[Domain], dict[str, int]]:
    """Current domains, and the domain of every CURRENT node and every neuron's input.

    A neuron that reads a count or the analog input directly gets a domain of
    its own, keyed by the neuron (its input is converted at the neuron).
    """
    uf = UnionFind()  # uf[key]: the key's set, a set of its own for a key never united
    users = graph.users_map()
    for n in graph:
        if cat[n.name] == Cat.CURRENT:
            for i in n.inputs:
                if cat[i] == Cat.CURRENT:
                    uf.union(i, n.name)
    roots: dict[str, Domain] = {}
    of: dict[str, int] = {}

    def dom(key: str) -> Domain:
        r = uf[key]
        if r not in roots:
            roots[r] = Domain(id=len(roots))
        return roots[r]

    for n in graph:
        c = cat[n.name]
        if c == Cat.CURRENT:
            d = dom(n.name)
            d.nodes.append(n.name)
            of[n.name] = d.id
            if n.op in WEIGHT_OPS:
                (d.host_entries if cat[n.inputs[0]] == Cat.ANALOG else d.sources).append(n.name)
            elif n.op in ("add", "sub"):
                d.count_entries += [i for i in n.inputs if cat[i] in (Cat.COUNT, Cat.SPIKE)]
            if any(cat[u.name] == Cat.HOST for u in users[n.name]):
                d.exits.append(n.name)
        elif n.opdef.is_neuron:
            src = n.inputs[0]
            if cat[src] == Cat.CURRENT:
                d = dom(src)
            else:
                d = dom("@" + n.name)
                (d.host_entries if cat[src] == Cat.ANALOG else d.count_entries).append(src)
            d.readers.append(n.name)
            of["@" + n.name] = d.id
    domains = sorted(roots.values(), key=lambda d: d.id)
    return domains, of
