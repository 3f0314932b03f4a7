"""Benchmark: the raw.predictions quality gate on one loaded day, at several sizes, as the asset check runs it.

Run: .venv/bin/python tests/benchmarks/bench_quality_gate.py [--rows 250000,1000000,4000000] [--history-days 1]
     [--memory-limit 1GB]
Not a test (timings depend on the machine; pytest does not collect bench_*.py); tests/benchmarks/PERFORMANCE.md quotes its output.

For each size, the day's predictions come from the synthetic world's generator and go through the real raw
loader into a temporary DuckDB file, next to users and the model's experiment (the referential checks read
them) and `--history-days` earlier days of the same volume (the volume check compares with their median).
The gate is then `run_suite` on that day of raw.predictions in a fresh process (as a Dagster check opens its
connection, with DuckDB's memory_limit), without and with GX Data Docs: wall, CPU and that process's peak RSS,
beside its RSS once GX and DuckDB are imported and connected (the floor). The rows are counted in DuckDB and
GX is given one row per day, so the peak stays near the floor as the day grows (DuckDB's buffer pool is
bounded by memory_limit); the former engine held the day as one pandas frame (its size is printed too).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from _one_day import DAY_INDEX, one_day_generator  # this folder is on sys.path when run as a script

from orchestration.lib.quality_gate import load_suite, rows_frame, run_suite
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


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM: reset by exec, unlike ru_maxrss, which keeps the parent's at fork)."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def gate_child(db: str, day: str, docs: str | None, memory_limit: str) -> None:
    """In a fresh process: one run_suite as the check runs it; prints JSON (wall, CPU, RSS floor and peak)."""
    import great_expectations  # noqa: F401  (imported before the floor is read, as in a Dagster process)

    from orchestration.lib.project_config import load_config

    config, suite, the_day = load_config(), load_suite("raw_predictions"), date.fromisoformat(day)
    with duckdb.connect(db, config={"memory_limit": memory_limit}) as conn:
        floor = peak_rss_mb()
        start, cpu = time.perf_counter(), time.process_time()
        result = run_suite(conn, suite, the_day, the_day, Path(docs) if docs else None, config)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = peak_rss_mb()
    print(
        json.dumps(
            {
                "rows": result.rows,
                "success": result.success,
                "summary": result.summary().splitlines()[0],
                "wall_s": wall,
                "cpu_s": cpu,
                "floor_mb": floor,
                "peak_mb": peak,
            }
        )
    )


def gate_in_a_process(db: Path, day, docs: Path | None, memory_limit: str) -> dict:
    cmd = [sys.executable, __file__, "--child", str(db), str(day), str(docs or ""), memory_limit]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def one_size(rows: int, history_days: int, memory_limit: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        source, db = Path(tmp) / "landing", Path(tmp) / "w.duckdb"
        start = time.perf_counter()
        day = landing_zone(source, rows, history_days)
        generated = time.perf_counter() - start
        with duckdb.connect(str(db), config={"memory_limit": memory_limit}) as conn:
            for table in ("users", "experiments", "experiment_variants"):
                load_partition(conn, table, source, day)
            for back in range(history_days, 0, -1):
                load_partition(conn, "predictions", source, day - timedelta(days=back))
            start = time.perf_counter()
            report = load_partition(conn, "predictions", source, day)
            loaded = time.perf_counter() - start
            # what the former engine held in pandas: the rows level as one frame
            frame_mb = rows_frame(conn, load_suite("raw_predictions"), day, day).memory_usage(deep=True).sum() / 2**20
        plain = gate_in_a_process(db, day, None, memory_limit)
        docs = gate_in_a_process(db, day, Path(tmp) / "docs" / "gx", memory_limit)
    return {
        "rows": rows,
        "read": report.rows_read,
        "generated_s": generated,
        "load_s": loaded,
        "former_frame_mb": frame_mb,
        "plain": plain,
        "docs": docs,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", default="250000,1000000,4000000", help="sizes of the day, comma-separated")
    parser.add_argument("--history-days", type=int, default=1, help="earlier days loaded for the volume check")
    parser.add_argument("--memory-limit", default="1GB", help="DuckDB's memory_limit in the gate's process")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)  # internal: the measured gate process
    args = parser.parse_args()
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    if args.child:
        gate_child(*args.child)
        return
    print(f"load before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; DuckDB memory_limit {args.memory_limit}")
    print("rows of the day | gate wall s (CPU s) | + Data Docs wall s | RSS floor MB | peak RSS MB | former frame MB")
    for rows in (int(r) for r in args.rows.split(",")):
        r = one_size(rows, args.history_days, args.memory_limit)
        p, d = r["plain"], r["docs"]
        print(
            f"{r['read']:>15,} | {p['wall_s']:6.2f} ({p['cpu_s']:.2f}) | {d['wall_s']:6.2f} | "
            f"{p['floor_mb']:8,.0f} | {max(p['peak_mb'], d['peak_mb']):8,.0f} | {r['former_frame_mb']:8,.0f}"
            f"   [{p['summary']}; load {r['load_s']:.0f} s]",
            flush=True,
        )
        assert p["success"] == d["success"] and p["rows"] == d["rows"] == r["read"]
    print(f"load after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
