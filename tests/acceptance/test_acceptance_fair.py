"""(c) Two models on one population, label times with a UTC offset, predictions as daily Parquet: Fair's data.

6,366 survey respondents (statsmodels' fair.csv), each scored on one of 45 days by a logistic regression and a
depth-4 tree (scikit-learn), flagged = score >= 0.5 = HARMFUL; the outcome arrives one to seven months later,
written as local time with +02:00, and a tenth never arrives. Only `impact-ledger init` + `impact-ledger
materialize` (the whole landing zone, then, on a copy, one day alone as the daily schedule runs it); the numbers
are checked against scikit-learn on the raw files.
"""

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import precision_score, recall_score

from orchestration.lib.contract import DIMENSION_TABLES
from tests.acceptance.datasets import FAIR_DAYS, FAIR_MODELS
from tests.warehouse_diff import RUN_HISTORY, RUN_RECORDS, base_tables, differing_tables

pytestmark = [pytest.mark.slow, pytest.mark.acceptance]


def test_init_finds_both_models_their_late_labels_and_the_age_bands(fair_run):
    spec = fair_run.init_config
    assert set(spec["models"]) == set(FAIR_MODELS)
    rows = fair_run.tables["predictions"].merge(fair_run.tables["labels"], on="prediction_id")
    rows["delay"] = (rows["labelled_at_utc"] - rows["predicted_at"]).dt.total_seconds() / 86400
    for model, delay in rows.groupby("model_id")["delay"]:
        # p99 of the delay, rounded up
        assert spec["models"][model]["label_horizon_days"] == int(np.ceil(np.quantile(delay, 0.99))), model
        assert spec["models"][model]["positive_decision"] == "favourable"  # left for review; the fixture edits it
    assert spec["protected_attributes"] == ["age_band"]  # a protected name; religious only listed as a candidate


def test_materialize_succeeds(fair_run):
    fair_run.require_success()


def test_precision_recall_and_label_delay_per_model_and_day_match_the_labels_within_the_horizon(fair_run):
    t = fair_run.tables
    horizon = {m: fair_run.config["models"][m]["label_horizon_days"] for m in FAIR_MODELS}
    rows = t["predictions"].merge(t["labels"], on="prediction_id")
    rows["day"] = rows["predicted_at"].dt.normalize()
    # a label counts for its prediction's day when known by the end of day + the model's label horizon (UTC)
    known = rows["labelled_at_utc"] < rows["day"] + pd.to_timedelta(rows["model_id"].map(horizon) + 1, unit="D")
    assert 0 < (~known).sum() < 0.05 * len(rows)  # the horizon leaves out the latest labels only
    health = fair_run.query("SELECT * FROM marts.model_health_daily")
    assert set(health["model_id"]) == set(FAIR_MODELS) and health["date"].nunique() >= FAIR_DAYS
    compared = 0
    for (day, model), g in rows[known].groupby(["day", "model_id"]):
        row = health[(health["date"] == day) & (health["model_id"] == model)]
        assert len(row) == 1, (day, model)
        flagged = (g["score"] >= 0.5).astype(int)
        assert row["labelled"].iloc[0] == len(g), (day, model)
        assert row["precision"].iloc[0] == pytest.approx(precision_score(g["label"], flagged)), (day, model)
        assert row["recall"].iloc[0] == pytest.approx(recall_score(g["label"], flagged)), (day, model)
        # the +02:00 label times read as the instants they are (read as UTC, every delay would be 2 h longer)
        hours = (g["labelled_at_utc"] - g["predicted_at"]).dt.total_seconds() / 3600
        assert row["median_label_delay_hours"].iloc[0] == pytest.approx(hours.median()), (day, model)
        compared += 1
    assert compared == 2 * FAIR_DAYS
    # every prediction counted on its day, a tenth of them never labelled
    volume = health.groupby("model_id")["predictions"].sum()
    assert volume.to_dict() == t["predictions"].groupby("model_id").size().to_dict()


def test_the_last_label_day_run_alone_is_its_partition_and_leaves_the_warehouse_as_the_whole_run_did(
    fair_run, fair_last_label_day_again, monkeypatch
):
    again = fair_last_label_day_again
    again.require_success()
    assert "(1 day(s))" in again.materialize.stdout
    day = again.query("SELECT max(run_last_day) AS d FROM intermediate.int_label_refresh_days")["d"][0].date()
    # the day's labels are months late: the run recomputed older prediction days, not only its own
    refreshed = again.query("SELECT reason, count(*) AS n FROM intermediate.int_label_refresh_days GROUP BY 1")
    assert set(refreshed["reason"]) >= {"late_labels"}, refreshed
    # every late label that day arrived for is counted as the whole run counted it: the same warehouse
    tables = base_tables(fair_run.db)
    assert tables == base_tables(again.db)
    tables = [t for t in tables if t not in RUN_RECORDS]
    # a snapshot (users) is stamped with the day of the run that read it
    stamped = {f"{schema}.{t}": ["_partition_date"] for t in DIMENSION_TABLES for schema in ("raw", "raw_quarantine")}
    assert differing_tables(fair_run.db, again.db, tables, RUN_HISTORY | stamped) == []
    # Dagster recorded the run as that day's partition, its quality gates' and per-model checks' verdicts under
    # the day (the project's event log finds its files from DAGSTER_HOME, as the command line's run did)
    monkeypatch.setenv("DAGSTER_HOME", str(again.home / "dagster_home"))
    with dg.DagsterInstance.from_config(str(again.home / "dagster_home")) as instance:
        run = instance.get_runs(limit=1)[0]
        assert run.tags.get("dagster/partition") == day.isoformat()
        evaluations = [
            entry.dagster_event.event_specific_data
            for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        ]
    gates = [e for e in evaluations if e.check_name.endswith("_suite")]
    assert gates and all(e.partition == day.isoformat() and e.passed for e in gates), gates
    per_model = {e.check_name: e.partition for e in evaluations if e.check_name.startswith(("bias_", "model_health_"))}
    assert {f"bias_{m}" for m in FAIR_MODELS} <= set(per_model) and set(per_model.values()) == {day.isoformat()}
