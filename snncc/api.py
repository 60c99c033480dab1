"""The Python API: typed results, never printing.

    graph = snncc.trace(model, torch.zeros(T, B, C, H, W))
    report = snncc.check_spike_only(graph)
    result = snncc.compile(model, example_input, target="ir")
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch

from snncc.analysis.observe import ObservedRanges, observe_ranges
from snncc.analysis.spike_only import SpikeOnlyReport
from snncc.analysis.spike_only import check_spike_only as _check
from snncc.frontends.torch import trace
from snncc.ir.graph import Graph
from snncc.passes import CANONICALIZE, run_passes


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
    prune: bool = True,
    print_ir_after: Iterable[str] = (),
    printer: Callable[[str], None] = print,
) -> CompileResult:
    """Trace (if needed), canonicalize, prune masked time steps, and check.

    Pruning comes before the check so the check and every later pass see the
    graph that will be deployed."""
    if target != "ir":
        raise ValueError(f"target {target!r} is not available yet; use 'ir'")
    passes = CANONICALIZE + (["prune-timesteps"] if prune else [])
    run = run_passes(_as_graph(model, example_input), passes,
                     print_ir_after=print_ir_after, printer=printer)
    return CompileResult(run.graph, _check(run.graph), run.log)
