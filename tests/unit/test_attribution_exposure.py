"""A holdout the experiment's model scored is no holdout: the counts of exposed control units (SQL over the
staging views) and the reason that makes the results untrustworthy.

Oracle: a hand-made world of seven users whose exposures are counted by hand in the comments.
"""

from datetime import date, datetime

import duckdb
import pandas as pd
import pytest

from orchestration.lib.attribution import (
    NOT_TRUSTED,
    control_exposure,
    control_exposure_reason,
    mark_exposed_controls,
)

D1, D2, D3 = date(2026, 5, 1), date(2026, 5, 2), date(2026, 5, 3)


def _at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour)


# experiment_id, user_id, variant, assigned_at
ASSIGNMENTS = [
    ("exp_a", "u1", "holdout", _at(D1, 10)),  # scored by m1 an hour before its assignment: not exposed
    ("exp_a", "u2", "holdout", _at(D1, 10)),  # scored by m1 on D2: exposed from D2
    ("exp_a", "u3", "holdout", _at(D2, 8)),  # scored by m2 only, another model: not exposed
    ("exp_a", "u4", "holdout", _at(D2, 8)),  # scored by m1 twice, first on D3: exposed from D3
    ("exp_a", "u5", "treatment", _at(D1, 9)),  # a treated unit: scored, as it should be
    ("exp_a", "u6", "holdout", _at(D3, 7)),  # never scored
    ("exp_b", "u7", "control", _at(D1, 9)),  # exp_b tests m2; u7 was scored by m1 only
]
# model_id, user_id, predicted_at
PREDICTIONS = [
    ("m1", "u1", _at(D1, 9)),
    ("m1", "u2", _at(D2, 12)),
    ("m2", "u3", _at(D2, 12)),
    ("m1", "u4", _at(D3, 6)),
    ("m1", "u4", _at(D3, 20)),
    ("m1", "u5", _at(D1, 11)),
    ("m1", "u7", _at(D1, 11)),
]


@pytest.fixture
def world():
    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA staging; CREATE SCHEMA marts")
    conn.execute(
        "CREATE TABLE staging.stg_experiments AS SELECT * FROM (VALUES "
        "('exp_a', 'm1', 'holdout', DATE '2026-05-01', NULL::DATE), "
        "('exp_b', 'm2', 'control', DATE '2026-05-01', NULL::DATE)"
        ") t(experiment_id, model_id, control_variant, start_date, end_date)"
    )
    conn.execute(
        "CREATE TABLE staging.stg_assignments "
        "(experiment_id VARCHAR, user_id VARCHAR, variant VARCHAR, assigned_at TIMESTAMP, assigned_date DATE)"
    )
    conn.executemany(
        "INSERT INTO staging.stg_assignments VALUES (?, ?, ?, ?, CAST(? AS DATE))",
        [(*row, row[-1]) for row in ASSIGNMENTS],
    )
    conn.execute(
        "CREATE TABLE staging.stg_predictions "
        "(model_id VARCHAR, user_id VARCHAR, predicted_at TIMESTAMP, prediction_date DATE)"
    )
    conn.executemany(
        "INSERT INTO staging.stg_predictions VALUES (?, ?, ?, CAST(? AS DATE))",
        [(*row, row[-1]) for row in PREDICTIONS],
    )
    # the as-of dates the marts hold (one row per arm and metric there: the counts must not multiply by them)
    conn.execute(
        "CREATE TABLE marts.experiment_stats AS SELECT e.experiment_id, d.as_of_date, m.metric "
        "FROM (VALUES ('exp_a'), ('exp_b')) e(experiment_id), "
        "(VALUES (DATE '2026-05-01'), (DATE '2026-05-02'), (DATE '2026-05-03')) d(as_of_date), "
        "(VALUES ('revenue'), ('conversion')) m(metric)"
    )
    yield conn
    conn.close()


def _counts(frame: pd.DataFrame) -> dict:
    return {
        (r.experiment_id, pd.Timestamp(r.as_of_date).date()): (r.model_id, r.control_units, r.exposed_units)
        for r in frame.itertuples()
    }


def test_control_units_scored_by_the_experiments_model_after_assignment_are_counted_cumulatively(world):
    # by hand: exp_a's holdout by D1 = u1, u2 (none scored yet after assignment); by D2 + u3, u4 (u2 scored on
    # D2, u4 not before D3); by D3 + u6 (u4 scored on D3). exp_b's one control unit was scored by m1, not by its model m2.
    assert _counts(control_exposure(world, D1, D3)) == {
        ("exp_a", D1): ("m1", 2, 0),
        ("exp_a", D2): ("m1", 4, 1),
        ("exp_a", D3): ("m1", 5, 2),
        ("exp_b", D1): ("m2", 1, 0),
        ("exp_b", D2): ("m2", 1, 0),
        ("exp_b", D3): ("m2", 1, 0),
    }
    # a run of later days counts the units assigned before it too
    assert _counts(control_exposure(world, D3, D3)) == {("exp_a", D3): ("m1", 5, 2), ("exp_b", D3): ("m2", 1, 0)}


def test_the_reason_states_the_count_the_share_and_the_model():
    assert control_exposure_reason("churn_v2", 2814, 2814) == (
        "control arm exposed: 2,814 of 2,814 control units (100.0%) have predictions of model churn_v2 "
        "(the holdout must never be scored)"
    )
    assert control_exposure_reason("m", 0, 500) is None


def test_any_exposed_control_unit_makes_that_days_results_untrustworthy_beside_their_other_reasons(world):
    results = pd.DataFrame(
        {
            "experiment_id": ["exp_a", "exp_a", "exp_a", "exp_b"],
            "as_of_date": [D1, D2, D3, D3],
            "trustworthy": [True, True, False, True],
            "untrusted_reason": [None, None, "sample ratio mismatch (p = 1e-05)", None],
            "decision_grade": [True, True, False, True],
            "decision_grade_reason": [None, None, NOT_TRUSTED, None],
        }
    )
    marked = mark_exposed_controls(results, control_exposure(world, D1, D3))
    assert marked["trustworthy"].tolist() == [True, False, False, True]
    d2 = "control arm exposed: 1 of 4 control units (25.0%) have predictions of model m1"
    d3 = "control arm exposed: 2 of 5 control units (40.0%) have predictions of model m1"
    assert marked.loc[1, "untrusted_reason"].startswith(d2)
    assert marked.loc[2, "untrusted_reason"].startswith(f"sample ratio mismatch (p = 1e-05); {d3}")
    assert marked["decision_grade"].tolist() == [True, False, False, True]
    assert (
        marked.loc[1, "decision_grade_reason"] == NOT_TRUSTED and marked.loc[2, "decision_grade_reason"] == NOT_TRUSTED
    )
    assert marked.loc[[0, 3], "untrusted_reason"].isna().all()
    # nothing exposed: the results as they were
    assert mark_exposed_controls(results, control_exposure(world, D1, D1)) is results


def test_the_asset_log_names_each_scored_holdout_at_the_runs_last_day(world):
    from orchestration.lib.attribution import exposed_control_notes

    assert exposed_control_notes(control_exposure(world, D1, D3)) == [
        "exp_a as of 2026-05-03: control arm exposed: 2 of 5 control units (40.0%) have predictions of model m1 "
        "(the holdout must never be scored)"
    ]
    assert exposed_control_notes(control_exposure(world, D1, D1)) == []
