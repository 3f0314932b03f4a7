"""The synthetic world: deterministic, contract-shaped, and its planted truth is what it says."""

import hashlib
import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from orchestration.lib.contract import CONTRACTS
from orchestration.lib.synthetic_world import PRE_PERIOD_DAYS, WorldConfig, generate_world

CFG = WorldConfig(days=30, users=3000, seed=11, predictions_per_day=400)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    truth = generate_world(out, CFG, progress=None)
    return out, truth


def read(out, table) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in sorted((out / table).glob("*.parquet"))], ignore_index=True)


def digest(folder) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*.parquet")):
        h.update(p.name.encode())
        h.update(pd.read_parquet(p).to_csv().encode())
    return h.hexdigest()


def test_same_seed_same_world(world, tmp_path):
    out, truth = world
    again = generate_world(tmp_path, CFG, progress=None)
    assert digest(out) == digest(tmp_path)
    assert json.dumps(truth, sort_keys=True, default=str) == json.dumps(again, sort_keys=True, default=str)


def test_every_contract_table_has_its_columns(world):
    out, _ = world
    for name, contract in CONTRACTS.items():
        frame = read(out, name)
        missing = [c for c in contract.column_names if c not in frame.columns]
        assert not missing, f"{name} lacks {missing}"
        assert len(frame) > 0


def test_time_based_tables_have_one_file_per_day(world):
    out, _ = world
    files = sorted(p.name for p in (out / "sessions").glob("*.parquet"))
    assert len(files) == CFG.days
    assert files[0] == f"sessions_{CFG.start_date.isoformat()}.parquet"


def test_holdouts_start_after_pre_period_and_never_see_the_model(world):
    out, truth = world
    experiments = read(out, "experiments")
    assert (
        pd.to_datetime(experiments["start_date"]) >= pd.Timestamp(CFG.start_date + timedelta(days=PRE_PERIOD_DAYS))
    ).all()
    assignments = read(out, "assignments")
    predictions = read(out, "predictions")
    for _, exp in experiments.iterrows():
        arm = assignments[assignments["experiment_id"] == exp["experiment_id"]]
        holdout_share = (arm["variant"] == "holdout").mean()
        assert 0.08 < holdout_share < 0.12
        holdout_users = set(arm.loc[arm["variant"] == "holdout", "user_id"])
        model_users = set(predictions.loc[predictions["model_id"] == exp["model_id"], "user_id"])
        assert not holdout_users & model_users
    assert set(truth["experiments"]) == set(experiments["experiment_id"])


def test_planted_lift_is_positive_and_consistent_with_its_parameters(world):
    _, truth = world
    drop_starts = truth["incident"]["kpi_drop"]["start_date"]
    for exp in truth["experiments"].values():
        # the planted parameters hold until the incident's KPI drop hits the broken model
        effects = exp["sample_average_treatment_effect"]
        last = effects[max(d for d in effects if exp["model_id"] != truth["incident"]["model_id"] or d < drop_starts)]
        assert last["conversion"]["relative_lift"] > 0
        # revenue per user lift is about conversion x order-value multipliers (a sample
        # of 3,000 users over ten days: the realised effect varies by a few points)
        assert last["revenue_per_user"]["relative_lift"] == pytest.approx(
            exp["expected_revenue_per_user_relative_lift"], abs=0.06
        )


def test_labels_arrive_late_and_human_review_is_a_quick_small_sample(world):
    out, _ = world
    labels = read(out, "labels").merge(read(out, "predictions")[["prediction_id", "predicted_at"]], on="prediction_id")
    delay_h = (labels["labeled_at"] - labels["predicted_at"]).dt.total_seconds() / 3600
    implicit = labels["label_source"] == "implicit"
    assert delay_h[implicit].min() >= 24
    assert delay_h[~implicit].max() < 24
    share = (~implicit).sum() / read(out, "predictions")["prediction_id"].nunique()
    assert 0.01 < share < 0.03


def test_incident_shifts_features_from_its_date(world):
    out, truth = world
    incident = truth["incident"]
    preds = read(out, "predictions")
    preds = preds[preds["model_id"] == incident["model_id"]]
    after = preds["predicted_at"] >= pd.Timestamp(incident["start_date"])
    shift = preds.loc[after, "feature_recency"].mean() - preds.loc[~after, "feature_recency"].mean()
    assert shift == pytest.approx(incident["feature_recency_mean_shift"], abs=0.15)


def test_the_incident_lowers_conversion_of_exposed_users_from_its_kpi_drop_date(world):
    out, truth = world
    drop = truth["incident"]["kpi_drop"]
    assert (
        drop["start_date"]
        == (pd.Timestamp(truth["incident"]["start_date"]) + timedelta(days=drop["lag_days"])).date().isoformat()
    )
    experiment = next(e for e, x in truth["experiments"].items() if x["model_id"] == truth["incident"]["model_id"])
    sessions = read(out, "sessions").merge(read(out, "assignments").query("experiment_id == @experiment"), on="user_id")
    sessions = sessions[sessions["started_at"] >= sessions["assigned_at"]]
    completed = read(out, "orders").query("status == 'completed'")["session_id"]
    sessions["converted"] = sessions["session_id"].isin(completed)
    sessions["after"] = sessions["started_at"] >= pd.Timestamp(drop["start_date"])
    sessions = sessions[sessions["started_at"] >= pd.Timestamp(drop["start_date"]) - timedelta(days=10)]
    stats = sessions.groupby(["variant", "after"])["converted"].agg(["mean", "size"])
    multiplier = drop["exposed_session_conversion_multiplier"]
    for variant, planted in (("treatment", multiplier["after"] / multiplier["before"]), ("holdout", 1.0)):
        after, before = (stats.xs((variant, flag)) for flag in (True, False))
        log_ratio = np.log(after["mean"] / before["mean"])
        # delta method: var(log p) = (1 - p) / (n p)
        se = np.sqrt(sum((1 - x["mean"]) / (x["size"] * x["mean"]) for x in (after, before)))
        assert abs(log_ratio - np.log(planted)) < 3 * se, (variant, np.exp(log_ratio), planted)


def test_biased_group_has_lower_expected_tpr(world):
    _, truth = world
    bias = truth["bias"]
    for tpr in bias["expected_tpr"].values():
        others = [v for g, v in tpr.items() if g != bias["group"]]
        assert tpr[bias["group"]] < min(others) - 0.05


def test_too_short_world_is_a_clear_error():
    with pytest.raises(ValueError, match="too short"):
        WorldConfig(days=10)
