"""Bias: the planted group is flagged (and only it), rates agree with fairlearn; retraining only from a fair snapshot."""

from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_ratio,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)

from orchestration.lib.alerts import load_alert_config
from orchestration.lib.bias import bias_verdicts, group_rates
from orchestration.lib.synthetic_world import WorldConfig
from tests.e2e.conftest import Pipeline, generated_pipeline, materialised_pipeline
from tests.e2e.oracles import clean_predictions, read, resolved_labels

pytestmark = pytest.mark.slow


def window_rows(p: Pipeline, model_id: str, last: date) -> pd.DataFrame:
    start = last - timedelta(days=load_alert_config().bias["window_days"] - 1)
    return p.query(
        "SELECT * FROM marts.bias_daily WHERE model_id = ? AND date BETWEEN ? AND ?", [model_id, start, last]
    )


def test_planted_group_is_flagged_by_equal_opportunity_and_no_other(latest):
    pipeline = latest
    planted = pipeline.truth["bias"]
    thresholds = load_alert_config().bias
    for model_id in ("recommender", "churn_offer"):
        verdicts = bias_verdicts(group_rates(window_rows(pipeline, model_id, pipeline.last)), thresholds).set_index(
            "attribute"
        )
        flagged = verdicts.loc[planted["attribute"], "flagged_groups_equal_opportunity"]
        assert list(flagged) == [planted["group"]], (model_id, flagged)
        assert not verdicts.loc[planted["attribute"], "passes_equal_opportunity"]
        for attribute in ("gender", "country"):
            assert not list(verdicts.loc[attribute, "flagged_groups_equal_opportunity"]), (model_id, attribute)
        # intersections flag only sub-groups of the planted group
        for group in verdicts.loc["gender_x_age_band", "flagged_groups_equal_opportunity"]:
            assert group.split("|")[1] == planted["group"], (model_id, group)


def test_group_rates_agree_with_fairlearn_on_the_raw_rows(latest):
    pipeline = latest
    day = pipeline.last - timedelta(days=5)
    preds = clean_predictions(pipeline.source).join(resolved_labels(pipeline.source, pipeline.last), on="prediction_id")
    preds = preds[(preds["date"] == pd.Timestamp(day)) & (preds["model_id"] == "recommender") & preds["label"].notna()]
    preds = preds.merge(read(pipeline.source, "users")[["user_id", "age_band"]], on="user_id")
    rows = pipeline.query(
        "SELECT * FROM marts.bias_daily WHERE model_id = 'recommender' AND date = ? AND attribute = 'age_band'", [day]
    )
    rates = group_rates(rows).set_index("group_value")
    y, d = preds["label"].astype(int), preds["decision"].astype(int)
    oracle = MetricFrame(metrics={"tpr": true_positive_rate}, y_true=y, y_pred=d, sensitive_features=preds["age_band"])
    sql = rows.set_index("group_value")  # the day's rate columns computed in SQL
    for group, tpr in oracle.by_group["tpr"].items():
        assert rates.loc[group, "tpr"] == pytest.approx(tpr, rel=1e-9, abs=1e-12), group
        assert sql.loc[group, "tpr"] == pytest.approx(tpr, rel=1e-9, abs=1e-12), group
    # selection rate and disparate impact are over all predictions, labelled or not
    everything = clean_predictions(pipeline.source)
    everything = everything[(everything["date"] == pd.Timestamp(day)) & (everything["model_id"] == "recommender")]
    everything = everything.merge(read(pipeline.source, "users")[["user_id", "age_band"]], on="user_id")
    sel = MetricFrame(
        metrics=selection_rate,
        y_true=everything["decision"].astype(int),
        y_pred=everything["decision"].astype(int),
        sensitive_features=everything["age_band"],
    ).by_group
    for group, value in sel.items():
        assert rates.loc[group, "selection_rate"] == pytest.approx(value, rel=1e-9), group
        assert sql.loc[group, "selection_rate"] == pytest.approx(value, rel=1e-9), group
    ratio = demographic_parity_ratio(
        everything["decision"].astype(int),
        everything["decision"].astype(int),
        sensitive_features=everything["age_band"],
    )
    verdict = bias_verdicts(rates.reset_index(), {"min_labelled": 0}).iloc[0]
    assert verdict["disparate_impact_ratio"] == pytest.approx(ratio, rel=1e-9)


# rate column of marts.bias_daily -> (numerator, denominator) from its own count columns
SQL_RATES = {
    "selection_rate": ("positives", "predictions"),
    "tpr": ("true_positives", "true_positives + false_negatives"),
    "fpr": ("false_positives", "false_positives + true_negatives"),
    "precision": ("true_positives", "true_positives + false_positives"),
    "mean_score": ("score_sum", "labelled"),
    "observed_positive_rate": ("label_sum", "labelled"),
    "population_share": ("population_users", "population_total"),
}


def test_bias_daily_rates_are_the_ratios_of_its_counts(latest):
    rows = latest.query("SELECT * FROM marts.bias_daily")
    for rate, (numerator, denominator) in SQL_RATES.items():
        bottom = rows.eval(denominator).astype(float)
        expected = (rows[numerator].astype(float) / bottom.where(bottom > 0)).to_numpy()
        actual = rows[rate].astype(float).to_numpy()
        assert (pd.isna(actual) == pd.isna(expected)).all(), rate  # NULL exactly where the denominator is 0
        assert actual[~pd.isna(expected)] == pytest.approx(expected[~pd.isna(expected)], rel=1e-12, abs=1e-15), rate
    gap = rows["mean_score"] - rows["observed_positive_rate"]
    assert rows["calibration_gap_group"].to_numpy() == pytest.approx(gap.to_numpy(), rel=1e-9, abs=1e-12, nan_ok=True)
    traffic = rows.groupby(["date", "model_id", "attribute"])["predictions"].transform("sum")
    assert rows["prediction_share"].to_numpy() == pytest.approx((rows["predictions"] / traffic).to_numpy(), rel=1e-12)


def test_stored_window_verdicts_and_intervals_are_what_the_check_computes(latest):
    thresholds = load_alert_config().bias
    stored = latest.query("SELECT * FROM marts.bias_verdicts WHERE date = ?", [latest.last]).set_index(
        ["model_id", "attribute"]
    )
    groups = latest.query("SELECT * FROM marts.bias_group_rates WHERE date = ?", [latest.last])
    for model_id in ("recommender", "churn_offer"):
        rates = group_rates(window_rows(latest, model_id, latest.last))
        for _, v in bias_verdicts(rates, thresholds).iterrows():
            row = stored.loc[(model_id, v["attribute"])]
            assert row["passed"] == v["passed"] and row["flagged_groups_equal_opportunity"] == ", ".join(
                v["flagged_groups_equal_opportunity"]
            )
            assert row["equal_opportunity_difference"] == pytest.approx(
                v["equal_opportunity_difference"], rel=1e-12, nan_ok=True
            )
        mine = groups[groups["model_id"] == model_id].set_index(["attribute", "group_value"]).sort_index()
        theirs = rates.set_index(["attribute", "group_value"]).sort_index()
        for column in ("tpr", "tpr_ci_low", "tpr_ci_high", "selection_rate_ci_low", "selection_rate_ci_high"):
            assert mine[column].to_numpy() == pytest.approx(theirs[column].to_numpy(), rel=1e-12, nan_ok=True), column
        assert (mine["excluded"] == (theirs["labelled"] < thresholds["min_labelled"])).all()
    planted = latest.truth["bias"]
    assert stored.loc[("recommender", planted["attribute"]), "flagged_groups_equal_opportunity"] == planted["group"]


def last_retraining_request(p: Pipeline) -> date:
    """The day of the last retraining request the planted incident raised."""
    requests = p.query(
        "SELECT * FROM marts.retraining_requests WHERE model_id = ? ORDER BY date", [p.truth["incident"]["model_id"]]
    )
    assert len(requests), "the planted incident must raise a retraining request"
    assert "consecutive days" in requests["reason"].iloc[0]
    return pd.Timestamp(requests["date"].iloc[-1]).date()


def test_retraining_snapshot_is_blocked_when_bias_is_planted(latest_copy):
    from orchestration.runs import run_retraining

    # the shared world plants both the incident and the biased group (a private copy: this test writes to it)
    p = latest_copy
    # a day without a request (what "materialize all" runs on any day): nothing to build, not a failed run
    assert p.query("SELECT count(*) AS n FROM marts.retraining_requests WHERE date = ?", [p.first])["n"].iloc[0] == 0
    quiet = run_retraining(p.first)
    assert quiet.success, quiet.failures
    assert p.query("SELECT count(*) AS n FROM retraining.training_candidates")["n"].iloc[0] == 0
    day = last_retraining_request(p)
    # first a window day whose users gate never ran: not validated, so blocked before any bias verdict
    unvalidated = day - timedelta(days=3)
    with duckdb.connect(str(p.db)) as conn:
        removed = conn.execute(
            "SELECT * FROM quality.gate_results WHERE table_name = 'users' AND date = ?", [unvalidated]
        ).df()
        conn.execute("DELETE FROM quality.gate_results WHERE table_name = 'users' AND date = ?", [unvalidated])
    outcome = run_retraining(day)
    assert not outcome.success and "retraining/training_candidates" not in outcome.materialized
    reason = f"users has no quality gate result (not validated) on {unvalidated}"
    assert any(reason in f for f in outcome.failures), outcome.failures
    requests = p.query("SELECT status, status_reason FROM marts.retraining_requests WHERE date = ?", [day])
    assert (requests["status"] == "blocked").all() and requests["status_reason"].str.contains(reason, regex=False).all()

    with duckdb.connect(str(p.db)) as conn:
        conn.register("removed_rows", removed)
        conn.execute("INSERT INTO quality.gate_results BY NAME SELECT * FROM removed_rows")
    outcome = run_retraining(day)
    assert not outcome.success
    blocked = [f for f in outcome.failures if "training_bias_suite" in f and f.startswith("check")]
    assert blocked and "equal opportunity" in blocked[0], outcome.failures
    assert "retraining/training_snapshot" not in outcome.materialized
    assert not list((p.db.parent / "exports").rglob("snapshot.parquet"))
    requests = p.query("SELECT status, status_reason FROM marts.retraining_requests WHERE date = ?", [day])
    assert (requests["status"] == "blocked").all()
    assert requests["status_reason"].str.startswith("retraining blocked: ").all()
    with duckdb.connect(str(p.db.parent / "analytics.duckdb"), read_only=True) as conn:  # what analysts read
        published = conn.execute(
            "SELECT status, status_reason FROM marts.retraining_requests WHERE date = ?", [day]
        ).df()
    assert published.equals(requests)
    assert requests["status_reason"].str.contains("equal opportunity").all(), requests


def test_retraining_snapshot_is_exported_when_the_world_is_fair(tmp_path, monkeypatch, capsys):
    from orchestration.cli import main

    cfg = WorldConfig(days=30, users=6000, seed=21, predictions_per_day=2000, bias_logit_shift=0.0)
    p = generated_pipeline(tmp_path, monkeypatch, cfg)
    day = last_retraining_request(p)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("IMPACT_LEDGER_START_DATE", p.first.isoformat())
    assert main(["retrain", "--date", day.isoformat()]) == 0  # what cron runs (the sensor, under `make dev`)
    out = capsys.readouterr().out
    assert f"  {day} (" in out and "retraining/training_snapshot done" in out, out
    files = list((tmp_path / "exports").rglob("snapshot.parquet"))
    assert files
    snapshot = pd.read_parquet(files[0])
    assert len(snapshot) > 1000 and snapshot["label"].isin([0, 1]).all()
    assert {"feature_recency", "feature_device", "score", "age_band"} <= set(snapshot.columns)
    requests = p.query("SELECT model_id, status, status_reason FROM marts.retraining_requests WHERE date = ?", [day])
    assert (requests["status"] == "snapshot_ready").all()
    # a note only where the snapshot holds under half its window's predictions (labels landing later), its rows said
    for model_id, note in zip(requests["model_id"], requests["status_reason"], strict=True):
        rows = sum(len(pd.read_parquet(f)) for f in files if f"model={model_id}" in str(f))
        assert pd.isna(note) or note.startswith(f"exported with {rows:,} of the window's "), (model_id, note)
    # what analysts read says so too: the snapshot (`impact-ledger query`) and the Parquet exports said 'requested'
    assert main(["query", f"SELECT status FROM marts.retraining_requests WHERE date = DATE '{day}'"]) == 0
    assert capsys.readouterr().out.split()[1:] == ["snapshot_ready"] * len(requests)
    exported = pd.read_parquet(tmp_path / "exports" / "retraining_requests" / f"date={day}")
    assert list(exported["status"]) == ["snapshot_ready"] * len(requests)


def test_a_users_column_of_the_project_file_and_a_harmful_model_agree_with_fairlearn(tmp_path, monkeypatch):
    """A `race` column the demo never had, a model whose positive decision is the harm, through dbt and the stored verdicts.

    The stored verdict's disparate impact is the lower of fairlearn's demographic_parity_ratio of the decisions
    (being flagged) and of the inverted decisions (not being flagged) and its equal opportunity the range of fairlearn's false_positive_rate by group; the
    groups it names are the ones wrongly flagged most often.
    """
    from orchestration.lib.synthetic_world import generate_world

    cfg = WorldConfig(days=24, users=5000, seed=8, predictions_per_day=1500, dirty_rows=False)
    source = tmp_path / "world"
    truth = generate_world(source, cfg, progress=None)
    # race, correlated with the planted under-scored age band so the groups differ; and no demo attribute is declared
    rng = np.random.default_rng(3)
    for path in sorted((source / "users").glob("*.parquet")):
        users = pd.read_parquet(path)
        old = (users["age_band"] == truth["bias"]["group"]).to_numpy()
        users["race"] = np.where(old & (rng.random(len(users)) < 0.8), "B", rng.choice(["A", "C"], len(users)))
        users.to_parquet(path, index=False)
    project = tmp_path / "project.yml"
    model = truth["incident"]["model_id"]
    project.write_text(
        f"models:\n  {model}: {{positive_decision: harmful}}\nprotected_attributes: [race]\n"
        "bias: {min_labelled: 100, window_days: 14}\n"
    )
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(project))
    p = materialised_pipeline(tmp_path, monkeypatch, source, truth)

    assert set(p.query("SELECT DISTINCT attribute FROM marts.bias_daily")["attribute"]) == {"race"}
    stored = p.query("SELECT * FROM marts.bias_verdicts WHERE date = ? AND model_id = ?", [p.last, model]).iloc[0]
    assert (
        stored["attribute"] == "race"
        and stored["positive_decision"] == "harmful"
        and stored["equal_opportunity_rate"] == "fpr"
    )

    preds = clean_predictions(source)
    preds = preds[
        (preds["model_id"] == model)
        & (preds["date"] >= pd.Timestamp(p.last - timedelta(days=13)))
        & (preds["date"] <= pd.Timestamp(p.last))
    ]
    preds = preds.merge(read(source, "users")[["user_id", "race"]], on="user_id", how="left").fillna(
        {"race": "unknown"}
    )
    labelled = preds.join(resolved_labels(source, p.last), on="prediction_id")
    labelled = labelled[labelled["label"].notna()]
    counts = labelled.groupby("race").size()
    eligible = counts[counts >= 100].index
    everyone = preds[preds["race"].isin(eligible)]
    flagged = everyone["decision"].astype(int)
    assert stored["disparate_impact_ratio"] == pytest.approx(
        min(
            demographic_parity_ratio(flagged, flagged, sensitive_features=everyone["race"]),
            demographic_parity_ratio(1 - flagged, 1 - flagged, sensitive_features=everyone["race"]),
        ),
        rel=1e-9,
    )
    fpr = MetricFrame(
        metrics=false_positive_rate,
        y_true=labelled["label"].astype(int),
        y_pred=labelled["decision"].astype(int),
        sensitive_features=labelled["race"],
    ).by_group.loc[eligible]
    assert stored["equal_opportunity_difference"] == pytest.approx(fpr.max() - fpr.min(), rel=1e-9, abs=1e-12)
    named = sorted(g for g in eligible if fpr[g] - fpr.min() > 0.1)
    assert (stored["flagged_groups_equal_opportunity"] or "") == ", ".join(named)
