"""Evidently's data drift on one day of predictions: the drift peer of `make bench` (bench_suite.py).

Runs in the side environment data/bench/peers-venv (Evidently cannot share the project's pins), so it
imports only pandas, pyarrow and Evidently, never the project. Input: one JSON argument
{"predictions": dir, "day": "YYYY-MM-DD", "references": [{"model_id", "model_version", "start", "end"}],
"features": [...]}. Output: one JSON line on stdout, {"seconds": ..., "read_seconds": ..., "columns": n, ...}.

Per model version: the day's rows against a random sample of its reference window's rows of the same size
(Evidently has no stored profile: a reference is a frame), DataDriftPreset over every feature and the score.
"""

import json
import sys
import time
from datetime import date, timedelta

import pandas as pd
import pyarrow.dataset as ds


def read_window(path: str, start: date, end: date, columns: list[str]) -> pd.DataFrame:
    """Rows predicted from ``start`` through ``end`` (inclusive), pushed down to the Parquet scan."""
    lo = pd.Timestamp(start)
    hi = pd.Timestamp(end + timedelta(days=1))
    dataset = ds.dataset(path, format="parquet")
    filt = (ds.field("predicted_at") >= lo) & (ds.field("predicted_at") < hi)
    return dataset.to_table(columns=columns, filter=filt).to_pandas()


def main() -> None:
    spec = json.loads(sys.argv[1])
    from evidently import Report
    from evidently.presets import DataDriftPreset

    day = date.fromisoformat(spec["day"])
    columns = ["model_id", "model_version", "score", *spec["features"]]
    started = time.perf_counter()
    current = read_window(spec["predictions"], day, day, columns)
    read_seconds = time.perf_counter() - started
    refs = {}
    for ref in spec["references"]:  # not timed: a stored reference would be read once
        frame = read_window(
            spec["predictions"], date.fromisoformat(ref["start"]), date.fromisoformat(ref["end"]), columns
        )
        refs[(ref["model_id"], ref["model_version"])] = frame[
            (frame.model_id == ref["model_id"]) & (frame.model_version == ref["model_version"])
        ]
    started = time.perf_counter()
    rows, drifted = 0, 0
    for (model, version), cur in current.groupby(["model_id", "model_version"]):
        reference = refs.get((model, version))
        if reference is None or reference.empty:
            continue
        reference = reference.sample(n=min(len(cur), len(reference)), random_state=0)
        cols = ["score", *spec["features"]]
        snapshot = Report([DataDriftPreset()]).run(current_data=cur[cols], reference_data=reference[cols])
        result = snapshot.dict()
        drifted += len(result.get("metrics", []))
        rows += len(cur)
    compute = time.perf_counter() - started
    print(
        json.dumps({"seconds": read_seconds + compute, "read_seconds": read_seconds, "rows": rows, "metrics": drifted})
    )


if __name__ == "__main__":
    main()
