"""The quantize entry point and pass: the steps of the other modules, in order.

Why its own module: :func:`quantize` is the one place that lists the steps --
categories and pending biases (:mod:`.values`), current domains
(:mod:`.domains`), a scale per domain (:mod:`.scales`), the integers
(:mod:`.integers`) -- each reading what the ones before it found; it also
gives each layer's spike agreement with the float model and registers the
``quantize`` pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import torch

from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph
from snncc.ir.interpreter import run_in_batches
from snncc.ir.op import Multiplies
from snncc.passes.manager import PassResult, register_pass
from snncc.passes.quantize.domains import find_domains
from snncc.passes.quantize.integers import (
    NeuronQuant,
    WeightQuant,
    quantize_neuron,
    quantize_weights,
)
from snncc.passes.quantize.result import LayerReport, QuantizedGraph
from snncc.passes.quantize.scales import (
    CALIBRATION_MARGIN,
    _calibrated_bounds,
    _current_bounds,
    _exact_shift,
    _formats,
    choose_scale,
)
from snncc.passes.quantize.values import WEIGHT_OPS, Cat, categorize, pending_biases
from snncc.targets import Target, load_target

# Runs a quantized graph on inputs [T, B, ...] and gives every neuron's spikes (name ->
# bool array [T, B, ...]); the backend that executes the integers supplies it (acsim's
# run_quantized), so quantization never imports a backend.
SpikeSimulator = Callable[[QuantizedGraph, torch.Tensor], Mapping[str, np.ndarray]]


def quantize(
    graph: Graph,
    target: Target | str,
    *,
    calibration: torch.Tensor | None = None,
    scales: dict[int, float] | None = None,
    simulate: SpikeSimulator | None = None,
) -> QuantizedGraph:
    """Quantize a canonical graph for ``target``.

    ``calibration``: sample inputs; they set the current ranges (else worst-case
    bounds from the weights, which are safe but coarser) and, with ``simulate``
    (the backend's run of the integers, e.g. acsim's), give each layer's spike
    agreement between the backend and the float interpreter. ``scales``: fixed
    per-domain scales (from an artifact), which makes the result reproducible.
    """
    tgt = load_target(target) if isinstance(target, str) else target
    fmt = _formats(tgt)
    cat = categorize(graph)
    pb = pending_biases(graph, cat)
    domains, domain_of = find_domains(graph, cat)
    bounds = _current_bounds(graph, cat)
    margin = 1.0
    reference: dict[str, torch.Tensor] = {}
    if calibration is not None:  # one float run: the ranges, and the agreement below
        _, reference = run_in_batches(graph, calibration, record=True)
        bounds.update(_calibrated_bounds(graph, cat, pb, reference))
        margin = CALIBRATION_MARGIN
    for d in domains:
        s, k, exact, why = choose_scale(graph, d, fmt, pb, bounds, margin)
        if scales is not None:
            if d.id not in scales:
                raise SnnccError("SNN-Q006", f"no stored scale for current domain {d.id}",
                                 hint="re-build the artifact with this snncc")
            s = float(scales[d.id])
            why = "stored"
            if k is not None:
                k = int(round(math.log2(s)))
                exact = exact and k >= _exact_shift(graph, d, graph.time_steps)
        d.scale, d.shift, d.exact, d.limit = s, k, exact, why
    weights: dict[str, WeightQuant] = {}
    neurons: dict[str, NeuronQuant] = {}
    layers: list[LayerReport] = []
    for n in graph:
        if n.op in WEIGHT_OPS and cat[n.name] == Cat.CURRENT and cat[n.inputs[0]] != Cat.ANALOG:
            d = domains[domain_of[n.name]]
            wq = quantize_weights(n, d, fmt, graded=cat[n.inputs[0]] == Cat.COUNT)
            weights[n.name] = wq
            layers.append(LayerReport(
                n.name, n.origin.module_path, n.op, d.id, d.scale, weight_exp=wq.weight_exp,
                max_abs_weight_error=wq.max_abs_error,
                rel_weight_error=wq.max_abs_error / wq.max_abs_weight if wq.max_abs_weight else 0.0))
        elif n.opdef.is_neuron:
            key = "@" + n.name
            d = domains[domain_of[key]] if key in domain_of else domains[domain_of[n.inputs[0]]]
            nq = quantize_neuron(graph, n, d, fmt, pb)
            neurons[n.name] = nq
            layers.append(LayerReport(n.name, n.origin.module_path, n.op, d.id, d.scale,
                                      vth=nq.vth, threshold_exact=nq.threshold_exact,
                                      notes=list(nq.notes)))
        elif n.op in WEIGHT_OPS and n.opdef.multiplies == Multiplies.WEIGHT:
            where = "host (encoding MACs)" if cat[n.name] == Cat.CURRENT else "host (readout MACs)"
            d_id = domain_of.get(n.name, -1)
            layers.append(LayerReport(n.name, n.origin.module_path, n.op, d_id,
                                      domains[d_id].scale if d_id >= 0 else 0.0,
                                      notes=[f"runs on the {where} in float"]))
    qg = QuantizedGraph(graph, tgt, cat, domains, domain_of, weights, neurons, pb, layers)
    if calibration is not None and simulate is not None:
        add_spike_agreement(qg, calibration, simulate(qg, calibration), reference)
    return qg


def add_spike_agreement(qg: QuantizedGraph, inputs: torch.Tensor,
                        spikes: Mapping[str, np.ndarray],
                        reference: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
    """Per neuron layer: the fraction of (step, sample, neuron) spikes on which the
    simulated ``spikes`` (a backend's run of ``qg`` on ``inputs``: name -> bool array)
    and the float interpreter agree; recorded in the layer report. ``reference``: the
    interpreter's recorded values on ``inputs``, if already computed."""
    ref = reference or run_in_batches(qg.graph, inputs, record=True)[1]
    out: dict[str, float] = {}
    for name, s in spikes.items():
        r = ref[name].numpy() != 0
        out[name] = float((s == r).mean()) if s.size else 1.0
    for row in qg.layers:
        if row.node in out:
            row.spike_agreement = out[row.node]
    return out


@register_pass("quantize")
def quantize_pass(graph: Graph) -> PassResult:
    """Pass form: quantizes for ``graph.meta["target"]`` (default loihi2) and records
    the per-domain scales and the per-layer report in ``graph.meta["quantization"]``;
    the graph's float parameters are kept (the integers follow from the scales)."""
    name = graph.meta.get("target", "loihi2")
    qg = quantize(graph, str(name))
    graph.meta["quantization"] = {"scales": {str(k): v for k, v in qg.scales.items()},
                                  **qg.report_json()}
    worst = max((r.rel_weight_error or 0.0 for r in qg.layers), default=0.0)
    notes = [f"{len(qg.domains)} current domains, {len(qg.weights)} weight ops on chip, "
             f"{len(qg.neurons)} neuron layers; worst relative weight error {worst:.2%}"]
    return PassResult(graph, True, notes)
