"""Fairness verdicts over many groups: a fair model fails about 5% of its windows whatever the number of groups.

A trial scored college-years by state (48 judged groups of 10-1,500 predictions): pairs of 95% Wilson intervals
apart by chance among ~1,100 pairs failed a fair model's disparate impact on 94 of 120 windows and blocked its
retraining. A verdict now needs a test across the groups (Pearson's chi-square, Cochran's Q) to reject first.
Oracles: scipy's chi2_contingency and fisher_exact, statsmodels' homogeneity test, and the nominal level on simulated windows.
"""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency, fisher_exact
from statsmodels.stats.meta_analysis import combine_effects

from orchestration.lib.bias import bias_verdicts, gaps_alike, group_rates, rates_alike

GROUPS = 48
WINDOWS = 200
PASSES = ["passes_disparate_impact", "passes_equal_opportunity", "passes_equalized_odds", "passes_calibration"]
# the trial's small-volume settings (README: bias.min_labelled and min_predictions for small data)
THRESHOLDS = {"min_labelled": 10, "min_predictions": 10}


def window(rng, sizes: np.ndarray, flag_boost: dict[int, float] | None = None) -> pd.DataFrame:
    """marts.bias_daily rows of one window: every prediction labelled, scores calibrated (label ~ Bernoulli(score)),
    flagged at score >= 0.45; ``flag_boost``: group -> extra flag probability for its negatives and positives."""
    group = np.repeat(np.arange(len(sizes)), sizes)
    score = rng.beta(2, 4, len(group))
    label = (rng.random(len(group)) < score).astype(int)
    decision = score >= 0.45
    for g, extra in (flag_boost or {}).items():
        decision |= (group == g) & (rng.random(len(group)) < extra)

    def per_group(values) -> np.ndarray:
        return np.bincount(group, weights=values, minlength=len(sizes))

    return pd.DataFrame(
        {
            "model_id": "risk",
            "attribute": "region",
            "group_value": [f"g{i:02d}" for i in range(len(sizes))],
            "predictions": sizes,
            "positives": per_group(decision),
            "labelled": sizes,
            "labelled_positives": per_group(label),
            "true_positives": per_group(decision & (label == 1)),
            "false_positives": per_group(decision & (label == 0)),
            "false_negatives": per_group(~decision & (label == 1)),
            "true_negatives": per_group(~decision & (label == 0)),
            "score_sum": per_group(score),
            "label_sum": per_group(label),
            "population_users": sizes,
            "population_total": sizes.sum(),
        }
    )


def verdict(rows: pd.DataFrame) -> pd.Series:
    rates = group_rates(rows, positive_decision={"risk": "harmful"})
    return bias_verdicts(rates, THRESHOLDS, {"risk": "harmful"}).iloc[0]


@pytest.fixture(scope="module")
def sizes() -> np.ndarray:
    # the trial's spread: a few large groups, many small ones
    return np.clip(np.random.default_rng(3).lognormal(5.3, 1.0, GROUPS), 12, 1500).astype(int)


def test_the_test_across_groups_is_scipys_chi_square_and_statsmodels_homogeneity():
    rng = np.random.default_rng(1)
    for k in (2, 3, 12, 48):
        trials = rng.integers(5, 400, k)
        successes = rng.binomial(trials, 0.3)
        table = np.c_[successes, trials - successes]
        # two groups: Fisher's exact test, exact at a small business's few dozen predictions a group
        expected = fisher_exact(table)[1] if k == 2 else chi2_contingency(table, correction=False)[1]
        assert rates_alike(successes, trials) == pytest.approx(expected, rel=1e-9)
        scores = rng.uniform(0.1, 0.6, k)
        gaps = scores - rng.binomial(trials, scores) / trials
        variances = scores * (1 - scores) / trials
        expected = combine_effects(gaps, variances).test_homogeneity().pvalue
        assert gaps_alike(gaps, scores, trials) == pytest.approx(expected, rel=1e-9)
    assert rates_alike([0, 0, 0], [10, 20, 30]) == 1.0  # nobody flagged: nothing differs
    assert rates_alike([4], [10]) == 1.0  # one group: nothing to compare


def test_a_fair_model_over_48_groups_fails_about_5_percent_of_its_windows(sizes):
    rng = np.random.default_rng(7)
    verdicts = pd.DataFrame([verdict(window(rng, sizes)) for _ in range(WINDOWS)])
    assert len(verdicts["disparate_impact_groups"].iloc[0]) == GROUPS  # every group judged
    # the point estimates breach their limits on most windows: only the noise rule keeps them passing
    assert (verdicts["disparate_impact_ratio"] < 0.8).mean() > 0.9
    assert (verdicts["equal_opportunity_difference"] > 0.1).mean() > 0.9
    for flag in PASSES:
        failed = (verdicts[flag] == False).mean()  # noqa: E712 (NULL: not assessed)
        assert failed <= 0.08, (flag, failed)  # 5% nominal; 200 windows' binomial noise ~1.5%
    said = verdicts["note"].iloc[int(np.argmax(verdicts["passed"]))]
    assert "beyond its limit within noise (the groups alike by a test across them at 5%" in said


def test_a_group_flagged_twice_as_often_among_48_still_fails_and_is_named(sizes):
    rng = np.random.default_rng(8)
    big = int(np.argmax(sizes))
    verdicts = [verdict(window(rng, sizes, {big: 0.3})) for _ in range(40)]
    assert sum(not v["passes_disparate_impact"] for v in verdicts) >= 38
    # it alone: the fair groups beside it are not named on pairs apart by chance (up to 12 of them were, with every
    # pair compared at 95%)
    assert sum(v["flagged_groups_disparate_impact"] == [f"g{big:02d}"] for v in verdicts) >= 38
    # its innocent are flagged more too: equal opportunity (false-positive rates) fails and names it
    assert sum(v["flagged_groups_equal_opportunity"] == [f"g{big:02d}"] for v in verdicts) >= 38
