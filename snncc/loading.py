"""The one place that turns a model file into a ``torch.nn.Module``.

A model file is a pickle, and unpickling runs whatever callables the file
names. snncc compiles models that people download, so nothing in a file runs
as code unless the user says ``trust=True`` (``--trust``). Otherwise:

1. The globals the file names are read from the pickle's *opcodes*
   (``GLOBAL``/``INST``, and ``STACK_GLOBAL`` with the strings it takes from the
   stack) without unpickling anything.
2. Each global is vetted against an allowlist *before* its module is imported,
   because importing a module runs that module's top-level code:

   - what PyTorch's ``weights_only`` unpickler already accepts (tensors,
     storages, dtypes, devices, ``OrderedDict``, ...), plus a few inert
     extras (``slice``, ``frozenset``, ``range``, NumPy scalars and arrays);
   - ``torch.nn``: classes, and functions from ``torch.nn.functional`` and
     ``torch.nn.init`` (other ``torch.nn`` functions register global hooks);
   - ``spikingjelly`` and ``snncc``: ``nn.Module``, ``autograd.Function`` and
     ``Enum`` subclasses (constructors the file may call), and SpikingJelly's
     surrogate/functional functions; never SpikingJelly's examples, datasets
     or plotting modules, some of which train or download when imported;
   - module prefixes the user names in ``allow`` (``--allow``): anything
     defined there, because the user vouched for that code.

   A global must also be named where it is defined (``obj.__module__`` and
   ``__qualname__``): a real pickle always does that, so an alias such as
   ``snncc.something.os`` can only come from a crafted file. ``builtins``
   beyond the inert extras, ``os``, ``subprocess``, ``torch.serialization``
   and similar code runners are refused even when ``allow`` names them.
3. The file is then read by ``torch.load(weights_only=True)`` with exactly the
   vetted objects in ``torch.serialization.safe_globals``, so PyTorch itself
   enforces the same list while unpickling.

Every failure is an :class:`~snncc.diagnostics.SnnccError` with a code, the
path, and a hint (the CLI prints one line and exits 2):

- ``SNN-LOAD001`` the file is missing or unreadable;
- ``SNN-LOAD002`` not a PyTorch file, truncated, corrupt, or in a format the
  safe reader cannot read (old pre-1.6 whole-model files, pickle protocol 4);
- ``SNN-LOAD003`` the file needs a global outside the allowlist;
- ``SNN-LOAD004`` the file holds something other than a model (a list, a
  state_dict without ``arch``, a TorchScript archive);
- ``SNN-LOAD005`` the ``arch`` factory cannot be imported or called;
- ``SNN-LOAD006`` the state_dict does not fit the ``arch`` model;
- ``SNN-LOAD007`` an allowed global cannot be imported (the class is missing
  from the installed version, or its package is not on the path).
"""

from __future__ import annotations

import _compat_pickle
import enum
import importlib
import inspect
import io
import os
import pickletools
import struct
import sys
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from snncc.diagnostics import Location, SnnccError

SAVE_HINT = "save the model with torch.save(model, path)"
TRUST_ONLY = ("only --trust loads it, and that runs arbitrary code from this file: use it only "
              "for a file you made yourself")

# Globals outside PyTorch's weights_only defaults that are inert data constructors and that
# ordinary module attributes pickle to (slices, frozensets, ranges, NumPy scalars/arrays).
EXTRA_SAFE = (
    "builtins.slice", "builtins.frozenset", "builtins.range",
    "numpy.core.multiarray.scalar", "numpy.core.multiarray._reconstruct", "numpy.ndarray",
    "numpy.dtype",
)
# Modules whose globals run code, read files or import things; `allow` cannot open these.
NEVER = (
    "builtins", "__builtin__", "os", "posix", "nt", "sys", "subprocess", "shutil", "socket",
    "ctypes", "importlib", "runpy", "pickle", "_pickle", "marshal", "code", "codeop", "pty",
    "multiprocessing", "io", "_io", "pathlib", "tempfile", "webbrowser", "urllib", "http", "pdb",
    "signal", "_thread", "threading", "asyncio", "operator", "functools", "types", "copyreg",
    "torch.serialization", "torch.hub", "torch.jit", "torch.package", "torch.utils.cpp_extension",
    "torch._C", "torch.ops", "torch._ops", "torch.fx", "torch._dynamo", "torch.compiler",
    "numpy.lib.npyio", "numpy.load", "numpy.f2py", "numpy.distutils", "numpy.testing",
)
# Packages whose model classes load without --allow (see the module docstring for what kinds).
BUILTIN_PACKAGES = ("torch.nn", "spikingjelly", "snncc")
# Parts of SpikingJelly that are scripts or data tools, not model code: importing some of
# them starts training or downloads, so a file may not name them without --allow.
SPIKINGJELLY_NOT_MODELS = ("examples", "datasets", "visualizing")
# Modules whose plain functions a model may hold as attributes (e.g. `self.act = F.gelu`).
FUNCTION_MODULES = ("torch.nn.functional", "torch.nn.init")
# Keys under which checkpoints commonly keep the model or its weights.
MODEL_KEYS = ("model", "state_dict", "model_state_dict")


@dataclass
class LoadedModel:
    """A model read from a file: the module, the example input the file carried (if any,
    so the CLI can trace without --input-shape), and where it came from (for messages)."""

    module: torch.nn.Module
    example_input: torch.Tensor | None
    source: str


# --------------------------------------------------------------------------------------------
# Reading the pickle's globals without unpickling
# --------------------------------------------------------------------------------------------

_STRING_OPS = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING",
                         "BINSTRING", "SHORT_BINSTRING"})


def _compat_maps() -> tuple[Mapping[tuple[str, str], tuple[str, str]], Mapping[str, str]]:
    """The Python 2 -> 3 name mapping PyTorch's unpickler applies to GLOBAL (torch.save writes
    protocol 2, so ``set`` is pickled as ``__builtin__ set``); use torch's copy so both agree."""
    utils = torch._utils
    return (getattr(utils, "NAME_MAPPING", _compat_pickle.NAME_MAPPING),
            getattr(utils, "IMPORT_MAPPING", _compat_pickle.IMPORT_MAPPING))


class PickleScanError(ValueError):
    """The opcode stream is malformed or truncated; ``pos`` is how far it read cleanly."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.pos = pos


def scan_globals(data: bytes) -> tuple[list[tuple[str, str]], bool]:
    """The ``(module, qualname)`` globals a pickle names, read from its opcodes.

    Returns the globals in order of appearance, whether some global's name could not be
    read statically (a STACK_GLOBAL or EXT opcode whose operands are not plain strings, which
    only a crafted file has). For STACK_GLOBAL we
    keep a shadow of what each opcode pushed: a string for string pushes and memo gets of
    memoized strings, ``None`` for anything else. MEMOIZE/PUT/FRAME do not change the stack, so
    the two values just before STACK_GLOBAL are its operands exactly when both are strings;
    anything else makes the name unreadable, which is refused rather than guessed.
    Raises PickleScanError if the opcode stream is malformed or truncated.
    """
    found: list[tuple[str, str] | None] = []
    pushed: list[str | None] = []
    memo: dict[int, str | None] = {}
    pos = 0
    try:
        for op, arg, at in pickletools.genops(data):
            pos = at if at is not None else pos
            _scan_op(op.name, arg, found, pushed, memo)
    except ValueError as e:
        raise PickleScanError(str(e), pos) from None
    opaque = any(g is None for g in found)
    return [g for g in found if g is not None], opaque


def _scan_op(name: str, arg: Any, found: list[tuple[str, str] | None], pushed: list[str | None],
             memo: dict[int, str | None]) -> None:
    """One opcode's effect on the shadow stack and memo; a global is appended to ``found``
    (``None`` for one whose name cannot be read statically)."""
    if name in _STRING_OPS:
        pushed.append(arg if isinstance(arg, str) else None)
    elif name in ("FRAME", "PROTO"):  # framing and headers leave the stack as it was
        pass
    elif name == "MEMOIZE":
        memo[len(memo)] = pushed[-1] if pushed else None
    elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
        memo[int(arg)] = pushed[-1] if pushed else None  # type: ignore[arg-type]
    elif name in ("BINGET", "LONG_BINGET", "GET"):
        pushed.append(memo.get(int(arg)))  # type: ignore[arg-type]
    elif name in ("GLOBAL", "INST"):
        name_map, import_map = _compat_maps()
        module, _, qual = str(arg).partition(" ")
        if (module, qual) in name_map:
            module, qual = name_map[(module, qual)]
        elif module in import_map:
            module = import_map[module]
        found.append((module, qual))
        pushed.append(None)
    elif name == "STACK_GLOBAL":
        operands = pushed[-2:]
        if len(operands) == 2 and operands[0] is not None and operands[1] is not None:
            found.append((operands[0], operands[1]))
        else:
            found.append(None)
        pushed.append(None)
    elif name in ("EXT1", "EXT2", "EXT4"):
        found.append(None)
        pushed.append(None)
    else:
        pushed.append(None)


def pickle_globals(data: bytes) -> list[str]:
    """The ``module.name`` globals a pickle references, read from its opcodes (never by
    unpickling); names are given as Python 3 spells them (``builtins.set``)."""
    return [f"{m}.{n}" for m, n in scan_globals(data)[0]]


# --------------------------------------------------------------------------------------------
# Vetting globals
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _torch_default_globals() -> frozenset[str]:
    """Names PyTorch's weights_only unpickler accepts by itself; they need no vetting."""
    try:
        from torch import _weights_only_unpickler as wou

        return frozenset(wou._get_allowed_globals())
    except (ImportError, AttributeError):  # a torch without it: list the usual ones
        return frozenset({"collections.OrderedDict", "torch.nn.parameter.Parameter",
                          "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
                          "torch.Size", "torch.device", "_codecs.encode", "builtins.set",
                          "torch.FloatStorage", "torch.LongStorage"})


def _within(dotted: str, prefix: str) -> bool:
    """Whether ``dotted`` is ``prefix`` or inside it, by whole name components."""
    prefix = prefix.strip().rstrip(".")
    return bool(prefix) and (dotted == prefix or dotted.startswith(prefix + "."))


def _display(module: str, name: str) -> str:
    """How a global is named in messages: ``os.system`` rather than ``posix.system``."""
    shown = f"{module}.{name}"
    return f"os.{name} ({shown})" if module in ("posix", "nt") else shown


@contextmanager
def _user_import_path() -> Iterator[None]:
    """Let user-named modules (``allow``, ``arch``, trusted files) be found in the current
    directory, as ``python -m`` would; the snncc console script does not put it on the path.
    The directory goes *last*, so it can never shadow an installed package."""
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.append(cwd)
    try:
        yield
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


@dataclass
class _Refusal:
    name: str
    why: str
    allowable: bool  # whether --allow could admit it (else only --trust)
    module: str


def _vet(module: str, name: str, allow: Sequence[str]) -> tuple[Any, _Refusal | None]:
    """Decide on one global; import its module only once the name is allowed.

    Returns ``(object, None)`` to pass to ``safe_globals``, ``(None, None)`` for PyTorch's
    own defaults, or ``(None, refusal)``; ImportError if an allowed module is not importable.
    """
    full = f"{module}.{name}"
    shown = _display(module, name)
    if full in _torch_default_globals():
        return None, None
    if full in EXTRA_SAFE:
        return getattr(importlib.import_module(module), name), None
    if module == "torch._C._nn" and getattr(torch.nn.functional, name, None) is \
            getattr(torch._C._nn, name, object()):
        # F.gelu, F.linear, ... are C functions that pickle under torch._C._nn
        return getattr(torch._C._nn, name), None
    if any(_within(module, p) for p in NEVER):
        return None, _Refusal(shown, "can run code or touch files", False, module)
    if "__main__" in module.split("."):
        # importing a __main__ module runs it (snncc.cli.__main__ would run the CLI)
        return None, _Refusal(shown, "is in a __main__ module (a script), which runs when "
                              "imported", False, module)
    if "." in name:  # protocol-2 pickles never name nested attributes
        return None, _Refusal(shown, "is a nested attribute, not a top-level class", False,
                              module)
    by_user = any(_within(full, a) for a in allow)
    builtin = next((p for p in BUILTIN_PACKAGES if _within(module, p)), None)
    if not by_user and builtin is None:
        return None, _Refusal(shown, "is outside the allowlist", True, module)
    if not by_user and builtin == "spikingjelly" and \
            any(part in SPIKINGJELLY_NOT_MODELS for part in module.split(".")):
        return None, _Refusal(shown, "is in SpikingJelly's scripts/data tools, not its models",
                              True, module)
    if by_user:
        with _user_import_path():
            mod = importlib.import_module(module)
    else:
        mod = importlib.import_module(module)
    obj = getattr(mod, name, None)
    if obj is None:
        raise ImportError(f"{module} has no attribute {name}")
    if getattr(obj, "__module__", None) != module or getattr(obj, "__qualname__", None) != name:
        home = f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', '?')}"
        return None, _Refusal(shown, f"is an alias of {home}", False, module)
    kind = "class" if isinstance(obj, type) else "function" if callable(obj) else "object"
    if by_user:  # --allow admits model classes, never callables that act
        if _model_class(obj):
            return obj, None
        return None, _Refusal(shown, f"is a {kind}, and --allow admits only model classes "
                              "(nn.Module, Enum, autograd.Function subclasses)", False, module)
    if _builtin_kind_ok(obj, module, builtin or ""):
        return obj, None
    return None, _Refusal(shown, f"is a {kind}; only model classes load from {builtin}",
                          isinstance(obj, type), module)


def _model_class(obj: Any) -> bool:
    """What a model file may construct: module, enum and autograd-function classes,
    whose construction builds a model and does nothing else."""
    return isinstance(obj, type) and issubclass(
        obj, (torch.nn.Module, torch.autograd.Function, enum.Enum))


def _builtin_kind_ok(obj: Any, module: str, package: str) -> bool:
    """What a file may name from torch.nn / spikingjelly / snncc without --allow: things a
    model holds. Constructors of module classes are harmless; arbitrary functions are not
    (some register global hooks, build models that download weights, or write files)."""
    if isinstance(obj, type):
        if package == "torch.nn":
            return True
        return issubclass(obj, (torch.nn.Module, torch.autograd.Function, enum.Enum))
    if not inspect.isfunction(obj) and not inspect.isbuiltin(obj):
        return False
    if package == "torch.nn":
        return module in FUNCTION_MODULES
    if package == "spikingjelly":
        return module.rsplit(".", 1)[-1] in ("surrogate", "functional")
    return False


def _safe_objects(path: Path, globals_: list[tuple[str, str]], opaque: bool,
                  allow: Sequence[str]) -> list[tuple[Any, str]]:
    """Vet every global the file names; refuse the file (SNN-LOAD003/007) or return the
    ``(object, name)`` pairs for ``torch.serialization.safe_globals``."""
    loc = Location(file=str(path))
    refused: list[_Refusal] = []
    missing: list[str] = []
    safe: dict[str, tuple[Any, str]] = {}
    for module, name in dict.fromkeys(globals_):
        try:
            obj, refusal = _vet(module, name, allow)
        except Exception as e:  # importing an allowed module failed, or it lacks the name
            missing.append(f"{module}.{name} ({type(e).__name__}: {e})")
            continue
        if refusal is not None:
            refused.append(refusal)
        elif obj is not None:
            safe[f"{module}.{name}"] = (obj, f"{module}.{name}")
            if f"{module}.{name}" == "numpy.dtype":  # BUILD needs the concrete dtype classes
                import numpy as np

                for cls in vars(getattr(np, "dtypes", object)).values():
                    if isinstance(cls, type) and issubclass(cls, np.dtype):
                        safe[f"{cls.__module__}.{cls.__qualname__}"] = (
                            cls, f"{cls.__module__}.{cls.__qualname__}")
    if opaque:
        refused.append(_Refusal("<a global whose name is computed while unpickling>",
                                "cannot be checked before it runs", False, ""))
    if refused:
        names = [r.name for r in refused]
        allowable = [r for r in refused if r.allowable]
        if len(allowable) == len(refused):
            modules = list(dict.fromkeys(r.module for r in refused))
            hint = ("if these are your model's own classes, pass "
                    + " ".join(f"--allow {m}" for m in modules)
                    + " (it admits nn.Module/Enum classes only, never functions); "
                    "anything else needs --trust, which runs code from this file")
        elif any(r.module == "__main__" for r in refused):
            hint = ("move the class into an importable module and save the model again; "
                    "or " + TRUST_ONLY)
        else:
            hint = TRUST_ONLY
        raise SnnccError(
            "SNN-LOAD003",
            f"{path} needs {', '.join(names[:6])}{' ...' if len(names) > 6 else ''}, which "
            "snncc will not load from a file without your permission",
            location=loc, hint=hint, notes=[f"{r.name} {r.why}" for r in refused])
    if missing:
        raise SnnccError(
            "SNN-LOAD007", f"{path} needs {', '.join(missing[:3])}, which cannot be imported",
            location=loc,
            hint="install the package (and version) the model was saved with, or run from "
            "the directory that holds the model's code")
    return list(safe.values())


# --------------------------------------------------------------------------------------------
# Reading the file
# --------------------------------------------------------------------------------------------

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


@dataclass
class _Pickle:
    data: bytes  # the main pickle's bytes
    offset: int | None  # where those bytes start in the file, if known
    legacy: bool


def _corrupt(path: Path, what: str, offset: int | None) -> SnnccError:
    return SnnccError("SNN-LOAD002", f"{path} {what}", location=Location(file=str(path),
                      offset=offset),
                      hint="the file is damaged or incomplete: copy it again, or " + SAVE_HINT)


def _read_pickle(path: Path) -> _Pickle:
    """The model pickle inside a torch.save file: ``data.pkl`` in the zip archive PyTorch
    has written since 1.6, or the fourth pickle of the older stream format."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(8)
    except OSError as e:
        raise SnnccError("SNN-LOAD001", f"cannot read {path}: {e.strerror or e}",
                         location=Location(file=str(path)),
                         hint="check the file's permissions") from None
    if not head:
        raise _corrupt(path, "is empty", 0)
    if head.startswith(b"PK"):
        return _read_zip(path, size)
    if head.startswith(b"\x80"):  # a bare pickle: the pre-1.6 format, or not torch at all
        return _read_legacy(path, size)
    raise SnnccError(
        "SNN-LOAD002", f"{path} is not a PyTorch model file (it starts with {head[:8]!r}, "
        "not a zip archive or a pickle)", location=Location(file=str(path), offset=0),
        hint=SAVE_HINT + "; ONNX and NIR files have their own frontends")


def _read_zip(path: Path, size: int) -> _Pickle:
    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:  # no central directory: it is at the end, so cut off
        raise _corrupt(path, f"is truncated or corrupt: it starts like a zip archive (the "
                       f"PyTorch format) but its directory is missing ({e}); the file ends at "
                       f"byte {size}", size) from None
    except (OSError, ValueError, NotImplementedError) as e:
        raise _corrupt(path, f"is a corrupt zip archive: {e}", None) from None
    with z:
        names = z.namelist()
        if any(n.endswith("constants.pkl") for n in names) or any("/code/" in n for n in names):
            raise SnnccError(
                "SNN-LOAD004", f"{path} is a TorchScript archive (torch.jit.save), not a "
                "torch.save file", location=Location(file=str(path)),
                hint="save the nn.Module itself with torch.save(model, path); snncc does not "
                "run TorchScript code from files")
        pkl = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
        if not pkl:
            raise SnnccError(
                "SNN-LOAD002", f"{path} is a zip archive but not a PyTorch file (no data.pkl "
                "inside)", location=Location(file=str(path)), hint=SAVE_HINT)
        info = z.getinfo(min(pkl, key=len))
        offset = _member_offset(path, info)
        try:
            data = z.read(info)
            damaged = z.testzip()  # every member's CRC: a flipped byte in a weight storage
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError,
                zlib.error) as e:
            raise _corrupt(path, f"is corrupt: {info.filename} cannot be read ({e})",
                           offset) from None
        if damaged is not None:
            raise _corrupt(path, f"is corrupt: {damaged} fails its CRC check (a damaged "
                           "weight storage)", _member_offset(path, z.getinfo(damaged)))
    return _Pickle(data, offset, legacy=False)


def _member_offset(path: Path, info: zipfile.ZipInfo) -> int | None:
    """Where a stored (uncompressed) zip member's bytes start in the file, so an error inside
    the pickle can be reported as a file offset."""
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    try:
        with path.open("rb") as f:
            f.seek(info.header_offset)
            header = f.read(30)
    except OSError:
        return None
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        return None
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_len + extra_len


def _read_legacy(path: Path, size: int) -> _Pickle:
    """The pre-1.6 format is a stream of pickles: magic number, protocol, system info, the
    object, then storage keys and raw data. Anything else starting with a pickle opcode is a
    plain pickle, not a torch file."""
    raw = path.read_bytes()
    stream = io.BytesIO(raw)
    start = 0
    try:
        first = list(pickletools.genops(stream))
        magic = next((a for op, a, _ in first if op.name == "LONG1"), None)
        if magic != _LEGACY_MAGIC:
            raise SnnccError("SNN-LOAD002", f"{path} is a plain pickle, not a file written by "
                             "torch.save", location=Location(file=str(path), offset=0),
                             hint=SAVE_HINT)
        for _ in range(2):  # protocol version, system info
            list(pickletools.genops(stream))
        start = stream.tell()
        list(pickletools.genops(stream))  # the object itself: make sure it is complete
    except ValueError as e:
        raise _corrupt(path, f"is truncated or corrupt ({e}; the file ends at byte {size})",
                       size) from None
    return _Pickle(raw[start:stream.tell()], start, legacy=True)


def _torch_reason(e: BaseException) -> str:
    """The useful line of a torch.load error (the weights_only wrapper adds a long preamble)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if "WeightsUnpickler error:" in line:
            rest = line.split("WeightsUnpickler error:", 1)[1].strip()
            return rest or (lines[i + 1] if i + 1 < len(lines) else line)
    return lines[0] if lines else type(e).__name__


def _torch_load(path: Path, pkl: _Pickle, safe: list[tuple[Any, str]] | None) -> Any:
    """torch.load, safe (``safe`` is the vetted allowlist) or trusted (``safe is None``), with
    its failures turned into diagnostics."""
    loc = Location(file=str(path))
    try:
        if safe is None:
            with _user_import_path():
                return torch.load(path, weights_only=False, map_location="cpu")
        allowed: list[Any] = list(safe)
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, weights_only=True, map_location="cpu")
    except (ImportError, AttributeError) as e:
        if safe is not None:  # vetted objects are already imported: this is a damaged file
            raise SnnccError("SNN-LOAD002", f"cannot read {path}: {_torch_reason(e)}",
                             location=loc, hint="the file may be damaged: copy it again, or "
                             + SAVE_HINT) from None
        # trusted: the file's own class is not importable here
        raise SnnccError("SNN-LOAD007", f"{path} needs code that cannot be imported: {e}",
                         location=loc,
                         hint="install the package the model was saved with, or run from the "
                         "directory that holds the model's code") from None
    except Exception as e:
        reason = _torch_reason(e)
        if "Unsupported global" in reason:  # our scan should have caught it; never load it
            raise SnnccError("SNN-LOAD003", f"{path}: {reason}", location=loc,
                             hint=TRUST_ONLY) from None
        if pkl.legacy and "persistent_load" in reason:
            raise SnnccError(
                "SNN-LOAD002", f"{path} holds a whole model in PyTorch's pre-1.6 format, "
                "which stores the model's source code and cannot be read safely",
                location=loc, hint="load it once with a trusted torch and save it again "
                "with torch.save(model, path); or " + TRUST_ONLY) from None
        if "Unsupported operand" in reason:
            raise SnnccError(
                "SNN-LOAD002", f"{path} uses pickle features the safe reader does not "
                f"support ({reason})", location=loc,
                hint="save it with torch.save's default pickle_protocol; or "
                + TRUST_ONLY) from None
        raise SnnccError("SNN-LOAD002", f"cannot read {path}: {reason}", location=loc,
                         hint="the file may be damaged: copy it again, or " + SAVE_HINT
                         + (" (or pass --trust if you made it)" if safe is not None else ""),
                         ) from None


# --------------------------------------------------------------------------------------------
# What the file holds
# --------------------------------------------------------------------------------------------


def _is_state_dict(obj: Any) -> bool:
    """A mapping of parameter names to tensors (``extra_state`` entries may be anything)."""
    return (isinstance(obj, Mapping) and len(obj) > 0
            and all(isinstance(k, str) for k in obj)
            and all(isinstance(v, torch.Tensor) or str(k).endswith("_extra_state")
                    for k, v in obj.items()))


def _describe(obj: Any) -> str:
    """``a list``, ``an int``, ``a dict with keys 'a', 'b'``: what a file held, for messages."""
    kind = type(obj).__name__
    article = "an" if kind[:1].lower() in "aeiou" else "a"
    if isinstance(obj, Mapping):
        keys = ", ".join(repr(k) for k in list(obj)[:5])
        return f"{article} {kind} with keys {keys}{', ...' if len(obj) > 5 else ''}"
    return f"{article} {kind}"


def _example(path: Path, obj: Mapping[str, Any]) -> torch.Tensor | None:
    example = obj.get("example_input")
    if example is None or isinstance(example, torch.Tensor):
        return example
    raise SnnccError("SNN-LOAD004", f"{path}: example_input is {_describe(example)}, not a "
                     "tensor", location=Location(file=str(path)),
                     hint="save {'model': model, 'example_input': x} with x a torch.Tensor")


def _build_arch(path: Path, arch: str) -> torch.nn.Module:
    """Import ``package.module:factory`` and call it with no arguments. The user named it, so
    it is imported whatever the allowlist says."""
    loc = Location(file=str(path))
    hint = ("give --arch package.module:factory, a function that takes no arguments and "
            "returns the nn.Module the weights belong to")
    mod_name, colon, attr = arch.partition(":")
    if not colon or not mod_name or not attr:
        raise SnnccError("SNN-LOAD005", f"--arch {arch!r} (to build the model for {path}) is "
                         "not of the form module:factory",
                         location=loc, hint=hint)
    try:
        with _user_import_path():
            factory: Any = importlib.import_module(mod_name)
        for part in attr.split("."):
            factory = getattr(factory, part)
    except Exception as e:
        raise SnnccError("SNN-LOAD005", f"cannot import --arch {arch} ({type(e).__name__}: "
                         f"{e}) to build the model for {path}", location=loc,
                         hint=hint) from None
    try:
        model = factory()
    except Exception as e:
        raise SnnccError("SNN-LOAD005", f"--arch {arch} failed when called with no arguments "
                         f"to build the model for {path} ({type(e).__name__}: {e})",
                         location=loc, hint=hint) from None
    if not isinstance(model, torch.nn.Module):
        raise SnnccError("SNN-LOAD005", f"--arch {arch} returned {_describe(model)}, not an "
                         f"nn.Module to load the weights in {path} into", location=loc, hint=hint)
    return model


def _load_weights(path: Path, arch: str, state: Mapping[str, Any]) -> torch.nn.Module:
    model = _build_arch(path, arch)
    loc = Location(file=str(path))
    hint = f"use the factory the weights were trained with, or check that {arch} builds it " \
           "with the same configuration"
    own = set(model.state_dict())
    missing, unexpected = sorted(own - set(state)), sorted(set(state) - own)
    if missing or unexpected:
        def some(keys: list[str]) -> str:
            return ", ".join(keys[:8]) + (f" (+{len(keys) - 8} more)" if len(keys) > 8 else "")

        parts = ([f"missing {len(missing)} key(s): {some(missing)}"] if missing else []) + \
                ([f"unexpected {len(unexpected)} key(s): {some(unexpected)}"] if unexpected
                 else [])
        raise SnnccError("SNN-LOAD006", f"the state_dict in {path} does not fit --arch {arch}: "
                         + "; ".join(parts), location=loc, hint=hint)
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError, TypeError) as e:  # shapes differ
        detail = "; ".join(line.strip() for line in str(e).splitlines()[1:4] if line.strip())
        raise SnnccError("SNN-LOAD006", f"the state_dict in {path} does not fit --arch {arch}: "
                         f"{detail or e}", location=loc, hint=hint) from None
    return model


def _to_model(path: Path, obj: Any, arch: str | None) -> LoadedModel:
    """Accept a module, ``{"model": module, "example_input": x}``, or a state_dict (bare or
    under ``model``/``state_dict``/``model_state_dict``) with ``arch``."""
    src = str(path)
    if isinstance(obj, torch.nn.Module):
        return LoadedModel(obj, None, src)
    state: Mapping[str, Any] | None = None
    example = None
    if isinstance(obj, Mapping):
        inner = next((obj[k] for k in MODEL_KEYS if k in obj), None)
        if isinstance(inner, torch.nn.Module):
            return LoadedModel(inner, _example(path, obj), src)
        if _is_state_dict(inner):
            state, example = inner, _example(path, obj)
        elif _is_state_dict(obj):
            state = obj
    if state is None:
        raise SnnccError("SNN-LOAD004", f"{path} holds {_describe(obj)}, not an nn.Module",
                         location=Location(file=src),
                         hint=SAVE_HINT + ", or {'model': model, 'example_input': x}")
    if arch is None:
        raise SnnccError("SNN-LOAD004", f"{path}: this file holds a state_dict (weights "
                         "without the model); pass --arch module:factory",
                         location=Location(file=src),
                         hint="--arch package.module:factory names a function that builds the "
                         "model with no arguments; the weights are then loaded into it")
    return LoadedModel(_load_weights(path, arch, state), example, src)


def load_model(path: str | Path, *, trust: bool = False, allow: Sequence[str] = (),
               arch: str | None = None) -> LoadedModel:
    """Read a model file without running code from it (unless ``trust``).

    Accepts a ``torch.save(model)`` file, a dict ``{"model": model, "example_input": x}``,
    or a state_dict together with ``arch="package.module:factory"``. ``allow`` names module
    prefixes whose classes and functions the file may use beyond torch.nn, SpikingJelly and
    snncc (for the user's own model code). Raises SnnccError (SNN-LOAD001..007) otherwise.
    """
    path = Path(path)
    if not path.exists():
        raise SnnccError("SNN-LOAD001", f"no such model file: {path}",
                         location=Location(file=str(path)),
                         hint="check the path (it is relative to the current directory)")
    if not path.is_file():
        raise SnnccError("SNN-LOAD001", f"{path} is not a file",
                         location=Location(file=str(path)), hint="give the model file itself")
    pkl = _read_pickle(path)
    safe: list[tuple[Any, str]] | None = None
    if not trust:
        try:
            globals_, opaque = scan_globals(pkl.data)
        except PickleScanError as e:  # malformed or cut-short opcode stream
            at = None if pkl.offset is None else pkl.offset + e.pos
            raise _corrupt(path, f"holds a corrupt pickle ({e})", at) from None
        safe = _safe_objects(path, globals_, opaque, allow)
    obj = _torch_load(path, pkl, safe)
    return _to_model(path, obj, arch)
