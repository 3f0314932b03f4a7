"""(c) Two models on one population, label times with a UTC offset, predictions as daily Parquet: Fair's data.

6,366 survey respondents (statsmodels' fair.csv), each scored on one of 45 days by a logistic regression and a
depth-4 tree (scikit-learn), flagged = score >= 0.5 = HARMFUL; the outcome arrives one to seven months later,
written as local time with +02:00, and a tenth never arrives. Only `impact-ledger init` + `impact-ledger
materialize`; the numbers are checked against scikit-learn on the raw files.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import precision_score, recall_score

from tests.acceptance.datasets import FAIR_DAYS, FAIR_MODELS

pytestmark = [pytest.mark.slow, pytest.mark.acceptance]


def test_init_finds_both_models_their_late_labels_and_the_age_bands(fair_run):
    spec = fair_run.init_config
    assert set(spec["models"]) == set(FAIR_MODELS)
    rows = fair_run.tables["predictions"].merge(fair_run.tables["labels"], on="prediction_id")
    rows["delay"] = (rows["labelled_at_utc"] - rows["predicted_at"]).dt.total_seconds() / 86400
    for model, delay in rows.groupby("model_id")["delay"]:
        # p99 of the delay, rounded up
        assert spec["models"][model]["label_horizon_days"] == int(np.ceil(np.quantile(delay, 0.99))), model
        assert spec["models"][model]["positive_decision"] == "favourable"  # left for review; the fixture edits it
    assert spec["protected_attributes"] == ["age_band"]  # a protected name; religious only listed as a candidate


def test_materialize_succeeds(fair_run):
    fair_run.require_success()


def test_precision_recall_and_label_delay_per_model_and_day_match_the_labels_within_the_horizon(fair_run):
    t = fair_run.tables
    horizon = {m: fair_run.config["models"][m]["label_horizon_days"] for m in FAIR_MODELS}
    rows = t["predictions"].merge(t["labels"], on="prediction_id")
    rows["day"] = rows["predicted_at"].dt.normalize()
    # a label counts for its prediction's day when known by the end of day + the model's label horizon (UTC)
    known = rows["labelled_at_utc"] < rows["day"] + pd.to_timedelta(rows["model_id"].map(horizon) + 1, unit="D")
    assert 0 < (~known).sum() < 0.05 * len(rows)  # the horizon leaves out the latest labels only
    health = fair_run.query("SELECT * FROM marts.model_health_daily")
    assert set(health["model_id"]) == set(FAIR_MODELS) and health["date"].nunique() >= FAIR_DAYS
    compared = 0
    for (day, model), g in rows[known].groupby(["day", "model_id"]):
        row = health[(health["date"] == day) & (health["model_id"] == model)]
        assert len(row) == 1, (day, model)
        flagged = (g["score"] >= 0.5).astype(int)
        assert row["labelled"].iloc[0] == len(g), (day, model)
        assert row["precision"].iloc[0] == pytest.approx(precision_score(g["label"], flagged)), (day, model)
        assert row["recall"].iloc[0] == pytest.approx(recall_score(g["label"], flagged)), (day, model)
        # the +02:00 label times read as the instants they are (read as UTC, every delay would be 2 h longer)
        hours = (g["labelled_at_utc"] - g["predicted_at"]).dt.total_seconds() / 3600
        assert row["median_label_delay_hours"].iloc[0] == pytest.approx(hours.median()), (day, model)
        compared += 1
    assert compared == 2 * FAIR_DAYS
    # every prediction counted on its day, a tenth of them never labelled
    volume = health.groupby("model_id")["predictions"].sum()
    assert volume.to_dict() == t["predictions"].groupby("model_id").size().to_dict()
