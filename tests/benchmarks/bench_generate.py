"""Benchmark: one day of 1,000,000 predictions, generated and validated. Prints figures.

Run: .venv/bin/python tests/benchmarks/bench_generate.py [--rows N]
Not a test (timings depend on the machine); the README quotes its output.
"""

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from orchestration.lib import synthetic_world as sw
from orchestration.lib.quality_gate import load_suite, validate_frame


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    cfg = sw.WorldConfig(days=30, users=200_000, predictions_per_day=args.rows)
    rng = np.random.default_rng(0)
    t0 = np.datetime64(cfg.start_date.isoformat(), "s")
    users = sw._make_users(cfg, rng, t0)
    model = cfg.models[0]
    # everyone assigned to treatment before the day, so every prediction is eligible
    assignment = {m.model_id: {"assigned_at": np.full(cfg.users, t0), "treated": np.ones(cfg.users, bool)} for m in cfg.models}
    biased = users[cfg.biased_attribute].to_numpy() == cfg.biased_group

    start = time.perf_counter()
    preds, label, _, _ = sw._predictions_for_day(cfg, rng, model, 20, t0, users, assignment, biased)
    t_pred = time.perf_counter() - start
    start = time.perf_counter()
    labels = sw._labels_for(cfg, rng, preds, label)
    t_labels = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        pq.write_table(pa.Table.from_pandas(preds, preserve_index=False), Path(tmp) / "p.parquet")
        t_write = time.perf_counter() - start
    frame, suite = preds[["prediction_id", "score", "model_id"]], load_suite("raw_predictions")
    timings = []
    for _ in range(2):  # the first call also imports GX
        start = time.perf_counter()
        result = validate_frame(frame, suite, {"known_model_ids": [model.model_id]})
        timings.append(time.perf_counter() - start)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"rows: {len(preds):,} predictions, {len(labels):,} labels")
    print(f"generate predictions: {t_pred:.2f} s")
    print(f"generate labels:      {t_labels:.2f} s")
    print(f"write parquet:        {t_write:.2f} s")
    print(f"GX suite validation:  {timings[1]:.2f} s ({timings[0]:.2f} s on first call, GX import included; {'passed' if result.success else 'failed'})")
    print(f"peak RSS:             {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
