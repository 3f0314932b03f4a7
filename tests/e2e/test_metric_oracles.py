"""Every mart metric against an independent computation on the raw Parquet files."""

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, precision_recall_fscore_support

from tests.e2e.oracles import clean_predictions, ece, end_of, psi_categorical, psi_numeric, read, resolved_labels

pytestmark = pytest.mark.slow
EXACT = dict(rel=1e-9, abs=1e-12)


@pytest.fixture
def materialized(latest):
    return latest


def test_classification_metrics_match_sklearn(materialized):
    p = materialized
    preds = clean_predictions(p.source).join(resolved_labels(p.source, p.last), on="prediction_id")
    health = p.query("SELECT * FROM marts.model_health_daily WHERE date >= ?", [p.last - timedelta(days=10)])
    assert len(health) > 10
    for _, row in health.iterrows():
        day = preds[(preds["model_id"] == row["model_id"]) & (preds["date"] == pd.Timestamp(row["date"]))]
        labelled = day[day["label"].notna()]
        assert row["predictions"] == len(day)
        assert row["labelled"] == len(labelled)
        assert row["label_coverage"] == pytest.approx(len(labelled) / len(day), **EXACT)
        y, s, d = labelled["label"].astype(int).to_numpy(), labelled["score"].to_numpy(), labelled["decision"].to_numpy()
        precision, recall, f1, _ = precision_recall_fscore_support(y, d.astype(int), average="binary", zero_division=np.nan)
        for ours, oracle in ((row["precision"], precision), (row["recall"], recall), (row["f1"], f1)):
            assert (pd.isna(ours) and np.isnan(oracle)) or ours == pytest.approx(oracle, **EXACT)
        assert row["brier_score"] == pytest.approx(brier_score_loss(y, s), **EXACT)
        assert row["expected_calibration_error"] == pytest.approx(ece(y.astype(float), s), **EXACT)
        # quantile_cont is numpy's default linear interpolation
        assert row["p50_score"] == pytest.approx(np.quantile(day["score"], 0.5, method="linear"), **EXACT)
        assert row["p90_score"] == pytest.approx(np.quantile(day["score"], 0.9, method="linear"), **EXACT)
        assert row["positive_rate"] == pytest.approx(day["decision"].mean(), **EXACT)
        delay_h = (labelled["first_labeled_at"] - labelled["predicted_at"]).dt.total_seconds() / 3600
        assert row["median_label_delay_hours"] == pytest.approx(delay_h.median(), rel=1e-9)
        human = labelled[labelled["label_source"] == "human_review"]
        assert row["human_labelled"] == len(human)


def test_psi_and_null_rate_match_numpy(materialized):
    p = materialized
    preds = clean_predictions(p.source)
    drift = p.query("SELECT * FROM marts.feature_drift_daily WHERE date >= ? AND psi IS NOT NULL", [p.last - timedelta(days=3)])
    assert set(drift["feature"]) == {"score", "feature_recency", "feature_basket_value", "feature_tenure_days", "feature_device"}
    for _, row in drift.iterrows():
        model = preds[preds["model_id"] == row["model_id"]]
        first_day = model["date"].min()
        reference = model[model["date"] <= first_day + pd.Timedelta(days=6)]
        current = model[model["date"] == pd.Timestamp(row["date"])]
        if row["feature_type"] == "numeric":
            oracle = psi_numeric(reference[row["feature"]].to_numpy(float), current[row["feature"]].to_numpy(float))
        else:
            oracle = psi_categorical(reference[row["feature"]], current[row["feature"]])
        assert row["psi"] == pytest.approx(oracle, rel=1e-9, abs=1e-12), row.to_dict()
        assert row["null_rate"] == pytest.approx(current[row["feature"]].isna().mean(), **EXACT)


def test_kpis_match_pandas(materialized):
    p = materialized
    sessions = read(p.source, "sessions")
    orders = read(p.source, "orders").drop_duplicates("order_id")
    known = orders[orders["ordered_at"] < end_of(p.last)]
    converting = set(known.loc[known["status"] == "completed", "session_id"])
    kpi = p.query("SELECT * FROM marts.kpi_daily WHERE date >= ?", [p.last - timedelta(days=1)])
    assert len(kpi) == 2
    for _, row in kpi.iterrows():
        day = pd.Timestamp(row["date"])
        s = sessions[sessions["started_at"].dt.normalize() == day]
        o = orders[orders["ordered_at"].dt.normalize() == day]
        completed = o[o["status"] == "completed"]
        assert row["sessions"] == len(s) and row["active_users"] == s["user_id"].nunique()
        assert row["orders"] == len(completed)
        assert row["revenue"] == pytest.approx(completed["revenue"].sum(), rel=1e-12)
        assert row["conversion_rate"] == pytest.approx(s["session_id"].isin(converting).mean(), **EXACT)
        assert row["average_order_value"] == pytest.approx(completed["revenue"].mean(), rel=1e-12)
        refunded = (o["status"] == "refunded").sum()
        assert row["refund_rate"] == pytest.approx(refunded / (len(completed) + refunded), **EXACT)
    by_segment = p.query("SELECT date, sum(sessions) AS sessions, sum(revenue) AS revenue FROM marts.kpi_daily_by_segment "
                         "WHERE date >= ? GROUP BY date ORDER BY date", [p.last - timedelta(days=1)])
    assert by_segment["sessions"].tolist() == kpi.sort_values("date")["sessions"].tolist()


def test_retention_matches_pandas_and_only_matured_cohorts_appear(materialized):
    p = materialized
    users = read(p.source, "users")
    sessions = read(p.source, "sessions")
    active = set(zip(sessions["user_id"], sessions["started_at"].dt.normalize()))
    cohorts = p.query("SELECT * FROM marts.retention_cohorts WHERE cohort_type = 'signup'")
    assert (cohorts["matured_date"] <= pd.Timestamp(p.last)).all()
    assert (cohorts["matured_date"] == cohorts["cohort_date"] + pd.to_timedelta(cohorts["horizon_days"], unit="D")).all()
    assert set(cohorts["horizon_days"]) == {1, 7, 28}
    recent = cohorts[cohorts["matured_date"] >= pd.Timestamp(p.last - timedelta(days=1))]
    for _, row in recent.iterrows():
        members = users[users["signup_at"].dt.normalize() == pd.Timestamp(row["cohort_date"])]["user_id"]
        retained = sum((u, pd.Timestamp(row["matured_date"])) in active for u in members)
        assert (row["cohort_users"], row["retained_users"]) == (len(members), retained)
    # a D28 cohort of the last week has not matured: it must not exist
    assert cohorts[(cohorts["horizon_days"] == 28) & (cohorts["cohort_date"] > pd.Timestamp(p.last - timedelta(days=28)))].empty
