"""A model's change of live version (a retrain), said where summary and the report show model health.

Each version's drift is judged against its own reference window, so a retrain's change of behaviour is compared
with nothing: a trial's retrained model flagged a quarter more students and no line said so. Per change: the
positive rate of the old version's last CHANGE_DAYS days with predictions against the new version's first
CHANGE_DAYS (counts from marts.model_health_daily), and the PSI of those new days' scores against the old
version's reference bins (intermediate.int_reference_profiles: its score deciles and counts)."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd

CHANGE_DAYS = 7  # the days with predictions compared on either side of a change
PSI_FLOOR = 1e-4  # an empty bin's share, as marts.feature_drift_daily floors it

# the labelled counts compared too (the labels known so far), and the daily ECEs weighted by their labels: a second
# trial's retrain that broke calibration (ECE 0.027 -> 0.165) was said as its flag rate and score PSI only
LABEL_SUMS = ("tp", "fp", "fn", "ece_weighted", "ece_labelled")


def _sums(side: str, position: str) -> str:
    return ", ".join(f"sum({c}) FILTER (WHERE {position} <= $2) AS {side}_{c}" for c in LABEL_SUMS)


# Per model, its versions ordered by their first day with predictions up to $1 (null: the mart's newest); a change
# is a version after another, kept when it is within the last $3 days of the model's newest day (the window of
# summary's health table, RECENT_DAYS). Its counts: the old version's last $2 days with predictions, the new one's
# first $2.
VERSION_CHANGES_SQL = f"""
WITH rows_ AS (
    SELECT model_id, model_version, date, predictions, round(positive_rate * predictions) AS positives,
        coalesce(true_positives, 0) AS tp, coalesce(false_positives, 0) AS fp, coalesce(false_negatives, 0) AS fn,
        expected_calibration_error * labelled AS ece_weighted,
        CASE WHEN expected_calibration_error IS NOT NULL THEN labelled END AS ece_labelled
    FROM marts.model_health_daily WHERE date <= coalesce($1::DATE, date)
),
newest AS (SELECT model_id, max(date) AS newest FROM rows_ GROUP BY ALL),
days AS (
    SELECT *, row_number() OVER (PARTITION BY model_id, model_version ORDER BY date DESC) AS from_last,
        row_number() OVER (PARTITION BY model_id, model_version ORDER BY date) AS from_first
    FROM rows_ WHERE predictions > 0
),
windows AS (
    SELECT model_id, model_version, min(date) AS first_day,
        min(date) FILTER (WHERE from_last <= $2) AS last_from, max(date) AS last_to,
        count(*) FILTER (WHERE from_last <= $2) AS last_days,
        sum(predictions) FILTER (WHERE from_last <= $2) AS last_predictions,
        sum(positives) FILTER (WHERE from_last <= $2) AS last_positives,
        {_sums("last", "from_last")},
        max(date) FILTER (WHERE from_first <= $2) AS first_to,
        count(*) FILTER (WHERE from_first <= $2) AS first_days,
        sum(predictions) FILTER (WHERE from_first <= $2) AS first_predictions,
        sum(positives) FILTER (WHERE from_first <= $2) AS first_positives,
        {_sums("first", "from_first")}
    FROM days GROUP BY ALL
),
changes AS (
    SELECT model_id, model_version AS new_version, first_day AS change_day,
        lag(model_version) OVER (PARTITION BY model_id ORDER BY first_day, model_version) AS old_version
    FROM windows
)
SELECT c.model_id, c.old_version, c.new_version, c.change_day,
    o.last_from AS old_from, o.last_to AS old_to, o.last_days AS old_days,
    o.last_predictions::BIGINT AS old_predictions, o.last_positives::BIGINT AS old_positives,
    n.first_day AS new_from, n.first_to AS new_to, n.first_days AS new_days,
    n.first_predictions::BIGINT AS new_predictions, n.first_positives::BIGINT AS new_positives,
    {", ".join(f"o.last_{c} AS old_{c}, n.first_{c} AS new_{c}" for c in LABEL_SUMS)}
FROM changes c
JOIN windows o ON o.model_id = c.model_id AND o.model_version = c.old_version
JOIN windows n ON n.model_id = c.model_id AND n.model_version = c.new_version
JOIN newest w ON w.model_id = c.model_id
WHERE c.change_day > w.newest - $3::INTEGER
ORDER BY c.model_id, c.change_day
"""

# The old version's reference bins of one numeric feature ($6: 'score' or a feature_* column, read as {column};
# bin k holds edge_k < value <= edge_k+1, as int_reference_profiles cuts them), with the count of the new version's
# values of $4 .. $5 in each: the only raw rows read, one version's days.
NUMERIC_BINS_SQL = """
WITH reference AS (
    SELECT CAST(bin AS INTEGER) AS bin, lower_edge, reference_count, reference_start_date, reference_end_date
    FROM intermediate.int_reference_profiles
    WHERE model_id = $1 AND model_version = $2 AND feature = $6 AND feature_type = 'numeric'
),
scores AS (
    SELECT row_number() OVER () AS id, CAST({column} AS DOUBLE) AS score FROM staging.stg_predictions
    WHERE model_id = $1 AND model_version = $3 AND prediction_date BETWEEN $4 AND $5 AND {column} IS NOT NULL
),
binned AS (
    SELECT s.id, count(r.lower_edge) AS bin FROM scores s LEFT JOIN reference r ON s.score > r.lower_edge GROUP BY s.id
)
SELECT r.bin, r.reference_count, count(b.id) AS current_count, r.reference_start_date, r.reference_end_date
FROM reference r LEFT JOIN binned b USING (bin)
GROUP BY ALL ORDER BY r.bin
"""
# A categorical feature's: its reference categories and the new version's, each category a bin (one seen on
# either side only has none on the other, as feature_drift_daily counts them).
CATEGORICAL_BINS_SQL = """
WITH reference AS (
    SELECT bin, reference_count FROM intermediate.int_reference_profiles
    WHERE model_id = $1 AND model_version = $2 AND feature = $6 AND feature_type = 'categorical'
),
current_ AS (
    SELECT CAST({column} AS VARCHAR) AS bin, count(*) AS current_count FROM staging.stg_predictions
    WHERE model_id = $1 AND model_version = $3 AND prediction_date BETWEEN $4 AND $5 AND {column} IS NOT NULL
    GROUP BY 1
)
SELECT bin, coalesce(r.reference_count, 0) AS reference_count, coalesce(c.current_count, 0) AS current_count
FROM reference r FULL JOIN current_ c USING (bin) ORDER BY bin
"""
# the old version's profiled features (not the score) and how each is binned
PROFILED_SQL = """
SELECT DISTINCT feature, feature_type FROM intermediate.int_reference_profiles
WHERE model_id = $1 AND model_version = $2 AND feature <> 'score' ORDER BY feature
"""
SCORE_BINS_SQL = NUMERIC_BINS_SQL.format(column="score")
FEATURES_SAID = 3  # the largest feature PSIs a change's line names
# The old version's features (and score) with a PSI alert in the DRIFTING_DAYS before the new version's first day:
# the new version's reference window is then made of inputs already drifted, and its own drift reads against
# them. A trial's scanner recalibration alerted on v1 until v2 started; v2's alerts were silent ("active: no")
# while the scanner was still 15% off.
DRIFTING_DAYS = 7
DRIFTING_SQL = """
SELECT subject, max(date) AS latest FROM marts.alerts
WHERE model_id = $1 AND model_version = $2 AND metric = 'psi' AND date >= $3::DATE - $4::INTEGER AND date <= $3::DATE
GROUP BY subject ORDER BY subject
"""


def psi(reference_counts, current_counts) -> float:
    """PSI of two count vectors over the same bins, an empty bin's share floored at PSI_FLOOR (feature_drift_daily's
    rule); NaN when either side has no values."""
    ref, cur = np.asarray(reference_counts, dtype=float), np.asarray(current_counts, dtype=float)
    if ref.sum() == 0 or cur.sum() == 0:
        return float("nan")
    ref = np.where(ref == 0, PSI_FLOOR, ref / ref.sum())
    cur = np.where(cur == 0, PSI_FLOOR, cur / cur.sum())
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _score_bins(conn, change) -> pd.DataFrame | None:
    """SCORE_BINS_SQL's rows for ``change`` (the old version's score reference bins, the new version's first days
    counted in them); None where the tables are not there (the analytics snapshot holds neither the predictions nor
    the profiles)."""
    import duckdb

    try:
        return conn.execute(
            SCORE_BINS_SQL,
            [change.model_id, change.old_version, change.new_version, change.new_from, change.new_to, "score"],
        ).df()
    except duckdb.Error:
        return None


def _score_psi(conn, change) -> tuple[float, str, bool]:
    """The PSI of the new version's first days' scores against the old version's reference bins, and that
    reference window as text, and whether the tables to compute it were there: NaN, '' and False in the analytics
    snapshot, NaN, '' and True where the old version has no score profile (a second trial's user was left to guess
    which)."""
    bins = _score_bins(conn, change)
    if bins is None:
        return float("nan"), "", False
    if bins.empty:
        return float("nan"), "", True
    return psi(bins["reference_count"], bins["current_count"]), _reference_window(bins), True


def _reference_window(bins: pd.DataFrame) -> str:
    start, end = (pd.Timestamp(bins[c].iloc[0]).date() for c in ("reference_start_date", "reference_end_date"))
    return f"{start} .. {end}"


def _feature_psis(conn, change) -> dict[str, float]:
    """Each feature of the old version's reference profile: the PSI of the new version's first days' values against
    that reference (each version's own drift starts from its own reference, so a population shift at a retrain
    was absorbed by the new version's: a trial's version switch). Largest first; {} where the tables are not there
    (the analytics snapshot)."""
    import duckdb

    key = [change.model_id, change.old_version, change.new_version, change.new_from, change.new_to]
    out = {}
    try:
        profiled = conn.execute(PROFILED_SQL, key[:2]).fetchall()
        for feature, kind in profiled:
            sql = NUMERIC_BINS_SQL if kind == "numeric" else CATEGORICAL_BINS_SQL
            column = '"' + feature.replace('"', '""') + '"'
            bins = conn.execute(sql.format(column=column), [*key, feature]).df()
            value = psi(bins["reference_count"], bins["current_count"]) if len(bins) else float("nan")
            if value == value:
                out[feature] = value
    except duckdb.Error:  # the analytics snapshot, or a feature the predictions no longer have
        return out
    return dict(sorted(out.items(), key=lambda item: -item[1]))


def _drifting(conn, change) -> dict[str, date]:
    """DRIFTING_SQL's features of the old version: feature -> its latest alert day ({} without marts.alerts)."""
    import duckdb

    try:
        rows = conn.execute(
            DRIFTING_SQL, [change.model_id, change.old_version, change.change_day, DRIFTING_DAYS]
        ).fetchall()
    except duckdb.Error:  # a warehouse from before the alerts mart
        return {}
    return {subject: _day(latest) for subject, latest in rows}


def version_changes(conn, as_of: date | None, recent_days: int, config=None) -> pd.DataFrame:
    """One row per change of a model's version within ``recent_days`` of its newest day up to ``as_of`` (None: the
    newest): the day, both versions, their compared days' predictions and positives, and the score PSI; with the
    alert settings ``config`` (alerts.AlertConfig), the sizes below which the alerts judge nothing, for its caveats."""
    import duckdb

    try:
        changes = conn.execute(VERSION_CHANGES_SQL, [as_of, CHANGE_DAYS, recent_days]).df()
    except (duckdb.CatalogException, duckdb.BinderException):  # a run that stopped before the mart
        return pd.DataFrame()
    scored = [_score_psi(conn, c) for c in changes.itertuples()]
    if config is not None:
        changes = changes.assign(
            psi_min_count=[float(config.rule("psi", m).get("min_count") or 0) for m in changes["model_id"]],
            min_labelled=float(config.min_labelled),
        )
    return changes.assign(
        score_psi=[p for p, _, _ in scored],
        reference_window=[w for _, w, _ in scored],
        psi_tables=[t for *_, t in scored],
        feature_psi=[_feature_psis(conn, c) for c in changes.itertuples()],
        drifting=[_drifting(conn, c) for c in changes.itertuples()],
    )


def _day(value) -> date:
    return pd.Timestamp(value).date()


def _span(days: int, first, last, predictions: int) -> str:
    span = f"{_day(first)}" + ("" if _day(first) == _day(last) else f" .. {_day(last)}")
    return f"{days} day(s) with predictions, {span} ({predictions:,} predictions)"


def _ratio(part, whole) -> float:
    return float(part) / float(whole) if whole == whole and whole else float("nan")


def _labelled_text(change) -> str:
    """'; precision 0.350 (was 0.469), recall ..., mean daily ECE ... (labels known so far)' where both sides have
    them, else ''."""
    said = []
    for name, new, old in (
        (
            "precision",
            _ratio(change.new_tp, change.new_tp + change.new_fp),
            _ratio(change.old_tp, change.old_tp + change.old_fp),
        ),
        (
            "recall",
            _ratio(change.new_tp, change.new_tp + change.new_fn),
            _ratio(change.old_tp, change.old_tp + change.old_fn),
        ),
        (
            "mean daily ECE",
            _ratio(change.new_ece_weighted, change.new_ece_labelled),
            _ratio(change.old_ece_weighted, change.old_ece_labelled),
        ),
    ):
        if new == new and old == old:
            said.append(f"{name} {new:.3f} (was {old:.3f})")
    if not said:
        return ""
    # a trial's ~6 labels a day: a perfectly calibrated model's mean daily ECE is ~0.35 at that size, yet the line
    # compared 0.340 with 0.382 as if it meant something
    minimum = getattr(change, "min_labelled", 0) or 0
    per_day = min(_ratio(change.new_ece_labelled, change.new_days), _ratio(change.old_ece_labelled, change.old_days))
    few = (
        f"; ~{per_day:.0f} a day on the side with fewer, under alerts.min_labelled ({minimum:g}): noise at that size"
        if per_day == per_day and per_day < minimum
        else ""
    )
    return f"; {', '.join(said)} (labels known so far{few})"


def change_text(change) -> str:
    """One line per change, as summary and the report say it: the rates and PSI first, the days they cover after."""
    new_rate = change.new_positives / change.new_predictions
    old_rate = change.old_positives / change.old_predictions
    if change.score_psi == change.score_psi:
        psi_text = (
            f"score PSI {change.score_psi:.2f} against {change.old_version}'s reference ({change.reference_window})"
        )
    elif change.psi_tables:
        psi_text = f"score PSI not computed ({change.old_version} has no score reference)"
    else:
        psi_text = (
            "score PSI not computed (this database lacks staging.stg_predictions and "
            "intermediate.int_reference_profiles: the analytics snapshot; read the warehouse, report --db)"
        )
    minimum = getattr(change, "psi_min_count", 0) or 0
    if change.new_predictions < minimum and (
        change.score_psi == change.score_psi or getattr(change, "feature_psi", None)
    ):
        # a trial's 46 predictions a side: a PSI of 0.52 where no feature shifted (0.22 is the median by chance)
        psi_text += (
            f" (on the new version's {change.new_predictions:,.0f} predictions, fewer than alerts.rules.psi.min_count "
            f"({minimum:g}), where PSIs of 0.2 and more arise by chance)"
        )
    features = getattr(change, "feature_psi", None) or {}
    if features:
        largest = ", ".join(f"{name} {value:.2f}" for name, value in list(features.items())[:FEATURES_SAID])
        of = f" (the largest {FEATURES_SAID} of {len(features)})" if len(features) > FEATURES_SAID else ""
        psi_text += f"; feature PSI against {change.old_version}'s reference: {largest}{of}"
    if drifting := getattr(change, "drifting", None) or {}:
        psi_text += (
            f"; {change.old_version} was drifting when it stopped (PSI alerts on {', '.join(drifting)} up to "
            f"{max(drifting.values())}): {change.new_version}'s reference window is made of those drifted inputs, "
            f"so its own drift on them starts from there and stays silent while the shift lasts: the feature PSI "
            f"against {change.old_version}'s reference measures it"
        )
    return (
        f"{change.model_id}: version {change.old_version} -> {change.new_version} on {_day(change.change_day)}: "
        f"flags {new_rate:.1%} (was {old_rate:.1%}){_labelled_text(change)}; {psi_text}; over the new version's first "
        f"{_span(change.new_days, change.new_from, change.new_to, change.new_predictions)} and the old one's last "
        f"{_span(change.old_days, change.old_from, change.old_to, change.old_predictions)}"
    )


# ------------------------------------------------------------------ the version_change alert
# A new version is judged on each of its first CHANGE_DAYS days with predictions against the version before it: a
# trial's vendor shipped a v2 whose scores sat 0.1 higher (flags 3.5% -> 24.1%, score PSI 3.0 against v1's
# reference) and no alert or notification said so: each version's drift reads against its own first days, and the
# labels that would show the calibration came months later.


def change_days(health: pd.DataFrame, versions: pd.DataFrame, first, last) -> list[tuple[str, str, date]]:
    """(model, version, day) for each day of ``first``..``last`` among the first CHANGE_DAYS days with predictions of
    a version that followed another (``health``: marts.model_health_daily rows from before ``first``; ``versions``:
    model_id, model_version, first_date). A version whose first day precedes ``health`` is left out (its first days
    were judged by earlier runs)."""
    first, last = pd.Timestamp(first), pd.Timestamp(last)
    since = pd.to_datetime(health["date"]).min() if len(health) else last
    out = []
    for model_id, own in versions.assign(first_date=pd.to_datetime(versions["first_date"])).groupby("model_id"):
        for version, started in (
            own.sort_values(["first_date", "model_version"])
            .iloc[1:][["model_version", "first_date"]]
            .itertuples(index=False)
        ):
            if started < since:
                continue
            mine = health[(health["model_id"] == model_id) & (health["model_version"] == version)]
            days = sorted(pd.to_datetime(mine.loc[mine["predictions"] > 0, "date"]))[:CHANGE_DAYS]
            out += [(model_id, version, d.date()) for d in days if first <= d <= last]
    return out


def flag_rate_pvalue(new_positives: int, new_predictions: int, old_positives: int, old_predictions: int) -> float:
    """Two-sided Fisher's exact test of the two versions' flag rates (a 2 x 2 table of flagged and not)."""
    from scipy.stats import fisher_exact

    table = [[new_positives, new_predictions - new_positives], [old_positives, old_predictions - old_positives]]
    return float(fisher_exact(table).pvalue)


def bins_chi2(reference_counts, current_counts) -> tuple[float, int]:
    """The chi-square statistic of homogeneity of two count vectors over the same bins, and the bins either side
    holds (DRIFT_SQL's drift_chi2 and drift_bins)."""
    ref, cur = np.asarray(reference_counts, dtype=float), np.asarray(current_counts, dtype=float)
    held = (ref + cur) > 0
    ref, cur = ref[held], cur[held]
    r, c = ref.sum(), cur.sum()
    if not r or not c:
        return float("nan"), int(held.sum())
    return float(c * r * np.sum((cur / c - ref / r) ** 2 / (cur + ref))), int(held.sum())


def change_breaches(change, bins: pd.DataFrame | None, rule: dict) -> list[dict]:
    """The version_change breaches of one change (VERSION_CHANGES_SQL's row as of a day of the new version): its flag
    rate off the old version's by more than ``outside`` (relative) and beyond chance (Fisher's exact p < ``alpha``);
    its scores' PSI against the old version's reference bins (``bins``: SCORE_BINS_SQL's) above ``above`` and beyond
    the bins' sampling noise (chi-square p < ``alpha``), both sides holding ``min_count`` scores."""
    from orchestration.lib.alerts import drift_pvalue

    alpha = float(rule["alpha"])
    replaced = f"{change.new_version} replaced {change.old_version} on {_day(change.change_day)}"
    out = []
    x1, n1, x0, n0 = (
        int(v) for v in (change.new_positives, change.new_predictions, change.old_positives, change.old_predictions)
    )
    if n1 and n0:
        new_rate, old_rate = x1 / n1, x0 / n0
        moved = abs(new_rate / old_rate - 1) if old_rate else (math.inf if new_rate else 0.0)
        if moved > float(rule["outside"]) and flag_rate_pvalue(x1, n1, x0, n0) < alpha:
            out.append(
                {
                    "subject": "flag_rate",
                    "value": new_rate,
                    "threshold": old_rate,
                    "rule": (
                        f"{replaced}: flags {new_rate:.1%} over its first {change.new_days} day(s) ({x1:,} of {n1:,}) "
                        f"against {old_rate:.1%} over {change.old_version}'s last {change.old_days} ({x0:,} of "
                        f"{n0:,}): more than ±{float(rule['outside']):.0%} apart and Fisher's exact p < {alpha:g}"
                    ),
                }
            )
    if bins is not None and len(bins):
        ref_n, cur_n = int(bins["reference_count"].sum()), int(bins["current_count"].sum())
        if min(ref_n, cur_n) >= float(rule.get("min_count") or 0):
            value = psi(bins["reference_count"], bins["current_count"])
            chi2, held = bins_chi2(bins["reference_count"], bins["current_count"])
            if value > float(rule["above"]) and float(drift_pvalue(chi2, held)) < alpha:
                out.append(
                    {
                        "subject": "score",
                        "value": value,
                        "threshold": float(rule["above"]),
                        "rule": (
                            f"{replaced}: score PSI {value:.2f} over its first {change.new_days} day(s) ({cur_n:,} "
                            f"scores) against {change.old_version}'s reference ({_reference_window(bins)}, {ref_n:,} "
                            f"scores): above {float(rule['above']):g} and chi-square p < {alpha:g}"
                        ),
                    }
                )
    return out


def version_change_breaches(conn, health: pd.DataFrame, versions: pd.DataFrame, config, first, last) -> pd.DataFrame:
    """marts.alerts rows (alerts.ALERT_COLUMNS) of the version_change rule for the days ``first``..``last``
    (change_days'), each judged on the new version's days up to it (``config``: alerts.AlertConfig)."""
    from orchestration.lib.alerts import ALERT_COLUMNS

    rows = []
    candidates = change_days(health, versions, first, last)
    for day in sorted({d for *_, d in candidates}):
        wanted = {(m, v) for m, v, d in candidates if d == day}
        # every change up to the day, however long ago its version started (weekly models: sparse days)
        changes = conn.execute(VERSION_CHANGES_SQL, [day, CHANGE_DAYS, 100_000]).df()
        for change in changes.itertuples():
            if (change.model_id, change.new_version) not in wanted or _day(change.new_to) != day:
                continue
            rule = config.rule("version_change", change.model_id)
            for breach in change_breaches(change, _score_bins(conn, change), rule):
                rows.append(
                    {
                        "date": pd.Timestamp(day),
                        "model_id": change.model_id,
                        "model_version": change.new_version,
                        "metric": "version_change",
                        **breach,
                    }
                )
    return pd.DataFrame(rows, columns=ALERT_COLUMNS)
