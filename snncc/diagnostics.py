"""Diagnostics are data: a code, a message, where, and what to do.

Every user-facing problem (bad input, unsupported layer, spike-only violation)
is a :class:`Diagnostic`. The CLI renders them as text, JSON or SARIF; the
Python API returns or raises them. :class:`SnnccError` carries one or more
error diagnostics out of library code; the CLI turns it into exit code 2 and a
one-line message, never a traceback.
"""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


class Location(BaseModel):
    """Where a problem is: a module path in the user's model, an IR node, a file offset."""

    model_config = ConfigDict(frozen=True)

    module_path: str | None = None
    node: str | None = None
    op: str | None = None
    file: str | None = None
    offset: int | None = None
    line: int | None = None  # a line of the user's source file (tracing), with `file`

    def render(self) -> str:
        parts = []
        if self.file:
            at = f"@{self.offset}" if self.offset is not None else ""
            parts.append(self.file + at + (f":{self.line}" if self.line is not None else ""))
        if self.module_path is not None:
            parts.append(f"module '{self.module_path or '<root>'}'")
        if self.node:
            parts.append(f"node %{self.node}")
        if self.op:
            parts.append(f"op {self.op}")
        return ", ".join(parts)


class Diagnostic(BaseModel):
    code: str
    severity: Severity = Severity.ERROR
    message: str
    location: Location = Location()
    hint: str | None = None
    notes: list[str] = []

    def render(self) -> str:
        where = self.location.render()
        text = f"{self.severity.value} {self.code}: {self.message}"
        if where:
            text += f" [{where}]"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


class SnnccError(Exception):
    """A user-facing error: bad input, unsupported model, unreadable file.

    Raised by library code with a code, a location and a hint; the CLI prints
    ``render()`` and exits 2.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        location: Location | None = None,
        hint: str | None = None,
        notes: list[str] | None = None,
    ) -> None:
        self.diagnostic = Diagnostic(
            code=code,
            message=message,
            location=location or Location(),
            hint=hint,
            notes=notes or [],
        )
        super().__init__(self.diagnostic.render())

    @property
    def code(self) -> str:
        return self.diagnostic.code
