"""attribution.experiment_results and attribution.model_impact: causal lift of each model and its net value."""

import dagster as dg
from dagster_dbt import get_asset_key_for_model
from dagster_duckdb import DuckDBResource

from orchestration.defs.freshness import PUBLISHED_FRESHNESS
from orchestration.defs.partition_metadata import add_daily_metadata
from orchestration.defs.partitions import daily_partitions, run_date_range, run_days, single_run
from orchestration.defs.quality.checks import GATED_RAW_TABLES
from orchestration.defs.transform.dbt_assets import impact_ledger_dbt
from orchestration.lib.asset_metadata import experiment_results_by_day, model_impact_by_day
from orchestration.lib.attribution import (
    IMPACT_SCHEMA,
    RESULT_SCHEMA,
    AttributionSettings,
    covariate_imbalance_notes,
    covariate_imbalanced,
    control_exposure,
    experiment_design,
    experiment_results,
    exposed_control_notes,
    mark_exposed_controls,
    mark_failed_gates,
    model_impact,
)
from orchestration.lib.experiment_metrics import non_negative_metrics
from orchestration.lib.project_config import load_config
from orchestration.lib.settings import dbt_var
from orchestration.lib.settings import value_metric as value_metric_setting
from orchestration.lib.warehouse import replace_date_range

RESULTS_KEY = dg.AssetKey(["attribution", "experiment_results"])
IMPACT_KEY = dg.AssetKey(["attribution", "model_impact"])

# Model cost per experiment and as-of date: that day's ('day') or since the experiment started ('cumulative').
COSTS_SQL = """
WITH days AS (
    SELECT DISTINCT s.experiment_id, s.as_of_date, e.model_id, e.start_date
    FROM marts.experiment_stats s JOIN staging.stg_experiments e USING (experiment_id)
    WHERE s.as_of_date BETWEEN ? AND ?
)
SELECT d.model_id, d.experiment_id, w.analysis_window, d.as_of_date, coalesce(sum(c.total_cost), 0) AS model_cost
FROM days d
CROSS JOIN (VALUES ('day'), ('cumulative')) w(analysis_window)
LEFT JOIN staging.stg_model_costs c
    ON c.model_id = d.model_id
   AND c.date <= d.as_of_date
   AND c.date >= CASE WHEN w.analysis_window = 'day' THEN d.as_of_date ELSE d.start_date END
GROUP BY ALL
"""


def attribution_settings() -> AttributionSettings:
    # a project file may replace the whole mapping: keys it leaves out take the defaults
    return AttributionSettings.from_config(dbt_var("attribution"), "attribution")


@dg.asset(
    key=RESULTS_KEY,
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    group_name="attribution",
    kinds={"python", "duckdb"},
    owners=["team:experimentation"],
    freshness_policy=PUBLISHED_FRESHNESS,
    # Published only after the raw quality gates pass: a failed gate skips this asset.
    deps=[
        get_asset_key_for_model([impact_ledger_dbt], "experiment_stats"),
        *[dg.AssetKey(["raw", t]) for t in GATED_RAW_TABLES],
    ],
    description=(
        "Per experiment, metric, treatment arm, window and as-of date: Welch and CUPED lifts with 95% CIs "
        "(delta method for relative and ratio metrics), always-valid sequential CIs, MDE, Holm/BH-adjusted "
        "p-values with `significant` and intervals at the adjusted level, guardrail verdicts, SRM p-value, "
        "pre-period covariate balance (an imbalanced covariate: no CUPED, not trustworthy), a control arm the "
        "experiment's model scored (not trustworthy), "
        "trustworthy / untrusted_reason; degenerate comparisons (no variance, too few events) publish no p-value "
        "or CI (degenerate_reason), small arms are not decision_grade."
    ),
)
def experiment_results_asset(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    first, last = run_date_range(context)
    with duckdb.get_connection() as conn:
        stats = conn.execute(
            "SELECT * FROM marts.experiment_stats WHERE as_of_date BETWEEN ? AND ? ORDER BY ALL", [first, last]
        ).df()
        experiments, variants = experiment_design(conn)
        failed_gates = conn.execute(
            "SELECT date, suite, table_name, experiments FROM quality.gate_results WHERE NOT passed AND date <= ?",
            [last],
        ).df()
        metrics = dbt_var("experiment_metrics")
        results = experiment_results(
            stats,
            experiments,
            variants,
            metrics,
            attribution_settings(),
            non_negative_metrics(dbt_var("experiment_measures"), metrics),
        )
        results = mark_failed_gates(results, experiments, failed_gates)
        # a holdout the model scored is no holdout: the lift is not the model's value (README)
        exposure = control_exposure(conn, first, last)
        results = mark_exposed_controls(results, exposure)
        rows = replace_date_range(
            conn, "attribution.experiment_results", RESULT_SCHEMA, results, "as_of_date", first, last
        )
    # a pre-period covariate that differs between the arms: CUPED not used, the row not trustworthy (README)
    for note in exposed_control_notes(exposure):
        context.log.warning(f"holdout scored, results not trustworthy: {note}")
    imbalanced = covariate_imbalance_notes(results)
    for note in imbalanced:
        context.log.warning(f"pre-period covariate imbalanced, the unadjusted (Welch) lift is reported: {note}")
    # each day: its decision estimates (CUPED where used) in percent, plotted over partitions, and its preview
    # worded and rounded as the summary and report show it
    add_daily_metadata(context, experiment_results_by_day(results, run_days(context)))
    metadata = {"rows": rows, "as_of_dates": f"{first} .. {last}"}
    metadata["covariate_imbalanced_rows"] = int(covariate_imbalanced(results).sum())
    if imbalanced:
        metadata["covariate_imbalance"] = dg.MetadataValue.md("\n".join(f"- {note}" for note in imbalanced))
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    key=IMPACT_KEY,
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    group_name="attribution",
    kinds={"python", "duckdb"},
    owners=["team:experimentation", "team:finance"],
    freshness_policy=PUBLISHED_FRESHNESS,
    deps=[RESULTS_KEY, get_asset_key_for_model([impact_ledger_dbt], "stg_model_costs")],
    description=(
        "Per model, window and as-of date: incremental value = lift in the value metric (attribution.value_metric, "
        "revenue per user by default; its fall when the metric is lower_is_better) per unit x treated units with its "
        "95% CI, model cost over the same period, net value and ROI = net value / cost (a return of +100% "
        "doubles the money spent) with 95% CIs (the net value's CI divided by the known cost)."
    ),
)
def model_impact_asset(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    first, last = run_date_range(context)
    value_metric, lower_is_better = value_metric_setting()
    with duckdb.get_connection() as conn:
        results = conn.execute(
            "SELECT * FROM attribution.experiment_results WHERE as_of_date BETWEEN ? AND ? AND metric = ?",
            [first, last, value_metric],
        ).df()
        stats = conn.execute(
            "SELECT * FROM marts.experiment_stats WHERE as_of_date BETWEEN ? AND ? AND metric = ?",
            [first, last, value_metric],
        ).df()
        costs = conn.execute(COSTS_SQL, [first, last]).df()
        impact = model_impact(results, stats, costs, value_metric, attribution_settings(), lower_is_better)
        rows = replace_date_range(conn, "attribution.model_impact", IMPACT_SCHEMA, impact, "as_of_date", first, last)
    # each day: net value in the project's currency and ROI in %, plotted over partitions, and its preview
    add_daily_metadata(context, model_impact_by_day(impact, load_config().currency, run_days(context)))
    return dg.MaterializeResult(metadata={"rows": rows, "as_of_dates": f"{first} .. {last}"})
