"""Renderers for the spike-only report: rich text, JSON, SARIF 2.1.0."""

from __future__ import annotations

import json
import math
from typing import Any

from rich.console import Console
from rich.table import Table

from snncc import __version__
from snncc.analysis.spike_only import Finding, MulClass, SpikeOnlyReport

_STYLE = {MulClass.VIOLATION: "bold red", MulClass.READOUT_MAC: "yellow",
          MulClass.ENCODING_MAC: "cyan", MulClass.AC: "green"}
_LEVEL = {MulClass.VIOLATION: "error", MulClass.READOUT_MAC: "warning",
          MulClass.ENCODING_MAC: "note"}
_RULES = {
    MulClass.VIOLATION: ("SNN-SPK001", "non-spike multiply",
                         "A weight or activation is multiplied by a non-binary activation."),
    MulClass.READOUT_MAC: ("SNN-SPK002", "readout multiply",
                           "A multiply in the readout, after the reduction over time."),
    MulClass.ENCODING_MAC: ("SNN-SPK003", "encoding multiply",
                            "A weight op that encodes the analog input (direct encoding)."),
}


def render_text(report: SpikeOnlyReport, console: Console, *, show_ac: bool = False) -> None:
    table = Table(title="Multiplies that are not spike-driven accumulates" if not show_ac
                  else "Every multiply", show_lines=False)
    for col in ("class", "module", "op", "operands", "why / fix"):
        table.add_column(col, overflow="fold")
    for f in report.findings:
        if f.cls == MulClass.AC and not show_ac:
            continue
        operands = ", ".join(f"{k.lower()}{r}" for k, r in zip(f.operand_kinds, f.operand_ranges))
        why = f.message + (f"\n[dim]fix: {f.hint}[/dim]" if f.hint else "")
        table.add_row(f"[{_STYLE[f.cls]}]{f.cls.value}[/]", f.module_path or "<root>", f.op,
                      operands, why)
    console.print(table)
    for m in report.merged:  # linear chains judged as the one weight op they are
        console.print(f"[dim]{m.note}[/dim]")
    s = report.summary()
    verdict = "[bold green]spike-only: yes[/]" if report.ok else "[bold red]spike-only: no[/]"
    console.print(f"{verdict}  AC {s['AC']}  ENCODING_MAC {s['ENCODING_MAC']}  "
                  f"READOUT_MAC {s['READOUT_MAC']}  VIOLATION {s['VIOLATION']}")


def _sarif_result(f: Finding, artifact: str) -> dict[str, Any]:
    rule = _RULES[f.cls][0]
    text = f.message + (f". Fix: {f.hint}" if f.hint else "")
    return {
        "ruleId": rule,
        "level": _LEVEL[f.cls],
        "message": {"text": text},
        "locations": [{
            "physicalLocation": {"artifactLocation": {"uri": artifact}},
            "logicalLocations": [{"fullyQualifiedName": f.module_path or "<root>",
                                  "name": f.node, "kind": "module"}],
        }],
        "properties": {"op": f.op, "operandKinds": f.operand_kinds,
                       "operandRanges": f.operand_ranges, "provenance": f.provenance},
    }


def render_sarif(report: SpikeOnlyReport, artifact: str) -> dict[str, Any]:
    """SARIF 2.1.0: violations as errors, readout MACs as warnings, encoding as notes."""
    rules = [{"id": rid, "name": name, "shortDescription": {"text": name},
              "fullDescription": {"text": desc}} for rid, name, desc in _RULES.values()]
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "snncc", "version": __version__, "rules": rules}},
            "results": [_sarif_result(f, artifact) for f in report.findings
                        if f.cls != MulClass.AC],
        }],
    }


def dumps_json(obj: Any, **kwargs: Any) -> str:
    """JSON for machines: a non-finite float (never expected) is null, not a bare NaN,
    which no JSON parser reads."""
    def finite(o: Any) -> Any:
        if isinstance(o, float) and not math.isfinite(o):
            return None
        if isinstance(o, dict):
            return {k: finite(v) for k, v in o.items()}
        return [finite(v) for v in o] if isinstance(o, (list, tuple)) else o

    return json.dumps(finite(obj), allow_nan=False, **kwargs)
