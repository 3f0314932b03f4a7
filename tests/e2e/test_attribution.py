"""Attribution on generated worlds: every declared metric, CUPED, sequential CIs, guardrails, SRM, net value."""

from datetime import timedelta

import pandas as pd
import pytest

from orchestration.lib.settings import dbt_var
from orchestration.lib.synthetic_world import WorldConfig
from tests.e2e.conftest import generated_pipeline

pytestmark = pytest.mark.slow


def test_every_declared_metric_is_analysed_with_cuped_sequential_and_corrections(latest):
    pipeline = latest
    r = pipeline.query("SELECT * FROM attribution.experiment_results WHERE as_of_date = ?", [pipeline.last])
    metrics = dbt_var("experiment_metrics")
    assert set(r["metric"]) == set(metrics)
    cumulative = r[r["analysis_window"] == "cumulative"].set_index(["experiment_id", "metric"])
    for metric in ("conversion", "revenue_per_user", "orders_per_user"):
        rows = cumulative.xs(metric, level="metric")
        # pre-period behaviour predicts post-period behaviour: CUPED narrows the interval
        assert (rows["cuped_variance_reduction"] > 0).all()
        assert (rows["estimate"] == "cuped").all()
        assert (
            (rows["cuped_absolute_ci_high"] - rows["cuped_absolute_ci_low"])
            < (rows["absolute_ci_high"] - rows["absolute_ci_low"])
        ).all()
    # the always-valid interval is reported next to, and is wider than, the fixed-horizon one of the same estimate
    cuped = cumulative["estimate"] == "cuped"
    fixed_width = (cumulative["cuped_absolute_ci_high"] - cumulative["cuped_absolute_ci_low"]).where(
        cuped, cumulative["absolute_ci_high"] - cumulative["absolute_ci_low"]
    )
    assert ((cumulative["sequential_absolute_ci_high"] - cumulative["sequential_absolute_ci_low"]) > fixed_width).all()
    day = r[r["analysis_window"] == "day"]
    assert len(day) and day["sequential_absolute_ci_low"].isna().all()  # one day's sample is not a sequence of looks
    # decisions (and the multiple-testing adjustment) use the chosen estimate's p-value
    assert (cumulative["decision_p_value"] == cumulative["cuped_p_value"].where(cuped, cumulative["p_value"])).all()
    assert (cumulative["p_value_adjusted"] >= cumulative["decision_p_value"] - 1e-12).all()
    ratio = cumulative.xs("average_order_value", level="metric")
    assert (ratio["estimate"] == "delta_method_ratio").all() and ratio["cuped_theta"].isna().all()
    guardrails = r[r["is_guardrail"]]
    assert set(guardrails["metric"]) == {m for m, spec in metrics.items() if spec.get("guardrail")}
    assert guardrails["guardrail_verdict"].isin(["pass", "fail", "inconclusive"]).all()
    assert r["trustworthy"].all() and (r["srm_p_value"] > 0.001).all()
    assert (r["mde_absolute"].dropna() > 0).all()


def test_planted_sample_ratio_mismatch_marks_results_untrustworthy(tmp_path, monkeypatch):
    cfg = WorldConfig(days=24, users=6000, seed=5, predictions_per_day=200, lost_holdout_assignments=0.4)
    p = generated_pipeline(tmp_path, monkeypatch, cfg)
    results = p.query("SELECT * FROM attribution.experiment_results WHERE as_of_date = ?", [p.last])
    assert len(results) and not results["trustworthy"].any()
    assert results["untrusted_reason"].str.startswith("sample ratio mismatch").all()
    assert (results["srm_p_value"] < 0.001).all()
    impact = p.query("SELECT * FROM attribution.model_impact WHERE as_of_date = ?", [p.last])
    assert not impact["trustworthy"].any()


def test_no_significance_without_variance_and_flags_follow_the_adjusted_p_value(latest):
    """Issue 13: on the generated world, day rows with an empty or full arm publish no p-value; significant
    follows the adjusted p-value; small arms are not decision-grade; Fisher's exact test backs every
    significant proportion."""
    from scipy.stats import fisher_exact

    r = latest.query("SELECT * FROM attribution.experiment_results")
    stats = latest.query("SELECT * FROM marts.experiment_stats WHERE metric_type = 'proportion'")
    arms = stats.set_index(["experiment_id", "metric", "analysis_window", "as_of_date", "variant"])
    proportions = r[r["metric_type"] == "proportion"]
    checked = 0
    for row in proportions.itertuples():
        key = (row.experiment_id, row.metric, row.analysis_window, row.as_of_date)
        c, t = arms.loc[(*key, row.control_variant)], arms.loc[(*key, row.treatment_variant)]
        k_c, n_c, k_t, n_t = int(c["value_sum"]), int(c["n"]), int(t["value_sum"]), int(t["n"])
        if min(k_c, n_c - k_c, k_t, n_t - k_t) == 0:  # an arm without variance
            assert pd.isna(row.decision_p_value) and isinstance(row.degenerate_reason, str), key
        if not pd.isna(row.significant) and bool(row.significant):
            checked += 1
            assert fisher_exact([[k_c, n_c - k_c], [k_t, n_t - k_t]]).pvalue < 0.1, key
    tested = r[r["p_value_adjusted"].notna()]
    assert (tested["significant"].astype(bool) == (tested["p_value_adjusted"] < 0.05)).all()
    assert r.loc[r["p_value_adjusted"].isna(), "significant"].isna().all()
    small = (r["n_control"] < 30) | (r["n_treatment"] < 30)
    assert not r.loc[small, "decision_grade"].astype(bool).any()
    assert (
        r["decision_grade"].astype(bool) == (r["trustworthy"].astype(bool) & ~small & r["degenerate_reason"].isna())
    ).all()


def test_a_holdout_its_model_scored_makes_its_experiment_untrustworthy_and_the_summary_says_so(
    pipeline, capsys, monkeypatch
):
    """A trial's experiment linked to model M had every control user scored by M, and the lift was credited as M's
    value: a few holdout users scored on the last day make that experiment's rows of that day untrustworthy."""
    import duckdb

    from orchestration import summary

    shared, private = pipeline.source, pipeline.db.parent / "world"
    # the shared world stays as it is: a private landing zone of links, the last day's predictions a changed copy
    for table in shared.iterdir():
        if table.name != "predictions":
            (private / table.name).parent.mkdir(parents=True, exist_ok=True)
            (private / table.name).symlink_to(table)
    (private / "predictions").mkdir()
    for f in (shared / "predictions").iterdir():
        (private / "predictions" / f.name).symlink_to(f)
    model = pipeline.truth["models"][0]  # a model with its holdout experiment
    model_id, experiment_id = model["model_id"], model["experiment_id"]
    last = pipeline.last
    assignments = pd.concat(pd.read_parquet(f) for f in (shared / "assignments").glob("*.parquet"))
    holdout = assignments[
        (assignments["experiment_id"] == experiment_id)
        & (assignments["variant"] == "holdout")
        & (assignments["assigned_at"] < pd.Timestamp(last, tz=assignments["assigned_at"].dt.tz))
    ]
    day_file = private / "predictions" / f"predictions_{last.isoformat()}.parquet"
    day = pd.read_parquet(day_file)
    day_file.unlink()
    # five holdout users scored at noon of the last day (after their assignment): few enough for no gate to notice
    scored = holdout["user_id"].drop_duplicates().head(5)
    extra = day[day["model_id"] == model_id].head(len(scored)).copy()
    extra["user_id"] = scored.to_numpy()
    extra["prediction_id"] = [f"scored-holdout-{i}" for i in range(len(extra))]
    extra["predicted_at"] = pd.Timestamp(last, tz=day["predicted_at"].dt.tz) + pd.Timedelta(hours=12)
    pd.concat([day, extra], ignore_index=True).to_parquet(day_file, index=False)

    monkeypatch.setenv("IMPACT_LEDGER_SOURCE", str(private))
    outcome = pipeline.run(last - timedelta(days=1), last)
    assert outcome.success, outcome.failures
    results = pipeline.query("SELECT * FROM attribution.experiment_results WHERE as_of_date = ?", [last])
    units = pipeline.query(
        "SELECT count(*) AS n FROM staging.stg_assignments WHERE experiment_id = ? AND variant = 'holdout' "
        "AND assigned_date <= ?",
        [experiment_id, last],
    )["n"].iloc[0]
    scored_rows = results[results["experiment_id"] == experiment_id]
    assert len(scored_rows) and not scored_rows["trustworthy"].any()
    reason = (
        f"control arm exposed: 5 of {units:,} control units ({5 / units:.1%}) have predictions of model "
        f"{model_id} (the holdout must never be scored)"
    )
    assert scored_rows["untrusted_reason"].str.contains(reason, regex=False).all(), scored_rows["untrusted_reason"]
    others = results[results["experiment_id"] != experiment_id]
    assert len(others) and not others["untrusted_reason"].fillna("").str.contains("control arm exposed").any()
    # the day before: nothing scored yet
    before = pipeline.query(
        "SELECT untrusted_reason FROM attribution.experiment_results WHERE as_of_date = ?", [last - timedelta(days=1)]
    )
    assert not before["untrusted_reason"].fillna("").str.contains("control arm exposed").any()
    impact = pipeline.query(
        "SELECT * FROM attribution.model_impact WHERE as_of_date = ? AND model_id = ?", [last, model_id]
    )
    assert len(impact) and not impact["trustworthy"].any()
    with duckdb.connect(str(pipeline.db), read_only=True) as conn:
        summary.read_and_print(conn, pipeline.db.parent / "reports")
    assert reason in capsys.readouterr().out
