"""marts.alerts and one non-blocking health check per monitored model."""

from datetime import timedelta

import dagster as dg
import pandas as pd
from dagster_dbt import get_asset_key_for_model
from dagster_duckdb import DuckDBResource

from orchestration.defs.freshness import PUBLISHED_FRESHNESS
from orchestration.defs.partitions import daily_partitions, run_date_range, single_run
from orchestration.defs.transform.dbt_assets import impact_ledger_dbt
from orchestration.lib.alerts import evaluate_alerts, load_alert_config, summarise_breaches
from orchestration.lib.asset_metadata import MODEL_HEALTH_SUMMARY_SQL, markdown_table, model_health_metadata
from orchestration.lib.settings import dbt_var
from orchestration.lib.warehouse import ensure_table, replace_date_range

ALERTS_KEY = dg.AssetKey(["marts", "alerts"])
ALERTS_SCHEMA = {
    "date": "DATE", "model_id": "VARCHAR", "model_version": "VARCHAR", "metric": "VARCHAR", "subject": "VARCHAR",
    "value": "DOUBLE", "threshold": "DOUBLE", "rule": "VARCHAR", "first_detected_on": "DATE", "last_evaluated_on": "DATE",
}
REFERENCE_PRECISION_SQL = """
SELECT h.model_id, h.model_version,
       sum(h.true_positives) / nullif(sum(h.true_positives + h.false_positives), 0) AS reference_precision
FROM marts.model_health_daily h
JOIN intermediate.int_model_versions v ON v.model_id = h.model_id AND v.model_version = h.model_version
WHERE h.date BETWEEN v.first_date AND v.reference_end_date
GROUP BY ALL
"""
KEY = ["date", "model_id", "model_version", "metric", "subject"]


def evaluation_window(context) -> tuple:
    """Label-based metrics of the last label_lookback_days are recomputed, so alerts are too."""
    first, last = run_date_range(context)
    return first - timedelta(days=int(dbt_var("label_lookback_days"))), last


@dg.asset(
    key=ALERTS_KEY,
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    group_name="model_health",
    kinds={"python", "duckdb"},
    owners=["team:ml-platform"],
    freshness_policy=PUBLISHED_FRESHNESS,
    deps=[get_asset_key_for_model([impact_ledger_dbt], m) for m in ("model_health_daily", "feature_drift_daily")],
    description=(
        "One row per breach of a rule in expectations/alert_thresholds.yml (date, model, metric, subject, value, "
        "threshold), re-evaluated over the label lookback window; first_detected_on keeps the earliest run that saw it."
    ),
)
def alerts_asset(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    config = load_alert_config()
    first, last = evaluation_window(context)
    history_start = first - timedelta(days=config.lookback_days)
    with duckdb.get_connection() as conn:
        health = conn.execute("SELECT * FROM marts.model_health_daily WHERE date BETWEEN ? AND ?", [history_start, last]).df()
        drift = conn.execute(
            "SELECT date, model_id, model_version, feature, psi FROM marts.feature_drift_daily WHERE date BETWEEN ? AND ?",
            [first, last],
        ).df()
        reference = conn.execute(REFERENCE_PRECISION_SQL).df()
        versions = conn.execute("SELECT model_id, model_version, first_date FROM intermediate.int_model_versions").df()
        breaches = evaluate_alerts(health, drift, reference, versions, config, first, last)
        ensure_table(conn, "marts.alerts", ALERTS_SCHEMA)
        seen = conn.execute(
            "SELECT date, model_id, model_version, metric, subject, first_detected_on FROM marts.alerts WHERE date BETWEEN ? AND ?",
            [first, last],
        ).df()
        breaches["date"] = pd.to_datetime(breaches["date"])
        seen["date"] = pd.to_datetime(seen["date"])
        merged = breaches.merge(seen, on=KEY, how="left")
        # the earliest run that saw a breach keeps the credit, so re-runs are idempotent
        merged["first_detected_on"] = pd.to_datetime(merged["first_detected_on"]).fillna(pd.Timestamp(last)).clip(upper=pd.Timestamp(last))
        merged["last_evaluated_on"] = pd.Timestamp(last)
        replace_date_range(conn, "marts.alerts", ALERTS_SCHEMA, merged, "date", first, last)
        health_summary = conn.execute(MODEL_HEALTH_SUMMARY_SQL, {"first": first, "last": last, "min_labelled": config.min_labelled}).df()
    counts = merged.groupby("metric").size().to_dict() if len(merged) else {}
    return dg.MaterializeResult(
        metadata={
            "alerts_in_window": len(merged),
            "window": f"{first} .. {last}",
            "by_metric": dg.MetadataValue.json({k: int(v) for k, v in counts.items()}),
            "model_health": dg.MetadataValue.md(markdown_table(health_summary)),
            "breaches": dg.MetadataValue.md(markdown_table(merged.sort_values(["date", "model_id", "metric"], ascending=[False, True, True]),
                                                           ["date", "model_id", "metric", "subject", "value", "threshold", "first_detected_on"])),
            **model_health_metadata(health_summary),  # plotted over partitions in the UI
        }
    )


def build_model_health_check(model_id: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=ALERTS_KEY,
        name=f"model_health_{model_id}",
        blocking=False,
        partitions_def=daily_partitions,
        description=f"WARN when {model_id} breaches any alert rule in the run's evaluation window.",
    )
    def _check(context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource) -> dg.AssetCheckResult:
        first, last = evaluation_window(context)
        with duckdb.get_connection() as conn:
            rows = conn.execute(
                "SELECT date, metric, subject, value, threshold, rule, first_detected_on FROM marts.alerts "
                "WHERE model_id = ? AND date BETWEEN ? AND ? ORDER BY date, metric, subject",
                [model_id, first, last],
            ).df()
        verdict = summarise_breaches(rows, model_id, first, last)
        return dg.AssetCheckResult(
            passed=verdict["passed"],
            severity=dg.AssetCheckSeverity.WARN,
            description=verdict["description"],
            metadata={
                "breaches": verdict["breaches"],
                "worst_value_by_metric": dg.MetadataValue.json(verdict["worst_value_by_metric"]),
                "breaches_table": dg.MetadataValue.md(markdown_table(rows.tail(20))),
            },
        )

    return _check


model_health_checks = [build_model_health_check(m) for m in load_alert_config().models]
