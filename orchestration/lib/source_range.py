"""Which days a landing zone covers, without loading it.

A generated world says so in its truth.json; dated file names (``orders_2026-09-01.csv``,
``date=2026-09-01/``) give it from the names alone; otherwise DuckDB (in memory, never the
warehouse) reads the min and max of each table's time column. Labels count: a label that
arrives months after its prediction needs its own day.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb

from orchestration.lib.contract import CONTRACTS, ContractError
from orchestration.lib.raw_loader import DATE_IN_NAME, _is_reader_error, _scan_sql, reader_error, table_files


class SourceRangeError(ValueError):
    """The days a source covers cannot be told."""


def _dated_days(source: Path, files: list[Path]) -> list[date] | None:
    days = [DATE_IN_NAME.search(str(p.relative_to(source))) for p in files]
    if files and all(days):
        return [date.fromisoformat(m.group(1)) for m in days]
    return None


def _time_column_range(files: list[Path], column: str, table: str = "") -> tuple[date, date] | None:
    from orchestration.lib.project_config import load_config

    encoding = load_config().csv.encoding_of(table) if table else "utf-8"
    try:  # the loader's strict reader: a malformed file is the loader's one-line message here too
        scan = _scan_sql(files, table, encoding, mixed=True)  # a CSV day among Parquet days (the loader's rule)
    except ContractError as err:
        raise SourceRangeError(str(err)) from None
    col = '"' + column.replace('"', '""') + '"'
    with duckdb.connect() as conn:
        conn.execute(f"SET TimeZone = '{load_config().timezone}'")  # the loader's zone: its days
        try:
            # via TIMESTAMPTZ: an offset such as +02:00 moves the row to its day in the project's time zone
            low, high = conn.execute(
                f"SELECT min(d), max(d) FROM (SELECT CAST(TRY_CAST(CAST({col} AS VARCHAR) AS TIMESTAMPTZ) AS DATE) AS d "
                f"FROM {scan})"
            ).fetchone()
        except duckdb.Error as err:
            if _is_reader_error(err):
                raise SourceRangeError(str(reader_error(err, table, files, encoding))) from None
            raise SourceRangeError(
                f"{files[0].parent}: cannot read column '{column}' to find the days covered: {str(err).splitlines()[0]}"
            ) from None
    return (low, high) if low is not None else None


def _generated_range(truth: Path) -> tuple[date, date] | None:
    """The days a generated world's truth.json gives; None for no such file, or a user's own truth.json (a trial's
    held its answers, not our keys: the run stopped on a KeyError)."""
    if not truth.is_file():
        return None
    try:
        meta = json.loads(truth.read_text())
        return date.fromisoformat(meta["start_date"]), date.fromisoformat(meta["end_date"])
    except (ValueError, KeyError, TypeError):
        return None


def source_date_range(source: Path) -> tuple[date, date]:
    """First and last day of ``source``: truth.json, else dated file names, else the time columns."""
    source = Path(source)
    if not source.is_dir():
        raise SourceRangeError(f"source directory '{source}' does not exist")
    if generated := _generated_range(source / "truth.json"):
        return generated
    firsts, lasts = [], []
    for contract in CONTRACTS.values():
        if contract.time_column is None:
            continue
        files = table_files(source, contract)
        if not files:
            continue
        days = _dated_days(source, files)
        found = (min(days), max(days)) if days else _time_column_range(files, contract.time_column, contract.name)
        if found:
            firsts.append(found[0])
            lasts.append(found[1])
    if not firsts:
        raise SourceRangeError(
            f"cannot tell which days '{source}' covers: no dated table (predictions, labels, orders, ...) has rows "
            "with a readable time column; pass --start and --end"
        )
    return min(firsts), max(lasts)
