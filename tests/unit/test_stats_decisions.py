"""Multiple testing, sequential intervals, guardrail verdicts and incremental value."""

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats as st
from statsmodels.stats.multitest import multipletests

from orchestration.lib.stats import (
    ArmStats,
    LiftResult,
    adjust_p_values,
    compare_means,
    guardrail_verdict,
    incremental_value,
    sequential_ci,
    sequential_half_width,
    sequential_p_value,
)

NAN = float("nan")


# --- multiple testing --------------------------------------------------------


@pytest.mark.parametrize("method, sm_method", [("holm", "holm"), ("bh", "fdr_bh")])
@pytest.mark.parametrize("seed", range(5))
def test_adjust_p_values_matches_statsmodels(method, sm_method, seed):
    rng = np.random.default_rng(seed)
    p = np.r_[rng.uniform(0, 0.05, 3), rng.uniform(0, 1, 6), [0.01, 0.01]]  # ties included
    rng.shuffle(p)
    expected = multipletests(p, method=sm_method)[1]
    assert adjust_p_values(list(p), method) == pytest.approx(list(expected), rel=1e-12)


@pytest.mark.parametrize("method, sm_method", [("holm", "holm"), ("bh", "fdr_bh")])
def test_adjust_p_values_nan_safe(method, sm_method):
    p = [0.04, NAN, 0.001, 0.3, NAN, 0.02]
    out = adjust_p_values(p, method)
    assert math.isnan(out[1]) and math.isnan(out[4])
    finite = [0.04, 0.001, 0.3, 0.02]  # NaNs do not count towards m
    expected = multipletests(finite, method=sm_method)[1]
    assert [out[i] for i in (0, 2, 3, 5)] == pytest.approx(list(expected), rel=1e-12)
    assert adjust_p_values([], method) == []
    assert all(math.isnan(x) for x in adjust_p_values([NAN, NAN], method))
    with pytest.raises(ValueError):
        adjust_p_values(p, "bonferroni")


# --- sequential --------------------------------------------------------------


def test_sequential_half_width_by_hand():
    var, n, alpha, tau = 0.0004, 20_000, 0.05, 5000
    rho2 = (-2 * math.log(alpha) + math.log(1 - 2 * math.log(alpha))) / tau
    big = n * rho2 + 1
    expected = math.sqrt(var * n) * math.sqrt(2 * big * math.log(math.sqrt(big) / alpha) / (n**2 * rho2))
    assert sequential_half_width(var, n, alpha, tau) == pytest.approx(expected, rel=1e-12)
    # always wider than the fixed-horizon normal interval it replaces
    assert expected > st.norm.ppf(0.975) * math.sqrt(var)
    for args in ((0.0, n), (NAN, n), (var, 0)):
        assert math.isnan(sequential_half_width(*args))


def test_sequential_p_value_is_dual_to_the_interval():
    # p < alpha exactly when the confidence sequence at that alpha excludes 0
    n, var = 10_000, 0.01
    hw = sequential_half_width(var, n)
    assert sequential_p_value(hw * 1.0001, var, n) < 0.05 < sequential_p_value(hw * 0.9999, var, n)
    assert sequential_p_value(0.0, var, n) == 1.0
    assert sequential_p_value(1e6, var, n) == 0.0  # no overflow
    assert math.isnan(sequential_p_value(0.1, 0.0, n))


def test_sequential_ci_wraps_a_lift_result():
    rng = np.random.default_rng(2)
    c, t = rng.normal(10, 3, 800), rng.normal(10.5, 3, 900)
    r = compare_means(ArmStats(800, c.sum(), (c**2).sum()), ArmStats(900, t.sum(), (t**2).sum()))
    s = sequential_ci(r, tau=2000)
    hw = sequential_half_width(r.absolute_se**2, 1700, tau=2000)
    rel_hw = sequential_half_width(r.relative_se**2, 1700, tau=2000)
    assert (s.absolute_ci_low, s.absolute_ci_high) == pytest.approx((r.absolute_lift - hw, r.absolute_lift + hw))
    rel = r.relative_lift
    assert (s.relative_ci_low, s.relative_ci_high) == pytest.approx((rel - rel_hw, rel + rel_hw))
    assert s.absolute_ci_low < r.absolute_ci_low and s.absolute_ci_high > r.absolute_ci_high


# --- guardrails --------------------------------------------------------------


def lift(rel, rel_se, df=1000.0) -> LiftResult:
    return LiftResult(1000, 1000, 1.0, 1.0 + rel, rel, rel_se, NAN, NAN, rel, rel_se, NAN, NAN, df, NAN)


Q = st.t.ppf(0.95, 1000.0)


@pytest.mark.parametrize(
    "rel, se, lower_is_better, expected",
    [
        # higher is better (revenue): harm = -relative lift, margin 2%
        (0.00, 0.005, False, "pass"),  # lower bound -0.82% > -2%
        (0.05, 0.01, False, "pass"),  # clearly better
        (-0.01, 0.01, False, "inconclusive"),  # lower bound -2.6% crosses -2%
        (-0.05, 0.01, False, "fail"),  # upper bound -3.4% < -2%: harm beyond the margin
        (-0.03, 0.001, False, "fail"),
        # lower is better (refund rate): harm = +relative lift
        (0.00, 0.005, True, "pass"),
        (0.05, 0.01, True, "fail"),
        (0.01, 0.01, True, "inconclusive"),
        (-0.10, 0.02, True, "pass"),
    ],
)
def test_guardrail_verdicts(rel, se, lower_is_better, expected):
    assert guardrail_verdict(lift(rel, se), margin=0.02, lower_is_better=lower_is_better) == expected


def test_guardrail_boundaries_and_degenerate():
    margin, se = 0.02, 0.01
    just_pass = -margin + Q * se + 1e-9  # one-sided lower bound of the lift just above -margin
    assert guardrail_verdict(lift(just_pass, se), margin, False) == "pass"
    assert guardrail_verdict(lift(just_pass - 2e-9, se), margin, False) == "inconclusive"
    just_fail = -margin - Q * se - 1e-9  # one-sided upper bound just below -margin
    assert guardrail_verdict(lift(just_fail, se), margin, False) == "fail"
    assert guardrail_verdict(lift(just_fail + 2e-9, se), margin, False) == "inconclusive"
    # a looser alpha makes the bounds tighter
    assert guardrail_verdict(lift(-0.01, 0.01), margin, False, alpha=0.2) == "pass"
    for bad in (lift(NAN, se), lift(0.0, NAN), lift(0.0, 0.0), lift(0.0, se, df=NAN)):
        assert guardrail_verdict(bad, margin, False) == "inconclusive"


def test_a_plain_guardrail_is_judged_by_fiellers_bound_not_the_delta_methods():
    # a trial's refund rate: 6 of 82 draws refunded in the holdout, 26 of 702 in the treated arm, margin 10%: the
    # delta method's one-sided bound (-12.8%) passed it beside a published relative interval reaching +128%
    from scipy.optimize import brentq

    control, treatment = ArmStats(82, 6, 6), ArmStats(702, 26, 26)  # a proportion: sum of squares = sum
    result = compare_means(control, treatment)
    q = st.t.ppf(0.95, result.degrees_of_freedom)
    assert result.relative_lift + q * result.relative_se < 0.10  # the old rule's pass
    # the oracle: the largest ratio R the one-sided Welch test at q does not reject, by root finding
    mc, mt = control.mean, treatment.mean
    vc, vt = control.variance / control.n, treatment.variance / treatment.n

    def t_stat(r):
        return (mt - r * mc) / math.sqrt(vt + r * r * vc)

    upper = brentq(lambda r: t_stat(r) + q, mt / mc, 50.0) - 1
    assert upper > 0.10  # harm up to +48% is not ruled out
    assert guardrail_verdict(result, 0.10, lower_is_better=True) == "inconclusive"
    # a margin above that bound passes, as the bound says
    assert guardrail_verdict(result, upper + 0.01, lower_is_better=True) == "pass"
    assert guardrail_verdict(result, upper - 0.01, lower_is_better=True) == "inconclusive"


# --- incremental value -------------------------------------------------------


def test_incremental_value_scales_the_lift_ci():
    rng = np.random.default_rng(4)
    c, t = rng.gamma(2, 10, 1500), rng.gamma(2, 11, 13500)
    r = compare_means(ArmStats(1500, c.sum(), (c**2).sum()), ArmStats(13500, t.sum(), (t**2).sum()))
    v = incremental_value(r, treated_units=13500, cost=5000.0)
    assert v.value == pytest.approx(r.absolute_lift * 13500)
    assert (v.value_ci_low, v.value_ci_high) == pytest.approx((r.absolute_ci_low * 13500, r.absolute_ci_high * 13500))
    net = (v.net_value, v.net_ci_low, v.net_ci_high)
    assert net == pytest.approx((v.value - 5000, v.value_ci_low - 5000, v.value_ci_high - 5000))
    assert (v.roi, v.roi_ci_low, v.roi_ci_high) == pytest.approx(tuple(x / 5000 for x in net))
    # another alpha recomputes the interval from the SE and df
    v90 = incremental_value(r, 13500, 5000.0, alpha=0.1)
    q = st.t.ppf(0.95, r.degrees_of_freedom)
    assert v90.value_ci_high == pytest.approx((r.absolute_lift + q * r.absolute_se) * 13500)
    # free models have no ROI; degenerate lifts give NaN intervals
    free = incremental_value(r, 13500, 0.0)
    assert free.net_value == free.value and math.isnan(free.roi) and math.isnan(free.roi_ci_low)
    bad = incremental_value(replace(r, absolute_se=NAN), 13500, 5000.0)
    assert bad.value == v.value and math.isnan(bad.net_ci_low) and math.isnan(bad.roi_ci_high)


def test_a_cost_per_unit_that_falls_is_money_made_with_scipys_welch_interval():
    # a trial's coaching cut claims per patient by 26.6%: "incremental revenue -98,170, net value -123,235"
    rng = np.random.default_rng(8)
    control, treated = rng.gamma(2, 500, 60), rng.gamma(2, 370, 240)
    r = compare_means(*(ArmStats(len(x), x.sum(), (x**2).sum()) for x in (control, treated)))
    v = incremental_value(r, treated_units=240, cost=25_000.0, lower_is_better=True)
    # the oracle: scipy's Welch test of the claims saved per treated patient (control - treatment)
    welch = st.ttest_ind(control, treated, equal_var=False)
    low, high = welch.confidence_interval(0.95)
    saved = control.mean() - treated.mean()
    assert saved > 0 and v.value == pytest.approx(saved * 240, rel=1e-12)
    assert (v.value_ci_low, v.value_ci_high) == pytest.approx((low * 240, high * 240), rel=1e-9)
    assert v.net_value == pytest.approx(saved * 240 - 25_000, rel=1e-12)
    assert (v.roi_ci_low, v.roi_ci_high) == pytest.approx(
        ((low * 240 - 25_000) / 25_000, (high * 240 - 25_000) / 25_000)
    )
