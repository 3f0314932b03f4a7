"""Retraining requests and the training-snapshot gate on hand-made alert, health and gate rows."""

import json
from math import comb
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom, binomtest

from orchestration.lib.retraining import (
    REQUEST_SCHEMA,
    REQUEUED,
    blocked_by_gate,
    gate_digest,
    keep_decisions,
    pending_by_day,
    requests_between,
    requeue,
    retraining_requests,
    snapshot_gate,
)

D0 = date(2026, 3, 1)
RULES = {"persist_days": 3}
FLOORS = {"m": {"min_precision": 0.3}}  # what a project file setting models.m.min_precision gives
MIN_LABELLED = 100
NO_HEALTH = pd.DataFrame(columns=["date", "model_id", "labelled", "precision"])
NO_ALERTS = pd.DataFrame(columns=["date", "model_id", "metric", "value"])


def day(i: int) -> date:
    return D0 + timedelta(days=i)


def drift_alerts(*days: int, metric: str = "psi", model_id: str = "m", value: float = 0.5) -> pd.DataFrame:
    return pd.DataFrame(
        {"date": [pd.Timestamp(day(i)) for i in days], "model_id": model_id, "metric": metric, "value": value}
    )


def requests(
    alerts: pd.DataFrame, on: int, health: pd.DataFrame = NO_HEALTH, floors=FLOORS, rules=RULES
) -> pd.DataFrame:
    return retraining_requests(alerts, health, rules, MIN_LABELLED, day(on), "/exports", floors)


def labelled_days(days, true_positives, false_positives=0, false_negatives=0, labelled=MIN_LABELLED) -> pd.DataFrame:
    """model_health_daily rows of model m: the confusion counts and the rates they give."""
    rows = pd.DataFrame(
        {
            "date": [pd.Timestamp(day(i)) for i in days],
            "model_id": "m",
            "labelled": labelled,
            "true_positives": true_positives,
            "false_positives": false_positives,
            "false_negatives": false_negatives,
        }
    )
    tp = rows["true_positives"]
    return rows.assign(precision=tp / (tp + rows["false_positives"]), recall=tp / (tp + rows["false_negatives"]))


def test_k_minus_one_days_of_drift_raise_nothing_and_k_days_raise_a_request():
    assert requests(drift_alerts(1, 2), on=2).empty
    raised = requests(drift_alerts(1, 2, 3), on=3)
    assert list(raised["model_id"]) == ["m"]
    row = raised.iloc[0]
    assert row["reason"] == f"drift/calibration alerts on 3 consecutive days up to {day(3)}"
    assert row["status"] == "requested" and pd.isna(row["status_reason"])
    assert row["snapshot_path"] == f"/exports/training/model=m/date={day(3)}/snapshot.parquet"
    assert list(raised.columns) == list(REQUEST_SCHEMA)


def test_drift_and_calibration_days_count_together_but_precision_drops_do_not():
    mixed = pd.concat([drift_alerts(1, 3, metric="expected_calibration_error", value=0.2), drift_alerts(2, value=0.7)])
    raised = requests(mixed, on=3)
    assert json.loads(raised.iloc[0]["evidence"]) == {"worst": {"expected_calibration_error": 0.2, "psi": 0.7}}
    assert requests(drift_alerts(1, 2, 3, metric="precision_drop"), on=3).empty


def test_a_gap_resets_the_run_of_days():
    assert requests(drift_alerts(1, 2, 4, 5), on=5).empty
    assert len(requests(drift_alerts(1, 2, 4, 5, 6), on=6)) == 1


def test_a_run_ending_up_to_two_days_earlier_still_counts_and_later_alerts_do_not():
    alerts = drift_alerts(1, 2, 3, value=0.4)
    assert requests(alerts, on=5).iloc[0]["reason"].endswith(f"up to {day(3)}")  # labels for days 4-5 may be late
    assert requests(alerts, on=6).empty
    # alerts dated after the request day are not evidence for it (a backfill sees them already)
    later = pd.concat([alerts, drift_alerts(4, value=0.9)])
    assert json.loads(requests(later, on=3).iloc[0]["evidence"]) == {"worst": {"psi": 0.4}}
    assert requests(drift_alerts(2, 3, 4), on=3).empty


def test_precision_below_the_floor_requests_retraining():
    health = labelled_days((1, 5, 6, 7), true_positives=[20, 40, 10, 50], false_positives=[180, 160, 90, 150])
    health = health.assign(labelled=[500, 500, 99, 500])
    raised = requests(NO_ALERTS, on=7, health=health)
    assert list(raised["reason"]) == ["precision below 0.3"]
    # day 1 is older than persist_days, day 7 (50 of 200: 0.25) is within noise of 0.3; day 6, with fewer labels
    # than min_labelled, is judged all the same (10 of 100)
    assert (
        binomtest(50, 200, 0.3, alternative="less").pvalue > 0.01 > binomtest(40, 200, 0.3, alternative="less").pvalue
    )
    assert binomtest(10, 100, 0.3, alternative="less").pvalue < 0.01
    assert json.loads(raised.iloc[0]["evidence"]) == {
        "precision": {str(day(5)): 0.2, str(day(6)): 0.1},
        "precision_counts": {str(day(5)): "40/200", str(day(6)): "10/100"},
    }
    assert requests(NO_ALERTS, on=4, health=health).empty
    both = requests(drift_alerts(5, 6, 7), on=7, health=health)
    assert (
        both.iloc[0]["reason"] == f"drift/calibration alerts on 3 consecutive days up to {day(7)}; precision below 0.3"
    )


def test_no_floor_unless_the_model_sets_one():
    """The issue: a healthy model at precision 0.30-0.33 got four requests from a demo floor of 0.3."""
    # precision 0.1, 0.31, 0.3 and recall 0.5, 0.2562, 0.6
    health = labelled_days(
        (5, 6, 7), true_positives=[10, 31, 30], false_positives=[90, 69, 70], false_negatives=[10, 90, 20]
    )
    assert requests(NO_ALERTS, on=7, health=health, floors={}).empty
    assert requests(NO_ALERTS, on=7, health=health, floors={"other": {"min_precision": 0.9}}).empty
    recall = requests(NO_ALERTS, on=7, health=health, floors={"m": {"min_recall": 0.4}})
    assert list(recall["reason"]) == ["recall below 0.4"]
    assert json.loads(recall.iloc[0]["evidence"]) == {
        "recall": {str(day(6)): 0.2562},
        "recall_counts": {str(day(6)): "31/121"},
    }
    both = requests(NO_ALERTS, on=7, health=health, floors={"m": {"min_recall": 0.4, "min_precision": 0.3}})
    assert list(both["reason"]) == ["precision below 0.3; recall below 0.4"]


def binomial_p(true_positives: int, trials: int, floor: float) -> float:
    """The oracle: scipy's exact binomial test, H1 the day's rate is below the floor."""
    return binomtest(true_positives, trials, floor, alternative="less").pvalue


def test_a_floor_breach_is_a_day_below_it_beyond_sampling_noise():
    """The trial: a spam filter flagging 1-6 emails a day; 1 spam of 3 flagged (0.33) raised 'precision below 0.6'
    and such days kept it due for a month."""
    floors = {"m": {"min_precision": 0.6}}
    assert binomial_p(1, 3, 0.6) == pytest.approx(0.352)  # by hand: 0.4^3 + 3 x 0.6 x 0.4^2
    assert requests(NO_ALERTS, on=7, health=labelled_days([7], 1, false_positives=2), floors=floors).empty
    assert binomial_p(20, 100, 0.6) < 1e-12
    raised = requests(NO_ALERTS, on=7, health=labelled_days([7], 20, false_positives=80), floors=floors)
    assert list(raised["reason"]) == ["precision below 0.6"]
    assert json.loads(raised.iloc[0]["evidence"])["precision_counts"] == {str(day(7)): "20/100"}
    # at the boundary: the most true positives of 100 decisions whose p is below alpha breach, one more does not
    edge = max(x for x in range(101) if binomial_p(x, 100, 0.6) < 0.01)
    assert binomial_p(edge + 1, 100, 0.6) >= 0.01
    assert len(requests(NO_ALERTS, on=7, health=labelled_days([7], edge, false_positives=100 - edge), floors=floors))
    assert requests(
        NO_ALERTS, on=7, health=labelled_days([7], edge + 1, false_positives=99 - edge), floors=floors
    ).empty
    # the level is retraining.floor_alpha: at 0.5 the trial's 1 of 3 (p 0.352) is a breach
    lenient = {**RULES, "floor_alpha": 0.5}
    small = labelled_days([7], 1, false_positives=2)
    assert len(requests(NO_ALERTS, on=7, health=small, floors=floors, rules=lenient))
    # fewer labels than min_labelled (the drift and calibration rules' minimum) are judged too: 0 of 100 is no noise
    assert len(requests(NO_ALERTS, on=7, health=labelled_days([7], 0, 100, labelled=MIN_LABELLED - 1), floors=floors))
    # health rows without the day's counts cannot be judged against a floor
    with pytest.raises(ValueError, match="false_positives"):
        requests(NO_ALERTS, on=7, health=labelled_days([7], 20, 80).drop(columns="false_positives"), floors=floors)


def test_a_small_day_is_judged_against_the_floor_by_its_counts_alone():
    """The trial: a model of ~60 labels a day, 25 of 39 decisions right against a floor of 0.95, raised nothing
    (every day had fewer labels than alerts.min_labelled) and nothing said so."""
    floors, few = {"m": {"min_precision": 0.95}}, 39
    assert few < MIN_LABELLED
    # the oracle by hand: P(X <= 25), X ~ Binomial(39, 0.95), summed term by term
    by_hand = sum(comb(few, i) * 0.95**i * 0.05 ** (few - i) for i in range(26))
    assert binom.cdf(25, few, 0.95) == pytest.approx(by_hand, rel=1e-9) and by_hand < 1e-8
    far_below = labelled_days([7], 25, false_positives=few - 25, labelled=few)
    raised = requests(NO_ALERTS, on=7, health=far_below, floors=floors)
    assert list(raised["reason"]) == ["precision below 0.95"]
    assert json.loads(raised.iloc[0]["evidence"])["precision_counts"] == {str(day(7)): "25/39"}
    # 36 of 39 (0.92) is below 0.95 as a point but within noise of it: P(X <= 36) = 0.31
    assert binom.cdf(36, few, 0.95) == pytest.approx(0.3094, abs=1e-4) and binom.cdf(36, few, 0.95) > 0.01
    within_noise = labelled_days([7], 36, false_positives=few - 36, labelled=few)
    assert requests(NO_ALERTS, on=7, health=within_noise, floors=floors).empty
    # a day with no label at all says nothing of precision
    assert requests(NO_ALERTS, on=7, health=labelled_days([7], 0, labelled=0), floors=floors).empty
    # the days the request is judged over: one request for a run of small breaching days, on the first
    run = labelled_days([5, 6, 7], 25, false_positives=few - 25, labelled=few)
    between = requests_between(NO_ALERTS, run, RULES, MIN_LABELLED, day(4), day(7), "/exports", floors)
    assert [(r.date, r.reason) for r in between.itertuples()] == [(day(5), "precision below 0.95")]


def test_a_recall_floor_counts_the_labelled_positives():
    floors = {"m": {"min_recall": 0.6}}
    # 1 of 3 positives found; the many false positives do not make it a breach
    assert binomial_p(1, 3, 0.6) > 0.01
    small = labelled_days([7], 1, false_positives=500, false_negatives=2)
    assert requests(NO_ALERTS, on=7, health=small, floors=floors).empty
    assert binomial_p(20, 100, 0.6) < 0.01
    raised = requests(NO_ALERTS, on=7, health=labelled_days([7], 20, false_negatives=80), floors=floors)
    assert list(raised["reason"]) == ["recall below 0.6"]
    assert json.loads(raised.iloc[0]["evidence"]) == {
        "recall": {str(day(7)): 0.2},
        "recall_counts": {str(day(7)): "20/100"},
    }


def test_a_drift_streak_due_inside_a_floor_episode_raises_its_own_request():
    """The trial: a month of floor breaches made one episode, and the drift requests that began inside it were
    never raised."""
    breaches = labelled_days(range(1, 11), 10, false_positives=90)  # precision 0.1 vs 0.3, every day 1-10
    alerts = drift_alerts(4, 5, 6)
    between = requests_between(alerts, breaches, RULES, MIN_LABELLED, day(0), day(14), "/exports", FLOORS)
    # the floor is due days 1-12 (a breach in the last 3 days), drift days 6-8: drift opens its own request on 6
    assert [(r.date, r.reason) for r in between.itertuples()] == [
        (day(1), "precision below 0.3"),
        (day(6), f"drift/calibration alerts on 3 consecutive days up to {day(6)}; precision below 0.3"),
    ]
    assert set(json.loads(between.iloc[1]["evidence"])) == {"worst", "precision", "precision_counts"}
    # and the other way round: a floor breach inside a drift episode
    drift = drift_alerts(*range(1, 11))
    late_breach = labelled_days([7], 10, false_positives=90)
    found = requests_between(drift, late_breach, RULES, MIN_LABELLED, day(0), day(14), "/exports", FLOORS)
    assert [(r.date, r.reason) for r in found.itertuples()] == [
        (day(3), f"drift/calibration alerts on 3 consecutive days up to {day(3)}"),
        (day(7), f"drift/calibration alerts on 3 consecutive days up to {day(7)}; precision below 0.3"),
    ]


def test_requests_between_raises_one_request_per_episode_on_its_first_due_day():
    alerts = pd.concat([drift_alerts(1, 2, 3, 4), drift_alerts(2, 3, 4, model_id="n"), drift_alerts(10, 11, 12)])
    between = requests_between(alerts, NO_HEALTH, RULES, MIN_LABELLED, day(0), day(14), "/exports")
    # m is due days 3-6 (runs ending days 3 and 4 count for two more days), then again from day 12; n days 4-6
    assert [(r.date, r.model_id) for r in between.itertuples()] == [(day(3), "m"), (day(4), "n"), (day(12), "m")]
    # a window that starts inside an episode does not raise it again
    later = requests_between(alerts, NO_HEALTH, RULES, MIN_LABELLED, day(5), day(14), "/exports")
    assert [(r.date, r.model_id) for r in later.itertuples()] == [(day(12), "m")]


def request_rows(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "date": pd.Timestamp(day(d)),
                "model_id": m,
                "reason": "r",
                "evidence": "{}",
                "snapshot_path": "p",
                "status": status,
                "status_reason": why,
            }
            for d, m, status, why in rows
        ],
        columns=list(REQUEST_SCHEMA),
    )


def test_recomputing_requests_keeps_the_retraining_jobs_decisions():
    recomputed = request_rows((3, "m", "requested", None), (4, "m", "requested", None), (4, "n", "requested", None))
    existing = request_rows(
        (3, "m", "blocked", "bias: age_band"),
        (2, "m", "snapshot_ready", None),
        (4, "n", "requested", None),
        (1, "n", "requested", None),
    )
    kept = keep_decisions(recomputed, existing)
    # (day 1, n) was a request nobody acted on and the rules no longer raise: it is gone
    assert [
        (r.date.date(), r.model_id, r.status, None if pd.isna(r.status_reason) else r.status_reason)
        for r in kept.itertuples()
    ] == [
        (day(2), "m", "snapshot_ready", None),  # acted on: stays though the rules no longer raise it
        (day(3), "m", "blocked", "bias: age_band"),
        (day(4), "m", "requested", None),
        (day(4), "n", "requested", None),
    ]


def gate_rows(table: str, days, passed=True) -> pd.DataFrame:
    return pd.DataFrame(
        {"date": [pd.Timestamp(day(i)) for i in days], "table_name": table, "suite": f"raw_{table}", "passed": passed}
    )


CLEAN = pd.concat([gate_rows(t, range(10)) for t in ("predictions", "labels", "users")])
INPUTS = ("predictions", "labels", "users")


def test_snapshot_passes_only_with_a_passing_gate_for_every_input_and_day():
    gate = snapshot_gate(CLEAN, INPUTS, day(2), day(9))
    assert gate.passed and not gate.missing and not gate.failed
    assert (
        gate.reason
        == f"every input table (predictions, labels, users) passed its quality gate on every day {day(2)} .. {day(9)}"
    )


def test_a_failed_users_gate_blocks_the_snapshot_and_is_named():
    gates = pd.concat([CLEAN, gate_rows("users", [4, 5, 6, 8], passed=False)])  # a failing run next to a passing one
    gate = snapshot_gate(gates, INPUTS, day(2), day(9))
    assert not gate.passed and gate.failed == {"users": [day(4), day(5), day(6), day(8)]} and not gate.missing
    assert gate.reason == (
        f"training window {day(2)} .. {day(9)} is not clean: "
        f"users failed its quality gate on {day(4)}..{day(6)}, {day(8)}"
    )


def test_a_window_day_never_validated_blocks_the_snapshot():
    gates = CLEAN[~((CLEAN["table_name"] == "labels") & (CLEAN["date"] == pd.Timestamp(day(3))))]
    gate = snapshot_gate(gates, INPUTS, day(2), day(10))  # day 10 has no gate row for any table
    assert not gate.passed and not gate.failed
    assert gate.missing == {"predictions": [day(10)], "labels": [day(3), day(10)], "users": [day(10)]}
    assert f"labels has no quality gate result (not validated) on {day(3)}, {day(10)}" in gate.reason
    # a table the snapshot reads but no gate ever validated
    assert snapshot_gate(CLEAN, (*INPUTS, "feedback"), day(2), day(3)).missing == {"feedback": [day(2), day(3)]}


def test_pending_requests_are_the_ones_the_job_has_not_acted_on_by_day():
    rows = request_rows(
        (3, "m", "requested", None),
        (3, "n", "requested", None),
        (4, "m", "blocked", "bias"),
        (5, "n", "snapshot_ready", None),
        (6, "n", "requested", None),
    )
    assert pending_by_day(rows) == {day(3).isoformat(): ["m", "n"], day(6).isoformat(): ["n"]}
    assert pending_by_day(rows.iloc[:0]) == {}


def test_the_sensor_starts_one_retraining_run_per_pending_day():
    import dagster as dg

    from orchestration.definitions import defs
    from orchestration.defs.retraining.assets import REQUESTS_KEY, retraining_sensor

    pending = {day(3).isoformat(): ["m"], day(6).isoformat(): ["m", "n"]}
    with dg.DagsterInstance.ephemeral() as instance:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                asset_key=REQUESTS_KEY,
                partition=day(6).isoformat(),
                metadata={"pending_requests": dg.MetadataValue.json(pending)},
            )
        )
        tick = retraining_sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs))
    assert [(r.run_key, r.partition_key) for r in tick.run_requests] == [
        (f"{day(3)}:m", day(3).isoformat()),
        (f"{day(6)}:m,n", day(6).isoformat()),
    ]


def test_the_run_key_names_the_windows_gate_state_so_a_fixed_window_starts_again():
    import dagster as dg

    from orchestration.definitions import defs
    from orchestration.defs.retraining.assets import REQUESTS_KEY, retraining_sensor

    def keys(gates: dict) -> list[str]:
        with dg.DagsterInstance.ephemeral() as instance:
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    asset_key=REQUESTS_KEY,
                    partition=day(6).isoformat(),
                    metadata={
                        "pending_requests": dg.MetadataValue.json({day(6).isoformat(): ["m"]}),
                        "pending_gates": dg.MetadataValue.json(gates),
                    },
                )
            )
            tick = retraining_sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs))
        return [r.run_key for r in tick.run_requests]

    assert keys({day(6).isoformat(): "abc"}) == [f"{day(6)}:m:gates=abc"]
    assert keys({day(6).isoformat(): "def"}) == [f"{day(6)}:m:gates=def"]  # another gate state: another run


def test_a_window_without_requests_gives_an_empty_table_with_every_column():
    quiet = requests_between(NO_ALERTS, NO_HEALTH, RULES, MIN_LABELLED, day(0), day(5), "/exports")
    assert quiet.empty and list(quiet.columns) == list(REQUEST_SCHEMA)


def test_a_weekday_only_models_weekends_neither_break_nor_end_its_streaks():
    # a model that scores on trading days only: calendar streaks broke every weekend, and the same incident
    # raised a request a week (75 in 18 months on S&P 500 data)
    weekdays = [i for i in range(28) if day(i).weekday() < 5]
    health = pd.DataFrame(
        {
            "date": [pd.Timestamp(day(i)) for i in weekdays],
            "model_id": "m",
            "labelled": 0,
            "precision": 1.0,
            "predictions": 1,
        }
    )
    alerts = drift_alerts(*weekdays)
    between = requests_between(alerts, health, RULES, MIN_LABELLED, day(0), day(27), "/exports")
    # by hand: the third prediction day with an alert is the first due day; one episode over the four weeks
    assert [(r.date, r.model_id) for r in between.itertuples()] == [(day(weekdays[2]), "m")]
    # two alert days, a weekend, one more: three consecutive prediction days
    friday = next(i for i in weekdays if day(i).weekday() == 4)
    streak = drift_alerts(friday - 1, friday, friday + 3)
    raised = requests(streak, on=friday + 3, health=health)
    assert raised.iloc[0]["reason"] == f"drift/calibration alerts on 3 consecutive days up to {day(friday + 3)}"
    # without prediction rows, calendar days count: the weekend breaks it
    assert requests(streak, on=friday + 3).empty


def test_days_too_small_to_judge_neither_continue_nor_end_a_drift_episode():
    """The trial: PSI is judged only on days with the rule's min_count predictions; a few tiny days inside one
    continuous drift broke the streak and raised a second request (03-11 and 03-28)."""
    sizes = {i: 500 for i in range(1, 13)} | {4: 50, 5: 50, 6: 50}  # days 4-6: 50 predictions, under 200
    health = pd.DataFrame(
        {
            "date": [pd.Timestamp(day(i)) for i in sizes],
            "model_id": "m",
            "labelled": 0,
            "precision": 1.0,
            "predictions": list(sizes.values()),
        }
    )
    alerts = drift_alerts(1, 2, 3, 7, 8, 9)  # days 4-6 were not judged; days 10-12 judged calm

    def between(psi_min):
        found = requests_between(alerts, health, RULES, MIN_LABELLED, day(0), day(14), "/exports", None, psi_min)
        return [(r.date, r.model_id) for r in found.itertuples()]

    # before: prediction days 4-6 without alerts end the episode (due days 3-5), 7-9 start a new one (due 9-11)
    assert between(None) == [(day(3), "m"), (day(9), "m")]
    # by hand, judged days 1 2 3 7 8 9 10 11 12: due on days 3-6 (run 1-2-3), 7 (2-3-7), 8 (3-7-8), 9-11 (7-8-9,
    # ending within the last three judged days): one episode, one request
    assert between({"m": 200}) == [(day(3), "m")]
    # enough labels judge a tiny day's calibration: that says nothing of the drift going on around it (a trial's
    # one drift raised four requests across such days), so one request still
    judged = health.assign(labelled=[MIN_LABELLED] * len(health))
    found = requests_between(alerts, judged, RULES, MIN_LABELLED, day(0), day(14), "/exports", None, {"m": 200})
    assert [r.date for r in found.itertuples()] == [day(3)]
    # a calibration episode: the same calm tiny days judged its calibration, and end it (two episodes, as by hand)
    calibration = drift_alerts(1, 2, 3, 7, 8, 9, metric="expected_calibration_error")
    found = requests_between(calibration, judged, RULES, MIN_LABELLED, day(0), day(14), "/exports", None, {"m": 200})
    assert [r.date for r in found.itertuples()] == [day(3), day(9)]

    # nor do they continue one: two alert days, two tiny days, one alert day make three consecutive judged days
    def raised(on: int):
        return retraining_requests(drift_alerts(2, 3, 7), health, RULES, MIN_LABELLED, day(on), "/x", None, {"m": 200})

    assert raised(6).empty  # judged days 1 2 3: day 1 had no alert
    assert list(raised(7)["reason"]) == [f"drift/calibration alerts on 3 consecutive days up to {day(7)}"]
    # a model whose every day is too small: no days to count, and no calendar fallback
    tiny = health.assign(predictions=50)
    assert retraining_requests(NO_ALERTS, tiny, RULES, MIN_LABELLED, day(7), "/x", None, {"m": 200}).empty


def test_a_small_models_pooled_drift_counts_once_per_pool_window():
    """A model of 30 a day is judged on its last 7 days pooled (alerts.rules.psi.pool_days): consecutive days share
    six of their seven days of values, so a pooled verdict counts once per window, not every day."""
    health = pd.DataFrame(
        {
            "date": [pd.Timestamp(day(i)) for i in range(1, 31)],
            "model_id": "m",
            "labelled": 0,
            "precision": 1.0,
            "predictions": 30,
        }
    )

    def between(alerts, pool_days):
        found = requests_between(
            alerts, health, RULES, MIN_LABELLED, day(0), day(30), "/x", None, {"m": 200}, pool_days
        )
        return [r.date for r in found.itertuples()]

    # by hand: the pool first holds 200 on day 7 (210); counted days 7, 14, 21, 28: three pooled alerts due on 21
    every_day = drift_alerts(*range(7, 31))
    assert between(every_day, {"m": 7}) == [day(21)]
    # counted every day, three days of one week's values would have raised it on day 9
    assert between(every_day, None) == [day(9)]
    # a calm pooled verdict ends the run: alerts on days 7-20, none from 21 on (counted 7, 14 alerted, 21 calm)
    assert between(drift_alerts(*range(7, 21)), {"m": 7}) == []


def test_a_request_blocked_by_its_windows_gates_is_re_queued_once_the_window_is_clean():
    failed = pd.concat([CLEAN, gate_rows("labels", [5], passed=False)])
    blocked = snapshot_gate(failed, INPUTS, day(2), day(9))
    assert blocked_by_gate("blocked", blocked.reason)
    assert not blocked_by_gate("blocked", "retraining blocked: equal opportunity (age_band: 55+)")  # fairness
    assert not blocked_by_gate("requested", blocked.reason) and not blocked_by_gate("blocked", None)
    # still not clean: still blocked, with what is wrong now (day 5 fixed, day 6 broke)
    now = snapshot_gate(pd.concat([CLEAN, gate_rows("labels", [6], passed=False)]), INPUTS, day(2), day(9))
    assert requeue(now, blocked.reason) == (
        "blocked",
        f"training window {day(2)} .. {day(9)} is not clean: labels failed its quality gate on {day(6)}",
    )
    clean = snapshot_gate(CLEAN, INPUTS, day(2), day(9))
    status, reason = requeue(clean, blocked.reason)
    assert status == "requested" and reason == f"{REQUEUED}{clean.reason} (blocked before: {blocked.reason})"
    # the gate state the sensor's run key names: a re-validated day with another outcome changes it
    window = CLEAN[CLEAN["date"] >= pd.Timestamp(day(2))]
    fixed = window[~((window["table_name"] == "labels") & (window["date"] == pd.Timestamp(day(5))))]
    was = pd.concat([fixed, gate_rows("labels", [5], passed=False)])
    assert gate_digest(window) != gate_digest(was)
    assert gate_digest(window) == gate_digest(window.iloc[::-1])  # row order does not matter
    # a later run keeps the re-queued request, its reason and all, like a decision of the job
    existing = request_rows((3, "m", "requested", reason), (4, "n", "requested", None))
    kept = keep_decisions(request_rows((4, "n", "requested", None)), existing)
    assert [(r.date.date(), r.model_id, r.status_reason) for r in kept.itertuples()] == [
        (day(3), "m", reason),
        (day(4), "n", None),
    ]


def test_a_snapshot_of_under_half_its_windows_predictions_says_so():
    # a trial's drift request exported 132 of the window's 2,069 predictions (those labelled by its day, all from
    # before the drift) as 'snapshot_ready' with nothing said
    from orchestration.lib.retraining import LabelTiming, coverage_note

    timing = LabelTiming(began=date(2026, 9, 2), horizon_days=10, window_days=28)
    note = coverage_note(132, 2069, date(2026, 9, 2), date(2026, 9, 9), date(2026, 9, 29), timing)
    assert note.startswith(
        "exported with 132 of the window's 2,069 predictions (6%): those labelled by 2026-09-29, predicted "
        "2026-09-02 .. 2026-09-09"
    )
    assert coverage_note(1100, 2069, date(2026, 9, 2), date(2026, 9, 29), date(2026, 9, 29), timing) is None
    assert coverage_note(0, 0, None, None, date(2026, 9, 29), timing) is None


def test_the_coverage_note_says_why_the_labels_are_few():
    """The trial: a request on the model's first day (a 28-day window, a 10-day label horizon) exported 3 of 66
    predictions, and the note advised a training_window_days above the horizon, which it already was."""
    from orchestration.lib.retraining import LabelTiming, coverage_note

    request = date(2026, 9, 29)

    def note(began: date, horizon: int, window: int) -> str:
        return coverage_note(3, 66, began, request, request, LabelTiming(began, horizon, window))

    head = f"exported with 3 of the window's 66 predictions (5%): those labelled by {request}, predicted "
    # predictions began on the request's day (0 days before it, under the 10-day horizon): the window is no cure
    assert note(request, 10, 28) == (
        f"{head}{request} .. {request}; the model's predictions in the window began on {request}, 0 day(s) before "
        "the request, within the label horizon (10 days): the rest's labels land later, if at all"
    )
    # 9 days before (2026-09-20 to 2026-09-29) is still inside a 10-day horizon, and comes first even when the
    # window is not above it: a longer window holds no older predictions of this model
    nine = date(2026, 9, 20)
    for window in (28, 5):
        assert note(nine, 10, window).endswith(
            f"began on {nine}, 9 day(s) before the request, within the label horizon (10 days): the rest's "
            "labels land later, if at all"
        )
    # 10 days before: past the horizon; a 10-day window is not above it, so the window advice fits
    ten = date(2026, 9, 19)
    assert note(ten, 10, 10).endswith(
        "; the rest's labels land later, if at all (training_window_days 10 is not above the label horizon of 10 days: a "
        "longer window holds matured labels)"
    )
    # a 28-day window above a 10-day horizon, predictions from 28 days back: the labels simply land later
    assert note(date(2026, 9, 2), 10, 28).endswith(
        f"predicted {date(2026, 9, 2)} .. {request}; the rest's labels land later, if at all"
    )


def test_an_exported_snapshot_keeps_the_bias_checks_not_assessed_note_beside_its_coverage_note():
    from orchestration.lib.retraining import ready_reason

    unassessed = "fairness not assessed: fewer than 100 rows per group in the snapshot of m (...)"
    coverage = "exported with 3 of the window's 66 predictions (5%): ..."
    assert ready_reason(unassessed, coverage) == f"{unassessed}; {coverage}"
    assert ready_reason(unassessed, None) == unassessed
    assert ready_reason(None, coverage) == coverage and ready_reason(None, None) is None
    # any other reason the request held (a re-queue's) is the job's past, not the export's note
    assert ready_reason(f"{REQUEUED}every input table passed", None) is None


@pytest.mark.parametrize("seed", range(6))
def test_a_backfill_raises_the_requests_day_by_day_runs_raise(seed):
    """requests_between over a range judges each day on the rows dated up to it, as a run of that day alone did
    (only those rows existed then): random alerts, prediction days (small, pooled, missing) and floor breaches."""
    rng = np.random.default_rng(seed)
    health, alerts = [], []
    for model_id, weekly in (("m", False), ("n", True), ("late", False)):
        start = 15 if model_id == "late" else 0
        for i in range(start, 45):
            if weekly and i % 7 not in (0, 1, 2, 3):
                continue
            if rng.random() < 0.15:
                continue  # a day without predictions
            predictions = int(rng.choice([5, 50, 150, 400]))
            labelled = int(rng.choice([0, 20, MIN_LABELLED, 150]))
            tp = int(rng.integers(0, labelled + 1))
            fp, fn = labelled - tp, int(rng.integers(0, 30))
            health.append((pd.Timestamp(day(i)), model_id, predictions, labelled, tp, fp, fn))
            if rng.random() < 0.45:
                metric = str(rng.choice(["psi", "expected_calibration_error"]))
                alerts.append((pd.Timestamp(day(i)), model_id, metric, float(rng.random())))
    health = pd.DataFrame(
        health,
        columns=["date", "model_id", "predictions", "labelled", "true_positives", "false_positives", "false_negatives"],
    )
    tp = health["true_positives"]
    health = health.assign(
        precision=tp / (tp + health["false_positives"]), recall=tp / (tp + health["false_negatives"])
    )
    alerts = pd.DataFrame(alerts, columns=["date", "model_id", "metric", "value"])
    floors = {"m": {"min_precision": 0.6}, "late": {"min_recall": 0.7}}
    rules = {"persist_days": 3, "floor_alpha": 0.05}
    psi = ({"m": 200, "n": 100, "late": 0}, {"m": 3, "n": 1, "late": 1})

    def between(first: int, last: int, up_to: int) -> pd.DataFrame:
        known = pd.Timestamp(day(up_to))
        return requests_between(
            alerts[alerts["date"] <= known],
            health[health["date"] <= known],
            rules,
            MIN_LABELLED,
            day(first),
            day(last),
            "/x",
            floors,
            *psi,
        )

    backfill = between(0, 44, 44)
    daily = pd.concat([between(i, i, i) for i in range(45)], ignore_index=True)
    assert len(backfill) >= 5, "the world raises too few requests to compare"
    assert backfill.to_dict("records") == daily.to_dict("records")
