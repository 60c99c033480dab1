"""One trace of a model's forward with concrete shapes.

Why an eager, concrete-shape trace instead of torch.fx: a user always gives an
example input, so every shape is known, and the field's code is full of Python
over shapes (`T, B = x.shape[:2]`, `len(x.shape)`, `if x.dim() != 5`, loops over
T, `y_shape.extend(y.shape[1:])` in SpikingJelly itself) that fx's symbolic
proxies cannot run. torch.jit.trace would run the real arithmetic (its cost
grows with the batch and the model) and cannot keep neurons as leaves;
torch.export needs the neurons' own code to be exportable. Here the forward
runs as plain Python on `TracedTensor`s (meta tensors, no data): every torch
function is turned into IR nodes by the handlers in `functions.py`, and
`nn.Module.__call__` is patched for the duration (as fx's tracer does) so that
neurons and registered modules stay leaves converted by `converters.py`, and
every node knows the module it came from.

Only a branch on tensor *values* stops the trace; its diagnostic names the
file and line of the user's code.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError
from torch import nn

from snncc.diagnostics import Location, SnnccError
from snncc.frontends.torch.tensor import ALL, FULL, TracedTensor, View, func_name
from snncc.ir.graph import Graph, Origin
from snncc.ir.op import get_op
from snncc.ir.types import Layout, TensorType

# handlers that see a loop's accumulator as it is (they extend it)
_ACCUMULATE = {"add", "__add__", "__radd__", "__iadd__"}
# handlers that only read sizes (or write a border strip): no value is used
_QUERIES = {"__setitem__", "get:shape", "dim", "size", "numel", "__len__", "get:ndim",
            "get:dtype", "get:device", "__hash__"}
_THIS_DIR = os.path.dirname(os.path.abspath(__file__))
_TORCH_DIR = os.path.dirname(torch.__file__)

# ops whose node is named after the module alone (`conv1`, `sn1`), as users name layers
_LAYER_OPS = {"conv1d", "conv2d", "linear", "batchnorm", "maxpool2d", "avgpool2d",
              "adaptive_avgpool2d", "adaptive_maxpool2d", "lif", "plif", "if", "time_mask"}


class Retry(Exception):  # noqa: N818 - a control-flow signal between trace attempts, not an error
    """The trace found where time lives differs from what this attempt assumed."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind  # "count": T unknown, count calls; "single": one step; "time-first"


@dataclass
class Mode:
    """What one attempt assumes about the example input (see `frontends.torch.trace`)."""

    input_layout: Layout  # TIME: axis 0 is time; STATIC: no time axis (repeated inside forward)
    time_steps: int | None  # None: not yet known (found from a repeat over T)
    hidden_time: bool = False  # single-step code: the input is one step of [T, ...]
    time_axis: int | None = None  # a batch-first input whose axis k the model moves to 0
    probe: bool = False  # only count single-step neuron calls (to learn T)


@dataclass
class StepState:
    """A single-step neuron called once per time step inside the user's loop."""

    source: str  # IR value the calls read (a time-major value, or a static one repeated)
    out: str  # the multi-step neuron node emitted for all steps
    calls: int = 0


@dataclass
class Session:
    root: nn.Module
    graph: Graph
    mode: Mode
    input_kind: str = "analog"
    paths: dict[int, str] = field(default_factory=dict)
    stack: list[tuple[str, nn.Module]] = field(default_factory=list)
    cse: dict[tuple[Any, ...], str] = field(default_factory=dict)
    param_cache: dict[int, np.ndarray] = field(default_factory=dict)
    step_states: dict[int, StepState] = field(default_factory=dict)
    probe_calls: dict[int, list[str]] = field(default_factory=dict)
    # an axis of the input the model moves to the front (a batch-first input's time?)
    moved_input_axis: int | None = None
    # tensors whose padded border is being written strip by strip: id -> (pad node, sides)
    borders: dict[int, tuple[str, frozenset[str]]] = field(default_factory=dict)
    current: str = ""  # the torch function being converted (for diagnostics)
    func: Any = None  # ... and the function object itself (size queries call it on meta)

    # -- values --------------------------------------------------------------
    def ir_type(self, t: TracedTensor) -> TensorType:
        return self.graph.nodes[t.ir_ref].type

    def wrap(self, ref: str, view: View = FULL) -> TracedTensor:
        shape = self.graph.nodes[ref].type.shape
        if view.slab:
            return TracedTensor.make((1, *shape[1:]), ref, view)
        return TracedTensor.make(shape[1:] if view.hides_time else shape, ref, view)

    def axis(self, t: TracedTensor, dim: int, *, extra: int = 0) -> int:
        """The IR axis of the user's `dim` of `t` (an axis it sees), non-negative.
        `extra` allows one past the end (unsqueeze, stack)."""
        n = t.dim() + extra
        d = int(dim)
        if not -n <= d < n:
            raise self.error("SNN-FE004", f"dimension {d} out of range for a {t.dim()}-D tensor",
                             "check the dims against the example input's shape")
        d = d + n if d < 0 else d
        return d + (1 if t.time_view.hides_time else 0)

    def numpy_param(self, p: torch.Tensor) -> np.ndarray:
        """A model constant as float32 numpy, copied once per trace session."""
        if isinstance(p, np.ndarray):
            return p
        key = id(p)
        if key not in self.param_cache:
            a = p.detach().to("cpu", torch.float32).numpy().copy()
            if not np.isfinite(a).all():
                bad = int((~np.isfinite(a)).sum())
                raise self.error("SNN-FE009", f"a parameter of shape {tuple(a.shape)} holds "
                                 f"{bad} NaN or infinite value(s)",
                                 "the checkpoint is damaged or training diverged: use a "
                                 "checkpoint with finite weights")
            self.param_cache[key] = a
        return self.param_cache[key]

    # -- emission ------------------------------------------------------------
    def emit(self, op: str, ins: Sequence[TracedTensor], attrs: dict[str, Any] | None = None,
             params: dict[str, torch.Tensor] | None = None, *, view: View | None = None,
             cse: bool = True, module: nn.Module | None = None) -> TracedTensor:
        """Add an IR node applying `op` to the IR values of `ins`; the result has the
        inputs' common view. Identical stateless nodes are shared (common
        subexpression elimination), so a loop over T emits each op once."""
        v = view if view is not None else self.common_view(ins)
        opdef = get_op(op)
        try:
            attr_obj = opdef.attrs_type(**(attrs or {}))
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise self.error("SNN-FE009", f"{op}: {where} = {first.get('input')!r} is not "
                             f"valid: {first['msg']}", "fix the value in the model (a damaged "
                             "checkpoint, or a neuron built with impossible parameters)") from None
        np_params = {k: self.numpy_param(p) for k, p in (params or {}).items()}
        refs = [t.ir_ref for t in ins]
        key = (op, tuple(refs), attr_obj, tuple((k, id(p)) for k, p in (params or {}).items()))
        if cse and key in self.cse:
            return self.wrap(self.cse[key], v)
        path, owner = self.stack[-1] if self.stack else ("", self.root)
        source = type(module or owner).__name__ if (module is not None or op in _LAYER_OPS) \
            else self.current
        hint = (path.replace(".", "_") or op) if op in _LAYER_OPS else \
            (path.replace(".", "_") + "_" + op if path else op)
        try:
            node = self.graph.add(op, refs, attr_obj, np_params, Origin(path, source), name=hint)
        except ValueError as e:
            shapes = ", ".join(str(tuple(t.shape)) for t in ins)
            raise self.error("SNN-FE004", f"{op} cannot take input of shape {shapes}: {e}",
                             "check the example input's shape (--input-shape) and where the "
                             "model expects its time axis") from None
        if node.type.numel == 0:
            raise self.error("SNN-FE004", f"{op} gives an empty tensor of shape "
                             f"{node.type.shape}", "a layer with zero features or channels "
                             "computes nothing: check the model's layer sizes")
        if cse:
            self.cse[key] = node.name
        return self.wrap(node.name, v)

    def common_view(self, ins: Sequence[TracedTensor]) -> View:
        views = {t.time_view for t in ins}
        if len(views) > 1:
            texts = " and ".join(sorted(v.describe() for v in views))
            raise self.error("SNN-FE007", f"'{self.current}' combines {texts}",
                             "inside a loop over time steps, combine values of the same step "
                             "only; stack the steps (torch.stack) before combining whole tensors")
        view = views.pop() if views else FULL
        if view.slab:
            raise self.error("SNN-FE007", f"'{self.current}' of {view.describe()}",
                             "join the steps of a loop with torch.cat(steps, 0) or torch.stack")
        if view.summed:
            raise self.error("SNN-FE007", f"'{self.current}' of a partial sum over time steps "
                             f"{sorted(view.summed)}", "use the sum after the loop over all steps")
        return view

    # -- diagnostics -----------------------------------------------------------
    def location(self) -> Location:
        path = self.stack[-1][0] if self.stack else ""
        file, line = user_frame()
        return Location(module_path=path, op=self.current or None, file=file, line=line)

    def error(self, code: str, message: str, hint: str) -> SnnccError:
        return SnnccError(code, message, location=self.location(), hint=hint)

    # -- the two entry points from user code -------------------------------------
    def dispatch(self, func: Any, args: list[Any], kwargs: dict[str, Any], *,
                 name: str | None = None) -> Any:
        from snncc.frontends.torch.functions import HANDLERS, unsupported

        name = name or func_name(func)
        handler = HANDLERS.get(name)
        if handler is None and name.endswith("_") and not name.startswith("_") \
                and name[:-1] in HANDLERS and args and isinstance(args[0], TracedTensor):
            return self.in_place(args[0], self.dispatch(func, args, kwargs, name=name[:-1]))
        outer = self.current, self.func
        self.current, self.func = name, func
        try:
            if handler is None:
                raise unsupported(self, name)
            if self.borders and name not in _QUERIES and any(
                    id(a) in self.borders for a in args if isinstance(a, TracedTensor)):
                raise self.error("SNN-FE003", "a padded tensor is used while only some of its "
                                 "border strips are written", "write all four strips first")
            if name not in _ACCUMULATE:
                args = [self.finish_sum(a) for a in args]
            return handler(self, args, kwargs)
        finally:
            self.current, self.func = outer

    def in_place(self, x: TracedTensor, result: Any) -> TracedTensor:
        """`x.unsqueeze_(0)`, `x.mul_(m)`: the user's tensor object becomes the result."""
        if not isinstance(result, TracedTensor):
            raise self.error("SNN-FE003", f"in-place '{self.current}' did not give a tensor",
                             "use the out-of-place form")
        with torch._C.DisableTorchFunctionSubclass():
            x.resize_(result.shape)
        x.ir_ref, x.time_view = result.ir_ref, result.time_view
        return x

    def finish_sum(self, a: Any) -> Any:
        """A loop's accumulator over every time step, used as a whole: sum over time."""
        if isinstance(a, (list, tuple)):
            return type(a)(self.finish_sum(x) for x in a)
        if not isinstance(a, TracedTensor) or not a.time_view.summed:
            return a
        if a.time_view.summed != frozenset(range(self.graph.time_steps)):
            return a  # a partial sum: the handler's view check names it
        return self.emit("sum", [self.wrap(a.ir_ref)], {"dims": (0,), "keepdim": False})

    def call_module(self, module: nn.Module, call: Callable[..., Any], args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> Any:
        from snncc.frontends.torch.converters import convert_leaf, is_leaf

        parent = self.stack[-1][0] if self.stack else ""
        path = self.paths.get(id(module))
        if path is None:  # a module created inside forward(), not a submodule
            path = f"{parent}.<{type(module).__name__}>".lstrip(".")
        self.stack.append((path, module))
        try:
            if is_leaf(module) and any(isinstance(a, TracedTensor) for a in _flat(args, kwargs)):
                return convert_leaf(self, module, path, list(args), kwargs)
            return call(module, *args, **kwargs)
        finally:
            self.stack.pop()


def _flat(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Any]:
    for a in list(args) + list(kwargs.values()):
        if isinstance(a, (list, tuple)):
            yield from a
        else:
            yield a


def user_frame() -> tuple[str | None, int | None]:
    """File and line of the model code being traced: the innermost frame outside
    torch and this frontend (the user's, SpikingJelly's or einops' code), or
    None when only torch's own modules run between the trace and the op."""
    f = sys._getframe(1)
    while f is not None and os.path.abspath(f.f_code.co_filename).startswith(_THIS_DIR):
        f = f.f_back  # type: ignore[assignment]
    while f is not None:
        path = os.path.abspath(f.f_code.co_filename)
        if path.startswith(_THIS_DIR):
            return None, None  # back at the tracer's own call of forward()
        if not path.startswith(_TORCH_DIR):
            return path, f.f_lineno
        f = f.f_back  # type: ignore[assignment]
    return None, None


@contextmanager
def activated(session: Session) -> Iterator[None]:
    """Route torch functions and module calls to `session` while the forward runs."""
    original = nn.Module.__call__

    def patched(module: nn.Module, *args: Any, **kwargs: Any) -> Any:
        return session.call_module(module, original, args, kwargs)

    modes = {m: m.training for m in session.root.modules()}
    session.root.eval()  # inference semantics: BN statistics, no dropout
    TracedTensor.session = session
    nn.Module.__call__ = patched  # type: ignore[method-assign]
    try:
        with torch.no_grad():
            yield
    finally:
        nn.Module.__call__ = original  # type: ignore[method-assign]
        TracedTensor.session = None
        for m, training in modes.items():
            m.training = training


def is_all_view(t: TracedTensor) -> bool:
    return t.time_view.step == ALL
