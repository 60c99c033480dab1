"""The NIR frontend: a ``.nir`` file (HDF5, written by snnTorch, Norse, Sinabs, Rockpool,
SpikingJelly's exporters or snncc's own) -> snncc's IR.

    graph = snncc.load("model.nir")                       # T=4, B=1, dt from the file or 1e-4
    graph = snncc.load("model.nir", time_steps=16, dt=1e-3)
    snncc compile model.nir --target acsim --time-steps 16 --dt 1e-3

:mod:`.reader` turns the file into ``nir`` nodes (every failure a named error),
:mod:`.discretize` is the time-stepping rule (forward Euler at ``dt``), and
:mod:`.convert` builds the graph. A NIR file stores one time step's shapes and no
number of steps: the input is ``[T, B, *shape]`` with ``T`` from ``time_steps`` (else
the file's ``metadata["time_steps"]``, which snncc writes, else 4, as the bundled
digits models) and ``B`` from ``input_shape`` (else 1).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.frontends.nir.convert import to_graph
from snncc.frontends.nir.discretize import DEFAULT_DT
from snncc.frontends.nir.reader import read_nir
from snncc.ir.graph import Graph

DEFAULT_TIME_STEPS = 4

__all__ = ["DEFAULT_DT", "DEFAULT_TIME_STEPS", "from_nir", "load_nir"]


def _meta_number(meta: dict[str, Any], key: str) -> float | None:
    v = meta.get(key)
    if v is None:
        return None
    try:
        x = float(np.asarray(v).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        return None
    return x if math.isfinite(x) and x > 0 else None


def from_nir(g: Any, *, dt: float | None = None, time_steps: int | None = None,
             input_shape: tuple[int, ...] | None = None, spikes: bool = False) -> Graph:
    """The IR graph of an in-memory ``nir.NIRGraph`` (see the module docstring for defaults)."""
    meta = g.metadata if isinstance(getattr(g, "metadata", None), dict) else {}
    step = dt if dt is not None else (_meta_number(meta, "dt") or DEFAULT_DT)
    if input_shape is not None:
        if len(input_shape) < 2:
            raise SnnccError("SNN-IN002", f"input shape {input_shape} has no [T, B] in front",
                             hint="give [T, B, ...], e.g. 4,1,8 for 8 inputs")
        steps = input_shape[0]
        if time_steps is not None and time_steps != steps:
            raise SnnccError("SNN-IN002", f"--time-steps {time_steps} and --input-shape "
                             f"{input_shape} disagree", hint="give one of them")
    else:
        meta_t = _meta_number(meta, "time_steps")
        steps = time_steps or (int(meta_t) if meta_t else DEFAULT_TIME_STEPS)
    batch = input_shape[1] if input_shape is not None else 1
    return to_graph(g, dt=step, time_steps=steps, batch=batch, input_shape=input_shape,
                    spikes=spikes)


def load_nir(path: str | Path, *, dt: float | None = None, time_steps: int | None = None,
             input_shape: tuple[int, ...] | None = None, spikes: bool = False) -> Graph:
    """The IR graph of the NIR file at ``path``."""
    return from_nir(read_nir(Path(path)), dt=dt, time_steps=time_steps,
                    input_shape=input_shape, spikes=spikes)
