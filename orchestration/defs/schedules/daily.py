"""Every morning, materialise yesterday's partition of every asset, checks included."""

import dagster as dg

from orchestration.defs.publish.freshness import published_freshness_checks
from orchestration.defs.retraining.assets import CANDIDATES_KEY, SNAPSHOT_KEY
from orchestration.lib.settings import schedule_hour


# Everything but the retraining snapshot, which a request (sensor) starts, and
# the freshness checks, which judge the schedule (their own sensor runs them).
daily_job = dg.define_asset_job(
    "daily_impact_ledger",
    selection=(
        dg.AssetSelection.all()
        - dg.AssetSelection.assets(CANDIDATES_KEY, SNAPSHOT_KEY)
        - dg.AssetSelection.checks(*published_freshness_checks)
    ),
    description="Ingest, dbt build (with tests), quality gates and attribution for one day.",
)

# The schedule fires at 06:00 (IMPACT_LEDGER_SCHEDULE_HOUR) in the partitions' time zone, the project's (UTC by
# default), and targets the partition that ended at midnight, i.e. yesterday.
daily_schedule = dg.build_schedule_from_partitioned_job(
    daily_job,
    hour_of_day=schedule_hour(),
    minute_of_hour=0,
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
