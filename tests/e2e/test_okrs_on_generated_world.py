"""OKR progress and the metric scorecard on the shared e2e world, against pandas and hand computations."""

from datetime import timedelta

import pandas as pd
import pytest
from scipy.stats import norm

from orchestration.lib.okrs import load_okrs
from orchestration.lib.settings import dbt_var

pytestmark = pytest.mark.slow

PLANTED_TOO_SMALL = "revenue_per_active_user"  # +2% revenue per user: far below a 10% holdout's MDE


def _trailing_mean(frame: pd.DataFrame, column: str, weight: str | None, last, window: int) -> float:
    days = pd.to_datetime(frame["date"]).dt.date
    rows = frame[(days > last - timedelta(days=window)) & (days <= last)].dropna(subset=[column])
    w = rows[weight] if weight else pd.Series(1.0, index=rows.index)
    return float((rows[column] * w).sum() / w.sum())


def _oracle_value(p, kr) -> float:
    if kr.kind == "kpi":
        # a session converts with an order up to kpi_lookback_days later: a conversion's window ends that far back
        settle = int(dbt_var("kpi_lookback_days")) if kr.metric in ("conversion_rate", "converting_sessions") else 0
        kpis = p.query("SELECT * FROM marts.kpi_daily")
        return _trailing_mean(kpis, kr.metric, kr.weight, p.last - timedelta(days=settle), kr.window_days)
    if kr.kind == "health":
        health = p.query("SELECT * FROM marts.model_health_daily WHERE model_id = ?", [kr.model_id])
        live = health.sort_values(["predictions", "model_version"], ascending=False).drop_duplicates("date")
        return _trailing_mean(live, kr.metric, kr.weight, p.last, kr.window_days)
    if kr.kind == "net_value":
        impact = p.query(
            "SELECT * FROM attribution.model_impact WHERE model_id = ? AND as_of_date = ? "
            "AND analysis_window = 'cumulative'",
            [kr.model_id, p.last],
        )
        return float(impact.sort_values("treated_units").iloc[-1]["net_value"])
    results = p.query(
        "SELECT * FROM attribution.experiment_results WHERE model_id = ? AND metric = ? AND as_of_date = ? "
        "AND analysis_window = 'cumulative'",
        [kr.model_id, kr.metric, p.last],
    )
    row = results.sort_values("n_treatment").iloc[-1]
    return float(row["cuped_relative_lift"] if row["estimate"] == "cuped" else row["relative_lift"])


def test_every_key_result_has_a_row_per_day_and_todays_value_matches_pandas(latest):
    p = latest
    okrs = load_okrs(dbt_var("experiment_metrics"))
    progress = p.query("SELECT * FROM marts.okr_progress")
    # every day of the backfill wrote its own row set
    assert progress.groupby("date").size().eq(len(okrs.key_results)).all()
    assert progress["date"].nunique() == (p.last - p.first).days + 1
    today = progress[pd.to_datetime(progress["date"]).dt.date == p.last].set_index("key_result")
    for kr in okrs.key_results:
        row = today.loc[kr.id]
        expected = _oracle_value(p, kr)
        assert row["current_value"] == pytest.approx(expected, rel=1e-9), kr.id
        assert row["progress"] == pytest.approx((expected - kr.baseline) / (kr.target - kr.baseline), rel=1e-9)
        pace = min(max((p.last - kr.start_date).days / (kr.deadline - kr.start_date).days, 0), 1)
        assert row["expected_progress"] == pytest.approx(pace)
        assert row["status"] in {"achieved", "on_track", "behind"}


def test_scorecard_days_needed_match_a_hand_computation_and_the_too_small_target_warns(latest):
    p = latest
    attribution = dbt_var("attribution")
    card = p.query("SELECT * FROM marts.metric_scorecard WHERE date = ?", [p.last])
    assert card["attributable"].all()  # two weeks in, every metric (D7 retention too) has matured results
    stats = p.query(
        "SELECT * FROM marts.experiment_stats WHERE analysis_window = 'cumulative' AND as_of_date IN (?, ?)",
        [p.last, p.last - timedelta(days=7)],
    )
    results = p.query(
        "SELECT * FROM attribution.experiment_results WHERE analysis_window = 'cumulative' AND as_of_date = ?", [p.last]
    ).set_index(["experiment_id", "metric"])
    judged = card.dropna(subset=["required_units"])
    assert len(judged) >= 3
    for _, row in judged.iterrows():
        r = results.loc[(row["experiment_id"], row["metric"])]
        arms = stats[(stats["experiment_id"] == row["experiment_id"]) & (stats["metric"] == row["metric"])]
        now = arms[pd.to_datetime(arms["as_of_date"]).dt.date == p.last].set_index("variant")
        before = arms[pd.to_datetime(arms["as_of_date"]).dt.date == p.last - timedelta(days=7)].set_index("variant")
        units_per_day = (now["n"].sum() - before["n"].sum()) / 7
        assert row["units_per_day"] == pytest.approx(units_per_day)

        def variance(arm) -> float:  # the per-unit variance the results' estimate has (CUPED: y - theta x)
            n = arm["n"]
            var_y = (arm["value_sum_sq"] - arm["value_sum"] ** 2 / n) / (n - 1)
            if r["estimate"] != "cuped":
                assert r["metric_type"] != "ratio"
                return var_y
            var_x = (arm["covariate_sum_sq"] - arm["covariate_sum"] ** 2 / n) / (n - 1)
            cov = (arm["value_covariate_sum"] - arm["value_sum"] * arm["covariate_sum"] / n) / (n - 1)
            theta = r["cuped_theta"]
            return var_y + theta**2 * var_x - 2 * theta * cov

        c, t = now.loc[r["control_variant"]], now.loc[r["treatment_variant"]]
        # each arm with its own variance, at the arms' split so far; with equal variances and the design's split
        # this is statsmodels' NormalIndPower (tests/unit/test_scorecard.py)
        share = t["n"] / (c["n"] + t["n"])
        z = norm.ppf(1 - attribution["alpha"] / 2) + norm.ppf(attribution["power"])
        delta = abs(row["target_relative_effect"]) * r["mean_control"]
        total = z**2 * (variance(c) / (1 - share) + variance(t) / share) / delta**2
        oracle_days = total / units_per_day
        assert row["days_needed"] == pytest.approx(oracle_days, rel=2e-3), row["key_result"]

    planted = judged[judged["key_result"] == PLANTED_TOO_SMALL]
    assert len(planted) == 2  # both experiments measure revenue_per_user
    assert (~planted["detectable_by_deadline"].astype(bool)).all()
    assert planted["warning"].str.contains("is smaller than the").all()
    conversion = judged[judged["key_result"] == "site_conversion"]
    assert conversion["detectable_by_deadline"].astype(bool).all() and conversion["warning"].isna().all()
    guardrail = card[card["is_guardrail"]]
    assert guardrail["balanced_by_guardrail"].isna().all()
    assert card.loc[~card["is_guardrail"], "balanced_by_guardrail"].eq("refund_rate").all()
