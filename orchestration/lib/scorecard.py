"""The metric scorecard: is each declared experiment metric a good business metric, and can it judge its key results?

Per as-of date, experiment (treatment arm) and metric of the dbt var
experiment_metrics, the criteria of a good business metric:

* attributable: the experiment (a perpetual holdout here) has cumulative
  results for it that day that could be tested (not degenerate: e.g. no
  variance in an arm, "not tested" in the results);
* sensitive: its minimum detectable effect (MDE) at today's traffic, the units
  so far and the new units per day over the trailing week;
* cheap: maturity_days, how long a unit takes to count (D7 retention: 7);
* balanced: the guardrail metric(s) measured beside it.

For every key result bound to the metric (a ``lift`` key result, or a ``kpi``
one with an ``attribution_metric``), the sample size its target effect needs at
the attribution alpha and power, how many days of today's traffic that is, the
MDE reachable by its deadline and a warning when the target is smaller. Sample
sizes use the variance of the estimate the results use (CUPED-adjusted when
they did, delta method for ratios) from each arm's sufficient statistics, at
the arms' split so far (the design's before any unit), as the results' MDE
does: a deadline that brings no new unit has today's MDE. No Dagster: frames
in, frame out.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable

import pandas as pd

from orchestration.lib.attribution import AttributionSettings, arm_stats, cuped_arm_stats, ratio_arm_stats
from orchestration.lib.okrs import KeyResult
from orchestration.lib.stats import minimum_detectable_effect, required_sample_size

NAN = float("nan")
TRAILING_DAYS = 7

V, D, F, I, B = "VARCHAR", "DATE", "DOUBLE", "BIGINT", "BOOLEAN"
SCORECARD_SCHEMA = {
    "date": D,
    "experiment_id": V,
    "model_id": V,
    "treatment_variant": V,
    "metric": V,
    "metric_type": V,
    "is_guardrail": B,
    "attributable": B,
    "units": I,
    "units_per_day": F,
    "mde_relative": F,
    "maturity_days": "INTEGER",
    "balanced_by_guardrail": V,
    "key_result": V,
    "target_relative_effect": F,
    "required_units": F,
    "days_needed": F,
    "days_to_deadline": "INTEGER",
    "mde_relative_at_deadline": F,
    "detectable_by_deadline": B,
    "warning": V,
}

# Units (cumulative n) per experiment, metric, variant and as-of date, and the
# new units per day over the trailing week: against the latest day at least a
# week back, or since the metric's first day when it is younger than that
# (a metric with a maturity delay starts counting units later).
TRAFFIC_SQL = f"""
WITH units AS (
    SELECT experiment_id, metric, variant, as_of_date, n
    FROM marts.experiment_stats WHERE analysis_window = 'cumulative'
), first_day AS (
    SELECT experiment_id, metric, variant, min(as_of_date) AS first_date FROM units GROUP BY ALL
)
SELECT u.experiment_id, u.metric, u.variant, u.as_of_date, u.n,
       (u.n - coalesce(p.n, 0)) / CASE WHEN p.as_of_date IS NULL THEN datediff('day', f.first_date, u.as_of_date) + 1
                                       ELSE datediff('day', p.as_of_date, u.as_of_date) END AS units_per_day
FROM units u
JOIN first_day f USING (experiment_id, metric, variant)
ASOF LEFT JOIN units p
    ON p.experiment_id = u.experiment_id AND p.metric = u.metric AND p.variant = u.variant
   AND p.as_of_date <= u.as_of_date - {TRAILING_DAYS}
WHERE u.as_of_date BETWEEN ? AND ?
"""


def _degenerate(result) -> bool:
    """A result row the attribution could not test (its degenerate_reason says why)."""
    reason = getattr(result, "degenerate_reason", None)
    return isinstance(reason, str) and bool(reason)


def _split(counts: list, expected: float) -> float:
    """The treated arm's share of the two arms' units so far, or the design's ``expected`` share before any: a plan
    with the design's split and the control's variance for both arms gave a trial an MDE of 61.6% by a deadline
    that brought no new unit, beside today's 53.5% (the results' own, each arm as it is)."""
    control, treated = (float(c.n) if c is not None else 0.0 for c in counts)
    return treated / (control + treated) if control > 0 and treated > 0 else expected


def _fewer_events(result) -> float:
    """The fewer of a result row's arms' events (NaN when neither is known)."""
    known = [float(e) for e in (result.events_control, result.events_treatment) if pd.notna(e)]
    return min(known) if known else NAN


def planning_variance(control: pd.Series, metric_type: str, estimate: str | None, cuped_theta: float) -> float:
    """Per-unit variance of the control arm for the estimate the results use.

    ``control``: the control arm's marts.experiment_stats row. Ratio metrics:
    delta-method variance; CUPED estimates: variance of y - theta x; otherwise
    the plain sample variance.
    """
    if metric_type == "ratio":
        return ratio_arm_stats(control).unit_variance
    if estimate == "cuped" and pd.notna(cuped_theta):
        return cuped_arm_stats(control).adjusted_variance(float(cuped_theta))
    return arm_stats(control).variance


def key_result_feasibility(
    kr: KeyResult,
    as_of: dt.date,
    units: float,
    units_per_day: float,
    variance: float,
    control_mean: float,
    treatment_share: float,
    alpha: float,
    power: float,
    events: float = NAN,
    min_events: float = 0,
    treatment_variance: float | None = None,
) -> dict:
    """Can the experiment detect ``kr``'s target effect by its deadline?

    required_units: both arms together, for a two-sided level-alpha test with
    the given power to detect target_relative_effect x |control mean| when a
    ``treatment_share`` of units is treated, each arm with its own per-unit variance (``variance`` the control's,
    ``treatment_variance`` the treated arm's; None: the control's); days_needed = required_units /
    units_per_day (days of today's traffic); by the deadline the experiment has
    units + units_per_day x days_to_deadline units, whose MDE is
    mde_relative_at_deadline. ``events``: the fewer of the arms' events today (attribution.arm_events), which
    grow with the units: where fewer than ``min_events`` (min_events_per_arm) are expected by the deadline, the
    result would still not be tested there, whatever its power says (a trial's key result read "detectable by
    its deadline" beside 3 control events).
    """
    effect = kr.target_relative_effect
    treated = variance if treatment_variance is None else treatment_variance
    size = required_sample_size(variance, treated, abs(effect) * abs(control_mean), alpha, power, treatment_share)
    days_to_deadline = (kr.deadline - as_of).days
    by_deadline = units + (units_per_day if units_per_day > 0 else 0.0) * max(days_to_deadline, 0)
    mde = minimum_detectable_effect(
        variance,
        by_deadline * (1 - treatment_share),
        treated,
        by_deadline * treatment_share,
        alpha,
        power,
        control_mean,
    ).relative
    required = size.n_total
    detectable = None if math.isnan(required) else bool(by_deadline >= required)
    warning = None
    expected_events = events * by_deadline / units if units > 0 else NAN
    if expected_events < min_events:  # False for NaN: events unknown
        mde, detectable = NAN, False
        when = "already passed" if days_to_deadline < 0 else f"in {days_to_deadline} days"
        warning = (
            f"{kr.id}: by its deadline {kr.deadline} ({when}) an arm would hold about {expected_events:,.1f} "
            f"events at today's events per unit ({events:,.3g} in {units:,.0f} units today; < min_events_per_arm "
            f"{min_events:g}): unless its units' outcomes still to land (a late outcome) bring more, its result "
            "would not be tested, whatever the target"
        )
    elif detectable is False:
        when = "already passed" if days_to_deadline < 0 else f"in {days_to_deadline} days"
        warning = (
            f"{kr.id}: target effect {effect:+.2%} is smaller than the {mde:.2%} MDE reachable by its "
            f"deadline {kr.deadline} ({when}): {by_deadline:,.0f} of {required:,.0f} units needed"
        )
    return {
        "key_result": kr.id,
        "target_relative_effect": effect,
        "required_units": required,
        "days_needed": required / units_per_day if units_per_day > 0 else NAN,
        "days_to_deadline": days_to_deadline,
        "mde_relative_at_deadline": mde,
        "detectable_by_deadline": detectable,
        "warning": warning,
    }


def bound_key_results(
    key_results: Iterable[KeyResult], experiment_id: str, model_id: str, metric: str, arm: str
) -> list[KeyResult]:
    """Key results whose target is an effect on ``metric`` that this experiment's treatment ``arm`` can attribute
    (a lift key result naming another arm cannot)."""
    return [
        kr
        for kr in key_results
        if kr.experiment_metric == metric
        and (kr.model_id is None or kr.model_id == model_id)
        and (kr.experiment_id is None or kr.experiment_id == experiment_id)
        and (kr.variant is None or kr.variant == arm)
    ]


def metric_scorecard(
    days: list[dt.date],
    experiments: pd.DataFrame,
    variants: pd.DataFrame,
    results: pd.DataFrame,
    stats: pd.DataFrame,
    traffic: pd.DataFrame,
    metrics: dict,
    key_results: list[KeyResult],
    alpha: float,
    power: float,
    min_events_per_arm: float = AttributionSettings().min_events_per_arm,
) -> pd.DataFrame:
    """One row per day, started experiment, treatment arm, declared metric and bound key result (or none).

    ``experiments``: experiment_id, model_id, control_variant, start_date;
    ``variants``: experiment_id, variant, expected_share; ``results``: cumulative
    attribution.experiment_results rows; ``stats``: cumulative
    marts.experiment_stats rows; ``traffic``: TRAFFIC_SQL rows; ``metrics``: the
    experiment_metrics config. A result that is not tested today (attribution's degenerate_reason: too few events
    in an arm) has no MDE at today's traffic: its normal approximation is what the rule refuses.
    """
    result_at = {
        (r.experiment_id, r.treatment_variant, r.metric, pd.Timestamp(r.as_of_date)): r
        for r in results.itertuples(index=False)
    }
    stats_at = {
        (r["experiment_id"], r["variant"], r["metric"], pd.Timestamp(r["as_of_date"])): r for _, r in stats.iterrows()
    }
    traffic_at = {
        (r.experiment_id, r.variant, r.metric, pd.Timestamp(r.as_of_date)): r for r in traffic.itertuples(index=False)
    }
    shares = {(r.experiment_id, r.variant): float(r.expected_share) for r in variants.itertuples(index=False)}
    guardrails = [m for m, spec in metrics.items() if spec.get("guardrail")]
    # an experiment's days with data: after its last one (a run past the data's end) a row read "0 units, not
    # attributable" beside 3,823 assigned users; the report shows the newest day with rows
    with_data = {(k[0], k[3]) for k in result_at} | {(k[0], k[3]) for k in traffic_at}
    rows = []
    for day in days:
        ts = pd.Timestamp(day)
        for e in experiments.itertuples(index=False):
            if pd.isna(e.start_date) or pd.Timestamp(e.start_date) > ts:
                continue  # not started: nothing can be attributed to it yet
            if (e.experiment_id, ts) not in with_data and ts > pd.Timestamp(e.start_date):
                continue  # no data as of this day (its first day is kept: an experiment that just started)
            control = e.control_variant
            for arm in sorted(v for (x, v) in shares if x == e.experiment_id and v != control):
                share = shares[(e.experiment_id, arm)] / (
                    shares[(e.experiment_id, arm)] + shares[(e.experiment_id, control)]
                )
                balanced = ", ".join(g for g in guardrails if (e.experiment_id, arm, g, ts) in result_at) or None
                for metric, spec in metrics.items():
                    r = result_at.get((e.experiment_id, arm, metric, ts))
                    counts = [traffic_at.get((e.experiment_id, v, metric, ts)) for v in (control, arm)]
                    units = sum(int(c.n) for c in counts if c is not None)
                    per_day = sum(float(c.units_per_day) for c in counts if c is not None)
                    base = dict.fromkeys(SCORECARD_SCHEMA) | {
                        "date": day,
                        "experiment_id": e.experiment_id,
                        "model_id": e.model_id,
                        "treatment_variant": arm,
                        "metric": metric,
                        "metric_type": spec.get("type"),
                        "is_guardrail": bool(spec.get("guardrail", False)),
                        "attributable": r is not None and not _degenerate(r),
                        "units": units,
                        "units_per_day": per_day,
                        "mde_relative": float(r.mde_relative) if r is not None and not _degenerate(r) else NAN,
                        "maturity_days": int(spec.get("maturity_days", 0)),
                        "balanced_by_guardrail": None if spec.get("guardrail") else balanced,
                    }
                    bound = bound_key_results(key_results, e.experiment_id, e.model_id, metric, arm)
                    if not bound:
                        rows.append(base)
                        continue
                    control_stats = stats_at.get((e.experiment_id, control, metric, ts))
                    for kr in bound:
                        if r is None or control_stats is None:
                            rows.append(
                                base
                                | {
                                    "key_result": kr.id,
                                    "target_relative_effect": kr.target_relative_effect,
                                    "days_to_deadline": (kr.deadline - day).days,
                                    "warning": f"{kr.id}: no {metric} results for {e.experiment_id} on {day}: not attributable",
                                }
                            )
                            continue
                        variance = planning_variance(control_stats, r.metric_type, r.estimate, r.cuped_theta)
                        treated_stats = stats_at.get((e.experiment_id, arm, metric, ts))
                        rows.append(
                            base
                            | key_result_feasibility(
                                kr,
                                day,
                                units,
                                per_day,
                                variance,
                                float(r.mean_control),
                                _split(counts, share),
                                alpha,
                                power,
                                events=_fewer_events(r),
                                min_events=min_events_per_arm,
                                treatment_variance=None
                                if treated_stats is None
                                else planning_variance(treated_stats, r.metric_type, r.estimate, r.cuped_theta),
                            )
                        )
    return pd.DataFrame(rows, columns=list(SCORECARD_SCHEMA))
