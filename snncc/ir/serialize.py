"""The `.snnir` file: a zip holding `graph.json` (structure, attributes, types,
origins, format version) and `tensors.npz` (parameters). Written atomically, so
a failed write never leaves a partial file; read back to an identical graph."""

from __future__ import annotations

import io
import json
import os
import stat
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
    """Write via a temporary file in the same folder and rename: all or nothing.

    Only a regular file (or a new name) may be the target: renaming over `/dev/null`
    or a FIFO would replace the device itself (as root), so those are refused; a
    missing folder, a read-only or full file system is one clear error, and the old
    file, if any, is left as it was."""
    path = Path(path)
    _check_output_target(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise _output_error(path, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); an output file gets the user's usual mode
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as e:
        raise _output_error(path, e) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _check_output_target(path: Path) -> None:
    try:
        st = os.stat(path)  # follows links: a link to a device is a device
    except FileNotFoundError:
        if not path.parent.is_dir():
            raise SnnccError("SNN-OUT002", f"cannot write {path}: folder {path.parent} does "
                             "not exist", location=Location(file=str(path)),
                             hint="create the folder first, or give another -o path") from None
        return
    except OSError as e:
        raise _output_error(path, e) from None
    if not stat.S_ISREG(st.st_mode):
        what = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a device, FIFO or socket)"
        raise SnnccError("SNN-OUT001", f"refusing to write {path}: it is {what}",
                         location=Location(file=str(path)),
                         hint="give -o the path of a regular file; snncc replaces it whole")


def _output_error(path: Path, e: OSError) -> SnnccError:
    return SnnccError("SNN-OUT003", f"cannot write {path}: {e.strerror or e}",
                      location=Location(file=str(path)),
                      hint="check the folder is writable and the disk has space; "
                      "nothing was written and any old file is unchanged")


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
