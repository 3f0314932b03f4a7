"""The Impact Ledger code location: assembles each domain's definitions.

Loading this module never opens the warehouse nor runs dbt; it only needs the
dbt manifest (built by `make manifest`).
"""

import warnings

import dagster as dg

# Backfill policies and partitioned asset checks are marked beta/preview in
# Dagster 1.13; we rely on them deliberately, so keep the logs readable.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

from orchestration.defs.attribution.assets import experiment_results_asset, model_impact_asset
from orchestration.defs.bias.assets import bias_window_assets
from orchestration.defs.ingest.assets import raw_assets
from orchestration.defs.model_health.alerts import alerts_asset
from orchestration.defs.okrs.assets import okr_assets
from orchestration.defs.notify.sensors import alert_notifications_sensor
from orchestration.defs.publish.assets import analytics_snapshot_asset
from orchestration.defs.publish.freshness import freshness_checks_sensor, published_freshness_checks
from orchestration.defs.quality.checks import quality_checks
from orchestration.defs.quality.data_docs import data_docs_asset
from orchestration.defs.report.assets import daily_report_asset
from orchestration.defs.resources import build_resources
from orchestration.defs.retraining.assets import (
    retraining_job,
    retraining_requests_asset,
    retraining_sensor,
    training_bias_check,
    training_candidates_asset,
    training_snapshot_asset,
)
from orchestration.defs.schedules.daily import daily_job, daily_schedule
from orchestration.defs.transform.dbt_assets import impact_ledger_dbt

ALL_ASSETS = [
    *raw_assets,
    data_docs_asset,
    impact_ledger_dbt,
    alerts_asset,
    bias_window_assets,
    experiment_results_asset,
    model_impact_asset,
    retraining_requests_asset,
    training_candidates_asset,
    training_snapshot_asset,
    analytics_snapshot_asset,
    *okr_assets,
    daily_report_asset,
]
ALL_CHECKS = [*quality_checks, training_bias_check, *published_freshness_checks]


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=ALL_ASSETS,
        asset_checks=ALL_CHECKS,
        jobs=[daily_job, retraining_job],
        schedules=[daily_schedule],
        sensors=[retraining_sensor, alert_notifications_sensor, freshness_checks_sensor],
        resources=build_resources(),
        # One step at a time: DuckDB allows a single writer process.
        executor=dg.in_process_executor,
    )


defs = build_definitions()
