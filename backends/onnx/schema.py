"""The ``ai.snncc`` ONNX domain: one operator schema per IR op that ONNX has no
standard op for (neurons, time-step masks, leaky integrators, delays, ...).

Why schemas: ``onnx.checker.check_model(full_check=True)`` validates each node
against its op's schema, so a file snncc writes is checked, attribute by attribute,
the way a standard op is; and Netron shows the attribute names. The schemas are
*derived* from the op table (the op's pydantic attributes), so an op added to snncc
gets its ONNX form with no second list to keep in sync. A node's inputs are its
activations followed by its parameters, in the op's ``params`` + ``optional_params``
order, named by the ``params`` attribute (comma-separated) of the node.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from snncc.ir.op import OPS, OpDef

DOMAIN = "ai.snncc"
VERSION = 1

_registered: set[str] = set()


def _attr_type(annotation: Any) -> Any:
    """The ONNX attribute type of a pydantic field's annotation (None: not representable)."""
    from onnx.defs import OpSchema

    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _attr_type(args[0])
    if annotation in (float,):
        return OpSchema.AttrType.FLOAT
    if annotation in (int, bool):
        return OpSchema.AttrType.INT
    if annotation is str or origin is typing.Literal and all(isinstance(a, str) for a in args):
        return OpSchema.AttrType.STRING
    if origin is tuple:
        inner = [a for a in args if a is not Ellipsis]
        if inner and all(a is int for a in inner):
            return OpSchema.AttrType.INTS
        if inner and all(a is float for a in inner):
            return OpSchema.AttrType.FLOATS
    return None


def register(opdef: type[OpDef]) -> None:
    """Register the ``ai.snncc`` schema of ``opdef`` with onnx (once per process)."""
    from onnx import defs
    from onnx.defs import OpSchema

    name = opdef.name
    if name in _registered:
        return
    attrs = [OpSchema.Attribute("params", OpSchema.AttrType.STRING,
                                "names of the parameter inputs after the activations",
                                required=False)]
    for field, info in opdef.attrs_type.model_fields.items():
        kind = _attr_type(info.annotation)
        if kind is None:
            raise TypeError(f"{name}.{field}: no ONNX attribute type for {info.annotation}")
        attrs.append(OpSchema.Attribute(field, kind, info.description or field, required=False))
    if "v_reset" in opdef.attrs_type.model_fields:  # neurons, recurrent layers
        attrs.append(OpSchema.Attribute("soft_reset", OpSchema.AttrType.INT,
                                        "1: v_reset is None (subtract the threshold)",
                                        required=False))
    doc = (opdef.__doc__ or name).strip().splitlines()[0]
    schema = OpSchema(
        name, DOMAIN, VERSION, doc,
        inputs=[OpSchema.FormalParameter("inputs", "T", "activations, then parameters",
                                         param_option=OpSchema.FormalParameterOption.Variadic,
                                         min_arity=0)],
        outputs=[OpSchema.FormalParameter("Y", "T")],
        type_constraints=[("T", ["tensor(float)"], "float32 tensors")],
        attributes=attrs)
    if not any(s.name == name and s.domain == DOMAIN for s in defs.get_all_schemas()):
        defs.register_schema(schema)
    _registered.add(name)


def register_all() -> None:
    """Register the schema of every IR op, so that a process that only reads a file
    snncc wrote can run ``onnx.checker.check_model(model, full_check=True)`` on it."""
    for name, opdef in OPS.items():
        if name != "input":
            register(opdef)
