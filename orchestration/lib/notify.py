"""Alert notifications: new rows of marts.alerts, failed quality gates, fairness verdicts that start failing and
failed runs, sent once each.

Pure Python (no Dagster): the sensor in orchestration/defs/notify/ reads the
analysts' snapshot and the failed gate checks of Dagster's event log, and hands
the rows here. Each alert incident (model, metric, subject and its first day
of a run of alerting days), each failed gate (suite, date), each failed run (its days and step) and each
fairness failure (model, attribute and the first failing window of a run of failing ones)
has a stable dedup key; a key already sent is never sent again, even when the alert lookback
re-evaluates old days. Notifiers are pluggable; the default ones write to the log and to a
JSON-lines file, a webhook is added only when configured.
"""

from __future__ import annotations

import json
import logging
import math
import os
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from orchestration.lib.settings import dbt_var

WEBHOOK_ENV = "IMPACT_LEDGER_ALERT_WEBHOOK"
NOTIFICATIONS_FILE = "notifications.jsonl"
# Older rows are history, not news: the sender ignores them and forgets their
# keys. Must exceed how far back every run re-evaluates alerts (the fixed
# label_lookback_days window plus the run's own range). A breach that late labels
# reveal on an older day (up to the label horizon) is computed only when they land:
# load_notify_config widens the horizon to the longest label horizon + 1 day.
DEFAULT_HORIZON_DAYS = 31


@dataclass(frozen=True)
class Notification:
    kind: str  # 'alert' | 'gate' | 'run' (a run that failed at a step) | 'fairness' (a verdict started failing)
    date: str  # the day the breach / gate is about, a failed run's first day, a fairness failure's first (YYYY-MM-DD)
    model_id: str | None
    metric: str  # alert: the rule's metric; gate: 'quality_gate'; run: 'run_failed'; fairness: 'fairness'
    subject: str  # alert: the feature for PSI ('' otherwise); gate: the suite; run: the step; fairness: the attribute
    value: float | None
    threshold: float | None
    message: str
    # the last day it is about, when more than `date`: a failed run's last day (part of its key); the last window
    # of a fairness failure or the last day of a version change (not part of their keys: they grow while it
    # lasts, which is one notification)
    until: str | None = None

    @property
    def dedup_key(self) -> str:
        parts = (self.kind, self.date, self.model_id or "", self.metric, self.subject)
        return "|".join(parts + ((self.until,) if self.until and self.kind == "run" else ()))

    @property
    def last_day(self) -> str:
        """The day the horizon judges it by (and the cursor keeps its key by)."""
        return max(self.date, self.until or self.date)

    def as_dict(self) -> dict:
        return {**asdict(self), "dedup_key": self.dedup_key}


class Notifier(Protocol):
    name: str

    def send(self, notifications: Sequence[Notification]) -> None: ...


class LogNotifier:
    name = "log"

    def __init__(self, logger: logging.Logger | logging.LoggerAdapter):
        self.logger = logger

    def send(self, notifications: Sequence[Notification]) -> None:
        for n in notifications:
            self.logger.warning(f"[{n.kind}] {n.message}")


class JsonLinesNotifier:
    """Appends one JSON object per notification to <dir>/notifications.jsonl (a durable, greppable record)."""

    name = "jsonl"

    def __init__(self, directory: Path, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.path = Path(directory) / NOTIFICATIONS_FILE
        self.clock = clock

    def send(self, notifications: Sequence[Notification]) -> None:
        if not notifications:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        sent_at = self.clock().isoformat(timespec="seconds")
        with self.path.open("a", encoding="utf-8") as out:
            for n in notifications:
                out.write(json.dumps({**n.as_dict(), "sent_at": sent_at}) + "\n")


def _urllib_post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (a configured https URL)
        return response.status


class WebhookNotifier:
    """One JSON POST per batch: {"text": summary, "notifications": [...]} (Slack-compatible `text`).

    ``post(url, body, headers, timeout) -> HTTP status`` is the network boundary,
    injectable so tests never call the network.
    """

    name = "webhook"

    def __init__(
        self,
        url: str,
        post: Callable[[str, bytes, Mapping[str, str], float], int] = _urllib_post,
        timeout: float = 10.0,
    ):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"alert webhook URL must start with http:// or https://, got {url!r}")
        self.url, self.post, self.timeout = url, post, timeout

    @staticmethod
    def payload(notifications: Sequence[Notification]) -> dict:
        lines = [f"[{n.kind}] {n.message}" for n in notifications]
        return {
            "text": f"Impact Ledger: {len(notifications)} new notification(s)\n" + "\n".join(lines),
            "notifications": [n.as_dict() for n in notifications],
        }

    def send(self, notifications: Sequence[Notification]) -> None:
        if not notifications:
            return
        body = json.dumps(self.payload(notifications)).encode()
        status = self.post(self.url, body, {"Content-Type": "application/json"}, self.timeout)
        if not 200 <= status < 300:
            raise RuntimeError(f"alert webhook answered HTTP {status}")


@dataclass(frozen=True)
class NotifyConfig:
    webhook_url: str | None = None
    horizon_days: int = DEFAULT_HORIZON_DAYS  # in effect: notify.horizon_days, widened to the label horizons


def load_notify_config(path: Path | None = None, env: Mapping[str, str] = os.environ) -> NotifyConfig:
    """The project file's `notify:` section (or the one at ``path``); env IMPACT_LEDGER_ALERT_WEBHOOK overrides webhook_url.

    The horizon is notify.horizon_days, or the longest models.<id>.label_horizon_days + 1 where that is longer."""
    from orchestration.lib.project_config import ConfigError, config_dbt_vars, load_config

    try:
        config = load_config(Path(path) if path else None)
    except ConfigError as err:
        raise ValueError(str(err)) from None
    path = config.path or "project config"
    section = config.notify.model_dump()
    source, url = (
        (WEBHOOK_ENV, env[WEBHOOK_ENV])
        if env.get(WEBHOOK_ENV)
        else (f"{path}: notify.webhook_url", section.get("webhook_url"))
    )
    if url and not str(url).startswith(("http://", "https://")):
        raise ValueError(f"{source} must be an http(s) URL, got {url!r}")
    horizon = section.get("horizon_days", DEFAULT_HORIZON_DAYS)
    # the fixed window every run re-evaluates, the run's day and a day of slack (older days re-evaluated
    # because late labels arrived are history unless the horizon reaches them)
    shortest = int(config_dbt_vars(config.config).get("label_lookback_days", dbt_var("label_lookback_days"))) + 2
    if "horizon_days" not in config.notify.model_fields_set:
        # unset: the default reaches the lookback by itself (a trial's label_coverage after_days 30 made the
        # lookback 30, and the unset horizon, 31, failed the run's notifications after an `ok` run)
        horizon = max(horizon, shortest)
    elif not isinstance(horizon, int) or horizon < shortest:
        raise ValueError(
            f"{path}: notify.horizon_days must be an integer >= {shortest} (alerts are re-evaluated "
            f"label_lookback_days back; a shorter horizon would send them again), got {horizon!r}"
        )
    # a label-based alert of a day (precision, calibration) is computed only once its labels land, up to the
    # longest label horizon later (and a day more in hours): the horizon reaches that far whatever is set
    horizon = max(horizon, config.max_label_horizon_days + 1)
    return NotifyConfig(webhook_url=url or None, horizon_days=horizon)


def build_notifiers(logger, alerts_directory: Path, config: NotifyConfig) -> list[Notifier]:
    notifiers: list[Notifier] = [LogNotifier(logger), JsonLinesNotifier(alerts_directory)]
    if config.webhook_url:
        notifiers.append(WebhookNotifier(config.webhook_url))
    return notifiers


def dispatch(notifications: Sequence[Notification], notifiers: Iterable[Notifier], logger) -> dict[str, str]:
    """Send to every notifier; one failing (e.g. webhook down) is logged and does not stop the others.

    Returns notifier name -> error for the ones that failed.
    """
    failed = {}
    for notifier in notifiers:
        try:
            notifier.send(notifications)
        except Exception as err:  # any notifier error: log it, keep going
            logger.error(f"notifier {notifier.name} failed to send {len(notifications)} notification(s): {err}")
            failed[notifier.name] = str(err)
    return failed


def _number(value) -> float | None:
    return None if value is None or pd.isna(value) or not math.isfinite(float(value)) else float(value)


def _day(value) -> str:
    return pd.Timestamp(value).date().isoformat()


def _day_numbers(dates) -> np.ndarray:
    return pd.to_datetime(pd.Series(dates)).to_numpy(dtype="datetime64[D]").astype(np.int64)


def _incidents(alerts: pd.DataFrame, prediction_days: pd.DataFrame | None) -> list[pd.DataFrame]:
    """marts.alerts rows split into incidents: one model's alerts of one metric and subject (versions collapse) on
    days in a row. A day the model made predictions without that alert ends one; days it made none (a weekend, a
    weekly batch's gap) do not; with no days known for the model, only consecutive calendar days continue one. A
    version change (breaching on up to 7 of its version's first days) is one incident per version and subject."""
    active: dict[str, np.ndarray] = {}
    if prediction_days is not None:
        for model, days in prediction_days.groupby("model_id")["date"]:
            active[model] = np.sort(_day_numbers(days))
    rows = alerts.assign(
        subject=alerts["subject"].fillna(""),
        day=_day_numbers(alerts["date"]),
        version_=alerts["model_version"].where(alerts["metric"] == "version_change", ""),
    ).sort_values(["date", "model_id", "metric", "subject"], kind="stable")
    out = []
    for (model, metric, _, _), same in rows.groupby(["model_id", "metric", "subject", "version_"], sort=False):
        days = np.unique(same["day"].to_numpy())
        made = active.get(model)
        if metric == "version_change":
            breaks = np.zeros(len(days) - 1, dtype=bool)
        elif made is None:
            breaks = np.diff(days) > 1
        else:  # a prediction day strictly between two alert days
            breaks = np.searchsorted(made, days[1:]) - np.searchsorted(made, days[:-1], side="right") > 0
        run_of_day = dict(zip(days, np.concatenate([[0], np.cumsum(breaks)]), strict=True))
        out += [run for _, run in same.groupby(same["day"].map(run_of_day), sort=False)]
    return out


def alert_notifications(alerts: pd.DataFrame, prediction_days: pd.DataFrame | None = None) -> list[Notification]:
    """marts.alerts rows -> one notification per incident (_incidents; ``prediction_days``: model_id, date of each
    day a model made predictions), dated its first day with that day's figures, ``until`` its last (not in the key:
    an incident that goes on is not news again; one that ends and comes back is). A trial's drift of three weeks
    was 21 notifications a feature; fairness failures were already sent once per run of failing windows."""
    out = []
    for run in _incidents(alerts, prediction_days):
        r = run.iloc[0]
        first, until = _day(r["date"]), _day(run["date"].max())
        subject = r["subject"]
        about = f"{r['metric']}" + (f" of {subject}" if subject else "")
        value = _number(r["value"])
        lasting = ""
        if until != first and r["metric"] == "version_change":
            lasting = f" (and on its version's days through {until})"
        elif until != first:
            # the worst day: the lowest of a rule breached below its threshold (label coverage, a precision drop)
            below = _number(r["threshold"]) is not None and value is not None and value < float(r["threshold"])
            valued = run["value"].notna().any()
            peak = (run.loc[run["value"].idxmin() if below else run["value"].idxmax()]) if valued else r
            lasting = (
                f" (alerting on {run['day'].nunique()} days through {until}, {'lowest' if below else 'highest'} "
                f"{'n/a' if _number(peak['value']) is None else round(float(peak['value']), 4)} on {_day(peak['date'])})"
            )
        out.append(
            Notification(
                kind="alert",
                date=first,
                model_id=r["model_id"],
                metric=r["metric"],
                subject=subject,
                value=value,
                threshold=_number(r["threshold"]),
                message=(
                    f"{r['model_id']} ({r['model_version']}) on {first}{lasting}: {about} = "
                    f"{'n/a' if value is None else round(value, 4)}, rule {r['rule']}"
                ),
                until=until if until != first else None,
            )
        )
    return sorted(out, key=lambda n: (n.date, n.model_id, n.metric, n.subject))


GROUPED_AT = 5  # a model's new alerts of one metric and day on more subjects than this are sent as one notification
GROUPED_NAMED = 10  # the subjects (highest values first) a grouped notification names


def grouped(notes: list[Notification]) -> list[Notification]:
    """The notifications to send (select_new's, each still deduplicated by its own key): one per model, metric and
    day whose new alerts are about more than GROUPED_AT subjects (subject '*', the highest value, its subjects
    named): a trial's 64 pixel features over 11 one-vs-rest views sent 929 drift notifications in one tick. A
    subject alerting on that day in a later run is sent then (grouped with the others new then)."""
    by_day: dict[tuple, list[Notification]] = {}
    for n in notes:
        by_day.setdefault((n.date, n.model_id, n.metric), []).append(n)
    out = []
    for (day, model, metric), same in by_day.items():
        if len(same) <= GROUPED_AT:
            out += same
            continue
        ranked = sorted(same, key=lambda n: (n.value is None, -(n.value or 0), n.subject))
        named = ", ".join(
            f"{n.subject} {'n/a' if n.value is None else round(n.value, 4)}" for n in ranked[:GROUPED_NAMED]
        )
        more = f" and {len(ranked) - GROUPED_NAMED} more" if len(ranked) > GROUPED_NAMED else ""
        top = ranked[0]
        rule = top.message.split(", rule ", 1)[-1]
        # the model and its version as the single alerts say them ("m (v2)")
        who = top.message[: top.message.index(") on ") + 1] if top.message.startswith(f"{model} (") else model
        out.append(
            replace(
                top,
                subject="*",
                message=f"{who} on {day}: {metric} of {len(same)} subjects: {named}{more} (highest first; rule {rule})",
            )
        )
    return out


def gate_notifications(gates: pd.DataFrame) -> list[Notification]:
    """Failed rows of quality.gate_results -> notifications (one per suite and date)."""
    failed = gates[~gates["passed"].astype(bool)].sort_values(["date", "suite"])
    return [
        Notification(
            kind="gate",
            date=_day(r.date),
            model_id=None,
            metric="quality_gate",
            subject=r.suite,
            value=_number(r.rows_validated),
            threshold=None,
            message=_gate_message(r),
        )
        for r in failed.itertuples(index=False)
    ]


# The windows where a (model, attribute) verdict starts failing (its first, or the first after a passing or
# not-assessed one: a pass within noise is a pass), each with `until`, the last window of that run of failing
# ones; the whole history is read so that a failure that began long ago is not taken for a new one. {scope}: the
# windows read (all; with the health mart, those ending by the model's last prediction day: the later ones hold
# fewer and fewer of its days, and a trial's flickered fail, pass, fail, a second notification 53 days after the
# model stopped).
# the verdicts failing in a window as bits, in bias.PASS_COLUMNS' order (a failed one is false; NULL: not judged)
FAILING_BITS = " + ".join(
    f"CASE WHEN NOT coalesce({c}, true) THEN {1 << i} ELSE 0 END"
    for i, c in enumerate(
        ("passes_disparate_impact", "passes_equal_opportunity", "passes_equalized_odds", "passes_calibration")
    )
)
# A window where a verdict starts failing: the pair's first failing window, or one where a verdict fails that did not
# in the window before (a trial's equal opportunity, failing beyond noise once late labels landed, was never sent:
# disparate impact had been failing for months). `until`: the last window of the pair's run of failing ones.
FAIRNESS_SQL = f"""
WITH judged AS (
    SELECT *, coalesce(NOT passed, false) AS failing_, {FAILING_BITS} AS bits_ FROM marts.bias_verdicts v WHERE {{scope}}
), marked AS (
    SELECT *, failing_ AND NOT coalesce(lag(failing_) OVER pair, false) AS onset_,
           bits_ & ~coalesce(lag(bits_) OVER pair, 0) AS newly_failing
    FROM judged WINDOW pair AS (PARTITION BY model_id, attribute ORDER BY date)
), numbered AS (
    SELECT *, sum(onset_::INTEGER) OVER (PARTITION BY model_id, attribute ORDER BY date) AS run_ FROM marked
), spans AS (
    SELECT *, max(CASE WHEN failing_ THEN date END) OVER (PARTITION BY model_id, attribute, run_) AS until
    FROM numbered
)
SELECT * EXCLUDE (failing_, onset_, run_, bits_) FROM spans WHERE (onset_ OR newly_failing > 0) AND until >= ?
"""


def fairness_notifications(onsets: pd.DataFrame) -> list[Notification]:
    """Rows of FAIRNESS_SQL (marts.bias_verdicts rows where a verdict starts failing, with `until` and the bits of
    the verdicts `newly_failing`) -> one notification each: the metric(s), value, limit and disadvantaged groups of
    that window; where others were failing already, the newly failing one's value and limit, said as such."""
    from orchestration.lib.bias import PASS_COLUMNS, VERDICT_TEXT, summarise_verdicts, verdicts_with_lists

    out = []
    for _, v in verdicts_with_lists(onsets).sort_values(["date", "model_id", "attribute"]).iterrows():
        pair = f"{v['model_id']} / {v['attribute']}"
        said = summarise_verdicts(pd.DataFrame([v])).replace(f"{pair}: ", "").replace("\n", "; ")
        failing = [flag for flag in PASS_COLUMNS if pd.notna(v[flag]) and not v[flag]]
        bits = int(v["newly_failing"]) if pd.notna(v.get("newly_failing")) else 0
        new = [flag for i, flag in enumerate(PASS_COLUMNS) if bits & (1 << i)] or failing
        # the first newly failing metric gives the value and limit (the message names each one that fails)
        column, limit = (VERDICT_TEXT[new[0]][1], VERDICT_TEXT[new[0]][3]) if new else ("", "")
        first, until = _day(v["date"]), _day(v["until"])
        lasting = f" through the one ending {until}" if until != first else ""
        already = [VERDICT_TEXT[flag][0] for flag in failing if flag not in new]
        what = (
            f"{', '.join(VERDICT_TEXT[flag][0] for flag in new)} of {pair} fails too from the window "
            f"{_day(v['window_start'])} .. {first} ({', '.join(already)} failing before it)"
            if already
            else f"fairness of {pair} fails from the window {_day(v['window_start'])} .. {first}{lasting}"
        )
        out.append(
            Notification(
                kind="fairness",
                date=first,
                model_id=v["model_id"],
                metric="fairness",
                subject=v["attribute"],
                value=_number(v.get(column)),
                threshold=_number(v.get(limit)),
                # the onset window's figures, sent once an episode: a trial read the first 2-day window's 0.46 as
                # the state of things where the latest window's was 0.14 (summary has the newest)
                message=f"{what}; {'that' if already else 'the first failing'} window's figures (the newest: "
                f"impact-ledger summary): {said}",
                until=until,
            )
        )
    return out


def _gate_message(r) -> str:
    """A raw table's gate holds its day's publication back; another blocking check (a training snapshot's
    fairness) stops only what depends on its own asset: said as such ("raw.training_candidates ... publication
    blocked" misdescribed a retraining that fairness had stopped)."""
    from orchestration.lib.quality_gate import EXPERIMENT_DESIGN_TABLES

    asset = getattr(r, "asset", None)
    if r.table_name in EXPERIMENT_DESIGN_TABLES:  # it warns: only the experiments' attribution reads these tables
        return (
            f"experiment design gate {r.suite} failed on {_day(r.date)} for raw.{r.table_name}: "
            f"{r.failed_expectations}; that day's experiment results are untrustworthy (the models' marts were built)"
        )
    if not isinstance(asset, str) or asset.startswith("raw/"):
        return (
            f"quality gate {r.suite} failed on {_day(r.date)} for raw.{r.table_name}: "
            f"{r.failed_expectations}; that day is held back: its rows stay out of the marts until it passes "
            "(the other days of a backfill go on)"
        )
    return (
        f"blocking check {r.suite} failed on {_day(r.date)} for {asset}: {r.failed_expectations}; "
        f"what depends on {asset} that day did not run (the day's publication is not affected)"
    )


@dataclass
class NotifyCursor:
    """What has been sent: dedup keys by the day they are about (only days within the horizon are kept)."""

    sent: dict[str, str] = field(default_factory=dict)  # dedup key -> day
    source_mtime: float | None = None  # the snapshot file's mtime when last read
    event_storage_id: float | None = None  # update time of the last finished Dagster run whose checks were read

    def to_json(self) -> str:
        return json.dumps(
            {"sent": self.sent, "source_mtime": self.source_mtime, "event_storage_id": self.event_storage_id},
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | None) -> NotifyCursor:
        if not text:
            return cls()
        raw = json.loads(text)
        return cls(
            sent=dict(raw.get("sent", {})),
            source_mtime=raw.get("source_mtime"),
            event_storage_id=raw.get("event_storage_id"),
        )


def select_new(
    candidates: Sequence[Notification],
    cursor: NotifyCursor,
    newest_day: date | None,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> tuple[list[Notification], NotifyCursor]:
    """The candidates not sent yet whose last day is not older than ``horizon_days`` before ``newest_day``, and
    the next cursor.

    ``newest_day`` is the latest day in the source (not the wall clock, so a
    backfill of last year behaves like the live run did). A key is kept by the
    newest last day it was seen with: a fairness failure that lasts longer than
    the horizon is not sent again.
    """
    if newest_day is None:
        return [], cursor
    oldest = (newest_day - timedelta(days=horizon_days)).isoformat()
    # a failed gate is seen twice in one tick (its check's event and the snapshot's gate row): sent once
    unique = {n.dedup_key: n for n in reversed(candidates)}
    current = [n for n in candidates if unique[n.dedup_key] is n and n.last_day >= oldest]
    new = [n for n in current if n.dedup_key not in cursor.sent]
    sent = {k: d for k, d in cursor.sent.items() if d >= oldest}
    sent.update({n.dedup_key: max(n.last_day, sent.get(n.dedup_key, "")) for n in current})
    return new, replace(cursor, sent=sent)


def source_change_notifications(changes: pd.DataFrame) -> list[Notification]:
    """quality.source_changes rows -> one notification per table and day: its rows changed since the day was loaded
    and reach the warehouse when that day runs again (a trial's late labels file and in-place database corrections
    were said on materialize's console only)."""
    from orchestration.lib.source_changes import BESIDE, DATABASE

    out = []
    for r in changes.sort_values(["date", "table_name", "change"]).itertuples(index=False):
        what = {
            DATABASE: f"its database rows changed since it was loaded ({r.change})",
            BESIDE: f"a new file beside the one it loaded ({r.change}): a correction? remove the stale file first",
        }.get(r.kind, f"a landing file arrived or changed since it was loaded ({r.change})")
        out.append(
            Notification(
                kind="source",
                date=_day(r.date),
                model_id=None,
                metric="source_changed",
                # the change in the key: a second correction of the same day is news (a re-trial's was never sent)
                subject=f"{r.table_name} ({r.change})",
                value=None,
                threshold=None,
                message=f"{r.table_name} {_day(r.date)}: {what}; its rows count once that day runs again",
            )
        )
    return out


SOURCES = {
    "marts.alerts": (
        "SELECT date, model_id, model_version, metric, coalesce(subject, '') AS subject, value, threshold, rule "
        # every day of a (model, metric, subject) alerting within the horizon: an incident's first day is its key
        "FROM marts.alerts a WHERE EXISTS (SELECT 1 FROM marts.alerts b WHERE b.date >= $1 AND b.model_id = "
        "a.model_id AND b.metric = a.metric AND coalesce(b.subject, '') = coalesce(a.subject, ''))",
        alert_notifications,
    ),
    "quality.gate_results": (
        "SELECT date, suite, table_name, passed, failed_expectations, rows_validated "
        "FROM quality.gate_results WHERE date >= ?",
        gate_notifications,
    ),
    "marts.bias_verdicts": (FAIRNESS_SQL.format(scope="true"), fairness_notifications),
    "quality.source_changes": (
        "SELECT table_name, date, kind, change FROM quality.source_changes WHERE date >= ?",
        source_change_notifications,
    ),
}
PREDICTION_DAYS_SQL = "SELECT DISTINCT model_id, date FROM marts.model_health_daily WHERE predictions > 0"
BY_LAST_PREDICTION = (
    "v.date <= coalesce((SELECT max(h.date) FROM marts.model_health_daily h WHERE h.model_id = v.model_id "
    "AND h.predictions > 0), v.date)"
)


def read_candidates(conn, horizon_days: int = DEFAULT_HORIZON_DAYS) -> tuple[list[Notification], date | None]:
    """Alert, failed-gate and fairness notifications of the horizon, and the newest day, from a database with
    marts.alerts, quality.gate_results and/or marts.bias_verdicts (a missing table contributes nothing)."""
    present = {
        f"{s}.{t}"
        for s, t in conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_catalog = current_database()"
        ).fetchall()
    }
    tables = [t for t in SOURCES if t in present]
    days = [conn.execute(f"SELECT max(date) FROM {t}").fetchone()[0] for t in tables]
    days = [d for d in days if d is not None]
    if not days:
        return [], None
    newest = max(days)
    oldest = newest - timedelta(days=horizon_days)
    candidates = []
    for table in tables:
        sql, to_notifications = SOURCES[table]
        if table == "marts.bias_verdicts" and "marts.model_health_daily" in present:
            sql = FAIRNESS_SQL.format(scope=BY_LAST_PREDICTION)
        if table == "marts.alerts" and "marts.model_health_daily" in present:
            made = conn.execute(PREDICTION_DAYS_SQL).df()
            to_notifications = partial(alert_notifications, prediction_days=made)
        candidates += to_notifications(conn.execute(sql, [oldest]).df())
    return candidates, newest
