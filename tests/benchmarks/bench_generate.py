"""Benchmark: generating one day of 1,000,000 predictions and their labels. Prints figures.

Run: .venv/bin/python tests/benchmarks/bench_generate.py [--rows N]
Not a test (timings depend on the machine); tests/benchmarks/PERFORMANCE.md quotes its output.
Validating such a day with the quality gate is measured by bench_quality_gate.py
(the real loader and run_suite, as the asset check runs them).
"""

import argparse
import resource
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from _one_day import one_day_generator  # this folder is on sys.path when run as a script

from orchestration.lib import synthetic_world as sw


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    cfg, rng, _, predict = one_day_generator(args.rows)

    start = time.perf_counter()
    preds, label, _, _ = predict()
    t_pred = time.perf_counter() - start
    start = time.perf_counter()
    labels = sw._labels_for(cfg, rng, preds, label)
    t_labels = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        pq.write_table(pa.Table.from_pandas(preds, preserve_index=False), Path(tmp) / "p.parquet")
        t_write = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"rows: {len(preds):,} predictions, {len(labels):,} labels")
    print(f"generate predictions: {t_pred:.2f} s")
    print(f"generate labels:      {t_labels:.2f} s")
    print(f"write parquet:        {t_write:.2f} s")
    print(f"peak RSS:             {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
