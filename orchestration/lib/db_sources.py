"""Where each raw table comes from: the landing zone, a lake folder, or a database.

The project file's ``sources`` picks a source per contract table; a table without an entry comes from the
landing zone (IMPACT_LEDGER_SOURCE). A lake folder is another landing root with the same layout
(``<path>/<table>/*.parquet|csv|csv.gz``). A database table is extracted with dlt (``sql_table``, pyarrow backend)
into dated Parquet files, ``<cache>/<table>/<table>_<YYYY-MM-DD>.parquet``, which the loader then reads as
a dated landing zone: the contract, quarantine, gates and messages are exactly those of files.

- ``table:`` sources read the run's days in one query, incremental on the time column over the closed
  window [first day 00:00, last day + 1 00:00) of the project's time zone (no dlt state: the window is given
  every run, so a re-run reads the same rows), and are split into one file per day of the time column there.
- ``query:`` sources run once per day with ``:day_start`` / ``:day_end`` bound to the day's window
  (a query naming neither is filtered on the time column); whatever the query returns goes into that
  day's file, so rows of another day are quarantined "outside partition day" by the loader.
- Snapshots (users, experiments, experiment_variants) are read whole into ``<table>.parquet``.

A file is written under a temporary name and renamed, and a day without rows removes the day's old file:
the loader never reads half a day or a stale one. Extraction ends before loading starts, so a failed
extraction loads nothing. The password comes only from the environment variable the file names; every
message shows the URL with the password masked. PostgreSQL sessions run in the project's time zone (its
``timezone``, UTC by default): a ``timestamptz``'s day and a naive bound are that zone's, as in the loader.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Iterator
from zoneinfo import ZoneInfo

from orchestration.lib.contract import CONTRACTS, ContractError, TableContract
from orchestration.lib.project_config import DatabaseSource, LoadedConfig, load_config, mask_secrets
from orchestration.lib.settings import source_dir, warehouse_path

# dlt's anonymous telemetry would call out at run time; the pipeline makes no network calls but the source's.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

CHUNK_ROWS = 50_000  # rows per batch from the database (memory stays bounded on a large day)
DAY_PARAMS = ("day_start", "day_end")


class SourceError(ContractError):
    """A source that cannot be read (unreachable, refused, misconfigured): names the table and where."""


def cache_dir() -> Path:
    """Where database extracts go (IMPACT_LEDGER_LANDING_CACHE; default: landing_cache/ next to the warehouse)."""
    value = os.environ.get("IMPACT_LEDGER_LANDING_CACHE")
    return Path(value).expanduser().resolve() if value else warehouse_path().parent / "landing_cache"


def masked_url(url: str) -> str:
    """The URL as shown in messages: never a password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown with any password masked by pattern
        return mask_secrets(url)


@dataclass(frozen=True)
class TableSource:
    """One table's source: the folder the loader reads (``<root>/<table>/...``) and how to name it in messages."""

    table: str
    kind: str  # landing | lake | database
    root: Path
    label: str
    database: DatabaseSource | None = None

    def explain(self, err: Exception) -> str:
        """A loader error with the source named (a database table's day file is the database's rows)."""
        text = str(err)
        if self.kind == "database" and self.label not in text:
            text = f"{text} [source: {self.label}, extracted to {self.root / self.table}/]"
        return mask_secrets(text)


def source_of(table: str, config: LoadedConfig | None = None) -> TableSource:
    """Where ``table`` comes from per the project file's ``sources`` (no extraction)."""
    config = config or load_config()
    spec = config.sources.get(table)
    if spec is None:
        root = source_dir()
        return TableSource(table, "landing", root, f"landing zone {root}")
    if spec.path is not None:
        root = Path(os.path.expandvars(spec.path)).expanduser()
        if not root.is_absolute():  # relative to the project file, which says it
            root = (config.path.parent if config.path else Path.cwd()) / root
        return TableSource(table, "lake", root.resolve(), f"lake folder {root.resolve()} (sources.{table}.path)")
    return TableSource(table, "database", cache_dir(), database_label(table, spec.database), spec.database)


def database_label(table: str, db: DatabaseSource) -> str:
    """How messages name a database source: the table or the query, and the URL with the password masked."""
    what = f"database table '{db.table}'" if db.table else f"database query of sources.{table}"
    return f"{what} at {masked_url(db.url)}"


def prepare(table: str, days: list[date], config: LoadedConfig | None = None) -> tuple[TableSource, list["Extract"]]:
    """The table's source, with a database table's ``days`` extracted into the cache first."""
    source = source_of(table, config)
    if source.kind != "database":
        return source, []
    return source, extract_days(table, source.database, days, source.root, source.label)


# ------------------------------------------------------------------ extraction


@dataclass
class Extract:
    """What one extraction wrote: per day (None for a snapshot) the rows and the file (None: no rows)."""

    table: str
    day: date | None
    rows: int = 0
    file: Path | None = None
    note: str = ""


@dataclass
class _DayWriter:
    path: Path
    tmp: Path
    writer: Any = None
    rows: int = 0
    schema: Any = None


def _engine(db: DatabaseSource, table: str, label: str):
    import sqlalchemy as sa

    url = sa.engine.make_url(db.url)
    if db.password_env:
        secret = os.environ.get(db.password_env)
        if not secret:
            raise SourceError(
                f"table '{table}': the password of {label} is read from the environment variable "
                f"{db.password_env} (sources.{table}.database.password_env), which is not set"
            )
        url = url.set(password=secret)
    connect_args: dict[str, Any] = {}
    if url.get_backend_name() == "postgresql":
        # sessions in the project's zone: a day's window and a timestamptz's day are its, as in the loader; fail
        # fast when unreachable
        connect_args = {"connect_timeout": 15, "options": f"-c timezone={_zone()}"}
    elif url.get_backend_name() == "mysql":
        connect_args = {"connect_timeout": 15}
    return sa.create_engine(url, connect_args=connect_args, pool_pre_ping=False)


def _root_cause(err: BaseException) -> BaseException:
    seen = set()
    while id(err) not in seen:
        seen.add(id(err))
        nxt = getattr(err, "orig", None) or err.__cause__ or err.__context__
        if nxt is None:
            break
        err = nxt
    return err


def _db_error(err: BaseException, table: str, db: DatabaseSource, label: str, secret: str | None) -> SourceError:
    """One line naming the table, where and why; the DBAPI's own words (host, port, role), never the password."""
    import sqlalchemy as sa

    cause = _root_cause(err)
    text = " ".join(line.strip() for line in str(cause).strip().splitlines() if line.strip()) or type(cause).__name__
    text = re.sub(r"\s*\(Background on this error at: [^)]*\)", "", text)
    if isinstance(cause, sa.exc.NoSuchTableError):
        text = f"the database has no table or view '{cause}' (sources.{table}.database.table)"
    url = sa.engine.make_url(db.url)
    where = f"host {url.host or 'localhost'}" + (f" port {url.port}" if url.port else "")
    message = f"table '{table}': cannot read {label} ({where}): {text}"
    if _unreachable(err, cause) and (others := _same_server_tables(table, url)):
        # the run stops at the first table it cannot read: the others would fail alike
        message += f" (tables {', '.join(others)} read from the same server too)"
    if secret:
        message = message.replace(secret, "***")
    return SourceError(mask_secrets(message))


def _unreachable(err: BaseException, cause: BaseException) -> bool:
    """A failure to connect (server down, refused, unknown host), not one of this table's query."""
    import sqlalchemy as sa

    return isinstance(err, sa.exc.OperationalError | ConnectionError) or (
        type(cause).__name__ == "OperationalError" and "psycopg" in type(cause).__module__
    )


def _same_server_tables(table: str, url) -> list[str]:
    """The other tables the project file reads from the server of ``url`` (host, port and database)."""
    import sqlalchemy as sa

    try:
        urls = {n: sa.engine.make_url(s.database.url) for n, s in load_config().sources.items() if s.database}
    except Exception:  # noqa: BLE001 - the message stays useful without the list
        return []
    server = (url.host, url.port, url.database)
    return sorted(n for n, u in urls.items() if n != table and (u.host, u.port, u.database) == server)


def _split_name(name: str) -> tuple[str | None, str]:
    schema, _, table = name.rpartition(".")
    return schema or None, table


def _zone() -> str:
    from orchestration.lib.project_config import load_config

    return load_config().timezone


def _bounds(column, first: date, end: date) -> tuple[Any, Any]:
    """The window's ends in the time column's own type (dlt filters rows in Python too and compares like types)."""
    import sqlalchemy as sa

    if isinstance(column.type, sa.DateTime):
        tz = ZoneInfo(_zone()) if column.type.timezone else None
        return datetime.combine(first, time(), tz), datetime.combine(end, time(), tz)
    if isinstance(column.type, sa.Date):
        return first, end
    return datetime.combine(first, time()), datetime.combine(end, time())


def _days(column) -> Any:
    """The day (date32) of each value of a timestamp or date column in the project's time zone (a naive time is
    in it already)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_timestamp(column.type) and column.type.tz is not None:
        column = pc.local_timestamp(pc.cast(column, pa.timestamp(column.type.unit, _zone())))  # its wall clock
    if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
        return pc.cast(column, pa.date32())
    raise TypeError(f"time column of type {column.type} is neither a timestamp nor a date")


def _write(path: Path, table) -> None:
    """Write a Parquet file under a temporary name, then rename: a reader sees the whole file or none."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _empty(names: list[str]):
    import pyarrow as pa

    return pa.table({n: pa.array([], pa.string()) for n in names})


def _check_columns(present: list[str], contract: TableContract, label: str) -> None:
    """The loader's own message, naming the database table: the extract keeps the source's columns as they are."""
    from orchestration.lib.raw_loader import missing_column

    for col in contract.columns:
        if col.required and col.name not in present:
            raise SourceError(missing_column(label, contract, col.name, present, of="database table"))


def extract_days(table: str, db: DatabaseSource, days: list[date], cache: Path, label: str = "") -> list[Extract]:
    """Extract ``days`` of ``table`` from the database into ``cache/<table>/`` (a snapshot: the whole table)."""
    import sqlalchemy as sa

    contract = CONTRACTS[table]
    label = label or database_label(table, db)
    folder = cache / table
    folder.mkdir(parents=True, exist_ok=True)
    engine = _engine(db, table, label)
    secret = os.environ.get(db.password_env) if db.password_env else None
    try:
        if db.table:
            return _extract_table(engine, table, contract, db, sorted(days), folder, label)
        return _extract_query(engine, table, contract, db, sorted(days), folder, label)
    except SourceError:
        raise
    except sa.exc.SQLAlchemyError as err:
        raise _db_error(err, table, db, label, secret) from None
    except Exception as err:  # dlt wraps the database's errors in its own (a failed extract step)
        if (
            isinstance(_root_cause(err), (sa.exc.SQLAlchemyError, ConnectionError))
            or "psycopg" in type(_root_cause(err)).__module__
        ):
            raise _db_error(err, table, db, label, secret) from None
        raise
    finally:
        engine.dispose()
        for stray in folder.glob(f".*.{os.getpid()}.tmp"):
            stray.unlink(missing_ok=True)


def _batches(resource) -> Iterator[Any]:
    """dlt's pyarrow batches (a Table per chunk), in the source's own column names."""
    import pyarrow as pa

    for item in resource:
        if isinstance(item, pa.Table) and item.num_rows:
            yield item
        elif isinstance(item, pa.RecordBatch) and item.num_rows:
            yield pa.Table.from_batches([item])


def _extract_table(
    engine, table: str, contract: TableContract, db: DatabaseSource, days: list[date], folder: Path, label: str
) -> list[Extract]:
    import dlt
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    import sqlalchemy as sa
    from dlt.sources.sql_database import sql_table

    schema, name = _split_name(db.table)
    metadata = sa.MetaData(schema=schema)
    try:  # reflected once: the columns to check, the time column's type; dlt reuses it as its cache
        reflected = sa.Table(name, metadata, autoload_with=engine)
    except sa.exc.NoSuchTableError:
        raise SourceError(f"table '{table}': {label} does not exist (sources.{table}.database.table)") from None
    present = [c.name for c in reflected.columns]
    _check_columns(present, contract, label)
    common = dict(
        credentials=engine,
        table=name,
        schema=schema,
        metadata=metadata,
        backend="pyarrow",
        chunk_size=CHUNK_ROWS,
        reflection_level="full",
    )
    if contract.time_column is None:
        batches = list(_batches(sql_table(**common)))
        whole = pa.concat_tables(batches) if batches else _empty(present)
        _write(folder / f"{table}.parquet", whole)
        return [Extract(table, None, whole.num_rows, folder / f"{table}.parquet")]

    time_column = db.time_column or contract.time_column
    if time_column not in present:
        raise SourceError(
            f"{label}: table '{table}' has no column '{time_column}' to place rows in days "
            f"(sources.{table}.database.time_column)"
        )
    first, end = days[0], days[-1] + timedelta(days=1)
    low, high = _bounds(reflected.c[time_column], first, end)
    wanted = set(days)
    incremental = dlt.sources.incremental(
        time_column, initial_value=low, end_value=high, row_order="asc", range_start="closed", range_end="open"
    )
    writers: dict[date, _DayWriter] = {}
    try:
        for batch in _batches(sql_table(**common, incremental=incremental)):
            day_of = _days(batch.column(time_column))
            for day in sorted(set(day_of.to_pylist()) & wanted):
                rows = batch.filter(pc.equal(day_of, pa.scalar(day, pa.date32())))
                w = writers.get(day)
                if w is None:
                    path = folder / f"{table}_{day.isoformat()}.parquet"
                    w = writers[day] = _DayWriter(path, path.with_name(f".{path.name}.{os.getpid()}.tmp"))
                    w.schema = rows.schema
                    w.writer = pq.ParquetWriter(w.tmp, w.schema)
                w.writer.write_table(rows if rows.schema == w.schema else rows.cast(w.schema))
                w.rows += rows.num_rows
        for w in writers.values():
            w.writer.close()
            w.writer = None
        for w in writers.values():
            os.replace(w.tmp, w.path)
    finally:
        for w in writers.values():
            if w.writer is not None:
                w.writer.close()
            w.tmp.unlink(missing_ok=True)
    return _finish_days(table, days, folder, {d: w.rows for d, w in writers.items()})


def _finish_days(table: str, days: list[date], folder: Path, rows: dict[date, int]) -> list[Extract]:
    """Per day: the file written, or the day's old file removed (the source has no rows for it now)."""
    out = []
    for day in days:
        path = folder / f"{table}_{day.isoformat()}.parquet"
        if day in rows:
            out.append(Extract(table, day, rows[day], path))
        else:
            path.unlink(missing_ok=True)
            out.append(Extract(table, day, 0, None, "no source rows for this day"))
    return out


def present_in_database(reports: list) -> list:
    """The loader's reports of a database table: a day without rows is the table's, not an absent table's (a trial's
    empty labels table read "absent from the source: loaded empty")."""
    from orchestration.lib.raw_loader import ABSENT

    for report in reports:
        if report.note.startswith(ABSENT):
            report.note = NO_ROWS_IN_DATABASE
    return reports


NO_ROWS_IN_DATABASE = "no source rows for this day (the database table has none)"


def _day_query(db: DatabaseSource, contract: TableContract):
    """The project file's query as SQL text: its :day_start / :day_end, else filtered on the time column."""
    import sqlalchemy as sa

    sql = db.query.strip().rstrip(";")
    named = {p for p in DAY_PARAMS if re.search(rf"(?<![:\w]):{p}\b", sql)}
    time_column = db.time_column or contract.time_column
    if time_column and not named:
        col = '"' + time_column.replace('"', '""') + '"'
        sql = f"SELECT * FROM ({sql}) AS _day WHERE _day.{col} >= :day_start AND _day.{col} < :day_end"
        named = set(DAY_PARAMS)
    return sa.text(sql), named


def _extract_query(
    engine, table: str, contract: TableContract, db: DatabaseSource, days: list[date], folder: Path, label: str
) -> list[Extract]:
    import pyarrow as pa
    import sqlalchemy as sa
    from dlt.sources.sql_database import sql_table

    text, named = _day_query(db, contract)

    def run(params: dict) -> tuple[Any, list[str]]:
        statement = text.bindparams(**{k: v for k, v in params.items() if k in named})
        metadata = sa.MetaData()
        sa.Table(table, metadata)  # a placeholder: dlt reflects nothing, the query says which columns
        batches = list(
            _batches(
                sql_table(
                    credentials=engine,
                    table=table,
                    metadata=metadata,
                    backend="pyarrow",
                    chunk_size=CHUNK_ROWS,
                    reflection_level="minimal",
                    query_adapter_callback=lambda *_a, **_k: statement,
                )
            )
        )
        if batches:
            whole = pa.concat_tables(batches, promote_options="permissive")
            return whole, whole.column_names
        with engine.connect() as conn:  # no rows: the query's columns still say whether the contract's are there
            names = list(conn.execute(statement).keys())
        return None, names

    if contract.time_column is None:
        whole, names = run({})
        _check_columns(names, contract, label)
        whole = whole if whole is not None else _empty(names)
        _write(folder / f"{table}.parquet", whole)
        return [Extract(table, None, whole.num_rows, folder / f"{table}.parquet")]
    rows: dict[date, int] = {}
    for day in days:
        start = datetime.combine(day, time())  # sessions in the project's zone: a naive bound is its time
        whole, names = run({"day_start": start, "day_end": start + timedelta(days=1)})
        _check_columns(names, contract, label)
        if whole is not None:
            _write(folder / f"{table}_{day.isoformat()}.parquet", whole)
            rows[day] = whole.num_rows
    return _finish_days(table, days, folder, rows)


# ------------------------------------------------------------------ rows changed after their day was loaded


def numeric_columns(table: str) -> list[str]:
    """The contract's numeric columns of ``table`` (a score, a label, an amount): their per-day sums show a row
    updated in place, which keeps the day's count."""
    return [c.name for c in CONTRACTS[table].columns if c.type in ("DOUBLE", "BIGINT")]


@dataclass(frozen=True)
class DayDigest:
    """A day's rows of one table: how many, and the sum of each numeric column (None: no value, or not summed)."""

    rows: int
    sums: dict[str, float | None]


def database_day_digests(
    table: str, db: DatabaseSource, first: date, last: date, label: str = ""
) -> dict[date, DayDigest]:
    """The rows of ``table`` in the database per day of its time column (the project's zone), ``first``..``last``,
    with the sums of its numeric columns (those a table holds as numbers; a query's, cast to a float, or none where
    the database cannot): one grouped query (a table's own, or over the project file's query bound to the range)."""
    import sqlalchemy as sa

    contract = CONTRACTS[table]
    label = label or database_label(table, db)
    time_column = db.time_column or contract.time_column
    start, end = datetime.combine(first, time()), datetime.combine(last + timedelta(days=1), time())
    engine = _engine(db, table, label)
    secret = os.environ.get(db.password_env) if db.password_env else None
    summed: list[str] = []
    try:
        with engine.connect() as conn:
            if db.table:
                schema, name = _split_name(db.table)
                reflected = sa.Table(name, sa.MetaData(schema=schema), autoload_with=conn)
                column = reflected.c[time_column]
                low, high = _bounds(column, first, last + timedelta(days=1))
                # SQLite keeps times as text: date() is its day (a CAST to DATE there reads the year alone)
                day = (
                    sa.func.date(column, type_=sa.String) if conn.dialect.name == "sqlite" else sa.cast(column, sa.Date)
                )
                summed = [
                    c
                    for c in numeric_columns(table)
                    if c in reflected.c and isinstance(reflected.c[c].type, (sa.Numeric, sa.Integer))
                ]
                sums = [sa.func.sum(sa.cast(reflected.c[c], sa.Float)) for c in summed]
                statement = sa.select(day, sa.func.count(), *sums).where(column >= low, column < high).group_by(day)
                rows = conn.execute(statement).all()
            else:
                text, named = _day_query(db, contract)
                params = {k: v for k, v in {"day_start": start, "day_end": end}.items() if k in named}
                sqlite = conn.dialect.name == "sqlite"

                def grouped(columns: list[str]):
                    quoted = ['"' + c.replace('"', '""') + '"' for c in (time_column, *columns)]
                    sums = "".join(f", sum(CAST(_c.{q} AS FLOAT))" for q in quoted[1:])
                    day = f"date(_c.{quoted[0]})" if sqlite else f"CAST(_c.{quoted[0]} AS DATE)"
                    sql = f"SELECT {day}, count(*){sums} FROM ({text.text}) AS _c GROUP BY 1"
                    return conn.execute(sa.text(sql).bindparams(**params)).all()

                names = set(
                    conn.execute(sa.text(f"SELECT * FROM ({text.text}) AS _c LIMIT 0").bindparams(**params)).keys()
                )
                summed = [c for c in numeric_columns(table) if c in names]
                try:
                    rows = grouped(summed)
                except sa.exc.SQLAlchemyError:  # a column the database cannot cast to a float: counts only
                    conn.rollback()
                    summed, rows = [], grouped([])
    except sa.exc.SQLAlchemyError as err:
        raise _db_error(err, table, db, label, secret) from None
    finally:
        engine.dispose()
    return {
        _day_of(d): DayDigest(int(n), {c: None if v is None else float(v) for c, v in zip(summed, values, strict=True)})
        for d, n, *values in rows
        if d
    }


def _same_sum(now: float | None, loaded: float | None) -> bool:
    """Equal up to the rounding of summing the same values in another order (NaN equals NaN)."""
    if now is None or loaded is None:
        return now is loaded
    return math.isclose(now, loaded, rel_tol=SUM_TOLERANCE, abs_tol=SUM_TOLERANCE) or (
        math.isnan(now) and math.isnan(loaded)
    )


SUM_TOLERANCE = 1e-9  # relative: a change smaller than this share of a day's sum is not told from rounding


@dataclass(frozen=True)
class ChangedDay:
    """A database-sourced day already run whose rows changed since they were loaded."""

    day: date
    rows_now: int
    rows_loaded: int
    # the numeric columns whose day sum changed with the count unchanged (an update in place): (column, now, loaded)
    updated: tuple[tuple[str, float | None, float | None], ...] = ()

    def said(self) -> str:
        if self.rows_now != self.rows_loaded:
            return f"{self.rows_now} rows now, {self.rows_loaded} loaded"
        return "; ".join(f"{c}'s sum {_sum_change(now, was)}" for c, now, was in self.updated)


def _sum_change(now: float | None, was: float | None) -> str:
    if now is None or was is None:
        return f"{'none' if now is None else f'{now:,.2f}'} now, {'none' if was is None else f'{was:,.2f}'} loaded"
    return f"{now:,.2f} now, {was:,.2f} loaded ({now - was:+,.6g})"


def changed_database_days(
    conn, table: str, db: DatabaseSource, first: date, last: date, since: date | None = None
) -> list[ChangedDay]:
    """The days already run outside ``first``..``last`` (from ``since`` on) whose database rows changed since
    they were loaded: in number (rows inserted or deleted later) or, with the same count, in the sum of a numeric
    column (a score, label or amount updated in place; a text column's update is not seen). ``conn``: the
    warehouse, read only. The days run are those with gate results for the table."""
    columns = numeric_columns(table)
    sums = "".join(f", sum({_quote_ident(c)})" for c in columns)
    picked = ", ".join(["_partition_date", *map(_quote_ident, columns)])
    rows = conn.execute(
        f"""
        SELECT g.date, coalesce(r.n, 0), r.* EXCLUDE (day, n) FROM (
            SELECT DISTINCT date FROM quality.gate_results
            WHERE table_name = ? AND (date < ? OR date > ?) AND date >= ?
        ) g LEFT JOIN (
            SELECT _partition_date AS day, count(*) AS n{sums} FROM (
                SELECT {picked} FROM raw.{table} UNION ALL SELECT {picked} FROM raw_quarantine.{table}
            ) GROUP BY 1
        ) r ON r.day = g.date
        """,
        [table, first, last, since or date.min],
    ).fetchall()
    loaded = {day: DayDigest(int(n), dict(zip(columns, values, strict=True))) for day, n, *values in rows}
    if not loaded:
        return []
    now = database_day_digests(table, db, min(loaded), max(loaded))
    changed = []
    for day, was in sorted(loaded.items()):
        is_ = now.get(day, DayDigest(0, {}))
        if is_.rows != was.rows:
            changed.append(ChangedDay(day, is_.rows, was.rows))
            continue
        updated = tuple((c, is_.sums[c], was.sums[c]) for c in is_.sums if not _same_sum(is_.sums[c], was.sums[c]))
        if updated:
            changed.append(ChangedDay(day, is_.rows, was.rows, updated))
    return changed


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ------------------------------------------------------------------ first day (a bare materialize's start)


WHOLE_HISTORY = {"day_start": datetime(1900, 1, 1), "day_end": datetime(9999, 1, 1)}  # a day query's widest window


def database_first_day(table: str, db: DatabaseSource, label: str = "") -> date | None:
    """The first day of ``table``'s time column in the database, in the project's zone (None: no rows): one
    ``min`` query (a table's own, or over the project file's query bound to the widest window)."""
    import sqlalchemy as sa

    contract = CONTRACTS[table]
    label = label or database_label(table, db)
    time_column = db.time_column or contract.time_column
    engine = _engine(db, table, label)
    try:
        with engine.connect() as conn:
            if db.table:
                schema, name = _split_name(db.table)
                reflected = sa.Table(name, sa.MetaData(schema=schema), autoload_with=conn)
                if time_column not in reflected.c:  # the extraction's own message
                    raise SourceError(
                        f"{label}: table '{table}' has no column '{time_column}' to place rows in days "
                        f"(sources.{table}.database.time_column)"
                    )
                earliest = conn.execute(sa.select(sa.func.min(reflected.c[time_column]))).scalar()
            else:
                text, named = _day_query(db, contract)
                params = {k: v for k, v in WHOLE_HISTORY.items() if k in named}
                sql = f"SELECT min(_c.{_quote_ident(time_column)}) FROM ({text.text}) AS _c"
                earliest = conn.execute(sa.text(sql).bindparams(**params)).scalar()
    except sa.exc.SQLAlchemyError as err:
        raise _db_error(err, table, db, label, os.environ.get(db.password_env) if db.password_env else None) from None
    finally:
        engine.dispose()
    return _day_of(earliest)


def _day_of(value: Any) -> date | None:
    """The project's day of a database value: an aware time's wall clock in its zone; a naive time is in it already
    (SQLite returns times as text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return (value.astimezone(ZoneInfo(_zone())) if value.tzinfo else value).date()
    return value if isinstance(value, date) else None


# ------------------------------------------------------------------ inspection (impact-ledger init)


def inspect_database(db: DatabaseSource, table: str) -> dict[str, Any]:
    """Columns, rows, first and last day and rows per day of one database source (SQL only, nothing extracted)."""
    import sqlalchemy as sa

    contract = CONTRACTS[table]
    label = database_label(table, db)
    engine = _engine(db, table, label)
    try:
        if db.table:
            schema, name = _split_name(db.table)
            try:
                reflected = sa.Table(name, sa.MetaData(schema=schema), autoload_with=engine)
            except sa.exc.NoSuchTableError:
                raise SourceError(f"table '{table}': {label} does not exist (sources.{table}.database.table)") from None
            columns = [c.name for c in reflected.columns]
            relation = sa.select(reflected).subquery("_src")
        else:
            sql = db.query.strip().rstrip(";")
            text = sa.text(sql)
            params = {p for p in DAY_PARAMS if re.search(rf"(?<![:\w]):{p}\b", sql)}
            if params:  # the whole history
                text = text.bindparams(**{k: v for k, v in WHOLE_HISTORY.items() if k in params})
            with engine.connect() as conn:
                columns = list(
                    conn.execute(sa.select(sa.text("*")).select_from(text.columns().subquery("_q")).limit(0)).keys()
                )
            relation = text.columns(*[sa.column(c) for c in columns]).subquery("_src")
        out: dict[str, Any] = {
            "table": table,
            "source": label,
            "columns": columns,
            "missing": [c.name for c in contract.columns if c.required and c.name not in columns],
        }
        time_column = db.time_column or contract.time_column
        with engine.connect() as conn:
            out["rows"] = conn.execute(sa.select(sa.func.count()).select_from(relation)).scalar_one()
            if time_column and time_column in columns:
                # SQLite keeps times as text: date() is its day; elsewhere a cast to DATE
                sqlite = engine.dialect.name == "sqlite"
                day = (
                    sa.func.date(relation.c[time_column], type_=sa.String)
                    if sqlite
                    else sa.cast(relation.c[time_column], sa.Date)
                )
                daily = conn.execute(
                    sa.select(day, sa.func.count())
                    .where(relation.c[time_column].is_not(None))
                    .group_by(day)
                    .order_by(day)
                ).all()
                daily = [(date.fromisoformat(d) if isinstance(d, str) else d, n) for d, n in daily]
                out["rows_per_day"] = {d: n for d, n in daily}
                out["first_day"] = daily[0][0] if daily else None
                out["last_day"] = daily[-1][0] if daily else None
        return out
    except SourceError:
        raise
    except sa.exc.SQLAlchemyError as err:
        raise _db_error(err, table, db, label, os.environ.get(db.password_env) if db.password_env else None) from None
    finally:
        engine.dispose()
