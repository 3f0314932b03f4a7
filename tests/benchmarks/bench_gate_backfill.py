"""Benchmark: the quality gates of a 60-day backfill of the demo world, per-day verdicts vs the old range verdict.

Run: .venv/bin/python tests/benchmarks/bench_gate_backfill.py [--days 60] [--old-commit REV]
Not a test (timings depend on the machine; pytest does not collect bench_*.py); tests/benchmarks/PERFORMANCE.md quotes its output.

Generates the demo world (synthetic_world defaults: 60 days, 20,000 users, 2 x 2,000 predictions a day, dirty
rows), loads every table and day with the raw loader, then times every suite over the whole range, as a backfill's
checks run them (one GX validation per suite and level):
* now: COMPLETE results, per-day counts and verdicts (orchestration/lib/quality_gate.py);
* before: the module and suites of ``--old-commit`` (default: the commit before per-day verdicts), SUMMARY
  results and one verdict for the range.
"""

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import duckdb

from orchestration.lib.contract import CONTRACTS
from orchestration.lib.project_config import load_config
from orchestration.lib.quality_gate import load_suite, run_suite, suite_names
from orchestration.lib.raw_loader import load_partition
from orchestration.lib.settings import PROJECT_ROOT
from orchestration.lib.synthetic_world import WorldConfig, generate_world

OLD_COMMIT = "a338d83"  # main before the per-day gates


def old_gate(commit: str, into: Path):
    """The quality_gate module and suites of ``commit``, importable from ``into``."""

    def show(path: str) -> str:
        return subprocess.run(
            ["git", "show", f"{commit}:{path}"], cwd=PROJECT_ROOT, check=True, capture_output=True, text=True
        ).stdout

    (into / "suites").mkdir(parents=True)
    for name in suite_names():
        (into / "suites" / f"{name}.yml").write_text(show(f"expectations/suites/{name}.yml"))
    (into / "old_quality_gate.py").write_text(show("orchestration/lib/quality_gate.py"))
    spec = importlib.util.spec_from_file_location("old_quality_gate", into / "old_quality_gate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_quality_gate"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--old-commit", default=OLD_COMMIT)
    args = parser.parse_args()
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("IMPACT_LEDGER_CONFIG", str(PROJECT_ROOT / "expectations" / "demo.yml"))
    config = load_config()
    with tempfile.TemporaryDirectory() as tmp:
        source, db = Path(tmp) / "world", Path(tmp) / "w.duckdb"
        start = time.perf_counter()
        truth = generate_world(source, WorldConfig(days=args.days), progress=None)
        print(f"generated {args.days} days in {time.perf_counter() - start:.0f} s")
        first = WorldConfig(days=args.days).start_date
        last = first + timedelta(days=args.days - 1)
        assert str(last) == truth["end_date"]
        start = time.perf_counter()
        with duckdb.connect(str(db)) as conn:
            for table, contract in CONTRACTS.items():
                for day in (
                    [last] if contract.time_column is None else [first + timedelta(days=i) for i in range(args.days)]
                ):
                    load_partition(conn, table, source, day)
            rows = {t: conn.execute(f"SELECT count(*) FROM raw.{t}").fetchone()[0] for t in CONTRACTS}
        print(f"loaded in {time.perf_counter() - start:.0f} s: {rows}")
        old = old_gate(args.old_commit, Path(tmp) / "old")

        with duckdb.connect(str(db)) as conn:
            run_suite(conn, load_suite("raw_users"), last, last, config=config)  # imports GX once
            timings = {}
            for name in suite_names():
                t0 = time.perf_counter()
                new = run_suite(conn, load_suite(name), first, last, config=config)
                t1 = time.perf_counter()
                before = old.run_suite(conn, old.load_suite(name, Path(tmp) / "old" / "suites"), first, last)
                t2 = time.perf_counter()
                timings[name] = (t1 - t0, t2 - t1)
                print(
                    f"{name:28s} now {t1 - t0:6.2f} s ({len(new.failed_days)} of {len(new.days)} days failed)   "
                    f"before {t2 - t1:6.2f} s (range {'passed' if before.success else 'FAILED'})"
                )
    now, before = sum(t[0] for t in timings.values()), sum(t[1] for t in timings.values())
    print(
        f"every suite over {args.days} days: now {now:.1f} s, before {before:.1f} s "
        f"(overhead {now - before:+.1f} s, {100 * (now / before - 1):+.0f}%); "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    sys.exit(main())
