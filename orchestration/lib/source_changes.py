"""Source rows of days already loaded that changed since: found by each run, kept in ``quality.source_changes``.

A landing (or lake) file of an earlier day that arrived or changed after that day was loaded, and a database
table's rows of an earlier day that changed in number or, with the same count, in a numeric column's sum (an update
in place): their rows reach the warehouse only when those days run again. ``materialize`` said so on its console
only; trials' cron users read summary and notifications (a late labels file and database corrections went unsaid
there). Each run's publish step records what it finds (the table replaced whole: a day run again is no longer
changed), so the snapshot, summary, the report and notifications read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb

from orchestration.lib.contract import CONTRACTS

TABLE = "quality.source_changes"
SCHEMA = {"table_name": "VARCHAR", "date": "DATE", "kind": "VARCHAR", "change": "VARCHAR", "found_on": "DATE"}
FILE, BESIDE, DATABASE = "file", "file beside a loaded one", "database rows"


@dataclass(frozen=True)
class SourceChange:
    table: str
    day: date
    kind: str  # FILE, BESIDE or DATABASE
    change: str  # the file's name (and the loaded ones beside it), or how the database rows changed


def database_lookback(first: date) -> date:
    """The first day whose database rows are compared: the longest label horizon (at least 31 days) before the run,
    where late rows land (and a bounded scan)."""
    from orchestration.lib.project_config import load_config

    return first - timedelta(days=max(31, load_config().config.max_label_horizon_days))


def changed_database_rows(conn, first: date, last: date) -> tuple[list, list[str]]:
    """(table, db_sources.ChangedDay) of the database-sourced days already run outside ``first``..``last`` whose rows
    changed since they were loaded (one grouped query per table), and why a table could not be compared."""
    from orchestration.lib.db_sources import SourceError, changed_database_days, source_of

    since = database_lookback(first)
    out, errors = [], []
    for table, contract in CONTRACTS.items():
        source = source_of(table)
        if not contract.time_column or source.kind != "database":
            continue
        try:
            out += [(table, c) for c in changed_database_days(conn, table, source.database, first, last, since)]
        except duckdb.CatalogException:  # the table was never loaded
            continue
        except SourceError as err:  # the run itself read the database: say why this check could not
            errors.append(str(err))
    return out, errors


def late_files(conn, first: date, last: date) -> list:
    """The landing (and lake) files of days outside first..last new or changed since their day was loaded."""
    from orchestration.lib.db_sources import source_of
    from orchestration.lib.landing_files import changed_since_loaded

    roots = {t: s.root for t in CONTRACTS if (s := source_of(t)).kind != "database"}
    return changed_since_loaded(conn, roots, first, last)


def find(conn, first: date, last: date) -> tuple[list[SourceChange], list[str]]:
    """Every source change of days already run outside ``first``..``last``, and why a database could not be read."""
    found = []
    for f in late_files(conn, first, last):
        beside = ", ".join(p.name for p in f.beside)
        found.append(
            SourceChange(
                f.table, f.day, BESIDE if beside else FILE, f.path.name + (f", beside {beside}" if beside else "")
            )
        )
    changed, errors = changed_database_rows(conn, first, last)
    found += [SourceChange(table, c.day, DATABASE, c.said()) for table, c in changed]
    return found, errors


def record(conn, changes: list[SourceChange], found_on: date) -> None:
    """Replace ``quality.source_changes`` with ``changes`` (found by the run ending ``found_on``)."""
    from orchestration.lib.warehouse import ensure_table

    ensure_table(conn, TABLE, SCHEMA)
    conn.execute(f"DELETE FROM {TABLE}")
    if changes:
        conn.executemany(
            f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?)",
            [[c.table, c.day, c.kind, c.change, found_on] for c in changes],
        )


def recorded(conn) -> list[tuple]:
    """(table_name, date, kind, change, found_on) of ``quality.source_changes`` by day and table ([] without it)."""
    try:
        return conn.execute(f"SELECT * FROM {TABLE} ORDER BY date, table_name, change").fetchall()
    except duckdb.CatalogException:
        return []
