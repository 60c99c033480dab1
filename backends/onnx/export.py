"""snncc's IR -> an ONNX model: standard ops where ONNX has them, ``ai.snncc`` ops for
the rest (neurons, time masks, leaky integrators, delays, adaptive pools, upsampling).

Every IR tensor keeps its IR shape ``[T, B, ...]`` and name. ONNX's Conv, pools and
BatchNormalization take ``[N, C, ...]``, so for them the leading axes are merged by a
``Reshape`` before and split after (the pattern SpikingJelly's ``x.flatten(0, 1)``
makes in PyTorch); a ``linear`` is ``MatMul`` with the transposed weight and an
``Add`` of the bias, which the importer fuses back. Each ONNX node's name starts with
its IR node's, so Netron shows where it came from. The model's ``metadata_props``
carry ``producer=snncc``, ``time_steps`` and whether the input is spikes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from snncc.backends.onnx.schema import DOMAIN, VERSION, register
from snncc.ir.graph import Graph, Node
from snncc.ir.ops.combine import CatAttrs, PadAttrs, SliceAttrs
from snncc.ir.ops.elementwise import ScalarAttrs
from snncc.ir.ops.norm import BatchNormAttrs
from snncc.ir.ops.pool import AvgPoolAttrs, PoolAttrs
from snncc.ir.ops.reduce import ReduceAttrs
from snncc.ir.ops.structure import DimAttrs, PermuteAttrs, RepeatAttrs, TransposeAttrs
from snncc.ir.ops.weights import ConvAttrs

OPSET = 17
IR_VERSION = 8  # what opset 17 needs; onnx 1.23 would write 14, which onnxruntime 1.23 refuses


class Builder:
    def __init__(self, graph: Graph) -> None:
        self.g = graph
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.value_info: list[Any] = []
        self.custom: set[str] = set()

    # -- helpers --------------------------------------------------------------
    def const(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def emit(self, op: str, ins: list[str], out: str, name: str, domain: str = "",
             **attrs: Any) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, ins, [out], name=name, domain=domain, **attrs))
        return out

    def typed(self, name: str, shape: tuple[int, ...]) -> None:
        from onnx import TensorProto, helper

        self.value_info.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))

    def wrapped(self, n: Node, op: str, ins: list[str], spatial: int, **attrs: Any) -> None:
        """``op`` on ``[N, C, *spatial]``: merge the leading axes first, split them after."""
        x = self.g.nodes[n.inputs[0]].type.shape
        lead = len(x) - spatial - 1
        if lead == 1:
            self.emit(op, ins, n.name, n.name, **attrs)
            return
        flat = (math.prod(x[:lead]), *x[lead:])
        merged = self.emit("Reshape", [ins[0], self.const(f"{n.name}/in_shape", np.array(flat))],
                           f"{n.name}/merged", f"{n.name}/merge")
        self.typed(merged, flat)
        out = n.type.shape
        core = self.emit(op, [merged, *ins[1:]], f"{n.name}/core", n.name, **attrs)
        self.typed(core, (math.prod(out[:lead]), *out[lead:]))
        self.emit("Reshape", [core, self.const(f"{n.name}/out_shape", np.array(out))], n.name,
                  f"{n.name}/split")

    def custom_op(self, n: Node) -> None:
        register(n.opdef)
        self.custom.add(n.op)
        attrs: dict[str, Any] = {}
        for field, value in n.attrs.model_dump().items():
            if value is None:
                continue
            attrs[field] = int(value) if isinstance(value, bool) else (
                list(value) if isinstance(value, (tuple, list)) else value)
        if getattr(n.attrs, "v_reset", 0.0) is None:  # a neuron's or recurrent layer's
            attrs["soft_reset"] = 1
        names = [p for p in (*n.opdef.params, *n.opdef.optional_params) if p in n.params]
        ins = list(n.inputs) + [self.const(f"{n.name}/{p}", n.params[p]) for p in names]
        if names:
            attrs["params"] = ",".join(names)
        self.emit(n.op, ins, n.name, n.name, domain=DOMAIN, **attrs)

    # -- the rules --------------------------------------------------------------
    def node(self, n: Node) -> None:  # noqa: C901  (one branch per op: the table of rules)
        a = n.attrs
        ins = list(n.inputs)
        if n.op in ("add", "sub", "mul", "matmul"):
            self.emit({"add": "Add", "sub": "Sub", "mul": "Mul", "matmul": "MatMul"}[n.op],
                      ins, n.name, n.name)
        elif n.op in ("scale", "shift", "rsub"):
            assert isinstance(a, ScalarAttrs)
            c = self.const(f"{n.name}/c", np.array(a.value, np.float32))
            op = {"scale": "Mul", "shift": "Add", "rsub": "Sub"}[n.op]
            self.emit(op, [c, ins[0]] if n.op == "rsub" else [ins[0], c], n.name, n.name)
        elif n.op == "linear":
            w = self.const(f"{n.name}/weight_t", np.ascontiguousarray(n.params["weight"].T))
            if "bias" in n.params:
                mm = self.emit("MatMul", [ins[0], w], f"{n.name}/matmul", f"{n.name}/matmul")
                self.typed(mm, n.type.shape)
                self.emit("Add", [mm, self.const(f"{n.name}/bias", n.params["bias"])], n.name,
                          n.name)
            else:
                self.emit("MatMul", [ins[0], w], n.name, n.name)
        elif n.op in ("conv1d", "conv2d"):
            assert isinstance(a, ConvAttrs)
            params = [self.const(f"{n.name}/weight", n.params["weight"])]
            if "bias" in n.params:
                params.append(self.const(f"{n.name}/bias", n.params["bias"]))
            self.wrapped(n, "Conv", [ins[0], *params], len(a.stride), strides=list(a.stride),
                         pads=list(a.padding) * 2, dilations=list(a.dilation), group=a.groups,
                         kernel_shape=list(n.params["weight"].shape[2:]))
        elif n.op == "maxpool2d":
            assert isinstance(a, PoolAttrs)
            self.wrapped(n, "MaxPool", ins, 2, kernel_shape=list(a.kernel),
                         strides=list(a.stride), pads=list(a.padding) * 2,
                         ceil_mode=int(a.ceil_mode))
        elif n.op == "avgpool2d":
            assert isinstance(a, AvgPoolAttrs)
            self.wrapped(n, "AveragePool", ins, 2, kernel_shape=list(a.kernel),
                         strides=list(a.stride), pads=list(a.padding) * 2,
                         ceil_mode=int(a.ceil_mode), count_include_pad=int(a.count_include_pad))
        elif n.op == "batchnorm":
            assert isinstance(a, BatchNormAttrs)
            channels = int(n.params["running_mean"].shape[0])
            scale = n.params.get("weight", np.ones(channels, np.float32))
            bias = n.params.get("bias", np.zeros(channels, np.float32))
            params = [self.const(f"{n.name}/{k}", v) for k, v in
                      (("weight", scale), ("bias", bias), ("running_mean", n.params["running_mean"]),
                       ("running_var", n.params["running_var"]))]
            self.wrapped(n, "BatchNormalization", [ins[0], *params], -a.channel_axis - 1,
                         epsilon=a.eps)
        elif n.op in ("reshape", "flatten"):
            self.emit("Reshape", [ins[0], self.const(f"{n.name}/shape", np.array(n.type.shape))],
                      n.name, n.name)
        elif n.op in ("transpose", "permute"):
            ndim = len(n.type.shape)
            if isinstance(a, TransposeAttrs):
                perm = list(range(ndim))
                d0, d1 = a.dim0 % ndim, a.dim1 % ndim
                perm[d0], perm[d1] = perm[d1], perm[d0]
            else:
                assert isinstance(a, PermuteAttrs)
                if a.declares_time:
                    self.custom_op(n)
                    return
                perm = [d % ndim for d in a.dims]
            self.emit("Transpose", ins, n.name, n.name, perm=perm)
        elif n.op in ("sum", "mean", "amax"):
            assert isinstance(a, ReduceAttrs)
            if n.op == "sum":  # opset 17: ReduceSum takes axes as an input, the others not
                axes = self.const(f"{n.name}/axes", np.array(a.dims, np.int64))
                self.emit("ReduceSum", [ins[0], axes], n.name, n.name, keepdims=int(a.keepdim))
            else:
                op = "ReduceMean" if n.op == "mean" else "ReduceMax"
                self.emit(op, ins, n.name, n.name, axes=list(a.dims), keepdims=int(a.keepdim))
        elif n.op == "identity":
            self.emit("Identity", ins, n.name, n.name)
        elif n.op == "cat":
            assert isinstance(a, CatAttrs)
            self.emit("Concat", ins, n.name, n.name, axis=a.dim)
        elif n.op == "unsqueeze":
            assert isinstance(a, DimAttrs)
            axes = self.const(f"{n.name}/axes", np.array([a.dim], np.int64))
            self.emit("Unsqueeze", [ins[0], axes], n.name, n.name)
        elif n.op == "slice":
            assert isinstance(a, SliceAttrs)
            bounds = [self.const(f"{n.name}/{k}", np.array([v], np.int64)) for k, v in
                      (("starts", a.start), ("ends", a.stop), ("axes", a.dim), ("steps", a.step))]
            self.emit("Slice", [ins[0], *bounds], n.name, n.name)
        elif n.op == "pad":
            assert isinstance(a, PadAttrs)
            ndim = len(n.type.shape)
            before, after = [0] * ndim, [0] * ndim
            for j in range(len(a.pads) // 2):  # F.pad: last axis first
                before[ndim - 1 - j], after[ndim - 1 - j] = a.pads[2 * j], a.pads[2 * j + 1]
            pads = self.const(f"{n.name}/pads", np.array(before + after, np.int64))
            value = self.const(f"{n.name}/value", np.array(a.value, np.float32))
            self.emit("Pad", [ins[0], pads, value], n.name, n.name, mode="constant")
        elif n.op == "repeat":
            assert isinstance(a, RepeatAttrs)
            reps = self.const(f"{n.name}/repeats", np.array(a.repeats, np.int64))
            self.emit("Tile", [ins[0], reps], n.name, n.name)
        else:
            self.custom_op(n)


def to_onnx(graph: Graph) -> Any:
    """The ONNX model of ``graph`` (opset 17 and ``ai.snncc`` 1)."""
    from onnx import TensorProto, helper

    b = Builder(graph)
    inputs = []
    for n in graph:
        if n.op == "input":
            inputs.append(helper.make_tensor_value_info(n.name, TensorProto.FLOAT, n.type.shape))
            continue
        b.node(n)
        if n.name not in graph.outputs:
            b.typed(n.name, n.type.shape)
    outputs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, graph.nodes[o].type.shape)
               for o in graph.outputs]
    g = helper.make_graph(b.nodes, "snncc", inputs, outputs, initializer=b.inits,
                          value_info=b.value_info)
    opsets = [helper.make_opsetid("", OPSET)]
    if b.custom:
        opsets.append(helper.make_opsetid(DOMAIN, VERSION))
    model = helper.make_model(g, opset_imports=opsets, producer_name="snncc",
                              ir_version=IR_VERSION)
    first = graph.nodes[graph.inputs[0]]
    helper.set_model_props(model, {
        "producer": "snncc", "time_steps": str(graph.time_steps),
        "input_spikes": str(int(bool(getattr(first.attrs, "spikes", False)))),
    })
    return model
