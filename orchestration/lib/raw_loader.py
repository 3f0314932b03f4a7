"""Load one partition day of one raw table from a source directory into DuckDB.

Enforces the contract in SQL so a day of a million rows never becomes a Python
loop: a missing required column or an uncastable value stops the load with a
`ContractError` naming file, table and column; rows that break a row rule go to
``raw_quarantine.<table>`` with ``_reason``. Re-loading a day replaces it, so
loads are idempotent. Rows read = rows loaded + rows quarantined, always.
Every table but users is optional: absent from the source, it is loaded empty
with a note. A missing optional column loads as null.

CSV files are read strictly (RFC 4180: comma-separated, double quotes, a quote
inside a value doubled, a header line, UTF-8 unless the project file's ``csv``
says otherwise): an unclosed quote, a ragged row, an empty file or bytes that are
not in the file's encoding stop the load with one ``ContractError`` naming the
file, table, line and cause, as do unreadable Parquet files. A key (prediction_id,
order_id, ...) already loaded on an earlier day is quarantined with the day it was
first seen.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Collection, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from orchestration.lib.contract import (
    CONTRACTS,
    COPY_REASON,
    RESENT_REASON,
    DECLARED_VARIANTS_SQL,
    SOURCE_COLUMNS,
    QUARANTINED_VARIANTS_SQL,
    UNKNOWN_VARIANT,
    ContractError,
    TableContract,
    variant_hints,
)
from orchestration.lib.project_config import load_config, nearest
from orchestration.lib.quality_gate import ensure_gate_results
from orchestration.lib.warehouse import transaction

# how a table's files are read, by the end of their names: gzip-compressed CSV too (DuckDB and Spark read it so)
FORMATS = {".parquet": "parquet", ".csv": "csv", ".csv.gz": "csv"}
DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")
META_COLUMNS = ("_partition_date", "_source_file", "_source_row")
# a range's days are loaded in batches of at most this many bytes of source files (~8M prediction rows as Parquet)
BATCH_BYTES = 256 * 1024**2
# Python codecs for reading a CSV header in each encoding DuckDB reads (utf-8-sig: a byte-order mark is not a name)
CSV_CODECS = {"utf-8": "utf-8-sig", "utf-16": "utf-16", "latin-1": "latin-1"}
# Strict RFC 4180: no dialect sniffing (a ragged file once sniffed as one column named after the whole header,
# an unclosed quote as a model id '"recommender'); a row with too few or too many fields is an error, not padded.
CSV_OPTIONS = (
    "header = true, auto_detect = false, delim = ',', quote = '\"', escape = '\"', "
    "strict_mode = true, null_padding = false"
)

# A CSV holds only text. A predictions feature_* column whose every value is a plain decimal number is stored as
# DOUBLE when it first reaches the table (drift bins it at the reference deciles; as text every distinct value
# was a category of its own, and PSI ~12 alerted every day). Codes with a leading zero ("007", "02134") stay text.
# Only CSV text: a Parquet (or database) string column was typed by its exporter, e.g. a customer subtype coded
# 1-41, a category (binned at deciles its PSI read 0.05 where it was 0.3-0.7).
# The table's type then holds for later days: a value that does not cast to it stops the load, naming it.
NUMBER_PATTERN = r"[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?"
CODE_PATTERN = r"[+-]?0[0-9].*"
CSV_SOURCE = r".*[.]csv([.]gz)?"  # a row's _source_file read as CSV text (any case)


def is_numeric_feature_candidate(table: str, column: str) -> bool:
    """A text column whose type its values decide when it first reaches the table (NUMBER_PATTERN)."""
    return table == "predictions" and column.startswith("feature_")


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


QUARANTINE_BY_REASON = "quarantine_by_reason"  # a raw asset's metadata key: quarantine_by_reason of its run
NEW_COLUMNS = "new_columns"  # a raw asset's metadata key: the source columns its run added to the raw table


def quarantine_by_reason(reports: list[LoadReport], dated: bool = True) -> dict[str, dict]:
    """reason -> {"rows": the run's quarantined rows of it, "days": its days compactly ('' for a snapshot, reloaded
    whole)}: what a run's progress says once per reason (a ranged run said one line a day, each with its count)."""
    from orchestration.lib.quality_gate import days_in_words

    days: dict[str, list[date]] = {}
    rows: dict[str, int] = {}
    for r in reports:
        for reason, n in r.quarantine_reasons.items():
            rows[reason] = rows.get(reason, 0) + n
            days.setdefault(reason, []).append(r.partition_date)
    return {reason: {"rows": n, "days": days_in_words(days[reason]) if dated else ""} for reason, n in rows.items()}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _keys_sql(contract: TableContract) -> str:
    """The contract's key columns, quoted and comma-separated (a PARTITION BY, GROUP BY or SELECT list)."""
    return ", ".join(map(_quote, contract.key))


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def file_format(path: Path) -> str | None:
    """'parquet' or 'csv' by the file's name (FORMATS); None for a file no table is read from."""
    name = path.name.lower()
    return next((fmt for end, fmt in FORMATS.items() if name.endswith(end)), None)


def table_files(source: Path, contract: TableContract) -> list[Path]:
    """All files of a table: ``<source>/<table>/**`` or ``<source>/<table>.parquet|csv|csv.gz``."""
    folder = source / contract.name
    if folder.is_dir():
        return sorted(p for p in folder.rglob("*") if file_format(p) and p.is_file())
    return [p for p in (source / f"{contract.name}{end}" for end in FORMATS) if p.is_file()]


def unread_files(source: Path, contract: TableContract) -> list[Path]:
    """Files in a table's folder that no format reads (``orders.csv.zip``, ``orders.json``), but not the hidden or
    ``_``-named ones tools leave beside data (``.DS_Store``, Spark's ``_SUCCESS``)."""
    folder = source / contract.name
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and not file_format(p) and not p.name.startswith((".", "_"))
    )


def unread_note(source: Path, contract: TableContract) -> str:
    """'' or why a table's folder holds files that are not read (one line, a few of them named)."""
    unread = unread_files(source, contract)
    if not unread:
        return ""
    shown = ", ".join(str(p.relative_to(source)) for p in unread[:3]) + (" ..." if len(unread) > 3 else "")
    return (
        f"{len(unread)} file(s) of table '{contract.name}' not read ({shown}): tables are read from "
        f"{', '.join('*' + end for end in FORMATS)} files"
    )


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


def check_formats(source: Path, contract: TableContract, files: list[Path]) -> None:
    """A table's files may change format from one dated day to the next (an exporter moved from CSV to Parquet);
    the files of one day, or undated files (read together), share one: else the loader's ContractError."""
    formats = {file_format(p) for p in files}
    if len(formats) < 2:
        return
    dated = {p: DATE_IN_NAME.search(str(p.relative_to(source))) for p in files}
    if contract.time_column is not None and all(dated.values()):
        by_day: dict[str, list[Path]] = {}
        for p, m in dated.items():
            by_day.setdefault(m.group(1), []).append(p)
        files = next((day_files for day_files in by_day.values() if len({file_format(p) for p in day_files}) > 1), [])
    if files:
        raise _mixed_formats(files, contract.name)


def _encoding_advice(table: str, encoding: str) -> str:
    return (
        "re-save it as UTF-8 (a Windows/Excel export is usually cp1252: `iconv -f cp1252 -t utf-8 in.csv > out.csv`; "
        "ISO-8859-1: `-f latin1`) or declare its encoding in the project file (csv: {table_encoding: "
        f"{{{table or '<table>'}: latin-1}}}}; utf-8, utf-16 and latin-1 are read; before a project file exists, a file "
        f"with only that block goes to `impact-ledger init --config FILE`; now read as {encoding})"
    )


def csv_header(path: Path, table: str = "", encoding: str = "utf-8") -> list[str]:
    """The column names on the first line of a CSV file; an empty file or a bad header is a ContractError."""
    where = f"{path}: table '{table}'" if table else str(path)
    if path.stat().st_size == 0:
        raise ContractError(
            f"{where}: the file is empty (0 bytes); a CSV file needs at least a header line naming its "
            "columns (a header alone is a day without rows)"
        )
    try:
        opened = gzip.open if path.name.lower().endswith(".gz") else open
        if encoding == "utf-16":  # two bytes a character: a byte-wise line would split one
            with opened(path, "rt", encoding=CSV_CODECS[encoding], newline="") as fh:
                first = fh.readline(1 << 20)
        else:  # the first line's bytes only: a text read would decode (and judge) a whole buffer of rows
            with opened(path, "rb") as fh:
                first = fh.readline(1 << 20).decode(CSV_CODECS[encoding])
    except UnicodeDecodeError:
        raise ContractError(
            f"{where}, line 1: the header is not valid {encoding}: " + _encoding_advice(table, encoding)
        ) from None
    header = next(csv.reader([first]), [])
    if not header or header == [""]:
        raise ContractError(
            f"{where}, line 1: the first line is empty; a CSV file starts with a header line naming its columns"
        )
    if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
        raise ContractError(
            f"{where}, line 1: the header is one column {header[0][:80]!r}; CSV files must be "
            "comma-separated (re-save with ',' as the delimiter)"
        )
    unnamed = [i + 1 for i, name in enumerate(header) if not name.strip()]
    if unnamed:
        guess = (
            "the row index pandas writes with to_csv(index=True)? write with index=False"
            if unnamed == [1]
            else "a trailing comma?"
        )
        raise ContractError(f"{where}, line 1: header field(s) {unnamed} have no name ({guess})")
    twice = sorted({n for n in header if header.count(n) > 1})
    if twice:
        raise ContractError(f"{where}, line 1: column(s) {twice} named twice in the header")
    return header


def _check_parquet(path: Path, table: str) -> None:
    """A Parquet file starts and ends with PAR1: check before DuckDB, whose messages name neither table nor cause."""
    size = path.stat().st_size
    where = f"{path}: table '{table}'" if table else str(path)
    if size == 0:
        raise ContractError(f"{where}: the Parquet file is empty (0 bytes); write the day again, or remove the file")
    with path.open("rb") as fh:
        head = fh.read(4)
        fh.seek(max(size - 4, 0))
        tail = fh.read(4)
    if head != b"PAR1":
        raise ContractError(
            f"{where}: not a Parquet file (it does not start with the Parquet magic bytes PAR1); name CSV files *.csv"
        )
    if size < 12 or tail != b"PAR1":
        raise ContractError(
            f"{where}: the Parquet file is truncated or incomplete ({size} bytes, no footer: it does not "
            "end with PAR1); was it copied while still being written? Write the day again"
        )


def _scan_sql(files: list[Path], table: str = "", encoding: str = "utf-8", mixed: bool = False) -> str:
    """One DuckDB scan over a table's files (a table function, or a UNION ALL BY NAME of CSV files whose headers differ).
    ``mixed``: Parquet and CSV files together as one UNION ALL BY NAME (columns both have read as text), for init's
    profile of a table whose exporter changed format; a load stages each day's files of one format."""
    formats = {file_format(p) for p in files}
    if mixed and formats == {"parquet", "csv"}:
        parts = [_scan_sql([p for p in files if file_format(p) == f], table, encoding) for f in ("parquet", "csv")]
        return "(" + " UNION ALL BY NAME ".join(f"SELECT * FROM {x}" for x in parts) + ")"
    if all(file_format(p) == "parquet" for p in files):
        for path in files:
            _check_parquet(path, table)
        return _parquet_scan(files)
    if all(file_format(p) == "csv" for p in files):
        by_header: dict[tuple[str, ...], list[Path]] = {}
        for path in files:
            by_header.setdefault(tuple(csv_header(path, table, encoding)), []).append(path)
        scans = []
        for header, paths in by_header.items():
            listed = ", ".join(_sql_str(str(p)) for p in paths)
            columns = "{" + ", ".join(f"{_sql_str(c)}: 'VARCHAR'" for c in header) + "}"
            scans.append(
                f"read_csv([{listed}], columns = {columns}, filename = true, encoding = '{encoding}', {CSV_OPTIONS})"
            )
        return (
            scans[0] if len(scans) == 1 else "(" + " UNION ALL BY NAME ".join(f"SELECT * FROM {x}" for x in scans) + ")"
        )
    raise _mixed_formats(files, table)


def _read_parquet(files: list[Path]) -> str:
    listed = ", ".join(_sql_str(str(p)) for p in files)
    return f"read_parquet([{listed}], union_by_name = true, filename = true)"


def _type_family(sql_type: str) -> str:
    """The kind of a DuckDB type as union_by_name combines them: numbers (and booleans) with numbers, dates and
    timestamps with each other, anything with text (it becomes text); any other type only with itself."""
    if sql_type == "VARCHAR":
        return "text"
    if sql_type == "DATE" or sql_type.startswith("TIMESTAMP"):
        return "time"
    numbers = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DECIMAL", "BOOLEAN")
    if sql_type.removeprefix("U").startswith(numbers):
        return "number"
    return sql_type


def parquet_clashes(files: list[Path]) -> dict[Path, dict[str, str]]:
    """The columns whose types disagree across Parquet ``files`` in a way one ``read_parquet(..., union_by_name)``
    cannot read (a BIGINT of epoch seconds in one file, a TIMESTAMP in another: DuckDB stops at the first such
    file with a Conversion Error advising union_by_name, which is on): each file's such columns and their types
    ({} when none; a file DuckDB cannot read is left to the scan, whose reader error names it). Reads footers."""
    if len(files) < 2:
        return {}
    with duckdb.connect() as conn:
        try:
            rows = conn.execute(
                "SELECT file_name, list((name, type, converted_type, logical_type)) "
                f"FROM parquet_schema([{', '.join(_sql_str(str(p)) for p in files)}]) GROUP BY file_name"
            ).fetchall()
            by_layout: dict[str, list[Path]] = {}  # the files of one footer layout share their columns' types
            layouts = {name: str(sorted(layout, key=str)) for name, layout in rows}
            for p in files:
                by_layout.setdefault(layouts.get(str(p), str(p)), []).append(p)
            if len(by_layout) < 2:
                return {}
            types = {}
            for same in by_layout.values():
                described = conn.execute(f"DESCRIBE SELECT * FROM {_read_parquet(same[:1])}").fetchall()
                types |= dict.fromkeys(same, {name: dtype for name, dtype, *_ in described})
        except duckdb.Error:
            return {}
    seen: dict[str, set[str]] = {}
    for file_types in types.values():
        for name, dtype in file_types.items():
            seen.setdefault(name, set()).add(dtype)
    clashing = {
        name
        for name, kinds in seen.items()
        if len(families := {_type_family(k) for k in kinds}) > 1 and "text" not in families
    }
    if not clashing:
        return {}
    return {p: {c: t for c, t in types[p].items() if c in clashing} for p in files}


def _parquet_scan(files: list[Path]) -> str:
    """One scan of Parquet files (read_parquet, union_by_name). Columns whose types the files disagree on beyond
    what union_by_name combines (parquet_clashes) are read as text, a UNION ALL BY NAME of the files in their
    order, a scan per run of files that agree: the contract's casts then name the values (and file) that fail."""
    clashes = parquet_clashes(files)
    if not clashes:
        return _read_parquet(files)
    runs: list[list[Path]] = []
    for p in files:
        if runs and clashes[runs[-1][0]] == clashes[p]:
            runs[-1].append(p)
        else:
            runs.append([p])
    parts = []
    for run in runs:
        as_text = ", ".join(f"CAST({_quote(c)} AS VARCHAR) AS {_quote(c)}" for c in clashes[run[0]])
        parts.append(f"SELECT * {f'REPLACE ({as_text}) ' if as_text else ''}FROM {_read_parquet(run)}")
    return "(" + " UNION ALL BY NAME ".join(parts) + ")"


def _mixed_formats(files: list[Path], table: str) -> ContractError:
    """The error of one day's (or undated) files in both formats: the formats, their counts and a file of each."""
    first = {f: next(p for p in files if file_format(p) == f) for f in ("parquet", "csv")}
    counts = {f: sum(file_format(p) == f for p in files) for f in ("parquet", "csv")}
    return ContractError(
        f"mixed Parquet and CSV files for one day of table '{table}': {counts['parquet']} Parquet (e.g. "
        f"{first['parquet']}) and {counts['csv']} CSV (e.g. {first['csv']}); one day's files share one format "
        "(a table may change format from one day to the next)"
    )


def _is_reader_error(err: duckdb.Error) -> bool:
    """DuckDB's CSV / Parquet reader errors (a corrupt Parquet page raises the bare duckdb.Error, a file's column
    of a type the scan's cannot be cast from a Conversion Error naming the file); others propagate."""
    if isinstance(err, duckdb.ConversionException):
        return str(err).startswith("Conversion Error: Error while reading file")
    return isinstance(err, (duckdb.InvalidInputException, duckdb.IOException)) or type(err) is duckdb.Error


def reader_error(err: duckdb.Error, table: str, files: list[Path], encoding: str = "utf-8") -> ContractError:
    """A DuckDB reader error as one line naming the file, table, line and cause (DuckDB's own runs to 40 lines)."""
    text = str(err)
    named = (
        re.search(r"^\s*file = (.+)$", text, re.M)
        or re.search(r"file '([^']+)'", text)
        or re.search(r'reading file "([^"]+)"', text)
    )
    path = named.group(1).strip() if named else str(files[0] if len(files) == 1 else files[0].parent)
    line = re.search(r"CSV Error on Line: (\d+)", text)
    original = re.search(r"Original Line: (.*)", text)
    columns = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
    if "unterminated quote" in text:
        cause = (
            'a quoted value is never closed (unterminated quote "); close it, and write a quote inside a '
            'value as two quotes ("")'
        )
    elif columns:
        found = columns.group(2)
        if original and original.group(1).strip():  # DuckDB's count stops where it gave up (8 fields read "7")
            found = str(len(next(csv.reader([original.group(1)]))))
        cause = (
            f"the row has {found} fields but the header names {columns.group(1)} columns (a missing "
            "or extra comma, or a comma inside a value that is not quoted)"
        )
    elif "Invalid unicode" in text or "not utf-8" in text.lower():
        cause = f"bytes that are not valid {encoding}: " + _encoding_advice(table, encoding)
    elif "Maximum line size" in text or "maximum_line_size" in text:
        cause = "a line longer than DuckDB's line limit (often an unclosed quote that runs to the end of the file)"
    elif cast := re.search(r'failed to cast column "([^"]+)" from type (.+?) to (.+?):', text):
        cause = (
            f"column '{cast.group(1)}' is {cast.group(2)} in this file but {cast.group(3)} in the other files read "
            "with it; write it with one type in every file"
        )
    else:
        cause = text.splitlines()[0].removeprefix("Invalid Input Error: ").removeprefix("IO Error: ")
        if path.lower().endswith(".parquet"):
            cause = f"the Parquet file cannot be read (corrupt, or truncated and padded): {cause}"
    at = f", line {line.group(1)}" if line else ""
    shown = f" (the line reads {original.group(1)[:120]!r})" if original and original.group(1).strip() else ""
    return ContractError(f"{path}: table '{table}'{at}: {cause}{shown}")


def _cast(expr: str, dtype: str, source_type: str | None = None) -> str:
    """TRY_CAST to a contract type. Timestamps go through TIMESTAMPTZ: an offset (`Z`, `+02:00`, `-05:00`)
    moves the value to the session's time zone, the project's `timezone` (UTC by default; a plain TRY_CAST to
    TIMESTAMP drops the offset); naive values are in it already. A column read as its contract type already (``source_type``,
    e.g. a Parquet TIMESTAMP) is taken as it is: the round trip through TIMESTAMPTZ was ~0.5 s a million rows."""
    if source_type == dtype:
        return expr
    if dtype == "TIMESTAMP":
        return f"CAST(TRY_CAST({expr} AS TIMESTAMPTZ) AS TIMESTAMP)"
    if dtype == "BIGINT":
        # whole numbers only ('1.0' is 1): DuckDB rounds 0.7 to 1 and Spark truncates it to 0, either way a
        # fraction in a 0/1 label column would silently become a label
        number = f"TRY_CAST({expr} AS DOUBLE)"
        return f"CASE WHEN {number} = floor({number}) THEN coalesce(TRY_CAST({expr} AS BIGINT), TRY_CAST({number} AS BIGINT)) END"
    if dtype == "VARCHAR" and source_type and source_type.startswith(FRACTIONAL):
        # pandas writes whole-number ids with a gap as float64: 123.0 is the id '123' another table's integers
        # read as (DuckDB and Spark both print '123.0'); a fraction stays as printed
        whole = f"{expr} = floor({expr}) AND abs({expr}) < {2**53}"
        return f"CASE WHEN {whole} THEN CAST(CAST({expr} AS BIGINT) AS VARCHAR) ELSE CAST({expr} AS VARCHAR) END"
    return f"TRY_CAST({expr} AS {dtype})"


FRACTIONAL = ("DOUBLE", "FLOAT", "REAL", "DECIMAL")  # a scan's number types that print whole numbers as '123.0'


def _file_columns(conn: duckdb.DuckDBPyConnection, path: Path, table: str = "", encoding: str = "utf-8") -> list[str]:
    if file_format(path) == "csv":
        return csv_header(path, table, encoding) + ["filename"]
    try:
        return [row[0] for row in conn.execute(f"DESCRIBE SELECT * FROM {_scan_sql([path], table)}").fetchall()]
    except duckdb.Error as err:
        if not _is_reader_error(err):
            raise
        raise reader_error(err, table, [path]) from None


def check_columns(
    conn: duckdb.DuckDBPyConnection, contract: TableContract, files: list[Path], encoding: str = "utf-8"
) -> None:
    for path in files:
        present = set(_file_columns(conn, path, contract.name, encoding))
        for col in contract.columns:
            if col.required and col.name not in present:
                raise ContractError(missing_column(str(path), contract, col.name, present))


def _bare(name: str) -> str:
    """A column name without case, spaces or separators: 'Prediction ID', 'predictionId', 'prediction_id' alike."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def case_hint(column: str, present: Collection[str], of: str = "file") -> str:
    """'' or the ``of``'s (file's, query's) column that differs from a contract column only in case, spaces or
    separators."""
    near = [p for p in present if _bare(p) == _bare(column)]
    return f"; the {of} has {near[0]!r}: contract column names are matched exactly (lower case, with _)" if near else ""


def check_attribute_columns(conn: duckdb.DuckDBPyConnection, attributes: dict[str, list[str]]) -> None:
    """The project file's protected_attributes name columns raw.users has (once it has rows): a misspelt one
    failed only in dbt's compile step, after every raw table had loaded, inside ~60 lines of its output."""
    if not conn.execute("SELECT EXISTS (SELECT 1 FROM raw.users)").fetchone()[0]:
        return
    columns = [r[0] for r in conn.execute("DESCRIBE raw.users").fetchall()]
    # the contract's optional columns the files lack are in raw.users, all null: not the user's columns. Named as
    # an attribute, one was a single 'unknown' group judged "not assessed" (a trial wrote 'gender' for its 'sex');
    # offered as a near match, it misled ("did you mean 'gender'?")
    optional = [c.name for c in CONTRACTS["users"].columns if not c.required and c.name in columns]
    if optional:
        counts = conn.execute(f"SELECT {', '.join(f'count({_quote(c)})' for c in optional)} FROM raw.users").fetchone()
        columns = [c for c in columns if c not in {name for name, n in zip(optional, counts) if n == 0}]
    wanted = dict.fromkeys(c for cols in attributes.values() for c in cols)
    missing = [c for c in wanted if c not in columns]
    if not missing:
        return
    near = {c: nearest(c, [k for k in columns if not k.startswith("_")]) for c in missing}
    hints = "".join(f"; {c!r}: did you mean {m!r}?" for c, m in near.items() if m)
    raise ContractError(
        f"the project file's protected_attributes name column(s) {', '.join(map(repr, missing))} that the users "
        f"table does not have (its columns: {', '.join(c for c in columns if not c.startswith('_'))}){hints}: fix "
        "protected_attributes, or add the column to the users table"
    )


def _extra_columns(contract: TableContract, present: Collection[str]) -> list[str]:
    """The scan's columns outside the contract (the reader's filename and the loader's own columns left out)."""
    return [c for c in present if c not in contract.column_names and c != "filename" and c not in META_COLUMNS]


def missing_column(where: str, contract: TableContract, column: str, present: Collection[str], of: str = "file") -> str:
    """The one-line message of a required column that a file (``of``: or a database's table or query) lacks."""
    required = [c.name for c in contract.columns if c.required]
    optional = [c.name for c in contract.columns if not c.required]
    present = present if isinstance(present, list | tuple) else sorted(present)  # a file's order, else a stable one
    also = [c for c in required if c != column and c not in present]
    hint = case_hint(column, present, of)
    if not hint:  # a renamed column ('score' exported as 'probability') is among the ones the contract lacks
        prefix = contract.extra_column_prefix
        others = [c for c in _extra_columns(contract, present) if not (prefix and c.startswith(prefix))]
        shown = ", ".join(others[:SHOWN_OTHERS]) + (
            f" (and {len(others) - SHOWN_OTHERS} more)" if len(others) > SHOWN_OTHERS else ""
        )
        hint = f"; the {of}'s other columns: {shown}: one of them renamed?" if others else ""
    return (
        f"{where}: table '{contract.name}' is missing required column '{column}'"
        + (f" (also missing: {', '.join(also)})" if also else "")
        + f" (required: {', '.join(required)}"
        + (f"; optional: {', '.join(optional)}" if optional else "")
        + f"){hint}"
    )


SHOWN_OTHERS = 12  # the columns outside the contract a missing column's message lists


def check_types(conn: duckdb.DuckDBPyConnection, contract: TableContract, scan: str, present: Collection[str]) -> None:
    """Every present contract column must cast to its type, or the load stops."""
    check_types_with(lambda sql: conn.execute(sql).fetchall(), contract, scan, present)


def _source_type(present: Collection[str], column: str) -> str | None:
    """The column's type in the scan when ``present`` maps names to types (_scan_columns), else None (unknown)."""
    return present.get(column) if isinstance(present, Mapping) else None


def _scan_columns(conn: duckdb.DuckDBPyConnection, scan: str) -> dict[str, str]:
    """The scan's columns and their DuckDB types, in order."""
    return {name: dtype for name, dtype, *_ in conn.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}


def check_types_with(run, contract: TableContract, scan: str, present: Collection[str]) -> None:
    """check_types with ``run(sql) -> rows`` running DuckDB SQL (the Spark loader transpiles it). A column
    read as its contract type already cannot fail its cast: it is not scanned (no scan at all when none can)."""
    cols = [c for c in contract.columns if c.name in present and _source_type(present, c.name) != c.type]
    if not cols:
        return
    counts = ", ".join(
        f"count_if({_quote(c.name)} IS NOT NULL AND {_cast(_quote(c.name), c.type)} IS NULL)" for c in cols
    )
    bad = run(f"SELECT {counts} FROM {scan}")[0]
    for col, n_bad in zip(cols, bad):
        if n_bad:
            q = _quote(col.name)
            failing = f"{scan} WHERE {q} IS NOT NULL AND {_cast(q, col.type)} IS NULL"
            examples = run(f"SELECT filename FROM {failing} LIMIT 1")
            # a scan of several files (init reads a table's every file): the count is theirs, not the first's
            files = run(f"SELECT count(DISTINCT filename) FROM {failing}")
            more = f" (and {files[0][0] - 1} more file(s))" if files[0][0] > 1 else ""
            where = f"{examples[0][0]}{more}: table '{contract.name}', column '{col.name}'"
            if col.type == "BIGINT":  # the 0/1 label, the contract's one whole-number column
                raise ContractError(f"{where}: {not_labels(run, failing, q, n_bad)}")
            # distinct values: three times 'no' hid the column's 'yes'
            values = [v for (v,) in run(f"SELECT DISTINCT CAST({q} AS VARCHAR) FROM {failing} ORDER BY 1 LIMIT 3")]
            raise ContractError(
                f"{where}: {n_bad} value(s) cannot be cast to {col.type}, e.g. {values}{cast_hint(col.type, values)}"
            )


SHOWN_LABELS = 3  # the distinct refused label values a message names, the most frequent first


def not_labels(run, failing: str, column: str, n_bad: int) -> str:
    """What a label column holds instead of 0/1, each value with its count (an outcome written as its category
    names, 'MM' and 'CH', read "cannot be cast to BIGINT"), and what to write instead."""
    counted = run(
        f"SELECT CAST({column} AS VARCHAR) AS v, count(*) AS n, count(*) OVER () AS distinct_values "
        f"FROM {failing} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {SHOWN_LABELS}"
    )
    values = [v for v, _, _ in counted]
    found = ", ".join(f"{v!r} ({n})" for v, n, _ in counted)
    if counted[0][2] > SHOWN_LABELS:
        found += f" and {counted[0][2] - SHOWN_LABELS} other value(s)"
    return f"labels must be 0 or 1, and {n_bad} value(s) are not: {found}{cast_hint('BIGINT', values)}"


YES_NO = frozenset({"true", "false", "yes", "no", "t", "f", "y", "n"})


def cast_hint(sql_type: str, values: list[str]) -> str:
    """How values a contract type refused were probably meant, when the examples say (common in exports)."""
    shown = [str(v).strip().lower() for v in values]
    if not shown:
        return ""
    if sql_type in ("TIMESTAMP", "DATE") and all(v.lstrip("-").isdigit() for v in shown):
        unit = "milliseconds" if all(len(v.lstrip("-")) >= 13 for v in shown) else "seconds"
        return (
            f" (epoch {unit}? write ISO 8601 text, e.g. 2025-03-16 14:17:00 or 2025-03-16T14:17:00+02:00, "
            "or a Parquet timestamp)"
        )
    if sql_type in ("TIMESTAMP", "DATE") and all(re.match(r"\d{1,2}[/.]\d{1,2}[/.]\d{2,4}\b", v) for v in shown):
        return (
            " (day/month or month/day order? it is ambiguous: write ISO 8601 text, e.g. 2025-03-16 14:17:00 or "
            "2025-03-16T14:17:00+02:00)"
        )
    if sql_type == "BIGINT" and all(v in YES_NO for v in shown):
        return " (yes/no or true/false words? write 1 or 0)"
    if sql_type in ("DOUBLE", "BIGINT") and all(_is_number(v.replace(",", ".", 1)) and "," in v for v in shown):
        return " (decimal commas? write a point, e.g. 0.5)"
    if sql_type == "BIGINT" and all(_is_number(v) for v in shown):
        return " (not whole numbers: a 0/1 label is never a fraction or a probability)"
    if sql_type == "BIGINT" and not any(_is_number(v) for v in shown):
        return " (the outcome's names? map the outcome to 1 for the positive class and 0 for the other)"
    return ""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _typed_select(
    contract: TableContract, present: Collection[str], partition_date: str, source_row: str = "row_number() OVER ()"
) -> str:
    """Typed contract columns, extra columns as read, and the meta columns (``partition_date`` and the
    row's position in the scan ``source_row`` are SQL). ``present``: the scan's columns (_scan_columns' types
    spare the casts of columns of their contract type)."""
    # an export's header 'gender ' (a space around the name) is the column 'gender': read under the name the
    # contract, a project file and the staging views use (as written, a protected attribute read 'unknown'
    # for every user). A required column so written is named by check_columns' hint instead.
    named: dict[str, str] = {}
    for c in _extra_columns(contract, present):
        name = c.strip()
        if name in named or (name != c and name in present):
            raise ContractError(
                f"table '{contract.name}': columns {sorted({c, named.get(name, name)})!r} are the same column "
                "but for spaces around the name: keep one"
            )
        named[name] = c
    parts = []
    for col in contract.columns:
        q = _quote(col.name)
        source = col.name if col.name in present else named.pop(col.name, None)
        cast = _cast(_quote(source), col.type, _source_type(present, source)) if source else None
        parts.append(f"{cast} AS {q}" if source else f"CAST(NULL AS {col.type}) AS {q}")
    parts += [_quote(c) if c == name else f"{_quote(c)} AS {_quote(name)}" for name, c in named.items()]
    parts += [f"{partition_date} AS _partition_date", "filename AS _source_file", f"{source_row} AS _source_row"]
    return ", ".join(parts)


def _time_day(contract: TableContract, present: Collection[str] = ()) -> str:
    """The day of a row's time column (in the session's zone, the project's), as SQL over the raw (untyped) scan of
    columns ``present``."""
    time_type = {c.name: c.type for c in contract.columns}[contract.time_column]
    cast = _cast(_quote(contract.time_column), time_type, _source_type(present, contract.time_column))
    return f"CAST({cast} AS DATE)"


def _reason_cases(contract: TableContract, day: date | None, dated: bool) -> tuple[list[str], list[str], list[str]]:
    """A row's reasons as SQL (each NULL when it holds not), in their order: those of the row and its day alone, the
    key first seen on an earlier day (reads ``_first_seen``), the day of a dated file. ``day`` None: the row's
    ``_partition_date`` (rows of several days)."""
    alone = [f"CASE WHEN coalesce({r.violated_when}, false) THEN {_sql_str(r.reason)} END" for r in contract.rules]
    seen, placed = [], []
    if contract.key:
        key = "(" + ", ".join(contract.key) + ")"
        # rows without a key (null prediction_id) are refused for it, not duplicates of each other (a trial's two
        # empty ids read "null prediction_id; duplicate key (prediction_id)")
        keyed = " AND ".join(f"{_quote(k)} IS NOT NULL" for k in contract.key)
        alone.append(f"CASE WHEN _key_rank > 1 AND {keyed} THEN {_sql_str('duplicate key ' + key)} END")
        if contract.time_column:
            seen.append(
                f"CASE WHEN _first_seen IS NOT NULL THEN {_sql_str('duplicate key ' + key + ', first seen on ')} "
                "|| strftime(_first_seen, '%Y-%m-%d') END"
            )
    if contract.time_column and dated:
        tc = _quote(contract.time_column)
        on, named = (
            ("_partition_date", "strftime(_partition_date, '%Y-%m-%d')")
            if day is None
            else (f"DATE '{day.isoformat()}'", _sql_str(day.isoformat()))
        )
        placed.append(
            f"CASE WHEN {tc} IS NULL THEN {_sql_str('null ' + contract.time_column)} "
            f"WHEN CAST({tc} AS DATE) <> {on} THEN {_off_day_reason(contract.time_column, on, named)} END"
        )
    return alone, seen, placed


# A dated file every row of which falls 2 to 31 days before the date in its name, none on it: a periodic export
# named after the day it was written (a trial's weekly predictions_2025-01-13.csv held 01-06..01-10), not a time
# zone's shift (at most a day: a zone's rows straddle the file's day). Its rows' reason says so, not "outside
# partition day", whose line materialize follows with "set the project file's timezone" (a trial set it and was
# told the same again). A file of the day before alone stays the zone's case.
EXPORT_DAYS_BEFORE = (2, 31)
EXPORTED_AFTER = "before its file's date"


def _off_day_reason(column: str, on: str, named: str) -> str:
    """SQL of the reason of a row of a dated file stamped on another day than ``on`` (its file's day; ``named``: it
    as text): ``<column> outside partition day <day>``, or, when its whole file holds only days shortly before it
    (EXPORT_DAYS_BEFORE), what the file looks like and where the README says what to do."""
    day = f"CAST({_quote(column)} AS DATE)"
    of_file = "OVER (PARTITION BY _source_file)"
    low, high = EXPORT_DAYS_BEFORE
    earliest = f"date_diff('day', min({day}) {of_file}, {on})"
    exported = f"max({day}) {of_file} < {on} AND {earliest} BETWEEN {low} AND {high}"
    return (
        f"CASE WHEN {exported} THEN {_sql_str(f'{column} {EXPORTED_AFTER} ')} || {named} || "
        f"{_sql_str(', as is every row of that file (the earliest ')} || CAST({earliest} AS VARCHAR) || "
        f"{_sql_str(' days before it): an export dated after the days it holds? README: Exports dated after their days')} "
        f"ELSE {_sql_str(f'{column} outside partition day ')} || {named} END"
    )


def _reasons(cases: list[str]) -> str:
    return "concat_ws('; ', " + ", ".join(cases) + ")" if cases else "''"


def _or_copy(reason: str, columns: Sequence[str]) -> str:
    """``reason``, or COPY_REASON for a row whose every column but SOURCE_COLUMNS (``columns``: the rows', its day
    ``_partition_date`` among them) equals an earlier row's (by ``_source_row``); ``reason`` without ``columns``."""
    values = [c for c in columns if c not in SOURCE_COLUMNS]
    if not values:
        return reason
    partition = ", ".join(map(_quote, values))
    return (
        f"CASE WHEN row_number() OVER (PARTITION BY {partition} ORDER BY _source_row) > 1 "
        f"THEN {_sql_str(COPY_REASON)} ELSE {reason} END"
    )


def _resent_lookup(
    contract: TableContract, columns: Sequence[str], stored: Sequence[str], where: str, keys_from: str, alias: str
) -> tuple[str, str] | None:
    """(SQL of the loaded rows a day's rows may be copies of, its join condition): raw.<table>'s rows ``where``
    selects (as ``o``) among the keys of ``keys_from``, one row per set of values with the first day it was loaded
    (``_resent_on``); a day's row (as ``alias``) matches one equal in each of ``columns`` (the typed rows', but the
    day and SOURCE_COLUMNS; an extra column as text, a column the loaded rows lack NULL on the day's row). None
    without ``stored`` (raw.<table>'s columns) or a key and time column."""
    if not (stored and contract.key and contract.time_column):
        return None
    declared = {c.name for c in contract.columns}

    def value(side: str, column: str) -> str:
        ref = f"{side}.{_quote(column)}"
        return ref if column in declared else f"CAST({ref} AS VARCHAR)"  # an extra's type may differ by day

    values = [c for c in columns if c not in SOURCE_COLUMNS and c != "_partition_date"]
    common = [c for c in values if c in stored]
    picked = ", ".join(f"{value('o', c)} AS {_quote(c)}" for c in common)
    lookup = (
        f"SELECT {picked}, min(o._partition_date) AS _resent_on FROM raw.{contract.name} o "
        f"SEMI JOIN {keys_from} USING ({_keys_sql(contract)}) WHERE {where} "
        f"GROUP BY {', '.join(value('o', c) for c in common)}"
    )
    same = [f"{value(alias, c)} IS NOT DISTINCT FROM r.{_quote(c)}" for c in common]
    same += [f"{alias}.{_quote(c)} IS NULL" for c in values if c not in stored]
    return lookup, " AND ".join(same)


def _or_resent(reason: str, resent: str) -> str:
    """``reason``, or RESENT_REASON alone where ``resent`` (SQL) holds."""
    return f"CASE WHEN {resent} THEN {_sql_str(RESENT_REASON)} ELSE {reason} END"


def _reason_sql(contract: TableContract, day: date | None, dated: bool) -> str:
    alone, seen, placed = _reason_cases(contract, day, dated)
    return _reasons(alone + seen + placed)


def _ensure_all_tables(conn: duckdb.DuckDBPyConnection) -> None:
    """Create every contract table, so referential rules always have a table to read (an optional table
    absent from the source stays empty, with every contract column), and quality.gate_results, which the
    dbt staging views read to hold back the days whose gate failed."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS raw; CREATE SCHEMA IF NOT EXISTS raw_quarantine")
    views = conn.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_type = 'VIEW' AND table_schema IN ('raw', 'raw_quarantine')"
    ).fetchall()
    for schema, name in views:  # the spark engine's views over its Parquet (engine: duckdb again): tables again
        conn.execute(f"CREATE TABLE {schema}.{_quote('_' + name)} AS SELECT * FROM {schema}.{_quote(name)}")
        conn.execute(f"DROP VIEW {schema}.{_quote(name)}")
        conn.execute(f"ALTER TABLE {schema}.{_quote('_' + name)} RENAME TO {_quote(name)}")
    meta = "_partition_date DATE, _source_file VARCHAR, _source_row BIGINT"
    # read first: a statement is a transaction of its own, and every loading step calls this
    tables = set(
        conn.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name IN ('raw', 'raw_quarantine')"
        ).fetchall()
    )
    for contract in CONTRACTS.values():
        cols = ", ".join(f"{_quote(c.name)} {c.type}" for c in contract.columns)
        if ("raw", contract.name) not in tables:
            conn.execute(f"CREATE TABLE IF NOT EXISTS raw.{contract.name} ({cols}, {meta})")
        if ("raw_quarantine", contract.name) not in tables:
            conn.execute(f"CREATE TABLE IF NOT EXISTS raw_quarantine.{contract.name} ({cols}, {meta}, _reason VARCHAR)")
    ensure_gate_results(conn)


def _known_columns(
    conn: duckdb.DuckDBPyConnection, table: str, columns: dict[str, dict[str, str]]
) -> dict[str, dict[str, str]]:
    """``columns``: each raw table's columns and types, read once for a run's days (kept current by
    _conform_extra_columns as it adds columns)."""
    for schema in ("raw", "raw_quarantine"):
        if schema not in columns:
            columns[schema] = {r[0]: r[1] for r in conn.execute(f"DESCRIBE {schema}.{table}").fetchall()}
    return columns


def _conform_extra_columns(conn: duckdb.DuckDBPyConnection, table: str, columns: dict[str, dict[str, str]]) -> None:
    """Extra source columns are kept: add any the raw tables do not have yet (a CSV feature of numbers as DOUBLE,
    NUMBER_PATTERN), and stop the load, naming file, column and values, when a day's values of a column the
    tables have do not cast to its type (a CSV day among Parquet days). ``columns`` holds each raw table's
    columns and types across a run's days (read once: an ALTER per column and day was ~30% of a 394-day load)."""
    _known_columns(conn, table, columns)
    day_types = {r[0]: r[1] for r in conn.execute("DESCRIBE (SELECT * EXCLUDE (_reason) FROM _checked)").fetchall()}
    new = {name: kind for name, kind in day_types.items() if name not in columns["raw"]}
    text = [n for n, kind in new.items() if kind == "VARCHAR" and is_numeric_feature_candidate(table, n)]
    for name in _all_numbers(conn, text):
        new[name] = "DOUBLE"
    extra = set(day_types) - set(CONTRACTS[table].column_names) - {*META_COLUMNS, "_reason"}
    _numbers_into_empty_text(conn, table, columns, day_types, extra)
    for name in sorted(extra):
        if columns["raw"].get(name, day_types[name]) != day_types[name]:
            _check_casts(conn, table, name, columns["raw"][name])
    for schema in ("raw", "raw_quarantine"):
        for name, kind in day_types.items():
            if name not in columns[schema]:  # IF NOT EXISTS: DuckDB's names ignore case
                kind = SINGLE_PRECISION_STORED.get(kind, new.get(name, kind))
                conn.execute(f"ALTER TABLE {schema}.{table} ADD COLUMN IF NOT EXISTS {_quote(name)} {kind}")
                columns[schema][name] = kind


# A single-precision column (a float32 Parquet feature) is stored as DOUBLE: a later CSV day's numbers in a FLOAT
# column were rounded to ~7 digits (a trial's reference deciles 2.6e-8 off the values as written). The float32 values
# themselves are kept exactly (every float is a double).
SINGLE_PRECISION_STORED = {"FLOAT": "DOUBLE", "REAL": "DOUBLE", "FLOAT4": "DOUBLE"}
NUMBER_TYPES = ("DOUBLE", "FLOAT", "REAL", "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "DECIMAL")


def _numbers_into_empty_text(conn, table: str, columns: dict, day_types: dict, extra: set) -> None:
    """A feature column the table holds as text without a value yet (its first CSV days left it empty, in raw and
    raw_quarantine) becomes DOUBLE once a day brings numbers (a numeric Parquet column, or a CSV's text of numbers,
    NUMBER_PATTERN): a trial's feature typed VARCHAR for good by its empty first days cast the later Parquet doubles
    to text, and drift read 369 categories. spark_raw does the same (_promotes)."""
    names = sorted(n for n in extra if is_numeric_feature_candidate(table, n) and columns["raw"].get(n) == "VARCHAR")
    if not names:
        return
    text = [n for n in names if day_types[n] == "VARCHAR"]
    numbers = set(_all_numbers(conn, text)) | {n for n in names if day_types[n].startswith(NUMBER_TYPES)}
    for name in sorted(numbers):
        q = _quote(name)
        holding = [schema for schema in ("raw", "raw_quarantine") if name in columns[schema]]
        if any(conn.execute(f"SELECT count({q}) FROM {schema}.{table}").fetchone()[0] for schema in holding):
            continue  # a value of it is stored: its type stays
        for schema in holding:
            conn.execute(f"ALTER TABLE {schema}.{table} ALTER COLUMN {q} SET DATA TYPE DOUBLE")
            columns[schema][name] = "DOUBLE"


def _all_numbers(conn: duckdb.DuckDBPyConnection, names: list[str]) -> list[str]:
    """Those of the ``_checked`` text columns ``names`` with values, every one a plain number (NUMBER_PATTERN), read
    from CSV files only (CSV_SOURCE)."""
    if not names:
        return []
    tests = []
    for name in names:
        q = _quote(name)
        number = f"regexp_full_match({q}, '{NUMBER_PATTERN}') AND NOT regexp_full_match({q}, '{CODE_PATTERN}')"
        tests.append(f"count({q}) > 0 AND count(*) FILTER (WHERE {q} IS NOT NULL AND NOT ({number})) = 0")
    csv_only = f"count(*) FILTER (WHERE NOT regexp_full_match(lower(coalesce(_source_file, '')), '{CSV_SOURCE}')) = 0"
    *verdicts, from_csv = conn.execute(f"SELECT {', '.join(tests)}, {csv_only} FROM _checked").fetchone()
    return [name for name, numeric in zip(names, verdicts, strict=True) if numeric and from_csv]


def _check_casts(conn: duckdb.DuckDBPyConnection, table: str, name: str, kind: str) -> None:
    """The day's values of column ``name`` cast to the table's type ``kind``, or the load stops naming them."""
    q = _quote(name)
    bad = conn.execute(
        f"SELECT _source_file, {q} FROM _checked WHERE {q} IS NOT NULL AND TRY_CAST({q} AS {kind}) IS NULL LIMIT 3"
    ).fetchall()
    if bad:
        raise ContractError(
            f"{bad[0][0]}: table '{table}', column '{name}': value(s) cannot be cast to {kind}, its type on the "
            f"table's other days, e.g. {[b[1] for b in bad]}"
        )


def _prepare(
    conn: duckdb.DuckDBPyConnection, contract: TableContract, files: list[Path], dated: bool, encoding: str = "utf-8"
) -> tuple[str, dict[str, str]]:
    """Check the files' columns and types (once per run for undated files) -> the scan SQL and its columns."""
    check_columns(conn, contract, files, encoding)
    scan = _scan_sql(files, contract.name, encoding)
    present = _scan_columns(conn, scan)
    check_types(conn, contract, scan, present)
    if contract.time_column and not dated:
        check_undated_times(lambda sql: conn.execute(sql).fetchall(), contract, files, scan)
    return scan, present


def check_undated_times(run, contract: TableContract, files: list[Path], scan: str) -> None:
    """Rows of undated files are placed by their time column: one without it cannot be placed."""
    tc = _quote(contract.time_column)
    nulls = run(f"SELECT count(*) FROM {scan} WHERE {tc} IS NULL")[0][0]
    if nulls:
        raise ContractError(
            f"{files[0].parent}: table '{contract.name}', column '{contract.time_column}': {nulls} row(s) have "
            "no timestamp and the file names carry no date, so the rows cannot be placed in a partition day; "
            "name files <table>_YYYY-MM-DD.parquet|csv to have such rows quarantined instead"
        )


def _stage_undated(
    conn: duckdb.DuckDBPyConnection,
    contract: TableContract,
    scan: str,
    present: dict[str, str],
    first: date,
    last: date,
) -> None:
    """Undated files hold every day: read them once per run into temp table ``_undated``, placed by their time column.
    A row's ``_source_row`` is its place in the files' scan, numbered before the run's days are picked: the same
    whichever days a run loads (as Spark's loader numbers them)."""
    day = _time_day(contract, present)
    numbered = f"(SELECT *, row_number() OVER () AS _scan_row FROM {scan})"
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE _undated AS SELECT {_typed_select(contract, present, day, '_scan_row')} "
        f"FROM {numbered} WHERE {day} BETWEEN DATE '{first.isoformat()}' AND DATE '{last.isoformat()}'"
    )


def seen_sql(contract: TableContract, day: date) -> str | None:
    """SQL of ``_seen``: the day's keys (in ``_typed``) already loaded on an earlier day, with that first day.

    Keys are unique across days: the day's keys (a semi-join, not a rescan per row) looked up among the rows
    loaded on earlier days. The day itself is excluded, so re-loading a day stays idempotent.
    """
    if not (contract.key and contract.time_column):
        return None
    keys = _keys_sql(contract)
    return (
        f"SELECT {keys}, min(_partition_date) AS _first_seen "
        f"FROM raw.{contract.name} SEMI JOIN (SELECT DISTINCT {keys} FROM _typed) d USING ({keys}) "
        f"WHERE _partition_date < DATE '{day.isoformat()}' GROUP BY {keys}"
    )


def checked_sql(
    contract: TableContract,
    day: date,
    dated: bool,
    duplicates: bool = True,
    seen_before: bool = True,
    columns: Sequence[str] = (),
    stored: Sequence[str] = (),
) -> str:
    """SQL of the day's typed rows (``_typed``) with ``_reason`` ('' when loaded), ``_key_rank``, ``_first_seen``
    and ``_resent_on`` (the caller drops those three); ``_seen`` holds seen_sql()'s rows when it is not None.
    ``duplicates`` False: the day's keys are known to be unique (no ranking window); ``seen_before`` False:
    ``_seen`` is known empty. ``columns``: ``_typed``'s, to tell a repeated row's copies (COPY_REASON) from a key's
    conflicting rows; ``stored``: raw.<table>'s, to tell a row loaded on an earlier day delivered again
    (RESENT_REASON) from a key's new values."""
    rank, seen = "1", "CAST(NULL AS DATE)"
    if contract.key and duplicates:
        keys = _keys_sql(contract)
        order = _quote(contract.key_order or contract.time_column or contract.key[0])
        rank = f"row_number() OVER (PARTITION BY {keys} ORDER BY {order}, _source_row)"
    history = seen_before and seen_sql(contract, day) is not None  # ``_seen`` holds the day's keys seen before
    if history:
        seen = (
            "(SELECT min(s._first_seen) FROM _seen s WHERE "
            + " AND ".join(f"s.{k} = _typed.{k}" for k in map(_quote, contract.key))
            + ")"
        )
    reason = _reason_sql(contract, day, dated)
    if contract.key and duplicates:  # a copy's key is duplicated
        reason = _or_copy(reason, columns)
    rows = f"SELECT *, {rank} AS _key_rank, {seen} AS _first_seen FROM _typed"
    earlier = f"o._partition_date < DATE '{day.isoformat()}'"
    resent = _resent_lookup(contract, columns, stored, earlier, "_seen", "t") if history else None
    if resent is None:
        rows = f"SELECT *, CAST(NULL AS DATE) AS _resent_on FROM ({rows}) t"
    else:
        rows = f"SELECT t.*, r._resent_on FROM ({rows}) t LEFT JOIN ({resent[0]}) r ON {resent[1]}"
        reason = _or_resent(reason, "_resent_on IS NOT NULL")
    return f"SELECT *, {reason} AS _reason FROM ({rows}) t"


def checked_days_sql(
    contract: TableContract,
    days: list[date],
    dated: bool,
    repeats: bool = True,
    columns: Sequence[str] = (),
    stored: Sequence[str] = (),
) -> str:
    """checked_sql for several days at once (``_typed`` holds their rows, each row's day in ``_partition_date``),
    with the reasons loading the days one by one, in order, gives; the caller drops the columns from
    ``_key_rank`` on (``_case_*``, ``_first_clean``, ``_first_seen``).

    A key is first seen on the earliest day it was loaded before the row's day: a day of ``raw.<table>`` outside
    ``days`` (those are being replaced), or the first of ``days`` on which a row of the key had no reason of its
    own (no broken rule, first of its key that day, on its day), which is the one loaded: a later one is a
    duplicate, and an earlier loaded day outside ``days`` makes it one too, at a still earlier first sighting.
    ``repeats`` False: no key occurs twice among the days' rows (neither window is needed). ``columns``,
    ``stored``: as checked_sql's (a copy is of an earlier row of its own day; a row delivered again, of the row its
    key loaded on an earlier day: outside ``days``, or the one loaded on the key's first day among them)."""
    alone, seen, placed = _reason_cases(contract, None, dated)
    copies = columns if contract.key and repeats else ()
    rank, keys = "1", _keys_sql(contract)
    if contract.key and repeats:
        order = _quote(contract.key_order or contract.time_column or contract.key[0])
        rank = f"row_number() OVER (PARTITION BY {keys}, _partition_date ORDER BY {order}, _source_row)"
    ranked = f"SELECT *, {rank} AS _key_rank FROM _typed"
    if not seen:
        return f"SELECT *, {_or_copy(_reasons(alone + placed), copies)} AS _reason FROM ({ranked}) t"
    # each reason once per row (a rule may be a subquery), read twice: without and with the key's history
    cases = [f"_case_{i}" for i in range(len(alone) + len(placed))]
    own, later = cases[: len(alone)], cases[len(alone) :]
    each = ", ".join(f"{sql} AS {name}" for sql, name in zip(alone + placed, cases))
    key_given = " AND ".join(f"{k} IS NOT NULL" for k in map(_quote, contract.key))
    first_clean = (
        f"CASE WHEN {key_given} THEN min(CASE WHEN {_reasons(cases)} = '' THEN _partition_date END) "
        f"OVER (PARTITION BY {keys}) END"
        if repeats
        else "CAST(NULL AS DATE)"  # a key's only row: no other day of the batch saw it first
    )
    same_key = " AND ".join(f"o.{k} = d.{k}" for k in map(_quote, contract.key))
    listed = ", ".join(f"DATE '{day.isoformat()}'" for day in days)
    by = ", ".join(f"d.{k}" for k in map(_quote, [*contract.key, "_partition_date"]))
    distinct_keys = f"(SELECT DISTINCT {keys} FROM _typed) d"
    earlier = (
        f"SELECT {by}, min(o._partition_date) AS _earlier FROM (SELECT DISTINCT {keys}, _partition_date FROM _typed) d "
        f"JOIN raw.{contract.name} o ON {same_key} AND o._partition_date < d._partition_date "
        f"WHERE o._partition_date NOT IN ({listed}) GROUP BY {by}"
    )
    joined = " AND ".join(f"e.{k} = c.{k}" for k in map(_quote, [*contract.key, "_partition_date"]))
    first_seen = "least(e._earlier, CASE WHEN c._first_clean < c._partition_date THEN c._first_clean END)"
    reason = _or_copy(_reasons(own + seen + later), copies)
    # a row delivered again: equal to its key's row loaded on a day outside ``days`` (the lookup), or to the one
    # loaded on the key's first day among them (that day's clean row of the same values)
    values = [c for c in columns if c not in SOURCE_COLUMNS and c != "_partition_date"]
    copy_of, resent_join, resent_on = "CAST(NULL AS DATE)", "", "CAST(NULL AS DATE)"
    resent = _resent_lookup(contract, columns, stored, f"o._partition_date NOT IN ({listed})", distinct_keys, "c")
    if resent is not None:
        resent_join = f" LEFT JOIN ({resent[0]}) r ON {resent[1]} AND r._resent_on < c._partition_date"
        resent_on = "r._resent_on"
        if repeats and values:
            clean = f"CASE WHEN {_reasons(cases)} = '' THEN _partition_date END"
            copy_of = f"min({clean}) OVER (PARTITION BY {', '.join(map(_quote, values))})"
        reason = _or_resent(reason, "_resent_on IS NOT NULL OR (_copy_of < _partition_date AND _copy_of = _first_seen)")
    return (
        f"SELECT *, {reason} AS _reason FROM ("
        f"SELECT c.*, {first_seen} AS _first_seen, {resent_on} AS _resent_on FROM ("
        f"SELECT *, {first_clean} AS _first_clean, {copy_of} AS _copy_of FROM (SELECT *, {each} FROM ({ranked}) t) r"
        f") c LEFT JOIN ({earlier}) e ON {joined}{resent_join}"
        ") s"
    )


def _has_duplicate_keys(conn: duckdb.DuckDBPyConnection, contract: TableContract) -> bool:
    """Whether two rows of ``_typed`` share a key (null keys as one, as in the ranking window's partitions)."""
    if not contract.key:
        return False
    keys = _keys_sql(contract)
    return conn.execute(f"SELECT EXISTS (SELECT 1 FROM _typed GROUP BY {keys} HAVING count(*) > 1)").fetchone()[0]


def row_reason_sql(contract: TableContract, day: date, dated: bool) -> str:
    """The reasons a row has by itself (its rules and its day), as checked_sql words and orders them: all its
    reasons when its key is the day's only one and new."""
    alone, _, placed = _reason_cases(contract, day, dated)
    return _reasons(alone[: len(contract.rules)] + placed)


def _stage(
    conn: duckdb.DuckDBPyConnection, contract: TableContract, rows_sql: str, day: date, dated: bool, known: dict
) -> str:
    """The day's typed rows (``rows_sql``) in temp table ``_typed``, and ``_checked``: them with their ``_reason``
    (``known``: the raw tables' columns, _known_columns').
    Returns what ``_checked`` is: a VIEW over ``_typed`` when no key repeats or was seen before (the usual day:
    its rows are not copied again, ~7 s of a 10M-row day; the view's few rules are evaluated per read), else a
    TABLE."""
    conn.execute(f"CREATE OR REPLACE TEMP TABLE _typed AS {rows_sql}")
    seen = seen_sql(contract, day)
    if seen is not None:
        conn.execute(f"CREATE OR REPLACE TEMP TABLE _seen AS {seen}")
    # a day's keys are mostly unique and new: then neither the ranking window (a sort of the day) nor the lookup
    seen_before = seen is not None and conn.execute("SELECT count(*) FROM _seen").fetchone()[0] > 0
    duplicates = _has_duplicate_keys(conn, contract)
    if duplicates or seen_before:
        columns = [r[0] for r in conn.execute("DESCRIBE _typed").fetchall()]
        stored = list(_known_columns(conn, contract.name, known)["raw"])
        kind, checked = "TABLE", checked_sql(contract, day, dated, duplicates, seen_before, columns, stored)
        rows = f"SELECT * EXCLUDE (_key_rank, _first_seen, _resent_on) FROM ({checked})"
    else:  # the rules read the stored rows: over a Parquet scan DuckDB folds them with the file's statistics,
        # which leave NaN out (NOT (score >= 0 AND score <= 1) was false for a NaN score; DuckDB 1.5.6)
        kind, rows = "VIEW", f"SELECT *, {row_reason_sql(contract, day, dated)} AS _reason FROM _typed t"
    conn.execute(f"CREATE OR REPLACE TEMP {kind} _checked AS {rows}")
    conn.execute("DROP TABLE IF EXISTS _seen")
    return kind


def source_files(table: str, source: Path, days: list[date]) -> tuple[TableContract, Path, list[Path], bool]:
    """The table's contract, source folder, files, and whether its files are undated (read once for all days)."""
    contract = CONTRACTS[table]
    source = Path(source)
    if not source.is_dir() and not contract.optional:
        raise ContractError(f"source directory '{source}' does not exist (set IMPACT_LEDGER_SOURCE or --source)")
    # a project whose tables come from its sources needs no landing zone: an optional table is then absent
    all_files = table_files(source, contract) if source.is_dir() else []
    if not all_files and (unread := unread_note(source, contract)):  # not an absent table: one not understood
        raise ContractError(f"{source}: {unread}; convert them, or move them out of {source / table}")
    if not all_files and not contract.optional:
        raise ContractError(
            f"no files for table '{table}' under '{source}' (expected {source / table}/*.parquet, *.csv or "
            f"*.csv.gz; '{table}' is the one table every source needs)"
        )
    undated = (
        bool(all_files)
        and contract.time_column is not None
        and not files_for_day(source, contract, all_files, days[0])[1]
    )
    return contract, source, all_files, undated


def load_partition(conn: duckdb.DuckDBPyConnection, table: str, source: Path, day: date) -> LoadReport:
    """Replace ``day``'s rows of ``raw.<table>`` (and its quarantine) from ``source``."""
    return load_days(conn, table, source, [day])[0]


def load_days(conn: duckdb.DuckDBPyConnection, table: str, source: Path, days: list[date]) -> list[LoadReport]:
    """Replace each day's rows of ``raw.<table>`` (and its quarantine) from ``source``.

    The days are read, checked and replaced together, in one transaction (_load_together: a year of days is a
    statement per table, not 365); a snapshot is read whole. When their check fails, the days are loaded one by
    one, one transaction each, so the days before the bad one land and the error names it.
    """
    from orchestration.lib.engine import engine

    if engine() == "spark":  # the same contract, checked in Spark SQL where the data is
        from orchestration.lib.spark_raw import load_days as load_days_on_spark

        reports = load_days_on_spark(conn, table, source, days)  # DuckDB's raw views read Spark's Parquet
    else:
        with _project_zone(conn):
            reports = _load_days(conn, table, source, days)
    return _with_variant_hints(conn, reports)


def _with_variant_hints(conn: duckdb.DuckDBPyConnection, reports: list[LoadReport]) -> list[LoadReport]:
    """The unknown-variant reason of the days' quarantined assignments with the declared variant nearest each
    (a 'Treatment' for 'treatment'), as init names it."""
    days = [r.partition_date for r in reports if UNKNOWN_VARIANT in r.quarantine_reasons and r.table == "assignments"]
    if not days:
        return reports
    listed = ", ".join(f"DATE '{day.isoformat()}'" for day in days)
    rows = conn.execute(
        "SELECT DISTINCT _partition_date, experiment_id, variant FROM raw_quarantine.assignments "
        f"WHERE _partition_date IN ({listed}) AND _reason = ? ORDER BY ALL",
        [UNKNOWN_VARIANT],
    ).fetchall()
    declared = conn.execute(DECLARED_VARIANTS_SQL).fetchall()
    quarantined = conn.execute(QUARANTINED_VARIANTS_SQL).fetchall()
    for r in reports:
        if r.partition_date in days and (
            hint := variant_hints([(e, v) for d, e, v in rows if d == r.partition_date], declared, quarantined)
        ):
            named = f"{UNKNOWN_VARIANT} ({hint})"
            r.quarantine_reasons = {named if k == UNKNOWN_VARIANT else k: n for k, n in r.quarantine_reasons.items()}
    return reports


@contextmanager
def _project_zone(conn: duckdb.DuckDBPyConnection):
    """The casts' zone (_cast) while the block runs: an offset moves a time to the project's zone, a time without
    one is in it already; UTC after (the connection's other users see the loader's default)."""
    conn.execute(f"SET TimeZone = '{load_config().timezone}'")
    try:
        yield
    finally:
        conn.execute("SET TimeZone = 'UTC'")


def _load_days(conn: duckdb.DuckDBPyConnection, table: str, source: Path, days: list[date]) -> list[LoadReport]:
    contract, source, all_files, undated = source_files(table, source, days)
    _ensure_all_tables(conn)
    if not all_files:  # an optional table the source does not have: every day cleared at once
        _clear_days(conn, contract, days)
        return [LoadReport(table, day, note=empty_day_note(table, False)) for day in days]
    encoding = load_config().csv.encoding_of(table)
    reports = []
    files = all_files
    columns: dict[str, dict[str, str]] = {}  # the raw tables' columns (a rolled-back day ends the load)
    try:
        undated_days: set[date] = set()
        if undated:
            scan, present = _prepare(conn, contract, all_files, dated=False, encoding=encoding)
            _stage_undated(conn, contract, scan, present, min(days), max(days))
            undated_days = {d for (d,) in conn.execute("SELECT DISTINCT _partition_date FROM _undated").fetchall()}
        together = _load_together(conn, contract, source, all_files, days, undated, encoding, columns)
        if together is not None:
            return together
        # days the undated files hold no rows of (a year of late labels is mostly such days) are only cleared,
        # together, before the next day staged; the first day is staged anyway (the files' extra columns)
        cleared: list[date] = []
        for day in days:
            files, dated = files_for_day(source, contract, all_files, day)
            if undated and day not in undated_days and columns:
                cleared.append(day)
                reports.append(LoadReport(table, day, [str(p) for p in files]))  # as a staged day without rows
                continue
            _clear_days(conn, contract, cleared)
            cleared = []
            if undated:
                rows_sql = f"SELECT * FROM _undated WHERE _partition_date = DATE '{day.isoformat()}'"
            elif files:
                scan, present = _prepare(conn, contract, files, dated, encoding)
                day_sql = f"DATE '{day.isoformat()}'"
                rows_sql = f"SELECT {_typed_select(contract, present, day_sql)} FROM {scan}"
            reports.append(
                _replace_day(conn, contract, day, files, dated, rows_sql if files else None, bool(all_files), columns)
            )
        _clear_days(conn, contract, cleared)
    except duckdb.Error as err:  # the file cannot be read as CSV / Parquet: one line, not DuckDB's 40
        if not _is_reader_error(err):
            raise
        raise reader_error(err, table, files or all_files, encoding) from None
    finally:
        if undated:
            conn.execute("DROP TABLE IF EXISTS _undated")
    return reports


def day_batches(day_files: dict, undated: bool, max_bytes: int | None = None) -> list[list[date]]:
    """The days with files, consecutive, in batches of at most ``max_bytes`` of source files (BATCH_BYTES; a
    bigger day alone): a backfill of large days is not staged, checked and rewritten as one table. Undated
    files (read once for the whole range) are one batch."""
    days = [day for day, (files, _) in day_files.items() if files]
    if undated:
        return [days] if days else []
    limit, batches, size = max_bytes or BATCH_BYTES, [], 0
    for day in days:
        day_size = sum(p.stat().st_size for p in day_files[day][0])
        if not batches or size + day_size > limit:
            batches.append([])
            size = 0
        batches[-1].append(day)
        size += day_size
    return batches


def _load_together(
    conn: duckdb.DuckDBPyConnection,
    contract: TableContract,
    source: Path,
    all_files: list[Path],
    days: list[date],
    undated: bool,
    encoding: str,
    columns: dict[str, dict[str, str]],
) -> list[LoadReport] | None:
    """Several days of a table with rows placed by day, checked and replaced a batch of days at a time (a few
    statements per batch, not per day; day_batches), with the rows and reasons loading them one by one gives
    (checked_days_sql). None when one day has files, or when a check fails or a day's CSV headers differ: the
    days are then loaded one by one, which lands the days before the first bad one and names it."""
    day_files = {day: files_for_day(source, contract, all_files, day) for day in days}
    with_rows = [day for day, (files, _) in day_files.items() if files]
    if contract.time_column is None or len(with_rows) < 2:
        return None
    if not undated:  # files scanned header by header: a day's rows would not be numbered in its files' order
        headers = {
            tuple(csv_header(p, contract.name, encoding))
            for d in with_rows
            for p in day_files[d][0]
            if file_format(p) == "csv"
        }
        if len(headers) > 1:
            return None
        # nor Parquet files whose types disagree (read as text, a scan per run of files): a day names its file
        if parquet_clashes([p for d in with_rows for p in day_files[d][0] if file_format(p) == "parquet"]):
            return None
    _clear_days(conn, contract, [day for day in days if day not in with_rows])
    reasons: dict[date, dict[str, int]] = {}
    for batch in day_batches(day_files, undated):
        counts = _load_batch(conn, contract, day_files, batch, undated, encoding, columns)
        if counts is None:
            return None
        for day, reason, n in counts:
            reasons.setdefault(day, {})[reason] = n
    reports = []
    for day in days:
        files, _ = day_files[day]
        report = LoadReport(contract.name, day, [str(p) for p in files])
        if files:
            count_reasons(report, reasons.get(day, {}))
        else:
            report.note = empty_day_note(contract.name, True)
        reports.append(report)
    return reports


def _load_batch(
    conn: duckdb.DuckDBPyConnection,
    contract: TableContract,
    day_files: dict,
    batch: list[date],
    undated: bool,
    encoding: str,
    columns: dict[str, dict[str, str]],
) -> list[tuple] | None:
    """One batch of _load_together's days replaced in one transaction: (day, reason, rows) counts, or None when
    its check fails (nothing of the batch written)."""
    listed = ", ".join(f"DATE '{day.isoformat()}'" for day in batch)
    if undated:
        rows_sql, dated = f"SELECT * FROM _undated WHERE _partition_date IN ({listed})", False
    else:
        files = [p for day in batch for p in day_files[day][0]]  # each day's files together, in order
        try:
            scan, present = _prepare(conn, contract, files, True, encoding)
        except ContractError:
            return None
        except duckdb.Error as err:
            if not _is_reader_error(err):
                raise
            return None
        file_day = " ".join(
            f"WHEN {_sql_str(str(p))} THEN DATE '{day.isoformat()}'" for day in batch for p in day_files[day][0]
        )
        # each row's place in its day's files: its place in the scan less the rows of the days before
        numbered = f"SELECT *, CASE filename {file_day} END AS _day, row_number() OVER () AS _in_scan FROM {scan}"
        in_day = "_in_scan - min(_in_scan) OVER (PARTITION BY _day) + 1"
        rows_sql = f"SELECT {_typed_select(contract, present, '_day', in_day)} FROM ({numbered})"
        dated = True
    try:
        with transaction(conn):
            conn.execute(f"CREATE OR REPLACE TEMP TABLE _typed AS {rows_sql}")
            typed = [r[0] for r in conn.execute("DESCRIBE _typed").fetchall()]
            repeats = _has_duplicate_keys(conn, contract)
            checked = checked_days_sql(
                contract, batch, dated, repeats, typed, list(_known_columns(conn, contract.name, columns)["raw"])
            )
            helpers = checked_days_helpers([r[0] for r in conn.execute(f"DESCRIBE {checked}").fetchall()])
            conn.execute(
                f"CREATE OR REPLACE TEMP TABLE _checked AS SELECT * EXCLUDE ({', '.join(helpers)}) FROM ({checked})"
            )
            _conform_extra_columns(conn, contract.name, columns)
            _delete_days(conn, contract, batch)
            conn.execute(
                f"INSERT INTO raw.{contract.name} BY NAME SELECT * EXCLUDE (_reason) FROM _checked WHERE _reason = ''"
            )
            conn.execute(
                f"INSERT INTO raw_quarantine.{contract.name} BY NAME SELECT * FROM _checked WHERE _reason <> ''"
            )
            counts = conn.execute("SELECT _partition_date, _reason, count(*) FROM _checked GROUP BY ALL").fetchall()
            conn.execute("DROP TABLE _typed; DROP TABLE _checked")
    except duckdb.Error as err:  # a value the checks did not read: day by day, which names its day
        if not _is_reader_error(err):
            raise
        return None
    except ContractError:  # an extra column's value that does not cast: day by day too (as on Spark)
        return None
    return counts


def checked_days_helpers(columns: list[str]) -> list[str]:
    """checked_days_sql's working columns among its ``columns``: those from ``_key_rank`` on, but ``_reason``."""
    return [c for c in columns[columns.index("_key_rank") :] if c != "_reason"]


def count_reasons(report: LoadReport, reasons: dict[str, int]) -> None:
    """A day's report from its rows per reason ('' = loaded)."""
    report.rows_read = sum(reasons.values())
    report.quarantine_reasons = dict(
        sorted(((k, n) for k, n in reasons.items() if k != ""), key=lambda kv: (-kv[1], kv[0]))
    )
    report.rows_quarantined = sum(report.quarantine_reasons.values())
    report.rows_loaded = report.rows_read - report.rows_quarantined


def stored_columns(conn: duckdb.DuckDBPyConnection, table: str) -> set[str] | None:
    """The columns of ``raw.<table>`` once it holds rows (None before: a first load's columns are all new), to name
    the columns a later load adds (a vendor's new `model_build_id` in predictions was kept without a word)."""
    try:
        if not conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM raw.{table} LIMIT 1)").fetchone()[0]:
            return None
        return {r[0] for r in conn.execute(f"DESCRIBE raw.{table}").fetchall()}
    except duckdb.Error:  # not loaded yet (or the Spark engine's table)
        return None


ABSENT = "table absent from source (optional)"


def empty_day_note(table: str, table_present: bool) -> str:
    return f"{ABSENT}: raw.{table} is empty" if not table_present else "no source rows for this day"


def _delete_days(conn: duckdb.DuckDBPyConnection, contract: TableContract, days: list[date]) -> None:
    """The days' rows of ``raw.<table>`` and its quarantine (a snapshot's: all of them) deleted."""
    table = contract.name
    if contract.time_column is None:
        conn.execute(f"DELETE FROM raw.{table}; DELETE FROM raw_quarantine.{table}")
        return
    listed = ", ".join(f"DATE '{day.isoformat()}'" for day in days)
    for schema in ("raw", "raw_quarantine"):
        conn.execute(f"DELETE FROM {schema}.{table} WHERE _partition_date IN ({listed})")


def _clear_days(conn: duckdb.DuckDBPyConnection, contract: TableContract, days: list[date]) -> None:
    """Days without source rows: their earlier rows deleted in one transaction, nothing staged."""
    if days:
        with transaction(conn):
            _delete_days(conn, contract, days)


def _replace_day(
    conn: duckdb.DuckDBPyConnection,
    contract: TableContract,
    day: date,
    files: list[Path],
    dated: bool,
    rows_sql: str | None,
    table_present: bool,
    columns: dict[str, dict[str, str]],
) -> LoadReport:
    table = contract.name
    report = LoadReport(table, day, [str(p) for p in files])
    with transaction(conn):
        if rows_sql is not None:
            checked = _stage(conn, contract, rows_sql, day, dated, columns)
            _conform_extra_columns(conn, table, columns)
        _delete_days(conn, contract, [day])
        if rows_sql is not None:
            conn.execute(f"INSERT INTO raw.{table} BY NAME SELECT * EXCLUDE (_reason) FROM _checked WHERE _reason = ''")
            conn.execute(f"INSERT INTO raw_quarantine.{table} BY NAME SELECT * FROM _checked WHERE _reason <> ''")
            report.rows_read = conn.execute("SELECT count(*) FROM _typed").fetchone()[0]
            report.quarantine_reasons = dict(
                conn.execute(
                    "SELECT _reason, count(*) FROM _checked WHERE _reason <> '' GROUP BY 1 ORDER BY 2 DESC"
                ).fetchall()
            )
            report.rows_quarantined = sum(report.quarantine_reasons.values())
            report.rows_loaded = report.rows_read - report.rows_quarantined
            conn.execute(f"DROP {checked} _checked; DROP TABLE _typed")
        else:
            report.note = empty_day_note(table, table_present)
    return report
