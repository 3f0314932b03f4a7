"""Run the daily job for a range of days as one in-process run (CLI, demo and tests)."""

import os
import re
import textwrap
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import dagster as dg

# A backfill is one run: record one "planned" event per asset for its whole range instead of one per
# asset and day (394 days x 40 assets kept a run from starting for 9 minutes on SQLite). The price:
# Dagster does not mark each day failed when such a run fails (the run and the check say why).
os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")

from orchestration.dagster_storage import ephemeral_instance
from orchestration.defs.partitions import RANGE_END_TAG, RANGE_START_TAG, daily_partitions
from orchestration.lib.long_lived import collection_paused, freeze_long_lived_objects
from orchestration.lib.project_config import load_config
from orchestration.lib.raw_loader import ABSENT, NEW_COLUMNS, QUARANTINE_BY_REASON
from orchestration.lib.quality_gate import in_words
from orchestration.lib.retraining import NOT_ASSESSED_KEY


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
        if not ev.passed:  # a WARN verdict held back some days and let the others through: "warned", as progress says
            warned = ev.severity == dg.AssetCheckSeverity.WARN
            # a warning's details were its step's progress notes already: its first line (what it held back) here
            said = (ev.description or "").split("\n", 1)[0] if warned else ev.description or ""
            out.append(
                f"check {ev.asset_key.to_user_string()}:{ev.check_name} {'warned' if warned else 'failed'}: {said}"
            )
    for ev in result.all_events:
        if ev.event_type_value == "STEP_FAILURE":
            err = ev.event_specific_data.error
            message = err.message.strip() if err else ""
            while err is not None and err.cause is not None:  # the root cause says why
                err = err.cause
                message = err.message.strip()
            # the exception's class is no news to the reader: "ContractError: x.csv: ..." -> "x.csv: ..."
            message = re.sub(r"^[\w.]+(?:Error|Exception|Failure): ", "", message)
            out.append(f"step {StepProgress.readable(ev.step_key)} failed: {message}")
    return out


# a warned check's held-back days and failed expectations: its description's first lines, each cut at this width
NOTE_LINES, NOTE_WIDTH = 4, 240
NOTE_DAYS = 5  # the days a passed check's warning lists


def _json_mapping(metadata: dict, key: str) -> dict:
    """A check's JSON metadata entry that holds a mapping, else {} (absent, or another kind of value)."""
    entry = metadata.get(key)
    return entry.value if entry is not None and isinstance(entry.value, dict) else {}


class StepProgress:
    """A run's event listener printing one line when a step starts and when it ends, with elapsed times.

    Called by the instance for every event of the run as it is stored, so the lines stream while the run
    executes. A step is an asset (or check), or the one dbt step that builds every dbt model of the range.
    """

    ENDINGS = {"STEP_SUCCESS": "done", "STEP_FAILURE": "FAILED", "STEP_SKIPPED": "skipped"}

    @staticmethod
    def readable(step_key: str) -> str:
        """Step keys as people say them: `raw__orders_raw_orders_suite` -> `quality gate raw_orders (raw.orders)`."""
        path = step_key.split("__")
        name = path[-1]
        if name.endswith("_suite") and path[0] == "raw" and len(path) == 2:
            table, _, suite = name.partition("_raw_")
            return f"quality gate raw_{suite.removesuffix('_suite')} (raw.{table})"
        if step_key == "impact_ledger_dbt":
            return "dbt build (staging, marts and their tests)"
        return ".".join(path) if path[0] in ("raw", "marts", "attribution", "quality") else "/".join(path)

    def __init__(self, emit: Callable[[str], None], label: str):
        self.emit, self.label = emit, label
        self.run_started: float | None = None
        self.step_started: dict[str, float] = {}
        self.counts: dict[str, dict] = {}  # per step: assets materialised, checks passed / warned / failed
        self.notes: dict[str, list[str]] = {}  # per step: what a warned check held back, why an asset was skipped

    def _note(self, step: str, line: str) -> None:
        # a ranged step's materialisations (one per day) carry the range's metadata each: said once
        if line not in (notes := self.notes.setdefault(step, [])):
            notes.append(line)

    def _note_quarantine(self, step: str, table: str, by_reason: dict) -> None:
        """One line per reason for the run, its rows and days (a ranged run's days each said their own count)."""
        for reason, seen in list(by_reason.items())[:NOTE_LINES]:
            days = f" on {seen['days']}" if seen.get("days") else ""
            # a trial's monthly label files, dated by the Taipei day, quarantined whole in UTC: init had said why
            zone = (
                f"; files dated by another zone's days? set the project file's timezone (now {load_config().timezone})"
                if "outside partition day" in reason
                else ""
            )
            self._note(
                step,
                f"{seen['rows']} row(s) quarantined ({reason}){days} in raw_quarantine.{table}, with _reason{zone}",
            )
        if len(by_reason) > NOTE_LINES:
            self._note(step, f"… and {len(by_reason) - NOTE_LINES} more reason(s): raw_quarantine.{table}._reason")

    def _count(self, step: str, kind: str, event) -> None:
        counts = self.counts.setdefault(step, {"assets": set(), "passed": 0, "warned": 0, "failed": 0})
        if kind == "ASSET_MATERIALIZATION":
            counts["assets"].add(event.asset_key)
            metadata = event.event_specific_data.materialization.metadata
            skipped = metadata.get("skipped")
            if skipped is not None:
                self._note(step, f"skipped: {skipped.value}")
            notes = metadata.get("notes")
            if notes is not None and ABSENT in str(notes.value):  # said only in the asset's metadata before
                self._note(step, "absent from the source: loaded empty (an optional table)")
            if (added := metadata.get(NEW_COLUMNS)) is not None and isinstance(added.value, list):
                table = event.asset_key.path[-1]
                self._note(
                    step,
                    f"new source column(s) kept in raw.{table} (as extra columns, empty on earlier days): "
                    f"{', '.join(added.value)}",
                )
            by_reason = metadata.get(QUARANTINE_BY_REASON)
            if by_reason is not None and isinstance(by_reason.value, dict):  # the run's, the same on every day
                self._note_quarantine(step, event.asset_key.path[-1], by_reason.value)
            elif (quarantined := metadata.get("rows_quarantined")) is not None and quarantined.value:
                # a raw table's rows that broke a row rule (an asset without the run's reasons: its own counts)
                reasons = metadata.get("quarantine_reasons")
                why = reasons.value if reasons is not None and isinstance(reasons.value, dict) else {}
                listed = "; ".join(f"{reason}: {n}" for reason, n in list(why.items())[:NOTE_LINES])
                self._note(
                    step,
                    f"{quarantined.value} row(s) quarantined"
                    + (f" ({listed})" if listed else "")
                    + f" in raw_quarantine.{event.asset_key.path[-1]}, with _reason",
                )
        elif kind == "ASSET_CHECK_EVALUATION":
            check = event.event_specific_data
            warn = check.severity == dg.AssetCheckSeverity.WARN
            counts["passed" if check.passed else "warned" if warn else "failed"] += 1
            if warn and not check.passed and check.description:  # a failure is printed with the run's outcome
                lines = check.description.splitlines()
                for line in lines[:NOTE_LINES]:  # wrapped, not cut: a trial's cut line lost its hint (what to do)
                    for i, part in enumerate(textwrap.wrap(line, NOTE_WIDTH) or [line]):
                        self._note(step, part if i == 0 else f"  {part}")
                if len(lines) > NOTE_LINES:  # the lines left out are said (a verdict's other failures went unsaid)
                    self._note(step, f"… and {len(lines) - NOTE_LINES} more line(s): impact-ledger summary")
            elif check.passed:  # a gate's warnings (a paused label feed) pass the check: still say them
                unjudged = check.metadata.get(NOT_ASSESSED_KEY)  # a pass that judged nothing is no finding either
                if unjudged is not None:
                    self._note(step, str(unjudged.value))
                failed = _json_mapping(check.metadata, "failed_expectations")
                warned = [(f"{name}{in_words(name)}", seen.get("failed_days") or []) for name, seen in failed.items()]
                # a day passed only by gates.rows.min_count: its name says what it checks and why it passed
                warned += _json_mapping(check.metadata, "tolerated").items()
                for name, days in warned:
                    shown = ", ".join(days[:NOTE_DAYS]) + (" ..." if len(days) > NOTE_DAYS else "")
                    self._note(
                        step, f"warning (blocks nothing): {name}" + (f" on {len(days)} day(s): {shown}" if days else "")
                    )

    def _summary(self, step: str) -> str:
        """One line for a step of many assets or checks (dbt): ": 20 assets, 45 checks passed, 1 FAILED"."""
        c = self.counts.get(step)
        if not c or (len(c["assets"]) <= 1 and not c["passed"] + c["warned"] + c["failed"]):
            return ""
        parts = [f"{len(c['assets'])} asset(s)"] if len(c["assets"]) > 1 else []
        parts += [
            f"{c[k]} check(s) {label}"
            for k, label in (("passed", "passed"), ("warned", "warned"), ("failed", "FAILED"))
            if c[k]
        ]
        return ": " + ", ".join(parts)

    def __call__(self, entry) -> None:
        event = entry.dagster_event
        if event is None:
            return
        if self.run_started is None:
            self.run_started = entry.timestamp
        kind, step = event.event_type_value, self.readable(event.step_key or "")
        self._count(step, kind, event)
        clock = f"[{entry.timestamp - self.run_started:7.1f}s] {self.label}"
        if kind == "STEP_START":
            self.step_started[step] = entry.timestamp
            self.emit(f"{clock} {step} started")
        elif kind in self.ENDINGS:
            took = entry.timestamp - self.step_started.get(step, entry.timestamp)
            self.emit(
                f"{clock} {step} {self.ENDINGS[kind]}"
                + (f" in {took:.1f}s" if step in self.step_started else "")
                + self._summary(step)
            )
            for note in self.notes.pop(step, []):
                self.emit(f"{clock} {step}: {note}")


def load_job(name: str) -> dg.JobDefinition:
    """The job ``name`` of fresh definitions (their resources bound to the current IMPACT_LEDGER_DB / _SOURCE),
    loaded with the cyclic collector paused; then, on the process's first load, what is alive is frozen (the
    modules a run imports), so later collections skip it."""
    with collection_paused():
        from orchestration.definitions import build_definitions

        job = build_definitions().resolve_job_def(name)
        freeze_long_lived_objects()
    return job


def execute_with_progress(
    job: dg.JobDefinition, instance: dg.DagsterInstance, progress: Callable[[str], None] | None, label: str, **kwargs
) -> dg.ExecuteInProcessResult:
    """``job.execute_in_process(**kwargs)``, streaming StepProgress lines to ``progress`` (if given) meanwhile."""
    run_id = str(uuid.uuid4())
    if progress is not None:
        instance.add_event_listener(run_id, StepProgress(progress, label))
    return job.execute_in_process(instance=instance, run_id=run_id, raise_on_error=False, **kwargs)


def materialize_days(
    first: date,
    last: date,
    instance: dg.DagsterInstance | None = None,
    log_level: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> RunOutcome:
    """Materialise every asset (and run every check) for ``first``..``last`` in one run (one day: that day's
    partition, as the schedule runs it). Malformed OKRs in the project file fail it before it starts.

    ``progress``, if given, receives a line as each step starts and ends (see StepProgress).
    """
    from orchestration.lib.okrs import OkrConfigError, check_before_loading

    try:  # a misspelt KPI fails here, not at the okr_progress step after every table has loaded
        check_before_loading()
    except OkrConfigError as err:
        return RunOutcome(False, "", 0.0, [str(err)])
    return _run_job(
        "daily_impact_ledger",
        first,
        last,
        f"{first} .. {last}",
        instance,
        progress,
        log_level,
        f"{(last - first).days + 1} partition(s)",
    )


def _run_job(
    name: str,
    first: date,
    last: date,
    label: str,
    instance: dg.DagsterInstance | None,
    progress: Callable[[str], None] | None,
    log_level: str | None = None,
    recorded: str | None = None,
) -> RunOutcome:
    """Job ``name`` run over ``first``..``last`` (partitions_of_run) with progress lines headed ``label``; ``recorded``: what the
    run records in the Dagster instance before its first step, said before it starts."""
    if progress is not None:
        progress("loading definitions (Dagster, dbt manifest, checks)")
    job = load_job(name)
    if progress is not None and recorded:
        progress(f"starting the run ({recorded} recorded in the Dagster instance first)")
    started = time.monotonic()
    result = execute_with_progress(
        job,
        instance or ephemeral_instance(),
        progress,
        label,
        **partitions_of_run(first, last),
        # with progress lines the caller prints outcome.failures (one line each): Dagster's console logger
        # would add every failure's stack trace (100+ lines for one malformed file)
        run_config={
            "loggers": {"console": {"config": {"log_level": log_level or ("CRITICAL" if progress else "WARNING")}}}
        },
    )
    materialized = sorted({e.asset_key.to_user_string() for e in result.get_asset_materialization_events()})
    return RunOutcome(result.success, result.run_id, time.monotonic() - started, _failures(result), materialized)


def partitions_of_run(first: date, last: date) -> dict:
    """One day runs as its partition (as the schedule starts it), so Dagster records each check's result under
    that day; several days run as one range (a check's result then stands for the range: Dagster records it
    without a day, and shows the range's days as skipped for that check). So does a day Dagster does not list
    yet (today, a day to come: its daily partitions end with yesterday), which it would refuse as a partition."""
    if first == last and daily_partitions.has_partition_key(first.isoformat()):
        return {"partition_key": first.isoformat()}
    return {"tags": {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()}}


def run_retraining(
    day: date, instance: dg.DagsterInstance | None = None, progress: Callable[[str], None] | None = None
) -> RunOutcome:
    """The retraining job (candidates -> bias gate -> snapshot) for ``day``, as the sensor would start it.
    ``progress``, if given, receives a line as each step starts and ends (see StepProgress)."""
    return _run_job("retraining", day, day, str(day), instance, progress)
