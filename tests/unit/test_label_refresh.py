"""The days a run re-evaluates for late labels, read from intermediate.int_label_refresh_days (hand-picked dates)."""

from datetime import date, timedelta

import duckdb

from orchestration.lib.label_refresh import days_reading, refresh_start, refreshed_dates, spans
from orchestration.lib.publish import export_days
from orchestration.lib.settings import dbt_var

RUN = date(2026, 10, 20)


def d(day: int, month: int = 10) -> date:
    return date(2026, month, day)


def refresh_table(conn, rows, run=(RUN, RUN)) -> None:
    conn.execute("CREATE SCHEMA IF NOT EXISTS intermediate")
    conn.execute(
        "CREATE OR REPLACE TABLE intermediate.int_label_refresh_days (model_id VARCHAR, date DATE, reason VARCHAR, "
        "run_first_day DATE, run_last_day DATE)"
    )
    conn.executemany(
        "INSERT INTO intermediate.int_label_refresh_days VALUES (?, ?, ?, ?, ?)",
        [[m, day, reason, *run] for m, day, reason in rows],
    )


def test_a_run_re_evaluates_its_window_and_the_days_that_got_late_labels():
    window = int(dbt_var("label_lookback_days"))
    fixed = [RUN - timedelta(days=k) for k in range(window, -1, -1)]
    with duckdb.connect() as conn:
        assert refreshed_dates(conn, RUN, RUN) == fixed  # no refresh table yet: the fixed window
        refresh_table(conn, [("m1", RUN, "run"), ("m1", d(15, 7), "late_labels"), ("m2", d(1, 9), "late_labels")])
        assert refreshed_dates(conn, RUN, RUN) == [d(15, 7), d(1, 9), *fixed]
        assert refresh_start(conn, RUN, RUN) == d(15, 7)
        # a table built by another run (dbt did not run for this range): only the fixed window
        assert refreshed_dates(conn, RUN + timedelta(days=1), RUN + timedelta(days=1)) == [
            *fixed[1:],
            RUN + timedelta(days=1),
        ]


def test_trailing_windows_that_read_a_refreshed_day():
    # a 3-day trailing window (the day and 2 before) reads 10-01 on 10-01..10-03 and 10-09 on 10-09..10-10 (the run's last day)
    assert days_reading([d(1), d(9)], 2, d(10)) == [d(1), d(2), d(3), d(9), d(10)]
    assert spans([d(1), d(2), d(3), d(9), d(10)]) == [(d(1), d(3)), (d(9), d(10))]
    assert spans([]) == []


def test_exports_reach_back_to_the_oldest_day_refreshed_for_late_labels(tmp_path):
    """A label 90 days late changes an old day's health row: that day's export is rewritten too;
    tables without label refreshes (retention cohorts) keep their old export."""
    old = RUN - timedelta(days=90)
    exports = tmp_path / "exports"
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        conn.execute("CREATE SCHEMA marts")
        conn.execute("CREATE TABLE marts.model_health_daily (date DATE, model_id VARCHAR, precision DOUBLE)")
        conn.execute("CREATE TABLE marts.retention_cohorts (matured_date DATE, cohort_date DATE, retained DOUBLE)")
        conn.executemany(
            "INSERT INTO marts.model_health_daily VALUES (?, 'm1', 0.5)", [[old], [RUN - timedelta(days=1)]]
        )
        conn.execute("INSERT INTO marts.retention_cohorts VALUES (?, ?, 0.3)", [old, old])
        export_days(conn, exports, old, RUN - timedelta(days=1))  # the history, exported
        conn.execute("UPDATE marts.model_health_daily SET precision = 0.7 WHERE date = ?", [old])
        conn.execute("UPDATE marts.retention_cohorts SET retained = 0.9")
        conn.execute("INSERT INTO marts.model_health_daily VALUES (?, 'm1', 0.6)", [RUN])
        refresh_table(conn, [("m1", RUN, "run"), ("m1", old, "late_labels")])
        export_days(conn, exports, RUN, RUN)
        health = conn.execute(
            f"SELECT date, precision FROM read_parquet('{exports}/model_health_daily/*/*.parquet', "
            "hive_partitioning = true) ORDER BY 1"
        ).fetchall()
        cohorts = conn.execute(
            f"SELECT retained FROM read_parquet('{exports}/retention_cohorts/*/*.parquet')"
        ).fetchall()
    assert health == [(old, 0.7), (RUN - timedelta(days=1), 0.5), (RUN, 0.6)]
    assert cohorts == [(0.3,)]


def test_okr_progress_recomputes_late_labelled_days_of_a_project_without_kpis():
    # a monitoring-only trial: its run refreshed health from 60 days back, yet okr_progress stayed "no_data" there
    # (the start was bounded by marts.kpi_daily's first day, and an empty table gave the run's own first day)
    from orchestration.defs.okrs.assets import refresh_start as okr_refresh_start

    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA marts")
        conn.execute("CREATE TABLE marts.kpi_daily (date DATE)")
        conn.execute("CREATE TABLE marts.model_health_daily AS SELECT DATE '2026-06-01' AS date")
        refresh_table(conn, [("m1", RUN, "run"), ("m1", d(19, 8), "late_labels")])
        assert okr_refresh_start(conn, RUN, RUN) == d(19, 8)
        # never before the first day either input holds
        conn.execute("UPDATE marts.model_health_daily SET date = DATE '2026-09-01'")
        assert okr_refresh_start(conn, RUN, RUN) == d(1, 9)
        # KPIs alone (no health yet): their own lookback, bounded by their first day
        conn.execute("DELETE FROM marts.model_health_daily")
        conn.execute("INSERT INTO marts.kpi_daily VALUES (DATE '2026-10-18')")
        assert okr_refresh_start(conn, RUN, RUN) == d(18)
