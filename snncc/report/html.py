"""Render the `snncc report --json` dict as one self-contained HTML page.

Why hand-written SVG and no libraries: the page must open anywhere, offline and
years later (attached to a paper, kept as a CI artifact, mailed around), so it
carries its CSS and plots inline and loads nothing: no JavaScript, no fonts, no
network. The plots are drawn here from the report's numbers, the same dict the
text and JSON reports show, so the three cannot disagree.

Every string taken from the report is HTML-escaped: module paths come from the
user's model and may hold ``<``, ``&`` or quotes.

A missing or malformed field (an older or partial report) renders as a dash or
an empty plot instead of raising: a page that is half useful beats a traceback
at the end of a long simulation.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snncc.ir.serialize import atomic_write

__all__ = ["render_html", "write_html_report"]

CATEGORIES = ("synaptic", "neuron", "spike", "message")
CATEGORY_COLOURS = {"synaptic": "#4e79a7", "neuron": "#59a14f", "spike": "#f28e2b",
                    "message": "#b07aa1", "other": "#bab0ac"}
# Tableau 10: distinguishable, and survives the common colour-vision deficiencies.
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#8cd17d")
UNKNOWN_COLOUR = "#9aa4b1"
BARRIER_COLOUR = "#d3d7dd"
HEAT_STOPS = ((247, 251, 255), (107, 174, 214), (8, 48, 107))  # white -> dark blue
EMPTY_CELL = "#eef0f3"
ENERGY_UNITS = ((1e12, "J"), (1e9, "mJ"), (1e6, "µJ"), (1e3, "nJ"), (1.0, "pJ"))
TIME_UNITS = ((1e9, "s"), (1e6, "ms"), (1e3, "µs"), (1.0, "ns"))
WIDTH = 760  # every plot's viewBox width; CSS scales it to the page
LABEL_W = 190  # room for layer names left of the bars
SVG_NAME_CHARS = 28
TABLE_NAME_CHARS = 44
DASH = "–"

CSS = """
:root{--fg:#1d2430;--muted:#5b6675;--line:#d9dee5;--panel:#f6f8fa}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
 margin:0 auto;max-width:1100px;padding:24px}
h1{font-size:22px;margin:0 0 2px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
.sub,figcaption,footer{color:var(--muted)}
figcaption,footer{font-size:12px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(185px,1fr));gap:10px;margin:16px 0}
.card{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:10px 12px}
.card .k{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:20px;font-weight:600;font-variant-numeric:tabular-nums}
.card .s{font-size:12px;color:var(--muted)}
.warn{background:#fff4e5;border:1px solid #f0b35b;padding:8px 12px;border-radius:6px}
figure{margin:0 0 8px}
svg{max-width:100%;height:auto;display:block;font:11px system-ui,sans-serif}
svg .grid{stroke:#e6e9ee} svg .axis{stroke:#9aa4b1} svg .muted{fill:#5b6675}
svg .on-dark{fill:#fff}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;margin:4px 0}
.sw{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:5px;
 vertical-align:-1px}
.scroll{max-height:480px;overflow:auto;border:1px solid var(--line);border-radius:6px}
table{border-collapse:collapse;width:100%;font-size:13px;font-variant-numeric:tabular-nums}
th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:var(--panel);position:sticky;top:0;font-weight:600}
.n{text-align:right;white-space:nowrap}
td.notes{color:var(--muted);font-size:12px;min-width:200px}
tr:hover td{background:#f3f6fb}
footer{margin-top:32px}
@media print{.scroll{max-height:none;overflow:visible}}
"""


def write_html_report(report: dict[str, Any], path: str | Path) -> None:
    """Render ``report`` and write it in one atomic step.

    The page is rendered fully before anything touches the disk, and
    :func:`atomic_write` renames a finished temporary file into place, so an
    error never leaves a truncated report (or clobbers an older good one).
    """
    atomic_write(path, render_html(report).encode("utf-8"))


def render_html(report: dict[str, Any]) -> str:
    """The whole page as a string: header, four SVG plots, then the tables."""
    cost = _dict(report, "cost")
    layers = _Layers.of(report)
    per_layer, per_core = _list(cost, "per_layer"), _list(cost, "per_core")
    per_step = _list(cost, "per_step")
    title = f"snncc report: {_text_of(report.get('target'))}"
    parts = [
        _header(report),
        _section("Energy by layer", _energy_plot(per_layer, layers), _energy_legend(per_layer),
                 "One inference; stacked by what the energy was spent on. Hover for values."),
        _section("Spikes by layer and time step", _spike_heatmap(per_layer, layers), "",
                 "Spikes per inference in each step; hover a cell for the rate per neuron."),
        _section("Core utilisation", _core_plot(per_core, layers), layers.legend(),
                 "Top: neurons placed / neurons per core. Bottom: busy time summed over "
                 "steps. Coloured by layer."),
        _section("Latency per time step", _latency_plot(per_step, layers),
                 layers.legend([(BARRIER_COLOUR, "barrier", "")]),
                 "Slowest core plus the barrier; coloured and labelled by the bottleneck layer."),
        _layer_table(report, layers),
        _step_table(per_step, layers),
        _core_table(per_core, layers),
        _chip_table(_dict(report, "resources")),
        _split_table(_dict(report, "resources")),
        _quant_table(_dict(report, "quantization")),
        _footer(),
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{_esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(parts) + "\n</body>\n</html>\n")


# ------------------------------------------------------------------ reading ---


def _dict(obj: object, key: str) -> dict[str, Any]:
    """``obj[key]`` if that is a dict, else ``{}``: lets callers chain without checks."""
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else {}


def _list(obj: object, key: str) -> list[dict[str, Any]]:
    """The dict items of the list ``obj[key]``; anything else is dropped, not fatal."""
    value = obj.get(key) if isinstance(obj, dict) else None
    return [x for x in value if isinstance(x, dict)] if isinstance(value, list) else []


def _num(value: object) -> float | None:
    """A finite float, or None for missing, non-numeric or NaN/inf (shown as a dash)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _f(value: object) -> float:
    """Like :func:`_num`, but 0 for missing: for lengths and sums that must not fail."""
    return _num(value) or 0.0


def _text_of(value: object) -> str:
    return DASH if value is None or value == "" else str(value)


# --------------------------------------------------------------- formatting ---


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _pct(value: object) -> str:
    n = _num(value)
    return DASH if n is None else f"{n:.2%}"


def _qty(value: object) -> str:
    """Compact count: 512, 12.35, 4.1k, 2.35M (counts are per-inference floats)."""
    n = _num(value)
    if n is None:
        return DASH
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.4g}{suffix}"
    return str(int(n)) if n == int(n) else f"{n:.4g}"


def _int(value: object) -> str:
    """A whole number with thousands separators, for sizes that are exact (8,192)."""
    n = _num(value)
    return DASH if n is None else f"{n:,.0f}"


def _unit(largest: float, units: Sequence[tuple[float, str]]) -> tuple[float, str]:
    """The biggest unit ``largest`` is at least one of, so numbers read without exponents."""
    for div, name in units:
        if abs(largest) >= div:
            return div, name
    return units[-1]


def _in_unit(value: object, units: Sequence[tuple[float, str]]) -> str:
    n = _num(value)
    if n is None:
        return DASH
    div, name = _unit(n, units)
    return f"{n / div:.4g} {name}"


def _fixed(value: object, unit: str) -> str:
    """A headline figure in a fixed unit, so reports of different models compare at a glance."""
    n = _num(value)
    return DASH if n is None else f"{n:.4g} {unit}"


def _short(text: str, limit: int) -> str:
    """Keep the tail of a long module path: its last parts name the layer."""
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


def _name_html(full: str, limit: int = TABLE_NAME_CHARS) -> str:
    """A table cell's name, truncated with the full name as a hover tooltip."""
    short = _short(full, limit)
    if short == full:
        return _esc(full)
    return f'<span title="{_esc(full)}">{_esc(short)}</span>'


# ------------------------------------------------------------------- layers ---


@dataclass
class _Layers:
    """Display name and colour per layer name, shared so a layer looks the same everywhere."""

    labels: dict[str, str] = field(default_factory=dict)
    colours: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, report: dict[str, Any]) -> _Layers:
        cost = _dict(report, "cost")
        out = cls()
        for row in _list(cost, "per_layer") + _list(_dict(report, "mapping"), "layers"):
            out.add(row.get("name"), row.get("module_path"))
        for row in _list(cost, "per_core"):
            out.add(row.get("layer"), None)
        for row in _list(cost, "per_step"):
            out.add(row.get("bottleneck_layer"), None)
        return out

    def add(self, name: object, module_path: object) -> None:
        if not isinstance(name, str) or name in self.labels:
            return
        self.labels[name] = module_path if isinstance(module_path, str) and module_path else name
        self.colours[name] = PALETTE[(len(self.colours)) % len(PALETTE)]

    def label(self, name: object) -> str:
        return self.labels.get(name, _text_of(name)) if isinstance(name, str) else DASH

    def colour(self, name: object) -> str:
        return self.colours.get(name, UNKNOWN_COLOUR) if isinstance(name, str) else UNKNOWN_COLOUR

    def legend(self, extra: Sequence[tuple[str, str, str]] = ()) -> str:
        return _legend([*extra, *((self.colours[n], _short(self.labels[n], SVG_NAME_CHARS),
                                   self.labels[n]) for n in self.labels)])


def _legend(items: Iterable[tuple[str, str, str]]) -> str:
    """HTML legend (wraps with any number of entries); items are (colour, label, tooltip)."""
    spans = [f'<span title="{_esc(tip or label)}"><span class="sw" style="background:{colour}">'
             f"</span>{_esc(label)}</span>" for colour, label, tip in items]
    return f'<div class="legend">{"".join(spans)}</div>' if spans else ""


# ------------------------------------------------------------------- header ---


def _header(report: dict[str, Any]) -> str:
    """Title, run description and the headline figures as cards."""
    cost, sim = _dict(report, "cost"), _dict(report, "simulation")
    totals, mapping = _dict(cost, "totals"), _dict(report, "mapping")
    cores = report.get("cores", totals.get("cores"))
    sub = (f"{_qty(report.get('samples'))} samples · T = {_qty(report.get('time_steps'))} "
           f"time steps · {_qty(cores)} cores on {_qty(totals.get('tiles'))} tile(s)"
           + (f" · {_int(mapping.get('neurons_per_core'))} neurons per core"
              if "neurons_per_core" in mapping else ""))
    wall = _num(sim.get("wall_s"))
    cards = [
        _accuracy_card(report),
        _card("latency / inference",
              _fixed(_headline(report, "latency_us_per_inference", "latency_ns", 1e3), "µs"),
              f"sum of {_qty(report.get('time_steps'))} steps' slowest core + barrier"),
        _card("energy / inference",
              _fixed(_headline(report, "energy_uj_per_inference", "energy_pj", 1e6), "µJ"),
              f"{_qty(totals.get('sops'))} synaptic ops, {_qty(totals.get('spikes'))} spikes, "
              f"{_qty(totals.get('messages'))} messages"),
        _paper_card(report),
        _card("simulation speed", f"{_qty(sim.get('images_per_s'))} images/s",
              f"{_qty(sim.get('events_per_s'))} synaptic events/s · "
              + (f"{wall:.2f} s wall" if wall is not None else f"{DASH} wall")),
    ]
    wraps = _f(report.get("current_wraps"))
    warn = (f'<p class="warn">{_qty(wraps)} inputs exceeded the 24-bit current range and '
            "wrapped: results may differ from the float model.</p>" if wraps > 0 else "")
    return (f"<header><h1>snncc report: {_esc(_text_of(report.get('target')))}</h1>"
            f'<div class="sub">{_esc(sub)}</div><div class="cards">{"".join(cards)}</div>'
            f"{warn}</header>")


def _headline(report: dict[str, Any], key: str, total_key: str, div: float) -> float | None:
    """A run-summary figure, else the same one from the cost totals (a cost-only report)."""
    value = _num(report.get(key))
    total = _num(_dict(_dict(report, "cost"), "totals").get(total_key))
    return value if value is not None or total is None else total / div


def _card(key: str, value: str, sub: str) -> str:
    return (f'<div class="card"><div class="k">{_esc(key)}</div><div class="v">{_esc(value)}'
            f'</div><div class="s">{_esc(sub)}</div></div>')


def _accuracy_card(report: dict[str, Any]) -> str:
    fm = _dict(report, "float_model")
    agree = f"predictions agree {_pct(fm.get('prediction_agreement'))}"
    if _num(report.get("accuracy")) is None:
        return _card("accuracy", DASH, f"no labels; {agree} with the float model")
    return _card("accuracy (acsim)", _pct(report.get("accuracy")),
                 f"float model {_pct(fm.get('accuracy'))} · {agree}")


def _paper_card(report: dict[str, Any]) -> str:
    """The papers' E_MAC/E_AC estimate, with its formula so readers can redo it."""
    p = _dict(_dict(report, "cost"), "paper")
    uj = _num(report.get("paper_energy_uj_per_inference"))
    if uj is None and _num(p.get("energy_pj")) is not None:
        uj = _f(p.get("energy_pj")) / 1e6
    node = f" ({p['process_node']})" if p.get("process_node") else ""
    readout = _num(p.get("energy_with_readout_pj"))
    sub = (f"E_MAC {_qty(p.get('e_mac_pj'))} pJ × {_qty(p.get('encoding_macs'))} MACs + "
           f"E_AC {_qty(p.get('e_ac_pj'))} pJ × {_qty(p.get('sops'))} SOPs{node}; with readout "
           + _fixed(None if readout is None else readout / 1e6, "µJ"))
    return _card("papers' estimate", _fixed(uj, "µJ"), sub)


# -------------------------------------------------------------- svg helpers ---


def _svg(height: float, body: list[str], label: str) -> str:
    return (f'<svg viewBox="0 0 {WIDTH} {height:.0f}" width="{WIDTH}" height="{height:.0f}" '
            f'role="img" aria-label="{_esc(label)}">' + "".join(body) + "</svg>")


def _empty_svg(label: str, message: str) -> str:
    """A plot with nothing to show still gets its SVG, so the page's layout is stable."""
    return _svg(40, [_svg_text(WIDTH / 2, 24, message, "middle", "muted")], label)


def _rect(x: float, y: float, w: float, h: float, fill: str, tip: str) -> str:
    return (f'<rect x="{x:.2f}" y="{y:.2f}" width="{max(w, 0.0):.2f}" height="{max(h, 0.0):.2f}" '
            f'fill="{fill}"><title>{_esc(tip)}</title></rect>')


def _svg_text(x: float, y: float, text: str, anchor: str = "start", cls: str = "",
              tip: str | None = None) -> str:
    """SVG text; ``tip`` adds a hover tooltip (used for the full name of a truncated one)."""
    klass = f' class="{cls}"' if cls else ""
    title = f"<title>{_esc(tip)}</title>" if tip else ""
    return (f'<text x="{x:.2f}" y="{y:.2f}" text-anchor="{anchor}"{klass}>{title}'
            f"{_esc(text)}</text>")


def _line(x1: float, y1: float, x2: float, y2: float, cls: str) -> str:
    return f'<line x1="{x1:.2f}" y1="{y1:.2f}" x2="{x2:.2f}" y2="{y2:.2f}" class="{cls}"/>'


def _ticks(top: float, n: int = 4) -> list[float]:
    """Round axis ticks from 0 to at least ``top``; [0, 1] when there is nothing to scale."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / n
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * mag >= raw * (1 - 1e-9))
    return [i * step for i in range(math.ceil(top / step - 1e-9) + 1)]


def _y_grid(x0: float, y0: float, h: float, ticks: list[float],
            fmt: Callable[[float], str]) -> list[str]:
    """Horizontal grid lines and labels for a panel from ``y0`` (top) to ``y0 + h`` (zero)."""
    out = []
    for t in ticks:
        y = y0 + h - h * t / ticks[-1]
        out += [_line(x0, y, WIDTH - 10, y, "grid" if t else "axis"),
                _svg_text(x0 - 6, y + 4, fmt(t), "end", "muted")]
    return out


def _x_labels(x0: float, pitch: float, ids: list[str], y: float) -> list[str]:
    """Index labels under bars, thinned so they never overlap (every k-th, k >= 1)."""
    every = max(1, math.ceil(30 / max(pitch, 1e-9)))
    return [_svg_text(x0 + pitch * (i + 0.5), y, s, "middle", "muted")
            for i, s in enumerate(ids) if i % every == 0]


def _bar(x: float, pitch: float) -> tuple[float, float]:
    """(left, width) of a bar in a slot: gaps while they are visible, never wider than
    48 px, so 4 cores do not look like 4 walls and 500 cores still get a pixel each."""
    w = min(pitch * 0.8, 48.0) if pitch >= 5 else pitch
    return x + (pitch - w) / 2, w


def _id(value: object) -> str:
    n = _num(value)
    return str(int(n)) if n is not None and n == int(n) else _text_of(value)


def _heat(frac: float) -> str:
    """Colour for ``frac`` in [0, 1] on the white-to-blue scale (piecewise linear)."""
    frac = min(max(frac, 0.0), 1.0) * (len(HEAT_STOPS) - 1)
    i = min(int(frac), len(HEAT_STOPS) - 2)
    a, b, t = HEAT_STOPS[i], HEAT_STOPS[i + 1], frac - i
    return "#" + "".join(f"{round(a[k] + (b[k] - a[k]) * t):02x}" for k in range(3))


# -------------------------------------------------------------------- plots ---


def _energy_plot(rows: list[dict[str, Any]], layers: _Layers) -> str:
    """Horizontal bars per layer, stacked by energy category, total at the bar's end."""
    label = "energy by layer"
    if not rows:
        return _empty_svg(label, "no layers")
    stacks = [_energy_stack(r) for r in rows]
    ticks = _ticks(max(sum(v for _, v in s) for s in stacks))
    div, unit = _unit(ticks[-1], ENERGY_UNITS)
    x0, w, pitch, top = LABEL_W, WIDTH - LABEL_W - 80, 24, 8
    axis_y = top + len(rows) * pitch
    body: list[str] = []  # grid first, so the bars are drawn over it
    for t in ticks:
        tx = x0 + w * t / ticks[-1]
        body += [_line(tx, top, tx, axis_y, "grid" if t else "axis"),
                 _svg_text(tx, axis_y + 14, f"{t / div:.4g}", "middle", "muted")]
    body += [_line(x0, axis_y, x0 + w, axis_y, "axis"),
             _svg_text(x0 + w + 5, axis_y + 14, unit, "start", "muted")]
    for i, (r, stack) in enumerate(zip(rows, stacks)):
        body += _energy_row(top + i * pitch, w / ticks[-1], layers.label(r.get("name")), stack)
        total = sum(v for _, v in stack)
        body.append(_svg_text(x0 + w * total / ticks[-1] + 5, top + i * pitch + 13,
                              f"{total / div:.4g} {unit}", "start", "muted"))
    return _svg(axis_y + 22, body, label)


def _energy_row(y: float, px_per_pj: float, name: str,
                stack: list[tuple[str, float]]) -> list[str]:
    """One layer's name and stacked segments, each with its value and share as a tooltip."""
    out = [_svg_text(LABEL_W - 8, y + 13, _short(name, SVG_NAME_CHARS), "end", "", name)]
    x, total = float(LABEL_W), sum(v for _, v in stack)
    for cat, v in stack:
        share = f" ({v / total:.1%})" if total else ""
        out.append(_rect(x, y, v * px_per_pj, 18, CATEGORY_COLOURS[cat],
                         f"{name}: {cat} {_in_unit(v, ENERGY_UNITS)}{share}"))
        x += v * px_per_pj
    return out


def _energy_legend(rows: list[dict[str, Any]]) -> str:
    """The categories, plus "other" only when some layer's categories miss part of its energy."""
    used = {cat for r in rows for cat, _ in _energy_stack(r)}
    return _legend((CATEGORY_COLOURS[c], c, "") for c in (*CATEGORIES, "other")
                   if c in CATEGORIES or c in used)


def _energy_stack(row: dict[str, Any]) -> list[tuple[str, float]]:
    """(category, pJ) pairs; energy not covered by categories shows as "other"."""
    cats = _dict(row, "energy_by_category")
    stack = [(c, max(_f(cats.get(c)), 0.0)) for c in CATEGORIES]
    rest = _f(row.get("energy_pj")) - sum(v for _, v in stack)
    if rest > 1e-3 * max(_f(row.get("energy_pj")), 1e-30):
        stack.append(("other", rest))
    return stack


def _spike_heatmap(rows: list[dict[str, Any]], layers: _Layers) -> str:
    """Rows = layers, columns = steps, cell colour = spikes; numbers in cells that fit them."""
    label = "spikes by layer and time step"
    grid = [[_num(v) for v in (r.get("spikes_per_step") or []) if not isinstance(v, dict)]
            if isinstance(r.get("spikes_per_step"), list) else [] for r in rows]
    steps = max((len(g) for g in grid), default=0)
    if not rows or steps == 0:
        return _empty_svg(label, "no spikes per step recorded")
    vmax = max((v for g in grid for v in g if v is not None), default=0.0)
    x0, top, ch = LABEL_W, 18, 20
    cw = (WIDTH - x0 - 10) / steps
    body = _x_labels(x0, cw, [str(t) for t in range(steps)], top - 6)
    for i, (r, g) in enumerate(zip(rows, grid)):
        y, name = top + i * ch, layers.label(r.get("name"))
        neurons = _num(r.get("neurons"))
        body.append(_svg_text(x0 - 8, y + 14, _short(name, SVG_NAME_CHARS), "end", "", name))
        for t in range(steps):
            v = g[t] if t < len(g) else None
            body += _heat_cell(x0 + t * cw, y, cw, ch, v, vmax, neurons,
                               f"{name}, step {t}")
    legend_y = top + len(rows) * ch + 12
    body += _heat_legend(x0, legend_y, vmax)
    return _svg(legend_y + 30, body, label)


def _heat_cell(x: float, y: float, w: float, h: float, v: float | None, vmax: float,
               neurons: float | None, where: str) -> list[str]:
    if v is None:
        return [_rect(x, y, w - 1, h - 1, EMPTY_CELL, f"{where}: no data")]
    frac = v / vmax if vmax > 0 else 0.0
    rate = f", {v / neurons:.3g} per neuron" if neurons else ""
    out = [_rect(x, y, w - 1, h - 1, _heat(frac), f"{where}: {_qty(v)} spikes{rate}")]
    if w >= 36:
        ink = "on-dark" if frac > 0.55 else ""
        out.append(_svg_text(x + w / 2, y + 14, _qty(v), "middle", ink))
    return out


def _heat_legend(x0: float, y: float, vmax: float) -> list[str]:
    """Ten swatches from 0 to the largest cell value, labelled at both ends."""
    out = [_svg_text(x0 - 8, y + 10, "spikes / step", "end", "muted")]
    for k in range(10):
        lo, hi = vmax * k / 10, vmax * (k + 1) / 10
        out.append(_rect(x0 + k * 22, y, 22, 12, _heat((k + 0.5) / 10),
                         f"{_qty(lo)} to {_qty(hi)} spikes"))
    out += [_svg_text(x0, y + 24, "0", "start", "muted"),
            _svg_text(x0 + 220, y + 24, _qty(vmax), "end", "muted")]
    return out


def _core_plot(cores: list[dict[str, Any]], layers: _Layers) -> str:
    """Two panels sharing the core axis: utilisation (top) and busy time (bottom)."""
    label = "core utilisation"
    if not cores:
        return _empty_svg(label, "no cores")
    cores = sorted(cores, key=lambda c: _f(c.get("core")))
    x0, top, uh, bh, gap = 64.0, 18.0, 110.0, 80.0, 34.0
    pitch = (WIDTH - x0 - 10) / len(cores)
    uticks = _ticks(max(1.0, max(_f(c.get("utilisation")) for c in cores)))
    bticks = _ticks(max(_f(c.get("busy_ns")) for c in cores))
    div, unit = _unit(bticks[-1], TIME_UNITS)
    by = top + uh + gap
    body = [_svg_text(x0, top - 6, "utilisation", "start", "muted"),
            _svg_text(x0, by - 6, f"busy time ({unit})", "start", "muted")]
    body += _y_grid(x0, top, uh, uticks, lambda t: f"{t:.0%}")
    body += _y_grid(x0, by, bh, bticks, lambda t: f"{t / div:.4g}")
    for i, c in enumerate(cores):
        x, w = _bar(x0 + i * pitch, pitch)
        fill, tip = layers.colour(c.get("layer")), _core_tip(c, layers)
        for y0, h, v, scale in ((top, uh, _f(c.get("utilisation")), uticks[-1]),
                                (by, bh, _f(c.get("busy_ns")), bticks[-1])):
            bar = h * max(v, 0.0) / scale
            body.append(_rect(x, y0 + h - bar, w, bar, fill, tip))
    body += _x_labels(x0, pitch, [_id(c.get("core")) for c in cores], by + bh + 14)
    body.append(_svg_text(WIDTH - 10, by + bh + 28, "core", "end", "muted"))
    return _svg(by + bh + 34, body, label)


def _core_tip(c: dict[str, Any], layers: _Layers) -> str:
    return (f"core {_id(c.get('core'))} (tile {_id(c.get('tile'))} at "
            f"{_id(c.get('x'))},{_id(c.get('y'))}): {layers.label(c.get('layer'))}, "
            f"{_qty(c.get('neurons'))} neurons, {_pct(c.get('utilisation'))} utilised, busy "
            f"{_in_unit(c.get('busy_ns'), TIME_UNITS)}, "
            f"{_in_unit(c.get('energy_pj'), ENERGY_UNITS)}")


def _latency_plot(steps: list[dict[str, Any]], layers: _Layers) -> str:
    """Bars per step: the slowest core's time (layer colour) under the barrier (grey)."""
    label = "latency per time step"
    if not steps:
        return _empty_svg(label, "no time steps")
    x0, top, h = 64.0, 26.0, 150.0
    lat = [max(_f(s.get("latency_ns")), 0.0) for s in steps]
    ticks = _ticks(max(lat))
    div, unit = _unit(ticks[-1], TIME_UNITS)
    pitch = (WIDTH - x0 - 10) / len(steps)
    body = [_svg_text(x0, 12, f"latency ({unit})", "start", "muted")]
    body += _y_grid(x0, top, h, ticks, lambda t: f"{t / div:.4g}")
    for i, (s, total) in enumerate(zip(steps, lat)):
        body += _latency_bar(x0 + i * pitch, pitch, top, h, s, total, ticks[-1], layers)
    body += _x_labels(x0, pitch, [_id(s.get("step")) for s in steps], top + h + 14)
    body.append(_svg_text(WIDTH - 10, top + h + 28, "time step", "end", "muted"))
    return _svg(top + h + 34, body, label)


def _latency_bar(x: float, pitch: float, top: float, h: float, s: dict[str, Any],
                 total: float, scale: float, layers: _Layers) -> list[str]:
    barrier = min(max(_f(s.get("barrier_ns")), 0.0), total)
    name = layers.label(s.get("bottleneck_layer")) if s.get("bottleneck_layer") else DASH
    tip = (f"step {_id(s.get('step'))}: {_in_unit(total, TIME_UNITS)} (barrier "
           f"{_in_unit(barrier, TIME_UNITS)}); bottleneck core {_id(s.get('bottleneck_core'))} "
           f"of {name}, {_text_of(s.get('bound'))}-bound; energy "
           f"{_in_unit(s.get('energy_pj'), ENERGY_UNITS)}")
    bx, bw = _bar(x, pitch)
    hc, hb = h * (total - barrier) / scale, h * barrier / scale
    base = top + h
    out = [_rect(bx, base - hc, bw, hc, layers.colour(s.get("bottleneck_layer")), tip),
           _rect(bx, base - hc - hb, bw, hb, BARRIER_COLOUR, tip)]
    if pitch >= 44 and name != DASH:
        out.append(_svg_text(x + pitch / 2, base - hc - hb - 4,
                             _short(name, int(pitch // 6.5)), "middle", "", name))
    return out


# ------------------------------------------------------------------- tables ---


def _section(title: str, plot: str, legend: str, caption: str) -> str:
    return (f"<section><h2>{_esc(title)}</h2><figure>{legend}{plot}"
            f"<figcaption>{_esc(caption)}</figcaption></figure></section>")


def _table(title: str, headers: Sequence[str], rows: list[list[str]], classes: dict[int, str],
           note: str = "") -> str:
    """A titled, scrollable table; cells are HTML already escaped by the caller, and
    ``classes`` gives CSS classes by column ("n" right-aligns numbers)."""
    head = "".join(f"<th{_cls(i, classes)}>{_esc(h)}</th>" for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f"<td{_cls(i, classes)}>{c}</td>" for i, c in enumerate(r))
                   + "</tr>" for r in rows)
    if not rows:
        body = f'<tr><td colspan="{len(headers)}">none</td></tr>'
    extra = f'<p class="sub">{_esc(note)}</p>' if note else ""
    return (f"<section><h2>{_esc(title)}</h2>{extra}<div class=\"scroll\"><table><thead><tr>"
            f"{head}</tr></thead><tbody>{body}</tbody></table></div></section>")


def _cls(i: int, classes: dict[int, str]) -> str:
    return f' class="{classes[i]}"' if i in classes else ""


def _numeric(*cols: int) -> dict[int, str]:
    return dict.fromkeys(cols, "n")


def _scaled(rows: list[dict[str, Any]], key: str,
            units: Sequence[tuple[float, str]]) -> tuple[Callable[[object], str], str]:
    """A formatter in one unit for a whole column (picked from its largest value)."""
    div, name = _unit(max((abs(_f(r.get(key))) for r in rows), default=0.0), units)
    return (lambda v: DASH if _num(v) is None else f"{_f(v) / div:.4g}"), name


def _layer_table(report: dict[str, Any], layers: _Layers) -> str:
    cost = _dict(report, "cost")
    rows = _list(cost, "per_layer")
    limited = {lp.get("name"): lp.get("limited_by") for lp in _list(_dict(report, "mapping"),
                                                                      "layers")}
    energy, unit = _scaled(rows, "energy_pj", ENERGY_UNITS)
    total = _f(_dict(cost, "totals").get("energy_pj")) or sum(_f(r.get("energy_pj")) for r in rows)
    body = [[_name_html(layers.label(r.get("name"))),
             _esc(f"{_text_of(r.get('kind'))}/{_text_of(r.get('synapse_kind'))}"),
             _qty(r.get("neurons")), _qty(r.get("cores")),
             _esc(_text_of(limited.get(r.get("name")))), _qty(r.get("sops")),
             _qty(r.get("spikes")), _qty(r.get("messages_out")), energy(r.get("energy_pj")),
             f"{_f(r.get('energy_pj')) / total:.1%}" if total else DASH] for r in rows]
    return _table("Per layer (one inference)",
                  ("layer", "kind", "neurons", "cores", "cores limited by", "synaptic ops",
                   "spikes", "messages out", f"energy ({unit})", "share"), body,
                  _numeric(2, 3, 5, 6, 7, 8, 9))


def _step_table(steps: list[dict[str, Any]], layers: _Layers) -> str:
    lat, tunit = _scaled(steps, "latency_ns", TIME_UNITS)
    energy, eunit = _scaled(steps, "energy_pj", ENERGY_UNITS)
    body = [[_id(s.get("step")), lat(s.get("latency_ns")), lat(s.get("barrier_ns")),
             _esc(_text_of(s.get("bound"))),
             _name_html(layers.label(s.get("bottleneck_layer"))) if s.get("bottleneck_layer")
             else DASH, _id(s.get("bottleneck_core")), energy(s.get("energy_pj"))] for s in steps]
    return _table("Per time step",
                  ("step", f"latency ({tunit})", f"barrier ({tunit})", "bound by",
                   "bottleneck layer", "core", f"energy ({eunit})"), body, _numeric(0, 1, 2, 5, 6))


def _core_table(cores: list[dict[str, Any]], layers: _Layers) -> str:
    cores = sorted(cores, key=lambda c: _f(c.get("core")))
    energy, eunit = _scaled(cores, "energy_pj", ENERGY_UNITS)
    busy, tunit = _scaled(cores, "busy_ns", TIME_UNITS)
    body = [[_id(c.get("core")), _id(c.get("tile")), f"{_id(c.get('x'))},{_id(c.get('y'))}",
             _name_html(layers.label(c.get("layer"))), _qty(c.get("neurons")),
             _pct(c.get("utilisation")), _qty(c.get("sops")), _qty(c.get("spikes")),
             _qty(c.get("messages_out")), _qty(c.get("messages_in")), _qty(c.get("hops")),
             energy(c.get("energy_pj")), busy(c.get("busy_ns"))] for c in cores]
    return _table(f"Per core ({len(cores)})",
                  ("core", "tile", "x,y", "layer", "neurons", "utilisation", "synaptic ops",
                   "spikes", "messages out", "messages in", "hops", f"energy ({eunit})",
                   f"busy ({tunit})"), body,
                  _numeric(0, 1, 4, 5, 6, 7, 8, 9, 10, 11, 12))


def _of(value: object, limit: object) -> str:
    return f"{_qty(value)} / {_qty(limit) if _num(limit) is not None else DASH}"


def _chip_table(res: dict[str, Any]) -> str:
    lim = _dict(res, "limits")
    cores = _list(res, "cores")
    body = [[_id(c.get("chip")), _of(c.get("cores"), lim.get("cores_per_chip")),
             _of(c.get("neurons"), lim.get("neurons_per_chip")),
             _of(c.get("synapses"), lim.get("synapses_per_chip")),
             _qty(max((_f(k.get("fan_in")) for k in cores if k.get("chip") == c.get("chip")),
                      default=0.0)),
             _qty(max((_f(k.get("memory_bytes")) for k in cores
                       if k.get("chip") == c.get("chip")), default=0.0))]
            for c in _list(res, "chips")]
    note = (f"of {_text_of(lim.get('chips'))} chips; per core at most "
            f"{_text_of(lim.get('neurons_per_core'))} neurons, fan-in "
            f"{_text_of(lim.get('fan_in_per_core'))}, {_text_of(lim.get('memory_bytes_per_core'))}"
            " bytes of synaptic memory") if lim else ""
    return _table("Per chip (against the limits)",
                  ("chip", "cores", "neurons", "stored synapses", "largest fan-in",
                   "fullest core memory (B)"), body, _numeric(0, 4, 5), note)


def _split_table(res: dict[str, Any]) -> str:
    body = [[_esc(_text_of(s.get("op"))), _esc(_text_of(s.get("kind"))), _qty(s.get("parts")),
             _qty(s.get("extra_neurons")), _qty(s.get("extra_cores")), _qty(s.get("extra_steps")),
             _qty(s.get("messages")), _esc(_text_of(s.get("why")))] for s in _list(res, "splits")]
    return _table("Splits and relays (what fitting a core's fan-in cost)",
                  ("op", "kind", "parts", "extra neurons", "extra cores", "extra steps",
                   "graded spikes", "why"), body, _numeric(2, 3, 4, 5, 6))


def _quant_table(q: dict[str, Any]) -> str:
    rows = _list(q, "layers")
    body = [[_name_html(_text_of(r.get("module_path") or r.get("node"))),
             _esc(_text_of(r.get("op"))), _id(r.get("domain")), _qty(r.get("scale")),
             _esc(_exp_vth(r)), _qty(r.get("max_abs_weight_error")),
             _pct(r.get("rel_weight_error")), _yes_no(r.get("threshold_exact")),
             _pct(r.get("spike_agreement")), _notes(r.get("notes"))] for r in rows]
    domains = q.get("domains")
    n = len(domains) if isinstance(domains, list) else None
    note = (f"for {_text_of(q.get('target'))}; {_text_of(n)} current "
            f"domain{'' if n == 1 else 's'}")
    return _table("Quantization per layer",
                  ("layer", "op", "domain", "scale", "exp / vth", "max |Δw|", "weight error",
                   "threshold exact", "spike agreement", "notes"), body,
                  {**_numeric(2, 3, 5, 6, 8), 9: "notes"}, note if q else "")


def _exp_vth(r: dict[str, Any]) -> str:
    if _num(r.get("weight_exp")) is not None:
        return f"2^{_id(r.get('weight_exp'))}"
    return f"vth {_id(r.get('vth'))}" if _num(r.get("vth")) is not None else ""


def _yes_no(value: object) -> str:
    return DASH if value is None else ("yes" if value else "no")


def _notes(value: object) -> str:
    notes = value if isinstance(value, list) else ([] if value is None else [value])
    return _esc("; ".join(str(n) for n in notes))


def _footer() -> str:
    return ("<footer>Generated by snncc. Costs are per inference, from SANA-FE's simple "
            "latency model (per core max(neuron time, message time), slowest core, plus the "
            "barrier) fed with acsim's event counts; messages are an upper bound for conv "
            "layers. The papers' estimate is E_MAC × encoding MACs + E_AC × SOPs.</footer>")
