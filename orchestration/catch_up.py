"""What a bare `impact-ledger materialize` runs when tables come from a database: the days after the warehouse's
newest day loaded from it through yesterday in the project's zone, the days already run whose source rows changed
since, and the newest failed run's (orchestration.lib.source_range.catch_up_range is the rule; this module gathers
its inputs from the project file, the warehouse and the sources, and says the result)."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from orchestration.lib.contract import CONTRACTS
from orchestration.lib.settings import warehouse_path

NOTE_FILES = 5  # the days already run a line names


class CatchUpError(ValueError):
    """The days to run cannot be found (the warehouse is busy or unreadable, a database unreachable)."""


def database_tables() -> list[str]:
    """The dated contract tables the project file's sources read from a database."""
    from orchestration.lib.project_config import load_config

    sources = load_config().sources
    return [t for t, c in CONTRACTS.items() if c.time_column and t in sources and sources[t].database is not None]


def file_roots(source: Path) -> dict[str, Path]:
    """The folder each table not read from a database is read from: ``source`` (the landing zone this command was
    given) or its lake folder."""
    from orchestration.lib.db_sources import source_of

    roots = {t: s for t in CONTRACTS if (s := source_of(t)).kind != "database"}
    return {t: Path(source) if s.kind == "landing" else s.root for t, s in roots.items()}


def plan(source: Path, failed_run_days: Callable[[], tuple[date, date] | None]):
    """source_range.catch_up_range of this project: the warehouse's newest day loaded from the database, the days
    already run to run again (their source rows changed since, or never loaded), today in the project's zone."""
    import duckdb

    from orchestration.lib.db_sources import SourceError, database_first_day, source_of
    from orchestration.lib.project_config import load_config
    from orchestration.lib.source_range import SourceRangeError, catch_up_range, source_date_range
    from orchestration.lib.writer_lock import WarehouseBusy, exclusive_writer

    config = load_config()
    tables = database_tables()
    loaded_through = newest_held = None
    stale: list[tuple[date, str]] = []
    warehouse = warehouse_path()
    if warehouse.exists():
        try:  # not while another run writes it (its lock is taken again for the run)
            with (
                exclusive_writer(warehouse, "impact-ledger materialize (finding the days to run)"),
                duckdb.connect(str(warehouse), read_only=True) as conn,
            ):
                loaded_through, newest_held = newest_loaded(conn, tables)
                if loaded_through is not None:
                    stale = stale_days(conn, loaded_through + timedelta(days=1))
                    if failed := failed_run_days():  # its gates judged its days, its later steps never ran
                        stale = sorted([*stale, (failed[0], f"the newest run, of {failed[0]} .. {failed[1]}, failed")])
        except WarehouseBusy as err:
            raise CatchUpError(str(err)) from None
        except duckdb.Error as err:
            raise CatchUpError(
                f"cannot read {warehouse} to find the days to run: {str(err).splitlines()[0]}; pass --start and --end"
            ) from None
    sources_first = None
    if loaded_through is None:  # a first run: from the sources' first day
        try:
            firsts = [database_first_day(t, source_of(t).database) for t in tables]
        except SourceError as err:
            raise CatchUpError(f"{err} (finding the first day to run; or pass --start and --end)") from None
        try:
            firsts.append(source_date_range(source, file_roots(source))[0])
        except SourceRangeError:  # no dated file: the database's days alone
            pass
        sources_first = min((d for d in firsts if d is not None), default=None)
    declared = os.environ.get("IMPACT_LEDGER_START_DATE")
    start = date.fromisoformat(declared) if declared else config.partitions.start
    catch_up = catch_up_range(
        today(config.timezone),
        loaded_through,
        newest_held,
        [day for day, _ in stale],
        sources_first,
        start if isinstance(start, date) else None,
    )
    return catch_up, stale, config.timezone


def today(zone: str) -> date:
    """Today in the project's time zone (its days are that zone's)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo(zone)).date()


def newest_loaded(conn, tables: list[str]) -> tuple[date | None, date | None]:
    """(the newest day every database table in ``tables`` was loaded, the newest day any table was): the gates judge
    each table's every day run (a day without rows too); (None, None) before any."""
    import duckdb

    try:
        newest = dict(
            conn.execute(
                "SELECT table_name, max(date) FROM quality.gate_results WHERE date IS NOT NULL GROUP BY 1"
            ).fetchall()
        )
    except duckdb.CatalogException:
        return None, None
    loaded = [newest[t] for t in tables if newest.get(t) is not None]
    return min(loaded, default=None), max((d for d in newest.values() if d is not None), default=None)


def stale_days(conn, after: date) -> list[tuple[date, str]]:
    """(day, what) of the days before ``after`` to run again: source rows changed since they were loaded (database
    rows or landing files, over source_changes' lookback) and days never loaded in that lookback."""
    from orchestration.lib.report_data import unloaded_days
    from orchestration.lib.source_changes import database_lookback, find

    changes, errors = find(conn, after, date.max)
    if errors:  # one line: a refused password is the same reason for every table (a re-trial's six 450-char lines)
        more = f" (and {len(errors) - 1} more table(s))" if len(errors) > 1 else ""
        print(f"note: days already run not compared with the database: {errors[0]}{more}")
    stale = [(c.day, f"{c.table} {c.day} changed ({c.change})") for c in changes]
    since = database_lookback(after)
    stale += [(d, f"{d} never loaded ({', '.join(t)})") for d, t in unloaded_days(conn) if since <= d < after]
    return sorted(stale)


def said(catch_up, stale: list[tuple[date, str]], zone: str) -> str:
    """What a bare materialize of a project reading a database runs, and why."""
    yesterday = f"yesterday ({catch_up.yesterday} in {zone}: a database's today is not over)"
    if catch_up.nothing_to_run:
        if catch_up.loaded_through is None:
            why = f"the sources' first day, {catch_up.first}, is not over: it runs after it, or pass --start and --end"
        else:
            why = (
                f"the warehouse loaded every database table through {catch_up.loaded_through} (yesterday: "
                f"{catch_up.yesterday} in {zone}), the newest run succeeded and no day already run changed in the "
                "sources since; --start and --end run days again"
            )
        return f"materialize without --start/--end: nothing to run: {why}"
    if catch_up.loaded_through is None:
        said = f"the days from the sources' first, {catch_up.first}, through {yesterday}"
    else:
        said = (
            f"the days after {catch_up.loaded_through} (the newest day every database table was loaded) "
            f"through {yesterday}"
        )
    if stale:
        shown = ", ".join(what for _, what in stale[:NOTE_FILES])
        said += f", and days already run to run again: {shown}{' ...' if len(stale) > NOTE_FILES else ''}"
    if catch_up.last > catch_up.yesterday:
        said += f", through {catch_up.last}, the newest day the warehouse holds (the later days read the earlier ones)"
    return f"materialize without --start/--end runs {catch_up.first} .. {catch_up.last}: {said}"
