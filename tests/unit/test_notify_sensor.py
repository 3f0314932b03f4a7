"""The alert sensor reads the read-only snapshot and Dagster's failed gate checks and notifies each alert and failed gate once."""

import json
import os
import tempfile
from datetime import date

import dagster as dg
import duckdb
import pandas as pd
import pytest

from orchestration.defs.model_health.alerts import ALERTS_SCHEMA
from orchestration.defs.notify import sensors
from orchestration.defs.notify.sensors import alert_notifications_sensor
from orchestration.defs.partitions import daily_partitions, single_run
from orchestration.defs.quality.checks import GATE_RESULTS_SCHEMA
from orchestration.defs.partitions import RANGE_END_TAG, RANGE_START_TAG
from orchestration.lib.bias import VERDICTS_SCHEMA
from orchestration.lib.warehouse import ensure_table
from tests.unit.test_notify import verdict


def alert(day, metric, subject, value, threshold):
    return {
        "date": date.fromisoformat(day),
        "model_id": "recommender",
        "model_version": "v1",
        "metric": metric,
        "subject": subject,
        "value": value,
        "threshold": threshold,
        "rule": f"> {threshold}",
        "first_detected_on": date.fromisoformat(day),
        "last_evaluated_on": date.fromisoformat(day),
    }


def write_snapshot(path, alerts, gates, verdicts=()):
    """A snapshot as publish/analytics_snapshot leaves it (rebuilt whole, then renamed over the old file)."""
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with duckdb.connect(str(tmp)) as conn:
        for table, schema, rows in (
            ("marts.alerts", ALERTS_SCHEMA, alerts),
            ("quality.gate_results", GATE_RESULTS_SCHEMA, gates),
            ("marts.bias_verdicts", VERDICTS_SCHEMA, verdicts),
        ):
            ensure_table(conn, table, schema)
            if rows:
                conn.register("_rows", pd.DataFrame(rows).reindex(columns=list(schema)))
                conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _rows")
    os.replace(tmp, path)


@pytest.fixture
def paths(tmp_path, monkeypatch):
    snapshot, alerts = tmp_path / "analytics.duckdb", tmp_path / "alerts"
    monkeypatch.setenv("IMPACT_LEDGER_ANALYTICS_DB", str(snapshot))
    monkeypatch.setenv("IMPACT_LEDGER_ALERTS", str(alerts))
    monkeypatch.delenv("IMPACT_LEDGER_ALERT_WEBHOOK", raising=False)
    return snapshot, alerts / "notifications.jsonl"


def tick(instance, cursor):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, sensor_name="alert_notifications")
    result = alert_notifications_sensor.evaluate_tick(context)
    return result, context.cursor


def sent(jsonl):
    return [json.loads(line)["dedup_key"] for line in jsonl.read_text().splitlines()] if jsonl.exists() else []


def test_each_alert_and_failed_gate_is_notified_once(paths):
    snapshot, jsonl = paths
    day1 = [
        alert("2026-10-10", "psi", "basket_size", 0.41, 0.2),
        alert("2026-10-10", "expected_calibration_error", "", 0.12, 0.08),
    ]
    gates = [
        {
            "date": date(2026, 10, 10),
            "suite": "raw_orders",
            "table_name": "orders",
            "passed": False,
            "failed_expectations": '["revenue_not_negative"]',
            "rows_validated": 900,
        },
        {
            "date": date(2026, 10, 10),
            "suite": "raw_labels",
            "table_name": "labels",
            "passed": True,
            "failed_expectations": "[]",
            "rows_validated": 400,
        },
    ]
    with dg.DagsterInstance.ephemeral() as instance:
        result, cursor = tick(instance, None)
        assert result.skip_message.startswith("no analytics snapshot")
        assert cursor is None and not jsonl.exists()

        write_snapshot(snapshot, day1, gates)
        result, cursor = tick(instance, cursor)
        assert result.run_requests == []
        assert sorted(sent(jsonl)) == sorted(
            [
                "alert|2026-10-10|recommender|psi|basket_size",
                "alert|2026-10-10|recommender|expected_calibration_error|",
                "gate|2026-10-10||quality_gate|raw_orders",
            ]
        )

        # unchanged snapshot: nothing is even read
        result, cursor = tick(instance, cursor)
        assert result.skip_message == "snapshot unchanged since the last tick"

        # the next run republishes: day 10-10 re-evaluated (same breaches), day 10-11 adds one
        write_snapshot(snapshot, [*day1, alert("2026-10-11", "psi", "tenure_days", 0.5, 0.2)], gates)
        os.utime(snapshot, (snapshot.stat().st_atime, snapshot.stat().st_mtime + 1))  # a coarse clock must not hide it
        result, cursor = tick(instance, cursor)
        assert sent(jsonl)[3:] == ["alert|2026-10-11|recommender|psi|tenure_days"]

        # republished again with nothing new: a second tick notifies nothing new
        write_snapshot(snapshot, [*day1, alert("2026-10-11", "psi", "tenure_days", 0.5, 0.2)], gates)
        os.utime(snapshot, (snapshot.stat().st_atime, snapshot.stat().st_mtime + 2))
        result, cursor = tick(instance, cursor)
        assert result.skip_message.startswith("sent 0 notification(s)")
        assert len(sent(jsonl)) == 4


def test_a_fairness_verdict_that_starts_failing_is_notified_once_from_the_snapshot(paths):
    # afam's disparate impact failed in marts.bias_verdicts on every run and the sensor sent nothing
    snapshot, jsonl = paths
    failing = [verdict(1, True, 0.9)] + [verdict(d, False, 0.33) for d in (2, 3)]
    with dg.DagsterInstance.ephemeral() as instance:
        write_snapshot(snapshot, [], [], failing)
        _, cursor = tick(instance, None)
        assert sent(jsonl) == ["fairness|2026-10-02|mortgage|fairness|afam"]
        write_snapshot(snapshot, [], [], [*failing, verdict(4, False, 0.33)])  # the next day: still failing
        os.utime(snapshot, (snapshot.stat().st_atime, snapshot.stat().st_mtime + 1))
        result, cursor = tick(instance, cursor)
        assert result.skip_message.startswith("sent 0 notification(s)") and len(sent(jsonl)) == 1


def test_the_sensor_runs_without_clicking():
    assert alert_notifications_sensor.default_status == dg.DefaultSensorStatus.RUNNING


def gate_run(instance, passed, dbt_test_fails=False, failed_days=None, **run):
    """A real run whose blocking raw_orders gate check passes or fails, its evaluation stored in ``instance``."""

    @dg.asset(key=["raw", "orders"], partitions_def=daily_partitions, backfill_policy=single_run)
    def orders() -> None:
        return None

    @dg.asset_check(asset=orders, name="raw_orders_suite", blocking=True, partitions_def=daily_partitions)
    def raw_orders_suite() -> dg.AssetCheckResult:
        failed = {} if passed else {"revenue_not_negative": {"blocking": True}, "volume_ratio": {"blocking": False}}
        return dg.AssetCheckResult(
            passed=passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description="raw_orders",
            metadata={
                "rows_validated": 900,
                "failed_expectations": dg.MetadataValue.json(failed),
                **({"failed_days": dg.MetadataValue.json(failed_days)} if failed_days else {}),
            },
        )

    @dg.asset_check(asset=orders, name="not_a_gate", partitions_def=daily_partitions)
    def not_a_gate() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False)

    checks = [raw_orders_suite, not_a_gate]
    if dbt_test_fails:  # any blocking check is a gate (e.g. a dbt test of severity error): no wiring by name

        @dg.asset_check(asset=orders, name="unique_orders_order_id", blocking=True, partitions_def=daily_partitions)
        def unique_orders_order_id() -> dg.AssetCheckResult:
            return dg.AssetCheckResult(passed=False, description="3 duplicate order_id")

        checks.append(unique_orders_order_id)
    dg.materialize([orders, *checks], instance=instance, raise_on_error=False, **run)


def test_a_failed_gate_is_notified_the_tick_after_it_fails_without_a_new_snapshot(paths):
    """A failed blocking gate skips the publish step: the sensor reads the failed check from Dagster's event log."""
    snapshot, jsonl = paths
    # the storage `make dev` uses: SQLite, event logs sharded per run
    with tempfile.TemporaryDirectory() as home, dg.DagsterInstance.local_temp(home) as instance:
        write_snapshot(snapshot, [], [])  # yesterday's publication
        _, cursor = tick(instance, None)
        assert sent(jsonl) == []

        # today's run (one day) fails its gate; publication is skipped, the snapshot stays as it was
        gate_run(instance, passed=False, partition_key="2026-10-12")
        result, cursor = tick(instance, cursor)
        assert sent(jsonl) == ["gate|2026-10-12||quality_gate|raw_orders"]
        [line] = [json.loads(line) for line in jsonl.read_text().splitlines()]
        assert (
            line["value"] == 900 and "revenue_not_negative" in line["message"] and "volume_ratio" not in line["message"]
        )

        # a backfill of two days failing in one run: each day of its range, as quality.gate_results records it
        gate_run(instance, passed=False, tags={RANGE_START_TAG: "2026-10-10", RANGE_END_TAG: "2026-10-11"})
        gate_run(instance, passed=True, partition_key="2026-10-13")
        result, cursor = tick(instance, cursor)
        assert sent(jsonl)[1:] == [
            "gate|2026-10-10||quality_gate|raw_orders",
            "gate|2026-10-11||quality_gate|raw_orders",
        ]
        result, cursor = tick(instance, cursor)
        assert result.skip_message == "snapshot unchanged since the last tick"

        # a backfill of two days whose gate held back one: its value is not the run's 900 rows (not that day's)
        gate_run(
            instance,
            passed=False,
            failed_days=["2026-10-09"],
            tags={RANGE_START_TAG: "2026-10-08", RANGE_END_TAG: "2026-10-09"},
        )
        result, cursor = tick(instance, cursor)
        held = [json.loads(line) for line in jsonl.read_text().splitlines()][-1]
        assert (held["dedup_key"], held["value"]) == ("gate|2026-10-09||quality_gate|raw_orders", None)

        # the next successful run publishes the same failures in quality.gate_results: not sent again
        gates = [
            {
                "date": date(2026, 10, d),
                "suite": "raw_orders",
                "table_name": "orders",
                "passed": False,
                "failed_expectations": '["revenue_not_negative"]',
                "rows_validated": 900,
            }
            for d in (10, 11, 12)
        ]
        write_snapshot(snapshot, [], gates)
        os.utime(snapshot, (snapshot.stat().st_atime, snapshot.stat().st_mtime + 1))
        result, cursor = tick(instance, cursor)
        assert result.skip_message.startswith("sent 0 notification(s)")
        assert len(sent(jsonl)) == 4

        # a later run whose blocking dbt-style test fails is notified on the next tick, once
        gate_run(instance, passed=True, dbt_test_fails=True, partition_key="2026-10-14")
        result, cursor = tick(instance, cursor)
        assert sent(jsonl)[4:] == ["gate|2026-10-14||quality_gate|unique_orders_order_id"]
        result, cursor = tick(instance, cursor)
        assert len(sent(jsonl)) == 5


def test_a_run_that_fails_at_a_step_is_notified_once_naming_the_days_it_covered(paths):
    # a predictions file with a renamed column stopped the day's run: the team watching notifications never knew;
    # then a 30-day run failing on one cause wrote 30 identical lines
    snapshot, jsonl = paths

    @dg.asset(key=["raw", "predictions"], partitions_def=daily_partitions, backfill_policy=single_run)
    def predictions() -> None:
        raise ValueError("predictions_2026-09-20.csv: table 'predictions' is missing required column 'score'")

    with tempfile.TemporaryDirectory() as home, dg.DagsterInstance.local_temp(home) as instance:
        write_snapshot(snapshot, [], [])
        _, cursor = tick(instance, None)
        dg.materialize(
            [predictions],
            instance=instance,
            raise_on_error=False,
            tags={RANGE_START_TAG: "2026-09-01", RANGE_END_TAG: "2026-09-30"},
        )
        _, cursor = tick(instance, cursor)
        assert sent(jsonl) == ["run|2026-09-01||run_failed|raw__predictions|2026-09-30"]
        line = json.loads(jsonl.read_text().splitlines()[0])
        assert (line["date"], line["until"]) == ("2026-09-01", "2026-09-30")
        assert " of 2026-09-01 .. 2026-09-30 failed at step raw__predictions: " in line["message"]
        assert line["message"].count("missing required column 'score'") == 1
        assert "nothing of those days was published" in line["message"]
        _, cursor = tick(instance, cursor)
        assert len(sent(jsonl)) == 1  # once


def test_materialize_notify_sends_what_the_sensor_would_once_catching_up_on_many_runs(paths, tmp_path, monkeypatch):
    """`impact-ledger materialize --notify` (cron, no daemon): the sensor's ticks with a cursor file, until one
    finds nothing new; a first use reads every finished run, RUNS_PER_TICK at a time."""
    snapshot, jsonl = paths
    cursor_file = tmp_path / "alerts" / sensors.CLI_CURSOR
    monkeypatch.setattr(sensors, "RUNS_PER_TICK", 2)
    with tempfile.TemporaryDirectory() as home, dg.DagsterInstance.local_temp(home) as instance:
        write_snapshot(snapshot, [alert("2026-10-10", "psi", "basket_size", 0.41, 0.2)], [])
        for day in (10, 11, 12, 13, 14):  # five failed gates: three ticks of two runs
            gate_run(instance, passed=False, partition_key=f"2026-10-{day}")
        message = sensors.notify_now(instance, cursor_file)
        assert sorted(sent(jsonl)) == sorted(
            ["alert|2026-10-10|recommender|psi|basket_size"]
            + [f"gate|2026-10-{day}||quality_gate|raw_orders" for day in (10, 11, 12, 13, 14)]
        )
        assert message.startswith("sent ") and cursor_file.exists()

        # the next cron run: nothing new, nothing sent
        assert sensors.notify_now(instance, cursor_file) == "snapshot unchanged since the last tick"
        assert len(sent(jsonl)) == 6

        # a new failed gate and a new alert: each sent once
        gate_run(instance, passed=False, partition_key="2026-10-15")
        write_snapshot(snapshot, [alert("2026-10-15", "psi", "basket_size", 0.5, 0.2)], [])
        os.utime(snapshot, (snapshot.stat().st_atime, snapshot.stat().st_mtime + 1))
        sensors.notify_now(instance, cursor_file)
        assert sorted(sent(jsonl)[6:]) == [
            "alert|2026-10-15|recommender|psi|basket_size",
            "gate|2026-10-15||quality_gate|raw_orders",
        ]
        sensors.notify_now(instance, cursor_file)
        assert len(sent(jsonl)) == 8


def test_a_blocking_check_of_another_asset_is_not_called_a_raw_tables_gate(paths):
    # a training snapshot's fairness check stopped a retraining run: the notification said "quality gate
    # training_bias failed ... for raw.training_candidates; downstream publication of that day is blocked" (now: "that day is held back")
    snapshot, jsonl = paths

    @dg.asset(key=["retraining", "training_candidates"], partitions_def=daily_partitions, backfill_policy=single_run)
    def candidates() -> None:
        return None

    @dg.asset_check(asset=candidates, name="training_bias", blocking=True, partitions_def=daily_partitions)
    def training_bias() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False, description="disparate impact 0.6 < 0.8")

    with tempfile.TemporaryDirectory() as home, dg.DagsterInstance.local_temp(home) as instance:
        write_snapshot(snapshot, [], [])
        _, cursor = tick(instance, None)
        dg.materialize([candidates, training_bias], instance=instance, raise_on_error=False, partition_key="2026-11-29")
        tick(instance, cursor)
        [line] = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert line["message"].startswith(
        "blocking check training_bias failed on 2026-11-29 for retraining/training_candidates"
    )
    assert "raw." not in line["message"] and "publication is not affected" in line["message"]


def test_a_failed_retraining_run_says_no_snapshot_was_exported_not_that_nothing_was_published():
    # a trial's blocked retraining run read "nothing of that day was published" in summary, though the day's marts
    # were published by its daily run; the retraining job exports a snapshot, nothing else
    from orchestration.defs.notify.sensors import RETRAINING_JOB, run_failure

    @dg.asset(key=["retraining", "training_candidates"], partitions_def=daily_partitions)
    def candidates() -> None:
        raise dg.Failure("m: no labelled predictions known by 2026-03-25")

    @dg.asset(key=["raw", "orders"], partitions_def=daily_partitions)
    def orders() -> None:
        raise ValueError("orders_2026-03-25.csv: unreadable")

    defs = dg.Definitions(
        assets=[candidates, orders],
        jobs=[
            dg.define_asset_job(RETRAINING_JOB, selection=[candidates]),
            dg.define_asset_job("daily", selection=[orders]),
        ],
    )
    with tempfile.TemporaryDirectory() as home, dg.DagsterInstance.local_temp(home) as instance:
        said = {}
        for job in (RETRAINING_JOB, "daily"):
            result = defs.resolve_job_def(job).execute_in_process(
                instance=instance, partition_key="2026-03-25", raise_on_error=False
            )
            (failure,) = run_failure(instance, instance.get_run_by_id(result.run_id))
            said[job] = failure.message
    assert said[RETRAINING_JOB].endswith("no training snapshot of that day was exported")
    assert "no labelled predictions known by 2026-03-25" in said[RETRAINING_JOB]
    assert said["daily"].endswith("nothing of that day was published")


def test_a_run_stopped_by_a_blocking_check_says_which_check_and_why():
    # a trial's summary: "failed at step raw__sessions_raw_sessions_suite: 1 blocking asset check failed with ERROR
    # severity:;" and nothing of why
    from orchestration.defs.notify.sensors import run_failure

    @dg.asset(key=["raw", "sessions"], partitions_def=daily_partitions)
    def sessions() -> None:
        return None

    @dg.asset_check(asset=sessions, name="raw_sessions_suite", blocking=True)
    def suite() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            description="blocked: raw.sessions failed on 2026-05-01 (volume_deviation)\nthe rows of that day ...",
        )

    with tempfile.TemporaryDirectory() as home, dg.DagsterInstance.local_temp(home) as instance:
        result = dg.materialize([sessions, suite], instance=instance, partition_key="2026-05-01", raise_on_error=False)
        (failure,) = run_failure(instance, instance.get_run_by_id(result.run_id))
    assert failure.message.endswith(
        ": check raw_sessions_suite of raw/sessions failed: blocked: raw.sessions failed on 2026-05-01 "
        "(volume_deviation); nothing of that day was published"
    )


def test_a_day_that_failed_its_gate_and_passed_again_before_the_tick_is_not_notified(paths):
    # a trial fixed a held-back day's file and re-ran it before the sensor's first tick: the tick still sent
    # "quality gate raw_predictions failed on 2026-10-19 ... that day is held back"
    snapshot, jsonl = paths
    with tempfile.TemporaryDirectory() as home, dg.DagsterInstance.local_temp(home) as instance:
        write_snapshot(snapshot, [], [])
        _, cursor = tick(instance, None)
        gate_run(instance, passed=False, partition_key="2026-10-19")
        gate_run(instance, passed=True, partition_key="2026-10-19")  # mended and run again
        gate_run(instance, passed=True, partition_key="2026-10-20")
        gate_run(instance, passed=False, partition_key="2026-10-20")  # a later run fails it: that one counts
        # a backfill that held back one day of its range: the other day passed
        gate_run(instance, passed=False, partition_key="2026-10-21")
        gate_run(
            instance,
            passed=False,
            failed_days=["2026-10-22"],
            tags={RANGE_START_TAG: "2026-10-21", RANGE_END_TAG: "2026-10-22"},
        )
        tick(instance, cursor)
    assert sent(jsonl) == ["gate|2026-10-20||quality_gate|raw_orders", "gate|2026-10-22||quality_gate|raw_orders"]
