"""Leaf modules: the modules the trace does not step into.

Spiking neurons are leaves (their own code loops over time and keeps state,
which the IR expresses as one stateful op); so are `snncc.nn.TimestepMask` and
any module a user registers with `register_module_converter` or `register_leaf`.
Every other module, SpikingJelly's `layer.*` wrappers included, is traced
through, so its torch functions are converted one by one (`functions.py`) with
the shapes they really have.

A neuron's step mode decides how its input relates to time:
- multi-step (`clock_driven` MultiStep*, `activation_based` with `step_mode='m'`):
  the input is a whole `[T, ...]` tensor;
- single-step: each call is one time step, either of a time-major value (`x[t]`
  in the user's loop), of a static value the loop feeds every step (an image),
  or, for single-step code traced with `time_steps`, of every step at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from torch import nn

from snncc.diagnostics import Location, SnnccError
from snncc.frontends.torch.tensor import ALL, TracedTensor, View
from snncc.ir.types import Layout

if TYPE_CHECKING:
    from snncc.frontends.torch.session import Session

Converter = Callable[["Session", nn.Module, str, TracedTensor], TracedTensor]
MODULE_CONVERTERS: dict[type[nn.Module], Converter] = {}
_EXTRA_LEAVES: list[type[nn.Module]] = []


def register_module_converter(cls: type[nn.Module]) -> Callable[[Converter], Converter]:
    """Convert instances of `cls` with `fn(session, module, path, x) -> TracedTensor`
    (emit IR nodes with `session.emit`) instead of tracing their forward."""

    def deco(fn: Converter) -> Converter:
        MODULE_CONVERTERS[cls] = fn
        return fn

    return deco


def register_leaf(cls: type[nn.Module]) -> None:
    """Treat instances of `cls` (a user's own neuron subclassing a SpikingJelly
    neuron) as neurons: not traced into, converted by the neuron converter."""
    if cls not in _EXTRA_LEAVES:
        _EXTRA_LEAVES.append(cls)


def neuron_base_classes() -> tuple[type[nn.Module], ...]:
    from spikingjelly.activation_based import neuron as ab
    from spikingjelly.clock_driven import neuron as cd

    return (cd.BaseNode, ab.BaseNode)


def find_converter(module: nn.Module) -> Converter | None:
    for cls in type(module).__mro__:
        if cls in MODULE_CONVERTERS:
            return MODULE_CONVERTERS[cls]
    if isinstance(module, neuron_base_classes() + tuple(_EXTRA_LEAVES)):
        return _neuron
    return None


def is_leaf(module: nn.Module) -> bool:
    return find_converter(module) is not None


def convert_leaf(session: Session, module: nn.Module, path: str, args: list[Any],
                 kwargs: dict[str, Any]) -> TracedTensor:
    tensors = [a for a in args if isinstance(a, TracedTensor)]
    if len(tensors) != 1 or len(args) != 1 or kwargs:
        raise SnnccError("SNN-FE002", f"{type(module).__name__} called with {len(args)} "
                         f"argument(s){' and keywords' if kwargs else ''}; snncc converts a "
                         "leaf module called on one tensor", location=Location(module_path=path),
                         hint="call the module on one tensor")
    conv = find_converter(module)
    assert conv is not None
    return conv(session, module, path, tensors[0])


def _unsupported(path: str, module: nn.Module, why: str, hint: str) -> SnnccError:
    return SnnccError("SNN-FE002", f"{type(module).__name__} {why}",
                      location=Location(module_path=path, op=type(module).__name__), hint=hint)


def is_multi_step(module: nn.Module) -> bool:
    from spikingjelly.activation_based import neuron as ab
    from spikingjelly.clock_driven import neuron as cd

    if isinstance(module, ab.BaseNode):
        return getattr(module, "step_mode", "s") == "m"
    return isinstance(module, (cd.MultiStepLIFNode, cd.MultiStepIFNode,
                               cd.MultiStepParametricLIFNode))


def neuron_op(module: nn.Module, path: str) -> tuple[str, dict[str, Any]]:
    """The IR op and attributes of a SpikingJelly neuron (any `backend`)."""
    from spikingjelly.activation_based import neuron as ab
    from spikingjelly.clock_driven import neuron as cd

    m: Any = module
    v_reset = None if m.v_reset is None else float(m.v_reset)
    common: dict[str, Any] = {"v_threshold": float(m.v_threshold), "v_reset": v_reset}
    if isinstance(m, (cd.ParametricLIFNode, ab.ParametricLIFNode)):
        return "plif", {"w": float(m.w.detach()), "decay_input": bool(m.decay_input), **common}
    if isinstance(m, (cd.LIFNode, ab.LIFNode)):
        return "lif", {"tau": float(m.tau), "decay_input": bool(m.decay_input), **common}
    if isinstance(m, (cd.IFNode, ab.IFNode)):
        return "if", common
    raise _unsupported(path, module, "is a neuron model snncc does not support",
                       "supported neurons: LIFNode, IFNode, ParametricLIFNode (SpikingJelly, "
                       "both APIs, any backend)")


def _neuron(session: Session, module: nn.Module, path: str, x: TracedTensor) -> TracedTensor:
    from snncc.frontends.torch.session import Retry

    op, attrs = neuron_op(module, path)
    layout = session.ir_type(x).layout
    if is_multi_step(module):
        if x.time_view.hides_time:
            raise _unsupported(path, module, f"(multi-step) is called on {x.time_view.describe()}",
                               "a multi-step neuron takes the whole [T, ...] sequence; call it "
                               "outside the loop over time steps, or use step_mode='s'")
        if layout == Layout.STATIC and session.mode.input_layout == Layout.STATIC:
            raise Retry("time-first", "a multi-step neuron reads the input's leading axis as time")
        if layout != Layout.TIME:
            raise _unsupported(path, module, f"(multi-step) gets a tensor of shape "
                               f"{tuple(x.shape)} with no time axis first",
                               "a multi-step neuron takes [T, B, ...]; undo a flatten(0, 1) "
                               "(reshape to [T, B, ...]) before it")
        return session.emit(op, [x], attrs, cse=False, module=module)
    # single-step: each call is one time step
    if x.time_view.step == ALL:
        return session.emit(op, [x], attrs, cse=False, module=module)
    if x.time_view.step is not None:
        return _step_call(session, module, path, op, attrs, x, x.ir_ref, x.time_view.step)
    if layout == Layout.STATIC:
        if session.mode.probe:
            session.probe_calls.setdefault(id(module), []).append(x.ir_ref)
            return x
        if session.mode.time_steps is None:
            raise Retry("count", "single-step neurons: the number of steps is learnt by counting calls")
        state = session.step_states.get(id(module))
        return _step_call(session, module, path, op, attrs, x, x.ir_ref,
                          state.calls if state else 0)
    raise _unsupported(path, module, "is a single-step neuron called on a whole time series "
                       f"of shape {tuple(x.shape)}",
                       "use its MultiStep* variant (clock_driven) or step_mode='m' "
                       "(activation_based) so it steps over [T, ...], or trace single-step code "
                       "with --time-steps T and an input without the time axis")


def _step_call(session: Session, module: nn.Module, path: str, op: str, attrs: dict[str, Any],
               x: TracedTensor, source: str, step: int) -> TracedTensor:
    """Call number `step` of a single-step neuron inside a loop over time: the
    whole loop is one multi-step neuron over the source value (repeated over T
    if static), emitted at the first call."""
    from snncc.frontends.torch.session import Retry, StepState

    state = session.step_states.get(id(module))
    if state is None:
        whole = x if x.time_view.step is not None else _repeat_over_time(session, x)
        seq = session.wrap(whole.ir_ref)
        out = session.emit(op, [seq], attrs, cse=False, module=module)
        state = session.step_states[id(module)] = StepState(source, out.ir_ref)
    if state.source != source:
        if x.time_view.step is None and session.mode.input_layout == Layout.STATIC:
            raise Retry("time-first", "a single-step neuron reads a different static value each step")
        raise _unsupported(path, module, "is called on different values in different time "
                           "steps", "call each neuron once per step, on the same layer's output")
    if state.calls != step:
        raise _unsupported(path, module, f"is called for time step {step} after {state.calls} "
                           "calls", "call each single-step neuron once per time step, in order")
    state.calls += 1
    return session.wrap(state.out, View(step=step))


def _repeat_over_time(session: Session, x: TracedTensor) -> TracedTensor:
    T = session.graph.time_steps
    u = session.emit("unsqueeze", [x], {"dim": 0})
    return session.emit("repeat", [u], {"repeats": (T,) + (1,) * x.dim()})


def _timestep_mask(session: Session, module: nn.Module, path: str,
                   x: TracedTensor) -> TracedTensor:
    from snncc.frontends.torch.fn_math import time_mask

    return time_mask(session, x, module.mask(), module)  # type: ignore[operator]


def _register_builtin() -> None:
    try:
        from snncc.nn import TimestepMask
    except ImportError:  # the training-side package is optional for the frontend
        return
    MODULE_CONVERTERS[TimestepMask] = _timestep_mask


_register_builtin()
