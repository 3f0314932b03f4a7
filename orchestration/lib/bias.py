"""Fairness rates and verdicts from per-group counts (marts.bias_daily or a training snapshot).

The input holds sufficient statistics only (counts and sums per day, model,
protected attribute and group), so a trailing window is judged by summing its
rows first: every rate is a ratio of window totals, never an average of daily
rates. Each rate carries a Wilson interval so a verdict on a small group is
visibly uncertain. Pure pandas/numpy/scipy, no Dagster, no DuckDB.

Pipeline: ``group_rates(rows)`` -> ``bias_verdicts(rates, thresholds)`` ->
``summarise_verdicts(verdicts)`` (one sentence per failed verdict);
``group_intervals(rates, verdicts)`` lists the groups behind each verdict with
their Wilson intervals, and ``window_tables(rows, day, thresholds)`` gives the
day's trailing-window rates and verdicts as the rows marts.bias_group_rates and
marts.bias_verdicts store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

KEYS = ["model_id", "attribute", "group_value"]
COUNT_COLUMNS = [
    "predictions",
    "positives",
    "labelled",
    "labelled_positives",
    "true_positives",
    "false_positives",
    "false_negatives",
    "true_negatives",
    "score_sum",
    "label_sum",
]
# Population columns describe the user table, not the day's traffic: they are
# not summed over the window (see group_rates).
POPULATION_COLUMNS = ["population_users", "population_total"]

DEFAULTS = {
    "min_labelled": 200,
    # disparate impact compares decisions, which need no label: a group takes part with this many predictions (two
    # trials' most-flagged group, 378 and 487 predictions in a window, was left out at min_labelled's 500)
    "min_predictions": 100,
    "disparate_impact_min": 0.8,
    "equal_opportunity_max_difference": 0.1,
    "equalized_odds_max_difference": 0.1,
    "calibration_gap_max": 0.1,
}

# rate -> (numerator, denominator columns); the denominators are sums so a
# rate is defined exactly when its confusion-matrix cells are.
RATES = {
    "selection_rate": ("positives", ("predictions",)),
    "tpr": ("true_positives", ("true_positives", "false_negatives")),
    "fpr": ("false_positives", ("false_positives", "true_negatives")),
    "precision": ("true_positives", ("true_positives", "false_positives")),
    "observed_positive_rate": ("label_sum", ("labelled",)),
}
RATE_COLUMNS = [
    *KEYS,
    *COUNT_COLUMNS,
    *POPULATION_COLUMNS,
    "n",
    *[c for name in RATES for c in (name, f"{name}_ci_low", f"{name}_ci_high")],
    "mean_score",
    "calibration_gap_group",
    "prediction_share",
    "population_share",
    "representation_ratio",
    "positive_decision",
    "favourable_rate",
    "favourable_rate_ci_low",
    "favourable_rate_ci_high",
]
DIRECTIONS = ("favourable", "harmful")
NOT_ASSESSED = (
    "fairness not assessed: the project file declares no protected_attributes "
    "(list users columns under protected_attributes to judge them)"
)


def positive_decisions(model_ids, given: dict[str, str] | None = None) -> dict[str, str]:
    """model_id -> 'favourable' | 'harmful': whether a positive decision helps or hurts the person.

    ``given`` wins; otherwise the project file's ``models.<id>.positive_decision``
    (a model it does not declare: favourable).
    """
    given = dict(given or {})
    missing = [m for m in model_ids if m not in given]
    if missing:
        from orchestration.lib.project_config import load_config

        config = load_config()
        given.update({m: config.model(m).positive_decision for m in missing})
    bad = {m: d for m, d in given.items() if d not in DIRECTIONS}
    if bad:
        raise ValueError(f"positive_decision must be one of {DIRECTIONS}, got {bad}")
    return {m: given[m] for m in model_ids}


def _wilson(successes, trials, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised Wilson score interval, the formula statsmodels uses (clipped to [0, 1]); NaN where trials <= 0."""
    successes = np.asarray(successes, dtype=float)
    trials = np.asarray(trials, dtype=float)
    n = np.where(trials > 0, trials, np.nan)
    z = -special.ndtri(alpha / 2)  # norm.isf(alpha / 2) as scipy.stats evaluates it, without importing scipy.stats
    z2 = z * z
    with np.errstate(invalid="ignore", divide="ignore"):
        p = successes / n
        denominator = 1 + z2 / n
        centre = (p + z2 / (2 * n)) / denominator
        half = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    # no success (or no failure) bounds the interval at 0 (1) exactly: centre - half rounds to ~1e-17 there
    low = np.where(successes == 0, 0.0, np.clip(centre - half, 0, 1))
    high = np.where(successes == trials, 1.0, np.clip(centre + half, 0, 1))
    return np.where(np.isnan(n), np.nan, low), np.where(np.isnan(n), np.nan, high)


def wilson_interval(successes: float, trials: float, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score (1 - alpha) interval of successes / trials; (nan, nan) when trials == 0."""
    low, high = _wilson(successes, trials, alpha)
    return float(low), float(high)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN (not inf, not an error) where the denominator is 0 or missing."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return numerator / np.where(denominator > 0, denominator, np.nan)


def group_rates(
    rows: pd.DataFrame, alpha: float = 0.05, positive_decision: dict[str, str] | None = None
) -> pd.DataFrame:
    """Window totals per model, attribute and group, with rates, Wilson intervals, calibration and representation.

    ``rows``: marts.bias_daily rows of the window (extra columns are ignored).
    Counts are summed over the dates given. Selection rate is over all
    predictions; TPR, FPR, precision and calibration only over labelled ones.
    ``favourable_rate`` is the share receiving the favourable outcome: the
    selection rate when a positive decision is favourable, 1 - selection rate
    when it is harmful (``positive_decision``: model -> direction, default from
    the project file; see ``positive_decisions``).
    """
    missing = [c for c in [*KEYS, *COUNT_COLUMNS, *POPULATION_COLUMNS] if c not in rows.columns]
    if missing:
        raise ValueError(f"bias rows lack columns {missing} (expected the marts.bias_daily contract)")
    if rows.empty:
        return pd.DataFrame(columns=RATE_COLUMNS)
    # counts may arrive as ints, nullable ints or decimals depending on the engine
    rows = rows.astype({c: float for c in COUNT_COLUMNS + POPULATION_COLUMNS})
    # a fixed summation order: score sums are doubles, and a backfill must give daily runs' last bits
    rows = rows.sort_values([c for c in ("date", *KEYS) if c in rows.columns], kind="stable")
    groups = rows.groupby(KEYS, sort=True)
    # The population is a snapshot of the user table repeated on every day's
    # row: summing it over the window would multiply it; take the latest day's (the rows are in date order).
    g = groups[COUNT_COLUMNS].sum().join(groups[POPULATION_COLUMNS].last()).reset_index()
    # the few rows of a window as arrays, one frame built at the end (pandas' per-column cost dominated here)
    c = {name: g[name].to_numpy(dtype=float) for name in COUNT_COLUMNS + POPULATION_COLUMNS}
    out = {name: g[name] for name in KEYS} | c
    out["n"] = c["predictions"]
    for name, (numerator, denominator_columns) in RATES.items():
        denominator = np.nansum([c[d] for d in denominator_columns], axis=0)
        out[name] = _ratio(c[numerator], denominator)
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = _wilson(c[numerator], denominator, alpha)

    # calibration-in-the-large per group: a positive gap means over-scored
    out["mean_score"] = _ratio(c["score_sum"], c["labelled"])
    out["calibration_gap_group"] = out["mean_score"] - out["observed_positive_rate"]

    # representation: the group's share of the model's traffic vs of the users
    model_attribute_total = g.groupby(["model_id", "attribute"])["predictions"].transform("sum").to_numpy(float)
    out["prediction_share"] = _ratio(c["predictions"], model_attribute_total)
    out["population_share"] = _ratio(c["population_users"], c["population_total"])
    out["representation_ratio"] = _ratio(out["prediction_share"], out["population_share"])

    # the favourable outcome: a positive decision, or for a harmful one (a fraud flag) not being flagged
    directions = positive_decisions(sorted(g["model_id"].unique()), positive_decision)
    out["positive_decision"] = g["model_id"].map(directions)
    harmful = (out["positive_decision"] == "harmful").to_numpy()
    out["favourable_rate"] = np.where(harmful, 1 - out["selection_rate"], out["selection_rate"])
    out["favourable_rate_ci_low"] = np.where(harmful, 1 - out["selection_rate_ci_high"], out["selection_rate_ci_low"])
    out["favourable_rate_ci_high"] = np.where(harmful, 1 - out["selection_rate_ci_low"], out["selection_rate_ci_high"])
    return pd.DataFrame({name: out[name] for name in RATE_COLUMNS})


@dataclass(frozen=True)
class Thresholds:
    """Verdict limits; unknown keys (e.g. window_days from the same config block) are ignored."""

    min_labelled: float = DEFAULTS["min_labelled"]
    min_predictions: float = DEFAULTS["min_predictions"]
    disparate_impact_min: float = DEFAULTS["disparate_impact_min"]
    equal_opportunity_max_difference: float = DEFAULTS["equal_opportunity_max_difference"]
    equalized_odds_max_difference: float = DEFAULTS["equalized_odds_max_difference"]
    calibration_gap_max: float = DEFAULTS["calibration_gap_max"]

    @property
    def decisions_needed(self) -> float:
        """Predictions a group needs for disparate impact: never more than the label-based verdicts' minimum (a
        group judged on its labels has as many predictions; a project lowering min_labelled to 30 for a small
        data set keeps its small groups in disparate impact too)."""
        return min(self.min_predictions, self.min_labelled)

    @classmethod
    def from_mapping(cls, thresholds: dict | None) -> "Thresholds":
        return cls(**{k: float(v) for k, v in (thresholds or {}).items() if k in DEFAULTS})


PASS_COLUMNS = ["passes_disparate_impact", "passes_equal_opportunity", "passes_equalized_odds", "passes_calibration"]


def _spread(values: np.ndarray) -> float:
    """max - min over the defined values; NaN with fewer than 2 (nothing to compare)."""
    values = values[~np.isnan(values)]
    return float(values.max() - values.min()) if len(values) >= 2 else math.nan


def _judged(value: float, passes: bool) -> bool | None:
    """A verdict's pass flag: None (stored NULL) where its metric could not be computed."""
    return None if math.isnan(value) else bool(passes)


def fails(flag) -> bool:
    """Whether a pass flag (as judged or as stored) says failed: True and NULL (not assessed) do not."""
    return flag is not None and not pd.isna(flag) and not bool(flag)


def _groups(names: np.ndarray, mask) -> list[str]:
    return sorted(str(n) for n in names[mask])


# the rate columns a verdict reads with their Wilson intervals (disparate_impact_relative's; the others' intervals
# are drawn from the counts at the verdict's level); one model and attribute has a handful of groups, so the verdict
# works on plain arrays (pandas' per-call overhead made it most of a small run's bias step)
JUDGED_RATES = ["selection_rate"]
JUDGED_COLUMNS = [
    "labelled",
    "predictions",
    "positives",
    "true_positives",
    "false_negatives",
    "false_positives",
    "true_negatives",
    "label_sum",
    "calibration_gap_group",
    "mean_score",
    *[c for r in JUDGED_RATES for c in (r, f"{r}_ci_low", f"{r}_ci_high")],
]


def _behind(rate: np.ndarray, low: np.ndarray, high: np.ndarray, beyond) -> np.ndarray:
    """Per group: another group is ahead of it beyond the limit (``beyond(ahead, behind)``, elementwise) and
    their intervals (``low``, ``high``: _judge's rate()) do not overlap, so the gap is not sampling noise. NaN rates
    compare as nothing."""
    with np.errstate(invalid="ignore"):
        ahead = beyond(rate[None, :], rate[:, None]) & (high[:, None] < low[None, :])  # [behind, ahead]
    return np.nan_to_num(ahead, nan=0).astype(bool).any(axis=1)


# a verdict's family-wise level: over many groups (a trial's 48 states: ~1,100 pairs of 95% intervals) a fair model
# failed 94 of 120 windows on pairs apart by chance; a test across the groups at this level must reject first
ALPHA = 0.05


def within_noise_text(level: float = ALPHA, each: str = "") -> str:
    """Why a gap beyond its limit passes, at the level its verdict tests (equalised odds: half of ALPHA on each of
    its two rates; a re-trial read "at 5%" beside a TPR gap of Fisher's p 0.040 that passed)."""
    at = f"{level * 100:g}%{each}"
    return (
        f"within noise (the groups alike by a test across them at {at}: Fisher's exact with two groups, a chi-square "
        f"with more; or, over k > 2 groups, no two groups' 1 - {level * 100:g}%/(k - 1) intervals apart)"
    )


WITHIN_NOISE = within_noise_text()
# equalised odds tests its two rates (TPR, FPR) at half the level each: its own level stays ALPHA
ODDS_WITHIN_NOISE = within_noise_text(ALPHA / 2, " on each of its two rates, TPR and FPR")


def _heterogeneity(deviations: np.ndarray, variances: np.ndarray) -> float:
    """P-value of Cochran's Q (chi-square, groups - 1 df) that the groups share one value, from each group's
    deviation from the pooled value and its variance; 1.0 with fewer than two groups to compare."""
    usable = ~np.isnan(deviations) & (variances > 0)
    if usable.sum() < 2:
        return 1.0
    q = float(np.sum(deviations[usable] ** 2 / variances[usable]))
    return float(special.chdtrc(usable.sum() - 1, q))  # chi2.sf, without importing scipy.stats


def rates_alike(successes, trials) -> float:
    """P-value of the groups sharing one rate successes / trials: with two groups Fisher's exact test (two-sided,
    scipy's fisher_exact), exact at the few dozen predictions a small business's groups hold; with more, Pearson's
    chi-square test of homogeneity (scipy's chi2_contingency on the groups x 2 table, without continuity
    correction). 1.0 where all share one outcome."""
    successes, trials = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)
    keep = trials > 0
    successes, trials = successes[keep], trials[keep]
    pooled = successes.sum() / trials.sum() if trials.sum() else math.nan
    if not 0 < pooled < 1:
        return 1.0
    if len(trials) == 2:
        return _fisher_two_sided(successes[0], trials[0], successes[1], trials[1])
    return _heterogeneity(successes - trials * pooled, trials * pooled * (1 - pooled))


def _fisher_two_sided(x: float, n: float, y: float, m: float) -> float:
    """Fisher's exact test of x / n against y / m, two-sided: the hypergeometric probability of every table with
    the same margins as likely as the observed one or less (scipy.stats.fisher_exact's rule, its 1e-7 relative
    tolerance included), from log-gamma terms (scipy.special: scipy.stats stays out of the run)."""
    total, hits = n + m, x + y
    k = np.arange(max(0.0, n - (total - hits)), min(n, hits) + 1)  # the first group's possible successes

    def log_pmf(first):
        return -(
            special.gammaln(first + 1)
            + special.gammaln(hits - first + 1)
            + special.gammaln(n - first + 1)
            + special.gammaln(total - hits - n + first + 1)
        )

    logs = log_pmf(k)
    top = logs.max()
    weights = np.exp(logs - top)
    observed = math.exp(float(log_pmf(np.float64(x))) - top)
    return min(1.0, float(weights[weights <= observed * (1 + 1e-7)].sum() / weights.sum()))


def gaps_alike(gaps, scores, trials) -> float:
    """P-value of the groups sharing one calibration gap (mean score - observed rate): Cochran's Q with each gap's
    binomial variance at its mean score."""
    gaps, scores, trials = (np.asarray(a, dtype=float) for a in (gaps, scores, trials))
    keep = ~np.isnan(gaps) & (trials > 0)
    gaps, scores, trials = gaps[keep], np.clip(scores[keep], 1e-6, 1 - 1e-6), trials[keep]
    if len(gaps) < 2:
        return 1.0
    weights = trials / (scores * (1 - scores))
    pooled = np.sum(weights * gaps) / np.sum(weights)
    return _heterogeneity(gaps - pooled, 1 / weights)


def _beyond_chance(apart: np.ndarray, p_value: float, alpha: float = ALPHA) -> np.ndarray:
    """The groups apart beyond noise, kept only where the test across all of them rejects at ``alpha``."""
    return apart if p_value < alpha else np.zeros_like(apart)


def _within_noise(what: str, breached: bool, significant, said: str = WITHIN_NOISE) -> list[str]:
    """A note when a metric is beyond its limit but no gap behind it is beyond noise (the verdict passes)."""
    if breached and not np.any(significant):
        return [f"{what} beyond its limit {said}: passes"]
    return []


def disparate_impact_relative(g, eligible: np.ndarray, harmful: bool) -> tuple[np.ndarray, ...]:
    """Each group's disparate-impact ratio to the best-off ``eligible`` group, its 95% interval and the rate it
    compares: 'selected', 'not flagged' or 'flagged'. The interval of another group's ratio spans both groups' Wilson
    intervals (its low end over the reference's high end, and its high end over the reference's low end): over the
    reference's point alone a trial's groups compared with a group never flagged (0 of 53) read 0.00 [0.00, 0.00],
    certain, beside a verdict "within noise". The reference group's own bar is its interval over its point.

    A favourable decision: selection rate / the highest. A harmful one: the lower of (1 - flag rate) / the
    highest, the four-fifths rule on not being flagged, and the least-flagged group's flag rate / the group's,
    its mirror on being flagged: for a rare flag only the latter sees a group flagged twice as often (0.887 vs
    0.943 not flagged is 0.94; 0.113 vs 0.057 flagged is 0.50). The verdict's ratio is the groups' minimum."""
    sel, sel_low, sel_high = (
        np.asarray(g[c], dtype=float) for c in ("selection_rate", "selection_rate_ci_low", "selection_rate_ci_high")
    )
    fav, fav_low, fav_high = (1 - sel, 1 - sel_high, 1 - sel_low) if harmful else (sel, sel_low, sel_high)
    usable = np.asarray(eligible, dtype=bool) & ~np.isnan(fav)
    best = fav[usable].max() if usable.any() else math.nan
    best = best if best > 0 else math.nan
    reference = int(np.flatnonzero(usable & (fav == best))[0]) if best == best else None
    others = np.arange(len(sel)) != reference
    with np.errstate(invalid="ignore", divide="ignore"):
        ref_low, ref_high = (fav_low[reference], fav_high[reference]) if reference is not None else (math.nan,) * 2
        relative = fav / best
        low = np.where(others, fav_low / ref_high, fav_low / best)
        high = np.where(others, _ratio_bound(fav_high, ref_low), fav_high / best)
    what = np.full(len(sel), "not flagged" if harmful else "selected", dtype=object)
    if harmful and usable.any():
        least_at = int(np.flatnonzero(usable & (sel == sel[usable].min()))[0])
        least, least_low, least_high = sel[least_at], sel_low[least_at], sel_high[least_at]
        with np.errstate(invalid="ignore", divide="ignore"):
            flagged = least / sel, least_low / sel_high, _ratio_bound(least_high, sel_low)
        worse = flagged[0] < relative  # NaN (a group never flagged) compares false
        relative, low, high = (np.where(worse, f, r) for f, r in zip(flagged, (relative, low, high), strict=True))
        what = np.where(worse, "flagged", what)
    return relative, low, high, what


def _ratio_bound(numerator, denominator) -> np.ndarray:
    """numerator / denominator, NaN (no upper bound) where the denominator's low end is 0."""
    numerator, denominator = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def _judge(model_id: str, attribute: str, g: dict[str, np.ndarray], t: Thresholds, direction: str) -> dict:
    """The verdict row of one model and attribute (``g``: its groups' ``group_value`` and JUDGED_COLUMNS).

    ``direction`` 'favourable': a positive decision helps (an offer): disparate
    impact compares selection rates, equal opportunity true-positive rates, and
    the disadvantaged are the least selected / the qualified missed most often.
    'harmful': a positive decision hurts (a fraud, default or recidivism flag):
    disparate impact compares the rates of NOT being flagged and of being
    flagged (the lower ratio; disparate_impact_relative), equal opportunity
    false-positive rates (wrongly flagged), and the disadvantaged are the groups
    flagged most often / wrongly flagged most often.

    The metrics are the point estimates (fairlearn's). A verdict fails only on a gap beyond its limit that is
    beyond noise: with a few dozen labelled positives a group's TPR moves by +-0.1 from window to window, and a
    point-estimate verdict failed fair models on noise (and blocked their retraining). The gap counts only where a
    test across the groups (``rates_alike``, ``gaps_alike``) finds them unlike at ALPHA, and with k > 2 groups
    (many pairs) only between two groups whose 1 - ALPHA / (k - 1) Wilson intervals do not overlap: a fair model
    fails about ALPHA of its windows whatever the number of groups. The groups a failed verdict names are those
    behind such a gap.
    """
    harmful = direction == "harmful"
    keep = g["labelled"] >= t.min_labelled
    eligible = {c: v[keep] for c, v in g.items()}
    names = eligible["group_value"]
    notes = []
    if keep.sum() < 2:
        notes.append(
            f"fewer than 2 groups with >= {t.min_labelled:g} labelled predictions: "
            + (
                "only disparate impact (decisions, no labels) is compared"
                if (g["predictions"] >= t.decisions_needed).sum() >= 2
                else f"nor with >= {t.decisions_needed:g} predictions (disparate impact's groups): nothing to compare"
            )
        )

    def rate(successes: np.ndarray, trials: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A rate and the interval its groups are compared by. With k > 2 groups each is compared with k - 1
        others at 1 - ALPHA / (k - 1) (Bonferroni), so that beside a group flagged far more often the fair ones
        are not named on pairs apart by chance (a trial named up to 10 of 48 states). With two, the test across
        them is the pair's own test and decides alone (the rate is its own interval): two 95% intervals apart
        are a test at ~0.5%, and a trial's owners increased 14 of 23 times and renters 10 of 37 (disparate impact
        0.44, Fisher's p 0.015) "passed within noise"."""
        value = _ratio(successes, trials)
        compared = int(np.sum(trials > 0)) - 1
        if compared < 2:
            return value, value, value
        return (value, *_wilson(successes, trials, ALPHA / compared))

    def apart(values: tuple, limit: float) -> np.ndarray:  # behind another by more than limit, beyond noise
        return _behind(*values, lambda ahead, behind: ahead - behind > limit)

    def flipped(values: tuple) -> tuple:  # a rate where lower is better, as one where higher is
        value, low, high = values
        return -value, -high, -low

    def flagged_more(values: tuple) -> np.ndarray:  # a harm rate 1 / disparate_impact_min times another's, beyond noise
        with np.errstate(invalid="ignore", divide="ignore"):
            return _behind(*flipped(values), lambda ahead, behind: ahead / behind < t.disparate_impact_min)

    # disparate impact (four-fifths rule); flags use the same ratios as the verdict so they agree. Selection rates
    # need no label: a group takes part once it has min_predictions predictions (a risk score whose labels land months
    # late is judged on its decisions from the first window)
    decided = g["predictions"] >= t.decisions_needed
    relative, _, _, _ = disparate_impact_relative(g, decided, harmful)
    defined = decided & ~np.isnan(relative)
    if defined.sum() >= 2:
        di = float(relative[defined].min())
        selection = rate(g["positives"][decided], g["predictions"][decided])
        favourable = (1 - selection[0], 1 - selection[2], 1 - selection[1]) if harmful else selection
        with np.errstate(invalid="ignore", divide="ignore"):
            behind = _behind(*favourable, lambda ahead, behind: behind / ahead < t.disparate_impact_min)
        if harmful:  # flagged more than 1 / disparate_impact_min times as often as another group
            behind |= flagged_more(selection)
        behind = _beyond_chance(behind, rates_alike(g["positives"][decided], g["predictions"][decided]))
        flagged_di = _groups(g["group_value"][decided], defined[decided] & behind)
        di_groups = _groups(g["group_value"], defined)
        # the groups whose ratio is the minimum (ties: every one; a trial's four bands at 0.00 named the first
        # alone): not always those behind beyond noise
        at_min = np.isclose(np.asarray(relative[defined], float), di, rtol=1e-9, atol=1e-12)
        di_lowest = [str(v) for v in np.asarray(g["group_value"])[defined][at_min]]
        notes += _within_noise("disparate impact", di < t.disparate_impact_min, behind)
    else:
        di, flagged_di, di_groups, di_lowest = math.nan, [], [], []

    # TPR needs labelled positives and FPR labelled negatives: groups without
    # them drop out of the TPR / FPR based verdicts instead of turning them NaN
    tp, fn, fp, tn = (eligible[c] for c in ("true_positives", "false_negatives", "false_positives", "true_negatives"))
    tpr, fpr = rate(tp, tp + fn), rate(fp, fp + tn)
    no_tpr = _groups(names, np.isnan(tpr[0]))
    no_fpr = _groups(names, np.isnan(fpr[0]))
    opportunity = "FPR" if harmful else "TPR"
    if no_tpr:
        notes.append(
            f"no labelled positives, excluded from {'the TPR part of ' if harmful else ''}"
            f"{'' if harmful else 'equal opportunity and '}equalised odds: {', '.join(no_tpr)}"
        )
    if no_fpr:
        notes.append(
            f"no labelled negatives, excluded from {'equal opportunity and ' if harmful else ''}"
            f"the FPR part of equalised odds: {', '.join(no_fpr)}"
        )
    tpr_difference = _spread(tpr[0])
    fpr_difference = _spread(fpr[0])
    # equal opportunity: the qualified are selected alike (TPR) / the innocent are flagged alike (FPR)
    eo = fpr_difference if harmful else tpr_difference
    # worst of the two ranges over what can be measured; NaN only if neither can
    odds = max((x for x in (tpr_difference, fpr_difference) if not math.isnan(x)), default=math.nan)
    eo_limit, odds_limit = t.equal_opportunity_max_difference, t.equalized_odds_max_difference
    # the disadvantaged: behind another group beyond the limit, beyond noise (a harmful decision: flagged more)
    tpr_alike, fpr_alike = rates_alike(tp, tp + fn), rates_alike(fp, fp + tn)
    eo_alike = fpr_alike if harmful else tpr_alike
    eo_apart = _beyond_chance(apart(flipped(fpr), eo_limit) if harmful else apart(tpr, eo_limit), eo_alike)
    eo_behind = eo_apart
    eo_ratio = math.nan
    if harmful:  # a rare flag's FPRs (0.024 vs 0.056) are never 0.1 apart: wrongly flagged 1 / floor times as often
        defined_fpr = fpr[0][~np.isnan(fpr[0])]
        if len(defined_fpr) >= 2 and defined_fpr.max() > 0:
            eo_ratio = float(defined_fpr.min() / defined_fpr.max())
        ratio_behind = _beyond_chance(flagged_more(fpr), eo_alike)
        notes += _within_noise("equal opportunity ratio", eo_ratio < t.disparate_impact_min, ratio_behind)
        eo_behind = eo_behind | ratio_behind
    flagged_eo = [] if math.isnan(eo) else _groups(names, eo_behind)
    notes += _within_noise("equal opportunity", eo > eo_limit, eo_apart)
    # equalised odds: any two groups apart on TPR or on FPR (which of the two says the verdict's message)
    # two rates, each tested at half the level (Bonferroni): the verdict's own level stays ALPHA
    tpr_apart = _beyond_chance(apart(tpr, odds_limit), tpr_alike, ALPHA / 2)
    fpr_apart = _beyond_chance(apart(fpr, odds_limit), fpr_alike, ALPHA / 2)
    odds_apart = np.concatenate([tpr_apart, fpr_apart])
    odds_rate = {(True, True): "tpr, fpr", (True, False): "tpr", (False, True): "fpr"}.get(
        (bool(tpr_apart.any()), bool(fpr_apart.any()))
    )
    notes += _within_noise("equalised odds", odds > odds_limit, odds_apart, ODDS_WITHIN_NOISE)

    gap = eligible["calibration_gap_group"]
    calibration = _spread(gap)
    defined = ~np.isnan(gap)
    # the first group at the minimum / maximum, in the groups' order (pandas' idxmin / idxmax)
    extremes = (
        [str(names[defined][np.argmin(gap[defined])]), str(names[defined][np.argmax(gap[defined])])]
        if defined.sum() >= 2
        else []
    )
    # the gap's interval: the mean score minus the observed rate's
    observed = rate(eligible["label_sum"], eligible["labelled"])
    gaps = (gap, eligible["mean_score"] - observed[2], eligible["mean_score"] - observed[1])
    calibration_apart = _beyond_chance(
        apart(gaps, t.calibration_gap_max), gaps_alike(gap, eligible["mean_score"], eligible["labelled"])
    )
    notes += _within_noise("calibration gap", calibration > t.calibration_gap_max, calibration_apart)

    if keep.sum() >= 2 and any(math.isnan(x) for x in (di, eo, odds, calibration)):
        notes.append("a metric is undefined (NaN) for lack of comparable groups and passes by default")
    row = {
        "model_id": model_id,
        "attribute": attribute,
        "positive_decision": direction,
        "equal_opportunity_rate": opportunity.lower(),
        "equalized_odds_rate": odds_rate,
        "disparate_impact_ratio": di,
        "equal_opportunity_difference": eo,
        "equal_opportunity_ratio": eo_ratio,
        "tpr_difference": tpr_difference,
        "fpr_difference": fpr_difference,
        "equalized_odds_difference": odds,
        "calibration_gap": calibration,
        # an undefined metric (too few groups to compare) is not assessed: NULL, not a pass (a late-labelled
        # model's newest windows said passes_equal_opportunity = true where every judged window failed)
        "passes_disparate_impact": _judged(di, not flagged_di),
        "passes_equal_opportunity": _judged(eo, not flagged_eo),
        "passes_equalized_odds": _judged(odds, not odds_apart.any()),
        "passes_calibration": _judged(calibration, not calibration_apart.any()),
        "flagged_groups_disparate_impact": flagged_di,
        "flagged_groups_equal_opportunity": flagged_eo,
        "calibration_extremes": extremes,
        "eligible_groups": _groups(names, slice(None)),
        # disparate impact's own groups, by predictions (no label needed): one can be excluded from the rest
        "disparate_impact_groups": di_groups,
        "disparate_impact_lowest": di_lowest,
        "excluded_groups": _groups(g["group_value"], ~keep),
        "groups_without_tpr": no_tpr,
        # the limits travel with the verdict so its summary cannot quote other ones
        "min_labelled": t.min_labelled,
        "min_predictions": t.decisions_needed,  # as applied
        "disparate_impact_min": t.disparate_impact_min,
        "equal_opportunity_max_difference": t.equal_opportunity_max_difference,
        "equalized_odds_max_difference": t.equalized_odds_max_difference,
        "calibration_gap_max": t.calibration_gap_max,
        "note": "; ".join(notes),
    }
    row["passed"] = not any(fails(row[k]) for k in PASS_COLUMNS)  # not assessed blocks nothing
    # a failed verdict says what failed in its own row (the note listed only the passes within noise)
    if failed := _verdict_sentences(pd.Series(row), t)[0]:
        row["note"] = "; ".join([f"fails {sentence}" for sentence in failed] + notes)
    return row


# what a reader scans first: the verdicts' numbers per model and attribute (check metadata, report)
HEADLINE_VERDICT_COLUMNS = [
    "model_id",
    "attribute",
    "disparate_impact_ratio",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
    "equalized_odds_difference",
    "calibration_gap",
]
VERDICT_COLUMNS = [
    "model_id",
    "attribute",
    "positive_decision",
    "equal_opportunity_rate",
    "equalized_odds_rate",
    "disparate_impact_ratio",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
    "tpr_difference",
    "fpr_difference",
    "equalized_odds_difference",
    "calibration_gap",
    *PASS_COLUMNS,
    "passed",
    "flagged_groups_disparate_impact",
    "flagged_groups_equal_opportunity",
    "calibration_extremes",
    "eligible_groups",
    "excluded_groups",
    "groups_without_tpr",
    "disparate_impact_groups",
    "disparate_impact_lowest",
    *DEFAULTS,
    "note",
]


def bias_verdicts(
    rates: pd.DataFrame, thresholds: dict | None = None, positive_decision: dict[str, str] | None = None
) -> pd.DataFrame:
    """One row per model and attribute: the four fairness metrics, pass/fail and who is disadvantaged.

    ``rates``: the output of ``group_rates``. Groups with fewer labelled
    predictions than ``min_labelled`` are listed in ``excluded_groups`` and take
    no part in the label-based verdicts (disparate impact compares the selection
    rates of the groups with ``min_predictions`` predictions); eligible groups without labelled positives have no
    TPR and drop out of the TPR-based verdicts (named in ``groups_without_tpr``
    and ``note``). A metric that cannot be computed (fewer than 2 comparable
    groups) is NaN and its verdict passes, with the reason in ``note``.

    The direction of each model (``positive_decision``: model -> 'favourable' |
    'harmful'; default the rates' own ``positive_decision`` column, else the
    project file) decides what is favourable: see ``_judge``.
    """
    t = Thresholds.from_mapping(thresholds)
    models = sorted(rates["model_id"].unique())
    if positive_decision is None and "positive_decision" in rates.columns and rates["positive_decision"].notna().all():
        positive_decision = dict(zip(rates["model_id"], rates["positive_decision"]))
    directions = positive_decisions(models, positive_decision)
    # each model and attribute's rows, in the rates' order, as arrays
    columns = {c: rates[c].to_numpy(dtype=float, na_value=np.nan) for c in JUDGED_COLUMNS}
    columns["group_value"] = rates["group_value"].to_numpy(dtype=object)
    rows_of = rates.groupby(["model_id", "attribute"]).indices  # (model, attribute) -> row positions
    out = [
        _judge(model_id, attribute, {c: v[rows] for c, v in columns.items()}, t, directions[model_id])
        for (model_id, attribute), rows in sorted(rows_of.items())
    ]
    return pd.DataFrame(out, columns=VERDICT_COLUMNS)


# passes_* column -> (what to call it, value column, comparison that failed, limit key)
VERDICT_TEXT = {
    "passes_disparate_impact": ("disparate impact ratio", "disparate_impact_ratio", "<", "disparate_impact_min"),
    "passes_equal_opportunity": (
        "equal opportunity difference",
        "equal_opportunity_difference",
        ">",
        "equal_opportunity_max_difference",
    ),
    "passes_equalized_odds": (
        "equalised odds difference",
        "equalized_odds_difference",
        ">",
        "equalized_odds_max_difference",
    ),
    "passes_calibration": ("calibration gap", "calibration_gap", ">", "calibration_gap_max"),
}


def _format(value: float, limit: float) -> str:
    """Two decimals, more when two would print the value equal to the limit it broke."""
    for digits in (2, 3, 4):
        if f"{value:.{digits}f}" != f"{limit:.{digits}f}":
            break
    return f"{value:.{digits}f}"


def _limit(limit: float) -> str:
    """A limit as set: two decimals, more where it has them (init's 0.097 printed as 0.10 beside a gap of 0.11)."""
    return f"{limit:.2f}" if round(limit, 2) == limit else f"{limit:g}"


def _odds_groups(v: pd.Series, rate: str) -> str:
    """The equal-opportunity groups, named with the equalised-odds rate(s) ``rate`` when they are about one of them."""
    groups = v["flagged_groups_equal_opportunity"]
    named = len(groups) and v.get("equal_opportunity_rate", "tpr") in rate.split(", ")
    return f"; disadvantaged: {_named(v, groups)}" if named else ""


def _named(v: pd.Series, groups) -> str:
    """Groups as a sentence names them: a coded one with its attribute ("disadvantaged: 0" read as a count, where
    it meant the users whose senior_citizen is 0)."""
    # judged over the attribute's every group, so its groups read alike in every line ("3+" and "party_size=2")
    every = [*groups, *_group_list(v.get("eligible_groups")), *_group_list(v.get("disparate_impact_groups"))]
    coded = any(part.lstrip("-").replace(".", "", 1).isdigit() for g in every for part in str(g).split("|"))
    return ", ".join(f"{v['attribute']}={g}" if coded else str(g) for g in groups)


def _one_rate_apart(v: pd.Series, limit: float) -> str | None:
    """Equalised odds failed on one rate's range while the other's, wider, is within noise: the line quotes the one
    that failed (it quoted the wider range, a TPR gap of one labelled positive, beside an FPR gap that failed)."""
    rate = v.get("equalized_odds_rate")
    if rate not in ("tpr", "fpr") or pd.isna(v.get(f"{rate}_difference")):
        return None
    other = "fpr" if rate == "tpr" else "tpr"
    value, wider = v[f"{rate}_difference"], v.get(f"{other}_difference")
    quiet = (
        f" ({other.upper()} range {_format(wider, limit)} within noise)" if pd.notna(wider) and wider > limit else ""
    )
    return (
        f"equalised odds: {rate.upper()} range {_format(value, limit)} > {_limit(limit)}{quiet}{_odds_groups(v, rate)}"
    )


def _who(v: pd.Series, flag: str) -> str:
    """The groups a failed verdict is about (for a harmful positive decision: the groups flagged most / wrongly)."""
    harmful = v.get("positive_decision") == "harmful"
    if flag == "passes_disparate_impact" and len(v["flagged_groups_disparate_impact"]):
        what = " (flagged more often than another group, beyond the limit and noise)" if harmful else ""
        at_min = _group_list(v.get("disparate_impact_lowest"))
        lowest = [g for g in at_min if g not in v["flagged_groups_disparate_impact"]]
        # a trial's 0.52 was Manitoba's, within noise, beside "disadvantaged: New Brunswick" (0.65, beyond it); where a
        # group at the minimum is beyond noise, the ratio is its too (a tie at 0.00 named a group within noise alone)
        apart = lowest and len(lowest) == len(at_min)
        whose = f" (the ratio is {_named(v, lowest)}'s, a gap within noise)" if apart else ""
        return f"; disadvantaged{what}: {_named(v, v['flagged_groups_disparate_impact'])}{whose}"
    if flag == "passes_equal_opportunity" and len(v["flagged_groups_equal_opportunity"]):
        what = " (wrongly flagged more often than another group, beyond the limit and noise)" if harmful else ""
        return f"; disadvantaged{what}: {_named(v, v['flagged_groups_equal_opportunity'])}"
    if flag == "passes_equalized_odds" and "fpr_difference" in v:
        fpr_range = v["fpr_difference"]
        tpr_range = v["tpr_difference"] if "tpr_difference" in v else v["equal_opportunity_difference"]
        rate = v.get("equalized_odds_rate")
        if not isinstance(rate, str) or not rate:  # a verdict stored before the column: the wider range
            rate = "fpr" if pd.notna(fpr_range) and (pd.isna(tpr_range) or fpr_range > tpr_range) else "tpr"
        # the rate(s) whose groups are apart beyond noise, with their range
        limit = v.get("equalized_odds_max_difference")
        limit = float(limit) if limit is not None and pd.notna(limit) else DEFAULTS["equalized_odds_max_difference"]
        ranges = " and ".join(
            f"{r.upper()} range {_format(fpr_range if r == 'fpr' else tpr_range, limit)}" for r in rate.split(", ")
        )
        return f" ({ranges})" + _odds_groups(v, rate)
    if flag == "passes_calibration" and len(v.get("calibration_extremes", [])) == 2:
        low, high = v["calibration_extremes"]
        return f"; most under-scored: {_named(v, [low])}, most over-scored: {_named(v, [high])}"
    return ""


def _label(v: pd.Series, flag: str, label: str) -> str:
    """A harmful positive decision says which rates the metric compares."""
    if v.get("positive_decision") != "harmful":
        return label
    return {
        "passes_disparate_impact": f"{label} (of being flagged, or of not being flagged: the lower)",
        "passes_equal_opportunity": f"{label} (false-positive rates)",  # a difference, or a ratio (lowest / highest)
    }.get(flag, label)


def _flag_sentence(v, flag: str, fallback: "Thresholds") -> tuple[str | None, str | None]:
    """One verdict's (failed sentence, within-noise sentence) of a row, either or both None: the metric's value,
    limit and the groups behind."""
    label, column, op, limit_key = VERDICT_TEXT[flag]
    limit = float(v[limit_key]) if limit_key in v and pd.notna(v[limit_key]) else getattr(fallback, limit_key)
    ratio = v.get("equal_opportunity_ratio")
    floor = (
        float(v["disparate_impact_min"]) if pd.notna(v.get("disparate_impact_min")) else fallback.disparate_impact_min
    )
    if flag == "passes_equal_opportunity" and pd.notna(ratio) and ratio < floor and not v[column] > limit:
        label, column, op, limit = "equal opportunity ratio", "equal_opportunity_ratio", "<", floor
    if not fails(v[flag]):  # a pass beyond the limit is one within noise: said, so a reader of the value knows
        if pd.notna(v[column]) and (v[column] < limit if op == "<" else v[column] > limit):
            return (
                None,
                f"{_label(v, flag, label)} {_format(v[column], limit)} {op} {_limit(limit)} "
                f"{ODDS_WITHIN_NOISE if flag == 'passes_equalized_odds' else WITHIN_NOISE}: passes",
            )
        return None, None
    if flag == "passes_equalized_odds" and (one := _one_rate_apart(v, limit)):
        return one, None
    return f"{_label(v, flag, label)} {_format(v[column], limit)} {op} {_limit(limit)}{_who(v, flag)}", None


def _verdict_sentences(v, fallback: "Thresholds") -> tuple[list[str], list[str]]:
    """One verdict row's failed metrics (value, limit, the groups behind), and its metrics beyond their limit that
    pass because the gap is within noise."""
    said = [_flag_sentence(v, flag, fallback) for flag in VERDICT_TEXT]
    return [f for f, _ in said if f], [n for _, n in said if n]


def unjudged(v) -> list[str]:
    """The flags of a verdict row whose metric could not be computed (too few groups): not assessed."""
    return [flag for flag, (_, column, _, _) in VERDICT_TEXT.items() if pd.isna(v[column])]


def fully_assessed(v) -> bool:
    """Whether every verdict of a row was judged: a pass on disparate impact alone (the label-based verdicts not
    assessed) is no finding of fairness."""
    return assessed(v) and not unjudged(v)


def _window(v) -> str:
    start = f"{pd.Timestamp(v['window_start']).date()} .. " if pd.notna(v.get("window_start")) else ""
    return f"{start}{pd.Timestamp(v['date']).date()}"


def last_judged(v, history: pd.DataFrame, fallback: "Thresholds") -> list[str]:
    """For each verdict ``v`` did not assess, the newest earlier window of ``history`` (verdict rows with list
    columns as lists) that judged it and what it found: a model whose labels lag keeps its last verdict (its
    newest windows hold no labels yet, and a failing equal opportunity was shown as not assessed only)."""
    if history is None or "date" not in v or not len(history):
        return []
    pair = history[
        (history["model_id"] == v["model_id"])
        & (history["attribute"] == v["attribute"])
        & (pd.to_datetime(history["date"]) < pd.Timestamp(v["date"]))
    ].sort_values("date")
    found: dict[str, list[str]] = {}  # window -> what it found, one line a window (usually one for all)
    for flag in unjudged(v):
        label, column, _, _ = VERDICT_TEXT[flag]
        judged = pair[pair[column].notna()]
        if judged.empty:
            continue
        last = judged.iloc[-1]
        failed, within_noise = _flag_sentence(last, flag, fallback)
        # a pass beyond the limit says so (a trial's "equalised odds difference 0.12 passed" against 0.1)
        found.setdefault(_window(last), []).append(
            f"FAILED {failed}" if failed else within_noise or f"{label} {last[column]:.2f} passed"
        )
    return [f"last judged on the window {window}: {'; '.join(said)}" for window, said in found.items()]


def summarise_verdicts(
    verdicts: pd.DataFrame, thresholds: dict | None = None, history: pd.DataFrame | None = None
) -> str:
    """One short sentence per failed verdict (metric, value, limit, disadvantaged groups), one per line; then
    one per metric beyond its limit that passed because the gap is within noise; then what was not assessed.

    The limits are read from the verdict rows (they record what they were
    judged against); ``thresholds`` only fills in for frames without them.
    ``history``: earlier verdict rows; a metric a row could not compute is given with the newest of them that did
    (``last_judged``).
    """
    fallback = Thresholds.from_mapping(thresholds)
    lines, unassessed, within_noise = [], [], []
    nothing = 0  # rows that compared nothing at all
    for _, v in verdicts.iterrows():
        minimum = float(v["min_labelled"]) if pd.notna(v.get("min_labelled")) else fallback.min_labelled
        # a verdict stored before min_predictions judged disparate impact at min_labelled predictions
        decisions = float(v["min_predictions"]) if pd.notna(v.get("min_predictions")) else minimum
        if not assessed(v):  # it passes (nothing to compare), but a pass is not a finding of fairness
            unassessed.append(
                f"{v['model_id']} / {v['attribute']}: not assessed: fewer than 2 groups with >= {decisions:g} "
                "predictions (bias.min_predictions)"
            )
            nothing += 1
            continue
        # a verdict without a value passes, having compared nothing (the label-based ones of tiny labelled groups)
        blank = [VERDICT_TEXT[flag][0] for flag in unjudged(v)]
        if blank:
            unassessed.append(
                f"{v['model_id']} / {v['attribute']}: {', '.join(blank)} not assessed: {_unjudged_reason(v, minimum)}"
            )
            unassessed += [f"{v['model_id']} / {v['attribute']}: {line}" for line in last_judged(v, history, fallback)]
        if left_out := _left_out(v, minimum, decisions):
            unassessed.append(f"{v['model_id']} / {v['attribute']}: {left_out}")
        if missing := _missing_value_groups(v):
            unassessed.append(f"{v['model_id']} / {v['attribute']}: {missing}")
        failed, passed_in_noise = _verdict_sentences(v, fallback)
        lines += [f"{v['model_id']} / {v['attribute']}: {sentence}" for sentence in failed]
        within_noise += [f"{v['model_id']} / {v['attribute']}: {sentence}" for sentence in passed_in_noise]
    if not lines and not unassessed:
        lines = ["all fairness verdicts pass"]
    elif not lines and nothing < len(verdicts):
        lines = ["the assessed fairness verdicts pass"]
    if within_noise and lines[:1] in (["all fairness verdicts pass"], ["the assessed fairness verdicts pass"]):
        # a trial's disparate impact of 0.00 on groups of 5 and 9 read "all fairness verdicts pass"
        said = "no fairness verdict fails" if lines[0].startswith("all") else "no assessed fairness verdict fails"
        lines[0] = (
            f"{said}; {len(within_noise)} gap(s) beyond a limit only within noise: inconclusive (too few to tell)"
        )
    # the shown window's own findings before what other windows found: a line joined after "last judged on the
    # window ..." read as that window's (a trial's newest disparate impact of 0.78 was read as July's)
    return "\n".join(lines + within_noise + unassessed)


def _unjudged_reason(v, minimum: float) -> str:
    """Why a label-based verdict of an assessed row has no value: too few groups with enough labels, or enough
    groups of which fewer than two hold the labels it compares (a trial's 343 and 63 labelled were said "fewer
    than 2 groups with >= 30 labelled": one had no labelled positive, as the row's note said)."""
    eligible = _group_list(v.get("eligible_groups"))
    if len(eligible) < 2:
        return f"fewer than 2 groups with >= {minimum:g} labelled predictions (bias.min_labelled)"
    lacking = [
        part
        for part in str(v.get("note") or "").split("; ")
        if part.startswith(("no labelled positives", "no labelled negatives"))
    ]
    return (
        f"of the {len(eligible)} groups with >= {minimum:g} labelled predictions, fewer than 2 hold the labels it compares"
        + (f" ({'; '.join(lacking)})" if lacking else "")
    )


def _left_out(v, minimum: float, decisions: float) -> str:
    """The groups an assessed verdict did not judge (too few predictions or labelled predictions), or ''.

    A pass over the groups that were judged says nothing of these: the smallest groups are often the ones a
    verdict is for (an intersection's minorities)."""
    excluded = _group_list(v.get("excluded_groups"))
    if not excluded:
        return ""
    compared = set(_group_list(v.get("disparate_impact_groups")))
    every = [g for g in excluded if g not in compared]  # too few predictions for disparate impact too
    # the label-based verdicts of fewer than two groups are said "not assessed" already
    labels = [g for g in excluded if g in compared] if len(_group_list(v.get("eligible_groups"))) >= 2 else []
    said = []
    if every:
        said.append(
            f"{', '.join(every)} left out of every verdict (fewer than {decisions:g} predictions, bias.min_predictions)"
        )
    if labels:
        said.append(
            f"{', '.join(labels)} left out of all but disparate impact (fewer than {minimum:g} labelled predictions, "
            "bias.min_labelled)"
        )
    return "; ".join(said)


# the group of users without a value for the attribute (dbt's macros/protected_attributes.sql)
MISSING_GROUP = "unknown"


def _missing_value_groups(v) -> str:
    """'' or, for a failed disparate impact, a note that users without a value took part as a group of their own,
    not among the disadvantaged: their rate may be the one the others' ratios are to (a trial's 263 passengers
    without an age were the most-selected age group, and every band's ratio was to them, unsaid)."""
    if not fails(v.get("passes_disparate_impact")):
        return ""
    flagged = set(_group_list(v.get("flagged_groups_disparate_impact")))
    groups = [
        g
        for g in _group_list(v.get("disparate_impact_groups"))
        if MISSING_GROUP in str(g).split("|") and g not in flagged
    ]
    if not groups:
        return ""
    return (
        f"{', '.join(groups)} (users without a value) compared in disparate impact as group(s) of their own: the "
        "ratios may be to their rate (marts.bias_daily: each group's rate)"
    )


def assessed(verdict) -> bool:
    """Whether a verdict compared anything: two groups or more with enough labelled predictions, or a disparate
    impact ratio (selection rates of groups with enough predictions: no label needed)."""
    groups = verdict["eligible_groups"]
    labelled = groups is not None and not isinstance(groups, float) and len(groups) >= 2
    return labelled or pd.notna(verdict.get("disparate_impact_ratio"))


# rate -> the verdicts it feeds and the verdict column naming the groups it is about
VERDICT_RATES = {
    "selection_rate": ("disparate impact", "flagged_groups_disparate_impact"),
    "tpr": ("equal opportunity, equalised odds", "flagged_groups_equal_opportunity"),
    "fpr": ("equalised odds", None),
    "observed_positive_rate": ("calibration (vs mean_score)", "calibration_extremes"),
}
# the same rates for a model whose positive decision is harmful (DI on 1 - selection rate; EO on FPR)
HARMFUL_RATES = {
    "selection_rate": ("disparate impact (1 - selection rate)", "flagged_groups_disparate_impact"),
    "tpr": ("equalised odds", None),
    "fpr": ("equal opportunity, equalised odds", "flagged_groups_equal_opportunity"),
}
INTERVAL_COLUMNS = [
    "model_id",
    "attribute",
    "rate",
    "verdicts",
    "group_value",
    "labelled",
    "trials",
    "value",
    "ci_low",
    "ci_high",
    "excluded",
    "flagged",
]


def group_intervals(rates: pd.DataFrame, verdicts: pd.DataFrame) -> pd.DataFrame:
    """The groups behind each verdict: one row per model, attribute, rate and group with its Wilson interval.

    ``trials`` is the rate's denominator (predictions for the selection rate,
    labelled positives for TPR, ...), ``excluded`` marks groups with fewer
    labelled rows than the verdict's ``min_labelled`` (the selection rate's: fewer predictions than its
    ``min_predictions``; shown, not judged) and ``flagged`` the groups a failed verdict names (calibration: the extremes).
    """
    if rates.empty:
        return pd.DataFrame(columns=INTERVAL_COLUMNS)
    judged = verdicts.set_index(["model_id", "attribute"])
    parts = []
    for rate, (feeds, flag_column) in VERDICT_RATES.items():
        _, denominator = RATES[rate]
        part = rates[KEYS].assign(
            labelled=rates["labelled"].astype("int64"),
            rate=rate,
            verdicts=feeds,
            trials=rates[list(denominator)].sum(axis=1).astype("int64"),
            value=rates[rate],
            ci_low=rates[f"{rate}_ci_low"],
            ci_high=rates[f"{rate}_ci_high"],
        )
        verdict = judged.reindex(pd.MultiIndex.from_frame(part[["model_id", "attribute"]]))
        if rate == "selection_rate":  # disparate impact's groups: enough predictions, no label needed
            needed = verdict.get("min_predictions", verdict["min_labelled"]).fillna(verdict["min_labelled"])
            part["excluded"] = (part["trials"] < needed.to_numpy()).to_numpy()  # its trials: the predictions
        else:
            part["excluded"] = (part["labelled"] < verdict["min_labelled"].to_numpy()).to_numpy()
        harmful = (
            (verdict["positive_decision"] == "harmful").to_numpy()
            if "positive_decision" in verdict
            else np.zeros(len(part), dtype=bool)
        )
        # a harmful positive decision: disparate impact is on 1 - selection rate, equal opportunity on FPR
        harmful_feeds, harmful_flag = HARMFUL_RATES.get(rate, (feeds, flag_column))
        part["verdicts"] = np.where(harmful, harmful_feeds, feeds)
        # calibration names its extremes only when that verdict failed
        failed = (
            ~verdict["passes_calibration"].fillna(True).astype(bool).to_numpy()
            if rate == "observed_positive_rate"
            else np.ones(len(part), dtype=bool)
        )
        named = []
        listed = {c: verdict[c].tolist() for c in (flag_column, harmful_flag) if c is not None}
        for i, group in enumerate(part["group_value"]):
            column = harmful_flag if harmful[i] else flag_column
            groups = listed[column][i] if column is not None else None
            named.append(isinstance(groups, list) and group in groups)
        part["flagged"] = np.asarray(named, dtype=bool) & failed
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    order = {rate: i for i, rate in enumerate(VERDICT_RATES)}
    out = out.sort_values(
        ["model_id", "attribute", "rate", "group_value"],
        key=lambda c: c.map(order) if c.name == "rate" else c,
        kind="stable",
    )
    return out[INTERVAL_COLUMNS].reset_index(drop=True)


# list-valued verdict columns are stored as comma-separated text
LIST_COLUMNS = [
    "flagged_groups_disparate_impact",
    "flagged_groups_equal_opportunity",
    "calibration_extremes",
    "eligible_groups",
    "excluded_groups",
    "groups_without_tpr",
    "disparate_impact_groups",
    "disparate_impact_lowest",
]
WINDOW_COLUMNS = ["date", "window_start"]


def window_tables(
    rows: pd.DataFrame, day, thresholds: dict, positive_decision: dict[str, str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(group rates, verdicts) over the trailing ``window_days`` ending on ``day``, as stored rows.

    ``rows`` are marts.bias_daily rows covering at least the window (others are
    ignored). Group rates keep every RATE_COLUMNS column plus ``excluded``
    (fewer labelled rows than ``min_labelled``); verdict lists become text.
    """
    if "window_days" not in thresholds:
        raise ValueError("bias thresholds lack window_days (the project file's bias.window_days)")
    day = pd.Timestamp(day).normalize()
    start = day - pd.Timedelta(days=int(thresholds["window_days"]) - 1)
    dates = pd.to_datetime(rows["date"])
    rates = group_rates(rows[(dates >= start) & (dates <= day)], positive_decision=positive_decision)
    verdicts = bias_verdicts(rates, thresholds, positive_decision)
    stamp = {"date": day, "window_start": start}
    rates = rates.assign(**stamp, excluded=rates["labelled"] < Thresholds.from_mapping(thresholds).min_labelled)
    verdicts = verdicts.assign(**stamp, **{c: verdicts[c].map(", ".join) for c in LIST_COLUMNS})
    return rates[[*WINDOW_COLUMNS, *RATE_COLUMNS, "excluded"]], verdicts[[*WINDOW_COLUMNS, *VERDICT_COLUMNS]]


def windows_by_day(
    rows: pd.DataFrame, days, thresholds: dict, positive_decision: dict[str, str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``window_tables`` for each of ``days``, concatenated. Days whose trailing windows hold the same days
    of ``rows`` share one computation (only their date and window_start differ): labels that come in a few
    batches over a long backfill leave most days' windows unchanged (Rossi's 394 days: 11.6 s -> 3.6 s)."""
    if "window_days" not in thresholds:
        raise ValueError("bias thresholds lack window_days (the project file's bias.window_days)")
    width = pd.Timedelta(days=int(thresholds["window_days"]) - 1)
    present = np.sort(pd.to_datetime(rows["date"]).dt.normalize().unique())
    computed: dict[tuple[int, int], tuple[pd.DataFrame, pd.DataFrame]] = {}
    rates, verdicts = [], []
    for day in days:
        day = pd.Timestamp(day).normalize()
        start = day - width
        held = (
            int(np.searchsorted(present, start.to_datetime64())),
            int(np.searchsorted(present, day.to_datetime64(), "right")),
        )
        if held not in computed:
            computed[held] = window_tables(rows, day, thresholds, positive_decision)
        day_rates, day_verdicts = computed[held]
        rates.append(day_rates.assign(date=day, window_start=start))
        verdicts.append(day_verdicts.assign(date=day, window_start=start))
    return pd.concat(rates, ignore_index=True), pd.concat(verdicts, ignore_index=True)


def clip_window_starts(frame: pd.DataFrame, first_days: dict) -> pd.DataFrame:
    """``frame``'s window_start no earlier than its model's first prediction day (``first_days``: model_id -> day):
    a window reaching back before the model began holds only its days since, not window_days of them."""
    first = pd.to_datetime(frame["model_id"].map(first_days))
    return frame.assign(window_start=frame["window_start"].where(~(first > frame["window_start"]), first))


def _group_list(value) -> list[str]:
    """A verdict's group list as judged (a list or array) or as stored (comma-joined text)."""
    if isinstance(value, str) or value is None or (isinstance(value, float) and pd.isna(value)):
        return _as_list(value)
    return [str(g) for g in value]


def _as_list(text) -> list[str]:
    return (
        [] if text is None or (isinstance(text, float) and pd.isna(text)) else [g for g in str(text).split(", ") if g]
    )


def verdicts_with_lists(verdicts: pd.DataFrame) -> pd.DataFrame:
    """marts.bias_verdicts rows with their list columns (stored as comma-separated text) as lists."""
    return verdicts.assign(**{c: verdicts[c].map(_as_list) for c in LIST_COLUMNS if c in verdicts})


def _duckdb_type(column: str) -> str:
    if column in ("date", "window_start"):
        return "DATE"
    if column in (*KEYS, *LIST_COLUMNS, "note", "positive_decision", "equal_opportunity_rate", "equalized_odds_rate"):
        return "VARCHAR"
    if column in (*PASS_COLUMNS, "passed", "excluded"):
        return "BOOLEAN"
    return "DOUBLE"


# column -> DuckDB type of the stored window tables (orchestration/lib/warehouse.py)
GROUP_RATES_SCHEMA = {c: _duckdb_type(c) for c in [*WINDOW_COLUMNS, *RATE_COLUMNS, "excluded"]}
VERDICTS_SCHEMA = {c: _duckdb_type(c) for c in [*WINDOW_COLUMNS, *VERDICT_COLUMNS]}
