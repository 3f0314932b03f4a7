"""A model too small to judge, said honestly (a trial's palliative-care score, 100 predictions in its whole life):

- its drift: no setting of its reference or pool can judge a PSI while its values so far are fewer than the twice
  alerts.rules.psi.min_count the two need together; summary and the report said "lengthen both: about 375 days
  hold 200 at its rate". The mart built by dbt from predictions made here, the counts by hand.
- its label-free precision (CBPE): a calibration learnt from 7 labels that leaves some score bins raw read
  "0.940 part raw", the few labels unsaid, in summary and in the report.
"""

import math
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orchestration import summary
from orchestration.lib.alerts import (
    DRIFT_SQL,
    drift_not_judged,
    drift_not_judged_text,
    load_alert_config,
    version_values,
)
from orchestration.lib.project_config import config_dbt_vars, parse_config
from tests.dbt_in_process import run_dbt
from tests.drift_worlds import load_days, prediction_day
from tests.unit.test_summary_attribution import _monitoring_only, _summary_under

REFERENCE_DAYS = 7
DAYS = [date(2026, 9, 1) + timedelta(days=i) for i in range(40)]
PER_DAY = {"tiny": 3, "busy": 30}  # busy: 7-day pools and reference of 210, judged at min_count 200
PROJECT = {"models": {m: {"drift_reference": {"first_days": REFERENCE_DAYS}} for m in PER_DAY}}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("too_few")
    source, db = root / "landing", root / "warehouse.duckdb"
    rng = np.random.default_rng(5)
    frames = []
    (source / "predictions").mkdir(parents=True)
    for i, day in enumerate(DAYS):
        table = pd.concat([prediction_day(m, i, day, PER_DAY[m], rng) for m in PER_DAY], ignore_index=True)
        pq.write_table(pa.Table.from_pandas(table, preserve_index=False), source / "predictions" / f"p_{day}.parquet")
        frames.append(table)
    users = pd.DataFrame({"user_id": [f"u{k}" for k in range(30)], "signup_at": pd.Timestamp("2026-01-01")})
    (source / "users").mkdir()
    users.to_parquet(source / "users" / "users.parquet", index=False)
    load_days(db, source, DAYS)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IMPACT_LEDGER_DB", str(db))
        mp.setenv("IMPACT_LEDGER_TEMP_DIR", str(root / "tmp"))
        mp.setenv("IMPACT_LEDGER_MIN_DATE", DAYS[0].isoformat())
        mp.setenv("IMPACT_LEDGER_MAX_DATE", DAYS[-1].isoformat())
        result = run_dbt("run", ["+feature_drift_daily"], str(root / "target"), config_dbt_vars(parse_config(PROJECT)))
        assert result.success, result.exception
    with duckdb.connect(str(db)) as conn:
        drift = conn.execute(DRIFT_SQL, [DAYS[-30], DAYS[-1]]).df()
    return root, pd.concat(frames, ignore_index=True), drift


def _config(min_count: int):
    return load_alert_config(parse_config({**PROJECT, "alerts": {"rules": {"psi": {"min_count": min_count}}}}))


def _said(root, drift, min_count: int) -> dict[str, str]:
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as conn:
        so_far = version_values(conn, DAYS[-1])
    found = drift_not_judged(drift, _config(min_count), so_far)
    return {r.model_id: drift_not_judged_text(r) for r in found.itertuples()}


HEAD = (
    "tiny v1: drift (PSI) alerts not judged, even pooled: the reference and the pool need "
    "alerts.rules.psi.min_count ({m}) values each"
)
NOISIER = "a noisier verdict: the fewer its values, the more often noise alone crosses the PSI threshold"


def test_a_version_with_fewer_values_in_all_than_min_count_is_told_no_window_can_hold_them(world):
    root, predictions, drift = world
    tiny = predictions[predictions["model_id"] == "tiny"]
    # by hand: 40 days x 3 = 120 predictions in all, each with a score (its fullest feature); its last 30 days
    # (all after its 7-day reference) 90 values in 30 calendar days: 3 a day; 400 - 120 = 280 more take 93.3 days
    so_far, per_day = len(tiny), 30 * PER_DAY["tiny"] / 30
    assert so_far == 120 and tiny["score"].notna().all()
    said = _said(root, drift, 200)
    assert list(said) == ["tiny"]  # busy: its 210-value pools and reference are judged
    assert said["tiny"] == (
        f"{HEAD.format(m=200)}; in all, its predictions so far hold {so_far} values of its fullest feature (its "
        "reference window's and every day's since), fewer than 200: no window, reference or pool, can hold 200 "
        f"yet, so no setting judges it: lower alerts.rules.psi.min_count ({NOISIER}) or wait about "
        f"{math.ceil((400 - so_far) / per_day)} more days at its rate for the 400 the two need together"
    )
    assert "lengthen" not in said["tiny"]


def test_a_version_with_min_count_but_not_twice_it_in_all_is_told_no_setting_judges_it_yet(world):
    root, _, drift = world
    # by hand: 120 values, at least 100 but fewer than the 200 a reference and a pool of 100 each need; 80 more
    # at 3 a day take 26.7 days, then a reference of 100 (first_days) leaves the pool the rest
    assert _said(root, drift, 100)["tiny"] == (
        f"{HEAD.format(m=100)}; in all, its predictions so far hold 120 values of its fullest feature (its "
        "reference window's and every day's since), fewer than the 200 the two need together, so no setting "
        "judges it yet: about 27 more days at its rate, with models.tiny.drift_reference.first_days holding 100 "
        f"(or lower alerts.rules.psi.min_count: {NOISIER})"
    )


def test_a_version_with_twice_min_count_in_all_is_still_told_to_lengthen_its_windows(world):
    root, _, drift = world
    # by hand: 120 >= 2 x 50; its reference of 7 x 3 = 21 and 7-day pools of 21 are short: 50 take 16.7 days
    assert _said(root, drift, 50)["tiny"] == (
        f"{HEAD.format(m=50)}; lengthen models.tiny.drift_reference.first_days (its reference holds at most 21 "
        "values of a feature) and models.tiny.alerts.psi.pool_days (its 7-day pools hold at most 21): about 17 "
        "days hold 50 at its rate"
    )


def test_summary_and_the_report_say_the_same_of_it(world, tmp_path, monkeypatch):
    from orchestration.lib.report import ReportBuilder

    root, _, _ = world
    config = tmp_path / "project.yml"
    config.write_text(
        "models:\n  tiny: {drift_reference: {first_days: 7}}\n  busy: {drift_reference: {first_days: 7}}\n"
    )
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(config))
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as conn:
        lines = summary._drift_not_judged(conn, summary._recent_drift(conn))
        unjudged = ReportBuilder(conn, DAYS[-1], _config(200))._drift_not_judged("tiny")
    assert len(lines) == 1 and "hold 120 values of its fullest feature" in lines[0]
    assert "no window, reference or pool, can hold 200 yet" in lines[0]
    assert [drift_not_judged_text(r) for r in unjudged.itertuples()] == lines


def _partly_raw_warehouse(path):
    """A model of 10 predictions a day whose calibration was learnt from 7 labels in 3 of its 10 score bins: 4 of
    its 30 days' predictions all fall in learnt bins (cbpe_calibrated), the others partly in bins never labelled."""
    days = pd.date_range("2026-03-01", periods=30, freq="D")
    health = pd.DataFrame(
        {
            "date": [d.date() for d in days],
            "model_id": "palliative",
            "model_version": "v1",
            "predictions": 10,
            "positive_rate": 0.5,
            "labelled": 2,
            "true_positives": 1,
            "false_positives": 1,
            "false_negatives": 0,
            "true_negatives": 0,
            "estimated_precision": [0.9 if i % 2 else 1.0 for i in range(30)],
            "labels_as_of": days[-1].date(),
            "cbpe_calibrated": [i < 4 for i in range(30)],
        }
    )
    _monitoring_only(path, model_health_daily=health)
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA intermediate")
        conn.execute(
            "CREATE TABLE intermediate.int_score_calibration AS SELECT 'palliative' AS model_id, "
            "'v1' AS model_version, bin AS score_bin, labelled FROM (VALUES (7, 2), (8, 2), (9, 3)) t(bin, labelled)"
        )
    return path


def test_a_part_raw_estimate_from_few_labels_says_both(tmp_path, capsys, monkeypatch):
    # a trial's calibration of 7 labels read "0.940 part raw": the README's note of fewer than 200 labels was lost
    path = _partly_raw_warehouse(tmp_path / "w.duckdb")
    out = _summary_under(path, capsys, monkeypatch, "models:\n  palliative: {label_horizon_days: 5}\n")
    row = next(line.split() for line in out.splitlines() if line.strip().startswith("palliative"))
    # by hand: the 30 days alternate 1.0 / 0.9 at equal positives (5 a day): 0.95; 2 + 2 + 3 = 7 labels
    assert row[-5:] == ["0.950", "part", "raw", "(7", "labels)"]
    assert "  part raw: a calibration was learnt, but some predictions fall in score bins" in out
    assert "  (N labels): the calibration was learnt from N labels of the version's reference window" in out
    assert "  raw: no calibration learnt" not in out


def test_the_reports_pooled_health_says_both_too(tmp_path):
    from orchestration.lib.report import ReportBuilder
    from orchestration.lib.report_data import label_maturity

    path = _partly_raw_warehouse(tmp_path / "w.duckdb")
    as_of = date(2026, 3, 30)
    with duckdb.connect(str(path), read_only=True) as conn:
        maturity = label_maturity(conn, as_of, 30, lambda model: 5)
        recent = pd.DataFrame(
            {"model": ["palliative"], "version": ["v1"], "tp": [30], "fp": [30], "fn": [0], "last_day": [as_of]}
        )
        text = ReportBuilder(conn, as_of, _config(200))._pooled_health("palliative", recent, maturity)
    assert (
        "label-free estimated precision 0.950 (partly raw scores: some fall in score bins the calibration never "
        "learnt; its calibration learnt from 7 labels: each score bin shrunk towards its raw scores by 10 "
        "pseudo-labels, so mostly the raw scores)" in text
    )
