"""The one daily partitioning every asset shares, and the days a run covers."""

from datetime import date, timedelta

import dagster as dg

from orchestration.lib.project_config import load_config
from orchestration.lib.settings import partitions_start

# a partition is a calendar day of the project's time zone (its `timezone`, UTC by default): the schedule's run
# for a day starts after that day's midnight there
daily_partitions = dg.DailyPartitionsDefinition(start_date=partitions_start(), timezone=load_config().timezone)

# A run over a range of days carries it in these tags (the CLI's runs, Dagster's single-run backfills).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

# A backfill of many days is one run: ingest loops over its days, dbt gets the
# range as min_date/max_date once.
single_run = dg.BackfillPolicy.single_run()


def days_between(first: date, last: date) -> list[date]:
    """first .. last, both included, oldest first."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def run_days(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> list[date]:
    """Every day of the run's partition (or partition range), oldest first."""
    window = context.partition_time_window
    return days_between(window.start.date(), window.end.date() - timedelta(days=1))


def lookback_start(conn, first: date, lookback_days: int, table: str) -> date:
    """First day a run recomputes when its inputs keep arriving late: ``lookback_days`` before its
    range, but not before the first day ``table`` holds, and never after the run's own first day (a table
    whose rows all come later, e.g. a re-run of days before them, still has the run's days recomputed)."""
    earliest = conn.execute(f"SELECT min(date) FROM {table}").fetchone()[0] or first
    return max(first - timedelta(days=lookback_days), min(earliest, first))


def run_date_range(context) -> tuple[date, date]:
    days = run_days(context)
    return days[0], days[-1]
