"""Did a model-health alert warn before a KPI dropped, and by how many days?

A KPI drop is a sustained shift for the worse, not one bad day: the first day
from which `persist_days` consecutive daily values all lie below the lower
control limit (mean - k standard deviations) of the `baseline_days` days
before it (a run rule in the spirit of the Western Electric rules); for a KPI
where lower is better (a refund rate) above the upper one. The lead time is
the drop's first day minus the day of the earliest alert breach in the
`max_lead_days` before it.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd


# the units a ratio KPI of marts.kpi_daily averages over: a day on fewer units than usual is noisier by the square
# root of the ratio (a mean's, a proportion's sampling variance goes as 1/n)
RATIO_UNITS = {
    "conversion_rate": ("sessions",),
    "revenue_per_active_user": ("active_users",),
    "average_order_value": ("orders",),
    "refund_rate": ("orders", "refunded_orders"),
}
# the ratio KPIs that are shares of their units (a count of them over their count): a day's sampling noise is at
# least the binomial's
PROPORTIONS = frozenset({"conversion_rate", "refund_rate"})


@dataclass(frozen=True)
class KpiDrop:
    kpi: str
    start_date: date
    baseline_level: float  # the median of the baseline days
    limit: float  # the control limit, baseline - k noise sds (+ for a rising KPI): crossed, the KPI worsened
    drop_mean: float  # mean of the persist_days days that confirmed the drop
    rising: bool = False  # a lower-is-better KPI: the worse shift is a rise

    @property
    def relative_change(self) -> float:
        return self.drop_mean / self.baseline_level - 1 if self.baseline_level else math.nan


def first_sustained_drop(
    values: pd.Series,
    kpi: str,
    baseline_days: int = 7,
    persist_days: int = 3,
    k: float = 3.0,
    noise_days: int = 28,
    rising: bool = False,
    units: pd.Series | None = None,
    proportion: bool = False,
) -> KpiDrop | None:
    """First sustained drop of a daily KPI series (index: consecutive dates), or None: ``persist_days`` days in a
    row below the median of the ``baseline_days`` before them minus k x the series' day-to-day noise.

    The median, not the mean: a weekly cycle's two busy days in a 7-day baseline (revenue per active user at 11 and
    18 on a real data set's weekends, 3-4 on weekdays) lifted the mean so far that ordinary weekdays read as a 53%
    "drop" (and the summary named an alert that "led" it).

    The noise is read from the day-to-day changes of the (up to) ``noise_days`` before, robustly (1.4826 x their
    median absolute value / sqrt 2: a Gaussian's standard deviation, which a level shift, e.g. an experiment's
    launch, moves little). The standard deviation of 7 days it replaced was so noisy that 9% of year-long series
    of pure binomial noise "dropped" (tests/unit/test_leading.py), and the summary named an alert that "led" it.
    Only days with a full baseline before them qualify; missing days break the run. NO_NOISE: where most of the
    noise days' changes of a ratio KPI (``units`` given, a mean of its units) are exactly 0 the noise reads 0 and
    any dip would be "sustained" (a trial's order value, the same 21,600 on six days of 1-6 orders, "fell 15%" on
    the next three): such a day is not judged (a share keeps its binomial floor). A count or sum that sat exactly
    flat and falls for days has changed (a trial's 7 active users a day, then none): judged as before. ``rising``: a lower-is-better
    KPI, whose worse shift is ``persist_days`` days above the mean plus k x the noise.

    ``units`` (a ratio KPI's: the orders an average order value is of, same index): a day on fewer units than the
    median of the noise days' has its limit widened by sqrt(median / units), the sampling noise of a mean of fewer
    (never narrowed): a trial's average order value of single orders, as its replies wound down from ~30 a day,
    read as a "48% fall" that an alert "led".

    ``proportion`` (a share of its ``units``: a conversion or refund rate): the limit is at least k binomial
    standard deviations of the day's share, sqrt(p (1 - p) / units), p the noise days' pooled share (+0.5 event
    in +1 unit, so a share never seen is not taken for impossible). A rare event's days are mostly 0: the median
    change and the median level are 0, and a trial's constant 3% refund rate on ~25 orders a day "rose" in 29-55% of
    simulated series.
    """
    if baseline_days < 2 or persist_days < 1:
        raise ValueError("baseline_days must be >= 2 and persist_days >= 1")
    series = values.sort_index().astype(float)
    days = list(series.index)
    sign = -1.0 if rising else 1.0  # a rise of the KPI is a drop of its negation
    v = sign * series.to_numpy()  # arrays, not pandas slices: the summary scans every day of the history
    n = None if units is None else units.reindex(series.index).astype(float).to_numpy()
    span = timedelta(days=baseline_days + persist_days - 1)
    run_start = [0] * len(days)  # where the unbroken run of consecutive days holding day i begins
    for i in range(1, len(days)):
        run_start[i] = run_start[i - 1] if days[i] - days[i - 1] == timedelta(days=1) else i
    for i in range(baseline_days, len(days) - persist_days + 1):
        baseline, window = v[i - baseline_days : i], v[i : i + persist_days]
        consecutive = days[i + persist_days - 1] - days[i - baseline_days] == span
        if not consecutive or np.isnan(baseline).any() or np.isnan(window).any():
            continue
        past = slice(max(i - noise_days, run_start[i - 1]), i)
        history = v[past]
        changes = np.diff(history[~np.isnan(history)])
        noise = 1.4826 * float(np.median(np.abs(changes))) / math.sqrt(2)
        if noise == 0 and n is not None and not proportion:
            continue  # a mean whose days mostly repeat the day before exactly: no noise to judge a dip by (NO_NOISE)
        level = float(np.median(baseline))
        spread = np.full(persist_days, noise)
        if n is not None:
            counted = n[past]
            typical = float(np.nanmedian(counted)) if np.isfinite(counted).any() else math.nan
            with np.errstate(divide="ignore", invalid="ignore"):
                widen = np.sqrt(np.maximum(1.0, typical / n[i : i + persist_days]))
            spread = noise * np.where(np.isnan(widen), 1.0, widen)  # units unknown: the plain limit
            if proportion:
                known = ~np.isnan(history) & ~np.isnan(counted)
                p = (float((sign * history[known] * counted[known]).sum()) + 0.5) / (float(counted[known].sum()) + 1)
                with np.errstate(divide="ignore", invalid="ignore"):
                    binomial = np.sqrt(p * (1 - p) / n[i : i + persist_days])
                spread = np.maximum(spread, np.where(np.isnan(binomial), 0.0, binomial))
        limits = level - k * spread
        if (window < limits).all():
            day = pd.Timestamp(days[i]).date()
            return KpiDrop(kpi, day, sign * level, sign * float(limits[0]), sign * float(window.mean()), rising)
    return None


@dataclass(frozen=True)
class AlertLead:
    model_id: str
    metric: str
    subject: str
    alert_date: date  # day of the earliest breach before the drop
    drop: KpiDrop

    @property
    def lead_days(self) -> int:
        return (self.drop.start_date - self.alert_date).days


def earliest_preceding_alert(alerts: pd.DataFrame, drop: KpiDrop, max_lead_days: int = 14) -> AlertLead | None:
    """The earliest alert breach within max_lead_days before (or on) the drop's first day.

    ``alerts``: rows of marts.alerts (date, model_id, metric, subject).
    """
    if alerts.empty:
        return None
    dates = pd.to_datetime(alerts["date"]).dt.date
    window = alerts[(dates >= drop.start_date - timedelta(days=max_lead_days)) & (dates <= drop.start_date)]
    if window.empty:
        return None
    first = (
        window.assign(_d=pd.to_datetime(window["date"]).dt.date)
        .sort_values(["_d", "model_id", "metric", "subject"])
        .iloc[0]
    )
    subject = "" if pd.isna(first["subject"]) else str(first["subject"])
    return AlertLead(first["model_id"], first["metric"], subject, first["_d"], drop)


def describe(lead: AlertLead | None, drop: KpiDrop | None) -> str:
    """One sentence for the summary and the report."""
    if drop is None:
        return "No sustained KPI drop detected."
    direction, side = ("rose", "above") if drop.rising else ("fell", "below")
    # from a baseline of 0 there is no relative change (a refund rate before any refund): the levels say it
    change = (
        (
            # + 0.0: a negated 0 prints "-0"
            f"{drop.kpi} {direction} from a baseline of {drop.baseline_level + 0.0:.3g} to {drop.drop_mean:.3g}"
            if math.isnan(drop.relative_change)
            else f"{drop.kpi} {direction} {abs(drop.relative_change):.0%} {side} its baseline"
        )
        + f" from {drop.start_date}"
        + (" (lower is better)" if drop.rising else "")
    )
    if lead is None:
        return f"{change}; no model-health alert preceded it."
    what = f"{lead.metric} ({lead.subject})" if lead.subject else lead.metric
    if not lead.lead_days:  # on the drop's first day: with it, not before it (a trial's "0 day(s) earlier")
        return f"{change}; the first alert by then was {what} on {lead.model_id} on the same day, {lead.alert_date}."
    return (
        f"{change}; the first alert before it was {what} on {lead.model_id} "
        f"on {lead.alert_date}, {lead.lead_days} day(s) earlier."
    )


def kpi_drop_leads_of(conn: duckdb.DuckDBPyConnection, as_of: date, settings: dict):
    """kpi_drop_leads for the ``leading_lagging`` var: its kpis, those of them lower_is_better."""
    return kpi_drop_leads(conn, as_of, settings["kpis"], lower_is_better=settings.get("lower_is_better") or ())


def kpi_drop_leads(
    conn: duckdb.DuckDBPyConnection,
    as_of: date,
    kpis: list[str],
    max_lead_days: int = 14,
    lower_is_better: Collection[str] = (),
) -> list[tuple[KpiDrop | None, AlertLead | None]]:
    """For each KPI of marts.kpi_daily: its first sustained drop up to ``as_of`` (a rise for those of
    ``lower_is_better``) and the alert that preceded it."""
    if not kpis:
        return []
    columns = set(conn.execute("SELECT * FROM marts.kpi_daily LIMIT 0").df().columns)
    unknown = sorted(set(kpis) - columns)
    if unknown:
        raise ValueError(
            f"leading_lagging kpis {unknown} are not columns of marts.kpi_daily (known: {sorted(columns)})"
        )
    if stray := sorted(set(lower_is_better) - set(kpis)):
        raise ValueError(f"leading_lagging lower_is_better {stray} are not among its kpis {sorted(kpis)}")
    # (a mart without the unit columns: the plain limits)
    ratios = [k for k in kpis if set(RATIO_UNITS.get(k, ("-",))) <= columns]
    counted = [f"{' + '.join(RATIO_UNITS[k])} AS units_{k}" for k in ratios]
    daily = (
        conn.execute(
            f"SELECT date, {', '.join([*kpis, *counted])} FROM marts.kpi_daily WHERE date <= ? ORDER BY date", [as_of]
        )
        .df()
        .set_index("date")
    )
    alerts = conn.execute("SELECT date, model_id, metric, subject FROM marts.alerts WHERE date <= ?", [as_of]).df()
    out = []
    for kpi in kpis:
        units = daily[f"units_{kpi}"] if kpi in ratios else None
        drop = first_sustained_drop(
            daily[kpi], kpi, rising=kpi in lower_is_better, units=units, proportion=kpi in PROPORTIONS
        )
        out.append((drop, None if drop is None else earliest_preceding_alert(alerts, drop, max_lead_days)))
    return out
