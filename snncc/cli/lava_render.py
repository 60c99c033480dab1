"""What `snncc run ARTIFACT --backend lava` shows: predictions from real Lava."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from snncc.backends.lava.available import require_lava
from snncc.backends.registry import backend_for_file
from snncc.cli.render import dumps_json
from snncc.diagnostics import SnnccError


def render_lava_run(artifact: str, inputs_path: str, labels_path: str | None, out: Console, *,
                    as_json: bool, show_progress: bool, timeout_s: float | None = None,
                    aligned: bool = True) -> None:
    """Load the artifact, run every sample in Lava (a progress bar per sample), print
    predictions (and accuracy with labels)."""
    import click

    from snncc.cli import err, load_inputs, load_inputs_and_labels

    require_lava()
    compiled = backend_for_file(artifact).load(artifact)
    inputs, carried = load_inputs_and_labels(inputs_path)
    given = load_inputs(labels_path, key="labels") if labels_path else carried
    labels = None if given is None else given.numpy().reshape(-1)
    if inputs.ndim < 2:
        raise SnnccError("SNN-CLI006", "inputs need a batch axis [T, B, ...]")
    from snncc.backends.lava.run import predict
    start = time.perf_counter()
    with Progress(TextColumn("lava"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeRemainingColumn(), console=err, transient=True,
                  disable=not show_progress) as bar:
        task = bar.add_task("run", total=int(inputs.shape[1]))
        result = predict(compiled.program, inputs.numpy(),
                         lambda done, total: bar.update(task, completed=done), timeout_s,
                         aligned=aligned)
    wall = time.perf_counter() - start
    preds = result.predictions.tolist()
    accuracy = None if labels is None else float((result.predictions == labels).mean())
    where, _ = lava_network(compiled, result.plan)
    summary = {"backend": "lava", "target": compiled.target.name, "samples": len(preds),
               "clock": "aligned" if aligned else "lava",
               "processes": where,
               "predictions": preds, "accuracy": accuracy, "wall_s": wall,
               "steps_per_sample": int(next(iter(result.spikes[0].values())).shape[0])
               if result.spikes and result.spikes[0] else 0}
    if as_json:
        click.echo(dumps_json(summary, indent=2))
        return
    out.print(f"{len(preds)} samples in Lava fixed_pt ({compiled.target.name}), "
              f"{summary['steps_per_sample']} steps each, {wall:.1f} s, "
              + ("biases switched on with each layer's first input (aligned)" if aligned
                 else "every layer from step 0 (Lava's clock)"))
    out.print("predictions: " + " ".join(map(str, preds[:32])) + (" ..." if len(preds) > 32 else ""))
    render_where(where, out)
    if accuracy is not None:
        out.print(f"accuracy: {accuracy:.2%}")


def lava_network(compiled: Any, p: Any = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The Lava processes of a compiled artifact (its plan ``p``, if made) with their
    cores (the target's resource report), and the target's per-core limits."""
    from snncc.backends.lava.placement import placement
    from snncc.report.resources import resources

    res = resources(compiled.program.lowered, compiled.mapping, compiled.target)
    return placement(compiled.program, p, resources=res), res["limits"]


def render_where(where: list[dict[str, Any]], out: Console) -> None:
    """How many processes run on each kind of Loihi 2 resource."""
    kinds: dict[str, int] = {}
    for w in where:
        kinds[w["where"]] = kinds.get(w["where"], 0) + 1
    for place, n in kinds.items():
        out.print(f"  {n} process{'es' if n > 1 else ''} on {place}")


def render_lava_network(where: list[dict[str, Any]], limits: dict[str, Any],
                        out: Console) -> None:
    """Every Lava process: what runs it on Loihi 2, the traffic it carries (graded
    payloads are marked as non-spike traffic), its chip layer's cores and the fullest
    core's neurons, fan-in and synaptic memory against the per-core limits."""
    from rich.table import Table

    table = Table(title="Lava network (processes; cores against the per-core limits)",
                  title_justify="left")
    for col in ("process", "runs on", "size", "traffic", "cores", "neurons/core",
                "fan-in/core", "memory B/core"):
        table.add_column(col)
    for w in where:
        size = f"{w['neurons']} neurons" if "neurons" in w else f"{w['weights']} weights"
        has = "cores" in w
        table.add_row(
            w["process"], w["where"].split(" (")[0].split(":")[0], size, w["traffic"],
            str(w["cores"]) if has else "-",
            f"{w['core_neurons']} / {limits['neurons_per_core']}" if has else "-",
            f"{w['core_fan_in']} / {limits['fan_in_per_core']}" if has else "-",
            f"{w['core_memory_bytes']} / {limits['memory_bytes_per_core']}" if has else "-")
    out.print(table)
    graded = sum(w["traffic"] != "spikes" for w in where)
    if graded:
        out.print(f"{graded} process(es) carry graded (multi-bit) payloads: non-spike traffic "
                  "(residual-stream counts, attention products)")
    render_where(where, out)
