"""Compare one table across two attached warehouses, rows as multisets."""


def rows_only_in_each(conn, select, left: str, right: str) -> tuple[int, int]:
    """(rows of select(left) missing from select(right), and the reverse), duplicates counted (EXCEPT ALL);
    ``select(db)`` is the table's SELECT from the attached database ``db``."""

    def only_in(a: str, b: str) -> int:
        return conn.execute(f"SELECT count(*) FROM ({select(a)} EXCEPT ALL {select(b)})").fetchone()[0]

    return only_in(left, right), only_in(right, left)
