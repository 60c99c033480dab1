"""Converters from torch modules to IR nodes, one per supported module type.

Each converter receives the builder, the module, its qualified path and the IR
input names, and returns the name of the node holding the module's output.
`MODULE_CONVERTERS` is the table the tracer and builder dispatch on; a user
adds a converter for their own module with `register_module_converter`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from snncc.diagnostics import Location, SnnccError
from snncc.ir.ops.neurons import LIFAttrs, NeuronAttrs, PLIFAttrs
from snncc.ir.ops.norm import BatchNormAttrs
from snncc.ir.ops.pool import AvgPoolAttrs, PoolAttrs
from snncc.ir.ops.structure import FlattenAttrs
from snncc.ir.ops.weights import ConvAttrs

if TYPE_CHECKING:
    from snncc.frontends.torch.builder import Builder

Converter = Callable[["Builder", nn.Module, str, list[str]], str]
MODULE_CONVERTERS: dict[type[nn.Module], Converter] = {}


def register_module_converter(cls: type[nn.Module]) -> Callable[[Converter], Converter]:
    def deco(fn: Converter) -> Converter:
        MODULE_CONVERTERS[cls] = fn
        return fn

    return deco


def find_converter(module: nn.Module) -> Converter | None:
    for cls in type(module).__mro__:
        if cls in MODULE_CONVERTERS:
            return MODULE_CONVERTERS[cls]
    return None


def _tensor(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float32).numpy().copy()


def _pair(v: int | tuple[int, ...], n: int) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def _unsupported(path: str, module: nn.Module, why: str, hint: str) -> SnnccError:
    return SnnccError("SNN-FE002", f"{type(module).__name__} {why}",
                      location=Location(module_path=path), hint=hint)


def _conv(b: Builder, m: nn.Module, path: str, ins: list[str]) -> str:
    assert isinstance(m, (nn.Conv1d, nn.Conv2d))
    n = 2 if isinstance(m, nn.Conv2d) else 1
    if m.padding_mode != "zeros":
        raise _unsupported(path, m, f"with padding_mode={m.padding_mode!r} is not supported",
                           "use padding_mode='zeros'")
    if isinstance(m.padding, str):
        raise _unsupported(path, m, f"with padding={m.padding!r} is not supported",
                           "give padding as integers")
    params = {"weight": _tensor(m.weight)}
    if m.bias is not None:
        params["bias"] = _tensor(m.bias)
    attrs = ConvAttrs(stride=_pair(m.stride, n), padding=_pair(m.padding, n),
                      dilation=_pair(m.dilation, n), groups=m.groups)
    return b.emit("conv2d" if n == 2 else "conv1d", ins, attrs, params, path, m)


def _linear(b: Builder, m: nn.Module, path: str, ins: list[str]) -> str:
    assert isinstance(m, nn.Linear)
    params = {"weight": _tensor(m.weight)}
    if m.bias is not None:
        params["bias"] = _tensor(m.bias)
    return b.emit("linear", ins, None, params, path, m)


def _batchnorm(b: Builder, m: nn.Module, path: str, ins: list[str]) -> str:
    assert isinstance(m, nn.modules.batchnorm._BatchNorm)
    if m.running_mean is None or m.running_var is None:
        raise _unsupported(path, m, "has no running statistics (track_running_stats=False)",
                           "train with track_running_stats=True so inference uses fixed statistics")
    ndim = len(b.type_of(ins[0]).shape)
    if isinstance(m, nn.BatchNorm2d):
        axis = -3
    elif isinstance(m, nn.BatchNorm1d):
        axis = -1 if ndim == 2 else -2
    else:
        raise _unsupported(path, m, "is not supported", "use BatchNorm1d or BatchNorm2d")
    params = {"running_mean": _tensor(m.running_mean), "running_var": _tensor(m.running_var)}
    if m.weight is not None:
        params["weight"] = _tensor(m.weight)
    if m.bias is not None:
        params["bias"] = _tensor(m.bias)
    return b.emit("batchnorm", ins, BatchNormAttrs(channel_axis=axis, eps=float(m.eps)), params,
                  path, m)


def _pool(b: Builder, m: nn.Module, path: str, ins: list[str]) -> str:
    assert isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))
    k, s, p = _pair(m.kernel_size, 2), _pair(m.stride or m.kernel_size, 2), _pair(m.padding, 2)
    if isinstance(m, nn.MaxPool2d):
        if _pair(m.dilation, 2) != (1, 1) or m.return_indices:
            raise _unsupported(path, m, "with dilation or return_indices is not supported",
                               "use a plain MaxPool2d")
        return b.emit("maxpool2d", ins, PoolAttrs(kernel=k, stride=s, padding=p,  # type: ignore[arg-type]
                                                  ceil_mode=m.ceil_mode), None, path, m)
    if m.divisor_override is not None:
        raise _unsupported(path, m, "with divisor_override is not supported", "remove it")
    attrs = AvgPoolAttrs(kernel=k, stride=s, padding=p, ceil_mode=m.ceil_mode,  # type: ignore[arg-type]
                         count_include_pad=m.count_include_pad)
    return b.emit("avgpool2d", ins, attrs, None, path, m)


def _flatten(b: Builder, m: nn.Module, path: str, ins: list[str]) -> str:
    assert isinstance(m, nn.Flatten)
    return b.emit("flatten", ins, FlattenAttrs(start=m.start_dim, end=m.end_dim), None, path, m)


def _identity(b: Builder, m: nn.Module, path: str, ins: list[str]) -> str:
    return b.emit("identity", ins, None, None, path, m)


def _neuron(b: Builder, m: nn.Module, path: str, ins: list[str]) -> str:
    """SpikingJelly neurons: LIF, IF, ParametricLIF, multi-step only."""
    from spikingjelly.activation_based import neuron as ab
    from spikingjelly.clock_driven import neuron as cd

    multi = (cd.MultiStepLIFNode, cd.MultiStepIFNode, cd.MultiStepParametricLIFNode)
    if isinstance(m, ab.BaseNode):
        if m.step_mode != "m":
            raise _unsupported(path, m, "is in single-step mode (step_mode='s')",
                               "set step_mode='m' (functional.set_step_mode(net, 'm')) so the "
                               "neuron sees [T, ...] input")
    elif not isinstance(m, multi):
        raise _unsupported(path, m, "is a single-step clock_driven neuron",
                           "use its MultiStep* variant, which takes [T, ...] input")
    v_reset = None if m.v_reset is None else float(m.v_reset)
    common: dict = {"v_threshold": float(m.v_threshold), "v_reset": v_reset}
    if isinstance(m, (cd.ParametricLIFNode, ab.ParametricLIFNode)):
        attrs: NeuronAttrs = PLIFAttrs(w=float(m.w.detach()), decay_input=bool(m.decay_input),
                                       **common)
        return b.emit("plif", ins, attrs, None, path, m)
    if isinstance(m, (cd.LIFNode, ab.LIFNode)):
        attrs = LIFAttrs(tau=float(m.tau), decay_input=bool(m.decay_input), **common)
        return b.emit("lif", ins, attrs, None, path, m)
    if isinstance(m, (cd.IFNode, ab.IFNode)):
        return b.emit("if", ins, NeuronAttrs(**common), None, path, m)
    raise _unsupported(path, m, "is a neuron model snncc does not support",
                       "supported neurons: LIFNode, IFNode, ParametricLIFNode (SpikingJelly)")


def _timestep_mask(b: Builder, m: nn.Module, path: str, ins: list[str]) -> str:
    from snncc.frontends.torch.builder import emit_time_mask

    mask = m.mask()  # type: ignore[operator]
    return emit_time_mask(b, ins[0], mask, path, m)


def _register_builtin() -> None:
    from spikingjelly.activation_based import neuron as ab
    from spikingjelly.clock_driven import neuron as cd

    table: dict[type[nn.Module], Converter] = {
        nn.Conv1d: _conv, nn.Conv2d: _conv, nn.Linear: _linear,
        nn.BatchNorm1d: _batchnorm, nn.BatchNorm2d: _batchnorm,
        nn.MaxPool2d: _pool, nn.AvgPool2d: _pool, nn.Flatten: _flatten,
        nn.Dropout: _identity, nn.Dropout2d: _identity, nn.Identity: _identity,
        cd.BaseNode: _neuron, ab.BaseNode: _neuron,
    }
    MODULE_CONVERTERS.update(table)
    try:
        from snncc.nn import TimestepMask
    except ImportError:  # the training-side package is optional for the frontend
        return
    MODULE_CONVERTERS[TimestepMask] = _timestep_mask


_register_builtin()

SUPPORTED_MODULES = (
    "Conv1d, Conv2d, Linear, BatchNorm1d, BatchNorm2d, MaxPool2d, AvgPool2d, Flatten, Dropout, "
    "Identity, SpikingJelly LIFNode/IFNode/ParametricLIFNode (multi-step)"
)
