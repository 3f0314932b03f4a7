"""Which days a bare ``materialize`` runs: those a landing zone covers, or the days a warehouse fed from a
database has not run yet.

A generated world says so in its truth.json; dated file names (``orders_2026-09-01.csv``,
``date=2026-09-01/``) give it from the names alone; otherwise DuckDB (in memory, never the
warehouse) reads the min and max of each table's time column. Labels count: a label that
arrives months after its prediction needs its own day. A database has no such files, and its
today is never over: a project reading one catches up instead (``catch_up_range``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
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


def source_date_range(source: Path, roots: dict[str, Path] | None = None) -> tuple[date, date]:
    """First and last day of ``source``: truth.json, else dated file names, else the time columns. ``roots``: the
    folder each table is read from (a lake folder, or ``source``), a table left out of it read from no folder (a
    database); then ``source`` may be absent."""
    source = Path(source)
    if not source.is_dir() and roots is None:
        raise SourceRangeError(f"source directory '{source}' does not exist")
    if generated := _generated_range(source / "truth.json"):
        return generated
    firsts, lasts = [], []
    for contract in CONTRACTS.values():
        root = source if roots is None else roots.get(contract.name)
        if contract.time_column is None or root is None or not root.is_dir():
            continue
        files = table_files(root, contract)
        if not files:
            continue
        days = _dated_days(root, files)
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


@dataclass(frozen=True)
class CatchUp:
    """The days a bare ``materialize`` runs when a dated table comes from a database, and why."""

    first: date
    last: date
    yesterday: date
    loaded_through: date | None  # the newest day every database table was loaded (None: none loaded yet)
    stale: tuple[date, ...] = ()  # days already run to run again: their source rows changed, or never loaded

    @property
    def nothing_to_run(self) -> bool:
        return self.first > self.last


def catch_up_range(
    today: date,
    loaded_through: date | None,
    newest_held: date | None,
    stale: list[date],
    sources_first: date | None,
    declared_start: date | None,
) -> CatchUp:
    """The days after ``loaded_through`` (the newest day every database table was loaded) through yesterday (the
    project's ``today`` is still filling up), from the earliest ``stale`` day on (a day already run whose source rows
    changed since, or that was never loaded: a cost feed landing a day late is run again the next morning), through
    ``newest_held`` (the newest day the warehouse holds: the later days read the earlier ones) if later. A
    warehouse that loaded no database day yet starts at the sources' first day (not before ``declared_start``,
    partitions.start)."""
    yesterday = today - timedelta(days=1)
    if loaded_through is None:
        if sources_first is None:
            raise SourceRangeError(
                "cannot tell which days to run: the warehouse has loaded no day from the database yet and no dated "
                "table (predictions, labels, orders, ...) has rows in the database or the landing zone; "
                "pass --start and --end"
            )
        first = max(d for d in (sources_first, declared_start) if d is not None)
        return CatchUp(first, yesterday, yesterday, None)
    stale = sorted({d for d in stale if d <= loaded_through})
    first = min([loaded_through + timedelta(days=1), *stale])
    last = yesterday
    if newest_held is not None and first <= newest_held:  # one run through the newest day: later days read these
        last = max(last, newest_held)
    return CatchUp(first, last, yesterday, loaded_through, tuple(stale))
