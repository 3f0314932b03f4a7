"""The one daily partitioning every asset shares, and the days a run covers."""

from datetime import date, timedelta

import dagster as dg

from orchestration.lib.settings import partitions_start

daily_partitions = dg.DailyPartitionsDefinition(start_date=partitions_start(), timezone="UTC")

# A backfill of many days is one run: ingest loops over its days, dbt gets the
# range as min_date/max_date once.
single_run = dg.BackfillPolicy.single_run()


def run_days(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> list[date]:
    """Every day of the run's partition (or partition range), oldest first."""
    window = context.partition_time_window
    first, end = window.start.date(), window.end.date()
    return [first + timedelta(days=i) for i in range((end - first).days)]


def run_date_range(context) -> tuple[date, date]:
    days = run_days(context)
    return days[0], days[-1]
