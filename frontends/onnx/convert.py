"""ONNX nodes -> IR nodes, one rule per ONNX op type (see the package docstring)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import ValidationError

from snncc.diagnostics import Location, SnnccError
from snncc.ir.graph import Graph, Origin
from snncc.ir.op import OPS, Attrs
from snncc.ir.ops.combine import CatAttrs, PadAttrs, SliceAttrs
from snncc.ir.ops.elementwise import ScalarAttrs
from snncc.ir.ops.io import InputAttrs
from snncc.ir.ops.norm import BatchNormAttrs
from snncc.ir.ops.pool import AvgPoolAttrs, PoolAttrs
from snncc.ir.ops.reduce import ReduceAttrs
from snncc.ir.ops.structure import DimAttrs, PermuteAttrs, RepeatAttrs, ReshapeAttrs
from snncc.ir.ops.weights import ConvAttrs

CUSTOM_DOMAIN = "ai.snncc"


class Bad(Exception):
    """A node snncc cannot take as given (SNN-ONNX003, with the node's name)."""


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _text(v: Any) -> Any:
    return v.decode() if isinstance(v, bytes) else v


def _sym_pads(pads: list[int], n: int) -> tuple[int, ...]:
    pads = list(pads) or [0] * (2 * n)
    if pads[:n] != pads[n:]:
        raise Bad(f"asymmetric pads {pads}")
    return tuple(pads[:n])


class Converter:
    def __init__(self, model: Any, spikes: bool | None) -> None:
        from onnx import numpy_helper

        self.model = model
        self.g = model.graph
        self.consts: dict[str, np.ndarray] = {
            i.name: numpy_helper.to_array(i) for i in self.g.initializer}
        self.props = {p.key: p.value for p in model.metadata_props}
        self.spikes = spikes if spikes is not None else self.props.get("input_spikes") == "1"
        self.graph = Graph()
        self.value: dict[str, str] = {}
        self.fused: set[str] = set()  # Add nodes folded into the linear before them
        self.users: dict[str, list[Any]] = {}
        for n in self.g.node:
            for i in n.input:
                self.users.setdefault(i, []).append(n)

    # -- helpers --------------------------------------------------------------
    def const(self, name: str) -> np.ndarray:
        if name not in self.consts:
            raise Bad(f"operand {name!r} must be a constant (an initializer)")
        return self.consts[name]

    def act(self, name: str) -> str:
        if name not in self.value:
            raise Bad(f"operand {name!r} is not a value computed before this node")
        return self.value[name]

    def add(self, node: Any, op: str, ins: list[str], attrs: Attrs | None = None,
            params: dict[str, np.ndarray] | None = None, out: str | None = None) -> None:
        bad = [k for k, v in (params or {}).items() if not np.all(np.isfinite(v))]
        if bad:
            raise Bad(f"non-finite {' and '.join(bad)} values (a damaged file?)")
        try:
            made = self.graph.add(op, ins, attrs, params,
                                  Origin(module_path=node.name, source=f"onnx.{node.op_type}"),
                                  name=out or node.output[0])
        except ValueError as e:
            raise Bad(str(e)) from None
        self.value[out or node.output[0]] = made.name

    def shape(self, name: str) -> tuple[int, ...]:
        return self.graph.nodes[self.act(name)].type.shape

    # -- the rules --------------------------------------------------------------
    def conv(self, n: Any) -> None:
        a = _attrs(n)
        w = self.const(n.input[1]).astype(np.float32)
        k = w.ndim - 2
        if _text(a.get("auto_pad", "NOTSET")) not in ("NOTSET", ""):
            raise Bad("auto_pad is not supported; give explicit pads")
        params = {"weight": w}
        if len(n.input) > 2 and n.input[2]:
            params["bias"] = self.const(n.input[2]).astype(np.float32)
        attrs = ConvAttrs(stride=tuple(a.get("strides", [1] * k)),
                          padding=_sym_pads(a.get("pads", []), k),
                          dilation=tuple(a.get("dilations", [1] * k)), groups=a.get("group", 1))
        self.add(n, "conv1d" if k == 1 else "conv2d", [self.act(n.input[0])], attrs, params)

    def matmul(self, n: Any) -> None:
        if n.input[1] not in self.consts:
            self.add(n, "matmul", [self.act(n.input[0]), self.act(n.input[1])])
            return
        w = self.const(n.input[1]).astype(np.float32)
        if w.ndim != 2:
            raise Bad(f"a constant MatMul operand of {w.ndim} axes (a linear has 2)")
        params = {"weight": np.ascontiguousarray(w.T)}
        out = n.output[0]
        users = self.users.get(out, [])
        if len(users) == 1 and users[0].op_type == "Add" and out not in self.graph_outputs():
            add = users[0]
            other = add.input[1] if add.input[0] == out else add.input[0]
            b = self.consts.get(other)
            if b is not None and b.shape == (w.shape[1],):
                params["bias"] = b.astype(np.float32)
                self.fused.add(add.name or add.output[0])
                out = add.output[0]
        self.add(n, "linear", [self.act(n.input[0])], None, params, out=out)

    def gemm(self, n: Any) -> None:
        a = _attrs(n)
        if a.get("transA", 0):
            raise Bad("transA is not supported")
        w = self.const(n.input[1]).astype(np.float32)
        w = w if a.get("transB", 0) else w.T
        with np.errstate(all="ignore"):  # a non-finite product is refused in add()
            params = {"weight": np.ascontiguousarray(w * np.float32(a.get("alpha", 1.0)))}
        if len(n.input) > 2 and n.input[2]:
            b = self.const(n.input[2]).astype(np.float32) * np.float32(a.get("beta", 1.0))
            params["bias"] = np.broadcast_to(b, (w.shape[0],)).copy()
        self.add(n, "linear", [self.act(n.input[0])], None, params)

    def arith(self, n: Any) -> None:
        op = {"Add": "add", "Sub": "sub", "Mul": "mul"}[n.op_type]
        x, y = n.input[0], n.input[1]
        if x not in self.consts and y not in self.consts:
            self.add(n, op, [self.act(x), self.act(y)])
            return
        c_name, v_name = (x, y) if x in self.consts else (y, x)
        c = self.consts[c_name]
        if c.size != 1:
            raise Bad(f"a constant operand of shape {c.shape} (snncc takes scalars here)")
        value = float(c.reshape(-1)[0])
        if op == "mul":
            self.add(n, "scale", [self.act(v_name)], ScalarAttrs(value=value))
        elif op == "add":
            self.add(n, "shift", [self.act(v_name)], ScalarAttrs(value=value))
        elif c_name == x:  # c - v
            self.add(n, "rsub", [self.act(v_name)], ScalarAttrs(value=value))
        else:  # v - c
            self.add(n, "shift", [self.act(v_name)], ScalarAttrs(value=-value))

    def pool(self, n: Any) -> None:
        a = _attrs(n)
        k = tuple(a["kernel_shape"])
        if len(k) != 2:
            raise Bad(f"a {len(k)}-d pool (snncc pools 2-d)")
        kw: dict[str, Any] = {"kernel": k, "stride": tuple(a.get("strides", [1, 1])),
                              "padding": _sym_pads(a.get("pads", []), 2),
                              "ceil_mode": bool(a.get("ceil_mode", 0))}
        if n.op_type == "MaxPool":
            self.add(n, "maxpool2d", [self.act(n.input[0])], PoolAttrs(**kw))
        else:
            kw["count_include_pad"] = bool(a.get("count_include_pad", 0))
            self.add(n, "avgpool2d", [self.act(n.input[0])], AvgPoolAttrs(**kw))

    def batchnorm(self, n: Any) -> None:
        a = _attrs(n)
        ndim = len(self.shape(n.input[0]))
        names = ("weight", "bias", "running_mean", "running_var")
        params = {k: self.const(i).astype(np.float32) for k, i in zip(names, n.input[1:5])}
        self.add(n, "batchnorm", [self.act(n.input[0])],
                 BatchNormAttrs(channel_axis=1 - ndim, eps=float(a.get("epsilon", 1e-5))), params)

    def reshape(self, n: Any) -> None:
        src = self.shape(n.input[0])
        if n.op_type == "Flatten":
            axis = _attrs(n).get("axis", 1) % max(len(src), 1)
            shape = [math.prod(src[:axis]), math.prod(src[axis:])]
        else:
            shape = [int(d) for d in self.const(n.input[1]).reshape(-1)]
            shape = [src[i] if d == 0 else d for i, d in enumerate(shape)]
            if -1 in shape:
                known = math.prod(d for d in shape if d != -1)
                shape[shape.index(-1)] = math.prod(src) // max(known, 1)
        self.add(n, "reshape", [self.act(n.input[0])], ReshapeAttrs(shape=tuple(shape)))

    def reduce(self, n: Any) -> None:
        a = _attrs(n)
        axes = a.get("axes")
        if axes is None and len(n.input) > 1 and n.input[1]:
            axes = [int(d) for d in self.const(n.input[1]).reshape(-1)]
        if axes is None:
            axes = list(range(len(self.shape(n.input[0]))))
        op = {"ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "amax"}[n.op_type]
        self.add(n, op, [self.act(n.input[0])],
                 ReduceAttrs(dims=tuple(axes), keepdim=bool(a.get("keepdims", 1))))

    def structural(self, n: Any) -> None:
        a = _attrs(n)
        x = self.act(n.input[0])
        t = n.op_type
        if t == "Identity":
            self.add(n, "identity", [x])
        elif t == "Transpose":
            ndim = len(self.shape(n.input[0]))
            perm = a.get("perm", list(reversed(range(ndim))))
            self.add(n, "permute", [x], PermuteAttrs(dims=tuple(perm)))
        elif t == "Concat":
            self.add(n, "cat", [self.act(i) for i in n.input], CatAttrs(dim=a["axis"]))
        elif t == "Unsqueeze":
            axes = [int(d) for d in self.const(n.input[1]).reshape(-1)]
            if len(axes) != 1:
                raise Bad(f"Unsqueeze of {len(axes)} axes (snncc takes one)")
            self.add(n, "unsqueeze", [x], DimAttrs(dim=axes[0]))
        elif t == "Slice":
            shape = self.shape(n.input[0])
            vals: list[list[int] | None] = [
                [int(d) for d in self.const(i).reshape(-1)] if i else None
                for i in list(n.input[1:]) + [""] * (5 - len(n.input))]
            starts, ends, on, steps = vals[0], vals[1], vals[2], vals[3]
            if starts is None or ends is None or len(starts) != 1:
                raise Bad("Slice of more than one axis")
            dim = (on or [0])[0] % len(shape)
            start, stop, step = slice(starts[0], ends[0], (steps or [1])[0]).indices(shape[dim])
            self.add(n, "slice", [x], SliceAttrs(dim=dim, start=start, stop=stop, step=step))
        elif t == "Pad":
            if _text(a.get("mode", "constant")) != "constant":
                raise Bad("only constant padding")
            p = [int(d) for d in self.const(n.input[1]).reshape(-1)]
            value = float(self.const(n.input[2]).reshape(-1)[0]) if len(n.input) > 2 and \
                n.input[2] else 0.0
            ndim = len(p) // 2
            pads: list[int] = []
            for axis in reversed(range(ndim)):  # F.pad order: last axis first
                pads += [p[axis], p[ndim + axis]]
            while pads[-2:] == [0, 0] and len(pads) > 2:
                pads = pads[:-2]
            self.add(n, "pad", [x], PadAttrs(pads=tuple(pads), value=value))
        elif t == "Tile":
            reps = tuple(int(d) for d in self.const(n.input[1]).reshape(-1))
            self.add(n, "repeat", [x], RepeatAttrs(repeats=reps))

    def custom(self, n: Any) -> None:
        op = n.op_type
        if op not in OPS or op == "input":
            raise Bad(f"ai.snncc has no op {op!r}")
        opdef = OPS[op]
        a = {k: _text(v) for k, v in _attrs(n).items()}
        names = [p for p in str(a.pop("params", "")).split(",") if p]
        soft = a.pop("soft_reset", 0)
        if soft and "v_reset" in opdef.attrs_type.model_fields:  # neurons, recurrent layers
            a["v_reset"] = None
        for field, info in opdef.attrs_type.model_fields.items():
            if field in a and info.annotation in (bool, "bool"):
                a[field] = bool(a[field])
        try:
            attrs = opdef.attrs_type.model_validate(a)
        except ValidationError as e:
            raise Bad(f"attributes: {str(e).splitlines()[0]}") from None
        k = len(n.input) - len(names)
        params = {p: self.const(i).copy() for p, i in zip(names, n.input[k:])}  # writable
        self.add(n, op, [self.act(i) for i in n.input[:k]], attrs, params)

    def graph_outputs(self) -> set[str]:
        return {o.name for o in self.g.output}

    def inputs(self) -> None:
        for i in self.g.input:
            if i.name in self.consts:
                continue
            dims = [d.dim_value if d.HasField("dim_value") else 0
                    for d in i.type.tensor_type.shape.dim]
            if not dims or any(d <= 0 for d in dims):
                raise SnnccError("SNN-ONNX003", f"ONNX input {i.name!r} has no static shape "
                                 f"({dims}); snncc compiles for one shape",
                                 location=Location(node=i.name),
                                 hint="export with a fixed input shape [T, B, ...]")
            if not self.graph.inputs:
                self.graph.time_steps = int(self.props.get("time_steps", dims[0]))
            attrs = InputAttrs(index=len(self.graph.inputs), shape=tuple(dims), spikes=self.spikes)
            node = self.graph.add("input", [], attrs, origin=Origin(module_path=i.name), name=i.name)
            self.graph.inputs.append(node.name)
            self.value[i.name] = node.name


RULES: dict[str, Callable[[Converter, Any], None]] = {
    "Conv": Converter.conv, "MatMul": Converter.matmul, "Gemm": Converter.gemm,
    "Add": Converter.arith, "Sub": Converter.arith, "Mul": Converter.arith,
    "MaxPool": Converter.pool, "AveragePool": Converter.pool,
    "BatchNormalization": Converter.batchnorm, "Reshape": Converter.reshape,
    "Flatten": Converter.reshape, "ReduceSum": Converter.reduce,
    "ReduceMean": Converter.reduce, "ReduceMax": Converter.reduce,
    **{t: Converter.structural for t in ("Identity", "Transpose", "Concat", "Unsqueeze",
                                         "Slice", "Pad", "Tile")},
}
SUPPORTED = tuple(RULES)


def _label(n: Any) -> str:
    return f"'{n.name or n.output[0]}' ({(n.domain + '.') if n.domain else ''}{n.op_type})"


# Ops on shapes and constants that exporters (PyTorch's for ``x.flatten(0, 1)``) emit: with
# static input shapes they are constants, evaluated once by onnx's reference evaluator.
FOLDABLE = ("Shape", "Constant", "Gather", "Squeeze", "Cast", "Div", "Range", "Equal", "Where",
            "ConstantOfShape", "Expand", "Neg", "Floor", "Ceil", "Sqrt", "Pow")


def _is_standard(n: Any) -> bool:
    return n.domain in ("", "ai.onnx")


def fold(conv: Converter, n: Any) -> bool:
    """Evaluate ``n`` if every input is a constant (``Shape`` of a value: its static shape);
    returns whether it did."""
    if n.op_type == "Shape" and n.input[0] in conv.value:
        a = _attrs(n)
        shape = np.array(conv.shape(n.input[0]), np.int64)
        conv.consts[n.output[0]] = shape[a.get("start", 0):a.get("end", len(shape))]
        return True
    if n.op_type == "Constant":
        from onnx import numpy_helper

        conv.consts[n.output[0]] = numpy_helper.to_array(_attrs_raw(n))
        return True
    if not all(i in conv.consts for i in n.input if i):
        return False
    from onnx.reference import ReferenceEvaluator

    feeds = {i: conv.consts[i] for i in n.input if i}
    try:
        results = ReferenceEvaluator(n).run(None, feeds)
    except (ValueError, TypeError, RuntimeError, IndexError, KeyError) as e:  # the file's content
        raise Bad(f"cannot evaluate it on its constant inputs: {e}") from None
    for name, value in zip(n.output, results):
        conv.consts[name] = np.asarray(value)
    return True


def to_graph(model: Any, *, spikes: bool | None = None, file: str | None = None) -> Graph:
    conv = Converter(model, spikes)
    unknown = [n for n in model.graph.node
               if not (n.domain == CUSTOM_DOMAIN or (_is_standard(n) and (
                   n.op_type in RULES or n.op_type in FOLDABLE)))]
    if unknown:
        raise SnnccError("SNN-ONNX002", f"{len(unknown)} ONNX node(s) use ops snncc does not "
                         f"import: {'; '.join(_label(n) for n in unknown)}",
                         location=Location(file=file, node=unknown[0].name or None),
                         hint=f"snncc imports: {', '.join(SUPPORTED)} and the ai.snncc ops")
    conv.inputs()
    for n in model.graph.node:
        if (n.name or n.output[0]) in conv.fused:
            continue
        try:
            if n.domain == CUSTOM_DOMAIN:
                conv.custom(n)
            elif fold(conv, n):
                pass
            elif n.op_type in RULES:
                RULES[n.op_type](conv, n)
            else:
                raise Bad(f"{n.op_type} of a computed value (snncc folds it on constants only)")
        except (Bad, KeyError, IndexError, ValueError) as e:
            raise SnnccError("SNN-ONNX003", f"ONNX node {_label(n)}: {e}",
                             location=Location(file=file, node=n.name or n.output[0]),
                             hint="export the model with static shapes and the standard "
                                  "forms of these ops") from None
    for o in model.graph.output:
        if o.name not in conv.value:
            raise SnnccError("SNN-ONNX003", f"ONNX output {o.name!r} is not computed",
                             location=Location(file=file, node=o.name))
        conv.graph.outputs.append(conv.value[o.name])
    return conv.graph


def _attrs_raw(n: Any) -> Any:
    for a in n.attribute:
        if a.name == "value":
            return a.t
    raise Bad("a Constant without a tensor value")
