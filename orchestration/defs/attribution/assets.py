"""attribution.experiment_results: the causal lift of each model vs its holdout."""

import dagster as dg
from dagster_dbt import get_asset_key_for_model
from dagster_duckdb import DuckDBResource

from orchestration.defs.partitions import daily_partitions, run_date_range, single_run
from orchestration.defs.quality.checks import GATED_RAW_TABLES
from orchestration.defs.transform.dbt_assets import impact_ledger_dbt
from orchestration.lib.attribution import RESULT_COLUMNS, experiment_results

RESULTS_DDL = """
CREATE TABLE IF NOT EXISTS attribution.experiment_results (
    experiment_id VARCHAR, model_id VARCHAR, metric VARCHAR, control_variant VARCHAR, treatment_variant VARCHAR,
    analysis_window VARCHAR, as_of_date DATE, n_control BIGINT, n_treatment BIGINT,
    mean_control DOUBLE, mean_treatment DOUBLE, absolute_lift DOUBLE, absolute_se DOUBLE,
    absolute_ci_low DOUBLE, absolute_ci_high DOUBLE, relative_lift DOUBLE, relative_se DOUBLE,
    relative_ci_low DOUBLE, relative_ci_high DOUBLE, degrees_of_freedom DOUBLE, p_value DOUBLE
)
"""


@dg.asset(
    key=["attribution", "experiment_results"],
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    group_name="attribution",
    kinds={"python", "duckdb"},
    owners=["team:experimentation"],
    # Published only after the raw quality gates pass: a failed gate skips this asset.
    deps=[get_asset_key_for_model([impact_ledger_dbt], "experiment_stats"), *[dg.AssetKey(["raw", t]) for t in GATED_RAW_TABLES]],
    description=(
        "Per experiment, metric, treatment variant, window and as-of date: n and mean per arm, absolute and "
        "relative lift with 95% CIs (Welch; delta method for relative) and the Welch p-value."
    ),
)
def experiment_results_asset(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    first, last = run_date_range(context)
    with duckdb.get_connection() as conn:
        stats = conn.execute(
            "SELECT * FROM marts.experiment_stats WHERE as_of_date BETWEEN ? AND ?", [first, last]
        ).df()
        experiments = conn.execute("SELECT experiment_id, model_id, control_variant FROM raw.experiments").df()
        results = experiment_results(stats, experiments)
        conn.execute("CREATE SCHEMA IF NOT EXISTS attribution")
        conn.execute(RESULTS_DDL)
        conn.execute("BEGIN TRANSACTION")
        conn.execute("DELETE FROM attribution.experiment_results WHERE as_of_date BETWEEN ? AND ?", [first, last])
        conn.register("results_frame", results)
        conn.execute(f"INSERT INTO attribution.experiment_results SELECT {', '.join(RESULT_COLUMNS)} FROM results_frame")
        conn.execute("COMMIT")
        conn.unregister("results_frame")
    latest = results[results["as_of_date"] == results["as_of_date"].max()] if len(results) else results
    preview = latest[["experiment_id", "metric", "relative_lift", "relative_ci_low", "relative_ci_high", "p_value"]]
    return dg.MaterializeResult(
        metadata={
            "rows": len(results),
            "as_of_dates": f"{first} .. {last}",
            "latest": dg.MetadataValue.md(preview.to_markdown(index=False) if len(preview) else "no results"),
        }
    )
