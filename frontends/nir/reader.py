"""Reading a NIR file into ``nir`` nodes, with every failure a named error.

Why not ``nir.read`` alone: it stops at the first unknown or malformed node with a
bare ``ValueError`` (or an ``assert``, which ``python -O`` drops) that does not say
which node, and an unreadable HDF5 file surfaces as an ``OSError`` from h5py. Here
the file is read as a tree of dicts (``nir``'s own ``hdf2dict``), each node's type
is checked against the ones snncc imports, and each node is built on its own, so an
error names the node by its path in the (possibly nested) graph.

Errors (:class:`~snncc.diagnostics.SnnccError`; the CLI exits 2):

- ``SNN-NIR001`` not a readable NIR file (truncated, not HDF5, no ``node`` group);
- ``SNN-NIR002`` a node of a type snncc does not import (the hint lists the types);
- ``SNN-NIR003`` a node whose fields ``nir`` rejects (missing or inconsistent arrays).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from snncc.diagnostics import Location, SnnccError

# The node types the importer converts (frontends/nir/convert.py has one rule for each).
SUPPORTED_TYPES = ("Input", "Output", "NIRGraph", "Affine", "Linear", "Scale", "Conv1d",
                   "Conv2d", "SumPool2d", "AvgPool2d", "Flatten", "Delay", "Threshold", "I",
                   "IF", "LI", "LIF", "CubaLI", "CubaLIF")


def read_nir(path: Path) -> Any:
    """The file at ``path`` as a ``nir.NIRGraph`` (types not checked: snncc infers its own)."""
    import h5py
    from nir.serialization import hdf2dict

    where = Location(file=str(path))
    try:
        with h5py.File(path, "r") as f:
            if "node" not in f:
                raise SnnccError("SNN-NIR001", f"{path} is an HDF5 file without a NIR graph "
                                 "(no 'node' group)", location=where,
                                 hint="write it with nir.write(path, graph)")
            tree = hdf2dict(f["node"])
    except SnnccError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError) as e:  # h5py's errors for a bad file
        raise SnnccError("SNN-NIR001", f"{path} is not a readable NIR file: "
                         f"{str(e).splitlines()[0] if str(e) else type(e).__name__}",
                         location=where,
                         hint="the file may be truncated or not HDF5; write it again with "
                              "nir.write") from None
    return build_node(tree, "", path)


def _text(x: object) -> str:
    if isinstance(x, (bytes, np.bytes_)):
        return bytes(x).decode("utf8")
    return str(x)


def build_node(d: dict[str, Any], name: str, path: Path) -> Any:
    """One node (recursively, for a graph) from its dict; ``name`` is its dotted path."""
    import nir

    where = Location(file=str(path), node=name or "<root>")
    kind = _text(d.get("type", "<no type>"))
    if kind not in SUPPORTED_TYPES:
        raise SnnccError("SNN-NIR002", f"NIR node '{name or '<root>'}' has type {kind!r}, "
                         "which snncc does not import", location=where,
                         hint=f"snncc imports: {', '.join(SUPPORTED_TYPES)}")
    if kind == "NIRGraph":
        nodes = {_text(k): build_node(v, f"{name}.{_text(k)}" if name else _text(k), path)
                 for k, v in dict(d.get("nodes", {})).items()}
        raw = d.get("edges", [])
        try:
            edges = [(_text(a), _text(b)) for a, b in np.asarray(raw).reshape(-1, 2)]
        except ValueError:
            raise SnnccError("SNN-NIR003", f"the edges of graph '{name or '<root>'}' are not "
                             "(source, target) pairs", location=where) from None
        meta = dict(d.get("metadata", {}))
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=False)
    fields = {k: v for k, v in d.items() if k != "type"}
    fields["type"] = kind
    try:
        return nir.dict2NIRNode(fields)
    except (AssertionError, ValueError, TypeError, KeyError, IndexError) as e:
        raise SnnccError("SNN-NIR003", f"NIR node '{name}' ({kind}) is malformed: "
                         f"{str(e).splitlines()[0] if str(e) else type(e).__name__}",
                         location=where,
                         hint="check its fields against the nir package's definition") from None
