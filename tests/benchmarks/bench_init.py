"""Benchmark: `impact-ledger init`'s inference on a landing zone of 1,000,000 predictions. Prints figures.

Run: .venv/bin/python tests/benchmarks/bench_init.py [--rows N]
Not a test (timings depend on the machine): init profiles the zone in DuckDB, so its time should grow with the
rows' scan, not with rows x models. tests/unit/test_project_init.py checks what it infers.
"""

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from orchestration.lib.project_init import infer, render


def write_zone(source: Path, rows: int) -> None:
    """Two models' predictions over 30 days, half of them labelled 3 days later (Parquet, one file a table)."""
    rng = np.random.default_rng(1)
    predicted = np.datetime64("2025-01-01") + rng.integers(0, 30 * 86400, rows).astype("timedelta64[s]")
    tables = {
        "predictions": pd.DataFrame(
            {
                "prediction_id": np.arange(rows).astype(str),
                "model_id": rng.choice(["m1", "m2"], rows),
                "model_version": "v",
                "user_id": rng.integers(0, 50_000, rows).astype(str),
                "predicted_at": predicted,
                "score": rng.random(rows),
                "threshold": 0.5,
            }
        ),
        "labels": pd.DataFrame(
            {
                "prediction_id": np.arange(0, rows, 2).astype(str),
                "label": 1,
                "labeled_at": predicted[::2] + np.timedelta64(3, "D"),
                "label_source": "implicit",
            }
        ),
    }
    for name, frame in tables.items():
        (source / name).mkdir(parents=True)
        frame.to_parquet(source / name / f"{name}.parquet", index=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "zone"
        write_zone(source, args.rows)
        wall, cpu = time.perf_counter(), time.process_time()
        inference = infer(source)
        render(inference)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    found = sum(m.predictions for m in inference.models)
    horizons = sorted({m.label_horizon_days for m in inference.models})
    print(f"rows: {args.rows:,} predictions ({found:,} found over {len(inference.models)} models; horizons {horizons})")
    print(f"init (infer + render): {wall:.2f} s wall, {cpu:.2f} s CPU in this process")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
