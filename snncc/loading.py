"""The one place that turns a model file into a torch module.

Nothing in a file runs as code unless the user says `trust=True`: a
`torch.save(model)` file is read with PyTorch's `weights_only` unpickler, and
the globals it may name are checked against an allowlist (torch.nn,
SpikingJelly, snncc, plus module prefixes the user allows) *before* anything
is unpickled, by reading the pickle's opcodes. A file that names anything else
is refused with the name of the global and the flag that would allow it.
"""

from __future__ import annotations

import importlib
import pickletools
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from snncc.diagnostics import Location, SnnccError

# Module prefixes whose classes and functions a model file may name.
ALLOWED_PREFIXES = ("torch.nn.", "torch._utils.", "torch.", "spikingjelly.", "snncc.",
                    "collections.", "numpy.core.multiarray.", "numpy.")
# Single globals outside those prefixes that ordinary module pickles use.
_BUILTINS = ("set", "frozenset", "slice", "bytearray", "complex", "range")
ALLOWED_GLOBALS = {f"{m}.{n}" for m in ("builtins", "__builtin__") for n in _BUILTINS} | {
    "_codecs.encode"}
# Inside torch, only the data and module machinery; never code runners.
FORBIDDEN_IN_TORCH = ("torch.hub", "torch.jit", "torch.package", "torch.distributed",
                      "torch.utils.cpp_extension", "torch.fx", "torch.ops", "torch._dynamo",
                      "torch.compile", "torch.load", "torch.save")


@dataclass
class LoadedModel:
    module: torch.nn.Module
    example_input: torch.Tensor | None
    source: str


def pickle_globals(data: bytes) -> list[str]:
    """The `module.name` globals a pickle references, read from its opcodes
    (GLOBAL, and STACK_GLOBAL with its two preceding string pushes)."""
    found: list[str] = []
    recent: list[str | None] = []  # values pushed by the ops just before, strings or not
    memo: dict[int, str | None] = {}
    for op, arg, _ in pickletools.genops(data):
        name = op.name
        if name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
            recent.append(str(arg))
            continue
        if name == "MEMOIZE":
            memo[len(memo)] = recent[-1] if recent else None
            continue
        if name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[int(str(arg))] = recent[-1] if recent else None
            continue
        if name in ("BINGET", "LONG_BINGET", "GET"):
            recent.append(memo.get(int(str(arg))))
            continue
        if name == "GLOBAL":
            module, _, attr = str(arg).partition(" ")
            found.append(f"{module}.{attr}")
        elif name == "STACK_GLOBAL":
            module_name, attr_name = (recent[-2:] + [None, None])[:2] if len(recent) >= 2 \
                else (None, None)
            if module_name is None or attr_name is None:
                raise ValueError("STACK_GLOBAL whose name is not a plain string")
            found.append(f"{module_name}.{attr_name}")
        recent.append(None)  # anything else pushed or changed the stack
    return found


def is_allowed(name: str, allow: Iterable[str]) -> bool:
    if name in ALLOWED_GLOBALS:
        return True
    if any(name.startswith(p) for p in FORBIDDEN_IN_TORCH):
        return False
    prefixes = ALLOWED_PREFIXES + tuple(a.rstrip(".") + "." for a in allow)
    return any(name.startswith(p) for p in prefixes)


def _resolve(name: str) -> Any:
    parts = name.replace("__builtin__.", "builtins.", 1).split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
            return obj
        except AttributeError:
            return None
    return None


def _read_pickle_bytes(path: Path) -> bytes:
    loc = Location(file=str(path))
    try:
        with zipfile.ZipFile(path) as z:
            pkl = [n for n in z.namelist() if n.endswith("data.pkl")]
            if not pkl:
                raise SnnccError("SNN-LOAD002", f"{path} is not a PyTorch model file "
                                 "(no data.pkl inside)", location=loc,
                                 hint="save the model with torch.save(model, path)")
            return z.read(pkl[0])
    except zipfile.BadZipFile:
        raise SnnccError(
            "SNN-LOAD002", f"{path} is not a readable PyTorch file: truncated or corrupt "
            f"(a zip archive was expected; the file has {path.stat().st_size} bytes)",
            location=Location(file=str(path), offset=path.stat().st_size),
            hint="re-save the model with torch.save(model, path)") from None


def _check_globals(path: Path, allow: Sequence[str]) -> list[Any]:
    data = _read_pickle_bytes(path)
    try:
        names = pickle_globals(data)
    except Exception as e:  # malformed opcode stream: the file is corrupt
        raise SnnccError("SNN-LOAD002", f"{path} holds a corrupt pickle ({e})",
                         location=Location(file=str(path)),
                         hint="re-save the model with torch.save(model, path)") from None
    bad = sorted({n for n in names if not is_allowed(n, allow)})
    if bad:
        top = bad[0].split(".")[0]
        raise SnnccError(
            "SNN-LOAD003",
            f"{path} needs {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}, which snncc "
            "does not load without permission",
            location=Location(file=str(path)),
            hint=f"if you trust these classes pass --allow {top} (or --trust to run arbitrary "
            "code from this file)")
    objs = [_resolve(n) for n in dict.fromkeys(names)]
    return [o for o in objs if o is not None]


def _load_factory(arch: str, path: Path) -> torch.nn.Module:
    mod_name, _, fn_name = arch.partition(":")
    try:
        factory = getattr(importlib.import_module(mod_name), fn_name)
        model = factory()
    except (ImportError, AttributeError, ValueError, TypeError) as e:
        raise SnnccError("SNN-LOAD005", f"cannot build the model from --arch {arch}: {e}",
                         location=Location(file=str(path)),
                         hint="give --arch package.module:factory, a function with no arguments "
                         "that returns the nn.Module") from None
    if not isinstance(model, torch.nn.Module):
        raise SnnccError("SNN-LOAD005", f"--arch {arch} returned a {type(model).__name__}, "
                         "not an nn.Module", location=Location(file=str(path)))
    return model


def load_model(path: str | Path, *, trust: bool = False, allow: Sequence[str] = (),
               arch: str | None = None) -> LoadedModel:
    """Load a `torch.save(model)` file, a `{"model": ..., "example_input": ...}` dict,
    or a state_dict with `arch="module:factory"`."""
    path = Path(path)
    if not path.is_file():
        raise SnnccError("SNN-LOAD001", f"no such model file: {path}",
                         location=Location(file=str(path)), hint="check the path")
    if trust:
        obj = torch.load(path, weights_only=False, map_location="cpu")
    else:
        safe = _check_globals(path, allow)
        try:
            with torch.serialization.safe_globals(safe):
                obj = torch.load(path, weights_only=True, map_location="cpu")
        except (RuntimeError, EOFError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise SnnccError("SNN-LOAD002", f"cannot read {path}: {first}",
                             location=Location(file=str(path)),
                             hint="re-save it with torch.save(model, path), or pass --trust "
                             "if you trust the file") from None
    example = None
    if isinstance(obj, dict) and isinstance(obj.get("model"), torch.nn.Module):
        example = obj.get("example_input")
        obj = obj["model"]
    if isinstance(obj, torch.nn.Module):
        return LoadedModel(obj, example if isinstance(example, torch.Tensor) else None, str(path))
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        if arch is None:
            raise SnnccError("SNN-LOAD004", f"{path} holds a state_dict (weights only), no model",
                             location=Location(file=str(path)),
                             hint="pass --arch module:factory that builds the model")
        model = _load_factory(arch, path)
        missing, unexpected = _state_dict_mismatch(model, obj)
        if missing or unexpected:
            raise SnnccError("SNN-LOAD006", f"state_dict does not fit --arch {arch}: missing "
                             f"{missing[:5]}, unexpected {unexpected[:5]}",
                             location=Location(file=str(path)),
                             hint="use the factory the weights were trained with")
        model.load_state_dict(obj)
        return LoadedModel(model, None, str(path))
    raise SnnccError("SNN-LOAD004", f"{path} holds a {type(obj).__name__}, not an nn.Module",
                     location=Location(file=str(path)),
                     hint="save the model itself: torch.save(model, path)")


def _state_dict_mismatch(model: torch.nn.Module,
                         state: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    own = set(model.state_dict())
    return sorted(own - set(state)), sorted(set(state) - own)
