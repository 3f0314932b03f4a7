"""A corrupted day of predictions fails the blocking gate and nothing is attributed for it."""

import shutil
from datetime import timedelta

import pandas as pd
import pytest

pytestmark = pytest.mark.slow


def test_corrupt_predictions_block_attribution_for_that_day(pipeline, tmp_path, monkeypatch):
    day = pipeline.last - timedelta(days=1)
    source = tmp_path / "corrupt_source"
    shutil.copytree(pipeline.source, source)
    path = source / "predictions" / f"predictions_{day.isoformat()}.parquet"
    frame = pd.read_parquet(path)
    frame.loc[frame.index[:50], "score"] = 1.7  # systemic: 5% of the day
    frame = pd.concat([frame, frame.iloc[100:150]], ignore_index=True)  # 50 duplicate ids
    frame.to_parquet(path, index=False)
    monkeypatch.setenv("IMPACT_LEDGER_SOURCE", str(source))

    outcome = pipeline.run(day)

    assert not outcome.success
    gate = [f for f in outcome.failures if "raw_predictions_suite" in f and f.startswith("check")]
    assert gate, outcome.failures
    assert "expect_column_values_to_be_between on score: 50 unexpected" in gate[0]
    assert "expect_column_values_to_be_unique on prediction_id: 100 unexpected" in gate[0]
    assert len(gate) == 1  # every other table passed its gate
    assert "attribution/experiment_results" not in outcome.materialized
    assert pipeline.query("SELECT count(*) AS n FROM attribution.experiment_results WHERE as_of_date = ?", [day])["n"][0] == 0
    gate_log = pipeline.query("SELECT * FROM quality.gate_results WHERE date = ? AND suite = 'raw_predictions'", [day])
    assert not gate_log["passed"].iloc[0] and "score" in gate_log["failed_expectations"].iloc[0]

    # the next day is clean and gets published, but its cumulative numbers miss the blocked day: not trustworthy
    assert pipeline.run(day + timedelta(days=1)).success
    results = pipeline.query("SELECT * FROM attribution.experiment_results WHERE as_of_date = ?", [day + timedelta(days=1)])
    cumulative = results[results["analysis_window"] == "cumulative"]
    assert len(cumulative) and not cumulative["trustworthy"].any()
    assert cumulative["untrusted_reason"].str.contains(f"quality gate raw_predictions failed on {day}").all()
    # the quarantine still holds every bad row: nothing is lost
    quarantined = pipeline.query("SELECT count(*) AS n FROM raw_quarantine.predictions WHERE _partition_date = ?", [day])["n"][0]
    assert quarantined >= 100
