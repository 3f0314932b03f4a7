"""marts.okr_progress and marts.metric_scorecard: key results of the project file's okrs and whether experiments can judge them."""

from datetime import timedelta

import dagster as dg
from dagster_dbt import get_asset_key_for_model
from dagster_duckdb import DuckDBResource

from orchestration.defs.attribution.assets import IMPACT_KEY, RESULTS_KEY
from orchestration.defs.freshness import PUBLISHED_FRESHNESS
from orchestration.defs.partition_metadata import add_daily_metadata
from orchestration.defs.partitions import daily_partitions, lookback_start, run_date_range, run_days, single_run
from orchestration.defs.transform.dbt_assets import impact_ledger_dbt
from orchestration.lib.asset_metadata import okr_progress_by_day, scorecard_by_day
from orchestration.lib.attribution import AttributionSettings, experiment_design
from orchestration.lib.label_refresh import refresh_start as label_refresh_start
from orchestration.lib.okrs import PROGRESS_SCHEMA, check_arms, key_result_values, load_okrs, okr_progress
from orchestration.lib.project_config import load_config
from orchestration.lib.scorecard import SCORECARD_SCHEMA, TRAFFIC_SQL, metric_scorecard
from orchestration.lib.settings import dbt_var
from orchestration.lib.warehouse import replace_date_range

OKR_PROGRESS_KEY = dg.AssetKey(["marts", "okr_progress"])
SCORECARD_KEY = dg.AssetKey(["marts", "metric_scorecard"])
# Both tables: one row set per day, a backfill is one run over its range.
DAILY_ANALYTICS_ASSET = dict(
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    group_name="okrs",
    freshness_policy=PUBLISHED_FRESHNESS,
    kinds={"python", "duckdb"},
    owners=["team:analytics"],
)


INPUTS = ("marts.kpi_daily", "marts.model_health_daily")  # the tables whose late rows move a key result


def refresh_start(conn, first, last):
    """Recompute the days whose inputs changed: yesterday's KPIs, and every day from the oldest health day the
    run refreshed for late labels (a key result's trailing window reads it)."""
    oldest = min(first - timedelta(days=int(dbt_var("kpi_lookback_days"))), label_refresh_start(conn, first, last))
    # bounded by the first day either input holds (a monitoring-only project has no KPI rows at all)
    return min(lookback_start(conn, first, (first - oldest).days, t) for t in INPUTS)


def _dbt_key(model: str) -> dg.AssetKey:
    return get_asset_key_for_model([impact_ledger_dbt], model)


@dg.asset(
    key=OKR_PROGRESS_KEY,
    **DAILY_ANALYTICS_ASSET,
    deps=[
        _dbt_key("kpi_daily"),
        _dbt_key("model_health_daily"),
        RESULTS_KEY,
        IMPACT_KEY,
        _dbt_key("stg_experiments"),  # the arms a net value or lift key result must name (okrs.check_arms)
        _dbt_key("stg_experiment_variants"),
    ],
    description=(
        "Per day and key result of the project file's okrs (each run also recomputes from the oldest day it refreshed for late labels): the bound metric's current value (trailing mean of a KPI or "
        "health metric, cumulative net value or lift of one treatment arm, carried from the newest day with one: "
        "value_as_of), progress = (current - baseline) / (target - baseline), the "
        "linear pace from start_date to deadline, on_track and status (achieved, on_track, behind, missed, "
        "not_started, no_data), and whether a net value's or lift's row is trustworthy."
    ),
)
def okr_progress_asset(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    okrs = load_okrs(dbt_var("experiment_metrics"))
    first, last = run_date_range(context)
    with duckdb.get_connection() as conn:
        first = refresh_start(conn, first, last)
        values = key_result_values(conn, okrs, first, last, load_config().alerts.min_labelled)
        progress = okr_progress(okrs, values)
        rows = replace_date_range(conn, "marts.okr_progress", PROGRESS_SCHEMA, progress, "date", first, last)
    # each day of the run: its key results by status and its table (the run also rewrote its lookback days)
    add_daily_metadata(context, okr_progress_by_day(progress, run_days(context)))
    return dg.MaterializeResult(
        metadata={"rows": rows, "dates": f"{first} .. {last}", "key_results": len(okrs.key_results)}
    )


@dg.asset(
    key=SCORECARD_KEY,
    **DAILY_ANALYTICS_ASSET,
    deps=[RESULTS_KEY, _dbt_key("experiment_stats"), _dbt_key("stg_experiments"), _dbt_key("stg_experiment_variants")],
    description=(
        "Per day, experiment arm and declared experiment metric: attributable, units and units per day, MDE at "
        "today's traffic, maturity_days, the guardrail balancing it; per key result bound to it the required "
        "units and days of traffic for its target effect, the MDE reachable by its deadline and a warning when "
        "the target is smaller."
    ),
)
def metric_scorecard_asset(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    metrics = dbt_var("experiment_metrics")
    okrs = load_okrs(metrics)
    attribution = dbt_var("attribution")
    first, last = run_date_range(context)
    window = "analysis_window = 'cumulative' AND as_of_date BETWEEN ? AND ?"
    with duckdb.get_connection() as conn:
        results = conn.execute(f"SELECT * FROM attribution.experiment_results WHERE {window}", [first, last]).df()
        stats = conn.execute(f"SELECT * FROM marts.experiment_stats WHERE {window}", [first, last]).df()
        traffic = conn.execute(TRAFFIC_SQL, [first, last]).df()
        experiments, variants = experiment_design(conn)
        check_arms(okrs, experiments, variants)  # a lift key result names its arm where there are several
        scorecard = metric_scorecard(
            run_days(context),
            experiments,
            variants,
            results,
            stats,
            traffic,
            metrics,
            okrs.key_results,
            float(attribution["alpha"]),
            float(attribution["power"]),
            AttributionSettings.from_config(attribution).min_events_per_arm,
        )
        rows = replace_date_range(conn, "marts.metric_scorecard", SCORECARD_SCHEMA, scorecard, "date", first, last)
    # each day of the run: its warnings, unattributable metrics and table
    add_daily_metadata(context, scorecard_by_day(scorecard, run_days(context)))
    return dg.MaterializeResult(metadata={"rows": rows, "dates": f"{first} .. {last}"})


okr_assets = [okr_progress_asset, metric_scorecard_asset]
