"""Idempotent writes of Python-computed tables into the DuckDB warehouse."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

# Analysts' SQL may read the opened database and nothing else: no files (COPY TO, read_csv,
# glob), no ATTACH of the warehouse, no extensions; and it cannot switch that back on.
ANALYST_CONFIG = {"enable_external_access": False, "lock_configuration": True}


def analyst_connection(path: Path | str) -> duckdb.DuckDBPyConnection:
    """A read-only connection for analysts' SQL (query, report, summary, sensors): the file only, locked down."""
    return duckdb.connect(str(path), read_only=True, config=ANALYST_CONFIG)


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """The block's statements as one transaction: committed at its end, rolled back if it raises."""
    conn.execute("BEGIN TRANSACTION")
    try:
        yield
    except Exception:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def ensure_table(conn: duckdb.DuckDBPyConnection, table: str, schema: dict[str, str]) -> None:
    """Create ``table`` (schema.name) from ``schema`` (column -> DuckDB type) if it does not exist."""
    schema_name, name = table.split(".")
    # read first: a statement is a transaction of its own, and a run calls this for every table it writes
    existing = {
        row[0]
        for row in conn.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = ? AND table_name = ?",
            [schema_name, name],
        ).fetchall()
    }
    if not existing:
        columns = ", ".join(f'"{c}" {t}' for c, t in schema.items())
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema_name}")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
        return
    # a table written by an older version gains the columns added since (NULL on its old rows)
    for column, kind in schema.items():
        if column not in existing:
            conn.execute(f'ALTER TABLE {table} ADD COLUMN IF NOT EXISTS "{column}" {kind}')


def replace_date_range(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    schema: dict[str, str],
    frame: pd.DataFrame,
    date_column: str,
    first,
    last,
) -> int:
    """Replace the rows of ``table`` dated ``first``..``last`` with ``frame`` (one transaction).

    The table is created from ``schema`` (column -> DuckDB type) if missing, so
    an empty frame still leaves a well-typed table; re-running a day replaces it.
    """
    ensure_table(conn, table, schema)
    with transaction(conn):
        conn.execute(f'DELETE FROM {table} WHERE "{date_column}" BETWEEN ? AND ?', [first, last])
        if len(frame):
            conn.register("_replacement_rows", frame[list(schema)])
            casts = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in schema.items())
            conn.execute(f"INSERT INTO {table} BY NAME SELECT {casts} FROM _replacement_rows")
            conn.unregister("_replacement_rows")
    return len(frame)
