"""Retraining starts only from a clean, fair snapshot.

The daily job raises requests (marts.retraining_requests). A sensor turns a
new request into a run of the retraining job: training_candidates (labelled
predictions with features over a window, only if the quality gates of those
days passed) -> blocking bias gate -> training_snapshot (Parquet export).
"""

from datetime import timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from orchestration.defs.bias.checks import verdict_metadata
from orchestration.defs.freshness import PUBLISHED_FRESHNESS
from orchestration.defs.model_health.alerts import ALERTS_KEY
from orchestration.defs.partitions import daily_partitions, run_date_range, single_run
from orchestration.lib.alerts import load_alert_config
from orchestration.lib.bias import bias_verdicts, group_rates, summarise_verdicts
from orchestration.lib.retraining import REQUEST_SCHEMA, retraining_requests
from orchestration.lib.settings import exports_dir
from orchestration.lib.warehouse import replace_date_range

REQUESTS_KEY = dg.AssetKey(["marts", "retraining_requests"])
CANDIDATES_KEY = dg.AssetKey(["retraining", "training_candidates"])
SNAPSHOT_KEY = dg.AssetKey(["retraining", "training_snapshot"])

CANDIDATES_SQL = """
SELECT p.*, l.label, l.label_source, u.gender, u.age_band, u.country, u.gender || '|' || u.age_band AS gender_x_age_band,
       DATE '{day}' AS snapshot_date
FROM staging.stg_predictions p
JOIN (
    SELECT prediction_id, label, label_source FROM staging.stg_labels
    WHERE labeled_at >= DATE '{start}' AND labeled_at < DATE '{day}' + INTERVAL 1 DAY
    QUALIFY row_number() OVER (PARTITION BY prediction_id ORDER BY source_priority DESC, labeled_at DESC) = 1
) l USING (prediction_id)
LEFT JOIN staging.stg_users u USING (user_id)
WHERE p.model_id IN ({models}) AND p.prediction_date BETWEEN DATE '{start}' AND DATE '{day}'
"""
ATTRIBUTES = ("gender", "age_band", "country", "gender_x_age_band")


@dg.asset(
    key=REQUESTS_KEY,
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    group_name="retraining",
    kinds={"python", "duckdb"},
    owners=["team:ml-platform"],
    freshness_policy=PUBLISHED_FRESHNESS,
    deps=[ALERTS_KEY, dg.AssetKey(["marts", "model_health_daily"])],
    description="One row per retraining request: model, reason, evidence values, planned snapshot path, status.",
)
def retraining_requests_asset(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    config = load_alert_config()
    first, last = run_date_range(context)
    k = int(config.retraining["persist_days"])
    frames = []
    with duckdb.get_connection() as conn:
        alerts = conn.execute("SELECT * FROM marts.alerts WHERE date BETWEEN ? AND ?", [first - timedelta(days=k + 3), last]).df()
        health = conn.execute("SELECT * FROM marts.model_health_daily WHERE date BETWEEN ? AND ?", [first - timedelta(days=k), last]).df()
        day = first
        while day <= last:  # judged as each day would have judged it
            known = alerts[pd.to_datetime(alerts["first_detected_on"]) <= pd.Timestamp(day)]
            frames.append(retraining_requests(known, health[pd.to_datetime(health["date"]) <= pd.Timestamp(day)],
                                              config.retraining, config.min_labelled, day, str(exports_dir())))
            day += timedelta(days=1)
        requests = pd.concat(frames, ignore_index=True)
        replace_date_range(conn, "marts.retraining_requests", REQUEST_SCHEMA, requests, "date", first, last)
    latest = requests[pd.to_datetime(requests["date"]) == pd.Timestamp(last)]
    return dg.MaterializeResult(
        metadata={
            "requests_in_run": len(requests),
            # read by the retraining sensor (it never opens the warehouse: one writer)
            "requested_models": dg.MetadataValue.json(sorted(latest["model_id"])),
            "reasons": dg.MetadataValue.json(dict(zip(latest["model_id"], latest["reason"]))),
        }
    )


def _requested_models(conn, day) -> list[str]:
    rows = conn.execute("SELECT DISTINCT model_id FROM marts.retraining_requests WHERE date = ?", [day]).fetchall()
    return sorted(r[0] for r in rows)


@dg.asset(
    key=CANDIDATES_KEY,
    partitions_def=daily_partitions,
    group_name="retraining",
    kinds={"duckdb"},
    owners=["team:ml-platform"],
    deps=[REQUESTS_KEY, dg.AssetKey(["raw", "predictions"]), dg.AssetKey(["raw", "labels"])],
    description=(
        "Labelled predictions with features and protected attributes over the training window of each model with "
        "a retraining request that day; refuses to build from days whose quality gates failed."
    ),
)
def training_candidates_asset(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    _, day = run_date_range(context)
    start = day - timedelta(days=int(load_alert_config().retraining["training_window_days"]) - 1)
    with duckdb.get_connection() as conn:
        models = _requested_models(conn, day)
        failed = conn.execute(
            "SELECT date, suite FROM quality.gate_results WHERE NOT passed AND table_name IN ('predictions', 'labels') "
            "AND date BETWEEN ? AND ? ORDER BY date", [start, day]).fetchall()
        if failed:
            raise dg.Failure(description=f"training window {start} .. {day} contains days that failed quality gates: {failed}")
        conn.execute("CREATE SCHEMA IF NOT EXISTS retraining")
        listed = ", ".join(f"'{m}'" for m in models) or "NULL"
        conn.execute(f"CREATE OR REPLACE TABLE retraining.training_candidates AS {CANDIDATES_SQL.format(day=day, start=start, models=listed)}")
        counts = dict(conn.execute("SELECT model_id, count(*) FROM retraining.training_candidates GROUP BY 1").fetchall())
    return dg.MaterializeResult(metadata={"models": dg.MetadataValue.json(models), "rows_by_model": dg.MetadataValue.json(counts),
                                          "window": f"{start} .. {day}"})


def candidate_group_counts(conn) -> pd.DataFrame:
    """marts.bias_daily-shaped counts over the candidates, so the same verdict code judges them."""
    parts = []
    for attribute in ATTRIBUTES:
        parts.append(f"""
            SELECT snapshot_date AS date, model_id, '{attribute}' AS attribute, coalesce({attribute}, 'unknown') AS group_value,
                count(*) AS predictions, count_if(decision) AS positives, count(*) AS labelled,
                count_if(label = 1) AS labelled_positives, count_if(decision AND label = 1) AS true_positives,
                count_if(decision AND label = 0) AS false_positives, count_if(NOT decision AND label = 1) AS false_negatives,
                count_if(NOT decision AND label = 0) AS true_negatives, sum(score) AS score_sum, count_if(label = 1) AS label_sum,
                0 AS population_users, 1 AS population_total
            FROM retraining.training_candidates GROUP BY ALL""")
    return conn.execute(" UNION ALL ".join(parts)).df()


@dg.asset_check(
    asset=CANDIDATES_KEY,
    name="training_bias_suite",
    blocking=True,
    partitions_def=daily_partitions,
    description="Fairness verdicts on the training candidates: an unfair snapshot is never exported (blocking).",
)
def training_bias_check(context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as conn:
        counts = candidate_group_counts(conn)
    thresholds = load_alert_config().bias
    verdicts = bias_verdicts(group_rates(counts), thresholds)
    passed = bool(verdicts["passed"].all()) if len(verdicts) else True
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description="fair: snapshot may be exported" if passed else f"retraining blocked: {summarise_verdicts(verdicts, thresholds)}",
        metadata=verdict_metadata(verdicts),
    )


@dg.asset(
    key=SNAPSHOT_KEY,
    partitions_def=daily_partitions,
    group_name="retraining",
    kinds={"parquet"},
    owners=["team:ml-platform"],
    deps=[CANDIDATES_KEY],
    description="The training snapshot of each requested model as Parquet under data/exports/training/.",
)
def training_snapshot_asset(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    _, day = run_date_range(context)
    written = {}
    with duckdb.get_connection() as conn:
        for model_id, path in conn.execute(
            "SELECT model_id, snapshot_path FROM marts.retraining_requests WHERE date = ?", [day]).fetchall():
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            conn.execute(f"COPY (SELECT * FROM retraining.training_candidates WHERE model_id = ?) TO '{target}' (FORMAT parquet)", [model_id])
            conn.execute("UPDATE marts.retraining_requests SET status = 'snapshot_ready' WHERE date = ? AND model_id = ?", [day, model_id])
            written[model_id] = str(target)
    return dg.MaterializeResult(metadata={"snapshots": dg.MetadataValue.json(written)})


retraining_job = dg.define_asset_job(
    "retraining",
    selection=dg.AssetSelection.assets(CANDIDATES_KEY, SNAPSHOT_KEY),
    description="Build a fair, clean training snapshot for the models with a retraining request.",
)


@dg.asset_sensor(asset_key=REQUESTS_KEY, job=retraining_job, default_status=dg.DefaultSensorStatus.RUNNING)
def retraining_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    """A new day with requested models starts a retraining run for that day."""
    materialization = asset_event.asset_materialization
    models = materialization.metadata.get("requested_models")
    if materialization.partition and models and models.value:
        yield dg.RunRequest(run_key=f"{materialization.partition}:{','.join(models.value)}", partition_key=materialization.partition)
