"""The one place that turns a path into a graph: a table ``kind -> frontend``.

Each frontend is one :func:`register_frontend` call: its kind, the file suffixes
it claims, a cheap ``sniff`` of the file's first bytes (and, for zip files, its
member names), and the loader itself::

    @register_frontend("nir", suffixes=(".nir",), sniff=lambda p: p.head.startswith(HDF5))
    def _load_nir(path: Path, request: LoadRequest) -> Loaded: ...

A file's kind is decided by its content where a sniff recognizes it (a torch
zip or pickle, the ``.snnir`` container), otherwise by its suffix. ``snncc.load``
and every CLI command that reads a model go through :func:`load_path`.

Errors (:class:`~snncc.diagnostics.SnnccError`; the CLI prints one line, exit 2):

- ``SNN-IN001`` the file's kind is not one snncc reads (the hint lists the kinds);
- ``SNN-IN002`` options that cannot go together, or do not apply to the file's kind
  (``time_steps=0``, ``input_kind="rgb"``, ``time_steps`` for a ``.snnir`` graph
  traced with another T, both ``example_input`` and ``input_shape``, ...).

The loaders' own codes pass through unchanged (``SNN-LOAD*`` reading a model file,
``SNN-IR*`` reading a graph, ``SNN-FE*`` tracing, ``SNN-CLI002``/``SNN-CLI004`` for
a missing or mismatched example input).
"""

from __future__ import annotations

import math
import numbers
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from snncc.diagnostics import Location, SnnccError

if TYPE_CHECKING:
    import torch

    from snncc.ir.graph import Graph

INPUT_KINDS = ("analog", "spikes")
HEAD_BYTES = 64


@dataclass(frozen=True)
class LoadRequest:
    """What the caller asked for beyond the path (checked once, in :func:`load_path`)."""

    example_input: torch.Tensor | None = None
    input_shape: tuple[int, ...] | None = None
    time_steps: int | None = None  # for a single-step model whose input has no time axis
    input_kind: str = "analog"  # "spikes": event frames, so the first weight op is an AC
    trust: bool = False
    allow: tuple[str, ...] = ()
    arch: str | None = None
    dt: float | None = None  # a NIR file's time step (NIR stores none)


@dataclass
class Loaded:
    """A loaded graph, the kind of file it came from, and the example input it was traced
    with (None for a file that already holds a graph)."""

    graph: Graph
    kind: str
    example_input: torch.Tensor | None = None


@dataclass
class Probe:
    """What a sniff may look at: the path, the first bytes, and (lazily) a zip's member names."""

    path: Path
    head: bytes = b""

    @cached_property
    def zip_names(self) -> frozenset[str]:
        """The members of a zip file (its central directory only); empty if not a readable zip."""
        if not self.head.startswith(b"PK"):
            return frozenset()
        try:
            with zipfile.ZipFile(self.path) as z:
                return frozenset(z.namelist())
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
            return frozenset()  # a truncated file: the suffix decides, the loader explains


Loader = Callable[[Path, LoadRequest], Loaded]
Sniff = Callable[[Probe], bool]


@dataclass(frozen=True)
class Frontend:
    kind: str
    suffixes: tuple[str, ...]
    sniff: Sniff | None
    load: Loader = field(repr=False)

    def describe(self) -> str:
        return f"{self.kind} ({', '.join(self.suffixes)})"


FRONTENDS: dict[str, Frontend] = {}


def register_frontend(kind: str, suffixes: Sequence[str],
                      sniff: Sniff | None = None) -> Callable[[Loader], Loader]:
    """Register ``load(path, request) -> Loaded`` for files of ``kind`` (a decorator).

    ``suffixes`` are lower-case with the dot (``".pt"``); ``sniff`` recognizes the
    kind from a :class:`Probe` and must be cheap (it runs for every file opened)."""
    if kind in FRONTENDS:
        raise ValueError(f"frontend {kind!r} is already registered")
    claimed = {s for f in FRONTENDS.values() for s in f.suffixes}
    if clash := claimed.intersection(suffixes):
        raise ValueError(f"suffixes {sorted(clash)} are already claimed by another frontend")

    def decorate(load: Loader) -> Loader:
        FRONTENDS[kind] = Frontend(kind, tuple(s.lower() for s in suffixes), sniff, load)
        return load

    return decorate


def known_kinds() -> str:
    return "; ".join(f.describe() for f in FRONTENDS.values())


def detect_kind(path: str | Path) -> str | None:
    """The kind of the file at ``path``: by content where a sniff recognizes it, else by
    suffix; None if neither says."""
    path = Path(path)
    probe = Probe(path)
    if path.is_file():
        try:
            with path.open("rb") as file:
                probe.head = file.read(HEAD_BYTES)
        except OSError:
            pass  # unreadable: the suffix decides, and the loader reports why
    if probe.head:
        for f in FRONTENDS.values():
            if f.sniff is not None and f.sniff(probe):
                return f.kind
    suffix = path.suffix.lower()
    return next((f.kind for f in FRONTENDS.values() if suffix in f.suffixes), None)


def _bad_option(message: str, hint: str) -> SnnccError:
    return SnnccError("SNN-IN002", message, hint=hint)


def _positive_int(x: object) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool) and int(x) >= 1


def check_request(request: LoadRequest) -> None:
    """Options that are wrong whatever the file: one SnnccError (SNN-IN002) naming the option."""
    ts = request.time_steps
    if ts is not None and not _positive_int(ts):
        raise _bad_option(f"time steps must be a positive integer, got {ts!r}",
                          "--time-steps T (time_steps=T) runs a single-step model, whose example "
                          "input has no time axis, for T steps")
    if request.input_kind not in INPUT_KINDS:
        raise _bad_option(f"unknown input kind {request.input_kind!r}",
                          f"--input-kind / input_kind is one of: {', '.join(INPUT_KINDS)}")
    if request.example_input is not None and request.input_shape is not None:
        raise _bad_option("both an example input and an input shape were given",
                          "give one: the example input's shape is the input shape")
    if request.dt is not None and not (isinstance(request.dt, numbers.Real)
                                       and math.isfinite(request.dt) and request.dt > 0):
        raise _bad_option(f"time step dt={request.dt!r} is not a positive number",
                          "--dt (dt=) is the step a NIR file's neurons are integrated with, "
                          "e.g. 1e-4")
    shape = request.input_shape
    if shape is not None and (not shape or not all(_positive_int(d) for d in shape)):
        raise _bad_option(f"input shape {shape!r} is not a list of positive integers",
                          "e.g. input_shape=(4, 1, 1, 8, 8) for [T, B, C, H, W]")


def load_path(path: str | Path, request: LoadRequest = LoadRequest()) -> Loaded:
    """One way in: a model file or a graph file -> an IR graph, by the file's kind."""
    check_request(request)
    path = Path(path)
    kind = detect_kind(path)
    if kind is None:
        if not path.is_file():  # not there: the same message as for a model file
            what = f"no such model file: {path}" if not path.exists() else f"{path} is not a file"
            raise SnnccError("SNN-LOAD001", what, location=Location(file=str(path)),
                             hint="check the path (it is relative to the current directory)")
        raise SnnccError("SNN-IN001", f"{path} is not a kind of file snncc reads (neither its "
                         "contents nor its suffix say which)", location=Location(file=str(path)),
                         hint=f"known kinds: {known_kinds()}")
    if request.dt is not None and kind != "nir":
        raise _bad_option(f"--dt applies to a NIR file, not a {kind} file ({path})",
                          "leave out --dt: the model's own time step is in its neurons")
    return FRONTENDS[kind].load(path, request)


# --------------------------------------------------------------------------------------------
# The frontends (each one register_frontend call; the loaders import their frontend lazily,
# so the CLI starts without importing torch.fx for a .snnir file)
# --------------------------------------------------------------------------------------------

def _is_snnir(probe: Probe) -> bool:
    """The .snnir container (serialize.py): a zip of graph.json and tensors.npz."""
    return {"graph.json", "tensors.npz"} <= probe.zip_names


@register_frontend("snnir", suffixes=(".snnir",), sniff=_is_snnir)
def _load_snnir(path: Path, request: LoadRequest) -> Loaded:
    from snncc.ir.serialize import load_graph

    graph = load_graph(path)
    node = graph.nodes[graph.inputs[0]]
    compiled = node.type.shape
    given = (tuple(request.example_input.shape) if request.example_input is not None
             else request.input_shape)
    if given is not None and tuple(given) != compiled:
        raise SnnccError("SNN-CLI004", f"inputs have shape {tuple(given)} but {path} "
                         f"was compiled for {compiled}", location=Location(file=str(path)),
                         hint="give inputs of the compiled shape, or compile the model file")
    already = f"{path} holds a graph traced already"
    if request.time_steps is not None and request.time_steps != graph.time_steps:
        raise _bad_option(f"{already}, with T={graph.time_steps}, not {request.time_steps}",
                          "leave out --time-steps, or compile the model file with it")
    spikes = bool(getattr(node.attrs, "spikes", False))
    if request.input_kind == "spikes" and not spikes:
        raise _bad_option(f"{already}, for analog input", "leave out --input-kind, or compile "
                          "the model file with --input-kind spikes")
    if request.arch is not None:
        raise _bad_option(f"{already}; --arch applies to a state_dict file",
                          "leave out --arch")
    return Loaded(graph, "snnir")


def _is_torch(probe: Probe) -> bool:
    """A torch.save file: a zip archive with a data.pkl (PyTorch >= 1.6), or a pickle stream
    (protocol 2+ starts with 0x80: the older torch.save format, checked by the loader)."""
    if probe.head.startswith(b"\x80"):
        return True
    return any(n == "data.pkl" or n.endswith("/data.pkl") for n in probe.zip_names)


def trace_with(module: torch.nn.Module, example: torch.Tensor, *, time_steps: int | None,
               input_kind: str) -> Graph:
    """The torch frontend's trace, called in one place for every loader and the bench."""
    from snncc.frontends.torch import trace

    return trace(module, example, time_steps=time_steps, input_kind=input_kind)


@register_frontend("torch", suffixes=(".pt", ".pth", ".ckpt", ".pkl", ".tar"), sniff=_is_torch)
def _load_torch(path: Path, request: LoadRequest) -> Loaded:
    import torch

    from snncc.loading import load_model

    loaded = load_model(path, trust=request.trust, allow=list(request.allow), arch=request.arch)
    if request.example_input is not None:
        example = request.example_input
    elif request.input_shape is not None:  # only its shape is read: no memory for data
        try:
            example = torch.empty(request.input_shape, device="meta")
        except (RuntimeError, OverflowError) as e:
            raise SnnccError("SNN-IN002", f"input shape {tuple(request.input_shape)} cannot "
                             f"be a tensor: {str(e).splitlines()[0]}",
                             hint="give the model's real input shape, e.g. 4,1,1,8,8") from None
    elif loaded.example_input is not None:
        example = loaded.example_input
    else:
        raise SnnccError("SNN-CLI002", f"{path} carries no example input",
                         location=Location(file=str(path)),
                         hint="give its shape with --input-shape (input_shape= in Python), "
                         "e.g. 4,1,1,8,8 for [T,B,C,H,W]")
    graph = trace_with(loaded.module.eval(), example, time_steps=request.time_steps,
                       input_kind=request.input_kind)
    return Loaded(graph, "torch", example)


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _is_nir(probe: Probe) -> bool:
    """An HDF5 file (NIR's container; its graph is checked by the loader)."""
    return probe.head.startswith(HDF5_SIGNATURE)


@register_frontend("nir", suffixes=(".nir",), sniff=_is_nir)
def _load_nir(path: Path, request: LoadRequest) -> Loaded:
    from snncc.frontends.nir import load_nir

    if request.example_input is not None:
        shape: tuple[int, ...] | None = tuple(request.example_input.shape)
    else:
        shape = request.input_shape
    if request.arch is not None:
        raise _bad_option(f"{path} is a NIR graph; --arch applies to a state_dict file",
                          "leave out --arch")
    if not path.is_file():
        raise SnnccError("SNN-LOAD001", f"no such model file: {path}",
                         location=Location(file=str(path)),
                         hint="check the path (it is relative to the current directory)")
    graph = load_nir(path, dt=request.dt, time_steps=request.time_steps, input_shape=shape,
                     spikes=request.input_kind == "spikes")
    return Loaded(graph, "nir", request.example_input)


@register_frontend("onnx", suffixes=(".onnx",))
def _load_onnx(path: Path, request: LoadRequest) -> Loaded:
    from snncc.frontends.onnx import load_onnx

    if request.arch is not None or request.time_steps is not None:
        raise _bad_option(f"{path} is an ONNX graph of fixed shape; --arch and --time-steps "
                          "do not apply", "leave them out")
    if not path.is_file():
        raise SnnccError("SNN-LOAD001", f"no such model file: {path}",
                         location=Location(file=str(path)),
                         hint="check the path (it is relative to the current directory)")
    graph = load_onnx(path, spikes=True if request.input_kind == "spikes" else None)
    given = (tuple(request.example_input.shape) if request.example_input is not None
             else request.input_shape)
    compiled = graph.nodes[graph.inputs[0]].type.shape
    if given is not None and tuple(given) != compiled:
        raise SnnccError("SNN-CLI004", f"inputs have shape {tuple(given)} but {path} "
                         f"was exported for {compiled}", location=Location(file=str(path)),
                         hint="give inputs of the exported shape, or export it again")
    return Loaded(graph, "onnx", request.example_input)
