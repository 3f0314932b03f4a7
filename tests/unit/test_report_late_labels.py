"""The daily report of runs that brought only labels for earlier days (a monitoring-only model that stopped
predicting, its outcomes landing months later), on a small hand-made warehouse.

A trial's label_coverage.after_days of 184 made label_lookback_days 184, longer than its label horizon (183): every
run recomputed every row and stamped it with the run's day, so a row's labels_as_of never said labels had landed.
Its label-only runs wrote no report (`summary` linked a stale one), and a report built again after December's labels
said its labels were known by its own day."""

import html
import json
import re
from datetime import date, timedelta

import duckdb
import pandas as pd
import pytest

from orchestration.defs.report.assets import reported_day
from orchestration.lib.quality_gate import ensure_gate_results
from orchestration.lib.report import ReportDataError, latest_report_date, render_report

PREDICTION_DAYS = [date(2025, 6, 30) + timedelta(days=i) for i in range(5)]  # Mon 06-30 .. Fri 07-04, then stopped
LAST_PREDICTION = PREDICTION_DAYS[-1]
LABEL_RUN = [date(2025, 7, 7) + timedelta(days=i) for i in range(8)]  # a weekly run, 07-07 .. 07-14
LANDED = {date(2025, 7, 9): 1, date(2025, 7, 11): 2}  # the days its labels landed on, and how many


@pytest.fixture(autouse=True)
def long_lookback(tmp_path, monkeypatch):
    """The trial's project file: outcomes known by day 182, label coverage judged after 184 days."""
    config = tmp_path / "project.yml"
    config.write_text(
        "models:\n  risk: {label_horizon_days: 183, alerts: {label_coverage: {below: 0.5, after_days: 184}}}\n"
        "notify: {horizon_days: 186}\n"
    )
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(config))


def warehouse(path, run_day: date, gate_days: dict) -> str:
    """Model health of PREDICTION_DAYS as the run of ``run_day`` left it, and the labels gate's passed days with the
    rows it loaded (``gate_days``: day -> rows). Each row is stamped as int_label_refresh_days stamps it: least(run
    day, greatest(day + label_lookback_days, its last label's day)), its last label within its horizon (183 < 184)."""
    labels_as_of = [min(run_day, day + timedelta(days=184)) for day in PREDICTION_DAYS]
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA marts")
        health = pd.DataFrame(
            dict(
                date=PREDICTION_DAYS,
                model_id="risk",
                model_version="v1",
                predictions=3,
                labelled=2,
                precision=0.5,
                recall=1.0,
                expected_calibration_error=0.05,
                labels_as_of=labels_as_of,
            )
        )
        conn.execute("CREATE TABLE marts.model_health_daily AS SELECT * FROM health")
        conn.execute(
            "ALTER TABLE marts.model_health_daily ALTER date TYPE DATE; "
            "ALTER TABLE marts.model_health_daily ALTER labels_as_of TYPE DATE"
        )
        ensure_gate_results(conn)
        for day, rows in gate_days.items():
            conn.execute(
                "INSERT INTO quality.gate_results VALUES (?, 'raw_labels', 'labels', TRUE, '[]', ?, '[]', NULL)",
                [day, rows],
            )
    return str(path)


def every_day(first: date, last: date, landed: dict) -> dict:
    """The labels gate of each day first .. last: the rows ``landed`` on it, else none."""
    return {first + timedelta(days=i): landed.get(first + timedelta(days=i), 0) for i in range((last - first).days + 1)}


def after_label_run(tmp_path) -> str:
    """After the label-only run: every row recomputed, stamped with the run's last day (least(run day, day + 184))."""
    gates = every_day(PREDICTION_DAYS[0], LABEL_RUN[-1], LANDED)
    return warehouse(tmp_path / "after.duckdb", LABEL_RUN[-1], gates)


def subtitle(report) -> str:
    return html.unescape(re.search(r"<header><h1>.*?</h1><p>(.*?)</p>", report.html, re.S).group(1))


def summary_json(report) -> dict:
    return json.loads(
        re.search(r'<script type="application/json" id="report-summary">(.*?)</script>', report.html).group(1)
    )


def test_a_run_that_brought_only_labels_for_earlier_days_leaves_a_report_of_its_last_landing_day(tmp_path):
    db = after_label_run(tmp_path)
    with duckdb.connect(db, read_only=True) as conn:
        # by hand: labels landed on 07-09 and 07-11, nothing after; the model's last rows are of 07-04
        assert reported_day(conn, LABEL_RUN) == date(2025, 7, 11)
        assert latest_report_date(conn) == date(2025, 7, 11)  # what `summary` links
        report = render_report(conn, date(2025, 7, 11))
        # a day in between whose labels landed gets one too (a daily schedule runs it alone)
        assert render_report(conn, date(2025, 7, 9)).as_of == date(2025, 7, 9)
        with pytest.raises(
            ReportDataError, match="nothing to report for 2025-07-10.*latest day with data is 2025-07-11"
        ):
            render_report(conn, date(2025, 7, 10))
    assert summary_json(report)["labels_known_by"] == "2025-07-11"
    assert (
        "No results, model-health or KPI rows of 2025-07-11 itself (the newest are of 2025-07-04): dated for the "
        "labels (or feedback) that landed on it for earlier days' predictions" in subtitle(report)
    )
    assert "Built again later" not in subtitle(report)


def test_a_report_rebuilt_after_later_labels_says_the_day_its_labels_are_known_through(tmp_path):
    db = after_label_run(tmp_path)
    with duckdb.connect(db, read_only=True) as conn:
        report = render_report(conn, LAST_PREDICTION)
    # by hand: the rows up to 07-04 count the labels landed up to 07-11 (none landed 07-12 .. 07-14)
    assert summary_json(report)["labels_known_by"] == "2025-07-11"
    assert (
        "Built again later: its label-based figures (precision, recall, calibration, the label-based fairness "
        "verdicts) count the labels known by 2025-07-11, not only those known on 2025-07-04." in subtitle(report)
    )
    assert "No results, model-health or KPI rows" not in subtitle(report)  # 07-04 has rows of its own


def test_the_mornings_own_report_and_a_run_stamp_without_labels_claim_no_later_labels(tmp_path):
    # the morning of 07-04: every row stamped with the run's day, labels landed that day among others
    gates = every_day(PREDICTION_DAYS[0], LAST_PREDICTION, {date(2025, 7, 1): 1, LAST_PREDICTION: 1})
    morning = warehouse(tmp_path / "morning.duckdb", LAST_PREDICTION, gates)
    with duckdb.connect(morning, read_only=True) as conn:
        report = render_report(conn, LAST_PREDICTION)
        assert reported_day(conn, [LAST_PREDICTION]) == LAST_PREDICTION
    assert summary_json(report)["labels_known_by"] == "2025-07-04"
    assert "Built again later" not in subtitle(report) and "No results, model-health" not in subtitle(report)
    # a later run that loaded no label: its stamp (the run's day) is no landing, its days have nothing to report
    quiet = warehouse(tmp_path / "quiet.duckdb", LABEL_RUN[-1], every_day(PREDICTION_DAYS[0], LABEL_RUN[-1], {}))
    with duckdb.connect(quiet, read_only=True) as conn:
        assert reported_day(conn, LABEL_RUN) == LABEL_RUN[-1]  # nothing in the range: skipped, saying why
        assert latest_report_date(conn) == LAST_PREDICTION
        assert summary_json(render_report(conn, LAST_PREDICTION))["labels_known_by"] == "2025-07-04"
        with pytest.raises(ReportDataError, match="latest day with data is 2025-07-04"):
            render_report(conn, LABEL_RUN[-1])


def test_labels_landing_after_every_rows_label_horizon_count_nowhere_and_get_no_report(tmp_path):
    # 07-04 + 184 is past the horizon (183) of every prediction day: a label landing that day counts for none,
    # though the last day's row is stamped with it by the lookback
    beyond = LAST_PREDICTION + timedelta(days=184)
    db = warehouse(tmp_path / "beyond.duckdb", beyond, {beyond: 1})
    with duckdb.connect(db, read_only=True) as conn:
        assert latest_report_date(conn) == LAST_PREDICTION
        assert reported_day(conn, [beyond]) == beyond  # skipped
        with pytest.raises(ReportDataError):
            render_report(conn, beyond)
    # one day earlier it is within the last day's horizon: counted, reported
    within = warehouse(tmp_path / "within.duckdb", beyond - timedelta(days=1), {beyond - timedelta(days=1): 1})
    with duckdb.connect(within, read_only=True) as conn:
        assert latest_report_date(conn) == beyond - timedelta(days=1)
