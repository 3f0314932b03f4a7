"""Turn per-arm sufficient statistics into experiment results and model value.

Input rows come from marts.experiment_stats (one per experiment, variant,
metric, window and as-of date); every number here is closed-form statistics
over those few rows (orchestration.lib.stats). Metric definitions (type,
direction, guardrail margin) come from the same config dbt uses:
var('experiment_metrics') in dbt_project.yml.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields

import pandas as pd

from orchestration.lib.quality_gate import GATE_DAYS_SHOWN, days_in_words
from orchestration.lib.stats import (
    ArmStats,
    CupedArmStats,
    LiftResult,
    RatioArmStats,
    adjust_p_values,
    adjusted_alpha,
    compare_cuped,
    compare_means,
    compare_ratios,
    covariate_balance_p_value,
    effective_events,
    fisher_exact_p,
    guardrail_verdict,
    has_no_variance,
    incremental_value,
    interval_at,
    minimum_detectable_effect,
    proportion_events,
    sequential_ci,
    srm_p_value,
    without_inference,
)

NAN = float("nan")
GRAIN = ["experiment_id", "metric", "analysis_window", "as_of_date"]
SRM_THRESHOLD = 0.001  # p below this: the assignment is broken, results are not trustworthy

V, D, F, I, B = "VARCHAR", "DATE", "DOUBLE", "BIGINT", "BOOLEAN"
RESULT_SCHEMA = {
    "experiment_id": V,
    "model_id": V,
    "metric": V,
    "metric_type": V,
    "control_variant": V,
    "treatment_variant": V,
    "analysis_window": V,
    "as_of_date": D,
    "n_control": I,
    "n_treatment": I,
    "mean_control": F,
    "mean_treatment": F,
    "absolute_lift": F,
    "absolute_se": F,
    "absolute_ci_low": F,
    "absolute_ci_high": F,
    "relative_lift": F,
    "relative_se": F,
    "relative_ci_low": F,
    "relative_ci_high": F,
    "degrees_of_freedom": F,
    "p_value": F,  # Welch (unadjusted) p of the fixed-horizon test
    "cuped_absolute_lift": F,
    "cuped_absolute_ci_low": F,
    "cuped_absolute_ci_high": F,
    "cuped_relative_lift": F,
    "cuped_relative_ci_low": F,
    "cuped_relative_ci_high": F,
    "cuped_p_value": F,
    "cuped_theta": F,
    "cuped_variance_reduction": F,
    # pre-period covariate balance (CUPED metrics): pooled t-test p of equal covariate means; p < covariate_balance_alpha
    # means the arms differed before assignment: the decision estimate is then 'welch' and the row not trustworthy
    "covariate_mean_control": F,
    "covariate_mean_treatment": F,
    "covariate_balance_p_value": F,
    "covariate_balanced": B,
    # estimate: which result decisions use (cuped | welch | delta_method_ratio); the sequential CI,
    # decision_p_value and p_value_adjusted all belong to that estimate
    "estimate": V,
    "decision_p_value": F,
    "sequential_absolute_ci_low": F,
    "sequential_absolute_ci_high": F,
    "sequential_relative_ci_low": F,
    "sequential_relative_ci_high": F,
    "sequential_p_value": F,
    "mde_absolute": F,
    "mde_relative": F,
    "p_value_adjusted": F,
    "multiple_testing": V,
    # the decision after the correction: significant = p_value_adjusted < alpha (NULL when not tested), and the
    # decision estimate's intervals at the per-comparison level that makes them exclude 0 exactly when significant
    "significant": B,
    "adjusted_ci_level": F,
    "adjusted_absolute_ci_low": F,
    "adjusted_absolute_ci_high": F,
    "adjusted_relative_ci_low": F,
    "adjusted_relative_ci_high": F,
    # degenerate comparisons (no variance, or too few events in an arm) publish no SE, CI or p-value
    "events_control": F,
    "events_treatment": F,
    "degenerate_reason": V,
    # a degenerate proportion's exact test (Fisher's, two-sided, unadjusted): what the sample supports, not a decision
    "exact_p_value": F,
    "is_guardrail": B,
    "guardrail_verdict": V,
    "srm_p_value": F,
    "trustworthy": B,
    "untrusted_reason": V,
    "decision_grade": B,
    "decision_grade_reason": V,
}
RESULT_COLUMNS = list(RESULT_SCHEMA)


@dataclass(frozen=True)
class AttributionSettings:
    alpha: float = 0.05
    power: float = 0.8
    sequential_tau: float = 5000.0
    multiple_testing: str = "holm"  # or "bh"
    # below these an arm cannot carry a normal-approximation test (events) or a decision (units)
    min_events_per_arm: float = 5
    min_units_per_arm: int = 30
    # a pre-period covariate whose arm means differ at t-test p below this is imbalanced (0: never)
    covariate_balance_alpha: float = 0.001

    @classmethod
    def from_config(cls, cfg: dict, where: str = "vars.attribution") -> AttributionSettings:
        """Settings from the `attribution` mapping (dbt var or project file); missing keys take the defaults."""
        default = cls()
        values = {f.name: cfg.get(f.name, getattr(default, f.name)) for f in fields(cls)}
        problems = [
            f"{where}.{k}: must be a number >= 0 (got {values[k]!r})"
            for k in ("min_events_per_arm", "min_units_per_arm")
            if not isinstance(values[k], (int, float)) or values[k] < 0
        ]
        if not isinstance(values["alpha"], (int, float)) or not 0 < values["alpha"] < 1:
            problems.append(f"{where}.alpha: must be between 0 and 1 (got {values['alpha']!r})")
        balance = values["covariate_balance_alpha"]
        if not isinstance(balance, (int, float)) or not 0 <= balance < 1:
            problems.append(f"{where}.covariate_balance_alpha: must be >= 0 and < 1 (got {balance!r})")
        if values["multiple_testing"] not in ("holm", "bh"):
            problems.append(f"{where}.multiple_testing: must be 'holm' or 'bh' (got {values['multiple_testing']!r})")
        if problems:
            raise ValueError("; ".join(problems))
        return cls(**values)


# One row of marts.experiment_stats (one arm) as the statistics module's inputs.
def experiment_design(conn) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The experiments and their arms' expected shares (dbt staging views), as attribution and the scorecard read them."""
    experiments = conn.execute(
        "SELECT experiment_id, model_id, control_variant, start_date FROM staging.stg_experiments"
    ).df()
    variants = conn.execute("SELECT experiment_id, variant, expected_share FROM staging.stg_experiment_variants").df()
    return experiments, variants


def arm_stats(row) -> ArmStats:
    return ArmStats(int(row["n"]), float(row["value_sum"]), float(row["value_sum_sq"]))


def ratio_arm_stats(row) -> RatioArmStats:
    return RatioArmStats(
        int(row["n"]),
        float(row["value_sum"]),
        float(row["value_sum_sq"]),
        float(row["denominator_sum"]),
        float(row["denominator_sum_sq"]),
        float(row["value_denominator_sum"]),
    )


def cuped_arm_stats(row) -> CupedArmStats:
    return CupedArmStats(
        int(row["n"]),
        float(row["value_sum"]),
        float(row["value_sum_sq"]),
        float(row["covariate_sum"]),
        float(row["covariate_sum_sq"]),
        float(row["value_covariate_sum"]),
    )


def arm_events(arm, metric_type: str) -> float:
    """Events an arm's test rests on: for a proportion the fewer of units with y = 1 and y = 0; for a mean
    the effective number of units carrying the sum, (sum y)^2 / sum y^2; for a ratio the lesser of that
    for its numerator and its denominator (orchestration.lib.stats.effective_events)."""
    if metric_type == "proportion":
        return proportion_events(int(arm["n"]), float(arm["value_sum"]))
    events = effective_events(float(arm["value_sum"]), float(arm["value_sum_sq"]))
    if metric_type == "ratio":
        events = min(events, effective_events(float(arm["denominator_sum"]), float(arm["denominator_sum_sq"])))
    return events


def _no_variance(arm, metric_type: str) -> str | None:
    n = int(arm["n"])
    if metric_type == "ratio":
        ratio = ratio_arm_stats(arm)
        if not ratio.den_sum:
            return f"its {n} units have a zero denominator"
        scale = ratio.num_sum_sq / n / (ratio.den_sum / n) ** 2
        return (
            None if not has_no_variance(ratio.unit_variance, scale) else f"the ratio is {ratio.ratio:.4g} in every unit"
        )
    plain = arm_stats(arm)
    return None if not has_no_variance(plain.variance, plain.total_sq / n) else f"all {n} units have {plain.mean:.4g}"


def degenerate_reason(control, treatment, metric_type: str, s: AttributionSettings) -> str | None:
    """Why a comparison cannot be tested (and must publish no p-value or interval), or None.

    With no variance in one arm the Welch test runs on the other arm's
    variance alone and reports significance that an exact test does not
    (0 of 29 refunds vs 3 of 30: Welch p 0.08, Fisher's exact 0.24; vs 13 of
    300: Welch p 0.0003). Too few events make the normal approximation wrong
    in the same direction.
    """
    reasons = []
    for arm in (control, treatment):
        n, name = int(arm["n"]), f"{arm['variant']} arm"
        if n < 2:
            reasons.append(f"{name}: {n} unit(s), no variance to test")
        elif why := _no_variance(arm, metric_type):
            reasons.append(f"{name}: no variance ({why})")
        elif (events := arm_events(arm, metric_type)) < s.min_events_per_arm:
            reasons.append(f"{name}: {events:.3g} events (< min_events_per_arm {s.min_events_per_arm:g})")
    return "; ".join(reasons) or None


def covariate_balance(control, treatment, s: AttributionSettings) -> float:
    """p-value of equal pre-period covariate means between the arms (stats.covariate_balance_p_value).

    NaN (not tested) when the covariate could not carry the test by the rule a
    metric's own test follows (degenerate_reason): an arm with n < 2, no
    covariate variance, or fewer than min_events_per_arm events in it (a 0/1
    covariate counts as a proportion): a mean over a handful of events is too
    far from normal for a verdict at p < 0.001.
    """
    arms = [
        {
            "variant": a["variant"],
            "n": a["n"],
            "value_sum": float(a["covariate_sum"]),
            "value_sum_sq": float(a["covariate_sum_sq"]),
        }
        for a in (control, treatment)
    ]
    binary = all(a["value_sum_sq"] == a["value_sum"] for a in arms)  # every x is 0 or 1
    if degenerate_reason(*arms, "proportion" if binary else "mean", s):
        return NAN
    return covariate_balance_p_value(cuped_arm_stats(control), cuped_arm_stats(treatment))


def covariate_imbalance_reason(row: dict, s: AttributionSettings) -> str | None:
    """Why a result row's pre-period covariate makes it untrustworthy, or None (balanced, not tested, ratio)."""
    p = row["covariate_balance_p_value"]
    if _is_missing(p) or not p < s.covariate_balance_alpha:
        return None
    return (
        f"pre-period covariate imbalanced: mean {row['covariate_mean_control']:.4g} ({row['control_variant']}) "
        f"vs {row['covariate_mean_treatment']:.4g} ({row['treatment_variant']}), t-test p = {p:.2g} "
        f"< covariate_balance_alpha {s.covariate_balance_alpha:g}; CUPED not used"
    )


INFERENCE_COLUMNS = (
    "absolute_se",
    "absolute_ci_low",
    "absolute_ci_high",
    "relative_se",
    "relative_ci_low",
    "relative_ci_high",
    "degrees_of_freedom",
    "p_value",
    "cuped_absolute_ci_low",
    "cuped_absolute_ci_high",
    "cuped_relative_ci_low",
    "cuped_relative_ci_high",
    "cuped_p_value",
    "decision_p_value",
    "sequential_absolute_ci_low",
    "sequential_absolute_ci_high",
    "sequential_relative_ci_low",
    "sequential_relative_ci_high",
    "sequential_p_value",
    "mde_absolute",
    "mde_relative",
)


def _compare(
    control, treatment, metric_type: str, window: str, s: AttributionSettings, degenerate: bool = False
) -> dict:
    """Fixed-horizon, CUPED and sequential results; `estimate` names the one decisions use.

    ``degenerate``: keep the point estimates, publish no SE, interval, df, p-value or MDE.
    """
    out = _compare_all(control, treatment, metric_type, window, s)
    if degenerate:
        out |= dict.fromkeys(INFERENCE_COLUMNS, NAN)
        out["_primary"] = without_inference(out["_primary"])
    return out


# a covariate that predicts every unit's outcome (it is the outcome: a buyer's pre-period conversion repeated after)
# leaves CUPED no noise to estimate: a zero-width interval and no p-value, published as "not tested" but
# decision-grade with an MDE of 0; the unadjusted estimate is the honest one
MAX_VARIANCE_REDUCTION = 1 - 1e-6


def _cuped_has_noise(cuped, c_arm, t_arm) -> bool:
    """Whether CUPED narrows the interval without emptying it: some variance reduction, not all of it, and
    adjusted variance left in each arm."""
    reduction = cuped.variance_reduction
    if math.isnan(reduction) or not 0 < reduction < MAX_VARIANCE_REDUCTION:
        return False
    return c_arm.adjusted_variance(cuped.theta) > 0 and t_arm.adjusted_variance(cuped.theta) > 0


def _compare_all(control, treatment, metric_type: str, window: str, s: AttributionSettings) -> dict:
    out: dict = {}
    if metric_type == "ratio":
        c, t = ratio_arm_stats(control), ratio_arm_stats(treatment)
        primary = compare_ratios(c, t, s.alpha)
        out |= {
            f"cuped_{k}": NAN
            for k in (
                "absolute_lift",
                "absolute_ci_low",
                "absolute_ci_high",
                "relative_lift",
                "relative_ci_low",
                "relative_ci_high",
                "p_value",
                "theta",
                "variance_reduction",
            )
        }
        out |= {
            "covariate_mean_control": NAN,
            "covariate_mean_treatment": NAN,
            "covariate_balance_p_value": NAN,
            "covariate_balanced": None,
        }
        out |= primary.as_dict() | {"estimate": "delta_method_ratio"}
        mde = minimum_detectable_effect(
            c.unit_variance, c.n, t.unit_variance, t.n, s.alpha, s.power, primary.mean_control
        )
    else:
        fixed = compare_means(arm_stats(control), arm_stats(treatment), s.alpha)
        c_arm, t_arm = cuped_arm_stats(control), cuped_arm_stats(treatment)
        cuped = compare_cuped(c_arm, t_arm, s.alpha)
        balance_p = covariate_balance(control, treatment, s)
        # an imbalanced covariate would shift the estimate by theta x its difference, not only narrow the CI; one
        # too thin to test (fewer than min_events_per_arm events in an arm, no variance) is too thin to adjust by: a
        # trial's theta of -18.6, fitted on the one unit with a pre-period order, moved the value by 68.5 a unit
        balanced = not balance_p < s.covariate_balance_alpha
        usable = balanced and not math.isnan(balance_p) and _cuped_has_noise(cuped, c_arm, t_arm)
        primary = cuped.result if usable else fixed
        r = cuped.result
        out |= fixed.as_dict() | {
            "cuped_absolute_lift": r.absolute_lift,
            "cuped_absolute_ci_low": r.absolute_ci_low,
            "cuped_absolute_ci_high": r.absolute_ci_high,
            "cuped_relative_lift": r.relative_lift,
            "cuped_relative_ci_low": r.relative_ci_low,
            "cuped_relative_ci_high": r.relative_ci_high,
            "cuped_p_value": r.p_value,
            "cuped_theta": cuped.theta,
            "cuped_variance_reduction": cuped.variance_reduction,
            "covariate_mean_control": c_arm.x_sum / c_arm.n if c_arm.n else NAN,
            "covariate_mean_treatment": t_arm.x_sum / t_arm.n if t_arm.n else NAN,
            "covariate_balance_p_value": balance_p,
            "covariate_balanced": None if math.isnan(balance_p) else balanced,
            "estimate": "cuped" if usable else "welch",
        }
        var_c, var_t = (
            (c_arm.adjusted_variance(cuped.theta), t_arm.adjusted_variance(cuped.theta))
            if usable
            else (arm_stats(control).variance, arm_stats(treatment).variance)
        )
        mde = minimum_detectable_effect(var_c, c_arm.n, var_t, t_arm.n, s.alpha, s.power, fixed.mean_control)
    out |= {
        "decision_p_value": primary.p_value,
        "mde_absolute": mde.absolute,
        "mde_relative": mde.relative,
        "_primary": primary,
    }
    if window == "cumulative":
        seq = sequential_ci(primary, s.alpha, s.sequential_tau)
        out |= {
            "sequential_absolute_ci_low": seq.absolute_ci_low,
            "sequential_absolute_ci_high": seq.absolute_ci_high,
            "sequential_relative_ci_low": seq.relative_ci_low,
            "sequential_relative_ci_high": seq.relative_ci_high,
            "sequential_p_value": seq.p_value,
        }
    else:
        # a day window is a new sample every day, not one growing sample looked at daily:
        # an always-valid interval over looks has no meaning there
        out |= dict.fromkeys(
            (
                "sequential_absolute_ci_low",
                "sequential_absolute_ci_high",
                "sequential_relative_ci_low",
                "sequential_relative_ci_high",
                "sequential_p_value",
            ),
            NAN,
        )
    return out


def experiment_results(
    stats: pd.DataFrame,
    experiments: pd.DataFrame,
    variants: pd.DataFrame,
    metrics: dict,
    settings: AttributionSettings = AttributionSettings(),
    non_negative: set[str] | frozenset = frozenset(),
) -> pd.DataFrame:
    """One row per experiment, metric, treatment variant, window and as-of date.

    ``experiments``: experiment_id, model_id, control_variant; ``variants``:
    experiment_id, variant, expected_share; ``metrics``: the experiment_metrics config; ``non_negative``: the
    metrics no unit's value of which is negative besides the proportions (experiment_metrics.non_negative_metrics).
    """
    merged = stats.merge(experiments[["experiment_id", "model_id", "control_variant"]], on="experiment_id")
    srm = _srm_by_experiment_day(merged, variants)
    rows, primaries = [], []  # primaries[i]: the decision estimate of rows[i]
    # plain dicts, not per-group DataFrame filtering: a backfill has thousands of groups
    groups: dict[tuple, list[dict]] = {}
    for arm in merged.to_dict("records"):
        groups.setdefault(tuple(arm[k] for k in GRAIN), []).append(arm)
    for key in sorted(groups):
        experiment_id, metric, window, as_of = key
        arms = sorted(groups[key], key=lambda a: a["variant"])
        c = next((a for a in arms if a["variant"] == a["control_variant"]), None)
        if c is None:
            continue  # no control units yet: nothing to compare against
        spec = metrics.get(metric, {})
        for t in (a for a in arms if a["variant"] != a["control_variant"]):
            degenerate = degenerate_reason(c, t, c["metric_type"], settings)
            result = _compare(c, t, c["metric_type"], window, settings, degenerate is not None)
            primary: LiftResult = result.pop("_primary")
            primaries.append(primary)
            srm_p = srm.get((experiment_id, as_of), NAN)
            guardrail = bool(spec.get("guardrail", False))
            imbalance = covariate_imbalance_reason(
                result | {"control_variant": c["variant"], "treatment_variant": t["variant"]}, settings
            )
            untrusted = [r for r in (srm_reason(srm_p), imbalance) if r]
            trusted = not untrusted  # an untestable SRM (NaN) is not trustworthy either
            grade_reasons = [degenerate] if degenerate else []
            grade_reasons += [
                f"{a['variant']} arm: {int(a['n'])} units (< min_units_per_arm {settings.min_units_per_arm:g})"
                for a in (c, t)
                if int(a["n"]) < settings.min_units_per_arm
            ]
            if not trusted:
                grade_reasons.append(NOT_TRUSTED)
            rows.append(
                dict(zip(GRAIN, key))
                | result
                | {
                    "model_id": c["model_id"],
                    "metric_type": c["metric_type"],
                    "control_variant": c["control_variant"],
                    "treatment_variant": t["variant"],
                    "is_guardrail": guardrail,
                    "guardrail_verdict": guardrail_verdict(
                        primary,
                        float(spec.get("non_inferiority_margin", 0.0)),
                        spec.get("direction") == "lower_is_better",
                        settings.alpha,
                    )
                    if guardrail
                    else None,
                    "srm_p_value": srm_p,
                    "trustworthy": trusted,
                    "untrusted_reason": "; ".join(untrusted) or None,
                    "events_control": arm_events(c, c["metric_type"]),
                    "events_treatment": arm_events(t, c["metric_type"]),
                    "degenerate_reason": degenerate,
                    "exact_p_value": fisher_exact_p(
                        float(c["value_sum"]), int(c["n"]), float(t["value_sum"]), int(t["n"])
                    )
                    if degenerate and c["metric_type"] == "proportion"
                    else NAN,
                    "decision_grade": not grade_reasons,
                    "decision_grade_reason": "; ".join(grade_reasons) or None,
                }
            )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    # multiple testing across the metrics of one experiment arm, window and day; a degenerate row has
    # no p-value, so it is not in its family (its tiny Welch p would loosen the others' correction)
    family = ["experiment_id", "treatment_variant", "analysis_window", "as_of_date"]
    adjusted = pd.Series(NAN, index=frame.index)
    for index in frame.groupby(family, sort=False).indices.values():
        adjusted.iloc[index] = adjust_p_values(
            frame["decision_p_value"].iloc[index].tolist(), settings.multiple_testing
        )
    frame["p_value_adjusted"] = adjusted
    frame["multiple_testing"] = settings.multiple_testing
    frame["significant"] = pd.Series(
        [None if math.isnan(p) else bool(p < settings.alpha) for p in adjusted], index=frame.index, dtype=object
    )
    levels = [adjusted_alpha(p, pa, settings.alpha) for p, pa in zip(frame["decision_p_value"], adjusted)]
    intervals = [interval_at(primary, level) for primary, level in zip(primaries, levels)]
    frame["adjusted_ci_level"] = [1 - level for level in levels]
    for i, column in enumerate(
        (
            "adjusted_absolute_ci_low",
            "adjusted_absolute_ci_high",
            "adjusted_relative_ci_low",
            "adjusted_relative_ci_high",
        )
    ):
        frame[column] = [interval[i] for interval in intervals]
    # a metric never negative cannot fall by more than 100%: the delta method's interval, symmetric, reached -178%
    # on a trial's 18-unit holdout (CUPED's and the sequential intervals are still the delta method's); Fieller's
    # (plain rows, fixed and adjusted) passes -100% where the treatment's mean is not itself distinguishable from 0.
    # Cut to the possible values, each covers the lift as often as before and excludes 0 exactly when it did
    possible = frame["metric_type"].eq("proportion") | frame["metric"].isin(non_negative)
    for column in RELATIVE_LOWER_BOUNDS:
        frame[column] = frame[column].mask(possible & (frame[column] < -1.0), -1.0)
    return frame[RESULT_COLUMNS]


RELATIVE_LOWER_BOUNDS = (
    "relative_ci_low",
    "cuped_relative_ci_low",
    "sequential_relative_ci_low",
    "adjusted_relative_ci_low",
)


NOT_TRUSTED = "not trustworthy (see untrusted_reason)"


def srm_reason(srm_p: float) -> str | None:
    """Why the assignment cannot be trusted, or None."""
    if math.isnan(srm_p):
        return "sample ratio not testable (no units, or arms without an expected_share)"
    if srm_p < SRM_THRESHOLD:
        return f"sample ratio mismatch (p = {srm_p:.2g})"
    return None


def covariate_imbalanced(results: pd.DataFrame) -> pd.Series:
    """Per result row: whether its pre-period covariate was found imbalanced (False where balanced or not tested)."""
    if "covariate_balanced" not in results:
        return pd.Series(False, index=results.index)
    return results["covariate_balanced"].map(lambda b: not _is_missing(b) and not bool(b)).astype(bool)


def covariate_imbalance_notes(results: pd.DataFrame) -> list[str]:
    """For the asset's log: one line per experiment arm, metric and window whose covariate was imbalanced, with
    how many of the run's days were and the latest one's means, p-value and the lift reported instead of CUPED's."""
    bad = results[covariate_imbalanced(results)]
    notes = []
    keys = ["experiment_id", "treatment_variant", "metric", "analysis_window"]
    for key, rows in bad.sort_values("as_of_date").groupby(keys, sort=True):
        r = rows.iloc[-1]
        notes.append(
            f"{' / '.join(map(str, key))}: {len(rows)} day(s), latest {pd.Timestamp(r['as_of_date']).date()}: "
            f"covariate mean {r['covariate_mean_control']:.4g} ({r['control_variant']}) vs "
            f"{r['covariate_mean_treatment']:.4g}, t-test p = {r['covariate_balance_p_value']:.2g}; "
            f"reports the unadjusted lift {r['absolute_lift']:+.4g}, not CUPED's {r['cuped_absolute_lift']:+.4g}; "
            "not trustworthy"
        )
    return notes


# the raw tables a lift reads (marts.experiment_stats' sources and the experiment design): a failed gate holds back
# its own table's day only (macros/held_back.sql), so a predictions or labels day held back changes no lift
ATTRIBUTION_TABLES = frozenset({"assignments", "experiments", "experiment_variants", "orders", "sessions"})


def mark_failed_gates(results: pd.DataFrame, experiments: pd.DataFrame, failed_gates: pd.DataFrame) -> pd.DataFrame:
    """A result summarises every day since its experiment started: if any of those days failed a quality gate of
    a table it reads (ATTRIBUTION_TABLES: that day's rows never reached the marts), the result is not trustworthy.
    A failed day that names the experiments its failing rows belong to (``experiments``, JSON: an experiment design
    gate's) concerns those only: another experiment's wrong shares say nothing of this one's.

    ``experiments``: experiment_id, start_date; ``failed_gates``: date, suite, table_name (and experiments).
    """
    if "table_name" in failed_gates:
        failed_gates = failed_gates[failed_gates["table_name"].isin(ATTRIBUTION_TABLES)]
    if results.empty or failed_gates.empty:
        return results
    out = results.copy()
    starts = experiments.set_index("experiment_id")["start_date"].map(pd.Timestamp)
    gate_days = pd.to_datetime(failed_gates["date"])
    named = [
        set(json.loads(e)) if isinstance(e, str) else None
        for e in failed_gates.get("experiments", pd.Series(None, index=failed_gates.index))
    ]
    for i, row in out.iterrows():
        start, as_of = starts.get(row["experiment_id"]), pd.Timestamp(row["as_of_date"])
        concerned = pd.Series([ids is None or row["experiment_id"] in ids for ids in named], index=failed_gates.index)
        hit = failed_gates[(gate_days >= start) & (gate_days <= as_of) & concerned]
        if hit.empty:
            continue
        _untrust(out, i, row, _failed_gates_reason(hit))
    return out


def _untrust(out: pd.DataFrame, i, row: dict | pd.Series, reason: str) -> None:
    """Result row ``i`` of ``out`` is not trustworthy for ``reason`` too (beside any reason it had), so not
    decision-grade either."""
    out.at[i, "trustworthy"] = False
    out.at[i, "untrusted_reason"] = "; ".join(r for r in (row["untrusted_reason"], reason) if isinstance(r, str))
    if "decision_grade" in out.columns:
        grade = row["decision_grade_reason"] if isinstance(row["decision_grade_reason"], str) else ""
        out.at[i, "decision_grade"] = False
        out.at[i, "decision_grade_reason"] = (
            grade if NOT_TRUSTED in grade else "; ".join(r for r in (grade, NOT_TRUSTED) if r)
        )


# Per experiment naming a model and as-of date of the run (the days marts.experiment_stats has): its control
# (holdout) units assigned by the end of that day, and those of them with a prediction of the experiment's model
# at or after their assignment and by the end of that day (cumulative, as the results are). One pass: each
# control unit's first such prediction, then a count per day.
CONTROL_EXPOSURE_SQL = """
WITH days AS (
    SELECT DISTINCT s.experiment_id, s.as_of_date, e.model_id, e.control_variant
    FROM marts.experiment_stats s JOIN staging.stg_experiments e USING (experiment_id)
    WHERE s.as_of_date BETWEEN $first AND $last AND e.model_id IS NOT NULL
),
controls AS (
    SELECT a.experiment_id, a.user_id, a.assigned_date, min(p.prediction_date) AS exposed_date
    FROM staging.stg_assignments a
    JOIN (SELECT DISTINCT experiment_id, model_id, control_variant FROM days) e
        ON e.experiment_id = a.experiment_id AND e.control_variant = a.variant
    LEFT JOIN staging.stg_predictions p
        ON p.model_id = e.model_id AND p.user_id = a.user_id AND p.predicted_at >= a.assigned_at
       AND p.prediction_date <= $last
    WHERE a.assigned_date <= $last
    GROUP BY a.experiment_id, a.user_id, a.assigned_date
)
SELECT d.experiment_id, d.as_of_date, d.model_id,
    count(c.user_id) AS control_units,
    count(c.user_id) FILTER (WHERE c.exposed_date <= d.as_of_date) AS exposed_units
FROM days d
LEFT JOIN controls c ON c.experiment_id = d.experiment_id AND c.assigned_date <= d.as_of_date
GROUP BY d.experiment_id, d.as_of_date, d.model_id
ORDER BY d.experiment_id, d.as_of_date
"""


def control_exposure(conn, first, last) -> pd.DataFrame:
    """CONTROL_EXPOSURE_SQL over the as-of dates ``first`` .. ``last``: experiment_id, as_of_date, model_id,
    control_units, exposed_units."""
    return conn.execute(CONTROL_EXPOSURE_SQL, {"first": first, "last": last}).df()


def control_exposure_reason(model_id: str, exposed: int, units: int) -> str | None:
    """Why a lift credited to ``model_id`` is not its value: its holdout was scored by it. Any exposed unit counts:
    the holdout is defined as never scored, and the count and share say how much it matters."""
    if not exposed:
        return None
    return (
        f"control arm exposed: {exposed:,} of {units:,} control units ({exposed / units:.1%}) have predictions of "
        f"model {model_id} (the holdout must never be scored)"
    )


def exposed_control_notes(exposure: pd.DataFrame) -> list[str]:
    """For the asset's log: per experiment whose holdout its model scored, the run's last day's reason."""
    if not len(exposure):
        return []
    latest = exposure.sort_values("as_of_date").groupby("experiment_id", sort=True).tail(1)
    return [
        f"{r.experiment_id} as of {pd.Timestamp(r.as_of_date).date()}: "
        + control_exposure_reason(r.model_id, int(r.exposed_units), int(r.control_units))
        for r in latest[latest["exposed_units"] > 0].itertuples()
    ]


def mark_exposed_controls(results: pd.DataFrame, exposure: pd.DataFrame) -> pd.DataFrame:
    """Results whose experiment's control units were scored by its model by the as-of date are not trustworthy
    (a contaminated holdout biases the lift, toward zero where the model helps). ``exposure``: control_exposure's."""
    hit = exposure[exposure["exposed_units"] > 0] if len(exposure) else exposure
    if results.empty or hit.empty:
        return results
    reasons = {
        (r.experiment_id, pd.Timestamp(r.as_of_date)): control_exposure_reason(
            r.model_id, int(r.exposed_units), int(r.control_units)
        )
        for r in hit.itertuples()
    }
    out = results.copy()
    for i, row in out.iterrows():
        if reason := reasons.get((row["experiment_id"], pd.Timestamp(row["as_of_date"]))):
            _untrust(out, i, row, reason)
    return out


def _failed_gates_reason(hit: pd.DataFrame) -> str:
    """Every suite that failed on a result's days, with its days (the first few, consecutive ones as a range): a
    trial's reason named only the first (a sessions day), not the orders days held back that moved its revenue
    lift."""
    parts = []
    by_first_day = hit.assign(date=pd.to_datetime(hit["date"])).sort_values(["date", "suite"])
    for suite, rows in by_first_day.groupby("suite", sort=False):
        days = {d.date() for d in rows["date"]}
        parts.append(f"quality gate {suite} failed on {days_in_words(days, GATE_DAYS_SHOWN)}")
    return "; ".join(parts)


def _srm_by_experiment_day(merged: pd.DataFrame, variants: pd.DataFrame) -> dict:
    """Chi-square of assigned units vs expected shares, per experiment and as-of date.

    Assigned units per arm = the largest cumulative n over the metrics (metrics
    with a maturity delay count fewer units), independent of row order.
    """
    cumulative = merged[merged["analysis_window"] == "cumulative"]
    units = cumulative.groupby(["experiment_id", "as_of_date", "variant"])["n"].max()
    shares = variants.set_index(["experiment_id", "variant"])["expected_share"].to_dict()
    arms: dict[tuple, list[tuple[int, float]]] = {}
    for (experiment_id, as_of, variant), n in units.items():
        arms.setdefault((experiment_id, as_of), []).append((int(n), float(shares.get((experiment_id, variant), NAN))))
    return {key: srm_p_value([n for n, _ in a], [s for _, s in a]) for key, a in arms.items()}


IMPACT_SCHEMA = {
    "model_id": V,
    "experiment_id": V,
    "treatment_variant": V,
    "analysis_window": V,
    "as_of_date": D,
    "value_metric": V,
    "treated_units": I,
    "incremental_value": F,
    "incremental_value_ci_low": F,
    "incremental_value_ci_high": F,
    "model_cost": F,
    "net_value": F,
    "net_value_ci_low": F,
    "net_value_ci_high": F,
    "roi": F,
    "roi_ci_low": F,
    "roi_ci_high": F,
    "trustworthy": B,
    "untrusted_reason": V,
    "decision_grade": B,
    "decision_grade_reason": V,
}
IMPACT_COLUMNS = list(IMPACT_SCHEMA)


def model_impact(
    results: pd.DataFrame,
    stats: pd.DataFrame,
    costs: pd.DataFrame,
    value_metric: str,
    settings: AttributionSettings = AttributionSettings(),
    lower_is_better: bool = False,
) -> pd.DataFrame:
    """Incremental value of each model = lift in ``value_metric`` per unit x treated units, net of model cost
    (``lower_is_better``: the metric is a cost per unit, so its fall is the value).

    ``costs``: model_id, experiment_id, analysis_window, as_of_date, model_cost (the
    day's cost for 'day', cost since the experiment started for 'cumulative').
    With several treatment arms, each arm's row carries the cost in proportion to its treated units.
    """
    rows = []
    grain = ["experiment_id", "analysis_window", "as_of_date"]
    arms_by_key: dict[tuple, dict[str, dict]] = {}
    for arm in stats[stats["metric"] == value_metric].to_dict("records"):
        arms_by_key.setdefault(tuple(arm[k] for k in grain), {})[arm["variant"]] = arm
    cost_by_key = costs.groupby(["model_id", *grain])["model_cost"].sum().to_dict() if len(costs) else {}
    for r in results[results["metric"] == value_metric].to_dict("records"):
        key = tuple(r[k] for k in grain)
        arms = arms_by_key[key]
        control, treatment = arms[r["control_variant"]], arms[r["treatment_variant"]]
        degenerate = degenerate_reason(control, treatment, r["metric_type"], settings) is not None
        result = _compare(control, treatment, r["metric_type"], r["analysis_window"], settings, degenerate)["_primary"]
        # the model serves every treatment arm: each arm carries its share of the cost by treated units
        treated_all = sum(int(a["n"]) for v, a in arms.items() if v != r["control_variant"])
        cost = float(cost_by_key.get((r["model_id"], *key), 0.0)) * (
            int(treatment["n"]) / treated_all if treated_all else 0.0
        )
        value = incremental_value(result, int(treatment["n"]), cost, settings.alpha, lower_is_better)
        rows.append(
            {
                "model_id": r["model_id"],
                "experiment_id": r["experiment_id"],
                "treatment_variant": r["treatment_variant"],
                "analysis_window": r["analysis_window"],
                "as_of_date": r["as_of_date"],
                "value_metric": value_metric,
                "treated_units": int(treatment["n"]),
                "incremental_value": value.value,
                "incremental_value_ci_low": value.value_ci_low,
                "incremental_value_ci_high": value.value_ci_high,
                "model_cost": cost,
                "net_value": value.net_value,
                "net_value_ci_low": value.net_ci_low,
                "net_value_ci_high": value.net_ci_high,
                "roi": value.roi,
                "roi_ci_low": value.roi_ci_low,
                "roi_ci_high": value.roi_ci_high,
                "trustworthy": r["trustworthy"],
                "untrusted_reason": r["untrusted_reason"],
                # the value metric's verdict: a degenerate or small-sample lift makes no decision-grade value either
                "decision_grade": r.get("decision_grade", True),
                "decision_grade_reason": r.get("decision_grade_reason"),
            }
        )
    return pd.DataFrame(rows, columns=IMPACT_COLUMNS)


# --- how every surface words the decisions (summary, report, UI) ---------------------------------


def value_basis(metrics, lower_is_better: bool) -> str:
    """What a model's value is made of, naming its value metric(s): 'revenue_per_user lift x treated users', or for
    a cost per unit 'the fall in claims_cost x treated users (lower is better)' (a trial's headers said revenue)."""
    names = ", ".join(sorted({str(m) for m in (metrics if metrics is not None else ()) if m == m})) or "value metric"
    return (
        f"the fall in {names} x treated users (lower is better)" if lower_is_better else f"{names} lift x treated users"
    )


ROI_LABEL = "ROI = net value / cost [95% CI]"
ROI_NOTE = (
    "ROI = net value / cost: +100% means each unit of cost came back with as much again on top; "
    "0% is break-even. Its 95% CI is the net value's divided by the cost (a known amount)."
)


def _is_missing(x) -> bool:
    return x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x))


def percent_text(x) -> str:
    return "n/a" if _is_missing(x) else f"{x:+,.0%}"


def roi_text(roi, low, high) -> str:
    """'+390% [-300%, +1,070%]': net return per unit of cost with its CI, never an 'x' multiple."""
    if _is_missing(roi):
        return "n/a"
    return percent_text(roi) + ("" if _is_missing(low) else f" [{percent_text(low)}, {percent_text(high)}]")


# the always-valid interval (sequential_relative_ci_*): the one that keeps its error rate when results are read every
# day (a trial's conversion read "significant: yes" on five mornings in a row, its confidence sequence on none)
DAILY_LOOKS = "always-valid CI (daily looks)"
DAILY_LOOKS_NOTE = (
    "always-valid CI (daily looks): the relative lift's confidence sequence, valid however often the results are "
    "read, and whether the difference clears it (its sequential p-value, on the absolute difference); a row "
    "'significant' whose always-valid verdict is 'includes 0' may be a peeking artefact: wait for it to exclude 0 "
    "(or decide on the planned day alone)"
)


def daily_looks_text(low: float, high: float, p_value: float, alpha: float, pct) -> str:
    """'[low, high] excludes 0' or '... includes 0', or 'n/a' (a day window or a test that was not run). The verdict
    is the sequential p-value's, on the absolute difference: the relative interval's delta-method ends are
    approximate and shrink a fall's noise (a re-trial: [-98.7%, -6.9%] beside a sequential p of 0.177)."""
    if pd.isna(low) or pd.isna(high):  # None, NaN or pandas' NA (a report's nullable column)
        return "n/a"
    shown = f"[{pct(low)}, {pct(high)}]"
    apart = low > 0 or high < 0
    if pd.isna(p_value):
        return f"{shown} {'excludes' if apart else 'includes'} 0"
    if p_value < alpha:
        return f"{shown} excludes 0"
    if apart:
        return f"{shown} includes 0 on the difference (sequential p {p_value:.3g}; the relative ends are approximate)"
    return f"{shown} includes 0"


def significance_text(significant) -> str:
    """'yes' / 'no' after the multiple-testing correction; 'not tested' for a degenerate comparison."""
    return "not tested" if _is_missing(significant) else ("yes" if bool(significant) else "no")


# Where a 95% interval lies against 0, and how the net value's is worded beside it (summary, report): the money's
# significance cue, since decision_grade says only that the numbers rest on enough trustworthy data
CI_SIGN_TEXT = {
    "positive": "above 0 (95% CI)",
    "negative": "BELOW 0 (95% CI)",
    "includes_zero": "not significant: 95% CI includes 0",
    "unknown": "n/a",
}


def exact_test_text(p: float) -> str:
    """ "; Fisher's exact p 0.0265 (two-sided, unadjusted)" beside a degenerate proportion's "not tested", else ''."""
    return "" if p is None or p != p else f"; Fisher's exact p {p:.4f} (two-sided, unadjusted)"


NET_VALUE_NOT_SHOWN = "its 95% CI includes 0, so the model's value is not shown to differ from zero"


def ci_sign(low, high) -> str:
    """Where a 95% interval lies against 0: 'positive', 'negative', 'includes_zero' or 'unknown'."""
    if _is_missing(low) or _is_missing(high):
        return "unknown"
    return "positive" if low > 0 else "negative" if high < 0 else "includes_zero"


def arms_family_notes(results: pd.DataFrame, alpha: float) -> list[str]:
    """For each experiment with several treatment arms among ``results`` (one window and day): each arm is its own
    family of the correction, so the experiment tests one family per arm at alpha; the rows significant at alpha
    but not at alpha / arms (a family-wise error over every arm) are named. A trial read two such rows as
    significant: the footnote said the correction was over the experiment's metrics."""
    notes = []
    for experiment_id, rows in results.groupby("experiment_id", sort=True):
        arms = rows["treatment_variant"].nunique()
        if arms < 2:
            continue
        strict = alpha / arms
        p = rows["p_value_adjusted"].astype(float)
        borderline = rows[(p < alpha) & ~(p < strict)]
        named = ", ".join(
            f"{model_arm(r.model_id, r.treatment_variant)} {r.metric} ({r.p_value_adjusted:.4f})"
            for r in borderline.itertuples()
        )
        notes.append(
            f"{experiment_id} has {arms} treatment arms, each its own family: for an error rate over all of them, "
            f"compare its adjusted p-values with alpha / {arms} = {strict:g}"
            + (f"; significant at {alpha:g} only: {named}" if named else "")
        )
    return notes


def relative_across_zero_note(results: pd.DataFrame, models: pd.Series) -> str | None:
    """The significant CUPED rows of ``results`` (one window and day; ``ci_low``/``ci_high``: the relative interval
    shown, ``models``: each row's model as said) whose relative interval includes 0, named: the test is of the
    absolute lift. A trial's "+113.8% [-5.1%, +232.7%], significant yes" rested on 14 control donors of 184.

    Only CUPED's relative interval is still the delta method's: a plain (Welch or ratio) row's is Fieller's, which
    excludes 0 whenever the unadjusted p-value is below alpha, so whenever the row is significant (the adjusted
    p-value is no smaller). Without an ``estimate`` column every row is taken as it comes."""
    significant = results["significant"].astype("boolean").fillna(False).astype(bool)
    delta = results["estimate"].eq("cuped") if "estimate" in results else True
    across = significant & delta & (results["ci_low"] < 0) & (results["ci_high"] > 0)
    if not across.any():
        return None
    models = pd.Series(list(models), index=results.index)
    named = ", ".join(f"{m} {metric}" for m, metric in zip(models[across], results.loc[across, "metric"], strict=True))
    return (
        f"significant beside a relative interval across 0 ({named}): the test is of the absolute lift, whose interval "
        "excludes 0; CUPED's relative interval (its lift / the control's mean, by the delta method) widens where the "
        "control's mean rests on few events: read the direction from the test, the size from cuped_absolute_ci_*"
    )


def relative_unbounded_note(results: pd.DataFrame, models: pd.Series) -> str | None:
    """The tested rows of ``results`` (as relative_across_zero_note's) with a relative lift but no relative interval,
    named: Fieller's interval is unbounded where the control's mean is not itself clear of 0 (a trial's conversion
    of 3 of 18 controls), and "n/a" beside a significant lift said nothing of why."""
    tested = results["degenerate_reason"].isna() if "degenerate_reason" in results else True
    unbounded = tested & results["lift"].notna() & results["ci_low"].isna()
    if not unbounded.any():
        return None
    models = pd.Series(list(models), index=results.index)
    named = ", ".join(
        f"{m} {metric}" for m, metric in zip(models[unbounded], results.loc[unbounded, "metric"], strict=True)
    )
    return (
        f"no relative interval ({named}): the control's mean is not clear of 0 at the test's level, so the interval "
        "of treatment / control (Fieller's) is unbounded; the absolute lift's interval (absolute_ci_*) holds"
    )


def cost_split_notes(impact: pd.DataFrame) -> list[str]:
    """For each model whose cost ``impact`` splits across several treatment arms (by treated users: model_costs has
    no arm), what that assumes: a trial's arm flagging twice as many users ran at +1,696% ROI against +795% for the
    other, equal once each arm's own cost was counted."""
    if "treatment_variant" not in impact:
        return []
    arms = impact.groupby("model_id", sort=True)["treatment_variant"].nunique()
    return [
        f"{model_id}: its model cost is split across its {n} treatment arms by treated users (model_costs has no "
        "arm): where an arm costs more to run (more predictions, more actions), its net value and ROI are overstated "
        "and the other's understated; compare the arms' lifts, or cost each arm as a model of its own"
        for model_id, n in arms.items()
        if n > 1
    ]


def correction_name(method) -> str:
    return {"holm": "Holm", "bh": "BH"}.get(method, str(method))


def arm_variants(rows: pd.DataFrame) -> list:
    """Each row's treatment arm where its experiment has several among ``rows``, else None (one arm, or rows
    without treatment_variant): the arms every surface names (asset metadata, summary, report)."""
    if "experiment_id" not in rows or "treatment_variant" not in rows:
        return [None] * len(rows)
    arms = rows.groupby("experiment_id", dropna=False)["treatment_variant"].transform("nunique")
    return [v if n > 1 else None for v, n in zip(rows["treatment_variant"], arms)]


def controls_of(results: pd.DataFrame) -> dict:
    """experiment_id -> its control_variant, from result rows (experiment_results, or rows carrying both)."""
    return dict(zip(results["experiment_id"], results["control_variant"])) if len(results) else {}


def arm_names(rows: pd.DataFrame, controls: dict | None = None) -> list[str]:
    """'small vs regular' for a row of an experiment with several treatment arms, '' for one with a single arm;
    the control is the row's control_variant, else ``controls`` (experiment_id -> control_variant)."""
    if "control_variant" in rows:
        controls = controls_of(rows)
    controls = controls or {}
    return [
        "" if v is None else f"{v} vs {controls[e]}" if not _is_missing(controls.get(e)) else str(v)
        for v, e in zip(arm_variants(rows), rows.get("experiment_id", [None] * len(rows)))
    ]


def model_arm(model_id, arm: str) -> str:
    """A model as the summary and report name it: 'class_size: small vs regular' for an arm, else its id."""
    return f"{model_id}: {arm}" if arm else str(model_id)


def model_arms(rows: pd.DataFrame, controls: dict | None = None) -> list[str]:
    """Each row's model_arm (its arm as arm_names names it)."""
    return [model_arm(m, a) for m, a in zip(rows["model_id"], arm_names(rows, controls))]


def control_word(controls) -> str:
    """'holdout' where every control arm is a holdout (or unknown), else 'control' (class_size's control 'regular'
    is no holdout): what the surfaces call the arm a treatment is compared with."""
    return "holdout" if all(_is_missing(c) or c == "holdout" for c in controls) else "control"


def units_header(controls) -> str:
    """The header of the 'control units/treated units' column: 'units (holdout/treated)' or 'units
    (control/treated)' (control_word)."""
    return f"units ({control_word(controls)}/treated)"
