"""Retraining requests in a small hand-made warehouse: blocked ones re-queued once their window is clean, and the
statuses the retraining job sets reaching what analysts read (the Parquet exports and the analytics snapshot)."""

from datetime import date, timedelta

import duckdb
import pandas as pd
import pytest

from orchestration.defs.retraining.assets import (
    REQUESTS_TABLE,
    ensure_requests_table,
    record_blocked,
    requeue_blocked,
)
from orchestration.lib.publish import publish
from orchestration.lib.quality_gate import ensure_gate_results
from orchestration.lib.retraining import REQUEUED, snapshot_gate

D0 = date(2026, 3, 1)
INPUTS = ("predictions", "labels", "users")


def day(i: int) -> date:
    return D0 + timedelta(days=i)


def gate_reason(failed_day: int) -> str:
    gates = pd.DataFrame(
        [(day(i), t, i != failed_day or t != "labels") for i in range(10) for t in INPUTS],
        columns=["date", "table_name", "passed"],
    )
    return snapshot_gate(gates, INPUTS, day(0), day(9)).reason


@pytest.fixture
def warehouse(tmp_path, monkeypatch):
    monkeypatch.setenv("IMPACT_LEDGER_EXPORTS", str(tmp_path / "exports"))
    monkeypatch.setenv("IMPACT_LEDGER_ANALYTICS_DB", str(tmp_path / "analytics.duckdb"))
    db = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(db)) as conn:
        conn.execute("CREATE SCHEMA marts; CREATE SCHEMA intermediate")
        ensure_requests_table(conn)
        rows = [
            (day(3), "m", "blocked", gate_reason(2)),  # superseded by m's newer request
            (day(9), "m", "blocked", gate_reason(5)),  # labels failed on day 5: the user re-runs it
            (day(8), "n", "blocked", "retraining blocked: equal opportunity (age_band: 55+)"),
            (day(-30), "o", "requested", None),  # an old day no run's lookback reaches
        ]
        for d, m, status, why in rows:
            conn.execute(f"INSERT INTO {REQUESTS_TABLE} VALUES (?, ?, 'drift', '{{}}', 'p', ?, ?)", [d, m, status, why])
        ensure_gate_results(conn)
        for i in range(10):
            for table in INPUTS:
                conn.execute(
                    "INSERT INTO quality.gate_results (date, suite, table_name, passed, failed_expectations, "
                    "rows_validated) VALUES (?, ?, ?, ?, '[]', 100)",
                    [day(i), f"raw_{table}", table, not (i == 5 and table == "labels")],
                )
        conn.execute(
            f"CREATE TABLE intermediate.int_model_versions AS SELECT * FROM (VALUES ('m', DATE '{D0}'), "
            f"('n', DATE '{D0}')) t(model_id, first_date)"
        )
        conn.execute("CREATE TABLE marts.kpi_daily AS SELECT DATE '2026-03-09' AS date, 100 AS sessions")
    return db


def statuses(conn) -> dict:
    rows = conn.execute(f"SELECT date, model_id, status, status_reason FROM {REQUESTS_TABLE} ORDER BY 1, 2").fetchall()
    return {(d, m): (s, r) for d, m, s, r in rows}


def test_a_gate_blocked_request_is_re_queued_once_its_window_is_clean_and_only_the_newest(warehouse):
    with duckdb.connect(str(warehouse)) as conn:
        assert requeue_blocked(conn) == 0  # labels of day 5 still failed: still blocked, for the same reason
        assert statuses(conn)[(day(9), "m")] == ("blocked", gate_reason(5))
        # the user fixes day 5 and re-runs it: its gate passes now
        conn.execute("UPDATE quality.gate_results SET passed = true, rows_validated = 120 WHERE date = ?", [day(5)])
        assert requeue_blocked(conn) == 1
        after = statuses(conn)
    status, reason = after[(day(9), "m")]
    clean = f"every input table (predictions, labels, users) passed its quality gate on every day {day(0)} .. {day(9)}"
    assert status == "requested" and reason == f"{REQUEUED}{clean} (blocked before: {gate_reason(5)})"
    assert after[(day(3), "m")] == ("blocked", gate_reason(2))  # superseded: left as it was
    assert after[(day(8), "n")][0] == "blocked"  # a fairness verdict is not lifted by a clean window


def snapshot_requests(path) -> dict:
    with duckdb.connect(str(path), read_only=True) as conn:
        return statuses(conn)


def exported(exports, d: date) -> list[tuple]:
    frame = pd.read_parquet(exports / "retraining_requests" / f"date={d}" / "part.parquet")
    return sorted(zip(frame["model_id"], frame["status"]))


def test_a_status_the_retraining_job_sets_is_what_the_snapshot_and_the_exports_show(warehouse, tmp_path):
    exports, snapshot = tmp_path / "exports", tmp_path / "analytics.duckdb"
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute(f"UPDATE {REQUESTS_TABLE} SET status = 'requested', status_reason = NULL WHERE date = ?", [day(9)])
        publish(conn, exports, snapshot, day(9), day(9))  # the daily run that raised it
        assert exported(exports, day(9)) == [("m", "requested")]
        # a change the daily publish has not taken yet stays out of the snapshot: only the requests are republished
        conn.execute("UPDATE marts.kpi_daily SET sessions = 999")
        record_blocked(conn, day(9), ["m"], "retraining blocked: equal opportunity")
        assert snapshot_requests(snapshot)[(day(9), "m")] == ("blocked", "retraining blocked: equal opportunity")
        assert exported(exports, day(9)) == [("m", "blocked")]
        assert snapshot_requests(snapshot) == statuses(conn)
    with duckdb.connect(str(snapshot), read_only=True) as conn:
        assert conn.execute("SELECT sessions FROM marts.kpi_daily").fetchall() == [(100,)]


def test_publish_takes_a_status_set_on_a_day_no_lookback_reaches(warehouse, tmp_path):
    """The requests are published whole: a status set at day -30 reaches the exports and the snapshot's copy
    (kept from the last run, patched elsewhere) though the run covers day 10 only."""
    exports, snapshot = tmp_path / "exports", tmp_path / "analytics.duckdb"
    with duckdb.connect(str(warehouse)) as conn:
        publish(conn, exports, snapshot, day(9), day(9))
        assert exported(exports, day(-30)) == [("o", "requested")]
        conn.execute(f"UPDATE {REQUESTS_TABLE} SET status = 'snapshot_ready' WHERE model_id = 'o'")
        publish(conn, exports, snapshot, day(10), day(10))
        assert exported(exports, day(-30)) == [("o", "snapshot_ready")]
        assert exported(exports, day(3)) == [("m", "blocked")]
        assert snapshot_requests(snapshot) == statuses(conn)


def test_the_daily_publish_exports_the_requests_whole(warehouse, tmp_path):
    import dagster as dg
    from dagster_duckdb import DuckDBResource

    from orchestration.defs.publish.assets import analytics_snapshot_asset

    exports = tmp_path / "exports"
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute(f"UPDATE {REQUESTS_TABLE} SET status = 'snapshot_ready' WHERE model_id = 'o'")
    result = dg.materialize(
        [analytics_snapshot_asset],
        partition_key=day(9).isoformat(),
        resources={"duckdb": DuckDBResource(database=str(warehouse))},
    )
    assert result.success
    # day -30 is far before the run's lookback: exported all the same, as the snapshot holds it
    assert exported(exports, day(-30)) == [("o", "snapshot_ready")]
    assert exported(exports, day(9)) == [("m", "blocked")]
    with duckdb.connect(str(warehouse)) as conn:
        assert snapshot_requests(tmp_path / "analytics.duckdb") == statuses(conn)


def test_nothing_to_re_queue_without_requests(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        conn.execute("CREATE SCHEMA marts")
        ensure_requests_table(conn)
        assert requeue_blocked(conn) == 0
