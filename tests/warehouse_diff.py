"""Compare warehouses table by table, rows as multisets."""

from pathlib import Path

import duckdb

# Columns that record *when the pipeline saw* something, not what the data says: a run over a range sees
# the whole range at once (README: "Detection dates"). Requests depend on the alerts' dates only; their
# snapshot_path is under each warehouse's own exports directory (where the files go, not what was requested).
RUN_HISTORY = {
    "marts.alerts": ["first_detected_on", "last_evaluated_on"],
    "marts.retraining_requests": ["snapshot_path"],
    "intermediate.int_reference_profiles": ["built_at"],  # the run that built a drift reference
}
# Rebuilt by every run: what that one run recomputed for late labels (a range's vs the last day's), and
# the label-based sums of those days (the marts keep them).
RUN_RECORDS = {"intermediate.int_label_refresh_days", "intermediate.int_label_counts"}


def base_tables(db: Path) -> list[str]:
    """``schema.table`` of every base table of the warehouse file ``db``, sorted."""
    with duckdb.connect(str(db), read_only=True) as conn:
        return [
            f"{s}.{t}"
            for s, t in conn.execute(
                "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
                "ORDER BY 1, 2"
            ).fetchall()
        ]


def rows_only_in_each(conn, select, left: str, right: str) -> tuple[int, int]:
    """(rows of select(left) missing from select(right), and the reverse), duplicates counted (EXCEPT ALL);
    ``select(db)`` is the table's SELECT from the attached database ``db``."""

    def only_in(a: str, b: str) -> int:
        return conn.execute(f"SELECT count(*) FROM ({select(a)} EXCEPT ALL {select(b)})").fetchone()[0]

    return only_in(left, right), only_in(right, left)


def differing_tables(left: Path, right: Path, tables: list[str], excluded: dict[str, list[str]]) -> list[str]:
    """For each of ``tables`` whose rows differ between the warehouse files ``left`` and ``right`` (the columns of
    ``excluded[table]`` left out): how many rows are only in each, of how many."""
    out = []
    with duckdb.connect() as conn:
        conn.execute(f"ATTACH '{left}' AS l (READ_ONLY)")
        conn.execute(f"ATTACH '{right}' AS r (READ_ONLY)")
        for table in tables:
            exclude = f"EXCLUDE ({', '.join(excluded[table])})" if table in excluded else ""
            only_left, only_right = rows_only_in_each(
                conn, lambda db: f"SELECT * {exclude} FROM {db}.{table}", "l", "r"
            )
            if only_left or only_right:
                rows = conn.execute(f"SELECT count(*) FROM l.{table}").fetchone()[0]
                out.append(f"{table}: {only_left} rows only in {left}, {only_right} only in {right} (of {rows})")
    return out
