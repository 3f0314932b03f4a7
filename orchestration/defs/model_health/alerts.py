"""marts.alerts and one non-blocking health check per monitored model, evaluated by the asset itself.

The checks judge the breaches the asset has just written, so they are results of its step rather than steps of
their own: a run's step count does not grow with the number of models.
"""

from datetime import timedelta

import dagster as dg
import pandas as pd
from dagster_dbt import get_asset_key_for_model
from dagster_duckdb import DuckDBResource

from orchestration.defs.freshness import PUBLISHED_FRESHNESS
from orchestration.defs.partition_metadata import add_daily_metadata
from orchestration.defs.partitions import daily_partitions, run_date_range, run_days, single_run
from orchestration.defs.transform.dbt_assets import impact_ledger_dbt
from orchestration.lib.alerts import (
    DRIFT_SQL,
    NULL_RATE_SQL,
    evaluate_alerts,
    in_scope,
    load_alert_config,
    per_model_checks,
    summarise_breaches,
)
from orchestration.lib.asset_metadata import (
    MODEL_HEALTH_BY_DAY_SQL,
    breaches_by_day,
    markdown_table,
    model_health_by_day,
)
from orchestration.lib.label_refresh import refresh_start
from orchestration.lib.project_config import load_config
from orchestration.lib.settings import dbt_var
from orchestration.lib.version_changes import version_change_breaches
from orchestration.lib.warehouse import ensure_table, replace_date_range

ALERTS_KEY = dg.AssetKey(["marts", "alerts"])
ALERTS_SCHEMA = {
    "date": "DATE",
    "model_id": "VARCHAR",
    "model_version": "VARCHAR",
    "metric": "VARCHAR",
    "subject": "VARCHAR",
    "value": "DOUBLE",
    "threshold": "DOUBLE",
    "rule": "VARCHAR",
    "first_detected_on": "DATE",
    "last_evaluated_on": "DATE",
}
# confusion counts over each version's reference window: the precision / recall drop rules test a day against them
REFERENCE_COUNTS_SQL = """
SELECT h.model_id, h.model_version,
       sum(h.true_positives) AS reference_true_positives,
       sum(h.false_positives) AS reference_false_positives,
       sum(h.false_negatives) AS reference_false_negatives,
       max(v.reference_end_date) AS reference_end_date
FROM marts.model_health_daily h
JOIN intermediate.int_model_versions v ON v.model_id = h.model_id AND v.model_version = h.model_version
WHERE h.date BETWEEN v.reference_start_date AND v.reference_end_date
GROUP BY ALL
"""
# days whose prediction volume is unknown, not 0: held back by the predictions gate, or never loaded (no gate judged
# them after the first day one did: a trial's truncated file stopped a day's run, and the next day's run notified
# "volume_change = -1.0" for it)
UNKNOWN_VOLUME_SQL = """
WITH judged AS (
    SELECT date, bool_and(passed) AS passed FROM quality.gate_results
    WHERE table_name = 'predictions' AND date IS NOT NULL GROUP BY date
)
SELECT d::DATE FROM (SELECT min(date) AS lo FROM judged), generate_series(greatest(lo, ?::DATE), ?::DATE, INTERVAL 1 DAY) AS t(d)
WHERE d::DATE NOT IN (SELECT date FROM judged WHERE passed)
"""
KEY = ["date", "model_id", "model_version", "metric", "subject"]
BREACH_COLUMNS = ["date", "model_id", "metric", "subject", "value", "threshold", "rule", "first_detected_on"]
# built from the project file's declared models (never from the warehouse: definitions load without it)
_DECLARED = load_alert_config().models
HEALTH_CHECKS = per_model_checks("model_health", _DECLARED)


def _health_check_spec(name: str, model_id: str | None) -> dg.AssetCheckSpec:
    who = model_id if model_id is not None else "any model found in the data but not declared in the project file"
    return dg.AssetCheckSpec(
        name,
        asset=ALERTS_KEY,
        partitions_def=daily_partitions,
        description=f"WARN when {who} breaches any alert rule in the run's evaluation window.",
    )


def evaluation_window(context) -> tuple:
    """Alerts are re-evaluated from the oldest day whose label-based health the run recomputed (its own days,
    the label_lookback_days before them and older days that got late labels: intermediate.int_label_refresh_days)
    to its last day; every day in between is re-judged too, so a changed reference window reaches them."""
    first, last = run_date_range(context)
    with context.resources.duckdb.get_connection() as conn:
        return refresh_start(conn, first, last), last


@dg.asset(
    key=ALERTS_KEY,
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    group_name="model_health",
    kinds={"python", "duckdb"},
    owners=["team:ml-platform"],
    freshness_policy=PUBLISHED_FRESHNESS,
    deps=[get_asset_key_for_model([impact_ledger_dbt], m) for m in ("model_health_daily", "feature_drift_daily")],
    check_specs=[_health_check_spec(name, model_id) for name, model_id in HEALTH_CHECKS.items()],
    description=(
        "One row per breach of an alert rule of the project file (alerts.rules, per-model overrides): date, model, "
        "metric, subject, value, threshold (precision/recall drops: the day's rate, the reference window's rate, "
        "breached when a one-sided exact test gives p < alpha), re-evaluated over the label lookback window; "
        "first_detected_on keeps the earliest run that saw it."
    ),
)
def alerts_asset(context: dg.AssetExecutionContext, duckdb: DuckDBResource):
    config = load_alert_config()
    first, last = evaluation_window(context)
    history_start = first - timedelta(days=config.lookback_days)
    with duckdb.get_connection() as conn:
        health = conn.execute(
            "SELECT * FROM marts.model_health_daily WHERE date BETWEEN ? AND ?", [history_start, last]
        ).df()
        drift = conn.execute(DRIFT_SQL, [first, last]).df()
        reference = conn.execute(REFERENCE_COUNTS_SQL).df()
        versions = conn.execute("SELECT model_id, model_version, first_date FROM intermediate.int_model_versions").df()
        held_back = [d for (d,) in conn.execute(UNKNOWN_VOLUME_SQL, [history_start, last]).fetchall()]
        held_back += load_config().gates.volume.closed_days  # a holiday is no outage (gates.volume.closed_days)
        null_rates = conn.execute(NULL_RATE_SQL, [first, last]).df()
        breaches = evaluate_alerts(health, drift, reference, versions, config, first, last, held_back, null_rates)
        changed = version_change_breaches(conn, health, versions, config, first, last)
        if len(changed):
            breaches = pd.concat([breaches, changed], ignore_index=True)
            breaches = breaches.sort_values(["date", "model_id", "metric", "subject"], ignore_index=True)
        ensure_table(conn, "marts.alerts", ALERTS_SCHEMA)
        seen = conn.execute(
            "SELECT date, model_id, model_version, metric, subject, first_detected_on FROM marts.alerts WHERE date BETWEEN ? AND ?",
            [first, last],
        ).df()
        breaches["date"] = pd.to_datetime(breaches["date"])
        seen["date"] = pd.to_datetime(seen["date"])
        merged = breaches.merge(seen, on=KEY, how="left")
        # the earliest run that saw a breach keeps the credit, so re-runs are idempotent
        merged["first_detected_on"] = (
            pd.to_datetime(merged["first_detected_on"]).fillna(pd.Timestamp(last)).clip(upper=pd.Timestamp(last))
        )
        merged["last_evaluated_on"] = pd.Timestamp(last)
        replace_date_range(conn, "marts.alerts", ALERTS_SCHEMA, merged, "date", first, last)
        days = run_days(context)
        health_by_day = conn.execute(
            MODEL_HEALTH_BY_DAY_SQL,
            {
                "first": days[0],
                "last": last,
                "min_labelled": config.min_labelled,
                "horizon": int(dbt_var("label_lookback_days")),  # a daily run's labels reach this far back
            },
        ).df()
    # each day of the run: its models' PSI, ECE, precision and breaches (plotted over partitions), its alerts
    add_daily_metadata(context, breaches_by_day(merged, days))
    add_daily_metadata(context, model_health_by_day(health_by_day, days))
    counts = merged.groupby("metric").size().to_dict() if len(merged) else {}
    yield dg.MaterializeResult(
        metadata={
            "alerts_in_window": len(merged),
            "window": f"{first} .. {last}",
            "by_metric": dg.MetadataValue.json({k: int(v) for k, v in counts.items()}),
            "breaches": dg.MetadataValue.md(
                markdown_table(
                    merged.sort_values(["date", "model_id", "metric"], ascending=[False, True, True]),
                    ["date", "model_id", "metric", "subject", "value", "threshold", "first_detected_on"],
                )
            ),
        }
    )
    # the lookback may reach before the first partition (no data there): the days said start at it
    yield from health_check_results(merged, max(first, daily_partitions.start.date()), last, days[0])


def health_check_results(merged: pd.DataFrame, first, last, run_first=None):
    """Each per-model health check's result on the window's breaches (the rows just written to marts.alerts): those
    of the run's own days (from ``run_first``) or first detected by it warn; older ones an earlier run detected are
    said, not warned again (a trial's daily runs, weeks after its models stopped, each warned of the same breaches
    of May: late labels re-evaluate the window from its first day)."""
    rows = merged[BREACH_COLUMNS].sort_values(["date", "model_id", "metric", "subject"], kind="stable")
    if run_first is not None:
        told = (pd.to_datetime(rows["date"]) < pd.Timestamp(run_first)) & (
            pd.to_datetime(rows["first_detected_on"]) < pd.Timestamp(last)
        )
    else:
        told = pd.Series(False, index=rows.index)
    for name, model_id in HEALTH_CHECKS.items():
        earlier = in_scope(rows[told], model_id, _DECLARED)
        mine = in_scope(rows[~told], model_id, _DECLARED)
        models = sorted(mine["model_id"].unique())
        label = (
            model_id
            if model_id is not None
            else ("undeclared models " + ", ".join(models) if models else "undeclared models")
        )
        verdict = summarise_breaches(mine, label, first, last)
        if len(earlier):
            days = sorted({pd.Timestamp(d).date() for d in earlier["date"]})
            if verdict["passed"]:
                verdict["description"] = f"no new breach for {label}"
            verdict["description"] += (
                f"; {len(earlier)} breach(es) of {days[0]}"
                + (f" .. {days[-1]}" if days[-1] != days[0] else "")
                + " detected by earlier runs, not warned again"
            )
        if model_id is not None:
            mine = mine.drop(columns="model_id")
        yield dg.AssetCheckResult(
            check_name=name,
            passed=verdict["passed"],
            severity=dg.AssetCheckSeverity.WARN,
            description=verdict["description"],
            metadata={
                "breaches": verdict["breaches"],
                "worst_value_by_metric": dg.MetadataValue.json(verdict["worst_value_by_metric"]),
                "breaches_table": dg.MetadataValue.md(markdown_table(mine.tail(20).reset_index(drop=True))),
            },
        )
