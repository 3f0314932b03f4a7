"""Closed-form lift statistics vs scipy and hand computations."""

import math

import numpy as np
import pytest
from scipy import stats as st

from orchestration.lib.stats import ArmStats, compare_means, welch_df


def arm(values) -> ArmStats:
    values = np.asarray(values, dtype=float)
    return ArmStats(len(values), float(values.sum()), float((values**2).sum()))


@pytest.mark.parametrize("seed", range(5))
def test_welch_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    control = rng.lognormal(1.0, 0.8, 400 + 37 * seed)
    treatment = rng.lognormal(1.1, 1.0, 900 - 11 * seed)
    result = compare_means(arm(control), arm(treatment))
    oracle = st.ttest_ind(treatment, control, equal_var=False)
    ci = oracle.confidence_interval(0.95)
    assert result.p_value == pytest.approx(oracle.pvalue, rel=1e-9)
    assert result.degrees_of_freedom == pytest.approx(oracle.df, rel=1e-9)
    assert result.absolute_lift == pytest.approx(treatment.mean() - control.mean(), rel=1e-9)
    assert result.absolute_ci_low == pytest.approx(ci.low, rel=1e-9)
    assert result.absolute_ci_high == pytest.approx(ci.high, rel=1e-9)
    assert result.mean_control == pytest.approx(control.mean(), rel=1e-12)


def test_binary_metric_and_relative_lift_by_hand():
    # control 30 of 100 convert, treatment 45 of 150: equal rates, zero lift
    control = arm([1] * 30 + [0] * 70)
    treatment = arm([1] * 45 + [0] * 105)
    r = compare_means(control, treatment)
    assert control.variance == pytest.approx(0.3 * 0.7 * 100 / 99, rel=1e-12)
    assert r.absolute_lift == pytest.approx(0.0, abs=1e-15)
    assert r.relative_lift == pytest.approx(0.0, abs=1e-15)
    assert r.p_value == pytest.approx(1.0)
    # delta method by hand: Var(r) = v_t/(n_t m_c^2) + m_t^2 v_c/(n_c m_c^4)
    v_c, v_t = 0.21 * 100 / 99, 0.21 * 150 / 149
    expected_se = math.sqrt(v_t / (150 * 0.09) + 0.09 * v_c / (100 * 0.3**4))
    assert r.relative_se == pytest.approx(expected_se, rel=1e-12)
    q = st.t.ppf(0.975, welch_df(v_c, 100, v_t, 150))
    # the CI is Fieller's: the ratios R with (0.3 - 0.3 R)^2 <= q^2 (v_t / 150 + R^2 v_c / 100), minus 1
    a, b = v_c / 100, v_t / 150
    quad, half, const = 0.09 - q**2 * a, 0.09, 0.09 - q**2 * b
    root = math.sqrt(half**2 - quad * const)
    assert r.relative_ci_low == pytest.approx((half - root) / quad - 1, rel=1e-12)
    assert r.relative_ci_high == pytest.approx((half + root) / quad - 1, rel=1e-12)
    # wider above than below, unlike the delta method's 0 +- q expected_se
    assert r.relative_ci_high > q * expected_se > -r.relative_ci_low


def test_degenerate_arms_give_nan_not_errors():
    r = compare_means(ArmStats(1, 1.0, 1.0), ArmStats(10, 5.0, 5.0))
    assert math.isnan(r.p_value) and math.isnan(r.absolute_ci_low)
    r = compare_means(arm([0, 0, 0]), arm([0, 1, 1]))
    assert math.isnan(r.relative_lift)  # control mean of zero: no relative lift
    r = compare_means(arm([1, 1, 1]), arm([1, 1, 1]))
    assert r.absolute_lift == 0 and math.isnan(r.p_value)  # no variance: nothing to test
