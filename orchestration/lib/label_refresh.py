"""Which days a run re-evaluated because labels arrived: read from intermediate.int_label_refresh_days.

The dbt build lists, once, the (model_id, date) pairs whose label-based rows it recomputed:
the run's own days, the fixed ``label_lookback_days`` before them, and every older prediction
day that received a label (or feedback) during the run, up to its model's label horizon. The
Python assets that derive from those rows (alerts, bias windows, OKR progress, exports)
re-evaluate from this list, so their cost follows the labels that arrived, not the horizon.
"""

from __future__ import annotations

from datetime import date, timedelta

from orchestration.lib.settings import dbt_var

REFRESH_TABLE = "intermediate.int_label_refresh_days"


def _recent_window(first: date, last: date) -> list[date]:
    start = first - timedelta(days=int(dbt_var("label_lookback_days")))
    return [start + timedelta(days=i) for i in range((last - start).days + 1)]


def refreshed_dates(conn, first: date, last: date) -> list[date]:
    """Every prediction day whose label-based rows the run over ``first``..``last`` recomputed, oldest first.

    Always includes the fixed window (``label_lookback_days`` before ``first``) and the run's own days.
    When the refresh table was built by another run (dbt did not run for this range, e.g. one asset
    re-materialised alone), no old day was refreshed: the fixed window is the answer.
    """
    days = set(_recent_window(first, last))
    present = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'intermediate' "
        "AND table_name = 'int_label_refresh_days' AND table_catalog = current_database()"
    ).fetchone()[0]
    if present:
        rows = conn.execute(
            f"SELECT DISTINCT date FROM {REFRESH_TABLE} WHERE run_first_day = ? AND run_last_day = ?", [first, last]
        ).fetchall()
        days |= {d for (d,) in rows if d <= last}
    return sorted(days)


def refresh_start(conn, first: date, last: date) -> date:
    """The oldest day the run over ``first``..``last`` recomputed for late labels."""
    return refreshed_dates(conn, first, last)[0]


def days_reading(refreshed: list[date], reach_days: int, last: date) -> list[date]:
    """The as-of days whose trailing window (the day and ``reach_days`` before it) reads a refreshed day,
    up to ``last``, oldest first: what a trailing-window table must recompute."""
    out = set()
    for day in refreshed:
        out.update(day + timedelta(days=k) for k in range(reach_days + 1) if day + timedelta(days=k) <= last)
    return sorted(out)


def spans(days: list[date]) -> list[tuple[date, date]]:
    """Consecutive runs of ``days`` (sorted) as (first, last) pairs, for range deletes."""
    out: list[tuple[date, date]] = []
    for day in days:
        if out and day == out[-1][1] + timedelta(days=1):
            out[-1] = (out[-1][0], day)
        else:
            out.append((day, day))
    return out
