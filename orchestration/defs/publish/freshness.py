"""A day that did not materialise, made visible: one freshness check per published asset.

The assets' FreshnessPolicy (orchestration/defs/freshness.py) says whether
they were refreshed this morning; these checks say whether *yesterday's
partition* exists by the deadline (a re-run of an old day cannot mask a
missed one) and name the missing partition. A sensor (running by default)
evaluates them after each deadline. They are not part of the daily job: they
judge the schedule, not the data, and must not fail a backfill of old days.
"""

import warnings

import dagster as dg

from orchestration.defs.freshness import deadline_cron, project_zone
from orchestration.defs.publish.assets import PUBLISHED_TABLE_KEYS, SNAPSHOT_KEY

with warnings.catch_warnings():
    # Superseded by FreshnessPolicy, which has no per-partition view yet; both exist in Dagster 1.13.
    warnings.simplefilter("ignore", category=dg.SupersessionWarning)
    published_freshness_checks = dg.build_time_partition_freshness_checks(
        assets=[*PUBLISHED_TABLE_KEYS, SNAPSHOT_KEY],
        deadline_cron=deadline_cron(),
        timezone=project_zone(),
        severity=dg.AssetCheckSeverity.WARN,
    )
    freshness_checks_sensor = dg.build_sensor_for_freshness_checks(
        freshness_checks=published_freshness_checks,
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
