"""Calibration by simulation: CI coverage, A/A false-positive rate, and peeking with vs without sequential CIs.

Every simulation is seeded, so the test is deterministic; the bands are set
from the binomial spread of the run count, not tuned to the seeds. With 2,000
runs the standard error of a rate near 5% is 0.49 points, so the bands
93-97% (coverage) and 3-7% (A/A rejections) are about four standard errors
wide on each side: a correctly calibrated method fails them essentially never,
a method off by a few points fails them reliably.
"""

import numpy as np
import pytest

from orchestration.lib.stats import (
    ArmStats,
    CupedArmStats,
    RatioArmStats,
    compare_cuped,
    compare_means,
    compare_ratios,
    sequential_ci,
)

RUNS = 2000


def mean_arms(values: np.ndarray) -> list[ArmStats]:
    """One ArmStats per run from a (runs, n) array."""
    n = values.shape[1]
    return [ArmStats(n, float(s), float(q)) for s, q in zip(values.sum(1), (values**2).sum(1))]


def cuped_arms(y: np.ndarray, x: np.ndarray) -> list[CupedArmStats]:
    n = y.shape[1]
    sums = zip(y.sum(1), (y**2).sum(1), x.sum(1), (x**2).sum(1), (x * y).sum(1))
    return [CupedArmStats(n, *map(float, s)) for s in sums]


def ratio_arms(num: np.ndarray, den: np.ndarray) -> list[RatioArmStats]:
    n = num.shape[1]
    sums = zip(num.sum(1), (num**2).sum(1), den.sum(1), (den**2).sum(1), (num * den).sum(1))
    return [RatioArmStats(n, *map(float, s)) for s in sums]


def proportion_arms(rng, n: int, p: float) -> list[ArmStats]:
    # a binary metric's sufficient statistics are just the success count (sum of squares = sum)
    return [ArmStats(n, float(k), float(k)) for k in rng.binomial(n, p, RUNS)]


def coverage(results, true_lift: float, relative: bool = False) -> float:
    if relative:
        return float(np.mean([r.relative_ci_low <= true_lift <= r.relative_ci_high for r in results]))
    return float(np.mean([r.absolute_ci_low <= true_lift <= r.absolute_ci_high for r in results]))


def rejection_rate(results) -> float:
    return float(np.mean([r.p_value < 0.05 for r in results]))


# --- worlds: (control arms, treatment arms, true absolute lift, true relative lift, compare) ---


def means_world(seed: int, lift: bool):
    rng = np.random.default_rng(seed)
    n = 200
    # skewed, revenue-like: gamma(2, 10) has mean 20; treatment scale 11 -> mean 22
    c = rng.gamma(2.0, 10.0, (RUNS, n))
    t = rng.gamma(2.0, 11.0 if lift else 10.0, (RUNS, n + 50))
    true = 2.0 if lift else 0.0
    return mean_arms(c), mean_arms(t), true, true / 20.0, compare_means


def proportions_world(seed: int, lift: bool):
    rng = np.random.default_rng(seed)
    p_c, p_t = 0.30, 0.35 if lift else 0.30
    return proportion_arms(rng, 400, p_c), proportion_arms(rng, 500, p_t), p_t - p_c, p_t / p_c - 1, compare_means


def cuped_world(seed: int, lift: bool):
    rng = np.random.default_rng(seed)
    n = 200
    true = 1.5 if lift else 0.0

    def arm(effect):
        x = rng.gamma(3.0, 5.0, (RUNS, n))  # pre-period value, same distribution in both arms
        y = 0.8 * x + rng.gamma(2.0, 4.0, (RUNS, n)) + effect
        return cuped_arms(y, x)

    # E[y_c] = 0.8 * 15 + 8 = 20
    return arm(0.0), arm(true), true, true / 20.0, lambda c, t: compare_cuped(c, t).result


def ratio_world(seed: int, lift: bool):
    rng = np.random.default_rng(seed)
    n = 300

    def arm(scale):
        orders = rng.poisson(1.5, (RUNS, n)) + 1.0
        revenue = orders * rng.gamma(4.0, scale, (RUNS, n))
        return ratio_arms(revenue, orders)

    # average order value = E[revenue] / E[orders] = 4 * scale
    scale_t = 5.5 if lift else 5.0
    return arm(5.0), arm(scale_t), 4 * (scale_t - 5.0), scale_t / 5.0 - 1, compare_ratios


WORLDS = {"means": means_world, "proportions": proportions_world, "cuped": cuped_world, "ratio": ratio_world}


@pytest.mark.parametrize("name", WORLDS)
def test_95_ci_covers_the_true_lift(name):
    controls, treatments, true_abs, true_rel, compare = WORLDS[name](seed=101, lift=True)
    results = [compare(c, t) for c, t in zip(controls, treatments)]
    assert 0.93 <= coverage(results, true_abs) <= 0.97
    assert 0.93 <= coverage(results, true_rel, relative=True) <= 0.97


@pytest.mark.parametrize("name", WORLDS)
def test_aa_false_positive_rate(name):
    controls, treatments, true_abs, _, compare = WORLDS[name](seed=202, lift=False)
    assert true_abs == 0
    results = [compare(c, t) for c, t in zip(controls, treatments)]
    assert 0.03 <= rejection_rate(results) <= 0.07


def test_cuped_is_calibrated_and_narrower():
    controls, treatments, _, _, _ = cuped_world(seed=303, lift=True)
    out = [compare_cuped(c, t) for c, t in zip(controls[:200], treatments[:200])]
    widths = [r.result.absolute_se / r.unadjusted.absolute_se for r in out]  # = CI width ratio up to the t quantile
    # corr(x, y) is about 0.8 here, so the CI should shrink by roughly sqrt(1 - 0.64) = 0.6
    assert 0.5 < float(np.median(widths)) < 0.7


def test_peeking_daily_sequential_ci_stays_valid_fixed_ci_does_not():
    """20 daily looks at a growing experiment: does the CI contain the true lift at EVERY look?"""
    rng = np.random.default_rng(404)
    runs, days, per_day = 1000, 20, 100
    true_lift = 0.5
    # daily new units per arm; cumulative sufficient statistics after each day
    c = rng.normal(10.0, 4.0, (runs, days, per_day))
    t = rng.normal(10.0 + true_lift, 4.0, (runs, days, per_day))
    c_sum, c_sq = c.sum(2).cumsum(1), (c**2).sum(2).cumsum(1)
    t_sum, t_sq = t.sum(2).cumsum(1), (t**2).sum(2).cumsum(1)
    fixed_ok = np.ones(runs, dtype=bool)
    sequential_ok = np.ones(runs, dtype=bool)
    for run in range(runs):
        for day in range(days):
            n = per_day * (day + 1)
            control = ArmStats(n, c_sum[run, day], c_sq[run, day])
            r = compare_means(control, ArmStats(n, t_sum[run, day], t_sq[run, day]))
            s = sequential_ci(r)
            fixed_ok[run] &= r.absolute_ci_low <= true_lift <= r.absolute_ci_high
            sequential_ok[run] &= s.absolute_ci_low <= true_lift <= s.absolute_ci_high
    # the confidence sequence keeps 95% simultaneous coverage over all looks
    assert sequential_ok.mean() >= 0.95
    # checking the fixed-horizon CI daily is well below its nominal 95% (peeking inflation)
    assert fixed_ok.mean() <= 0.88
    assert sequential_ok.mean() - fixed_ok.mean() >= 0.08
