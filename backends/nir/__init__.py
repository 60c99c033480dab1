"""The NIR backend: snncc's IR -> a ``.nir`` file that snnTorch, Norse, Sinabs, Rockpool,
Lava-DL and SpiNNaker2's tools read (``snncc compile model.pt --target nir``).

:mod:`.export` holds the rules (which ops NIR expresses, and how neurons are written);
this module writes the file atomically, like every snncc output.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from snncc.backends.nir.export import NirExport, to_nir
from snncc.ir.serialize import atomic_write

__all__ = ["NirExport", "load_nir_file", "save_nir", "to_nir"]


def save_nir(export: NirExport | Any, path: str | Path) -> None:
    """Write an export (or a bare ``nir.NIRGraph``) to ``path``, all or nothing."""
    import nir

    g = export.graph if isinstance(export, NirExport) else export
    buf = io.BytesIO()
    nir.write(buf, g)
    atomic_write(path, buf.getvalue())


def load_nir_file(path: str | Path) -> Any:
    """The ``nir.NIRGraph`` in a file (for ``snncc`` to IR, use ``snncc.load``)."""
    from snncc.frontends.nir.reader import read_nir

    return read_nir(Path(path))
