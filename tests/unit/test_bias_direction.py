"""Fairness for any protected attribute and either direction, against fairlearn on the row-level data.

A risk model ('fraud', positive decision harmful: being flagged is the harm) over users with a
`race` column (not one of the demo's attributes) and a `region`, plus their intersection. Group
'B' is flagged more often, and its innocent members wrongly flagged more often: the verdicts must
name B, judging disparate impact on the rates of being flagged and of NOT being flagged, the lower
(fairlearn's demographic_parity_ratio on the decisions and on the inverted decisions) and equal opportunity on false-positive rates
(fairlearn's MetricFrame with false_positive_rate). Read as if a positive decision were favourable,
the same counts would name the wrong groups (the ones flagged least).
"""

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, demographic_parity_ratio, false_positive_rate, true_positive_rate

from tests.oracles.bias_counts import bias_counts
from orchestration.lib.bias import (
    bias_verdicts,
    group_intervals,
    group_rates,
    positive_decisions,
    summarise_verdicts,
    window_tables,
)

EXACT = dict(rel=1e-9, abs=1e-12)
ATTRIBUTES = {"race": ["race"], "region": ["region"], "race_x_region": ["race", "region"]}
DAYS = pd.date_range("2026-06-01", periods=4)
LIMITS = {
    "window_days": 4,
    "min_labelled": 200,
    "disparate_impact_min": 0.8,
    "equal_opportunity_max_difference": 0.1,
    "equalized_odds_max_difference": 0.1,
    "calibration_gap_max": 0.1,
}


def make_rows(seed: int = 12, n: int = 30_000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = pd.DataFrame(
        {
            "race": rng.choice(["A", "B", "C"], n, p=[0.5, 0.3, 0.2]),
            "region": rng.choice(["north", "south"], n),
            "date": rng.choice(DAYS, n),
        }
    )
    label = (rng.random(n) < 0.2).astype(int)
    # B's scores are pushed up whatever the truth: flagged more often, innocent members too
    score = np.clip(0.3 + 0.35 * label + 0.12 * (rows["race"] == "B") + rng.normal(0, 0.15, n), 0, 1)
    rows["decision"] = (score >= 0.5).astype(int)
    rows["score"] = score
    rows["label"] = np.where(rng.random(n) < 0.8, label, np.nan)
    rows["model_id"] = "fraud"
    for name, columns in ATTRIBUTES.items():
        rows[name] = rows[columns].astype(str).agg("|".join, axis=1)  # intersections as marts.bias_daily joins them
    return rows


def bias_daily(rows: pd.DataFrame) -> pd.DataFrame:
    """What marts.bias_daily holds for these rows, for the attributes of ATTRIBUTES."""
    parts = bias_counts(rows, ATTRIBUTES)
    for counts in parts:
        counts["population_users"], counts["population_total"] = 100, 300
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def world():
    rows = make_rows()
    return rows, bias_daily(rows)


HARMFUL = {"fraud": "harmful"}


@pytest.mark.parametrize("attribute", list(ATTRIBUTES))
def test_harmful_disparate_impact_is_the_lower_of_fairlearns_ratios_of_being_and_not_being_flagged(world, attribute):
    rows, daily = world
    verdict = bias_verdicts(group_rates(daily, positive_decision=HARMFUL), {**LIMITS, "min_labelled": 0}).set_index(
        "attribute"
    )
    flagged, not_flagged = rows["decision"], 1 - rows["decision"]
    oracle = min(
        demographic_parity_ratio(flagged, flagged, sensitive_features=rows[attribute]),
        demographic_parity_ratio(not_flagged, not_flagged, sensitive_features=rows[attribute]),
    )
    assert verdict.loc[attribute, "disparate_impact_ratio"] == pytest.approx(oracle, **EXACT)
    assert verdict.loc[attribute, "positive_decision"] == "harmful"


@pytest.mark.parametrize("attribute", list(ATTRIBUTES))
def test_harmful_equal_opportunity_compares_false_positive_rates(world, attribute):
    rows, daily = world
    rates = group_rates(daily, positive_decision=HARMFUL)
    verdict = bias_verdicts(rates, LIMITS).set_index("attribute").loc[attribute]
    labelled = rows[rows["label"].notna()]
    frame = MetricFrame(
        metrics={"fpr": false_positive_rate, "tpr": true_positive_rate},
        y_true=labelled["label"].astype(int),
        y_pred=labelled["decision"],
        sensitive_features=labelled[attribute],
    )
    counts = labelled.groupby(attribute).size()
    eligible = counts[counts >= LIMITS["min_labelled"]].index
    fpr, tpr = frame.by_group.loc[eligible, "fpr"], frame.by_group.loc[eligible, "tpr"]
    assert verdict["equal_opportunity_rate"] == "fpr"
    assert verdict["equal_opportunity_difference"] == pytest.approx(fpr.max() - fpr.min(), **EXACT)
    assert verdict["fpr_difference"] == pytest.approx(fpr.max() - fpr.min(), **EXACT)
    assert verdict["tpr_difference"] == pytest.approx(tpr.max() - tpr.min(), **EXACT)
    # the disadvantaged: wrongly flagged more than min FPR + the limit
    expected = sorted(g for g in eligible if fpr[g] - fpr.min() > LIMITS["equal_opportunity_max_difference"])
    assert verdict["flagged_groups_equal_opportunity"] == expected


def test_the_verdict_names_the_group_flagged_most_not_the_one_flagged_least(world):
    _, daily = world
    harmful = bias_verdicts(group_rates(daily, positive_decision=HARMFUL), LIMITS).set_index("attribute")
    race = harmful.loc["race"]
    assert not race["passes_disparate_impact"] and race["flagged_groups_disparate_impact"] == ["B"]
    assert not race["passes_equal_opportunity"] and race["flagged_groups_equal_opportunity"] == ["B"]
    assert all(g.startswith("B|") for g in harmful.loc["race_x_region", "flagged_groups_equal_opportunity"])
    assert harmful.loc["region", "passed"]  # region is not what the scores depend on
    text = summarise_verdicts(harmful.reset_index())
    assert "fraud / race: disparate impact ratio (of being flagged, or of not being flagged: the lower)" in text
    assert (
        "disadvantaged (flagged more often than another group, beyond the limit and noise): B" in text
        and "disadvantaged (wrongly flagged more often than another group, beyond the limit and noise): B" in text
    )
    # the same counts read as a favourable decision (the old assumption) blame A and C, the groups flagged least
    favourable = bias_verdicts(group_rates(daily, positive_decision={"fraud": "favourable"}), LIMITS).set_index(
        "attribute"
    )
    assert "B" not in favourable.loc["race", "flagged_groups_disparate_impact"]
    assert set(favourable.loc["race", "flagged_groups_disparate_impact"]) <= {"A", "C"}


def test_intervals_and_stored_windows_carry_the_direction(world):
    _, daily = world
    rates = group_rates(daily, positive_decision=HARMFUL)
    race = rates[rates["attribute"] == "race"].set_index("group_value")
    # favourable rate = 1 - selection rate, its Wilson interval the mirror of the selection rate's
    assert race["favourable_rate"].to_numpy() == pytest.approx(1 - race["selection_rate"].to_numpy(), **EXACT)
    assert race["favourable_rate_ci_low"].to_numpy() == pytest.approx(
        1 - race["selection_rate_ci_high"].to_numpy(), **EXACT
    )
    intervals = group_intervals(rates, bias_verdicts(rates, LIMITS))
    race_rows = intervals[intervals["attribute"] == "race"].set_index(["rate", "group_value"])
    assert race_rows.loc[("fpr", "B"), "flagged"] and race_rows.loc[("fpr", "B"), "verdicts"].startswith(
        "equal opportunity"
    )
    assert not race_rows.loc[("tpr", "B"), "flagged"] and race_rows.loc[("tpr", "B"), "verdicts"] == "equalised odds"
    assert race_rows.loc[("selection_rate", "B"), "flagged"] and not race_rows.loc[("selection_rate", "A"), "flagged"]
    stored_rates, stored = window_tables(daily, DAYS[-1], LIMITS, HARMFUL)
    row = stored.set_index("attribute").loc["race"]
    assert row["positive_decision"] == "harmful" and row["flagged_groups_equal_opportunity"] == "B"
    assert set(stored_rates["positive_decision"]) == {"harmful"}


def test_the_direction_comes_from_the_project_file(world, tmp_path, monkeypatch):
    _, daily = world
    config = tmp_path / "project.yml"
    config.write_text(
        "models:\n  fraud: {positive_decision: harmful}\nprotected_attributes: [race, region]\n"
        "intersections: [[race, region]]\n"
    )
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(config))
    assert positive_decisions(["fraud", "undeclared"]) == {"fraud": "harmful", "undeclared": "favourable"}
    from_file = bias_verdicts(group_rates(daily), LIMITS)
    explicit = bias_verdicts(group_rates(daily, positive_decision=HARMFUL), LIMITS)
    pd.testing.assert_frame_equal(from_file, explicit)
    with pytest.raises(ValueError, match="positive_decision must be one of"):
        positive_decisions(["fraud"], {"fraud": "bad"})


def test_the_reports_bars_are_each_groups_ratio_and_their_minimum_the_verdicts(world):
    # the report drew a harmful model's rates of not being flagged (all near 1) beside a verdict on flag rates
    from orchestration.lib import report_figures as rf
    from orchestration.lib.bias import disparate_impact_relative

    _, daily = world
    rates = group_rates(daily, positive_decision=HARMFUL)
    verdict = bias_verdicts(rates, LIMITS).set_index("attribute").loc["race"]
    g = rates[rates["attribute"] == "race"].reset_index(drop=True)
    bars = disparate_impact_relative(g, np.ones(len(g), bool), harmful=True)
    flag = g.set_index("group_value")["selection_rate"]
    by_group = dict(zip(g["group_value"], bars[0], strict=True))
    assert by_group["B"] == pytest.approx(flag.min() / flag["B"], **EXACT)  # B: flagged most, its flag ratio
    assert min(by_group.values()) == pytest.approx(verdict["disparate_impact_ratio"], **EXACT)
    fig = rf.new_figure(1, 1, ["race"], height=300)
    rf.bias_bars(fig, g, bars, ["#000"] * len(g), 1, 0.8)
    hover = dict(zip(g["group_value"], rf.done(fig)["data"][0]["hovertext"], strict=True))
    assert hover["B"].startswith(f"flagged {flag['B']:.3f}")


def test_ratios_to_a_group_never_flagged_carry_that_groups_uncertainty():
    # a trial's risk score never flagged one group (0 of 53): every other group's flag ratio read 0.00 [0.00, 0.00],
    # certain, beside a verdict "within noise"; the bars now span the reference group's interval too
    from statsmodels.stats.proportion import proportion_confint

    from orchestration.lib.bias import disparate_impact_relative

    counts = {"never": (0, 53), "some": (6, 40), "more": (9, 30)}
    wilson = {g: proportion_confint(k, n, alpha=0.05, method="wilson") for g, (k, n) in counts.items()}
    g = {
        "group_value": np.array(list(counts)),
        "selection_rate": np.array([k / n for k, n in counts.values()]),
        "selection_rate_ci_low": np.array([wilson[c][0] for c in counts]),
        "selection_rate_ci_high": np.array([wilson[c][1] for c in counts]),
    }
    relative, low, high, what = disparate_impact_relative(g, np.ones(3, bool), harmful=True)
    assert list(what[1:]) == ["flagged", "flagged"] and list(relative[1:]) == [0.0, 0.0]
    # by hand: the never-flagged group's upper bound over each group's lower bound
    assert high[1:] == pytest.approx([wilson["never"][1] / wilson[c][0] for c in ("some", "more")], rel=1e-12)
    assert list(low[1:]) == [0.0, 0.0] and (high[1:] > 0.1).all()
