"""How stale a published asset may get: yesterday's partition must land by a morning deadline.

The daily schedule runs at IMPACT_LEDGER_SCHEDULE_HOUR (06:00 in the project's
time zone, UTC by default) for the day that ended at midnight; we allow
DEADLINE_GRACE_HOURS for the run to finish.
A published asset is fresh when it was materialised between midnight and that
deadline (or later that day); otherwise the UI shows it failing its freshness
policy until the next run. The partition-level freshness checks (publish/
freshness.py) name the day that did not materialise.
"""

from datetime import timedelta

import dagster as dg

from orchestration.lib.settings import schedule_hour

DEADLINE_GRACE_HOURS = 2


def project_zone() -> str:
    """The project's time zone: its days' midnights, so the schedule's hour and the deadline are its."""
    from orchestration.lib.project_config import load_config

    return load_config().timezone


def deadline_hour() -> int:
    return min(schedule_hour() + DEADLINE_GRACE_HOURS, 23)


def deadline_cron() -> str:
    return f"0 {deadline_hour()} * * *"


def published_freshness_policy() -> dg.FreshnessPolicy:
    # lower bound = midnight: a materialisation before yesterday's partition closed cannot hold it
    return dg.FreshnessPolicy.cron(
        deadline_cron=deadline_cron(), lower_bound_delta=timedelta(hours=deadline_hour()), timezone=project_zone()
    )


PUBLISHED_FRESHNESS = published_freshness_policy()
