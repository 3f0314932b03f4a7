"""Wilson intervals shown, not just computed: the groups behind each verdict (check metadata) and the stored
trailing-window tables (marts.bias_group_rates / marts.bias_verdicts), on a hand-made two-day frame."""

from datetime import date

import duckdb
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from orchestration.defs.bias.checks import verdict_metadata
from orchestration.lib.bias import (
    GROUP_RATES_SCHEMA,
    INTERVAL_COLUMNS,
    VERDICTS_SCHEMA,
    bias_verdicts,
    group_intervals,
    group_rates,
    window_tables,
    clip_window_starts,
    windows_by_day,
)
from orchestration.lib.warehouse import replace_date_range

DAY1, DAY2, OLD = date(2026, 5, 2), date(2026, 5, 3), date(2026, 4, 1)
LIMITS = {
    "window_days": 2,
    "min_labelled": 100,
    "disparate_impact_min": 0.8,
    "equal_opportunity_max_difference": 0.1,
    "equalized_odds_max_difference": 0.1,
    "calibration_gap_max": 0.1,
}
# group -> per-day (predictions, positives, tp, fp, fn, tn, score_sum): 'b' misses half its positives,
# 'tiny' has 20 labelled rows a day (40 < min_labelled over the window)
CELLS = {
    "a": (200, 90, 60, 20, 20, 100, 60.0),
    "b": (200, 60, 40, 20, 40, 100, 62.0),
    "tiny": (30, 3, 1, 2, 7, 10, 6.0),
}


def day_rows(day, scale: int = 1) -> list[dict]:
    rows = []
    for group, (n, pos, tp, fp, fn, tn, score) in CELLS.items():
        rows.append(
            dict(
                date=day,
                model_id="m",
                attribute="segment",
                group_value=group,
                predictions=n * scale,
                positives=pos * scale,
                labelled=(tp + fp + fn + tn) * scale,
                labelled_positives=(tp + fn) * scale,
                true_positives=tp * scale,
                false_positives=fp * scale,
                false_negatives=fn * scale,
                true_negatives=tn * scale,
                score_sum=score * scale,
                label_sum=(tp + fn) * scale,
                population_users=100,
                population_total=300,
            )
        )
    return rows


@pytest.fixture
def rows() -> pd.DataFrame:
    # OLD lies outside a 2-day window ending on DAY2 and would flip every verdict if it were counted
    return pd.DataFrame(day_rows(DAY1) + day_rows(DAY2) + day_rows(OLD, scale=50))


def by_hand(group: str) -> dict[str, tuple[int, int]]:
    """rate -> (successes, trials) over the two window days, from CELLS."""
    n, pos, tp, fp, fn, tn, _ = (2 * x for x in CELLS[group])
    return {
        "selection_rate": (pos, n),
        "tpr": (tp, tp + fn),
        "fpr": (fp, fp + tn),
        "observed_positive_rate": (tp + fn, tp + fp + fn + tn),
    }


def window(rows):
    return rows[rows["date"].isin([DAY1, DAY2])]


def test_group_intervals_are_wilson_on_the_window_totals_with_exclusion_and_flags(rows):
    rates = group_rates(window(rows))
    intervals = group_intervals(rates, bias_verdicts(rates, LIMITS))
    assert list(intervals.columns) == INTERVAL_COLUMNS
    assert len(intervals) == 3 * 4  # every group for each of the four verdict rates
    for group in CELLS:
        for rate, (successes, trials) in by_hand(group).items():
            row = intervals[(intervals["group_value"] == group) & (intervals["rate"] == rate)].iloc[0]
            low, high = proportion_confint(successes, trials, alpha=0.05, method="wilson")
            assert row["trials"] == trials and row["value"] == pytest.approx(successes / trials, rel=1e-12)
            assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high), rel=1e-12, abs=1e-12)
            assert row["labelled"] == 2 * sum(CELLS[group][2:6])
            assert row["excluded"] == (group == "tiny")  # 40 labelled < 100
    # b's TPR 80/160 vs a's 120/160: equal opportunity fails and names b, on the TPR rows only
    flagged = intervals[intervals["flagged"]]
    assert set(zip(flagged["rate"], flagged["group_value"])) == {("tpr", "b"), ("selection_rate", "b")}
    # the tiny group's interval is wide: visibly uncertain, and it takes no part in the verdict
    tiny_tpr = intervals[(intervals["group_value"] == "tiny") & (intervals["rate"] == "tpr")].iloc[0]
    assert tiny_tpr["ci_high"] - tiny_tpr["ci_low"] > 0.3


def test_check_metadata_shows_a_markdown_table_of_the_groups_with_their_intervals(rows):
    rates = group_rates(window(rows))
    metadata = verdict_metadata(bias_verdicts(rates, LIMITS), rates)
    text = metadata["group_intervals"].value
    assert "Wilson 95%" in text
    header = next(line for line in text.splitlines() if line.startswith("| model_id"))
    assert [c.strip() for c in header.strip("|").split("|")] == INTERVAL_COLUMNS
    successes, trials = by_hand("tiny")["tpr"]
    low, high = proportion_confint(successes, trials, alpha=0.05, method="wilson")
    line = next(line for line in text.splitlines() if "| tiny " in line and "| tpr " in line)
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert float(cells[INTERVAL_COLUMNS.index("ci_low")]) == round(low, 4)
    assert float(cells[INTERVAL_COLUMNS.index("ci_high")]) == round(high, 4)
    assert cells[INTERVAL_COLUMNS.index("excluded")] == "True" and cells[INTERVAL_COLUMNS.index("trials")] == str(
        trials
    )
    assert metadata["failing_verdicts"] == 1
    # without the rates (an older caller) the verdict table alone is unchanged
    assert "group_intervals" not in verdict_metadata(bias_verdicts(rates, LIMITS))


def test_a_window_reaching_back_before_its_model_began_starts_on_the_models_first_day(rows):
    # a trial's verdicts read "window 08-26 .. 09-08" for a model predicting since 09-02
    rates, verdicts = window_tables(rows, DAY2, LIMITS)
    model = verdicts["model_id"].iloc[0]
    later = pd.Timestamp(DAY1) + pd.Timedelta(days=3)
    clipped = clip_window_starts(verdicts, {model: later.date()})
    assert (clipped["window_start"] == later).all() and (clipped["date"] == verdicts["date"]).all()
    # a model that began before the window, or one without a first day: the window as it was
    early = clip_window_starts(rates, {model: (pd.Timestamp(DAY1) - pd.Timedelta(days=30)).date()})
    assert (early["window_start"] == pd.Timestamp(DAY1)).all()
    assert clip_window_starts(rates, {}).equals(rates)


def test_window_tables_judge_only_the_trailing_window_and_store_round_trip(rows):
    rates, verdicts = window_tables(rows, DAY2, LIMITS)
    expected = group_rates(window(rows))
    pd.testing.assert_frame_equal(rates[expected.columns].reset_index(drop=True), expected, check_dtype=False)
    assert (rates["date"] == pd.Timestamp(DAY2)).all() and (rates["window_start"] == pd.Timestamp(DAY1)).all()
    assert rates.set_index("group_value")["excluded"].to_dict() == {"a": False, "b": False, "tiny": True}
    v = verdicts.iloc[0]
    assert not v["passes_equal_opportunity"] and v["flagged_groups_equal_opportunity"] == "b"
    assert v["excluded_groups"] == "tiny" and v["eligible_groups"] == "a, b"
    assert v["equal_opportunity_difference"] == pytest.approx(120 / 160 - 80 / 160, rel=1e-12)
    # stored with the shared writer: idempotent per day, types as declared
    with duckdb.connect(":memory:") as conn:
        for _ in range(2):
            replace_date_range(conn, "marts.bias_group_rates", GROUP_RATES_SCHEMA, rates, "date", DAY2, DAY2)
            replace_date_range(conn, "marts.bias_verdicts", VERDICTS_SCHEMA, verdicts, "date", DAY2, DAY2)
        stored = conn.execute("SELECT * FROM marts.bias_group_rates ORDER BY group_value").df()
        judged = conn.execute("SELECT * FROM marts.bias_verdicts").df()
    assert len(stored) == 3 and len(judged) == 1
    assert stored["tpr_ci_low"].tolist() == pytest.approx(
        rates.sort_values("group_value")["tpr_ci_low"].tolist(), rel=1e-12
    )
    assert judged["flagged_groups_equal_opportunity"].tolist() == ["b"] and judged["passed"].tolist() == [False]


def test_window_without_rows_gives_empty_tables_and_missing_window_is_a_clear_error(rows):
    rates, verdicts = window_tables(rows, date(2026, 6, 1), LIMITS)
    assert rates.empty and verdicts.empty and list(rates.columns) == list(GROUP_RATES_SCHEMA)
    with pytest.raises(ValueError, match="window_days"):
        window_tables(rows, DAY2, {"min_labelled": 100})


@pytest.mark.parametrize("window_days", [2, 5, 40])
def test_windows_of_many_days_equal_each_days_own_window(window_days):
    # labels in a few batches over a long range (and a gap): most days' windows hold the same rows
    batches = [(date(2026, 5, 2), 1), (date(2026, 5, 3), 2), (date(2026, 5, 20), 3), (date(2026, 6, 4), 1)]
    rows = pd.DataFrame([r for day, scale in batches for r in day_rows(day, scale)])
    limits = {**LIMITS, "window_days": window_days, "min_labelled": 50}
    days = list(pd.date_range("2026-04-30", "2026-06-12").date)
    rates, verdicts = windows_by_day(rows, days, limits)
    each = [window_tables(rows, day, limits) for day in days]
    pd.testing.assert_frame_equal(rates, pd.concat([r for r, _ in each], ignore_index=True))
    pd.testing.assert_frame_equal(verdicts, pd.concat([v for _, v in each], ignore_index=True))
    assert 0 < rates["date"].nunique() < len(days)  # some windows hold no rows
