"""A harmful model whose labels lag: its newest windows hold no labels, so the label-based verdicts are not
assessed there. They are stored NULL (not a pass), and the summary line gives the newest window that judged them."""

import duckdb
import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, false_positive_rate

from orchestration.lib.bias import (
    VERDICTS_SCHEMA,
    fails,
    fully_assessed,
    summarise_verdicts,
    verdicts_with_lists,
    windows_by_day,
)
from orchestration.lib.warehouse import replace_date_range

THRESHOLDS = {"window_days": 2, "min_labelled": 100, "min_predictions": 100}
DAYS = pd.date_range("2026-10-01", periods=4)
# labelled day: (TP, FP, FN, TN) per group; female's innocent wrongly flagged 90 / 250, male's 25 / 250
CELLS = {"female": (100, 90, 50, 160), "male": (100, 25, 50, 225)}
FLAGGED = {"female": 190, "male": 125}  # flags a day out of 400 predictions (equal flags: DI passes)


def daily(flagged: dict) -> pd.DataFrame:
    """marts.bias_daily rows: the first day labelled (its flags those of CELLS), the later days not yet."""
    rows = []
    for day in DAYS:
        for group, (tp, fp, fn, tn) in CELLS.items():
            labelled = day == DAYS[0]
            cells = dict(true_positives=tp, false_positives=fp, false_negatives=fn, true_negatives=tn)
            rows.append(
                {
                    "date": day,
                    "model_id": "m",
                    "attribute": "gender",
                    "group_value": group,
                    "predictions": 400,
                    "positives": tp + fp if labelled else flagged[group],
                    "labelled": 400 if labelled else 0,
                    "labelled_positives": tp + fn if labelled else 0,
                    **{k: (v if labelled else 0) for k, v in cells.items()},
                    "score_sum": 0.4 * 400 if labelled else 0.0,
                    "label_sum": tp + fn if labelled else 0,
                    "population_users": 500,
                    "population_total": 1000,
                }
            )
    return pd.DataFrame(rows)


def verdicts_of(flagged: dict) -> pd.DataFrame:
    _, verdicts = windows_by_day(daily(flagged), DAYS, THRESHOLDS, {"m": "harmful"})
    return verdicts.set_index(pd.to_datetime(verdicts["date"]))


def fairlearn_fpr_difference() -> float:
    """The labelled day's rows one by one, through fairlearn."""
    y_true, y_pred, sex = [], [], []
    for group, (tp, fp, fn, tn) in CELLS.items():
        for label, decision, n in ((1, 1, tp), (0, 1, fp), (1, 0, fn), (0, 0, tn)):
            y_true += [label] * n
            y_pred += [decision] * n
            sex += [group] * n
    frame = MetricFrame(
        metrics=false_positive_rate, y_true=np.array(y_true), y_pred=np.array(y_pred), sensitive_features=sex
    )
    return float(frame.difference())


def test_a_window_without_labels_stores_its_label_based_verdicts_as_null_not_as_passes():
    verdicts = verdicts_of(FLAGGED)
    judged, newest = verdicts.loc[DAYS[0]], verdicts.loc[DAYS[-1]]
    # the labelled window: equal opportunity judged and failed on fairlearn's FPR difference (0.36 - 0.10)
    assert judged["equal_opportunity_difference"] == pytest.approx(fairlearn_fpr_difference(), abs=1e-12)
    assert judged["equal_opportunity_difference"] == pytest.approx(0.26, abs=1e-12)
    assert fails(judged["passes_equal_opportunity"]) and not judged["passed"]
    # the newest window: no labels, so the three label-based verdicts are not assessed; disparate impact judged
    for flag in ("passes_equal_opportunity", "passes_equalized_odds", "passes_calibration"):
        assert newest[flag] is None, flag
    assert fails(newest["passes_disparate_impact"]) and not newest["passed"]
    # stored: NULL, not true (a reader of the mart took a window of no labels for a fair one)
    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA marts")
    replace_date_range(conn, "marts.bias_verdicts", VERDICTS_SCHEMA, verdicts, "date", DAYS[0], DAYS[-1])
    stored = conn.execute(
        "SELECT date, passes_equal_opportunity, passes_disparate_impact, passed FROM marts.bias_verdicts ORDER BY date"
    ).fetchall()
    assert [(eo, di, ok) for _, eo, di, ok in stored] == [
        (False, False, False),
        (False, False, False),  # its window still holds the labelled day
        (None, False, False),
        (None, False, False),
    ]


def test_the_newest_window_says_when_equal_opportunity_was_last_judged_and_that_it_failed():
    verdicts = verdicts_with_lists(verdicts_of(FLAGGED).reset_index(drop=True))
    text = summarise_verdicts(verdicts.iloc[[-1]], history=verdicts)
    assert (
        "m / gender: last judged on the window 2026-10-01 .. 2026-10-02: FAILED equal opportunity difference "
        "(false-positive rates) 0.26 > 0.10; disadvantaged (wrongly flagged more often than another group, beyond the limit and noise): female"
        in text
    )
    assert "m / gender: equal opportunity difference, equalised odds difference, calibration gap not assessed" in text
    # without the history: only that they were not assessed
    assert "last judged" not in summarise_verdicts(verdicts.iloc[[-1]])


def test_a_pass_on_disparate_impact_alone_is_not_fully_assessed():
    # equal flags: disparate impact passes in every window; the label-free windows judged nothing else
    verdicts = verdicts_of({"female": 150, "male": 150})
    newest = verdicts.loc[DAYS[-1]]
    assert newest["passes_disparate_impact"] and newest["passed"]
    assert not fully_assessed(newest) and fully_assessed(verdicts.loc[DAYS[0]])


def test_a_last_judged_pass_within_noise_says_so_and_the_newest_windows_findings_come_first():
    # a trial: "last judged on the window ...: equalised odds difference 0.12 passed" against a limit of 0.1, and the
    # newest window's "disparate impact ratio 0.78 < 0.80 within noise" joined after it, read as the older window's
    verdicts = verdicts_with_lists(verdicts_of(FLAGGED).reset_index(drop=True))
    older, newest = verdicts.index[0], verdicts.index[-1]
    limit = verdicts.loc[older, "equal_opportunity_max_difference"]
    verdicts.loc[older, ["equal_opportunity_difference", "passes_equal_opportunity"]] = [limit + 0.02, True]
    floor = verdicts.loc[newest, "disparate_impact_min"]
    verdicts.loc[newest, ["disparate_impact_ratio", "passes_disparate_impact"]] = [floor - 0.02, True]
    lines = summarise_verdicts(verdicts.loc[[newest]], history=verdicts.loc[[older]]).splitlines()
    within = [i for i, line in enumerate(lines) if line.startswith("m / gender: disparate impact ratio")]
    judged = [i for i, line in enumerate(lines) if "last judged on the window" in line]
    assert len(within) == 1 and len(judged) == 1 and within[0] < judged[0], lines
    assert f"{floor - 0.02:.2f} < {floor:.2f} within noise" in lines[within[0]]
    assert (
        f"equal opportunity difference (false-positive rates) {limit + 0.02:.2f} > {limit:.2f} within noise"
        in lines[judged[0]]
    ), lines[judged[0]]
