"""Retraining starts only from a clean, fair snapshot.

The daily job raises requests (marts.retraining_requests). A sensor turns a
new request into a run of the retraining job: training_candidates (labelled
predictions with features over a window, only if every input table passed its
quality gate on every day of it) -> blocking bias gate -> training_snapshot
(Parquet export). A snapshot is point-in-time: the labels known by the
request's day (see CANDIDATES_SQL), so a model with none there is blocked, never
exported empty. A blocked run records why on the request (status 'blocked',
status_reason), and the job republishes the requests, so analysts' copies
show the status it set. A request its window's gates blocked is judged again
by each daily run and pending again once the window is clean (the sensor's run
key names the window's gate state, so the retry starts).
"""

from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from orchestration.defs.bias.checks import verdict_metadata
from orchestration.defs.freshness import PUBLISHED_FRESHNESS
from orchestration.defs.model_health.alerts import ALERTS_KEY, evaluation_window
from orchestration.defs.notify.sensors import RETRAINING_JOB
from orchestration.defs.partition_metadata import add_daily_metadata
from orchestration.defs.partitions import daily_partitions, run_date_range, run_days, single_run
from orchestration.lib.alerts import load_alert_config
from orchestration.lib.asset_metadata import requests_by_day
from orchestration.lib.bias import (
    COUNT_COLUMNS,
    KEYS,
    NOT_ASSESSED,
    POPULATION_COLUMNS,
    bias_verdicts,
    fully_assessed,
    group_rates,
    summarise_verdicts,
)
from orchestration.lib.project_config import load_config
from orchestration.lib.publish import PUBLISHED, export_whole, refresh_snapshot
from orchestration.lib.quality_gate import ensure_gate_results
from orchestration.lib.report_data import existing_tables
from orchestration.lib.retraining import (
    REQUEST_SCHEMA,
    REQUEUED,
    FAIRNESS_UNASSESSED,
    NOT_ASSESSED_KEY,
    LabelTiming,
    SnapshotGate,
    blocked_by_gate,
    coverage_note,
    first_breach_day,
    floor_breaches,
    gate_digest,
    keep_decisions,
    label_free,
    one_class,
    not_judged,
    pending_by_day,
    ready_reason,
    requests_between,
    requeue,
    snapshot_gate,
    unassessed,
    unassessed_note,
)
from orchestration.lib.settings import analytics_path, exports_dir
from orchestration.lib.warehouse import ensure_table, replace_date_range

REQUESTS_KEY = dg.AssetKey(["marts", "retraining_requests"])
CANDIDATES_KEY = dg.AssetKey(["retraining", "training_candidates"])
SNAPSHOT_KEY = dg.AssetKey(["retraining", "training_snapshot"])

# labels known by the request's day only: a snapshot rebuilt later holds the same rows, and reads no label of a day
# after the window its quality gates checked (a window labelled only later gives no rows: label_free blocks it)
CANDIDATES_SQL = """
SELECT p.*, l.label, l.label_source{attributes},
       DATE '{day}' AS snapshot_date
FROM staging.stg_predictions p
JOIN (
    SELECT prediction_id, label, label_source FROM staging.stg_labels
    WHERE labeled_at >= DATE '{start}' AND labeled_at < DATE '{day}' + INTERVAL 1 DAY
    QUALIFY row_number() OVER (PARTITION BY prediction_id ORDER BY source_priority DESC, labeled_at DESC) = 1
) l USING (prediction_id)
LEFT JOIN staging.stg_users u USING (user_id)
WHERE p.model_id IN ({models}) AND p.prediction_date BETWEEN DATE '{start}' AND DATE '{day}'
"""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def attribute_columns_sql(attributes: dict[str, list[str]]) -> str:
    """The project file's protected attributes as snapshot columns (intersections joined with '|', like marts.bias_daily)."""
    parts = []
    for name, columns in attributes.items():
        expr = " || '|' || ".join(f"coalesce(CAST(u.{_quote(c)} AS VARCHAR), 'unknown')" for c in columns)
        parts.append(f"{expr} AS {_quote(name)}")
    return "".join(f", {p}" for p in parts)


# the raw tables CANDIDATES_SQL reads (through staging): each must have passed its gate on every window day
TRAINING_INPUTS = ("predictions", "labels", "users")
REQUESTS_TABLE = "marts.retraining_requests"


def ensure_requests_table(conn) -> None:
    """marts.retraining_requests, with status_reason added to tables created before it existed."""
    ensure_table(conn, REQUESTS_TABLE, REQUEST_SCHEMA)
    conn.execute(f"ALTER TABLE {REQUESTS_TABLE} ADD COLUMN IF NOT EXISTS status_reason VARCHAR")


def upgrade_requests_table(conn) -> None:
    """An existing marts.retraining_requests as ensure_requests_table leaves it (status_reason added to an older
    one), before it is published; a missing one stays missing: nothing to publish yet."""
    if REQUESTS_TABLE in existing_tables(conn):
        ensure_requests_table(conn)


# every other published table gets an empty range (after any day): the snapshot keeps it as the last run
# published it (copied whole only if its row count differs from the warehouse's); the requests, not named, are
# copied whole
KEEP_OTHERS = {t: date.max for t in PUBLISHED if t != REQUESTS_TABLE}


def _floor_rows(conn, health: pd.DataFrame, floors: dict, since: date, first: date) -> pd.DataFrame:
    """``health`` and, for the models with a floor, their older rows whose labels came on or after ``first``
    (labels_as_of): a breach they show was known within the window."""
    import duckdb

    if not floors:
        return health
    try:
        older = conn.execute(
            "SELECT * FROM marts.model_health_daily WHERE date < ? AND labels_as_of >= ? AND model_id IN "
            f"({', '.join('?' for _ in floors)})",
            [since, first, *floors],
        ).df()
    except duckdb.BinderException:  # a mart from before labels_as_of
        return health
    return pd.concat([health, older], ignore_index=True) if len(older) else health


# each label event, within its prediction's label horizon and known by the run's last day ($6), of the predictions
# of the breaching (model, version, day)s ($1-$4: lists, $4 the horizons + 1), as model_health_daily counts them:
# one scan of each table for every breach, its predictions read within the breaches' span ($5: first day)
BREACH_EVENTS_SQL = """
    WITH b AS (
        SELECT unnest($1::VARCHAR[]) AS model_id, unnest($2::VARCHAR[]) AS model_version,
            unnest($3::DATE[]) AS day, unnest($4::INTEGER[]) AS horizon
    )
    SELECT b.model_id, b.model_version, b.day, p.prediction_id, p.decision, l.label,
        l.source_priority AS priority, l.labeled_at AS at
    FROM staging.stg_predictions p
    JOIN b ON p.model_id = b.model_id AND CAST(p.model_version AS VARCHAR) IS NOT DISTINCT FROM b.model_version
        AND p.prediction_date = b.day
    JOIN staging.stg_labels l ON l.prediction_id = p.prediction_id
    WHERE p.predicted_at >= CAST($5 AS DATE) AND p.predicted_at < CAST($6 AS DATE) + INTERVAL 1 DAY
      AND l.labeled_at < b.day + to_days(b.horizon) AND CAST(l.labeled_at AS DATE) <= $6
"""


def _breaches_known_on(conn, rows: pd.DataFrame, floors: dict, rules: dict, last: date) -> dict:
    """(model_id, model_version, date, metric) -> the day each floor breach of ``rows`` was first known, from its
    day's label events (first_breach_day); a breach whose events cannot be read counts on its prediction day."""
    import duckdb

    alpha = float(rules.get("floor_alpha", 0.01))
    breaches = floor_breaches(rows, floors, alpha)
    if not breaches:
        return {}
    config = load_config()
    keys = sorted({(m, v, d) for m, v, d, _, _ in breaches}, key=lambda k: (k[0], str(k[1]), k[2]))
    try:
        events = conn.execute(
            BREACH_EVENTS_SQL,
            [
                [m for m, _, _ in keys],
                [v for _, v, _ in keys],  # version_key's: text or None
                [d for _, _, d in keys],
                [int(config.model(m).label_horizon_days) + 1 for m, _, _ in keys],
                min(d for _, _, d in keys),
                last,
            ],
        ).df()
    except duckdb.Error:  # staging views over files another engine wrote, or none
        return {}
    events["day"] = pd.to_datetime(events["day"]).dt.date
    events["model_version"] = events["model_version"].astype(object).where(events["model_version"].notna(), "")
    by_breach = dict(iter(events.groupby(["model_id", "model_version", "day"])))
    out = {}
    for model_id, version, day, metric, floor in breaches:
        mine = by_breach.get((model_id, "" if version is None else version, day))
        if mine is not None and (known := first_breach_day(mine, metric, floor, alpha)):
            out[(model_id, version, day, metric)] = known
    return out


def publish_requests(conn, day: date) -> None:
    """Analysts' copies of the requests (Parquet exports, the analytics snapshot) take the status the retraining
    run for ``day`` just set: `impact-ledger query` and the exports said 'requested' while the warehouse said
    'snapshot_ready', the daily publish covering only its run's days."""
    export_whole(conn, REQUESTS_TABLE, exports_dir(), day, day)
    refresh_snapshot(conn, analytics_path(), KEEP_OTHERS, day)


def record_blocked(conn, day, models: list[str], reason: str) -> None:
    """The retraining run for ``day`` stopped: the requests say so, and why (published at once)."""
    ensure_requests_table(conn)
    if models:
        conn.execute(
            f"UPDATE {REQUESTS_TABLE} SET status = 'blocked', status_reason = ? WHERE date = ? AND model_id IN "
            f"({', '.join('?' for _ in models)})",
            [reason, day, *models],
        )
        publish_requests(conn, day)


def window_gate(conn, day: date, models: list[str]) -> tuple[date, SnapshotGate, pd.DataFrame]:
    """The training window of ``day``'s requests (``models``): its first day, whether every input table passed
    its quality gate on every day of it, and those gate rows."""
    window_start = day - timedelta(days=int(load_config().retraining.training_window_days) - 1)
    start = _training_start(conn, models, window_start)
    ensure_gate_results(conn)
    gates = conn.execute(
        "SELECT date, table_name, suite, passed, failed_expectations, rows_validated FROM quality.gate_results "
        f"WHERE table_name IN ({', '.join('?' for _ in TRAINING_INPUTS)}) AND date BETWEEN ? AND ?",
        [*TRAINING_INPUTS, start, day],
    ).df()
    return start, snapshot_gate(gates, TRAINING_INPUTS, start, day), gates


def requeue_blocked(conn) -> int:
    """Each model's newest request that its window's quality gates blocked, judged again on today's gates (the
    user may have fixed and re-run the failed days): pending again once the window is clean, else blocked with
    what is wrong now. A fairness block stays (the same rows give the same verdicts); an older request is
    superseded by its model's newer one. Returns how many were re-queued."""
    newest = conn.execute(
        f"SELECT date, model_id, status, status_reason FROM {REQUESTS_TABLE} "
        "QUALIFY date = max(date) OVER (PARTITION BY model_id)"
    ).df()
    gated = [blocked_by_gate(s, r) for s, r in zip(newest["status"], newest["status_reason"])]
    blocked = newest[pd.Series(gated, index=newest.index, dtype=bool)]
    requeued = 0
    for day in sorted({pd.Timestamp(d).date() for d in blocked["date"]}):
        _, gate, _ = window_gate(conn, day, _requested_models(conn, day))
        rows = blocked[pd.to_datetime(blocked["date"]).dt.date == day]
        for model_id, was in zip(rows["model_id"], rows["status_reason"]):
            status, reason = requeue(gate, was)
            conn.execute(
                f"UPDATE {REQUESTS_TABLE} SET status = ?, status_reason = ? WHERE date = ? AND model_id = ?",
                [status, reason, day, model_id],
            )
            requeued += status == "requested"
    return requeued


@dg.asset(
    key=REQUESTS_KEY,
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    group_name="retraining",
    kinds={"python", "duckdb"},
    owners=["team:ml-platform"],
    freshness_policy=PUBLISHED_FRESHNESS,
    deps=[ALERTS_KEY, dg.AssetKey(["marts", "model_health_daily"])],
    description=(
        "One row per retraining request: model, reason, evidence values, planned snapshot path, status "
        "('requested', 'snapshot_ready', or 'blocked' with status_reason naming the failed gates or fairness verdicts, "
        "or saying no label was known by the request's day: a snapshot is never exported empty). "
        "Re-evaluated with the alerts over the label lookback window, from the alerts' dates only."
    ),
)
def retraining_requests_asset(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    config = load_alert_config()
    # the alerts of this window were just re-evaluated (late labels): so are the requests they
    # raise, from the alerts' dates only, so a backfill and daily runs end with the same requests
    first, last = evaluation_window(context)
    k = int(config.retraining["persist_days"])
    # streaks count a model's prediction days: k + 2 of them before the window, a weekly model's included; a small
    # model's pooled days one per pool window (and its first one's pool before it)
    pool = max(int(config.rule("psi", m).get("pool_days") or 1) for m in [*config.models, ""])
    since = first - timedelta(days=max(7, pool) * (k + 2) + pool)
    with duckdb.get_connection() as conn:
        alerts = conn.execute("SELECT * FROM marts.alerts WHERE date BETWEEN ? AND ?", [since, last]).df()
        health = conn.execute("SELECT * FROM marts.model_health_daily WHERE date BETWEEN ? AND ?", [since, last]).df()
        # floors judge older prediction days too, whose labels landed within the window: a breach is a request of
        # the day it was known (its snapshot then holds the labels that showed it)
        floor_health = _floor_rows(conn, health, config.floors, since, first)
        known_on = _breaches_known_on(conn, floor_health, config.floors, config.retraining, last)
        ensure_requests_table(conn)
        existing = conn.execute(f"SELECT * FROM {REQUESTS_TABLE} WHERE date BETWEEN ? AND ?", [first, last]).df()
        # days too small for PSI (and without enough labels) neither continue nor end a streak
        psi_min_count = {m: config.rule("psi", m).get("min_count") or 0 for m in set(health["model_id"])}
        # unless their pool was judged: once per pool window (its days share their values)
        psi_pool_days = {m: config.rule("psi", m).get("pool_days") or 1 for m in set(health["model_id"])}
        requests = keep_decisions(
            requests_between(
                alerts,
                health,
                config.retraining,
                config.min_labelled,
                first,
                last,
                str(exports_dir()),
                config.floors,
                psi_min_count,
                psi_pool_days,
                known_on,
                floor_health,
            ),
            existing,
        )
        replace_date_range(conn, REQUESTS_TABLE, REQUEST_SCHEMA, requests, "date", first, last)
        requeued = requeue_blocked(conn)  # any day: the publish asset exports the requests whole
        requests = conn.execute(f"SELECT * FROM {REQUESTS_TABLE} WHERE date BETWEEN ? AND ?", [first, last]).df()
        # the window's pending requests and the re-queued ones (outside it too); pending_by_day filters the same way
        pending = conn.execute(
            f"SELECT * FROM {REQUESTS_TABLE} WHERE status = 'requested' "
            "AND (date BETWEEN ? AND ? OR starts_with(status_reason, ?)) ORDER BY date, model_id",
            [first, last, REQUEUED],
        ).df()
        by_day = pending_by_day(pending)
        # the sensor's run key names each window's gate state: a request blocked by it starts again once fixed
        gate_state = {
            d: gate_digest(window_gate(conn, date.fromisoformat(d), models)[2]) for d, models in by_day.items()
        }
    add_daily_metadata(context, requests_by_day(requests, run_days(context)))  # each day's own requests
    return dg.MaterializeResult(
        metadata={
            "requests_in_window": len(requests),
            "window": f"{first} .. {last}",
            "requeued": requeued,
            # read by the retraining sensor (it never opens the warehouse: one writer): day -> models
            "pending_requests": dg.MetadataValue.json(by_day),
            "pending_gates": dg.MetadataValue.json(gate_state),
            "reasons": dg.MetadataValue.json(
                {
                    f"{pd.Timestamp(d).date()} {m}": r
                    for d, m, r in zip(pending["date"], pending["model_id"], pending["reason"])
                }
            ),
        }
    )


def _requested_models(conn, day) -> list[str]:
    rows = conn.execute(f"SELECT DISTINCT model_id FROM {REQUESTS_TABLE} WHERE date = ?", [day]).fetchall()
    return sorted(r[0] for r in rows)


def no_request(day) -> str:
    return f"no retraining request on {day}: nothing to build"


def _training_start(conn, models: list[str], window_start):
    """The window starts no earlier than the first prediction of the requested models: before it there is nothing to read."""
    listed = models or [None]
    born = conn.execute(
        f"SELECT min(first_date) FROM intermediate.int_model_versions WHERE model_id IN ({', '.join('?' for _ in listed)})",
        listed,
    ).fetchone()[0]
    return max(window_start, born) if born else window_start


@dg.asset(
    key=CANDIDATES_KEY,
    partitions_def=daily_partitions,
    group_name="retraining",
    kinds={"duckdb"},
    owners=["team:ml-platform"],
    deps=[REQUESTS_KEY, dg.AssetKey(["raw", "predictions"]), dg.AssetKey(["raw", "labels"])],
    description=(
        "Labelled predictions with features and protected attributes over the training window of each model with "
        "a retraining request that day, with the labels known by that day. Refuses to build (and marks the "
        "requests 'blocked' with the reason) unless every input table "
        f"({', '.join(TRAINING_INPUTS)}) passed its quality gate on every day of the window; a model with no "
        "labelled prediction there, or labels of one class only, is blocked too (its labels land later), and the run fails "
        "if every one is."
    ),
)
def training_candidates_asset(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    _, day = run_date_range(context)
    with duckdb.get_connection() as conn:
        models = _requested_models(conn, day)
        if not models:  # e.g. "materialize all" on any day: nothing to build, and no older candidates left behind
            conn.execute("CREATE SCHEMA IF NOT EXISTS retraining")
            empty = CANDIDATES_SQL.format(
                day=day, start=day, models="NULL", attributes=attribute_columns_sql(load_config().attribute_columns)
            )
            conn.execute(f"CREATE OR REPLACE TABLE retraining.training_candidates AS {empty}")
            return dg.MaterializeResult(metadata={"models": dg.MetadataValue.json([]), "note": no_request(day)})
        start, gate, _ = window_gate(conn, day, models)
        unlabelled: dict[str, str] = {}  # model -> why its snapshot would be empty
        if gate.passed:
            conn.execute("CREATE SCHEMA IF NOT EXISTS retraining")
            listed = ", ".join(f"'{m}'" for m in models) or "NULL"
            select = CANDIDATES_SQL.format(
                day=day, start=start, models=listed, attributes=attribute_columns_sql(load_config().attribute_columns)
            )
            conn.execute(f"CREATE OR REPLACE TABLE retraining.training_candidates AS {select}")
            labelled = conn.execute(
                "SELECT model_id, count(*), count(*) FILTER (WHERE label = 1) FROM retraining.training_candidates "
                "GROUP BY 1"
            ).fetchall()
            counts = {m: n for m, n, _ in labelled}
            predicted = dict(
                conn.execute(
                    "SELECT model_id, count(*) FROM staging.stg_predictions WHERE model_id IN "
                    f"({listed}) AND prediction_date BETWEEN ? AND ? GROUP BY 1",
                    [start, day],
                ).fetchall()
            )
            unlabelled = label_free(models, counts, predicted, start, day)
            unlabelled |= one_class(models, counts, {m: ones for m, _, ones in labelled}, start, day)
            for model_id, reason in unlabelled.items():
                record_blocked(conn, day, [model_id], reason)
            if blocked := [m for m in unlabelled if counts.get(m)]:  # one class: its rows are no candidates
                conn.execute(
                    f"DELETE FROM retraining.training_candidates WHERE model_id IN ({', '.join('?' for _ in blocked)})",
                    blocked,
                )
                counts = {m: n for m, n in counts.items() if m not in blocked}
        else:
            record_blocked(conn, day, models, gate.reason)
    if gate.passed and len(unlabelled) == len(models):  # nothing to export: the run fails, as a blocked gate does
        raise dg.Failure(description="; ".join(f"{m}: {r}" for m, r in unlabelled.items()))
    if not gate.passed:  # raised outside the `with`: DuckDBResource closes its connection only on a clean exit
        raise dg.Failure(
            description=gate.reason,
            metadata={
                "failed_days": dg.MetadataValue.json({t: [str(d) for d in days] for t, days in gate.failed.items()}),
                "unvalidated_days": dg.MetadataValue.json(
                    {t: [str(d) for d in days] for t, days in gate.missing.items()}
                ),
            },
        )
    return dg.MaterializeResult(
        metadata={
            "models": dg.MetadataValue.json(models),
            "rows_by_model": dg.MetadataValue.json(counts),
            "window": f"{start} .. {day}",
            "quality_gate": gate.reason,
            # progress lines print it: the other models' snapshots go on
            **({"skipped": "; ".join(f"{m}: {r}" for m, r in unlabelled.items())} if unlabelled else {}),
        }
    )


def candidate_group_counts(conn, attributes: list[str]) -> pd.DataFrame:
    """marts.bias_daily-shaped counts over the candidates, so the same verdict code judges them."""
    parts = []
    for attribute in attributes:
        column = _quote(attribute)
        parts.append(f"""
            SELECT snapshot_date AS date, model_id, '{attribute.replace("'", "''")}' AS attribute, coalesce({column}, 'unknown') AS group_value,
                count(*) AS predictions, count_if(decision) AS positives, count(*) AS labelled,
                count_if(label = 1) AS labelled_positives, count_if(decision AND label = 1) AS true_positives,
                count_if(decision AND label = 0) AS false_positives, count_if(NOT decision AND label = 1) AS false_negatives,
                count_if(NOT decision AND label = 0) AS true_negatives, sum(score) AS score_sum, count_if(label = 1) AS label_sum,
                0 AS population_users, 1 AS population_total
            FROM retraining.training_candidates GROUP BY ALL""")
    return conn.execute(" UNION ALL ".join(parts)).df()


@dg.asset_check(
    asset=CANDIDATES_KEY,
    name="training_bias_suite",
    blocking=True,
    partitions_def=daily_partitions,
    description="Fairness verdicts on the training candidates: an unfair snapshot is never exported (blocking).",
)
def training_bias_check(context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource) -> dg.AssetCheckResult:
    config = load_config()
    thresholds = config.bias.model_dump()
    attributes = list(config.attribute_columns)
    _, day = run_date_range(context)
    with duckdb.get_connection() as conn:
        if attributes:
            verdicts = bias_verdicts(group_rates(candidate_group_counts(conn, attributes)), thresholds)
        else:
            verdicts = bias_verdicts(
                group_rates(pd.DataFrame(columns=[*KEYS, *COUNT_COLUMNS, *POPULATION_COLUMNS])), thresholds
            )
        passed = bool(verdicts["passed"].all()) if len(verdicts) else True
        requested = _requested_models(conn, day)
        # a label-free model is blocked already (training_candidates): its status_reason stays
        with_rows = {
            r[0] for r in conn.execute("SELECT DISTINCT model_id FROM retraining.training_candidates").fetchall()
        }
        judged = [m for m in requested if m in with_rows]
        unjudged = unassessed(verdicts, judged) if passed and attributes else []
        note = unassessed_note(verdicts, unjudged) if unjudged else None
        if not requested:
            reason = no_request(day)
        elif not judged:  # 0 rows: no group is unfair, yet nothing was judged either
            passed, reason = False, not_judged(requested)
        elif not attributes:
            reason = f"snapshot may be exported; {NOT_ASSESSED}"
        elif not passed:
            reason = f"retraining blocked: {summarise_verdicts(verdicts, thresholds)}"
        elif all(fully_assessed(v) for _, v in verdicts.iterrows()):
            reason = "fair: snapshot may be exported"
        else:  # a verdict that compared nothing (e.g. equal opportunity of groups too small in labels) passes, blocking
            # nothing, but is no finding of fairness
            said = summarise_verdicts(verdicts, thresholds).replace("\n", "; ")
            where = f"snapshot may be exported, its fairness not assessed where too few rows: {said}"
            reason = f"{note} ({said})" if note else where
        if requested and judged and len(judged) < len(requested):
            reason += f" (not judged: {', '.join(m for m in requested if m not in judged)}, no labelled prediction)"
        if not passed:  # a model blocked for want of labels keeps that reason
            record_blocked(conn, day, judged or requested, reason)
        else:
            record_unassessed(conn, day, judged, unjudged, note)
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=reason,
        # `retrain` prints it beside '1 check(s) passed' (StepProgress)
        metadata={**verdict_metadata(verdicts), **({NOT_ASSESSED_KEY: note} if note else {})},
    )


def record_unassessed(conn, day, judged: list[str], unjudged: list[str], note: str | None) -> None:
    """The requests of ``unjudged`` models (no verdict compared anything) carry ``note`` until the snapshot step
    puts it beside its coverage note (summary prints it); the other ``judged`` ones lose such a note an earlier
    run of the day left."""
    if judged:
        conn.execute(
            f"UPDATE {REQUESTS_TABLE} SET status_reason = NULL WHERE date = ? AND model_id IN ({', '.join('?' for _ in judged)}) "
            "AND starts_with(status_reason, ?)",
            [day, *judged, FAIRNESS_UNASSESSED],
        )
    if unjudged:
        conn.execute(
            f"UPDATE {REQUESTS_TABLE} SET status_reason = ? WHERE date = ? AND model_id IN ({', '.join('?' for _ in unjudged)})",
            [note, day, *unjudged],
        )


@dg.asset(
    key=SNAPSHOT_KEY,
    partitions_def=daily_partitions,
    group_name="retraining",
    kinds={"parquet"},
    owners=["team:ml-platform"],
    deps=[CANDIDATES_KEY],
    description="The training snapshot of each requested model as Parquet under data/exports/training/.",
)
def training_snapshot_asset(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    _, day = run_date_range(context)
    written = {}
    with duckdb.get_connection() as conn:
        ensure_requests_table(conn)
        # a model without candidate rows was blocked by training_candidates: an empty snapshot is never ready
        for model_id, path in conn.execute(
            f"SELECT model_id, snapshot_path FROM {REQUESTS_TABLE} WHERE date = ? AND model_id IN "
            "(SELECT model_id FROM retraining.training_candidates)",
            [day],
        ).fetchall():
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            conn.execute(
                f"COPY (SELECT * FROM retraining.training_candidates WHERE model_id = ?) TO '{target}' (FORMAT parquet)",
                [model_id],
            )
            (before,) = conn.execute(
                f"SELECT status_reason FROM {REQUESTS_TABLE} WHERE date = ? AND model_id = ?", [day, model_id]
            ).fetchone()
            conn.execute(
                f"UPDATE {REQUESTS_TABLE} SET status = 'snapshot_ready', status_reason = ? WHERE date = ? AND model_id = ?",
                [ready_reason(before, _coverage(conn, day, model_id)), day, model_id],
            )
            written[model_id] = str(target)
        if written:
            publish_requests(conn, day)
    return dg.MaterializeResult(metadata={"snapshots": dg.MetadataValue.json(written)})


def _coverage(conn, day: date, model_id: str) -> str | None:
    """coverage_note of the model's exported snapshot: its rows against the window's predictions, and when those
    began against the model's label horizon."""
    start, _, _ = window_gate(conn, day, [model_id])
    rows, first, last = conn.execute(
        "SELECT count(*), min(prediction_date), max(prediction_date) FROM retraining.training_candidates "
        "WHERE model_id = ?",
        [model_id],
    ).fetchone()
    predicted, began = conn.execute(
        "SELECT count(*), min(prediction_date) FROM staging.stg_predictions "
        "WHERE model_id = ? AND prediction_date BETWEEN ? AND ?",
        [model_id, start, day],
    ).fetchone()
    config = load_config()
    timing = LabelTiming(began, config.model(model_id).label_horizon_days, int(config.retraining.training_window_days))
    return coverage_note(rows, predicted, first, last, day, timing)


retraining_job = dg.define_asset_job(
    RETRAINING_JOB,
    selection=dg.AssetSelection.assets(CANDIDATES_KEY, SNAPSHOT_KEY),
    description="Build a fair, clean training snapshot for the models with a retraining request.",
)


@dg.asset_sensor(asset_key=REQUESTS_KEY, job=retraining_job, default_status=dg.DefaultSensorStatus.RUNNING)
def retraining_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    """Each pending request (a day with requested models) starts one retraining run for that day.

    Requests are re-evaluated over the label lookback, so one can appear for an
    earlier day of the run's window (late calibration alerts); the run key
    makes each day's request start once however often it is seen. It names the
    window's gate state too (``pending_gates``): a request blocked by a failed
    gate and re-queued once the user fixed and re-ran that day starts again.
    """
    metadata = asset_event.asset_materialization.metadata
    pending, gates = metadata.get("pending_requests"), metadata.get("pending_gates")
    state = gates.value if gates else {}
    for day, models in sorted((pending.value if pending else {}).items()):
        key = f"{day}:{','.join(models)}" + (f":gates={state[day]}" if day in state else "")
        yield dg.RunRequest(run_key=key, partition_key=day)
