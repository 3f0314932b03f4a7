"""The gates' warnings (an expectation of severity warning, a day passed only by gates.rows.min_count) in the
report's gate tables, as `summary` lists them: the as-of day's per suite, and per suite and warning those of the
last 30 days (how many days, first and latest)."""

import json
from datetime import timedelta

import duckdb

from orchestration import summary
from tests.unit.test_report import AS_OF, DAYS, LATER, build, make_warehouse, parse
from tests.unit.test_report_arms import _table_with, _tables

TOLERATED = (
    "expect_column_values_to_be_in_set(prediction_known) (rows of predictions not loaded; tolerated by "
    "gates.rows.min_count)"
)
STALE = "expect_column_max_to_be_between(event_time)"  # an expectation of severity warning
# (day, suite) -> the warnings stored that day
PLANTED = {
    (AS_OF - timedelta(days=30), "raw_users"): ["expect_old"],  # one day before the report's 30 days
    (DAYS[2], "raw_users"): [STALE],
    (DAYS[5], "raw_orders"): [TOLERATED],
    (AS_OF, "raw_orders"): [TOLERATED, STALE],
    (LATER, "raw_users"): ["expect_later"],  # after the as-of day
}


def with_warnings(path):
    """make_warehouse's gate results with their warnings column (stored as the gate stores it: a JSON list)."""
    with duckdb.connect(str(path)) as conn:
        conn.execute("ALTER TABLE quality.gate_results ADD COLUMN warnings VARCHAR DEFAULT '[]'")
        conn.execute(
            "INSERT INTO quality.gate_results (date, suite, table_name, passed, failed_expectations, rows_validated) "
            "VALUES (?, 'raw_users', 'users', true, '[]', 10)",
            [AS_OF - timedelta(days=30)],
        )
        for (day, suite), names in PLANTED.items():
            conn.execute(
                "UPDATE quality.gate_results SET warnings = ? WHERE date = ? AND suite = ?",
                [json.dumps(names), day, suite],
            )
    return path


AS_OF_TABLE = "suite|table_name|passed|rows_validated|failed_expectations|warnings"


def test_the_gate_tables_show_the_as_of_days_warnings_and_those_of_the_last_30_days(tmp_path):
    report = build(with_warnings(make_warehouse(tmp_path / "w.duckdb")))
    tables = _tables(report.html)

    today = {r["suite"]: r for r in tables[AS_OF_TABLE]}
    assert {s: r["warnings"] for s, r in today.items()} == {"raw_orders": f"{TOLERATED}; {STALE}", "raw_users": ""}
    assert {s: r["passed"] for s, r in today.items()} == {"raw_orders": "pass", "raw_users": "pass"}
    assert parse(report.html).summary["gates"]["warnings_on_as_of"] == {"raw_orders": [TOLERATED, STALE]}

    # the 30 days to the as-of day: the day 30 days before it and the day after it are out
    recent = [(r["suite"], r["warning"], r["days"], r["first"], r["latest"]) for r in _table_with(tables, "warning")]
    assert recent == [
        ("raw_orders", STALE, "1", str(AS_OF), str(AS_OF)),
        ("raw_orders", TOLERATED, "2", str(DAYS[5]), str(AS_OF)),
        ("raw_users", STALE, "1", str(DAYS[2]), str(DAYS[2])),
    ]


def test_no_warnings_leave_the_column_empty_and_add_no_table(tmp_path):
    path = make_warehouse(tmp_path / "w.duckdb")
    with duckdb.connect(str(path)) as conn:
        conn.execute("ALTER TABLE quality.gate_results ADD COLUMN warnings VARCHAR DEFAULT '[]'")
    for db in (path, make_warehouse(tmp_path / "before_the_column.duckdb")):
        tables = _tables(build(db).html)
        assert [r["warnings"] for r in tables[AS_OF_TABLE]] == ["", ""]
        assert not [head for head in tables if "warning" in head.split("|")]


def test_summary_lists_the_same_warnings_over_the_30_days_to_its_newest_gate_result(tmp_path):
    path = with_warnings(make_warehouse(tmp_path / "w.duckdb"))
    with duckdb.connect(str(path), read_only=True) as conn:
        lines = summary._gate_warnings(conn)
    # the newest gate result is LATER's: its warning in, the day 30 days before AS_OF still out (31 before LATER)
    assert AS_OF - DAYS[5] > timedelta(days=1)  # the premise of 'to'
    assert lines == [
        f"raw_orders {STALE}: 1 day(s), {AS_OF}",
        # what it most often means, as a failing day's line says it (a trial's only trace of a missing file)
        # two days apart: 'to', not a range of consecutive days ('..', as everywhere else)
        f"raw_orders {TOLERATED}: 2 day(s), {DAYS[5]} to {AS_OF} (the predictions they point to are not loaded: a "
        "predictions file of those days missing or late? deliver it, then run the days again)",
        f"raw_users {STALE}: 1 day(s), {DAYS[2]}",
        f"raw_users expect_later: 1 day(s), {LATER}",
        # a backfill's warnings of years ago were said nowhere: the days before the 30 are counted (by hand: one)
        f"and 1 earlier day(s) warned, {AS_OF - timedelta(days=30)}: impact-ledger "
        "query \"SELECT date, suite, warnings FROM quality.gate_results WHERE warnings <> '[]' ORDER BY date\"",
    ]
    with duckdb.connect(str(make_warehouse(tmp_path / "old.duckdb")), read_only=True) as conn:
        assert summary._gate_warnings(conn) == []  # results from before the warnings column


def test_a_label_coverage_alert_is_told_of_the_labels_days_held_back_since_it_began(tmp_path):
    # a trial's coverage alerts were labels that came, on days the prediction_known gate held back
    from orchestration.lib.quality_gate import ensure_gate_results

    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        ensure_gate_results(conn)
        for day, suite, passed in (
            (DAYS[0], "raw_labels", False),  # before the alert: not its concern
            (DAYS[2], "raw_labels", False),
            (DAYS[3], "raw_orders", False),  # another table's
            (DAYS[4], "raw_labels", True),
            (DAYS[5], "raw_labels", False),
        ):
            conn.execute(
                "INSERT INTO quality.gate_results (date, suite, table_name, passed) VALUES (?, ?, ?, ?)",
                [day, suite, suite.removeprefix("raw_"), passed],
            )
        said = summary._held_label_days(conn, DAYS[1])
        assert said.startswith(f"the quality gates hold back 2 labels day(s) since {DAYS[1]} ({DAYS[2]}, {DAYS[5]})")
        assert summary._held_label_days(conn, DAYS[6]) is None
