"""(a) Monitoring only, a protected attribute outside the defaults, labels months late: Rossi recidivism data.

432 released prisoners (lifelines' rossi.csv), releases spread over 30 days, a logistic-regression risk score
(scikit-learn), flagged = score >= 0.3 = HARMFUL, arrest known at the arrest or after 52 weeks. Only
`impact-ledger init` + `impact-ledger materialize`; every number is checked against scikit-learn / fairlearn
on the raw files.
"""

import math
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
from sklearn.metrics import precision_score, recall_score
from statsmodels.stats.proportion import proportion_confint

from tests.acceptance.datasets import ROSSI_MODEL
from tests.e2e.oracles import psi_numeric

pytestmark = [pytest.mark.slow, pytest.mark.acceptance]


def _groups(value) -> list[str]:
    """A stored list of groups: a list/array, or text 'a, b' (empty: none)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        return [g.strip() for g in value.strip("[]").replace('"', "").split(",") if g.strip()]
    return [str(g) for g in value]


@pytest.fixture(scope="module")
def raw(rossi_run):
    t = rossi_run.tables
    frame = t["predictions"].merge(t["labels"], on="prediction_id").merge(t["users"][["user_id", "race"]], on="user_id")
    frame["flagged"] = (frame["score"] >= frame["threshold"]).astype(int)
    frame["day"] = frame["predicted_at"].dt.date
    return frame


def test_init_infers_the_model_the_late_labels_and_race(rossi_run, raw):
    cfg = rossi_run.init_config
    spec = cfg["models"][ROSSI_MODEL]
    assert list(cfg["models"]) == [ROSSI_MODEL]
    assert spec["experiment"] is False  # no experiments table: monitoring only
    assert spec["positive_decision"] == "favourable"  # left for review; the test edits it as the README says
    assert spec["threshold"] == 0.3
    delay = (raw["labeled_at"] - raw["predicted_at"]).dt.total_seconds() / 86400
    assert spec["label_horizon_days"] == math.ceil(np.quantile(delay, 0.99))  # p99, rounded up: about a year
    assert spec["label_horizon_days"] >= 364
    assert cfg["protected_attributes"] == ["race"]  # a protected name; fin/mar/... only listed as candidates
    assert str(cfg["partitions"]["start"]) == str(raw["predicted_at"].min().date())
    assert "positive_decision" in rossi_run.init_output and "race" in rossi_run.init_output


def test_materialize_succeeds(rossi_run):
    rossi_run.require_success()


def test_precision_recall_per_prediction_day_match_sklearn(rossi_run, raw):
    rossi_run.require_success()
    health = rossi_run.query("SELECT * FROM marts.model_health_daily WHERE model_id = ? ORDER BY date", [ROSSI_MODEL])
    health["day"] = pd.to_datetime(health["date"]).dt.date
    assert sorted(health["day"]) == sorted(raw["day"].unique()), "one row per prediction day"
    for day, g in raw.groupby("day"):
        row = health[health["day"] == day].iloc[0]
        assert row["predictions"] == len(g)
        assert row["labelled"] == len(g), f"{day}: labels that arrived months later are not counted"
        expected_p = precision_score(g["label"], g["flagged"], zero_division=np.nan)
        expected_r = recall_score(g["label"], g["flagged"], zero_division=np.nan)
        assert row["precision"] == pytest.approx(expected_p, abs=1e-12, nan_ok=True), day
        assert row["recall"] == pytest.approx(expected_r, abs=1e-12, nan_ok=True), day
    # over all days: the confusion cells add up to sklearn's on the whole cohort
    tp, fp, fn = (health[c].sum() for c in ("true_positives", "false_positives", "false_negatives"))
    assert tp / (tp + fp) == pytest.approx(precision_score(raw["label"], raw["flagged"]), abs=1e-12)
    assert tp / (tp + fn) == pytest.approx(recall_score(raw["label"], raw["flagged"]), abs=1e-12)


def test_race_is_assessed_and_group_rates_match_fairlearn(rossi_run, raw):
    rossi_run.require_success()
    rows = rossi_run.query("SELECT * FROM marts.bias_daily WHERE model_id = ?", [ROSSI_MODEL])
    assert set(rows["attribute"]) == {"race"}, "the declared attribute, and no demo attribute (gender/age/country)"
    sums = rows.groupby("group_value")[
        ["predictions", "positives", "true_positives", "false_positives", "false_negatives", "true_negatives"]
    ].sum()
    frame = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
            "precision": precision_score,
        },
        y_true=raw["label"],
        y_pred=raw["flagged"],
        sensitive_features=raw["race"],
    ).by_group
    assert sorted(sums.index) == sorted(frame.index)
    for group, expected in frame.iterrows():
        s = sums.loc[group]
        assert s["positives"] / s["predictions"] == pytest.approx(expected["selection_rate"], abs=1e-12)
        assert s["true_positives"] / (s["true_positives"] + s["false_negatives"]) == pytest.approx(
            expected["tpr"], abs=1e-12
        )
        assert s["false_positives"] / (s["false_positives"] + s["true_negatives"]) == pytest.approx(
            expected["fpr"], abs=1e-12
        )
        assert s["true_positives"] / (s["true_positives"] + s["false_positives"]) == pytest.approx(
            expected["precision"], abs=1e-12
        )


def test_disadvantaged_group_of_a_harmful_score_is_the_most_flagged(rossi_run, raw):
    rossi_run.require_success()
    rates = raw.groupby("race")["flagged"].mean()
    most_flagged, least_flagged = rates.idxmax(), rates.idxmin()
    verdicts = rossi_run.query(
        "SELECT * FROM marts.bias_verdicts WHERE model_id = ? AND attribute = 'race' ORDER BY date", [ROSSI_MODEL]
    )
    assert len(verdicts), "race was never judged"
    last = verdicts.iloc[-1]  # the window covers every prediction, every label is in
    # being flagged is the harm: the four-fifths ratio is the lower of min/max of (1 - selection rate), the rates
    # of not being flagged, and min/max of the flag rates (a rare flag's disparity)
    favourable = 1 - rates
    ratios = {"not flagged": favourable.min() / favourable.max(), "flagged": rates.min() / rates.max()}
    assert last["disparate_impact_ratio"] == pytest.approx(min(ratios.values()), abs=1e-9)
    # a verdict fails only when the gap is beyond noise: the two groups' Wilson 95% intervals (statsmodels) of
    # the rate the ratio compares lie apart; with 432 people, one group a few dozen, they may not
    counts = raw.groupby("race")["flagged"].agg(["sum", "size"])
    bounds = {g: proportion_confint(k, n, method="wilson") for g, (k, n) in counts.iterrows()}
    apart = bounds[least_flagged][1] < bounds[most_flagged][0]  # the same for the rates of not being flagged
    assert bool(last["passes_disparate_impact"]) is not (last["disparate_impact_ratio"] < 0.9 and apart)
    if last["passes_disparate_impact"]:
        assert last["disparate_impact_ratio"] >= 0.9 or "disparate impact beyond its limit within noise" in last["note"]
    else:
        assert _groups(last["flagged_groups_disparate_impact"]) == [most_flagged]
    named = {
        g
        for _, v in verdicts.iterrows()
        for g in _groups(v["flagged_groups_disparate_impact"]) + _groups(v["flagged_groups_equal_opportunity"])
    }
    assert least_flagged not in named, f"{least_flagged} (the least flagged) named as disadvantaged"


def test_csv_features_of_numbers_drift_as_numbers_and_few_a_day_raise_no_psi_alert(rossi_run, raw):
    # the predictions are CSV: their features were text, so each age was a category and PSI ~12 alerted daily
    rossi_run.require_success()
    types = dict(rossi_run.query("SELECT column_name, column_type FROM (DESCRIBE raw.predictions)").to_numpy())
    assert types["feature_age"] == "DOUBLE" and types["feature_prio"] == "DOUBLE"
    drift = rossi_run.query(
        "SELECT * FROM marts.feature_drift_daily WHERE model_id = ? AND psi IS NOT NULL", [ROSSI_MODEL]
    )
    assert set(drift["feature"]) == {"score", "feature_age", "feature_prio"} and set(drift["feature_type"]) == {
        "numeric"
    }
    # vs the version's first prediction days (init's drift_reference: whole weeks holding min_count for a model this
    # small), binned as numpy bins them
    first_days = rossi_run.config["models"][ROSSI_MODEL]["drift_reference"]["first_days"]
    assert first_days > 7  # ~14 a day: the default week holds ~100
    reference = raw[raw["day"] < raw["day"].min() + timedelta(days=first_days)]
    for row in drift.itertuples():
        current = raw[raw["day"] == pd.Timestamp(row.date).date()]
        expected = psi_numeric(reference[row.feature].to_numpy(float), current[row.feature].to_numpy(float))
        assert row.psi == pytest.approx(expected, rel=1e-9, abs=1e-12), (row.date, row.feature)
    # ~14 predictions a day: sampling noise alone crosses 0.2 on a day, which is judged only on its 21 days pooled
    # (init's pool_days: whole weeks holding alerts.rules.psi.min_count); the cohort's days are one population
    assert (drift["psi"] > 0.2).any()
    assert rossi_run.query("SELECT count(*) AS n FROM marts.alerts WHERE metric = 'psi'")["n"].iloc[0] == 0
