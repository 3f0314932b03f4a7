"""When does a model need retraining? Rules over alert and health rows (pure pandas)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pandas as pd

REQUEST_SCHEMA = {
    "date": "DATE", "model_id": "VARCHAR", "reason": "VARCHAR", "evidence": "VARCHAR",
    "snapshot_path": "VARCHAR", "status": "VARCHAR",
}
DRIFT_METRICS = ("psi", "expected_calibration_error")


def snapshot_path(exports: str, model_id: str, day: date) -> str:
    return f"{exports}/training/model={model_id}/date={day.isoformat()}/snapshot.parquet"


def retraining_requests(alerts: pd.DataFrame, health: pd.DataFrame, rules: dict, min_labelled: int,
                        day: date, exports: str) -> pd.DataFrame:
    """Requests raised on ``day``.

    A model is due when drift or calibration alerts cover ``persist_days``
    consecutive days ending no more than two days before ``day`` (calibration
    needs a day or two of labels), or when a day with at least ``min_labelled``
    labels in the last ``persist_days`` days had precision below ``min_precision``.
    """
    k, floor = int(rules["persist_days"]), float(rules["min_precision"])
    rows = []
    for model_id in sorted(set(alerts.get("model_id", [])) | set(health.get("model_id", []))):
        reasons, evidence = [], {}
        drift = alerts[(alerts["model_id"] == model_id) & alerts["metric"].isin(DRIFT_METRICS)]
        alert_days = {pd.Timestamp(d).date() for d in drift["date"]}
        for end in (day - timedelta(days=lag) for lag in range(3)):
            if all(end - timedelta(days=i) in alert_days for i in range(k)):
                reasons.append(f"drift/calibration alerts on {k} consecutive days up to {end}")
                recent = drift[pd.to_datetime(drift["date"]) > pd.Timestamp(end - timedelta(days=k))]
                evidence["worst"] = recent.groupby("metric")["value"].max().round(4).to_dict()
                break
        recent_health = health[(health["model_id"] == model_id) & (health["labelled"] >= min_labelled)
                               & (pd.to_datetime(health["date"]) > pd.Timestamp(day - timedelta(days=k)))]
        low = recent_health[recent_health["precision"] < floor]
        if len(low):
            reasons.append(f"precision below {floor}")
            evidence["precision"] = {str(pd.Timestamp(d).date()): round(float(p), 4) for d, p in zip(low["date"], low["precision"])}
        if reasons:
            rows.append({"date": day, "model_id": model_id, "reason": "; ".join(reasons),
                         "evidence": json.dumps(evidence, sort_keys=True), "snapshot_path": snapshot_path(exports, model_id, day),
                         "status": "requested"})
    return pd.DataFrame(rows, columns=list(REQUEST_SCHEMA))
