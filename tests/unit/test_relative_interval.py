"""The relative lift's CI of a plain comparison is Fieller's: it agrees with the Welch test of the absolute lift.

A trial (72 customers, an 11-unit holdout with heavy-tailed spend) stored revenue_per_user -45.9% with the delta
method's [-91.1%, -0.66%], which excludes 0, beside p = 0.22 for the same row. The oracle here inverts the Welch test
by brute force: the ratios R = mean_t / mean_c the test of mean_t - R mean_c = 0 (same variances, same Welch df)
does not reject, found by root-finding on the t statistic minus the quantile, from the raw samples with numpy.
"""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from scipy import stats as st

from orchestration.lib.attribution import relative_across_zero_note
from orchestration.lib.stats import (
    ArmStats,
    CupedArmStats,
    RatioArmStats,
    compare_cuped,
    compare_means,
    compare_ratios,
    interval_at,
)

# the trial's shape: 11 control units, one big spender among them, against 49 treated units, many at 0
HOLDOUT = [14, 22, 9, 31, 0, 18, 26, 12, 7, 40, 160.0]
TREATED = [0, 0, 26.0, 0, 0, 28.9, 0, 0, 21.8, 3.3, 0, 11.0, 25.2, 0, 0, 17.7, 6.7, 21.7, 12.4, 20.0, 8.9, 0, 21.9]
TREATED += [0, 0, 36.9, 0, 3.8, 27.3, 0, 0, 0, 0, 4.9, 0, 0, 3.7, 0, 4.7, 0, 0, 0, 0, 0, 23.6, 47.6, 0, 0, 95.0]


def arm(values) -> ArmStats:
    x = np.asarray(values, float)
    return ArmStats(len(x), float(x.sum()), float((x**2).sum()))


def welch_inverted(m_c: float, m_t: float, a: float, b: float, q: float) -> tuple[float, float]:
    """Relative lifts R - 1 at which |mean_t - R mean_c| / sqrt(b + R^2 a) = q, either side of R = mean_t / mean_c
    (a, b: the variances of the means), by brentq; NaN when the statistic never reaches q on one side."""

    def excess(r):
        return abs(m_t - r * m_c) / math.sqrt(b + r * r * a) - q

    centre = m_t / m_c
    ends = []
    for direction in (-1, 1):
        step = max(abs(centre), 1.0)
        while excess(centre + direction * step) < 0:
            step *= 2
            if step > 1e12:
                return math.nan, math.nan
        ends.append(optimize.brentq(excess, centre, centre + direction * step, xtol=1e-14, rtol=1e-14, maxiter=500))
    return ends[0] - 1, ends[1] - 1


def oracle(control, treatment, alpha: float = 0.05) -> tuple[tuple[float, float], float]:
    """(Fieller's relative interval by brute force, the Welch p-value) from the raw samples."""
    c, t = np.asarray(control, float), np.asarray(treatment, float)
    welch = st.ttest_ind(t, c, equal_var=False)
    q = st.t.ppf(1 - alpha / 2, welch.df)
    a, b = c.var(ddof=1) / len(c), t.var(ddof=1) / len(t)
    return welch_inverted(c.mean(), t.mean(), a, b, q), float(welch.pvalue)


def delta_interval(r, alpha: float = 0.05) -> tuple[float, float]:
    q = st.t.ppf(1 - alpha / 2, r.degrees_of_freedom)
    return r.relative_lift - q * r.relative_se, r.relative_lift + q * r.relative_se


def excludes_zero(low: float, high: float) -> bool:
    return low > 0 or high < 0


def test_the_trials_shape_gets_fieller_interval_which_agrees_with_the_welch_test():
    r = compare_means(arm(HOLDOUT), arm(TREATED))
    (low, high), p = oracle(HOLDOUT, TREATED)
    assert r.p_value == pytest.approx(p, rel=1e-9) and p > 0.05  # not significant ...
    assert excludes_zero(*delta_interval(r))  # ... though the delta method's interval excludes 0, as in the trial
    assert (r.relative_ci_low, r.relative_ci_high) == pytest.approx((low, high), rel=1e-9, abs=1e-9)
    assert r.relative_ci_low < 0 < r.relative_ci_high
    assert r.relative_ci_low < r.relative_lift < r.relative_ci_high  # asymmetric, around the same point estimate
    # relative_se stays the delta method's: guardrail verdicts, sequential intervals and the MDE use it
    c, t = np.asarray(HOLDOUT), np.asarray(TREATED)
    m_c, m_t = c.mean(), t.mean()
    delta_se = math.sqrt(t.var(ddof=1) / (len(t) * m_c**2) + m_t**2 * c.var(ddof=1) / (len(c) * m_c**4))
    assert r.relative_se == pytest.approx(delta_se, rel=1e-9)


def test_a_well_powered_comparison_gets_fieller_interval_close_to_the_delta_methods():
    rng = np.random.default_rng(20)
    control, treatment = rng.gamma(2.0, 10.0, 400), rng.gamma(2.0, 11.0, 500)
    r = compare_means(arm(control), arm(treatment))
    (low, high), _ = oracle(control, treatment)
    assert (r.relative_ci_low, r.relative_ci_high) == pytest.approx((low, high), rel=1e-9, abs=1e-9)
    delta_low, delta_high = delta_interval(r)
    width = delta_high - delta_low
    assert abs(r.relative_ci_low - delta_low) < 0.05 * width and abs(r.relative_ci_high - delta_high) < 0.05 * width
    assert (r.relative_ci_low, r.relative_ci_high) != pytest.approx((delta_low, delta_high), rel=1e-6)


def test_the_interval_excludes_0_exactly_when_welchs_p_is_below_alpha():
    rng = np.random.default_rng(7)
    agree = delta_disagrees = unbounded = 0
    for run in range(400):
        control = rng.lognormal(3.0, 1.2, int(rng.integers(8, 16)))
        treatment = rng.lognormal(3.0 + rng.choice([0.0, 0.4, 0.8]), 1.0, int(rng.integers(20, 60)))
        r = compare_means(arm(control), arm(treatment))
        p = st.ttest_ind(treatment, control, equal_var=False).pvalue
        assert r.p_value == pytest.approx(p, rel=1e-9)
        if math.isnan(r.relative_ci_low):
            # unbounded: only where the control's mean is not itself distinguishable from 0 at the same quantile
            q = st.t.ppf(0.975, r.degrees_of_freedom)
            assert control.mean() ** 2 <= q**2 * control.var(ddof=1) / len(control)
            assert math.isnan(r.relative_ci_high)
            unbounded += 1
            continue
        assert excludes_zero(r.relative_ci_low, r.relative_ci_high) == (p < 0.05), run
        agree += 1
        delta_disagrees += excludes_zero(*delta_interval(r)) != (p < 0.05)
    assert agree >= 340 and unbounded > 0  # 8 to 15 heavy-tailed units: the control's mean is sometimes not clear of 0
    assert delta_disagrees > 0  # the delta method's interval fails this test on these samples


def test_an_unbounded_fieller_set_gives_nan_bounds():
    # one spender among ten zeros: the control's mean is 1 standard error from 0, below the t quantile
    holdout = [0.0] * 10 + [300.0]
    r = compare_means(arm(holdout), arm(TREATED))
    assert not math.isnan(r.relative_lift) and not math.isnan(r.relative_se) and not math.isnan(r.p_value)
    assert math.isnan(r.relative_ci_low) and math.isnan(r.relative_ci_high)
    assert (r.absolute_ci_low, r.absolute_ci_high) == pytest.approx(
        tuple(st.ttest_ind(TREATED, holdout, equal_var=False).confidence_interval(0.95)), rel=1e-9
    )
    assert math.isnan(interval_at(r, 0.05)[2]) and math.isnan(interval_at(r, 0.05)[3])


@pytest.mark.parametrize("alpha", [0.5, 0.2, 0.05, 0.01])
def test_interval_at_another_level_is_fieller_at_that_level(alpha):
    r = compare_means(arm(HOLDOUT), arm(TREATED))
    (low, high), p = oracle(HOLDOUT, TREATED, alpha)
    abs_low, abs_high, rel_low, rel_high = interval_at(r, alpha)
    assert (rel_low, rel_high) == pytest.approx((low, high), rel=1e-9, abs=1e-9, nan_ok=True)
    # at 99% the holdout's mean is no longer clear of 0: no bounded interval
    assert math.isnan(rel_low) == math.isnan(rel_high) == (alpha == 0.01)
    assert excludes_zero(rel_low, rel_high) == (p < alpha) == excludes_zero(abs_low, abs_high)
    # at the result's own level it reproduces the stored interval
    assert interval_at(r, 0.05)[2:] == pytest.approx((r.relative_ci_low, r.relative_ci_high), rel=1e-12)


def test_a_ratio_metric_gets_fieller_interval_on_its_arm_ratios():
    rng = np.random.default_rng(3)
    arms = []
    for n, scale in ((12, 30.0), (45, 24.0)):
        orders = rng.integers(1, 4, n).astype(float)
        revenue = orders * rng.gamma(1.5, scale, n)
        arms.append(
            RatioArmStats(
                n,
                revenue.sum(),
                (revenue**2).sum(),
                orders.sum(),
                (orders**2).sum(),
                (revenue * orders).sum(),
            )
        )
    c, t = arms
    r = compare_ratios(c, t)
    a, b = c.unit_variance / c.n, t.unit_variance / t.n
    q = st.t.ppf(0.975, r.degrees_of_freedom)
    low, high = welch_inverted(c.ratio, t.ratio, a, b, q)
    assert (r.relative_ci_low, r.relative_ci_high) == pytest.approx((low, high), rel=1e-9, abs=1e-9)
    assert excludes_zero(r.relative_ci_low, r.relative_ci_high) == (r.p_value < 0.05)
    assert interval_at(r, 0.01)[2:] == pytest.approx(
        welch_inverted(c.ratio, t.ratio, a, b, st.t.ppf(0.995, r.degrees_of_freedom)), rel=1e-9
    )


def test_cuped_keeps_the_delta_method_at_every_level():
    rng = np.random.default_rng(5)
    x = rng.gamma(2.0, 10.0, (2, 60))
    y = 0.8 * x + rng.normal(0, 5, (2, 60)) + np.array([[0.0], [3.0]])
    c, t = (
        CupedArmStats(60, *map(float, (yi.sum(), (yi**2).sum(), xi.sum(), (xi**2).sum(), (xi * yi).sum())))
        for xi, yi in zip(x, y)
    )
    cuped = compare_cuped(c, t)
    r = cuped.result
    assert r.absolute_lift != pytest.approx(r.mean_treatment - r.mean_control, rel=1e-6)  # adjusted
    assert (r.relative_ci_low, r.relative_ci_high) == pytest.approx(delta_interval(r), rel=1e-9)
    assert interval_at(r, 0.01)[2:] == pytest.approx(delta_interval(r, 0.01), rel=1e-9)
    # its unadjusted comparison is a plain one: Fieller's
    (low, high), _ = oracle(y[0], y[1])
    u = cuped.unadjusted
    assert (u.relative_ci_low, u.relative_ci_high) == pytest.approx((low, high), rel=1e-9, abs=1e-9)


def test_the_across_zero_note_concerns_only_cuped_rows():
    rows = pd.DataFrame(
        {
            "metric": ["revenue_per_user", "conversion", "orders"],
            "estimate": ["welch", "cuped", "delta_method_ratio"],
            "significant": [True, True, True],
            "ci_low": [-0.05, -0.05, -0.05],
            "ci_high": [2.3, 2.3, 2.3],
        }
    )
    note = relative_across_zero_note(rows, pd.Series(["m", "m", "m"]))
    assert note.startswith("significant beside a relative interval across 0 (m conversion): the test is of")
    assert "CUPED's relative interval" in note
    assert relative_across_zero_note(rows.iloc[[0, 2]], pd.Series(["m", "m"])) is None
