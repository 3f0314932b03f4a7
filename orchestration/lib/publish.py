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

from orchestration.lib.label_refresh import refresh_start
from orchestration.lib.settings import dbt_var


@dataclass(frozen=True)
class Published:
    """A published table: its day column, and the dbt vars saying how many days before a run's range its
    producer recomputes (labels and late orders arrive late), so those days' exports are rewritten too.
    Label-based tables also go back to the oldest day the run refreshed for late labels. A ``whole`` table is
    exported and copied whole by every run: its rows change on days no run's lookback reaches."""

    day_column: str
    lookback_vars: tuple[str, ...] = ()
    whole: bool = False

    def lookback_days(self) -> int:
        """The fixed part: days before every run's range that its producer recomputes."""
        return max((int(dbt_var(v)) for v in self.lookback_vars), default=0)


LABELS, KPIS = "label_lookback_days", "kpi_lookback_days"
# Keep in step with the producers: the dbt models' delete pre-hooks (delete_partition_range, delete_label_refresh),
# model_health/alerts.py evaluation_window, okrs/assets.py refresh_start and bias/assets.py (all from
# lib/label_refresh.py for late labels).
PUBLISHED = {
    "attribution.experiment_results": Published("as_of_date"),
    "attribution.model_impact": Published("as_of_date"),
    "marts.kpi_daily": Published("date", (KPIS,)),
    "marts.kpi_daily_by_segment": Published("date", (KPIS,)),
    "marts.retention_cohorts": Published("matured_date"),
    "marts.model_health_daily": Published("date", (LABELS,)),
    "marts.feature_drift_daily": Published("date"),  # PSI needs no labels: only the run's own days change
    "marts.feature_drift_bins": Published("date"),  # the bins behind that PSI (the report draws alerted ones)
    "marts.leading_lagging": Published("as_of_date", (LABELS,)),
    "marts.bias_daily": Published("date", (LABELS,)),
    "marts.bias_group_rates": Published("date", (LABELS,)),
    "marts.bias_verdicts": Published("date", (LABELS,)),
    "marts.alerts": Published("date", (LABELS,)),
    "marts.okr_progress": Published("date", (LABELS, KPIS)),
    "marts.metric_scorecard": Published("date"),
    # re-evaluated with the alerts; the retraining job sets a status, and a run re-queues a request, on any day
    "marts.retraining_requests": Published("date", (LABELS,), whole=True),
    "quality.gate_results": Published("date"),
}


# Small warehouse relations the report reads besides the published tables (model costs per model and day, each
# version's learnt calibration per score bin), copied whole into the snapshot under their own names, without
# Parquet exports: `impact-ledger report` on the snapshot dropped the run's own report's cost lines and its
# label-free estimate's caveats. (A version change's score PSI also reads the new version's predictions: not
# published, so a report from the snapshot says it was not computed.)
REPORT_INPUTS = ("staging.stg_model_costs", "intermediate.int_score_calibration")
# copied whole the same way: replaced whole by every run (lib/source_changes.py), read by the notifications
COPIED_WHOLE = (*REPORT_INPUTS, "quality.source_changes")


@dataclass
class PublishReport:
    files: int
    rows: int
    snapshot: Path
    snapshot_tables: int


def _existing(conn: duckdb.DuckDBPyConnection) -> dict[str, Published]:
    present = {
        f"{s}.{t}"
        for s, t in conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_catalog = current_database()"
        ).fetchall()
    }
    return {t: spec for t, spec in PUBLISHED.items() if t in present}


def _swap_in(staged: Path, target: Path) -> None:
    """Replace the partition folder ``target`` by ``staged`` (or remove it when the day has no rows any more).

    Readers see the old folder or the new one, except for the instant between two renames.
    """
    trash = target.with_name(f".{target.name}.old")
    shutil.rmtree(trash, ignore_errors=True)
    if target.exists():
        target.rename(trash)
    if staged.exists():
        staged.rename(target)
    shutil.rmtree(trash, ignore_errors=True)


def export_table(
    conn: duckdb.DuckDBPyConnection, table: str, day_column: str, folder: Path, first: date, last: date
) -> tuple[int, int]:
    """Rewrite ``folder``/date=<day>/ for every day of first..last from the table's current rows.

    The window is written whole into a staging folder first, then swapped in day by day,
    so a day whose rows changed is replaced and a day without rows any more is removed.
    Returns (files, rows) written.
    """
    staging = folder.parent / f".{folder.name}.staging.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    # hive convention: the folder carries `date`, so a `date` column is not repeated in the file
    columns = (
        "* REPLACE (CAST(date AS DATE) AS date)" if day_column == "date" else f"*, CAST({day_column} AS DATE) AS date"
    )
    folder.mkdir(parents=True, exist_ok=True)
    rows = conn.execute(f"SELECT count(*) FROM {table} WHERE {day_column} BETWEEN ? AND ?", [first, last]).fetchone()[0]
    if rows:
        conn.execute(
            f"COPY (SELECT {columns} FROM {table} WHERE {day_column} BETWEEN DATE '{first}' AND DATE '{last}') "
            f"TO '{staging}' (FORMAT parquet, PARTITION_BY (date), FILENAME_PATTERN 'part')"
        )
    files = 0
    try:
        day = first
        while day <= last:
            staged = staging / f"date={day.isoformat()}"
            written = sorted(staged.glob("*.parquet")) if staged.exists() else []
            if len(written) == 1:  # one file per day, under a stable name
                written[0].rename(staged / "part.parquet")
            files += len(written)
            _swap_in(staged, folder / f"date={day.isoformat()}")
            day += timedelta(days=1)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return files, rows


def export_whole(
    conn: duckdb.DuckDBPyConnection, table: str, exports: Path, first: date, last: date
) -> tuple[int, int]:
    """Export the published ``table`` whole: first..last and every day it holds. Returns (files, rows) written."""
    day_column = PUBLISHED[table].day_column
    lo, hi = conn.execute(f"SELECT min({day_column}), max({day_column}) FROM {table}").fetchone()
    first, last = min(first, lo or first), max(last, hi or last)
    return export_table(conn, table, day_column, exports / table.split(".")[1], first, last)


def changed_since(conn: duckdb.DuckDBPyConnection, first: date, last: date) -> dict[str, date]:
    """Each published table of the warehouse -> the first day a run over first..last may have changed: ``first``
    minus the table's lookback, or the oldest day refreshed for late labels (asked once per run)."""
    existing = _existing(conn)
    lookbacks = {spec.lookback_vars: spec.lookback_days() for spec in existing.values()}
    labels = refresh_start(conn, first, last) if any(LABELS in v for v in lookbacks) else None
    out = {}
    for table, spec in existing.items():
        start = first - timedelta(days=lookbacks[spec.lookback_vars])
        out[table] = min(start, labels) if LABELS in spec.lookback_vars else start
    return out


def export_days(
    conn: duckdb.DuckDBPyConnection, exports: Path, first: date, last: date, since: dict[str, date] | None = None
) -> tuple[int, int]:
    """Export each published table's days that a run over first..last (re)computed: from ``first`` minus the
    table's lookback (or the oldest day refreshed for late labels) to ``last``, replacing those hive partitions,
    so exports always equal the warehouse; a ``whole`` table from there or its first day to its last.
    ``since``: changed_since() if the caller has it."""
    files = rows = 0
    since = since if since is not None else changed_since(conn, first, last)
    for table, start in since.items():
        if PUBLISHED[table].whole:
            f, r = export_whole(conn, table, exports, start, last)
        else:
            f, r = export_table(conn, table, PUBLISHED[table].day_column, exports / table.split(".")[1], start, last)
        files, rows = files + f, rows + r
    return files, rows


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_dead_builds(snapshot: Path) -> list[Path]:
    """Snapshot builds (and their WAL) left by a process that was killed mid-write: nobody will rename them."""
    removed = []
    for path in snapshot.parent.glob(f".{snapshot.name}.*.tmp*"):
        pid = path.name[len(snapshot.name) + 2 :].split(".")[0]
        if pid.isdigit() and not _alive(int(pid)):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _columns_by_table(conn: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, list[tuple[str, str]]]:
    """schema.table -> its (column, type) in order, for every table of an attached database (one catalog query)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for schema, table, column, dtype in conn.execute(
        "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = ? ORDER BY table_schema, table_name, ordinal_position",
        [catalog],
    ).fetchall():
        out.setdefault(f"{schema}.{table}", []).append((column, dtype))
    return out


def _readable(conn: duckdb.DuckDBPyConnection, relation: str) -> bool:
    """``relation`` exists in the warehouse and can be read (a staging view over raw tables another engine keeps
    may not)."""
    try:
        conn.execute(f"SELECT * FROM {relation} LIMIT 0")
    except duckdb.Error:
        return False
    return True


def _count(conn: duckdb.DuckDBPyConnection, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def _refresh_days(conn: duckdb.DuckDBPyConnection, table: str, since: date, last: date) -> bool:
    """Replace in the snapshot build the days since..last of ``table`` (those a run may have changed). False,
    with nothing changed, when the build's table then differs from the warehouse's in row count."""
    build, day = f"snapshot_build.{table}", PUBLISHED[table].day_column
    conn.execute("BEGIN TRANSACTION")
    conn.execute(f"DELETE FROM {build} WHERE {day} BETWEEN ? AND ?", [since, last])
    conn.execute(f"INSERT INTO {build} SELECT * FROM {table} WHERE {day} BETWEEN ? AND ?", [since, last])
    if _count(conn, build) != _count(conn, table):
        conn.execute("ROLLBACK")
        return False
    conn.execute("COMMIT")
    return True


# DuckDB's smallest block size. An append gives each column of the table a new block-sized segment, zeroed
# fresh memory: with the default 256 KiB, patching the snapshot's ~20 tables cost ~90 MB of page faults
# (~0.7 s here) for a few hundred rows. Its tables are aggregates, small at any volume.
SNAPSHOT_BLOCK_SIZE = 16384


def _attach_build(conn: duckdb.DuckDBPyConnection, build: Path) -> None:
    """Attach ``build`` as snapshot_build with SNAPSHOT_BLOCK_SIZE blocks. A copy of the snapshot that DuckDB
    refuses so (one an older version wrote with other blocks) is dropped: the build then starts empty and
    every table is copied. Only the copy goes; the published snapshot stays until the build replaces it."""
    attach = f"ATTACH '{build}' AS snapshot_build (BLOCK_SIZE {SNAPSHOT_BLOCK_SIZE})"
    try:
        conn.execute(attach)
    except duckdb.InvalidInputException:
        if not build.exists():
            raise
        build.unlink()
        conn.execute(attach)


def refresh_snapshot(
    conn: duckdb.DuckDBPyConnection, snapshot: Path, since: dict[str, date] | None = None, last: date | None = None
) -> int:
    """Build the snapshot of every published table in a new file, then atomically replace ``snapshot``.

    Given a run's changed days (``since``: changed_since(), up to ``last``) and a snapshot in place, the build
    starts as a copy of it and each table only gets those days, as the exports do: a day after a year of
    history costs about what a day costs. A table whose columns differ, or whose row count then differs from
    the warehouse's (e.g. a snapshot of another warehouse), is copied whole."""
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_builds(snapshot)
    tmp = snapshot.with_name(f".{snapshot.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    # quarantined raw rows too (few, and what the report's quarantine section reads); no Parquet exports
    quarantine = [
        f"raw_quarantine.{t}"
        for (t,) in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw_quarantine' "
            "AND table_catalog = current_database() ORDER BY 1"
        ).fetchall()
    ]
    inputs = [t for t in COPIED_WHOLE if _readable(conn, t)]
    tables = [*_existing(conn), *quarantine, *inputs]
    # a detached snapshot holds no WAL (DuckDB checkpoints it then): copying the file copies all of it
    wal = snapshot.with_name(f"{snapshot.name}.wal")
    if since is not None and last is not None and snapshot.exists() and not wal.exists():
        shutil.copyfile(snapshot, tmp)
    _attach_build(conn, tmp)
    try:
        kept = _columns_by_table(conn, "snapshot_build")
        current = _columns_by_table(conn, conn.execute("SELECT current_database()").fetchone()[0])
        for table in set(kept) - set(tables):  # no longer published
            conn.execute(f"DROP TABLE snapshot_build.{table}")
        for table in tables:
            patchable = since is not None and table in since and kept.get(table) == current.get(table)
            if patchable and _refresh_days(conn, table, since[table], last):
                continue
            schema, _ = table.split(".")
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS snapshot_build.{schema}")
            conn.execute(f"CREATE OR REPLACE TABLE snapshot_build.{table} AS SELECT * FROM {table}")
    finally:
        conn.execute("DETACH snapshot_build")
    os.replace(tmp, snapshot)
    return len(tables)


def publish(conn: duckdb.DuckDBPyConnection, exports: Path, snapshot: Path, first: date, last: date) -> PublishReport:
    """A run over first..last published: its changed days exported, the snapshot refreshed (``whole`` tables
    exported whole and, left out of the days given to refresh_snapshot, copied whole)."""
    since = changed_since(conn, first, last)
    files, rows = export_days(conn, exports, first, last, since)
    days = {t: start for t, start in since.items() if not PUBLISHED[t].whole}
    return PublishReport(files, rows, snapshot, refresh_snapshot(conn, snapshot, days, last))
