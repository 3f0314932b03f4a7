"""Analyst access: Parquet exports per day and an atomically replaced read-only snapshot."""

from datetime import date

import duckdb
import pyarrow.dataset as ds
import pytest

from orchestration.lib.publish import publish

DAY1, DAY2 = date(2026, 9, 1), date(2026, 9, 2)


@pytest.fixture
def warehouse(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(db)) as conn:
        conn.execute("CREATE SCHEMA marts; CREATE SCHEMA attribution; CREATE SCHEMA raw_quarantine")
        conn.execute("CREATE TABLE raw_quarantine.orders AS SELECT 'o1' AS order_id, 'null key' AS _reason, DATE '2026-09-01' AS _partition_date")
        conn.execute("CREATE TABLE marts.kpi_daily AS SELECT DATE '2026-09-01' + i::int AS date, 100 + i AS sessions FROM range(2) t(i)")
        conn.execute("CREATE TABLE attribution.model_impact AS SELECT 'm1' AS model_id, DATE '2026-09-02' AS as_of_date, 12.5 AS net_value")
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
