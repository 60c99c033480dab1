"""Passes are plain functions `Graph -> PassResult`, registered by name.

The manager runs a list of them on a copy of the graph, verifies the IR after
every pass that changed it (MLIR's habit), and can print the IR after a named
pass (`--print-ir-after NAME`, or `all`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from snncc.ir.graph import Graph, IRVerificationError, verify
from snncc.ir.text import graph_text


@dataclass
class PassResult:
    graph: Graph
    modified: bool
    notes: list[str] = field(default_factory=list)


PassFn = Callable[[Graph], PassResult]
PASSES: dict[str, PassFn] = {}


def register_pass(name: str) -> Callable[[PassFn], PassFn]:
    def deco(fn: PassFn) -> PassFn:
        if name in PASSES:
            raise ValueError(f"pass {name!r} registered twice")
        PASSES[name] = fn
        return fn

    return deco


def get_pass(name: str) -> PassFn:
    try:
        return PASSES[name]
    except KeyError:
        raise KeyError(f"unknown pass {name!r}; known: {', '.join(sorted(PASSES))}") from None


@dataclass
class PipelineRun:
    graph: Graph
    log: list[tuple[str, bool, list[str]]]  # (pass, modified, notes)


def run_passes(
    graph: Graph,
    names: Iterable[str],
    *,
    print_ir_after: Iterable[str] = (),
    printer: Callable[[str], None] = print,
) -> PipelineRun:
    """Run passes in order on a copy of `graph`; the input graph is never changed."""
    wanted = set(print_ir_after)
    g = graph.copy()
    log: list[tuple[str, bool, list[str]]] = []
    for name in names:
        result = get_pass(name)(g)
        g = result.graph
        if result.modified:
            try:
                verify(g)
            except IRVerificationError as e:
                raise IRVerificationError(f"after pass '{name}': {e}") from None
        log.append((name, result.modified, result.notes))
        if name in wanted or "all" in wanted:
            printer(f"// ----- IR after {name} -----\n{graph_text(g)}")
    return PipelineRun(g, log)
