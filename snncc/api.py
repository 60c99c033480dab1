"""The Python API: typed results, never printing.

    graph = snncc.trace(model, torch.zeros(T, B, C, H, W))
    graph = snncc.load("model.pt", input_shape=(T, B, C, H, W))   # or a .snnir or .nir file
    report = snncc.check_spike_only(graph)
    result = snncc.compile(model, example_input, target="ir")
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snncc.analysis.observe import ObservedRanges, observe_ranges
from snncc.analysis.spike_only import SpikeOnlyReport
from snncc.analysis.spike_only import check_spike_only as _check
from snncc.backends.acsim.artifact import CompiledModel
from snncc.backends.acsim.costs import CostReport
from snncc.backends.acsim.costs import estimate as estimate_costs
from snncc.backends.acsim.simulator import SimResult, run_quantized
from snncc.backends.registry import get_backend
from snncc.diagnostics import SnnccError
from snncc.frontends.registry import LoadRequest, load_path
from snncc.frontends.torch import trace
from snncc.ir.graph import Graph
from snncc.ir.types import Layout
from snncc.lower import to_text
from snncc.passes import CANONICALIZE, run_passes
from snncc.passes.quantize import QuantizedGraph
from snncc.targets import Target


def load(
    path: str | Path,
    example_input: torch.Tensor | None = None,
    *,
    input_shape: Sequence[int] | None = None,
    time_steps: int | None = None,
    input_kind: str = "analog",
    trust: bool = False,
    allow: str | Sequence[str] = (),
    arch: str | None = None,
    dt: float | None = None,
) -> Graph:
    """A graph from a file, whatever its kind (a ``.snnir`` graph, a PyTorch model file;
    see ``snncc.frontends.registry``); the same way in as the CLI's.

    A model file is read without running code from it unless ``trust`` (``allow`` names
    further packages whose classes it may use; a state_dict needs ``arch="module:factory"``)
    and traced with ``example_input``, or zeros of ``input_shape``, or the example input the
    file carries. ``time_steps`` runs a single-step model, whose example input has no time
    axis ([B, C, H, W]), for that many steps; ``input_kind="spikes"`` says the input is
    already binary (event-camera frames), so the first weight op is an accumulate. Raises
    SnnccError for an unreadable or unknown file or options that do not fit it. A NIR file
    (``.nir``) stores no time step: ``dt`` is the step its neurons are integrated with
    (default: the file's ``metadata["dt"]``, else 1e-4; see ``frontends/nir/discretize.py``)."""
    request = LoadRequest(
        example_input=example_input,
        input_shape=None if input_shape is None else tuple(input_shape),
        time_steps=time_steps,
        input_kind=input_kind,
        trust=trust,
        allow=(allow,) if isinstance(allow, str) else tuple(allow),
        arch=arch,
        dt=dt,
    )
    return load_path(path, request).graph


def canonicalize(
    graph: Graph, *, print_ir_after: Iterable[str] = (), printer: Callable[[str], None] = print
) -> Graph:
    """Run the canonicalization pipeline (a new graph; the input is unchanged)."""
    return run_passes(graph, CANONICALIZE, print_ir_after=print_ir_after, printer=printer).graph


def _as_graph(model: torch.nn.Module | Graph, example_input: torch.Tensor | None) -> Graph:
    if isinstance(model, Graph):
        return model
    if example_input is None:
        raise TypeError("an example input is needed to trace a torch module")
    return trace(model, example_input)


@dataclass
class CheckResult:
    report: SpikeOnlyReport
    graph: Graph
    observed: ObservedRanges | None = None


def check_spike_only(
    model: torch.nn.Module | Graph,
    example_input: torch.Tensor | None = None,
    *,
    inputs: Sequence[torch.Tensor] | None = None,
) -> CheckResult:
    """Canonicalize and classify every multiply; with `inputs`, also run the
    interpreter and confirm that every value called SPIKE was binary."""
    graph = canonicalize(_as_graph(model, example_input))
    observed = observe_ranges(graph, inputs) if inputs is not None else None
    return CheckResult(_check(graph), graph, observed)


@dataclass
class CompileResult:
    graph: Graph
    report: SpikeOnlyReport
    pass_log: list[tuple[str, bool, list[str]]] = field(default_factory=list)
    compiled: Any = None  # the target's artifact: acsim's CompiledModel, nir's NirExport

    @property
    def timesteps(self) -> dict[str, object] | None:
        """The prune-timesteps report (None when compiled with prune=False)."""
        report = self.graph.meta.get("timesteps")
        return report if isinstance(report, dict) else None




def compile(
    model: torch.nn.Module | Graph,
    example_input: torch.Tensor | None = None,
    *,
    target: str = "ir",
    hardware: str | Target = "loihi2",
    calibration: torch.Tensor | None = None,
    prune: bool = True,
    print_ir_after: Iterable[str] = (),
    printer: Callable[[str], None] = print,
    options: Mapping[str, object] | None = None,
) -> CompileResult:
    """Trace (if needed), canonicalize, prune masked time steps, and check; for
    ``target="acsim"`` also quantize for ``hardware`` and map to its cores.

    Pruning comes before the check so the check and every later pass see the
    graph that will be deployed. ``calibration`` (sample inputs ``[T, B, ...]``)
    sets the quantizer's current ranges and measures per-layer spike agreement
    with the float model; without it the ranges are worst-case bounds. ``options`` are
    the target's own (``{"partial": True}`` for ``target="nir"``: export the expressible
    prefix); an option the target does not take is SNN-CLI006."""
    backend = get_backend(target)
    options = dict(options or {})
    if unknown := sorted(set(options) - set(backend.options)):
        raise SnnccError("SNN-CLI006", f"target {target!r} takes no option "
                         f"{', '.join(unknown)}", hint=f"{target} takes: "
                         f"{', '.join(backend.options) or 'no options'}")
    passes = CANONICALIZE + (["prune-timesteps"] if prune else [])
    run = run_passes(_as_graph(model, example_input), passes,
                     print_ir_after=print_ir_after, printer=printer)
    result = CompileResult(run.graph, _check(run.graph), run.log)
    if target != "ir":
        spiking = any(n.opdef.is_neuron or n.opdef.feeds_back  # a recurrent layer spikes too
                      or n.op == "input" and n.type.kind.value == "SPIKE" for n in run.graph)
        if not spiking:  # analog in, no neuron: all of it is host arithmetic
            raise SnnccError("SNN-Q010", "the model has no spiking neuron: nothing of it would "
                             "run on the chip", hint="compile a spiking model (one with LIF/IF "
                             "neurons), or use --target ir")
        if calibration is not None:
            check_inputs(run.graph, calibration, "calibration")
        result.compiled = backend.compile(run.graph, hardware, calibration, **options)
        wanted = set(print_ir_after)
        if ("lower" in wanted or "all" in wanted) and isinstance(result.compiled, CompiledModel):
            printer(f"// ----- layer program after lower -----\n{to_text(result.compiled.lowered)}")
    return result


def acsim_spikes(qg: QuantizedGraph, inputs: torch.Tensor) -> Mapping[str, np.ndarray]:
    """Every neuron's spikes from acsim on ``inputs``: what the quantizer compares with the
    float model (its ``simulate``; quantization itself never imports a backend)."""
    return run_quantized(qg, inputs).spikes


def _compiled(compiled: CompiledModel | CompileResult) -> CompiledModel:
    c = compiled.compiled if isinstance(compiled, CompileResult) else compiled
    if not isinstance(c, CompiledModel):
        raise TypeError("compile with target='acsim' to simulate or estimate")
    return c


def simulate(
    compiled: CompiledModel | CompileResult,
    inputs: torch.Tensor | np.ndarray,
    *,
    batch_size: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> SimResult:
    """Run inputs ``[T, B, ...]`` through acsim: outputs, predictions, spikes per
    layer and every event counted (price them with :func:`estimate`)."""
    c = _compiled(compiled)
    return run_quantized(c.program, inputs, batch_size=batch_size,
                         progress=progress)


def estimate(compiled: CompiledModel | CompileResult, result: SimResult) -> CostReport:
    """Latency and energy of one inference on the compiled target, from a run's counts."""
    c = _compiled(compiled)
    return estimate_costs(result.counts, c.layers, c.mapping, c.target)


def check_inputs(graph: Graph, x: torch.Tensor, what: str = "inputs") -> None:
    """Sample inputs fit the traced input: the same shape but for the batch axis, whose
    size is a multiple of the traced batch (the graph bakes it into its reshapes)."""
    traced = graph.nodes[graph.inputs[0]].type
    axis = 1 if traced.layout == Layout.TIME else 0
    want, got = list(traced.shape), list(x.shape)
    fits = len(want) == len(got) and all(a == b for i, (a, b) in enumerate(zip(want, got))
                                         if i != axis)
    if not fits or got[axis] % want[axis]:
        shape = want[:axis] + ["k*" + str(want[axis])] + want[axis + 1:]
        raise SnnccError("SNN-CLI004", f"{what} have shape {tuple(got)}, but the model was "
                         f"traced for [{', '.join(map(str, shape))}]",
                         hint=f"give {what} of the traced shape (any multiple of its batch)")
