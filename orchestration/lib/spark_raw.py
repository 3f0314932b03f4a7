"""The raw layer on Spark (engine: spark): the landing day read, contract-checked and written by Spark.

The same contract as raw_loader.py, from the same SQL: the casts, row rules, key ranks and reasons are
rendered in DuckDB's dialect by raw_loader and transpiled to Spark SQL (spark_session.to_spark_sql), so
the rows loaded, the rows quarantined and their reasons are the same, and read = loaded + quarantined.
A day lands as Parquet under ``spark_dir()``: ``raw/<table>/_partition_date=YYYY-MM-DD/`` and
``raw_quarantine/<table>/_partition_date=YYYY-MM-DD/`` (with ``_reason``), replaced whole (idempotent;
a dimension snapshot replaces the table). dbt's Spark session reads ``raw/`` as its sources; DuckDB reads
both through views (``raw.<table>``, ``raw_quarantine.<table>``: read_parquet, hive-partitioned), so the
gates, staging for the DuckDB-side consumers and the report read what Spark wrote, never a second copy.

Errors are raised with the DuckDB path's messages. The checks of columns and types are the same SQL. A
file Spark cannot read (a ragged row, a corrupt Parquet file), or in which it read a sign of what its
lenient CSV parser lets through (an undecodable byte, read as U+FFFD; a line break in a value, which is
also what an unclosed quote looks like) is judged by DuckDB's strict reader, whose message is the
ContractError; a file DuckDB reads is good, and Spark's rows stand.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from orchestration.lib.contract import CONTRACTS, ContractError, TableContract
from orchestration.lib.project_config import load_config
from orchestration.lib.quality_gate import ensure_gate_results
from orchestration.lib.raw_loader import (  # Spark's CSV reading mirrors raw_loader.CSV_OPTIONS' strictness
    CODE_PATTERN,
    META_COLUMNS,
    NUMBER_PATTERN,
    LoadReport,
    _is_reader_error,
    _quote,
    _scan_sql,
    _time_day,
    _typed_select,
    check_columns,
    check_types_with,
    check_undated_times,
    checked_days_sql,
    checked_days_helpers,
    checked_sql,
    count_reasons,
    csv_header,
    day_batches,
    empty_day_note,
    file_format,
    files_for_day,
    CSV_SOURCE,
    is_numeric_feature_candidate,
    reader_error,
    seen_sql,
    source_files,
)

SCHEMAS = ("raw", "raw_quarantine")
DAY = "_partition_date"  # the day folders' column (hive-style: _partition_date=YYYY-MM-DD)
SUSPECT = "_suspect"  # a value Spark's CSV parser let through that DuckDB's strict reader may refuse


def table_folder(schema: str, table: str, root: Path | None = None) -> Path:
    from orchestration.lib.engine import spark_dir

    return (root or spark_dir()) / schema / table


def _parquet_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("_partition_date=*/*.parquet")) if folder.is_dir() else []


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# ------------------------------------------------------------------ the tables in Spark and in DuckDB


def _empty_select(contract: TableContract, quarantine: bool) -> str:
    cols = [f"CAST(NULL AS {c.type}) AS {_quote(c.name)}" for c in contract.columns]
    cols += ["CAST(NULL AS DATE) AS _partition_date", "CAST(NULL AS VARCHAR) AS _source_file"]
    cols += ["CAST(NULL AS BIGINT) AS _source_row"] + (["CAST(NULL AS VARCHAR) AS _reason"] if quarantine else [])
    return f"SELECT {', '.join(cols)} WHERE false"


def register_spark_tables(session, tables, schemas=SCHEMAS) -> None:
    """``raw.<table>`` / ``raw_quarantine.<table>`` in the session's catalog: the Parquet days, or no rows with
    the contract's columns (a table never loaded), for the referential rules, seen keys and the gates.

    The days are an external table (dropping it leaves the files): its files are listed and its schema read
    once, here, and Spark keeps the resolved relation for every query that names it. A view over
    ``parquet.`<folder>``` did both again in each query naming it (~0.2 s a time; a gate's queries name their
    tables a dozen times). Registering again is how a run sees the days it just landed; a table whose files
    are those it was registered over is left as it is (each gate registers its tables: ~1 s each time), and
    one whose new files have the columns it was registered with is listed again (REFRESH), not dropped and
    created: each is a write to the Derby metastore (~0.3-0.5 s a table against ~0.07 s)."""
    from orchestration.lib.spark_session import MANAGE_PARTITIONS, to_spark_sql

    session.conf.set(MANAGE_PARTITIONS, "false")  # the day folders are listed, never tracked (dbt's run sets it)
    registered, databases = _registered_files(session), _created_databases(session)
    for schema in schemas:
        if schema not in databases:
            session.sql(f"CREATE DATABASE IF NOT EXISTS {schema}")
            databases.add(schema)
        for table in tables:
            name, folder = f"{schema}.{table}", table_folder(schema, table)
            files = _files_signature(folder)
            before = registered.get(name)  # as this session registered it (it drops none of them otherwise)
            if before is not None and before.files == files:
                continue
            if before is not None and before.files[1] and files[1] and _same_columns(before, files):
                session.sql(f"REFRESH TABLE {name}")
                registered[name] = Registered(files, before.columns)
                continue
            if session.catalog.tableExists(name):
                kind = "VIEW" if session.catalog.getTable(name).tableType == "VIEW" else "TABLE"
                session.sql(f"DROP {kind} {name}")
            if files[1]:
                session.catalog.createTable(name, path=str(folder), source="parquet")
            else:
                session.sql(
                    f"CREATE VIEW {name} AS {to_spark_sql(_empty_select(CONTRACTS[table], schema == 'raw_quarantine'))}"
                )
            registered[name] = Registered(files, _file_columns(files[1][-1][0]) if files[1] else None)


@dataclass(frozen=True)
class Registered:
    files: tuple  # _files_signature when registered
    columns: tuple | None  # the columns of its Parquet files (None: a view, no files)


def _file_columns(path: str) -> tuple:
    import pyarrow.parquet as pq

    return tuple((f.name, str(f.type)) for f in pq.read_schema(path))


def _same_columns(before: Registered, files: tuple) -> bool:
    """The table's folder is the same, and every file new since ``before`` has the columns the table was
    registered with (the loader gives every day folder of a table the same columns: a new column rewrites them
    all)."""
    if before.files[0] != files[0]:  # another folder (a process moving to another spark_dir): registered anew
        return False
    known = set(before.files[1])
    return all(_file_columns(f[0]) == before.columns for f in files[1] if f not in known)


def _registered_files(session) -> dict:
    """Per table of the session's catalog, the files it was registered over."""
    return session.__dict__.setdefault("_impact_ledger_registered_files", {})


def _created_databases(session) -> set:
    """The databases this session created (each CREATE DATABASE IF NOT EXISTS is a metastore call)."""
    return session.__dict__.setdefault("_impact_ledger_created_databases", set())


def _files_signature(folder: Path) -> tuple:
    """The folder and its Parquet files as they are now: a day replaced (swapped in: new files), added or
    removed, or a file rewritten in place changes it."""
    files = []
    for path in _parquet_files(folder):
        stat = path.stat()
        files.append((str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino))
    return str(folder), tuple(files)


def _relist_days(session, table: str) -> None:
    """``raw.<table>`` with the days just landed: the table's files listed again (its day folders were replaced;
    its columns stay as registered, and the loader reads only keys and days), or, registered over no files yet,
    the table itself. Only before a day that reads the table: a listing costs more with every day folder
    (~2 s after 90 days), and a run of empty days (an absent table) reads nothing."""
    if session.catalog.getTable(f"raw.{table}").tableType == "VIEW":
        if _parquet_files(table_folder("raw", table)):
            register_spark_tables(session, [table], ("raw",))
    else:
        # its files now differ from those it was registered over: the gate registers it anew
        session.sql(f"REFRESH TABLE raw.{table}")


def _ordered(contract: TableContract, columns: list[str], quarantine: bool) -> list[str]:
    """The DuckDB table's column order: contract columns, meta columns (and _reason), then extra columns."""
    head = contract.column_names + list(META_COLUMNS) + (["_reason"] if quarantine else [])
    return [c for c in head if c in columns] + [c for c in columns if c not in head]


def attach_duckdb_views(conn: duckdb.DuckDBPyConnection, tables) -> None:
    """DuckDB's ``raw.<table>`` / ``raw_quarantine.<table>`` as views over the Parquet Spark wrote (a table the
    DuckDB engine loaded earlier first lands its days there), so every DuckDB reader reads the same rows."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS raw; CREATE SCHEMA IF NOT EXISTS raw_quarantine")
    kinds = dict(
        conn.execute(
            "SELECT table_schema || '.' || table_name, table_type FROM information_schema.tables "
            "WHERE table_schema IN ('raw', 'raw_quarantine')"
        ).fetchall()
    )
    for schema in SCHEMAS:
        for table in tables:
            name, folder = f"{schema}.{table}", table_folder(schema, table)
            if kinds.get(name) == "BASE TABLE":
                _land_duckdb_table(conn, name, folder)
                conn.execute(f"DROP TABLE {name}")
            if _parquet_files(folder):
                scan = (
                    f"read_parquet({_sql_str(str(folder) + '/*/*.parquet')}, hive_partitioning = true, "
                    "union_by_name = true, hive_types = {'_partition_date': DATE})"
                )
                columns = [r[0] for r in conn.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()]
                listed = ", ".join(map(_quote, _ordered(CONTRACTS[table], columns, schema == "raw_quarantine")))
                body = f"SELECT {listed} FROM {scan}"
            else:
                body = _empty_select(CONTRACTS[table], schema == "raw_quarantine")
            conn.execute(f"CREATE OR REPLACE VIEW {name} AS {body}")
    ensure_gate_results(conn)  # dbt's staging views read it before any gate has run


def _land_duckdb_table(conn: duckdb.DuckDBPyConnection, name: str, folder: Path) -> None:
    """A raw table the DuckDB engine loaded: its days without a Parquet folder yet, written there."""
    have = {p.name.removeprefix("_partition_date=") for p in folder.glob("_partition_date=*")}
    days = conn.execute(f"SELECT DISTINCT _partition_date FROM {name} WHERE _partition_date IS NOT NULL").fetchall()
    for (day,) in days:
        if day.isoformat() in have:
            continue
        target = folder / f"_partition_date={day.isoformat()}"
        target.mkdir(parents=True, exist_ok=True)
        conn.execute(
            f"COPY (SELECT * EXCLUDE (_partition_date) FROM {name} WHERE _partition_date = DATE '{day.isoformat()}') "
            f"TO {_sql_str(str(target / 'part-0.parquet'))} (FORMAT parquet)"
        )


# ------------------------------------------------------------------ reading the landing files


def _file_path_column():
    """The scanned file's absolute path (Spark gives a URI; a '+' in it is a '+')."""
    from pyspark.sql import functions as F

    return F.expr("url_decode(replace(regexp_replace(input_file_name(), '^file:(//)?', ''), '+', '%2B'))")


def spark_readable(path: Path) -> Path:
    """``path``, or for a Parquet file with nanosecond timestamps (pandas' default ``to_parquet``), which Spark
    refuses (PARQUET_TYPE_ILLEGAL), a copy with them in microseconds, DuckDB's own precision (the loader on
    DuckDB truncates them alike), and its all-null columns as text. The copy is kept under IMPACT_LEDGER_SPARK_DIR/landing_micros/ for that file
    as it is (path, size, time): a re-run reads it again, a changed file makes another."""
    import hashlib

    import pyarrow as pa
    import pyarrow.parquet as pq

    from orchestration.lib.engine import spark_dir

    if file_format(path) != "parquet":
        return path
    schema = pq.read_schema(path)
    nanos = {f.name for f in schema if pa.types.is_timestamp(f.type) and f.type.unit == "ns"}
    # a column of nothing but nulls (pyarrow's null type) Spark reads as INT, which then cannot cast to a DATE or
    # TIMESTAMP (a trial's experiments.end_date stopped the run): as text, every value NULL, it casts as DuckDB's
    nulls = {f.name for f in schema if pa.types.is_null(f.type)}
    if not nanos and not nulls:
        return path
    stat = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:20]
    target = spark_dir() / "landing_micros" / f"{path.stem}-{key}.parquet"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        micros = pa.schema(
            [
                f.with_type(pa.timestamp("us", f.type.tz))
                if f.name in nanos
                else f.with_type(pa.string())
                if f.name in nulls
                else f
                for f in schema
            ]
        )
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        source = pq.ParquetFile(path)
        with pq.ParquetWriter(tmp, micros) as writer:  # a row group at a time: memory stays bounded
            for batch in source.iter_batches():
                writer.write_table(pa.Table.from_batches([batch]).cast(micros, safe=False))
        tmp.replace(target)
    return target


def _read(session, contract: TableContract, files: list[Path], encoding: str):
    """The files as Spark reads them (every CSV value a string, columns by the header), with ``filename``."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    if all(file_format(p) == "parquet" for p in files):
        frame = session.read.option("mergeSchema", "true").parquet(*map(str, files))
        return frame.withColumn("_path", _file_path_column()), []
    by_header: dict[tuple[str, ...], list[Path]] = {}
    for path in files:
        by_header.setdefault(tuple(csv_header(path, contract.name, encoding)), []).append(path)
    frame, text_columns = None, []
    for header, paths in by_header.items():
        schema = StructType([StructField(c, StringType()) for c in header])
        # strict as DuckDB's read_csv (raw_loader.CSV_OPTIONS): a ragged row fails the read (FAILFAST); quoted
        # values may hold line breaks (multiLine), a quote inside one is doubled
        part = session.read.csv(
            [str(p) for p in paths],
            schema=schema,
            header=True,
            mode="FAILFAST",
            multiLine=True,
            sep=",",
            quote='"',
            escape='"',
            encoding=encoding,
            ignoreLeadingWhiteSpace=False,
            ignoreTrailingWhiteSpace=False,
            nullValue="",
        )
        frame = part if frame is None else frame.unionByName(part, allowMissingColumns=True)
        text_columns += [c for c in header if c not in text_columns]
    frame = frame.withColumn("_path", _file_path_column())
    suspect = [F.col(f"`{c}`").rlike("[\\ufffd\\r\\n]") for c in text_columns]
    flag = suspect[0]
    for more in suspect[1:]:
        flag = flag | more
    return frame.withColumn(SUSPECT, F.coalesce(flag, F.lit(False))), text_columns


def _duckdb_judges(table: str, files: list[Path], encoding: str, spark_error: Exception | None) -> None:
    """DuckDB's strict reader on files Spark refused or read leniently: its error is the ContractError."""
    with duckdb.connect() as conn:
        try:
            # every column read and decoded (a count(*) alone would not decode the values)
            conn.execute(f"SELECT min(length(CAST(COLUMNS(*) AS VARCHAR))) FROM {_scan_sql(files, table, encoding)}")
        except duckdb.Error as err:
            if not _is_reader_error(err):
                raise
            raise reader_error(err, table, files, encoding) from None
    if spark_error is not None:  # DuckDB reads what Spark cannot: Spark's own first line
        cause = str(spark_error).strip().splitlines()[0][:300]
        where = str(files[0] if len(files) == 1 else files[0].parent)
        raise ContractError(f"{where}: table '{table}': Spark cannot read the file: {cause}")


def _scan(session, conn, contract: TableContract, files: list[Path], encoding: str, file_days=None):
    """The files as view ``_scan`` with ``filename`` and ``_source_row`` (the row's place in the files, in their
    order, as DuckDB's scan numbers them); checked as DuckDB checks them. Returns its columns.

    ``file_days``: each file's day (the files of several days, each day's together): rows get ``_partition_date``
    and are numbered within their day's files, as a scan of that day alone numbers them."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    check_columns(conn, contract, files, encoding)  # headers and Parquet footers: metadata only
    readable = [spark_readable(p) for p in files]  # what Spark reads of each file (named as the file itself)
    order = {os.path.abspath(p): i for i, p in enumerate(readable)}
    try:
        frame, text_columns = _read(session, contract, readable, encoding)
        pos = F.create_map(*[F.lit(x) for kv in order.items() for x in kv])[F.col("_path")]
        # `filename` as DuckDB's scan names the file: the path as listed
        named = F.array(*[F.lit(str(p)) for p in files])[F.col("_file_pos")]
        frame = frame.withColumn("_file_pos", pos).withColumn("filename", named).drop("_path")
        frame = frame.withColumn("_in_file", F.monotonically_increasing_id())
        # one pass reads every file (a ragged row fails it): the rows of each file, and those to judge again
        per_file = frame.groupBy("_file_pos").agg(
            F.count(F.lit(1)).alias("n"),
            (F.max(F.col(SUSPECT).cast("int")) if text_columns else F.lit(0)).alias("suspect"),
        )
        counts = {r["_file_pos"]: (r["n"], r["suspect"]) for r in per_file.collect()}
    except Exception as err:  # noqa: BLE001  (Py4J and Spark's own exceptions: any read failure)
        if "Py4J" not in type(err).__name__ and not type(err).__module__.startswith("pyspark"):
            raise
        _duckdb_judges(contract.name, files, encoding, err)
        raise
    if None in counts:  # a row whose file Spark names otherwise: _source_row would be wrong
        raise ContractError(f"table '{contract.name}': Spark read rows from a file not among {[str(p) for p in files]}")
    suspects = [files[i] for i, (_, s) in counts.items() if s]
    if suspects:
        _duckdb_judges(contract.name, suspects, encoding, None)
    offsets, start = {}, 0
    for i in range(len(files)):
        if file_days and i and file_days[i] != file_days[i - 1]:
            start = 0
        offsets[i], start = start, start + counts.get(i, (0, 0))[0]
    offset = F.create_map(*[F.lit(x) for kv in offsets.items() for x in kv])[F.col("_file_pos")]
    in_file = F.row_number().over(Window.partitionBy("_file_pos").orderBy("_in_file"))
    frame = frame.withColumn("_source_row", (offset + in_file).cast("bigint"))
    if file_days:
        frame = frame.withColumn("_partition_date", F.array(*map(F.lit, file_days))[F.col("_file_pos")])
    frame = frame.drop("_file_pos", "_in_file", SUSPECT)
    frame.createOrReplaceTempView("_scan")
    return [c for c in frame.columns if c != "_source_row"]


def _typed(session, sql, contract, files, dated, encoding, day_sql: str, conn, file_days=None):
    """The typed rows of ``files`` (the same SQL as DuckDB's loader), checked as DuckDB checks them."""
    present = _scan(session, conn, contract, files, encoding, file_days)
    check_types_with(sql.fetchall, contract, "_scan", set(present))
    if contract.time_column and not dated:
        check_undated_times(sql.fetchall, contract, files, "_scan")
    # the scan's fractional number columns, named as DuckDB's: a whole 123.0 id lands as '123' on both engines
    fractional = {n for n, t in session.table("_scan").dtypes if t in ("double", "float") or t.startswith("decimal")}
    typed = {n: "DOUBLE" if n in fractional else None for n in present}
    return sql.frame(f"SELECT {_typed_select(contract, typed, day_sql, '_source_row')} FROM _scan")


# ------------------------------------------------------------------ the day, checked and landed


def _write(frame, folder: Path) -> None:
    """Replace ``folder`` with ``frame`` as Parquet: written beside it, then swapped in."""
    _replace(folder, lambda tmp: frame.write.mode("overwrite").parquet(str(tmp)))


def _replace(folder: Path, fill) -> None:
    """Replace ``folder`` with the folder ``fill(tmp)`` makes beside it (swapped in: a reader sees old or new)."""
    staging = folder.parents[2] / "_staging"  # beside raw/: never inside a folder DuckDB's views list
    tmp, old = staging / uuid.uuid4().hex, staging / uuid.uuid4().hex
    staging.mkdir(parents=True, exist_ok=True)
    fill(tmp)
    folder.parent.mkdir(parents=True, exist_ok=True)
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def _conform(session, frame, schema: str, contract: TableContract, known_columns: dict):
    """The day's rows with every column the table's other days have (NULL where absent), and those days given
    the day's new columns (rewritten once, when a column first appears): every file of a table holds the same
    columns, as DuckDB's table does. dbt's Spark infers a folder's schema from one of its files.
    ``known_columns`` caches each folder's schema for the run (read once, not once per day). Rows of several
    days keep their ``_partition_date``."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, StructField, StructType

    known = _stored_schema(session, schema, contract, known_columns)
    if known is None:  # a snapshot is replaced whole; a table's first day has nothing to conform to
        return frame
    folder = table_folder(schema, contract.name)
    fields, promoted = list(known.fields), []
    for i, field in enumerate(known.fields):
        if field.name not in frame.columns:
            frame = frame.withColumn(field.name, F.lit(None).cast(field.dataType))
        elif frame.schema[field.name].dataType != field.dataType:
            if _promotes(session, frame.schema[field.name], field, contract, known_columns):
                fields[i] = StructField(field.name, DoubleType(), True)
                frame = frame.withColumn(field.name, F.col(f"`{field.name}`").cast("double"))
                promoted.append(field.name)
            else:
                frame = _as_type(frame, field, contract.name)
    new = [f for f in frame.schema.fields if f.name not in known.fieldNames() and f.name != DAY]
    if new or promoted:
        for day_folder in sorted(folder.glob("_partition_date=*")):
            old = session.read.parquet(str(day_folder))
            for field in new:
                old = old.withColumn(field.name, F.lit(None).cast(field.dataType))
            for name in promoted:
                old = old.withColumn(name, F.col(f"`{name}`").cast("double"))
            _write(old.localCheckpoint(eager=True), day_folder)  # read before its folder is replaced
    known_columns[schema] = StructType(fields + new)
    return frame.select(*known.fieldNames(), *[f.name for f in new], *[DAY] * (DAY in frame.columns))


def _promotes(session, day_field, stored_field, contract: TableContract, known_columns: dict) -> bool:
    """A feature column stored as text without a value that a day brings numbers to becomes DOUBLE (raw_loader's
    _numbers_into_empty_text): a numeric column of the day, or a CSV's numbers _numbers_as_double made one."""
    from pyspark.sql.types import NumericType, StringType

    return (
        is_numeric_feature_candidate(contract.name, stored_field.name)
        and isinstance(stored_field.dataType, StringType)
        and isinstance(day_field.dataType, NumericType)
        and stored_field.name in _empty_stored(session, contract, known_columns, [stored_field.name])
    )


def _empty_stored(session, contract: TableContract, known_columns: dict, names: list[str]) -> set[str]:
    """Of ``names``, the columns no stored row of raw.<table> and raw_quarantine.<table> holds a text value of. A
    schema whose column this day's load already made DOUBLE is not read: raw is conformed (and written) first, and
    its new numbers had kept raw_quarantine's column text, where DuckDB alters both."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    empty = set(names)
    for schema in ("raw", "raw_quarantine"):
        stored = _stored_schema(session, schema, contract, known_columns)
        text = {f.name for f in stored.fields if isinstance(f.dataType, StringType)} if stored is not None else set()
        present = [n for n in sorted(empty) if n in text]
        if present:
            folder = table_folder(schema, contract.name)
            row = (
                session.read.parquet(str(folder)).select(*[F.count(F.col(f"`{n}`")).alias(n) for n in present]).first()
            )
            empty -= {n for n in present if row[n]}
    return empty


def _stored_schema(session, schema: str, contract: TableContract, known_columns: dict):
    """The columns of the table's stored days (cached in ``known_columns`` for the run); None for a snapshot
    (replaced whole) or before the table's first day."""
    folder = table_folder(schema, contract.name)
    if contract.time_column is None or not _parquet_files(folder):
        return None
    if known_columns.get(schema) is None:
        known_columns[schema] = (
            session.read.option("mergeSchema", "true").parquet(str(folder)).drop("_partition_date").schema
        )
    return known_columns[schema]


def _stored_names(sql, contract: TableContract, known_columns: dict) -> list[str]:
    """The column names of raw.<table>'s stored days (_stored_schema's, the run's cache _conform reads too); before
    its first day, the contract's (the table is empty: a range's own days are still compared with each other)."""
    known = _stored_schema(sql.session, "raw", contract, known_columns)
    return [c.name for c in contract.columns] if known is None else known.fieldNames()


def _numbers_as_double(session, checked, contract: TableContract, known_columns: dict):
    """raw_loader's rule for a CSV's text (NUMBER_PATTERN): a predictions feature_* column new to the table (or
    stored as text without a value yet: _promotes), its every value a plain number, is DOUBLE; decided on the
    day's loaded and quarantined rows together. A single-precision column is DOUBLE too."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import FloatType, StringType

    # a single-precision column new to the table is stored as DOUBLE, as raw_loader's SINGLE_PRECISION_STORED
    for field in checked.schema.fields:
        if isinstance(field.dataType, FloatType) and field.name not in contract.column_names:
            checked = checked.withColumn(field.name, F.col(f"`{field.name}`").cast("double"))
    stored = _stored_schema(session, "raw", contract, known_columns)
    known = {f.name: f.dataType for f in stored.fields} if stored is not None else {}
    # new columns, and those stored as text without a value yet (_empty_stored: read only for a day of numbers)
    text = [
        f.name
        for f in checked.schema.fields
        if isinstance(f.dataType, StringType)
        and is_numeric_feature_candidate(contract.name, f.name)
        and isinstance(known.get(f.name, StringType()), StringType)
    ]
    if not text:
        return checked
    tests = []
    for name in text:
        value = F.col(f"`{name}`")
        number = value.rlike(f"^(?:{NUMBER_PATTERN})$") & ~value.rlike(f"^(?:{CODE_PATTERN})$")
        tests.append(((F.count(value) > 0) & (F.count(F.when(value.isNotNull() & ~number, 1)) == 0)).alias(name))
    source = F.lower(F.coalesce(F.col("_source_file"), F.lit("")))
    tests.append((F.count(F.when(~source.rlike(f"^(?:{CSV_SOURCE})$"), 1)) == 0).alias("_from_csv"))
    verdicts = checked.select(*tests).first()
    if not verdicts["_from_csv"]:  # a Parquet (or database) string column: typed by its exporter
        return checked
    numbers = [name for name in text if verdicts[name]]
    if stored_text := [name for name in numbers if name in known]:
        kept = set(stored_text) - _empty_stored(session, contract, known_columns, stored_text)
        numbers = [name for name in numbers if name not in kept]
    for name in numbers:
        checked = checked.withColumn(name, F.col(f"`{name}`").cast("double"))
    return checked


def _as_type(frame, field, table: str):
    """An extra column of the day with the type it has on the table's other days (a CSV day, read as text, among
    Parquet days), as DuckDB's insert into the table casts it; a value that does not cast stops the load."""
    from pyspark.sql import functions as F

    from orchestration.lib.spark_session import duckdb_type

    value = F.col(f"`{field.name}`")
    bad = frame.filter(value.isNotNull() & value.cast(field.dataType).isNull()).select("_source_file", value)
    examples = [tuple(r) for r in bad.limit(3).collect()]
    if examples:
        raise ContractError(
            f"{examples[0][0]}: table '{table}', column '{field.name}': value(s) cannot be cast to "
            f"{duckdb_type(field.dataType)}, its type on the table's other days, e.g. {[e[1] for e in examples]}"
        )
    return frame.withColumn(field.name, value.cast(field.dataType))


def _land(
    sql,
    contract: TableContract,
    rows,
    day: date,
    dated: bool,
    report: LoadReport,
    known_columns: dict,
    empty_days: dict,
) -> None:
    """Check the day's typed rows (``rows``) and land its loaded and quarantined rows. A side without rows (most
    days quarantine nothing) whose columns are the table's is a copy of an empty day this run wrote
    (``empty_days``, as _land_empty's), not a Spark job."""
    from pyspark.sql import functions as F

    rows.createOrReplaceTempView("_typed")
    seen = seen_sql(contract, day)
    if seen is not None:
        sql.frame(seen).createOrReplaceTempView("_seen")
    checked = sql.frame(
        checked_sql(contract, day, dated, columns=rows.columns, stored=_stored_names(sql, contract, known_columns))
    )
    checked = checked.drop("_key_rank", "_first_seen", "_resent_on")
    checked = checked.localCheckpoint(eager=True)  # computed once: counted, then written twice
    checked = _numbers_as_double(sql.session, checked, contract, known_columns)
    count_reasons(report, {r[0]: r[1] for r in checked.groupBy("_reason").count().collect()})
    part = f"_partition_date={day.isoformat()}"
    for schema, keep, n_rows in (
        ("raw", F.col("_reason") == "", report.rows_loaded),
        ("raw_quarantine", F.col("_reason") != "", report.rows_quarantined),
    ):
        frame = checked.filter(keep).drop("_partition_date")
        if schema == "raw":
            frame = frame.drop("_reason")
        folder = table_folder(schema, contract.name)
        known, written = known_columns.get(schema), empty_days.get(schema)
        # the copy has the table's columns: what conforming this frame gives unless it brings a new one
        if n_rows == 0 and written is not None and written.is_dir() and known is not None:
            if set(frame.columns) <= set(known.fieldNames()):
                _copy_empty_day(written, folder / part)
                continue
        _write(_conform(sql.session, frame, schema, contract, known_columns), folder / part)
        if n_rows == 0 and contract.time_column is not None:
            empty_days[schema] = folder / part
        if contract.time_column is None:  # a snapshot replaces the table: its one day
            for other in folder.glob("_partition_date=*"):
                if other.name != part:
                    shutil.rmtree(other)


def _land_together(
    sql, conn, contract: TableContract, day_files: dict, undated_rows, encoding: str, known_columns, empty_days
) -> dict[date, LoadReport]:
    """The run's days with source rows checked and landed a batch of days at a time (a few Spark jobs per batch,
    not per day; raw_loader.day_batches), with the rows, reasons and folders landing them one by one gives
    (raw_loader.checked_days_sql). {} when there is one such day, or when a check fails: the days are then
    loaded one by one, which lands the days before the first bad one and names it, as the DuckDB loader does.
    ``undated_rows``: the undated files' typed rows."""
    with_rows = [day for day, (files, _) in day_files.items() if files]
    if contract.time_column is None or len(with_rows) < 2:
        return {}
    replaced = [day for day in day_files if day not in with_rows]  # emptied by the run: never a first sighting
    reports: dict[date, LoadReport] = {}
    batches = day_batches(day_files, undated_rows is not None)
    if undated_rows is None:  # one format a batch: a trial's one Parquet day sent 40 CSV days one by one (3x slower)
        batches = [part for batch in batches for part in _by_format(batch, day_files)]
    for i, batch in enumerate(batches):
        if i:  # the seen keys of this batch read the days the run landed before it
            _relist_days(sql.session, contract.name)
        landed = _land_batch(
            sql, conn, contract, day_files, batch, replaced, undated_rows, encoding, known_columns, empty_days
        )
        if landed is None:
            return {}
        reports |= landed
    return reports


def _by_format(batch: list[date], day_files: dict) -> list[list[date]]:
    """``batch``'s days split where their files' format changes (a day's files share one: raw_loader's rule)."""
    parts: list[tuple[set, list[date]]] = []
    for day in batch:
        formats = {file_format(p) for p in day_files[day][0]}
        if parts and parts[-1][0] == formats:
            parts[-1][1].append(day)
        else:
            parts.append((formats, [day]))
    return [days for _, days in parts]


def _land_batch(
    sql,
    conn,
    contract,
    day_files: dict,
    batch: list[date],
    replaced: list[date],
    undated_rows,
    encoding: str,
    known_columns,
    empty_days,
) -> dict[date, LoadReport] | None:
    """One batch of _land_together's days checked and landed; None when its check fails (nothing written)."""
    try:
        if undated_rows is not None:  # placed by their time column: only the batch's days (the run may skip some)
            listed = ", ".join(f"DATE '{day.isoformat()}'" for day in batch)
            rows, dated = undated_rows.filter(f"{DAY} IN ({listed})"), False
        else:
            files = [p for day in batch for p in day_files[day][0]]
            file_days = [day for day in batch for _ in day_files[day][0]]
            rows, dated = _typed(sql.session, sql, contract, files, True, encoding, DAY, conn, file_days), True
        rows.createOrReplaceTempView("_typed")
        stored = _stored_names(sql, contract, known_columns)
        checked = sql.frame(checked_days_sql(contract, batch + replaced, dated, columns=rows.columns, stored=stored))
        checked = checked.drop(*checked_days_helpers(checked.columns)).localCheckpoint(eager=True)  # read 3 times
        checked = _numbers_as_double(sql.session, checked, contract, known_columns)
        sides = {
            schema: _conform(sql.session, checked.filter(keep).drop(*drop), schema, contract, known_columns)
            for schema, keep, drop in (
                ("raw", "_reason = ''", ["_reason"]),
                ("raw_quarantine", "_reason <> ''", []),
            )
        }
    except ContractError:
        return None
    reasons: dict[date, dict[str, int]] = {}
    for day, reason, n in checked.groupBy(DAY, "_reason").count().collect():
        reasons.setdefault(day, {})[reason] = n
    reports = {}
    for day in batch:
        reports[day] = LoadReport(contract.name, day, [str(p) for p in day_files[day][0]])
        count_reasons(reports[day], reasons.get(day, {}))
    for schema, frame in sides.items():
        _write_days(frame, schema, contract, batch, empty_days)
    return reports


def _write_days(frame, schema: str, contract: TableContract, days: list[date], empty_days: dict) -> None:
    """Each day's rows of ``frame`` (several days, with their ``_partition_date``) as its day folder, swapped in;
    a day without rows is an empty day (a copy of one this run wrote, as _land_empty's)."""
    folder = table_folder(schema, contract.name)
    written = folder.parents[1] / "_staging" / uuid.uuid4().hex  # beside raw/, as _replace's
    frame.write.partitionBy(DAY).parquet(str(written))
    try:
        for day in days:
            part = f"{DAY}={day.isoformat()}"
            if (written / part).is_dir():
                _replace(folder / part, (written / part).rename)
            elif (empty := empty_days.get(schema)) is not None and empty.is_dir():
                _copy_empty_day(empty, folder / part)
            else:
                _write(frame.limit(0).drop(DAY), folder / part)
                empty_days[schema] = folder / part
    finally:
        shutil.rmtree(written, ignore_errors=True)


def _land_empty(session, contract: TableContract, day: date, known_columns: dict, empty_days: dict) -> None:
    """A day without source rows: its folders hold no rows (the table's columns kept, as DuckDB's delete).

    ``empty_days``: per schema, the folder of an empty day this run wrote. A later empty day is a copy of its
    files, not a Spark job: a table absent from the source is empty on every day (a year of them was an hour
    of Spark jobs). Its files always have the table's columns: a day that brings a new column rewrites every
    day folder of the table with it (_conform), this one included."""
    from orchestration.lib.spark_session import to_spark_sql

    for schema in SCHEMAS:
        folder = table_folder(schema, contract.name)
        target = folder / f"_partition_date={day.isoformat()}"
        if contract.time_column is None:  # a snapshot is the one day: nothing to copy from
            shutil.rmtree(folder, ignore_errors=True)
        elif (written := empty_days.get(schema)) is not None and written.is_dir():
            _copy_empty_day(written, target)
            continue
        frame = session.sql(to_spark_sql(_empty_select(contract, schema == "raw_quarantine"))).drop("_partition_date")
        _write(_conform(session, frame, schema, contract, known_columns), target)
        if contract.time_column is not None:
            empty_days[schema] = target


def _copy_empty_day(written: Path, target: Path) -> None:
    """The day folder ``target`` as a copy of ``written``, an empty day of the same table this run wrote."""
    _replace(target, lambda tmp: shutil.copytree(written, tmp))


REFERENCED = re.compile(r"\braw\.(\w+)")


TIME_ZONE = "spark.sql.session.timeZone"


@contextmanager
def _time_zone(session, zone: str):
    """The session's time zone ``zone`` while the block runs, UTC (FIXED_SETTINGS') after it."""
    session.conf.set(TIME_ZONE, zone)
    try:
        yield
    finally:
        session.conf.set(TIME_ZONE, "UTC")


def load_days(conn: duckdb.DuckDBPyConnection, table: str, source: Path, days: list[date]) -> list[LoadReport]:
    """raw_loader.load_days on Spark: each day's rows of ``raw.<table>`` (and its quarantine) replaced from
    ``source``; DuckDB's views then read the Parquet. Undated files are read once for all the days."""
    from orchestration.lib.spark_session import SparkSql

    contract, source, all_files, undated = source_files(table, source, days)
    encoding = load_config().csv.encoding_of(table)
    sql = SparkSql()
    session = sql.session
    # the casts' zone, as DuckDB's loader sets it: an offset moves a time to the project's zone (TIMESTAMP to
    # TIMESTAMP_NTZ), a time without one is in it already; the session's other users keep UTC
    with _time_zone(session, load_config().timezone):
        # the table itself (keys seen on earlier days) and the tables its referential rules read (raw only: the
        # quarantine is read by the gates, which register their tables themselves)
        referenced = {table} | {m for r in contract.rules for m in REFERENCED.findall(r.violated_when)}
        register_spark_tables(session, sorted(referenced), ("raw",))
        known_columns: dict = {}
        empty_days: dict = {}
        reports = []
        staged = None
        try:
            if undated:
                day = _time_day(contract)
                staged = _typed(session, sql, contract, all_files, False, encoding, day, conn)
                first, last = min(days).isoformat(), max(days).isoformat()
                staged = staged.filter(f"_partition_date BETWEEN DATE '{first}' AND DATE '{last}'")
                staged = staged.localCheckpoint(eager=True)  # read once for every day of the run
            day_files = {day: files_for_day(source, contract, all_files, day) for day in days}
            together = _land_together(sql, conn, contract, day_files, staged, encoding, known_columns, empty_days)
            for day in days:
                files, dated = day_files[day]
                if day in together:
                    reports.append(together[day])
                    continue
                report = LoadReport(table, day, [str(p) for p in files])
                if undated:
                    rows = staged.filter(f"_partition_date = DATE '{day.isoformat()}'")
                elif files:
                    rows = _typed(session, sql, contract, files, dated, encoding, f"DATE '{day.isoformat()}'", conn)
                if files:
                    if reports:  # this day's seen keys and rules read the days this run landed before it
                        _relist_days(session, table)
                    _land(sql, contract, rows, day, dated, report, known_columns, empty_days)
                else:
                    _land_empty(session, contract, day, known_columns, empty_days)
                    report.note = empty_day_note(table, bool(all_files))
                reports.append(report)
        finally:
            for view in ("_scan", "_typed", "_seen"):
                session.catalog.dropTempView(view)
            attach_duckdb_views(conn, [table])
        return reports
