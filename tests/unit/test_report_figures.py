"""The report's figures are what plotly's own Figure gives for the same calls.

report_figures.Figure keeps a figure as the plain dicts plotly.js reads (plotly's objects validated and copied
every property on each call, most of the report's time); its empty subplot grid is plotly's own. The oracle is
the same report drawn on plotly's Figure (``plotly_figure``): every figure of it, traces and layout, equal.
"""

import json

import duckdb
import pytest
from plotly.utils import PlotlyJSONEncoder

from orchestration.lib import report_figures as rf
from orchestration.lib.report import render_report
from tests.unit.test_report import AS_OF, make_warehouse
from tests.unit.test_report_drift import with_bin_shares


def _on_plotly(*args, **kwargs):
    """plotly's own Figure, with the subplot lookup report_figures asks of its figures."""
    fig = rf.plotly_figure(*args, **kwargs)
    fig.__dict__["subplot_refs"] = lambda row, col: rf.plotly_subplot_refs(fig, row, col)
    return fig


def _figures(db, monkeypatch, on_plotly: bool) -> list[dict]:
    """Every figure the report draws, in order, as JSON."""
    drawn = []
    done = rf.done

    def recorded(fig):
        out = done(fig)
        drawn.append(json.loads(json.dumps(out, cls=PlotlyJSONEncoder)))
        return out

    with monkeypatch.context() as m:
        m.setattr(rf, "done", recorded)
        if on_plotly:
            m.setattr(rf, "new_figure", _on_plotly)
        with duckdb.connect(str(db), read_only=True) as conn:
            render_report(conn, AS_OF)
    return drawn


@pytest.mark.parametrize("optional", [False, True])
def test_every_figure_of_the_report_equals_plotlys_own(tmp_path, monkeypatch, optional):
    db = make_warehouse(tmp_path / "w.duckdb", optional=optional)
    with_bin_shares(db)
    ours, plotlys = _figures(db, monkeypatch, False), _figures(db, monkeypatch, True)
    # lift, value, health, drift distributions, bias, quarantine, KPIs (and OKRs with the optional tables)
    assert len(ours) == len(plotlys) >= 8
    kinds = {t["type"] for f in ours for t in f["data"]}
    assert kinds == {"scatter", "bar"}
    for i, (mine, theirs) in enumerate(zip(ours, plotlys, strict=True)):
        assert mine["data"] == theirs["data"], i
        assert mine["layout"] == theirs["layout"], i


@pytest.mark.parametrize(
    "rows, cols, titles, shared_x, row_heights",
    [
        (1, 1, None, False, None),
        (1, 3, ["a", "b", "c"], False, None),
        (2, 2, ["a", "", "c"], False, [0.7, 0.3]),  # fewer titles than cells, one empty
        (3, 1, ["x", "y", "z"], True, None),
        (4, 2, [f"t{i}" for i in range(9)], True, [1, 2, 3, 4]),  # more titles than cells
        (7, 3, None, False, None),
        (11, 1, [f"m{i}" for i in range(11)], True, None),
    ],
)
def test_an_empty_grid_is_laid_out_as_plotly_lays_it_out(rows, cols, titles, shared_x, row_heights):
    ours = rf.new_figure(rows, cols, titles, shared_x, None, row_heights)
    theirs = rf.plotly_figure(rows, cols, titles, shared_x, None, row_heights)
    assert json.loads(json.dumps(ours.to_plotly_json()["layout"])) == json.loads(
        json.dumps(theirs.to_plotly_json()["layout"], cls=PlotlyJSONEncoder)
    )
    for row in range(1, rows + 1):
        for col in range(1, cols + 1):
            assert ours.subplot_refs(row, col) == rf.plotly_subplot_refs(theirs, row, col)


def test_each_figure_gets_its_own_grid():
    first = rf.new_figure(2, 1, ["a", "b"], shared_x=True)
    rf.line(first, ["2026-01-01", "2026-01-02"], [1, 2], "x", rf.COLORS[0], 2)
    first.update_yaxes(title=dict(text="changed"), row=1, col=1)
    second = rf.new_figure(2, 1, ["c", "d"], shared_x=True, height=500)
    assert second.data == [] and "title" not in second.layout["yaxis"]
    assert [a["text"] for a in second.layout["annotations"]] == ["c", "d"]
    assert second.layout["height"] == 500 and first.layout["height"] == 520


def test_figure_values_become_plain_json_values():
    import math
    from datetime import date, datetime

    import numpy as np
    import pandas as pd

    from orchestration.lib.report_html import jsonable

    given = {
        "plain": ["a", 1, 2.5, None, float("nan"), math.inf, -math.inf, True],
        "numpy": (np.float64("nan"), np.float32(0.5), np.int64(7), np.bool_(False)),
        "pandas": pd.Series([pd.Timestamp("2026-10-01"), pd.Timestamp("2026-10-01 12:30"), pd.NaT, pd.NA]),
        3: {"day": date(2026, 10, 2), "at": datetime(2026, 10, 2, 8, 0)},
    }
    assert jsonable(given) == {
        "plain": ["a", 1, 2.5, None, None, None, None, True],
        "numpy": [None, 0.5, 7, False],
        "pandas": ["2026-10-01", "2026-10-01T12:30:00", None, None],
        "3": {"day": "2026-10-02", "at": "2026-10-02T08:00:00"},
    }
    out = jsonable(given)
    assert [type(v) for v in out["numpy"]] == [type(None), float, int, bool]
