"""Benchmark: the raw.predictions quality gate on one day of 1,000,000 predictions, run as the asset check runs it.

Run: .venv/bin/python tests/benchmarks/bench_quality_gate.py [--rows N] [--history-days 7]
Not a test (timings depend on the machine; pytest does not collect bench_*.py); the README quotes its output.

The day's predictions come from the synthetic world's generator and go through
the real raw loader into a temporary DuckDB file, next to users and the
model's experiment (the referential checks read them) and `--history-days`
earlier days of the same volume (the volume check compares with their median).
The gate is then `run_suite` on that day of raw.predictions, with and without
GX Data Docs, on a fresh connection as the Dagster check opens one.
"""

import argparse
import os
import resource
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import pandas as pd

from _one_day import DAY_INDEX, one_day_generator  # this folder is on sys.path when run as a script

from orchestration.lib.quality_gate import days_frame, load_suite, resolve_parameters, rows_frame, run_suite
from orchestration.lib.raw_loader import load_partition


def landing_zone(source: Path, rows: int, history_days: int):
    """Users, the model's experiment and `history_days` + 1 days of `rows` predictions, as Parquet. Returns the day."""
    cfg, _, users, predict = one_day_generator(rows)
    model = cfg.models[0]
    preds = predict()[0]
    day = cfg.day_date(DAY_INDEX)

    def write(table: str, frame: pd.DataFrame, name: str) -> None:
        (source / table).mkdir(parents=True, exist_ok=True)
        frame.to_parquet(source / table / f"{name}.parquet", index=False)

    write("users", users, "users")
    write(
        "experiments",
        pd.DataFrame(
            {
                "experiment_id": [model.experiment_id],
                "model_id": [model.model_id],
                "control_variant": ["holdout"],
                "start_date": [cfg.day_date(model.start_day)],
                "end_date": [None],
            }
        ),
        "experiments",
    )
    write(
        "experiment_variants",
        pd.DataFrame(
            {
                "experiment_id": [model.experiment_id] * 2,
                "variant": ["holdout", "treatment"],
                "expected_share": [cfg.holdout_share, 1 - cfg.holdout_share],
            }
        ),
        "experiment_variants",
    )
    for back in range(history_days, -1, -1):
        shifted = (
            preds
            if back == 0
            else preds.assign(
                prediction_id=f"h{back}-" + preds["prediction_id"],
                predicted_at=preds["predicted_at"] - pd.Timedelta(days=back),
            )
        )
        write("predictions", shifted, f"predictions_{day - timedelta(days=back)}")
    return day


CPU = {}  # CPU seconds (all threads) of each timed call, by function name: wall time depends on the machine's load


def timed(fn, *args, **kwargs):
    start, cpu = time.perf_counter(), time.process_time()
    value = fn(*args, **kwargs)
    CPU[fn.__name__ + ("+docs" if kwargs.get("docs_dir") else "")] = time.process_time() - cpu
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--history-days", type=int, default=7, help="earlier days loaded for the volume check")
    args = parser.parse_args()
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    suite = load_suite("raw_predictions")
    with tempfile.TemporaryDirectory() as tmp:
        source, db = Path(tmp) / "landing", Path(tmp) / "w.duckdb"
        day, t_generate = timed(landing_zone, source, args.rows, args.history_days)
        with duckdb.connect(str(db)) as conn:
            for table in ("users", "experiments", "experiment_variants"):
                load_partition(conn, table, source, day)
            for back in range(args.history_days, 0, -1):
                load_partition(conn, "predictions", source, day - timedelta(days=back))
            report, t_load = timed(load_partition, conn, "predictions", source, day)

        with duckdb.connect(str(db)) as conn:
            rows, t_rows = timed(rows_frame, conn, suite, day, day)
            _, t_days = timed(days_frame, conn, suite, day, day)
            _, t_params = timed(resolve_parameters, conn, suite, day, day)
            del rows
            first, t_first = timed(run_suite, conn, suite, day, day)  # imports GX (once per process)
            plain, t_plain = timed(run_suite, conn, suite, day, day)
            docs, t_docs = timed(run_suite, conn, suite, day, day, docs_dir=Path(tmp) / "docs" / "gx")
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    n = plain.rows
    print(
        f"day {day}: {report.rows_read:,} predictions read ({report.rows_loaded:,} loaded, "
        f"{report.rows_quarantined:,} quarantined), {args.history_days} earlier days of history"
    )
    print(
        f"generate + write Parquet ({args.history_days + 1} days): {t_generate:.1f} s; raw load of the day: {t_load:.1f} s"
    )
    print(f"gate result: {plain.summary().splitlines()[0]}")
    print(
        f"  of which SQL: rows frame {t_rows:.2f} s (CPU {CPU['rows_frame']:.2f} s), days frame {t_days:.2f} s, "
        f"parameters {t_params:.2f} s"
    )
    print(f"run_suite, first call (GX import included): {t_first:.2f} s")
    print(f"run_suite, no Data Docs:  {t_plain:.2f} s  ({n / t_plain:,.0f} rows/s), CPU {CPU['run_suite']:.2f} s")
    print(f"run_suite, with Data Docs: {t_docs:.2f} s  ({n / t_docs:,.0f} rows/s), CPU {CPU['run_suite+docs']:.2f} s")
    print(f"peak RSS: {peak_mb:,.0f} MB; load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    assert first.success == plain.success == docs.success


if __name__ == "__main__":
    main()
