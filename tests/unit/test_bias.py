"""orchestration.lib.bias against fairlearn, sklearn and statsmodels on the same row-level data.

A synthetic world of 20,000 predictions (fixed seed) over 5 days is aggregated
here, exactly as marts.bias_daily does, into per-day counts per attribute and
group; the library must recover from those counts what the oracles compute on
the rows. The positives of age band 55+ are under-scored (the planted lower TPR).
"""

import math

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import precision_score
from statsmodels.stats.proportion import proportion_confint

from tests.oracles.bias_counts import bias_counts
from orchestration.lib.bias import (
    COUNT_COLUMNS,
    DEFAULTS,
    Thresholds,
    assessed,
    bias_verdicts,
    group_rates,
    summarise_verdicts,
    wilson_interval,
)

EXACT = dict(rel=1e-9, abs=1e-12)
ATTRIBUTES = ["gender", "age_band", "country", "gender_x_age_band"]
PLANTED = ("age_band", "55+")
DAYS = pd.date_range("2026-10-01", periods=5).date


def make_world(
    seed: int = 20261123, n: int = 20_000, users: int = 6_000, under_score: float = 0.12
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(predictions, users): one row per prediction with its user's attributes, label (NaN = not yet labelled), score, decision."""
    rng = np.random.default_rng(seed)
    people = pd.DataFrame(
        {
            "user_id": np.arange(users),
            "gender": rng.choice(["female", "male", "unknown"], users, p=[0.49, 0.49, 0.02]),
            "age_band": rng.choice(["18-34", "35-54", "55+"], users, p=[0.4, 0.4, 0.2]),
            "country": rng.choice(["DE", "FR", "NL"], users, p=[0.5, 0.3, 0.2]),
            "signup_day": rng.integers(-30, len(DAYS), users),  # the user table grows during the window
        }
    )
    people["gender_x_age_band"] = people["gender"] + "|" + people["age_band"]
    rows = people.iloc[rng.integers(0, users, n)].reset_index(drop=True)
    label = (rng.random(n) < 0.3).astype(float)
    planted = (rows[PLANTED[0]] == PLANTED[1]).to_numpy() & (label == 1)
    score = np.clip(0.35 + 0.3 * label - under_score * planted + rng.normal(0, 0.15, n), 0, 1)
    rows["score"] = score
    rows["threshold"] = 0.5
    rows["decision"] = (score >= rows["threshold"]).astype(int)
    rows["label"] = np.where(rng.random(n) < 0.7, label, np.nan)  # 30% of labels have not arrived
    rows["date"] = rng.choice(DAYS, n)
    rows["model_id"] = "recommender"
    return rows, people


def bias_daily(rows: pd.DataFrame, people: pd.DataFrame) -> pd.DataFrame:
    """What marts.bias_daily holds for these rows: counts per date, model, attribute and group."""
    parts = bias_counts(rows, ATTRIBUTES)
    day_index = {d: i for i, d in enumerate(DAYS)}
    for attribute, counts in zip(ATTRIBUTES, parts, strict=True):
        # the population as the day's run saw the user table
        counts["population_users"] = [
            int(((people[attribute] == g) & (people["signup_day"] <= day_index[d])).sum())
            for d, g in zip(counts["date"], counts["group_value"])
        ]
        counts["population_total"] = [int((people["signup_day"] <= day_index[d]).sum()) for d in counts["date"]]
    return pd.concat(parts, ignore_index=True).assign(labels_as_of=DAYS[-1])  # an extra column is ignored


@pytest.fixture(scope="module")
def world():
    rows, people = make_world()
    return rows, people, bias_daily(rows, people)


@pytest.fixture(scope="module")
def rates(world):
    return group_rates(world[2])


# --- Wilson interval -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "successes, trials",
    [(0, 1), (1, 1), (0, 10), (3, 10), (10, 10), (1, 3), (417, 1000), (123_456, 1_000_000), (0.0, 250.0)],
)
@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.01])
def test_wilson_matches_statsmodels(successes, trials, alpha):
    expected = proportion_confint(successes, trials, alpha=alpha, method="wilson")
    assert wilson_interval(successes, trials, alpha) == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("trials", [79, 44, 1_000_000])
def test_wilson_bounds_no_success_at_zero_and_no_failure_at_one_exactly(trials):
    # the bound is 0 (1) analytically; the formula's rounding published 2.8e-17 for 0 of 79
    assert wilson_interval(0, trials)[0] == 0.0 and wilson_interval(trials, trials)[1] == 1.0
    assert 0 < wilson_interval(1, trials)[0] and wilson_interval(trials - 1, trials)[1] < 1


def test_wilson_without_trials_is_nan():
    low, high = wilson_interval(0, 0)
    assert math.isnan(low) and math.isnan(high)


# --- group rates vs fairlearn / sklearn on the rows ------------------------------------------------------


@pytest.mark.parametrize("attribute", ATTRIBUTES)
def test_group_rates_match_fairlearn_and_sklearn(world, rates, attribute):
    rows, people, _ = world
    mine = rates[rates["attribute"] == attribute].set_index("group_value")
    labelled = rows[rows["label"].notna()]
    y, d = labelled["label"].astype(int), labelled["decision"]
    # selection rate is over every prediction, labelled or not
    selection = MetricFrame(
        metrics=selection_rate, y_true=rows["decision"], y_pred=rows["decision"], sensitive_features=rows[attribute]
    ).by_group
    errors = MetricFrame(
        metrics={"tpr": true_positive_rate, "fpr": false_positive_rate},
        y_true=y,
        y_pred=d,
        sensitive_features=labelled[attribute],
    ).by_group
    assert sorted(mine.index) == sorted(selection.index)
    for group in mine.index:
        part = labelled[labelled[attribute] == group]
        assert mine.loc[group, "selection_rate"] == pytest.approx(selection[group], **EXACT), group
        assert mine.loc[group, "tpr"] == pytest.approx(errors.loc[group, "tpr"], **EXACT), group
        assert mine.loc[group, "fpr"] == pytest.approx(errors.loc[group, "fpr"], **EXACT), group
        assert mine.loc[group, "precision"] == pytest.approx(
            precision_score(part["label"].astype(int), part["decision"]), **EXACT
        )
        assert mine.loc[group, "n"] == (rows[attribute] == group).sum()
        assert mine.loc[group, "labelled"] == len(part)
        assert mine.loc[group, "mean_score"] == pytest.approx(part["score"].mean(), **EXACT)
        assert mine.loc[group, "observed_positive_rate"] == pytest.approx(part["label"].mean(), **EXACT)
        assert mine.loc[group, "calibration_gap_group"] == pytest.approx(
            part["score"].mean() - part["label"].mean(), **EXACT
        )


def test_intervals_are_wilson_on_the_window_totals(rates):
    cells = {
        "selection_rate": ("positives", ["predictions"]),
        "tpr": ("true_positives", ["true_positives", "false_negatives"]),
        "fpr": ("false_positives", ["false_positives", "true_negatives"]),
        "precision": ("true_positives", ["true_positives", "false_positives"]),
    }
    for name, (numerator, denominator) in cells.items():
        low, high = proportion_confint(rates[numerator], rates[denominator].sum(axis=1), alpha=0.05, method="wilson")
        np.testing.assert_allclose(rates[f"{name}_ci_low"], low, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(rates[f"{name}_ci_high"], high, rtol=1e-12, atol=1e-12)
        assert ((rates[f"{name}_ci_low"] <= rates[name]) & (rates[name] <= rates[f"{name}_ci_high"])).all()


def test_representation_uses_the_latest_population_not_a_sum_over_days(world, rates):
    rows, people, _ = world
    age = rates[rates["attribute"] == "age_band"].set_index("group_value")
    shares = people["age_band"].value_counts(normalize=True)  # everyone has signed up by the last day
    traffic = rows["age_band"].value_counts(normalize=True)
    for group in age.index:
        assert age.loc[group, "population_users"] == (people["age_band"] == group).sum()
        assert age.loc[group, "population_share"] == pytest.approx(shares[group], **EXACT)
        assert age.loc[group, "prediction_share"] == pytest.approx(traffic[group], **EXACT)
        assert age.loc[group, "representation_ratio"] == pytest.approx(traffic[group] / shares[group], **EXACT)


def test_a_window_is_judged_on_summed_counts(world, rates):
    # collapsing the window into a single day must not change anything but the date
    _, _, daily = world
    one_day = (
        daily.assign(date=DAYS[-1])
        .groupby(["date", "model_id", "attribute", "group_value"], as_index=False)
        .agg(
            {
                **{
                    c: "sum"
                    for c in daily.columns
                    if c
                    not in (
                        "date",
                        "model_id",
                        "attribute",
                        "group_value",
                        "labels_as_of",
                        "population_users",
                        "population_total",
                    )
                },
                "population_users": "last",
                "population_total": "last",
            }
        )
    )
    pd.testing.assert_frame_equal(group_rates(one_day), rates, check_dtype=False, rtol=1e-12)


def test_without_a_population_the_representation_is_nan_not_inf(world):
    # the retraining snapshot has no population: population_users 0 of population_total 1
    snapshot = group_rates(world[2].assign(population_users=0, population_total=1))
    assert snapshot["population_share"].eq(0).all() and snapshot["representation_ratio"].isna().all()


def test_missing_contract_column_is_a_clear_error(world):
    with pytest.raises(ValueError, match="true_positives"):
        group_rates(world[2].drop(columns=["true_positives"]))


# --- verdicts vs fairlearn -------------------------------------------------------------------------------


@pytest.mark.parametrize("attribute", ATTRIBUTES)
def test_verdict_metrics_match_fairlearn(world, rates, attribute):
    rows, _, _ = world
    # no minimum: every group takes part, as in fairlearn
    verdict = bias_verdicts(rates, {"min_labelled": 0}).set_index("attribute").loc[attribute]
    labelled = rows[rows["label"].notna()]
    y, d, s = labelled["label"].astype(int), labelled["decision"], labelled[attribute]
    assert verdict["disparate_impact_ratio"] == pytest.approx(
        demographic_parity_ratio(rows["decision"], rows["decision"], sensitive_features=rows[attribute]), **EXACT
    )
    assert verdict["equal_opportunity_difference"] == pytest.approx(
        equal_opportunity_difference(y, d, sensitive_features=s), **EXACT
    )
    tpr = MetricFrame(metrics=true_positive_rate, y_true=y, y_pred=d, sensitive_features=s)
    assert verdict["equal_opportunity_difference"] == pytest.approx(tpr.difference(), **EXACT)
    assert verdict["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(y, d, sensitive_features=s), **EXACT
    )
    gaps = labelled.groupby(attribute).apply(lambda g: g["score"].mean() - g["label"].mean())
    assert verdict["calibration_gap"] == pytest.approx(gaps.max() - gaps.min(), **EXACT)


def test_planted_group_is_flagged_and_no_other(rates):
    verdicts = bias_verdicts(rates, {**DEFAULTS, "window_days": 14}).set_index("attribute")
    age = verdicts.loc["age_band"]
    assert not age["passes_equal_opportunity"] and not age["passed"]
    assert age["flagged_groups_equal_opportunity"] == ["55+"]
    # under-scored positives also lower the group's selection rate below four fifths
    assert age["flagged_groups_disparate_impact"] == ["55+"]
    for attribute in ("gender", "country"):
        assert verdicts.loc[attribute, "passed"], verdicts.loc[attribute]
        assert verdicts.loc[attribute, "flagged_groups_equal_opportunity"] == []
        assert verdicts.loc[attribute, "flagged_groups_disparate_impact"] == []
    # in the intersection only the planted group's sub-groups are flagged; the small 'unknown' ones are excluded
    cross = verdicts.loc["gender_x_age_band"]
    assert cross["flagged_groups_equal_opportunity"] == ["female|55+", "male|55+"]
    assert cross["excluded_groups"] == ["unknown|18-34", "unknown|35-54", "unknown|55+"]
    assert not set(cross["excluded_groups"]) & set(cross["eligible_groups"])


def test_flags_name_a_group_exactly_when_the_verdict_fails(rates):
    for limits in ({}, {"equal_opportunity_max_difference": 0.25, "disparate_impact_min": 0.77}, {"min_labelled": 0}):
        for _, v in bias_verdicts(rates, limits).iterrows():
            assert v["passes_equal_opportunity"] == (v["flagged_groups_equal_opportunity"] == [])
            assert v["passes_disparate_impact"] == (v["flagged_groups_disparate_impact"] == [])
            assert v["passed"] == all(
                v[c]
                for c in (
                    "passes_disparate_impact",
                    "passes_equal_opportunity",
                    "passes_equalized_odds",
                    "passes_calibration",
                )
            )


def fair_country_rows(world) -> pd.DataFrame:
    return world[2][world[2]["attribute"] == "country"]


def tiny_group(tpr_zero: bool = True, labelled: int = 40) -> pd.DataFrame:
    """One day of a small group whose labelled positives were never selected (TPR 0) or that has no labelled positives."""
    positives = 0 if not tpr_zero else labelled // 2
    return pd.DataFrame(
        [
            {
                "date": DAYS[-1],
                "model_id": "recommender",
                "attribute": "country",
                "group_value": "LU",
                "predictions": labelled,
                "positives": 0,
                "labelled": labelled,
                "labelled_positives": positives,
                "true_positives": 0,
                "false_positives": 0,
                "false_negatives": positives,
                "true_negatives": labelled - positives,
                "score_sum": 0.2 * labelled,
                "label_sum": positives,
                "population_users": 10,
                "population_total": 6000,
            }
        ]
    )


def test_a_small_group_with_an_extreme_tpr_is_reported_but_does_not_flip_the_verdict(world):
    fair = fair_country_rows(world)
    rows = pd.concat([fair, tiny_group()], ignore_index=True)
    rates = group_rates(rows)
    tiny = rates.set_index("group_value").loc["LU"]
    assert tiny["tpr"] == 0 and tiny["tpr_ci_high"] > 0.1  # reported, visibly uncertain
    # judged with it, it would fail ...
    naive = bias_verdicts(rates, {"min_labelled": 0}).iloc[0]
    assert not naive["passes_equal_opportunity"] and "LU" in naive["flagged_groups_equal_opportunity"]
    # ... but with fewer than min_labelled labelled rows it is excluded from every verdict
    verdict = bias_verdicts(rates, {"min_labelled": 200}).iloc[0]
    without = bias_verdicts(group_rates(fair), {"min_labelled": 200}).iloc[0]
    assert verdict["passed"] and verdict["excluded_groups"] == ["LU"] and "LU" not in verdict["eligible_groups"]
    assert verdict["flagged_groups_equal_opportunity"] == [] and verdict["flagged_groups_disparate_impact"] == []
    for metric in (
        "disparate_impact_ratio",
        "equal_opportunity_difference",
        "equalized_odds_difference",
        "calibration_gap",
    ):
        assert verdict[metric] == pytest.approx(without[metric], rel=1e-12), metric


def test_a_group_without_labelled_positives_leaves_only_the_tpr_verdicts(world):
    rows = pd.concat([fair_country_rows(world), tiny_group(tpr_zero=False, labelled=300)], ignore_index=True)
    rates = group_rates(rows)
    assert math.isnan(rates.set_index("group_value").loc["LU", "tpr"])
    verdict = bias_verdicts(rates, {"min_labelled": 200}).iloc[0]
    assert "LU" in verdict["eligible_groups"] and verdict["groups_without_tpr"] == ["LU"]
    assert "no labelled positives" in verdict["note"] and "LU" in verdict["note"]
    assert not math.isnan(verdict["equal_opportunity_difference"]) and verdict["passes_equal_opportunity"]
    # it still takes part in the verdicts that need no positives: it never selects anyone
    assert verdict["disparate_impact_ratio"] == 0 and verdict["flagged_groups_disparate_impact"] == ["LU"]


def test_fewer_than_two_eligible_groups_pass_with_nan_metrics_and_a_note(world):
    rates = group_rates(fair_country_rows(world)).sort_values("labelled")
    only_the_largest = (rates["labelled"].iloc[-2] + rates["labelled"].iloc[-1]) / 2
    # a minimum no group reaches even in predictions: nothing at all to compare
    nothing = rates["predictions"].max() + 1
    verdict = bias_verdicts(rates, {"min_labelled": nothing, "min_predictions": nothing}).iloc[0]
    assert verdict["eligible_groups"] == [] and sorted(verdict["excluded_groups"]) == ["DE", "FR", "NL"]
    for metric in (
        "disparate_impact_ratio",
        "equal_opportunity_difference",
        "equalized_odds_difference",
        "calibration_gap",
    ):
        assert math.isnan(verdict[metric]), metric
    assert verdict["passed"] and "nothing to compare" in verdict["note"]
    # it passes (nothing to compare), but its summary must not read as a finding of fairness
    text = summarise_verdicts(pd.DataFrame([verdict]))
    assert "fairness verdicts pass" not in text
    assert text.endswith(f"not assessed: fewer than 2 groups with >= {nothing:g} predictions (bias.min_predictions)")
    fair = bias_verdicts(rates, {"min_labelled": 0}).iloc[0]
    both = summarise_verdicts(pd.DataFrame([fair, verdict]))
    assert both.splitlines()[0] == "the assessed fairness verdicts pass" and "not assessed" in both.splitlines()[1]
    # one group with enough labels: the label-based metrics are NaN, disparate impact still compares decisions
    few_labels = bias_verdicts(rates, {"min_labelled": only_the_largest, "min_predictions": only_the_largest}).iloc[0]
    assert few_labels["eligible_groups"] == ["DE"] and few_labels["excluded_groups"] == ["FR", "NL"]
    assert math.isnan(few_labels["equal_opportunity_difference"]) and math.isnan(few_labels["calibration_gap"])
    decided = rates[rates["predictions"] >= only_the_largest]
    assert len(decided) >= 2
    # by hand: the lowest selection rate over the highest, of the groups with enough predictions
    hand = decided["positives"] / decided["predictions"]
    assert few_labels["disparate_impact_ratio"] == pytest.approx(hand.min() / hand.max(), rel=1e-12)
    # the groups it compared are said: an excluded group can be one of them (a trial could not tell which were)
    assert few_labels["disparate_impact_groups"] == sorted(decided["group_value"])
    assert set(few_labels["disparate_impact_groups"]) & set(few_labels["excluded_groups"])
    assert "only disparate impact (decisions, no labels) is compared" in few_labels["note"]
    assert assessed(few_labels)


def _decisions_only(model: str, attribute: str, groups, predictions, positives, users) -> pd.DataFrame:
    """bias_daily-like rows of one model and attribute with decisions and no label yet."""
    return pd.DataFrame(
        {
            "model_id": model,
            "attribute": attribute,
            "group_value": groups,
            "predictions": predictions,
            "positives": positives,
            **{c: 0 for c in COUNT_COLUMNS if c not in ("predictions", "positives")},
            "population_users": users,
            "population_total": sum(users),
        }
    )


def test_a_risk_score_whose_labels_have_not_landed_is_judged_on_its_decisions():
    # labels 60-120 days late: one group flagged 28.7% of the time (n=348), the other 13.2% (n=1027), and the
    # verdict said "fewer than 2 groups with >= 100 labelled predictions", passed
    rows = _decisions_only("risk", "race", ["Black", "White"], [348, 1027], [100, 136], [500, 1500])
    rates = group_rates(rows.assign(date=pd.Timestamp("2025-04-09")), positive_decision={"risk": "harmful"})
    verdict = bias_verdicts(rates, {"min_labelled": 100}, {"risk": "harmful"}).iloc[0]
    # by hand: 0.82 on the rates of not being flagged (248/348 vs 891/1027) passed the four-fifths rule, though
    # one group is flagged 2.2 times as often: the ratio of the flag rates, 0.46, is the lower, beyond noise
    assert (248 / 348) / (891 / 1027) > 0.8
    assert verdict["disparate_impact_ratio"] == pytest.approx((136 / 1027) / (100 / 348), rel=1e-12)
    assert not verdict["passed"] and verdict["flagged_groups_disparate_impact"] == ["Black"]
    assert assessed(verdict) and verdict["eligible_groups"] == []  # judged with no label yet
    # flagged at 28.7% vs 25%: within four-fifths both ways (0.87 flagged, 0.95 not flagged), passed
    close = bias_verdicts(
        group_rates(
            rows.assign(date=pd.Timestamp("2025-04-09"), positives=[100, 257]), positive_decision={"risk": "harmful"}
        ),
        {"min_labelled": 100},
        {"risk": "harmful"},
    ).iloc[0]
    assert close["disparate_impact_ratio"] == pytest.approx((257 / 1027) / (100 / 348), rel=1e-12)
    assert close["passed"] and "beyond its limit" not in close["note"]
    # the label-based verdicts compared nothing (no group has a label): said, not read as passes
    said = summarise_verdicts(pd.DataFrame([close])).splitlines()
    assert said == [
        "the assessed fairness verdicts pass",
        "risk / race: equal opportunity difference, equalised odds difference, calibration gap not assessed: fewer "
        "than 2 groups with >= 100 labelled predictions (bias.min_labelled)",
    ]


def test_a_pass_over_the_larger_groups_names_the_groups_it_left_out():
    # a trial's intersection (real resume data): the two male groups had 315 and 300 predictions, under
    # min_labelled 500, and the summary said "all fairness verdicts pass" over the two female groups alone
    groups = ["afam|female", "afam|male", "cauc|female", "cauc|male"]
    predictions, positives, labelled = [1300, 315, 1310, 300], [351, 58, 360, 59], [1300, 315, 1310, 300]
    rows = pd.DataFrame(
        {
            "model_id": "screener",
            "attribute": "ethnicity_x_gender",
            "group_value": groups,
            "predictions": predictions,
            "positives": positives,
            "labelled": labelled,
            "labelled_positives": [80, 20, 120, 28],
            "true_positives": [40, 8, 60, 12],
            "false_positives": [311, 50, 300, 47],
            "false_negatives": [40, 12, 60, 16],
            "true_negatives": [909, 245, 890, 225],
            "score_sum": [100.0, 25.0, 100.0, 24.0],
            "label_sum": [80, 20, 120, 28],
            "population_users": [1300, 315, 1310, 300],
            "population_total": 3225,
        }
    )
    rates = group_rates(rows.assign(date=pd.Timestamp("2026-03-26")))
    # disparate impact's groups needing min_labelled's 500 predictions (as it did): a pass of the female groups
    verdict = bias_verdicts(rates, {"min_labelled": 500, "min_predictions": 500}).iloc[0]
    assert verdict["passed"] and verdict["excluded_groups"] == ["afam|male", "cauc|male"]
    said = summarise_verdicts(pd.DataFrame([verdict])).splitlines()
    assert said == [
        "the assessed fairness verdicts pass",
        "screener / ethnicity_x_gender: afam|male, cauc|male left out of every verdict (fewer than 500 predictions, "
        "bias.min_predictions)",
    ]
    # a project that lowers min_labelled for small data lowers disparate impact's minimum with it
    assert Thresholds.from_mapping({"min_labelled": 30}).decisions_needed == 30
    assert Thresholds.from_mapping({"min_labelled": 500}).decisions_needed == 100
    # decisions need no label: at the default 100 predictions disparate impact compares all four, and fails (by
    # hand: the male groups' selection rates 58/315 and 59/300 against 360/1310, Wilson intervals apart)
    verdict = bias_verdicts(rates, {"min_labelled": 500}).iloc[0]
    assert verdict["disparate_impact_groups"] == groups and not verdict["passes_disparate_impact"]
    assert verdict["disparate_impact_ratio"] == pytest.approx((58 / 315) / (360 / 1310), rel=1e-12)
    assert summarise_verdicts(pd.DataFrame([verdict])).splitlines()[-1] == (
        "screener / ethnicity_x_gender: afam|male, cauc|male left out of all but disparate impact (fewer than 500 "
        "labelled predictions, bias.min_labelled)"
    )


def test_a_coded_group_is_named_with_its_attribute():
    # a trial's senior_citizen 0/1: "disparate impact ratio 0.51 < 0.80; disadvantaged: 0" read as a count
    rows = _decisions_only("churn", "senior_citizen", ["0", "1"], [2000, 400], [586, 230], [5900, 1140])
    verdict = bias_verdicts(group_rates(rows.assign(date=pd.Timestamp("2026-11-03"))), {"min_labelled": 500})
    # by hand: 586/2000 = 0.293 selected against 230/400 = 0.575, ratio 0.51
    assert verdict.iloc[0]["disparate_impact_ratio"] == pytest.approx((586 / 2000) / (230 / 400), rel=1e-12)
    said = summarise_verdicts(verdict)
    assert "disparate impact ratio 0.51 < 0.80; disadvantaged: senior_citizen=0" in said
    # a group that is no number, of an attribute whose other groups are: named alike (a trial's "disadvantaged: 3+"
    # beside "party_size=2, party_size=3+")
    rows = _decisions_only("churn", "party_size", ["2", "3+"], [2000, 2000], [1000, 300], [5900, 5900])
    said = summarise_verdicts(bias_verdicts(group_rates(rows.assign(date=pd.Timestamp("2026-11-03"))), {}))
    assert "disadvantaged: party_size=3+" in said


def test_no_rows_give_empty_frames_with_every_column(world):
    empty = world[2].iloc[0:0]
    rates = group_rates(empty)
    verdicts = bias_verdicts(rates, DEFAULTS)
    assert rates.empty and {"selection_rate", "tpr_ci_high", "representation_ratio"} <= set(rates.columns)
    assert verdicts.empty and {"passed", "flagged_groups_equal_opportunity", "note"} <= set(verdicts.columns)
    assert summarise_verdicts(verdicts) == "all fairness verdicts pass"


# --- summary ---------------------------------------------------------------------------------------------


def test_summary_names_metric_value_limit_and_group(rates):
    verdicts = bias_verdicts(rates, {"min_labelled": 500})
    age = verdicts.set_index("attribute").loc["age_band"]
    lines = summarise_verdicts(verdicts).splitlines()
    eo = f"recommender / age_band: equal opportunity difference {age['equal_opportunity_difference']:.2f} > 0.10; disadvantaged: 55+"
    di = (
        f"recommender / age_band: disparate impact ratio {age['disparate_impact_ratio']:.2f} < 0.80; disadvantaged: 55+"
    )
    assert eo in lines and di in lines
    assert age["equalized_odds_rate"] == "tpr"
    assert any(
        line.startswith(f"recommender / age_band: equalised odds: TPR range {age['tpr_difference']:.2f} > 0.10")
        for line in lines
    )
    # passing verdicts say nothing but the groups they left out (fewer than 500 labelled predictions)
    passing = [line for line in lines if "/ gender:" in line or "/ country:" in line]
    for line in passing:
        attribute = line.split(" / ")[1].split(":")[0]
        small = rates[(rates["attribute"] == attribute) & (rates["labelled"] < 500)]["group_value"]
        assert "left out of" in line and len(small) and all(str(g) in line for g in small), line
    assert len(passing) == len({line.split(":")[0] for line in passing})  # one line per verdict
    # the demo's users without a gender form 'unknown' groups: said where a failed disparate impact compared them
    missing = [line for line in lines if "(users without a value)" in line]
    failed_di = set(verdicts.loc[~verdicts["passes_disparate_impact"], "attribute"])
    assert all(line.split(" / ")[1].split(":")[0] in failed_di for line in missing)
    failing = [line for line in lines if "left out of" not in line and line not in missing]
    assert len(failing) == sum((~verdicts[c]).sum() for c in verdicts.columns if c.startswith("passes_"))


def test_equalised_odds_names_the_rate_whose_groups_are_apart_beyond_noise():
    # TPR range 0.21 on 40 labelled positives a group (within noise: equal opportunity passed) and FPR range 0.14
    # on 2,000 negatives (apart): the message said "(TPR range)"
    tp, fp = (20, 29), (640, 360)
    rows = pd.DataFrame(
        {
            "model_id": "m",
            "attribute": "sex",
            "group_value": ["a", "b"],
            "predictions": 2040,
            "positives": [tp[0] + fp[0], tp[1] + fp[1]],
            "labelled": 2040,
            "labelled_positives": 40,
            "true_positives": tp,
            "false_positives": fp,
            "false_negatives": [40 - tp[0], 40 - tp[1]],
            "true_negatives": [2000 - fp[0], 2000 - fp[1]],
            "score_sum": 600.0,
            "label_sum": 40,
            "population_users": 1000,
            "population_total": 2000,
        }
    )
    verdict = bias_verdicts(group_rates(rows.assign(date=pd.Timestamp("2025-05-05"))), {"min_labelled": 100}).iloc[0]
    assert verdict["passes_equal_opportunity"] and not verdict["passes_equalized_odds"]
    assert verdict["equalized_odds_rate"] == "fpr"
    # by hand: FPR 640/2000 - 360/2000
    assert (
        f"m / sex: equalised odds: FPR range {640 / 2000 - 360 / 2000:.2f} > 0.10 (TPR range "
        f"{29 / 40 - 20 / 40:.2f} within noise)"
    ) in summarise_verdicts(pd.DataFrame([verdict])).splitlines()  # it quoted the TPR range, the wider one


def test_summary_quotes_the_limits_the_verdict_was_judged_against(rates):
    strict = bias_verdicts(
        rates,
        {"equal_opportunity_max_difference": 0.05, "disparate_impact_min": 0.5, "equalized_odds_max_difference": 0.5},
    )
    text = "\n".join(line for line in summarise_verdicts(strict).splitlines() if "left out of" not in line)
    assert "equal opportunity difference" in text and "> 0.05; disadvantaged: 55+" in text
    assert "disparate impact" not in text and "equalised odds" not in text


def test_a_limit_of_three_decimals_is_printed_as_set(rates):
    # init scales calibration_gap_max to the base rate (0.097 for a trial): the line said "0.11 > 0.10"
    verdict = bias_verdicts(rates).set_index("attribute").loc[["age_band"]].reset_index()
    verdict["equal_opportunity_difference"], verdict["equal_opportunity_max_difference"] = 0.1079, 0.097
    assert "equal opportunity difference 0.11 > 0.097" in summarise_verdicts(verdict)


def test_summary_shows_more_digits_when_two_would_equal_the_limit(rates):
    verdict = bias_verdicts(rates).set_index("attribute").loc[["age_band"]].reset_index()
    verdict["equal_opportunity_difference"] = 0.1004
    assert "equal opportunity difference 0.1004 > 0.10" in summarise_verdicts(verdict)


def test_users_without_a_value_compared_as_their_own_group_are_said_to_be():
    # a trial's 263 passengers without an age were 'unknown', the most-selected age group: every band's disparate
    # impact was a ratio to them, unsaid
    from orchestration.lib.bias import _missing_value_groups

    rows = _decisions_only("assist", "age_band", ["0-17", "18-39", "unknown"], [150, 400, 200], [70, 210, 140], [1] * 3)
    verdict = bias_verdicts(group_rates(rows.assign(date=pd.Timestamp("2026-11-20"))), {}).iloc[0]
    # by hand: the ratio is to the unknown group's 140/200 = 0.7; 0-17's 70/150 gives 0.667
    assert verdict["disparate_impact_ratio"] == pytest.approx((70 / 150) / (140 / 200), rel=1e-12)
    assert not verdict["passes_disparate_impact"]
    assert summarise_verdicts(pd.DataFrame([verdict])).splitlines()[-1] == (
        "assist / age_band: unknown (users without a value) compared in disparate impact as group(s) of their own: "
        "the ratios may be to their rate (marts.bias_daily: each group's rate)"
    )
    # an intersection's group with a missing part counts too; a passing verdict, or one whose missing-value group
    # is itself disadvantaged, or none at all: nothing said
    failed = {"passes_disparate_impact": False, "flagged_groups_disparate_impact": ["0-17|male"]}
    assert "unknown|male" in _missing_value_groups({**failed, "disparate_impact_groups": ["unknown|male", "0-17|male"]})
    assert (
        _missing_value_groups({"passes_disparate_impact": True, "disparate_impact_groups": ["unknown", "0-17"]}) == ""
    )
    flagged_unknown = {"passes_disparate_impact": False, "flagged_groups_disparate_impact": ["unknown"]}
    assert _missing_value_groups({**flagged_unknown, "disparate_impact_groups": ["unknown", "0-17"]}) == ""
    assert _missing_value_groups({**failed, "disparate_impact_groups": ["0-17", "18-39"]}) == ""


def test_a_verdict_unjudged_for_want_of_positives_says_so_not_too_few_labelled_groups():
    # a trial: ivdrug groups of 343 and 63 labelled, one without a labelled positive, read "not assessed: fewer
    # than 2 groups with >= 30 labelled predictions"; its verdict row's note said why
    counts = {  # group: (predictions, positives, tp, fp, fn, tn)
        "1": (343, 40, 10, 30, 5, 298),
        "3": (63, 5, 0, 5, 0, 58),
    }
    rows = pd.DataFrame(
        {
            "date": pd.Timestamp("2026-01-15"),
            "model_id": "risk",
            "attribute": "ivdrug",
            "group_value": list(counts),
            "predictions": [c[0] for c in counts.values()],
            "positives": [c[1] for c in counts.values()],
            "labelled": [sum(c[2:]) for c in counts.values()],
            "labelled_positives": [c[2] + c[4] for c in counts.values()],
            "true_positives": [c[2] for c in counts.values()],
            "false_positives": [c[3] for c in counts.values()],
            "false_negatives": [c[4] for c in counts.values()],
            "true_negatives": [c[5] for c in counts.values()],
            "score_sum": [0.1 * c[0] for c in counts.values()],
            "label_sum": [c[2] + c[4] for c in counts.values()],
            "population_users": [343, 63],
            "population_total": 406,
        }
    )
    verdict = bias_verdicts(group_rates(rows), {"min_labelled": 30, "min_predictions": 30}).iloc[0]
    assert sorted(verdict["eligible_groups"]) == ["1", "3"] and verdict["groups_without_tpr"] == ["3"]
    assert math.isnan(verdict["equal_opportunity_difference"])  # one TPR (10/15) left: nothing to compare
    text = summarise_verdicts(pd.DataFrame([verdict]))
    assert "fewer than 2 groups with >= 30 labelled" not in text
    assert (
        "risk / ivdrug: equal opportunity difference not assessed: of the 2 groups with >= 30 labelled predictions, "
        "fewer than 2 hold the labels it compares (no labelled positives, excluded from equal opportunity and "
        "equalised odds: 3)"
    ) in text


def test_equalised_odds_within_noise_says_the_level_it_tests_each_rate_at():
    # a re-trial: equal opportunity failed on TPRs 38/41 vs 12/17 (Fisher's p 0.040) beside "equalised odds ... alike
    # by a test across them at 5%: passes": equalised odds tests each of its two rates at 2.5%
    from scipy.stats import fisher_exact

    counts = {"no": (38, 3, 4, 30), "yes": (12, 5, 3, 25)}  # tp, fn, fp, tn
    rows = pd.DataFrame(
        {
            "date": pd.Timestamp("2025-05-07"),
            "model_id": "risk",
            "attribute": "prior_therapy",
            "group_value": list(counts),
            "predictions": [sum(c) for c in counts.values()],
            "positives": [c[0] + c[2] for c in counts.values()],
            "labelled": [sum(c) for c in counts.values()],
            "labelled_positives": [c[0] + c[1] for c in counts.values()],
            "true_positives": [c[0] for c in counts.values()],
            "false_negatives": [c[1] for c in counts.values()],
            "false_positives": [c[2] for c in counts.values()],
            "true_negatives": [c[3] for c in counts.values()],
            "score_sum": [0.5 * sum(c) for c in counts.values()],
            "label_sum": [c[0] + c[1] for c in counts.values()],
            "population_users": [75, 45],
            "population_total": 120,
        }
    )
    p_tpr = fisher_exact([[38, 3], [12, 5]])[1]
    assert 0.025 < p_tpr < 0.05  # apart at 5%, alike at 2.5%
    verdict = bias_verdicts(group_rates(rows), {"min_labelled": 10, "min_predictions": 10}).iloc[0]
    assert not verdict["passes_equal_opportunity"] and verdict["passes_equalized_odds"]
    text = summarise_verdicts(pd.DataFrame([verdict]))
    [odds] = [line for line in text.splitlines() if "equalised odds difference" in line]
    assert "alike by a test across them at 2.5% on each of its two rates, TPR and FPR" in odds
    assert "at 2.5% on each of its two rates" in verdict["note"]
