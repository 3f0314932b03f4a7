"""Load one partition day of one raw table from a source directory into DuckDB.

Enforces the contract in SQL so a day of a million rows never becomes a Python
loop: a missing required column or an uncastable value stops the load with a
`ContractError` naming file, table and column; rows that break a row rule go to
``raw_quarantine.<table>`` with ``_reason``. Re-loading a day replaces it, so
loads are idempotent. Rows read = rows loaded + rows quarantined, always.
Every table but users is optional: absent from the source, it is loaded empty
with a note. A missing optional column loads as null.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from orchestration.lib.contract import CONTRACTS, ContractError, TableContract
from orchestration.lib.quality_gate import ensure_gate_results

SUFFIXES = (".parquet", ".csv")
DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")
META_COLUMNS = ("_partition_date", "_source_file", "_source_row")


@dataclass
class LoadReport:
    table: str
    partition_date: date
    files: list[str] = field(default_factory=list)
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    note: str = ""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def table_files(source: Path, contract: TableContract) -> list[Path]:
    """All files of a table: ``<source>/<table>/**`` or ``<source>/<table>.parquet|csv``."""
    folder = source / contract.name
    if folder.is_dir():
        return sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
    return [p for p in (source / f"{contract.name}{s}" for s in SUFFIXES) if p.is_file()]


def files_for_day(source: Path, contract: TableContract, files: list[Path], day: date) -> tuple[list[Path], bool]:
    """The files holding ``day``'s rows and whether they are dated.

    If every file name carries a date (``orders_2026-09-01.parquet``,
    ``date=2026-09-01/``) only that day's files are read and rows stamped with
    another day are quarantined; otherwise every file is read and rows are
    split by the time column. Dimension snapshots are always read whole.
    """
    if contract.time_column is None:
        return files, False
    dated = {p: DATE_IN_NAME.search(str(p.relative_to(source))) for p in files}
    if files and all(dated.values()):
        return [p for p, m in dated.items() if m.group(1) == day.isoformat()], True
    return files, False


def _scan_sql(files: list[Path]) -> str:
    listed = ", ".join(_sql_str(str(p)) for p in files)
    if all(p.suffix.lower() == ".parquet" for p in files):
        return f"read_parquet([{listed}], union_by_name = true, filename = true)"
    if all(p.suffix.lower() == ".csv" for p in files):
        return f"read_csv([{listed}], union_by_name = true, filename = true, all_varchar = true, header = true)"
    raise ContractError(f"mixed Parquet and CSV files for one table: {[str(p) for p in files]}; use one format per table")


def _cast(expr: str, dtype: str) -> str:
    """TRY_CAST to a contract type. Timestamps go through TIMESTAMPTZ: an offset (`Z`, `+02:00`, `-05:00`)
    moves the value to UTC (a plain TRY_CAST to TIMESTAMP drops it); naive values are UTC already
    (the loader's session time zone is UTC)."""
    if dtype == "TIMESTAMP":
        return f"CAST(TRY_CAST({expr} AS TIMESTAMPTZ) AS TIMESTAMP)"
    return f"TRY_CAST({expr} AS {dtype})"


def _file_columns(conn: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    return [row[0] for row in conn.execute(f"DESCRIBE SELECT * FROM {_scan_sql([path])}").fetchall()]


def check_columns(conn: duckdb.DuckDBPyConnection, contract: TableContract, files: list[Path]) -> None:
    for path in files:
        present = set(_file_columns(conn, path))
        for col in contract.columns:
            if col.required and col.name not in present:
                raise ContractError(
                    f"{path}: table '{contract.name}' is missing required column '{col.name}' "
                    f"(the contract requires {', '.join(contract.column_names)})"
                )


def check_types(conn: duckdb.DuckDBPyConnection, contract: TableContract, scan: str, present: set[str]) -> None:
    """Every present contract column must cast to its type, or the load stops."""
    cols = [c for c in contract.columns if c.name in present]
    if not cols:
        return
    counts = ", ".join(
        f"count_if({_quote(c.name)} IS NOT NULL AND {_cast(_quote(c.name), c.type)} IS NULL)" for c in cols
    )
    bad = conn.execute(f"SELECT {counts} FROM {scan}").fetchone()
    for col, n_bad in zip(cols, bad):
        if n_bad:
            q = _quote(col.name)
            examples = conn.execute(
                f"SELECT filename, CAST({q} AS VARCHAR) FROM {scan} "
                f"WHERE {q} IS NOT NULL AND {_cast(q, col.type)} IS NULL LIMIT 3"
            ).fetchall()
            raise ContractError(
                f"{examples[0][0]}: table '{contract.name}', column '{col.name}': {n_bad} value(s) cannot be cast to "
                f"{col.type}, e.g. {[e[1] for e in examples]}"
            )


def _typed_select(contract: TableContract, present: list[str], partition_date: str) -> str:
    """Typed contract columns, extra columns as read, and the meta columns (``partition_date`` is SQL)."""
    parts = []
    for col in contract.columns:
        q = _quote(col.name)
        parts.append(f"{_cast(q, col.type)} AS {q}" if col.name in present else f"CAST(NULL AS {col.type}) AS {q}")
    extras = [c for c in present if c not in contract.column_names and c != "filename" and c not in META_COLUMNS]
    parts += [_quote(c) for c in extras]
    parts += [f"{partition_date} AS _partition_date", "filename AS _source_file", "row_number() OVER () AS _source_row"]
    return ", ".join(parts)


def _time_day(contract: TableContract) -> str:
    """The UTC day of a row's time column, as SQL over the raw (untyped) scan."""
    time_type = {c.name: c.type for c in contract.columns}[contract.time_column]
    return f"CAST({_cast(_quote(contract.time_column), time_type)} AS DATE)"


def _reason_sql(contract: TableContract, day: date, dated: bool) -> str:
    cases = [f"CASE WHEN coalesce({r.violated_when}, false) THEN {_sql_str(r.reason)} END" for r in contract.rules]
    if contract.key:
        cases.append(f"CASE WHEN _key_rank > 1 THEN {_sql_str('duplicate key (' + ', '.join(contract.key) + ')')} END")
    if contract.time_column and dated:
        tc = _quote(contract.time_column)
        cases.append(
            f"CASE WHEN {tc} IS NULL THEN {_sql_str('null ' + contract.time_column)} "
            f"WHEN CAST({tc} AS DATE) <> DATE '{day.isoformat()}' "
            f"THEN {_sql_str(f'{contract.time_column} outside partition day {day.isoformat()}')} END"
        )
    return "concat_ws('; ', " + ", ".join(cases) + ")" if cases else "''"


def _ensure_all_tables(conn: duckdb.DuckDBPyConnection) -> None:
    """Create every contract table, so referential rules always have a table to read (an optional table
    absent from the source stays empty, with every contract column), and quality.gate_results, which the
    dbt staging views read to hold back the days whose gate failed."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS raw; CREATE SCHEMA IF NOT EXISTS raw_quarantine")
    meta = "_partition_date DATE, _source_file VARCHAR, _source_row BIGINT"
    for contract in CONTRACTS.values():
        cols = ", ".join(f"{_quote(c.name)} {c.type}" for c in contract.columns)
        conn.execute(f"CREATE TABLE IF NOT EXISTS raw.{contract.name} ({cols}, {meta})")
        conn.execute(f"CREATE TABLE IF NOT EXISTS raw_quarantine.{contract.name} ({cols}, {meta}, _reason VARCHAR)")
    ensure_gate_results(conn)


def _add_extra_columns(conn: duckdb.DuckDBPyConnection, table: str) -> None:
    """Extra source columns are kept: add any the raw tables do not have yet."""
    for name, dtype, *_ in conn.execute("DESCRIBE (SELECT * EXCLUDE (_reason) FROM _checked)").fetchall():
        for schema in ("raw", "raw_quarantine"):
            conn.execute(f"ALTER TABLE {schema}.{table} ADD COLUMN IF NOT EXISTS {_quote(name)} {dtype}")


def _prepare(conn: duckdb.DuckDBPyConnection, contract: TableContract, files: list[Path], dated: bool) -> tuple[str, list[str]]:
    """Check the files' columns and types (once per run for undated files) -> the scan SQL and its columns."""
    check_columns(conn, contract, files)
    scan = _scan_sql(files)
    present = [r[0] for r in conn.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()]
    check_types(conn, contract, scan, set(present))
    if contract.time_column and not dated:
        tc = _quote(contract.time_column)
        nulls = conn.execute(f"SELECT count(*) FROM {scan} WHERE {tc} IS NULL").fetchone()[0]
        if nulls:
            raise ContractError(
                f"{files[0].parent}: table '{contract.name}', column '{contract.time_column}': {nulls} row(s) have "
                "no timestamp and the file names carry no date, so the rows cannot be placed in a partition day; "
                "name files <table>_YYYY-MM-DD.parquet|csv to have such rows quarantined instead"
            )
    return scan, present


def _stage_undated(conn: duckdb.DuckDBPyConnection, contract: TableContract, scan: str, present: list[str],
                   first: date, last: date) -> None:
    """Undated files hold every day: read them once per run into temp table ``_undated``, placed by their time column."""
    day = _time_day(contract)
    conn.execute(f"CREATE OR REPLACE TEMP TABLE _undated AS SELECT {_typed_select(contract, present, day)} FROM {scan} "
                 f"WHERE {day} BETWEEN DATE '{first.isoformat()}' AND DATE '{last.isoformat()}'")


def _stage(conn: duckdb.DuckDBPyConnection, contract: TableContract, rows_sql: str, day: date, dated: bool) -> None:
    """The day's typed rows (``rows_sql``) with their ``_reason``, in temp tables ``_typed`` and ``_checked``."""
    conn.execute(f"CREATE OR REPLACE TEMP TABLE _typed AS {rows_sql}")
    rank = "1"
    if contract.key:
        order = _quote(contract.key_order or contract.time_column or contract.key[0])
        rank = f"row_number() OVER (PARTITION BY {', '.join(map(_quote, contract.key))} ORDER BY {order}, _source_row)"
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE _checked AS SELECT * EXCLUDE (_key_rank), "
        f"{_reason_sql(contract, day, dated)} AS _reason FROM (SELECT *, {rank} AS _key_rank FROM _typed) t"
    )


def load_partition(conn: duckdb.DuckDBPyConnection, table: str, source: Path, day: date) -> LoadReport:
    """Replace ``day``'s rows of ``raw.<table>`` (and its quarantine) from ``source``."""
    return load_days(conn, table, source, [day])[0]


def load_days(conn: duckdb.DuckDBPyConnection, table: str, source: Path, days: list[date]) -> list[LoadReport]:
    """Replace each day's rows of ``raw.<table>`` (and its quarantine) from ``source``, one transaction per day.

    Undated files are checked and read once for all the days (a year of days must not re-read the
    files 365 times); dated files are read day by day; a snapshot is read whole.
    """
    contract = CONTRACTS[table]
    source = Path(source)
    if not source.is_dir():
        raise ContractError(f"source directory '{source}' does not exist (set IMPACT_LEDGER_SOURCE or --source)")
    all_files = table_files(source, contract)
    if not all_files and not contract.optional:
        raise ContractError(f"no files for table '{table}' under '{source}' (expected {source / table}/*.parquet or *.csv; "
                            f"'{table}' is the one table every source needs)")
    conn.execute("SET TimeZone = 'UTC'")
    _ensure_all_tables(conn)
    undated = bool(all_files) and contract.time_column is not None and not files_for_day(source, contract, all_files, days[0])[1]
    if undated:
        scan, present = _prepare(conn, contract, all_files, dated=False)
        _stage_undated(conn, contract, scan, present, min(days), max(days))
    reports = []
    for day in days:
        files, dated = files_for_day(source, contract, all_files, day)
        if undated:
            rows_sql = f"SELECT * FROM _undated WHERE _partition_date = DATE '{day.isoformat()}'"
        elif files:
            scan, present = _prepare(conn, contract, files, dated)
            day_sql = f"DATE '{day.isoformat()}'"
            rows_sql = f"SELECT {_typed_select(contract, present, day_sql)} FROM {scan}"
        reports.append(_replace_day(conn, contract, day, files, dated, rows_sql if files else None, bool(all_files)))
    if undated:
        conn.execute("DROP TABLE IF EXISTS _undated")
    return reports


def _replace_day(conn: duckdb.DuckDBPyConnection, contract: TableContract, day: date, files: list[Path], dated: bool,
                 rows_sql: str | None, table_present: bool) -> LoadReport:
    table = contract.name
    report = LoadReport(table, day, [str(p) for p in files])
    conn.execute("BEGIN TRANSACTION")
    try:
        if rows_sql is not None:
            _stage(conn, contract, rows_sql, day, dated)
            _add_extra_columns(conn, table)
        if contract.time_column is None:
            conn.execute(f"DELETE FROM raw.{table}; DELETE FROM raw_quarantine.{table}")
        else:
            conn.execute(f"DELETE FROM raw.{table} WHERE _partition_date = DATE '{day.isoformat()}'")
            conn.execute(f"DELETE FROM raw_quarantine.{table} WHERE _partition_date = DATE '{day.isoformat()}'")
        if rows_sql is not None:
            conn.execute(f"INSERT INTO raw.{table} BY NAME SELECT * EXCLUDE (_reason) FROM _checked WHERE _reason = ''")
            conn.execute(f"INSERT INTO raw_quarantine.{table} BY NAME SELECT * FROM _checked WHERE _reason <> ''")
            report.rows_read = conn.execute("SELECT count(*) FROM _typed").fetchone()[0]
            report.quarantine_reasons = dict(
                conn.execute("SELECT _reason, count(*) FROM _checked WHERE _reason <> '' GROUP BY 1 ORDER BY 2 DESC").fetchall()
            )
            report.rows_quarantined = sum(report.quarantine_reasons.values())
            report.rows_loaded = report.rows_read - report.rows_quarantined
            conn.execute("DROP TABLE _typed; DROP TABLE _checked")
        else:
            report.note = (f"table absent from source (optional): raw.{table} is empty" if not table_present
                           else "no source rows for this day")
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    return report
