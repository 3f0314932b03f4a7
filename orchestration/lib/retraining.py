"""When does a model need retraining, and may its snapshot be built? Rules over alert, health and gate rows (pure pandas)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

REQUEST_SCHEMA = {
    "date": "DATE",
    "model_id": "VARCHAR",
    "reason": "VARCHAR",
    "evidence": "VARCHAR",
    "snapshot_path": "VARCHAR",
    "status": "VARCHAR",
    "status_reason": "VARCHAR",
}
DRIFT_METRICS = ("psi", "expected_calibration_error")
# set by the retraining job, not by the rules: a request it acted on stays on record
ACTED_ON = ("snapshot_ready", "blocked")


def snapshot_path(exports: str, model_id: str, day: date) -> str:
    return f"{exports}/training/model={model_id}/date={day.isoformat()}/snapshot.parquet"


# retraining floor -> the model_health_daily column it bounds
FLOOR_METRICS = {"min_precision": "precision", "min_recall": "recall"}


def retraining_requests(
    alerts: pd.DataFrame,
    health: pd.DataFrame,
    rules: dict,
    min_labelled: int,
    day: date,
    exports: str,
    floors: dict[str, dict[str, float]] | None = None,
    psi_min_count: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Requests raised on ``day``, from the alert and health rows dated up to ``day``.

    A model is due when drift or calibration alerts cover ``rules['persist_days']``
    consecutive days ending no more than two days before ``day`` (calibration
    needs a day or two of labels), or, only for a model whose project file sets a
    floor (``floors``: model -> {min_precision, min_recall}), when a day with at
    least ``min_labelled`` labels in the last ``persist_days`` days had precision
    (recall) below it. Without a floor, a precision drop is an alert, not a request.
    Only the alerts' own dates count (not when a run detected them), so a
    backfill and day-by-day runs raise the same requests. Days count as the
    model's days with predictions (``health``'s rows with predictions), where it
    has them: a weekday-only model's weekends neither break nor end a streak
    (its requests repeated every week); else calendar days. A prediction day too
    small to judge (fewer predictions than the PSI rule's ``psi_min_count`` of the
    model and fewer than ``min_labelled`` labels, so no drift or calibration
    verdict, and no alert) does not count either: it neither continues nor ends an
    episode (one continuous drift raised two requests across a few tiny days).
    """
    k, floors, psi_min_count = int(rules["persist_days"]), floors or {}, psi_min_count or {}
    until = pd.Timestamp(day)
    alerts = alerts[pd.to_datetime(alerts["date"]) <= until]
    health = health[pd.to_datetime(health["date"]) <= until]
    rows = []
    for model_id in sorted(set(alerts["model_id"]) | set(health["model_id"])):
        reasons, evidence = [], {}
        drift = alerts[(alerts["model_id"] == model_id) & alerts["metric"].isin(DRIFT_METRICS)]
        alert_days = {pd.Timestamp(d).date() for d in drift["date"]}
        kinds = drift.assign(day=pd.to_datetime(drift["date"]).dt.date).groupby("day")["metric"].agg(set).to_dict()
        judged = _days_of(health, model_id, day, psi_min_count.get(model_id, 0), min_labelled, kinds)
        for streak in _streaks(judged, k):
            if all(d in alert_days for d in streak):
                end = streak[-1]
                reasons.append(f"drift/calibration alerts on {k} consecutive days up to {end}")
                dates = pd.to_datetime(drift["date"])
                recent = drift[(dates >= pd.Timestamp(streak[0])) & (dates <= pd.Timestamp(end))]
                evidence["worst"] = recent.groupby("metric")["value"].max().round(4).to_dict()
                break
        recent_health = health[
            (health["model_id"] == model_id)
            & (health["labelled"] >= min_labelled)
            & (pd.to_datetime(health["date"]) > pd.Timestamp(day - timedelta(days=k)))
        ]
        for key, metric in FLOOR_METRICS.items():
            floor = floors.get(model_id, {}).get(key)
            if floor is None:
                continue
            low = recent_health[recent_health[metric] < float(floor)]
            if len(low):
                reasons.append(f"{metric} below {float(floor)}")
                evidence[metric] = {
                    str(pd.Timestamp(d).date()): round(float(p), 4) for d, p in zip(low["date"], low[metric])
                }
        if reasons:
            rows.append(
                {
                    "date": day,
                    "model_id": model_id,
                    "reason": "; ".join(reasons),
                    "evidence": json.dumps(evidence, sort_keys=True),
                    "snapshot_path": snapshot_path(exports, model_id, day),
                    "status": "requested",
                    "status_reason": None,
                }
            )
    return pd.DataFrame(rows, columns=list(REQUEST_SCHEMA))


def _days_of(
    health: pd.DataFrame,
    model_id: str,
    day: date,
    min_predictions: float,
    min_labelled: int,
    alert_kinds: dict[date, set[str]],
) -> list[date]:
    """The days up to ``day`` a streak counts, oldest first: the model's days with predictions (``health`` rows)
    with an alert (``alert_kinds``: day -> its alerts' metrics), or judged calm on what the alerts before them were
    about: drift with at least ``min_predictions`` predictions, calibration with ``min_labelled`` labels (a day
    too small for drift whose few labels pass calibration says nothing of a drift that goes on: a trial's one
    drift raised four requests across such days). Without prediction rows, the calendar days of the last persist
    window (a few weeks back)."""
    if "predictions" in health:
        rows = health[(health["model_id"] == model_id) & (health["predictions"] > 0)]
        if len(rows):
            totals = rows.assign(date=pd.to_datetime(rows["date"]).dt.date).groupby("date")[["predictions", "labelled"]]
            totals = totals.sum()  # a day served by two versions is judged on both together
            counted, last_kinds = [], set(DRIFT_METRICS)
            for d, predictions, labelled in totals.itertuples():
                if d in alert_kinds:
                    counted.append(d)
                    last_kinds = alert_kinds[d]
                    continue
                judged = {"psi"} if predictions >= min_predictions else set()
                judged |= {"expected_calibration_error"} if labelled >= min_labelled else set()
                if judged & last_kinds:
                    counted.append(d)
            return counted
    return [day - timedelta(days=i) for i in range(CALENDAR_DAYS, -1, -1)]


CALENDAR_DAYS = 60  # calendar days a streak may span without prediction days (far more than persist_days)


def _streaks(days: list[date], k: int) -> list[list[date]]:
    """The runs of ``k`` consecutive ``days`` ending on one of the last three (the newest first): calibration needs
    a day or two of labels."""
    return [days[len(days) - lag - k : len(days) - lag] for lag in range(3) if len(days) - lag - k >= 0]


def requests_between(
    alerts: pd.DataFrame,
    health: pd.DataFrame,
    rules: dict,
    min_labelled: int,
    first: date,
    last: date,
    exports: str,
    floors: dict[str, dict[str, float]] | None = None,
    psi_min_count: dict[str, float] | None = None,
) -> pd.DataFrame:
    """The requests of days ``first``..``last``: one per episode, on the first day a model is due.

    A model stays due while its alerts persist; asking again every day of the
    same episode would rebuild the same snapshot daily. The day before
    ``first`` is judged too, so an episode that began earlier raises nothing.
    """
    frames = [
        retraining_requests(
            alerts, health, rules, min_labelled, first + timedelta(days=i), exports, floors, psi_min_count
        )
        for i in range(-1, (last - first).days + 1)
    ]
    due = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(REQUEST_SCHEMA))
    due_days = {(m, pd.Timestamp(d).date()) for m, d in zip(due["model_id"], due["date"])}
    starts = pd.Series(
        [
            (m, pd.Timestamp(d).date() - timedelta(days=1)) not in due_days and pd.Timestamp(d).date() >= first
            for m, d in zip(due["model_id"], due["date"])
        ],
        index=due.index,
        dtype=bool,
    )
    return due[starts].reset_index(drop=True)


def pending_by_day(requests: pd.DataFrame) -> dict[str, list[str]]:
    """Requests the retraining job has not acted on: ISO day -> sorted model ids."""
    out: dict[str, list[str]] = {}
    for d, model_id in zip(
        requests.loc[requests["status"] == "requested", "date"],
        requests.loc[requests["status"] == "requested", "model_id"],
    ):
        out.setdefault(pd.Timestamp(d).date().isoformat(), []).append(model_id)
    return {d: sorted(models) for d, models in sorted(out.items())}


def keep_decisions(recomputed: pd.DataFrame, existing: pd.DataFrame) -> pd.DataFrame:
    """Recomputed requests with the retraining job's decisions of ``existing`` rows carried over.

    Re-evaluating a window must not forget that a snapshot was exported or
    blocked: such a row keeps its status and reason, and stays even if later
    labels mean the rules would no longer raise it. So does a blocked request
    re-queued (``requeue``: pending again, with a status_reason saying so).
    """
    key = ["date", "model_id"]
    recomputed = recomputed.assign(date=pd.to_datetime(recomputed["date"]))
    decided = existing["status"].isin(ACTED_ON) | existing["status_reason"].notna()
    acted = existing[decided].assign(date=lambda f: pd.to_datetime(f["date"]))
    merged = recomputed.merge(acted[[*key, "status", "status_reason"]], on=key, how="left", suffixes=("", "_decided"))
    decided = merged["status_decided"].notna()
    merged.loc[decided, "status"] = merged.loc[decided, "status_decided"]
    merged.loc[decided, "status_reason"] = merged.loc[decided, "status_reason_decided"]
    gone = acted.merge(recomputed[key], on=key, how="left", indicator=True)
    gone = gone[gone["_merge"] == "left_only"]
    out = pd.concat([merged[list(REQUEST_SCHEMA)], gone[list(REQUEST_SCHEMA)]], ignore_index=True)
    return out.sort_values(key).reset_index(drop=True)


NOT_CLEAN = " is not clean: "  # in a request blocked by its window's quality gates (snapshot_gate's reason)
REQUEUED = "re-queued: "  # starts the status_reason of a blocked request pending again (requeue)


@dataclass(frozen=True)
class SnapshotGate:
    passed: bool
    reason: str
    missing: dict[str, list[date]]  # table -> window days with no gate result (never validated)
    failed: dict[str, list[date]]  # table -> window days whose gate failed


def _days_text(days: list[date]) -> str:
    """Consecutive days as ranges: 2026-10-01..2026-10-03, 2026-10-07."""
    spans, start = [], None
    for i, d in enumerate(days):
        start = start or d
        if i + 1 == len(days) or days[i + 1] != d + timedelta(days=1):
            spans.append(str(start) if start == d else f"{start}..{d}")
            start = None
    return ", ".join(spans)


def snapshot_gate(gates: pd.DataFrame, tables: tuple[str, ...], first: date, last: date) -> SnapshotGate:
    """May a snapshot read ``tables`` over ``first``..``last``?

    ``gates``: quality.gate_results rows (date, table_name, passed). Every
    table needs, for every day, gate results that all passed: a failed gate or
    a day never validated blocks the snapshot.
    """
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    gates = gates.assign(date=pd.to_datetime(gates["date"]).dt.date)
    missing, failed = {}, {}
    for table in tables:
        rows = gates[gates["table_name"] == table]
        passed_by_day = rows.groupby("date")["passed"].all()
        lacking = [d for d in days if d not in passed_by_day.index]
        bad = [d for d in days if d in passed_by_day.index and not passed_by_day[d]]
        if lacking:
            missing[table] = lacking
        if bad:
            failed[table] = bad
    problems = [f"{t} failed its quality gate on {_days_text(d)}" for t, d in failed.items()]
    problems += [f"{t} has no quality gate result (not validated) on {_days_text(d)}" for t, d in missing.items()]
    reason = (
        (f"training window {first} .. {last}{NOT_CLEAN}" + "; ".join(problems))
        if problems
        else f"every input table ({', '.join(tables)}) passed its quality gate on every day {first} .. {last}"
    )
    return SnapshotGate(not problems, reason, missing, failed)


def blocked_by_gate(status: str, status_reason: str | None) -> bool:
    """Was the request blocked by its window's quality gates (not by a fairness verdict)? Only such a block
    can lift: when the user fixes and re-runs the failed days."""
    return status == "blocked" and isinstance(status_reason, str) and NOT_CLEAN in status_reason


def requeue(gate: SnapshotGate, status_reason: str) -> tuple[str, str]:
    """(status, status_reason) of a request blocked by its window's gates, judged again on today's gates: pending
    again once the window is clean, else still blocked with what is wrong now (not what was wrong then)."""
    if gate.passed:
        return "requested", f"{REQUEUED}{gate.reason} (blocked before: {status_reason})"
    return "blocked", gate.reason


def gate_digest(gates: pd.DataFrame) -> str:
    """A short digest of a training window's quality.gate_results rows: it changes when a day of the window is
    validated again with another outcome (a fixed day re-run), so a retry gets its own run key."""
    columns = sorted(gates.columns)
    rows = sorted(json.dumps([str(v) for v in row], sort_keys=True) for row in gates[columns].itertuples(index=False))
    return hashlib.sha256("\n".join([",".join(columns), *rows]).encode()).hexdigest()[:12]


NO_LABELS = "no labelled predictions known by "  # starts the status_reason of a request blocked for want of labels


def label_free(
    models: list[str], labelled: dict[str, int], predicted: dict[str, int], first: date, last: date
) -> dict[str, str]:
    """The requested ``models`` whose snapshot would hold no row (``labelled``: model -> candidate rows), and why.

    A snapshot for a request on ``last`` is point-in-time: it holds only the labels known by then, so rebuilding
    it later gives the same rows, and it reads only labels of days its quality gates checked. A window whose
    predictions (``predicted``: model -> count) are all labelled after ``last`` (a request on a model's first
    days, judged on labels that landed later) thus has none, and an empty snapshot cannot train a model: it is
    blocked, never 'snapshot_ready'. Such a block is final (the labels known by ``last`` do not change).
    """
    out = {}
    for model_id in models:
        if labelled.get(model_id, 0):
            continue
        n = predicted.get(model_id, 0)
        why = f"{n} prediction(s), none labelled by then: labels land later" if n else "no predictions in it"
        out[model_id] = (
            f"{NO_LABELS}{last} in the window {first} .. {last} ({why}); a snapshot as of {last} holds only the "
            f"labels known by {last} (point-in-time), and an empty one cannot train a model: not exported"
        )
    return out


def not_judged(models: list[str]) -> str:
    """Why the training bias check does not pass over candidates with no rows: no verdict is not a fair one."""
    return (
        f"not judged: the training candidates hold no labelled prediction of {', '.join(models)} "
        "(no rows to judge fairness on; nothing is exported, the requests' status_reason says why)"
    )
