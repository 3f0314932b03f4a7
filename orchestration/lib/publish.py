"""Publish marts for analysts without the writer's lock: Parquet exports and a read-only snapshot database.

DuckDB allows one writer process, so analysts never open the warehouse:
they read hive-partitioned Parquet (data/exports/<table>/date=YYYY-MM-DD/) or
the snapshot database data/analytics.duckdb, which is rebuilt in a temporary
file and atomically renamed over the old one (readers holding the old file
keep reading it).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb

# table -> its day column
PUBLISHED = {
    "attribution.experiment_results": "as_of_date",
    "attribution.model_impact": "as_of_date",
    "marts.kpi_daily": "date",
    "marts.kpi_daily_by_segment": "date",
    "marts.retention_cohorts": "matured_date",
    "marts.model_health_daily": "date",
    "marts.feature_drift_daily": "date",
    "marts.leading_lagging": "as_of_date",
    "marts.bias_daily": "date",
    "marts.alerts": "date",
    "marts.okr_progress": "date",
    "marts.metric_scorecard": "date",
    "marts.retraining_requests": "date",
    "quality.gate_results": "date",
}


@dataclass
class PublishReport:
    files: int
    rows: int
    snapshot: Path
    snapshot_tables: int


def _existing(conn: duckdb.DuckDBPyConnection) -> dict[str, str]:
    present = {f"{s}.{t}" for s, t in conn.execute(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_catalog = current_database()").fetchall()}
    return {t: c for t, c in PUBLISHED.items() if t in present}


def export_days(conn: duckdb.DuckDBPyConnection, exports: Path, first: date, last: date) -> tuple[int, int]:
    """Write each published table's rows of first..last as exports/<table>/date=<day>/part.parquet (replacing them)."""
    files = rows = 0
    for table, day_column in _existing(conn).items():
        name = table.split(".")[1]
        day = first
        while day <= last:
            folder = exports / name / f"date={day.isoformat()}"
            shutil.rmtree(folder, ignore_errors=True)  # a re-run replaces the day, never appends
            n = conn.execute(f"SELECT count(*) FROM {table} WHERE {day_column} = ?", [day]).fetchone()[0]
            if n:
                folder.mkdir(parents=True)
                # hive convention: the folder carries `date`, so a `date` column is not repeated in the file
                columns = "* EXCLUDE (date)" if day_column == "date" else "*"
                conn.execute(
                    f"COPY (SELECT {columns} FROM {table} WHERE {day_column} = DATE '{day.isoformat()}') "
                    f"TO '{folder / 'part.parquet'}' (FORMAT parquet)"
                )
                files, rows = files + 1, rows + n
            day += timedelta(days=1)
    return files, rows


def refresh_snapshot(conn: duckdb.DuckDBPyConnection, snapshot: Path) -> int:
    """Copy every published table into a fresh database file, then atomically replace ``snapshot``."""
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    tmp = snapshot.with_name(f".{snapshot.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    # quarantined raw rows too (few, and what the report's quarantine section reads); no Parquet exports
    quarantine = [f"raw_quarantine.{t}" for (t,) in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw_quarantine' "
        "AND table_catalog = current_database() ORDER BY 1").fetchall()]
    tables = [*_existing(conn), *quarantine]
    conn.execute(f"ATTACH '{tmp}' AS snapshot_build")
    try:
        for table in tables:
            schema, _ = table.split(".")
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS snapshot_build.{schema}")
            conn.execute(f"CREATE TABLE snapshot_build.{table} AS SELECT * FROM {table}")
    finally:
        conn.execute("DETACH snapshot_build")
    os.replace(tmp, snapshot)
    return len(tables)


def publish(conn: duckdb.DuckDBPyConnection, exports: Path, snapshot: Path, first: date, last: date) -> PublishReport:
    files, rows = export_days(conn, exports, first, last)
    return PublishReport(files, rows, snapshot, refresh_snapshot(conn, snapshot))
