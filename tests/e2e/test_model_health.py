"""Late labels refresh earlier days; the planted incident raises alerts in time, and only then."""

from datetime import timedelta

import pandas as pd
import pytest

pytestmark = pytest.mark.slow


def health_on(p, day):
    return p.query("SELECT * FROM marts.model_health_daily WHERE date = ? ORDER BY model_id", [day]).set_index("model_id")


def test_late_labels_update_earlier_days(pipeline):
    day = pipeline.last - timedelta(days=3)
    assert pipeline.run(day).success  # labels known by the end of `day`
    early = health_on(pipeline, day)
    assert pipeline.run(day + timedelta(days=1), day + timedelta(days=3)).success  # three more days of labels land
    late = health_on(pipeline, day)
    assert (late["labelled"] > early["labelled"] + 500).all()
    assert (late["label_coverage"] > early["label_coverage"]).all()
    assert (late["labels_as_of"] > early["labels_as_of"]).all()
    assert (late["precision"] != early["precision"]).any() or (late["recall"] != early["recall"]).any()
    assert (late["predictions"] == early["predictions"]).all()  # volume does not depend on labels


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
