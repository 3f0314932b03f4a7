"""A retraining floor breached by labels that land months after the predictions: the request is dated on the day
the labels showed the breach, not the prediction day, so its point-in-time snapshot holds them. Found by a real-data
trial (a mortality score: a precision floor breached on 2025-03-25's flags, known only when the survivors' sweep
landed in 2026-02; the request of 2025-03-25 was blocked for good, no label known by then)."""

from datetime import date, datetime, timedelta

import duckdb
import pandas as pd
import pytest
from scipy.stats import binomtest

from orchestration.defs.retraining.assets import _breaches_known_on, _floor_rows
from orchestration.lib.retraining import first_breach_day, requests_between

P = date(2025, 3, 25)  # the prediction day
FLOOR, ALPHA = 0.6, 0.05
# ten flagged predictions: two outcomes known after 40 days (both right), six wrong after 200, two wrong after 300;
# p3's implicit 1 is overruled by a human review's 0 on day 250
EVENTS = [(f"p{i}", True, 1, 1, 40) for i in range(2)]
EVENTS += [(f"p{i}", True, 0, 1, 200) for i in range(2, 8)]
EVENTS += [(f"p{i}", True, 0, 1, 300) for i in range(8, 10)]
EVENTS = [e if e[0] != "p3" else ("p3", True, 1, 1, 200) for e in EVENTS] + [("p3", True, 0, 2, 250)]


def _events() -> pd.DataFrame:
    return pd.DataFrame(
        [
            (pid, decision, label, priority, datetime(2025, 3, 25, 12) + timedelta(days=after))
            for pid, decision, label, priority, after in EVENTS
        ],
        columns=["prediction_id", "decision", "label", "priority", "at"],
    )


def test_the_first_day_its_known_labels_breach_the_floor_by_scipys_test():
    # the oracle by hand: each label day's resolved labels, scipy's exact test
    by_day = {40: (2, 2), 200: (3, 8), 250: (2, 8), 300: (2, 10)}  # (right, flagged and labelled) known by then
    p = {after: binomtest(hits, n, FLOOR, alternative="less").pvalue for after, (hits, n) in by_day.items()}
    expected = min(after for after, value in p.items() if value < ALPHA)
    assert expected == 250 and p[200] >= ALPHA  # the premise: the human review's 0 tips it
    assert first_breach_day(_events(), "precision", FLOOR, ALPHA) == P + timedelta(days=expected)
    assert first_breach_day(_events(), "precision", 0.1, ALPHA) is None  # never below a floor of 0.1
    assert first_breach_day(_events().iloc[:0], "precision", FLOOR, ALPHA) is None


def _health(rows, version="v") -> pd.DataFrame:
    """model_health_daily rows of model m, ``version`` (date, true positives, false positives, labels_as_of)."""
    frame = pd.DataFrame(rows, columns=["date", "true_positives", "false_positives", "labels_as_of"])
    frame = frame.assign(model_id="m", model_version=version, false_negatives=0, predictions=10)
    frame["labelled"] = frame["true_positives"] + frame["false_positives"]
    frame["precision"] = frame["true_positives"] / frame["labelled"]
    frame["recall"] = 1.0
    return frame.assign(date=pd.to_datetime(frame["date"]), labels_as_of=pd.to_datetime(frame["labels_as_of"]))


@pytest.mark.parametrize("version", ["v", None])  # None: predictions without a model_version
def test_a_breach_known_months_later_is_a_request_of_that_day_naming_its_prediction_day(tmp_path, monkeypatch, version):
    project = tmp_path / "impact_ledger.yml"  # labels count up to 400 days after their prediction
    project.write_text(f"models:\n  m:\n    label_horizon_days: 400\n    min_precision: {FLOOR}\n")
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(project))
    known = P + timedelta(days=250)
    run_first = known - timedelta(days=3)  # a daily run's window a few days after the labels came
    run_last = known + timedelta(days=2)
    health = _health([(P, 2, 8, P + timedelta(days=300))], version)  # the final counts: 2 of 10 right
    recent = _health([(run_last - timedelta(days=i), 5, 5, run_last) for i in range(5)], version)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        conn.execute("CREATE SCHEMA marts; CREATE SCHEMA staging")
        all_rows = pd.concat([health, recent], ignore_index=True)
        conn.execute("CREATE TABLE marts.model_health_daily AS SELECT * FROM all_rows")
        events = _events()
        predictions = pd.DataFrame(
            {
                "prediction_id": [f"p{i}" for i in range(10)],
                "model_id": "m",
                "model_version": version,
                "predicted_at": datetime(2025, 3, 25, 12),
                "prediction_date": P,
                "decision": True,
            }
        )
        labels = events.rename(columns={"at": "labeled_at", "priority": "source_priority"})
        conn.execute("CREATE TABLE staging.stg_predictions AS SELECT * FROM predictions")
        conn.execute(
            "CREATE TABLE staging.stg_labels AS SELECT prediction_id, label, source_priority, labeled_at FROM labels"
        )
        # the run reads its window's rows; the floors add the older day whose labels came since its first day
        window = conn.execute(
            "SELECT * FROM marts.model_health_daily WHERE date BETWEEN ? AND ?",
            [run_first - timedelta(days=30), run_last],
        ).df()
        floors = {"m": {"min_precision": FLOOR}}
        rows = _floor_rows(conn, window, floors, run_first - timedelta(days=30), run_first)
        assert sorted(pd.to_datetime(rows["date"]).dt.date) == sorted([P, *pd.to_datetime(recent["date"]).dt.date])
        rules = {"persist_days": 3, "floor_alpha": ALPHA}
        # the labels known by the run's last day are all of them: the breach was first known on day 250
        known_on = _breaches_known_on(conn, rows, floors, rules, run_last)
    assert known_on == {("m", version, P, "precision"): known}

    def raised(**known) -> pd.DataFrame:  # no alerts: the floor alone
        no_alerts = pd.DataFrame(columns=["date", "model_id", "metric", "value"])
        return requests_between(no_alerts, window, rules, 100, run_first, run_last, "/x", floors, **known)

    requests = raised(known_on=known_on, floor_health=rows)
    assert requests["date"].tolist() == [known]  # not P: a snapshot as of P could hold none of these labels
    evidence = requests.iloc[0]["evidence"]
    assert f'"{P}": 0.2' in evidence and f'"{P}": "2/10"' in evidence  # the prediction day's final counts
    # without the day it was known (the old rule) the breach is dated on P, outside this run's window: nothing
    assert raised().empty


def test_the_one_pass_equals_resolving_every_days_labels_afresh():
    # the oracle: each label day, every prediction's label resolved from scratch (pandas), then scipy's test
    import numpy as np

    rng = np.random.default_rng(4)
    for trial in range(30):
        n = int(rng.integers(5, 60))
        rows = []
        for i in range(n):
            for _ in range(int(rng.integers(1, 4))):  # 1-3 events: revisions, a human review
                rows.append(
                    (
                        f"p{i}",
                        bool(i % 3),
                        int(rng.integers(0, 2)),
                        int(rng.integers(1, 3)),
                        datetime(2025, 1, 1) + timedelta(days=int(rng.integers(0, 40)), hours=int(rng.integers(0, 24))),
                    )
                )
        events = pd.DataFrame(rows, columns=["prediction_id", "decision", "label", "priority", "at"])
        for metric in ("precision", "recall"):
            expected = None
            for day in sorted(set(events["at"].dt.date)):
                known = events[events["at"].dt.date <= day].sort_values(["priority", "at"])
                resolved = known.groupby("prediction_id").last()
                flagged, positive = resolved["decision"], resolved["label"] == 1
                n_trials = int((flagged if metric == "precision" else positive).sum())
                hits = int((flagged & positive).sum())
                if n_trials and binomtest(hits, n_trials, 0.7, alternative="less").pvalue < 0.2:
                    expected = day
                    break
            assert first_breach_day(events, metric, 0.7, 0.2) == expected, (trial, metric)
