"""The ONNX backend: snncc's IR -> a ``.onnx`` model that opens in Netron and passes
``onnx.checker.check_model(full_check=True)`` (``snncc compile model.pt --target onnx``).

:mod:`.export` holds the rules (standard ops, and the ``ai.snncc`` domain for the rest),
:mod:`.schema` the ``ai.snncc`` operator schemas derived from the op table; this module
writes the file atomically, like every snncc output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from snncc.backends.onnx.export import to_onnx
from snncc.backends.onnx.schema import DOMAIN, register_all
from snncc.ir.serialize import atomic_write

__all__ = ["DOMAIN", "load_onnx_file", "register_all", "save_onnx", "to_onnx"]


def save_onnx(model: Any, path: str | Path) -> None:
    atomic_write(path, model.SerializeToString())


def load_onnx_file(path: str | Path) -> Any:
    """The ``onnx.ModelProto`` in a file (for ONNX to IR, use ``snncc.load``)."""
    import onnx

    return onnx.load(str(path))
