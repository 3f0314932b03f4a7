"""Which landing files each loaded day read, so a file that arrives (or changes) after its day ran is noticed.

A run loads only its own days: a labels file dropped into the landing zone for a day that already ran stays
out of the warehouse until that day runs again, and nothing said so. The raw steps record, per table and day,
the dated files they read (path within the zone, size, modification time, content digest; a day read without files gets an
empty entry) in
``quality.landing_files``; ``changed_since_loaded`` lists the files of days outside a run that are new or
differ from what was recorded (a copy of the same bytes delivered again is no change). Only tables whose files carry their day in the name (``labels_2026-05-10.csv``):
undated files are placed by their rows' times and are read whole by every run. No Dagster imports.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from orchestration.lib.contract import CONTRACTS
from orchestration.lib.raw_loader import DATE_IN_NAME, LoadReport, table_files

TABLE = "quality.landing_files"
SCHEMA = "table_name VARCHAR, day DATE, file VARCHAR, bytes BIGINT, mtime_ns BIGINT, digest VARCHAR"


@dataclass(frozen=True)
class LateFile:
    table: str
    day: date
    path: Path
    # the day's other files a run loaded, still there: a new file beside them is read with them, and a key in both
    # keeps one row (a trial's corrected re-delivery lost to the stale file's rows)
    beside: tuple[Path, ...] = ()
    removed: bool = False  # a file a run loaded that is no longer there (its rows stay until the day runs again)


def _dated(root: Path, table: str) -> dict[Path, date] | None:
    """The table's files and the day in each name, or None when the table's files are not all dated."""
    files = table_files(root, CONTRACTS[table]) if root.is_dir() else []
    days = {p: DATE_IN_NAME.search(str(p.relative_to(root))) for p in files}
    if not files or not all(days.values()):
        return None
    return {p: date.fromisoformat(m.group(1)) for p, m in days.items()}


def _key(path: Path, root: Path) -> str:
    """How a file is recorded: its path within the landing zone (a zone moved or mounted elsewhere holds the same
    files: a trial's moved zone named all 191 as changed), else its absolute path."""
    path, root = path.resolve(), root.resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _digest(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "blake2b").hexdigest()


def record(conn: duckdb.DuckDBPyConnection, table: str, root: Path, reports: list[LoadReport]) -> None:
    """What the loaded days of ``table`` read from ``root`` (a landing zone or lake folder)."""
    if CONTRACTS[table].time_column is None or _dated(root, table) is None:
        return
    rows = []
    for report in reports:
        files = [Path(f) for f in report.files]
        for f in files:
            stat = f.stat()
            rows.append((table, report.partition_date, _key(f, root), stat.st_size, stat.st_mtime_ns, _digest(f)))
        if not files:  # read, and found nothing: a file that arrives later is late
            rows.append((table, report.partition_date, "", 0, 0, None))
    conn.execute("CREATE SCHEMA IF NOT EXISTS quality")
    conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} ({SCHEMA})")
    conn.execute(f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS digest VARCHAR")  # a table recorded before it
    days = sorted({r.partition_date for r in reports})
    conn.execute(f"DELETE FROM {TABLE} WHERE table_name = ? AND list_contains(?, day)", [table, days])
    if rows:
        conn.executemany(
            f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?)",  # digest last in an altered table too
            rows,
        )


def changed_since_loaded(conn: duckdb.DuckDBPyConnection, roots: dict[str, Path], first: date, last: date) -> list:
    """The dated files of days outside first..last that a run loaded before and that are new or changed since
    (``roots``: table -> its landing or lake folder). Days never loaded are not judged."""
    try:
        recorded = conn.execute(f"SELECT table_name, day, file, bytes, mtime_ns, digest FROM {TABLE}").fetchall()
    except duckdb.BinderException:  # recorded before digests: every touched file reads as changed
        recorded = conn.execute(f"SELECT table_name, day, file, bytes, mtime_ns, NULL FROM {TABLE}").fetchall()
    except duckdb.CatalogException:  # no day recorded yet
        return []
    seen: dict[tuple[str, date], dict[str, tuple[int, int, str | None]]] = {}
    days_of: dict[str, set[date]] = {}  # each table's recorded days
    for table, day, file, size, mtime, digest in recorded:
        seen.setdefault((table, day), {})[file] = (size, mtime, digest)
        days_of.setdefault(table, set()).add(day)
    late = []
    for table, root in sorted(roots.items()):
        dated = _dated(root, table)
        if dated is None:  # no files, or not every one dated: not tracked (as record() does)
            continue
        for path, day in sorted(dated.items(), key=lambda kv: (kv[1], kv[0])):
            known = seen.get((table, day))
            if known is None or first <= day <= last:
                continue
            stat = path.stat()
            # recorded within the zone (or, before that, by its absolute path)
            size, mtime, digest = known.get(_key(path, root)) or known.get(str(path.resolve()), (None, None, None))
            if (size, mtime) == (stat.st_size, stat.st_mtime_ns):
                continue
            if size == stat.st_size and digest is not None and _digest(path) == digest:
                continue  # the same bytes delivered again (a re-sent copy): nothing to load
            beside = () if _loaded(path, root, known) else (p for p, d in dated.items() if d == day and p != path)
            late.append(LateFile(table, day, path, tuple(sorted(p for p in beside if _loaded(p, root, known)))))
        # files a run loaded that are gone (a re-trial removed a day's sessions file: its rows stayed, unsaid)
        present = {_key(p, root) for p in dated} | {str(p.resolve()) for p in dated}
        for day in sorted(d for d in days_of.get(table, ()) if not first <= d <= last):
            for key in sorted(k for k in seen[(table, day)] if k and k not in present):
                path = Path(key) if Path(key).is_absolute() else root / key
                late.append(LateFile(table, day, path, removed=True))
    return sorted(late, key=lambda f: (f.table, f.day, str(f.path)))


def _loaded(path: Path, root: Path, known: dict) -> bool:
    """Whether a run loaded ``path`` (``known``: its day's recorded files, by their key within the zone or, before
    that, their absolute path)."""
    return _key(path, root) in known or str(path.resolve()) in known
