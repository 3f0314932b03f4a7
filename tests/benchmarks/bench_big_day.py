"""Benchmark: one day of ~20M predictions (a ~2.5 GB CSV) through the whole day's pipeline within DuckDB's memory_limit.

Run: .venv/bin/python tests/benchmarks/bench_big_day.py [--rows 20000000] [--memory-limit 3GB] [--out DIR]
Not a test (it takes many minutes and the figures depend on the machine and its load); tests/benchmarks/PERFORMANCE.md quotes it.

* a small synthetic world (`impact-ledger generate` up to timed_day_index: 25 days with the demo's project
  file; the demo's models at 2,000 predictions per model and day) whose last day's predictions are replaced by one CSV of ``--rows`` rows, written by DuckDB in a
  stream (the day's own rows, then copies with new prediction ids, the same users, model versions and times,
  scores and features rounded so a row is ~125 bytes): the labels of the day still find their predictions;
  a world already written with the same rows and seed (``raw/big_day.json``) is reused;
* it is materialised up to its second-to-last day in one run (measured too, not the point);
* the project file is the demo's with ``gates.volume.min_count`` above any trailing median: 20M rows after days
  of 4,000 would fail the volume gate and be held back, and the point is to push them through dbt;
* that day is then one `impact-ledger materialize` process (loader, every gate, dbt, attribution, publish),
  with IMPACT_LEDGER_MEMORY_LIMIT = ``--memory-limit`` (the loader's, the checks' and dbt's DuckDB), on
  ``--engine`` (duckdb, or spark: dbt on a local Spark session, its tables under ``out/spark``).

Measured for that process and every process it starts: wall, CPU (user + system of the process tree, from
getrusage of the reaped children, orphans such as pyspark's JVM adopted and reaped too), peak RSS (largest sum of RSS over the tree, sampled every 0.2 s with psutil;
shared pages count once per process, so it overestimates) and the largest single process (ru_maxrss); per
step, the CLI's progress lines. `measure(cmd, env)` and `big_day(...)` are importable (make bench may reuse them).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import yaml
from _dagster_home import scenario_dagster_home
from _process_tree import PeakTreeRss, become_subreaper, reap_adopted, uptime

ROOT = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).parent / "impact-ledger")
GiB = 1024**3
STEP_DONE = re.compile(r"\]\s.*?\s(?P<step>\S.*?) (?:done|FAILED|skipped) in (?P<secs>[\d.]+)s")


def say(text: str) -> None:
    print(f"[big day {datetime.now():%H:%M:%S}] {text}", flush=True)


def measure(cmd: list[str], env: dict, echo: bool = True) -> dict:
    """Run ``cmd`` to its end: wall, CPU and peak RSS of its process tree, its steps (name, seconds).

    The tree includes the orphans it leaves (pyspark's JVM): this process adopts them (_process_tree)."""
    adopted = become_subreaper()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    with PeakTreeRss(proc.pid, adopted=adopted) as rss:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if echo:
                print(f"    {line.rstrip()}", flush=True)
        proc.wait()
        wall = time.monotonic() - started
        if adopted:
            reap_adopted()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "returncode": proc.returncode,
        "wall_s": round(wall, 1),
        "cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 1),
        "peak_rss_gib": round(rss.peak / GiB, 2),
        "largest_process_gib": round(after.ru_maxrss * 1024 / GiB, 2),  # KiB on Linux; max over reaped children
        "steps": [
            (re.sub(r"^\.\. \S+ ", "", m["step"]), float(m["secs"])) for line in lines if (m := STEP_DONE.search(line))
        ],
        "tail": lines[-5:],
    }


def write_big_day(source: Path, day: date, rows: int, memory_limit: str) -> tuple[Path, int]:
    """Replace ``day``'s predictions with one CSV of ``rows`` rows (streamed by DuckDB). Returns (file, bytes)."""
    import duckdb

    folder = source / "predictions"
    original = next(folder.glob(f"predictions_{day}.*"))
    target = folder / f"predictions_{day}.csv"
    with duckdb.connect(config={"memory_limit": memory_limit}) as conn:
        conn.execute(f"CREATE TABLE day AS SELECT * FROM '{original}'")
        n = conn.execute("SELECT count(*) FROM day").fetchone()[0]
        copies = -(-rows // n)
        rounded = {
            name: f'round("{name}", 4) AS "{name}"'
            for name, kind in conn.execute("SELECT column_name, column_type FROM (DESCRIBE day)").fetchall()
            if kind == "DOUBLE"
        }
        replace = ", ".join(rounded.values())
        copy_id = "CASE WHEN k = 0 THEN prediction_id ELSE prediction_id || '-c' || k END AS prediction_id"
        conn.execute(
            f"""COPY (
                SELECT * REPLACE ({copy_id}{", " + replace if replace else ""})
                FROM day, range({copies}) r(k) LIMIT {rows}
            ) TO '{target}' (HEADER, DELIMITER ',')"""
        )
    if original != target:
        original.unlink()
    return target, target.stat().st_size


def big_env(out: Path, raw: Path, rows: int, memory_limit: str, engine: str = "duckdb") -> dict:
    """The runs' environment (everything under ``out``) and their project file ``out/project.yml``."""
    out.mkdir(parents=True, exist_ok=True)
    home = scenario_dagster_home(out / "dagster_home")
    project = yaml.safe_load((ROOT / "expectations" / "demo.yml").read_text())
    # a trailing median of 4,000 rows is below this: the 20M-row day is not judged by the volume band
    project.setdefault("gates", {}).setdefault("volume", {})["min_count"] = 10 * rows
    (out / "project.yml").write_text(yaml.safe_dump(project, sort_keys=False))
    env = {
        **os.environ,
        "IMPACT_LEDGER_CONFIG": str(out / "project.yml"),
        "IMPACT_LEDGER_SOURCE": str(raw),
        "IMPACT_LEDGER_DB": str(out / "warehouse.duckdb"),
        "IMPACT_LEDGER_MEMORY_LIMIT": memory_limit,
        "IMPACT_LEDGER_TEMP_DIR": str(out / "spill"),
        "IMPACT_LEDGER_ENGINE": engine,
        "IMPACT_LEDGER_SPARK_DIR": str(out / "spark"),  # read only with engine spark
        "DAGSTER_HOME": str(home),
        "GX_ANALYTICS_ENABLED": "false",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "IMPACT_LEDGER_ANALYTICS_DB": str(out / "analytics.duckdb"),
        "IMPACT_LEDGER_EXPORTS": str(out / "exports"),
        "IMPACT_LEDGER_DOCS": str(out / "docs"),
        "IMPACT_LEDGER_ALERTS": str(out / "alerts"),
        "IMPACT_LEDGER_REPORTS": str(out / "reports"),
    }
    env.pop("IMPACT_LEDGER_START_DATE", None)
    return env


def timed_day_index(config_path: str | Path, world=None) -> int:
    """The day (index) of the generator's ``world`` (default: its defaults) a benchmark times: the first with
    every model live and its drift reference window over (the project file's), so a history run up to it
    stores each version's reference profile and the day's run bins every feature against it, as the SQL
    limit and Evidently do. Within a window the run computes no PSI at all, and the drift stage would be
    timed without its work."""
    from orchestration.lib.project_config import load_config
    from orchestration.lib.synthetic_world import WorldConfig

    world = world or WorldConfig()
    config = load_config(Path(config_path))
    last_reference_day = 0
    for m in world.models:
        ref = config.model(m.model_id).drift_reference
        end = (ref.end - world.start_date).days if ref.is_fixed else m.start_day + ref.days - 1
        last_reference_day = max(last_reference_day, end)
    return max(max(m.start_day for m in world.models), last_reference_day + 1)


def big_world(raw: Path, rows: int, memory_limit: str, seed: int, env: dict) -> tuple[date, Path, int]:
    """The world (generator defaults) up to its timed_day_index, whose last day's predictions are one CSV of
    ``rows`` rows: generated, or reused when ``raw/big_day.json`` says it was written with the same rows, seed
    and days. Returns (day, CSV, bytes)."""
    marker = raw / "big_day.json"
    days = timed_day_index(env["IMPACT_LEDGER_CONFIG"]) + 1
    wanted = {"rows": rows, "seed": seed, "days": days}
    if marker.exists():
        made = json.loads(marker.read_text())
        csv = raw / "predictions" / f"predictions_{made.get('day')}.csv"
        if made.get("world") == wanted and csv.exists():
            say(f"reusing the world {raw} ({csv.stat().st_size / 1e9:.2f} GB CSV day {made['day']})")
            return date.fromisoformat(made["day"]), csv, csv.stat().st_size
    shutil.rmtree(raw, ignore_errors=True)
    say(f"generating a {days}-day world in {raw}")
    subprocess.run(
        [CLI, "generate", "--out", str(raw), "--days", str(days), "--seed", str(seed)],
        env=env,
        check=True,
        cwd=ROOT,
    )
    day = max(date.fromisoformat(p.stem.split("_")[-1]) for p in (raw / "predictions").iterdir())
    say(f"writing {rows:,} predictions for {day} as one CSV")
    started = time.monotonic()
    csv, size = write_big_day(raw, day, rows, memory_limit)
    say(f"{csv} : {size / 1e9:.2f} GB in {time.monotonic() - started:.0f} s; load: {uptime()}")
    marker.write_text(json.dumps({"world": wanted, "day": day.isoformat(), "csv_bytes": size}))
    return day, csv, size


def big_day(
    out: Path,
    rows: int,
    memory_limit: str,
    seed: int = 8,
    echo: bool = True,
    reuse: bool = False,
    raw: Path | None = None,
    engine: str = "duckdb",
    probe: Callable[[], float] | None = None,
) -> dict:
    """The world (``raw``, default ``out/raw``; reused if already written), its history materialised up to the
    day before the big day in one run (measured: ``history``), then the big day's run. Returns the figures.

    ``probe``: called just before each run; its value (the machine's speed then, bench_suite.speed_probe) is
    kept with that run's figures as ``speed_probe_s``."""
    raw = raw or out / "raw"
    reuse = reuse and (out / "warehouse.duckdb").exists() and any((raw / "predictions").glob("*.csv"))
    if not reuse:
        shutil.rmtree(out, ignore_errors=True)
    env = big_env(out, raw, rows, memory_limit, engine)

    def measured(cmd: list, run_echo: bool) -> dict:
        speed = probe() if probe is not None else None
        return {**measure(cmd, env, run_echo), "speed_probe_s": speed}

    history = None
    if reuse:  # the world, its history and the big CSV of an earlier --out run: only the day is run again
        csv = next((raw / "predictions").glob("*.csv"))
        day, size = date.fromisoformat(csv.stem.split("_")[-1]), csv.stat().st_size
        say(f"reusing {csv} ({size / 1e9:.2f} GB) and the warehouse's history")
    else:
        day, csv, size = big_world(raw, rows, memory_limit, seed, env)
        say(f"materialising the history up to {day - timedelta(days=1)} (engine {engine})")
        history = measured([CLI, "materialize", "--end", str(day - timedelta(days=1))], False)
        if history["returncode"] != 0:
            say(f"the history run failed (exit {history['returncode']}): {history['tail']}")
    load_before = uptime()
    if history is None or history["returncode"] == 0:
        run = measured([CLI, "materialize", "--start", str(day), "--end", str(day)], echo)
    else:  # the day is not run on a failed history: the figures say so (returncode None, no wall_s)
        run = {"returncode": None, "tail": history["tail"], "not_run": "the history run failed"}
    rows_loaded = _rows_loaded(out / "warehouse.duckdb", day)
    return {
        "date": datetime.now().isoformat(timespec="seconds"),
        "day": str(day),
        "engine": engine,
        "rows": rows,
        "rows_in_raw_predictions": rows_loaded,
        "csv_bytes": size,
        "memory_limit": memory_limit,
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": uptime(),
        "history": history,
        **run,
    }


def _rows_loaded(db: Path, day: date) -> int | None:
    import duckdb

    try:
        with duckdb.connect(str(db), read_only=True) as conn:
            return conn.execute("SELECT count(*) FROM raw.predictions WHERE _partition_date = ?", [day]).fetchone()[0]
    except duckdb.Error:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000, help="prediction rows of the big day")
    parser.add_argument("--memory-limit", default=os.environ.get("IMPACT_LEDGER_MEMORY_LIMIT", "3GB"))
    parser.add_argument("--out", help="working folder (default: a temporary one, removed at the end)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--reuse", action="store_true", help="with --out: rerun only the big day of an earlier run")
    parser.add_argument(
        "--engine", default="duckdb", choices=("duckdb", "spark"), help="IMPACT_LEDGER_ENGINE of the runs"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.out and Path(args.out).parent) as tmp:
        out = Path(args.out) if args.out else Path(tmp) / "big_day"
        figures = big_day(out, args.rows, args.memory_limit, reuse=args.reuse, engine=args.engine)
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)
    steps = sorted(figures.pop("steps", []), key=lambda s: -s[1])
    print(json.dumps({k: v for k, v in figures.items() if k not in ("tail", "history")}, indent=1))
    print("slowest steps: " + "; ".join(f"{name} {secs:.0f} s" for name, secs in steps[:8]))
    if args.json:
        Path(args.json).write_text(json.dumps({**figures, "steps": steps}, indent=1))
    if figures["returncode"] != 0:
        raise SystemExit(f"the big day's run failed: {figures['tail']}")


if __name__ == "__main__":
    main()
