"""`make bench`'s parts that produce numbers besides timings: the progress-line parser (stages), the
hand-written DuckDB SQL limit, checked against scikit-learn, fairlearn and numpy on a small synthetic world,
and the Spark rows' plumbing (arguments, skip reason, settings, orphaned processes, rendering, merging)
without starting Spark."""

import json
import subprocess
import sys
import textwrap
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, true_positive_rate
from sklearn.metrics import precision_score, recall_score

from orchestration.lib.project_config import load_config
from orchestration.lib.synthetic_world import WorldConfig, generate_world

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _bench_tasks  # noqa: E402
import bench_suite  # noqa: E402


def test_progress_lines_become_stages():
    lines = [
        "    [    1.0s] 2026-09-24 .. 2026-09-24 raw.experiments started",
        "    [    1.1s] 2026-09-24 .. 2026-09-24 raw.experiments done in 0.5s",
        "    [    5.0s] 2026-09-24 .. 2026-09-24 quality gate raw_users (raw.users) done in 3.9s: 1 check(s) passed",
        "    [   58.1s] 2026-09-01 .. 2026-09-30 dbt build (staging, marts and their tests) done in 33.2s: 21 asset(s)",
        "    [   61.0s] 2026-09-24 .. 2026-09-24 bias_window_assets done in 1.8s: 2 asset(s)",
        "    [   62.0s] 2026-09-24 .. 2026-09-24 marts.alerts FAILED in 0.4s",
        "  2026-09-24 .. 2026-09-24: ok in 73.3s, 41 assets (run 551d311c)",
    ]
    steps = [(m["step"], float(m["secs"])) for line in lines if (m := bench_suite.STEP_DONE.search(line))]
    assert [s for s, _ in steps] == [
        "raw.experiments",
        "quality gate raw_users (raw.users)",
        "dbt build (staging, marts and their tests)",
        "bias_window_assets",
        "marts.alerts",
    ]
    stages = bench_suite.stages_of(steps, wall=50.0)
    assert stages == {"loader": 0.5, "gates": 3.9, "dbt": 33.2, "attribution/publish": 2.2, "overhead": 10.2}
    assert bench_suite.STEP_STARTED.match(lines[0]) and not bench_suite.STEP_STARTED.match(lines[1])
    assert bench_suite.RUN_ID.search(lines[-1])["id"] == "551d311c"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    raw = tmp_path_factory.mktemp("bench") / "raw"
    cfg = WorldConfig(days=24, users=2_000, predictions_per_day=3_000, seed=3)
    generate_world(raw, cfg, progress=None)
    return raw, cfg.day_date(max(m.start_day for m in cfg.models))


def _rows_frame(raw: Path, pairs) -> pd.DataFrame:
    """The predictions of the (model, day) pairs, with their first label and decision."""
    preds = pd.read_parquet(raw / "predictions")
    preds["date"] = preds["predicted_at"].dt.date
    preds = preds[[(m, d) in pairs for m, d in zip(preds["model_id"], preds["date"], strict=True)]].copy()
    labels = pd.read_parquet(raw / "labels").sort_values("labeled_at").drop_duplicates("prediction_id")
    frame = preds.merge(labels[["prediction_id", "label"]], on="prediction_id", how="left")
    frame["decision"] = (frame["score"] >= frame["threshold"].fillna(0.5)).astype(int)
    return frame


def test_sql_limit_matches_sklearn_fairlearn_and_numpy(world):
    raw, day = world
    config_path = str(Path(__file__).resolve().parents[2] / "expectations" / "demo.yml")
    # the run's refresh: the day for every model, and two earlier days of one model (late labels)
    preds = pd.read_parquet(raw / "predictions", columns=["model_id", "predicted_at"])
    oldest = preds.loc[preds["predicted_at"].idxmin(), "model_id"]  # live before the day
    pairs = {(m, day) for m in preds["model_id"].unique()}
    pairs |= {(oldest, day - timedelta(days=2)), (oldest, day - timedelta(days=5))}
    refresh = [[m, d.isoformat()] for m, d in sorted(pairs)]
    out = _bench_tasks.sql_limit(
        {"raw": str(raw), "day": day.isoformat(), "config": config_path, "refresh": refresh, "return_tables": True}
    )
    frame = _rows_frame(raw, pairs)
    assert out["refreshed_rows"] == len(frame) > out["rows"] == (frame["date"] == day).sum()

    peers = _bench_tasks.peers({"raw": str(raw), "day": day.isoformat(), "config": config_path, "refresh": refresh})
    assert peers["health_groups"] == frame.groupby(["date", "model_id", "model_version"]).ngroups  # the same rows

    health = out["health"].assign(date=lambda f: f["date"].dt.date).set_index(["date", "model_id", "model_version"])
    assert len(health) == frame.groupby(["date", "model_id", "model_version"]).ngroups
    for (d, model, version), g in frame.groupby(["date", "model_id", "model_version"]):
        lab = g.dropna(subset=["label"])
        row = health.loc[(d, model, version)]
        assert row["predictions"] == len(g)
        assert row["labelled"] == len(lab)
        assert row["precision"] == pytest.approx(precision_score(lab["label"].astype(int), lab["decision"]))
        assert row["recall"] == pytest.approx(recall_score(lab["label"].astype(int), lab["decision"]))

    config = load_config(Path(config_path))
    attribute = config.protected_attributes[0]
    users = pd.read_parquet(raw / "users")[["user_id", attribute]]
    labelled = frame.dropna(subset=["label"]).merge(users, on="user_id")
    bias = out["bias"][out["bias"]["attribute"] == attribute]
    bias = bias.assign(date=bias["date"].dt.date).set_index(["date", "model_id", "grp"])
    for (d, model), g in labelled.groupby(["date", "model_id"]):
        mf = MetricFrame(
            metrics=true_positive_rate,
            y_true=g["label"].astype(int),
            y_pred=g["decision"],
            sensitive_features=g[attribute],
        )
        for group, tpr in mf.by_group.items():
            if not np.isnan(tpr):
                assert bias.loc[(d, model, group), "tpr"] == pytest.approx(tpr)

    # drift of the score: PSI over the reference window's deciles, computed with numpy
    preds = pd.read_parquet(raw / "predictions")
    drift = out["drift"].set_index(["model_id", "model_version", "feature"])
    for model, version, first, last in _bench_tasks.drift_references(raw, day, config_path):
        mine = preds[(preds["model_id"] == model) & (preds["model_version"] == version)]
        dates = mine["predicted_at"].dt.date
        ref = mine.loc[(dates >= first) & (dates <= last), "score"].to_numpy()
        cur = mine.loc[dates == day, "score"].to_numpy()
        edges = np.quantile(ref, np.arange(1, 10) / 10)
        ref_share = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=10) / len(ref)
        cur_share = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=10) / len(cur)
        cur_share = np.where(cur_share == 0, 1e-4, cur_share)
        keep = ref_share > 0
        psi = np.sum((cur_share[keep] - ref_share[keep]) * np.log(cur_share[keep] / ref_share[keep]))
        assert drift.loc[(model, version, "score"), "psi"] == pytest.approx(psi, rel=1e-9, abs=1e-12)


# ------------------------------------------------------------------------------------------ the Spark rows


def test_spark_rows_by_default_on_1m_and_10m_and_none_when_asked():
    args, _ = bench_suite.parse_args([])
    assert args.spark_sizes == ["1m", "10m"] and args.sizes == ["100k", "1m", "10m"]
    # each size on --engine, then on spark while its world is fresh
    assert bench_suite.plan(args) == [
        ("100k", "duckdb"),
        ("1m", "duckdb"),
        ("1m", "spark"),
        ("10m", "duckdb"),
        ("10m", "spark"),
    ]
    assert bench_suite.parse_args(["--spark-sizes", ""])[0].spark_sizes == []
    # only the Spark rows: no --engine sizes, the worlds are generated (or reused) all the same
    only, _ = bench_suite.parse_args(["--sizes", "", "--spark-sizes", "1M, 10m"])
    assert bench_suite.plan(only) == [("1m", "spark"), ("10m", "spark")]
    # --engine spark: the main rows are Spark's, no second Spark row
    assert bench_suite.plan(bench_suite.parse_args(["--engine", "spark", "--sizes", "1m"])[0]) == [("1m", "spark")]
    with pytest.raises(SystemExit):
        bench_suite.parse_args(["--spark-sizes", "5m"])


def test_spark_skip_reason_names_what_is_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))  # no bin/java there
    reason = bench_suite.spark_skip_reason()
    assert reason and "Java" in reason and str(tmp_path) in reason

    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyspark" else real(name, *a))
    reason = bench_suite.spark_skip_reason()
    assert reason and "`spark` extra" in reason and "pyspark" in reason


def test_spark_settings_are_the_profiles_with_the_environment_over_them():
    settings = bench_suite.spark_settings({"IMPACT_LEDGER_SPARK_DRIVER_MEMORY": "3g"})
    assert settings["IMPACT_LEDGER_SPARK_DRIVER_MEMORY"] == "3g"
    assert {"IMPACT_LEDGER_SPARK_MASTER", "IMPACT_LEDGER_SPARK_SHUFFLE_PARTITIONS"} <= set(settings)
    # the folder is each scenario's own; the Thrift output's host and port are not the session's
    assert not {"IMPACT_LEDGER_SPARK_DIR", "IMPACT_LEDGER_SPARK_HOST", "IMPACT_LEDGER_SPARK_PORT"} & set(settings)
    assert bench_suite.spark_settings({})["IMPACT_LEDGER_SPARK_DRIVER_MEMORY"]  # profiles.yml's default


def test_a_measured_tree_counts_the_orphans_it_leaves(tmp_path):
    """pyspark's JVM outlives dbt's Python: a child that exits at once, leaving a grandchild burning CPU and
    holding memory, still has that grandchild's CPU and RSS counted (run in a subprocess: becoming a
    subreaper is for the whole process)."""
    code = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(Path(bench_suite.__file__).parent)!r})
        import bench_suite
        orphan = "b = bytearray(300 * 2**20); import time; t = time.process_time()\\nwhile time.process_time() - t < 1.5: b[0] = 1"
        cmd = ["sh", "-c", f"{{sys.executable}} -c '{{orphan}}' >/dev/null 2>&1 & exit 0"]
        m = bench_suite.run_measured(cmd, {{}})
        print(json.dumps({{"wall": m.wall, "cpu": m.cpu, "rss": m.peak_rss_gib, "rc": m.returncode}}))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["rc"] == 0
    assert figures["wall"] < 1.0  # the measured process itself exits at once
    assert figures["cpu"] >= 1.4  # the orphan's CPU, reaped by the benchmark
    assert figures["rss"] >= 0.25  # its 300 MiB, sampled after its parent has gone


def _run(wall, stages=None, rc=0):
    st = stages or {"loader": 1.0, "gates": 2.0, "dbt": 3.0, "attribution/publish": 1.0, "overhead": 4.0}
    return {"returncode": rc, "wall": wall, "cpu": wall * 1.5, "peak_rss_gib": 1.25, "stages": st, "steps": []}


def _results():
    machine = {"nproc": 2, "ram_gib": 8.0, "cpu": "test", "python": "3", "date": "2026-01-01 10:00 UTC"}
    return {
        "machine": {**machine, "commit": "aaa"},
        "uptime_before": "load 0.1",
        "uptime_after": "load 0.2",
        "args": {"engine": "duckdb", "argv": "(defaults)", "history_days": 365},
        "scenarios": {
            "1m": {"engine": "duckdb", "rows_per_day": 1_000_000, "date": "2026-09-18", "day": _run(27.0)},
            # rows of an older results.json have no engine: --engine's
            "10m": {"rows_per_day": 10_000_000, "date": "2026-09-24", "day": _run(99.0), "big_day": {}},
        },
    }


def _spark_results():
    settings = {"IMPACT_LEDGER_SPARK_DRIVER_MEMORY": "2g", "IMPACT_LEDGER_SPARK_MASTER": "local[*]"}
    return {
        "machine": {"nproc": 2, "ram_gib": 8.0, "cpu": "test", "python": "3", "date": "2026-01-02 11:00 UTC"},
        "uptime_before": "load 1.5",
        "uptime_after": "load 2.5",
        "args": {"engine": "duckdb", "argv": "--sizes '' --spark-sizes 1m,10m"},
        "scenarios": {
            "1m-spark": {
                "engine": "spark",
                "size": "1m",
                "rows_per_day": 1_000_000,
                "date": "2026-09-18",
                "spark_settings": settings,
                "history": _run(150.0),
                "day": _run(120.0),
            },
            "10m-spark": {"engine": "spark", "size": "10m", "skipped": "engine: spark needs a Java 17 runtime"},
        },
    }


def test_markdown_shows_each_rows_engine_and_the_skipped_ones():
    results = bench_suite.merge(
        _results(), {**_spark_results(), "machine": {**_spark_results()["machine"], "commit": "bbb"}}
    )
    results["scenarios"]["1m"]["day"]["speed_probe_s"] = 0.0412  # the machine's speed just before the run
    md = bench_suite.markdown(results)
    assert "engine duckdb (and spark beside it, engine column)." in md
    assert "| run | engine | rows that day | wall s |" in md and "| overhead s | Python probe s |" in md
    day = "| 1m: the day 2026-09-18 | duckdb | 1,000,000 | 27.0 | 40.5 | 1.25 | 1.0 | 2.0 | 3.0 | 1.0 | 4.0 | 0.041 |"
    assert day in md
    # a run recorded before the probe existed: an empty cell
    assert (
        "| 10m: the day 2026-09-24 | duckdb | 10,000,000 | 99.0 | 148.5 | 1.25 | 1.0 | 2.0 | 3.0 | 1.0 | 4.0 |  |" in md
    )
    assert "| 10m: the day 2026-09-24 | duckdb | 10,000,000 | 99.0 |" in md
    assert "| 1m: history up to 2026-09-18 (excluded), one run | spark |  | 150.0 |" in md
    assert "| 1m: the day 2026-09-18 | spark | 1,000,000 | 120.0 | 180.0 | 1.25 |" in md
    assert "| 10m: not run | spark | | skipped: engine: spark needs a Java 17 runtime |" in md
    # the Spark run's own date, commit, load and arguments, and its settings
    assert (
        "Rows 1m-spark, 10m-spark: a separate run of the script (`--sizes '' --spark-sizes 1m,10m`), "
        "2026-01-02 11:00 UTC, commit bbb; load before `load 1.5`, after `load 2.5`."
    ) in md
    assert "IMPACT_LEDGER_SPARK_DRIVER_MEMORY 2g, IMPACT_LEDGER_SPARK_MASTER local[*]" in md
    # a big day whose history run failed: the history row says FAILED, the day that it did not run
    failed = {**_run(30.0, rc=1), "tail": ["boom"]}
    results["scenarios"]["10m-spark"] = {
        "engine": "spark",
        "size": "10m",
        "rows_per_day": 10_000_000,
        "date": "2026-09-24",
        "history": failed,
        "day": None,
        "not_run": "the history run failed",
    }
    md2 = bench_suite.markdown(results)
    assert "| 10m: history up to 2026-09-24 (excluded), one run | spark |  | FAILED (exit 1) |" in md2
    assert "| 10m: the day 2026-09-24 | spark | | not run: the history run failed |" in md2
    # the peers' table lists --engine's sizes only
    peers = md.split("| size | output |")[1].split("| target")[0]
    assert "| 1m | whole day (process wall) | 27.0 |" in peers and "spark" not in peers


def test_merge_keeps_the_rows_and_metadata_and_replaces_a_rerun():
    base = _results()
    spark = {**_spark_results(), "machine": {**_spark_results()["machine"], "commit": "bbb"}}
    merged = bench_suite.merge(base, spark)
    assert list(merged["scenarios"]) == ["1m", "10m", "1m-spark", "10m-spark"]
    assert merged["machine"] == base["machine"] and merged["uptime_before"] == "load 0.1"
    assert [r["machine"]["commit"] for r in merged["merged_runs"]] == ["bbb"]
    again = {**spark, "machine": {**spark["machine"], "commit": "ccc"}}
    again["scenarios"] = {**spark["scenarios"], "10m-spark": {**spark["scenarios"]["1m-spark"], "size": "10m"}}
    twice = bench_suite.merge(merged, again)
    assert [r["machine"]["commit"] for r in twice["merged_runs"]] == ["ccc"]  # the same rows: the newer run
    assert twice["scenarios"]["10m-spark"]["day"]["wall"] == 120.0
    assert base["scenarios"] == _results()["scenarios"]  # not modified in place
    # a later run of one of the rows: the earlier run keeps the other row
    one = {
        **spark,
        "machine": {**spark["machine"], "commit": "ddd"},
        "scenarios": {"1m-spark": spark["scenarios"]["1m-spark"]},
    }
    thrice = bench_suite.merge(twice, one)
    assert [(r["machine"]["commit"], r["scenarios"]) for r in thrice["merged_runs"]] == [
        ("ccc", ["10m-spark"]),
        ("ddd", ["1m-spark"]),
    ]
    assert "Rows 10m-spark: a separate run" in bench_suite.markdown(thrice)


def test_the_little_day_and_history_targets_use_the_median_of_their_runs():
    results = _results()
    results["scenarios"]["history"] = {
        "rows_per_day": 4_000,
        "day_30": _run(10.3),
        "day_30_walls": [10.3, 9.8, 9.9],
        "day_365": _run(11.9),
        "day_365_walls": [11.9, 11.5, 11.7],
    }
    by_name = {t["target"]: t for t in bench_suite.targets(results)}
    little = by_name["a day with little data completes in <= 10 s wall, process start included"]
    assert little["measured"] == "9.9 s (median of 3: 10.3, 9.8, 9.9 s)" and little["met"]
    history = by_name["a day after 365 days of history <= 1.2x day 30"]
    ratio = 11.7 / 9.9  # by hand: the medians
    assert history["measured"].startswith(f"{ratio:.2f}x (11.7 s (median of 3") and history["met"] == (ratio <= 1.2)
    # a results.json from before --repeats: its one run
    del results["scenarios"]["history"]["day_30_walls"]
    assert bench_suite.targets(results)[0]["measured"] == "10.3 s" and not bench_suite.targets(results)[0]["met"]


def test_the_repeats_of_day_30_and_the_last_day_take_turns_and_a_failed_day_stops_alone(tmp_path):
    args, _ = bench_suite.parse_args(["--repeats", "3", "--out", str(tmp_path)])
    bench = bench_suite.Bench(args)
    calls, walls = [], iter([10.0, 12.0, 10.5, 99.0])
    fail = {("b", 3)}  # the last day's third run fails

    def materialize(scenario, raw, first, last, what):
        run = int(what.split("run ")[1].split(" of")[0])
        calls.append((scenario.name, run))
        code = 1 if (scenario.name, run) in fail else 0
        return bench_suite.Measured(command="", wall=next(walls), cpu=0.0, peak_rss_gib=0.0, returncode=code)

    bench.materialize = materialize
    first_a, first_b = {"wall": 9.0, "returncode": 0}, {"wall": 11.0, "returncode": 0}
    day = date(2026, 9, 1)
    a, b = bench.walls_of_repeats(Path("raw"), (tmp_path / "a", day, first_a, "a"), (tmp_path / "b", day, first_b, "b"))
    assert calls == [("a", 2), ("b", 2), ("a", 3), ("b", 3)]  # in turns
    assert (a, b) == ([9.0, 10.0, 10.5], [11.0, 12.0])  # the failed run is not a wall
    # a day whose first run failed is not run again; the other still is
    calls.clear()
    walls = iter([8.0, 8.5])
    a, b = bench.walls_of_repeats(
        Path("raw"), (tmp_path / "a", day, first_a, "a"), (tmp_path / "b", day, {"wall": 1.0, "returncode": 1}, "b")
    )
    assert calls == [("a", 2), ("a", 3)] and (a, b) == ([9.0, 8.0, 8.5], [])


def test_a_big_days_runs_each_get_the_speed_probe_taken_just_before_them(tmp_path, monkeypatch):
    import bench_big_day

    raw = tmp_path / "raw"
    (raw / "predictions").mkdir(parents=True)
    calls = []

    def fake_world(raw_dir, rows, memory_limit, seed, env):
        return date(2026, 9, 24), raw_dir / "predictions" / "predictions_2026-09-24.csv", 10

    def fake_measure(cmd, env, echo):
        calls.append(("run", cmd[-1]))
        figures = {"returncode": 0, "wall_s": 9.0, "cpu_s": 8.0, "peak_rss_gib": 1.0, "largest_process_gib": 0.5}
        return {**figures, "steps": [], "tail": []}

    def probe():
        calls.append(("probe", None))
        return 0.25 * len(calls)

    monkeypatch.setattr(bench_big_day, "big_world", fake_world)
    monkeypatch.setattr(bench_big_day, "measure", fake_measure)
    figures = bench_big_day.big_day(tmp_path / "out", 1_000, "1GB", raw=raw, probe=probe)
    assert calls == [("probe", None), ("run", "2026-09-23"), ("probe", None), ("run", "2026-09-24")]
    history, day = bench_suite.big_run(figures.pop("history")), bench_suite.big_run(figures)
    assert (history["speed_probe_s"], day["speed_probe_s"]) == (0.25, 0.75)  # each its own probe
    # without a probe (bench_big_day run alone, or results from before the probe): none
    assert bench_suite.big_run(bench_big_day.big_day(tmp_path / "out2", 1_000, "1GB", raw=raw))["speed_probe_s"] is None


def test_the_1m_target_says_what_a_little_day_costs_against_the_limit_when_both_ran_together():
    results = _results()
    results["scenarios"]["1m"]["sql_limit"] = {"wall": 4.0, "payload": {"seconds": {"reference_profile_once": 1.5}}}
    results["scenarios"]["history"] = {"rows_per_day": 4_000, "day_30": _run(9.0), "day_30_walls": [9.0, 8.0, 10.0]}

    def one_million():
        return {t["target"]: t for t in bench_suite.targets(results)}["one 1M-row day <= 1.5x the SQL limit (same run)"]

    target = one_million()
    # by hand: limit 4.0 - 1.5 = 2.5 s; the day 27.0 s; day 30's median 9.0 s
    assert target["measured"] == "10.8x (27 s vs 2.5 s)" and target["met"] is False
    assert target["how"].endswith("takes 9.0 s = 3.6x the limit by itself, the 1M rows add 18.0 s = 7.2x")
    # the history world's rows from another run (--merge): machines drift, so no comparison across runs
    results["merged_runs"] = [{"machine": {}, "scenarios": ["history"]}]
    assert "by itself" not in one_million()["how"]
    results["merged_runs"] = [{"machine": {}, "scenarios": ["history", "1m"]}]
    assert "by itself" in one_million()["how"]


def test_a_timed_days_gx_store_is_grown_to_the_index_limit_with_pages(tmp_path, monkeypatch):
    # as ~19 daily runs leave it: copies of the history run's results under earlier run times, each with its page
    monkeypatch.setenv("IMPACT_LEDGER_GX_DOCS_INDEX_LIMIT", "60")
    store = tmp_path / "docs" / "gx_context" / "gx" / "uncommitted" / "validations"
    pages = tmp_path / "docs" / "gx" / "validations"
    for suite in ("raw_orders_rows", "raw_orders_days"):
        for root, ext in ((store, "json"), (pages, "html")):
            path = root / suite / "__none__" / "20260901T000000.000000Z" / f"impact_ledger-{suite}.{ext}"
            path.parent.mkdir(parents=True)
            path.write_text(f"{suite} {ext}")
    assert bench_suite.grow_docs_store(tmp_path) == 60
    results = sorted(store.rglob("*.json"))
    assert len(results) == 60 and len({r.parent.name for r in results}) == 59  # the seed's time and 58 earlier
    for result in results:
        page = pages / result.relative_to(store).with_suffix(".html")
        assert page.read_text() == result.read_text().replace("json", "html")
    assert bench_suite.grow_docs_store(tmp_path) == 60  # already full: nothing added
