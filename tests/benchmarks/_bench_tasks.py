"""The comparison workloads of `make bench` (bench_suite.py runs each in its own process, on one landing-zone day).

* ``sql``: the hand-written DuckDB SQL limit for the core outputs: health metrics, bias rates, drift against a
  stored reference profile, KPIs. Straight SQL on the Parquet files, no gates, no history recomputation.
* ``peers``: what people would write instead, on the same rows: pandas + scikit-learn health metrics,
  fairlearn MetricFrame group rates. (Evidently runs in its own venv: bench_peer_evidently.py.)

Rows compared: drift and KPIs, the day's rows. Health and bias, the rows the pipeline's run recomputes: the
predictions of each (model, day) pair its intermediate.int_label_refresh_days lists (``spec["refresh"]``: the day
and the label-lookback days before it, and older days that got labels; without it, the day alone), grouped by
day, model and version. Labels: every label the landing zone holds for them (first label per prediction);
attributes: the project file's protected attributes and intersections, from users.
Drift reference: each version's reference window of the project file (first N days of the version, or fixed
dates), stored once as deciles (numeric features, score) and category shares before the timed part.
Each part's seconds include reading its inputs from Parquet.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from pathlib import Path

import duckdb

TIMERS: dict[str, float] = {}


class timed:
    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        self.start = time.perf_counter()

    def __exit__(self, *exc):
        TIMERS[self.name] = round(time.perf_counter() - self.start, 3)


def _files(raw: Path, table: str) -> str:
    return str(raw / table / "*.parquet")


def feature_columns(raw: Path) -> list[tuple[str, str]]:
    """(column, DuckDB type) of every feature_* column of the predictions."""
    with duckdb.connect() as conn:
        described = conn.execute(
            f"DESCRIBE SELECT * FROM read_parquet('{_files(raw, 'predictions')}', union_by_name = true)"
        ).fetchall()
    return [(name, kind) for name, kind, *_ in described if name.startswith("feature_")]


def _config(path: str):
    from orchestration.lib.project_config import load_config

    return load_config(Path(path))


def drift_references(raw: Path, day: date, config_path: str) -> list[tuple[str, str, date, date]]:
    """(model, version, first, last day of its reference window) of every version predicting on ``day``."""
    config = _config(config_path)
    with duckdb.connect() as conn:
        versions = conn.execute(
            f"""
            SELECT model_id, model_version, min(predicted_at)::date
            FROM read_parquet('{_files(raw, "predictions")}', union_by_name = true)
            WHERE predicted_at < ?::date + 1 AND model_id IS NOT NULL AND model_version IS NOT NULL
            GROUP BY ALL
            HAVING max(predicted_at)::date = ?
            """,
            [day, day],
        ).fetchall()
    out = []
    for model, version, first in versions:
        ref = config.model(model).drift_reference
        if ref.is_fixed:
            out.append((model, version, ref.start, ref.end))
        else:
            out.append((model, version, first, first + timedelta(days=ref.days - 1)))
    return out


# ----------------------------------------------------------------------------------------------- SQL


def sql_limit(spec: dict) -> dict:
    raw, day = Path(spec["raw"]), date.fromisoformat(spec["day"])
    config = _config(spec["config"])
    features = feature_columns(raw)
    numeric = [c for c, t in features if t in ("DOUBLE", "FLOAT", "BIGINT", "INTEGER", "DECIMAL")] + ["score"]
    categorical = [c for c, t in features if t == "VARCHAR"]
    refs = drift_references(raw, day, spec["config"])
    preds, labels, users = (_files(raw, t) for t in ("predictions", "labels", "users"))
    conn = duckdb.connect()
    try:
        conn.execute("SET enable_progress_bar = false")  # its bar would interleave with the JSON line on stdout
        # the stored reference profile: once per version, before (and outside) the timed day
        with timed("reference_profile_once"):
            conn.execute(
                "CREATE TABLE ref_windows (model_id VARCHAR, model_version VARCHAR, first_day DATE, last_day DATE)"
            )
            conn.executemany("INSERT INTO ref_windows VALUES (?, ?, ?, ?)", refs)
            conn.execute(
                f"""
                CREATE TABLE ref_rows AS
                SELECT p.* FROM read_parquet('{preds}', union_by_name = true) p
                JOIN ref_windows w USING (model_id, model_version)
                WHERE p.predicted_at >= w.first_day AND p.predicted_at < w.last_day + 1
                """
            )
            edges = " UNION ALL ".join(
                f"SELECT model_id, model_version, '{c}' AS feature, "
                f"quantile_cont({c}, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]) AS edges "
                f"FROM ref_rows GROUP BY ALL"
                for c in numeric
            )
            conn.execute(f"CREATE TABLE ref_edges AS {edges}")
            conn.execute(_binned_shares("ref_rows", "ref_num", numeric))
            if categorical:
                conn.execute(_category_shares("ref_rows", "ref_cat", categorical))
            conn.execute("DROP TABLE ref_rows")

        pairs = refresh_pairs(spec)
        conn.execute("CREATE TABLE refresh (model_id VARCHAR, date DATE)")
        if pairs:
            conn.executemany("INSERT INTO refresh VALUES (?, ?)", pairs)
        else:  # the day alone, every model
            conn.execute(
                f"""INSERT INTO refresh SELECT DISTINCT model_id, ?::date FROM read_parquet('{preds}', union_by_name = true)
                WHERE predicted_at >= ?::date AND predicted_at < ?::date + 1""",
                [day, day, day],
            )
        with timed("load_day"):  # the rows and their labels, in memory, read once for every output
            conn.execute(
                f"""
                CREATE TABLE refreshed AS
                SELECT p.*, p.predicted_at::date AS date, p.score >= coalesce(p.threshold, 0.5) AS decision
                FROM read_parquet('{preds}', union_by_name = true) p
                SEMI JOIN refresh r ON r.model_id = p.model_id AND r.date = p.predicted_at::date
                WHERE p.predicted_at >= ?::date AND p.predicted_at < ?::date + 1
                """,
                [min((d for _, d in pairs), default=day), day],
            )
            conn.execute(f"CREATE VIEW day AS SELECT * EXCLUDE (date) FROM refreshed WHERE date = DATE '{day}'")
            conn.execute(
                f"""
                CREATE TABLE day_labels AS
                SELECT prediction_id, arg_min(label, labeled_at) AS label, min(labeled_at) AS labeled_at
                FROM read_parquet('{labels}', union_by_name = true)
                WHERE prediction_id IN (SELECT prediction_id FROM refreshed)
                GROUP BY prediction_id
                """
            )
        with timed("health"):
            conn.execute(
                """
                CREATE TABLE health AS
                WITH scored AS (
                    SELECT d.date, d.model_id, d.model_version, d.score, d.decision, l.label,
                        floor(d.score * 10) AS bin
                    FROM refreshed d LEFT JOIN day_labels l USING (prediction_id)
                ),
                bins AS (
                    SELECT date, model_id, model_version, bin, count(*) AS n, avg(label) AS y, avg(score) AS s
                    FROM scored WHERE label IS NOT NULL GROUP BY ALL
                ),
                ece AS (
                    SELECT date, model_id, model_version, sum(n * abs(y - s)) / sum(n) AS ece FROM bins GROUP BY ALL
                )
                SELECT date, model_id, model_version, count(*) AS predictions, avg(score) AS mean_score,
                    quantile_cont(score, 0.5) AS p50, quantile_cont(score, 0.9) AS p90,
                    avg(decision::int) AS positive_rate, count(label) AS labelled,
                    count_if(decision AND label = 1) / nullif(count_if(decision AND label IS NOT NULL), 0) AS precision,
                    count_if(decision AND label = 1) / nullif(count_if(label = 1), 0) AS recall,
                    avg(power(score - label, 2)) AS brier, any_value(e.ece) AS ece
                FROM scored LEFT JOIN ece e USING (date, model_id, model_version)
                GROUP BY ALL
                """
            )
        with timed("bias"):
            attrs = config.attribute_columns
            conn.execute(
                f"""
                CREATE TABLE labelled AS
                SELECT d.date, d.model_id, d.decision, l.label,
                    {", ".join(f"u.{c}" for c in config.protected_attributes)}
                FROM refreshed d JOIN day_labels l USING (prediction_id)
                JOIN read_parquet('{users}', union_by_name = true) u USING (user_id)
                """
                if attrs
                else "CREATE TABLE labelled AS SELECT 1"
            )
            parts = [
                f"""SELECT date, model_id, '{name}' AS attribute, concat_ws(' x ', {", ".join(cols)}) AS grp,
                    count(*) AS n, avg(decision::int) AS selection_rate,
                    avg(decision::int) FILTER (WHERE label = 1) AS tpr,
                    avg(decision::int) FILTER (WHERE label = 0) AS fpr
                FROM labelled GROUP BY ALL"""
                for name, cols in attrs.items()
            ]
            if parts:
                conn.execute("CREATE TABLE bias AS " + " UNION ALL ".join(parts))
        with timed("drift"):
            conn.execute(_binned_shares("day", "cur_num", numeric))
            drift = [
                """SELECT r.model_id, r.model_version, r.feature,
                    sum((coalesce(c.share, 1e-4) - r.share) * ln(coalesce(c.share, 1e-4) / r.share)) AS psi
                FROM ref_num r LEFT JOIN cur_num c USING (model_id, model_version, feature, bin)
                GROUP BY ALL"""
            ]
            if categorical:
                conn.execute(_category_shares("day", "cur_cat", categorical))
                drift.append(
                    """SELECT r.model_id, r.model_version, r.feature,
                        sum((coalesce(c.share, 1e-4) - r.share) * ln(coalesce(c.share, 1e-4) / r.share)) AS psi
                    FROM ref_cat r LEFT JOIN cur_cat c USING (model_id, model_version, feature, value)
                    GROUP BY ALL"""
                )
            conn.execute("CREATE TABLE drift AS " + " UNION ALL ".join(drift))
        with timed("kpis"):
            conn.execute(
                f"""
                CREATE TABLE kpis AS
                WITH s AS (
                    SELECT * FROM read_parquet('{_files(raw, "sessions")}', union_by_name = true)
                    WHERE started_at >= ?::date AND started_at < ?::date + 1
                ),
                o AS (
                    SELECT * FROM read_parquet('{_files(raw, "orders")}', union_by_name = true)
                    WHERE ordered_at >= ?::date AND ordered_at < ?::date + 1
                )
                SELECT (SELECT count(*) FROM s) AS sessions, (SELECT count(DISTINCT user_id) FROM s) AS active_users,
                    (SELECT count_if(status = 'completed') FROM o) AS orders,
                    (SELECT sum(revenue) FILTER (WHERE status = 'completed') FROM o) AS revenue,
                    (SELECT count(DISTINCT session_id) FILTER (WHERE status = 'completed') FROM o)
                        / nullif((SELECT count(*) FROM s), 0) AS conversion_rate,
                    (SELECT avg((status = 'refunded')::int) FROM o) AS refund_rate
                """,
                [day, day, day, day],
            )
            # per experiment and variant, cumulative from each user's assignment through the day
            conn.execute(
                f"""
                CREATE TABLE experiment_kpis AS
                WITH a AS (
                    SELECT experiment_id, user_id, arg_min(variant, assigned_at) AS variant, min(assigned_at) AS at
                    FROM read_parquet('{_files(raw, "assignments")}', union_by_name = true)
                    WHERE assigned_at < ?::date + 1 GROUP BY ALL
                ),
                o AS (
                    SELECT user_id, ordered_at, revenue FROM read_parquet('{_files(raw, "orders")}', union_by_name = true)
                    WHERE status = 'completed' AND ordered_at < ?::date + 1
                ),
                per_user AS (
                    SELECT a.experiment_id, a.variant, a.user_id, count(o.user_id) AS orders,
                        coalesce(sum(o.revenue), 0) AS revenue
                    FROM a LEFT JOIN o ON o.user_id = a.user_id AND o.ordered_at >= a.at
                    GROUP BY ALL
                )
                SELECT experiment_id, variant, count(*) AS users, avg((orders > 0)::int) AS conversion,
                    avg(revenue) AS revenue_per_user, var_samp(revenue) AS revenue_variance
                FROM per_user GROUP BY ALL
                """,
                [day, day],
            )
        rows = conn.execute("SELECT count(*) FROM day").fetchone()[0]
        refreshed = conn.execute("SELECT count(*) FROM refreshed").fetchone()[0]
        labelled = conn.execute("SELECT count(*) FROM day_labels").fetchone()[0]
        outputs = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("health", "drift", "kpis")}
        tables = {}
        if spec.get("return_tables"):  # for the unit test that checks these numbers against sklearn/fairlearn
            tables = {t: conn.execute(f"SELECT * FROM {t}").df() for t in ("health", "bias", "drift", "kpis")}
    finally:
        conn.close()
    return {"rows": rows, "refreshed_rows": refreshed, "labelled": labelled, "output_rows": outputs, **tables}


def refresh_pairs(spec: dict) -> list[tuple[str, date]]:
    """The (model_id, day) pairs whose health and bias rows the pipeline's run recomputed (spec["refresh"])."""
    return [(model, date.fromisoformat(d)) for model, d in spec.get("refresh") or []]


def _binned_shares(source: str, target: str, numeric: list[str]) -> str:
    """Share of each (model, version, feature) in each reference decile bin (0..9)."""
    union = " UNION ALL ".join(
        f"SELECT model_id, model_version, '{c}' AS feature, {c}::DOUBLE AS x FROM {source} WHERE {c} IS NOT NULL"
        for c in numeric
    )
    return f"""
        CREATE TABLE {target} AS
        WITH v AS ({union})
        , counts AS (
            SELECT v.model_id, v.model_version, v.feature, len(list_filter(e.edges, q -> q < v.x)) AS bin, count(*) AS n
            FROM v JOIN ref_edges e USING (model_id, model_version, feature)
            GROUP BY 1, 2, 3, 4
        )
        SELECT *, n / sum(n) OVER (PARTITION BY model_id, model_version, feature) AS share FROM counts
    """


def _category_shares(source: str, target: str, categorical: list[str]) -> str:
    union = " UNION ALL ".join(
        f"SELECT model_id, model_version, '{c}' AS feature, coalesce({c}, '(null)') AS value FROM {source}"
        for c in categorical
    )
    return f"""
        CREATE TABLE {target} AS
        WITH v AS ({union})
        , counts AS (SELECT model_id, model_version, feature, value, count(*) AS n FROM v GROUP BY 1, 2, 3, 4)
        SELECT *, n / sum(n) OVER (PARTITION BY model_id, model_version, feature) AS share FROM counts
    """


# --------------------------------------------------------------------------------------------- peers


def peers(spec: dict) -> dict:
    import numpy as np
    import pandas as pd
    import pyarrow.dataset as ds
    from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import brier_score_loss, precision_score, recall_score

    raw, day = Path(spec["raw"]), date.fromisoformat(spec["day"])
    config = _config(spec["config"])

    pairs = refresh_pairs(spec)

    def day_rows(columns):
        """The refreshed (model, day) pairs' predictions (the day's without spec["refresh"]) joined to their
        first label: what each peer reads itself."""
        first = min((d for _, d in pairs), default=day)
        lo, hi = pd.Timestamp(first), pd.Timestamp(day + timedelta(days=1))
        flt = (ds.field("predicted_at") >= lo) & (ds.field("predicted_at") < hi)
        table = ds.dataset(raw / "predictions", format="parquet").to_table(
            columns=list(dict.fromkeys([*columns, "model_id", "predicted_at"])), filter=flt
        )
        preds = table.to_pandas()
        preds["date"] = preds["predicted_at"].dt.date
        wanted = pd.MultiIndex.from_tuples(pairs or [(m, day) for m in preds["model_id"].unique()])
        preds = preds[pd.MultiIndex.from_arrays([preds["model_id"], preds["date"]]).isin(wanted)]
        ids = preds["prediction_id"]
        labels = (
            ds.dataset(raw / "labels", format="parquet")
            .to_table(columns=["prediction_id", "label", "labeled_at"])
            .to_pandas()
        )
        labels = labels[labels["prediction_id"].isin(ids)].sort_values("labeled_at").drop_duplicates("prediction_id")
        frame = preds.merge(labels[["prediction_id", "label"]], on="prediction_id", how="left")
        threshold = frame["threshold"].fillna(0.5) if "threshold" in frame else 0.5
        frame["decision"] = (frame["score"] >= threshold).astype(int)
        return frame

    out = {}
    with timed("sklearn_health"):
        frame = day_rows(["prediction_id", "model_id", "model_version", "score", "threshold"])
        for _, g in frame.groupby(["date", "model_id", "model_version"]):
            lab = g.dropna(subset=["label"])
            y = lab["label"].astype(int)
            out.setdefault("health_groups", 0)
            out["health_groups"] += 1
            _ = (g["score"].mean(), g["score"].quantile([0.5, 0.9]), g["decision"].mean())
            if len(lab) and y.nunique() == 2:
                precision_score(y, lab["decision"], zero_division=np.nan)
                recall_score(y, lab["decision"], zero_division=np.nan)
                brier_score_loss(y, lab["score"])
                prob_true, prob_pred = calibration_curve(y, lab["score"], n_bins=10, strategy="uniform")
                _ = np.mean(np.abs(prob_true - prob_pred))
    del frame
    with timed("fairlearn_bias"):
        attrs = config.attribute_columns
        if attrs:
            frame = day_rows(["prediction_id", "model_id", "user_id", "score", "threshold"]).dropna(subset=["label"])
            users = ds.dataset(raw / "users", format="parquet").to_table(
                columns=["user_id", *config.protected_attributes]
            )
            frame = frame.merge(users.to_pandas(), on="user_id", how="inner")
            metrics = {"selection_rate": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate}
            groups = 0
            for _, g in frame.groupby(["date", "model_id"]):
                for cols in attrs.values():
                    mf = MetricFrame(
                        metrics=metrics,
                        y_true=g["label"].astype(int),
                        y_pred=g["decision"],
                        sensitive_features=g[cols].fillna("(null)"),
                    )
                    groups += len(mf.by_group)
            out["bias_groups"] = groups
            del frame
    return out


def run_task(task: str, spec: dict) -> dict:
    TIMERS.clear()
    result = sql_limit(spec) if task == "sql" else peers(spec)
    return {"seconds": dict(TIMERS), **result}
