"""Data access of the daily report: one function per section, each reading the few rows it shows (days <= as_of).

Reads published tables only (attribution results, marts, gate results, quarantine counts): the report
shows what the pipeline computed, it never recomputes a verdict. Works on the warehouse or the analysts'
snapshot: callers ask ``existing_tables`` first and turn a missing table into a note.
No Dagster, no plotting here.
"""

from __future__ import annotations

import json
from datetime import date

import pandas as pd

from orchestration.lib.bias import verdicts_with_lists

# Which day columns tell whether a day has data at all (table -> column).
DAY_COLUMNS = {
    "attribution.experiment_results": "as_of_date",
    "marts.model_health_daily": "date",
    "marts.kpi_daily": "date",
}

# an alert's days more than this apart are separate episodes (summary's and the report's alert spans): a PSI pooled
# over a week alerts on consecutive days while it lasts, a chance alert days before a real drift is another story
ALERT_EPISODE_GAP_DAYS = 7
LABELS_LANDED = "marts.model_health_daily"  # its labels_as_of: the labels (or feedback) a row counts are known by it
GATES = "quality.gate_results"
# The days labels (or feedback) landed that the model health of an earlier day counts, by two witnesses:
# (a) a row whose labels_as_of is past its day + label_lookback_days: the day of its last counted label (a recent row
#     is stamped with that day, or the run's, whatever landed; only a later stamp says labels landed that day);
# (b) a day the labels or feedback gate passed rows on, counted by an earlier day's row (its labels_as_of reaches the
#     day, within the longest label horizon: later labels count nowhere). (a) alone cannot see labels landing within the lookback, and label_coverage.after_days sets the lookback:
#     a trial's 184 covered its whole label horizon, every row was stamped with its run's day, and months-late labels
#     left no report (the summary linked a stale one).
STAMPED_LANDINGS_SQL = f"SELECT labels_as_of AS day FROM {LABELS_LANDED} WHERE labels_as_of > date + {{lookback}}"
GATED_LANDINGS_SQL = (
    f"SELECT g.date AS day FROM {GATES} g WHERE g.table_name IN ('labels', 'feedback') AND g.passed "
    f"AND g.rows_validated > 0 AND EXISTS (SELECT 1 FROM {LABELS_LANDED} m WHERE m.date < g.date "
    "AND m.labels_as_of >= g.date AND g.date <= m.date + {horizon})"
)

# The estimate the attribution step reports as headline (CUPED where it applies).
HEADLINE_LIFT_SQL = """
SELECT model_id, experiment_id, {arm}, metric, as_of_date, estimate, is_guardrail, guardrail_verdict,
       n_control, n_treatment, p_value_adjusted, trustworthy, untrusted_reason,
       CASE WHEN estimate = 'cuped' THEN cuped_relative_lift ELSE relative_lift END AS lift,
       CASE WHEN estimate = 'cuped' THEN cuped_relative_ci_low ELSE relative_ci_low END AS ci_low,
       CASE WHEN estimate = 'cuped' THEN cuped_relative_ci_high ELSE relative_ci_high END AS ci_high, {decision}
FROM attribution.experiment_results
WHERE analysis_window = 'cumulative' AND as_of_date <= ?
ORDER BY model_id, treatment_variant, metric, as_of_date
"""
# The treatment arm and its control (one row per arm of an experiment with several); older tables: unknown.
ARM_COLUMNS = ("treatment_variant", "control_variant")
# Decision columns (issue 13); a table written before they existed shows them as unknown.
DECISION_COLUMNS = (
    "sequential_relative_ci_low",
    "sequential_relative_ci_high",
    "sequential_p_value",
    "significant",
    "multiple_testing",
    "degenerate_reason",
    "exact_p_value",
    "decision_grade",
    "decision_grade_reason",
)
IMPACT_DECISION_COLUMNS = ("roi_ci_low", "roi_ci_high", "decision_grade", "decision_grade_reason")


class ReportDataError(ValueError):
    """The database has nothing to report for the requested day."""


def existing_tables(conn) -> set[str]:
    rows = conn.execute(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_catalog = current_database()"
    ).fetchall()
    return {f"{schema}.{name}" for schema, name in rows}


def _latest(conn, tables: set[str]) -> dict[str, date]:
    out = {}
    for t, column in DAY_COLUMNS.items():
        if t in tables and (day := conn.execute(f"SELECT max({column}) FROM {t}").fetchone()[0]) is not None:
            out[t] = pd.Timestamp(day).date()
    if (landed := _landings(conn, tables)) and (day := conn.execute(f"SELECT max(day) FROM ({landed})").fetchone()[0]):
        out[f"{LABELS_LANDED}.labels_as_of"] = max(pd.Timestamp(day).date(), out.get(LABELS_LANDED, date.min))
    return out


def _labels_landed(conn, tables: set[str]) -> bool:
    """Whether LABELS_LANDED has its labels_as_of column (a table built before it does not)."""
    return LABELS_LANDED in tables and "labels_as_of" in set(_frame(conn, f"SELECT * FROM {LABELS_LANDED} LIMIT 0"))


def latest_report_date(conn) -> date | None:
    """The newest day any core table (attribution results, model health, KPIs) has rows for, or labels (or
    feedback) landed on for earlier days (has_data_on)."""
    days = _latest(conn, existing_tables(conn)).values()
    return max(days) if days else None


def has_rows_on(conn, tables: set[str], as_of: date) -> bool:
    """Rows of a core table (DAY_COLUMNS) for ``as_of`` itself."""
    return any(
        t in tables and conn.execute(f"SELECT count(*) FROM {t} WHERE {column} = ?", [as_of]).fetchone()[0]
        for t, column in DAY_COLUMNS.items()
    )


def newest_rows_day(conn, tables: set[str], as_of: date) -> date | None:
    """The newest day up to ``as_of`` a core table (DAY_COLUMNS) has rows for."""
    days = [
        conn.execute(f"SELECT max({column}) FROM {t} WHERE {column} <= ?", [as_of]).fetchone()[0]
        for t, column in DAY_COLUMNS.items()
        if t in tables
    ]
    return max((pd.Timestamp(d).date() for d in days if d is not None), default=None)


def has_data_on(conn, tables: set[str], as_of: date) -> bool:
    """Rows of a core table for ``as_of``, or labels (or feedback) that landed on it and changed earlier days'
    model health (months-late labels of a model that has stopped predicting): a run that brought only those still
    leaves its report."""
    if has_rows_on(conn, tables, as_of):
        return True
    landed = _landings(conn, tables)
    return bool(landed) and bool(conn.execute(f"SELECT count(*) FROM ({landed}) WHERE day = ?", [as_of]).fetchone()[0])


def labels_known_after(conn, tables: set[str], as_of: date) -> date | None:
    """The newest day after ``as_of`` whose labels (or feedback) landed (has_data_on) and are counted by the model
    health rows of ``as_of`` and before (a row's labels_as_of reaches it): a report built again after later labels
    landed, else None. Such a report is not the one of that morning: a trial's rebuilt report showed precision
    0.353 where the morning's had none. A later stamp alone is no later label (a recent row is stamped with its
    run's day, whatever landed)."""
    if not (landed := _landings(conn, tables)):
        return None
    day = conn.execute(
        f"SELECT max(day) FROM ({landed}) WHERE day > ?::DATE "
        f"AND day <= (SELECT max(labels_as_of) FROM {LABELS_LANDED} WHERE date <= ?::DATE)",
        [as_of, as_of],
    ).fetchone()[0]
    return None if day is None else pd.Timestamp(day).date()


def _landings(conn, tables: set[str]) -> str | None:
    """The days labels (or feedback) landed for earlier days' model health (STAMPED_LANDINGS_SQL, GATED_LANDINGS_SQL
    where the warehouse has gate results, with the project's label lookback and horizons); None without labels_as_of."""
    from orchestration.lib.settings import dbt_var

    if not _labels_landed(conn, tables):
        return None
    witnesses = [STAMPED_LANDINGS_SQL.format(lookback=int(dbt_var("label_lookback_days")))]
    if GATES in tables:
        horizon = max(int(dbt_var("max_label_horizon_days")), int(dbt_var("default_label_horizon_days")))
        witnesses.append(GATED_LANDINGS_SQL.format(horizon=horizon))
    return " UNION ".join(witnesses)


def require_data_on(conn, tables: set[str], as_of: date) -> None:
    """ReportDataError, naming the latest day with data, unless ``as_of`` has data (has_data_on)."""
    if has_data_on(conn, tables, as_of):
        return
    latest = _latest(conn, tables)
    hint = (
        f"; the latest day with data is {max(latest.values())}" if latest else "; the database has no report tables yet"
    )
    raise ReportDataError(
        f"nothing to report for {as_of}: none of {', '.join(DAY_COLUMNS)} has rows for that day, and no labels (or "
        f"feedback) for earlier days landed on it{hint}"
    )


def _frame(conn, sql: str, params=None) -> pd.DataFrame:
    return conn.execute(sql, params or []).df()


def _latest_rows(conn, table: str, day_column: str, as_of: date, where: str = "TRUE") -> pd.DataFrame:
    """``table``'s rows of its newest day <= as_of (optional sections show their current state)."""
    return _frame(
        conn,
        f"SELECT * FROM {table} WHERE {where} AND {day_column} = "
        f"(SELECT max({day_column}) FROM {table} WHERE {where} AND {day_column} <= ?)",
        [as_of],
    )


def experiment_lifts(conn, as_of: date) -> pd.DataFrame:
    """Cumulative results up to as_of with the headline estimate (CUPED where it applies) as lift/ci_low/ci_high."""
    have = set(_frame(conn, "SELECT * FROM attribution.experiment_results LIMIT 0").columns)
    decision = ", ".join(c if c in have else f"NULL AS {c}" for c in DECISION_COLUMNS)
    arm = ", ".join(c if c in have else f"NULL::VARCHAR AS {c}" for c in ARM_COLUMNS)
    return _frame(conn, HEADLINE_LIFT_SQL.format(decision=decision, arm=arm), [as_of])


def model_impact(conn, as_of: date) -> pd.DataFrame:
    """Cumulative model value up to as_of, one series per model and treatment arm (in that order, then by day)."""
    frame = _frame(
        conn,
        "SELECT * FROM attribution.model_impact WHERE analysis_window = 'cumulative' "
        "AND as_of_date <= ? ORDER BY model_id, as_of_date",
        [as_of],
    )
    frame = frame.assign(**{c: None for c in (*IMPACT_DECISION_COLUMNS, "treatment_variant") if c not in frame})
    return frame.sort_values(["model_id", "treatment_variant"], kind="stable", ignore_index=True)


def unmeasured_models(conn, as_of: date, measured) -> list[tuple[str, float | None]]:
    """The models with predictions up to as_of but no model value among ``measured`` (no never-exposed holdout:
    monitoring only), each with its model_costs up to as_of (None where unreadable: a warehouse without costs, a
    snapshot published before it held them, or a Spark warehouse's view the analyst may not open)."""
    import duckdb

    measured = set(measured)
    try:
        models = [
            m
            for (m,) in conn.execute(
                "SELECT DISTINCT model_id FROM marts.model_health_daily WHERE predictions > 0 AND date <= ? ORDER BY 1",
                [as_of],
            ).fetchall()
            if m not in measured
        ]
    except (duckdb.CatalogException, duckdb.BinderException):
        return []
    try:
        costs = dict(
            conn.execute(
                "SELECT model_id, sum(total_cost) FROM staging.stg_model_costs WHERE date <= ? GROUP BY 1", [as_of]
            ).fetchall()
        )
    except duckdb.Error:
        costs = None
    return [(m, None if costs is None else costs.get(m)) for m in models]


def unmeasured_text(unmeasured: list[tuple[str, float | None]], money, currency: str, declared=()) -> str:
    """One sentence on unmeasured_models (the summary's and the report's); ``declared``: the models the project
    file says are experiments (`experiment: true`), whose missing holdout is then news, not a design."""
    names = ", ".join(m for m, _ in unmeasured)
    costs = [f"{m} {money(c)}" for m, c in unmeasured if c]
    declared = set(declared)
    expected = [m for m, _ in unmeasured if m in declared]
    return (
        f"Not measured: {names}: no never-exposed holdout (monitoring only), so what "
        f"{'it is' if len(unmeasured) == 1 else 'each is'} worth cannot be measured; health, drift and fairness "
        "still are"
        + (
            f". The project file says experiment: true for {', '.join(expected)}, yet no experiment results name "
            f"{'it' if len(expected) == 1 else 'them'}: is the experiments table (or its assignments, sessions, "
            "orders) missing from the source?"
            if expected
            else ""
        )
        + (f". Model costs so far ({currency}): {', '.join(costs)}" if costs else "")
        + "."
    )


def declared_experiments(config) -> list[str]:
    """The models the project file says are experiments (`experiment: true`)."""
    return [m for m, spec in config.models.items() if spec.experiment]


def model_health(conn, as_of: date) -> pd.DataFrame:
    """Daily health per model version; estimated_precision (label-free CBPE) where the mart has it."""
    have = set(_frame(conn, "SELECT * FROM marts.model_health_daily LIMIT 0").columns)
    estimated = "estimated_precision" if "estimated_precision" in have else "NULL::DOUBLE AS estimated_precision"
    predictions = "predictions" if "predictions" in have else "NULL::BIGINT AS predictions"
    return _frame(
        conn,
        f"SELECT date, model_id, model_version, labelled, {predictions}, precision, recall, {estimated}, "
        "expected_calibration_error FROM marts.model_health_daily WHERE date <= ? "
        "ORDER BY model_id, model_version, date",
        [as_of],
    )


# the recent days `summary` and the report look back over (a small model's pooled precision and recall, ...)
RECENT_DAYS = 30


HEALTH_COUNTS = ["predictions", "labelled", "tp", "fp", "fn", "tn"]
HEALTH_SUMS = (
    "sum(predictions)::BIGINT AS predictions, sum(labelled)::BIGINT AS labelled, "
    "sum(true_positives)::BIGINT AS tp, sum(false_positives)::BIGINT AS fp, "
    "sum(false_negatives)::BIGINT AS fn, sum(true_negatives)::BIGINT AS tn"
)


def recent_health_counts(conn, as_of: date | None, days: int) -> pd.DataFrame:
    """Per model and version, the ``days`` days to ``as_of`` (None: the mart's newest day): volume and the confusion
    counts of the labels known so far (a new version's precision is its own, not blended with the old one's)."""
    return conn.execute(
        f"SELECT model_id AS model, model_version AS version, max(date) AS last_day, {HEALTH_SUMS} "
        f"FROM marts.model_health_daily JOIN ({MODEL_WINDOW_END_SQL}) USING (model_id) "
        "WHERE date > upto - ?::INTEGER AND date <= upto "
        "GROUP BY model_id, model_version ORDER BY model_id, model_version",
        [as_of, days],
    ).df()


def labels_known_through(conn, as_of: date | None) -> date | None:
    """The newest day labels were counted for: the mart's newest labels_as_of (of its rows to ``as_of``; a row not
    recomputed since got no label after its own), or a later day whose labels were loaded (the labels gate passed
    it): a run that finds no new label recomputes no row (a second trial's labels counted through 05-28 read as
    through 05-20, its last label's day, so days past their horizon read incomplete)."""
    import duckdb

    counted = conn.execute(
        "SELECT max(labels_as_of) FILTER (WHERE date <= coalesce(?::DATE, date)) FROM marts.model_health_daily",
        [as_of],
    ).fetchone()[0]
    try:
        loaded = conn.execute(
            "SELECT max(date) FROM quality.gate_results WHERE table_name = 'labels' AND passed "
            "AND date <= coalesce(?::DATE, date)",
            [as_of],
        ).fetchone()[0]
    except duckdb.Error:  # a warehouse without gate results (hand-made, or older)
        loaded = None
    return max((d for d in (counted, loaded) if d is not None), default=None)


def matured_health_counts(conn, as_of: date | None, days: int, horizon_of) -> pd.DataFrame:
    """recent_health_counts over each model's newest ``days`` days whose labels are all in: days past its label
    horizon (``horizon_of(model_id)`` days) by the newest day labels were counted for (as label_maturity). A risk
    score's labels land months late: its last ``days`` days never have any, and their precision said "n/a" for
    good. ``first_day`` / ``last_day``: the days summed. Empty for a mart without labels_as_of (older warehouses)."""
    have = set(_frame(conn, "SELECT * FROM marts.model_health_daily LIMIT 0").columns)
    models = [m for (m,) in conn.execute("SELECT DISTINCT model_id FROM marts.model_health_daily").fetchall()]
    if "labels_as_of" not in have or not models:
        return pd.DataFrame(columns=["model", "version", "first_day", "last_day", *HEALTH_COUNTS])
    return conn.execute(
        "WITH horizons AS (SELECT unnest(?::VARCHAR[]) AS model_id, unnest(?::INTEGER[]) AS horizon), "
        "ends AS (SELECT model_id, max(date) AS upto FROM marts.model_health_daily JOIN horizons USING (model_id) "
        "WHERE date <= coalesce(?::DATE, date) AND date + horizon <= ?::DATE GROUP BY model_id) "
        "SELECT model_id AS model, model_version AS version, min(date) AS first_day, max(date) AS last_day, "
        f"{HEALTH_SUMS} FROM marts.model_health_daily JOIN ends USING (model_id) "
        "WHERE date > upto - ?::INTEGER AND date <= upto "
        "GROUP BY model_id, model_version ORDER BY model_id, model_version",
        [models, [int(horizon_of(m)) for m in models], as_of, labels_known_through(conn, as_of), days],
    ).df()


def recent_feedback(conn, as_of: date | None, days: int) -> pd.DataFrame:
    """Per model and version with feedback in recent_health_counts' days: its predictions, those with feedback (each
    day's feedback_rate x predictions, a count) and the up share of the days' feedback weighted by those counts (the
    mart keeps each day's share, not its events). A second trial's feedback was computed and shown nowhere. Empty
    for a mart without the feedback columns."""
    have = set(_frame(conn, "SELECT * FROM marts.model_health_daily LIMIT 0").columns)
    if not {"feedback_rate", "feedback_up_share"} <= have:
        return pd.DataFrame(columns=["model", "version", "predictions", "with_feedback", "up_share"])
    return conn.execute(
        "WITH days AS (SELECT model_id, model_version, predictions, "
        "round(coalesce(feedback_rate, 0) * predictions) AS with_feedback, feedback_up_share "
        f"FROM marts.model_health_daily JOIN ({MODEL_WINDOW_END_SQL}) USING (model_id) "
        "WHERE date > upto - ?::INTEGER AND date <= upto) "
        "SELECT model_id AS model, model_version AS version, sum(predictions)::BIGINT AS predictions, "
        "sum(with_feedback)::BIGINT AS with_feedback, "
        "sum(feedback_up_share * with_feedback) / nullif(sum(with_feedback) FILTER (WHERE feedback_up_share IS NOT "
        "NULL), 0) AS up_share "
        "FROM days GROUP BY ALL HAVING sum(with_feedback) > 0 ORDER BY ALL",
        [as_of, days],
    ).df()


# each model's window ends on its newest day up to the as-of day (None: the mart's newest): a model that stopped
# predicting keeps its last days (a report on a day of late labels only pooled nothing, where summary showed them)
MODEL_WINDOW_END_SQL = (
    "SELECT model_id, max(date) AS upto FROM marts.model_health_daily WHERE date <= coalesce(?::DATE, date) "
    "GROUP BY model_id"
)


# each model's usual days between its days with predictions (1: daily; 7: a weekly batch) and its last such day, up
# to the as-of day (None: the mart's newest)
USUAL_GAP_SQL = (
    "days AS (SELECT DISTINCT model_id, date FROM marts.model_health_daily WHERE predictions > 0 "
    "AND date <= coalesce(?::DATE, date)), "
    "gaps AS (SELECT model_id, date, date - lag(date) OVER (PARTITION BY model_id ORDER BY date) AS gap FROM days), "
    "usual AS (SELECT model_id, max(date) AS last_day, coalesce(median(gap), 1) AS gap FROM gaps GROUP BY 1)"
)


def batch_models(conn, as_of: date | None = None) -> dict[str, float]:
    """The models scoring in batches days apart (a weekly batch) up to ``as_of`` (None: the mart's newest day), with
    their usual days between batches. Their counts are a batch's, over their days with predictions: a trial's weekly
    model read "a median of 26 predictions a day", its batches' median."""
    return dict(conn.execute(f"WITH {USUAL_GAP_SQL} SELECT model_id, gap FROM usual WHERE gap > 1", [as_of]).fetchall())


def count_unit(batched: bool) -> str:
    """What a model's counts are counted per, in `summary` and the report alike."""
    return "a batch" if batched else "a day"


# a calibration learnt from fewer labels is mostly the raw scores (10 pseudo-labels a bin: int_score_calibration)
FEW_CALIBRATION_LABELS = 200

MATURITY_COLUMNS = [
    "model",
    "version",
    "days",
    "complete_days",
    "estimated_precision",
    "raw_estimate",
    "partly_raw",
    "calibration_labels",
]


def label_maturity(conn, as_of: date | None, days: int, horizon_of) -> pd.DataFrame:
    """Per model and version, of the ``days`` days to ``as_of`` (None: the mart's newest day): how many are past
    their model's label horizon (``horizon_of(model_id)`` days) by the newest day labels were counted for
    (labels_known_through), so every label they will get is in; and the label-free (CBPE) precision over the
    days' predicted positives. Before its horizon a day's precision reads the labels known so far, which can be far off when some outcomes
    land sooner than others (a default is known months before a repaid loan). ``raw_estimate``: no day's estimate
    used a calibration learnt from labels (raw scores read as probabilities); ``partly_raw``: one was learnt, but
    some days' predictions fall in score bins its reference window never labelled, which read their raw scores (a
    trial's 43% of predictions: "no calibration learnt yet" was said of it). Empty for a mart without these
    columns (older warehouses)."""
    have = set(_frame(conn, "SELECT * FROM marts.model_health_daily LIMIT 0").columns)
    if not {"labels_as_of", "estimated_precision", "positive_rate"} <= have:
        return pd.DataFrame(columns=MATURITY_COLUMNS)
    calibrated = "cbpe_calibrated" if "cbpe_calibrated" in have else "NULL"  # older marts: not known
    daily = _frame(
        conn,
        f"SELECT model_id AS model, model_version AS version, date, ?::DATE AS known_through, estimated_precision, "
        f"{calibrated}::BOOLEAN AS cbpe_calibrated, "
        "predictions * positive_rate AS positives, labelled >= predictions AND predictions > 0 AS all_labelled "
        f"FROM marts.model_health_daily JOIN ({MODEL_WINDOW_END_SQL}) USING (model_id) "
        "WHERE date > upto - ?::INTEGER AND date <= upto",
        [labels_known_through(conn, as_of), as_of, days],
    )
    horizon = pd.to_timedelta(daily["model"].map(horizon_of).astype(int), unit="D")
    # or every prediction of the day labelled: a fixed-date outcome (a trial's election, every label on one day) is
    # complete once it lands, not a horizon of 41 days later ("labels complete 0/30 days" with 760 of 760 labelled)
    daily["complete"] = (pd.to_datetime(daily["date"]) + horizon <= pd.to_datetime(daily["known_through"])) | daily[
        "all_labelled"
    ].astype("boolean").fillna(False)
    estimated = daily["estimated_precision"].notna() & (daily["positives"] > 0)
    daily["weighted"] = (daily["estimated_precision"] * daily["positives"]).where(estimated)
    daily["weight"] = daily["positives"].where(estimated)
    # an estimate from raw scores only (no calibration learnt from labels yet) is right only if the scores are
    # probabilities: a trial's interest-rate score "estimated" 0.609 where the realised precision came to 0.035
    daily["calibrated"] = daily["cbpe_calibrated"].astype("boolean").fillna(False) & estimated
    out = daily.groupby(["model", "version"], as_index=False).agg(
        days=("date", "size"),
        complete_days=("complete", "sum"),
        weighted=("weighted", "sum"),
        weight=("weight", "sum"),
        calibrated_days=("calibrated", "sum"),
        estimated_days=("weight", "count"),
    )
    out["estimated_precision"] = (out["weighted"] / out["weight"]).where(out["weight"] > 0)
    out["raw_estimate"] = out["estimated_precision"].notna() & (out["calibrated_days"] == 0) & (calibrated != "NULL")
    import duckdb

    # the labels the version's calibration was learnt from: a few dozen leave it mostly the raw scores (each bin
    # shrunk towards them by 10 pseudo-labels; a trial's 67 labels "estimated" 0.460 beside a realised 0.183)
    try:
        learnt = _frame(
            conn,
            "SELECT model_id AS model, model_version AS version, sum(labelled) AS calibration_labels "
            "FROM intermediate.int_score_calibration GROUP BY ALL",
        )
        out = out.merge(learnt, on=["model", "version"], how="left")
    except duckdb.Error:  # a snapshot published before it held this table
        out["calibration_labels"] = float("nan")
    # a day is calibrated only if every prediction's score bin was learnt (int_label_counts: bool_and)
    learnt_any = out["calibration_labels"].fillna(0) > 0
    out["partly_raw"] = (
        learnt_any & out["estimated_precision"].notna() & (out["calibrated_days"] < out["estimated_days"])
    )
    out["raw_estimate"] &= ~learnt_any
    return out[MATURITY_COLUMNS]


# per model and prediction day of the last ``days`` days: the labels landed after the day's row counted its labels
# (labels_as_of) and known by the newest day labels were counted for (a consistent warehouse has none: each run
# recomputes every day that got a label, int_label_refresh_days)
UNCOUNTED_LABELS_SQL = """
WITH h AS (SELECT model_id, date, max(labels_as_of) AS labels_as_of FROM marts.model_health_daily GROUP BY ALL),
known AS (SELECT max(labels_as_of) AS through FROM marts.model_health_daily)
SELECT h.model_id, h.date, CAST(l.labeled_at AS DATE) AS labeled_on, count(*) AS labels, any_value(k.through) AS through
FROM h CROSS JOIN known k
JOIN staging.stg_predictions p ON p.model_id = h.model_id AND p.prediction_date = h.date
JOIN staging.stg_labels l ON l.prediction_id = p.prediction_id
WHERE h.date > k.through - ?::INTEGER AND l.labeled_at >= h.labels_as_of + 1 AND l.labeled_at < k.through + 1
GROUP BY ALL
"""


def uncounted_labels(conn, days: int, horizon_of) -> pd.DataFrame:
    """Per model, the prediction days of the last ``days`` whose label-based rows miss labels that have landed
    within the model's label horizon (``horizon_of(model_id)`` days): rows computed before those labels were loaded
    (a re-run of an earlier day alone rewinds the days after it; a late file not run yet). Columns: model, first,
    last, days, labels, through (the newest day labels were counted for). Empty without the staging views (the
    analytics snapshot) or label columns."""
    import duckdb

    columns = ["model", "first", "last", "days", "labels", "through"]
    try:
        late = conn.execute(UNCOUNTED_LABELS_SQL, [days]).df()
    except duckdb.Error:
        return pd.DataFrame(columns=columns)
    if late.empty:
        return pd.DataFrame(columns=columns)
    horizon = pd.to_timedelta(late["model_id"].map(horizon_of).astype(int), unit="D")
    late = late[pd.to_datetime(late["labeled_on"]) <= pd.to_datetime(late["date"]) + horizon]  # the marts' rule
    out = late.groupby("model_id", as_index=False).agg(
        first=("date", "min"),
        last=("date", "max"),
        days=("date", "nunique"),
        labels=("labels", "sum"),
        through=("through", "max"),
    )
    for day in ("first", "last", "through"):
        out[day] = pd.to_datetime(out[day]).dt.date
    return out.rename(columns={"model_id": "model"})[columns]


def max_drift(conn, as_of: date) -> pd.DataFrame:
    """Per model and day: the largest PSI over features and score, and which feature it was."""
    return _frame(
        conn,
        "SELECT date, model_id, max(psi) AS max_psi, arg_max(feature, psi) AS feature "
        "FROM marts.feature_drift_daily WHERE date <= ? AND psi IS NOT NULL "
        "GROUP BY ALL ORDER BY model_id, date",
        [as_of],
    )


ALERT_COLUMNS = ["date", "model_id", "model_version", "metric", "subject", "value", "threshold", "rule"]


def alerts(conn, as_of: date) -> pd.DataFrame:
    return _frame(
        conn,
        f"SELECT {', '.join(ALERT_COLUMNS)} FROM marts.alerts WHERE date <= ? ORDER BY date, model_id, metric, subject",
        [as_of],
    )


def retraining_requests(conn, as_of: date) -> pd.DataFrame:
    return _frame(
        conn,
        "SELECT date, model_id, reason, status FROM marts.retraining_requests WHERE date <= ? ORDER BY date, model_id",
        [as_of],
    )


def bias_window(conn, as_of: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(group rates, verdicts) as published, per model for its newest window ending on or before as_of that
    compared groups (a model that stopped predicting, or whose labels lag, has newer windows of nothing to
    compare: its last verdict is the news), else its newest window.

    marts.bias_group_rates / marts.bias_verdicts are what the bias asset judged (one computation, one
    answer); their list columns are stored as comma-separated text and come back as lists.
    """
    from orchestration.lib.bias import assessed

    rates = _frame(conn, "SELECT * FROM marts.bias_group_rates WHERE date <= ?", [as_of])
    verdicts = verdicts_with_lists(_frame(conn, "SELECT * FROM marts.bias_verdicts WHERE date <= ?", [as_of]))
    # both written by the same run: a model's window has rates and verdicts; and it ends by the model's last
    # prediction day (later windows hold fewer and fewer of its days: a verdict flipped to "pass" as they thinned)
    published = set(zip(rates["model_id"], rates["date"]))
    verdicts = ending_by_last_prediction(conn, verdicts, as_of)
    verdicts = verdicts.loc[_mask(verdicts, [k in published for k in zip(verdicts["model_id"], verdicts["date"])])]
    chosen = {}
    for model, rows in verdicts.groupby("model_id"):
        judged = rows.loc[_mask(rows, [assessed(v) for _, v in rows.iterrows()])]
        chosen[model] = (judged if len(judged) else rows)["date"].max()

    def window(frame: pd.DataFrame) -> pd.DataFrame:
        keep = _mask(frame, [chosen.get(m) == d for m, d in zip(frame["model_id"], frame["date"])])
        return frame.loc[keep].sort_values(["model_id"], kind="stable").reset_index(drop=True)

    return window(rates), window(verdicts)


def bias_verdict_history(conn, as_of: date) -> pd.DataFrame:
    """Every published verdict up to as_of (list columns as lists): where the shown window could not judge a
    verdict, the newest one that did is said (bias.last_judged)."""
    return verdicts_with_lists(_frame(conn, "SELECT * FROM marts.bias_verdicts WHERE date <= ?", [as_of]))


def ending_by_last_prediction(conn, verdicts: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """The verdict (or rate) rows of windows ending by their model's last day with predictions up to as_of
    (marts.model_health_daily; every row when unreadable): later windows hold fewer and fewer of its days."""
    import duckdb

    try:
        rows = conn.execute(
            "SELECT model_id, max(date) FROM marts.model_health_daily WHERE predictions > 0 AND date <= ? GROUP BY 1",
            [as_of],
        ).fetchall()
    except (duckdb.CatalogException, duckdb.BinderException):
        return verdicts
    last = {m: pd.Timestamp(d) for m, d in rows}
    keep = [m not in last or d <= last[m] for m, d in zip(verdicts["model_id"], verdicts["date"])]
    return verdicts.loc[_mask(verdicts, keep)]


def _mask(frame: pd.DataFrame, flags: list[bool]) -> pd.Series:
    """Row flags as a boolean Series (an empty list would select no columns, not no rows)."""
    return pd.Series(flags, index=frame.index, dtype=bool)


def quarantine_tables(conn) -> list[str]:
    return [
        t
        for (t,) in conn.execute(
            "SELECT DISTINCT table_name FROM information_schema.columns WHERE table_schema = 'raw_quarantine' "
            "AND column_name = '_partition_date' AND table_catalog = current_database() ORDER BY 1"
        ).fetchall()
    ]


def quarantine_counts(conn, tables: list[str], as_of: date) -> pd.DataFrame:
    """Quarantined rows per table, day and reason up to as_of."""
    has_reason = {
        t
        for (t,) in conn.execute(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = 'raw_quarantine' "
            "AND column_name = '_reason' AND table_catalog = current_database()"
        ).fetchall()
    }
    union = " UNION ALL ".join(
        f"SELECT '{t}' AS table_name, _partition_date AS date, {'_reason' if t in has_reason else 'NULL'} AS reason, "
        f'count(*) AS rows FROM raw_quarantine."{t}" WHERE _partition_date <= ? GROUP BY ALL'
        for t in tables
    )
    return _frame(conn, f"SELECT * FROM ({union}) ORDER BY date, table_name", [as_of] * len(tables))


GATE_RESULTS = "quality.gate_results"


def _has_gate_warnings(conn) -> bool:
    """Whether GATE_RESULTS exists with its warnings column (results written before it have none)."""
    return GATE_RESULTS in existing_tables(conn) and "warnings" in set(
        _frame(conn, f"SELECT * FROM {GATE_RESULTS} LIMIT 0")
    )


def unloaded_days(conn) -> list[tuple]:
    """(day, tables) of every day, the latest first, that a table's gates judged the days around but not that one,
    on a day no gate held back (those list their own unloaded tables): its run stopped before loading the table (a
    database extraction refused) or the day never ran. Its KPIs are left out (macro gate_judged), and later runs'
    lookback reads its rows as none (a trial's day of 6 orders read 0, silently)."""
    import duckdb

    try:
        rows = conn.execute(
            """
            WITH spans AS (
                SELECT table_name, min(date) AS lo, max(date) AS hi, list(DISTINCT date) AS judged
                FROM quality.gate_results WHERE date IS NOT NULL GROUP BY table_name
            )
            SELECT d::DATE AS day, list(table_name ORDER BY table_name)
            FROM spans, generate_series(lo, hi, INTERVAL 1 DAY) AS t(d)
            WHERE NOT list_contains(judged, d::DATE)
              AND d::DATE NOT IN (SELECT date FROM quality.gate_results WHERE NOT passed AND date IS NOT NULL)
            GROUP BY 1 ORDER BY 1 DESC
            """
        ).fetchall()
    except duckdb.Error:  # a warehouse without gate results, or older ones
        return []
    return [(day, tables) for day, tables in rows]


def gate_results(conn, as_of: date) -> pd.DataFrame:
    warnings = "warnings" if _has_gate_warnings(conn) else "NULL::VARCHAR AS warnings"
    return _frame(
        conn,
        f"SELECT date, suite, table_name, passed, failed_expectations, rows_validated, {warnings} "
        f"FROM {GATE_RESULTS} WHERE date <= ? ORDER BY date, suite",
        [as_of],
    )


def gate_warnings(conn, as_of: date | None = None, days: int = RECENT_DAYS) -> pd.DataFrame:
    """Per suite and warning of the ``days`` days to ``as_of`` (None: the newest gate result): on how many days it
    warned, first and latest. A warning holds nothing back: an expectation of severity warning (a paused label
    feed's freshness), or a row expectation a day passed only by gates.rows.min_count."""
    columns = ["suite", "warning", "days", "first_day", "last_day"]
    if not _has_gate_warnings(conn):
        return pd.DataFrame(columns=columns)
    rows = conn.execute(
        f"SELECT suite, warnings, date FROM {GATE_RESULTS}, "
        f"(SELECT coalesce(?::DATE, max(date)) AS upto FROM {GATE_RESULTS}) "
        "WHERE warnings IS NOT NULL AND warnings <> '[]' AND date > upto - ?::INTEGER AND date <= upto "
        "ORDER BY date",
        [as_of, days],
    ).fetchall()
    seen: dict = {}
    for suite, names, day in rows:
        for name in json.loads(names):
            seen.setdefault((suite, name), []).append(day)
    return pd.DataFrame(
        [(suite, name, len(set(d)), d[0], d[-1]) for (suite, name), d in sorted(seen.items())], columns=columns
    )


def earlier_gate_warnings(conn, days: int = RECENT_DAYS) -> tuple[int, date | None, date | None]:
    """The days with gate warnings before the ``days`` days to the newest gate result (which gate_warnings lists):
    how many, first and last. A backfill's warnings of years ago (a missing predictions file's only trace) left
    summary without a word of them."""
    if not _has_gate_warnings(conn):
        return 0, None, None
    return conn.execute(
        f"SELECT count(DISTINCT date), min(date), max(date) FROM {GATE_RESULTS} "
        "WHERE warnings IS NOT NULL AND warnings <> '[]' "
        f"AND date <= (SELECT max(date) FROM {GATE_RESULTS}) - ?::INTEGER",
        [days],
    ).fetchone()


def kpis(conn, as_of: date) -> pd.DataFrame:
    return _frame(
        conn,
        "SELECT date, active_users, conversion_rate, revenue_per_active_user FROM marts.kpi_daily "
        "WHERE date <= ? ORDER BY date",
        [as_of],
    )


def latest_rows(conn, table: str, day_column: str, as_of: date) -> pd.DataFrame:
    """``table``'s rows of its newest day <= as_of (OKR progress, scorecard, leading indicators)."""
    return _latest_rows(conn, table, day_column, as_of)


# The per-bin shares behind each PSI, one list per alerted day and feature (same bin order in the three lists),
# built from the long table marts.feature_drift_bins (one row per bin).
DISTRIBUTION_COLUMNS = ("bin_labels", "reference_shares", "current_shares")
BINS_TABLE = "marts.feature_drift_bins"
BIN_COLUMNS = ("bin_order", "bin_label", "reference_share", "current_share")
# the days an alerted distribution covers: the alert's pool (1: the day alone), its first day, its values
POOL_COLUMNS = ("pool_days", "first_day", "values")


def drift_distribution_columns(conn) -> list[str]:
    """The distribution columns the report cannot build: all of them without marts.feature_drift_bins (or
    with one lacking a bin column); the report then says so instead of plotting."""
    if BINS_TABLE not in existing_tables(conn):
        return list(DISTRIBUTION_COLUMNS)
    have = set(_frame(conn, f"SELECT * FROM {BINS_TABLE} LIMIT 0").columns)
    return [] if set(BIN_COLUMNS) <= have else list(DISTRIBUTION_COLUMNS)


def alerted_feature_distributions(conn, as_of: date) -> pd.DataFrame:
    """For each (model, feature) with a PSI alert up to as_of: the published reference and current bin shares
    of the newest alerted day, one row per model version (the PSI the alert judged, read, never recomputed),
    with the bins of marts.feature_drift_bins as the lists bin_labels, reference_shares, current_shares. An alert
    judged on its pool (its rule says so: alerts.POOLED_RULE) shows the pool: the current side the bin counts of
    the version's days of its ``pool_days`` summed (as the mart's pooled_psi), from ``first_day``, ``values`` in
    all; ``pool_days`` 1 the day alone (a trial's heading said the day's PSI 0.57 beside an alert of 0.83)."""
    from orchestration.lib.alerts import POOLED_RULE_DAYS

    keys = ["date", "model_id", "model_version", "feature"]
    # a mart older than pooling has no pooled PSI (nor pooled alerts)
    has_pool = "pooled_psi" in _frame(conn, "SELECT * FROM marts.feature_drift_daily LIMIT 0").columns
    pooled_psi = "d.pooled_psi" if has_pool else "d.psi"
    bins = _frame(
        conn,
        f"""
        WITH newest AS (
            SELECT model_id, subject AS feature, max(date) AS date
            FROM marts.alerts WHERE metric = 'psi' AND coalesce(subject, '') <> '' AND date <= ?
            GROUP BY ALL
        ),
        alerted AS (
            SELECT n.model_id, n.feature, n.date,
                   coalesce(max(TRY_CAST(regexp_extract(a.rule, ?, 1) AS INTEGER)), 1) AS pool_days
            FROM newest n
            JOIN marts.alerts a ON a.metric = 'psi' AND a.model_id = n.model_id AND a.subject = n.feature
                AND a.date = n.date
            GROUP BY ALL
        ),
        pooled AS (
            SELECT a.date, b.model_id, b.model_version, b.feature, b.bin_order, any_value(b.bin_label) AS bin_label,
                   any_value(b.reference_share) AS reference_share, any_value(b.current_share) AS day_share,
                   sum(b.current_count) AS current_count, min(b.date) AS first_day
            FROM alerted a
            JOIN {BINS_TABLE} b ON b.model_id = a.model_id AND b.feature = a.feature
                AND b.date <= a.date AND b.date > a.date - a.pool_days
            GROUP BY ALL
        )
        SELECT d.date, d.model_id, d.model_version, d.feature, a.pool_days,
               CASE WHEN a.pool_days > 1 THEN {pooled_psi} ELSE d.psi END AS psi,
               p.bin_order, p.bin_label, p.reference_share,
               CASE WHEN a.pool_days > 1 THEN p.current_count / sum(p.current_count) OVER side ELSE p.day_share END
                   AS current_share,
               min(p.first_day) OVER side AS first_day, sum(p.current_count) OVER side AS "values"
        FROM marts.feature_drift_daily d
        JOIN alerted a USING (model_id, feature, date)
        LEFT JOIN pooled p USING (date, model_id, model_version, feature)
        WINDOW side AS (PARTITION BY d.date, d.model_id, d.model_version, d.feature)
        ORDER BY d.model_id, d.feature, d.model_version, p.bin_order
        """,
        [as_of, POOLED_RULE_DAYS],
    )
    rows = []
    for key, group in bins.groupby(keys, sort=False, dropna=False):
        present = group.dropna(subset=["bin_order"])  # a day without bins (no reference yet) gets empty lists
        first = group.iloc[0]
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "psi": first["psi"],
                "pool_days": int(first["pool_days"]),
                "first_day": first["first_day"],
                "values": first["values"],
                "bin_labels": [str(b) for b in present["bin_label"]],
                "reference_shares": [float(x) for x in present["reference_share"]],
                "current_shares": [float(x) for x in present["current_share"]],
            }
        )
    return pd.DataFrame(rows, columns=[*keys, "psi", *POOL_COLUMNS, *DISTRIBUTION_COLUMNS])


def newest_drift_day(conn, as_of: date | None = None) -> date | None:
    """The newest day of marts.feature_drift_daily up to ``as_of`` (None: any); None without rows (or the mart)."""
    import duckdb

    try:
        return conn.execute(
            "SELECT max(date) FROM marts.feature_drift_daily WHERE date <= coalesce(?::DATE, date)", [as_of]
        ).fetchone()[0]
    except duckdb.CatalogException:
        return None


def recent_drift(conn, last: date, days: int) -> pd.DataFrame | None:
    """alerts.DRIFT_SQL's rows of the ``days`` days to ``last``; None without the drift marts (or older ones)."""
    import duckdb

    from orchestration.lib.alerts import DRIFT_SQL

    try:
        return _frame(conn, DRIFT_SQL, [pd.Timestamp(last).date() - pd.Timedelta(days=days - 1), last])
    except (duckdb.CatalogException, duckdb.BinderException):  # older warehouses, the analysts' snapshot
        return None


def alert_episodes(dates: pd.Series) -> pd.Series:
    """Each alert day's episode number (0, 1, ...), ``dates`` of one model, metric and subject in any order: a new
    episode where a day follows the one before by more than ALERT_EPISODE_GAP_DAYS."""
    days = pd.to_datetime(dates)
    ordered = days.sort_values()
    starts = ordered.diff().dt.days.gt(ALERT_EPISODE_GAP_DAYS)
    return starts.cumsum().reindex(days.index)
