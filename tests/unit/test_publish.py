"""Analyst access: Parquet exports per day and an atomically replaced read-only snapshot."""

from datetime import date, timedelta

import duckdb
import pyarrow.dataset as ds
import pytest

from orchestration.lib.publish import SNAPSHOT_BLOCK_SIZE, publish
from orchestration.lib.settings import dbt_var

DAY1, DAY2 = date(2026, 9, 1), date(2026, 9, 2)


@pytest.fixture
def warehouse(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(db)) as conn:
        conn.execute("CREATE SCHEMA marts; CREATE SCHEMA attribution; CREATE SCHEMA raw_quarantine")
        conn.execute(
            "CREATE TABLE raw_quarantine.orders AS SELECT 'o1' AS order_id, 'null key' AS _reason, DATE '2026-09-01' AS _partition_date"
        )
        conn.execute(
            "CREATE TABLE marts.kpi_daily AS SELECT DATE '2026-09-01' + i::int AS date, 100 + i AS sessions FROM range(2) t(i)"
        )
        conn.execute(
            "CREATE TABLE attribution.model_impact AS SELECT 'm1' AS model_id, DATE '2026-09-02' AS as_of_date, 12.5 AS net_value"
        )
    return db


def test_exports_are_hive_partitioned_parquet_and_replace_their_day(warehouse, tmp_path):
    exports, snapshot = tmp_path / "exports", tmp_path / "analytics.duckdb"
    with duckdb.connect(str(warehouse)) as conn:
        report = publish(conn, exports, snapshot, DAY1, DAY2)
        assert (report.files, report.rows, report.snapshot_tables) == (3, 3, 3)  # quarantine: snapshot only
        publish(conn, exports, snapshot, DAY2, DAY2)  # a re-run of a day replaces, never appends
    kpi = ds.dataset(exports / "kpi_daily", partitioning="hive").to_table().to_pandas()
    assert sorted(kpi["sessions"]) == [100, 101] and len(kpi) == 2
    assert (exports / "kpi_daily" / "date=2026-09-02" / "part.parquet").is_file()
    assert not (exports / "orders").exists()
    with duckdb.connect(str(snapshot), read_only=True) as copy:
        assert copy.execute("SELECT _reason FROM raw_quarantine.orders").fetchall() == [("null key",)]
    impact = ds.dataset(exports / "model_impact", partitioning="hive").to_table().to_pandas()
    assert impact["net_value"].tolist() == [12.5]


def test_snapshot_is_readable_while_it_is_replaced(warehouse, tmp_path):
    exports, snapshot = tmp_path / "exports", tmp_path / "analytics.duckdb"
    with duckdb.connect(str(warehouse)) as conn:
        publish(conn, exports, snapshot, DAY1, DAY2)
    reader = duckdb.connect(str(snapshot), read_only=True)
    with duckdb.connect(str(warehouse)) as conn:  # the pipeline writes and republishes meanwhile
        conn.execute("INSERT INTO marts.kpi_daily VALUES (DATE '2026-09-03', 102)")
        publish(conn, exports, snapshot, date(2026, 9, 3), date(2026, 9, 3))
    assert reader.execute("SELECT count(*) FROM marts.kpi_daily").fetchone()[0] == 2  # the old file, still open
    reader.close()
    with duckdb.connect(str(snapshot), read_only=True) as fresh:
        assert fresh.execute("SELECT count(*) FROM marts.kpi_daily").fetchone()[0] == 3
    assert not list(tmp_path.glob(".analytics.duckdb.*.tmp"))


def exported(exports, table):
    """Rows of an export per day, as the analysts' duckdb query reads them."""
    with duckdb.connect() as conn:
        frame = conn.execute(
            f"SELECT * FROM read_parquet('{exports / table}/*/*.parquet', hive_partitioning = true) ORDER BY ALL"
        ).df()
    return {
        d.date(): sorted(g.drop(columns="date").itertuples(index=False, name=None)) for d, g in frame.groupby("date")
    }


def test_a_run_re_exports_the_days_its_lookback_recomputed(tmp_path):
    """Labels arrive late: a run recomputes model health of the previous label_lookback_days days, so it must
    rewrite those days' exports too (and remove a day that lost its rows), but not older or unrelated days."""
    lookback = int(dbt_var("label_lookback_days"))
    today = date(2026, 10, 20)
    recomputed, vanished, too_old = (
        today - timedelta(days=1),
        today - timedelta(days=lookback),
        today - timedelta(days=lookback + 1),
    )
    exports, snapshot = tmp_path / "exports", tmp_path / "analytics.duckdb"
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        conn.execute("CREATE SCHEMA marts")
        conn.execute("CREATE TABLE marts.model_health_daily (date DATE, model_id VARCHAR, precision DOUBLE)")
        conn.execute("CREATE TABLE marts.retention_cohorts (matured_date DATE, cohort_date DATE, retained DOUBLE)")
        days = [too_old, vanished, recomputed]
        conn.executemany("INSERT INTO marts.model_health_daily VALUES (?, 'm1', 0.5)", [[d] for d in days])
        conn.executemany("INSERT INTO marts.retention_cohorts VALUES (?, ?, 0.3)", [[d, d] for d in days])
        publish(conn, exports, snapshot, too_old, recomputed)  # yesterday's run (a backfill of these days)
        # today's run: late labels change yesterday's precision, drop a day's rows, add today's;
        # the rows of too_old change too but that day is outside the lookback (only a hand edit does that)
        conn.execute("UPDATE marts.model_health_daily SET precision = 0.8 WHERE date = ?", [recomputed])
        conn.execute("UPDATE marts.model_health_daily SET precision = 0.1 WHERE date = ?", [too_old])
        conn.execute("DELETE FROM marts.model_health_daily WHERE date = ?", [vanished])
        conn.execute("INSERT INTO marts.model_health_daily VALUES (?, 'm1', 0.6)", [today])
        conn.execute("UPDATE marts.retention_cohorts SET retained = 0.9 WHERE matured_date = ?", [recomputed])
        report = publish(conn, exports, snapshot, today, today)
    assert exported(exports, "model_health_daily") == {
        too_old: [("m1", 0.5)],  # outside the lookback: untouched
        recomputed: [("m1", 0.8)],  # rewritten with the recomputed value
        today: [("m1", 0.6)],
    }
    assert not (exports / "model_health_daily" / f"date={vanished}").exists()
    assert (exports / "model_health_daily" / f"date={recomputed}" / "part.parquet").is_file()
    # retention cohorts have no lookback: yesterday's export stays as it was published
    [(*_, retained)] = exported(exports, "retention_cohorts")[recomputed]
    assert retained == 0.3
    assert (report.files, report.rows) == (2, 2)  # health: yesterday + today; cohorts: nothing today
    assert not [p for p in exports.rglob(".*")]  # no staging or trash folders left behind


def snapshot_differs(warehouse_conn, snapshot, table) -> int:
    """Rows in one of the warehouse's table and the snapshot's copy but not in the other (0: equal)."""
    warehouse_conn.execute(f"ATTACH '{snapshot}' AS snap (READ_ONLY)")
    try:
        return warehouse_conn.execute(
            f"SELECT (SELECT count(*) FROM (FROM {table} EXCEPT ALL FROM snap.{table})) "
            f"+ (SELECT count(*) FROM (FROM snap.{table} EXCEPT ALL FROM {table}))"
        ).fetchone()[0]
    finally:
        warehouse_conn.execute("DETACH snap")


def test_the_snapshot_takes_a_runs_days_only_and_equals_the_warehouse_on_them(tmp_path):
    """The snapshot is patched with the days a run recomputed (as the exports are), not copied whole: after a
    year, a day costs a day. A hand edit outside those days stays out of it, as it stays out of the exports."""
    lookback = int(dbt_var("label_lookback_days"))
    today = date(2026, 10, 20)
    recomputed, vanished, too_old = today - timedelta(days=1), today - timedelta(days=lookback), date(2026, 9, 1)
    exports, snapshot = tmp_path / "exports", tmp_path / "analytics.duckdb"
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        conn.execute("CREATE SCHEMA marts; CREATE SCHEMA raw_quarantine")
        conn.execute("CREATE TABLE marts.model_health_daily (date DATE, model_id VARCHAR, precision DOUBLE)")
        conn.execute("CREATE TABLE marts.kpi_daily (date DATE, sessions BIGINT)")
        conn.execute("CREATE TABLE raw_quarantine.orders (order_id VARCHAR, _reason VARCHAR, _partition_date DATE)")
        days = [too_old + timedelta(days=i) for i in range((today - too_old).days)]
        conn.executemany("INSERT INTO marts.model_health_daily VALUES (?, 'm1', 0.5)", [[d] for d in days])
        conn.executemany("INSERT INTO marts.kpi_daily VALUES (?, 10)", [[d] for d in days])
        publish(conn, exports, snapshot, days[0], days[-1])  # the backfill so far
        # today's run: late labels change yesterday, a day loses its rows, today arrives, a row is quarantined
        conn.execute("UPDATE marts.model_health_daily SET precision = 0.8 WHERE date = ?", [recomputed])
        conn.execute("DELETE FROM marts.model_health_daily WHERE date = ?", [vanished])
        conn.execute("INSERT INTO marts.model_health_daily VALUES (?, 'm1', 0.6)", [today])
        conn.execute("INSERT INTO marts.kpi_daily VALUES (?, 12)", [today])
        conn.execute("INSERT INTO raw_quarantine.orders VALUES ('o1', 'null key', ?)", [today])
        conn.execute("UPDATE marts.kpi_daily SET sessions = 99 WHERE date = ?", [too_old])  # a hand edit
        publish(conn, exports, snapshot, today, today)
        assert snapshot_differs(conn, snapshot, "marts.model_health_daily") == 0
        assert snapshot_differs(conn, snapshot, "raw_quarantine.orders") == 0
        # the hand-edited day was not part of the run: the snapshot keeps the published row (as the exports do)
        assert snapshot_differs(conn, snapshot, "marts.kpi_daily") == 2
        conn.execute("UPDATE marts.kpi_daily SET sessions = 10 WHERE date = ?", [too_old])
        assert snapshot_differs(conn, snapshot, "marts.kpi_daily") == 0
    assert exported(exports, "kpi_daily")[too_old] == [(10,)]
    assert not list(tmp_path.glob(".analytics.duckdb.*"))


def test_a_snapshot_table_that_does_not_match_the_warehouse_is_copied_whole(tmp_path):
    """A snapshot left by another warehouse (other rows before the run's days), a table whose columns changed
    and a table no longer published: the run's snapshot equals the warehouse all the same."""
    exports, snapshot = tmp_path / "exports", tmp_path / "analytics.duckdb"
    with duckdb.connect(str(tmp_path / "other.duckdb")) as other:
        other.execute("CREATE SCHEMA marts")
        other.execute(
            "CREATE TABLE marts.kpi_daily AS SELECT DATE '2026-08-01' + i::int AS date, 1 AS sessions FROM range(5) t(i)"
        )
        other.execute("CREATE TABLE marts.alerts AS SELECT DATE '2026-09-01' AS date, 'm1' AS model_id")
        other.execute("CREATE TABLE marts.okr_progress AS SELECT DATE '2026-09-01' AS date, 0.5 AS progress")
        publish(other, tmp_path / "other_exports", snapshot, date(2026, 8, 1), date(2026, 9, 1))
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        conn.execute("CREATE SCHEMA marts")
        conn.execute(
            "CREATE TABLE marts.kpi_daily AS SELECT DATE '2026-09-01' + i::int AS date, 7 AS sessions FROM range(3) t(i)"
        )
        conn.execute("CREATE TABLE marts.alerts AS SELECT DATE '2026-09-01' AS date, 'm1' AS model_id, 'psi' AS metric")
        publish(conn, exports, snapshot, date(2026, 9, 3), date(2026, 9, 3))
        assert snapshot_differs(conn, snapshot, "marts.kpi_daily") == 0
        assert snapshot_differs(conn, snapshot, "marts.alerts") == 0
    with duckdb.connect(str(snapshot), read_only=True) as copy:
        tables = copy.execute("SELECT table_schema || '.' || table_name FROM information_schema.tables").fetchall()
    assert sorted(t for (t,) in tables) == ["marts.alerts", "marts.kpi_daily"]


def test_a_snapshot_with_other_blocks_is_rebuilt_with_small_blocks(tmp_path):
    """A snapshot an older version wrote with DuckDB's default blocks: the next run builds it anew, with the
    small blocks that make patching a day cheap, and it still equals the warehouse; later runs patch it."""
    exports, snapshot = tmp_path / "exports", tmp_path / "analytics.duckdb"
    with duckdb.connect(str(snapshot)) as old:  # DuckDB's default block size
        old.execute("CREATE SCHEMA marts")
        old.execute("CREATE TABLE marts.kpi_daily AS SELECT DATE '2026-09-01' AS date, 5 AS sessions")

    def block_size() -> int:
        with duckdb.connect(str(snapshot), read_only=True) as copy:
            return copy.execute("SELECT block_size FROM pragma_database_size()").fetchone()[0]

    assert block_size() != SNAPSHOT_BLOCK_SIZE
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        conn.execute("CREATE SCHEMA marts")
        conn.execute(
            "CREATE TABLE marts.kpi_daily AS SELECT DATE '2026-09-01' + i::int AS date, 7 AS sessions FROM range(3) t(i)"
        )
        publish(conn, exports, snapshot, DAY2, DAY2)
        assert block_size() == SNAPSHOT_BLOCK_SIZE
        assert snapshot_differs(conn, snapshot, "marts.kpi_daily") == 0
        conn.execute("INSERT INTO marts.kpi_daily VALUES (DATE '2026-09-04', 9)")
        publish(conn, exports, snapshot, date(2026, 9, 4), date(2026, 9, 4))
        assert block_size() == SNAPSHOT_BLOCK_SIZE
        assert snapshot_differs(conn, snapshot, "marts.kpi_daily") == 0
    assert not list(tmp_path.glob(".analytics.duckdb.*"))


def test_the_snapshot_holds_the_reports_small_inputs_and_skips_one_it_cannot_read(warehouse, tmp_path):
    # a trial's `impact-ledger report` (the snapshot) left out a monitoring-only model's cost and the label-free
    # estimate's "(N labels)" caveat, which read staging.stg_model_costs and intermediate.int_score_calibration
    from orchestration.lib.report_data import unmeasured_models

    exports, snapshot = tmp_path / "exports", tmp_path / "analytics.duckdb"
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("CREATE SCHEMA raw; CREATE SCHEMA staging; CREATE SCHEMA intermediate")
        conn.execute(
            "CREATE TABLE raw.model_costs AS SELECT 'm2' AS model_id, DATE '2026-09-01' + i::int AS date, "
            "10.0 + i AS total_cost FROM range(3) t(i)"
        )
        conn.execute("CREATE VIEW staging.stg_model_costs AS SELECT * FROM raw.model_costs")
        conn.execute(
            "CREATE TABLE intermediate.int_score_calibration AS SELECT 'm2' AS model_id, 'v1' AS model_version, "
            "i AS score_bin, 7 AS labelled FROM range(4) t(i)"
        )
        conn.execute(
            "CREATE TABLE marts.model_health_daily AS SELECT 'm2' AS model_id, DATE '2026-09-02' AS date, 5 AS predictions"
        )
        publish(conn, exports, snapshot, DAY1, DAY2)
    with duckdb.connect(str(snapshot), read_only=True) as copy:
        assert copy.execute("SELECT sum(labelled) FROM intermediate.int_score_calibration").fetchone()[0] == 28
        # the costs up to the report's day, as the warehouse's view sums them: 10 + 11
        assert unmeasured_models(copy, DAY2, measured=()) == [("m2", 21.0)]
        assert not (exports / "stg_model_costs").exists() and not (exports / "int_score_calibration").exists()
    with duckdb.connect(str(warehouse)) as conn:  # a view over a raw table the warehouse does not keep
        conn.execute("DROP TABLE raw.model_costs")
        publish(conn, exports, snapshot, DAY2, DAY2)
    with duckdb.connect(str(snapshot), read_only=True) as copy:
        tables = {t for (t,) in copy.execute("SELECT schema_name || '.' || table_name FROM duckdb_tables()").fetchall()}
        assert "intermediate.int_score_calibration" in tables and "staging.stg_model_costs" not in tables
        assert unmeasured_models(copy, DAY2, measured=()) == [("m2", None)]
