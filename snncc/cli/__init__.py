"""The `snncc` command line.

Exit codes: 0 success (no spike-only violation), 1 violations found,
2 bad usage or unreadable/unsupported input (one line, no traceback),
3 an internal compiler error (a bug: please report it with the printed file).
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

# SpikingJelly warns at import about torch.jit; a user of the CLI can do nothing about it.
warnings.filterwarnings("ignore", category=FutureWarning)

import click  # noqa: E402
import torch  # noqa: E402
from rich.console import Console  # noqa: E402

from snncc.backends.registry import BACKENDS, get_backend  # noqa: E402
from snncc.cli.render import dumps_json  # noqa: E402
from snncc.diagnostics import SnnccError  # noqa: E402
from snncc.frontends.registry import INPUT_KINDS  # noqa: E402
from snncc.ir.graph import Graph  # noqa: E402

F = TypeVar("F", bound=Callable[..., Any])
out = Console(highlight=False, soft_wrap=False, width=140)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def guarded(fn: F) -> F:
    """User errors -> one line + exit 2; compiler bugs -> reproducer note + exit 3."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SnnccError as e:
            err.print(f"snncc: {e.diagnostic.render()}", style="red", markup=False)
            sys.exit(2)
        except KeyboardInterrupt:  # Ctrl-C: outputs are all-or-nothing, so nothing is half done
            err.print("snncc: interrupted; no output was written", markup=False)
            sys.exit(130)
        except Exception as e:  # anything else is a compiler bug: a reproducer, never a traceback
            path = Path(".snncc-crash.txt")
            path.write_text(f"snncc internal error\nargv: {sys.argv}\n\n{traceback.format_exc()}")
            err.print(f"snncc: internal error: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
                      f" (details in {path}; please report it)", markup=False)
            sys.exit(3)

    return wrapper  # type: ignore[return-value]


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        shape = tuple(int(p) for p in text.replace("x", ",").split(",") if p.strip())
    except ValueError:
        shape = ()
    if not shape or any(d <= 0 for d in shape):
        raise SnnccError("SNN-CLI001", f"--input-shape {text!r} is not a list of positive integers",
                         hint="e.g. --input-shape 4,1,1,8,8 for [T, B, C, H, W]")
    return shape


@dataclass(frozen=True)
class ModelSource:
    """The options every model-reading command shares: a path and how to read and trace it."""

    path: str
    input_shape: str | None = None
    input_kind: str = "analog"
    time_steps: int | None = None
    trust: bool = False
    allow: tuple[str, ...] = ()
    arch: str | None = None
    dt: float | None = None


def model_options(fn: F) -> F:
    """MODEL and the options that read and trace it, handed to the command as one
    ``source: ModelSource``; also ``--print-ir-after``."""
    opts = [
        click.argument("model", type=click.Path(dir_okay=False)),
        click.option("--input-shape", help="example input shape, e.g. 4,1,1,8,8 for [T,B,C,H,W]"),
        click.option("--input-kind", type=click.Choice(INPUT_KINDS), default="analog",
                     show_default=True,
                     help="spikes: the input is binary event frames (e.g. [T,B,2,H,W] from an "
                          "event camera), so the first weight op is an accumulate"),
        click.option("--time-steps", type=int, metavar="T",
                     help="run a single-step model, whose input shape has no time axis "
                          "(e.g. 1,3,224,224), for T steps"),
        click.option("--trust", is_flag=True, help="allow the model file to run arbitrary code"),
        click.option("--allow", multiple=True, help="module prefix whose classes a model file may use"),
        click.option("--arch", help="module:factory that builds the model for a state_dict file"),
        click.option("--dt", type=float, help="a NIR file's time step: its neurons are "
                     "integrated with forward Euler at dt (default: the file's metadata, "
                     "else 1e-4); with --target nir, also the step the written file states"),
        click.option("--print-ir-after", "print_ir_after", multiple=True,
                     help="print the IR after this pass (or 'all')"),
    ]

    @functools.wraps(fn)
    def wrapper(*, model: str, input_shape: str | None, input_kind: str, time_steps: int | None,
                trust: bool, allow: tuple[str, ...], arch: str | None, dt: float | None,
                **kwargs: Any) -> Any:
        source = ModelSource(model, input_shape, input_kind, time_steps, trust, allow, arch, dt)
        return fn(source, **kwargs)

    for o in reversed(opts):
        wrapper = o(wrapper)
    return wrapper  # type: ignore[return-value]


def load_graph_from(source: ModelSource,
                    inputs: torch.Tensor | None = None) -> tuple[Graph, torch.Tensor | None]:
    """One way in (the registry ``snncc.load`` uses): a path -> an IR graph, and the example
    input it was traced with (None for a .snnir graph). With ``inputs``, trace for the
    inputs' own shape (their batch size); a .snnir graph must have been compiled for it."""
    from snncc.frontends.registry import LoadRequest, load_path

    shape = parse_shape(source.input_shape)  # a bad --input-shape is an error even with inputs
    request = LoadRequest(example_input=inputs, input_shape=None if inputs is not None else shape,
                          time_steps=source.time_steps, input_kind=source.input_kind,
                          trust=source.trust, allow=source.allow, arch=source.arch,
                          dt=source.dt)
    loaded = load_path(source.path, request)
    return loaded.graph, loaded.example_input


def _read_tensor_file(path: str, key: str) -> object:
    """A .pt file read with weights_only (no code runs), or a .npy array."""
    import numpy as np

    p = Path(path)
    if not p.exists():
        raise SnnccError("SNN-CLI003", f"no such {key} file: {path}")
    try:
        if p.suffix == ".npy":
            return torch.from_numpy(np.load(p, allow_pickle=False))
        return torch.load(p, weights_only=True, map_location="cpu")
    except Exception as e:  # any unreadable file: report it, never a traceback
        raise SnnccError("SNN-CLI003", f"cannot read {key} {path}: {str(e).splitlines()[0]}",
                         hint="save a tensor with torch.save(x, path) or numpy.save") from None


def _pick(data: object, path: str, key: str) -> torch.Tensor:
    """The tensor itself, or ``data[key]`` of a dict; inputs as float, labels as they are."""
    if isinstance(data, dict):
        if key not in data:
            raise SnnccError("SNN-CLI003", f"{path} holds a dict without {key!r} "
                             f"(keys: {', '.join(map(str, data))})",
                             hint=f"save {{'{key}': tensor}} or the tensor itself")
        data = data[key]
    if not isinstance(data, torch.Tensor):
        raise SnnccError("SNN-CLI003", f"{path} holds a {type(data).__name__}, not a tensor")
    return _checked_labels(data, path) if key == "labels" else _checked_values(data, path, key)


def _checked_values(x: torch.Tensor, path: str, key: str) -> torch.Tensor:
    """Inputs and calibration data: some samples, every value finite (checked once, here)."""
    if x.numel() == 0:
        raise SnnccError("SNN-CLI003", f"{path} holds no samples (shape {tuple(x.shape)})",
                         hint=f"give at least one sample as --{key}")
    x = x.float()
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise SnnccError("SNN-CLI003", f"{path} holds {bad} NaN or infinite value(s)",
                         hint="inputs must be finite numbers")
    return x


def _checked_labels(y: torch.Tensor, path: str) -> torch.Tensor:
    """Class indices: integers >= 0 (a float or negative label would score 0 % silently)."""
    if y.is_floating_point() and not bool((y == y.round()).all()) or bool((y < 0).any()):
        raise SnnccError("SNN-CLI003", f"{path}: labels must be class indices (integers >= 0)",
                         hint="save labels as an integer tensor, e.g. torch.tensor([3, 0, 7])")
    return y.long()


def load_inputs(path: str, key: str = "inputs") -> torch.Tensor:
    """A tensor file for --inputs/--labels/--calibration: a .pt tensor, or a dict holding
    ``key`` (read with weights_only, so no code runs), or a .npy array."""
    return _pick(_read_tensor_file(path, key), path, key)


def load_inputs_and_labels(path: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Inputs, and the labels an ``{'inputs', 'labels'}`` dict carries (one read)."""
    data = _read_tensor_file(path, "inputs")
    labels = _pick(data, path, "labels") if isinstance(data, dict) and "labels" in data else None
    return _pick(data, path, "inputs"), labels


@click.group()
@click.version_option(package_name="snncc")
def main() -> None:
    """snncc: compile trained spiking neural networks to neuromorphic hardware."""


@main.command("check-spike-only")
@model_options
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.option("--sarif", is_flag=True, help="print a SARIF 2.1.0 log")
@click.option("--inputs", "inputs_path", help="sample inputs; confirms SPIKE values are binary")
@click.option("--all", "show_all", is_flag=True, help="list the spike-driven ACs too")
@guarded
def check_cmd(source: ModelSource, print_ir_after: tuple[str, ...], as_json: bool, sarif: bool,
              inputs_path: str | None, show_all: bool) -> None:
    """Is every weight op an accumulate triggered by a binary spike?"""
    from snncc.analysis.observe import observe_ranges
    from snncc.analysis.spike_only import check_spike_only
    from snncc.api import canonicalize
    from snncc.cli.render import render_sarif, render_text

    inputs = load_inputs(inputs_path) if inputs_path else None
    graph, _ = load_graph_from(source, inputs)
    graph = canonicalize(graph, print_ir_after=print_ir_after, printer=err.print)
    report = check_spike_only(graph)
    observed = observe_ranges(graph, [inputs]) if inputs is not None else None
    if sarif:
        click.echo(dumps_json(render_sarif(report, source.path), indent=2))
    elif as_json:
        obj = report.to_json()
        if observed is not None:
            obj["observed"] = {"mismatches": [o.model_dump() for o in observed.mismatches],
                               "nodes": len(observed.observations)}
        click.echo(dumps_json(obj, indent=2))
    else:
        render_text(report, out, show_ac=show_all)
        if observed is not None:
            bad = observed.mismatches
            out.print(f"observed on {inputs_path}: {len(observed.observations)} values checked, "
                      f"{len(bad)} outside the analysis" + ("" if bad else " (all SPIKE values binary)"))
            for o in bad:
                out.print(f"  [red]%{o.node} ({o.module_path}): {o.kind} {o.inferred} but saw "
                          f"[{o.observed_min:g}, {o.observed_max:g}][/red]")
    if observed is not None and observed.mismatches:
        sys.exit(3)
    sys.exit(0 if report.ok else 1)


@main.command("compile")
@model_options
@click.option("--target", type=click.Choice(list(BACKENDS)), default="ir", show_default=True,
              help="; ".join(f"{b.name}: {b.description} ({b.suffix})" for b in BACKENDS.values()))
@click.option("--hardware", default="loihi2", show_default=True,
              help="acsim: the chip to quantize for and price (a builtin name or a target YAML)")
@click.option("--calibration", "calibration_path",
              help="acsim: sample inputs [T,B,...] (.pt/.npy) that set the quantizer's ranges and "
                   "measure per-layer spike agreement with the float model")
@click.option("-o", "--output", help="output file (default: MODEL with the target's suffix)")
@click.option("--json", "as_json", is_flag=True, help="print a JSON summary")
@click.option("--no-prune", is_flag=True, help="keep the work of masked time steps")
@click.option("--partial", is_flag=True,
              help="nir: export the largest prefix NIR can express and say where it stopped")
@guarded
def compile_cmd(source: ModelSource, print_ir_after: tuple[str, ...], target: str, hardware: str,
                calibration_path: str | None, output: str | None, as_json: bool,
                no_prune: bool, partial: bool) -> None:
    """Compile MODEL to the target (ir: a canonical, checked .snnir graph; acsim: a
    quantized, core-mapped artifact for `snncc run` and `snncc report`)."""
    from snncc.api import compile as compile_model
    from snncc.backends.acsim.artifact import CompiledModel
    from snncc.backends.nir.export import NirExport
    from snncc.frontends.registry import detect_kind

    backend = get_backend(target)
    dest = Path(output or Path(source.path).with_suffix(backend.suffix))
    if dest.exists() and Path(source.path).exists() and dest.samefile(source.path):
        raise SnnccError("SNN-OUT004", f"-o {dest} is the model file being compiled",
                         hint="give the compiled artifact another name")
    calibration = load_inputs(calibration_path) if calibration_path else None
    options: dict[str, Any] = {"partial": True} if partial else {}
    if target == "nir" and source.dt is not None:
        # --dt is a NIR file's step: the written file's, and the read one's if MODEL is NIR
        options["dt"] = source.dt
        if detect_kind(source.path) != "nir":
            source = dataclasses.replace(source, dt=None)
    graph, _ = load_graph_from(source)
    result = compile_model(graph, target=target, hardware=hardware, calibration=calibration,
                           prune=not no_prune, print_ir_after=print_ir_after, printer=err.print,
                           options=options)
    backend.save(result.compiled if result.compiled is not None else result.graph, dest)
    summary: dict[str, Any] = {
        "output": str(dest),
        "target": target,
        "nodes": len(result.graph),
        "parameters": result.graph.num_parameters(),
        "spike_only": result.report.summary(),
        "passes": [{"name": n, "modified": m, "notes": notes} for n, m, notes in result.pass_log],
    }
    ts = result.timesteps
    if ts is not None:
        summary["timesteps"] = {
            "average": ts["average"],
            "average_effective": ts["average_effective"],
            "per_layer": ts["per_layer"],
            "per_layer_effective": ts["per_layer_effective"],
            "pruned": ts["pruned"],
            "acs_before": ts["synaptic_ops_before"],
            "acs_after": ts["synaptic_ops_after"],
            "neuron_updates_before": ts["neuron_updates_before"],
            "neuron_updates_after": ts["neuron_updates_after"],
            "kept": ts["kept"],
        }
    exported = result.compiled if isinstance(result.compiled, NirExport) else None
    compiled = result.compiled if isinstance(result.compiled, CompiledModel) else None
    if compiled is not None:
        summary["quantization"] = compiled.qg.report_json()
        summary["mapping"] = {"cores": len(compiled.mapping.cores),
                              "hardware": compiled.target.name}
    lava: tuple[list[dict[str, Any]], dict[str, Any]] | None = None
    if compiled is not None and target == "loihi":
        from snncc.cli.lava_render import lava_network

        lava = lava_network(compiled)
        summary["lava"] = {"processes": lava[0], "limits": lava[1]}
    if exported is not None:
        summary["nir"] = {"nodes": len(exported.graph.nodes), "dt": exported.dt,
                          "stopped_at": exported.stopped_at}
    if as_json:
        click.echo(dumps_json(summary, indent=2))
        return
    s = result.report.summary()
    out.print(f"wrote {dest}: {len(result.graph)} nodes, {summary['parameters']:,} parameters; "
              f"spike-only: {'yes' if s['ok'] else 'no'} ({s['VIOLATION']} violations, "
              f"{s['READOUT_MAC']} readout MACs)")
    if ts is not None:
        out.print(f"time steps: average {ts['average']:.2f} of T={graph.time_steps} "
                  f"(proven active: {ts['average_effective']:.2f}); "
                  f"scheduled ACs {ts['synaptic_ops_before']:,} -> {ts['synaptic_ops_after']:,}, "
                  f"neuron updates {ts['neuron_updates_before']:,} -> "
                  f"{ts['neuron_updates_after']:,}")
    if exported is not None:
        out.print(f"NIR: {len(exported.graph.nodes)} nodes, dt={exported.dt:g}"
                  + (f"; --partial stopped before {', '.join('%' + n for n in exported.stopped_at)}"
                     if exported.stopped_at else ""))
    if compiled is not None:
        from snncc.cli.acsim_render import render_quantization

        render_quantization(compiled, out, calibrated=calibration is not None)
    if lava is not None:
        from snncc.cli.lava_render import render_lava_network

        render_lava_network(*lava, out)


def artifact_options(fn: F) -> F:
    """The arguments `run` and `report` share: an artifact, inputs, labels, batch size."""
    opts = [
        click.argument("artifact", type=click.Path(dir_okay=False)),
        click.option("--inputs", "inputs_path", required=True,
                     help="inputs [T,B,...] (.pt tensor or {'inputs','labels'} dict, or .npy)"),
        click.option("--labels", "labels_path", help="labels [B] (.pt/.npy) to report accuracy"),
        click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=1)),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


@main.command("run")
@artifact_options
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.option("--backend", type=click.Choice(["acsim", "lava"]), default=None,
              help="run on acsim, or in real Lava (fixed_pt); default: lava for a .loihi "
                   "artifact, acsim otherwise")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True),
              help="lava: stop the run (freeing its processes) after this many seconds")
@click.option("--clock", type=click.Choice(["aligned", "lava"]), default="aligned",
              show_default=True,
              help="lava: 'aligned' switches each layer's bias on with its first input and "
                   "reads each layer's window (the trained model's timing); 'lava' runs "
                   "every layer from step 0 (acsim's Lava-timed mode)")
@guarded
def run_cmd(artifact: str, inputs_path: str, labels_path: str | None, batch_size: int,
            as_json: bool, backend: str | None, timeout_s: float | None, clock: str) -> None:
    """Run a compiled artifact: predictions, latency and energy per inference (acsim),
    or predictions and every layer's spikes in real Lava."""
    from snncc.cli.acsim_render import render_run, run_artifact

    if backend == "lava" or backend is None and Path(artifact).suffix == ".loihi":
        from snncc.cli.lava_render import render_lava_run

        render_lava_run(artifact, inputs_path, labels_path, out, as_json=as_json,
                        show_progress=not as_json, timeout_s=timeout_s,
                        aligned=clock == "aligned")
        return
    compiled, inputs, labels, sim, cost, wall = run_artifact(
        artifact, inputs_path, labels_path, batch_size, show_progress=not as_json)
    render_run(compiled, sim, cost, labels, wall, out, as_json=as_json)


@main.command("report")
@artifact_options
@click.option("--json", "as_json", is_flag=True, help="print the whole report as JSON")
@click.option("--html", "html_path", help="also write a self-contained HTML report with plots")
@guarded
def report_cmd(artifact: str, inputs_path: str, labels_path: str | None, batch_size: int,
               as_json: bool, html_path: str | None) -> None:
    """Per-layer and per-core breakdown of time, energy and activity of a compiled model."""
    from snncc.cli.acsim_render import full_report, render_report, run_artifact

    compiled, inputs, labels, sim, cost, wall = run_artifact(
        artifact, inputs_path, labels_path, batch_size, show_progress=not as_json)
    report = full_report(compiled, sim, cost, labels, wall, inputs)
    if html_path:
        from snncc.report.html import write_html_report

        write_html_report(report, html_path)
    if as_json:
        click.echo(dumps_json(report, indent=2))
    else:
        render_report(report, out)
        if html_path:
            out.print(f"wrote {html_path}")


@main.command("inspect")
@model_options
@click.option("--ir", "show_ir", is_flag=True, help="print the IR's text form")
@click.option("--json", "as_json", is_flag=True, help="print a JSON summary")
@guarded
def inspect_cmd(source: ModelSource, print_ir_after: tuple[str, ...], show_ir: bool,
                as_json: bool) -> None:
    """Summarize a model: layers, parameters, neurons, time steps."""
    from snncc.analysis.summary import summarize
    from snncc.ir.text import graph_text

    graph, _ = load_graph_from(source)
    summary = summarize(graph)
    if as_json:
        click.echo(dumps_json(summary, indent=2))
        return
    if show_ir:
        out.print(graph_text(graph), markup=False)
    out.print(f"model {summary['model']}: {summary['parameters']:,} parameters "
              f"({summary['parameters'] / 1e6:.2f} M), {summary['nodes']} IR nodes, "
              f"T={summary['time_steps']}")
    for op, n in summary["ops"].items():
        out.print(f"  {op:12s} {n}")
    if summary["unused_modules"]:
        unused = summary["unused_modules"]
        out.print(f"  {len(unused)} modules with parameters are never called: "
                  + ", ".join(list(unused)[:6]) + (" ..." if len(unused) > 6 else ""))


if __name__ == "__main__":
    main()
