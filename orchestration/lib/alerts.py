"""Model-health alert rules: thresholds from the project file (orchestration/lib/project_config.py), applied to mart rows.

Rules run over a few rows per model and day (the marts did the heavy lifting),
so this is plain pandas. Each breach is one row: date, model, metric, subject
(the feature for PSI), value, threshold.

Precision and recall drops are judged by a one-sided exact test (Fisher's) of
the day's labelled counts against the version's reference window (the same
window drift is judged against), not by a fixed percentage: a model whose
normal precision is 0.30 with 100 labelled positive decisions a day moves by
several points on noise alone.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special

from orchestration.lib.project_config import AlertRules, ModelSpec, ProjectConfig, load_config, retired_models
from orchestration.lib.quality_gate import WEEKDAY_LEVEL_WEEKS  # the volume gate's weekly level too

ALERT_COLUMNS = ["date", "model_id", "model_version", "metric", "subject", "value", "threshold", "rule"]
KNOWN_RULES = set(AlertRules.model_fields)
# reference counts of each version (evaluate_alerts' ``reference`` frame)
REFERENCE_COUNTS = ["reference_true_positives", "reference_false_positives", "reference_false_negatives"]
REFERENCE_COLUMNS = ["model_id", "model_version", *REFERENCE_COUNTS, "reference_end_date"]
# rule -> (metric, successes, the other cell of its denominator, reference columns)
DROP_RULES = {
    "precision_drop": (
        "precision",
        "true_positives",
        "false_positives",
        ("reference_true_positives", "reference_false_positives"),
    ),
    "recall_drop": (
        "recall",
        "true_positives",
        "false_negatives",
        ("reference_true_positives", "reference_false_negatives"),
    ),
}


@dataclass(frozen=True)
class AlertConfig:
    """Alert, bias and retraining settings of a deployment, as plain dicts (built by ``load_alert_config``).

    ``models``: the declared models (each gets its own Dagster checks; models found
    only in the data share one catch-all check). ``rules``: the default rule of each
    name; ``overrides``: model -> rule -> the fields a model's ``alerts`` set.
    ``floors``: model -> {min_precision, min_recall}, only what the project file sets
    (no retraining floor otherwise).
    """

    models: list[str]
    min_labelled: int
    rules: dict[str, dict]
    overrides: dict[str, dict[str, dict]] = field(default_factory=dict)
    bias: dict = field(default_factory=dict)
    retraining: dict = field(default_factory=dict)
    floors: dict[str, dict[str, float]] = field(default_factory=dict)
    label_horizons: dict[str, int] = field(default_factory=dict)  # models.<id>.label_horizon_days, as set
    default_label_horizon: int = 30
    retired: dict[str, object] = field(default_factory=dict)  # models.<id>.retired_after: no volume judged after it

    def label_horizon(self, model_id: str) -> int:
        return int(self.label_horizons.get(model_id, self.default_label_horizon))

    def rule(self, name: str, model_id: str) -> dict:
        if name not in self.rules:
            raise KeyError(f"unknown alert rule {name!r} (known: {sorted(self.rules)})")
        return {**self.rules[name], **self.overrides.get(model_id, {}).get(name, {})}

    def floor(self, model_id: str, metric: str) -> float | None:
        """The retraining floor ``min_precision`` / ``min_recall`` a model's config sets, else None."""
        return self.floors.get(model_id, {}).get(metric)

    @property
    def lookback_days(self) -> int:
        """How many days before a run's range its rules need mart rows for (the longest any model uses)."""
        models = [None, *self.overrides]
        return max(
            max(
                int(self.rule("label_coverage", m).get("after_days") or 0),
                # the volume rule's trailing median, and its weekday's level: the same weekday WEEKDAY_LEVEL_WEEKS weeks back
                int(self.rule("volume_change", m).get("trailing_days") or 0),
                WEEK * WEEKDAY_LEVEL_WEEKS,
            )
            for m in models
        )


OTHER_MODELS = "other_models"


def check_targets(declared: list[str]) -> list[tuple[str, str | None]]:
    """(check-name suffix, model id) of the per-model Dagster checks: one per declared model, plus one
    (model id None) covering every model found in the data but not declared, so a run without a
    project file still gets checks. Names are Dagster-safe (letters, digits, underscores) and distinct.
    """
    out, seen = [], {}
    for model_id in [*declared, None]:
        suffix = OTHER_MODELS if model_id is None else re.sub(r"[^A-Za-z0-9_]", "_", model_id)
        if suffix in seen:
            raise ValueError(
                f"project file: models {seen[suffix]!r} and {model_id or 'the undeclared models'!r} "
                f"would share the check name suffix {suffix!r}; rename one"
            )
        seen[suffix] = model_id or "the undeclared models"
        out.append((suffix, model_id))
    return out


def per_model_checks(prefix: str, declared: list[str]) -> dict[str, str | None]:
    """Check name (``<prefix>_<suffix>``) -> the model it judges (None: every model not declared)."""
    return {f"{prefix}_{suffix}": model_id for suffix, model_id in check_targets(declared)}


def in_scope(frame: pd.DataFrame, model_id: str | None, declared: list[str]) -> pd.DataFrame:
    """The rows of one model, or (model_id None) those of every model not declared."""
    if model_id is not None:
        return frame[frame["model_id"] == model_id]
    return frame[~frame["model_id"].isin(declared)]


def _set(rule) -> dict:
    """A Rule's fields that are set (a model's override replaces only those)."""
    return rule.model_dump(exclude_none=True)


# each day's PSI with the non-null values it compared on each side (the psi rule's min_count), and the
# chi-square statistic of homogeneity of the day's and the reference's bin counts (a 2 x bins table): with
# C, R the two sides' values and c, r a bin's, C R sum((c/C - r/R)^2 / (c + r)) over the bins either side holds,
# on bins - 1 degrees of freedom (scipy.stats.chi2_contingency without correction computes the same); and the
# mart's pooled figures, the same over the version's days of the psi rule's pool_days window (judged on small days)
DRIFT_SQL = """
SELECT d.date, d.model_id, d.model_version, d.feature, d.psi,
       coalesce(b.current_values, 0) AS current_values, coalesce(b.reference_values, 0) AS reference_values,
       b.drift_chi2, coalesce(b.drift_bins, 0) AS drift_bins,
       d.pooled_values, d.pooled_psi, d.pooled_chi2, d.pooled_bins, d.reference_end_date
FROM marts.feature_drift_daily d
LEFT JOIN (
    SELECT date, model_id, model_version, feature, current_values, reference_values,
           count(*) FILTER (WHERE current_count + reference_count > 0) AS drift_bins,
           current_values * reference_values * sum(
               (current_count / current_values - reference_count / reference_values) ** 2
               / (current_count + reference_count)
           ) FILTER (WHERE current_count + reference_count > 0) AS drift_chi2
    FROM (
        SELECT *, sum(current_count) OVER side AS current_values, sum(reference_count) OVER side AS reference_values
        FROM marts.feature_drift_bins WHERE date BETWEEN $1 AND $2
        WINDOW side AS (PARTITION BY date, model_id, model_version, feature)
    ) GROUP BY date, model_id, model_version, feature, current_values, reference_values
) b ON b.date = d.date AND b.model_id = d.model_id AND b.feature = d.feature
    AND b.model_version IS NOT DISTINCT FROM d.model_version
WHERE d.date BETWEEN $1 AND $2
"""


# each model version's values so far, to a day ($1): its fullest feature's non-null values over all its days (its
# reference window's and every day's since); under twice min_count, no reference and pool can each hold min_count
VERSION_VALUES_SQL = """
SELECT model_id, model_version, max(feature_values)::BIGINT AS version_values
FROM (
    SELECT model_id, model_version, feature, sum(coalesce(round(rows_total * (1 - null_rate)), 0)) AS feature_values
    FROM marts.feature_drift_daily WHERE date <= $1
    GROUP BY model_id, model_version, feature
) GROUP BY model_id, model_version
"""


def version_values(conn, upto) -> pd.DataFrame | None:
    """VERSION_VALUES_SQL's rows to ``upto``; None without the drift mart or its row counts (an older one)."""
    import duckdb

    try:
        return conn.execute(VERSION_VALUES_SQL, [upto]).df()
    except (duckdb.CatalogException, duckdb.BinderException):
        return None


# each day after a version's reference window: its rows and share without a value of each feature, and the
# reference days' rows and rows without one (the null_rate rule)
NULL_RATE_SQL = """
SELECT d.date, d.model_id, d.model_version, d.feature, d.rows_total, d.null_rate, d.reference_end_date,
       r.reference_rows, r.reference_nulls
FROM marts.feature_drift_daily d
JOIN (
    SELECT model_id, model_version, feature, sum(rows_total) AS reference_rows,
           sum(round(null_rate * rows_total)) AS reference_nulls
    FROM marts.feature_drift_daily WHERE date BETWEEN reference_start_date AND reference_end_date
    GROUP BY model_id, model_version, feature
) r ON r.model_id = d.model_id AND r.feature = d.feature AND r.model_version IS NOT DISTINCT FROM d.model_version
WHERE d.date BETWEEN $1 AND $2 AND d.date > d.reference_end_date
"""


POOLED = ("pooled_values", "pooled_psi", "pooled_chi2", "pooled_bins")
# a pooled PSI alert's rule says its pool (the report reads the days back: POOLED_RULE_DAYS, a regular expression)
POOLED_RULE = "pooled over the version's last {days} days"
POOLED_RULE_DAYS = POOLED_RULE.format(days=r"(\d+)")


def _psi_counted(rows: pd.DataFrame, psi: dict) -> pd.Series:
    """Drift rows with enough values on both sides to judge: with few, the bins' sampling noise alone exceeds any
    threshold."""
    return rows[["current_values", "reference_values"]].min(axis=1) >= float(psi.get("min_count") or 0)


def _psi_pooled(rows: pd.DataFrame, psi: dict) -> pd.Series:
    """Drift rows judged on their pool (the version's last pool_days days, the mart's pooled_*): too few values
    on the day alone, enough in the pool. Rows without pooled figures (an older mart) are not."""
    pooled = rows["pooled_values"] if "pooled_values" in rows else pd.Series(np.nan, index=rows.index)
    enough = np.minimum(pooled, rows["reference_values"]) >= float(psi.get("min_count") or 0)
    return ~_psi_counted(rows, psi) & enough.fillna(False).astype(bool)


def _figures(rows: pd.DataFrame, pooled: pd.Series) -> pd.DataFrame:
    """``psi``, ``values``, ``drift_chi2``, ``drift_bins`` of each drift row: the pool's where ``pooled``, else the
    day's."""
    out = rows[["psi", "current_values", "drift_chi2", "drift_bins"]].rename(columns={"current_values": "values"})
    if pooled.any():
        for column, name in zip(("values", "psi", "drift_chi2", "drift_bins"), POOLED):
            out[column] = out[column].where(~pooled, rows[name])
    return out.assign(pooled=pooled)


# a day too small to judge alone (under min_count) is judged alone too where its own bins differ from the
# reference's beyond this share of the rule's alpha: a trial's sample year jumped on a day of 96 values (PSI 9.4,
# every value above the reference's top decile) while its 7-day pool read 0.11, alerted a day late
ALONE_ALPHA_SHARE = 0.1
# ... and holding this many values a bin on average (the chi-square's approximation: Cochran's expected 5)
ALONE_PER_BIN = 5


def _psi_overwhelming(rows: pd.DataFrame, psi: dict) -> pd.Series:
    """Drift rows under min_count whose own figures a tenth of alpha rejects: at least a quarter of min_count and
    ALONE_PER_BIN values a bin on both sides, the day's PSI above the threshold and its bins' chi-square p below
    alpha x ALONE_ALPHA_SHARE (a second look at the day beside its pool's: a stricter level keeps the two near
    alpha together)."""
    if psi.get("alpha") is None:
        return pd.Series(False, index=rows.index)
    fewer = rows[["current_values", "reference_values"]].min(axis=1)
    enough = (fewer >= float(psi.get("min_count") or 0) / 4) & (fewer >= ALONE_PER_BIN * rows["drift_bins"])
    p = pd.Series(drift_pvalue(rows["drift_chi2"], rows["drift_bins"]), index=rows.index)
    strong = (rows["psi"] > psi["above"]) & (p < float(psi["alpha"]) * ALONE_ALPHA_SHARE)
    return ~_psi_counted(rows, psi) & enough & strong


def psi_judged(rows: pd.DataFrame, psi: dict) -> pd.DataFrame:
    """The figures each drift row is judged on (_figures): the day's, or on a day too small alone whose pool holds
    enough (``pooled`` true) the pool's, unless its own figures are overwhelming (``alone`` true: the day's);
    ``judged`` where either holds enough values on both sides, or ``alone``."""
    alone = _psi_overwhelming(rows, psi)
    pooled = _psi_pooled(rows, psi) & ~alone
    return _figures(rows, pooled).assign(judged=_psi_counted(rows, psi) | pooled | alone, alone=alone)


def _psi_larger_pool(rows: pd.DataFrame, psi: dict) -> pd.Series:
    """Drift rows too small alone whose pool holds more values than the day, enough or not: the figures to show
    (a trial's pools of 180 against a reference of 177 had PSI 1.2 while each day's 25 values were not listed)."""
    pooled = rows["pooled_values"] if "pooled_values" in rows else pd.Series(np.nan, index=rows.index)
    return ~_psi_counted(rows, psi) & (pooled > rows["current_values"]).fillna(False).astype(bool)


def drift_pvalue(chi2, bins) -> np.ndarray:
    """P(chi-square with ``bins`` - 1 degrees of freedom >= ``chi2``): the day's bin counts and the reference's
    drawn from one distribution (DRIFT_SQL's drift_chi2, drift_bins). NaN with fewer than two bins."""
    return calibration_pvalue(chi2, np.asarray(bins, float) - 1)  # the same chi-square tail, on bins - 1 degrees


def _psi_beyond_noise(judged: pd.DataFrame, psi: dict) -> pd.Series:
    """Drift rows whose bins differ from the reference's more than sampling explains (the psi rule's alpha; every
    row without one; ``judged``: psi_judged's figures): PSI's noise grows with the bins, (bins - 1) (1/n + 1/m) on
    average, so a 40-category feature at 200 values a day crosses 0.2 on most unchanged days."""
    if psi.get("alpha") is None:
        return pd.Series(True, index=judged.index)
    p = drift_pvalue(judged["drift_chi2"], judged["drift_bins"])
    return pd.Series(p < float(psi["alpha"]), index=judged.index)


def unjudged_drift(drift: pd.DataFrame, config: AlertConfig) -> pd.DataFrame:
    """DRIFT_SQL rows above their model's PSI threshold that raise no alert, ``why``: 'few values' on days too
    small to judge, alone or pooled (alerts.rules.psi.min_count: yet a PSI of 0.9 on 169 values is far beyond
    noise; days under a quarter of min_count are not listed), 'noise' where the bins' differences are within
    sampling noise (alerts.rules.psi.alpha). ``psi``, ``current_values``, ``drift_bins`` are the figures judged or,
    on a day too small alone, its pool's where the pool holds more values (``pooled`` true); ``p`` their bins'
    chi-square p-value against the reference's."""
    out = []
    for model_id, rows in drift[drift["psi"].notna()].groupby("model_id"):
        psi = config.rule("psi", model_id)
        judged = psi_judged(rows, psi)
        # listed on the larger pool's figures (a pool judged is one): a day of 25 values is below the cutoff
        shown = _figures(rows, _psi_larger_pool(rows, psi))
        rows = rows.assign(
            psi=shown["psi"],
            current_values=shown["values"],
            drift_bins=shown["drift_bins"],
            pooled=shown["pooled"],
            p=drift_pvalue(shown["drift_chi2"], shown["drift_bins"]),  # how far beyond noise: what ranks them
        )
        above = rows["psi"] > psi["above"]
        # a quarter of min_count at least: a PSI of 8.9 on one value (a trial's ~10 patients a day, every day
        # listed) is the empty bins' floor, nothing to look at
        worth_a_look = rows[["current_values", "reference_values"]].min(axis=1) >= float(psi.get("min_count") or 0) / 4
        out.append(rows[above & ~judged["judged"] & worth_a_look].assign(why="few values"))
        out.append(rows[above & judged["judged"] & ~_psi_beyond_noise(judged, psi)].assign(why="noise"))
    return pd.concat(out).sort_values(["date", "model_id", "feature"]) if out else drift.iloc[:0].assign(why="")


NOT_JUDGED_COLUMNS = (
    "model_id",
    "model_version",
    "reference",
    "values",
    "daily",
    "min_count",
    "pool_days",
    "days_since_reference",
    "version_values",
)


def drift_not_judged(drift: pd.DataFrame, config: AlertConfig, so_far: pd.DataFrame | None = None) -> pd.DataFrame:
    """DRIFT_SQL rows' model versions whose PSI no row judged, alone or pooled: ``reference`` (the most values of a
    feature in the reference), ``values`` (the most on a day or in its pool), ``min_count``, ``pool_days`` (a
    trial's 25 a day: references of 177 and pools of 180 under 200, a real shift, and no line said drift was not
    judged); ``version_values``: its values so far, ``so_far``'s (version_values' rows; None where not given)."""
    known = (
        {}
        if so_far is None
        else dict(zip(zip(so_far["model_id"], so_far["model_version"].astype(str)), so_far["version_values"]))
    )
    out = []
    for (model_id, version), rows in drift[drift["psi"].notna()].groupby(["model_id", "model_version"]):
        psi = config.rule("psi", model_id)
        if psi_judged(rows, psi)["judged"].any():
            continue
        pooled = rows["pooled_values"].fillna(0) if "pooled_values" in rows else 0
        # its values a calendar day (a day's count: its fullest feature's), the rate the advice's days are counted
        # at: the fullest pool's told half the days a trial's model needed; a weekly batch's spread over its week
        per_day = rows.groupby("date")["current_values"].max()
        newest = pd.Timestamp(per_day.index.max())
        calendar_days = (newest - pd.Timestamp(per_day.index.min())).days + 1
        ended = rows["reference_end_date"].dropna() if "reference_end_date" in rows else pd.Series(dtype=object)
        since = (newest - pd.Timestamp(ended.max())).days if len(ended) else None
        out.append(
            {
                "model_id": model_id,
                "model_version": version,
                "reference": int(rows["reference_values"].max()),
                "values": int(np.maximum(rows["current_values"], pooled).max()),
                "daily": float(per_day.sum()) / calendar_days,
                "min_count": int(psi.get("min_count") or 0),
                "pool_days": int(psi.get("pool_days") or 1),
                # the days after its reference window to its newest: a pool this long holds every value there is
                "days_since_reference": since,
                # its whole life's values of its fullest feature, to the newest day
                "version_values": known.get((model_id, str(version))),
            }
        )
    return pd.DataFrame(out, columns=list(NOT_JUDGED_COLUMNS))


def _too_few_so_far(r, said: str) -> str | None:
    """drift_not_judged_text of a version whose values so far (its whole life) are fewer than the twice min_count
    its reference and a pool need, whatever their days; None otherwise (a trial's model of 100 predictions in all
    was told to lengthen both: "about 375 days hold 200 at its rate")."""
    so_far, m = getattr(r, "version_values", None), r.min_count
    if so_far is None or so_far != so_far or so_far >= 2 * m:
        return None
    so_far = int(so_far)
    days = f"about {math.ceil((2 * m - so_far) / r.daily - 1e-9)} more days at its rate" if r.daily else "more days"
    noisier = "a noisier verdict: the fewer its values, the more often noise alone crosses the PSI threshold"
    held = (
        f"{said}; in all, its predictions so far hold {so_far} values of its fullest feature (its reference "
        "window's and every day's since)"
    )
    if so_far < m:
        return (
            f"{held}, fewer than {m}: no window, reference or pool, can hold {m} yet, so no setting judges it: lower "
            f"alerts.rules.psi.min_count ({noisier}) or wait {days} for the {2 * m} the two need together"
        )
    return (
        f"{held}, fewer than the {2 * m} the two need together, so no setting judges it yet: {days}, with "
        f"models.{r.model_id}.drift_reference.first_days holding {m} (or lower alerts.rules.psi.min_count: {noisier})"
    )


def drift_not_judged_text(r) -> str:
    """A drift_not_judged row said, with the settings to change: the model's own pool and drift reference (init
    proposes both for such a model); or, once its pools span every day after its reference, that first_days alone
    moves values between the two, and where both together hold fewer than twice min_count, that only the days to
    come do (a trial's version of 353 predictions was told to lengthen a 140-day pool that already held all 135
    after its reference); the same of a version whose values so far are fewer, whatever its pools (_too_few_so_far)."""
    head = f"{r.model_id} {r.model_version}: drift (PSI) alerts not judged, even pooled: the reference and the pool "
    need = f"need alerts.rules.psi.min_count ({r.min_count}) values each"
    since, m = r.days_since_reference, r.min_count
    spans = since == since and since is not None and r.pool_days >= since  # not NaN or None, and pools span all
    if spans and min(r.reference, r.values) < m:
        total = r.reference + r.values
        first_days = f"models.{r.model_id}.drift_reference.first_days"
        said = (
            f"{head}{need}; its {r.pool_days}-day pools span all {int(since)} days after its reference window, so "
            f"first_days alone splits its {total} values between the two (reference {r.reference}, pool {r.values})"
        )
        if total < 2 * m:
            wait = f": about {math.ceil((2 * m - total) / r.daily - 1e-9)} more days at its rate" if r.daily else ""
            return (
                f"{said}: fewer than the {2 * m} both need, so no setting judges it yet{wait}, with {first_days} "
                f"holding {m} (or lower alerts.rules.psi.min_count: a noisier verdict)"
            )
        days = f" (about {math.ceil(m / r.daily - 1e-9)} days at its rate)" if r.daily else ""
        return f"{said}: set {first_days} so its reference holds about {m}{days}, the pool the rest"
    # too few in its whole life: lengthening either window cannot help
    if (too_few := _too_few_so_far(r, head + need)) is not None:
        return too_few
    short = []
    both = r.reference >= r.min_count and r.values >= r.min_count  # each side reached it, never on one row
    if r.reference < r.min_count or both:
        short.append(
            f"models.{r.model_id}.drift_reference.first_days (its reference holds at most {r.reference} values of a feature)"
        )
    if r.values < r.min_count or both:
        short.append(f"models.{r.model_id}.alerts.psi.pool_days (its {r.pool_days}-day pools hold at most {r.values})")
    # how long, at its rate (a trial's reader got "lengthen" alone)
    days = f": about {math.ceil(r.min_count / r.daily - 1e-9)} days hold {r.min_count} at its rate" if r.daily else ""
    return f"{head}{need}; lengthen " + " and ".join(short) + days


def load_alert_config(config: ProjectConfig | None = None) -> AlertConfig:
    """The alert, bias and retraining settings of the project file (``load_config()`` unless given)."""
    c = config if config is not None else load_config().config
    # a rule set in the project file keeps the defaults of the fields it leaves out (psi: {above: 0.3} keeps min_count)
    defaults = AlertRules()
    rules = {
        name: {**_set(getattr(defaults, name)), **_set(getattr(c.alerts.rules, name))}
        for name in AlertRules.model_fields
    }
    overrides = {
        m: {name: _set(rule) for name, rule in spec.alerts.items()} for m, spec in c.models.items() if spec.alerts
    }
    floors = {
        m: {k: v for k, v in (("min_precision", spec.min_precision), ("min_recall", spec.min_recall)) if v is not None}
        for m, spec in c.models.items()
    }
    return AlertConfig(
        models=list(c.models),
        min_labelled=int(c.alerts.min_labelled),
        rules=rules,
        overrides=overrides,
        bias=c.bias.model_dump(),
        retraining=c.retraining.model_dump(),
        floors={m: f for m, f in floors.items() if f},
        label_horizons={m: spec.label_horizon_days for m, spec in c.models.items()},
        default_label_horizon=ModelSpec().label_horizon_days,
        retired=retired_models(c),
    )


def one_sided_drop_pvalue(successes, trials, reference_successes, reference_trials) -> np.ndarray:
    """p-value of "the day's proportion is below the reference's": Fisher's exact test, one-sided.

    P(X <= x) for X hypergeometric (the day's successes, given the day's trials and both rows' successes), the
    test scipy.stats' ``fisher_exact([[x, n - x], [x_ref, n_ref - x_ref]], alternative='less')`` computes. Exact
    at any count: the pooled z-test it replaced rejected 2 of 10 against 12 of 18 at p 0.009 (exact: 0.023), and
    at such counts raised ~1.2-1.5x the alarms its alpha promised. NaN where a denominator is 0 or the pooled
    proportion is 0 or 1 (no variance: nothing to judge).
    """
    x, n = np.asarray(successes, float), np.asarray(trials, float)
    xr, nr = np.asarray(reference_successes, float), np.asarray(reference_trials, float)
    x, n, xr, nr = np.broadcast_arrays(x, n, xr, nr)
    out = np.full(x.shape, np.nan)
    for i in np.ndindex(x.shape):
        total, hits = n[i] + nr[i], x[i] + xr[i]
        if not (n[i] > 0 and nr[i] > 0 and 0 < hits < total) or np.isnan(total + hits):
            continue
        k = np.arange(max(0.0, n[i] - (total - hits)), x[i] + 1)  # the day's possible successes up to its own
        # log C(hits, k) + log C(total - hits, n - k) - log C(total, n): the constant part once, per k four terms
        lg = math.lgamma
        const = lg(hits + 1) + lg(total - hits + 1) - lg(total + 1) + lg(n[i] + 1) + lg(total - n[i] + 1)
        log_pmf = const - (
            special.gammaln(k + 1)
            + special.gammaln(hits - k + 1)
            + special.gammaln(n[i] - k + 1)
            + special.gammaln(total - hits - n[i] + k + 1)
        )
        top = log_pmf.max()
        out[i] = min(1.0, math.exp(top) * float(np.exp(log_pmf - top).sum()))
    return out


def coverage_pvalue(labelled, predictions, share: float) -> np.ndarray:
    """P(X <= labelled) for X ~ Binomial(predictions, share): how surprising a day's labelled count is if each of
    its predictions got its label with probability ``share`` (the rule's limit). NaN without predictions.
    scipy.stats.binomtest(labelled, predictions, share, alternative="less") gives the same p-value."""
    k, n = np.asarray(labelled, float), np.asarray(predictions, float)
    judged = (n > 0) & ~np.isnan(k)
    # whole counts as integers: scipy deprecates a float n (a warning on every call), and floors k as bdtr does
    trials = np.where(judged, n, 1).astype(np.int64)
    hits = np.where(judged, np.minimum(k, n), 0).astype(np.int64)
    return np.where(judged, special.bdtr(hits, trials, share), np.nan)


def _coverage_pools(mature: pd.DataFrame, coverage: dict) -> tuple[pd.DataFrame, pd.Series]:
    """Each mature row's counts the coverage rule judges, and which of them are pooled. A day whose predictions are
    too few for even 0 labelled to reject at alpha ((1 - below) ** n >= alpha: at 0.5 and 0.01, under 7) can never
    alert alone (a trial's 78-day label outage at ~2 predictions a day was never said): it is judged on its model's
    mature days of the last ``pool_days`` calendar days summed, the day's included (every version's)."""
    counts = mature[["labelled", "predictions", "label_coverage"]].astype(float)
    share, alpha, days = float(coverage["below"]), float(coverage["alpha"]), int(coverage.get("pool_days") or 1)
    # with the verdict's own tolerance (p < alpha x (1 - 1e-9)): 1 - 0.9 is 0.0999..., and a re-trial's days of 2
    # predictions were judged alone at 0.1 ** 2 = 0.00999..., where their p could never be below alpha
    alone = (1 - share) ** counts["predictions"] < alpha * (1 - 1e-9)
    pooled = ~alone & (days > 1) & (counts["predictions"] > 0) & (share > 0)  # below 0: the rule is off
    if not pooled.any():
        return counts, pooled
    daily = mature.groupby("date")[["labelled", "predictions"]].sum().astype(float).sort_index()
    window = daily.rolling(f"{days}D").sum()
    summed = window.reindex(mature["date"]).set_axis(mature.index)
    counts.loc[pooled, ["labelled", "predictions"]] = summed.loc[pooled, ["labelled", "predictions"]]
    counts.loc[pooled, "label_coverage"] = counts["labelled"][pooled] / counts["predictions"][pooled]
    return counts, pooled


def calibration_pvalue(chi2, bins) -> np.ndarray:
    """P(chi-square with ``bins`` degrees of freedom >= ``chi2``): the Hosmer-Lemeshow test of a model scored on
    labels it was not fitted to (one degree per bin). NaN without a bin. scipy.stats.chi2.sf computes the same."""
    chi2, bins = np.asarray(chi2, float), np.asarray(bins, float)
    with np.errstate(invalid="ignore"):
        return np.where(bins > 0, special.chdtrc(np.where(bins > 0, bins, 1), chi2), np.nan)


def _breaches(
    frame: pd.DataFrame, metric: str, values: pd.Series, threshold: float, rule: str, subject=None
) -> pd.DataFrame:
    if values.empty:  # most rules on most days: no breach (an empty frame, left out of evaluate_alerts' result)
        return pd.DataFrame()
    out = frame.loc[values.index, ["date", "model_id", "model_version"]].copy()
    out["metric"] = metric
    out["subject"] = subject if subject is not None else ""
    out["value"] = values.astype(float)
    out["threshold"] = float(threshold)
    out["rule"] = rule
    return out


def evaluate_alerts(
    health: pd.DataFrame,
    drift: pd.DataFrame,
    reference: pd.DataFrame,
    versions: pd.DataFrame,
    config: AlertConfig,
    first: object,
    last: object,
    held_back: object = (),
    null_rates: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Breaches among rows dated ``first``..``last``.

    ``health``: marts.model_health_daily rows from ``first - config.lookback_days`` on
    (the volume rule compares with trailing days); ``drift``: marts.feature_drift_daily
    rows; ``reference``: REFERENCE_COLUMNS, the confusion counts summed over each
    version's reference window and its last day (the drop rules judge against it once the model's label
    horizon has passed that day); ``versions``: model_id, model_version, first_date
    (intermediate.int_model_versions: when a model's life began); ``held_back``: the days a quality gate held
    the predictions of back, or that never loaded (their volume unknown, not 0: such a day read as an outage, -100%);
    ``null_rates``: NULL_RATE_SQL's rows (the null_rate rule; None: not judged).
    """
    first, last = pd.Timestamp(first), pd.Timestamp(last)
    found = []
    health = health.sort_values(["model_id", "model_version", "date"])
    in_range = health[(health["date"] >= first) & (health["date"] <= last)]
    for model_id, rows in in_range.groupby("model_id"):
        labelled = rows["labelled"] >= config.min_labelled
        ece = config.rule("expected_calibration_error", model_id)
        over = labelled & (rows["expected_calibration_error"] > ece["above"])
        rule = f"> {ece['above']}"
        if ece.get("alpha") is not None:  # and more than the number of labels explains
            over &= calibration_pvalue(rows["calibration_chi2"], rows["calibration_bins"]) < float(ece["alpha"])
            rule += f" and Hosmer-Lemeshow p < {ece['alpha']:g}"
        hit = rows["expected_calibration_error"][over]
        found.append(_breaches(rows, "expected_calibration_error", hit, ece["above"], rule))
        ref = rows[["model_id", "model_version"]].merge(reference, on=["model_id", "model_version"], how="left")
        ref.index = rows.index  # each row's version's reference counts
        # a reference whose labels are still landing is no yardstick: where one class's outcomes arrive first
        # (churn known in days, staying only after 30), its early precision is far off its final one. Its counts
        # are final once the label horizon has passed its last day (later labels are not counted)
        horizon = pd.Timedelta(days=config.label_horizon(model_id))
        landing = ~(pd.to_datetime(ref["reference_end_date"]) + horizon <= last)
        ref.loc[landing, REFERENCE_COUNTS] = np.nan
        for name in DROP_RULES:
            found.append(_drop_breaches(rows, labelled, ref, name, config.rule(name, model_id)))

    for model_id, rows in health.groupby("model_id"):
        coverage = config.rule("label_coverage", model_id)
        # a day's coverage is judged only once `after_days` of labels have had time to arrive
        after = pd.Timedelta(days=coverage["after_days"])
        mature = rows[rows["labels_as_of"] >= rows["date"] + after]
        counts = mature[["labelled", "predictions", "label_coverage"]]
        rule = f"< {coverage['below']} after {coverage['after_days']} days"
        pooled = pd.Series(False, index=mature.index)
        if coverage.get("alpha") is not None:  # and below it beyond chance: 0 of a day's 1 prediction is no outage
            counts, pooled = _coverage_pools(mature, coverage)
            p = coverage_pvalue(counts["labelled"], counts["predictions"], coverage["below"])
            rule += f" and one-sided binomial p < {coverage['alpha']:g}"
        rules = pd.Series(
            [
                f"{rule} on the model's last {coverage['pool_days']} days pooled ({k:g} of {n:g} labelled: a day "
                "alone is too small to test)"
                if pool
                else rule
                for pool, k, n in zip(pooled, counts["labelled"], counts["predictions"], strict=True)
            ],
            index=mature.index,
            dtype=object,
        )
        judged = (mature["date"] >= first) & (mature["date"] <= last)
        below = judged & (counts["label_coverage"] < coverage["below"])
        if coverage.get("alpha") is not None:
            # p < alpha, an exact p at alpha not rounded below it (0 of 2 against 0.9: 0.1 ** 2 = 0.00999...)
            below &= p < float(coverage["alpha"]) * (1 - 1e-9)
        found.append(
            _breaches(mature, "label_coverage", counts["label_coverage"][below], coverage["below"], rules[below])
        )

    held_days = {pd.Timestamp(d) for d in held_back}
    for model_id in sorted(set(health["model_id"]) | set(versions["model_id"])):
        breaches = _volume_breaches(
            health[health["model_id"] == model_id],
            model_id,
            _model_start(versions, model_id),
            config,
            first,
            last,
            held_days,
        )
        if model_id in config.retired and len(breaches):  # its days after retirement are no outage
            breaches = breaches[breaches["date"] <= pd.Timestamp(config.retired[model_id])]
        found.append(breaches)

    drift = drift[(drift["date"] >= first) & (drift["date"] <= last) & drift["psi"].notna()]
    for (model_id, feature), rows in drift.groupby(["model_id", "feature"]):
        found.extend(_psi_breaches(rows, config.rule("psi", model_id), feature))
    if null_rates is not None:
        null_rates = null_rates[(null_rates["date"] >= first) & (null_rates["date"] <= last)]
        for (model_id, feature), rows in null_rates.groupby(["model_id", "feature"]):
            found.append(_null_rate_breaches(rows, config.rule("null_rate", model_id), feature))

    found = [f for f in found if len(f)]
    if not found:
        return pd.DataFrame(columns=ALERT_COLUMNS)
    out = pd.concat(found, ignore_index=True)[ALERT_COLUMNS]
    out["value"] = out["value"].replace([np.inf, -np.inf], np.nan)
    return out.sort_values(["date", "model_id", "metric", "subject"]).reset_index(drop=True)


def _psi_breaches(rows: pd.DataFrame, psi: dict, feature: str) -> list[pd.DataFrame]:
    """One model's and feature's PSI alerts: judged days (psi_judged) above the threshold beyond the bins' noise,
    the value the day's PSI or, on a day too small alone, the pooled one (its rule says so)."""
    judged = psi_judged(rows, psi)
    hit = judged["judged"] & (judged["psi"] > psi["above"]) & _psi_beyond_noise(judged, psi)
    rule = f"> {psi['above']}" + (f" and chi-square p < {psi['alpha']:g}" if psi.get("alpha") is not None else "")
    pooled = f"{rule}, {POOLED_RULE.format(days=int(psi.get('pool_days') or 1))} (too few values on the day)"
    alone = (
        f"> {psi['above']} and chi-square p < {float(psi.get('alpha') or 0) * ALONE_ALPHA_SHARE:g} on the day's "
        f"values alone (fewer than min_count {psi.get('min_count')}: a shift beyond a tenth of alpha)"
    )
    day = hit & ~judged["pooled"] & ~judged["alone"]
    return [
        _breaches(rows, "psi", judged["psi"][day], psi["above"], rule, subject=feature),
        _breaches(rows, "psi", judged["psi"][hit & judged["pooled"]], psi["above"], pooled, subject=feature),
        _breaches(rows, "psi", judged["psi"][hit & judged["alone"]], psi["above"], alone, subject=feature),
    ]


def _null_rate_breaches(rows: pd.DataFrame, rule: dict, feature: str) -> pd.DataFrame:
    """One model's and feature's days after its reference window whose share of rows without a value rose more than
    ``above`` (absolute) over the reference days' share, beyond chance: a one-sided exact test of the day's rows with
    a value against the reference's (Fisher's, as the drop rules). value = the day's null rate, threshold = the
    reference's. A trial's lab feed lost creatinine on 90% of rows (29% before): PSI read the values left, and
    nothing said it for a day."""
    after = pd.to_datetime(rows["date"]) > pd.to_datetime(rows["reference_end_date"])
    n, nulls = rows["rows_total"].astype(float), (rows["null_rate"].astype(float) * rows["rows_total"]).round()
    nr, xr = rows["reference_rows"].astype(float), rows["reference_nulls"].astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        share, reference_share = nulls / n, xr / nr
    alpha = float(rule.get("alpha", 0.01))
    hit = after & (n > 0) & (nr > 0) & (share - reference_share > float(rule["above"]))
    if hit.any():  # P(the day's empty rows >= its own) given both sides' totals: Fisher's one-sided exact test
        from scipy.stats import hypergeom

        p = hypergeom.sf(nulls[hit] - 1, n[hit] + nr[hit], nulls[hit] + xr[hit], n[hit])
        hit.loc[hit] = p < alpha
    points = f"{float(rule['above']) * 100:g} percentage points"  # absolute: 29% -> 39%, not 29% -> 31.9%
    said = f"missing share more than {points} above the reference days' and one-sided exact p < {alpha:g}"
    out = _breaches(rows, "null_rate", share[hit], 0.0, said, subject=feature)
    if len(out):
        out["threshold"] = reference_share[hit].astype(float).to_numpy()
    return out


def _drop_breaches(rows: pd.DataFrame, labelled: pd.Series, ref: pd.DataFrame, name: str, rule: dict) -> pd.DataFrame:
    """Days whose precision (recall) is significantly below the version's reference window's.

    One-sided Fisher exact test of the day's counts against the
    reference window's; a breach when p < alpha. value = the day's rate,
    threshold = the reference rate. Days without enough labelled predictions
    (``min_labelled``, and the rule's ``min_count`` on the rate's denominator) are not judged.
    ``ref``: each row's version's REFERENCE_COLUMNS (on the rows' index).
    """
    metric, hits, misses, (ref_hits, ref_misses) = DROP_RULES[name]
    alpha = float(rule.get("alpha", 0.01))
    missing = [c for c in (hits, misses) if c not in rows.columns]
    if missing:
        raise ValueError(f"model_health_daily rows lack {missing}: the {name} rule needs the day's confusion counts")
    x, n = rows[hits].astype(float), rows[hits].astype(float) + rows[misses].astype(float)
    xr = ref[ref_hits].astype(float)
    nr = xr + ref[ref_misses].astype(float)
    p = pd.Series(one_sided_drop_pvalue(x, n, xr, nr), index=rows.index)
    enough = labelled & (n >= float(rule.get("min_count") or 1))
    hit = enough & (p < alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        value, threshold = (x / n)[hit], (xr / nr)[hit]
    out = _breaches(rows, name, value, 0.0, f"one-sided exact test p < {alpha:g} vs reference {metric}")
    if len(out):
        out["threshold"] = threshold.astype(float).to_numpy()
    return out


def _model_start(versions: pd.DataFrame, model_id: str) -> pd.Timestamp:
    starts = versions.loc[versions["model_id"] == model_id, "first_date"]
    if starts.empty:
        raise ValueError(
            f"model {model_id!r} has health rows but no first_date in the model versions "
            "(intermediate.int_model_versions): cannot tell an outage from a model not yet live"
        )
    return pd.Timestamp(starts.min())


def daily_volume(
    rows: pd.DataFrame, model_start: pd.Timestamp, start: pd.Timestamp, last: pd.Timestamp
) -> pd.DataFrame:
    """One model's predictions per calendar day from ``max(model_start, start)`` to ``last``.

    A day without a health row had no predictions (an outage), so it counts as 0
    rather than vanishing: the trailing median then runs over calendar days and an
    outage day is itself a breach. A day's version is the one serving most of its
    predictions; a day without any keeps the version served before it.
    """
    # one resolution whichever bound starts it (the model's start read from rows, or a computed day)
    days = pd.date_range(max(model_start, start), last, freq="D", name="date", unit="us")
    rows = rows[(rows["date"] >= days[0]) & (rows["date"] <= last)] if len(days) else rows.iloc[:0]
    per_version = rows.groupby(["date", "model_version"], as_index=False)["predictions"].sum()
    served = (
        per_version.sort_values(["date", "predictions", "model_version"])
        .groupby("date")
        .tail(1)
        .set_index("date")["model_version"]
    )
    out = pd.DataFrame(index=days)
    out["predictions"] = per_version.groupby("date")["predictions"].sum().reindex(days, fill_value=0).astype(float)
    out["model_version"] = served.reindex(days).ffill().bfill()
    return out.reset_index()


WEEK = 7  # days: a day off every week is a weekday off a week before too


def _volume_breaches(
    rows: pd.DataFrame,
    model_id: str,
    model_start: pd.Timestamp,
    config: AlertConfig,
    first: pd.Timestamp,
    last: pd.Timestamp,
    held_back: set = frozenset(),
) -> pd.DataFrame:
    """Days whose prediction volume is outside ±outside of the trailing calendar-day median (value: relative change).

    Judged only once the trailing median reaches the rule's ``min_count``. A day within ±outside of its weekday a
    weekday's level (the median of the same weekday in the 3 weeks before) is the data's weekly cycle (a quiet
    weekend like the last ones), and a day without predictions whose weekday had none before a day the model is
    off every week (a weekday-only model's
    weekends), not an outage, as the volume gate's freshness rule reads it. A ``held_back`` day (its
    predictions held back by a gate) is neither judged nor in the trailing medians: its volume is unknown.
    """
    volume = config.rule("volume_change", model_id)
    trailing_days = int(volume["trailing_days"])
    # the rows start `lookback_days` before `first` (evaluate_alerts' contract): a fixed
    # start, so a daily run and a backfill judge a day from the same calendar days
    calendar = daily_volume(rows, model_start, first - pd.Timedelta(days=config.lookback_days), last)
    held = calendar["date"].isin(held_back).to_numpy()
    # a weekday's level reads the same weekday 1..WEEKDAY_LEVEL_WEEKS weeks before on the calendar, a held-back
    # one left out (dropping its row first shifted every later day's weeks by one: another weekday's level)
    seen = calendar["predictions"].where(~held)
    levels = pd.concat([seen.shift(WEEK * k) for k in range(1, WEEKDAY_LEVEL_WEEKS + 1)], axis=1).median(axis=1)
    series = calendar[~held].reset_index(drop=True)
    if series.empty:
        return series
    weekday_level = levels[~held].reset_index(drop=True)
    trailing = series["predictions"].shift(1).rolling(trailing_days, min_periods=trailing_days).median()
    minimum = float(volume.get("min_count") or 0)
    # a weekly batch's trailing median is 0 (six empty days a week): its batch day is judged against its weekday's
    # level instead, where that reaches min_count (a trial's Monday batch cut to 25 of ~87 went unsaid)
    batch_day = (trailing < minimum) & (weekday_level >= minimum)
    with np.errstate(divide="ignore", invalid="ignore"):
        change = series["predictions"] / trailing.where(~batch_day, weekday_level) - 1
    # a trailing median below min_count is too small to tell an outage from noise (a new or tiny model)
    judged = (trailing >= minimum) | batch_day
    # a weekly cycle: a day within the band of its weekday's level (the median of the same weekday in the up to
    # WEEKDAY_LEVEL_WEEKS weeks before: one odd week does not move it) is the data's rhythm, not an outage: a quiet weekend
    # like the last ones, a day off every week. Two real data sets with weekends at 40% of weekdays alerted
    # every weekend.
    with np.errstate(divide="ignore", invalid="ignore"):
        like_its_weekday = (series["predictions"] / weekday_level - 1).abs() <= volume["outside"]
    # or within Poisson noise of it (a two-sided exact test at alpha): a weekend of ~10 varies by more than ±50%
    # (a trial's Sunday at 16 against Sundays of 14, 10, 10 was judged against the weekdays' ~95: -83%)
    like_its_weekday |= _poisson_two_sided(series["predictions"], weekday_level) >= float(volume.get("alpha") or 0)
    off_weekly = (series["predictions"] == 0) & (weekday_level == 0)
    weekly = off_weekly | (like_its_weekday & (weekday_level > 0))
    hit = (series["date"] >= first) & judged & ~weekly & (change.abs() > volume["outside"])
    rules = {
        False: f"outside ±{volume['outside']} of trailing {trailing_days}-day median",
        # not "(a batch)": a daily model that stopped reaches this rule too once its trailing median falls
        True: (
            f"outside ±{volume['outside']} of its weekday's median of the {WEEKDAY_LEVEL_WEEKS} weeks before (its "
            f"trailing {trailing_days}-day median under min_count)"
        ),
    }
    parts = []
    for by_weekday, rule in rules.items():
        rows = hit & (batch_day == by_weekday)
        parts.append(
            _breaches(series[rows].assign(model_id=model_id), "volume_change", change[rows], volume["outside"], rule)
        )
    parts = [p for p in parts if not p.empty]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _poisson_two_sided(counts: pd.Series, means: pd.Series) -> pd.Series:
    """Two-sided exact p-value of each count against Poisson(its mean): twice the smaller tail, at most 1; NaN
    without a mean (no weeks before). scipy.special's Poisson tails (scipy.stats.poisson's cdf and sf) keep
    scipy.stats out of the run."""
    k, mean = counts.to_numpy(float), means.to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        at_most = special.pdtr(k, mean)
        at_least = np.where(k > 0, special.pdtrc(k - 1, mean), 1.0)
    return pd.Series(np.minimum(1.0, 2 * np.minimum(at_most, at_least)), index=counts.index).where(means > 0)


# how far past its threshold a breach is, per metric: coverage and precision/recall-drop breaches are low
# values, volume breaches are large changes either way, the rest are high values
_SEVERITY = {
    "label_coverage": lambda v: -v,
    "precision_drop": lambda v: -v,
    "recall_drop": lambda v: -v,
    "volume_change": lambda v: v.abs(),
}


def worst_index(metric: str, values: pd.Series, thresholds: pd.Series | None = None):
    """The index of the breach value furthest past its threshold (None without values): the lowest coverage or
    dropped precision/recall, the largest volume change either way, a version change's flag rate furthest from the
    old version's (its threshold: a re-trial's report named the day least off), else the highest value."""
    values = values.dropna()
    if values.empty:
        return None
    if metric == "version_change" and thresholds is not None:
        return (values / thresholds.loc[values.index] - 1).abs().idxmax()
    return _SEVERITY.get(metric, lambda v: v)(values).idxmax()


def worst_value(metric: str, values: pd.Series, thresholds: pd.Series | None = None) -> float:
    """The breach value furthest past its threshold (worst_index's; NaN without values)."""
    index = worst_index(metric, values, thresholds)
    return float("nan") if index is None else float(values.loc[index])


def summarise_breaches(rows: pd.DataFrame, model_id: str, first: object, last: object) -> dict:
    """The model-health check's verdict on one model's marts.alerts rows of a window.

    passed (no breach), a one-line description, the breach count and the worst
    value of each metric (the one furthest past its threshold).
    """
    worst = {}
    # a version change's flag rate and score PSI apart (a rate and a PSI are not one scale)
    said = rows["metric"]
    if "subject" in rows:
        said = said.where(said != "version_change", said + " (" + rows["subject"].fillna("") + ")")
    for name, breaches in rows.groupby(said):
        if breaches["value"].notna().any():
            metric = breaches["metric"].iloc[0]
            worst[name] = round(worst_value(metric, breaches["value"], breaches.get("threshold")), 4)
    # the breaches' own days: the window re-evaluated starts a label lookback before the run, maybe before the data
    on = sorted({pd.Timestamp(d).date() for d in rows["date"]}) if "date" in rows and len(rows) else []
    when = f" on {on[0]}" + (f" .. {on[-1]}" if on[-1] != on[0] else "") if on else ""
    return {
        "passed": rows.empty,
        "description": f"{len(rows)} breach(es) for {model_id}{when} (days {first} .. {last} re-evaluated)"
        if len(rows)
        else "healthy",
        "breaches": len(rows),
        "worst_value_by_metric": worst,
    }
