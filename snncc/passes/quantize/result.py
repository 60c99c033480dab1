"""What quantization hands on: the quantized graph and its per-layer report.

Why its own module: :class:`QuantizedGraph` is what acsim runs and what an
artifact stores, so its readers (the simulator, the artifact, the report)
should find it without reading how it was computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from snncc.ir.graph import Graph
from snncc.passes.quantize.domains import Domain
from snncc.passes.quantize.integers import NeuronQuant, WeightQuant
from snncc.passes.quantize.values import Cat
from snncc.targets import Target


@dataclass
class LayerReport:
    node: str
    module_path: str
    op: str
    domain: int
    scale: float
    weight_exp: int | None = None
    max_abs_weight_error: float | None = None
    rel_weight_error: float | None = None
    vth: int | None = None
    threshold_exact: bool | None = None
    spike_agreement: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class QuantizedGraph:
    """The canonical float graph plus everything a fixed-point chip needs to run it."""

    graph: Graph
    target: Target
    categories: dict[str, Cat]
    domains: list[Domain]
    domain_of: dict[str, int]  # CURRENT node or "@neuron" -> domain id
    weights: dict[str, WeightQuant]
    neurons: dict[str, NeuronQuant]
    pending_bias: dict[str, np.ndarray]
    layers: list[LayerReport] = field(default_factory=list)

    @property
    def scales(self) -> dict[int, float]:
        return {d.id: d.scale for d in self.domains}

    def domain_scale(self, node: str) -> float:
        return self.domains[self.domain_of[node]].scale

    def neuron_domain(self, neuron: str) -> Domain:
        return self.domains[self.domain_of["@" + neuron]] if "@" + neuron in self.domain_of \
            else self.domains[self.domain_of[self.graph.nodes[neuron].inputs[0]]]

    def report_json(self) -> dict[str, Any]:
        return {
            "target": self.target.name,
            "domains": [d.to_json() for d in self.domains],
            "layers": [r.to_json() for r in self.layers],
        }
