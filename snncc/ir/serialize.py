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
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from snncc.diagnostics import Location, SnnccError
from snncc.ir.graph import FORMAT_VERSION, Graph, IRVerificationError, Node, Origin, verify
from snncc.ir.op import get_op
from snncc.ir.types import TensorType

MAGIC = "snnir"
# A reader never expands a file to more than this, or than EXPANSION times its size
# (weights compress little: a real .snnir expands about 1.1x): beyond, it is a zip bomb.
MAX_EXPANDED = 256 * 2**20
EXPANSION = 20


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


# What a damaged file's JSON can raise when read as a graph (pydantic's ValidationError
# is a ValueError; IRVerificationError: a graph that does not type-check).
DAMAGED = (KeyError, TypeError, ValueError, AttributeError, IndexError, IRVerificationError)


def read_members(data: bytes, names: tuple[str, ...], path: str | Path,
                 code: str = "SNN-IR002") -> dict[str, bytes]:
    """The named members of a zip container, refusing one that would expand to far more
    than it holds (a zip bomb) and any damage the zip layer detects (CRCs, zlib)."""
    loc = Location(file=str(path))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = [z.getinfo(n) for n in names]
            total = sum(i.file_size for i in infos)
            if total > max(MAX_EXPANDED, EXPANSION * len(data)):
                raise SnnccError("SNN-IR005", f"{path} would expand to {total:,} bytes from "
                                 f"{len(data):,}: refusing it as a zip bomb", location=loc,
                                 hint="re-create the file with snncc")
            return {i.filename: z.read(i) for i in infos}
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError, zlib.error) as e:
        raise SnnccError(code, f"{path} is not a readable snncc file ({e})", location=loc,
                         hint="re-create it with `snncc compile`") from None


def graph_from_bytes(data: bytes, path: str | Path) -> Graph:
    """A graph from .snnir bytes; ``path`` names where they came from in errors."""
    loc = Location(file=str(path))
    members = read_members(data, ("graph.json", "tensors.npz"), path)
    try:
        meta = json.loads(members["graph.json"])
        with np.load(io.BytesIO(members["tensors.npz"]), allow_pickle=False) as npz:
            tensors = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise SnnccError("SNN-IR002", f"{path} is not a readable .snnir file ({e})", location=loc,
                         hint="re-create it with `snncc compile --target ir`") from None
    if not isinstance(meta, dict) or meta.get("format") != MAGIC:
        raise SnnccError("SNN-IR002", f"{path} is not an .snnir file", location=loc)
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not \
            1 <= version <= FORMAT_VERSION:
        raise SnnccError(
            "SNN-IR003",
            f"{path} has format version {version!r}; this snncc reads 1 to {FORMAT_VERSION}",
            location=loc, hint="upgrade snncc, or re-compile the model with this version",
        )
    try:
        return _graph_from_meta(meta, tensors, path)
    except SnnccError:
        raise
    except DAMAGED as e:
        raise SnnccError("SNN-IR002", f"{path} is damaged: {type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}", location=loc,
                         hint="re-create it with `snncc compile --target ir`") from None


class _KnownMeta(BaseModel):
    """The graph.meta entries passes and reports read, with their types (others pass as is)."""

    model_config = ConfigDict(extra="allow", strict=True)

    model: str = ""
    source_parameters: int = 0
    unused_modules: dict[str, int] = {}
    schedule: dict[str, list[int]] = {}
    timesteps: dict[str, Any] = {}
    merged: list[dict[str, Any]] = []


def _graph_from_meta(meta: dict[str, Any], tensors: dict[str, np.ndarray],
                     path: str | Path) -> Graph:
    extra = meta.get("meta", {})
    _KnownMeta.model_validate(extra)  # a ValidationError names the damaged entry
    if not isinstance(meta["time_steps"], int) or meta["time_steps"] < 1:
        raise ValueError(f"time_steps {meta['time_steps']!r} is not a positive integer")
    graph = Graph(time_steps=meta["time_steps"], inputs=list(meta["inputs"]),
                  outputs=list(meta["outputs"]), meta=dict(extra))
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
