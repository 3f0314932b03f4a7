"""Independent pandas/numpy computations from the raw Parquet files, for oracle tests."""

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

PSI_FLOOR = 1e-4


def read(source: Path, table: str) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in sorted((source / table).glob("*.parquet"))], ignore_index=True)


def end_of(day: date) -> pd.Timestamp:
    return pd.Timestamp(day + timedelta(days=1))


def clean_predictions(source: Path) -> pd.DataFrame:
    """Predictions as the contract loads them (first of a duplicated id, scores in [0, 1])."""
    p = read(source, "predictions").drop_duplicates("prediction_id", keep="first")
    p = p[(p["score"] >= 0) & (p["score"] <= 1)].copy()
    p["date"] = p["predicted_at"].dt.normalize()
    p["decision"] = p["score"] >= p["threshold"]
    return p


def resolved_labels(source: Path, known_by: date) -> pd.DataFrame:
    """human_review overrides implicit; latest wins within a source; only labels known by the end of `known_by`."""
    labels = read(source, "labels")
    labels = labels[labels["labeled_at"] < end_of(known_by)].copy()
    labels["priority"] = (labels["label_source"] == "human_review").astype(int)
    first = labels.groupby("prediction_id")["labeled_at"].min().rename("first_labeled_at")
    best = labels.sort_values(["priority", "labeled_at"]).groupby("prediction_id").tail(1).set_index("prediction_id")
    return best[["label", "label_source"]].join(first)


def ece(labels: np.ndarray, scores: np.ndarray) -> float:
    bins = np.minimum(np.floor(scores * 10).astype(int), 9)
    total = 0.0
    for b in np.unique(bins):
        m = bins == b
        total += m.sum() * abs(labels[m].mean() - scores[m].mean())
    return total / len(scores)


def hosmer_lemeshow(labels: np.ndarray, scores: np.ndarray) -> tuple[float, int]:
    """(chi-square, bins): sum over the ECE bins of (observed - expected positives)^2 / (expected * (1 - expected
    / n)), the bins whose expected share is strictly between 0 and 1 (no such bin: NaN)."""
    bins = np.minimum(np.floor(scores * 10).astype(int), 9)
    chi2, used = 0.0, 0
    for b in np.unique(bins):
        m = bins == b
        n, observed, expected = m.sum(), labels[m].sum(), scores[m].sum()
        if 1e-12 < (expected / n) * (1 - expected / n):
            chi2 += (observed - expected) ** 2 / (expected * (1 - expected / n))
            used += 1
    return (chi2 if used else np.nan), used


def psi_numeric(reference: np.ndarray, current: np.ndarray) -> float:
    reference, current = reference[~np.isnan(reference)], current[~np.isnan(current)]
    edges = np.quantile(reference, np.arange(1, 10) / 10, method="linear")
    ref_counts = np.bincount(np.searchsorted(edges, reference, side="left"), minlength=10)
    cur_counts = np.bincount(np.searchsorted(edges, current, side="left"), minlength=10)
    return _psi(ref_counts, cur_counts)


def psi_categorical(reference: pd.Series, current: pd.Series) -> float:
    reference, current = reference.dropna(), current.dropna()
    categories = sorted(set(reference) | set(current))
    return _psi(
        reference.value_counts().reindex(categories, fill_value=0).to_numpy(),
        current.value_counts().reindex(categories, fill_value=0).to_numpy(),
    )


def _psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    ref = np.where(ref_counts == 0, PSI_FLOOR, ref_counts / ref_counts.sum())
    cur = np.where(cur_counts == 0, PSI_FLOOR, cur_counts / cur_counts.sum())
    return float(np.sum((cur - ref) * np.log(cur / ref)))


# ---------------------------------------------------------------- business KPIs


def users(source: Path) -> pd.DataFrame:
    """The users snapshot as the contract loads it (first row of a duplicated id by signup)."""
    return read(source, "users").sort_values("signup_at", kind="stable").drop_duplicates("user_id")


def clean_orders(source: Path) -> pd.DataFrame:
    """Orders as the contract loads them: first of a duplicated id, valid revenue and status."""
    o = read(source, "orders").sort_values("ordered_at", kind="stable").drop_duplicates("order_id")
    return o[(o["revenue"] >= 0) & o["status"].isin(["completed", "cancelled", "refunded"])].copy()


def kpis(source: Path, known_by: date, dimensions: tuple[str, ...] = ()) -> pd.DataFrame:
    """Every KPI per day (and user `dimensions`), by the definitions of issue 4, from the raw files.

    A session converts if a completed order known by the end of `known_by` names it.
    """
    sessions = read(source, "sessions").drop_duplicates("session_id")
    orders = clean_orders(source)
    sessions["date"], orders["date"] = sessions["started_at"].dt.normalize(), orders["ordered_at"].dt.normalize()
    if dimensions:
        attrs = users(source)[["user_id", *dimensions]]
        sessions = sessions.merge(attrs, on="user_id", how="left").fillna({d: "unknown" for d in dimensions})
        orders = orders.merge(attrs, on="user_id", how="left").fillna({d: "unknown" for d in dimensions})
    completed = orders["status"] == "completed"
    converting = set(orders.loc[completed & (orders["ordered_at"] < end_of(known_by)), "session_id"].dropna())
    keys = ["date", *dimensions]
    by_sessions = (
        sessions.assign(converting=sessions["session_id"].isin(converting))
        .groupby(keys)
        .agg(
            active_users=("user_id", "nunique"),
            sessions=("session_id", "size"),
            converting_sessions=("converting", "sum"),
        )
    )
    by_orders = (
        orders.assign(
            completed=completed,
            refunded=orders["status"] == "refunded",
            completed_revenue=orders["revenue"].where(completed, 0.0),
        )
        .groupby(keys)
        .agg(orders=("completed", "sum"), refunded_orders=("refunded", "sum"), revenue=("completed_revenue", "sum"))
    )
    out = by_sessions.join(by_orders, how="outer").fillna(0)
    counts = ["active_users", "sessions", "converting_sessions", "orders", "refunded_orders"]
    out[counts] = out[counts].astype("int64")
    nan_if_zero = lambda s: s.where(s != 0)  # noqa: E731 (a ratio over nothing is undefined, not 0)
    out["conversion_rate"] = out["converting_sessions"] / nan_if_zero(out["sessions"])
    out["revenue_per_active_user"] = out["revenue"] / nan_if_zero(out["active_users"])
    out["average_order_value"] = out["revenue"] / nan_if_zero(out["orders"])
    out["refund_rate"] = out["refunded_orders"] / nan_if_zero(out["orders"] + out["refunded_orders"])
    return out.reset_index()


# -------------------------------------------------------------------- retention

COHORT_KEYS = ["cohort_type", "experiment_id", "variant", "cohort_date", "horizon_days"]


def cohort_members(source: Path) -> pd.DataFrame:
    """Signup cohorts (every user) and assignment cohorts (first assignment per experiment and user)."""
    signup = users(source).assign(
        cohort_type="signup", experiment_id=None, variant=None, cohort_date=lambda u: u["signup_at"].dt.normalize()
    )
    variants = read(source, "experiment_variants")[["experiment_id", "variant"]]
    assignments = (
        read(source, "assignments")
        .merge(variants, on=["experiment_id", "variant"])
        .sort_values("assigned_at", kind="stable")
        .drop_duplicates(["experiment_id", "user_id"])
    )
    assignment = assignments.assign(cohort_type="assignment", cohort_date=assignments["assigned_at"].dt.normalize())
    cols = ["cohort_type", "experiment_id", "variant", "user_id", "cohort_date"]
    return pd.concat([signup[cols], assignment[cols]], ignore_index=True)


def retention(source: Path, first: date, last: date, horizons: list[int]) -> pd.DataFrame:
    """Dk retention of every cohort whose cohort_date + k falls in [first, last]: the share active on that day."""
    sessions = read(source, "sessions")
    active = sessions.assign(matured_date=sessions["started_at"].dt.normalize())[["user_id", "matured_date"]]
    active = active.drop_duplicates().assign(retained=1)
    members = cohort_members(source)
    frames = []
    for h in horizons:
        m = members.assign(horizon_days=h, matured_date=members["cohort_date"] + pd.Timedelta(days=h))
        m = m[(m["matured_date"] >= pd.Timestamp(first)) & (m["matured_date"] <= pd.Timestamp(last))]
        frames.append(m.merge(active, on=["user_id", "matured_date"], how="left").fillna({"retained": 0}))
    out = (
        pd.concat(frames)
        .groupby([*COHORT_KEYS, "matured_date"], dropna=False)
        .agg(cohort_users=("user_id", "size"), retained_users=("retained", "sum"))
        .reset_index()
    )
    out["retained_users"] = out["retained_users"].astype("int64")
    out["retention_rate"] = out["retained_users"] / out["cohort_users"]
    return out


# --------------------------------------------------------------- model health


def human_labels(source: Path, known_by: date) -> pd.Series:
    """The latest human-review label per prediction known by the end of `known_by`."""
    labels = read(source, "labels")
    labels = labels[(labels["label_source"] == "human_review") & (labels["labeled_at"] < end_of(known_by))]
    return labels.sort_values("labeled_at").groupby("prediction_id")["label"].last().rename("human_label")


def feedback(source: Path, known_by: date) -> pd.DataFrame:
    """Feedback events (first of a duplicated id) per prediction known by the end of `known_by`: events and 'up's."""
    f = read(source, "feedback").drop_duplicates("feedback_id")
    f = f[(f["created_at"] < end_of(known_by)) & f["value"].isin(["up", "down"])]
    return (
        f.assign(up=f["value"] == "up")
        .groupby("prediction_id")
        .agg(feedback_events=("up", "size"), up_events=("up", "sum"))
    )


CBPE_PRIOR = 10  # int_score_calibration's pseudo-labels


def score_calibration(source: Path, predictions: pd.DataFrame, reference_days: int, label_lookback_days: int) -> dict:
    """Histogram-binning calibration per (model_id, model_version): score bin -> mean label, shrunk to the mean score.

    Learnt on the first `reference_days` days of each version, from the labels known
    `label_lookback_days` after its reference window ended (the documented CBPE calibration).
    Returns {(model, version): (reference_end, {bin: probability})}.
    """
    out = {}
    for (model, version), preds in predictions.groupby(["model_id", "model_version"]):
        reference_end = preds["date"].min() + pd.Timedelta(days=reference_days - 1)
        reference = preds[preds["date"] <= reference_end]
        known = resolved_labels(source, (reference_end + pd.Timedelta(days=label_lookback_days)).date())
        labelled = reference.join(known, on="prediction_id", how="inner")
        grouped = labelled.groupby(score_bin(labelled["score"]))
        n, positives, mean_score = grouped["label"].count(), grouped["label"].sum(), grouped["score"].mean()
        # the observed rate under a beta prior of CBPE_PRIOR pseudo-labels at the bin's mean score
        bins = (positives + CBPE_PRIOR * mean_score) / (n + CBPE_PRIOR)
        out[(model, version)] = (reference_end, bins.to_dict())
    return out


def score_bin(scores: pd.Series) -> np.ndarray:
    return np.minimum(np.floor(scores.to_numpy() * 10).astype(int), 9)


def cbpe(scores: pd.Series, decisions: pd.Series, calibration: dict | None) -> tuple[float, float, bool]:
    """Confidence-based performance estimation (NannyML's CBPE) of precision and recall.

    With calibrated probabilities p: expected TP = sum of p over positive decisions,
    FP = sum of 1 - p over them, FN = sum of p over negative decisions. Without a
    calibration (or for a bin it has not seen) the score itself is the probability.
    Returns (estimated precision, estimated recall, every prediction calibrated).
    """
    bins = score_bin(scores)
    learnt = np.array([calibration is not None and b in calibration for b in bins])
    p = np.where(learnt, [calibration.get(b, np.nan) if calibration else np.nan for b in bins], scores.to_numpy())
    d = decisions.to_numpy(bool)
    tp, fp, fn = p[d].sum(), (1 - p[d]).sum(), p[~d].sum()
    return tp / (tp + fp), tp / (tp + fn), bool(learnt.all())


def label_metrics(day: pd.DataFrame) -> dict:
    """Label-based metrics of one day's predictions (`label`, `human_label` columns: NaN when unknown)."""
    import sklearn
    from sklearn.metrics import precision_recall_fscore_support

    out = {
        "predictions": len(day),
        "labelled": int(day["label"].notna().sum()),
        "label_coverage": day["label"].notna().mean(),
        "human_labelled": int(day["human_label"].notna().sum()),
    }
    for prefix, column, names in (
        ("", "label", ("precision", "recall", "f1")),
        ("human_", "human_label", ("precision", "recall", None)),
    ):
        known = day[day[column].notna()]
        with sklearn.config_context(skip_parameter_validation=True):  # the checks dominate on small days
            scores = (
                (np.nan,) * 3
                if known.empty
                else precision_recall_fscore_support(
                    known[column].astype(int), known["decision"].astype(int), average="binary", zero_division=np.nan
                )
            )
        out.update({prefix + name: value for name, value in zip(names, scores) if name})
    return out


def known_predictions(source: Path, known_by: date) -> pd.DataFrame:
    """Clean predictions with what is known of them by the end of `known_by`: resolved label
    (NaN if none), first label time, human-review label and feedback counts."""
    return (
        clean_predictions(source)
        .join(resolved_labels(source, known_by), on="prediction_id")
        .join(human_labels(source, known_by), on="prediction_id")
        .join(feedback(source, known_by), on="prediction_id")
    )
