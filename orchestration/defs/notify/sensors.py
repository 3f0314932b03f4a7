"""A sensor that sends each new model-health alert, failed quality gate, failed run and fairness failure once.

Two sources, neither of them the warehouse, so it never collides with a running
pipeline's DuckDB write lock:
- Dagster's own event log: each failed run (its first failed step and why), and each failed *blocking* check evaluation (GX suites,
  dbt tests of severity error, Python gates; a new gate needs no wiring), read
  run by run the tick after the run finished, so a gate is notified on the day
  it fails (a failed blocking gate skips publish/analytics_snapshot, so the
  snapshot would tell only after the next successful run);
- the analysts' read-only snapshot (rebuilt by publish/analytics_snapshot after
  each run): new incidents of marts.alerts (a run of alerting days), new rows of quality.gate_results, and
  each (model, attribute) of marts.bias_verdicts whose verdict starts failing (once per run of failing windows,
  not once a day).
A failed gate has the same dedup key in both, so it is sent once. What was sent,
the snapshot's mtime and the last finished run read (its update time) are kept in the sensor's cursor.
"""

import json
import re
from datetime import date, datetime, timezone
from pathlib import Path

import dagster as dg
import pandas as pd

from orchestration.defs.partitions import days_between
from orchestration.defs.partitions import RANGE_END_TAG, RANGE_START_TAG
from orchestration.lib.notify import (
    Notification,
    NotifyCursor,
    build_notifiers,
    dispatch,
    gate_notifications,
    grouped,
    load_notify_config,
    read_candidates,
    select_new,
)
from orchestration.lib.settings import alerts_dir, analytics_path
from orchestration.lib.warehouse import analyst_connection

RUNS_PER_TICK = 100
# `impact-ledger materialize --notify` keeps its cursor here, in the alerts folder (not the sensor's: that one lives
# in the Dagster instance's sensor state, which only the daemon's ticks write)
CLI_CURSOR = "materialize_notify_cursor.json"
MAX_CLI_TICKS = 1000  # 100,000 finished runs read at the first --notify
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def _run_days(run: dg.DagsterRun, partition: str | None) -> list[date]:
    """The days a check evaluated: its partition, else its run's partition range (a backfill is one run)."""
    tags = run.tags
    first = partition or tags.get(RANGE_START_TAG) or tags.get("dagster/partition")
    if first is None:
        return []
    return days_between(date.fromisoformat(first), date.fromisoformat(partition or tags.get(RANGE_END_TAG) or first))


def _gate_name(check_name: str) -> str:
    # a GX suite's check is `<suite>_suite`; quality.gate_results names the suite, and both must dedup as one
    return check_name.removesuffix("_suite")


def failed_blocking_checks(
    instance: dg.DagsterInstance, after: float | None
) -> tuple[list[Notification], float | None]:
    """Failed *blocking* check evaluations (GX suites, dbt tests of severity error, Python gates) of the runs
    finished after ``after`` (a run update timestamp) -> notifications, and the newest run's timestamp.

    Reads run by run (the default SQLite instance shards event logs per run, so one query across runs
    after an event cursor is refused there); a run re-read at the boundary dedups by key.
    """
    updated_after = datetime.fromtimestamp(after, tz=timezone.utc) if after is not None else None
    records = instance.get_run_records(
        dg.RunsFilter(statuses=FINISHED, updated_after=updated_after),
        limit=RUNS_PER_TICK,
        order_by="update_timestamp",
        ascending=True,
    )
    # (gate, day) -> its latest evaluation among these runs, failed (the notification's row) or passed (None): a
    # day re-run and passed before the tick is no failure to send (a trial's fixed day was notified as held back)
    latest: dict[tuple[str, date], dict | None] = {}
    failed_runs = []
    for record in records:
        run = record.dagster_run
        gates_failed = False
        one_day = len(_run_days(run, None)) == 1  # a check's rows_validated are a day's only in a one-day run
        for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
            check = entry.dagster_event.event_specific_data
            if not check.blocking:
                continue
            gate, evaluated = _gate_name(check.check_name), _run_days(run, check.partition)
            # the days it evaluated passed, unless it names them failed below
            latest.update({(gate, d): None for d in evaluated})
            if check.passed:
                continue
            gates_failed = True
            failures = check.metadata.get("failed_expectations")
            blocking = [name for name, f in (failures.data if failures else {}).items() if f.get("blocking", True)]
            failed_days = check.metadata.get("failed_days")  # a gate judging each day names the days it held back
            days = [date.fromisoformat(d) for d in failed_days.data] if failed_days is not None else evaluated
            rows_validated = check.metadata.get("rows_validated")
            for day in days:
                latest[(gate, day)] = {
                    "date": day,
                    "suite": gate,
                    "table_name": check.asset_key.path[-1],
                    "asset": "/".join(check.asset_key.path),
                    "passed": False,
                    "failed_expectations": json.dumps(blocking or [check.description or check.check_name]),
                    "rows_validated": rows_validated.value if rows_validated and one_day else None,
                }
        # a failed run whose gates all passed failed at a step (a failed blocking gate also fails its step: said
        # once, as the gate)
        if run.status == dg.DagsterRunStatus.FAILURE and not gates_failed:
            failed_runs += run_failure(instance, run)
    last = records[-1].update_timestamp.timestamp() if records else after
    rows = [row for row in latest.values() if row is not None]
    return (gate_notifications(pd.DataFrame(rows)) if rows else []) + failed_runs, last


def run_failure(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[Notification]:
    """A run that failed at a step (a file the loader refused, a database it could not read): one notification
    naming the days it covered (first .. last), the first failed step and why; nothing of those days was
    published."""
    failures = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    if not failures:
        return []
    event = failures[0].dagster_event
    error = event.event_specific_data.error
    while error is not None and error.cause is not None:  # the root cause says why
        error = error.cause
    why = error.message.strip().splitlines()[0] if error is not None and error.message.strip() else "see the run"
    why = re.sub(r"^[\w.]+(Error|Exception): ", "", why)  # the message, not its class's dotted path
    if why.endswith("failed with ERROR severity:"):  # Dagster's list of checks follows: say the first one's why
        why = _failed_check(instance, run) or why.removesuffix(":")
    days = _run_days(run, None)
    if not days:
        return []
    first, last = days[0].isoformat(), days[-1].isoformat()
    covered = f"{first} .. {last}" if last != first else first
    return [
        Notification(
            kind="run",
            date=first,
            model_id=None,
            metric="run_failed",
            subject=event.step_key or "",
            value=None,
            threshold=None,
            message=f"run {run.run_id[:8]} of {covered} failed at step {event.step_key}: {why}; "
            + (
                # the retraining job publishes no marts: its days' were published by their own runs
                f"no training snapshot of {'those days' if last != first else 'that day'} was exported"
                if run.job_name == RETRAINING_JOB
                else f"nothing of {'those days' if last != first else 'that day'} was published"
            ),
            until=last if last != first else None,
        )
    ]


def _failed_check(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str | None:
    """'check <name> of <asset> failed: <its description's first line>' of the run's first blocking check that
    failed (a trial's summary read "1 blocking asset check failed with ERROR severity:;" and no more)."""
    for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = record.dagster_event.event_specific_data
        if evaluation.passed or evaluation.severity != dg.AssetCheckSeverity.ERROR:
            continue
        said = (evaluation.description or "").strip().splitlines()
        return f"check {evaluation.check_name} of {evaluation.asset_key.to_user_string()} failed" + (
            f": {said[0]}" if said else ""
        )
    return None


RETRAINING_JOB = "retraining"  # the retraining job's name (orchestration/defs/retraining/assets.py defines it)


# RUNNING by default: nobody should have to click to be told a model drifted.
# Only the daemon (`dagster dev`) ticks sensors; tests and `materialize_days`
# never do, and without a configured webhook it only writes the log and a file.
@dg.sensor(
    name="alert_notifications",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Each new incident of marts.alerts (an alert on days in a row), each failed quality gate (the tick "
    "after it fails), each failed run and each fairness verdict that starts failing, once, to the log, data/alerts/notifications.jsonl and an "
    "optional webhook (IMPACT_LEDGER_ALERT_WEBHOOK).",
)
def alert_notifications_sensor(context: dg.SensorEvaluationContext):
    cursor = NotifyCursor.from_json(context.cursor)
    config = load_notify_config()
    candidates, last_event = failed_blocking_checks(context.instance, cursor.event_storage_id)
    days = [date.fromisoformat(n.last_day) for n in candidates]
    snapshot = analytics_path()
    mtime = snapshot.stat().st_mtime if snapshot.exists() else None
    if mtime is not None and mtime != cursor.source_mtime:
        with analyst_connection(snapshot) as conn:
            published, newest = read_candidates(conn, config.horizon_days)
        candidates, days = candidates + published, days + ([newest] if newest else [])
    elif last_event == cursor.event_storage_id:
        return dg.SkipReason(
            "snapshot unchanged since the last tick"
            if mtime is not None
            else f"no analytics snapshot at {snapshot} yet (publish/analytics_snapshot builds it)"
        )
    new, next_cursor = select_new(candidates, cursor, max(days, default=None), config.horizon_days)
    notifiers = build_notifiers(context.log, alerts_dir(), config)
    sent = grouped(new)
    failed = dispatch(sent, notifiers, context.log) if new else {}
    if new and len(failed) == len(notifiers):
        # nobody was told: keep the old cursor so the next tick tries again
        return dg.SkipReason(f"every notifier failed, will retry: {failed}")
    next_cursor.source_mtime, next_cursor.event_storage_id = mtime, last_event
    context.update_cursor(next_cursor.to_json())
    newest = max(days, default=None)
    summary = f"sent {len(sent)} notification(s)" + (f" about days up to {newest}" if newest else "")
    return dg.SkipReason(summary + (f"; failed notifiers: {sorted(failed)}" if failed else ""))


def notify_now(instance: dg.DagsterInstance, cursor_path: Path) -> str:
    """The sensor's ticks, run by ``impact-ledger materialize --notify`` after its runs (cron, where no daemon
    ticks): the same notifications, each once, with the cursor kept in ``cursor_path``. Ticks until one finds
    nothing new (a tick reads at most RUNS_PER_TICK runs); returns what the ticks sent."""
    cursor = cursor_path.read_text() if cursor_path.exists() else None
    messages = []
    for _ in range(MAX_CLI_TICKS):
        context = dg.build_sensor_context(instance=instance, cursor=cursor, sensor_name="alert_notifications")
        messages.append(alert_notifications_sensor.evaluate_tick(context).skip_message or "")
        if context.cursor is None or context.cursor == cursor:  # nothing new read (or every notifier failed)
            break
        cursor = context.cursor
        cursor_path.parent.mkdir(parents=True, exist_ok=True)
        cursor_path.write_text(cursor)
    sent = [m for m in messages if m.startswith("sent ")]
    return "; ".join(sent) if sent else messages[-1]
