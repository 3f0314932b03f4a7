"""Run the daily job for a range of days as one in-process run (CLI, demo and tests)."""

import time
from dataclasses import dataclass, field
from datetime import date

import dagster as dg

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


@dataclass
class RunOutcome:
    success: bool
    run_id: str
    seconds: float
    failures: list[str] = field(default_factory=list)  # failed steps and failed blocking checks, with why
    materialized: list[str] = field(default_factory=list)


def _failures(result: dg.ExecuteInProcessResult) -> list[str]:
    out = []
    for ev in result.get_asset_check_evaluations():
        if not ev.passed:
            out.append(f"check {ev.asset_key.to_user_string()}:{ev.check_name} failed: {ev.description or ''}")
    for ev in result.all_events:
        if ev.event_type_value == "STEP_FAILURE":
            err = ev.event_specific_data.error
            message = err.message.strip() if err else ""
            while err is not None and err.cause is not None:  # the root cause says why
                err = err.cause
                message = err.message.strip()
            out.append(f"step {ev.step_key} failed: {message}")
    return out


def materialize_days(first: date, last: date, instance: dg.DagsterInstance | None = None, log_level: str = "WARNING") -> RunOutcome:
    """Materialise every asset (and run every check) for ``first``..``last`` in one run."""
    from orchestration.definitions import build_definitions

    # Fresh definitions bind resources to the current IMPACT_LEDGER_DB / _SOURCE.
    job = build_definitions().resolve_job_def("daily_impact_ledger")
    started = time.monotonic()
    result = job.execute_in_process(
        instance=instance or dg.DagsterInstance.ephemeral(),
        tags={RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()},
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        raise_on_error=False,
    )
    materialized = sorted({e.asset_key.to_user_string() for e in result.get_asset_materialization_events()})
    return RunOutcome(result.success, result.run_id, time.monotonic() - started, _failures(result), materialized)


def run_retraining(day: date, instance: dg.DagsterInstance | None = None) -> RunOutcome:
    """The retraining job (candidates -> bias gate -> snapshot) for ``day``, as the sensor would start it."""
    from orchestration.definitions import build_definitions

    job = build_definitions().resolve_job_def("retraining")
    started = time.monotonic()
    result = job.execute_in_process(
        instance=instance or dg.DagsterInstance.ephemeral(),
        partition_key=day.isoformat(),
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        raise_on_error=False,
    )
    materialized = sorted({e.asset_key.to_user_string() for e in result.get_asset_materialization_events()})
    return RunOutcome(result.success, result.run_id, time.monotonic() - started, _failures(result), materialized)
