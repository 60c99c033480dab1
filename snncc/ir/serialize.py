"""The `.snnir` file: a zip holding `graph.json` (structure, attributes, types,
origins, format version) and `tensors.npz` (parameters). Written atomically, so
a failed write never leaves a partial file; read back to an identical graph."""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from snncc.diagnostics import Location, SnnccError
from snncc.ir.graph import FORMAT_VERSION, Graph, Node, Origin, verify
from snncc.ir.op import get_op
from snncc.ir.types import TensorType

MAGIC = "snnir"


def graph_to_json(graph: Graph) -> dict[str, Any]:
    return {
        "format": MAGIC,
        "version": FORMAT_VERSION,
        "time_steps": graph.time_steps,
        "inputs": graph.inputs,
        "outputs": graph.outputs,
        "meta": graph.meta,
        "nodes": [
            {
                "name": n.name,
                "op": n.op,
                "inputs": n.inputs,
                "attrs": n.attrs.model_dump(),
                "type": n.type.model_dump(),
                "params": list(n.params),
                "origin": {"module_path": n.origin.module_path, "source": n.origin.source},
            }
            for n in graph
        ],
    }


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write via a temporary file in the same folder and rename: all or nothing."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        # mkstemp makes the file private (0600); an output file gets the user's usual mode
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_graph(graph: Graph, path: str | Path) -> None:
    atomic_write(path, graph_to_bytes(graph))


def graph_to_bytes(graph: Graph) -> bytes:
    """The bytes of a .snnir file (for containers that embed a graph, like .acsim)."""
    verify(graph)
    tensors = {f"{n.name}/{k}": v for n in graph for k, v in n.params.items()}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("graph.json", json.dumps(graph_to_json(graph), indent=1))
        npz = io.BytesIO()
        np.savez(npz, **tensors)
        z.writestr("tensors.npz", npz.getvalue())
    return buf.getvalue()


def load_graph(path: str | Path) -> Graph:
    path = Path(path)
    if not path.exists():
        raise SnnccError("SNN-IR001", f"no such file: {path}", location=Location(file=str(path)),
                         hint="check the path; compile a model with `snncc compile --target ir`")
    return graph_from_bytes(path.read_bytes(), path)


def graph_from_bytes(data: bytes, path: str | Path) -> Graph:
    """A graph from .snnir bytes; ``path`` names where they came from in errors."""
    loc = Location(file=str(path))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            meta = json.loads(z.read("graph.json"))
            with np.load(io.BytesIO(z.read("tensors.npz")), allow_pickle=False) as npz:
                tensors = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as e:
        raise SnnccError("SNN-IR002", f"{path} is not a readable .snnir file ({e})", location=loc,
                         hint="re-create it with `snncc compile --target ir`") from None
    if meta.get("format") != MAGIC:
        raise SnnccError("SNN-IR002", f"{path} is not an .snnir file", location=loc)
    version = meta.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise SnnccError(
            "SNN-IR003",
            f"{path} has format version {version}; this snncc reads up to {FORMAT_VERSION}",
            location=loc, hint="upgrade snncc, or re-compile the model with this version",
        )
    graph = Graph(time_steps=meta["time_steps"], inputs=meta["inputs"], outputs=meta["outputs"],
                  meta=meta.get("meta", {}))
    for d in meta["nodes"]:
        try:
            opdef = get_op(d["op"])
        except KeyError as e:
            raise SnnccError("SNN-IR004", str(e), location=Location(file=str(path), node=d["name"])) from None
        graph.nodes[d["name"]] = Node(
            name=d["name"],
            op=d["op"],
            inputs=d["inputs"],
            attrs=opdef.attrs_type.model_validate(d["attrs"]),
            type=TensorType.model_validate(d["type"]),
            params={k: tensors[f"{d['name']}/{k}"] for k in d["params"]},
            origin=Origin(**d["origin"]),
        )
    verify(graph)
    return graph
