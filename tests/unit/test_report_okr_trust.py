"""An OKR value read from an untrustworthy attribution row is marked in the OKR plot: its bar hatched, in a legend
entry of its own, the reason on hover (as the tables say "NO: reason"); a KPI's value (no row to trust) is not."""

from datetime import date

import duckdb
import pandas as pd

from orchestration.lib.report import UNTRUSTED_PROGRESS
from tests.unit.test_report import AS_OF, DAYS, LATER, build, make_warehouse, okr_rows, parse, trace
from tests.unit.test_report_arms import _table_with, _tables

# a KPI key result: trustworthy is NULL (n/a), never marked
KPI_ROW = dict(date=AS_OF, objective="Grow revenue", key_result="kr_kpi", description="active users 2k")
KPI_ROW |= dict(metric_kind="kpi", metric="active_users", baseline=1000.0, target=2000.0, current_value=1500.0)
KPI_ROW |= dict(progress=0.5, on_track=True, status="on track", start_date=DAYS[0], deadline=date(2026, 6, 30))
KPI_ROW |= dict(expected_progress=0.1)


def with_kpi_result(path):
    with duckdb.connect(str(path)) as conn:
        row = pd.DataFrame([KPI_ROW])
        conn.execute("INSERT INTO marts.okr_progress BY NAME SELECT * FROM row")
    return path


def test_an_untrustworthy_okr_value_is_hatched_with_its_reason_on_hover(tmp_path):
    path = with_kpi_result(make_warehouse(tmp_path / "w.duckdb", optional=True))
    rows = sorted(
        (r for r in [*okr_rows(), KPI_ROW] if r["date"] == AS_OF), key=lambda r: (r["objective"], r["key_result"])
    )
    untrusted = {r["key_result"]: r for r in rows if r.get("trustworthy") is False}
    trusted = {r["key_result"]: r for r in rows if r.get("trustworthy") is not False}
    assert set(untrusted) == {"kr_lift"} and set(trusted) == {"kr_value", "kr_kpi"}  # the planted cases

    report = build(path)
    figure = parse(report.html).figures["okr-progress"]
    marked, plain = trace(figure, UNTRUSTED_PROGRESS), trace(figure, "progress")
    assert dict(zip(marked["x"], marked["y"])) == {k: r["progress"] for k, r in untrusted.items()}
    assert dict(zip(plain["x"], plain["y"])) == {k: r["progress"] for k, r in trusted.items()}
    assert marked["marker"]["pattern"]["shape"] == "/" and "pattern" not in plain["marker"]
    for key, hover in zip(marked["x"], marked["hovertext"]):
        assert untrusted[key]["untrusted_reason"] in hover and "NO" in hover
    assert "hovertext" not in plain
    # each key result keeps its place (and one bar slot) whichever trace its bar is in
    assert marked["offsetgroup"] == plain["offsetgroup"]
    assert figure["layout"]["xaxis"]["categoryarray"] == [r["key_result"] for r in rows]
    assert "A hatched bar is a value that is not all three" in report.html
    # the 100% target line stays in view though every bar is below it
    assert max(r["progress"] for r in rows) < 1 and figure["layout"]["yaxis"]["range"][1] > 1

    shown = {
        r["key_result"]: r["trustworthy and decision-grade"] for r in _table_with(_tables(report.html), "objective")
    }
    assert shown == {"kr_lift": f"NO: {untrusted['kr_lift']['untrusted_reason']}", "kr_value": "yes", "kr_kpi": "n/a"}


def test_a_day_whose_okr_values_are_all_trustworthy_marks_none(tmp_path):
    later = build(make_warehouse(tmp_path / "w.duckdb", optional=True), LATER)
    assert all(r["trustworthy"] for r in okr_rows() if r["date"] == LATER)
    figure = parse(later.html).figures["okr-progress"]
    assert [t["name"] for t in figure["data"] if t["type"] == "bar"] == ["progress", "expected by now (linear pace)"]
    assert "hatched" not in later.html
