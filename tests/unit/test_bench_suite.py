"""`make bench`'s parts that produce numbers besides timings: the progress-line parser (stages) and the
hand-written DuckDB SQL limit, checked against scikit-learn, fairlearn and numpy on a small synthetic world."""

import sys
from datetime import timedelta
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
