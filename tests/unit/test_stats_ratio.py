"""Ratio metrics: delta method vs numpy on raw unit arrays."""

import math

import numpy as np
import pytest
from scipy import stats as st

from orchestration.lib.stats import RatioArmStats, compare_ratios, welch_df


def arm(num, den) -> RatioArmStats:
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    return RatioArmStats(len(num), num.sum(), (num**2).sum(), den.sum(), (den**2).sum(), (num * den).sum())


def var_ratio(num, den) -> float:
    """Var(sum num / sum den) by the delta method, with numpy's (co)variances."""
    r = num.sum() / den.sum()
    cov = np.cov(num, den, ddof=1)
    return (cov[0, 0] - 2 * r * cov[0, 1] + r**2 * cov[1, 1]) / (len(num) * den.mean() ** 2)


@pytest.mark.parametrize("seed", range(4))
def test_average_order_value_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    orders_c, orders_t = rng.poisson(1.2, 900) + 1, rng.poisson(1.3, 1400) + 1
    revenue_c = orders_c * rng.gamma(4, 6.0, 900)
    revenue_t = orders_t * rng.gamma(4, 6.5, 1400)
    r = compare_ratios(arm(revenue_c, orders_c), arm(revenue_t, orders_t))
    r_c, r_t = revenue_c.sum() / orders_c.sum(), revenue_t.sum() / orders_t.sum()
    v_c, v_t = var_ratio(revenue_c, orders_c), var_ratio(revenue_t, orders_t)
    assert (r.mean_control, r.mean_treatment) == pytest.approx((r_c, r_t), rel=1e-12)
    assert r.absolute_lift == pytest.approx(r_t - r_c, rel=1e-10)
    assert r.absolute_se == pytest.approx(math.sqrt(v_c + v_t), rel=1e-9)
    # same thing as the variance of the linearised unit values (num - R den) / mean(den)
    lin_c = (revenue_c - r_c * orders_c) / orders_c.mean()
    assert v_c == pytest.approx(lin_c.var(ddof=1) / len(lin_c), rel=1e-9)
    # Welch df on the per-unit delta variances n Var(R), as gbstats
    df = welch_df(900 * v_c, 900, 1400 * v_t, 1400)
    assert r.degrees_of_freedom == pytest.approx(df, rel=1e-9)
    q = st.t.ppf(0.975, df)
    assert r.absolute_ci_low == pytest.approx(r_t - r_c - q * math.sqrt(v_c + v_t), rel=1e-9)
    assert r.p_value == pytest.approx(2 * st.t.sf(abs(r_t - r_c) / math.sqrt(v_c + v_t), df), rel=1e-9)
    assert r.relative_lift == pytest.approx(r_t / r_c - 1, rel=1e-9)
    rel_se = math.sqrt(v_t / r_c**2 + r_t**2 * v_c / r_c**4)
    assert r.relative_se == pytest.approx(rel_se, rel=1e-9)


def test_refund_rate_and_constant_denominator_reduces_to_mean():
    rng = np.random.default_rng(3)
    completed = rng.poisson(2, 500) + 1
    refunded = rng.binomial(completed, 0.05)
    r = compare_ratios(arm(refunded, completed + refunded), arm(refunded[::-1], (completed + refunded)[::-1]))
    assert r.absolute_lift == pytest.approx(0.0, abs=1e-15)  # same units, reordered
    # one order per unit: the ratio is the plain mean and the delta method is exactly the sample variance
    y = rng.normal(5, 2, 300)
    one = arm(y, np.ones(300))
    assert one.ratio == pytest.approx(y.mean(), rel=1e-12)
    assert one.unit_variance == pytest.approx(y.var(ddof=1), rel=1e-9)


def test_degenerate_ratio_inputs():
    zero_den = arm([0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
    good = arm([10.0, 20.0, 5.0], [1.0, 2.0, 1.0])
    r = compare_ratios(zero_den, good)
    assert math.isnan(r.mean_control) and math.isnan(r.absolute_lift) and math.isnan(r.p_value)
    r = compare_ratios(arm([3.0], [1.0]), good)
    assert math.isnan(r.absolute_se) and r.absolute_lift == pytest.approx(35 / 4 - 3)
    # constant ratio in both arms: zero variance, nothing to test
    r = compare_ratios(arm([2.0, 4.0], [1.0, 2.0]), arm([3.0, 6.0], [1.0, 2.0]))
    assert r.absolute_lift == pytest.approx(1.0) and math.isnan(r.p_value) and math.isnan(r.absolute_ci_low)
