"""Small landing zones of predictions for the drift tests: a model's day of scored rows, and the zone loaded into a
warehouse the way a run of its days loads it (users once, then predictions and empty labels, each a range of days)."""

from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from orchestration.lib import raw_loader


def prediction_day(model_id: str, i: int, day: date, n: int, rng: np.random.Generator, shift: float = 0.0):
    """``n`` predictions of ``model_id`` on its ``i``-th ``day``: uniform scores, ``feature_x`` ~ N(shift, 1), users
    u0..u(n-1), five minutes apart from 08:00 UTC."""
    at = [datetime(day.year, day.month, day.day, 8) + timedelta(minutes=5 * k) for k in range(n)]
    return pd.DataFrame(
        {
            "prediction_id": [f"{model_id}-{i}-{k}" for k in range(n)],
            "model_id": model_id,
            "model_version": "v1",
            "user_id": [f"u{k}" for k in range(n)],
            "predicted_at": pd.to_datetime(at, utc=True),
            "score": rng.uniform(0, 1, n),
            "threshold": 0.5,
            "feature_x": rng.normal(shift, 1, n),
        }
    )


def load_days(db: Path, source: Path, days: list[date]) -> None:
    """The landing zone's users (as of the last day), then the days' predictions and labels (labels: absent from the
    source, loaded empty), into the warehouse ``db``."""
    with duckdb.connect(str(db)) as conn:
        raw_loader.load_partition(conn, "users", source, days[-1])
        for table in ("predictions", "labels"):
            raw_loader.load_days(conn, table, source, days)
