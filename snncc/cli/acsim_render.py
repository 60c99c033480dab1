"""What `snncc compile --target acsim`, `snncc run` and `snncc report` show.

The report is one JSON-able dict (:func:`full_report`) so the text, JSON and
HTML renderings cannot disagree: text and HTML only lay it out.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from snncc.backends.acsim.artifact import CompiledModel
from snncc.backends.acsim.costs import CostReport
from snncc.backends.acsim.simulator import SimResult, class_predictions
from snncc.backends.registry import backend_for_file
from snncc.cli.render import dumps_json
from snncc.diagnostics import SnnccError
from snncc.ir.interpreter import run_in_batches
from snncc.report.resources import resources


def run_artifact(artifact: str, inputs_path: str, labels_path: str | None, batch_size: int,
                 show_progress: bool) -> tuple[CompiledModel, torch.Tensor, np.ndarray | None,
                                               SimResult, CostReport, float]:
    """Load, read inputs (and labels), simulate with a progress bar, price the run."""
    from snncc.api import estimate, simulate
    from snncc.cli import err, load_inputs, load_inputs_and_labels

    compiled = backend_for_file(artifact).load(artifact)
    inputs, carried = load_inputs_and_labels(inputs_path)
    given = load_inputs(labels_path, key="labels") if labels_path else carried
    labels = None if given is None else given.numpy().reshape(-1)
    if labels is not None and inputs.ndim > 1 and labels.shape[0] != inputs.shape[1]:
        raise SnnccError("SNN-CLI006", f"{labels.shape[0]} labels for {inputs.shape[1]} samples",
                         hint="give one label per sample (the inputs' axis 1)")
    start = time.perf_counter()
    if show_progress and inputs.ndim > 1 and inputs.shape[1] > batch_size:
        with Progress(TextColumn("acsim"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeRemainingColumn(), console=err, transient=True) as bar:
            task = bar.add_task("run", total=int(inputs.shape[1]))
            sim = simulate(compiled, inputs, batch_size=batch_size,
                           progress=lambda done, total: bar.update(task, completed=done))
    else:
        sim = simulate(compiled, inputs, batch_size=batch_size)
    wall = time.perf_counter() - start
    return compiled, inputs, labels, sim, estimate(compiled, sim), wall


def _accuracy(pred: np.ndarray, labels: np.ndarray | None) -> float | None:
    return None if labels is None else float((pred == labels).mean())


def run_summary(compiled: CompiledModel, sim: SimResult, cost: CostReport,
                labels: np.ndarray | None, wall: float) -> dict[str, Any]:
    t = cost.totals
    events = sim.counts.total_sops()
    return {
        "target": compiled.target.name,
        "samples": sim.counts.batch,
        "time_steps": sim.counts.time_steps,
        "predictions": sim.predictions.tolist(),
        "accuracy": _accuracy(sim.predictions, labels),
        "latency_us_per_inference": t.latency_ns / 1e3,
        "energy_uj_per_inference": t.energy_pj / 1e6,
        "paper_energy_uj_per_inference": cost.paper.energy_pj / 1e6,
        "cores": t.cores,
        "current_wraps": sim.wraps,
        "simulation": {"wall_s": wall, "images_per_s": sim.counts.batch / wall if wall else None,
                       "synaptic_events": events, "events_per_s": events / wall if wall else None},
    }


def full_report(compiled: CompiledModel, sim: SimResult, cost: CostReport,
                labels: np.ndarray | None, wall: float, inputs: torch.Tensor) -> dict[str, Any]:
    """Everything `snncc report` shows: the run, the float model on the same inputs,
    quantization, mapping and the cost breakdown."""
    report = run_summary(compiled, sim, cost, labels, wall)
    (float_out,), _ = run_in_batches(compiled.qg.graph, inputs.float())
    float_pred = class_predictions(float_out.numpy(), sim.time_first)
    report["float_model"] = {"accuracy": _accuracy(float_pred, labels),
                             "prediction_agreement": float((float_pred == sim.predictions).mean())}
    report["quantization"] = compiled.qg.report_json()
    report["mapping"] = compiled.mapping.to_json()
    report["cost"] = cost.to_json()
    sent = {k: float(v.spikes.sum()) / sim.counts.batch for k, v in sim.counts.layers.items()}
    report["resources"] = resources(compiled.program.lowered, compiled.mapping, compiled.target,
                                    sent)
    return report


def render_quantization(compiled: CompiledModel, out: Console, *, calibrated: bool) -> None:
    qg = compiled.qg
    table = Table(title=f"quantized for {qg.target.name}", title_justify="left")
    for col in ("layer", "op", "domain", "exp / vth", "weight error", "spike agreement", "notes"):
        table.add_column(col)
    for r in qg.layers:
        exp_vth = (f"2^{r.weight_exp}" if r.weight_exp is not None else
                   f"vth {r.vth}" if r.vth is not None else "")
        err = f"{r.rel_weight_error:.2%}" if r.rel_weight_error is not None else ""
        agree = f"{r.spike_agreement:.2%}" if r.spike_agreement is not None else ""
        table.add_row(r.module_path or r.node, r.op, str(r.domain), exp_vth, err, agree,
                      "; ".join(r.notes)[:60])
    out.print(table)
    cores, chips = len(compiled.mapping.cores), compiled.mapping.chips_used
    lowered = compiled.program.lowered
    out.print(f"{len(qg.domains)} current domains; mapped to {cores} cores"
              + (f" on {chips} chips" if chips > 1 else "") + f" of {qg.target.name}"
              + ("" if calibrated else "; no --calibration: ranges are worst-case bounds and "
                 "spike agreement is not measured"))
    if lowered.relays or lowered.splits:
        extra = sum(1 for layer in lowered.layers if layer.kind in ("relay", "partial"))
        out.print(f"to fit a core's fan-in: {len(lowered.relays)} residual streams held in relay "
                  f"neurons, {len(lowered.splits)} weight ops split by input channels "
                  f"({extra} extra layers, {lowered.depth} synapse layers deep)")


def render_run(compiled: CompiledModel, sim: SimResult, cost: CostReport,
               labels: np.ndarray | None, wall: float, out: Console, *, as_json: bool) -> None:

    import click

    summary = run_summary(compiled, sim, cost, labels, wall)
    if as_json:
        click.echo(dumps_json(summary, indent=2))
        return
    preds = summary["predictions"]
    out.print(f"{summary['samples']} samples, T={summary['time_steps']} on acsim "
              f"({compiled.target.name}, {summary['cores']} cores)")
    out.print("predictions: " + " ".join(map(str, preds[:32])) + (" ..." if len(preds) > 32 else ""))
    if summary["accuracy"] is not None:
        out.print(f"accuracy: {summary['accuracy']:.2%}")
    out.print(f"per inference: latency {summary['latency_us_per_inference']:.2f} us, "
              f"energy {summary['energy_uj_per_inference']:.3f} uJ "
              f"(papers' estimate {summary['paper_energy_uj_per_inference']:.3f} uJ)")
    s = summary["simulation"]
    out.print(f"simulated in {s['wall_s']:.2f} s: {s['images_per_s']:.0f} images/s, "
              f"{s['events_per_s'] / 1e6:.1f} M synaptic events/s")
    if sim.wraps:
        out.print(f"[red]{sim.wraps} inputs exceeded the 24-bit current and wrapped[/red]")


def render_report(report: dict[str, Any], out: Console) -> None:
    cost = report["cost"]
    t = cost["totals"]
    out.print(f"[bold]{report['target']}[/bold]: {report['samples']} samples, "
              f"T={report['time_steps']}, {t['cores']} cores on {t['tiles']} tiles")
    fm = report["float_model"]
    if report["accuracy"] is not None:
        out.print(f"accuracy: acsim {report['accuracy']:.2%}, float model {fm['accuracy']:.2%} "
                  f"(predictions agree on {fm['prediction_agreement']:.2%})")
    else:
        out.print(f"predictions agree with the float model on {fm['prediction_agreement']:.2%}")
    out.print(f"per inference: latency {t['latency_ns'] / 1e3:.2f} us, energy "
              f"{t['energy_pj'] / 1e6:.3f} uJ; {t['sops']:.0f} synaptic ops, {t['spikes']:.0f} "
              f"spikes, {t['messages']:.0f} messages")
    p = cost["paper"]
    out.print(f"papers' estimate: {p['energy_pj'] / 1e6:.3f} uJ (E_MAC {p['e_mac_pj']} pJ x "
              f"{p['encoding_macs']:.0f} encoding MACs + E_AC {p['e_ac_pj']} pJ x {p['sops']:.0f} "
              f"SOPs); with the readout as MACs {p['energy_with_readout_pj'] / 1e6:.3f} uJ")
    layers = Table(title="per layer (one inference)", title_justify="left")
    for col in ("layer", "kind", "neurons", "cores", "synaptic ops", "spikes", "energy uJ", "share"):
        layers.add_column(col, justify="left" if col in ("layer", "kind") else "right")
    total = t["energy_pj"] or 1.0
    for r in cost["per_layer"]:
        layers.add_row(r["module_path"] or r["name"], f"{r['kind']}/{r['synapse_kind']}",
                       str(r["neurons"]), str(r["cores"]), f"{r['sops']:.0f}", f"{r['spikes']:.1f}",
                       f"{r['energy_pj'] / 1e6:.4f}", f"{r['energy_pj'] / total:.1%}")
    out.print(layers)
    cores = Table(title="busiest cores", title_justify="left")
    for col in ("core", "tile", "layer", "utilisation", "busy us", "energy uJ"):
        cores.add_column(col)
    for c in sorted(cost["per_core"], key=lambda c: -c["busy_ns"])[:12]:
        cores.add_row(str(c["core"]), str(c["tile"]), c["layer"], f"{c['utilisation']:.1%}",
                      f"{c['busy_ns'] / 1e3:.2f}", f"{c['energy_pj'] / 1e6:.4f}")
    out.print(cores)
    steps = Table(title="per time step", title_justify="left")
    for col in ("step", "latency us", "bound by", "energy uJ"):
        steps.add_column(col)
    for s in cost["per_step"]:
        steps.add_row(str(s["step"]), f"{s['latency_ns'] / 1e3:.3f}",
                      f"{s['bound'] or '-'} ({s['bottleneck_layer'] or '-'})",
                      f"{s['energy_pj'] / 1e6:.4f}")
    out.print(steps)
    render_resources(report["resources"], out)


def render_resources(res: dict[str, Any], out: Console) -> None:
    """Per chip and the fullest cores against the limits; what each split and relay cost."""
    lim = res["limits"]
    chips = Table(title=f"per chip (of {lim['chips']}; {lim['cores_per_chip']} cores each)",
                  title_justify="left")
    for col in ("chip", "cores", "neurons", "stored synapses"):
        chips.add_column(col, justify="right")
    for c in res["chips"]:
        chips.add_row(str(c["chip"]), f"{c['cores']} / {lim['cores_per_chip']}",
                      f"{c['neurons']} / {lim['neurons_per_chip'] or '-'}",
                      f"{c['synapses']} / {lim['synapses_per_chip'] or '-'}")
    out.print(chips)
    cores = Table(title="fullest cores (against the per-core limits)", title_justify="left")
    for col in ("core", "chip", "layer", "neurons", "fan-in", "memory B"):
        cores.add_column(col)
    full = sorted(res["cores"], key=lambda c: -max(c["neurons"] / lim["neurons_per_core"],
                                                   c["memory_bytes"] / lim["memory_bytes_per_core"],
                                                   c["fan_in"] / lim["fan_in_per_core"]))
    for c in full[:8]:
        cores.add_row(str(c["core"]), str(c["chip"]), c["layer"],
                      f"{c['neurons']} / {lim['neurons_per_core']}",
                      f"{c['fan_in']} / {lim['fan_in_per_core']}",
                      f"{c['memory_bytes']} / {lim['memory_bytes_per_core']}")
    out.print(cores)
    if res["splits"]:
        splits = Table(title="splits and relays (what fitting the fan-in cost)", title_justify="left")
        for col in ("op", "kind", "parts", "extra cores", "extra steps", "graded spikes", "why"):
            splits.add_column(col)
        for s in res["splits"]:
            msgs = "-" if s["messages"] is None else f"{s['messages']:.0f}"
            splits.add_row(s["op"], s["kind"], str(s["parts"]), str(s["extra_cores"]),
                           str(s["extra_steps"]), msgs, s["why"][:60])
        out.print(splits)
