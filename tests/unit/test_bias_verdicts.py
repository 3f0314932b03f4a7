"""Fairness rates and verdicts from counts vs fairlearn, statsmodels and sklearn on the same rows."""

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from scipy.stats import fisher_exact
from sklearn.metrics import precision_score
from statsmodels.stats.proportion import proportion_confint

from orchestration.lib.bias import bias_verdicts, group_rates, summarise_verdicts, wilson_interval

EXACT = dict(rel=1e-9, abs=1e-12)


@pytest.fixture(scope="module")
def rows():
    """Row-level predictions over 3 days; group 'c' has its positives under-scored (lower TPR)."""
    rng = np.random.default_rng(0)
    n = 30_000
    group = rng.choice(["a", "b", "c", "tiny"], size=n, p=[0.45, 0.35, 0.199, 0.001])
    label = (rng.random(n) < 0.4).astype(int)
    score = np.clip(0.35 + 0.3 * label - np.where((group == "c") & (label == 1), 0.2, 0) + rng.normal(0, 0.15, n), 0, 1)
    return pd.DataFrame(
        {
            "date": rng.choice(["2026-09-01", "2026-09-02", "2026-09-03"], size=n),
            "group_value": group,
            "label": label,
            "score": score,
            "decision": (score >= 0.5).astype(int),
        }
    )


def counts(frame: pd.DataFrame) -> pd.DataFrame:
    """What marts.bias_daily holds for these rows (every row labelled)."""
    g = frame.assign(
        tp=(frame.decision == 1) & (frame.label == 1),
        fp=(frame.decision == 1) & (frame.label == 0),
        fn=(frame.decision == 0) & (frame.label == 1),
        tn=(frame.decision == 0) & (frame.label == 0),
    )
    out = (
        g.groupby(["date", "group_value"])
        .agg(
            predictions=("label", "size"),
            positives=("decision", "sum"),
            labelled=("label", "size"),
            labelled_positives=("label", "sum"),
            true_positives=("tp", "sum"),
            false_positives=("fp", "sum"),
            false_negatives=("fn", "sum"),
            true_negatives=("tn", "sum"),
            score_sum=("score", "sum"),
            label_sum=("label", "sum"),
        )
        .reset_index()
    )
    population = {"a": 450, "b": 350, "c": 199, "tiny": 1}
    return out.assign(
        model_id="m", attribute="segment", population_users=out["group_value"].map(population), population_total=1000
    )


def test_rates_match_fairlearn_and_sklearn(rows):
    rates = group_rates(counts(rows)).set_index("group_value")
    frame = MetricFrame(
        metrics={"selection_rate": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate},
        y_true=rows["label"],
        y_pred=rows["decision"],
        sensitive_features=rows["group_value"],
    )
    for group, oracle in frame.by_group.iterrows():
        for metric in ("selection_rate", "tpr", "fpr"):
            assert rates.loc[group, metric] == pytest.approx(oracle[metric], **EXACT), (group, metric)
        part = rows[rows["group_value"] == group]
        assert rates.loc[group, "precision"] == pytest.approx(precision_score(part["label"], part["decision"]), **EXACT)
        assert rates.loc[group, "mean_score"] == pytest.approx(part["score"].mean(), **EXACT)
    assert rates["prediction_share"].sum() == pytest.approx(1.0)
    assert rates.loc["a", "population_share"] == pytest.approx(0.45)


def test_verdict_metrics_match_fairlearn(rows):
    # no minimum: every group takes part, as in fairlearn
    verdict = bias_verdicts(group_rates(counts(rows)), {"min_labelled": 0}).iloc[0]
    y, d, s = rows["label"], rows["decision"], rows["group_value"]
    assert verdict["disparate_impact_ratio"] == pytest.approx(
        demographic_parity_ratio(y, d, sensitive_features=s), **EXACT
    )
    assert verdict["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(y, d, sensitive_features=s), **EXACT
    )
    tpr = MetricFrame(metrics=true_positive_rate, y_true=y, y_pred=d, sensitive_features=s)
    assert verdict["equal_opportunity_difference"] == pytest.approx(tpr.difference(), **EXACT)


def test_planted_group_is_flagged_and_tiny_groups_are_excluded(rows):
    verdict = bias_verdicts(group_rates(counts(rows)), {"min_labelled": 200}).iloc[0]
    assert not verdict["passes_equal_opportunity"] and not verdict["passed"]
    assert verdict["flagged_groups_equal_opportunity"] == ["c"]
    assert verdict["excluded_groups"] == ["tiny"] and "tiny" not in verdict["eligible_groups"]
    text = summarise_verdicts(pd.DataFrame([verdict]), {"equal_opportunity_max_difference": 0.1})
    assert "m / segment: equal opportunity difference" in text and "> 0.10" in text and "disadvantaged: c" in text


def test_fair_rows_pass(rows):
    fair = rows[rows["group_value"] != "c"]
    verdict = bias_verdicts(group_rates(counts(fair)), {"min_labelled": 200}).iloc[0]
    assert verdict["passed"] and verdict["flagged_groups_equal_opportunity"] == []
    # its group "tiny" is too small to judge: the pass is of the others, and says so
    assert summarise_verdicts(pd.DataFrame([verdict])).splitlines() == [
        "the assessed fairness verdicts pass",
        "m / segment: tiny left out of every verdict (fewer than 100 predictions, bias.min_predictions)",
    ]
    judged = fair[fair["group_value"] != "tiny"]
    verdict = bias_verdicts(group_rates(counts(judged)), {"min_labelled": 200}).iloc[0]
    assert summarise_verdicts(pd.DataFrame([verdict])) == "all fairness verdicts pass"


@pytest.mark.parametrize("successes, trials", [(0, 10), (3, 10), (10, 10), (417, 1000), (1, 3)])
def test_wilson_matches_statsmodels(successes, trials):
    low, high = proportion_confint(successes, trials, alpha=0.05, method="wilson")
    assert wilson_interval(successes, trials) == pytest.approx((low, high), rel=1e-12, abs=1e-12)


def test_wilson_without_trials_is_nan():
    assert all(np.isnan(wilson_interval(0, 0)))


def _two_groups(rng, positives: int, tpr: dict[str, float]) -> pd.DataFrame:
    """Labelled predictions of groups a and b, ``positives`` labelled positives each, with TPR ``tpr[group]``
    (negatives 10x as many, FPR 0.1 in both)."""
    parts = []
    for group, rate in tpr.items():
        label = np.r_[np.ones(positives, int), np.zeros(10 * positives, int)]
        decision = np.where(label == 1, rng.random(len(label)) < rate, rng.random(len(label)) < 0.1).astype(int)
        parts.append(pd.DataFrame({"group_value": group, "label": label, "decision": decision}))
    frame = pd.concat(parts, ignore_index=True)
    return frame.assign(date="2026-09-01", score=np.where(frame["decision"] == 1, 0.7, 0.1))


def _unlike(rows: pd.DataFrame) -> bool:
    """The oracle: the two groups' TPRs unlike by scipy's Fisher exact test at 5% (two groups: the pair's test)."""
    table = [
        [part["decision"].sum(), len(part) - part["decision"].sum()]
        for _, part in rows[rows["label"] == 1].groupby("group_value")
    ]
    return fisher_exact(table)[1] < 0.05


def test_a_gap_within_noise_passes_and_a_gap_beyond_it_fails():
    # a credit model scoring ~30 defaulters per group a window: the TPR gap moved by +-0.1 from window to
    # window and the point-estimate verdict failed half the windows of a fair model (blocking its retraining)
    rng = np.random.default_rng(3)
    fair = []
    for _ in range(200):
        rows = _two_groups(rng, 30, {"a": 0.57, "b": 0.57})
        verdict = bias_verdicts(group_rates(counts(rows)), {"min_labelled": 0}).iloc[0]
        # a verdict fails exactly on a gap beyond the limit between groups unlike beyond noise
        apart = _unlike(rows) and verdict["equal_opportunity_difference"] > 0.1
        assert bool(verdict["passes_equal_opportunity"]) is (not apart)
        fair.append(verdict)
    breached = [v for v in fair if v["equal_opportunity_difference"] > 0.1]
    assert len(breached) > 60  # the point estimate is beyond the limit this often on a fair model
    assert sum(not v["passes_equal_opportunity"] for v in fair) <= 0.05 * len(fair)
    # within noise is said, not silent
    noisy = next(v for v in breached if v["passes_equal_opportunity"])
    assert "equal opportunity beyond its limit within noise" in noisy["note"]
    # and in the sentences the summary, the report and the checks print: a bare "pass" hid a value beyond the limit
    difference = noisy["equal_opportunity_difference"]
    said = summarise_verdicts(pd.DataFrame([noisy])).splitlines()
    [line] = [line for line in said if "equal opportunity difference" in line]
    # the headline says the pass rests on noise (a trial's 0.00 on groups of 5 and 9 read "all ... pass")
    within = said[0].split("; ")[1].split(" ")[0]
    assert said[0] == (
        f"no fairness verdict fails; {within} gap(s) beyond a limit only within noise: inconclusive (too few to tell)"
    ) and int(within) == sum("within noise" in s for s in said[1:])
    # the Dagster check's description says so too (a re-trial's check read "fair over ..." beside it)
    from orchestration.defs.bias.checks import _passed_text

    assert _passed_text(pd.DataFrame([noisy]), {}, "w").startswith("over w: no fairness verdict fails; ")
    assert line.endswith(
        "within noise (the groups alike by a test across them at 5%: Fisher's exact with two groups, a chi-square with "
        "more; or, over k > 2 groups, no two groups' 1 - 5%/(k - 1) intervals apart): passes"
    )
    assert float(line.split("equal opportunity difference ")[1].split(" > 0.10")[0]) == pytest.approx(
        difference, abs=0.005
    )
    # a real gap with enough labels fails, naming the group behind
    rows = _two_groups(rng, 400, {"a": 0.6, "b": 0.4})
    real = bias_verdicts(group_rates(counts(rows)), {"min_labelled": 0}).iloc[0]
    assert _unlike(rows)
    assert not real["passes_equal_opportunity"] and real["flagged_groups_equal_opportunity"] == ["b"]
    assert not real["passes_equalized_odds"] and not real["passed"]


def test_a_rare_flag_twice_as_often_fails_and_a_fair_one_rarely_does():
    # a credit-risk model declining ~6% of one group and ~11% of another: 0.94 on the rates of not being declined
    # passed the four-fifths rule; the ratio of the flag rates (0.5) fails, and on a fair model flagging 5% of
    # groups of 600 (30 flags each, the ratio often < 0.8 by the point estimate) only a gap beyond noise fails
    rng = np.random.default_rng(11)

    def verdict(flag_rates: dict[str, float], n: int) -> pd.Series:
        parts = [
            pd.DataFrame({"group_value": g, "label": 0, "decision": (rng.random(n) < rate).astype(int)})
            for g, rate in flag_rates.items()
        ]
        rows = pd.concat(parts, ignore_index=True).assign(date="2026-09-01", score=0.1)
        rates = group_rates(counts(rows), positive_decision={"m": "harmful"})
        v = bias_verdicts(rates, {"min_labelled": 0}, {"m": "harmful"}).iloc[0]
        flagged = rows.groupby("group_value")["decision"].agg(["sum", "size"])
        share = flagged["sum"] / flagged["size"]
        ratio = min(share.min() / share.max(), (1 - share.max()) / (1 - share.min()))  # by hand
        assert v["disparate_impact_ratio"] == pytest.approx(ratio, rel=1e-12)
        unlike = fisher_exact(np.c_[flagged["sum"], flagged["size"] - flagged["sum"]])[1] < 0.05
        assert bool(v["passes_disparate_impact"]) is not (ratio < 0.8 and unlike)
        return v

    unfair = verdict({"a": 0.057, "b": 0.113}, 2000)
    assert not unfair["passes_disparate_impact"] and unfair["flagged_groups_disparate_impact"] == ["b"]
    fair = [verdict({"a": 0.05, "b": 0.05}, 600) for _ in range(100)]
    assert sum(v["disparate_impact_ratio"] < 0.8 for v in fair) > 15  # the point estimate alone would fail these
    assert sum(not v["passes_disparate_impact"] for v in fair) <= 0.05 * len(fair)


def test_a_harmful_models_innocent_wrongly_flagged_twice_as_often_fails_equal_opportunity_by_its_ratio():
    # FPR 0.024 vs 0.056, intervals apart: 0.03 is well within the 0.1 limit of the difference, so equal
    # opportunity passed a group wrongly declined 2.3 times as often. The ratio (fairlearn's between-groups ratio
    # of false_positive_rate) fails it, naming that group; a fair model's rare FPRs rarely do
    rng = np.random.default_rng(5)

    def verdict(fpr: dict[str, float], n: int) -> tuple[pd.Series, pd.DataFrame]:
        parts = [
            pd.DataFrame({"group_value": g, "label": 0, "decision": (rng.random(n) < rate).astype(int)})
            for g, rate in fpr.items()
        ]
        positives = [pd.DataFrame({"group_value": g, "label": 1, "decision": 1}, index=range(50)) for g in fpr]
        rows = pd.concat(parts + positives, ignore_index=True).assign(date="2026-09-01", score=0.1)
        rates = group_rates(counts(rows), positive_decision={"m": "harmful"})
        limits = {"min_labelled": 0, "disparate_impact_min": 0.8}
        return bias_verdicts(rates, limits, {"m": "harmful"}).iloc[0], rows

    unfair, rows = verdict({"a": 0.024, "b": 0.056}, 4000)
    frame = MetricFrame(
        metrics=false_positive_rate,
        y_true=rows["label"],
        y_pred=rows["decision"],
        sensitive_features=rows["group_value"],
    )
    assert unfair["equal_opportunity_ratio"] == pytest.approx(frame.ratio(method="between_groups"), rel=1e-12)
    assert unfair["equal_opportunity_difference"] < 0.1 and unfair["equal_opportunity_ratio"] < 0.8
    assert not unfair["passes_equal_opportunity"] and unfair["flagged_groups_equal_opportunity"] == ["b"]
    text = summarise_verdicts(pd.DataFrame([unfair]))
    assert f"equal opportunity ratio (false-positive rates) {unfair['equal_opportunity_ratio']:.2f} < 0.80" in text
    assert "disadvantaged (wrongly flagged more often than another group, beyond the limit and noise): b" in text
    # the verdict's own row says what failed (a trial's note named only a pass within noise beside passed false)
    assert (
        f"fails equal opportunity ratio (false-positive rates) {unfair['equal_opportunity_ratio']:.2f} < 0.80; "
        "disadvantaged (wrongly flagged more often than another group, beyond the limit and noise): b"
    ) in unfair["note"]
    fair = [verdict({"a": 0.03, "b": 0.03}, 1500)[0] for _ in range(100)]
    assert not any(v["note"].startswith("fails") for v in fair if v["passed"])
    assert sum(v["equal_opportunity_ratio"] < 0.8 for v in fair) > 10  # the point estimate alone would fail these
    assert sum(not v["passes_equal_opportunity"] for v in fair) <= 5


def _decisions(flagged: dict[str, tuple[int, int]]) -> pd.DataFrame:
    """Unlabelled row-level decisions of one day: group -> (positive decisions, predictions)."""
    parts = [
        pd.DataFrame({"group_value": g, "label": 0, "decision": np.r_[np.ones(k, int), np.zeros(n - k, int)]})
        for g, (k, n) in flagged.items()
    ]
    return pd.concat(parts, ignore_index=True).assign(date="2026-09-01", score=0.5)


def test_two_small_groups_unlike_by_fishers_test_fail_where_their_95_percent_intervals_overlap():
    # a trial's credit-line increases: owners 14 of 23, renters 10 of 37 (disparate impact 0.44; Fisher's p 0.015,
    # Pearson's 0.009) "passed within noise" because the two Wilson 95% intervals overlapped by 0.02
    trial = {"owner": (14, 23), "renter": (10, 37)}
    (own_low, own_high), (rent_low, rent_high) = (proportion_confint(k, n, method="wilson") for k, n in trial.values())
    assert rent_high > own_low  # the intervals overlap: the old rule passed it
    assert fisher_exact([[14, 9], [10, 27]])[1] < 0.05
    verdict = bias_verdicts(group_rates(counts(_decisions(trial))), {"min_labelled": 0, "min_predictions": 20}).iloc[0]
    assert verdict["disparate_impact_ratio"] == pytest.approx((10 / 37) / (14 / 23), rel=1e-12)
    assert not verdict["passes_disparate_impact"] and verdict["flagged_groups_disparate_impact"] == ["renter"]
    assert "within noise" not in verdict["note"]
    # the same ratio on fewer predictions is noise by the same test, and passes saying so
    small = {"owner": (6, 10), "renter": (4, 15)}
    assert fisher_exact([[6, 4], [4, 11]])[1] > 0.05
    verdict = bias_verdicts(group_rates(counts(_decisions(small))), {"min_labelled": 0, "min_predictions": 10}).iloc[0]
    assert verdict["disparate_impact_ratio"] < 0.8 and verdict["passes_disparate_impact"]
    assert "disparate impact beyond its limit within noise" in verdict["note"]


def test_a_ratio_whose_lowest_group_is_within_noise_names_it_beside_the_group_behind_beyond_it():
    # a trial's province verdict printed "DI 0.52 ... disadvantaged: New Brunswick": 0.52 was Manitoba's against
    # British Columbia's (a small group, within noise), New Brunswick's 0.65 was the gap beyond noise
    groups = {"top": (600, 1000), "small": (4, 12), "large": (350, 1000)}
    assert fisher_exact([[600, 400], [4, 8]])[1] > 0.05 and fisher_exact([[600, 400], [350, 650]])[1] < 1e-6
    verdict = bias_verdicts(group_rates(counts(_decisions(groups))), {"min_labelled": 0, "min_predictions": 10}).iloc[0]
    # by hand: small (4 / 12) / 0.60 = 0.556, the lowest; large 0.35 / 0.60 = 0.583
    assert verdict["disparate_impact_ratio"] == pytest.approx((4 / 12) / 0.6, rel=1e-12)
    assert verdict["disparate_impact_lowest"] == ["small"]
    assert verdict["flagged_groups_disparate_impact"] == ["large"]
    said = summarise_verdicts(pd.DataFrame([verdict]))
    assert "disadvantaged: large (the ratio is small's, a gap within noise)" in said
    # where the lowest group is the one behind, nothing more is said
    groups = {"top": (600, 1000), "large": (350, 1000)}
    verdict = bias_verdicts(group_rates(counts(_decisions(groups))), {"min_labelled": 0, "min_predictions": 10}).iloc[0]
    assert "disparate impact ratio 0.58 < 0.80; disadvantaged: large\n" in summarise_verdicts(pd.DataFrame([verdict]))
    assert "a gap within noise" not in summarise_verdicts(pd.DataFrame([verdict]))
    # a tie at the minimum (a trial's four age bands at 0.00 named the first, within noise, alone): every group at
    # it is named, and where one of them is behind beyond noise the ratio is its too
    groups = {"top": (600, 1000), "small": (4, 12), "large": (350, 1000), "tiny": (2, 6)}
    verdict = bias_verdicts(group_rates(counts(_decisions(groups))), {"min_labelled": 0, "min_predictions": 6}).iloc[0]
    # by hand: small 4 / 12 and tiny 2 / 6 tie at 1 / 3 against 0.60 (0.556), large 0.35 (0.583)
    assert sorted(verdict["disparate_impact_lowest"]) == ["small", "tiny"]
    said = summarise_verdicts(pd.DataFrame([verdict]))
    assert "(the ratio is small, tiny's, a gap within noise)" in said or "(the ratio is tiny, small's" in said
    tied = {"top": (600, 1000), "small": (4, 12), "large": (1000, 3000)}  # large 1 / 3 too, beyond noise
    verdict = bias_verdicts(group_rates(counts(_decisions(tied))), {"min_labelled": 0, "min_predictions": 10}).iloc[0]
    assert sorted(verdict["disparate_impact_lowest"]) == ["large", "small"]
    assert verdict["flagged_groups_disparate_impact"] == ["large"]
    said = summarise_verdicts(pd.DataFrame([verdict]))
    assert "disadvantaged: large\n" in said and "a gap within noise" not in said
