"""PyTorch frontend: `trace(module, example_input) -> Graph`.

The forward runs once (or a few times, see below) on meta tensors with the
example input's concrete shape (`session.py` says why this design); nothing of
the model's arithmetic runs, so tracing costs the same at any batch size.

Where time lives is read from the model, not assumed from the input:
1. first the input is taken as having no time axis; a repeat over a new
   leading axis inside forward (`x.unsqueeze(0).repeat(T, ...)`) then makes T;
2. a multi-step neuron reached by a value without time means the input's
   leading axis was time: traced again with the input `[T, B, ...]`;
3. a batch-first input `[B, T, ...]` that the model moves to `[T, B, ...]` itself
   (`x.permute(1, 0, 2, 3, 4)`, `x.transpose(0, 1)` of event frames): that
   permute declares the time axis;
4. single-step neurons called in a Python loop are counted in a probe run: the
   count is T, over a static value (an image fed every step) or over the
   input's leading axis (`x[t]`);
5. single-step code whose neurons are called once per forward is one time
   step of a loop the user runs outside: `time_steps=T` says how many, and
   the input becomes `[T, B, ...]`.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from snncc.diagnostics import Location, SnnccError
from snncc.frontends.torch.converters import register_leaf, register_module_converter
from snncc.frontends.torch.session import Mode, Retry, Session, activated
from snncc.frontends.torch.tensor import ALL, FULL, TracedTensor, View
from snncc.ir.graph import Graph, verify
from snncc.ir.ops.io import InputAttrs
from snncc.ir.types import Layout

INPUT_KINDS = ("analog", "spikes")
_TORCH_DIR = os.path.dirname(torch.__file__)
_SNNCC_DIRS = tuple(os.path.dirname(os.path.abspath(m.__file__ or "")) for m in (
    __import__("snncc"), __import__("snncc.frontends", fromlist=["_"]),
    __import__("snncc.backends", fromlist=["_"])))


def trace(
    module: torch.nn.Module,
    example_input: torch.Tensor | Sequence[torch.Tensor],
    *,
    time_steps: int | None = None,
    input_kind: str = "analog",
) -> Graph:
    """Trace a PyTorch spiking model into snncc's IR (nothing of the model is computed).

    `input_kind="spikes"` marks the input as binary event frames (DVS, `tonic`);
    `time_steps` is needed only for single-step code traced with one step of input.
    """
    inputs = [example_input] if isinstance(example_input, torch.Tensor) else list(example_input)
    if not inputs or not all(isinstance(x, torch.Tensor) for x in inputs):
        raise SnnccError("SNN-FE005", "no example input tensor given",
                         hint="pass an example input, e.g. torch.zeros(T, B, C, H, W)")
    if input_kind not in INPUT_KINDS:
        raise SnnccError("SNN-FE005", f"input kind {input_kind!r} is not one of {INPUT_KINDS}",
                         hint="'analog' for images and sensor values, 'spikes' for event frames")
    if time_steps is not None and time_steps < 1:
        raise SnnccError("SNN-FE005", f"time_steps must be at least 1, got {time_steps}",
                         hint="give the number of time steps the model runs")
    run = _Runner(module, inputs, input_kind)
    graph = run.find_time(time_steps)
    graph.meta["model"] = type(module).__name__
    graph.meta["source_parameters"] = sum(p.numel() for p in module.parameters())
    graph.meta["unused_modules"] = unused_modules(module, graph)
    verify(graph)
    return graph


class _Runner:
    """Runs trace attempts under different assumptions about time (module doc)."""

    def __init__(self, module: torch.nn.Module, inputs: list[torch.Tensor],
                 input_kind: str) -> None:
        self.module, self.inputs, self.input_kind = module, inputs, input_kind
        self.params: dict[int, np.ndarray] = {}

    def find_time(self, time_steps: int | None) -> Graph:
        lead = int(self.inputs[0].shape[0]) if self.inputs[0].dim() else 1
        time_first = Mode(Layout.TIME, lead)
        try:
            return self.attempt(Mode(Layout.STATIC, time_steps)).graph
        except Retry as r:
            reason = r.kind
        except SnnccError as static_error:
            return self.fallback(time_first, static_error)
        moved = self.last.moved_input_axis
        if reason == "time-first" and moved is not None:  # a batch-first input [B, T, ...]
            steps = int(self.inputs[0].shape[moved])
            try:
                return self.attempt(Mode(Layout.STATIC, steps, time_axis=moved)).graph
            except (Retry, SnnccError):
                pass  # not batch-first after all: the input's leading axis is time
        if reason == "count":
            probe = self.probe()
            if probe is not None:
                counts, varying = probe
                if counts == 1:
                    if time_steps is None:
                        raise SnnccError(
                            "SNN-FE002", "the model's neurons are single-step and called once "
                            "per forward(): one time step of a loop that runs outside the model",
                            location=Location(module_path=""),
                            hint="give the number of steps (--time-steps T) with an input "
                            "without the time axis, or use MultiStep* neurons / step_mode='m'")
                    return self.attempt(Mode(Layout.TIME, time_steps, hidden_time=True)).graph
                if not varying:
                    try:
                        return self.attempt(Mode(Layout.STATIC, counts)).graph
                    except Retry:
                        pass
        if reason == "single" and time_steps is not None:
            return self.attempt(Mode(Layout.TIME, time_steps, hidden_time=True)).graph
        if time_steps is not None and time_steps != lead:
            raise SnnccError("SNN-FE005", f"time_steps={time_steps} but the model reads the "
                             f"input's leading axis ({lead}) as time",
                             hint="give an input of shape [T, B, ...] with T = time_steps, or "
                             "leave time_steps out")
        return self.attempt(time_first).graph

    def fallback(self, mode: Mode, first: SnnccError) -> Graph:
        """The no-time-axis attempt failed: the input may be time-major after all.
        If that fails too, report whichever attempt got further into the model."""
        try:
            return self.attempt(mode).graph
        except (SnnccError, Retry) as second:
            if isinstance(second, SnnccError) and self.progress[-1] >= self.progress[-2]:
                raise second from None
            raise first from None

    def probe(self) -> tuple[int, bool] | None:
        """Count single-step neuron calls per forward; None if the probe itself fails."""
        try:
            s = self.attempt(Mode(Layout.STATIC, None, probe=True), outputs=False)
        except (SnnccError, Retry):
            return None
        counts = {len(v) for v in s.probe_calls.values()}
        if len(counts) != 1:
            return None
        varying = any(len(set(v)) > 1 for v in s.probe_calls.values())
        return counts.pop(), varying

    progress: list[int]
    last: Session  # the latest attempt's session (what it learnt about the input)

    def attempt(self, mode: Mode, outputs: bool = True) -> Session:
        graph = Graph(time_steps=mode.time_steps or 0)
        session = Session(self.module, graph, mode, self.input_kind, param_cache=self.params)
        self.last = session
        session.paths = {id(m): name for name, m in self.module.named_modules()}
        self.progress = getattr(self, "progress", []) + [0]
        args = [self._input(session, i, x) for i, x in enumerate(self.inputs)]
        try:
            with activated(session):
                result = self.module(*args)
                if outputs:
                    graph.outputs = [self._output(session, t) for t in _tensors_in(result)]
        except (SnnccError, Retry):
            raise
        except Exception as e:  # the model's own code refused the example (a shape check)
            raise _model_error(self.module, e) from None
        finally:
            self.progress[-1] = len(graph.nodes)
        if outputs and not graph.outputs:
            raise SnnccError("SNN-FE003", "forward() returns no tensor",
                             location=Location(module_path=""),
                             hint="return the output tensor(s)")
        if outputs and not graph.time_steps:
            raise Retry("time-first", "no time axis was made inside the model")
        return session

    def _input(self, session: Session, index: int, x: torch.Tensor) -> TracedTensor:
        mode = session.mode
        shape = tuple(int(d) for d in x.shape)
        if mode.hidden_time:
            shape = (session.graph.time_steps, *shape)
        attrs = InputAttrs(index=index, shape=shape, spikes=self.input_kind == "spikes",
                           time_first=mode.input_layout == Layout.TIME)
        name = session.graph.add("input", [], attrs, name=f"x{index}" if index else "x").name
        session.graph.inputs.append(name)
        return session.wrap(name, View(step=ALL) if mode.hidden_time else FULL)

    def _output(self, session: Session, t: TracedTensor) -> str:
        t = session.finish_sum(t)
        if t.time_view.step is not None and t.time_view.step >= 0 or t.time_view.summed:
            if session.step_states and all(st.calls == 1 for st in session.step_states.values()):
                raise Retry("single", "single-step neurons called once per forward")
            raise SnnccError("SNN-FE007", f"forward() returns {t.time_view.describe()} of a loop "
                             "over time", location=Location(module_path=""),
                             hint="return the stacked steps (torch.stack) or their sum/mean")
        return t.ir_ref


def _model_error(module: torch.nn.Module, e: Exception) -> Exception:
    """An exception raised by the user's (or SpikingJelly's) code while it ran on the
    example: a diagnostic pointing at that line. One raised inside snncc is a bug and
    stays what it is."""
    frames = traceback.extract_tb(e.__traceback__)
    last = frames[-1] if frames else None
    if last is None or _in_snncc(last.filename):
        return e
    user = next((f for f in reversed(frames) if not f.filename.startswith(_TORCH_DIR)), last)
    return SnnccError(
        "SNN-FE008", f"{type(module).__name__}.forward raised {type(e).__name__}: "
        f"{str(e).splitlines()[0] if str(e) else ''}",
        location=Location(module_path="", file=user.filename, line=user.lineno),
        hint="the model's own code refused the example input: check its shape "
        "(--input-shape) and, for single-step code, --time-steps")


def _in_snncc(filename: str) -> bool:
    path = os.path.abspath(filename)
    return path.startswith(_SNNCC_DIRS)


def _tensors_in(result: Any) -> list[TracedTensor]:
    if isinstance(result, TracedTensor):
        return [result]
    if isinstance(result, dict):
        result = list(result.values())
    if isinstance(result, (tuple, list)):
        return [t for r in result for t in _tensors_in(r)]
    return []


def unused_modules(module: torch.nn.Module, graph: Graph) -> dict[str, int]:
    """Leaf modules with parameters that the forward never calls (e.g. Spikformer's
    unused LayerNorms), with their parameter counts."""
    used = {n.origin.module_path for n in graph}
    out = {}
    for name, m in module.named_modules():
        if not name or any(True for _ in m.children()):
            continue
        count = sum(p.numel() for p in m.parameters(recurse=False))
        if count and name not in used:
            out[name] = count
    return out


__all__ = ["INPUT_KINDS", "register_leaf", "register_module_converter", "trace"]
