"""Late labels refresh earlier days (as sklearn computes them from the labels known then);
the planted incident raises alerts in time, and only then."""

import shutil
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from tests.e2e.oracles import known_predictions, label_metrics

pytestmark = pytest.mark.slow


def health_on(p, day):
    return p.query("SELECT * FROM marts.model_health_daily WHERE date = ? ORDER BY model_id", [day]).set_index(
        "model_id"
    )


LABEL_METRICS = ["labelled", "label_coverage", "precision", "recall", "f1"]


def land_late_labels(source: Path, day: date, landing_day: date) -> int:
    """A new labels file dated `landing_day` with labels for `day`'s predictions, as a late feed delivers them.

    Predictions still unlabelled by then get the wrong label (so precision and recall
    must move), and some labelled ones a human review that flips them (it overrides).
    """
    preds = known_predictions(source, landing_day)
    preds = preds[preds["date"] == pd.Timestamp(day)].sort_values("prediction_id")
    unlabelled = preds[preds["label"].isna()].groupby("model_id").head(150)
    reviewed = preds[preds["label"].notna() & (preds["label_source"] == "implicit")].groupby("model_id").head(50)
    late = pd.concat(
        [
            pd.DataFrame(
                {
                    "prediction_id": unlabelled["prediction_id"],
                    "label": 1 - unlabelled["decision"].astype("int64"),
                    "label_source": "implicit",
                }
            ),
            pd.DataFrame(
                {
                    "prediction_id": reviewed["prediction_id"],
                    "label": 1 - reviewed["label"].astype("int64"),
                    "label_source": "human_review",
                }
            ),
        ],
        ignore_index=True,
    )
    # inside the landing day, so the raw loader puts them in that day's partition
    late["labeled_at"] = pd.Timestamp(landing_day) + pd.Timedelta(hours=12) + pd.to_timedelta(late.index, unit="s")
    late[["prediction_id", "label", "labeled_at", "label_source"]].to_parquet(
        source / "labels" / f"labels_{landing_day.isoformat()}_late.parquet", index=False
    )
    return len(unlabelled)  # predictions labelled for the first time


def oracle_on(source: Path, day: date, known_by: date) -> pd.DataFrame:
    preds = known_predictions(source, known_by)
    preds = preds[preds["date"] == pd.Timestamp(day)]
    return pd.DataFrame({m: label_metrics(g) for m, g in preds.groupby("model_id")}).T[LABEL_METRICS]


def assert_equal_to_oracle(ours: pd.DataFrame, oracle: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        ours[LABEL_METRICS].astype(float),
        oracle.loc[ours.index].astype(float),
        check_exact=False,
        rtol=1e-9,
        atol=1e-12,
        check_names=False,
    )


def test_labels_landing_three_days_late_update_that_days_metrics(pipeline, tmp_path, monkeypatch):
    # `pipeline` has run every day but the last two: day D's last refresh knew the labels of D + 2.
    # D + 3 is the next day to run, so one daily run lands the late labels (runs go day after day:
    # running D + 3 over a gap would miss the labels of the skipped day).
    day = pipeline.last - timedelta(days=4)
    landing = day + timedelta(days=3)
    source = tmp_path / "world"  # a private copy: the session's world is shared
    shutil.copytree(pipeline.source, source)
    monkeypatch.setenv("IMPACT_LEDGER_SOURCE", str(source))
    p = replace(pipeline, source=source)
    before = health_on(p, day)
    assert (before["labels_as_of"] == pd.Timestamp(day + timedelta(days=2))).all()
    assert_equal_to_oracle(before, oracle_on(source, day, day + timedelta(days=2)))

    newly_labelled = land_late_labels(source, day, landing)
    assert p.run(landing).success
    after = health_on(p, day)
    assert (after["labels_as_of"] == pd.Timestamp(landing)).all()
    assert_equal_to_oracle(after, oracle_on(source, day, landing))
    assert (after["label_coverage"] > before["label_coverage"]).all()
    assert (after["precision"] != before["precision"]).all() and (after["recall"] != before["recall"]).all()
    # the landed file counts: without it D + 3 knew fewer labels by exactly its first-time ones
    (source / "labels" / f"labels_{landing.isoformat()}_late.parquet").unlink()
    assert after["labelled"].sum() - oracle_on(source, day, landing)["labelled"].sum() == newly_labelled > 0
    assert (after["predictions"] == before["predictions"]).all()  # volume does not depend on labels


def test_incident_raises_drift_and_calibration_alerts_within_two_days(daily_runs):
    p = daily_runs  # the incident's days run one at a time, as the schedule does them
    incident = p.incident
    model = p.truth["incident"]["model_id"]
    alerts = p.query("SELECT * FROM marts.alerts")
    before = alerts[alerts["date"] < pd.Timestamp(incident)]
    assert before[before["metric"] == "psi"].empty, before
    incident_alerts = alerts[(alerts["model_id"] == model) & (alerts["date"] == pd.Timestamp(incident))]
    drift = incident_alerts[incident_alerts["metric"] == "psi"]
    assert set(p.truth["incident"]["drifted_features"]) <= set(drift["subject"])
    assert (drift["first_detected_on"] == pd.Timestamp(incident)).all()
    calibration = incident_alerts[incident_alerts["metric"] == "expected_calibration_error"]
    assert len(calibration) == 1
    assert calibration["first_detected_on"].iloc[0] <= pd.Timestamp(incident + timedelta(days=2))
    other = alerts[alerts["model_id"] != model]
    assert other[other["metric"] == "psi"].empty
