"""Issue 13 items 1, 2, 4, 5: no false significance, intervals that agree with the decision, ROI with its CI,
small samples not decision-grade.

Oracles: scipy's exact tests (Fisher, Boschloo) on small 2x2 tables, statsmodels' Holm, scipy's t
quantiles and hand-computed Welch statistics with numpy.
"""

from datetime import date

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st
from statsmodels.stats.multitest import multipletests

from orchestration.lib.attribution import AttributionSettings, experiment_results, model_impact
from orchestration.lib.settings import dbt_var
from orchestration.lib.stats import ArmStats, adjusted_alpha, compare_means, effective_events
from tests.unit.test_attribution_engine import METRICS, experiments_of, simulate, variants_of

AS_OF = pd.Timestamp(date(2026, 10, 1))
ALPHA = 0.05
DECLARED = dbt_var("experiment_metrics")


def _arm_row(experiment_id, variant, metric, y, d=None, x=None, window="cumulative") -> dict:
    """One experiment_stats row from per-unit values (numpy arrays)."""
    y = np.asarray(y, float)
    d = np.zeros_like(y) if d is None else np.asarray(d, float)
    x = np.zeros_like(y) if x is None else np.asarray(x, float)
    spec = DECLARED[metric]
    return {
        "experiment_id": experiment_id,
        "variant": variant,
        "is_control": variant == "holdout",
        "metric": metric,
        "metric_type": spec["type"],
        "analysis_window": window,
        "as_of_date": AS_OF,
        "n": len(y),
        "value_sum": y.sum(),
        "value_sum_sq": (y * y).sum(),
        "denominator_sum": d.sum(),
        "denominator_sum_sq": (d * d).sum(),
        "value_denominator_sum": (y * d).sum(),
        "covariate_sum": x.sum(),
        "covariate_sum_sq": (x * x).sum(),
        "value_covariate_sum": (x * y).sum(),
    }


def _binary(k: int, n: int) -> np.ndarray:
    return np.r_[np.ones(k), np.zeros(n - k)]


def _results(rows: list[dict], shares=(0.5, 0.5), settings=AttributionSettings()) -> pd.DataFrame:
    stats = pd.DataFrame(rows)
    return experiment_results(stats, experiments_of(stats), variants_of(stats, shares), DECLARED, settings)


def _two_by_two(k_c, n_c, k_t, n_t, metric="conversion") -> pd.Series:
    rows = [_arm_row("e", "holdout", metric, _binary(k_c, n_c)), _arm_row("e", "treatment", metric, _binary(k_t, n_t))]
    (row,) = [r for _, r in _results(rows, shares=(n_c / (n_c + n_t), n_t / (n_c + n_t))).iterrows()]
    return row


# --- 1. degenerate comparisons ---------------------------------------------------


@pytest.mark.parametrize("k_c, n_c, k_t, n_t", [(0, 29, 3, 30), (0, 29, 13, 300), (0, 6, 3, 60), (29, 29, 28, 30)])
def test_an_arm_without_variance_publishes_no_p_value_where_an_exact_test_finds_nothing(k_c, n_c, k_t, n_t):
    fisher = st.fisher_exact([[k_c, n_c - k_c], [k_t, n_t - k_t]]).pvalue
    assert fisher > 0.2  # the exact test sees no evidence ...
    row = _two_by_two(k_c, n_c, k_t, n_t)
    # ... and nothing that looks like evidence is published: no p-value, no interval, no adjusted p
    for column in (
        "p_value",
        "decision_p_value",
        "cuped_p_value",
        "p_value_adjusted",
        "absolute_ci_low",
        "relative_ci_high",
        "cuped_absolute_ci_low",
        "sequential_absolute_ci_low",
        "adjusted_absolute_ci_low",
        "mde_absolute",
    ):
        assert np.isnan(row[column]), column
    assert row["significant"] is None
    assert "holdout arm: no variance" in row["degenerate_reason"]
    assert not row["decision_grade"] and row["degenerate_reason"] in row["decision_grade_reason"]
    # the point estimate is still the observed difference
    assert row["absolute_lift"] == pytest.approx(k_t / n_t - k_c / n_c)


def test_the_welch_test_alone_would_have_claimed_significance_on_the_same_counts():
    # the audit's case: Welch on the treatment arm's variance alone (p ~ 3e-4) vs Fisher's 0.61
    welch = compare_means(ArmStats(29, 0, 0), ArmStats(300, 13, 13)).p_value
    assert welch < 0.001
    assert np.isnan(_two_by_two(0, 29, 13, 300)["decision_p_value"])


def test_too_few_events_in_an_arm_is_degenerate_where_welch_and_boschloo_disagree():
    # 1 of 10 vs 12 of 30: both arms vary, Welch says p = 0.036, Boschloo's exact test 0.087;
    # the holdout's single event is below min_events_per_arm (5), so no p-value is published
    assert compare_means(ArmStats(10, 1, 1), ArmStats(30, 12, 12)).p_value < ALPHA
    assert st.boschloo_exact([[1, 9], [12, 18]]).pvalue > ALPHA
    row = _two_by_two(1, 10, 12, 30)
    assert np.isnan(row["decision_p_value"]) and row["significant"] is None
    assert "holdout arm: 1 events (< min_events_per_arm 5)" in row["degenerate_reason"]
    assert row["events_control"] == 1 and row["events_treatment"] == 12
    # with the threshold lowered to 1 the comparison is tested again
    stats = pd.DataFrame(
        [
            _arm_row("e", "holdout", "conversion", _binary(1, 10)),
            _arm_row("e", "treatment", "conversion", _binary(12, 30)),
        ]
    )
    lowered = experiment_results(
        stats,
        experiments_of(stats),
        variants_of(stats, (0.25, 0.75)),
        METRICS,
        AttributionSettings(min_events_per_arm=1),
    )
    assert lowered["degenerate_reason"].isna().all() and lowered["decision_p_value"].notna().all()


def _fisher_by_hand(k_c: int, n_c: int, k_t: int, n_t: int) -> float:
    """Fisher's two-sided p: the hypergeometric probability of every table with the margins as likely as, or less
    likely than, the observed (math.comb), the way R's fisher.test sums them (a relative tolerance of 1e-7)."""
    from math import comb

    k, n = k_c + k_t, n_c + n_t

    def pmf(x):
        return comb(n_c, x) * comb(n_t, k - x) / comb(n, k)

    observed = pmf(k_c)
    return sum(pmf(x) for x in range(max(0, k - n_t), min(k, n_c) + 1) if pmf(x) <= observed * (1 + 1e-7))


def test_a_degenerate_proportion_publishes_fishers_exact_p_and_nothing_else_does():
    # a real trial's 32 students: 3 of 18 in the holdout improved, 8 of 14 taught the new way; "not tested" (3 events
    # < 5) was all it said, where an exact test has an answer (p 0.027); a mean and a tested row publish none
    row = _two_by_two(3, 18, 8, 14)
    assert "holdout arm: 3 events" in row["degenerate_reason"] and np.isnan(row["decision_p_value"])
    assert row["exact_p_value"] == pytest.approx(_fisher_by_hand(3, 18, 8, 14), rel=1e-12)
    assert 0.02 < row["exact_p_value"] < 0.03 and not row["decision_grade"]
    flat = _two_by_two(0, 29, 13, 300)  # no variance in an arm
    assert flat["exact_p_value"] == pytest.approx(_fisher_by_hand(0, 29, 13, 300), rel=1e-12)
    assert flat["exact_p_value"] > 0.6
    assert np.isnan(_two_by_two(60, 200, 80, 200)["exact_p_value"])  # tested by Welch: no exact p
    rng = np.random.default_rng(4)
    rows = [_arm_row("e", v, "revenue_per_user", np.r_[rng.gamma(2, 5, 3), np.zeros(20)]) for v in ("holdout", "t")]
    (mean_row,) = [r for _, r in _results(rows).iterrows()]
    assert mean_row["degenerate_reason"] and np.isnan(mean_row["exact_p_value"])


def test_a_never_negative_metrics_relative_interval_stops_at_minus_100_percent():
    # a trial's 32 students, min_events_per_arm lowered to 3: conversion +242.9% [-177.5%, +663.2%] by the delta
    # method; a metric that is never negative cannot fall by more than 100%, so the interval cut to the possible
    # values covers as often. The fixed interval of a plain row is now Fieller's, which passes -100% where the
    # treatment's mean is not itself clear of 0; the sequential one is still the delta method's
    from scipy.stats import t as student

    from orchestration.lib.experiment_metrics import non_negative_metrics

    measures = dbt_var("experiment_measures")
    assert non_negative_metrics(measures, DECLARED) == set(DECLARED)  # counts, revenue (>= 0 by the contract)
    profit = {"profit": {"source": "orders", "aggregate": "sum", "expression": "revenue - 5"}}
    assert non_negative_metrics({**measures, **profit}, {"p": {"type": "mean", "measure": "profit"}}) == set()

    settings = AttributionSettings(min_events_per_arm=3)
    rows = [_arm_row("e", "holdout", "conversion", _binary(3, 18)), _arm_row("e", "t", "conversion", _binary(8, 14))]
    (row,) = [r for _, r in _results(rows, (18 / 32, 14 / 32), settings).iterrows()]
    # the delta method by hand (sample variances, Welch's df): what the sequential interval still rests on
    c, t, v_c, v_t = 3 / 18, 8 / 14, 3 / 18 * 15 / 18 * 18 / 17, 8 / 14 * 6 / 14 * 14 / 13
    rel, se = t / c - 1, np.sqrt(v_t / (14 * c**2) + t**2 * v_c / (18 * c**4))
    df = (v_c / 18 + v_t / 14) ** 2 / ((v_c / 18) ** 2 / 17 + (v_t / 14) ** 2 / 13)
    q = student.ppf(0.975, df)
    assert rel - q * se < -1 and row["relative_se"] == pytest.approx(se, rel=1e-9)
    assert row["sequential_relative_ci_low"] == -1.0
    assert row["absolute_ci_low"] > 0  # the absolute interval is not cut
    # 3 of 18 is not clear of 0 at the t quantile (c^2 < q^2 v_c / 18): Fieller's set is unbounded, no interval
    assert c**2 < q**2 * v_c / 18
    assert np.isnan(row["relative_ci_low"]) and np.isnan(row["relative_ci_high"])

    # 8 of 14 against 3 of 40: the treatment's mean is not clear of 0, Fieller's lower end passes -100%
    def fieller_by_hand(k_c, n_c, k_t, n_t):
        c, t = k_c / n_c, k_t / n_t
        a, b = c * (1 - c) / (n_c - 1), t * (1 - t) / (n_t - 1)  # unbiased variance / n
        q = student.ppf(0.975, (a + b) ** 2 / (a**2 / (n_c - 1) + b**2 / (n_t - 1)))
        quad, half, const = c**2 - q**2 * a, t * c, t**2 - q**2 * b  # R^2 quad - 2 R half + const <= 0
        root = np.sqrt(half**2 - quad * const)
        return (half - root) / quad - 1, (half + root) / quad - 1

    rows = [_arm_row("e", "holdout", "conversion", _binary(8, 14)), _arm_row("e", "t", "conversion", _binary(3, 40))]
    (row,) = [r for _, r in _results(rows, (14 / 54, 40 / 54), settings).iterrows()]
    low, high = fieller_by_hand(8, 14, 3, 40)
    assert low < -1 and row["relative_ci_low"] == -1.0
    assert row["relative_ci_high"] == pytest.approx(high, rel=1e-9)
    assert row["sequential_relative_ci_low"] == -1.0 and row["adjusted_relative_ci_low"] >= -1.0
    # a metric that may be negative keeps its interval
    (free,) = [
        r
        for _, r in experiment_results(
            pd.DataFrame(rows), *_design(rows, (14 / 54, 40 / 54)), DECLARED, settings, non_negative=frozenset()
        ).iterrows()
    ]
    assert free["relative_ci_low"] == -1.0  # a proportion is never negative, whatever the caller says
    means = [
        _arm_row("e", "holdout", "revenue_per_user", np.r_[np.full(8, 100.0), np.zeros(6)]),
        _arm_row("e", "t", "revenue_per_user", np.r_[np.full(3, 100.0), np.zeros(37)]),
    ]
    stats = pd.DataFrame(means)
    design = (experiments_of(stats), variants_of(stats, (14 / 54, 40 / 54)))
    kept = experiment_results(stats, *design, DECLARED, settings).iloc[0]
    cut = experiment_results(stats, *design, DECLARED, settings, non_negative={"revenue_per_user"}).iloc[0]
    assert kept["relative_ci_low"] == pytest.approx(low, rel=1e-9) and cut["relative_ci_low"] == -1.0
    assert kept["relative_ci_high"] == cut["relative_ci_high"] == pytest.approx(high, rel=1e-9)


def _design(rows, shares):
    stats = pd.DataFrame(rows)
    return experiments_of(stats), variants_of(stats, shares)


def test_no_published_p_value_below_alpha_on_small_tables_where_fisher_finds_no_evidence():
    # every 2x2 table with 10-30 units per arm: where a p-value is published and is < 0.05,
    # Fisher's exact test (conservative) is below 0.1; where Fisher is above 0.1, nothing < 0.05 is published
    checked = 0
    for n_c, n_t in ((10, 30), (20, 20), (30, 30), (12, 90)):
        rows, tables = [], {}
        for k_c in range(n_c + 1):
            for k_t in range(0, n_t + 1, 2):
                e = f"e{k_c}_{k_t}"
                tables[e] = (k_c, k_t)
                rows += [
                    _arm_row(e, "holdout", "conversion", _binary(k_c, n_c)),
                    _arm_row(e, "treatment", "conversion", _binary(k_t, n_t)),
                ]
        results = _results(rows, shares=(n_c / (n_c + n_t), n_t / (n_c + n_t)))
        for r in results.itertuples():
            k_c, k_t = tables[r.experiment_id]
            if np.isnan(r.decision_p_value) or r.decision_p_value >= ALPHA:
                continue
            checked += 1
            fisher = st.fisher_exact([[k_c, n_c - k_c], [k_t, n_t - k_t]]).pvalue
            assert fisher < 0.1, (n_c, k_c, n_t, k_t, r.decision_p_value, fisher)
    assert checked > 50


def test_zero_refunds_in_a_ratio_arm_is_degenerate():
    settled = np.ones(29)
    rows = [
        _arm_row("e", "holdout", "refund_rate", np.zeros(29), d=settled),
        _arm_row("e", "treatment", "refund_rate", _binary(3, 30), d=np.ones(30)),
    ]
    (row,) = [r for _, r in _results(rows).iterrows()]
    assert np.isnan(row["decision_p_value"]) and "holdout arm: no variance" in row["degenerate_reason"]
    assert row["guardrail_verdict"] == "inconclusive"


def test_a_degenerate_row_is_left_out_of_its_multiple_testing_family():
    rng = np.random.default_rng(7)
    rows = []
    for variant, lift in (("holdout", 0.0), ("treatment", 0.8)):
        revenue = rng.gamma(2.0, 5.0, 400) + lift
        rows += [
            _arm_row("e", variant, "revenue_per_user", revenue),
            _arm_row("e", variant, "conversion", _binary(60 if variant == "holdout" else 80, 400)),
            # a day-7 cohort where nobody in the holdout came back: degenerate
            _arm_row("e", variant, "d7_retention", _binary(0 if variant == "holdout" else 40, 400)),
        ]
    results = _results(rows).set_index("metric")
    assert np.isnan(results.loc["d7_retention", "p_value_adjusted"])
    tested = results.loc[["revenue_per_user", "conversion"]]
    expected = multipletests(tested["decision_p_value"], method="holm")[1]  # m = 2, not 3
    assert np.allclose(tested["p_value_adjusted"], expected, rtol=0, atol=1e-15)


# --- 2. intervals consistent with the decision -------------------------------------


@pytest.fixture(scope="module")
def many():
    """300 planted and 300 A/A worlds of three metrics each: many rows near the decision boundary."""
    frames = []
    for seed, effects in ((101, True), (102, False)):
        stats = simulate(seed=seed, effects=effects, worlds=300)
        stats["experiment_id"] = stats["experiment_id"] + ("p" if effects else "a")
        frames.append(stats)
    stats = pd.concat(frames, ignore_index=True)
    return experiment_results(stats, experiments_of(stats), variants_of(stats), METRICS)


def test_significant_is_the_adjusted_p_value_below_alpha(many):
    published = many[many["p_value_adjusted"].notna()]
    assert len(published) == len(many)
    assert (published["significant"].astype(bool) == (published["p_value_adjusted"] < ALPHA)).all()
    assert 0.1 < published["significant"].astype(bool).mean() < 0.9  # both kinds of rows are exercised


def test_the_adjusted_interval_excludes_zero_exactly_when_significant(many):
    rows = many[(many["p_value_adjusted"] - ALPHA).abs() > 1e-9]  # not on the boundary itself
    excludes = (rows["adjusted_absolute_ci_low"] > 0) | (rows["adjusted_absolute_ci_high"] < 0)
    assert (excludes == rows["significant"].astype(bool)).all()
    # some rows are significant before the correction and not after: their 95% CI excludes 0, the adjusted one not
    cuped = rows["estimate"] == "cuped"
    low = rows["cuped_absolute_ci_low"].where(cuped, rows["absolute_ci_low"])
    high = rows["cuped_absolute_ci_high"].where(cuped, rows["absolute_ci_high"])
    flipped = ((low > 0) | (high < 0)) & ~rows["significant"].astype(bool)
    assert flipped.any()
    assert not (excludes[flipped]).any()


def test_the_adjusted_interval_is_the_welch_interval_at_the_holm_implied_level(many):
    # Holm multiplies a family's smallest p by m = 3: its interval is the Bonferroni one (level 1 - alpha / 3)
    for _, family in many.groupby("experiment_id"):
        smallest = family.loc[family["decision_p_value"].idxmin()]
        if smallest["p_value_adjusted"] < 1:
            assert smallest["adjusted_ci_level"] == pytest.approx(1 - ALPHA / 3, rel=1e-12)
    # every non-CUPED row by hand: lift +- t_{1 - level/2, df} se, with se from the published 95% interval
    rows = many[many["estimate"] != "cuped"]
    assert len(rows) >= 600  # at least the ratio metric of every world
    for r in rows.itertuples():
        level = ALPHA * r.decision_p_value / r.p_value_adjusted
        assert r.adjusted_ci_level == pytest.approx(1 - level, rel=1e-12)
        se = (r.absolute_ci_high - r.absolute_lift) / st.t.ppf(0.975, r.degrees_of_freedom)
        q = st.t.ppf(1 - level / 2, r.degrees_of_freedom)
        assert r.adjusted_absolute_ci_low == pytest.approx(r.absolute_lift - q * se, rel=1e-9, abs=1e-12)
        assert r.adjusted_absolute_ci_high == pytest.approx(r.absolute_lift + q * se, rel=1e-9, abs=1e-12)


def test_adjusted_alpha_inverts_bonferroni_and_leaves_a_single_test_alone():
    assert adjusted_alpha(0.01, 0.03, 0.05) == pytest.approx(0.05 / 3)
    assert adjusted_alpha(0.2, 0.2, 0.05) == 0.05
    assert np.isnan(adjusted_alpha(float("nan"), float("nan"), 0.05))


# --- 4. ROI with its interval ------------------------------------------------------


def test_roi_ci_is_the_net_value_ci_divided_by_the_known_cost():
    rng = np.random.default_rng(3)
    control, treatment = rng.gamma(2.0, 10.0, 200), rng.gamma(2.0, 11.0, 1800)
    cost = 5000.0
    rows = [
        _arm_row("e", "holdout", "revenue_per_user", control),
        _arm_row("e", "treatment", "revenue_per_user", treatment),
    ]
    stats = pd.DataFrame(rows)
    experiments = experiments_of(stats, model_id="m")
    results = experiment_results(stats, experiments, variants_of(stats, (0.1, 0.9)), METRICS)
    costs = pd.DataFrame(
        {
            "model_id": ["m"],
            "experiment_id": ["e"],
            "analysis_window": ["cumulative"],
            "as_of_date": [AS_OF],
            "model_cost": [cost],
        }
    )
    (row,) = [r for _, r in model_impact(results, stats, costs, "revenue_per_user").iterrows()]
    # by hand: Welch (no covariate, so no CUPED), value = lift x treated users, net = value - cost, ROI = net / cost
    v_c, v_t = control.var(ddof=1) / 200, treatment.var(ddof=1) / 1800
    lift, se = treatment.mean() - control.mean(), np.sqrt(v_c + v_t)
    df = (v_c + v_t) ** 2 / (v_c**2 / 199 + v_t**2 / 1799)
    q = st.t.ppf(0.975, df)
    net_low, net_high = (lift - q * se) * 1800 - cost, (lift + q * se) * 1800 - cost
    assert row["net_value"] == pytest.approx(lift * 1800 - cost, rel=1e-10)
    assert row["roi"] == pytest.approx((lift * 1800 - cost) / cost, rel=1e-10)
    assert row["roi_ci_low"] == pytest.approx(net_low / cost, rel=1e-9)
    assert row["roi_ci_high"] == pytest.approx(net_high / cost, rel=1e-9)
    assert row["decision_grade"]


def test_a_degenerate_value_metric_gives_no_value_or_roi_interval():
    rows = [
        _arm_row("e", "holdout", "revenue_per_user", np.zeros(40)),  # nobody in the holdout bought
        _arm_row("e", "treatment", "revenue_per_user", np.r_[np.full(3, 20.0), np.zeros(357)]),
    ]
    stats = pd.DataFrame(rows)
    experiments = experiments_of(stats, model_id="m")
    results = experiment_results(stats, experiments, variants_of(stats, (0.1, 0.9)), METRICS)
    costs = pd.DataFrame(
        {
            "model_id": ["m"],
            "experiment_id": ["e"],
            "analysis_window": ["cumulative"],
            "as_of_date": [AS_OF],
            "model_cost": [10.0],
        }
    )
    (row,) = [r for _, r in model_impact(results, stats, costs, "revenue_per_user").iterrows()]
    assert row["net_value"] == pytest.approx(60.0 - 10.0)
    assert np.isnan(row["net_value_ci_low"]) and np.isnan(row["roi_ci_high"])
    assert not row["decision_grade"] and "no variance" in row["decision_grade_reason"]


# --- 5. small samples ----------------------------------------------------------------


def test_six_matured_holdout_users_are_not_decision_grade_but_still_trustworthy():
    rows = [
        _arm_row("e", "holdout", "d7_retention", _binary(3, 6)),
        _arm_row("e", "treatment", "d7_retention", _binary(30, 60)),
    ]
    (row,) = [r for _, r in _results(rows, shares=(6 / 66, 60 / 66)).iterrows()]
    assert row["trustworthy"] and not row["decision_grade"]
    assert "holdout arm: 6 units (< min_units_per_arm 30)" in row["decision_grade_reason"]
    big = _two_by_two(30, 60, 40, 60)
    assert big["decision_grade"] and big["decision_grade_reason"] is None


def test_an_untrustworthy_row_is_not_decision_grade():
    rows = [
        _arm_row("e", "holdout", "conversion", _binary(20, 100)),
        _arm_row("e", "treatment", "conversion", _binary(60, 300)),
    ]
    (row,) = [r for _, r in _results(rows, shares=(0.5, 0.5)).iterrows()]  # 100 vs 300 against 50/50: SRM
    assert not row["trustworthy"] and not row["decision_grade"]
    assert "not trustworthy" in row["decision_grade_reason"]


# --- settings and helpers -------------------------------------------------------------


def test_settings_from_a_partial_mapping_take_the_defaults_and_bad_values_name_the_key():
    s = AttributionSettings.from_config({"alpha": 0.1, "value_metric": "x"})
    assert s.alpha == 0.1 and s.min_events_per_arm == 5 and s.min_units_per_arm == 30
    defaults = dbt_var("attribution")
    assert AttributionSettings.from_config(defaults).min_units_per_arm == defaults["min_units_per_arm"]
    with pytest.raises(ValueError, match=r"attribution.min_events_per_arm: must be a number >= 0 \(got -1\)"):
        AttributionSettings.from_config({"min_events_per_arm": -1}, "attribution")


def test_effective_events_counts_units_with_equal_values_and_never_more_than_the_non_zero_units():
    assert effective_events(3.0, 3.0) == 3  # three 1s
    y = np.r_[np.full(4, 7.5), np.zeros(10)]
    assert effective_events(y.sum(), (y * y).sum()) == pytest.approx(4)
    skewed = np.r_[100.0, np.ones(9)]
    assert 1 < effective_events(skewed.sum(), (skewed**2).sum()) < np.count_nonzero(skewed)
    assert effective_events(0.0, 0.0) == 0


def test_only_a_failed_gate_of_a_table_the_lift_reads_makes_it_untrustworthy():
    # 15 bad scores of a monitoring-only model held back the predictions day, and the experiment's every result
    # turned "not trustworthy" although no lift reads predictions (a gate holds back its own table's day only)
    import json
    from pathlib import Path

    from orchestration.lib.attribution import ATTRIBUTION_TABLES, mark_failed_gates

    rng = np.random.default_rng(3)
    stats = pd.DataFrame(
        [
            _arm_row("e", v, "revenue_per_user", rng.gamma(2.0, 5.0, n))
            for v, n in (("holdout", 300), ("treatment", 900))
        ]
    )
    experiments = experiments_of(stats, model_id="m")
    results = experiment_results(stats, experiments, variants_of(stats), DECLARED)
    day = AS_OF - pd.Timedelta(days=2)
    gates = pd.DataFrame(
        {"date": [day, day], "suite": ["raw_predictions", "raw_labels"], "table_name": ["predictions", "labels"]}
    )
    assert mark_failed_gates(results, experiments, gates)["trustworthy"].equals(results["trustworthy"])
    orders = pd.concat([gates, pd.DataFrame({"date": [day], "suite": ["raw_orders"], "table_name": ["orders"]})])
    marked = mark_failed_gates(results, experiments, orders)
    assert not marked["trustworthy"].any()
    assert marked["untrusted_reason"].str.contains(f"quality gate raw_orders failed on {day.date()}").all()
    # every suite that failed, each with its days (a trial's reason named only a sessions day, not the four orders
    # days that moved its lift)
    days = [day - pd.Timedelta(days=k) for k in (9, 7, 5, 4, 3, 1)]
    more = pd.DataFrame(
        {
            "date": [day - pd.Timedelta(days=8), *days],
            "suite": ["raw_sessions"] + ["raw_orders"] * len(days),
            "table_name": ["sessions"] + ["orders"] * len(days),
        }
    )
    said = mark_failed_gates(results, experiments, more)["untrusted_reason"].iloc[0]
    # the first three days or runs of consecutive days, then how many more
    listed = f"{days[0].date()}, {days[1].date()}, {days[2].date()} .. {days[4].date()}"
    assert said.endswith(
        f"quality gate raw_orders failed on {listed} and 1 more day(s); "
        f"quality gate raw_sessions failed on {(day - pd.Timedelta(days=8)).date()}"
    ), said

    # the tables are the lift's: experiment_stats' raw sources in the dbt manifest, and the experiment design
    manifest = json.loads((Path(__file__).parents[2] / "dbt_project" / "target" / "manifest.json").read_text())
    nodes = {**manifest["nodes"], **manifest["sources"]}
    sources, todo = set(), ["model.impact_ledger.experiment_stats"]
    while todo:
        node = nodes[todo.pop()]
        if node["resource_type"] == "source":
            sources.add(node["name"])
        todo += node.get("depends_on", {}).get("nodes", [])
    assert sources | {"experiments", "experiment_variants"} == ATTRIBUTION_TABLES


def test_a_design_gate_failure_naming_one_experiment_untrusts_only_its_results():
    # a trial's second experiment declared shares summing to 1.5: the first experiment's results, declared right,
    # were marked untrustworthy too (a failed gate day concerned every experiment)
    from orchestration.lib.attribution import mark_failed_gates

    rng = np.random.default_rng(5)
    stats = pd.DataFrame(
        [
            _arm_row(e, v, "revenue_per_user", rng.gamma(2.0, 5.0, n))
            for e in ("e1", "e2")
            for v, n in (("holdout", 300), ("treatment", 900))
        ]
    )
    experiments = experiments_of(stats, model_id="m")
    results = experiment_results(stats, experiments, variants_of(stats, shares=(0.25, 0.75)), DECLARED)
    assert results["trustworthy"].all() and set(results["experiment_id"]) == {"e1", "e2"}
    day = AS_OF - pd.Timedelta(days=2)

    def failed(experiments_named):
        gates = pd.DataFrame(
            {
                "date": [day],
                "suite": ["raw_experiment_variants"],
                "table_name": ["experiment_variants"],
                "experiments": [experiments_named],
            }
        )
        marked = mark_failed_gates(results, experiments, gates)
        return dict(zip(marked["experiment_id"], marked["trustworthy"], strict=True))

    assert failed('["e2"]') == {"e1": True, "e2": False}
    assert failed('["e1", "e2"]') == {"e1": False, "e2": False}
    assert failed(None) == {"e1": False, "e2": False}  # a failure naming no experiment concerns every one
    assert failed('["e9"]') == {"e1": True, "e2": True}  # variants of an experiment without results


def test_a_covariate_that_is_the_outcome_leaves_cuped_nothing_to_estimate_and_the_welch_estimate_decides():
    # a trial's buyers converted once before assignment and once after: post == pre for every unit, theta 1, the
    # adjusted outcome constant; the row said "+0.0%, not tested" yet decision-grade with an MDE of 0
    rng = np.random.default_rng(7)
    c_y, t_y = rng.binomial(1, 0.30, 268).astype(float), rng.binomial(1, 0.31, 1051).astype(float)
    rows = [_arm_row("e", "holdout", "conversion", c_y, x=c_y), _arm_row("e", "treatment", "conversion", t_y, x=t_y)]
    (row,) = [r for _, r in _results(rows, shares=(268 / 1319, 1051 / 1319)).iterrows()]
    assert row["cuped_variance_reduction"] == pytest.approx(1.0)
    assert row["estimate"] == "welch"
    welch = st.ttest_ind(t_y, c_y, equal_var=False)
    assert row["decision_p_value"] == pytest.approx(welch.pvalue, rel=1e-9)
    assert row["absolute_lift"] == pytest.approx(t_y.mean() - c_y.mean())
    # the MDE from the arms' own variances (two-sided 5%, 80% power), not 0
    se = np.sqrt(c_y.var(ddof=1) / len(c_y) + t_y.var(ddof=1) / len(t_y))
    assert row["mde_absolute"] == pytest.approx((st.norm.ppf(0.975) + st.norm.ppf(0.8)) * se, rel=1e-6)
