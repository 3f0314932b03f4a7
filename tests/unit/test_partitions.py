"""The days a run covers and the lookback it recomputes, on hand-picked dates."""

from datetime import date

import duckdb

from orchestration.defs.partitions import days_between, lookback_start


def test_days_between_includes_both_ends_and_crosses_months():
    assert days_between(date(2026, 1, 30), date(2026, 2, 2)) == [
        date(2026, 1, 30),
        date(2026, 1, 31),
        date(2026, 2, 1),
        date(2026, 2, 2),
    ]
    assert days_between(date(2026, 1, 3), date(2026, 1, 3)) == [date(2026, 1, 3)]
    assert days_between(date(2026, 1, 3), date(2026, 1, 2)) == []


def test_lookback_starts_no_earlier_than_the_tables_first_day():
    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA marts; CREATE TABLE marts.k AS SELECT DATE '2026-01-05' AS date")
        assert lookback_start(conn, date(2026, 2, 10), 14, "marts.k") == date(2026, 1, 27)
        assert lookback_start(conn, date(2026, 1, 10), 14, "marts.k") == date(2026, 1, 5)
        # rows only after the run's days (a re-run of days before them): the run's own days, not an empty range
        assert lookback_start(conn, date(2026, 1, 2), 14, "marts.k") == date(2026, 1, 2)
        conn.execute("DELETE FROM marts.k")
        assert lookback_start(conn, date(2026, 1, 10), 14, "marts.k") == date(
            2026, 1, 10
        )  # nothing yet: the run's own days
