"""Backends behind one interface: compile, save, load, run.

Why a registry: the CLI and the API should not know which targets exist or
what their files look like; a backend says its name, its file suffix and how
to build, write, read and run its artifact. A new backend (Lava) registers
here and every command takes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph
from snncc.targets import Target

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Backend:
    """One compilation target: ``compile(graph, hardware, calibration, **options)`` ->
    artifact; ``save(artifact, path)``; ``load(path)`` -> artifact; ``run(artifact, inputs,
    batch_size, progress)`` -> a run result (None where the target only stores).
    ``options`` names the keyword options its compile takes (NIR's ``partial``)."""

    name: str
    suffix: str
    description: str
    compile: Callable[..., Any]
    save: Callable[[Any, str | Path], None]
    load: Callable[[str | Path], Any]
    run: Callable[[Any, torch.Tensor, int, Progress | None], Any] | None = None
    options: tuple[str, ...] = ()


def _ir_compile(graph: Graph, hardware: str | Target, calibration: torch.Tensor | None) -> Graph:
    return graph


def _ir_save(graph: Any, path: str | Path) -> None:
    from snncc.ir.serialize import save_graph

    save_graph(graph, path)


def _ir_load(path: str | Path) -> Graph:
    from snncc.ir.serialize import load_graph

    return load_graph(path)


def _acsim_compile(graph: Graph, hardware: str | Target, calibration: torch.Tensor | None) -> Any:
    from snncc.api import acsim_spikes
    from snncc.backends.acsim.artifact import CompiledModel
    from snncc.passes.quantize import quantize

    qg = quantize(graph, hardware, calibration=calibration, simulate=acsim_spikes)
    return CompiledModel.build(qg)


def _acsim_save(compiled: Any, path: str | Path) -> None:
    from snncc.backends.acsim.artifact import save_artifact

    save_artifact(compiled, path)


def _acsim_load(path: str | Path) -> Any:
    from snncc.backends.acsim.artifact import load_artifact

    return load_artifact(path)


def _acsim_run(compiled: Any, inputs: torch.Tensor, batch_size: int,
               progress: Progress | None) -> Any:
    from snncc.backends.acsim.simulator import run_quantized

    return run_quantized(compiled.program, inputs, batch_size=batch_size, progress=progress)


def _loihi_compile(graph: Graph, hardware: str | Target, calibration: torch.Tensor | None) -> Any:
    """acsim's compile (quantize, lower, map: a target the model does not fit is an error
    here, before any Lava process starts), then the Lava network's plan, so an op the
    Lava lowering cannot build is named at compile time."""
    from snncc.backends.lava.lowering import plan

    compiled = _acsim_compile(graph, hardware, calibration)
    plan(compiled.program)
    return compiled


def _lava_run(compiled: Any, inputs: torch.Tensor, batch_size: int,
              progress: Progress | None, timeout_s: float | None = None) -> Any:
    from snncc.backends.lava.run import predict

    x = inputs.detach().cpu().numpy() if isinstance(inputs, torch.Tensor) else inputs
    return predict(compiled.program, x, progress, timeout_s)


def _nir_compile(graph: Graph, hardware: str | Target, calibration: torch.Tensor | None,
                 *, partial: bool = False, dt: float | None = None) -> Any:
    from snncc.backends.nir import to_nir

    return to_nir(graph, partial=partial, dt=dt)


def _nir_save(export: Any, path: str | Path) -> None:
    from snncc.backends.nir import save_nir

    save_nir(export, path)


def _nir_load(path: str | Path) -> Any:
    from snncc.backends.nir import load_nir_file

    return load_nir_file(path)


def _onnx_compile(graph: Graph, hardware: str | Target, calibration: torch.Tensor | None) -> Any:
    from snncc.backends.onnx import to_onnx

    return to_onnx(graph)


def _onnx_save(model: Any, path: str | Path) -> None:
    from snncc.backends.onnx import save_onnx

    save_onnx(model, path)


def _onnx_load(path: str | Path) -> Any:
    from snncc.backends.onnx import load_onnx_file

    return load_onnx_file(path)


BACKENDS: dict[str, Backend] = {
    "ir": Backend("ir", ".snnir", "the canonical checked graph", _ir_compile, _ir_save, _ir_load),
    "acsim": Backend("acsim", ".acsim", "quantized, lowered and mapped; runs on acsim",
                     _acsim_compile, _acsim_save, _acsim_load, _acsim_run),
    "loihi": Backend("loihi", ".loihi", "the artifact for Loihi 2 as real Lava processes "
                     "(run with --backend lava, or acsim)", _loihi_compile, _acsim_save,
                     _acsim_load, _lava_run),
    "nir": Backend("nir", ".nir", "a NIR graph for other neuromorphic tools (ops NIR expresses)",
                   _nir_compile, _nir_save, _nir_load, options=("partial", "dt")),
    "onnx": Backend("onnx", ".onnx", "an ONNX model (standard ops, ai.snncc neurons) for Netron",
                    _onnx_compile, _onnx_save, _onnx_load),
}
RUNNERS = {"acsim": _acsim_run, "lava": _lava_run}  # `snncc run --backend`


def get_backend(name: str) -> Backend:
    if name not in BACKENDS:
        raise SnnccError("SNN-CLI005", f"unknown target {name!r}",
                         hint=f"targets: {', '.join(BACKENDS)}")
    return BACKENDS[name]


def backend_for_file(path: str | Path) -> Backend:
    """The backend whose artifacts carry this file's suffix; acsim for any other name
    (``-o`` may name an artifact freely, and acsim's loader says clearly what a file is not)."""
    suffix = Path(path).suffix
    for backend in BACKENDS.values():
        if backend.suffix == suffix and backend.run is not None:
            return backend
    return BACKENDS["acsim"]
