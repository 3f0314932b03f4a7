"""Benchmark: one run's GX Data Docs build after a long history of daily runs, as the data_docs asset builds it.

Run: .venv/bin/python tests/benchmarks/bench_data_docs.py [--results 1000,5000,10000] [--runs 3]
Not a test (timings depend on the machine; pytest does not collect bench_*.py); tests/benchmarks/PERFORMANCE.md quotes its output.

Each daily run stores one validation result per suite level (26 on the demo world) and renders their pages;
the index is read and rebuilt on every run. A store of N results is made from one real run's results (the
raw_users suite validated on a small world) copied under earlier run times, each with its page, as N / 26
daily runs would leave it (a fresh copy for each size). Then, in a fresh process each time (as a run), one
more validation is rendered with ``GxSession.build_docs``: with GX's defaults (every result kept and listed in
the index, run times parsed by dateutil, the results store listed six times, each listed result read whole),
and as the project builds it (results beyond the latest IMPACT_LEDGER_GX_DOCS_INDEX_LIMIT archived with their
pages, gx_run_times' parser, the store listed once, a rendered result read as its outcome only): its first
build, which archives the older results a deployment upgraded from an earlier release would have, and the
builds after it, what every later daily run pays. Prints the minimum wall
time of ``--runs`` builds per size and setting.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN_TIME = "%Y%m%dT%H%M%S.%fZ"  # GX's folder name for a run's time
DEMO_RESULTS_PER_RUN = 26  # the demo world's suite levels: one stored result each per daily run

# one build in a fresh process: `python bench_data_docs.py --build SITE project|gx-defaults`
BUILD = """
import contextlib, json, sys, time
from pathlib import Path
from orchestration.lib import gx_run_times, quality_gate
site, setting, suite = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
if setting == "gx-defaults":
    gx_run_times.install = lambda: False  # GX's dateutil parse
    quality_gate.listed_once = lambda store, keys: contextlib.nullcontext()  # GX's six listings of the store
    quality_gate.archive_older_results = lambda store, site, keys, keep: keys  # every result kept in the store
    quality_gate.outcomes_only = lambda store, pending: contextlib.nullcontext()  # each listed result read whole
    quality_gate.KeyList = list  # the keys to render tested one by one
session = quality_gate.GxSession(site)
session.suite_names = {suite}  # a validated suite: its page and the index are rebuilt
start = time.perf_counter()
session.build_docs()
print(json.dumps({"build_s": time.perf_counter() - start}))
"""


def seed_store(site: Path) -> list[Path]:
    """One real run's validation results (raw_users on a small generated world) in the file-mode context."""
    import duckdb

    from orchestration.lib.quality_gate import GxSession, load_suite, run_suite
    from orchestration.lib.raw_loader import load_partition
    from orchestration.lib.synthetic_world import WorldConfig, generate_world

    world = site.parent / "world"
    truth = generate_world(world, WorldConfig(days=24, users=200, predictions_per_day=20), progress=None)
    day = date.fromisoformat(truth["end_date"])
    session = GxSession(site)
    with duckdb.connect() as conn:
        load_partition(conn, "users", world, day)
        assert run_suite(conn, load_suite("raw_users"), day, day, session=session).success
    session.build_docs()
    return sorted((site.parent / "gx_context").rglob("validations/*/*/*/*.json"))


def grow(site: Path, seeds: list[Path], total: int) -> int:
    """Copies of the seed results (and their pages) under earlier run times, up to ``total`` results.
    Returns the results the store then holds."""
    context = site.parent / "gx_context" / "gx" / "uncommitted" / "validations"
    have = len(list(context.rglob("*/*/*/*.json")))
    for i in range(have, total):
        seed = seeds[i % len(seeds)]
        earlier = datetime.strptime(seed.parent.name, RUN_TIME) - timedelta(minutes=i + 1)
        for source, root in ((seed, context), (site / "validations" / seed.relative_to(context), site / "validations")):
            source = source.with_suffix(".json" if root == context else ".html")
            target = source.parent.parent / earlier.strftime(RUN_TIME) / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    return max(have, total)


def build(site: Path, setting: str, suite: str) -> float:
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "false", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", BUILD, str(site), setting, suite],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])["build_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="1000,5000,10000", help="stored validation results (comma-separated)")
    parser.add_argument("--runs", type=int, default=3, help="builds per size and setting (the minimum is printed)")
    args = parser.parse_args()
    sizes = sorted(int(x) for x in args.results.split(","))
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="bench-docs-") as tmp:
        pristine = Path(tmp) / "seed" / "docs"
        seeds = seed_store(pristine / "gx")
        suite = seeds[0].parts[-4]
        from orchestration.lib.settings import gx_docs_index_limit

        print(
            f"index limit {gx_docs_index_limit()}; daily runs at the demo's {DEMO_RESULTS_PER_RUN} stored results a run"
        )
        header = ("stored results", "daily runs", "GX defaults (s)", "project: first (s)", "project: after (s)")
        print(" ".join(f"{h:>18}" for h in header))
        for size in sizes:
            docs = Path(tmp) / f"size_{size}" / "docs"
            row = [f"{size:,}", f"{size // DEMO_RESULTS_PER_RUN:,}"]
            for setting in ("gx-defaults", "project"):
                shutil.copytree(pristine, docs, dirs_exist_ok=False)
                relocated = [docs / "gx_context" / p.relative_to(pristine / "gx_context") for p in seeds]
                grow(docs / "gx", relocated, size)
                times = [build(docs / "gx", setting, suite) for _ in range(args.runs + (setting == "project"))]
                if setting == "project":  # the first build archives the results beyond the index
                    row.append(f"{times.pop(0):.2f}")
                row.append(f"{min(times):.2f}")
                shutil.rmtree(docs)
            print(" ".join(f"{v:>18}" for v in row), flush=True)


if __name__ == "__main__":
    main()
