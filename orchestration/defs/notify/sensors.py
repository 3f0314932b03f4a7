"""A sensor that sends each new model-health alert and failed quality gate once.

It reads the analysts' read-only snapshot (rebuilt by publish/analytics_snapshot
after each run), never the warehouse, so it cannot collide with a running
pipeline's DuckDB write lock. What was sent is kept in the sensor's cursor.
"""

import dagster as dg
import duckdb

from orchestration.lib.notify import (
    NotifyCursor,
    build_notifiers,
    dispatch,
    load_notify_config,
    read_candidates,
    select_new,
)
from orchestration.lib.settings import alerts_dir, analytics_path


# RUNNING by default: nobody should have to click to be told a model drifted.
# Only the daemon (`dagster dev`) ticks sensors; tests and `materialize_days`
# never do, and without a configured webhook it only writes the log and a file.
@dg.sensor(name="alert_notifications", minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Each new row of marts.alerts and each failed quality gate, once, to the log, "
                       "data/alerts/notifications.jsonl and an optional webhook (IMPACT_LEDGER_ALERT_WEBHOOK).")
def alert_notifications_sensor(context: dg.SensorEvaluationContext):
    snapshot = analytics_path()
    if not snapshot.exists():
        return dg.SkipReason(f"no analytics snapshot at {snapshot} yet (publish/analytics_snapshot builds it)")
    cursor = NotifyCursor.from_json(context.cursor)
    mtime = snapshot.stat().st_mtime
    if cursor.source_mtime == mtime:
        return dg.SkipReason("snapshot unchanged since the last tick")
    config = load_notify_config()
    with duckdb.connect(str(snapshot), read_only=True) as conn:
        candidates, newest_day = read_candidates(conn, config.horizon_days)
    new, next_cursor = select_new(candidates, cursor, newest_day, config.horizon_days)
    notifiers = build_notifiers(context.log, alerts_dir(), config)
    failed = dispatch(new, notifiers, context.log) if new else {}
    if new and len(failed) == len(notifiers):
        # nobody was told: keep the old cursor so the next tick tries again
        return dg.SkipReason(f"every notifier failed, will retry: {failed}")
    next_cursor.source_mtime = mtime
    context.update_cursor(next_cursor.to_json())
    summary = f"sent {len(new)} notification(s) about days up to {newest_day}"
    return dg.SkipReason(summary + (f"; failed notifiers: {sorted(failed)}" if failed else ""))
