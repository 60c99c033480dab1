"""Turn a traced torch.fx graph into snncc's IR.

Shape arithmetic in the model (`T, B, C, H, W = x.shape`, `H // 4`) is
evaluated here, at conversion time, from the IR's own shape rules: nothing of
the model runs, so tracing a 66 M-parameter model costs no forward pass.
Every tensor op becomes an IR node that remembers the module it came from.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.fx as fx
from torch import nn

from snncc.diagnostics import Location, SnnccError
from snncc.frontends.torch.converters import SUPPORTED_MODULES, find_converter
from snncc.ir.graph import Graph, Origin
from snncc.ir.op import Attrs
from snncc.ir.ops.elementwise import ScalarAttrs
from snncc.ir.ops.io import InputAttrs
from snncc.ir.ops.reduce import ReduceAttrs
from snncc.ir.ops.structure import (
    DimAttrs,
    FlattenAttrs,
    PermuteAttrs,
    RepeatAttrs,
    ReshapeAttrs,
    TransposeAttrs,
)
from snncc.ir.ops.timemask import TimeMaskAttrs
from snncc.ir.types import TensorType


@dataclass(frozen=True)
class Ref:
    """A tensor value in the IR under construction (vs. a concrete Python value)."""

    name: str


Handler = Callable[["Builder", str, list[Any], dict[str, Any]], Any]


class Builder:
    def __init__(self, root: nn.Module, graph: Graph) -> None:
        self.root = root
        self.graph = graph
        self.current: fx.Node | None = None

    def type_of(self, name: str) -> TensorType:
        return self.graph.nodes[name].type

    def emit(
        self,
        op: str,
        ins: Sequence[str],
        attrs: Attrs | None,
        params: dict[str, np.ndarray] | None,
        path: str,
        module: nn.Module | None = None,
    ) -> str:
        source = type(module).__name__ if module is not None else self._source()
        try:
            hint = path.replace(".", "_") if module is not None else self._hint(path, op)
            node = self.graph.add(op, list(ins), attrs, params, Origin(path, source), name=hint)
        except ValueError as e:
            shapes = ", ".join(str(self.type_of(i).shape) for i in ins)
            raise SnnccError(
                "SNN-FE004", f"{op} cannot take input of shape {shapes}: {e}",
                location=Location(module_path=path, op=source),
                hint="check the example input's shape (--input-shape, [T, B, ...])",
            ) from None
        return node.name

    def _source(self) -> str:
        n = self.current
        if n is None:
            return ""
        t = n.target
        return t if isinstance(t, str) else getattr(t, "__name__", str(t))

    def _hint(self, path: str, op: str) -> str:
        return (path.replace(".", "_") + "_" + op) if path else op

    # -- the walk ------------------------------------------------------------
    def convert(self, fxg: fx.Graph, inputs: Sequence[torch.Tensor], time_first: bool,
                input_spikes: bool) -> None:
        env: dict[fx.Node, Any] = {}
        placeholders = 0
        for node in fxg.nodes:
            self.current = node
            path = module_path_of(node)

            def load(a: Any) -> Any:
                return env[a] if isinstance(a, fx.Node) else a

            args = list(fx.node.map_aggregate(node.args, load))
            kwargs = dict(fx.node.map_aggregate(node.kwargs, load))
            if node.op == "placeholder":
                if placeholders >= len(inputs):
                    raise SnnccError("SNN-FE005", f"forward() takes more inputs than the "
                                     f"{len(inputs)} example input(s) given",
                                     hint="give one example input per forward() argument")
                x = inputs[placeholders]
                attrs = InputAttrs(index=placeholders, shape=tuple(x.shape), spikes=input_spikes,
                                   time_first=time_first)
                name = self.graph.add("input", [], attrs, name=str(node.target)).name
                self.graph.inputs.append(name)
                env[node] = Ref(name)
                placeholders += 1
            elif node.op == "get_attr":
                # a constant of the model; only binary masks over time may meet activations
                env[node] = _get_attr(self.root, str(node.target))
            elif node.op == "call_module":
                env[node] = self._call_module(str(node.target), args)
            elif node.op in ("call_function", "call_method"):
                env[node] = self._call(node, path, args, kwargs)
            elif node.op == "output":
                outs = args[0] if isinstance(args[0], (tuple, list)) else [args[0]]
                for o in outs:
                    if not isinstance(o, Ref):
                        raise SnnccError("SNN-FE003", "forward() returns a non-tensor value",
                                         hint="return the output tensor(s) only")
                    self.graph.outputs.append(o.name)
        self.current = None

    def _call_module(self, target: str, args: list[Any]) -> Ref:
        module = self.root.get_submodule(target)
        conv = find_converter(module)
        if conv is None:
            raise SnnccError(
                "SNN-FE002", f"unsupported layer {type(module).__name__}",
                location=Location(module_path=target, op=type(module).__name__),
                hint=f"supported layers: {SUPPORTED_MODULES}; or register a converter with "
                "snncc.frontends.torch.register_module_converter",
            )
        tensor_args = [a.name for a in args if isinstance(a, Ref)]
        if len(tensor_args) != 1 or len(args) != 1:
            raise SnnccError("SNN-FE002", f"{type(module).__name__} called with {len(args)} "
                             "arguments; snncc supports one tensor argument",
                             location=Location(module_path=target))
        return Ref(conv(self, module, target, tensor_args))

    def _call(self, node: fx.Node, path: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        refs = [a for a in list(args) + list(kwargs.values()) if isinstance(a, Ref)]
        fn_name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
        if node.op == "call_function" and node.target is getattr and isinstance(args[0], Ref):
            return _tensor_attr(self, args[0], args[1], path)
        if not refs:  # shape arithmetic on concrete values: just compute it
            try:
                if node.op == "call_method":
                    return getattr(args[0], str(node.target))(*args[1:], **kwargs)
                assert callable(node.target)
                return node.target(*args, **kwargs)
            except (IndexError, ValueError, TypeError, ZeroDivisionError) as e:
                raise SnnccError(
                    "SNN-FE004", f"shape arithmetic '{fn_name}' failed: {e}",
                    location=Location(module_path=path, op=str(fn_name)),
                    hint="the example input's shape does not fit the model "
                    "(--input-shape, [T, B, ...])",
                ) from None
        key: Any = node.target if node.op == "call_function" else f".{node.target}"
        handler = HANDLERS.get(key)
        if handler is None:
            supported = sorted({k if isinstance(k, str) else getattr(k, "__name__", str(k))
                                for k in HANDLERS})
            raise SnnccError(
                "SNN-FE003", f"unsupported tensor operation '{fn_name}'",
                location=Location(module_path=path, op=str(fn_name)),
                hint="supported: " + ", ".join(supported),
            )
        return handler(self, path, args, kwargs)


def module_path_of(node: fx.Node) -> str:
    if node.op == "call_module":
        return str(node.target)
    stack = node.meta.get("nn_module_stack")
    if stack:
        return str(list(stack.values())[-1][0])
    return ""


def _get_attr(root: nn.Module, target: str) -> Any:
    obj: Any = root
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _tensor_attr(b: Builder, x: Ref, attr: str, path: str) -> Any:
    ty = b.type_of(x.name)
    if attr == "shape":
        return torch.Size(ty.shape)
    if attr == "ndim":
        return len(ty.shape)
    if attr == "dtype":
        return torch.float32
    raise SnnccError("SNN-FE003", f"unsupported tensor attribute '.{attr}'",
                     location=Location(module_path=path), hint="use .shape, .ndim or .size()")


# -- handlers for tensor functions and methods ---------------------------------


def _x(args: list[Any], path: str, what: str) -> str:
    if not args or not isinstance(args[0], Ref):
        raise SnnccError("SNN-FE003", f"{what} on a non-tensor value",
                         location=Location(module_path=path))
    return args[0].name


def _ints(args: Sequence[Any]) -> tuple[int, ...]:
    if len(args) == 1 and isinstance(args[0], (tuple, list, torch.Size)):
        return tuple(int(a) for a in args[0])
    return tuple(int(a) for a in args)


def _reshape(b: Builder, path: str, args: list[Any], kwargs: dict[str, Any]) -> Ref:
    x = _x(args, path, "reshape")
    shape = list(_ints(args[1:] or [kwargs.get("shape", ())]))
    numel = b.type_of(x).numel
    if shape.count(-1) == 1:
        known = math.prod(s for s in shape if s != -1)
        shape[shape.index(-1)] = numel // known if known else 0
    return Ref(b.emit("reshape", [x], ReshapeAttrs(shape=tuple(shape)), None, path))


def _flatten(b: Builder, path: str, args: list[Any], kwargs: dict[str, Any]) -> Ref:
    x = _x(args, path, "flatten")
    start = int(args[1]) if len(args) > 1 else int(kwargs.get("start_dim", 0))
    end = int(args[2]) if len(args) > 2 else int(kwargs.get("end_dim", -1))
    return Ref(b.emit("flatten", [x], FlattenAttrs(start=start, end=end), None, path))


def _transpose(b: Builder, path: str, args: list[Any], kwargs: dict[str, Any]) -> Ref:
    x = _x(args, path, "transpose")
    d0 = int(args[1]) if len(args) > 1 else int(kwargs["dim0"])
    d1 = int(args[2]) if len(args) > 2 else int(kwargs["dim1"])
    return Ref(b.emit("transpose", [x], TransposeAttrs(dim0=d0, dim1=d1), None, path))


def _permute(b: Builder, path: str, args: list[Any], kwargs: dict[str, Any]) -> Ref:
    x = _x(args, path, "permute")
    dims = _ints(args[1:] or [kwargs["dims"]])
    return Ref(b.emit("permute", [x], PermuteAttrs(dims=dims), None, path))


def _identity(b: Builder, path: str, args: list[Any], kwargs: dict[str, Any]) -> Ref:
    return Ref(b.emit("identity", [_x(args, path, "identity")], None, None, path))


def _unsqueeze(b: Builder, path: str, args: list[Any], kwargs: dict[str, Any]) -> Ref:
    x = _x(args, path, "unsqueeze")
    dim = int(args[1]) if len(args) > 1 else int(kwargs["dim"])
    return Ref(b.emit("unsqueeze", [x], DimAttrs(dim=dim), None, path))


def _repeat(b: Builder, path: str, args: list[Any], kwargs: dict[str, Any]) -> Ref:
    x = _x(args, path, "repeat")
    return Ref(b.emit("repeat", [x], RepeatAttrs(repeats=_ints(args[1:])), None, path))


def _size(b: Builder, path: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    shape = torch.Size(b.type_of(_x(args, path, "size")).shape)
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    return shape if dim is None else shape[int(dim)]


def _dim(b: Builder, path: str, args: list[Any], kwargs: dict[str, Any]) -> int:
    return len(b.type_of(_x(args, path, "dim")).shape)


def _reduce(op: str) -> Handler:
    def h(b: Builder, path: str, args: list[Any], kwargs: dict[str, Any]) -> Ref:
        x = _x(args, path, op)
        dim = args[1] if len(args) > 1 else kwargs.get("dim")
        keepdim = bool(args[2] if len(args) > 2 else kwargs.get("keepdim", False))
        ndim = len(b.type_of(x).shape)
        dims = tuple(range(ndim)) if dim is None else _ints([dim])
        return Ref(b.emit(op, [x], ReduceAttrs(dims=dims, keepdim=keepdim), None, path))

    return h


def _scalar(v: Any, path: str, opname: str) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        return float(v)
    if isinstance(v, torch.Tensor):
        raise SnnccError(
            "SNN-FE003", f"'{opname}' of an activation with a constant tensor of shape "
            f"{tuple(v.shape)}", location=Location(module_path=path),
            hint="only binary masks over time steps ([T, 1, ...] of 0/1) may multiply "
            "activations; put weights in a Linear or Conv module")
    raise SnnccError("SNN-FE003", f"'{opname}' with a {type(v).__name__} operand is not supported",
                     location=Location(module_path=path),
                     hint="operands must be tensors of the model or Python numbers")


def _arith(kind: str) -> Handler:
    """add/sub/mul/div with a tensor and a tensor or a Python scalar."""

    def h(b: Builder, path: str, args: list[Any], kwargs: dict[str, Any]) -> Ref:
        a = args[0]
        c = args[1] if len(args) > 1 else kwargs.get("other")
        if "alpha" in kwargs:
            raise SnnccError("SNN-FE003", f"'{kind}' with alpha= is not supported",
                             location=Location(module_path=path), hint="scale the operand instead")
        if isinstance(a, Ref) and isinstance(c, Ref):
            if kind == "div":
                raise SnnccError("SNN-FE003", "division of two tensors is not supported",
                                 location=Location(module_path=path),
                                 hint="a spiking model has no tensor division; use a constant")
            return Ref(b.emit(kind, [a.name, c.name], None, None, path))
        if kind == "mul" and isinstance(c, torch.Tensor) and isinstance(a, Ref):
            return Ref(emit_time_mask(b, a.name, c, path))
        if kind == "mul" and isinstance(a, torch.Tensor) and isinstance(c, Ref):
            return Ref(emit_time_mask(b, c.name, a, path))
        if isinstance(a, Ref):
            s = _scalar(c, path, kind)
            op, v = {"add": ("shift", s), "sub": ("shift", -s), "mul": ("scale", s),
                     "div": ("scale", 1.0 / s if s else math.inf)}[kind]
            return Ref(b.emit(op, [a.name], ScalarAttrs(value=v), None, path))
        s = _scalar(a, path, kind)
        if kind == "div":
            raise SnnccError("SNN-FE003", "a scalar divided by a tensor is not supported",
                             location=Location(module_path=path))
        op, v = {"add": ("shift", s), "sub": ("rsub", s), "mul": ("scale", s)}[kind]
        assert isinstance(c, Ref)
        return Ref(b.emit(op, [c.name], ScalarAttrs(value=v), None, path))

    return h


def emit_time_mask(b: Builder, x: str, mask: torch.Tensor, path: str,
                   module: nn.Module | None = None) -> str:
    """x * m for a constant m that is binary and varies over time only: a time_mask."""
    ty = b.type_of(x)
    T = b.graph.time_steps
    m = mask.detach().cpu().flatten() if mask.dim() <= 1 else mask.detach().cpu()
    if m.dim() > 1:
        if any(d != 1 for d in m.shape[1:]):
            raise SnnccError(
                "SNN-FE006", f"constant tensor of shape {tuple(m.shape)} multiplies an activation; "
                f"only a mask over time of shape [{T}, 1, ...] is supported",
                location=Location(module_path=path), hint="use a TimestepMask (snncc.nn)")
        m = m.flatten()
    if m.numel() != T:
        raise SnnccError("SNN-FE006", f"time-step mask has {m.numel()} steps but the model runs "
                         f"T={T}", location=Location(module_path=path),
                         hint=f"give one mask entry per time step ({T})")
    if not bool(((m == 0) | (m == 1)).all()):
        raise SnnccError("SNN-FE006", f"time-step mask is not binary: {m.tolist()}",
                         location=Location(module_path=path),
                         hint="binarize the trained scores (TimestepMask.mask())")
    if ty.kind.value != "SPIKE":
        raise SnnccError("SNN-FE006", f"time-step mask applied to a {ty.kind.value} value, "
                         "not to a neuron's spikes", location=Location(module_path=path),
                         hint="place the mask right after a spiking neuron layer")
    attrs = TimeMaskAttrs(mask=tuple(int(v) for v in m.tolist()))
    return b.emit("time_mask", [x], attrs, None, path, module)


def _matmul(b: Builder, path: str, args: list[Any], kwargs: dict[str, Any]) -> Ref:
    a, c = args[0], args[1]
    if not (isinstance(a, Ref) and isinstance(c, Ref)):
        raise SnnccError("SNN-FE003", "matmul with a constant operand is not supported",
                         location=Location(module_path=path), hint="use nn.Linear for weights")
    return Ref(b.emit("matmul", [a.name, c.name], None, None, path))


def _neg(b: Builder, path: str, args: list[Any], kwargs: dict[str, Any]) -> Ref:
    return Ref(b.emit("scale", [_x(args, path, "neg")], ScalarAttrs(value=-1.0), None, path))


HANDLERS: dict[Any, Handler] = {}
for _k in ("reshape", "view"):
    HANDLERS[f".{_k}"] = _reshape
HANDLERS[torch.reshape] = _reshape
HANDLERS[".flatten"] = HANDLERS[torch.flatten] = _flatten
HANDLERS[".transpose"] = HANDLERS[torch.transpose] = _transpose
HANDLERS[".permute"] = HANDLERS[torch.permute] = _permute
for _k in ("contiguous", "clone", "detach", "float"):
    HANDLERS[f".{_k}"] = _identity
HANDLERS[".unsqueeze"] = HANDLERS[torch.unsqueeze] = _unsqueeze
HANDLERS[".repeat"] = _repeat
HANDLERS[".size"] = _size
HANDLERS[".dim"] = _dim
HANDLERS[".mean"] = HANDLERS[torch.mean] = _reduce("mean")
HANDLERS[".sum"] = HANDLERS[torch.sum] = _reduce("sum")
for _kind, _fns in {
    "add": (operator.add, operator.iadd, torch.add, ".add"),
    "sub": (operator.sub, operator.isub, torch.sub, ".sub"),
    "mul": (operator.mul, operator.imul, torch.mul, ".mul"),
    "div": (operator.truediv, torch.div, ".div"),
}.items():
    for _f in _fns:
        HANDLERS[_f] = _arith(_kind)
HANDLERS[operator.matmul] = HANDLERS[torch.matmul] = HANDLERS[".matmul"] = _matmul
HANDLERS[operator.neg] = _neg
