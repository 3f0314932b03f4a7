"""orchestration.lib.stats vs GrowthBook's gbstats 0.8.0 (fixture written by tests/oracles/gbstats_oracle.py).

Same formulas, so agreement is to 1e-9 relative. Deliberate differences,
each tested explicitly below:
- binary metrics: we use the unbiased variance p(1-p) n/(n-1) (ArmStats with
  sum of squares = sum); gbstats's ProportionStatistic uses p(1-p);
- degenerate input: we return NaN where gbstats returns its uninformative
  default (expected 0, CI [0, 0], p 1), and we still report the absolute lift
  when only the control mean is zero;
- LiftResult has one p-value, that of the absolute lift; gbstats's relative
  p-value is the t-test of relative_lift / relative_se at the same df;
- the fixed-horizon relative CI of a plain (mean or ratio) comparison is
  Fieller's, so that it excludes 0 exactly when the Welch p is below alpha;
  gbstats's delta-method CI is relative_lift +- t * relative_se, checked here
  from relative_se (the same), and CUPED's stored CI is still that one.
"""

import json
import math
from pathlib import Path

import pytest
from scipy import stats as st

from orchestration.lib.stats import (
    ArmStats,
    CupedArmStats,
    RatioArmStats,
    compare_cuped,
    compare_means,
    compare_ratios,
    cuped_theta,
    sequential_ci,
    srm_p_value,
)

FIXTURE = json.loads((Path(__file__).parents[1] / "oracles" / "gbstats_cases.json").read_text())
CASES = [c for c in FIXTURE["cases"] if not c["gbstats"]["fixed_absolute"]["error_message"]]
close = dict(rel=1e-9, abs=1e-15)


def ours(case, alpha=None):
    alpha = case["alpha"] if alpha is None else alpha
    kind, c, t = case["kind"], case["control"], case["treatment"]
    if kind == "mean":
        return compare_means(ArmStats(**c), ArmStats(**t), alpha)
    if kind == "ratio":
        return compare_ratios(RatioArmStats(**c), RatioArmStats(**t), alpha)
    return compare_cuped(CupedArmStats(**c), CupedArmStats(**t), alpha).result


def assert_matches(result, gb, alpha, tau):
    fa, fr, sa, sr = (gb[k] for k in ("fixed_absolute", "fixed_relative", "sequential_absolute", "sequential_relative"))
    assert result.degrees_of_freedom == pytest.approx(gb["dof"], **close)
    # fixed horizon, absolute
    assert result.absolute_lift == pytest.approx(fa["expected"], **close)
    assert result.absolute_se == pytest.approx(fa["stddev"], **close)
    assert result.absolute_ci_low == pytest.approx(fa["ci_low"], **close)
    assert result.absolute_ci_high == pytest.approx(fa["ci_high"], **close)
    assert result.p_value == pytest.approx(fa["p_value"], **close)
    # fixed horizon, relative
    assert result.relative_lift == pytest.approx(fr["expected"], **close)
    assert result.relative_se == pytest.approx(fr["stddev"], **close)
    q = st.t.ppf(1 - alpha / 2, result.degrees_of_freedom)
    delta = (result.relative_lift - q * result.relative_se, result.relative_lift + q * result.relative_se)
    assert delta == pytest.approx((fr["ci_low"], fr["ci_high"]), **close)
    if math.isnan(result.variance_control):  # CUPED: the delta method's, as gbstats
        assert (result.relative_ci_low, result.relative_ci_high) == pytest.approx(delta, **close)
    else:  # Fieller's: around the same estimate, excluding 0 exactly when the test rejects
        assert result.relative_ci_low < result.relative_lift < result.relative_ci_high
        excludes = result.relative_ci_low > 0 or result.relative_ci_high < 0
        assert excludes == (result.p_value < alpha)
    rel_p = 2 * st.t.sf(abs(result.relative_lift) / result.relative_se, result.degrees_of_freedom)
    assert rel_p == pytest.approx(fr["p_value"], **close)
    # always-valid (sequential): same point estimates, confidence-sequence width, e-value p
    seq = sequential_ci(result, alpha, tau)
    assert sa["expected"] == pytest.approx(result.absolute_lift, **close)
    assert seq.absolute_ci_low == pytest.approx(sa["ci_low"], **close)
    assert seq.absolute_ci_high == pytest.approx(sa["ci_high"], **close)
    assert seq.p_value == pytest.approx(sa["p_value"], **close)
    assert sr["expected"] == pytest.approx(result.relative_lift, **close)
    assert seq.relative_ci_low == pytest.approx(sr["ci_low"], **close)
    assert seq.relative_ci_high == pytest.approx(sr["ci_high"], **close)
    assert seq.relative_p_value == pytest.approx(sr["p_value"], **close)


def test_fixture_is_from_gbstats_0_8_0():
    assert FIXTURE["gbstats_version"] == "0.8.0"
    assert {c["kind"] for c in CASES} == {"mean", "ratio", "cuped"}
    assert any("gbstats_proportion" in c for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_agrees_with_gbstats(case):
    assert_matches(ours(case), case["gbstats"], case["alpha"], case["tau"])


@pytest.mark.parametrize("case", [c for c in CASES if c["kind"] == "cuped"], ids=lambda c: c["name"])
def test_cuped_theta_is_gbstats_total_pooling(case):
    c, t = CupedArmStats(**case["control"]), CupedArmStats(**case["treatment"])
    assert cuped_theta(c, t) == pytest.approx(case["gbstats"]["theta"], **close)
    assert compare_cuped(c, t, case["alpha"]).theta == pytest.approx(case["gbstats"]["theta"], **close)
    # within-arm pooling (OLS) is a different, asymptotically equivalent estimator
    assert cuped_theta(c, t, "within") != pytest.approx(case["gbstats"]["theta"], rel=1e-9)
    assert cuped_theta(c, t, "within") == pytest.approx(case["gbstats"]["theta"], rel=0.05)


@pytest.mark.parametrize("case", [c for c in CASES if "gbstats_proportion" in c], ids=lambda c: c["name"])
def test_proportion_statistic_differs_only_by_biased_variance(case):
    # ArmStats whose unbiased variance equals gbstats's p(1-p) reproduces ProportionStatistic exactly
    def biased(arm):
        n, s = arm["n"], arm["total"]
        p = s / n
        return ArmStats(n, s, s**2 / n + (n - 1) * p * (1 - p))

    result = compare_means(biased(case["control"]), biased(case["treatment"]), case["alpha"])
    assert_matches(result, case["gbstats_proportion"], case["alpha"], case["tau"])
    # and our unbiased version is wider by at most the n/(n-1) factor in variance
    unbiased = ours(case)
    n_min = min(case["control"]["n"], case["treatment"]["n"])
    ratio = unbiased.absolute_se / case["gbstats_proportion"]["fixed_absolute"]["stddev"]
    assert 1 < ratio <= math.sqrt(n_min / (n_min - 1)) + 1e-12


def test_zero_control_mean_gives_nan_relative_where_gbstats_gives_defaults():
    case = next(c for c in FIXTURE["cases"] if c["name"] == "zero_control_mean")
    gb = case["gbstats"]["fixed_relative"]
    assert gb["error_message"] and gb["ci_low"] == gb["ci_high"] == 0 and gb["p_value"] == 1
    r = ours(case)
    assert math.isnan(r.relative_lift) and math.isnan(r.relative_ci_low) and math.isnan(r.relative_se)
    # the absolute comparison is still well defined (control has zero variance, treatment does not)
    assert r.absolute_lift > 0 and r.absolute_ci_low < r.absolute_lift < r.absolute_ci_high
    seq = sequential_ci(r, case["alpha"], case["tau"])
    assert math.isnan(seq.relative_ci_low) and math.isnan(seq.relative_p_value) and not math.isnan(seq.p_value)


@pytest.mark.parametrize("case", FIXTURE["srm"], ids=lambda c: str(c["counts"]))
def test_srm_agrees_with_gbstats_check_srm(case):
    assert srm_p_value(case["counts"], case["weights"]) == pytest.approx(case["p_value"], **close)
