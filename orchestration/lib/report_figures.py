"""Plotly building blocks of the daily report: one look for every figure, lines, CI bands, markers, thresholds.

Presentation only (no SQL, no statistics); plotly is imported only when a figure is drawn.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

from orchestration.lib.report_html import jsonable

COLORS = ["#1f5fa8", "#d9822b", "#2e7d32", "#8e24aa", "#00838f", "#6d4c41", "#c2185b", "#546e7a"]
BAD, OK, EXCLUDED = "#c62828", "#1f5fa8", "#9aa5b1"
WITHIN_NOISE = "#e0a030"  # below a limit by its point estimate, but not beyond noise: the verdict passes
LAYOUT = dict(
    template="none",
    font=dict(family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size=12, color="#1f2933"),
    paper_bgcolor="white",
    plot_bgcolor="white",
    margin=dict(l=60, r=20, t=50, b=40),
    legend=dict(orientation="h", y=-0.12),
    hovermode="x unified",
)
AXES = dict(showgrid=True, gridcolor="#e4e7eb", zeroline=False, linecolor="#9aa5b1", showline=True)


def values(series) -> list:
    return jsonable(list(series))


def _merge(target: dict, changes: dict) -> None:
    """plotly's update: nested properties merged, a value replaced, None dropped (plotly leaves it unset)."""
    for key, value in changes.items():
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        elif isinstance(value, dict):
            target[key] = {}
            _merge(target[key], value)
        else:
            target[key] = value


def _axis_keys(refs: list[str], kind: str) -> list[str]:
    """layout keys of axis references: 'x' -> 'xaxis', 'y3' -> 'yaxis3'."""
    return [f"{kind}axis{ref[1:]}" for ref in refs]


class Figure:
    """A report figure as the plain dicts plotly.js reads, with the part of plotly's Figure API the report uses
    (add_trace with row/col, update_layout, update_xaxes / update_yaxes with row/col, data, layout,
    to_plotly_json). Traces and layout changes are nested dicts (``marker=dict(color=...)``, not
    ``marker_color``). plotly's objects validated and copied every property on each call: most of the report's
    time. The empty subplot grid is laid out as plotly's make_subplots lays it out (``new_figure``)."""

    def __init__(self, layout: dict, grid: dict[tuple[int, int], tuple[str, str]]):
        self.layout = layout
        self.grid = grid  # (row, col) -> the subplot's axis references ('x2', 'y2')
        self.data: list[dict] = []

    def add_trace(self, trace: dict, row: int | None = None, col: int | None = None) -> None:
        trace = {k: v for k, v in trace.items() if v is not None}
        if row is not None:
            trace["xaxis"], trace["yaxis"] = self.grid[(row, col or 1)]
        self.data.append(trace)

    def update_layout(self, **changes) -> None:
        _merge(self.layout, changes)

    def _update_axes(self, kind: str, row, col, changes: dict) -> None:
        index = 0 if kind == "x" else 1
        refs = [r[index] for (r_row, r_col), r in self.grid.items() if row in (None, r_row) and col in (None, r_col)]
        for key in _axis_keys(refs, kind):
            _merge(self.layout.setdefault(key, {}), changes)

    def update_xaxes(self, row: int | None = None, col: int | None = None, **changes) -> None:
        self._update_axes("x", row, col, changes)

    def update_yaxes(self, row: int | None = None, col: int | None = None, **changes) -> None:
        self._update_axes("y", row, col, changes)

    def subplot_refs(self, row: int, col: int) -> tuple[str, str]:
        return self.grid[(row, col)]

    def to_plotly_json(self) -> dict:
        return {"data": list(self.data), "layout": dict(self.layout)}


def _height(rows: int, height: int | None) -> int:
    return height or max(320, 260 * rows)


def _grid_args(rows, cols, titles, shared_x, row_heights) -> dict:
    return dict(
        rows=rows,
        cols=cols,
        subplot_titles=titles,
        shared_xaxes=shared_x,
        vertical_spacing=min(0.12, 0.3 / rows) if rows > 1 else 0.1,
        horizontal_spacing=0.08,
        row_heights=row_heights,
    )


def plotly_figure(
    rows: int = 1,
    cols: int = 1,
    titles=None,
    shared_x: bool = False,
    height: int | None = None,
    row_heights: list[float] | None = None,
):
    """The report's look on plotly's own Figure: the tests' oracle for ``new_figure``."""
    from plotly.subplots import make_subplots

    fig = make_subplots(**_grid_args(rows, cols, titles, shared_x, row_heights))
    fig.update_layout(**LAYOUT, height=_height(rows, height))
    # automargin: tick labels (long group names, money) widen the margin instead of being cut
    fig.update_xaxes(**AXES, automargin=True)
    fig.update_yaxes(**AXES, automargin=True)
    return fig


def plotly_subplot_refs(fig, row: int, col: int) -> tuple[str, str]:
    """The axis references ('x2', 'y2') of subplot (row, col) of a plotly figure."""
    axes = fig.get_subplot(row, col)
    return axes.xaxis.plotly_name.replace("axis", ""), axes.yaxis.plotly_name.replace("axis", "")


# plotly's template "none" as its Figure writes it into a layout
NONE_TEMPLATE = {"data": {"scatter": [{"type": "scatter"}]}}


def new_figure(
    rows: int = 1,
    cols: int = 1,
    titles=None,
    shared_x: bool = False,
    height: int | None = None,
    row_heights: list[float] | None = None,
) -> Figure:
    """An empty grid laid out as ``plotly_figure`` lays it out (make_subplots from the top-left cell, with its
    arithmetic), computed here: importing and running plotly's make_subplots cost ~0.3-0.5 s of a report."""
    spacing = _grid_args(rows, cols, titles, shared_x, row_heights)
    across, down = spacing["horizontal_spacing"], spacing["vertical_spacing"]
    widths = [(1.0 - across * (cols - 1)) / cols] * cols
    if row_heights is None:
        heights = [(1.0 - down * (rows - 1)) / rows] * rows
    else:  # given top row first; plotly stacks them from the bottom
        total = float(sum(row_heights))
        heights = [(1.0 - down * (rows - 1)) * (h / total) for h in row_heights][::-1]
    layout = {"template": json.loads(json.dumps(NONE_TEMPLATE))}
    grid, notes = {}, []
    for r in range(rows):  # numbered row by row from the top, as plotly numbers its axes
        below = rows - 1 - r
        bottom = sum(heights[:below]) + below * down
        y_domain = [_on_paper(bottom), _on_paper(bottom + heights[-1 - r])]
        for c in range(cols):
            cell = r * cols + c
            left = sum(widths[:c]) + c * across
            x_domain = [left, left + widths[c]]
            n = str(cell + 1) if cell else ""
            layout[f"xaxis{n}"] = {"anchor": f"y{n}", "domain": x_domain, **AXES, "automargin": True}
            layout[f"yaxis{n}"] = {"anchor": f"x{n}", "domain": list(y_domain), **AXES, "automargin": True}
            grid[(r + 1, c + 1)] = (f"x{n}", f"y{n}")
            if titles is not None and cell < len(titles) and titles[cell]:
                notes.append(_title(titles[cell], sum(x_domain) / 2.0, y_domain[1]))
    if shared_x:  # every column's axes match its bottom one, whose tick labels alone show
        for (r, c), (x, _) in grid.items():
            if r < rows:
                layout[f"xaxis{x[1:]}"].update(matches=grid[(rows, c)][0], showticklabels=False)
    if notes:
        layout["annotations"] = notes
    layout.update(json.loads(json.dumps({k: v for k, v in LAYOUT.items() if k != "template"})))
    layout["height"] = _height(rows, height)
    return Figure(layout, grid)


def _on_paper(y: float) -> float:
    """plotly's rounding of a subplot edge a float error puts just outside the paper."""
    return 0.0 if -0.01 < y < 0.0 else 1.0 if 1.0 < y < 1.01 else y


def _title(text: str, x: float, y: float) -> dict:
    """A subplot title as plotly's make_subplots writes it: centred above the subplot."""
    return dict(
        font=dict(size=16),
        showarrow=False,
        text=text,
        x=x,
        xanchor="center",
        xref="paper",
        y=y,
        yanchor="bottom",
        yref="paper",
    )


def line(fig, x, y, name, color, row=1, col=1, dash=None, group=None, legend=True, mode="lines"):
    if mode == "lines" and sum(v is not None for v in values(y)) == 1:
        mode = "lines+markers"  # a line through one day draws nothing
    fig.add_trace(
        dict(
            type="scatter",
            x=values(x),
            y=values(y),
            name=name,
            mode=mode,
            legendgroup=group or name,
            showlegend=legend,
            line=_present(color=color, width=2, dash=dash),
        ),
        row=row,
        col=col,
    )


def _present(**properties) -> dict:
    """The properties that are set (plotly leaves a None unset)."""
    return {k: v for k, v in properties.items() if v is not None}


def band(fig, x, low, high, name, color, row=1, col=1, group=None):
    """A shaded 95% CI: the upper edge, then the lower edge filled up to it."""

    fill = f"rgba({int(color[1:3], 16)}, {int(color[3:5], 16)}, {int(color[5:7], 16)}, 0.18)"
    x = values(x)
    fig.add_trace(
        dict(
            type="scatter",
            x=x,
            y=values(high),
            mode="lines",
            line=dict(width=0),
            name=f"{name} 95% CI high",
            legendgroup=group or name,
            showlegend=False,
            hoverinfo="skip",
        ),
        row=row,
        col=col,
    )
    fig.add_trace(
        dict(
            type="scatter",
            x=x,
            y=values(low),
            mode="lines",
            line=dict(width=0),
            fill="tonexty",
            fillcolor=fill,
            name=f"{name} 95% CI",
            legendgroup=group or name,
            showlegend=False,
            hoverinfo="skip",
        ),
        row=row,
        col=col,
    )


def markers(fig, x, y, name, row=1, col=1, legend=True):
    fig.add_trace(
        dict(
            type="scatter",
            x=values(x),
            y=values(y),
            name=name,
            mode="markers",
            legendgroup=name,
            showlegend=legend,
            marker=dict(color=BAD, symbol="x", size=9),
        ),
        row=row,
        col=col,
    )


def threshold(fig, y, text, row=1, col=1):
    hline(fig, y, dict(color=BAD, dash="dash", width=1.5), text, "left", BAD, row, col)


def zero(fig, row=1, col=1):
    hline(fig, 0, dict(color="#616e7c", dash="dot", width=1), row=row, col=col)


# ---- Lines and bands across a subplot, as plotly's add_hline / add_vline / add_vrect draw them (the same
# shapes and annotations), kept as plain dicts until done(): plotly validated and copied every earlier layout
# object again on each call, a quarter of the report's time.

# where a horizontal line's text sits: (x along the subplot's width, the text's anchor)
_LINE_END = {"left": (0, "left"), "right": (1, "right")}


def _spans(fig) -> dict:
    return fig.__dict__.setdefault("_spans", {"shapes": [], "annotations": []})


def _subplot_refs(fig, row, col) -> tuple[str, str] | None:
    """The axis references of subplot (row, col), or None when no trace is drawn on it (plotly adds nothing)."""
    x, y = fig.subplot_refs(row, col)
    return (x, y) if any(_prop(t, "xaxis") == x and _prop(t, "yaxis") == y for t in fig.data) else None


def _prop(trace, key: str):
    """A trace's property or None (a dict here, a plotly trace in the tests' oracle figures)."""
    return trace[key] if key in trace else None


def _annotation(text, font_color, **place) -> dict:
    note = dict(showarrow=False, text=text, **place)
    if font_color is not None:
        note["font"] = dict(color=font_color)
    return note


def hline(fig, y, line, text=None, end="right", font_color=None, row=1, col=1) -> None:
    """A horizontal line at ``y`` across subplot (row, col), with ``text`` above it at the left or right end."""
    refs = _subplot_refs(fig, row, col)
    if refs is None:
        return
    x_ref, y_ref = refs
    spans = _spans(fig)
    spans["shapes"].append(dict(line=line, type="line", x0=0, x1=1, xref=f"{x_ref} domain", y0=y, y1=y, yref=y_ref))
    if text is not None:
        x, anchor = _LINE_END[end]
        spans["annotations"].append(
            _annotation(
                text, font_color, x=x, xanchor=anchor, xref=f"{x_ref} domain", y=y, yanchor="bottom", yref=y_ref
            )
        )


def vline(fig, x, line, text=None, font_color=None, row=1, col=1) -> None:
    """A vertical line at ``x`` over the height of subplot (row, col), with ``text`` centred above it."""
    refs = _subplot_refs(fig, row, col)
    if refs is None:
        return
    x_ref, y_ref = refs
    spans = _spans(fig)
    spans["shapes"].append(dict(line=line, type="line", x0=x, x1=x, xref=x_ref, y0=0, y1=1, yref=f"{y_ref} domain"))
    if text is not None:
        spans["annotations"].append(
            _annotation(
                text, font_color, x=x, xanchor="center", xref=x_ref, y=1, yanchor="bottom", yref=f"{y_ref} domain"
            )
        )


def vrect(fig, x0, x1, fillcolor, opacity, row=1, col=1) -> None:
    """A shaded band from ``x0`` to ``x1`` over the height of subplot (row, col), without an outline."""
    refs = _subplot_refs(fig, row, col)
    if refs is None:
        return
    x_ref, y_ref = refs
    _spans(fig)["shapes"].append(
        dict(
            fillcolor=fillcolor,
            line=dict(width=0),
            opacity=opacity,
            type="rect",
            x0=x0,
            x1=x1,
            xref=x_ref,
            y0=0,
            y1=1,
            yref=f"{y_ref} domain",
        )
    )


DAY_MS = 86_400_000
MAX_DAY_TICKS = 8


def _days(xs) -> list[date]:
    out = []
    for x in xs or []:
        try:
            out.append(date.fromisoformat(str(x)[:10]))
        except ValueError:
            return []  # not a day axis (rates, categories)
    return out


def day_axes(fig) -> None:
    """Daily data gets whole-day ticks: plotly would label a short range in hours (00:00, 12:00) and a
    single day in milliseconds. A single day is shown with a day either side."""
    by_axis: dict[str, list[date]] = {}
    for trace in fig.data:
        if _prop(trace, "orientation") == "h":
            continue
        days = _days(_prop(trace, "x"))
        if days:
            by_axis.setdefault(_prop(trace, "xaxis") or "x", []).extend(days)
    for axis, days in by_axis.items():
        first, last = min(days), max(days)
        span = (last - first).days
        step = max(1, -(-span // MAX_DAY_TICKS))  # whole days, at most MAX_DAY_TICKS ticks
        settings = dict(dtick=step * DAY_MS, tickformat="%b %d", hoverformat="%Y-%m-%d")
        if span == 0:
            settings["range"] = [(first - timedelta(days=1)).isoformat(), (last + timedelta(days=1)).isoformat()]
        fig.update_layout(**{f"xaxis{axis[1:]}": settings})


def done(fig) -> dict:
    day_axes(fig)
    out = fig.to_plotly_json()
    for kind, added in fig.__dict__.get("_spans", {}).items():
        if added:
            out["layout"][kind] = [*out["layout"].get(kind, ()), *added]
    return out


def count_axis(fig, largest, row=None, col=None) -> None:
    """A y axis of counts: whole numbers only (no 0.5 row), thousands separated."""
    step = {} if largest is None or largest > 10 else dict(tick0=0, dtick=1)
    fig.update_yaxes(tickformat=",d", rangemode="tozero", **step, row=row, col=col)


def bias_bars(fig, g, bars, colors, row, floor) -> None:
    """Horizontal bars of each group's disparate-impact ratio to the best-off group, with an interval spanning both
    groups' Wilson intervals (``bars``: bias.disparate_impact_relative's ratio, low, high and rate compared).

    Horizontal so a group's label (``female x 25-34``) is read in full on the y axis.
    """

    relative, low, high, what = bars
    rates = {"selected": "selection_rate", "flagged": "selection_rate", "not flagged": "favourable_rate"}
    hover = [
        f"{'selection rate' if w == 'selected' else w} {g[rates[w]].iloc[i]:.3f} [95% CI {g[rates[w] + '_ci_low'].iloc[i]:.3f}, "
        f"{g[rates[w] + '_ci_high'].iloc[i]:.3f}], {int(g['predictions'].iloc[i]):,} predictions, "
        f"{int(g['labelled'].iloc[i]):,} labelled"
        for i, w in enumerate(what)
    ]
    fig.add_trace(
        dict(
            type="bar",
            y=values(g["group_value"].astype(str)),
            x=values(relative),
            orientation="h",
            marker=dict(color=colors),
            name="disparate impact ratio",
            hovertext=hover,
            error_x=dict(
                type="data",
                symmetric=False,
                array=values(high - relative),
                arrayminus=values(relative - low),
                color="#3e4c59",
                thickness=1.2,
            ),
        ),
        row=row,
        col=1,
    )
    fig.update_yaxes(type="category", row=row, col=1)
    fig.update_xaxes(title=dict(text="rate relative to the best-off group"), rangemode="tozero", row=row, col=1)
    vrect(fig, 0, floor, BAD, 0.07, row=row)
    vline(fig, floor, dict(color=BAD, dash="dash", width=1.5), "four-fifths", BAD, row=row)


def significance_markers(fig, x, y, significant, row=1, col=1, legend=True, color=COLORS[0]) -> None:
    """One marker per day on the lift line: filled (in the line's ``color``) where the lift is significant, hollow
    grey where it is not, a grey cross where it was not tested (``significant`` None)."""

    x, y = values(x), values(y)
    for flag, name, marker in (
        (True, "significant (adjusted p < alpha)", dict(color=color, size=7, symbol="circle")),
        (
            False,
            "not significant (interval crosses 0 or adjusted p >= alpha)",
            dict(color="white", size=7, symbol="circle-open", line=dict(color=EXCLUDED, width=1.5)),
        ),
        (None, "not tested (no interval: the headline table says why)", dict(color=EXCLUDED, size=7, symbol="x")),
    ):
        if flag is None and None not in significant:
            continue  # every day tested: no legend entry for what is not there
        # None where the other kind is: the line stays, the markers tell which days are significant
        fig.add_trace(
            dict(
                type="scatter",
                x=x,
                y=[v if s is flag else None for v, s in zip(y, significant)],
                mode="markers",
                name=name,
                legendgroup=name,
                showlegend=legend,
                marker=marker,
                hoverinfo="skip",
            ),
            row=row,
            col=col,
        )


def distribution_bars(labels, reference, current, current_name: str) -> dict:
    """Grouped bars of a feature's share per bin: the reference window beside the drifted day."""

    fig = new_figure(height=320)
    labels = [str(v) for v in labels]
    for name, shares, color in (("reference window", reference, EXCLUDED), (current_name, current, BAD)):
        fig.add_trace(dict(type="bar", x=labels, y=values(shares), name=name, marker=dict(color=color)))
    fig.update_layout(barmode="group", hovermode="x")
    fig.update_xaxes(type="category", title=dict(text="bin (numeric: between reference deciles) or category"))
    fig.update_yaxes(tickformat=".0%", title=dict(text="share of non-null values"), rangemode="tozero")
    return done(fig)
