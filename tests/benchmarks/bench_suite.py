"""`make bench`: the pipeline at 100k, 1M and 10M prediction rows a day, against DuckDB's own limit and the peers.

Run: .venv/bin/python tests/benchmarks/bench_suite.py [--sizes 100k,1m,10m] [--spark-sizes 1m,10m]
[--history-days 365] [--engine duckdb] (or `make bench BENCH_ARGS="--sizes 100k,1m"`). Not a test: it prints
figures and writes data/bench/results.json and data/bench/results.md (the README quotes the table). It takes
many minutes. `--merge OTHER/results.json` adds another run's rows (e.g. the Spark rows alone:
`--sizes "" --spark-sizes 1m,10m --no-history --out OTHER`) to --out's, with that run's date, commit and load.

Rows per day: the synthetic world draws `--predictions-per-day` predictions *per model* and day, so a day
on which all of its N models are live holds N x predictions_per_day rows (plus a handful of planted dirty
rows). A size here is the rows of the timed day, all models together: size / N per model.

What runs (every pipeline run is a fresh `impact-ledger materialize` process, timed from launch to exit):
* history world (`--history-per-model`, default the generator's 2,000 per model, so 4,000 rows a day with
  the demo's two models; `--history-days` + 1 days): a 30-day single-run backfill (days 0..29), the day
  after it (day 30: also the "little data" day; run `--repeats` times, default 3, the targets taking the median
  wall), the rest of the history in one untimed-target run (days 31..history-days - 1), then the day after
  `--history-days` days of history (also `--repeats` times, taking turns with day 30's re-runs, which run on a
  copy of the warehouse as it was after day 30: the two medians come from runs minutes apart); and, in a fresh
  warehouse, a 60-day backfill stopped as soon as its first step starts (time to first step);
* 10m: one day of 10M rows (bench_big_day.py: a 25-day world of the generator's default size whose last
  day's predictions are replaced by one CSV of that many rows) under `--memory-limit` (default 2500MB),
  the pipeline only (generating 25 days of 10M rows would take longer than the rest together);
* the spark engine beside --engine (`--spark-sizes`, default 1m and 10m; `--spark-sizes ""` for none): the
  same world as that size's --engine rows, its own warehouse, Dagster instance and IMPACT_LEDGER_SPARK_DIR
  (a local Spark session in dbt's process, with the settings of dbt_project/profiles.yml's `spark` output and
  IMPACT_LEDGER_SPARK_* over them, recorded per row); the history up to the timed day in one run, then the
  day, both timed (the 10m day under --memory-limit for the loader's and gates' DuckDB). Skipped, with the
  reason in the results, when the `spark` extra or Java is missing. Its dbt stage includes landing the run's
  raw days as Parquet and copying the marts back into DuckDB (orchestration/lib/engine.py);
* other sizes: a world up to the first day with every model live and past its drift reference window
  (timed_day_index: day 24 with the demo's project file), history up to it materialised in one run (which
  stores each version's reference profile), then that day timed; beside it, in separate processes on the
  same Parquet files, the hand-written DuckDB SQL for the same core outputs and the peers (pandas +
  scikit-learn health metrics, fairlearn MetricFrame group rates, Evidently drift in a side venv). Health
  and bias are compared on the rows the timed run recomputed: the (model, day) pairs of its
  intermediate.int_label_refresh_days (the day, the label-lookback days before it, older days that got
  labels), per day; drift and KPIs on the day's rows.

Every timed day of the history world and of 100k and 1m finds GX's results store as a deployment's daily runs
leave it: before it, the store is grown to IMPACT_LEDGER_GX_DOCS_INDEX_LIMIT results (default 500, ~19 of the
demo's daily runs) with copies of the history run's own results under earlier run times, each with its page
(bench_data_docs.grow). A run's Data Docs index reads and renders every result the store keeps, so a store with
a single history run's results would time a cheaper build than any deployment's after three weeks.

Measured per process tree: wall, CPU (user + system of the process and every descendant it reaped, from
getrusage), peak RSS = the largest sum of RSS over the process and all its descendants, sampled every
0.2 s with psutil (shared pages count once per process, so this overestimates). Descendants orphaned by
their parent count too: pyspark's JVM outlives dbt's Python, which never waits for it, so this process
becomes their subreaper (_process_tree.py), samples them and reaps them before reading getrusage. Per stage: step durations
from the CLI's progress lines (loader = raw.* steps, gates = quality-gate steps, dbt = the dbt step,
attribution/publish = every later step; overhead = wall minus the steps: process start, imports,
definitions, Dagster) and per dbt model from the run's materialisation events ("Execution Duration").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere
from _dagster_home import scenario_dagster_home  # noqa: E402  (the scripts' own folder is on sys.path)
from _process_tree import PeakTreeRss, become_subreaper, reap_adopted, uptime  # noqa: E402
from bench_big_day import big_day, big_env, big_world, timed_day_index  # noqa: E402
from bench_data_docs import grow  # noqa: E402

VENV_BIN = Path(sys.executable).parent
CLI = str(VENV_BIN / "impact-ledger")
HERE = Path(__file__).resolve().parent
GiB = 1024**3

SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000, "10m": 10_000_000}
BIG_DAY_ROWS = 10_000_000  # from this size the timed day is bench_big_day's one big CSV day
SPARK_SIZES_DEFAULT = "1m,10m"  # the spark engine (local session) beside --engine's rows at these sizes
PEER_MAX_DEFAULT = "1m"  # peers on 10M rows take longer than the rest of the benchmark together
EVIDENTLY_PIN = "evidently==0.7.23"
EVIDENTLY_DEPS = ["pandas==2.3.3", "pyarrow==26.0.1"]  # 0.7.23 imports a pandas internal that pandas 3 dropped

T0 = time.monotonic()
WORLD_START = date(2026, 9, 1)  # every world's first day (WorldConfig's default start_date)


def say(text: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S} +{time.monotonic() - T0:6.0f}s] {text}", flush=True)


# ---------------------------------------------------------------------------------------------- measuring


@dataclass
class Measured:
    """One process tree, launch to exit."""

    command: str
    wall: float = 0.0
    cpu: float = 0.0
    peak_rss_gib: float = 0.0  # sum over the tree, sampled
    largest_process_gib: float = 0.0  # the largest single process (getrusage of reaped children: exact)
    returncode: int | None = None
    first_step_s: float | None = None  # launch to the first "<step> started" progress line
    steps: list[tuple[str, float]] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)
    dbt_models: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    stopped_early: bool = False
    tail: list[str] = field(default_factory=list)
    payload: dict | None = None  # a worker's JSON line
    speed_probe_s: float | None = None  # speed_probe() just before the launch


# StepProgress lines (orchestration/runs.py): "[   12.3s] 2026-09-01 .. 2026-09-30 raw.orders done in 0.3s: ..."
_RANGE = r"\d{4}-\d\d-\d\d \.\. \d{4}-\d\d-\d\d"
STEP_DONE = re.compile(rf"\]\s+{_RANGE} (?P<step>.+?) (?:done|FAILED|skipped) in (?P<secs>[\d.]+)s")
STEP_STARTED = re.compile(r"^\s*\[\s*[\d.]+s\] .* started$")
RUN_ID = re.compile(r"\(run (?P<id>[0-9a-f]{8})\)")


def run_measured(cmd: list[str], env: dict, echo=None, stop_at_first_step=False) -> Measured:
    """Run ``cmd`` to its end (or to its first step), sampling the tree's RSS; ``echo(line)`` filters output."""
    m = Measured(" ".join(str(c) for c in cmd))
    adopted = become_subreaper()  # pyspark's JVM outlives dbt's Python: adopt it, count its memory and CPU
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(c) for c in cmd],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,  # its own process group: stopping it early stops its children too
    )
    lines = []
    with PeakTreeRss(proc.pid, adopted=adopted) as rss:
        for line in proc.stdout:
            line = line.rstrip("\n")
            lines.append(line)
            if m.first_step_s is None and STEP_STARTED.match(line):
                m.first_step_s = time.monotonic() - started
                if stop_at_first_step:
                    m.stopped_early = True
                    os.killpg(proc.pid, signal.SIGTERM)  # the group of the process started above, nothing else
                    break
            if echo is not None and echo(line):
                print(f"      {line.strip()}", flush=True)
        proc.wait()
        m.wall = time.monotonic() - started
        if adopted:
            reap_adopted()  # the orphans still exiting (a JVM): their CPU into RUSAGE_CHILDREN
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    m.cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    m.peak_rss_gib = rss.peak / GiB
    m.largest_process_gib = after.ru_maxrss * 1024 / GiB  # max over every child reaped so far (KiB on Linux)
    m.returncode = proc.returncode
    m.tail = lines[-15:]
    for line in lines:
        if hit := STEP_DONE.search(line):
            m.steps.append((hit["step"], float(hit["secs"])))
        if hit := RUN_ID.search(line):
            m.run_id = hit["id"]
    if lines and lines[-1].startswith("{"):
        try:
            m.payload = json.loads(lines[-1])
        except json.JSONDecodeError:
            pass
    m.stages = stages_of(m.steps, m.wall)
    return m


def stage_of(step: str) -> str:
    if step.startswith("quality gate") or step.startswith("quality."):
        return "gates"
    if step.startswith("dbt build"):
        return "dbt"
    if step.startswith("raw."):
        return "loader"
    return "attribution/publish"


def stages_of(steps: list[tuple[str, float]], wall: float) -> dict[str, float]:
    if not steps:
        return {}
    out = {"loader": 0.0, "gates": 0.0, "dbt": 0.0, "attribution/publish": 0.0}
    for step, secs in steps:
        out[stage_of(step)] += secs
    out["overhead"] = max(0.0, wall - sum(out.values()))
    return {k: round(v, 2) for k, v in out.items()}


def dbt_model_seconds(dagster_home: Path, short_run_id: str | None) -> dict[str, float]:
    """Each dbt model's execution time in a run, from its materialisation events in the bench's instance."""
    if not short_run_id:
        return {}
    code = (
        "import json, sys, dagster as dg\n"
        "inst = dg.DagsterInstance.get()\n"
        "run = next(r for r in inst.get_runs(limit=50) if r.run_id.startswith(sys.argv[1]))\n"
        "out = {}\n"
        "for rec in inst.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records:\n"
        "    m = rec.event_log_entry.dagster_event.event_specific_data.materialization\n"
        "    d = m.metadata.get('Execution Duration')\n"
        "    if d is not None: out[m.asset_key.path[-1]] = round(float(d.value), 3)\n"
        "print(json.dumps(out))\n"
    )
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    done = subprocess.run([sys.executable, "-c", code, short_run_id], env=env, capture_output=True, text=True)
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        say(f"note: no dbt model timings for run {short_run_id}: {done.stderr.strip().splitlines()[-1:]}")
        return {}


# ------------------------------------------------------------------------------------------- scenarios


class Bench:
    def __init__(self, args):
        self.args = args
        self.out = Path(args.out).resolve()
        self.config_path = str(Path(args.config).resolve())
        self.results: dict = {"scenarios": {}}

    def env(self, scenario: Path, engine: str | None = None) -> dict:
        """Everything a run writes goes under the scenario's folder (never data/ of the demo)."""
        home = scenario_dagster_home(scenario / "dagster_home")
        env = {
            **os.environ,
            "IMPACT_LEDGER_CONFIG": self.config_path,
            "DAGSTER_HOME": str(home),
            "GX_ANALYTICS_ENABLED": "false",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
            "IMPACT_LEDGER_ANALYTICS_DB": str(scenario / "analytics.duckdb"),
            "IMPACT_LEDGER_EXPORTS": str(scenario / "exports"),
            "IMPACT_LEDGER_DOCS": str(scenario / "docs"),
            "IMPACT_LEDGER_ALERTS": str(scenario / "alerts"),
            "IMPACT_LEDGER_REPORTS": str(scenario / "reports"),
        }
        # daily partitions start at the world's first day, as a deployment's project file says; left to the
        # data, a lone day's run would start them on that day (a day after the clock's today has none)
        env["IMPACT_LEDGER_START_DATE"] = WORLD_START.isoformat()
        # the engine of the runs (README: Apache Spark); Spark's tables and metastore in the scenario's folder
        env["IMPACT_LEDGER_ENGINE"] = engine or self.args.engine
        env["IMPACT_LEDGER_SPARK_DIR"] = str(scenario / "spark")
        return env

    def world(self, name: str, cfg) -> Path:
        """The scenario's landing zone, generated with `impact-ledger generate` (reused if the same config)."""
        raw = self.out / "worlds" / name
        truth = raw / "truth.json"
        wanted = {"days": cfg.days, "users": cfg.users, "seed": cfg.seed, "per_model": cfg.predictions_per_day}
        if truth.exists() and json.loads(truth.read_text()).get("bench_config") == wanted:
            say(f"{name}: reusing the world in {raw}")
            return raw
        shutil.rmtree(raw, ignore_errors=True)
        say(
            f"{name}: generating {cfg.days} days, {cfg.users:,} users, --predictions-per-day "
            f"{cfg.predictions_per_day:,} (x {len(cfg.models)} models = {cfg.predictions_per_day * len(cfg.models):,} "
            "rows a day once all are live)"
        )
        cmd = [CLI, "generate", "--out", raw, "--days", cfg.days, "--users", cfg.users, "--seed", cfg.seed]
        cmd += ["--predictions-per-day", cfg.predictions_per_day, "--start-date", cfg.start_date.isoformat()]
        m = run_measured(cmd, self.env(self.out / "worlds" / f"{name}.run"))
        if m.returncode != 0:
            raise SystemExit("generate failed:\n" + "\n".join(m.tail))
        data = json.loads(truth.read_text())
        data["bench_config"] = wanted
        truth.write_text(json.dumps(data))
        say(f"{name}: generated in {m.wall:.0f} s ({data['rows_written']['predictions']:,} predictions)")
        return raw

    def materialize(
        self, scenario: Path, raw: Path, first: date, last: date, what: str, engine: str | None = None, **kw
    ) -> Measured:
        say(f"{what}: materialize {first} .. {last} ({(last - first).days + 1} day(s))")
        cmd = [CLI, "materialize", "--source", raw, "--db", scenario / "warehouse.duckdb"]
        cmd += ["--start", first.isoformat(), "--end", last.isoformat()]
        days = (last - first).days + 1

        def echo(line: str) -> bool:  # step endings of short runs; only failures and the outcome of long ones
            s = line.strip()
            return ("FAILED" in s or "error" in s.lower() or s.endswith(")") and ": ok in" in s) or (
                days <= 31 and bool(STEP_DONE.search(s))
            )

        probe = speed_probe()
        m = run_measured(cmd, self.env(scenario, engine), echo=echo, **kw)
        m.speed_probe_s = probe
        if m.returncode != 0 and not m.stopped_early:
            say(f"{what}: FAILED (exit {m.returncode}); last lines:\n" + "\n".join(m.tail))
        else:
            m.dbt_models = dbt_model_seconds(scenario / "dagster_home", m.run_id)
            stages = ", ".join(f"{k} {v:.1f}" for k, v in m.stages.items())
            say(
                f"{what}: wall {m.wall:.1f} s, CPU {m.cpu:.1f} s, peak RSS {m.peak_rss_gib:.2f} GiB"
                + (f"; stages (s): {stages}" if stages else "")
                + (f"; first step after {m.first_step_s:.1f} s" if m.first_step_s is not None else "")
            )
        return m

    def walls_of_repeats(self, raw: Path, *timed: tuple[Path, date, dict, str]) -> list[list[float]]:
        """For each (scenario, day, its first run, what) of ``timed``: the walls of the first run and of
        --repeats - 1 runs of the same day after it (a re-run replaces the day: the same work on the same data),
        the days taking turns, so that a ratio of two of them compares runs minutes apart: this shared machine's
        speed drifts by a third within half an hour, and one run varies by ~0.3 s."""
        walls = [[first["wall"]] if first["returncode"] == 0 else [] for _, _, first, _ in timed]
        for i in range(2, self.args.repeats + 1):
            for (scenario, day, _, what), done in zip(timed, walls):
                if len(done) != i - 1:  # its first run or a re-run failed: no more of that day
                    continue
                again = self.materialize(scenario, raw, day, day, f"{what}, run {i} of {self.args.repeats}")
                if again.returncode == 0:
                    done.append(again.wall)
        return walls

    # ---------------------------------------------------------------------------------------- history

    def history(self) -> None:
        from orchestration.lib.synthetic_world import WorldConfig

        n = self.args.history_days
        cfg = WorldConfig(days=n + 1, predictions_per_day=self.args.history_per_model, seed=self.args.seed)
        rows = cfg.predictions_per_day * len(cfg.models)
        raw = self.world(f"history_{n + 1}d_{cfg.predictions_per_day}", cfg)
        if self.args.generate_only:
            return
        res: dict = {
            "engine": self.args.engine,
            "per_model": cfg.predictions_per_day,
            "rows_per_day": rows,
            "world_days": cfg.days,
        }
        self.results["scenarios"]["history"] = res
        scenario = self.out / "runs" / "history"
        shutil.rmtree(scenario, ignore_errors=True)
        day = cfg.day_date
        res["backfill_30"] = asdict(self.materialize(scenario, raw, day(0), day(29), "30-day single-run backfill"))
        grow_docs_store(scenario)
        res["day_30"] = asdict(self.materialize(scenario, raw, day(30), day(30), "the day after 30 days"))
        day_30 = (scenario, day(30), res["day_30"], "the day after 30 days")
        copied = n > 31 and self.args.repeats > 1
        if copied:  # day 30 runs again beside the last day, on a copy of the warehouse (and instance) as it is now
            at_30 = self.out / "runs" / "history_at_day_30"
            shutil.rmtree(at_30, ignore_errors=True)
            shutil.copytree(scenario, at_30)
            day_30 = (at_30, *day_30[1:])
        elif n <= 31:
            (res["day_30_walls"],) = self.walls_of_repeats(raw, day_30)
        self.save()
        fresh = self.out / "runs" / "backfill60"
        shutil.rmtree(fresh, ignore_errors=True)
        span = min(60, cfg.days)
        m = self.materialize(
            fresh, raw, day(0), day(span - 1), f"{span}-day backfill, to its first step", stop_at_first_step=True
        )
        res["backfill_60_start"] = {**asdict(m), "days": span}
        shutil.rmtree(fresh, ignore_errors=True)
        self.save()
        if n > 31:
            rest = self.materialize(scenario, raw, day(31), day(n - 1), f"the rest of {n} days of history")
            res["history_rest"] = asdict(rest)
            res[f"day_{n}"] = asdict(self.materialize(scenario, raw, day(n), day(n), f"the day after {n} days"))
            day_n = (scenario, day(n), res[f"day_{n}"], f"the day after {n} days")
            res["day_30_walls"], res[f"day_{n}_walls"] = self.walls_of_repeats(raw, day_30, day_n)
            if copied:
                shutil.rmtree(day_30[0], ignore_errors=True)
        self.save()

    # ------------------------------------------------------------------------------------------ sizes

    def size_world(self, label: str):
        """(config, landing zone, timed day) of a size's world: generated once, shared by every engine."""
        from orchestration.lib.synthetic_world import WorldConfig

        probe = WorldConfig()
        per_model = max(1, SIZES[label] // len(probe.models))
        timed = timed_day_index(self.config_path, probe)
        cfg = WorldConfig(days=timed + 1, predictions_per_day=per_model, seed=self.args.seed)
        raw = self.world(f"size_{label}", cfg)
        return cfg, raw, cfg.day_date(timed)

    def size(self, label: str) -> None:
        total = SIZES[label]
        if total >= BIG_DAY_ROWS:
            return self.big_size(label)
        cfg, raw, timed = self.size_world(label)
        if self.args.generate_only:
            return
        res: dict = {
            "engine": self.args.engine,
            "rows_per_day": cfg.predictions_per_day * len(cfg.models),
            "per_model": cfg.predictions_per_day,
            "models": len(cfg.models),
            "date": timed.isoformat(),
        }
        self.results["scenarios"][label] = res
        scenario = self.out / "runs" / f"size_{label}"
        shutil.rmtree(scenario, ignore_errors=True)
        res["history"] = asdict(
            self.materialize(scenario, raw, cfg.start_date, timed - timedelta(days=1), f"{label}: history")
        )
        grow_docs_store(scenario)
        res["day"] = asdict(self.materialize(scenario, raw, timed, timed, f"{label}: the day ({timed})"))
        self.save()
        # health and bias: the peers and the SQL limit get the rows the run recomputed (its late-label refresh)
        refresh = refreshed_pairs(scenario / "warehouse.duckdb")
        res["refreshed_pairs"] = len(refresh)
        spec = {"raw": str(raw), "day": timed.isoformat(), "config": self.config_path, "refresh": refresh}
        res["sql_limit"] = asdict(self.worker("sql", spec, f"{label}: hand-written DuckDB SQL"))
        self.save()
        if self.args.no_peers or total > SIZES[self.args.peer_max_size]:
            res["peers_skipped"] = f"peers run at sizes up to {self.args.peer_max_size} (--peer-max-size)"
        else:
            res["peers"] = asdict(self.worker("peers", spec, f"{label}: pandas + scikit-learn, fairlearn"))
            res["evidently"] = self.evidently(spec, label)
        if not self.args.keep_warehouses:
            shutil.rmtree(scenario / "warehouse.duckdb", ignore_errors=True)
        self.save()

    def big_size(self, label: str, engine: str | None = None) -> None:
        """10M rows: generating 25 days of them is needless; bench_big_day's world (25 days of the generator's
        default size, in worlds/size_<label>, shared by the engines) gets one day replaced by a CSV of that many
        rows; its history runs in one run, then that day is timed under --memory-limit."""
        engine = engine or self.args.engine
        total = SIZES[label]
        raw = self.out / "worlds" / f"size_{label}"
        if self.args.generate_only:
            env = big_env(self.out / "worlds" / f"size_{label}.run", raw, total, self.args.memory_limit)
            big_world(raw, total, self.args.memory_limit, self.args.seed, env)
            return
        key, scenario = self.keys(label, engine)
        say(
            f"{key}: one day of {total:,} prediction rows (bench_big_day), engine {engine}, "
            f"memory_limit {self.args.memory_limit}"
        )
        figures = big_day(
            scenario,
            total,
            self.args.memory_limit,
            self.args.seed,
            echo=False,
            raw=raw,
            engine=engine,
            probe=speed_probe,
        )
        res = {
            "engine": engine,
            "size": label,
            "rows_per_day": total,
            "date": figures["day"],
            "memory_limit": self.args.memory_limit,
            "history": big_run(figures.pop("history")),
            "day": big_run(figures) if "wall_s" in figures else None,  # None: not run (its history failed)
            "big_day": {k: v for k, v in figures.items() if k not in ("tail", "steps")},
            "peers_skipped": "peers and SQL limit not run at this size (a CSV day: bench_big_day.py)",
        }
        if engine == "spark":
            res["spark_settings"] = spark_settings(big_env(scenario, raw, total, self.args.memory_limit, engine))
        self.results["scenarios"][key] = res
        day = res["day"]
        if day is None:
            res["not_run"] = figures.get("not_run", "?")
            say(f"{key}: the day not run: {res['not_run']}")
        elif day["returncode"] != 0:
            say(f"{key}: the day FAILED (exit {day['returncode']}); last lines:\n" + "\n".join(day["tail"]))
        else:
            say(
                f"{key}: wall {day['wall']:.1f} s, CPU {day['cpu']:.1f} s, peak RSS {day['peak_rss_gib']:.2f} GiB "
                f"(largest process {day['largest_process_gib']:.2f} GiB); stages (s): "
                + ", ".join(f"{k} {v:.1f}" for k, v in day["stages"].items())
            )
        if not self.args.keep_warehouses:
            shutil.rmtree(scenario, ignore_errors=True)
        self.save()

    def keys(self, label: str, engine: str) -> tuple[str, Path]:
        """The scenario's key in results.json and its run folder: `1m` for --engine, `1m-spark` for the other."""
        if engine == self.args.engine:
            return label, self.out / "runs" / f"size_{label}"
        return f"{label}-{engine}", self.out / "runs" / f"size_{label}_{engine}"

    def spark_size(self, label: str) -> None:
        """The spark engine beside --engine on a size: the same world, its own warehouse and Spark folder; the
        history up to the timed day in one run, then the day, both timed. Skipped (with the reason) when the
        `spark` extra or Java is missing."""
        key, scenario = self.keys(label, "spark")
        reason = spark_skip_reason()
        if reason:
            say(f"{key}: skipped: {reason}")
            self.results["scenarios"][key] = {"engine": "spark", "size": label, "skipped": reason}
            self.save()
            return
        if SIZES[label] >= BIG_DAY_ROWS:
            return self.big_size(label, "spark")
        cfg, raw, timed = self.size_world(label)
        if self.args.generate_only:
            return
        res: dict = {
            "engine": "spark",
            "size": label,
            "rows_per_day": cfg.predictions_per_day * len(cfg.models),
            "per_model": cfg.predictions_per_day,
            "models": len(cfg.models),
            "date": timed.isoformat(),
            "spark_settings": spark_settings(self.env(scenario, "spark")),
        }
        self.results["scenarios"][key] = res
        shutil.rmtree(scenario, ignore_errors=True)
        first, before = cfg.start_date, timed - timedelta(days=1)
        res["history"] = asdict(self.materialize(scenario, raw, first, before, f"{key}: history", "spark"))
        self.save()
        res["day"] = asdict(self.materialize(scenario, raw, timed, timed, f"{key}: the day ({timed})", "spark"))
        if not self.args.keep_warehouses:
            shutil.rmtree(scenario, ignore_errors=True)
        self.save()

    def worker(self, task: str, spec: dict, what: str) -> Measured:
        say(f"{what} on the same Parquet day")
        m = run_measured([sys.executable, __file__, "--task", task, json.dumps(spec)], {**os.environ})
        if m.returncode != 0 or m.payload is None:
            say(f"{what}: FAILED:\n" + "\n".join(m.tail))
        else:
            parts = ", ".join(f"{k} {v:.2f}" for k, v in m.payload.get("seconds", {}).items())
            say(
                f"{what}: wall {m.wall:.1f} s, CPU {m.cpu:.1f} s, peak RSS {m.peak_rss_gib:.2f} GiB; parts (s): {parts}"
            )
        return m

    def evidently(self, spec: dict, label: str) -> dict:
        python = self.peers_python()
        if python is None:
            return {"skipped": self.evidently_note}
        from _bench_tasks import drift_references, feature_columns  # noqa: E402

        day = date.fromisoformat(spec["day"])
        raw = Path(spec["raw"])
        features = [c for c, _ in feature_columns(raw)]
        refs = [
            {"model_id": m, "model_version": v, "start": s.isoformat(), "end": e.isoformat()}
            for m, v, s, e in drift_references(raw, day, spec["config"])
        ]
        arg = json.dumps(
            {"predictions": str(raw / "predictions"), "day": spec["day"], "references": refs, "features": features}
        )
        say(f"{label}: Evidently {EVIDENTLY_PIN} DataDriftPreset (side venv)")
        m = run_measured([python, HERE / "bench_peer_evidently.py", arg], {"PATH": os.environ.get("PATH", "")})
        if m.returncode != 0 or m.payload is None:
            say(f"{label}: Evidently FAILED:\n" + "\n".join(m.tail))
            return {"skipped": "Evidently failed: " + " | ".join(m.tail[-3:])}
        say(
            f"{label}: Evidently wall {m.wall:.1f} s (its own timing {m.payload['seconds']:.1f} s), "
            f"peak RSS {m.peak_rss_gib:.2f} GiB"
        )
        return asdict(m)

    def peers_python(self) -> str | None:
        """data/bench/peers-venv with Evidently, installed from the index on first use."""
        venv = self.out / "peers-venv"
        python = venv / "bin" / "python"
        self.evidently_note = ""
        if self.args.no_peers:
            self.evidently_note = "--no-peers"
            return None
        check = [str(python), "-c", "import evidently, pyarrow"]
        if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
            return str(python)
        say(f"installing {EVIDENTLY_PIN} into {venv} (side venv: it cannot share the project's pins)")
        base = shutil.which("python3.11") or shutil.which("python3")
        try:
            subprocess.run([base, "-m", "venv", str(venv)], check=True, capture_output=True)
            subprocess.run(
                [str(venv / "bin" / "pip"), "install", "-q", EVIDENTLY_PIN, *EVIDENTLY_DEPS],
                check=True,
                capture_output=True,
            )
        except (subprocess.CalledProcessError, TypeError) as err:
            tail = (getattr(err, "stderr", b"") or b"").decode(errors="replace").strip().splitlines()[-2:]
            self.evidently_note = f"Evidently could not be installed into {venv}: {' | '.join(tail) or err}"
            say(f"note: {self.evidently_note}; skipping the Evidently peer")
            return None
        return str(python)

    def save(self) -> None:
        """results.json and results.md so far: a stopped run still leaves what it measured."""
        self.out.mkdir(parents=True, exist_ok=True)
        self.results["targets"] = targets(self.results)
        (self.out / "results.json").write_text(json.dumps(self.results, indent=1, default=str))
        (self.out / "results.md").write_text(markdown(self.results))


# ------------------------------------------------------------------------------------------- the report


def grow_docs_store(scenario: Path) -> int:
    """The scenario's GX results store grown to the index limit, as daily runs would leave it (module docstring).
    Returns the results it then holds."""
    from orchestration.lib.settings import gx_docs_index_limit

    site = scenario / "docs" / "gx"
    seeds = sorted((site.parent / "gx_context").rglob("validations/*/*/*/*.json"))
    held = grow(site, seeds, gx_docs_index_limit()) if seeds else 0
    say(f"{scenario.name}: GX's results store holds {held} results before the timed day")
    return held


def refreshed_pairs(warehouse: Path) -> list[list[str]]:
    """The (model_id, day) pairs of the last run's intermediate.int_label_refresh_days (empty if unreadable)."""
    import duckdb

    try:
        with duckdb.connect(str(warehouse), read_only=True) as conn:
            rows = conn.execute(
                "SELECT model_id, date FROM intermediate.int_label_refresh_days ORDER BY ALL"
            ).fetchall()
    except duckdb.Error as err:
        say(f"refreshed days not read ({err}): health and bias peers get the day alone")
        return []
    return [[model, day.isoformat()] for model, day in rows]


def big_run(figures: dict | None) -> dict | None:
    """bench_big_day's figures of one run as a row of this script's results (wall, cpu, ..., stages)."""
    if figures is None:
        return None
    steps = [tuple(s) for s in figures.get("steps", [])]
    return {
        "returncode": figures["returncode"],
        "wall": figures["wall_s"],
        "cpu": figures["cpu_s"],
        "peak_rss_gib": figures["peak_rss_gib"],
        "largest_process_gib": figures["largest_process_gib"],
        "steps": steps,
        "stages": stages_of(steps, figures["wall_s"]),
        "tail": figures.get("tail", []),
        "speed_probe_s": figures.get("speed_probe_s"),  # none in runs before it was recorded
    }


def spark_skip_reason() -> str | None:
    """Why the spark engine cannot run here (no `spark` extra, no Java), as the engine says it; None if it can."""
    from orchestration.lib.engine import EngineError, require_spark_runtime

    try:
        require_spark_runtime()
    except EngineError as err:
        return str(err)
    return None


PROFILE_SETTING = re.compile(r"env_var\('(?P<name>IMPACT_LEDGER_SPARK_\w+)',\s*'(?P<default>[^']*)'\)")


def spark_settings(env: dict) -> dict[str, str]:
    """The Spark session settings a run gets: each IMPACT_LEDGER_SPARK_* of the `spark` dbt output (driver
    memory, master, shuffle partitions, threads), the environment's value or profiles.yml's default."""
    text = (ROOT / "dbt_project" / "profiles.yml").read_text()
    block = text[text.index("    spark:") : text.index("    spark_thrift:")]
    out = {}
    for hit in PROFILE_SETTING.finditer(block):
        if hit["name"] != "IMPACT_LEDGER_SPARK_DIR":  # the folder: the scenario's own
            out[hit["name"]] = env.get(hit["name"]) or hit["default"]
    return out


def speed_probe() -> float:
    """Seconds for a fresh interpreter to import pandas and DuckDB, the mean of two: this shared machine's speed
    drifted by up to 1.6x within an hour on 2026-12-03, mostly in what a run does first (starting Python,
    importing: memory-heavy work; a small arithmetic loop stayed as fast), so each run records it to be read
    against."""
    walls = []
    for _ in range(2):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import pandas, duckdb"], check=True)
        walls.append(time.perf_counter() - start)
    return round(statistics.mean(walls), 3)


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    mem = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return {
        "nproc": os.cpu_count(),
        "ram_gib": round(mem / 1024**2, 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
    }


def typical_wall(hist: dict, key: str) -> tuple[float, str]:
    """The median wall of the runs of the history world's day ``key`` (one run in results before --repeats) and
    how it was taken, for the targets table: (9.9, " (median of 3: 10.1, 9.9, 9.8 s)")."""
    walls = hist.get(f"{key}_walls") or [hist[key]["wall"]]
    if len(walls) == 1:
        return walls[0], ""
    return statistics.median(walls), f" (median of {len(walls)}: {', '.join(f'{w:.1f}' for w in walls)} s)"


def targets(results: dict) -> list[dict]:
    """Each target of issue 16 item 2: measured value, limit, met (None: not measured in this run)."""
    sc = results["scenarios"]
    out = []

    def add(name, value, limit, met, how):
        out.append({"target": name, "measured": value, "limit": limit, "met": met, "how": how})

    hist = sc.get("history", {})
    day30 = hist.get("day_30")
    ok30 = day30 and day30["returncode"] == 0
    wall30, runs30 = typical_wall(hist, "day_30") if ok30 else (None, "")
    add(
        "a day with little data completes in <= 10 s wall, process start included",
        f"{wall30:.1f} s{runs30}" if ok30 else "not run",
        "10 s",
        (wall30 <= 10) if ok30 else None,
        f"day 30 of the history world ({hist.get('rows_per_day', '?'):,} rows)" if ok30 else "",
    )
    start = hist.get("backfill_60_start")
    first = start and start.get("first_step_s")
    add(
        "a 60-day backfill starts its first step within 15 s",
        f"{first:.1f} s" if first else "not run",
        "15 s",
        (first <= 15) if first else None,
        "launch of `impact-ledger materialize` over 60 days to its first step's start line",
    )
    one = sc.get("1m", {})
    if one.get("day", {}).get("returncode") == 0 and one.get("sql_limit", {}).get("payload"):
        limit = sql_limit_wall(one)
        wall = one["day"]["wall"]
        ratio = wall / limit
        how = "pipeline day wall / SQL limit wall (both a fresh process; the SQL's reference profile, built once, excluded)"
        if ok30 and same_run(results, "history", "1m"):
            # what any day costs (start, imports, every step) against what the million rows add to it
            how += (
                f"; a day of {hist['rows_per_day']:,} rows (day 30, this run) takes {wall30:.1f} s = "
                f"{wall30 / limit:.1f}x the limit by itself, the 1M rows add {wall - wall30:.1f} s = "
                f"{(wall - wall30) / limit:.1f}x"
            )
        add(
            "one 1M-row day <= 1.5x the SQL limit (same run)",
            f"{ratio:.1f}x ({wall:.0f} s vs {limit:.1f} s)",
            "1.5x",
            ratio <= 1.5,
            how,
        )
    else:
        add("one 1M-row day <= 1.5x the SQL limit (same run)", "not run", "1.5x", None, "")
    n = results.get("args", {}).get("history_days")
    last = hist.get(f"day_{n}")
    if ok30 and last and last["returncode"] == 0:
        wall_n, runs_n = typical_wall(hist, f"day_{n}")
        ratio = wall_n / wall30
        add(
            f"a day after {n} days of history <= 1.2x day 30",
            f"{ratio:.2f}x ({wall_n:.1f} s{runs_n} vs {wall30:.1f} s)",
            "1.2x",
            ratio <= 1.2,
            f"history world, {hist['rows_per_day']:,} rows a day",
        )
    else:
        add("a day after 365 days of history <= 1.2x day 30", "not run", "1.2x", None, "")
    ten = sc.get("10m", {})
    if ten.get("day", {}).get("returncode") == 0:
        rss = ten["day"]["peak_rss_gib"]
        add(
            "10M rows/day: peak RSS <= 4 GiB across all processes",
            f"{rss:.2f} GiB",
            "4 GiB",
            rss <= 4,
            f"the day's run (loader, gates, dbt, attribution, publish) under memory_limit {ten.get('memory_limit')}",
        )
    else:
        add("10M rows/day: peak RSS <= 4 GiB across all processes", "not run", "4 GiB", None, "")
    for label, res in sc.items():
        for stage, ratio, project, peer, peer_name in stage_ratios(res):
            add(
                f"{label}: {stage} >= 10x faster than {peer_name}",
                f"{ratio:.1f}x ({peer:.1f} s vs {project:.1f} s)",
                "10x",
                ratio >= 10,
                "peer wall of its part (read + compute) / the project's stage time in the timed day's run"
                + (" (the pass health and bias share counted whole in each)" if stage != "drift" else "")
                + ", "
                + (
                    f"on the {res['refreshed_pairs']} (model, day) pairs the run recomputed"
                    if stage != "drift" and res.get("refreshed_pairs")
                    else "on the day's rows"
                ),
            )
    return out


def same_run(results: dict, *scenarios: str) -> bool:
    """Whether the ``scenarios``' rows come from one run of the script (--merge adds rows of other runs)."""
    origin = {name: i for i, run in enumerate(results.get("merged_runs", [])) for name in run["scenarios"]}
    return len({origin.get(name) for name in scenarios}) == 1


def sql_limit_wall(res: dict) -> float:
    """The SQL limit's process wall without its once-only reference profile (the pipeline stores its own)."""
    sql = res.get("sql_limit") or {}
    return sql.get("wall", 0.0) - ((sql.get("payload") or {}).get("seconds") or {}).get("reference_profile_once", 0.0)


# the dbt models of each stage; intermediate.int_label_counts is the one pass health and bias share (their
# predictions joined with their labels), counted whole in each
STAGE_MODELS = {
    "health": ("int_label_counts", "model_health_daily", "int_score_calibration"),
    "bias": ("int_label_counts", "bias_daily"),
    # the shares per bin are computed in feature_drift_bins, PSI from them in feature_drift_daily
    "drift": ("feature_drift_bins", "feature_drift_daily"),
    "KPIs": ("kpi_daily", "experiment_stats"),
}


def stage_ratios(res: dict):
    """(stage, peer/project, project s, peer s, peer name) for a size whose peers ran."""
    day, peers = res.get("day"), (res.get("peers") or {}).get("payload")
    if not day or not peers or day.get("returncode") != 0:
        return
    dbt = day.get("dbt_models", {})
    steps = dict(day.get("steps", []))
    bias_python = sum(s for name, s in steps.items() if name.startswith("bias"))
    project = {stage: sum(dbt.get(n, 0) for n in STAGE_MODELS[stage]) for stage in ("health", "bias", "drift")}
    project["bias"] += bias_python
    seconds = peers.get("seconds", {})
    pairs = [
        ("health", seconds.get("sklearn_health"), "pandas + scikit-learn"),
        ("bias", seconds.get("fairlearn_bias"), "fairlearn MetricFrame"),
    ]
    ev = res.get("evidently") or {}
    if ev.get("payload"):
        pairs.append(("drift", ev["payload"]["seconds"], "Evidently DataDriftPreset"))
    for stage, peer, name in pairs:
        if peer and project[stage] > 0:
            yield stage, peer / project[stage], project[stage], peer, name


def markdown(results: dict) -> str:
    m = results["machine"]
    main_engine = results["args"]["engine"]
    sc = results["scenarios"]
    others = sorted({r["engine"] for r in sc.values() if r.get("engine", main_engine) != main_engine})
    lines = [
        f"`make bench` on {m['date']}, commit {m['commit']}: {m['nproc']} cores ({m['cpu']}), {m['ram_gib']} GiB RAM; "
        f"engine {main_engine}" + (f" (and {', '.join(others)} beside it, engine column)." if others else "."),
        f"Load before: `{results['uptime_before']}`; after: `{results.get('uptime_after', '?')}`. Python probe: the "
        "seconds a fresh interpreter took to import pandas and DuckDB just before each run (mean of 2; lower is "
        "faster), this shared machine's speed at that run.",
        f"Arguments: `{results['args']['argv']}`. Rows per day = `--predictions-per-day` x the models live that day "
        "(the synthetic world draws that many per model); sizes are all models together.",
    ]
    hist_run = results.get("history_run")
    if hist_run:  # the history part re-run alone (merged by hand before --merge existed)
        hm = hist_run["machine"]
        lines.append(
            'History world rows: a second run of the script for the history part only (`--sizes ""`), '
            f"{hm['date']}, commit {hm['commit']}; load before `{hist_run['uptime_before']}`, "
            f"after `{hist_run['uptime_after']}`."
        )
    for merged in results.get("merged_runs", []):
        mm = merged["machine"]
        lines.append(
            f"Rows {', '.join(merged['scenarios'])}: a separate run of the script (`{merged['argv']}`), "
            f"{mm['date']}, commit {mm['commit']}; load before `{merged['uptime_before']}`, "
            f"after `{merged.get('uptime_after', '?')}`."
        )
    settings = {
        json.dumps(r["spark_settings"], sort_keys=True): r["spark_settings"]
        for r in sc.values()
        if r.get("spark_settings")
    }
    for spark in settings.values():
        lines.append(
            "Spark rows: a local Spark session in dbt's process (dbt-spark `method: session`), "
            + ", ".join(f"{k} {v}" for k, v in spark.items())
            + "; what runs on which engine at the row's commit: README, Apache Spark."
        )
    lines += [
        "",
        "| run | engine | rows that day | wall s | CPU s | peak RSS GiB (tree) | loader s | gates s | dbt s "
        "| attribution/publish s | overhead s | Python probe s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def row(name, engine, rows, r):
        if not r:
            return
        if r["returncode"] != 0 and not r.get("stopped_early"):
            lines.append(f"| {name} | {engine} | {rows} | FAILED (exit {r['returncode']}) | | | | | | | | |")
            return
        st = r.get("stages", {})
        cells = [
            f"{st.get(k, 0):.1f}" if st else "" for k in ("loader", "gates", "dbt", "attribution/publish", "overhead")
        ]
        probe = r.get("speed_probe_s")  # none in runs before it was recorded
        cells.append("" if probe is None else f"{probe:.3f}")
        lines.append(
            f"| {name} | {engine} | {rows} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['peak_rss_gib']:.2f} | "
            + " | ".join(cells)
            + " |"
        )

    hist = sc.get("history")
    if hist:
        rows, eng = f"{hist['rows_per_day']:,}", hist.get("engine", main_engine)
        row("history world: 30-day single-run backfill (days 0-29)", eng, f"{rows} x 30", hist.get("backfill_30"))
        row("history world: day 30", eng, rows, hist.get("day_30"))
        n = results["args"]["history_days"]
        row(f"history world: days 31-{n - 1} in one run", eng, f"{rows} x {n - 31}", hist.get("history_rest"))
        row(f"history world: day {n}", eng, rows, hist.get(f"day_{n}"))
    for label, res in sc.items():
        if label == "history":
            continue
        size, eng = res.get("size", label), res.get("engine", main_engine)
        if res.get("skipped"):
            lines.append(f"| {size}: not run | {eng} | | skipped: {res['skipped']} | | | | | | | |")
            continue
        row(f"{size}: history up to {res.get('date', '?')} (excluded), one run", eng, "", res.get("history"))
        row(f"{size}: the day {res.get('date', '?')}", eng, f"{res['rows_per_day']:,}", res.get("day"))
        if res.get("not_run"):
            lines.append(
                f"| {size}: the day {res.get('date', '?')} | {eng} | | not run: {res['not_run']} | | | | | | | |"
            )
    lines += [
        "",
        "| size | output | pipeline s | hand-written DuckDB SQL s | peer | peer s | peer / pipeline |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, res in sc.items():
        if label == "history" or res.get("skipped") or res.get("engine", main_engine) != main_engine:
            continue  # the peers and the SQL limit run beside --engine's rows only
        day = res.get("day") or {}
        if res.get("big_day"):
            lines.append(f"| {label} | whole day (process wall) | {day.get('wall', 0):.1f} | not run | | | |")
            continue
        sql = (res.get("sql_limit") or {}).get("payload") or {}
        sql_s = sql.get("seconds", {})
        lines.append(
            f"| {label} | whole day (process wall) | {day.get('wall', 0):.1f} | {sql_limit_wall(res):.1f} "
            f"(+ {sql_s.get('reference_profile_once', 0):.1f} once for the reference profile; "
            f"reading the day {sql_s.get('load_day', 0):.1f}) | | | |"
        )
        ratios = {s: (r, p, q, n) for s, r, p, q, n in stage_ratios(res)}
        dbt = day.get("dbt_models", {})
        for stage, dbt_names in STAGE_MODELS.items():
            key = stage.lower()
            project = sum(dbt.get(n, 0) for n in dbt_names)
            r = ratios.get(stage)
            peer = f"| {r[3]} | {r[2]:.1f} | {r[0]:.1f}x |" if r else "| | | |"
            if stage == "bias" and r:
                project = r[1]
            lines.append(f"| {label} | {stage} | {project:.1f} | {sql_s.get(key, 0):.2f} " + peer)
        if res.get("peers_skipped"):
            lines.append(f"| {label} | peers | | | {res['peers_skipped']} | | |")
        if (res.get("evidently") or {}).get("skipped"):
            lines.append(f"| {label} | drift peer | | | Evidently skipped: {res['evidently']['skipped']} | | |")
    lines += ["", "| target (issue 16 item 2) | measured | limit | met | how |", "|---|---|---|---|---|"]
    for t in results.get("targets", []):
        met = {True: "yes", False: "**no**", None: "not measured"}[t["met"]]
        lines.append(f"| {t['target']} | {t['measured']} | {t['limit']} | {met} | {t['how']} |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100k,1m,10m", help=f"rows of the timed day, all models: {', '.join(SIZES)}")
    parser.add_argument(
        "--spark-sizes",
        default=SPARK_SIZES_DEFAULT,
        help="sizes also timed on the spark engine (local session) beside --engine's rows, on the same worlds; "
        '"" for none. Skipped with the reason if the `spark` extra or Java is missing',
    )
    parser.add_argument("--history-days", type=int, default=365, help="days of history before the last timed day")
    parser.add_argument("--history-per-model", type=int, default=2_000, help="predictions per model and day there")
    parser.add_argument("--no-history", action="store_true", help="skip the history world (backfills, day 30/365)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs of the history world's day 30 and last day (the same day again: a re-run replaces it; the "
        "re-runs of the two days alternate); their targets use the median wall, the table the first run",
    )
    parser.add_argument(
        "--peer-max-size", default=PEER_MAX_DEFAULT, choices=SIZES, help="largest size the peers run at"
    )
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument(
        "--engine",
        default="duckdb",
        choices=("duckdb", "spark"),
        help="the engine of the main rows (IMPACT_LEDGER_ENGINE): sizes, history world, SQL limit and peers beside",
    )
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument(
        "--memory-limit",
        default="2500MB",
        help="DuckDB memory_limit of the 10M-row day (IMPACT_LEDGER_MEMORY_LIMIT; with Spark: the loader's and "
        "the gates' DuckDB; the Spark driver's is IMPACT_LEDGER_SPARK_DRIVER_MEMORY)",
    )
    parser.add_argument(
        "--config",
        default=str(ROOT / "expectations" / "demo.yml"),
        help="project file for the synthetic worlds (default: the demo's, whose models the generator plants)",
    )
    parser.add_argument("--out", default=str(ROOT / "data" / "bench"))
    parser.add_argument("--keep-warehouses", action="store_true", help="keep each size's warehouse (they are large)")
    parser.add_argument("--generate-only", action="store_true", help="write (or reuse) the worlds, time nothing")
    parser.add_argument("--render", action="store_true", help="rewrite results.md from --out's results.json only")
    parser.add_argument(
        "--merge",
        metavar="RESULTS_JSON",
        help="add the rows of another run's results.json (e.g. the Spark rows alone) to --out's, with that run's "
        "date, commit, load and arguments; rows of the same key are replaced. Then renders results.md",
    )
    parser.add_argument("--task", help=argparse.SUPPRESS)  # internal: a worker process (sql, peers)
    return parser


def parse_args(argv: list[str] | None = None):
    """(args, rest): args.sizes and args.spark_sizes become lists of known sizes."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.task or args.render or args.merge:
        return args, rest
    for name in ("sizes", "spark_sizes"):
        listed = [x.strip().lower() for x in getattr(args, name).split(",") if x.strip()]
        unknown = [x for x in listed if x not in SIZES]
        if unknown:
            parser.error(f"--{name.replace('_', '-')}: unknown size(s) {unknown}; known: {', '.join(SIZES)}")
        setattr(args, name, listed)
    if args.engine == "spark":
        args.spark_sizes = []  # the main rows are Spark's already
    return args, rest


def plan(args) -> list[tuple[str, str]]:
    """(size, engine) in run order: each size on --engine, then on spark while its world is fresh in the page
    cache; the spark-only sizes after."""
    out = []
    for label in args.sizes:
        out.append((label, args.engine))
        if label in args.spark_sizes:
            out.append((label, "spark"))
    out += [(label, "spark") for label in args.spark_sizes if label not in args.sizes]
    return out


def merge(results: dict, other: dict) -> dict:
    """``results`` with ``other``'s scenarios added (same key: replaced) and ``other``'s run recorded."""
    merged = {**results, "scenarios": {**results["scenarios"], **other["scenarios"]}}
    run = {
        "machine": other["machine"],
        "uptime_before": other.get("uptime_before"),
        "uptime_after": other.get("uptime_after"),
        "argv": other.get("args", {}).get("argv", "?"),
        "scenarios": list(other["scenarios"]),
    }
    # an earlier merged run keeps the rows the new one does not replace (none left: it is dropped)
    earlier = [
        {**r, "scenarios": [k for k in r["scenarios"] if k not in other["scenarios"]]}
        for r in results.get("merged_runs", [])
    ]
    merged["merged_runs"] = [r for r in earlier if r["scenarios"]] + [run]
    merged["targets"] = targets(merged)
    return merged


def main() -> None:
    args, rest = parse_args()
    if args.task:
        from _bench_tasks import run_task

        print(json.dumps(run_task(args.task, json.loads(rest[0]))), flush=True)
        return
    if args.render or args.merge:
        path = Path(args.out) / "results.json"
        results = json.loads(path.read_text())
        if args.merge:
            results = merge(results, json.loads(Path(args.merge).read_text()))
            path.write_text(json.dumps(results, indent=1, default=str))
        results["targets"] = targets(results)
        (Path(args.out) / "results.md").write_text(markdown(results))
        print(markdown(results))
        return
    try:
        import psutil  # noqa: F401
    except ImportError:
        raise SystemExit("psutil is missing: .venv/bin/pip install -e '.[test]' (pyproject's test extra pins it)")
    if not args.generate_only and not (ROOT / "dbt_project" / "target" / "manifest.json").exists():  # runs import it
        raise SystemExit("the dbt manifest is missing: run `make manifest` first (`make bench` does)")
    bench = Bench(args)
    bench.results.update(
        machine=machine(),
        uptime_before=uptime(),
        args={**vars(args), "argv": shlex.join(sys.argv[1:]) or "(defaults)"},
        rows_per_day_note=(
            "rows per day = --predictions-per-day x models live that day; sizes are the timed day's rows, all models"
        ),
    )
    say(f"machine: {bench.results['machine']}; load: {bench.results['uptime_before']}")
    # the sizes first: the 1M comparison and the peers are there even if a long history run is stopped
    for label, engine in plan(args):
        if engine == args.engine:
            bench.size(label)
        else:
            bench.spark_size(label)
    if not args.no_history:
        bench.history()
    if args.generate_only:
        say("worlds written (--generate-only): nothing timed")
        return
    bench.results["uptime_after"] = uptime()
    bench.save()
    table = markdown(bench.results)
    say(f"wrote {bench.out / 'results.json'} and {bench.out / 'results.md'}")
    print(table)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
