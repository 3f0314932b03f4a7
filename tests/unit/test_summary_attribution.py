"""`impact-ledger summary`: the significance flag beside every lift, untested and not decision-grade rows
named, ROI as net return per unit of cost with its CI, money in the project file's currency (issue 13)."""

import argparse
import html
from datetime import date, timedelta
import json

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency
from statsmodels.stats.multitest import multipletests

from orchestration import cli, summary
from orchestration.lib.project_config import load_config, parse_config
from orchestration.lib.attribution import IMPACT_SCHEMA, RESULT_SCHEMA, experiment_results, model_impact
from orchestration.defs.model_health.alerts import ALERTS_SCHEMA
from orchestration.lib.retraining import REQUEST_SCHEMA
from orchestration.lib.warehouse import ensure_table, replace_date_range
from tests.unit.test_attribution_honest import AS_OF, DECLARED, _arm_row, _binary, _fisher_by_hand
from tests.unit.test_attribution_engine import experiments_of, variants_of

LEADING_INDICATORS = summary._leading_indicators  # the warehouse fixture stubs it

COST = 2000.0


@pytest.fixture
def warehouse(tmp_path, monkeypatch):
    rng = np.random.default_rng(12)
    rows = []
    for variant, n, lift in (("holdout", 300, 0.0), ("treatment", 2700, 1.2)):
        rows += [
            _arm_row("e", variant, "revenue_per_user", rng.gamma(2.0, 5.0, n) + lift),
            _arm_row("e", variant, "conversion", _binary(int(n * (0.20 if variant == "holdout" else 0.21)), n)),
            _arm_row("e", variant, "d7_retention", _binary(0 if variant == "holdout" else 50, n)),  # degenerate
        ]
    stats = pd.DataFrame(rows)
    experiments = experiments_of(stats, model_id="m")
    results = experiment_results(stats, experiments, variants_of(stats), DECLARED)
    costs = pd.DataFrame(
        {
            "model_id": ["m"],
            "experiment_id": ["e"],
            "analysis_window": ["cumulative"],
            "as_of_date": [AS_OF],
            "model_cost": [COST],
        }
    )
    impact = model_impact(results, stats, costs, "revenue_per_user")
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as conn:
        replace_date_range(conn, "attribution.experiment_results", RESULT_SCHEMA, results, "as_of_date", AS_OF, AS_OF)
        replace_date_range(conn, "attribution.model_impact", IMPACT_SCHEMA, impact, "as_of_date", AS_OF, AS_OF)
        ensure_table(conn, "marts.alerts", ALERTS_SCHEMA)  # no alerts, no requests: the health part is empty
        ensure_table(conn, "marts.retraining_requests", REQUEST_SCHEMA)
    config = tmp_path / "project.yml"
    config.write_text("currency: EUR\n")
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(config))
    monkeypatch.setattr(summary, "_leading_indicators", lambda conn, as_of: [])
    monkeypatch.setattr(cli, "reports_dir", lambda: tmp_path)
    return path, results, impact


def _gate_results(path, rows: list[tuple], warnings: dict | None = None) -> None:
    """quality.gate_results rows (suite, table, day, passed, failed expectations, rows validated) in the warehouse;
    ``warnings``: (suite, day) -> the expectations that only warned."""
    from orchestration.lib.quality_gate import ensure_gate_results

    warnings = warnings or {}
    with duckdb.connect(str(path)) as conn:
        ensure_gate_results(conn)
        conn.executemany(
            "INSERT INTO quality.gate_results (suite, table_name, date, passed, failed_expectations, rows_validated, "
            "warnings) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                [suite, table, day, passed, json.dumps(failed), n, json.dumps(warnings.get((suite, day), []))]
                for suite, table, day, passed, failed, n in rows
            ],
        )


def lines_of(out: str, start: str) -> str:
    return next(line for line in out.splitlines() if line.strip().startswith(start))


def _summary(path, capsys) -> str:
    assert cli.cmd_summary(argparse.Namespace(db=str(path))) == 0
    return capsys.readouterr().out


def _summary_under(path, capsys, monkeypatch, project: str) -> str:
    """summary's output with ``project`` as the project file (written beside the warehouse)."""
    config = path.parent / "project.yml"
    config.write_text(project)
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(config))
    monkeypatch.setattr(cli, "reports_dir", lambda: path.parent)
    return _summary(path, capsys)


def _summary_after(path, capsys, *statements: str) -> str:
    """summary's output once ``statements`` have run on the warehouse."""
    with duckdb.connect(str(path)) as conn:
        for sql in statements:
            conn.execute(sql)
    return _summary(path, capsys)


def test_every_lift_shows_whether_it_is_significant_after_holm(warehouse, capsys):
    path, results, _ = warehouse
    out = _summary(path, capsys)
    assert "significant (Holm)" in out and "p (Holm)" in out
    # the value's basis names its metric (a trial's claims cost read "revenue-per-user lift", "incremental revenue")
    assert "(revenue_per_user lift x treated users, net of model cost)" in out and "incremental value (" in out
    tested = results[results["decision_p_value"].notna()]
    holm = dict(zip(tested["metric"], multipletests(tested["decision_p_value"], method="holm")[1]))
    assert set(holm) == {"revenue_per_user", "conversion"}  # the degenerate metric is not in the family
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith("    m ") or line.startswith("m ")}
    for metric, p in holm.items():
        assert f"{p:.4f}" in lines[metric]
        assert lines[metric].split(f"{p:.4f}")[1].split()[0] == ("yes" if p < 0.05 else "no"), lines[metric]
    assert "not tested" in lines["d7_retention"]
    # 0 of 300 vs 50 of 2700: Fisher's exact p summed by hand (hypergeometric probabilities)
    fisher = _fisher_by_hand(0, 300, 50, 2700)
    assert f"; Fisher's exact p {fisher:.4f} (two-sided, unadjusted)" in lines_of(out, "not tested: m d7_retention")


def test_a_significant_row_beside_a_relative_interval_across_0_is_explained(warehouse, capsys):
    # a trial: "+113.8% [-5.1%, +232.7%], significant yes" (14 control donors of 184): the test is of the absolute
    # lift; the relative interval's delta method widens on a small control mean. A plain row's relative interval is
    # now Fieller's, which excludes 0 whenever the row is significant: only a CUPED row's (delta method) can do this
    path, results, _ = warehouse
    out = _summary(path, capsys)
    assert "significant beside a relative interval across 0" not in out  # none in the world as built
    across = (
        "UPDATE attribution.experiment_results SET significant = true, relative_ci_low = -0.05, "
        "relative_ci_high = 2.3, cuped_relative_ci_low = -0.05, cuped_relative_ci_high = 2.3 WHERE metric = 'conversion'"
    )
    out = _summary_after(path, capsys, across)
    assert "significant beside a relative interval across 0" not in out  # a Welch row: cannot happen, not named
    out = _summary_after(
        path, capsys, "UPDATE attribution.experiment_results SET estimate = 'cuped' WHERE metric = 'conversion'"
    )
    said = "significant beside a relative interval across 0 (m conversion): the test is of the absolute lift"
    assert said in out
    # the report's headline table too (a re-trial found it there without the note)
    from orchestration.lib.report import render_report

    with duckdb.connect(str(path), read_only=True) as conn:
        page = html.unescape(render_report(conn, AS_OF.date()).html)
    assert said in page


def test_a_lift_without_a_relative_interval_says_why(warehouse, capsys):
    # Fieller's relative interval is unbounded where the control's mean is not clear of 0 (a trial's 3 of 18
    # controls converting): "n/a" beside a significant lift said nothing of why
    path, _, _ = warehouse
    assert "no relative interval" not in _summary(path, capsys)
    out = _summary_after(
        path,
        capsys,
        "UPDATE attribution.experiment_results SET significant = true, relative_ci_low = NULL, relative_ci_high = NULL "
        "WHERE metric = 'conversion'",
    )
    said = "no relative interval (m conversion): the control's mean is not clear of 0 at the test's level"
    assert said in out
    from orchestration.lib.report import render_report

    with duckdb.connect(str(path), read_only=True) as conn:
        assert said in html.unescape(render_report(conn, AS_OF.date()).html)


def test_a_guardrail_verdicts_one_sided_bound_is_said_beside_the_two_sided_interval(warehouse, capsys):
    # a re-trial: refund_rate [-81.3%, +36.6%] beside "pass" at a 10% margin (a one-sided 95% bound of +2.85%)
    path, _, _ = warehouse
    said = "guardrail: non-inferiority against the metric's margin on a one-sided 95% bound (the end of the 90%"
    assert said not in _summary(path, capsys)  # no guardrail row: nothing to explain
    out = _summary_after(
        path, capsys, "UPDATE attribution.experiment_results SET guardrail_verdict = 'pass' WHERE metric = 'conversion'"
    )
    assert said in out


def test_roi_is_a_net_return_with_its_ci_and_money_is_in_the_configured_currency(warehouse, capsys):
    path, _, impact = warehouse
    out = _summary(path, capsys)
    (row,) = impact.itertuples()
    # by hand from the published net value and its CI: ROI = net / cost, its CI = the net value's CI / cost
    expected = (
        f"{row.net_value / COST:+,.0%} [{row.net_value_ci_low / COST:+,.0%}, {row.net_value_ci_high / COST:+,.0%}]"
    )
    assert expected in out
    assert "ROI = net value / cost [95% CI]" in out
    assert "net value (EUR) [95% CI]" in out and "in EUR" in out
    assert f"{row.roi:.1f}x" not in out  # no 'x' multiple that reads as value / cost


def test_every_lift_shows_the_smallest_lift_its_test_would_detect(warehouse, capsys):
    # a trial's d7 retention: -17% [-56%, +22%], not significant, read as "no harm"; its MDE of 64% was only in
    # the scorecard
    path, results, _ = warehouse
    out = _summary(path, capsys)
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith("    m ") or line.startswith("m ")}
    for r in results[results["analysis_window"] == "cumulative"].itertuples():
        expected = "n/a" if pd.isna(r.mde_relative) else f"±{r.mde_relative:.0%}"
        assert lines[r.metric].split()[-1] == expected, lines[r.metric]
    assert "MDE: the smallest relative lift the test detects with 80% power" in out


def test_money_rounds_its_halves_away_from_zero_as_a_reader_would(warehouse, capsys):
    path, _, _ = warehouse
    with duckdb.connect(str(path)) as conn:  # halves, which Python's own format rounds to even (2,362 and -0)
        conn.execute(
            "UPDATE attribution.model_impact SET net_value = 2362.5, net_value_ci_low = -0.5, "
            "net_value_ci_high = 4725.5, model_cost = 1000.5, incremental_value = 3363.0"
        )
    out = _summary(path, capsys)
    assert "2,363 [-0.50, 4,726]" in out and "1,001" in out and "3,363" in out  # cents under 100


def test_a_net_value_whose_ci_includes_0_is_called_not_significant_beside_decision_grade(warehouse, capsys):
    # a trial in which the model did nothing: "net value 1,982 [-5,313, 9,278], ROI +330%, decision-grade yes" and no
    # word that the value is not shown to differ from 0 (the report's "net value vs 0" column said it)
    path, _, _ = warehouse
    with duckdb.connect(str(path)) as conn:
        conn.execute(
            "UPDATE attribution.model_impact SET net_value = 1982, net_value_ci_low = -5313, net_value_ci_high = 9278,"
            " decision_grade = true, trustworthy = true"
        )
    out = _summary(path, capsys)
    row = next(line for line in out.splitlines() if "1,982 [-5,313, 9,278]" in line)
    assert "net value vs 0" in out and "not significant: 95% CI includes 0" in row
    assert row.split("includes 0")[1].split()[:2] == ["yes", "yes"]  # decision-grade and trustworthy stay
    assert (
        "  net value not significant: m: its 95% CI includes 0, so the model's value is not shown to differ from "
        "zero; decision-grade says only that it rests on enough trustworthy data"
    ) in out
    with duckdb.connect(str(path)) as conn:  # 500 > 0: a value shown, no such line
        conn.execute("UPDATE attribution.model_impact SET net_value_ci_low = 500")
    out = _summary(path, capsys)
    assert "above 0 (95% CI)" in out and "net value not significant" not in out
    assert "net value without an interval" not in out
    # a trial's "net value -2,164 [n/a]" and an ROI with no word why (the value metric was not tested)
    why = "revenue_per_user not tested: 4.48 events in control"
    with duckdb.connect(str(path)) as conn:
        conn.execute(
            "UPDATE attribution.model_impact SET net_value_ci_low = NULL, net_value_ci_high = NULL, "
            "decision_grade = false, decision_grade_reason = ?",
            [why],
        )
    out = _summary(path, capsys)
    assert "1,982 [n/a]" in out and f"  net value without an interval: m: {why}\n" in out


def _monitoring_only(path, **marts: pd.DataFrame):
    """A warehouse without experiment results or alerts, and the given marts tables."""
    with duckdb.connect(str(path)) as conn:
        ensure_table(conn, "attribution.experiment_results", RESULT_SCHEMA)
        ensure_table(conn, "attribution.model_impact", IMPACT_SCHEMA)
        ensure_table(conn, "marts.alerts", ALERTS_SCHEMA)
        ensure_table(conn, "marts.retraining_requests", REQUEST_SCHEMA)
        for name, frame in marts.items():
            conn.execute(f"CREATE TABLE marts.{name} AS SELECT * FROM frame")
    return path


def test_a_label_coverage_alert_beside_held_label_days_prints_both_the_note_and_the_held_days(
    tmp_path, capsys, monkeypatch
):
    # the re-trial of the held-labels note: its name shadowed the held-back days listed after it, and summary
    # crashed on a warehouse with a coverage alert and a held labels day
    from orchestration.lib.quality_gate import ensure_gate_results

    days = pd.date_range("2026-03-01", periods=10, freq="D")
    health = pd.DataFrame(
        {"date": [d.date() for d in days], "model_id": "m", "model_version": "v1", "predictions": 50, "labelled": 5}
    )
    path = _monitoring_only(tmp_path / "w.duckdb", model_health_daily=health)
    with duckdb.connect(str(path)) as conn:
        conn.execute(
            "INSERT INTO marts.alerts (date, model_id, model_version, metric, subject, value, threshold, rule) "
            "VALUES ('2026-03-02', 'm', 'v1', 'label_coverage', '', 0.1, 0.5, 'below 0.5')"
        )
        ensure_gate_results(conn)
        conn.execute(
            "INSERT INTO quality.gate_results (date, suite, table_name, passed, failed_expectations) "
            "VALUES ('2026-03-04', 'raw_labels', 'labels', false, '[\"expect_column_values_to_be_in_set(prediction_known)\"]')"
        )
    monkeypatch.setattr(cli, "reports_dir", lambda: tmp_path)
    out = _summary(path, capsys)
    assert "note: the quality gates hold back 1 labels day(s) since 2026-03-02 (2026-03-04)" in out
    assert "Days held back by the quality gates (1;" in out and "  2026-03-04: " in out


def test_a_label_coverage_alert_of_a_model_never_labelled_says_its_labels_may_not_be_due(tmp_path, capsys, monkeypatch):
    # a trial's year-late labels (label_horizon_days 366) alerted daily at the default 7-day wait, unexplained
    days = pd.date_range("2026-03-01", periods=10, freq="D")
    health = pd.DataFrame(
        {"date": [d.date() for d in days] * 2, "model_id": ["late"] * 10 + ["some"] * 10, "model_version": "v1",
         "predictions": 50, "labelled": [0] * 10 + [0] * 9 + [3]}
    )  # fmt: skip
    path = _monitoring_only(tmp_path / "w.duckdb", model_health_daily=health)
    with duckdb.connect(str(path)) as conn:
        conn.execute(
            "INSERT INTO marts.alerts (date, model_id, model_version, metric, subject, value, threshold, rule) "
            "VALUES ('2026-03-02', 'late', 'v1', 'label_coverage', '', 0, 0.5, 'below 0.5'), "
            "('2026-03-02', 'some', 'v1', 'label_coverage', '', 0, 0.5, 'below 0.5')"
        )
    out = _summary_under(path, capsys, monkeypatch, "models:\n  late: {label_horizon_days: 366}\n  some: {}\n")
    assert (
        "note: no label of late has landed yet, and this alert judges a day 7 days on while its labels may take up "
        "to 366 (label_horizon_days)"
    ) in out
    assert "no label of some has landed" not in out  # three labels landed: the alert stands on its own
    # the latest day's share and rule, and when its labels were due (the default wait: 7 days)
    assert "    latest: 0% of 2026-03-02's predictions labelled, their labels due by 2026-03-09 (below 0.5)" in out


def test_a_monitoring_only_project_gets_its_models_recent_health_not_an_empty_table_line(tmp_path, capsys, monkeypatch):
    # a risk score without an experiment: summary printed one line ("experiment_results is empty") and nothing
    # of the model; the last 30 prediction days are summed, older ones left out
    days = pd.date_range("2026-03-01", periods=40, freq="D")
    # churn: only churners' outcomes have landed (every label positive): its precision of 1.000 is marked
    health = pd.DataFrame(
        {
            "date": [d.date() for d in days] * 3,
            "model_id": ["risk"] * 40 + ["ranker"] * 40 + ["churn"] * 40,
            "model_version": ["v1"] * 40 + ["v1"] * 35 + ["v2"] * 5 + ["v1"] * 40,  # the ranker's v2 from day 36
            "predictions": [10] * 40 + [100] * 40 + [10] * 40,
            "labelled": [4] * 40 + [0] * 40 + [5] * 40,
            "true_positives": [1] * 40 + [0] * 40 + [3] * 40,
            "false_positives": [2] * 40 + [0] * 40 + [0] * 40,
            "false_negatives": [1] * 40 + [0] * 40 + [2] * 40,
            "true_negatives": [0] * 40 + [0] * 40 + [0] * 40,
        }
    )
    path = _monitoring_only(tmp_path / "w.duckdb", model_health_daily=health)
    monkeypatch.setattr(cli, "reports_dir", lambda: tmp_path)
    out = _summary(path, capsys)
    assert "monitoring only" in out and "Model health over the 30 days to 2026-04-09" in out
    rows = {
        tuple(line.split()[:2]): line.split()[2:]
        for line in out.splitlines()
        if line.strip().startswith(("risk", "ranker", "churn"))
    }
    # by hand over 30 days: risk 300 predictions, 120 labelled, precision 30 / 90, recall 30 / 60; the
    # ranker's two versions apart (25 days of v1, 5 of v2)
    assert rows[("risk", "v1")] == ["300", "120", "(40%)", f"{30 / 90:.3f}", f"{30 / 60:.3f}"]
    assert rows[("ranker", "v1")] == ["2500", "0", "(0%)", "n/a", "n/a"]
    assert rows[("ranker", "v2")] == ["500", "0", "(0%)", "n/a", "n/a"]
    assert rows[("churn", "v1")] == ["300", "150", "(50%)", "1.000*", f"{90 / 150:.3f}*"]
    assert "* every label so far is of one class" in out
    # "no alerts" says which rules could not judge: every model's days have under min_labelled labels; only the
    # ranker scores the volume rule's min_count a day
    from orchestration.lib.alerts import load_alert_config

    config = load_alert_config()
    assert config.min_labelled > 5 and 10 < config.rule("volume_change", "risk")["min_count"] <= 100
    for model, most in (("churn", 5), ("ranker", 0), ("risk", 4)):
        assert (
            f"  {model}: precision, recall and calibration alerts not judged: at most {most} labelled predictions a "
            f"day in the 30 days to 2026-04-09 (alerts.min_labelled {config.min_labelled})" in out
        )
    assert "  risk: volume alerts not judged: a median of 10 predictions a day" in out
    assert "ranker: volume alerts not judged" not in out


def test_feedback_on_the_health_tables_days_is_said_per_version(tmp_path, capsys, monkeypatch):
    # a second trial's thumbs up/down were computed (feedback_rate, feedback_up_share) and shown nowhere
    days = pd.date_range("2026-03-01", periods=40, freq="D")
    health = pd.DataFrame(
        {
            "date": [d.date() for d in days],
            "model_id": "nudge",
            "model_version": ["v1"] * 35 + ["v2"] * 5,
            "predictions": 100,
            "labelled": 0,
            **{c: 0 for c in ("true_positives", "false_positives", "false_negatives", "true_negatives")},
            # days 0-9: no feedback column value; then 10 of 100 with feedback, up share 0.6 (v1), 0.2 (v2)
            "feedback_rate": [None] * 10 + [0.1] * 30,
            "feedback_up_share": [None] * 10 + [0.6] * 25 + [0.2] * 5,
        }
    )
    path = _monitoring_only(tmp_path / "w.duckdb", model_health_daily=health)
    monkeypatch.setattr(cli, "reports_dir", lambda: tmp_path)
    out = _summary(path, capsys)
    # by hand over the last 30 days (days 10-39): v1 25 days, 2,500 predictions, 250 with feedback, 60% up; v2 5 days
    assert "  feedback: nudge v1: 250 of 2,500 predictions (10.0%) got feedback, 60% of it up (" in out
    assert "  feedback: nudge v2: 50 of 500 predictions (10.0%) got feedback, 20% of it up (" in out


def test_volume_is_said_unjudged_only_when_no_days_trailing_median_reached_min_count(tmp_path, capsys, monkeypatch):
    # an inbox: a median of 41 emails a day over 30 days, busy weeks above 50; summary said "volume alerts not
    # judged" right under that model's volume alerts
    from orchestration.lib.alerts import load_alert_config

    minimum = load_alert_config().rule("volume_change", "inbox")["min_count"]
    days = pd.date_range("2026-03-01", periods=30, freq="D")
    busy = [minimum + 10 if 10 <= i < 18 else minimum - 10 for i in range(30)]  # 8 busy days in the middle
    health = pd.DataFrame(
        {
            "date": [d.date() for d in days] * 2,
            "model_id": ["inbox"] * 30 + ["tiny"] * 30,
            "model_version": "v1",
            "predictions": busy + [minimum - 10] * 30,
            "labelled": 0,
            **{c: 0 for c in ("true_positives", "false_positives", "false_negatives", "true_negatives")},
        }
    )
    monkeypatch.setattr(cli, "reports_dir", lambda: tmp_path)
    out = _summary(_monitoring_only(tmp_path / "w.duckdb", model_health_daily=health), capsys)
    # by hand: the 30 days' median is min_count - 10 for both; the inbox's trailing 7-day median reaches min_count
    # + 10 from day 17 (days 10..16 busy), the tiny model's never does
    assert pd.Series(busy).median() < minimum and pd.Series(busy).shift(1).rolling(7).median().max() >= minimum
    assert "inbox: volume alerts not judged" not in out
    assert f"  tiny: volume alerts not judged: a median of {minimum - 10:g} predictions a day" in out


def test_a_model_that_stopped_scoring_is_named_with_its_last_day(tmp_path, capsys, monkeypatch):
    # a trial's risk scores stopped on 10-10 and the runs went on to 11-15 (labels landing): the volume alert
    # fell silent after four days and summary said nothing of 36 days without predictions
    days = pd.date_range("2026-09-01", periods=40, freq="D")
    runs = pd.date_range("2026-09-01", "2026-11-15", freq="D")
    weekdays = [d for d in days if d.day_of_week < 5]
    health = pd.DataFrame(
        {
            "date": [d.date() for d in days] + [d.date() for d in weekdays],
            "model_id": ["risk"] * 40 + ["office"] * len(weekdays),
            "model_version": "v1",
            "predictions": 100,
            "labelled": 0,
            **{c: 0 for c in ("true_positives", "false_positives", "false_negatives", "true_negatives")},
            "labels_as_of": [min(d + pd.Timedelta(days=60), runs[-1]).date() for d in [*days, *weekdays]],
        }
    )
    path = _monitoring_only(tmp_path / "w.duckdb", model_health_daily=health)
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS quality")
        conn.execute(
            "CREATE TABLE quality.gate_results (date DATE, suite VARCHAR, table_name VARCHAR, passed BOOLEAN, "
            "failed_expectations VARCHAR, rows_validated BIGINT, warnings VARCHAR)"
        )
        conn.executemany(
            "INSERT INTO quality.gate_results VALUES (?, 'raw_labels', 'labels', true, NULL, 10, NULL)",
            [[d.date()] for d in runs],
        )
    monkeypatch.setattr(cli, "reports_dir", lambda: tmp_path)
    out = _summary(path, capsys)
    # by hand: risk's last day 2026-10-10, 36 days before the newest run day 2026-11-15; the weekday-only model's
    # last day is a Friday (2026-10-09), also long before; both named, each once
    assert "  risk: no predictions since 2026-10-10 (36 day(s) to 2026-11-15, the newest day run)" in out
    assert out.count("no predictions since") == 2
    # the later days' predictions loaded but the gates held them back (a trial's quiet Mondays and Tuesdays read
    # as "stopped"): said so, with the days
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS raw")
        conn.execute(
            "CREATE TABLE raw.predictions AS SELECT 'risk' AS model_id, d::DATE AS _partition_date "
            "FROM range(DATE '2026-10-09', DATE '2026-10-14', INTERVAL 1 DAY) AS t(d)"
        )
    held = _summary(path, capsys)
    assert (
        "  risk: no predictions published since 2026-10-10 (36 day(s) to 2026-11-15, the newest day run): the "
        "predictions of 3 later day(s) (2026-10-11 .. 2026-10-13) loaded but were held back by the quality gates"
    ) in held
    assert "office: no predictions since" in held
    with duckdb.connect(str(path)) as conn:
        conn.execute("DROP TABLE raw.predictions")
    # the runs end with the predictions (a weekday-only model on a Sunday): nothing said
    with duckdb.connect(str(path)) as conn:
        conn.execute("DELETE FROM quality.gate_results WHERE date > '2026-10-11'")
        conn.execute("UPDATE marts.model_health_daily SET labels_as_of = least(labels_as_of, DATE '2026-10-11')")
    assert "no predictions since" not in _summary(path, capsys)


def test_a_retired_model_is_said_retired_not_stopped_and_one_still_scoring_is_named(tmp_path, capsys, monkeypatch):
    # a trial's planned end of a model read "no predictions since ...: stopped?" on every summary
    days = pd.date_range("2026-11-01", periods=10)
    health = pd.DataFrame(
        {
            "date": [d.date() for d in days] * 2,
            "model_id": ["old"] * 10 + ["late"] * 10,
            "model_version": "v1",
            "predictions": 25,
            "labelled": 25,
            **{c: 5 for c in ("true_positives", "false_positives", "false_negatives", "true_negatives")},
            "labels_as_of": [d.date() for d in days] * 2,
        }
    )
    path = _monitoring_only(tmp_path / "w.duckdb", model_health_daily=health)
    from orchestration.lib.quality_gate import ensure_gate_results

    with duckdb.connect(str(path)) as conn:
        ensure_gate_results(conn)
        conn.execute(
            "INSERT INTO quality.gate_results (date, suite, table_name, passed) "
            "VALUES ('2026-11-30', 'raw_labels', 'labels', true)"
        )
    out = _summary_under(
        path, capsys, monkeypatch, "models:\n  old: {retired_after: 2026-11-10}\n  late: {retired_after: 2026-11-05}\n"
    )
    assert "old: retired after 2026-11-10 (models.old.retired_after); last predictions 2026-11-10" in out
    assert "old: no predictions since" not in out
    # by hand: 25 predictions on each of 11-06 .. 11-10; one line for it, not also "no predictions since"
    assert (
        "late: 125 prediction(s) on 5 day(s) (2026-11-06 .. 2026-11-10) though retired after 2026-11-05 "
        "(models.late.retired_after)"
    ) in out
    assert "late: no predictions since" not in out


def test_a_weekly_batch_model_is_silent_only_past_its_usual_gap(tmp_path, capsys, monkeypatch):
    # a trial's weekly model (every Monday) was called "stopped" every Friday, Saturday and Sunday
    mondays = pd.date_range("2026-11-02", periods=8, freq="7D")
    health = pd.DataFrame(
        {
            "date": [d.date() for d in mondays],
            "model_id": "coupon",
            "model_version": "v1",
            "predictions": 25,
            "labelled": 25,
            **{c: 5 for c in ("true_positives", "false_positives", "false_negatives", "true_negatives")},
            "labels_as_of": [(d + pd.Timedelta(days=3)).date() for d in mondays],
        }
    )
    path = _monitoring_only(tmp_path / "w.duckdb", model_health_daily=health)
    monkeypatch.setattr(cli, "reports_dir", lambda: tmp_path)

    def runs_up_to(day: str) -> str:
        with duckdb.connect(str(path)) as conn:
            conn.execute("CREATE SCHEMA IF NOT EXISTS quality")
            conn.execute(
                "CREATE OR REPLACE TABLE quality.gate_results (date DATE, suite VARCHAR, table_name VARCHAR, "
                "passed BOOLEAN, failed_expectations VARCHAR, rows_validated BIGINT, warnings VARCHAR)"
            )
            conn.execute(
                "INSERT INTO quality.gate_results SELECT d::DATE, 'raw_labels', 'labels', true, NULL, 10, NULL "
                "FROM range(DATE '2026-11-02', ?::DATE + 1, INTERVAL 1 DAY) AS t(d)",
                [day],
            )
        return _summary(path, capsys)

    last = mondays[-1].date()  # 2026-12-21
    # by hand: a usual gap of 7 days, silent from 7 + 4 - 1 = 10 days after the last batch
    assert "no predictions" not in runs_up_to("2026-12-25")  # a Friday, 4 days after the batch
    assert "no predictions" not in runs_up_to("2026-12-30")  # 9 days: the next batch is 2 days late
    assert (
        f"coupon: no predictions since {last} (10 day(s) to 2026-12-31, the newest day run; it predicts every ~7 days)"
        in (runs_up_to("2026-12-31"))
    )


def test_a_model_whose_labels_land_months_late_shows_how_many_days_have_all_theirs_and_the_label_free_estimate(
    tmp_path, capsys, monkeypatch
):
    # a credit-default score (label horizon 125 days): defaults land first, so the labels known so far put its
    # precision at 0.79 where the whole outcome gives 0.44; summary showed 0.786 with nothing said
    days = pd.date_range("2026-03-01", periods=40, freq="D")
    run_day = days[-1]
    # as the marts stamp it: a row is recomputed while labels may land (its lookback, 10 days here), so its
    # labels_as_of stops there: the run's newest day, not each row's own stamp, says what is known by now
    as_of = [min(run_day, d + pd.Timedelta(days=10)).date() for d in days]
    health = pd.DataFrame(
        {
            "date": [d.date() for d in days] * 2,
            "model_id": ["risk"] * 40 + ["churn"] * 40,
            "model_version": "v1",
            "predictions": [100] * 80,
            "positive_rate": [0.2] * 40 + [0.1] * 40,
            "labelled": [30] * 80,
            "true_positives": [8] * 80,
            "false_positives": [2] * 80,
            "false_negatives": [5] * 80,
            "true_negatives": [15] * 80,
            "estimated_precision": [0.4 if i % 2 else 0.5 for i in range(40)] + [None] * 39 + [0.7],
            "labels_as_of": as_of * 2,
            # the risk score's calibration is learnt only once its reference window's labels are in (months)
            "cbpe_calibrated": [False] * 40 + [True] * 40,
        }
    )
    path = _monitoring_only(tmp_path / "w.duckdb", model_health_daily=health)
    config = tmp_path / "project.yml"
    config.write_text(
        "models:\n  risk: {positive_decision: harmful, label_horizon_days: 125}\n  churn: {label_horizon_days: 11}\n"
    )
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(config))
    monkeypatch.setattr(cli, "reports_dir", lambda: tmp_path)
    out = _summary(path, capsys)
    recent, matured = out.split("whose labels are all in")
    rows = {line.split()[0]: line.split() for line in recent.splitlines() if line.strip().startswith(("risk", "churn"))}
    # by hand over the last 30 days: the risk model's days alternate 0.5 / 0.4 at equal positives (20 a day)
    assert "0/30 days" in " ".join(rows["risk"]) and rows["risk"][-2:] == [f"{(15 * 0.5 + 15 * 0.4) / 30:.3f}", "raw"]
    assert "raw: no calibration learnt from labels yet" in out
    assert "(N labels)" not in out  # no intermediate.int_score_calibration here: nothing to say of it
    # a calibration learnt from a few dozen labels is mostly the raw scores: its labels are said (a trial's 67)
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA intermediate")
        conn.execute(
            "CREATE TABLE intermediate.int_score_calibration AS SELECT 'churn' AS model_id, 'v1' AS model_version, "
            "range AS score_bin, 7 AS labelled FROM range(10)"
        )
    out = _summary(path, capsys)
    churn = next(line.split() for line in out.splitlines() if line.strip().startswith("churn"))
    assert churn[-3:] == ["0.700", "(70", "labels)"] and "(N labels): the calibration was learnt from N labels" in out
    # a calibration learnt whose days are still not calibrated: some predictions fall in score bins it never
    # learnt (a trial's 43%), which read their raw scores; "no calibration learnt yet" was said of it
    with duckdb.connect(str(path)) as conn:
        conn.execute("INSERT INTO intermediate.int_score_calibration SELECT 'risk', 'v1', range, 400 FROM range(3)")
    out = _summary(path, capsys)
    risk = next(line.split() for line in out.splitlines() if line.strip().startswith("risk"))
    assert risk[-3:] == ["0.450", "part", "raw"] and "part raw: a calibration was learnt, but some" in out
    assert "raw: no calibration learnt" not in out
    # the churn model (11 days): its days to 03-29 are past their horizon by the run's day 04-09 (19 of the 30 from
    # 03-11), though each row's own labels_as_of stopped 10 days after it; one day with an estimate
    assert "19/30 days" in " ".join(rows["churn"]) and rows["churn"][-1] == "0.700"
    assert "labels complete: the days past the model's label horizon" in out
    # and the newest 30 days whose labels are all in (a trial's risk score showed "n/a" for good): the churn
    # model's days to 03-29 (29 of them, from 03-01), by hand 29 x 100 predictions, 29 x 30 labelled, precision
    # 8 / 10, recall 8 / 13; none of the risk model's 40 days is past 125 days
    matured = matured.splitlines()
    assert matured[2].split() == ["churn", "v1", "2900", "870", "(30%)", "0.800", f"{8 / 13:.3f}"] + [
        "2026-03-01",
        "..",
        "2026-03-29",
    ]
    assert "  risk: no day past its label horizon (125 days) yet" in matured


def test_final_health_says_when_labels_past_the_horizon_are_too_few_and_what_its_star_means(
    tmp_path, capsys, monkeypatch
):
    # a trial's 78-day label outage read "final precision and recall: 50 predictions, 7 (14%) labelled, 1.000*
    # 0.714*", the star unexplained and nothing said of the labels that never came
    days = pd.date_range("2026-03-01", periods=40, freq="D")
    health = pd.DataFrame(
        {
            "date": [d.date() for d in days] * 2,
            "model_id": ["lost"] * 40 + ["whole"] * 40,
            "model_version": "v1",
            "predictions": 10,
            # 'lost': 1 of 10 labelled, all positives (one class); 'whole': every prediction labelled
            "labelled": [1] * 40 + [10] * 40,
            "true_positives": [1] * 40 + [4] * 40,
            "false_positives": [0] * 40 + [1] * 40,
            "false_negatives": [0] * 40 + [1] * 40,
            "true_negatives": [0] * 40 + [4] * 40,
            "labels_as_of": [min(days[-1], d + pd.Timedelta(days=10)).date() for d in days] * 2,
            "positive_rate": 0.5,
            "estimated_precision": 0.5,
        }
    )
    path = _monitoring_only(tmp_path / "w.duckdb", model_health_daily=health)
    config = tmp_path / "project.yml"
    # labels due within 15 days: the last 30 days are not all in, so the final table shows each model's earlier 30
    config.write_text(
        "models:\n  lost: {label_horizon_days: 15}\n  whole: {label_horizon_days: 15, alerts: "
        "{label_coverage: {below: 0.05}}}\n"
    )
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(config))
    monkeypatch.setattr(cli, "reports_dir", lambda: tmp_path)
    matured = _summary(path, capsys).split("whose labels are all in")[1]
    # by hand: days 03-01 .. 03-25 are past 15 days by 04-09: 25 x 10 predictions, 25 x 1 labelled (10%)
    assert "lost v1: only 10% of these days' predictions got a label, though every label should be in" in matured
    assert "(under its label_coverage limit 0.5;" in matured and "whole v1: only" not in matured
    assert "  * every label of these days is of one class" in matured
    # the alert off (below: 0, as init writes it for labels it cannot time): past the horizon, still said
    off = _summary_under(
        path, capsys, monkeypatch, "models:\n  lost: {label_horizon_days: 15, alerts: {label_coverage: {below: 0}}}\n"
    ).split("whose labels are all in")[1]
    assert "lost v1: only 10% of these days' predictions got a label" in off
    assert "(under 0.5, label_coverage's default (its alert is off);" in off


def test_labels_loaded_after_a_models_last_day_count_it_complete(tmp_path, capsys, monkeypatch):
    # a second trial: a model that stopped scoring on day 29, labels loaded by daily runs up to day 45; no row was
    # recomputed after its last label landed, so "labels complete" read the days as of that label, not day 45
    from orchestration.lib.quality_gate import GATE_RESULTS, ensure_gate_results

    days = pd.date_range("2026-03-01", periods=30, freq="D")
    health = pd.DataFrame(
        {
            "date": [d.date() for d in days],
            "model_id": "frail",
            "model_version": "v1",
            "predictions": 100,
            "positive_rate": 0.2,
            "labelled": 40,
            "true_positives": 8,
            "false_positives": 12,
            "false_negatives": 5,
            "true_negatives": 15,
            "estimated_precision": 0.4,
            "labels_as_of": [min(d + pd.Timedelta(days=5), days[-1]).date() for d in days],
        }
    )
    path = _monitoring_only(tmp_path / "w.duckdb", model_health_daily=health)
    config = tmp_path / "project.yml"
    config.write_text("models:\n  frail: {label_horizon_days: 16}\n")
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(config))
    monkeypatch.setattr(cli, "reports_dir", lambda: tmp_path)
    row = next(line for line in _summary(path, capsys).splitlines() if line.strip().startswith("frail"))
    assert "14/30 days" in row  # by hand: d + 16 <= day 29, days 0-13
    with duckdb.connect(str(path)) as conn:
        ensure_gate_results(conn)
        loaded = [(days[0] + pd.Timedelta(days=i)).date() for i in range(46)]
        conn.executemany(
            f"INSERT INTO {GATE_RESULTS} (date, table_name, suite, passed) VALUES (?, 'labels', 'raw_labels', ?)",
            [[d, i != 45] for i, d in enumerate(loaded)],  # day 45's labels held back: counted through day 44
        )
    out = _summary(path, capsys)
    row = next(line for line in out.splitlines() if line.strip().startswith("frail"))
    assert "29/30 days" in row  # by hand: d + 16 <= day 44 for days 0-28 (day 29 would need day 45's labels)
    # its newest 30 days with every label in: days 0-28 (29 x 100 predictions, 29 x 40 labelled, 8 / 20, 8 / 13)
    matured = out.split("whose labels are all in")[1].splitlines()
    assert matured[2].split()[:7] == ["frail", "v1", "2900", "1160", "(40%)", f"{8 / 20:.3f}", f"{8 / 13:.3f}"]
    # a model without any label has nothing final to show: not listed there
    with duckdb.connect(str(path)) as conn:
        conn.execute("INSERT INTO marts.model_health_daily SELECT * REPLACE ('bare' AS model_id, 0 AS labelled, "
                     "0 AS true_positives, 0 AS false_positives, 0 AS false_negatives, 0 AS true_negatives) "
                     "FROM marts.model_health_daily")  # fmt: skip
    out = _summary(path, capsys)
    before, section = out.split("whose labels are all in")
    assert "bare" not in section.split("\n\n")[0] and "bare" in before


def test_drift_far_above_its_threshold_on_days_too_small_to_judge_is_named(tmp_path, capsys, monkeypatch):
    # a trial's drifted week: PSI 0.85-0.94 on 169-201 values a day (min_count 200): no alert, nothing said
    drift = pd.DataFrame(
        {
            "date": [date(2026, 2, d) for d in (3, 4, 5, 6)],
            "model_id": "risk",
            "model_version": "v1",
            "feature": "feature_balance",
            "psi": [0.85, 0.94, 0.05, 0.91],
        }
    )
    # two bins a day: the shares moved from 1/2 to ~3/5 on 02-03 (beyond alpha, not a tenth of it: chi-square p
    # 0.024), ~4/5 after it (02-04's 182 values far beyond noise: judged alone; 02-06's 250: judged)
    keys = drift[["date", "model_id", "model_version", "feature"]]
    low, high = np.array([100, 146, 75, 200]), np.array([69, 36, 75, 50])
    bins = pd.concat(
        [
            keys.assign(bin="low", current_count=low, reference_count=750),
            keys.assign(bin="high", current_count=high, reference_count=750),
        ]
    )
    # the mart's pooled figures: the days so far summed (02-03 the version's first after its reference)
    pooled = np.array([np.cumsum(low), np.cumsum(high)])
    shares = pooled / pooled.sum(axis=0)
    drift = drift.assign(
        pooled_values=pooled.sum(axis=0),
        pooled_psi=((shares - 0.5) * np.log(shares / 0.5)).sum(axis=0),
        pooled_chi2=[chi2_contingency([[c, 750] for c in day_counts], correction=False)[0] for day_counts in pooled.T],
        pooled_bins=2,
        reference_end_date=pd.Timestamp("2026-02-02"),  # 02-03 the version's first day after it
    )
    path = _monitoring_only(tmp_path / "w.duckdb", feature_drift_daily=drift, feature_drift_bins=bins)
    monkeypatch.setattr(cli, "reports_dir", lambda: tmp_path)
    out = _summary(path, capsys)
    # by hand: 02-03 above 0.2 on fewer than 200 values, alone or pooled, within a tenth of alpha; 02-04 judged on
    # its own 182 values (p < 0.001: alerted); 02-05's pool (501) below the threshold, 02-06 judged alone
    assert "Drift above the PSI threshold without an alert" in out
    assert "2026-02-04" not in out and "2026-02-06" not in out
    assert (
        "  risk v1 feature_balance: PSI above its threshold on 1 day(s) with too few values to judge, the highest "
        "0.85 on 2026-02-03 (169 values, the reference 1500)" in out  # 750 + 750 reference values
    )
    assert "Drift not measured" not in out  # every day has values (null_rate absent here: none said)


def test_unjudged_drift_lists_a_versions_five_features_furthest_beyond_noise_and_counts_the_rest(
    tmp_path, capsys, monkeypatch
):
    # a trial's three-class grader monitored as four views of 13 features listed 104 such lines; ranked by PSI,
    # 14-value pools at PSI 3 hid its one real shift (PSI 1.17 on 60 values, chi-square p 0.022)
    features = [f"feature_{k}" for k in "abcdefg"]
    # of 169 values a day, each within a tenth of alpha (chi-square p 0.007-0.51: not judged alone, listed)
    psis, highs = [0.3, 0.9, 0.4, 0.8, 0.5, 0.7, 0.6], [66, 80, 67, 78, 68, 75, 69]
    # feature_a again the next day, judged alone (250 values) and within noise: one line for it, not two
    days = [(date(2026, 2, 3), f, p, 169 - h, h) for f, p, h in zip(features, psis, highs)]
    days.append((date(2026, 2, 4), "feature_a", 0.25, 125, 125))
    drift = pd.DataFrame(days, columns=["date", "feature", "psi", "low", "high"])
    bins = pd.concat(
        [
            drift.assign(bin="low", current_count=drift["low"], reference_count=750),
            drift.assign(bin="high", current_count=drift["high"], reference_count=750),
        ]
    ).assign(model_id="risk", model_version="v1")[
        ["date", "model_id", "model_version", "feature", "bin", "current_count", "reference_count"]
    ]
    drift = drift.drop(columns=["low", "high"]).assign(
        model_id="risk",
        model_version="v1",
        pooled_values=None,
        pooled_psi=None,
        pooled_chi2=None,
        pooled_bins=None,
        reference_end_date=pd.Timestamp("2026-02-02"),
    )
    path = _monitoring_only(tmp_path / "w.duckdb", feature_drift_daily=drift, feature_drift_bins=bins)
    monkeypatch.setattr(cli, "reports_dir", lambda: tmp_path)
    out = _summary(path, capsys).split("Drift above the PSI threshold without an alert")[1]
    listed = [line.split()[2].rstrip(":") for line in out.splitlines() if line.startswith("  risk v1 feature_")]
    # the oracle: scipy's chi-square test of each day's two bins against the reference's 750 / 750
    p = {f: chi2_contingency([[169 - h, 750], [h, 750]], correction=False)[1] for f, h in zip(features, highs)}
    assert set(listed) == set(sorted(features, key=p.get)[:5]) == {f"feature_{k}" for k in "acefg"}
    assert listed == sorted(listed)  # in the features' order, feature_a once
    assert "  risk v1: and 2 more feature(s) so (further within noise; marts.feature_drift_daily)" in out


def test_a_feature_without_values_on_recent_days_is_named(tmp_path, capsys, monkeypatch):
    # a trial's feature column renamed upstream on a day: every gate passed and no line said so; another trial's
    # one-row day whose one value was the data's only missing one was said for a month
    days = [date(2026, 3, d) for d in (2, 3, 4, 5)]
    drift = pd.DataFrame(
        {
            "date": days * 3,
            "model_id": "m",
            "model_version": "v1",
            "feature": ["feature_education"] * 4 + ["feature_age"] * 4 + ["feature_ecog"] * 4,
            "rows_total": [100] * 8 + [14, 3, 2, 1],
            "null_rate": [0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.02, 0.0, 0.0, 0.0, 0.0, 1.0],
            "psi": [0.01, None, None, 0.02, 0.01, 0.01, 0.03, 0.02, 0.01, 0.01, 0.01, None],
            "reference_start_date": date(2026, 3, 2),
            "reference_end_date": date(2026, 3, 2),
        }
    )
    path = _monitoring_only(tmp_path / "w.duckdb", feature_drift_daily=drift)
    monkeypatch.setattr(cli, "reports_dir", lambda: tmp_path)
    out = _summary(path, capsys)
    # by hand: education's reference 0 of 100 missing, smoothed 1 / 102; 200 empty rows: far beyond chance
    assert (
        "  m v1 feature_education: no value on 2 day(s) (2026-03-03 .. 2026-03-04) though its reference has values"
        in out
    )
    assert "feature_age: no value" not in out
    # ecog: 0 of 14 missing, smoothed 1 / 16 = 0.0625: one empty row is that likely (above 0.01)
    assert "feature_ecog: no value" not in out
    assert "no drift computed" not in out  # v1 has PSI


def test_a_feature_mostly_missing_on_recent_days_is_named_with_its_reference(tmp_path, capsys, monkeypatch):
    # a trial's feature 98-100% missing for 21 days read only "no value on 7 day(s)"; its PSI on the few values left
    # was below min_count (not judged), so no alert said it either
    days = [date(2026, 3, d) for d in range(1, 11)]
    reference = [date(2026, 3, 1), date(2026, 3, 3)]  # the version's reference window: days 1-3
    drift = pd.DataFrame(
        {
            "date": days * 2,
            "model_id": "m",
            "model_version": "v1",
            "feature": ["feature_prev_earn"] * 10 + ["feature_sparse"] * 10,
            # prev_earn: present in its reference, then 98-100% missing; sparse: 95% missing from the start
            "null_rate": [0.0, 0.02, 0.0, 0.1, 0.98, 1.0, 0.99, 1.0, 0.97, 0.98] + [0.95] * 10,
            "psi": [0.01, 0.01, 0.01, 0.02, 8.3, None, 7.1, None, 6.0, 5.5] + [0.1] * 10,
            "rows_total": 100,
            "reference_start_date": reference[0],
            "reference_end_date": reference[1],
        }
    )
    path = _monitoring_only(tmp_path / "w.duckdb", feature_drift_daily=drift)
    monkeypatch.setattr(cli, "reports_dir", lambda: tmp_path)
    out = _summary(path, capsys)
    # by hand: days 5, 7, 9, 10 are 97-99% missing (6 and 8 wholly: the line before); the reference's median 0%
    assert (
        "  m v1 feature_prev_earn: mostly missing on 4 day(s) (2026-03-05 .. 2026-03-10: 97%-99% missing, against 0% "
        "in its reference days): a feed partly broken upstream?" in out
    )
    assert "  m v1 feature_prev_earn: no value on 2 day(s) (2026-03-06 .. 2026-03-08)" in out
    assert "feature_sparse: mostly missing" not in out  # as empty in its reference: no change
    # the daily report says them under the model's health too (a trial's 85-90% missing feature was in summary only),
    # as of its own day: by hand, to 03-07 days 5 and 7 are mostly missing, 6 wholly
    from orchestration.lib.alerts import load_alert_config
    from orchestration.lib.report import ReportBuilder

    health = pd.DataFrame({"date": days, "model_id": "m", "model_version": "v1", "labelled": 0, "predictions": 100})
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE marts.model_health_daily AS SELECT * FROM health")
        builder = ReportBuilder(conn, date(2026, 3, 7), load_alert_config(parse_config({})))
        said = builder._not_judged("m", health, 100)
        assert builder._not_judged("other", health, 100).count("missing") == 0
    assert (
        "m v1 feature_prev_earn: mostly missing on 2 day(s) (2026-03-05 .. 2026-03-07: 98%-99% missing, against 0% in "
        "its reference days)" in said
    )
    assert "m v1 feature_prev_earn: no value on 1 day(s) (2026-03-06 .. 2026-03-06)" in said


def test_a_version_whose_fixed_reference_holds_none_of_its_predictions_is_named(tmp_path, capsys, monkeypatch):
    # a trial's fixed-date reference (the first version's days): the second version's drift was never computed
    days = [date(2026, 3, d) for d in (16, 17, 18)]
    drift = pd.DataFrame(
        {
            "date": days * 2,
            "model_id": "m",
            "model_version": ["v1"] * 3 + ["v2"] * 3,
            "feature": "feature_age",
            "null_rate": 0.0,
            "psi": [0.01, 0.02, 0.03, None, None, None],
            "reference_complete": True,
            "reference_start_date": date(2026, 3, 2),
            "reference_end_date": date(2026, 3, 8),
        }
    )
    path = _monitoring_only(tmp_path / "w.duckdb", feature_drift_daily=drift)
    monkeypatch.setattr(cli, "reports_dir", lambda: tmp_path)
    out = _summary(path, capsys)
    assert (
        "  m v2: no drift computed: its reference window 2026-03-02 .. 2026-03-08 holds none of its predictions" in out
    )
    assert "m v1: no drift" not in out and "feature_age: no drift" not in out  # v2 said once, as a version
    # a feature with values but no PSI beside one with PSI: its reference holds none of it (a trial's feature empty
    # in its first days)
    late = drift.assign(feature="feature_late", psi=None, null_rate=[0.9, 0.5, 0.0] * 2)
    path = _monitoring_only(tmp_path / "w2.duckdb", feature_drift_daily=pd.concat([drift, late]))
    out = _summary(path, capsys)
    assert (
        "  m v1 feature_late: no drift computed: its reference window 2026-03-02 .. 2026-03-08 holds no value of it"
        in out
    )
    assert "m v2 feature_late: no drift" not in out  # its version is said whole


def test_days_held_back_by_a_gate_are_listed_and_an_attribution_that_stops_before_them_says_so(warehouse, capsys):
    # the last days of a time-boxed experiment held back by the volume gate: the results stopped three days
    # early with nothing said (rates ~6 points off on a real experiment)
    path, results, _ = warehouse
    as_of = pd.Timestamp(results["as_of_date"].iloc[0]).date()
    later = [as_of + pd.Timedelta(days=d) for d in (1, 2)]
    _gate_results(
        path,
        [
            ("raw_sessions", "sessions", later[0], False, ["volume_deviation"], 27),
            ("raw_orders", "orders", later[1], False, ["volume_deviation"], 3),
            ("raw_orders", "orders", as_of, True, [], 400),
        ],
    )
    out = _summary(path, capsys)
    assert "Days held back by the quality gates (2;" in out
    assert (
        f"  {later[1]}: raw_orders (volume_deviation)" in out
        and f"  {later[0]}: raw_sessions (volume_deviation)" in out
    )
    assert out.index(str(later[1])) < out.index(f"  {later[0]}:")  # the latest first
    assert f"the attribution above stops at {as_of}: later days of orders, sessions were held back" in out
    assert "gates.volume.tables.<table>: tolerance, z" in out  # why, and what to do if the activity really ended


def test_an_attribution_stopped_by_an_empty_orders_day_names_the_empty_table(warehouse, capsys):
    # a re-trial: an empty orders day among 300 sessions read "the later days held back had no rows"
    path, results, _ = warehouse
    as_of = pd.Timestamp(results["as_of_date"].iloc[0]).date()
    later = as_of + pd.Timedelta(days=1)
    _gate_results(path, [("raw_orders", "orders", later, False, ["fresh"], 0)])
    out = _summary(path, capsys)
    assert (
        f"the attribution above stops at {as_of}: the later days held back had no rows of orders (if that data ended "
        "there, none are missing; else an outage, or a day the business was closed: gates.volume.closed_days)"
    ) in out


def test_an_experiment_design_gates_days_are_untrustworthy_results_not_days_held_back(warehouse, capsys):
    # shares written 50 and 50 failed raw_experiment_variants on every day: summary listed each as "held back",
    # though every model's marts were built; only the experiments' results of those days are untrustworthy
    path, results, _ = warehouse
    as_of = pd.Timestamp(results["as_of_date"].iloc[0]).date()
    days = [as_of - pd.Timedelta(days=d) for d in (4, 3, 2, 0)]
    share = "expect_column_values_to_be_between(expected_share)"
    _gate_results(
        path,
        [("raw_experiment_variants", "experiment_variants", d, False, [share], 2) for d in days]
        + [("raw_orders", "orders", days[0], False, ["volume_deviation"], 3)],
    )
    out = _summary(path, capsys)
    assert "Days held back by the quality gates (1;" in out  # the orders day alone
    assert f"  {days[0]}: raw_orders (volume_deviation)" in out and f"  {days[1]}: " not in out
    assert "Experiment design gates that failed: those days' experiment results are untrustworthy" in out
    assert (
        f"  raw_experiment_variants (raw.experiment_variants: {share}) on 4 day(s): {days[0]} .. {days[2]}, {days[3]}"
        in out
    )
    # failing rows that name their experiment: the line names whose results (each day's named ones together)
    with duckdb.connect(str(path)) as conn:
        conn.execute("UPDATE quality.gate_results SET experiments = '[\"e2\"]' WHERE suite = 'raw_experiment_variants'")
        conn.execute(
            "UPDATE quality.gate_results SET experiments = '[\"e1\", \"e2\"]' WHERE suite = 'raw_experiment_variants' "
            "AND date = ?",
            [days[3]],
        )
    out = _summary(path, capsys)
    assert f"on 4 day(s): {days[0]} .. {days[2]}, {days[3]} (the results of e1, e2)" in out


@pytest.mark.parametrize(
    ("suite", "table", "reason", "rows", "said"),
    [
        # an experiment whose activity ended: the freshness rule holds back the empty days after it, which lose no
        # row; the summary blamed them for the attribution stopping ("later days were held back")
        ("raw_orders", "orders", "fresh", 0, "the later days held back had no rows"),
        # a trial: labels days held back after the attribution's last day (its sessions and orders ended there)
        ("raw_labels", "labels", "prediction_known", 1201, "the later days held back are of tables no lift reads"),
    ],
)
def test_held_back_days_no_lift_lost_are_not_blamed_for_where_the_attribution_stops(
    warehouse, capsys, suite, table, reason, rows, said
):
    path, results, _ = warehouse
    as_of = pd.Timestamp(results["as_of_date"].iloc[0]).date()
    later = as_of + pd.Timedelta(days=1)
    _gate_results(path, [(suite, table, later, False, [reason], rows)])
    out = _summary(path, capsys)
    assert f"  {later}: {suite} ({reason})" in out and "were held back" not in out
    assert f"stops at {as_of}: {said}" in out
    if not rows:
        assert f"  {later}: {suite} ({reason}) [no rows that day: none excluded]" in out
        assert "fresh: no rows after steady days" in out and "gates.volume.tables.<table>.z" in out


def test_a_day_held_back_for_percent_scores_says_percentages_under_it(warehouse, tmp_path, capsys):
    # a later day's scores exported as percentages: the loader quarantines them and the gate holds the day back;
    # summary listed only the expectation's name, not the hint the gate's description gave
    from orchestration.lib.raw_loader import load_partition

    path, results, _ = warehouse
    day = pd.Timestamp(results["as_of_date"].iloc[0]).date()
    scores = [0.4, 12.0, 55.5, 99.0]  # three above 1, each at most 100
    zone = tmp_path / "zone" / "predictions"
    zone.mkdir(parents=True)
    pd.DataFrame(
        {
            "prediction_id": [f"p{i}" for i in range(len(scores))],
            "model_id": "m",
            "model_version": "v1",
            "user_id": "u1",
            "predicted_at": pd.Timestamp(day) + pd.Timedelta(hours=9),
            "score": scores,
        }
    ).to_parquet(zone / f"predictions_{day}.parquet", index=False)
    with duckdb.connect(str(path)) as conn:
        load_partition(conn, "predictions", zone.parent, day)
    before = day - pd.Timedelta(days=1)
    _gate_results(
        path,
        [
            ("raw_predictions", "predictions", day, False, ["expect_column_values_to_be_between(score)"], 4),
            ("raw_predictions", "predictions", before, False, ["volume_deviation"], 4),
        ],
    )
    out = _summary(path, capsys)
    assert (
        f"  {day}: raw_predictions (expect_column_values_to_be_between(score))\n    score above 1 on {day}: 3 of 4 "
        "rows, each at most 100: scores and thresholds are probabilities in [0, 1] (percentages? divide both by 100)"
    ) in out
    assert out.count("percentages?") == 1  # the day held back for its volume: nothing about units


def test_a_held_back_day_names_the_tables_its_run_never_loaded(warehouse, capsys):
    # a trial's predictions gate failed a day run alone: its labels were never loaded, and later runs stamped the
    # earlier days' rows as labelled up to date with nothing said
    path, results, _ = warehouse
    day = pd.Timestamp(results["as_of_date"].iloc[0]).date()
    around = [day - pd.Timedelta(days=1), day + pd.Timedelta(days=1)]
    suites = [("raw_users", "users"), ("raw_predictions", "predictions"), ("raw_labels", "labels")]
    _gate_results(
        path,
        [(suite, table, d, True, [], 100) for d in around for suite, table in suites]
        + [
            ("raw_users", "users", day, True, [], 100),
            ("raw_predictions", "predictions", day, False, ["volume_deviation"], 200),
        ],
    )
    out = _summary(path, capsys)
    assert f"  {day}: raw_predictions (volume_deviation)" in out
    assert "    not loaded that day (raw_labels): its run stopped at the failed gate" in out
    assert out.count("not loaded that day") == 1  # the days around it loaded everything


NAN = float("nan")


def _publish_verdicts(path, verdicts: pd.DataFrame, health: pd.DataFrame | None = None) -> None:
    """marts.bias_verdicts as given (and marts.model_health_daily replaced by ``health``)."""
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS marts")
        conn.execute("CREATE TABLE marts.bias_verdicts AS SELECT * FROM verdicts")
        if health is not None:
            conn.execute("CREATE OR REPLACE TABLE marts.model_health_daily AS SELECT * FROM health")


def _verdict(day: str, attribute: str, di: float, eligible: str, flagged: str = "") -> dict:
    limits = {"disparate_impact_min": 0.8, "equal_opportunity_max_difference": 0.1}
    limits |= {"equalized_odds_max_difference": 0.1, "calibration_gap_max": 0.1, "min_labelled": 500.0}
    return {
        "date": pd.Timestamp(day).date(),
        "window_start": (pd.Timestamp(day) - pd.Timedelta(days=13)).date(),
        "model_id": "m",
        "attribute": attribute,
        "positive_decision": "favourable",
        "equal_opportunity_rate": "tpr",
        "disparate_impact_ratio": di,
        "equal_opportunity_difference": 0.01,
        "tpr_difference": 0.01,
        "fpr_difference": 0.01,
        "equalized_odds_difference": 0.01,
        "calibration_gap": 0.01,
        "passes_disparate_impact": not di < 0.8,  # NaN: nothing compared, passes
        "passes_equal_opportunity": True,
        "passes_equalized_odds": True,
        "passes_calibration": True,
        "passed": not di < 0.8,
        "flagged_groups_disparate_impact": flagged,
        "flagged_groups_equal_opportunity": "",
        "calibration_extremes": "",
        "eligible_groups": eligible,
        "excluded_groups": "",
        "groups_without_tpr": "",
        "note": "",
        **limits,
    }


def test_summary_prints_the_newest_fairness_window_and_how_many_recent_windows_failed(warehouse, capsys):
    # neither summary nor anything but the report showed fairness; the report only the newest window
    path, _, _ = warehouse
    verdicts = pd.DataFrame(
        [
            _verdict("2026-03-10", "gender", 0.70, "a, b", flagged="b"),
            _verdict("2026-03-11", "gender", NAN, "a"),  # one group with enough data: not assessed
            _verdict("2026-03-12", "gender", 0.95, "a, b"),
            _verdict("2026-03-12", "region", 0.50, "x, y, z", flagged="y, z"),
        ]
    )
    _publish_verdicts(path, verdicts)
    out = _summary(path, capsys)
    assert "Fairness: the newest trailing window's verdicts that compared groups" in out
    assert (
        "  m / gender, window 2026-02-27 .. 2026-03-12: all fairness verdicts pass "
        "(the last 3 days' windows: 1 failed (disparate impact 1), latest 2026-02-25 .. 2026-03-10, 1 not assessed)"
        in out
    )
    assert (
        "  m / region, window 2026-02-27 .. 2026-03-12: disparate impact ratio 0.50 < 0.80; disadvantaged: y, z "
        "(the last 1 days' windows: 1 failed (disparate impact 1), 0 not assessed)" in out
    )


def test_windows_that_compared_nothing_do_not_hide_the_last_verdict(warehouse, capsys):
    # a model that stopped predicting (or whose labels lag) has newer windows with one group or none: the summary
    # showed "not assessed" for the newest of them, and the failing window before only as a count
    path, _, _ = warehouse
    verdicts = pd.DataFrame(
        [
            _verdict("2026-03-10", "race", 0.70, "a, b", flagged="b"),
            _verdict("2026-03-11", "race", NAN, "a"),
            _verdict("2026-03-12", "race", NAN, ""),
        ]
    )
    _publish_verdicts(path, verdicts)
    out = _summary(path, capsys)
    assert (
        "  m / race, window 2026-02-25 .. 2026-03-10: disparate impact ratio 0.70 < 0.80; disadvantaged: b "
        "(the 1 window(s) up to it: 1 failed (disparate impact 1), 0 not assessed; the 2 newer window(s) compared nothing)"
        in out
    )


def test_fairness_is_read_as_of_the_newest_report_day(warehouse, capsys):
    # the summary showed the window ending on the run's last day, the report (its "details") the one ending on the
    # last day with data: two windows, two answers
    path, results, _ = warehouse
    day = pd.Timestamp(results["as_of_date"].max()).date()
    verdicts = pd.DataFrame(
        [
            _verdict(str(day), "gender", 0.70, "a, b", flagged="b"),
            _verdict(str(day + pd.Timedelta(days=2)), "gender", 0.95, "a, b"),  # after the last day with data
        ]
    )
    _publish_verdicts(path, verdicts)
    out = _summary(path, capsys)
    assert f"  m / gender, window {day - pd.Timedelta(days=13)} .. {day}: disparate impact ratio 0.70" in out


def _age_band_verdicts(days, failing, di: float) -> pd.DataFrame:
    """age_band verdicts on ``days``: disparate impact ``di`` naming b on the days ``failing`` holds, 0.95 else."""
    return pd.DataFrame(
        [
            _verdict(str(d), "age_band", di if failing(d) else 0.95, "a, b", flagged="b" if failing(d) else "")
            for d in days
        ]
    )


def test_fairness_ends_at_the_models_last_prediction_day(warehouse, capsys):
    # ten days after the model stopped, its window held 4 days of predictions: the failing verdict (DI 0.20)
    # became "all fairness verdicts pass" (DI 0.66 within noise)
    path, _, _ = warehouse
    days = pd.date_range("2026-03-08", periods=5).date
    verdicts = _age_band_verdicts(days, lambda d: d <= days[1], 0.20)
    health = pd.DataFrame({"date": days, "model_id": "m", "predictions": [100, 100, 0, 0, 0]})
    _publish_verdicts(path, verdicts, health)
    out = _summary(path, capsys)
    assert f"  m / age_band, window {days[1] - pd.Timedelta(days=13)} .. {days[1]}: disparate impact ratio 0.20" in out


def test_a_window_after_the_last_prediction_day_that_fails_is_counted_and_named(warehouse, capsys):
    # the window ending on the last prediction day passed; a later one (more labels landed) failed with DI 0.45,
    # and the summary said "0 failed"
    path, _, _ = warehouse
    days = pd.date_range("2026-03-08", periods=4).date
    verdicts = _age_band_verdicts(days, lambda d: d == days[3], 0.45)
    health = pd.DataFrame({"date": days, "model_id": "m", "predictions": [100, 100, 0, 0]})
    _publish_verdicts(path, verdicts, health)
    out = _summary(path, capsys)
    window = f"{days[3] - pd.Timedelta(days=13)} .. {days[3]}"
    assert (
        f"  m / age_band, window {days[1] - pd.Timedelta(days=13)} .. {days[1]}: all fairness verdicts pass "
        "(the 2 window(s) up to it: 0 failed, 0 not assessed; the 2 newer window(s) end after its last prediction "
        f"day, 1 failed (disparate impact 1), latest {window})" in out
    )


def test_a_model_that_stopped_long_ago_shows_its_last_verdict_as_the_report_does(warehouse, capsys):
    # its last prediction day was more than 30 days before the newest window: the summary showed "not assessed"
    # (the newest window, of nothing) while the report showed the failing window ending on that day; then it counted
    # the 30 newest windows, all after the model stopped ("0 failed, 30 not assessed"), not the 6 before, all failed
    from orchestration.lib.report_data import bias_window

    path, _, _ = warehouse
    days = pd.date_range("2026-01-01", periods=45).date
    verdicts = pd.DataFrame(
        [
            _verdict(str(d), "race", 0.55 if d <= days[5] else NAN, "a, b" if d <= days[5] else "a", flagged="b")
            for d in days
        ]
    )
    verdicts.loc[verdicts["date"] > days[5], "flagged_groups_disparate_impact"] = ""
    health = pd.DataFrame({"date": days, "model_id": "m", "predictions": [100] * 6 + [0] * 39})
    _publish_verdicts(path, verdicts, health)
    with duckdb.connect(str(path)) as conn:  # the report's window reads the rates the same run wrote
        conn.execute("CREATE TABLE marts.bias_group_rates AS SELECT date, model_id FROM verdicts")
        _, report = bias_window(conn, days[-1])
    assert [pd.Timestamp(d).date() for d in report["date"]] == [days[5]]
    out = _summary(path, capsys)
    assert (
        f"  m / race, window {days[5] - pd.Timedelta(days=13)} .. {days[5]}: disparate impact ratio 0.55 < 0.80; "
        "disadvantaged: b (the 6 window(s) up to it: 6 failed (disparate impact 6), 0 not assessed; the 39 newer window(s) compared "
        "nothing)" in out
    )


def test_a_day_held_back_for_rows_of_other_days_says_how_to_deliver_them(warehouse, capsys):
    # late labels appended to the next day's file with their own (earlier) labeled_at: quarantined, the day's
    # good labels held back with them, and the summary named the rule without a remedy
    path, results, _ = warehouse
    day = pd.Timestamp(results["as_of_date"].iloc[0]).date()
    failed = ["expect_column_values_to_be_in_set(in_partition_day)"]
    _gate_results(path, [("raw_labels", "labels", day, False, failed, 651)])
    out = _summary(path, capsys)
    assert f"  {day}: raw_labels (expect_column_values_to_be_in_set(in_partition_day))" in out
    assert "in_partition_day: rows whose time column falls on another day than their file's" in out


def test_a_lower_is_better_metric_says_so_beside_its_lift(warehouse, capsys):
    # a trial's pancreatitis rate fell 46%, "significant yes": a fall read as bad news at a glance
    from orchestration.lib.settings import dbt_var

    path, _, _ = warehouse
    assert dbt_var("experiment_metrics")["refund_rate"]["direction"] == "lower_is_better"
    with duckdb.connect(str(path)) as conn:
        conn.execute("UPDATE attribution.experiment_results SET metric = 'refund_rate' WHERE metric = 'conversion'")
    out = _summary(path, capsys)
    assert "refund_rate (lower is better)" in out and "revenue_per_user (lower" not in out


def test_alerts_and_requests_are_one_line_per_model_and_kind_with_their_first_and_latest_day(warehouse, capsys):
    # a request's reason names its day: 75 weekly requests of one model printed 75 lines, and an alert's line
    # did not say it was four years old
    path, _, _ = warehouse
    days = [pd.Timestamp("2026-03-02") + pd.Timedelta(days=7 * i) for i in range(3)]
    with duckdb.connect(str(path)) as conn:
        for d in days:
            conn.execute(
                "INSERT INTO marts.retraining_requests (date, model_id, reason, status) VALUES (?, 'm', ?, 'requested')",
                [d, f"drift/calibration alerts on 3 consecutive days up to {d.date()}"],
            )
        conn.execute(
            "INSERT INTO marts.alerts (date, model_id, model_version, metric, subject, value, threshold, rule) "
            "VALUES ('2022-01-03', 'm', 'v1', 'psi', 'score', 0.4, 0.2, '> 0.2')"
        )
    out = _summary(path, capsys)
    # three requests a week apart, not a span of requests ("from .. to (3 day(s))" read as one 15-day episode)
    assert (
        f"  retraining requests: m requested: 3 request(s), the first on {days[0].date()}, the latest on "
        f"{days[-1].date()}" in out
    )
    assert "  alerts: m psi (score), on 2022-01-03 (1 day(s))" in out
    assert out.count("retraining requests:") == 1
    assert "why:" not in out and "note:" not in out  # requested, no reason: nothing to explain
    # a model whose alerts span two versions: each version's line apart (a trial's psi span ran from v1 to v2)
    with duckdb.connect(str(path)) as conn:
        conn.execute(
            "INSERT INTO marts.alerts (date, model_id, model_version, metric, subject, value, threshold, rule) "
            "VALUES ('2022-02-07', 'm', 'v2', 'psi', 'score', 0.5, 0.2, '> 0.2')"
        )
    versions = _summary(path, capsys)
    assert "  alerts: m psi (score) of v1, on 2022-01-03 (1 day(s))" in versions
    assert "  alerts: m psi (score) of v2, on 2022-02-07 (1 day(s))" in versions
    with duckdb.connect(str(path)) as conn:
        conn.execute("DELETE FROM marts.alerts WHERE model_version = 'v2'")
    # a trial's two chance alerts nine days before a real drift read as one span "from 09-21 to 10-07 (6 days)":
    # the span is the latest episode (days at most 7 apart), the earlier days said apart
    with duckdb.connect(str(path)) as conn:
        for day in ("2022-01-10", "2022-01-11", "2022-01-21", "2022-01-22", "2022-01-24", "2022-01-28"):
            conn.execute(
                "INSERT INTO marts.alerts (date, model_id, model_version, metric, subject, value, threshold, rule) "
                "VALUES (?, 'm', 'v1', 'psi', 'f', 0.4, 0.2, '> 0.2')",
                [day],
            )
    episodes = _summary(path, capsys)
    assert (
        "  alerts: m psi (f), from 2022-01-21 to 2022-01-28 (4 day(s)); apart from it, earlier: 2 day(s) from "
        "2022-01-10 to 2022-01-11\n" in episodes
    )
    assert "  alerts: m psi (score), on 2022-01-03 (1 day(s))\n" in episodes  # one episode: as before
    with duckdb.connect(str(path)) as conn:
        conn.execute("DELETE FROM marts.alerts WHERE subject = 'f'")
    # a blocked request says why, the latest one's reason (a trial's summary said "blocked" alone, the reason being
    # that the months-late labels were not known by the request's day)
    with duckdb.connect(str(path)) as conn:
        for d, why in ((days[0], "first reason"), (days[1], "no labelled predictions known by then")):
            conn.execute(
                "UPDATE marts.retraining_requests SET status = 'blocked', status_reason = ? WHERE date = ?", [why, d]
            )
    out = _summary(path, capsys)
    assert (
        f"  retraining requests: m blocked: 2 request(s), the first on {days[0].date()}, the latest on "
        f"{days[1].date()}\n    why: no labelled predictions known by then\n" in out
    )
    assert "first reason" not in out


def test_a_steady_quarantine_under_the_days_count_is_said_pooled(warehouse, capsys):
    # a trial's wrong time zone quarantined ~21% of each table's rows, every day under gates.rows.min_count (10):
    # no day was held back and the run ended "ok"
    path, _, _ = warehouse
    days = pd.date_range("2026-09-01", periods=10).date
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS raw; CREATE SCHEMA IF NOT EXISTS raw_quarantine")
        conn.execute("CREATE TABLE raw.orders (order_id VARCHAR, _partition_date DATE)")
        conn.execute("CREATE TABLE raw_quarantine.orders (order_id VARCHAR, _partition_date DATE, _reason VARCHAR)")
        for day in days:
            conn.executemany("INSERT INTO raw.orders VALUES (?, ?)", [[f"{day}-{i}", day] for i in range(7)])
            conn.executemany(
                "INSERT INTO raw_quarantine.orders VALUES (?, ?, 'ordered_at outside its file''s day')",
                [[f"{day}-q{i}", day] for i in range(2)],
            )
    out = _summary(path, capsys)
    # by hand: 20 of 90 rows (22.2%), 2 a day
    assert (
        "  raw.orders: 20 of 90 rows quarantined over its last 30 days (22.2%, above gates.rows.max_share 0.01), no "
        "day reaching gates.rows.min_count (10), so none held back: a steady cause, not a bad day (most often: "
        "ordered_at outside its file's day; raw_quarantine.orders._reason)"
    ) in out
    with duckdb.connect(str(path)) as conn:  # a day of 12: the gate judged it, nothing more to say
        conn.executemany(
            "INSERT INTO raw_quarantine.orders VALUES (?, ?, 'x')", [[f"x{i}", days[-1]] for i in range(10)]
        )
    assert "raw.orders:" not in _summary(path, capsys)
    # three-class labels: the reason's hint points to how to monitor them (a trial's read the reason alone)
    out = _summary_after(
        path,
        capsys,
        "CREATE TABLE raw.labels AS SELECT order_id AS prediction_id, _partition_date FROM raw.orders",
        "CREATE TABLE raw_quarantine.labels AS SELECT order_id AS prediction_id, _partition_date, "
        "'label not in (0, 1)' AS _reason FROM raw_quarantine.orders WHERE _reason <> 'x'",
    )
    assert "(most often: label not in (0, 1); raw_quarantine.labels._reason): labels of more than two classes?" in out


def test_a_table_quarantined_whole_and_its_model_without_predictions_open_the_summary(warehouse, capsys, monkeypatch):
    # a trial's weekly exports, each file dated the Monday after its week: every row quarantined, each day under
    # gates.rows.min_count (10), the run "ok", and summary said nothing of it (its pooled line read the 30 days
    # before the newest loaded day, of which there was none)
    path, _, _ = warehouse
    reason = "predicted_at before its file's date 2026-09-14, as is every row of that file"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS raw; CREATE SCHEMA IF NOT EXISTS raw_quarantine")
        conn.execute("CREATE TABLE raw.predictions (prediction_id VARCHAR, model_id VARCHAR, _partition_date DATE)")
        conn.execute(
            "CREATE TABLE raw_quarantine.predictions (prediction_id VARCHAR, model_id VARCHAR, _partition_date DATE, "
            "_reason VARCHAR)"
        )
        for week, day in enumerate(pd.date_range("2026-09-14", periods=3, freq="7D").date):  # 8 rows each
            conn.executemany(
                "INSERT INTO raw_quarantine.predictions VALUES (?, 'risk', ?, ?)",
                [[f"{week}-{i}", day, reason if week == 0 else f"other {week}"] for i in range(8 - week)],
            )
    out = _summary_under(path, capsys, monkeypatch, "models:\n  risk: {}\n  quiet: {}\n")
    section = out.split("Most rows quarantined", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    # by hand: 8 + 7 + 6 = 21 rows, none loaded; the first week's reason the commonest (8)
    assert section == [
        f"  raw.predictions: 21 of its 21 rows quarantined, none loaded (most often: {reason}; "
        "raw_quarantine.predictions._reason)",
        "  model risk (declared in the project file): no prediction loaded, so no health, drift or fairness for it; "
        f"its 21 prediction row(s) are all quarantined (most often: {reason}; raw_quarantine.predictions._reason)",
        "  model quiet (declared in the project file): no prediction loaded, so no health, drift or fairness for it; "
        "the predictions files hold no row of it either (its model_id spelt otherwise?)",
    ], section
    assert "raw.predictions: 21 of 21 rows quarantined over its last 30 days" not in out  # said once, above
    # some rows loaded, but fewer than quarantined (9 + 2 of 30): still "mostly", with the share
    with duckdb.connect(str(path)) as conn:
        conn.executemany(
            "INSERT INTO raw.predictions VALUES (?, 'risk', DATE '2026-09-21')", [[f"l{i}"] for i in range(9)]
        )
        conn.executemany(
            "INSERT INTO raw.predictions VALUES (?, 'quiet', DATE '2026-09-21')", [[f"q{i}"] for i in range(2)]
        )
    out = _summary(path, capsys)
    assert (
        f"  raw.predictions: 21 of its 32 rows quarantined (66%) (most often: {reason}; "
        "raw_quarantine.predictions._reason)"
    ) in out
    assert "no prediction loaded" not in out


def test_the_pooled_quarantine_reads_the_30_days_to_the_newest_day_quarantined_too(warehouse, capsys):
    # the table's last weeks all quarantined: its newest loaded day was weeks older, and the pooled line read the
    # 30 days before it, which held no quarantined row
    path, _, _ = warehouse
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS raw; CREATE SCHEMA IF NOT EXISTS raw_quarantine")
        conn.execute("CREATE TABLE raw.orders (order_id VARCHAR, _partition_date DATE)")
        conn.execute("CREATE TABLE raw_quarantine.orders (order_id VARCHAR, _partition_date DATE, _reason VARCHAR)")
        for day in pd.date_range("2026-08-01", periods=10).date:  # 3 loaded a day
            conn.executemany("INSERT INTO raw.orders VALUES (?, ?)", [[f"{day}-{i}", day] for i in range(3)])
        for day in pd.date_range("2026-09-20", periods=6).date:  # 2 quarantined a day, 6 weeks later
            conn.executemany(
                "INSERT INTO raw_quarantine.orders VALUES (?, ?, 'ordered_at outside partition day')",
                [[f"{day}-q{i}", day] for i in range(2)],
            )
    out = _summary(path, capsys)
    # by hand: the 30 days to 09-25 (08-27 .. 09-25) hold the 12 quarantined rows and no loaded one
    assert (
        "  raw.orders: 12 of 12 rows quarantined over its last 30 days (100.0%, above gates.rows.max_share 0.01), no "
        "day reaching gates.rows.min_count (10), so none held back"
    ) in out
    assert "Most rows quarantined" not in out  # 12 of 42 over all its days: not most


def test_rows_in_an_hour_the_time_zone_lives_twice_are_counted_and_what_that_does_is_said(
    warehouse, capsys, tmp_path, monkeypatch
):
    # a trial's US fall-back night: 9 orders placed after their traveller's assignment read as before it (local
    # wall-clock times), and nothing said the hour had happened twice
    path, _, _ = warehouse
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS raw")
        conn.execute(
            "CREATE TABLE raw.orders AS SELECT * FROM (VALUES (TIMESTAMP '2025-11-01 23:00'), "
            "(TIMESTAMP '2025-11-02 01:10'), (TIMESTAMP '2025-11-02 01:59:59'), (TIMESTAMP '2025-11-02 02:00')) "
            "v(ordered_at)"
        )
        conn.execute("CREATE TABLE raw.assignments AS SELECT TIMESTAMP '2025-11-02 01:40' AS assigned_at")
        # a time column of days (model_costs): in no hour, and its DATEs beside the TIMESTAMPs crashed summary
        conn.execute("CREATE TABLE raw.model_costs AS SELECT DATE '2025-11-02' AS date")
    assert "happened twice" not in _summary(path, capsys)  # the tests' project file: UTC
    project = tmp_path / "ny.yml"
    project.write_text("timezone: America/New_York\n")
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(project))
    out = _summary(path, capsys)
    assert (
        "  2025-11-02 01:00-02:00 America/New_York happened twice (clocks set back): assignments 1, orders 2 row(s) "
        "in it. Times are kept as local wall-clock, so within that hour an event of its second pass reads as before "
        "one of its first" in out
    )


def test_a_gates_warnings_are_listed_with_their_days(warehouse, capsys):
    # a paused label feed only warns: quality.gate_results said passed with nothing failed, and summary was silent
    path, results, _ = warehouse
    day = pd.Timestamp(results["as_of_date"].iloc[0]).date()
    stale = "expect_column_values_to_be_in_set(fresh)"
    days = [day - pd.Timedelta(days=d) for d in (2, 1, 0)]
    _gate_results(
        path,
        [("raw_labels", "labels", d, True, [], 0) for d in days] + [("raw_orders", "orders", day, True, [], 40)],
        warnings={("raw_labels", d): [stale] for d in days},
    )
    out = _summary(path, capsys)
    assert f"  raw_labels {stale}: 3 day(s), {days[0]} .. {days[-1]}" in out
    assert "raw_orders expect" not in out and "Days held back" not in out


def test_costs_after_the_newest_net_value_are_said_for_every_model():
    # the second model's note was lost once the first had no costs after its net value (a variable reused)
    from orchestration.lib.cost_gaps import cost_gap_notes

    days = [date(2026, 9, d) for d in (1, 2, 3)]
    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA attribution; CREATE SCHEMA staging")
        conn.execute(
            "CREATE TABLE attribution.model_impact AS SELECT m AS model_id, 'day' AS analysis_window, "
            "d AS as_of_date, 10.0 AS model_cost FROM unnest(['a', 'b']) t(m), unnest(?::DATE[]) s(d)",
            [days],
        )
        # a: costs on its three days only; b: on them and two days after its newest net value
        conn.execute(
            "CREATE TABLE staging.stg_model_costs AS SELECT m AS model_id, d AS date, 10.0 AS total_cost "
            "FROM unnest(['a', 'b']) t(m), unnest(?::DATE[]) s(d) "
            "UNION ALL SELECT 'b', d, 5.0 FROM unnest(?::DATE[]) s(d)",
            [days, [date(2026, 9, 4), date(2026, 9, 5)]],
        )
        assert cost_gap_notes(conn) == [
            "b: 2 day(s) of model_costs after 2026-09-03 (10.00) are in no net value yet: results end on the last "
            "day with experiment data"
        ]


def test_a_cost_day_missing_and_costs_after_the_newest_net_value_are_said(warehouse, capsys):
    # a late cost file: the day's net value counted no cost and nothing said so; costs landed after the last day
    # with experiment data were in no net value
    path, _, _ = warehouse
    start = (AS_OF - pd.Timedelta(days=4)).date()
    days = [start + pd.Timedelta(days=d) for d in range(5)]
    with duckdb.connect(str(path)) as conn:  # the 'day' rows of model_impact: day 2's counted no cost
        conn.executemany(
            "INSERT INTO attribution.model_impact (model_id, experiment_id, analysis_window, as_of_date, model_cost) "
            "VALUES ('m', 'e', 'day', ?, ?)",
            [[d, 0.0 if i == 2 else 120.5] for i, d in enumerate(days)],
        )
        conn.execute("CREATE SCHEMA staging")
        conn.execute("CREATE TABLE staging.stg_model_costs (model_id VARCHAR, date DATE, total_cost DOUBLE)")
        landed = [d for i, d in enumerate(days) if i != 2] + [days[-1] + pd.Timedelta(days=k) for k in (1, 2)]
        conn.executemany("INSERT INTO staging.stg_model_costs VALUES ('m', ?, 120.5)", [[d] for d in landed])
    out = _summary(path, capsys)
    assert (
        f"  note: m: no model_costs row on 1 day(s) of its experiment up to {AS_OF.date()} ({days[2]}): its net "
        "value counts no cost on them" in out
    )
    assert f"  note: m: 2 day(s) of model_costs after {AS_OF.date()} (241.00) are in no net value yet" in out
    # the report of an earlier day says what its own days missed (a second trial's report said nothing)
    from orchestration.lib.cost_gaps import cost_gap_notes

    with duckdb.connect(str(path), read_only=True) as conn:
        assert cost_gap_notes(conn, days[1], after=False) == []
        [said] = cost_gap_notes(conn, days[2], after=False)
    assert said.startswith(f"m: no model_costs row on 1 day(s) of its experiment up to {days[2]} ({days[2]})")
    # two trials: a row of cost 0 (no patient treated that day) and the days of outcomes after the model's last
    # cost row, on which it scored nothing, were counted as missing rows
    with duckdb.connect(str(path)) as conn:
        conn.execute("INSERT INTO staging.stg_model_costs VALUES ('m', ?, 0.0)", [days[2]])
        conn.execute("DELETE FROM staging.stg_model_costs WHERE date > ?", [days[1]])
        conn.execute("UPDATE attribution.model_impact SET model_cost = 0 WHERE as_of_date > ?", [days[1]])
        conn.execute("CREATE SCHEMA IF NOT EXISTS marts")
        conn.execute(
            "CREATE OR REPLACE TABLE marts.model_health_daily (model_id VARCHAR, date DATE, predictions BIGINT)"
        )
        # scored on days 0, 1 and 3 (no case on day 2: its cost 0, then its row gone; none on day 4)
        conn.executemany("INSERT INTO marts.model_health_daily VALUES ('m', ?, 50)", [[days[i]] for i in (0, 1, 3)])
    out = _summary(path, capsys)
    # by hand: day 2 has its row (0); days 3 and 4 are after the last cost row (day 2), day 3 with predictions
    assert f"  note: m: no model_costs row on 1 day(s) of its experiment up to {AS_OF.date()} ({days[3]})" in out
    with duckdb.connect(str(path)) as conn:  # as it was for the rest
        conn.execute("DELETE FROM staging.stg_model_costs WHERE date = ?", [days[2]])
        conn.execute("INSERT INTO marts.model_health_daily VALUES ('m', ?, 50)", [days[2]])  # day 2 scored again
        conn.executemany(
            "UPDATE attribution.model_impact SET model_cost = 120.5 WHERE as_of_date = ?", [[d] for d in days[3:]]
        )
    # the analytics snapshot (no staging views) and a Spark warehouse (views the analyst may not read): the first
    with duckdb.connect(str(path)) as conn:
        conn.execute("DROP TABLE staging.stg_model_costs")
    out = _summary(path, capsys)
    assert "no model_costs row on 1 day(s)" in out and "of model_costs after" not in out
    # nor a day after the model's last cost, on which it scored nothing (a second trial's snapshot report counted
    # the 28 days after its model stopped): day 4 counted no cost, day 3 is the last with predictions
    with duckdb.connect(str(path)) as conn:
        conn.execute("UPDATE attribution.model_impact SET model_cost = 0 WHERE as_of_date = ?", [days[4]])
    out = _summary(path, capsys)
    assert f"no model_costs row on 1 day(s) of its experiment up to {AS_OF.date()} ({days[2]})" in out


def test_a_weekly_batch_models_days_without_predictions_miss_no_cost(warehouse, capsys):
    # a trial's weekly batch, billed on its Mondays: "no model_costs row on 108 day(s)", every Monday's row there
    path, _, _ = warehouse
    days = [(AS_OF - pd.Timedelta(days=d)).date() for d in range(20, -1, -1)]
    mondays = days[::7]
    with duckdb.connect(str(path)) as conn:
        conn.executemany(
            "INSERT INTO attribution.model_impact (model_id, experiment_id, analysis_window, as_of_date, model_cost) "
            "VALUES ('m', 'e', 'day', ?, ?)",
            [[d, 80.0 if d in mondays else 0.0] for d in days],
        )
        conn.execute("CREATE SCHEMA staging")
        conn.execute("CREATE TABLE staging.stg_model_costs (model_id VARCHAR, date DATE, total_cost DOUBLE)")
        conn.executemany("INSERT INTO staging.stg_model_costs VALUES ('m', ?, 80.0)", [[d] for d in mondays[:-1]])
        conn.execute("CREATE SCHEMA IF NOT EXISTS marts")
        conn.execute(
            "CREATE OR REPLACE TABLE marts.model_health_daily (model_id VARCHAR, date DATE, predictions BIGINT)"
        )
        conn.executemany("INSERT INTO marts.model_health_daily VALUES ('m', ?, 87)", [[d] for d in mondays])
    out = _summary(path, capsys)
    # by hand: the last Monday's cost row is missing (its batch scored); the 18 other days scored nothing
    assert f"  note: m: no model_costs row on 1 day(s) of its experiment up to {AS_OF.date()} ({mondays[-1]})" in out


def test_a_model_without_any_cost_row_is_named_with_the_cost_ids_no_model_has(warehouse, capsys):
    # a trial's cost export misspelt its model (reply_likelihod): the model showed cost 0 and net value 0, unsaid
    path, _, _ = warehouse
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA staging")
        conn.execute("CREATE TABLE staging.stg_model_costs (model_id VARCHAR, date DATE, total_cost DOUBLE)")
    assert "model_costs" not in _summary(path, capsys)  # a project without costs is not told every day
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS marts")
        conn.execute(
            "CREATE TABLE marts.model_health_daily AS SELECT * FROM (VALUES ('reply_likelihood', DATE '2026-09-30', "
            "40), ('watch', DATE '2026-09-30', 7), ('idle', DATE '2026-09-30', 0)) t(model_id, date, predictions)"
        )
        conn.executemany(
            "INSERT INTO staging.stg_model_costs VALUES (?, DATE '2026-09-30', 2.5)",
            [["reply_likelihod"], ["watch"], ["zzz"]],
        )
    out = _summary(path, capsys)
    # by hand: m (a net value) and reply_likelihood (predictions) have no cost row; watch has one; idle made no
    # prediction; reply_likelihod and zzz are no model's, the first one letter short of reply_likelihood
    strangers = "model_costs names no model's id: reply_likelihod (did you mean reply_likelihood?), zzz"
    for model in ("m", "reply_likelihood"):
        assert f"  note: model {model}: no model_costs rows at all (its cost is counted as 0); {strangers}\n" in out
    assert "model watch:" not in out and "model idle:" not in out
    with duckdb.connect(str(path)) as conn:  # every model with costs: the strangers alone are said
        conn.execute(
            "INSERT INTO staging.stg_model_costs VALUES ('m', DATE '2026-09-30', 1), ('reply_likelihood', DATE '2026-09-30', 1)"
        )
    out = _summary(path, capsys)
    assert "no model_costs rows at all" not in out
    assert f"  note: {strangers}: their costs count toward no model\n" in out


def test_a_monitoring_only_model_is_named_as_not_measured_with_its_costs(warehouse, capsys):
    # three models, one behind an experiment: the other two vanished from "what is each model worth", their
    # landed costs shown nowhere
    path, _, _ = warehouse
    health = pd.DataFrame({"date": [AS_OF.date()] * 3, "model_id": ["m", "watch", "idle"], "predictions": [5, 7, 0]})
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS marts")
        conn.execute("CREATE OR REPLACE TABLE marts.model_health_daily AS SELECT * FROM health")
        conn.execute("CREATE SCHEMA staging")
        conn.execute(
            "CREATE TABLE staging.stg_model_costs AS SELECT * FROM (VALUES ('watch', DATE '2026-09-30', 1234.0), "
            "('watch', DATE '2026-10-02', 99.0)) t(model_id, date, total_cost)"
        )
    out = _summary(path, capsys)
    assert (
        "  Not measured: watch: no never-exposed holdout (monitoring only), so what it is worth cannot be measured; "
        "health, drift and fairness still are. Model costs so far (EUR): watch 1,234." in out
    )  # 'idle' made no prediction; 'm' has its value; the cost after the as-of day is not counted


@pytest.mark.parametrize("ended", [True, False])
def test_orders_of_an_experiments_units_after_its_newest_result_are_counted_and_why(warehouse, capsys, ended):
    # a trial's experiment ended on its last visit day (end_date), its units' purchases of the next four days
    # (8% of the orders) counted nowhere with nothing said
    path, _, _ = warehouse
    day = AS_OF.date()
    after, before = day + pd.Timedelta(days=2), day - pd.Timedelta(days=1)
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA staging")
        conn.execute(
            "CREATE TABLE staging.stg_experiments AS SELECT 'e' AS experiment_id, ?::DATE AS end_date",
            [day if ended else None],
        )
        conn.execute(
            "CREATE TABLE staging.stg_assignments AS SELECT * FROM (VALUES ('e', 'u1'), ('e', 'u2')) "
            "t(experiment_id, user_id)"
        )
        # by hand: u1's and u2's completed orders after the as-of day count (2); not the cancelled one, the one
        # before, nor an unassigned user's
        conn.execute(
            "CREATE TABLE staging.stg_orders AS SELECT * FROM (VALUES "
            "('o1', 'u1', ?::DATE, 'completed'), ('o2', 'u2', ?::DATE, 'completed'), ('o3', 'u2', ?::DATE, "
            "'cancelled'), ('o4', 'u1', ?::DATE, 'completed'), ('o5', 'x', ?::DATE, 'completed')) "
            "t(order_id, user_id, order_date, status)",
            [after, after, after, before, after],
        )
    out = _summary(path, capsys)
    why = (
        f"its end_date ({day}) ends the analysis: set it later, or leave it empty, while outcomes land"
        if ended
        else "the days they fall on have not run yet"
    )
    assert f"  note: e: 2 completed order(s) of its units after {day} are in no result: {why}" in out


def test_a_model_declared_an_experiment_without_results_is_said_to_lack_its_experiment():
    # a trial's project file said experiment: true, its landing zone had no experiment tables: "monitoring only"
    # and nothing more
    from orchestration.lib.money import money
    from orchestration.lib.report_data import declared_experiments, unmeasured_text

    config = parse_config({"models": {"watch": {"experiment": True}, "idle": {"experiment": False}, "plain": {}}})
    assert declared_experiments(config) == ["watch"]
    text = unmeasured_text([("watch", None), ("plain", 12.0)], money, "EUR", declared_experiments(config))
    assert "The project file says experiment: true for watch, yet no experiment results name it" in text
    assert "plain" not in text.split("The project file")[1].split(".")[0]
    assert "experiment: true" not in unmeasured_text([("plain", None)], money, "EUR", ["watch"])


def test_a_health_metric_moving_with_a_kpi_on_the_same_day_is_not_called_a_lead(warehouse, capsys, monkeypatch):
    # a trial's label coverage and conversion rate were the same quantity: "leads by 0 day(s)", a lead it is not
    from orchestration.lib import leading

    path, results, _ = warehouse
    monkeypatch.setattr(summary, "_leading_indicators", LEADING_INDICATORS)  # the fixture's stub undone
    monkeypatch.setattr(leading, "kpi_drop_leads", lambda *args, **kwargs: [])  # no marts.kpi_daily here
    as_of = pd.Timestamp(results["as_of_date"].max()).date()
    rows = [("conversion_rate", "label_coverage", 0, 1.0), ("revenue", "precision", 3, 0.6)]
    searched = pd.DataFrame(
        [
            {"as_of_date": as_of, "kpi": kpi, "model_id": "m", "health_metric": metric, "lag_days": lag}
            | {"correlation": r, "n_days": 28, "p_value_adjusted": 1e-6, "family_size": 30, "significant": True}
            for kpi, metric, lag, r in rows
        ]
    )
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS marts")
        conn.execute("CREATE TABLE marts.leading_lagging AS SELECT * FROM searched")
    out = _summary(path, capsys)
    assert "conversion_rate: m label_coverage moves with it on the same day (lag 0: not a lead)" in out
    assert "revenue: m precision leads by 3 day(s)" in out and "leads by 0" not in out


def test_a_project_without_experiments_still_gets_its_leading_indicators(tmp_path, capsys, monkeypatch):
    # a trial with KPIs and a model but no experiment: summary printed no leading-indicators section at all (the
    # report had one), its as-of day taken from the experiment results only
    from orchestration.lib import leading

    monkeypatch.setattr(leading, "kpi_drop_leads", lambda *args, **kwargs: [])  # no marts.kpi_daily here
    monkeypatch.setattr(cli, "reports_dir", lambda: tmp_path)
    day = date(2026, 7, 19)
    searched = pd.DataFrame(
        [
            {"as_of_date": d, "kpi": "conversion_rate", "model_id": "m", "health_metric": "precision", "lag_days": 2}
            | {"correlation": 0.1, "n_days": 28, "p_value_adjusted": 0.9, "family_size": 420, "significant": False}
            for d in (day - pd.Timedelta(days=1), day)
        ]
    )
    out = _summary(_monitoring_only(tmp_path / "w.duckdb", leading_lagging=searched), capsys)
    assert "Leading indicators (details: marts.leading_lagging)" in out
    assert "No health metric's changes precede a KPI's beyond chance (Holm over the 420 correlations" in out


def test_rows_that_miss_labels_which_have_landed_are_named_with_the_run_that_counts_them(tmp_path, capsys, monkeypatch):
    # a trial re-ran an early day alone after a late label file: the days up to it were computed again with the
    # labels known on it, and summary read "labels complete 30/30 days" at 50% labelled, with nothing said
    monkeypatch.setattr(cli, "reports_dir", lambda: tmp_path)
    config = tmp_path / "project.yml"
    config.write_text("models:\n  m: {label_horizon_days: 5}\n")
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(config))
    days = [date(2026, 3, d) for d in range(1, 11)]
    health = pd.DataFrame(
        {
            "date": days,
            "model_id": "m",
            "model_version": "v1",
            "predictions": 10,
            "labelled": 5,
            "true_positives": 2,
            "false_positives": 1,
            "false_negatives": 1,
            "true_negatives": 1,
            # 03-05 re-run alone: the days up to it rewound to what was known on it; the later ones as of 03-10
            "labels_as_of": [date(2026, 3, 5)] * 5 + [date(2026, 3, 10)] * 5,
        }
    )
    path = _monitoring_only(tmp_path / "w.duckdb", model_health_daily=health)
    # by hand, a label each: 03-03's on 03-07 (after its row, within 5 days: uncounted), 03-02's on 03-09 (beyond
    # its horizon: never counted), 03-04's on 03-04 (counted), 03-08's on 03-09 (counted)
    labels = [
        ("p3", date(2026, 3, 3), "2026-03-07 10:00"),
        ("p2", date(2026, 3, 2), "2026-03-09 10:00"),
        ("p4", date(2026, 3, 4), "2026-03-04 10:00"),
        ("p8", date(2026, 3, 8), "2026-03-09 10:00"),
    ]
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA staging")
        conn.execute(
            "CREATE TABLE staging.stg_predictions (prediction_id VARCHAR, model_id VARCHAR, prediction_date DATE)"
        )
        conn.execute("CREATE TABLE staging.stg_labels (prediction_id VARCHAR, labeled_at TIMESTAMP)")
        for pid, day, at in labels:
            conn.execute("INSERT INTO staging.stg_predictions VALUES (?, 'm', ?)", [pid, day])
            conn.execute("INSERT INTO staging.stg_labels VALUES (?, ?::TIMESTAMP)", [pid, at])
    out = _summary(path, capsys)
    assert (
        "  note: m: the rows of 1 day(s) from 2026-03-03 to 2026-03-03 miss 1 label(s) that have landed (computed "
        "before they were loaded: a re-run of an earlier day alone, or a late file): run --start 2026-03-03 --end "
        "2026-03-10" in out
    )
    with duckdb.connect(str(path)) as conn:  # the rows computed again with it: nothing to say
        conn.execute("UPDATE marts.model_health_daily SET labels_as_of = DATE '2026-03-10'")
    assert "miss" not in _summary(path, capsys)


def test_a_verdict_the_newest_window_could_not_judge_shows_its_last_judged_window_and_the_failures_are_named(
    warehouse, capsys
):
    # a late-labelled harmful model: every window with labels failed equal opportunity, the newest (no labels yet)
    # could not judge it; the summary said only "not assessed" and counted every window as failed, unsaid on what
    path, _, _ = warehouse
    rows = []
    for day in ("2026-03-10", "2026-03-11", "2026-03-12"):
        labelled = day == "2026-03-10"
        row = _verdict(day, "gender", 0.53, "female, male" if labelled else "", flagged="female")
        row |= {"positive_decision": "harmful", "equal_opportunity_rate": "fpr", "equal_opportunity_ratio": NAN}
        row |= {c: 0.249 if labelled else NAN for c in ("equal_opportunity_difference", "fpr_difference")}
        row |= {"equalized_odds_difference": 0.249 if labelled else NAN, "equalized_odds_rate": "fpr"}
        row |= {"tpr_difference": 0.02 if labelled else NAN, "calibration_gap": 0.03 if labelled else NAN}
        row |= {"flagged_groups_equal_opportunity": "female" if labelled else ""}
        row |= {
            "passes_equal_opportunity": False if labelled else None,
            "passes_equalized_odds": False if labelled else None,
        }
        row |= {"passes_disparate_impact": False, "passes_calibration": True if labelled else None, "passed": False}
        rows.append(row)
    _publish_verdicts(path, pd.DataFrame(rows))
    out = _summary(path, capsys)
    line = next(line for line in out.splitlines() if line.startswith("  m / gender"))
    assert line.startswith("  m / gender, window 2026-02-27 .. 2026-03-12: disparate impact ratio")
    assert (
        "last judged on the window 2026-02-25 .. 2026-03-10: FAILED equal opportunity difference (false-positive "
        "rates) 0.25 > 0.10; disadvantaged (wrongly flagged more often than another group, beyond the limit and noise): female; FAILED equalised odds: FPR range 0.25 "
        "> 0.10; disadvantaged: female; calibration gap 0.03 passed" in line
    )
    # 3 windows failed disparate impact, 1 of them equal opportunity and equalised odds too (the NULLs are no failure)
    assert line.endswith(
        "(the last 3 days' windows: 3 failed (disparate impact 3, equal opportunity 1, equalised odds 1), "
        "0 not assessed)"
    )
    # labels counted to 03-20: of the shown window's 14 days (02-27 .. 03-12) those up to 03-20 - 30 (the horizon)
    # have all theirs, none here; a trial's equal opportunity passed on half its labels, failed on all of them
    with duckdb.connect(str(path)) as conn:
        conn.execute(
            "CREATE TABLE marts.model_health_daily AS SELECT DATE '2026-03-12' AS date, 'm' AS model_id, "
            "DATE '2026-03-20' AS labels_as_of"
        )
        horizon = load_config().model("m").label_horizon_days
    complete = sum(date(2026, 2, 27) + timedelta(days=i + horizon) <= date(2026, 3, 20) for i in range(14))
    out = _summary(path, capsys)
    assert (
        f"\n  m: labels complete on {complete} of 14 days of its window 2026-02-27 .. 2026-03-12 (label_horizon_days "
        f"{horizon}, labels counted to 2026-03-20): its label-based fairness verdicts read the outcomes known so far\n"
    ) in out
    assert out.count("labels complete on") == 1  # once for the model, not on each attribute's line
    # every prediction of the window labelled (a fixed-date outcome: a trial's election, every label on one day) is
    # complete whatever the horizon: "labels complete on 1 of 40 days" was said with 760 of 760 labelled
    out = _summary_after(
        path,
        capsys,
        "CREATE OR REPLACE TABLE marts.model_health_daily AS SELECT d::DATE AS date, 'm' AS model_id, "
        "DATE '2026-03-20' AS labels_as_of, 10 AS predictions, 10 - (d = DATE '2026-03-01')::INT AS labelled "
        "FROM generate_series(DATE '2026-02-27', DATE '2026-03-12', INTERVAL 1 DAY) t(d)",
    )
    # by hand: 13 of 14 days have all 10 labelled; 03-01 has 9 (and is not past the horizon)
    assert complete == 0 and "m: labels complete on 13 of 14 days of its window" in out
    # a weekly batch: the days without predictions are not counted (a re-trial's "14 of 42 days": 13 empty days past
    # the horizon and one batch)
    out = _summary_after(
        path,
        capsys,
        "DELETE FROM marts.model_health_daily WHERE dayofweek(date) <> 1",  # Mondays: 03-02, 03-09
        "UPDATE marts.model_health_daily SET labelled = 9 WHERE date = DATE '2026-03-09'",
    )
    assert "m: labels complete on 1 of 2 days with predictions of its window 2026-02-27 .. 2026-03-12" in out


def test_an_attribute_no_window_could_judge_is_said_not_assessed_beside_one_that_was(warehouse, capsys):
    # a trial's 25-a-day model: no ethnicity window had two groups of bias.min_predictions; summary stopped with a
    # KeyError (an empty list of row flags selected no columns) instead of printing its fairness lines
    path, _, _ = warehouse
    rows = []
    for day in ("2026-03-11", "2026-03-12"):
        rows.append(_verdict(day, "gender", 0.95, "female, male"))
        nothing = _verdict(day, "ethnicity", NAN, "")
        nothing |= {c: NAN for c in ("equal_opportunity_difference", "tpr_difference", "fpr_difference")}
        nothing |= {"equalized_odds_difference": NAN, "calibration_gap": NAN, "passed": True}
        nothing |= {f"passes_{v}": None for v in ("disparate_impact", "equal_opportunity", "equalized_odds")}
        rows.append(nothing | {"passes_calibration": None})
    _publish_verdicts(path, pd.DataFrame(rows))
    out = _summary(path, capsys)
    lines = {line.split(",")[0].strip(): line for line in out.splitlines() if line.startswith("  m / ")}
    assert "not assessed" in lines["m / ethnicity"]
    assert lines["m / ethnicity"].endswith("(the last 2 days' windows: 0 failed, 2 not assessed)")
    assert lines["m / gender"].endswith("(the last 2 days' windows: 0 failed, 0 not assessed)")


def test_a_model_that_stopped_long_before_the_others_is_judged_over_its_own_last_days(tmp_path, capsys, monkeypatch):
    # a trial's tiny model scored for 12 days in spring; the others to the autumn: summary's "not judged" lines read
    # the mart's last 30 days and left it out, where its health row pooled its own
    days = pd.date_range("2026-01-01", periods=120, freq="D")
    health = pd.DataFrame(
        {
            "date": [d.date() for d in days] + [d.date() for d in days[:12]],
            "model_id": ["busy"] * 120 + ["spring"] * 12,
            "model_version": "v1",
            "predictions": [1000] * 120 + [3] * 12,
            "labelled": [900] * 120 + [1] * 11 + [2],
            **{c: 0 for c in ("true_positives", "false_positives", "false_negatives", "true_negatives")},
        }
    )
    monkeypatch.setattr(cli, "reports_dir", lambda: tmp_path)
    out = _summary(_monitoring_only(tmp_path / "w.duckdb", model_health_daily=health), capsys)
    assert (
        "  spring: precision, recall and calibration alerts not judged: at most 2 labelled predictions a day in " in out
    )
    assert "in the 30 days to 2026-01-12 (alerts.min_labelled" in out  # its own last day: the 12th
    assert "busy: precision, recall" not in out


def test_a_weekly_batch_models_unjudged_health_is_counted_a_batch(tmp_path, capsys, monkeypatch):
    # a trial's model scored every Monday: summary said "a median of 26 predictions a day" and "at most 39 labelled
    # predictions a day", its batches' counts; a daily model beside it keeps its days
    from orchestration.lib.alerts import load_alert_config

    config = load_alert_config()
    days = pd.date_range("2026-01-05", periods=63, freq="D")  # 9 weeks from a Monday
    batch = [20 + 2 * (i // 7) if d.weekday() == 0 else 0 for i, d in enumerate(days)]  # 20, 22, .. 36
    health = pd.DataFrame(
        {
            "date": [d.date() for d in days] * 2,
            "model_id": ["weekly"] * 63 + ["daily"] * 63,
            "model_version": "v1",
            "predictions": batch + [12] * 63,
            "labelled": [n // 2 for n in batch] + [3] * 63,
            **{c: 0 for c in ("true_positives", "false_positives", "false_negatives", "true_negatives")},
        }
    )
    monkeypatch.setattr(cli, "reports_dir", lambda: tmp_path)
    out = _summary(_monitoring_only(tmp_path / "w.duckdb", model_health_daily=health), capsys)
    # by hand: the last 30 days (from day 33) hold the Mondays of weeks 5..8: 30, 32, 34, 36 -> median 33, the most
    # labelled 36 // 2 = 18
    recent = [n for i, n in enumerate(batch) if i >= 33 and n]
    assert recent == [30, 32, 34, 36] and pd.Series(recent).median() == 33
    assert (
        f"  weekly: precision, recall and calibration alerts not judged: at most 18 labelled predictions a batch "
        f"in the 30 days to 2026-03-08 (alerts.min_labelled {config.min_labelled})" in out
    )
    assert "  weekly: volume alerts not judged: a median of 33 predictions a batch in the 30 days to 2026-03-08" in out
    assert "  daily: volume alerts not judged: a median of 12 predictions a day" in out
    assert "at most 3 labelled predictions a day" in out


def test_a_tiny_variance_cut_is_not_printed_as_zero():
    # a trial's CUPED, chosen on a 0.04% variance cut, read "cuped (0.0% less variance)"
    assert [summary._share(v) for v in (0.00037, 0.004, 0.25, 0.0)] == ["0.037%", "0.4%", "25%", "0.0%"]


def test_a_psi_alert_whose_values_piled_beyond_an_outer_decile_says_so(tmp_path, capsys, monkeypatch):
    # a trial's income sent in thousands by half the states: 56% of a day's values below the reference's lowest
    # decile, and summary said only "psi (feature_income)"
    day = date(2026, 11, 5)
    shares = {"feature_income": [139, 12, 12, 15, 16, 8, 9, 15, 7, 16], "feature_age": [60] + [21] * 9}
    # a pixel's reference piled at 0 too (51% in its lowest bin): 53% there is no shift (a trial's note said it was)
    shares["feature_px"] = [53] + [5] * 9 + [2]
    reference = {"feature_px": [0.51] + [0.49 / 10] * 10}
    bins = pd.DataFrame(
        [
            (day, "m", "v1", feature, str(k), "numeric", f"bin {k}", k, 178, n,
             reference.get(feature, [0.1] * 10)[k], n / sum(counts))
            for feature, counts in shares.items()
            for k, n in enumerate(counts)
        ],
        columns=["date", "model_id", "model_version", "feature", "bin", "feature_type", "bin_label", "bin_order",
                 "reference_count", "current_count", "reference_share", "current_share"],
    )  # fmt: skip
    path = _monitoring_only(tmp_path / "w.duckdb", feature_drift_bins=bins)
    with duckdb.connect(str(path)) as conn:
        for feature in shares:
            conn.execute(
                "INSERT INTO marts.alerts (date, model_id, model_version, metric, subject, value, threshold, rule) "
                "VALUES (?, 'm', 'v1', 'psi', ?, 1.1, 0.2, '> 0.2')",
                [day, feature],
            )
    monkeypatch.setattr(cli, "reports_dir", lambda: tmp_path)
    out = _summary(path, capsys)
    # by hand: 139 of 249 (56%) in the lowest bin; the age's 60 of 249 (24%) is no pile
    assert (
        "    note: on 2026-11-05 56% of feature_income's values fell below the reference's lowest decile (bin 0), "
        "against 10% of the reference's: a shift this far, or a unit or scale change upstream"
    ) in out
    assert "of feature_age's values fell" not in out and "of feature_px's values fell" not in out


def test_a_model_with_many_drifting_features_gets_its_newest_psi_lines_and_one_for_the_rest(
    tmp_path, capsys, monkeypatch
):
    # a trial's 64 pixel features over 11 one-vs-rest views: 245 alert lines, the same features for every view
    from orchestration.summary import PSI_LINES

    days = pd.date_range("2026-03-01", periods=10, freq="D")
    health = pd.DataFrame(
        {"date": [d.date() for d in days], "model_id": "m", "model_version": "v1", "predictions": 50, "labelled": 5}
    )
    path = _monitoring_only(tmp_path / "w.duckdb", model_health_daily=health)
    # feature k alerts on days 0 .. k (its latest day k): the newest are the highest k
    features = [f"feature_px{k:02d}" for k in range(9)]
    with duckdb.connect(str(path)) as conn:
        for k, feature in enumerate(features):
            for d in days[: k + 1]:
                conn.execute(
                    "INSERT INTO marts.alerts (date, model_id, model_version, metric, subject, value, threshold, rule) "
                    "VALUES (?, 'm', 'v1', 'psi', ?, 0.5, 0.2, '> 0.2')",
                    [d.date(), feature],
                )
        conn.execute(
            "INSERT INTO marts.alerts (date, model_id, model_version, metric, subject, value, threshold, rule) "
            "VALUES ('2026-03-05', 'm', 'v1', 'label_coverage', '', 0.1, 0.5, 'below 0.5')"
        )
    monkeypatch.setattr(cli, "reports_dir", lambda: tmp_path)
    out = _summary(path, capsys)
    said = [line.strip() for line in out.splitlines() if line.strip().startswith("alerts: m psi")]
    # the PSI_LINES newest one by one (px08 .. px04), then one line for px00 .. px03
    assert sorted(line.split("(")[1].split(")")[0] for line in said[:PSI_LINES]) == features[-PSI_LINES:]
    assert said[PSI_LINES:] == [
        "alerts: m psi of 4 more feature line(s), the newest and highest PSI first: feature_px03, feature_px02, "
        "feature_px01, feature_px00, from 2026-03-01 to 2026-03-04 (each: SELECT * FROM marts.alerts WHERE "
        "model_id = 'm' AND metric = 'psi')"
    ]
    lines = out.splitlines()  # the folded line right after the model's PSI lines
    assert lines.index("  " + said[PSI_LINES]) == lines.index("  " + said[PSI_LINES - 1]) + 1
    assert "alerts: m label_coverage, on 2026-03-05 (1 day(s))" in out
    # features alerting on the same days: the highest PSI of their latest day shown first (a re-trial's ties fell
    # back to the names: px02 .. px13 shown, px60 at 7.28 folded behind "...")
    with duckdb.connect(str(path)) as conn:
        conn.execute("UPDATE marts.alerts SET date = '2026-03-09' WHERE metric = 'psi'")  # every feature: one day
        conn.execute("UPDATE marts.alerts SET value = 7.28 WHERE subject = 'feature_px00'")
    out = _summary(path, capsys)
    said = [line.strip() for line in out.splitlines() if line.strip().startswith("alerts: m psi")]
    assert said[0].startswith("alerts: m psi (feature_px00)")


def test_a_label_coverage_alert_of_a_model_whose_labels_land_later_than_its_wait_says_so(tmp_path, capsys, monkeypatch):
    # a trial's claims, due in 150-200 days (label_horizon_days 200): 53 coverage alerts at the default 7-day wait,
    # "their labels due by ..." said a week on
    days = pd.date_range("2026-03-01", periods=4, freq="D")
    # slow: labelled days' medians 100 h (1 label), 3000 h (5), 4000 h (4): the labels' median is 3000 h, 125 days
    health = pd.DataFrame(
        {"date": [d.date() for d in days] * 2, "model_id": ["slow"] * 4 + ["quick"] * 4, "model_version": "v1",
         "predictions": 50, "labelled": [1, 5, 4, 0, 9, 9, 9, 0],
         "median_label_delay_hours": [100.0, 3000.0, 4000.0, None, 20.0, 30.0, 40.0, None]}
    )  # fmt: skip
    path = _monitoring_only(tmp_path / "w.duckdb", model_health_daily=health)
    with duckdb.connect(str(path)) as conn:
        conn.execute(
            "INSERT INTO marts.alerts (date, model_id, model_version, metric, subject, value, threshold, rule) "
            "VALUES ('2026-03-02', 'slow', 'v1', 'label_coverage', '', 0, 0.5, 'below 0.5'), "
            "('2026-03-02', 'quick', 'v1', 'label_coverage', '', 0, 0.5, 'below 0.5')"
        )
    out = _summary_under(path, capsys, monkeypatch, "models:\n  slow: {label_horizon_days: 200}\n  quick: {}\n")
    assert (
        "note: slow's labels may take up to 200 days (label_horizon_days); those landed so far took a median 125.0 "
        "days (cut at the newest day: the later ones are not among them yet), and this alert judges a day 7 days on"
    ) in out
    assert "quick's labels" not in out  # a day or two: the alert stands on its own
    # labels seen so far quicker than the wait, but a horizon far beyond it (a re-trial's 64-day median, cut at the
    # newest day, under a 71-day wait for labels due in 60-120 days)
    out = _summary_under(
        path,
        capsys,
        monkeypatch,
        "models:\n  slow: {label_horizon_days: 200, alerts: {label_coverage: {after_days: 130}}}\n  quick: {}\n",
    )
    assert (
        "note: slow's labels may take up to 200 days (label_horizon_days); those landed so far took a median 125.0 "
        "days (cut at the newest day: the later ones are not among them yet), and this alert judges a day 130 days on"
    ) in out


def test_every_lift_shows_its_always_valid_interval_for_daily_looks(warehouse, capsys):
    # a trial's conversion read "significant: yes" on five mornings in a row; its confidence sequence on none
    path, results, _ = warehouse
    out = _summary(path, capsys)
    assert "always-valid CI (daily looks)" in out and "may be a peeking artefact" in out
    lines = {line.split()[1]: line for line in out.splitlines() if line.strip().startswith("m ")}
    for r in results[results["analysis_window"] == "cumulative"].itertuples():
        low, high = r.sequential_relative_ci_low, r.sequential_relative_ci_high
        if low != low:  # not tested: no interval
            assert "n/a" in lines[r.metric]
            continue
        # the row's confidence sequence, and whether the difference clears it (its sequential p-value)
        said = f"[{low:+.1%}, {high:+.1%}] " + ("excludes 0" if r.sequential_p_value < 0.05 else "includes 0")
        assert said in lines[r.metric], lines[r.metric]
        # wider than the fixed-horizon interval it sits beside: the price of reading it every day
        assert low <= r.relative_ci_low or r.estimate == "cuped"


def test_the_daily_looks_verdict_is_the_differences_not_the_approximate_relative_ends():
    # a re-trial: "[-98.7%, -6.9%] excludes 0" beside a sequential p of 0.177 on the difference, 217 days long
    from orchestration.lib.attribution import daily_looks_text

    pct = lambda x: f"{x:+.1%}"  # noqa: E731
    assert daily_looks_text(-0.987, -0.069, 0.177, 0.05, pct) == (
        "[-98.7%, -6.9%] includes 0 on the difference (sequential p 0.177; the relative ends are approximate)"
    )
    assert daily_looks_text(-0.987, -0.069, 0.01, 0.05, pct) == "[-98.7%, -6.9%] excludes 0"
    assert daily_looks_text(-0.2, 0.3, 0.6, 0.05, pct) == "[-20.0%, +30.0%] includes 0"
    assert daily_looks_text(float("nan"), float("nan"), float("nan"), 0.05, pct) == "n/a"
