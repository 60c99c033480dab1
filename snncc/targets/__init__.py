"""Hardware targets: load a builtin target by name or a user's YAML file.

    from snncc.targets import load_target
    t = load_target("loihi2")            # builtin
    t = load_target("my_chip.yaml")      # user file, same schema

Builtins live next to this file as ``<name>.yaml``. Errors are user errors
(:class:`~snncc.diagnostics.SnnccError`): ``SNN-TGT001`` for a malformed file or
a bad/unknown field (the message names the field), ``SNN-TGT002`` for an
unknown builtin name (the message lists the builtins), ``SNN-TGT003`` for a
file that cannot be read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from snncc.diagnostics import Location, SnnccError
from snncc.targets.model import (
    BarrierSync,
    Cost,
    NumberFormats,
    OpCosts,
    PaperEstimate,
    ResourceLimits,
    SyncPoint,
    Target,
)

__all__ = [
    "BarrierSync",
    "Cost",
    "NumberFormats",
    "OpCosts",
    "PaperEstimate",
    "ResourceLimits",
    "SyncPoint",
    "Target",
    "builtin_targets",
    "load_target",
    "parse_target",
]

_HERE = Path(__file__).resolve().parent


def builtin_targets() -> list[str]:
    """Names of the targets shipped with snncc (sorted)."""
    return sorted(p.stem for p in _HERE.glob("*.yaml"))


def _looks_like_path(name_or_path: str) -> bool:
    return (
        name_or_path.endswith((".yaml", ".yml"))
        or "/" in name_or_path
        or "\\" in name_or_path
        or Path(name_or_path).is_file()
    )


def load_target(name_or_path: str) -> Target:
    """Load a builtin target by name (``loihi2``) or a target YAML file by path."""
    if _looks_like_path(name_or_path):
        path = Path(name_or_path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise SnnccError("SNN-TGT003", f"target file '{path}' is not text (byte {e.start} "
                             "is not UTF-8)", location=Location(file=str(path), offset=e.start),
                             hint="give a target YAML file, or a builtin name: "
                             f"{', '.join(builtin_targets())}") from None
        except OSError as e:
            raise SnnccError(
                "SNN-TGT003",
                f"cannot read target file '{path}': {e.strerror or e}",
                location=Location(file=str(path)),
                hint=f"builtin targets: {', '.join(builtin_targets())}",
            ) from None
        return parse_target(text, source=str(path))
    builtin = _HERE / f"{name_or_path}.yaml"
    if not builtin.is_file():
        raise SnnccError(
            "SNN-TGT002",
            f"unknown target '{name_or_path}'",
            hint=f"builtin targets: {', '.join(builtin_targets())}; or give a path to a YAML file",
        )
    return parse_target(builtin.read_text(encoding="utf-8"), source=str(builtin))


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "<root>"


def parse_target(text: str, *, source: str = "<string>") -> Target:
    """Parse and validate target YAML text; ``source`` names it in errors."""
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise SnnccError(
            "SNN-TGT001",
            f"target file is not valid YAML{where}: {getattr(e, 'problem', None) or e}",
            location=Location(file=source),
        ) from None
    if not isinstance(data, dict):
        raise SnnccError(
            "SNN-TGT001",
            f"a target file must be a mapping of fields, got {type(data).__name__}",
            location=Location(file=source),
            hint="start with 'name:', 'description:', 'sources:'",
        )
    try:
        return Target.model_validate(data)
    except ValidationError as e:
        errs = e.errors()
        first = errs[0]
        field = _field_path(tuple(first["loc"]))
        if first["type"] == "extra_forbidden":
            msg = f"unknown field '{field}' in target"
            hint = "check the spelling against snncc/targets/model.py"
        elif first["type"] == "missing":
            msg = f"missing field '{field}' in target"
            hint = None
        else:
            msg = f"bad value for field '{field}': {first['msg']}"
            hint = None
        notes = [f"{_field_path(tuple(x['loc']))}: {x['msg']}" for x in errs[1:]]
        raise SnnccError(
            "SNN-TGT001", msg, location=Location(file=source), hint=hint, notes=notes
        ) from None
