"""Model-health alert rules: thresholds from expectations/alert_thresholds.yml, applied to mart rows.

Rules run over a few rows per model and day (the marts did the heavy lifting),
so this is plain pandas. Each breach is one row: date, model, metric, subject
(the feature for PSI), value, threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from orchestration.lib.settings import EXPECTATIONS_DIR

ALERT_COLUMNS = ["date", "model_id", "model_version", "metric", "subject", "value", "threshold", "rule"]
KNOWN_RULES = {"psi", "expected_calibration_error", "precision_drop", "label_coverage", "volume_change"}


@dataclass(frozen=True)
class AlertConfig:
    models: list[str]
    min_labelled: int
    rules: dict[str, dict]
    overrides: dict[str, dict[str, dict]] = field(default_factory=dict)
    bias: dict = field(default_factory=dict)
    retraining: dict = field(default_factory=dict)

    def rule(self, name: str, model_id: str) -> dict:
        return {**self.rules[name], **self.overrides.get(model_id, {}).get(name, {})}

    @property
    def lookback_days(self) -> int:
        """How many days before a run's range its rules need mart rows for."""
        return max(self.rules["label_coverage"]["after_days"], self.rules["volume_change"]["trailing_days"])


def load_alert_config(path: Path = EXPECTATIONS_DIR / "alert_thresholds.yml") -> AlertConfig:
    raw = yaml.safe_load(Path(path).read_text())
    unknown = set(raw.get("rules", {})) - KNOWN_RULES
    missing = KNOWN_RULES - set(raw.get("rules", {}))
    if unknown or missing:
        raise ValueError(f"{path}: unknown rules {sorted(unknown)}; missing rules {sorted(missing)} (known: {sorted(KNOWN_RULES)})")
    return AlertConfig(
        models=list(raw.get("models", [])),
        min_labelled=int(raw.get("min_labelled", 0)),
        rules=raw["rules"],
        overrides=raw.get("overrides") or {},
        bias=raw.get("bias") or {},
        retraining=raw.get("retraining") or {},
    )


def _breaches(frame: pd.DataFrame, metric: str, values: pd.Series, threshold: float, rule: str, subject=None) -> pd.DataFrame:
    out = frame.loc[values.index, ["date", "model_id", "model_version"]].copy()
    out["metric"] = metric
    out["subject"] = subject if subject is not None else ""
    out["value"] = values.astype(float)
    out["threshold"] = float(threshold)
    out["rule"] = rule
    return out


def evaluate_alerts(health: pd.DataFrame, drift: pd.DataFrame, reference_precision: pd.DataFrame,
                    versions: pd.DataFrame, config: AlertConfig, first: object, last: object) -> pd.DataFrame:
    """Breaches among rows dated ``first``..``last``.

    ``health``: marts.model_health_daily rows from ``first - config.lookback_days`` on
    (the volume rule compares with trailing days); ``drift``: marts.feature_drift_daily
    rows; ``reference_precision``: model_id, model_version, reference_precision
    (precision over the version's reference window); ``versions``: model_id,
    model_version, first_date (intermediate.int_model_versions: when a model's life began).
    """
    first, last = pd.Timestamp(first), pd.Timestamp(last)
    found = []
    health = health.sort_values(["model_id", "model_version", "date"])
    in_range = health[(health["date"] >= first) & (health["date"] <= last)]
    for model_id, rows in in_range.groupby("model_id"):
        labelled = rows["labelled"] >= config.min_labelled
        ece = config.rule("expected_calibration_error", model_id)
        hit = rows["expected_calibration_error"][labelled & (rows["expected_calibration_error"] > ece["above"])]
        found.append(_breaches(rows, "expected_calibration_error", hit, ece["above"], f"> {ece['above']}"))

        drop = config.rule("precision_drop", model_id)
        ref = rows.merge(reference_precision, on=["model_id", "model_version"], how="left")
        ref.index = rows.index
        relative_drop = 1 - ref["precision"] / ref["reference_precision"]
        hit = relative_drop[labelled & (relative_drop > drop["above"])]
        found.append(_breaches(rows, "precision_drop", hit, drop["above"], f"> {drop['above']} below reference precision"))

    for model_id, rows in health.groupby("model_id"):
        coverage = config.rule("label_coverage", model_id)
        # a day's coverage is judged only once `after_days` of labels have had time to arrive
        after = pd.Timedelta(days=coverage["after_days"])
        mature = rows[(rows["date"] >= first) & (rows["date"] <= last) & (rows["labels_as_of"] >= rows["date"] + after)]
        hit = mature["label_coverage"][mature["label_coverage"] < coverage["below"]]
        found.append(_breaches(mature, "label_coverage", hit, coverage["below"], f"< {coverage['below']} after {coverage['after_days']} days"))

    for model_id in sorted(set(health["model_id"]) | set(versions["model_id"])):
        found.append(_volume_breaches(health[health["model_id"] == model_id], model_id, _model_start(versions, model_id),
                                      config, first, last))

    drift = drift[(drift["date"] >= first) & (drift["date"] <= last) & drift["psi"].notna()]
    for (model_id, feature), rows in drift.groupby(["model_id", "feature"]):
        psi = config.rule("psi", model_id)
        hit = rows["psi"][rows["psi"] > psi["above"]]
        found.append(_breaches(rows, "psi", hit, psi["above"], f"> {psi['above']}", subject=feature))

    found = [f for f in found if len(f)]
    if not found:
        return pd.DataFrame(columns=ALERT_COLUMNS)
    out = pd.concat(found, ignore_index=True)[ALERT_COLUMNS]
    out["value"] = out["value"].replace([np.inf, -np.inf], np.nan)
    return out.sort_values(["date", "model_id", "metric", "subject"]).reset_index(drop=True)


def _model_start(versions: pd.DataFrame, model_id: str) -> pd.Timestamp:
    starts = versions.loc[versions["model_id"] == model_id, "first_date"]
    if starts.empty:
        raise ValueError(f"model {model_id!r} has health rows but no first_date in the model versions "
                         "(intermediate.int_model_versions): cannot tell an outage from a model not yet live")
    return pd.Timestamp(starts.min())


def daily_volume(rows: pd.DataFrame, model_start: pd.Timestamp, start: pd.Timestamp, last: pd.Timestamp) -> pd.DataFrame:
    """One model's predictions per calendar day from ``max(model_start, start)`` to ``last``.

    A day without a health row had no predictions (an outage), so it counts as 0
    rather than vanishing: the trailing median then runs over calendar days and an
    outage day is itself a breach. A day's version is the one serving most of its
    predictions; a day without any keeps the version served before it.
    """
    days = pd.date_range(max(model_start, start), last, freq="D", name="date")
    rows = rows[(rows["date"] >= days[0]) & (rows["date"] <= last)] if len(days) else rows.iloc[:0]
    per_version = rows.groupby(["date", "model_version"], as_index=False)["predictions"].sum()
    served = per_version.sort_values(["date", "predictions", "model_version"]).groupby("date").tail(1).set_index("date")["model_version"]
    out = pd.DataFrame(index=days)
    out["predictions"] = per_version.groupby("date")["predictions"].sum().reindex(days, fill_value=0).astype(float)
    out["model_version"] = served.reindex(days).ffill().bfill()
    return out.reset_index()


def _volume_breaches(rows: pd.DataFrame, model_id: str, model_start: pd.Timestamp, config: AlertConfig,
                     first: pd.Timestamp, last: pd.Timestamp) -> pd.DataFrame:
    """Days whose prediction volume is outside ±outside of the trailing calendar-day median (value: relative change)."""
    volume = config.rule("volume_change", model_id)
    trailing_days = int(volume["trailing_days"])
    # the rows start `lookback_days` before `first` (evaluate_alerts' contract): a fixed
    # start, so a daily run and a backfill judge a day from the same calendar days
    series = daily_volume(rows, model_start, first - pd.Timedelta(days=config.lookback_days), last)
    if series.empty:
        return series
    trailing = series["predictions"].shift(1).rolling(trailing_days, min_periods=trailing_days).median()
    with np.errstate(divide="ignore", invalid="ignore"):
        change = series["predictions"] / trailing - 1
    hit = (series["date"] >= first) & (change.abs() > volume["outside"])
    out = series[hit].assign(model_id=model_id)
    return _breaches(out, "volume_change", change[hit], volume["outside"],
                     f"outside ±{volume['outside']} of trailing {trailing_days}-day median")


# how far past its threshold a breach is, per metric: coverage breaches are low
# values, volume breaches are large changes either way, the rest are high values
_SEVERITY = {"label_coverage": lambda v: -v, "volume_change": lambda v: v.abs()}


def summarise_breaches(rows: pd.DataFrame, model_id: str, first: object, last: object) -> dict:
    """The model-health check's verdict on one model's marts.alerts rows of a window.

    passed (no breach), a one-line description, the breach count and the worst
    value of each metric (the one furthest past its threshold).
    """
    worst = {}
    for metric, values in rows.groupby("metric")["value"]:
        values = values.dropna()
        if len(values):
            worst[metric] = round(float(values.loc[_SEVERITY.get(metric, lambda v: v)(values).idxmax()]), 4)
    return {
        "passed": rows.empty,
        "description": f"{len(rows)} breach(es) for {model_id} between {first} and {last}" if len(rows) else "healthy",
        "breaches": len(rows),
        "worst_value_by_metric": worst,
    }
