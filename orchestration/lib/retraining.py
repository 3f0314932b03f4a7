"""When does a model need retraining, and may its snapshot be built? Rules over alert, health and gate rows (pandas; scipy
for the floors' binomial test)."""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_right
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


# retraining floor -> the model_health_daily column it bounds, and the counts of its hits and misses
FLOOR_METRICS = {"min_precision": "precision", "min_recall": "recall"}
FLOOR_COUNTS = {"precision": ("true_positives", "false_positives"), "recall": ("true_positives", "false_negatives")}
DRIFT_KIND = "drift/calibration"  # the kind of reason persisting alerts raise; a floor's kind is its metric


def retraining_requests(
    alerts: pd.DataFrame,
    health: pd.DataFrame,
    rules: dict,
    min_labelled: int,
    day: date,
    exports: str,
    floors: dict[str, dict[str, float]] | None = None,
    psi_min_count: dict[str, float] | None = None,
    psi_pool_days: dict[str, int] | None = None,
) -> pd.DataFrame:
    """Requests raised on ``day``, from the alert and health rows dated up to ``day``.

    A model is due when drift or calibration alerts cover ``rules['persist_days']``
    consecutive days ending no more than two days before ``day`` (calibration
    needs a day or two of labels), or, only for a model whose project file sets a
    floor (``floors``: model -> {min_precision, min_recall}), when a day with labels
    (any number: ``min_labelled`` is the drift and calibration rules' minimum, not the
    floors') in the last ``persist_days`` days had precision (recall) below it beyond
    sampling noise: a one-sided exact binomial test of the day's counts against the
    floor gives p < ``rules['floor_alpha']`` (0.01 unless set). Without a floor, a
    precision drop is an alert, not a request.
    Only the alerts' own dates count (not when a run detected them), so a
    backfill and day-by-day runs raise the same requests. Days count as the
    model's days with predictions (``health``'s rows with predictions), where it
    has them: a weekday-only model's weekends neither break nor end a streak
    (its requests repeated every week); else calendar days. A prediction day too
    small to judge (fewer predictions than the PSI rule's ``psi_min_count`` of the
    model and fewer than ``min_labelled`` labels, so no drift or calibration
    verdict, and no alert) does not count either: it neither continues nor ends an
    episode (one continuous drift raised two requests across a few tiny days).
    Unless its PSI was judged on its pool (``psi_pool_days``: the model's
    alerts.rules.psi.pool_days, 1 unless given): once the trailing pool_days
    calendar days hold ``psi_min_count`` predictions, a small day's pooled
    verdict (alert or calm) counts, but once per pool window: the days of one
    window share their values, so persist_days pooled days span persist_days
    windows of their own.
    """
    histories = _histories(alerts, health, min_labelled, floors or {}, psi_min_count or {}, psi_pool_days or {}, rules)
    due = _due(histories, day, int(rules["persist_days"]))
    rows = [_request(model_id, kinds, day, exports) for model_id, kinds in due.items()]
    return pd.DataFrame(rows, columns=list(REQUEST_SCHEMA))


@dataclass(frozen=True)
class _History:
    """One model's rows as every day of a range reads them. Each list is a scan in date order whose state depends on
    earlier days only, so a day's view is the part dated up to it: what a run of that day alone saw (a backfill
    once re-read and re-grouped every row for each of its days: 4 s of a 244-day run)."""

    first_row: date  # the model's first alert or health row: not judged before it
    prediction_days: list[date] | None  # the days a streak counts (_days_of); None: no prediction rows
    first_prediction: date | None
    drift: pd.DataFrame  # its drift and calibration alerts, 'when' their date as a timestamp
    alert_days: frozenset[date]
    below: dict[str, tuple[float, pd.DataFrame]]  # floor metric -> (floor, its labelled days below it beyond noise)


def _histories(
    alerts: pd.DataFrame,
    health: pd.DataFrame,
    min_labelled: int,
    floors: dict[str, dict[str, float]],
    psi_min_count: dict[str, float],
    psi_pool_days: dict[str, int],
    rules: dict,
    known_on: dict | None = None,
    floor_health: pd.DataFrame | None = None,
) -> dict[str, _History]:
    """Each model's _History, by model id in order. ``known_on``: (model_id, model_version, date, metric) -> the day
    a floor breach of that health row was first known (first_breach_day); a breach not in it counts on its own
    date. ``floor_health``: the rows the floors judge (default ``health``): older prediction days too, whose
    breaches were known within the range."""
    alpha = float(rules.get("floor_alpha", 0.01))
    alerts = alerts.assign(when=pd.to_datetime(alerts["date"]))
    health = health.assign(when=pd.to_datetime(health["date"]))
    known_on = known_on or {}
    floor_health = health if floor_health is None else floor_health.assign(when=pd.to_datetime(floor_health["date"]))
    out = {}
    for model_id in sorted(set(alerts["model_id"]) | set(health["model_id"]) | set(floor_health["model_id"])):
        mine = alerts[alerts["model_id"] == model_id]
        drift = mine[mine["metric"].isin(DRIFT_METRICS)]
        drift_days = drift["when"].dt.date
        rows = health[health["model_id"] == model_id]
        predicted = rows[rows["predictions"] > 0] if "predictions" in rows else rows.iloc[:0]
        floor_rows = floor_health[floor_health["model_id"] == model_id]
        labelled = floor_rows[floor_rows["labelled"] > 0]
        out[model_id] = _History(
            first_row=min(pd.concat([mine["when"], rows["when"], floor_rows["when"]])).date(),
            prediction_days=_days_of(
                predicted,
                (psi_min_count.get(model_id, 0), psi_pool_days.get(model_id, 1)),
                min_labelled,
                drift.assign(day=drift_days).groupby("day")["metric"].agg(set).to_dict(),
            )
            if len(predicted)
            else None,
            first_prediction=predicted["when"].min().date() if len(predicted) else None,
            drift=drift,
            alert_days=frozenset(drift_days),
            below={
                metric: (float(floor), _known(_below_floor(labelled, metric, float(floor), alpha), metric, known_on))
                for key, metric in FLOOR_METRICS.items()
                if (floor := floors.get(model_id, {}).get(key)) is not None and len(labelled)
            },
        )
    return out


def _due(histories: dict[str, _History], day: date, k: int) -> dict[str, dict[str, tuple[str, dict]]]:
    """What makes each model due on ``day`` (``retraining_requests``' rules), from the rows dated up to it: model ->
    kind -> (reason, evidence); a model that is not due is left out."""
    out = {}
    until = pd.Timestamp(day)
    for model_id, history in histories.items():
        if history.first_row > day:
            continue
        kinds = {}
        if history.prediction_days is not None and history.first_prediction <= day:
            judged = history.prediction_days[: bisect_right(history.prediction_days, day)]
        else:  # no prediction rows yet: the calendar days of the last persist window (a few weeks back)
            judged = [day - timedelta(days=i) for i in range(CALENDAR_DAYS, -1, -1)]
        for streak in _streaks(judged, k):
            if all(d in history.alert_days for d in streak):
                end, drift = streak[-1], history.drift
                recent = drift[(drift["when"] >= pd.Timestamp(streak[0])) & (drift["when"] <= pd.Timestamp(end))]
                worst = recent.groupby("metric")["value"].max().round(4).to_dict()
                kinds[DRIFT_KIND] = (f"drift/calibration alerts on {k} consecutive days up to {end}", {"worst": worst})
                break
        # every day with labels, not only those with min_labelled: the exact test guards a small day against
        # noise, and a trial's model of ~60 labels a day at 25 of 39 against 0.95 (p 1e-9) was never judged
        for metric, (floor, below) in history.below.items():
            low = below[(below["when"] > pd.Timestamp(day - timedelta(days=k))) & (below["when"] <= until)]
            if len(low):
                hits, misses = FLOOR_COUNTS[metric]
                days = [str(pd.Timestamp(d).date()) for d in low["date"]]  # the prediction days
                counts = [f"{x:.0f}/{x + n:.0f}" for x, n in zip(low[hits], low[misses])]
                evidence = {
                    metric: {d: round(float(v), 4) for d, v in zip(days, low[metric])},
                    f"{metric}_counts": dict(zip(days, counts)),
                }
                kinds[metric] = (f"{metric} below {floor}", evidence)
        if kinds:
            out[model_id] = kinds
    return out


def version_key(version) -> str | None:
    """A model version as the floors' breaches are keyed: its text, None for a missing one (NULL, NaN or NA)."""
    return None if pd.isna(version) else str(version)


def _known(below: pd.DataFrame, metric: str, known_on: dict) -> pd.DataFrame:
    """``below`` (a floor's breaching health rows) with 'when' the day each breach was first known."""
    if not known_on or below.empty:
        return below
    keys = zip(below["model_id"], map(version_key, below["model_version"]), pd.to_datetime(below["date"]).dt.date)
    known = [known_on.get((m, v, d, metric)) for m, v, d in keys]
    return below.assign(when=[pd.Timestamp(k) if k is not None else w for k, w in zip(known, below["when"])])


def floor_breaches(health: pd.DataFrame, floors: dict[str, dict[str, float]], alpha: float) -> list[tuple]:
    """(model_id, model_version, date, metric, floor) of every health row below a model's floor beyond noise (the
    rows _histories' floors judge)."""
    out = []
    for model_id, keys in floors.items():
        labelled = health[(health["model_id"] == model_id) & (health["labelled"] > 0)]
        for key, metric in FLOOR_METRICS.items():
            if (floor := keys.get(key)) is not None and len(labelled):
                low = _below_floor(labelled, metric, float(floor), alpha)
                dates = pd.to_datetime(low["date"]).dt.date
                out += [
                    (model_id, version_key(v), d, metric, float(floor)) for v, d in zip(low["model_version"], dates)
                ]
    return out


def first_breach_day(events: pd.DataFrame, metric: str, floor: float, alpha: float) -> date | None:
    """The first day whose known labels put one prediction day's ``metric`` below ``floor`` beyond noise (the
    floors' test), or None. ``events``: the label events of that day's predictions (of one model version) within
    its label horizon: prediction_id, decision, label, priority (a human review's 2 outranks 1), at (when). A
    prediction's label as of a day is its events' by then, resolved as the marts resolve them (priority, then the
    latest). A breach found from labels months after the predictions is a request of the day it was known, so
    its snapshot (point-in-time) holds them: dated on the prediction day it could hold none (a trial's deaths)."""
    from scipy.stats import binom

    if events.empty:
        return None
    events = events.assign(day=pd.to_datetime(events["at"]).dt.date).sort_values(["day", "priority", "at"])
    resolved: dict = {}  # prediction -> ((priority, at), decision, label) of its ranking event so far
    hits = trials = 0  # one pass: each event updates its prediction's counts (a day of 10k: one regroup per label day)

    def counted(decision: bool, label) -> tuple[int, int]:
        positive = label == 1
        return int(decision and positive), int(decision if metric == "precision" else positive)

    days = events["day"].to_numpy()
    for i, (pid, decision, label, rank) in enumerate(
        zip(
            events["prediction_id"],
            events["decision"].astype(bool),
            events["label"],
            zip(events["priority"], events["at"]),
        )
    ):
        before = resolved.get(pid)
        if before is None or rank >= before[0]:
            if before is not None:
                h, t = counted(before[1], before[2])
                hits, trials = hits - h, trials - t
            resolved[pid] = (rank, decision, label)
            h, t = counted(decision, label)
            hits, trials = hits + h, trials + t
        last_of_day = i + 1 == len(days) or days[i + 1] != days[i]
        if last_of_day and trials and binom.cdf(hits, trials, floor) < alpha:
            return days[i]
    return None


def _below_floor(rows: pd.DataFrame, metric: str, floor: float, alpha: float) -> pd.DataFrame:
    """The ``rows`` whose precision (recall) is below ``floor`` beyond sampling noise: P(X <= hits) < ``alpha`` for
    X ~ Binomial(hits + misses, floor). The point estimate alone is noise on a small day: 1 spam of 3 flagged
    (0.33 vs a floor of 0.6, p = 0.35) kept a trial's spam filter due for a month."""
    from scipy.stats import binom  # scipy.stats is slow to import: only where a floor is judged

    hits, misses = FLOOR_COUNTS[metric]
    lacking = [c for c in (hits, misses) if c not in rows.columns]
    if lacking:
        raise ValueError(f"model_health_daily rows lack {lacking}: the {metric} floor needs the day's confusion counts")
    x = rows[hits].astype(float)
    return rows[binom.cdf(x, x + rows[misses].astype(float), floor) < alpha]


def _request(model_id: str, kinds: dict[str, tuple[str, dict]], day: date, exports: str) -> dict:
    """A request row naming every kind of reason due on ``day``."""
    return {
        "date": day,
        "model_id": model_id,
        "reason": "; ".join(reason for reason, _ in kinds.values()),
        "evidence": json.dumps({k: v for _, evidence in kinds.values() for k, v in evidence.items()}, sort_keys=True),
        "snapshot_path": snapshot_path(exports, model_id, day),
        "status": "requested",
        "status_reason": None,
    }


def _days_of(rows: pd.DataFrame, psi_rule: tuple[float, int], min_labelled: int, alert_kinds: dict) -> list[date]:
    """The days a streak counts, oldest first: the model's days with predictions (``rows``: its health rows with
    predictions, 'when' their date) with an alert (``alert_kinds``: day -> its alerts' metrics), or judged calm on
    what the alerts before them were about: drift with at least min_predictions predictions (``psi_rule``:
    min_predictions, pool_days), calibration with ``min_labelled`` labels (a day too small for drift whose few labels
    pass calibration says nothing of a drift that goes on: a trial's one drift raised four requests across such
    days). A day too small for both counts only where its drift was judged on its pool (the trailing pool_days days
    hold min_predictions), once per pool window."""
    min_predictions, pool_days = psi_rule
    totals = rows.assign(date=rows["when"].dt.date).groupby("date")[["predictions", "labelled"]]
    totals = totals.sum()  # a day served by two versions is judged on both together
    pooled = _trailing_sums(totals["predictions"], pool_days)
    counted, last_kinds, last_pooled = [], set(DRIFT_METRICS), None
    for d, predictions, labelled in totals.itertuples():
        small = predictions < min_predictions and labelled < min_labelled
        if small:
            in_last_window = last_pooled is not None and (d - last_pooled).days < pool_days
            if in_last_window or not (d in alert_kinds or pooled[d] >= min_predictions):
                continue
            last_pooled = d
        if d in alert_kinds:
            counted.append(d)
            last_kinds = alert_kinds[d]
            continue
        judged = {"psi"} if predictions >= min_predictions or small else set()
        judged |= {"expected_calibration_error"} if labelled >= min_labelled else set()
        if judged & last_kinds:
            counted.append(d)
    return counted


def _trailing_sums(by_day: pd.Series, days: int) -> dict[date, float]:
    """Each day's sum of ``by_day`` (indexed by date) over the ``days`` calendar days ending on it."""
    series = pd.Series(by_day.to_numpy(float), index=pd.to_datetime(by_day.index))
    sums = series.rolling(f"{days}D").sum()
    return dict(zip(by_day.index, sums))


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
    psi_pool_days: dict[str, int] | None = None,
    known_on: dict | None = None,
    floor_health: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The requests of days ``first``..``last``: one per episode of each kind of reason (drift/calibration, each
    floor's metric), on the first day the model is due for it, naming every reason due that day.

    A model stays due while its alerts persist; asking again every day of the
    same episode would rebuild the same snapshot daily. Episodes are per kind: a
    month of noisy floor breaches once swallowed the drift requests that began
    inside it. The day before ``first`` is judged too, so an episode that began
    earlier raises nothing.
    """
    histories = _histories(
        alerts,
        health,
        min_labelled,
        floors or {},
        psi_min_count or {},
        psi_pool_days or {},
        rules,
        known_on,
        floor_health,
    )
    days = [first + timedelta(days=i) for i in range(-1, (last - first).days + 1)]
    due = {d: _due(histories, d, int(rules["persist_days"])) for d in days}
    rows = [
        _request(model_id, kinds, d, exports)
        for before, d in zip(days, days[1:])
        for model_id, kinds in due[d].items()
        if set(kinds) - set(due[before].get(model_id, {}))
    ]
    return pd.DataFrame(rows, columns=list(REQUEST_SCHEMA))


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


ONE_CLASS = "labels of one class only known by "  # starts the status_reason of a request blocked for it


def one_class(
    models: list[str], labelled: dict[str, int], positives: dict[str, int], first: date, last: date
) -> dict[str, str]:
    """The requested ``models`` whose snapshot's labels (``labelled``: model -> candidate rows, ``positives``: those
    labelled 1) are all of one class, and why. A classifier cannot be trained on one class: a trial's precision-floor
    request, whose flagged patients' labels landed two years after their day, exported 4 rows all positive (the
    early outcomes) as 'snapshot_ready'. Blocked, as an empty snapshot is, and as finally (the labels known by
    ``last`` do not change)."""
    out = {}
    for model_id in models:
        rows, ones = labelled.get(model_id, 0), positives.get(model_id, 0)
        if not rows or 0 < ones < rows:
            continue
        only = "positive (1)" if ones else "negative (0)"
        out[model_id] = (
            f"{ONE_CLASS}{last}: the {rows} labelled prediction(s) of the window {first} .. {last} are all {only}; "
            f"a snapshot as of {last} holds only the labels known by {last} (point-in-time: the others land later), "
            "and one class cannot train a classifier: not exported"
        )
    return out


@dataclass(frozen=True)
class LabelTiming:
    """What says why a snapshot's labels are few: when the model's predictions in the window ``began``, its label
    horizon (``models.<id>.label_horizon_days``) and ``retraining.training_window_days``."""

    began: date | None
    horizon_days: int
    window_days: int


def coverage_note(
    rows: int, predicted: int, first: date | None, last: date | None, day: date, timing: LabelTiming
) -> str | None:
    """A note for an exported snapshot holding under half its window's predictions (``rows`` of ``predicted``,
    predicted ``first`` .. ``last``), or None: the labels known by ``day`` are those that landed first (a trial's
    drift request exported 132 of 2,069, all from before the drift, as 'snapshot_ready' with nothing said)."""
    if not predicted or rows * 2 >= predicted:
        return None
    return (
        f"exported with {rows:,} of the window's {predicted:,} predictions ({rows / predicted:.0%}): those labelled "
        f"by {day}, predicted {first} .. {last}; {_later_labels(day, timing)}"
    )


def _later_labels(day: date, timing: LabelTiming) -> str:
    """Why the rest of a window's labels are not there yet. A longer window helps only where the window is not
    longer than the label horizon: a trial's request on its model's first day (a 28-day window, a 10-day horizon)
    held 3 of 66 predictions, and the note's advice to lengthen the window fitted nothing."""
    horizon = timing.horizon_days
    if timing.began is not None and (day - timing.began).days < horizon:
        ago = (day - timing.began).days
        return (
            f"the model's predictions in the window began on {timing.began}, {ago} day(s) before the request, "
            f"within the label horizon ({horizon} days): the rest's labels land later, if at all"
        )
    if timing.window_days <= horizon:
        return (
            f"the rest's labels land later, if at all (training_window_days {timing.window_days} is not above the label "
            f"horizon of {horizon} days: a longer window holds matured labels)"
        )
    return "the rest's labels land later, if at all"


FAIRNESS_UNASSESSED = "fairness not assessed: "  # starts the note of a snapshot whose groups were too small to judge
NOT_ASSESSED_KEY = "not_assessed"  # the training bias check's metadata holding that note (`retrain` prints it)


def unassessed(verdicts: pd.DataFrame, models: list[str]) -> list[str]:
    """The ``models`` whose training bias verdicts (``bias_verdicts`` rows) all compared nothing: no attribute had
    two groups big enough. Their check passes (no verdict is not a failure), which is no finding of fairness."""
    from orchestration.lib.bias import assessed  # the bias module is heavy: only where verdicts are judged

    return [m for m in models if not any(assessed(v) for _, v in verdicts[verdicts["model_id"] == m].iterrows())]


def unassessed_note(verdicts: pd.DataFrame, models: list[str]) -> str:
    """What the CLI and the request say of ``models`` whose snapshot no verdict judged (``unassessed``): a trial's
    3-row snapshot showed its blocking check as '1 check(s) passed' in `retrain`, and nothing more."""
    rows = verdicts[verdicts["model_id"].isin(models)]
    limit = rows["min_predictions"].max() if "min_predictions" in rows and len(rows) else None  # as applied
    size = f"fewer than {limit:g} rows per group" if pd.notna(limit) else "too few rows per group"
    return (
        f"{FAIRNESS_UNASSESSED}{size} in the snapshot of {', '.join(models)} (bias.min_predictions, or "
        "bias.min_labelled where lower: no two groups of any attribute to compare); it passes, blocking nothing, "
        "and is no finding of fairness"
    )


def ready_reason(before: str | None, coverage: str | None) -> str | None:
    """The status_reason of an exported snapshot: the bias check's note that no verdict judged it (``before``, the
    request's status_reason as the check left it) and its coverage note, either or both or None."""
    kept = before if isinstance(before, str) and before.startswith(FAIRNESS_UNASSESSED) else None
    return "; ".join(n for n in (kept, coverage) if n) or None


def not_judged(models: list[str]) -> str:
    """Why the training bias check does not pass over candidates with no rows: no verdict is not a fair one."""
    return (
        f"not judged: the training candidates hold no labelled prediction of {', '.join(models)} "
        "(no rows to judge fairness on; nothing is exported, the requests' status_reason says why)"
    )
