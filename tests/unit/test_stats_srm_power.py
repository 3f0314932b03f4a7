"""Sample-ratio mismatch vs scipy.stats.chisquare; MDE and sample size vs statsmodels' NormalIndPower."""

import math

import numpy as np
import pytest
from scipy import stats as st
from statsmodels.stats.power import NormalIndPower

from orchestration.lib.stats import minimum_detectable_effect, required_sample_size, srm_p_value


@pytest.mark.parametrize(
    "counts, shares",
    [
        ([1822, 17001], [0.1, 0.9]),
        ([1822, 17001], [10, 90]),  # shares need not sum to 1
        ([5000, 5105], [0.5, 0.5]),
        ([3300, 3310, 3390], [1, 1, 1]),
        ([1000, 2100, 6900], [0.1, 0.2, 0.7]),
        ([7, 3], [0.5, 0.5]),
    ],
)
def test_srm_matches_scipy_chisquare(counts, shares):
    expected = np.asarray(shares) / sum(shares) * sum(counts)
    assert srm_p_value(counts, shares) == pytest.approx(st.chisquare(counts, expected).pvalue, rel=1e-12)


def test_srm_flags_a_broken_split_and_handles_degenerate_input():
    assert srm_p_value([1000, 9000], [0.1, 0.9]) == pytest.approx(1.0)
    assert srm_p_value([1300, 8700], [0.1, 0.9]) < 1e-20
    assert srm_p_value([0, 500, 500], [0.0, 0.5, 0.5]) == pytest.approx(1.0)  # unplanned empty arm dropped
    assert srm_p_value([3, 500, 500], [0.0, 0.5, 0.5]) == 0.0  # units where none were planned
    for counts, shares in (([0, 0], [0.5, 0.5]), ([10], [1.0]), ([5, 5], [0.5]), ([5, 5], [-1, 2]), ([5, 5], [0, 0])):
        assert math.isnan(srm_p_value(counts, shares))


@pytest.mark.parametrize(
    "n_c, n_t, alpha, power", [(1000, 9000, 0.05, 0.8), (5000, 5000, 0.05, 0.9), (120, 80, 0.1, 0.8)]
)
def test_mde_matches_normal_ind_power(n_c, n_t, alpha, power):
    sigma = 3.7  # NormalIndPower works in units of a common standard deviation
    mde = minimum_detectable_effect(sigma**2, n_c, sigma**2, n_t, alpha, power, control_mean=20.0)
    engine = NormalIndPower()
    # one-sided at alpha/2 is exactly our formula (the far tail is ignored): power() agrees to rounding
    achieved = engine.power(mde.absolute / sigma, n_c, alpha / 2, ratio=n_t / n_c, alternative="larger")
    assert achieved == pytest.approx(power, rel=1e-12)
    # solve_power (a root finder, ~1e-6 precise) for the standardized effect, converted to absolute units
    d = engine.solve_power(None, n_c, alpha / 2, power, ratio=n_t / n_c, alternative="larger")
    assert mde.absolute == pytest.approx(d * sigma, rel=1e-5)
    # two-sided power counts the far tail too; its effect size is smaller by a negligible amount
    d2 = engine.solve_power(effect_size=None, nobs1=n_c, alpha=alpha, power=power, ratio=n_t / n_c)
    assert mde.absolute == pytest.approx(d2 * sigma, rel=1e-4)
    assert mde.relative == pytest.approx(mde.absolute / 20.0, rel=1e-12)


def test_mde_with_unequal_variances_by_hand_and_degenerate():
    mde = minimum_detectable_effect(4.0, 100, 9.0, 300, control_mean=-2.0)
    z = st.norm.ppf(0.975) + st.norm.ppf(0.8)
    assert mde.absolute == pytest.approx(z * math.sqrt(4 / 100 + 9 / 300), rel=1e-12)
    assert mde.relative == pytest.approx(mde.absolute / 2.0, rel=1e-12)
    assert math.isnan(minimum_detectable_effect(4.0, 100, 9.0, 300).relative)
    assert math.isnan(minimum_detectable_effect(4.0, 100, 9.0, 300, control_mean=0.0).relative)
    assert math.isnan(minimum_detectable_effect(4.0, 0, 9.0, 300).absolute)
    assert math.isnan(minimum_detectable_effect(float("nan"), 10, 9.0, 300).absolute)


@pytest.mark.parametrize("share", [0.5, 0.9, 0.25])
def test_required_sample_size_round_trips_through_mde(share):
    var_c, var_t, effect = 30.0, 45.0, 0.4
    size = required_sample_size(var_c, var_t, effect, treatment_share=share)
    assert size.n_treatment / size.n_total == pytest.approx(share, abs=1e-3)
    # at the rounded-up sizes the effect is detectable; one unit fewer in both arms and it is not
    assert minimum_detectable_effect(var_c, size.n_control, var_t, size.n_treatment).absolute <= effect
    assert minimum_detectable_effect(var_c, size.n_control - 1, var_t, size.n_treatment - 1).absolute > effect


def test_required_sample_size_matches_normal_ind_power():
    sigma, effect = 2.0, 0.1
    size = required_sample_size(sigma**2, sigma**2, effect)
    n1 = NormalIndPower().solve_power(effect / sigma, None, 0.025, 0.8, alternative="larger")
    assert size.n_control == math.ceil(n1) == size.n_treatment
    for args in ((4.0, 4.0, 0.0), (4.0, 4.0, 0.1, 0.05, 0.8, 1.0), (float("nan"), 4.0, 0.1)):
        assert math.isnan(required_sample_size(*args).n_total)
