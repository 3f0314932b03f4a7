"""After each run: Parquet exports and the analysts' read-only snapshot database."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from orchestration.defs.attribution.assets import IMPACT_KEY, RESULTS_KEY
from orchestration.defs.bias.assets import GROUP_RATES_KEY, VERDICTS_KEY
from orchestration.defs.freshness import PUBLISHED_FRESHNESS
from orchestration.defs.model_health.alerts import ALERTS_KEY
from orchestration.defs.okrs.assets import OKR_PROGRESS_KEY, SCORECARD_KEY
from orchestration.defs.partitions import daily_partitions, run_date_range, single_run
from orchestration.defs.retraining.assets import REQUESTS_KEY, upgrade_requests_table
from orchestration.lib import source_changes
from orchestration.lib.publish import publish
from orchestration.lib.settings import analytics_path, exports_dir

MART_KEYS = [
    dg.AssetKey(["marts", m])
    for m in (
        "kpi_daily",
        "kpi_daily_by_segment",
        "retention_cohorts",
        "model_health_daily",
        "feature_drift_daily",
        "leading_lagging",
        "bias_daily",
    )
]
SNAPSHOT_KEY = dg.AssetKey(["publish", "analytics_snapshot"])
# The tables analysts read: each declares a freshness policy; publish/freshness.py checks their partitions.
PUBLISHED_TABLE_KEYS = [
    RESULTS_KEY,
    IMPACT_KEY,
    ALERTS_KEY,
    REQUESTS_KEY,
    OKR_PROGRESS_KEY,
    SCORECARD_KEY,
    GROUP_RATES_KEY,
    VERDICTS_KEY,
    *MART_KEYS,
]


@dg.asset(
    key=SNAPSHOT_KEY,
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    group_name="publish",
    kinds={"parquet", "duckdb"},
    owners=["team:analytics"],
    freshness_policy=PUBLISHED_FRESHNESS,
    deps=PUBLISHED_TABLE_KEYS,
    description=(
        "Published tables as hive-partitioned Parquet under data/exports/<table>/date=YYYY-MM-DD/ and the read-only "
        "snapshot data/analytics.duckdb (rebuilt in a temp file, then renamed): analysts never touch the writer's lock. "
        "The retraining requests are published whole (a few rows: their status changes on any day)."
    ),
)
def analytics_snapshot_asset(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    first, last = run_date_range(context)
    with duckdb.get_connection() as conn:
        upgrade_requests_table(conn)
        # earlier days whose source rows changed since they were loaded, published for summary and notifications
        changes, unread = source_changes.find(conn, first, last)
        source_changes.record(conn, changes, last)
        for why in unread:
            context.log.warning(f"days already run not compared with the database: {why}")
        report = publish(conn, exports_dir(), analytics_path(), first, last)  # the requests whole (PUBLISHED)
    return dg.MaterializeResult(
        metadata={
            "parquet_files": report.files,
            "rows_exported": report.rows,
            "snapshot": dg.MetadataValue.path(str(report.snapshot)),
            "snapshot_tables": report.snapshot_tables,
            "source_changes": len(changes),
        }
    )
