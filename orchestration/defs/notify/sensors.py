"""A sensor that sends each new model-health alert and failed quality gate once.

Two sources, neither of them the warehouse, so it never collides with a running
pipeline's DuckDB write lock:
- Dagster's own event log: each failed quality-gate check evaluation, read the
  tick after the check ran, so a gate is notified on the day it fails (a failed
  blocking gate skips publish/analytics_snapshot, so the snapshot would tell
  only after the next successful run);
- the analysts' read-only snapshot (rebuilt by publish/analytics_snapshot after
  each run): new rows of marts.alerts, and of quality.gate_results.
A failed gate has the same dedup key in both, so it is sent once. What was sent,
the snapshot's mtime and the last event read are kept in the sensor's cursor.
"""

import json
import warnings
from datetime import date

import dagster as dg
import pandas as pd

from orchestration.defs.partitions import days_between
from orchestration.defs.quality.checks import GATED_SUITES
from orchestration.defs.runs import RANGE_END_TAG, RANGE_START_TAG
from orchestration.lib.notify import (
    Notification,
    NotifyCursor,
    build_notifiers,
    dispatch,
    gate_notifications,
    load_notify_config,
    read_candidates,
    select_new,
)
from orchestration.lib.settings import alerts_dir, analytics_path
from orchestration.lib.warehouse import analyst_connection

GATE_CHECKS = {f"{suite}_suite": suite for suite in GATED_SUITES}  # check name -> suite
EVENTS_PER_TICK = 1000


def _run_days(instance: dg.DagsterInstance, run_id: str, partition: str | None) -> list[date]:
    """The days a check evaluated: its partition, else its run's partition range (a backfill is one run)."""
    tags = {} if partition else instance.get_run_by_id(run_id).tags
    first = partition or tags.get(RANGE_START_TAG) or tags.get("dagster/partition")
    if first is None:
        return []
    return days_between(date.fromisoformat(first), date.fromisoformat(partition or tags.get(RANGE_END_TAG) or first))


def failed_gate_events(instance: dg.DagsterInstance, after: int | None) -> tuple[list[Notification], int | None]:
    """Failed quality-gate check evaluations stored after event ``after`` -> notifications, and the last event id."""
    with warnings.catch_warnings():
        # deprecated for 2.0, but Dagster 1.13 has no other query of evaluations across checks after a cursor
        warnings.simplefilter("ignore", category=DeprecationWarning)
        records = instance.get_event_records(
            dg.EventRecordsFilter(event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, after_cursor=after),
            limit=EVENTS_PER_TICK, ascending=True,
        )
    rows = []
    for record in records:
        check = record.event_log_entry.dagster_event.event_specific_data
        if check.passed or check.check_name not in GATE_CHECKS:
            continue
        failures = check.metadata.get("failed_expectations")
        blocking = [name for name, f in (failures.data if failures else {}).items() if f.get("blocking", True)]
        days = _run_days(instance, record.run_id, check.partition)
        rows_validated = check.metadata.get("rows_validated")
        # as quality.gate_results records it: each day of the run carries the run's verdict
        rows += [{"date": day, "suite": GATE_CHECKS[check.check_name], "table_name": check.asset_key.path[-1],
                  "passed": False, "failed_expectations": json.dumps(blocking),
                  "rows_validated": rows_validated.value if rows_validated and len(days) == 1 else None} for day in days]
    last = records[-1].storage_id if records else after
    return (gate_notifications(pd.DataFrame(rows)) if rows else []), last


# RUNNING by default: nobody should have to click to be told a model drifted.
# Only the daemon (`dagster dev`) ticks sensors; tests and `materialize_days`
# never do, and without a configured webhook it only writes the log and a file.
@dg.sensor(name="alert_notifications", minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Each new row of marts.alerts and each failed quality gate (the tick after it fails), once, to "
                       "the log, data/alerts/notifications.jsonl and an optional webhook (IMPACT_LEDGER_ALERT_WEBHOOK).")
def alert_notifications_sensor(context: dg.SensorEvaluationContext):
    cursor = NotifyCursor.from_json(context.cursor)
    config = load_notify_config()
    candidates, last_event = failed_gate_events(context.instance, cursor.event_storage_id)
    days = [date.fromisoformat(n.date) for n in candidates]
    snapshot = analytics_path()
    mtime = snapshot.stat().st_mtime if snapshot.exists() else None
    if mtime is not None and mtime != cursor.source_mtime:
        with analyst_connection(snapshot) as conn:
            published, newest = read_candidates(conn, config.horizon_days)
        candidates, days = candidates + published, days + ([newest] if newest else [])
    elif last_event == cursor.event_storage_id:
        return dg.SkipReason("snapshot unchanged since the last tick" if mtime is not None else
                             f"no analytics snapshot at {snapshot} yet (publish/analytics_snapshot builds it)")
    new, next_cursor = select_new(candidates, cursor, max(days, default=None), config.horizon_days)
    notifiers = build_notifiers(context.log, alerts_dir(), config)
    failed = dispatch(new, notifiers, context.log) if new else {}
    if new and len(failed) == len(notifiers):
        # nobody was told: keep the old cursor so the next tick tries again
        return dg.SkipReason(f"every notifier failed, will retry: {failed}")
    next_cursor.source_mtime, next_cursor.event_storage_id = mtime, last_event
    context.update_cursor(next_cursor.to_json())
    summary = f"sent {len(new)} notification(s) about days up to {max(days, default=None)}"
    return dg.SkipReason(summary + (f"; failed notifiers: {sorted(failed)}" if failed else ""))
