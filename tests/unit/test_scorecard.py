"""The metric scorecard: sample sizes vs statsmodels, planning variances vs numpy on unit-level data, traffic SQL by hand."""

import datetime as dt
import math

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import stats as st
from statsmodels.stats.power import NormalIndPower

from orchestration.lib.okrs import KeyResult
from orchestration.lib.scorecard import (
    TRAFFIC_SQL,
    bound_key_results,
    key_result_feasibility,
    metric_scorecard,
    planning_variance,
)

D = dt.date
ALPHA, POWER = 0.05, 0.8


def kr(**overrides) -> KeyResult:
    base = dict(
        id="kr",
        objective="obj",
        description="",
        kind="lift",
        metric="revenue_per_user",
        model_id="rec",
        experiment_id=None,
        weight=None,
        baseline=0.0,
        target=0.05,
        start_date=D(2026, 9, 1),
        deadline=D(2026, 12, 31),
        window_days=7,
        attribution_metric=None,
    )
    return KeyResult(**(base | overrides))


# --- sample size, days and the MDE by the deadline -----------------------------------


@pytest.mark.parametrize(
    "share, sd, mean, effect", [(0.9, 77.0, 27.6, 0.15), (0.5, 0.48, 0.36, 0.05), (0.8, 2.0, 1.0, -0.1)]
)
def test_required_units_and_days_match_statsmodels(share, sd, mean, effect):
    as_of, rate, units = D(2026, 10, 30), 95.0, 18_000
    out = key_result_feasibility(kr(target=effect), as_of, units, rate, sd**2, mean, share, ALPHA, POWER)
    # statsmodels: n of the first (control) sample for a standardised effect, ratio = n_treatment / n_control
    n_control = NormalIndPower().solve_power(
        effect_size=abs(effect) * mean / sd,
        alpha=ALPHA,
        power=POWER,
        ratio=share / (1 - share),
        alternative="two-sided",
    )
    oracle_total = n_control / (1 - share)
    assert out["required_units"] == pytest.approx(oracle_total, rel=2e-3, abs=2)
    assert out["days_needed"] == pytest.approx(out["required_units"] / rate)
    assert out["days_to_deadline"] == 62
    # the MDE with the units the deadline brings, by hand
    by_deadline = units + rate * 62
    z = st.norm.ppf(1 - ALPHA / 2) + st.norm.ppf(POWER)
    mde = z * sd * math.sqrt(1 / (by_deadline * (1 - share)) + 1 / (by_deadline * share)) / mean
    assert out["mde_relative_at_deadline"] == pytest.approx(mde, rel=1e-12)
    assert out["detectable_by_deadline"] == (by_deadline >= out["required_units"])
    assert out["detectable_by_deadline"] == (abs(effect) >= mde)
    assert (out["warning"] is None) == out["detectable_by_deadline"]


def test_a_target_just_below_the_deadline_mde_warns_and_just_above_does_not():
    as_of, rate, units, var, mean, share = D(2026, 10, 30), 100.0, 10_000, 25.0, 10.0, 0.9
    probe = key_result_feasibility(kr(target=0.5), as_of, units, rate, var, mean, share, ALPHA, POWER)
    mde = probe["mde_relative_at_deadline"]
    above = key_result_feasibility(kr(target=mde * 1.01), as_of, units, rate, var, mean, share, ALPHA, POWER)
    below = key_result_feasibility(kr(target=mde * 0.99), as_of, units, rate, var, mean, share, ALPHA, POWER)
    assert above["detectable_by_deadline"] and above["warning"] is None
    assert below["detectable_by_deadline"] is False
    assert "kr: target effect" in below["warning"] and "2026-12-31" in below["warning"]
    # a KPI key result's effect is target / baseline - 1, lower-is-better ones count by magnitude
    kpi = kr(
        kind="kpi", metric="refund_rate", attribution_metric="refund_rate", model_id=None, baseline=0.05, target=0.04
    )
    out = key_result_feasibility(kpi, as_of, units, rate, var, mean, share, ALPHA, POWER)
    assert out["target_relative_effect"] == pytest.approx(-0.2)
    assert (
        out["required_units"]
        == key_result_feasibility(kr(target=0.2), as_of, units, rate, var, mean, share, ALPHA, POWER)["required_units"]
    )


def test_no_new_traffic_and_a_passed_deadline():
    out = key_result_feasibility(kr(deadline=D(2026, 10, 1)), D(2026, 10, 30), 500, 0.0, 25.0, 10.0, 0.5, ALPHA, POWER)
    assert math.isnan(out["days_needed"]) and out["days_to_deadline"] == -29
    z = st.norm.ppf(0.975) + st.norm.ppf(0.8)
    assert out["mde_relative_at_deadline"] == pytest.approx(z * 5 * math.sqrt(1 / 250 + 1 / 250) / 10, rel=1e-12)
    assert "already passed" in out["warning"]


# --- the variance that plans the sample ------------------------------------------------


def _stats_row(y, x=None, den=None) -> pd.Series:
    row = {"n": len(y), "value_sum": y.sum(), "value_sum_sq": (y**2).sum()}
    if x is not None:
        row |= {"covariate_sum": x.sum(), "covariate_sum_sq": (x**2).sum(), "value_covariate_sum": (x * y).sum()}
    if den is not None:
        row |= {
            "denominator_sum": den.sum(),
            "denominator_sum_sq": (den**2).sum(),
            "value_denominator_sum": (y * den).sum(),
        }
    return pd.Series(row)


def test_planning_variance_matches_numpy_on_unit_level_data():
    rng = np.random.default_rng(11)
    x = rng.gamma(2.0, 5.0, 400)
    y = 0.8 * x + rng.normal(0, 3, 400)
    plain = planning_variance(_stats_row(y, x), "mean", "welch", 0.7)
    assert plain == pytest.approx(np.var(y, ddof=1), rel=1e-10)
    assert planning_variance(_stats_row(y, x), "mean", "cuped", 0.7) == pytest.approx(
        np.var(y - 0.7 * x, ddof=1), rel=1e-10
    )
    # ratio: delta method n Var(sum num / sum den), by hand from unit-level moments
    orders = rng.integers(1, 5, 400).astype(float)
    revenue = orders * rng.gamma(3.0, 10.0, 400)
    r = revenue.sum() / orders.sum()
    cov = np.cov(revenue, orders, ddof=1)
    by_hand = (cov[0, 0] - 2 * r * cov[0, 1] + r**2 * cov[1, 1]) / orders.mean() ** 2
    assert planning_variance(
        _stats_row(revenue, den=orders), "ratio", "delta_method_ratio", float("nan")
    ) == pytest.approx(by_hand, rel=1e-10)


# --- traffic (SQL) ---------------------------------------------------------------------


def test_units_per_day_over_the_trailing_week_by_hand():
    days = pd.date_range("2026-09-01", "2026-09-20").date
    n = np.cumsum(np.arange(1, 21) * 10)  # cumulative units: 10, 30, 60, ...
    rows = pd.DataFrame(
        {
            "experiment_id": "e",
            "metric": "conversion",
            "variant": "holdout",
            "analysis_window": "cumulative",
            "as_of_date": days,
            "n": n,
        }
    )
    rows = rows[rows["as_of_date"] != D(2026, 9, 9)]  # a missing day (e.g. a failed gate)
    daily = rows.assign(analysis_window="day", n=999)  # other windows are ignored
    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA marts")
        conn.execute("CREATE TABLE marts.experiment_stats AS SELECT * FROM rows UNION ALL SELECT * FROM daily")
        got = conn.execute(TRAFFIC_SQL, [D(2026, 9, 1), D(2026, 9, 20)]).df().set_index("as_of_date")["units_per_day"]
    got.index = pd.to_datetime(got.index).date
    cum = dict(zip(days, n))
    assert got[D(2026, 9, 1)] == 10  # first day: its own units
    assert got[D(2026, 9, 4)] == pytest.approx(cum[D(2026, 9, 4)] / 4)  # younger than a week: since the first day
    assert got[D(2026, 9, 7)] == pytest.approx(cum[D(2026, 9, 7)] / 7)
    assert got[D(2026, 9, 8)] == pytest.approx((cum[D(2026, 9, 8)] - cum[D(2026, 9, 1)]) / 7)
    assert got[D(2026, 9, 20)] == pytest.approx((cum[D(2026, 9, 20)] - cum[D(2026, 9, 13)]) / 7)
    # a week back is the missing day: the latest earlier day, over the real gap
    assert got[D(2026, 9, 16)] == pytest.approx((cum[D(2026, 9, 16)] - cum[D(2026, 9, 8)]) / 8)


# --- the grid -------------------------------------------------------------------------


METRICS = {
    "conversion": {"type": "proportion"},
    "d7_retention": {"type": "proportion", "maturity_days": 7},
    "refund_rate": {"type": "ratio", "guardrail": True},
}


def test_scorecard_grid_binding_and_criteria():
    day = D(2026, 9, 20)
    experiments = pd.DataFrame(
        {
            "experiment_id": ["e_rec", "e_late"],
            "model_id": ["rec", "late"],
            "control_variant": ["holdout", "holdout"],
            "start_date": [D(2026, 9, 10), D(2026, 9, 25)],
        }
    )
    variants = pd.DataFrame(
        {
            "experiment_id": ["e_rec", "e_rec", "e_late", "e_late"],
            "variant": ["holdout", "treatment"] * 2,
            "expected_share": [0.1, 0.9] * 2,
        }
    )
    results = pd.DataFrame(
        [
            dict(
                experiment_id="e_rec",
                treatment_variant="treatment",
                metric=m,
                as_of_date=day,
                metric_type=t,
                mean_control=0.3,
                mde_relative=0.2,
                estimate="welch",
                cuped_theta=float("nan"),
                events_control=300.0,
                events_treatment=2_700.0,
            )
            for m, t in (("conversion", "proportion"), ("refund_rate", "ratio"))
        ]
    )  # d7_retention has not matured yet: no results
    stats = pd.DataFrame(
        [
            dict(
                experiment_id="e_rec",
                variant="holdout",
                metric="conversion",
                as_of_date=day,
                n=1000,
                value_sum=300.0,
                value_sum_sq=300.0,
            )
        ]
    )
    traffic = pd.DataFrame(
        [
            dict(experiment_id="e_rec", variant=v, metric="conversion", as_of_date=day, n=n, units_per_day=r)
            for v, n, r in (("holdout", 1000, 10.0), ("treatment", 9000, 90.0))
        ]
    )
    conversion_kr = KeyResult(
        "site_conversion",
        "obj",
        "",
        "kpi",
        "conversion_rate",
        None,
        None,
        None,
        0.05,
        0.06,
        D(2026, 9, 1),
        D(2026, 12, 31),
        7,
        "conversion",
    )
    retention_kr = kr(id="retention", metric="d7_retention", target=0.05)
    other_model_kr = kr(id="other", model_id="late", metric="conversion")

    def card(days, key_results, results=results):
        return metric_scorecard(
            days, experiments, variants, results, stats, traffic, METRICS, key_results, ALPHA, POWER
        )

    out = card([day], [conversion_kr, retention_kr, other_model_kr])

    assert set(out["experiment_id"]) == {"e_rec"}  # e_late has not started
    assert len(out) == 3 and out["date"].eq(day).all()
    by_metric = out.set_index("metric")
    conv = by_metric.loc["conversion"]
    assert (conv["attributable"], conv["units"], conv["units_per_day"], conv["maturity_days"]) == (
        True,
        10_000,
        100.0,
        0,
    )
    assert conv["balanced_by_guardrail"] == "refund_rate" and conv["key_result"] == "site_conversion"
    assert conv["target_relative_effect"] == pytest.approx(0.2)
    # by hand: variance p(1-p) n/(n-1) of the control arm, effect 0.2 x 0.3, 90% treated
    var = 0.3 * 0.7 * 1000 / 999
    z = st.norm.ppf(0.975) + st.norm.ppf(0.8)
    n = z**2 * (var / 0.1 + var / 0.9) / 0.06**2
    assert conv["required_units"] == pytest.approx(math.ceil(n * 0.1) + math.ceil(n * 0.9))
    assert conv["days_needed"] == pytest.approx(conv["required_units"] / 100.0)
    assert conv["detectable_by_deadline"] and pd.isna(conv["warning"])

    guard = by_metric.loc["refund_rate"]
    assert guard["is_guardrail"] and pd.isna(guard["balanced_by_guardrail"]) and pd.isna(guard["key_result"])
    retention = by_metric.loc["d7_retention"]
    assert not retention["attributable"] and retention["maturity_days"] == 7 and retention["units"] == 0
    assert "retention: no d7_retention results for e_rec" in retention["warning"]

    # a run past the data's end: days without results or traffic get no row ("0 units, not attributable" beside
    # thousands assigned); the report shows the newest day with rows
    later = card([day, day + dt.timedelta(days=1), day + dt.timedelta(days=2)], [conversion_kr])
    assert set(later["date"]) == {day}

    # a result the attribution could not test (no variance in an arm) attributes nothing
    untested = results.assign(degenerate_reason=["no variance in either arm", None])
    again = card([day], [conversion_kr], untested).set_index("metric")
    assert not again.loc["conversion", "attributable"] and again.loc["refund_rate", "attributable"]
    # ... and has no MDE at today's traffic: the normal approximation it rests on is what the rule refuses
    assert math.isnan(again.loc["conversion", "mde_relative"]) and again.loc["refund_rate", "mde_relative"] == 0.2

    assert [
        k.id
        for k in bound_key_results(
            [conversion_kr, retention_kr, other_model_kr], "e_late", "late", "conversion", "treatment"
        )
    ] == ["site_conversion", "other"]


def test_a_key_result_whose_arms_would_hold_too_few_events_by_its_deadline_is_not_detectable():
    # a trial: 3 control events today, and "detectable by its deadline" from the variance alone
    as_of, units, rate, var, mean, share = D(2026, 10, 30), 40, 0.5, 0.075 * 0.925, 0.075, 0.5
    by_deadline = units + rate * 62  # 71 units by 2026-12-31
    few = key_result_feasibility(
        kr(target=3.0), as_of, units, rate, var, mean, share, ALPHA, POWER, events=3.0, min_events=10
    )
    expected_events = 3.0 * by_deadline / units  # 5.3 events at today's rate, by hand
    assert few["detectable_by_deadline"] is False and math.isnan(few["mde_relative_at_deadline"])
    assert f"about {expected_events:,.1f} events" in few["warning"] and "min_events_per_arm 10" in few["warning"]
    assert "would not be tested" in few["warning"]
    # the same target without the events rule: the variance alone calls it detectable
    plain = key_result_feasibility(kr(target=3.0), as_of, units, rate, var, mean, share, ALPHA, POWER)
    assert plain["detectable_by_deadline"] and plain["warning"] is None
    # enough events by the deadline (not today): judged by power as before
    later = key_result_feasibility(
        kr(target=3.0), as_of, units, rate, var, mean, share, ALPHA, POWER, events=3.0, min_events=5
    )
    assert {k: later[k] for k in plain} == plain


def test_a_deadline_that_brings_no_new_unit_has_todays_mde_with_each_arms_own_variance_and_split():
    # a trial (37 of 397 control events, 18 of 409 treated): MDE 53.5% today, 61.6% "by the deadline" with no new
    # patient, the plan using the control's variance for both arms and the design's 50/50 split
    day = D(2026, 1, 15)
    counts = {"holdout": (397, 37), "treatment": (409, 18)}
    experiments = pd.DataFrame(
        {"experiment_id": ["e"], "model_id": ["m"], "control_variant": ["holdout"], "start_date": [D(2025, 12, 1)]}
    )
    variants = pd.DataFrame({"experiment_id": "e", "variant": ["holdout", "treatment"], "expected_share": 0.5})
    stats = pd.DataFrame(
        [
            dict(experiment_id="e", variant=v, metric="conversion", as_of_date=day, n=n, value_sum=x, value_sum_sq=x)
            for v, (n, x) in counts.items()
        ]
    )
    traffic = pd.DataFrame(
        [
            dict(experiment_id="e", variant=v, metric="conversion", as_of_date=day, n=n, units_per_day=0.0)
            for v, (n, _) in counts.items()
        ]
    )
    # by hand: each arm's sample variance p(1-p) n/(n-1), the control's mean, z at alpha 0.05 and power 0.8
    var = {v: (x / n) * (1 - x / n) * n / (n - 1) for v, (n, x) in counts.items()}
    mean = 37 / 397
    z = st.norm.ppf(1 - ALPHA / 2) + st.norm.ppf(POWER)
    today = z * math.sqrt(var["holdout"] / 397 + var["treatment"] / 409) / mean
    results = pd.DataFrame(
        [
            dict(
                experiment_id="e",
                treatment_variant="treatment",
                metric="conversion",
                as_of_date=day,
                metric_type="proportion",
                mean_control=mean,
                mde_relative=today,
                estimate="welch",
                cuped_theta=float("nan"),
                events_control=37.0,
                events_treatment=18.0,
            )
        ]
    )
    target = kr(id="fewer_events", model_id="m", metric="conversion", target=-0.6, deadline=D(2026, 3, 31))
    row = metric_scorecard(
        [day],
        experiments,
        variants,
        results,
        stats,
        traffic,
        {"conversion": {"type": "proportion"}},
        [target],
        ALPHA,
        POWER,
    ).iloc[0]
    assert row["mde_relative"] == pytest.approx(today, rel=1e-12)
    assert row["mde_relative_at_deadline"] == pytest.approx(today, rel=1e-9)  # no new unit: today's MDE
    # the units a -60% effect needs at the arms' split so far, each arm with its own variance
    split = 409 / 806
    n = z**2 * (var["holdout"] / (1 - split) + var["treatment"] / split) / (0.6 * mean) ** 2
    assert row["required_units"] == pytest.approx(math.ceil(n * (1 - split)) + math.ceil(n * split), abs=1)
    assert row["detectable_by_deadline"] == (0.6 >= today)
