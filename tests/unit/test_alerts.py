"""Alert rules on hand-made mart rows: each rule just over and just under its threshold, values checked by hand."""

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from orchestration.lib.alerts import AlertConfig, daily_volume, evaluate_alerts, load_alert_config, summarise_breaches

D0 = date(2026, 3, 1)
RULES = {
    "psi": {"above": 0.2},
    "expected_calibration_error": {"above": 0.08},
    "precision_drop": {"above": 0.2},
    "label_coverage": {"below": 0.5, "after_days": 7},
    "volume_change": {"outside": 0.5, "trailing_days": 7},
}


def config(**overrides) -> AlertConfig:
    return AlertConfig(models=["m"], min_labelled=100, rules=RULES, overrides=overrides)


def day(i: int) -> pd.Timestamp:
    return pd.Timestamp(D0 + timedelta(days=i))


def health(*rows: dict, model_id: str = "m") -> pd.DataFrame:
    """One healthy row per dict (keys override the defaults; `day` is the day index)."""
    out = []
    for row in rows:
        i = row.pop("day")
        out.append({"date": day(i), "model_id": model_id, "model_version": "v1", "predictions": 1000, "labelled": 500,
                    "expected_calibration_error": 0.05, "precision": 0.5, "label_coverage": 0.9,
                    "labels_as_of": day(i + 10), **row})
    return pd.DataFrame(out)


NO_DRIFT = pd.DataFrame(columns=["date", "model_id", "model_version", "feature", "psi"])
REFERENCE = pd.DataFrame({"model_id": ["m"], "model_version": ["v1"], "reference_precision": [0.5]})
VERSIONS = pd.DataFrame({"model_id": ["m"], "model_version": ["v1"], "first_date": [day(0)]})


def alerts(rows: pd.DataFrame, first: int, last: int, cfg: AlertConfig | None = None, drift=NO_DRIFT,
           versions=VERSIONS) -> pd.DataFrame:
    return evaluate_alerts(rows, drift, REFERENCE, versions, cfg or config(), day(first), day(last))


def by_metric(found: pd.DataFrame, metric: str) -> list[tuple]:
    rows = found[found["metric"] == metric]
    return [(r.date, r.subject, round(r.value, 12), r.threshold) for r in rows.itertuples()]


def steady(days: range, **changes) -> pd.DataFrame:
    """A row per day; changes maps a day index to overrides for that day."""
    return health(*({"day": i, **changes.get(f"d{i}", {})} for i in days))


def test_calibration_alert_just_over_the_threshold_and_only_with_enough_labels():
    rows = steady(range(3), d0={"expected_calibration_error": 0.0801}, d1={"expected_calibration_error": 0.0799},
                  d2={"expected_calibration_error": 0.5, "labelled": 99})
    found = alerts(rows, 0, 2)
    assert by_metric(found, "expected_calibration_error") == [(day(0), "", 0.0801, 0.08)]
    assert found.loc[0, "rule"] == "> 0.08" and found.loc[0, "model_version"] == "v1"


def test_precision_drop_is_relative_to_the_reference_precision():
    # reference 0.5: 0.39 is a 22% drop, 0.41 an 18% drop
    found = alerts(steady(range(2), d0={"precision": 0.39}, d1={"precision": 0.41}), 0, 1)
    assert by_metric(found, "precision_drop") == [(day(0), "", round(1 - 0.39 / 0.5, 12), 0.2)]
    assert by_metric(found, "precision_drop")[0][2] == pytest.approx(0.22)


def test_label_coverage_is_judged_only_once_the_day_is_old_enough():
    rows = steady(range(3), d0={"label_coverage": 0.49, "labels_as_of": day(7)},
                  d1={"label_coverage": 0.51, "labels_as_of": day(8)},
                  d2={"label_coverage": 0.1, "labels_as_of": day(8)})  # six days of labels: not judged yet
    assert by_metric(alerts(rows, 0, 2), "label_coverage") == [(day(0), "", 0.49, 0.5)]


def test_psi_alert_names_the_feature():
    drift = pd.DataFrame({"date": [day(0), day(0), day(1), day(1)], "model_id": "m", "model_version": "v1",
                          "feature": ["score", "feature_a", "score", "feature_a"], "psi": [0.2001, 0.2, 0.1999, np.nan]})
    assert by_metric(alerts(steady(range(2)), 0, 1, drift=drift), "psi") == [(day(0), "score", 0.2001, 0.2)]


def test_per_model_override_replaces_the_threshold():
    rows = steady(range(1), d0={"expected_calibration_error": 0.09})
    assert len(by_metric(alerts(rows, 0, 0), "expected_calibration_error")) == 1
    assert not by_metric(alerts(rows, 0, 0, cfg=config(m={"expected_calibration_error": {"above": 0.1}})),
                         "expected_calibration_error")


def test_volume_change_against_the_trailing_seven_day_median():
    # trailing median of days 0..6 is 100 (one 400 outlier does not move a median)
    base = {f"d{i}": {"predictions": 100} for i in range(7)} | {"d3": {"predictions": 400}}
    over = alerts(steady(range(8), **base, d7={"predictions": 151}), 7, 7)
    under = alerts(steady(range(8), **base, d7={"predictions": 149}), 7, 7)
    low = alerts(steady(range(8), **base, d7={"predictions": 49}), 7, 7)
    assert by_metric(over, "volume_change") == [(day(7), "", 0.51, 0.5)]
    assert by_metric(under, "volume_change") == []
    assert by_metric(low, "volume_change") == [(day(7), "", -0.51, 0.5)]


def test_a_day_without_predictions_is_an_outage_alert():
    # day 7 has no health row at all (no predictions): it counts as 0, a -100% change
    rows = steady([i for i in range(10) if i != 7])
    found = alerts(rows, 7, 9)
    assert by_metric(found, "volume_change") == [(day(7), "", -1.0, 0.5)]
    assert found.loc[0, "model_version"] == "v1"


def test_trailing_median_runs_over_calendar_days_not_rows():
    # 1000 a day on days 0..6, nothing on days 7..10, 1000 again on day 11
    rows = steady([i for i in range(12) if not 7 <= i <= 10])
    volume = alerts(rows, 7, 11)
    volume = volume[volume["metric"] == "volume_change"]
    # days 7..10: the trailing calendar week holds at least four 1000s -> median 1000, change -1;
    # day 11: days 4..10 are 1000 x3 and 0 x4 -> median 0, an unbounded jump (value unknown, NaN).
    # Over the last seven *rows* day 11 would look normal and days 7..10 would not exist.
    assert list(volume["date"]) == [day(i) for i in range(7, 12)]
    assert list(volume["value"].iloc[:4]) == [-1.0] * 4 and np.isnan(volume["value"].iloc[4])


def test_days_before_the_model_started_are_not_an_outage():
    rows = steady(range(5, 14))  # the model was born on day 5
    versions = VERSIONS.assign(first_date=[day(5)])
    assert by_metric(alerts(rows, 0, 13, versions=versions), "volume_change") == []
    with pytest.raises(ValueError, match="'m'.*int_model_versions"):
        alerts(rows, 0, 13, versions=VERSIONS.iloc[:0])


def test_daily_volume_fills_missing_days_with_zero_and_keeps_the_serving_version():
    rows = pd.concat([steady([0, 2]), steady([2], d2={"model_version": "v2", "predictions": 3000})])
    volume = daily_volume(rows, day(0), day(-5), day(3))
    assert list(volume["date"]) == [day(i) for i in range(4)]
    assert list(volume["predictions"]) == [1000, 0, 4000, 0]
    assert list(volume["model_version"]) == ["v1", "v1", "v2", "v2"]


def test_one_evaluation_over_a_range_equals_one_per_day():
    """A backfill judges each day from the same calendar days as that day's own daily run."""
    cfg = config()
    rows = steady([i for i in range(24) if i not in (12, 20, 21)], d15={"predictions": 1700}, d23={"predictions": 300})
    whole = alerts(rows[rows["date"] >= day(10 - cfg.lookback_days)], 10, 23, cfg)
    each = [alerts(rows[(rows["date"] >= day(d - cfg.lookback_days)) & (rows["date"] <= day(d))], d, d, cfg) for d in range(10, 24)]
    daily = pd.concat([f for f in each if len(f)], ignore_index=True)
    assert set(whole["metric"]) == {"volume_change"}
    assert list(whole["date"]) == [day(i) for i in (12, 15, 20, 21, 23)]
    pd.testing.assert_frame_equal(whole, daily)


def test_health_check_verdict_reports_the_worst_value_of_each_metric():
    rows = pd.DataFrame({"metric": ["psi", "psi", "volume_change", "volume_change", "label_coverage", "label_coverage"],
                         "value": [0.3, 0.5, 0.6, -1.0, 0.4, 0.1]})
    verdict = summarise_breaches(rows, "m", day(0).date(), day(2).date())
    assert verdict == {"passed": False, "description": "6 breach(es) for m between 2026-03-01 and 2026-03-03", "breaches": 6,
                       "worst_value_by_metric": {"label_coverage": 0.1, "psi": 0.5, "volume_change": -1.0}}
    healthy = summarise_breaches(rows.iloc[:0], "m", day(0).date(), day(2).date())
    assert healthy["passed"] and healthy["description"] == "healthy" and healthy["worst_value_by_metric"] == {}


def test_threshold_file_declares_every_rule(tmp_path):
    cfg = load_alert_config()
    assert set(cfg.rules) == set(RULES) and cfg.lookback_days >= cfg.rules["volume_change"]["trailing_days"]
    bad = tmp_path / "thresholds.yml"
    bad.write_text("rules:\n  psi: {above: 0.2}\n  psy: {above: 0.1}\n")
    with pytest.raises(ValueError, match=r"thresholds.yml: unknown rules \['psy'\]; missing rules .*precision_drop"):
        load_alert_config(bad)
