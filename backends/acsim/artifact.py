"""The compiled acsim artifact (``.acsim``): everything ``snncc run`` needs, in one file.

A zip holding ``graph.snnir`` (the canonical, pruned float graph, the same
bytes ``--target ir`` writes), ``artifact.json`` (format and version, the
hardware target in full -- so a user's own YAML travels with the artifact --,
the per-domain scales, the quantization report, the core mapping) and
``integers.npz`` (the integer weights and biases). The integers are derivable
from the graph and the scales; they are stored anyway and re-derived on load,
so an artifact written by a different quantizer is refused rather than run
with silently different numbers. Written atomically, like ``.snnir``.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from snncc.backends.acsim.program import Program
from snncc.diagnostics import Location, SnnccError
from snncc.ir.graph import Graph
from snncc.ir.serialize import DAMAGED, atomic_write, graph_from_bytes, graph_to_bytes, read_members
from snncc.lower import ChipLayer, LayerProgram
from snncc.passes.map_cores import Mapping, map_to_cores
from snncc.passes.quantize import LayerReport, QuantizedGraph, quantize
from snncc.targets import Target

MAGIC = "snncc-acsim"
ARTIFACT_VERSION = 1


@dataclass
class CompiledModel:
    """A quantized graph with its kernels prepared, its chip layers and their cores."""

    program: Program
    layers: list[ChipLayer]
    mapping: Mapping

    @property
    def qg(self) -> QuantizedGraph:
        return self.program.qg

    @property
    def lowered(self) -> LayerProgram:
        return self.program.lowered

    @property
    def target(self) -> Target:
        return self.program.qg.target

    @classmethod
    def build(cls, qg: QuantizedGraph) -> CompiledModel:
        """Prepare kernels and map to cores (raises if the model does not fit the target)."""
        program = Program(qg)
        layers = program.lowered.layers
        return cls(program, layers, map_to_cores(layers, qg.target))


def _integers(qg: QuantizedGraph) -> dict[str, np.ndarray]:
    out = {f"{k}/mantissa": w.mantissa for k, w in qg.weights.items()}
    out |= {f"{k}/bias_mant": n.bias_mant for k, n in qg.neurons.items()}
    return out


def save_artifact(compiled: CompiledModel, path: str | Path) -> None:
    qg = compiled.qg
    meta: dict[str, Any] = {
        "format": MAGIC,
        "version": ARTIFACT_VERSION,
        "target": qg.target.model_dump(mode="json"),
        "scales": {str(k): v for k, v in qg.scales.items()},
        "quantization": qg.report_json(),
        "mapping": compiled.mapping.to_json(),
    }
    graph_bytes = graph_to_bytes(qg.graph)
    ints = io.BytesIO()
    np.savez(ints, **_integers(qg))
    meta["digest"] = _digest(meta, graph_bytes, ints.getvalue())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("artifact.json", json.dumps(meta, indent=1))
        z.writestr("graph.snnir", graph_bytes)
        z.writestr("integers.npz", ints.getvalue())
    atomic_write(path, buf.getvalue())


def _digest(meta: dict[str, Any], graph_bytes: bytes, integers: bytes) -> str:
    """SHA-256 over everything the artifact holds: a compiled artifact is not for editing,
    and a changed cost, scale or threshold must not load as if it were what was compiled."""
    h = hashlib.sha256()
    fields = {k: v for k, v in meta.items() if k != "digest"}
    for part in (json.dumps(fields, sort_keys=True).encode(), graph_bytes, integers):
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()


def _bad(path: Path, why: str, code: str = "SNN-ART001") -> SnnccError:
    return SnnccError(code, f"{path} is not a usable acsim artifact: {why}",
                      location=Location(file=str(path)),
                      hint="re-create it with `snncc compile MODEL --target acsim -o OUT`")


def load_artifact(path: str | Path) -> CompiledModel:
    """Read an ``.acsim`` file, re-derive its integers and check them against the stored ones."""
    path = Path(path)
    if not path.exists():
        raise SnnccError("SNN-ART001", f"no such artifact: {path}", location=Location(file=str(path)),
                         hint="compile one with `snncc compile MODEL --target acsim -o OUT`")
    members = read_members(path.read_bytes(), ("artifact.json", "graph.snnir", "integers.npz"),
                           path, code="SNN-ART001")
    try:
        meta = json.loads(members["artifact.json"])
        graph_bytes = members["graph.snnir"]
        with np.load(io.BytesIO(members["integers.npz"]), allow_pickle=False) as npz:
            stored = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error) as e:
        raise _bad(path, f"unreadable ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != MAGIC:
        raise _bad(path, "it is not an acsim artifact")
    version = meta.get("version")
    if version != ARTIFACT_VERSION:
        raise _bad(path, f"it has artifact version {version}; this snncc reads version "
                         f"{ARTIFACT_VERSION}", code="SNN-ART002")
    if meta.get("digest") != _digest(meta, graph_bytes, members["integers.npz"]):
        raise _bad(path, "its contents do not match its digest (damaged, or edited after "
                         "compiling)", code="SNN-ART003")
    graph = graph_from_bytes(graph_bytes, f"{path}:graph.snnir")
    try:
        return _compiled_from(path, meta, graph, stored)
    except SnnccError:
        raise
    except DAMAGED as e:
        raise _bad(path, f"damaged ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''})") from None


def _compiled_from(path: Path, meta: dict[str, Any], graph: Graph,
                   stored: dict[str, np.ndarray]) -> CompiledModel:
    target = Target.model_validate(meta["target"])
    scales = {int(k): float(v) for k, v in meta["scales"].items()}
    qg = quantize(graph, target, scales=scales)
    derived = _integers(qg)
    if derived.keys() != stored.keys() or any(
            not np.array_equal(derived[k], stored[k]) for k in derived):
        raise _bad(path, "its integer weights differ from what this snncc derives from its "
                         "graph and scales (written by another version?)", code="SNN-ART003")
    qg.layers = [LayerReport(**r) for r in meta["quantization"]["layers"]]
    compiled = CompiledModel.build(qg)
    stored_map = Mapping.from_json(meta["mapping"])
    if stored_map != compiled.mapping:
        raise _bad(path, "its core mapping differs from what this snncc derives", code="SNN-ART003")
    return compiled

