"""The ONNX frontend: a ``.onnx`` model -> snncc's IR.

It reads the models snncc writes (``backends/onnx``: standard ops plus ``ai.snncc``
neurons and time masks) back exactly, and the standard ops spiking models are built
from: Conv, Gemm, MatMul, Add, Sub, Mul, BatchNormalization, MaxPool, AveragePool,
Reshape, Flatten, Transpose, ReduceSum, ReduceMean, ReduceMax, Concat, Unsqueeze,
Slice, Pad, Tile, Identity; shape arithmetic on constants (``Shape``, ``Gather``,
``Cast``, ... as PyTorch's exporter writes ``x.flatten(0, 1)``) is folded with onnx's
reference evaluator, since snncc compiles for static shapes. The input's axis 0 is time (``[T, B, ...]``), as in
every snncc graph; a ``MatMul`` by a constant followed by an ``Add`` of a constant
vector is one ``linear`` (how snncc, and PyTorch's exporter, write a Linear).

Errors (:class:`~snncc.diagnostics.SnnccError`; the CLI exits 2):

- ``SNN-ONNX001`` not a readable ONNX model;
- ``SNN-ONNX002`` ops snncc does not import, every such node listed by name and type;
- ``SNN-ONNX003`` a node whose attributes or operands snncc cannot take (a dynamic
  shape, asymmetric padding, a constant operand that is not a scalar, ...).
"""

from __future__ import annotations

from pathlib import Path

from snncc.diagnostics import Location, SnnccError
from snncc.frontends.onnx.convert import SUPPORTED, to_graph
from snncc.ir.graph import Graph

__all__ = ["SUPPORTED", "load_onnx"]


def load_onnx(path: str | Path, *, spikes: bool | None = None) -> Graph:
    """The IR graph of the ONNX model at ``path``."""
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    try:
        model = onnx.load(str(path))
    except (DecodeError, OSError, ValueError, RuntimeError) as e:
        raise SnnccError("SNN-ONNX001", f"{path} is not a readable ONNX model: "
                         f"{str(e).splitlines()[0] if str(e) else type(e).__name__}",
                         location=Location(file=str(path)),
                         hint="the file may be truncated; export it again") from None
    try:  # the structure (names, types, graph order), before any rule reads a field
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError, UnicodeDecodeError) as e:
        raise SnnccError("SNN-ONNX001", f"{path} is not a valid ONNX model: "
                         f"{str(e).splitlines()[0] if str(e) else type(e).__name__}",
                         location=Location(file=str(path)),
                         hint="check it with onnx.checker, or export it again") from None
    return to_graph(model, spikes=spikes, file=str(path))
