"""HTML building blocks of the daily report: escaped tables, notes, plot slots and the page.

The page is one self-contained file: plotly.js is inlined once, every figure is
a JSON block (<script type="application/json" class="plot-data" data-plot=NAME>)
drawn by one small inline script. Nothing is fetched at view time, and a test
(or an analyst) can read each figure's data without running JavaScript.
No Dagster, no DuckDB here; plotly is imported only when a page is assembled.
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pandas as pd

CSS = """
:root { --ink: #1f2933; --muted: #616e7c; --line: #d9e2ec; --bad: #c62828; --good: #2e7d32; --accent: #1f5fa8; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: #f5f7fa; }
header { background: #102a43; color: #fff; padding: 20px 32px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 0; color: #bcccdc; }
nav { display: flex; flex-wrap: wrap; gap: 4px 14px; padding: 8px 32px; background: #fff; border-bottom: 1px solid var(--line); font-size: 14px; }
nav a { color: var(--accent); text-decoration: none; white-space: nowrap; }
main { max-width: 1280px; margin: 0 auto; padding: 8px 24px 40px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; margin: 18px 0; padding: 12px 20px 18px; }
h2 { font-size: 19px; margin: 6px 0 8px; }
h3 { font-size: 16px; margin: 16px 0 6px; }
p.lead { color: var(--muted); margin: 0 0 10px; }
p.note { background: #fffbea; border-left: 4px solid #f0b429; padding: 8px 12px; margin: 10px 0; }
p.note.ok { background: #effcf6; border-left-color: var(--good); }
section { min-width: 0; overflow-wrap: anywhere; }
details { max-width: 100%; }
.table-wrap { max-width: 100%; overflow-x: auto; margin: 8px 0 12px; }
table { border-collapse: collapse; font-size: 13px; width: 100%; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; overflow-wrap: normal; }
td { word-break: normal; }
th { overflow-wrap: normal; word-break: normal; }  /* "trustworthy", not "trust / worth / y": a wide table scrolls */
th { background: #f0f4f8; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.day { white-space: nowrap; }
ul { margin: 4px 0 10px; padding-left: 22px; font-size: 14px; }
.bad { color: var(--bad); font-weight: 600; }
.good { color: var(--good); font-weight: 600; }
.plot { width: 100%; min-height: 360px; }
.table-scroll { max-height: 420px; overflow-y: auto; }
footer { color: var(--muted); font-size: 12px; text-align: center; padding: 12px; }
"""

# Draws every figure block into its slot (run after the inline plotly.js).
RENDER_JS = """
document.querySelectorAll('script.plot-data').forEach(function (block) {
  var figure = JSON.parse(block.textContent);
  var slot = document.getElementById('plot-' + block.dataset.plot);
  Plotly.newPlot(slot, figure.data, figure.layout, {responsive: true, displaylogo: false});
});
"""


def jsonable(value):
    """Plain JSON values: NaN/inf -> null, numpy scalars -> numbers, dates -> ISO strings."""
    # the plain Python values that make up most of a figure first (a year of history: ~100k of them a report)
    kind = type(value)
    if kind is str or kind is int or value is None:
        return value
    if kind is float:
        return None if math.isnan(value) or math.isinf(value) else value
    if kind is list:
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray, pd.Series)):
        return [jsonable(v) for v in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if isinstance(value, pd.Timestamp):
        # a day (DuckDB DATE arrives as midnight) is written as the day
        return value.date().isoformat() if value == value.normalize() else value.isoformat()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def script_json(value) -> str:
    """JSON safe inside a <script> element: '<', '>' and '&' are escaped so no text can close the element."""
    text = json.dumps(jsonable(value), allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def note(text: str, kind: str = "") -> str:
    """A boxed remark: a warning by default, ``kind="ok"`` for good news (nothing failed)."""
    css = "note ok" if kind == "ok" else "note"
    return f'<p class="{css}">{html.escape(text)}</p>'


def paragraph(text: str) -> str:
    return f'<p class="lead">{html.escape(text)}</p>'


def bullets(lines: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>"


def _cell(value, fmt) -> tuple[str, str]:
    """(escaped text, CSS class) of one table cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT:
        return "", ""
    if fmt is not None:
        return html.escape(fmt(value)), "num"
    if isinstance(value, (pd.Timestamp, datetime, date)):
        return html.escape(str(jsonable(value))), "day"
    if isinstance(value, (bool, np.bool_)):
        return ("yes" if value else "no"), ""
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}", "num"
    if isinstance(value, (float, np.floating)):
        return number(float(value)), "num"
    return html.escape(str(value)), ""


def number(value: float) -> str:
    """A plain number: thousands separated and never in exponent form (100000 is 100,000, not 1e+05)."""
    if not math.isfinite(value):
        return ""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if value == 0 or abs(value) >= 1e-4:
        return f"{value:,.4g}" if "e" not in f"{value:.4g}" else f"{value:,.6f}".rstrip("0").rstrip(".")
    return f"{value:.2e}"


def table(frame: pd.DataFrame, formats: dict | None = None, scroll: bool = False) -> str:
    """An escaped HTML table of ``frame``; ``formats``: column -> callable(value) -> str."""
    formats = formats or {}
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for record in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, record):
            text, css = _cell(value, formats.get(column))
            cells.append(f'<td class="{css}">{text}</td>' if css else f"<td>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    body = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    # a wide table scrolls inside its card instead of overflowing it
    return f'<div class="table-wrap{" table-scroll" if scroll else ""}">{body}</div>'


@dataclass
class Section:
    """One titled part of the page: escaped HTML fragments and its figures (name -> plotly figure dict)."""

    title: str
    parts: list[str] = field(default_factory=list)
    figures: dict[str, dict] = field(default_factory=dict)

    @property
    def anchor(self) -> str:
        return slug(self.title)

    def add(self, fragment: str) -> None:
        self.parts.append(fragment)

    def plot(self, name: str, figure: dict | None, empty_note: str) -> None:
        """A figure slot, or ``empty_note`` instead when the figure has no data (never an empty plot)."""
        if figure is None or not has_data(figure):
            self.add(note(empty_note))
            return
        name = slug(name)
        self.figures[name] = figure
        self.add(f'<div class="plot" id="plot-{name}"></div>')


def _numbers(values) -> list[float]:
    return [v for v in values or [] if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]


def has_data(figure: dict) -> bool:
    """At least one trace with a finite number in y (or x for horizontal bars)."""
    return any(_numbers(t.get("y")) or _numbers(t.get("x")) for t in figure.get("data", []))


def page(title: str, subtitle: str, sections: list[Section], summary: dict) -> str:
    """The whole document: header, table of contents, sections, summary JSON, plotly.js and the figures."""
    from plotly.offline import get_plotlyjs

    names = [name for s in sections for name in s.figures]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"report figures must have unique names; repeated: {sorted(duplicates)}")
    toc = "".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in sections)
    body = "".join(
        f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>{"".join(s.parts)}</section>' for s in sections
    )
    figures = "".join(
        f'<script type="application/json" class="plot-data" data-plot="{name}">{script_json(figure)}</script>'
        for s in sections
        for name, figure in s.figures.items()
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header>"
        f"<nav>{toc}</nav><main>{body}</main>"
        f"<footer>Generated by impact-ledger; self-contained (plotly.js inline, no network needed).</footer>"
        f'<script type="application/json" id="report-summary">{script_json(summary)}</script>'
        f"{figures}<script>{get_plotlyjs()}</script><script>{RENDER_JS}</script></body></html>\n"
    )
