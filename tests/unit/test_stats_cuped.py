"""CUPED vs OLS (statsmodels) and hand computations on raw unit arrays."""

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from orchestration.lib.stats import ArmStats, CupedArmStats, compare_cuped, compare_means, cuped_theta


def arm(y, x) -> CupedArmStats:
    y, x = np.asarray(y, dtype=float), np.asarray(x, dtype=float)
    return CupedArmStats(len(y), y.sum(), (y**2).sum(), x.sum(), (x**2).sum(), (x * y).sum())


def world(seed, n_c=3000, n_t=2000, lift=1.0):
    rng = np.random.default_rng(seed)
    x_c, x_t = rng.gamma(3, 5, n_c), rng.gamma(3, 5, n_t)
    # heterogeneous slopes and skewed noise: OLS and CUPED agreeing is not a coincidence of a nice model
    y_c = 0.7 * x_c + rng.gamma(2, 4, n_c)
    y_t = 0.9 * x_t + rng.gamma(2, 4, n_t) + lift
    return (y_c, x_c), (y_t, x_t)


@pytest.mark.parametrize("seed", range(3))
def test_within_arm_theta_reproduces_ols_treatment_coefficient(seed):
    (y_c, x_c), (y_t, x_t) = world(seed)
    c, t = arm(y_c, x_c), arm(y_t, x_t)
    treated = np.r_[np.zeros(len(y_c)), np.ones(len(y_t))]
    frame = pd.DataFrame({"y": np.r_[y_c, y_t], "x": np.r_[x_c, x_t], "treated": treated})
    frame["x_centred"] = frame["x"] - frame["x"].mean()
    ols = smf.ols("y ~ treated + x_centred", frame).fit(cov_type="HC2")
    # By Frisch–Waugh–Lovell the x coefficient of y ~ treated + x is the pooled
    # WITHIN-arm slope sum S_xy / sum S_xx, and then the treatment coefficient is
    # exactly (Ybar_t - Ybar_c) - theta (Xbar_t - Xbar_c): that pooling, not
    # gbstats's total-sample one, is what makes CUPED and OLS agree exactly.
    theta = cuped_theta(c, t, "within")
    assert theta == pytest.approx(ols.params["x_centred"], rel=1e-12)
    r = compare_cuped(c, t, theta=theta)
    assert r.theta == theta
    assert r.result.absolute_lift == pytest.approx(ols.params["treated"], rel=1e-12)
    # the Welch SE of the adjusted lift ignores theta's own noise: close to the robust OLS SE, not equal
    assert r.result.absolute_se == pytest.approx(ols.bse["treated"], rel=0.01)


@pytest.mark.parametrize("seed", range(3))
def test_default_theta_is_total_sample_slope(seed):
    (y_c, x_c), (y_t, x_t) = world(seed)
    y, x = np.r_[y_c, y_t], np.r_[x_c, x_t]
    # gbstats: both arms merged, covariance about the grand means (ddof 1 cancels)
    expected = np.cov(y, x, ddof=1)[0, 1] / np.var(x, ddof=1)
    assert cuped_theta(arm(y_c, x_c), arm(y_t, x_t)) == pytest.approx(expected, rel=1e-12)


def test_adjusted_estimate_and_variance_by_hand():
    (y_c, x_c), (y_t, x_t) = world(11, n_c=400, n_t=500, lift=0.5)
    c, t = arm(y_c, x_c), arm(y_t, x_t)
    r = compare_cuped(c, t)
    theta = r.theta
    adj_c, adj_t = y_c - theta * x_c, y_t - theta * x_t
    lift = adj_t.mean() - adj_c.mean()
    se = math.sqrt(adj_c.var(ddof=1) / len(adj_c) + adj_t.var(ddof=1) / len(adj_t))
    assert r.result.absolute_lift == pytest.approx(lift, rel=1e-10)
    assert r.result.absolute_se == pytest.approx(se, rel=1e-10)
    # relative lift over the UNADJUSTED control mean; delta method with unadjusted means
    assert r.result.relative_lift == pytest.approx(lift / y_c.mean(), rel=1e-10)
    rel_se = math.sqrt(
        adj_t.var(ddof=1) / (len(adj_t) * y_c.mean() ** 2)
        + y_t.mean() ** 2 * adj_c.var(ddof=1) / (len(adj_c) * y_c.mean() ** 4)
    )
    assert r.result.relative_se == pytest.approx(rel_se, rel=1e-10)
    assert (r.result.mean_control, r.result.mean_treatment) == pytest.approx((y_c.mean(), y_t.mean()), rel=1e-12)
    unadjusted = compare_means(
        ArmStats(len(y_c), y_c.sum(), (y_c**2).sum()), ArmStats(len(y_t), y_t.sum(), (y_t**2).sum())
    )
    assert r.unadjusted == unadjusted
    assert r.variance_reduction == pytest.approx(1 - se**2 / unadjusted.absolute_se**2, rel=1e-10)
    # corr(x, y) is about 0.8 here: CUPED should remove well over half the variance
    assert r.variance_reduction > 0.5


def test_variance_reduction_approaches_squared_correlation():
    rng = np.random.default_rng(5)
    n, rho = 200_000, 0.6
    x = rng.normal(size=2 * n)
    y = rho * x + math.sqrt(1 - rho**2) * rng.normal(size=2 * n)
    r = compare_cuped(arm(y[:n], x[:n]), arm(y[n:] + 0.01, x[n:]))
    assert r.variance_reduction == pytest.approx(rho**2, abs=0.01)


def test_degenerate_cuped_inputs():
    # constant covariate: no adjustment possible, theta 0 and the plain Welch result
    y_c, y_t = np.array([1.0, 2, 3, 4]), np.array([2.0, 3, 5, 6])
    r = compare_cuped(arm(y_c, np.ones(4)), arm(y_t, np.ones(4)))
    assert r.theta == 0 and r.result.absolute_lift == r.unadjusted.absolute_lift
    assert r.variance_reduction == pytest.approx(0.0, abs=1e-12)
    # one unit per arm: NaN, no exception
    r = compare_cuped(arm([1.0], [2.0]), arm([3.0], [1.0]))
    assert math.isnan(r.result.p_value) and math.isnan(r.variance_reduction)
    # empty arm
    r = compare_cuped(CupedArmStats(0, 0, 0, 0, 0, 0), arm(y_t, y_t))
    assert math.isnan(r.result.absolute_lift) and math.isnan(r.result.p_value)
    # zero control mean: relative lift NaN, absolute still computed
    r = compare_cuped(arm([-1.0, 1, -2, 2], [0.0, 1, -1, 0]), arm(y_t, [1.0, 0, 2, 1]))
    assert math.isnan(r.result.relative_lift) and not math.isnan(r.result.absolute_ci_low)
    with pytest.raises(ValueError):
        cuped_theta(arm(y_c, y_c), arm(y_t, y_t), "sideways")
