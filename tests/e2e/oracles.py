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


def psi_numeric(reference: np.ndarray, current: np.ndarray) -> float:
    reference, current = reference[~np.isnan(reference)], current[~np.isnan(current)]
    edges = np.quantile(reference, np.arange(1, 10) / 10, method="linear")
    ref_counts = np.bincount(np.searchsorted(edges, reference, side="left"), minlength=10)
    cur_counts = np.bincount(np.searchsorted(edges, current, side="left"), minlength=10)
    return _psi(ref_counts, cur_counts)


def psi_categorical(reference: pd.Series, current: pd.Series) -> float:
    reference, current = reference.dropna(), current.dropna()
    categories = sorted(set(reference) | set(current))
    return _psi(reference.value_counts().reindex(categories, fill_value=0).to_numpy(),
                current.value_counts().reindex(categories, fill_value=0).to_numpy())


def _psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    ref = np.where(ref_counts == 0, PSI_FLOOR, ref_counts / ref_counts.sum())
    cur = np.where(cur_counts == 0, PSI_FLOOR, cur_counts / cur_counts.sum())
    return float(np.sum((cur - ref) * np.log(cur / ref)))
