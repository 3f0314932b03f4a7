"""UI metadata: previews and the numbers Dagster plots over partitions, checked by hand on small data."""

import argparse
import json
import re
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from orchestration.lib.asset_metadata import (
    MODEL_HEALTH_BY_DAY_SQL,
    Markdown,
    breaches_by_day,
    experiment_results_by_day,
    impact_preview,
    markdown_table,
    model_health_by_day,
    net_value_metadata,
    partition_column,
    relative_lift_metadata,
    results_preview,
    row_count_query,
    row_counts_by_day,
    row_counts_by_day_query,
)
from orchestration.lib.settings import DBT_PROJECT_DIR


def test_markdown_preview_rounds_and_says_what_it_left_out():
    frame = pd.DataFrame({"model_id": ["a", "b", "c"], "lift": [0.123456, float("nan"), 2.0]})
    text = markdown_table(frame, ["lift"], max_rows=2)
    lines = text.splitlines()
    assert "0.1235" in lines[2] and "model_id" not in text
    assert lines[-1] == "… 1 more rows"
    assert markdown_table(frame.iloc[0:0]) == "none"


def results_rows():
    rows = []
    for as_of, lift in ((date(2026, 10, 1), 0.05), (date(2026, 10, 2), 0.07)):
        for window in ("day", "cumulative"):
            for metric, scale in (("revenue_per_user", 1.0), ("conversion", 0.5)):
                value = (lift if window == "cumulative" else -1.0) * scale
                rows.append(
                    {
                        "experiment_id": "exp_rec",
                        "model_id": "recommender",
                        "treatment_variant": "model",
                        "metric": metric,
                        "analysis_window": window,
                        "as_of_date": as_of,
                        "estimate": "welch",
                        "relative_lift": value,
                        "relative_ci_low": value - 0.01,
                        "relative_ci_high": value + 0.01,
                        "cuped_relative_lift": 9.0,
                        "cuped_relative_ci_low": 8.0,
                        "cuped_relative_ci_high": 10.0,
                        "covariate_balanced": True,
                    }
                )
    return pd.DataFrame(rows)


def test_relative_lift_of_the_last_day_cumulative_window_per_model_and_metric_in_percent():
    assert relative_lift_metadata(results_rows()) == {
        "relative_lift_pct/recommender/revenue_per_user": 7.0,
        "relative_lift_pct/recommender/conversion": 3.5,
    }
    # a second treatment arm gets its own series; a NaN lift (no data yet) is not plotted
    two_arms = pd.concat(
        [results_rows(), results_rows().assign(treatment_variant="model_b", relative_lift=float("nan"))]
    )
    assert relative_lift_metadata(two_arms) == {
        "relative_lift_pct/recommender/revenue_per_user/model": 7.0,
        "relative_lift_pct/recommender/conversion/model": 3.5,
    }
    assert relative_lift_metadata(results_rows().iloc[0:0]) == {}


def test_a_cuped_row_plots_and_previews_its_cuped_lift_rounded_as_the_summary_prints_it():
    rows = results_rows()
    cuped = (rows["metric"] == "revenue_per_user").to_numpy()
    rows.loc[cuped, "estimate"] = "cuped"
    rows.loc[cuped, "cuped_relative_lift"] = 0.028211951465435942
    rows.loc[cuped, ["cuped_relative_ci_low", "cuped_relative_ci_high"]] = [-0.0049, 0.0613]
    assert relative_lift_metadata(rows)["relative_lift_pct/recommender/revenue_per_user"] == 2.8
    assert relative_lift_metadata(rows)["relative_lift_pct/recommender/conversion"] == 3.5  # Welch where Welch decides
    preview = results_preview(
        rows.assign(
            p_value_adjusted=0.2, significant=False, decision_grade=True, trustworthy=True, multiple_testing="holm"
        )
    )
    assert "+2.8% [-0.5%, +6.1%]" in preview and "0.0282" not in preview and "| no " in preview
    assert "p (Holm)" in preview and "significant (Holm)" in preview


def test_net_value_in_the_project_currency_and_roi_in_percent_per_model():
    impact = pd.DataFrame(
        {
            "model_id": ["recommender", "recommender", "churn_offer", "recommender"],
            "analysis_window": ["cumulative", "day", "cumulative", "cumulative"],
            "as_of_date": [date(2026, 10, 2), date(2026, 10, 2), date(2026, 10, 2), date(2026, 10, 1)],
            "treated_units": [900, 90, 400, 800],
            "net_value": [1200.4, 80.0, -50.0, 900.0],
            "net_value_ci_low": [-300.0, 0, -90.0, 0],
            "net_value_ci_high": [2700.0, 0, -10.0, 0],
            "model_cost": [400.0, 10.0, 200.0, 350.0],
            "roi": [3.001, 1.0, -0.25, 2.0],
            "roi_ci_low": [-0.75, 0, -0.45, 0],
            "roi_ci_high": [6.75, 0, -0.05, 0],
            "decision_grade": [True, True, False, True],
        }
    )
    assert net_value_metadata(impact, "EUR") == {
        "net_value_EUR/recommender": 1200.0,
        "roi_pct/recommender": 300.0,
        "net_value_EUR/churn_offer": -50.0,
        "roi_pct/churn_offer": -25.0,
    }
    preview = impact_preview(impact, "EUR")
    assert "net value (EUR) [95% CI]" in preview and "1,200 [-300, 2,700]" in preview
    assert "+300% [-75%, +675%]" in preview and "-25% [-45%, -5%]" in preview and "1200.4" not in preview
    # the money's significance beside decision-grade, as the summary and report word it: [-300, 2,700] holds 0
    rows = {line.split("|")[1].strip(): line for line in preview.splitlines() if line.count("|") > 2}
    assert "not significant: 95% CI includes 0" in rows["recommender"]
    assert "BELOW 0 (95% CI)" in rows["churn_offer"]


def _summary_lift(out: str, model: str, metric: str) -> str:
    """The summary's 'relative lift [95% CI]' cell of one row (the column after 'units (holdout/treated)')."""
    line = next(line for line in out.splitlines() if line.split()[:2] == [model, metric])
    return re.search(r"([+-]\d[\d,]*\.\d%|n/a) \[[^\]]*\]", line).group(0)


def test_the_ui_lift_is_the_summarys_decision_estimate_of_the_same_row(tmp_path, monkeypatch, capsys):
    from orchestration import cli, summary
    from orchestration.defs.model_health.alerts import ALERTS_SCHEMA
    from orchestration.lib.attribution import IMPACT_SCHEMA, RESULT_SCHEMA, experiment_results
    from orchestration.lib.retraining import REQUEST_SCHEMA
    from orchestration.lib.warehouse import ensure_table, replace_date_range
    from tests.unit.test_attribution_engine import experiments_of, variants_of
    from tests.unit.test_attribution_honest import AS_OF, DECLARED, _arm_row

    rng = np.random.default_rng(4)
    rows = []
    for variant, n, lift in (("holdout", 400, 0.0), ("treatment", 3600, 0.6)):
        pre = rng.gamma(2.0, 5.0, n)  # the pre-period spend predicts the in-experiment spend: CUPED decides
        rows.append(_arm_row("e", variant, "revenue_per_user", 0.8 * pre + rng.normal(0, 2.0, n) + lift, x=pre))
    stats = pd.DataFrame(rows)
    results = experiment_results(stats, experiments_of(stats, model_id="m"), variants_of(stats), DECLARED)
    row = results[results["analysis_window"] == "cumulative"].iloc[0]
    assert row["estimate"] == "cuped" and abs(row["cuped_relative_lift"] - row["relative_lift"]) > 1e-3
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as conn:
        replace_date_range(conn, "attribution.experiment_results", RESULT_SCHEMA, results, "as_of_date", AS_OF, AS_OF)
        ensure_table(conn, "attribution.model_impact", IMPACT_SCHEMA)
        ensure_table(conn, "marts.alerts", ALERTS_SCHEMA)
        ensure_table(conn, "marts.retraining_requests", REQUEST_SCHEMA)
    monkeypatch.setattr(summary, "_leading_indicators", lambda conn, as_of: [])
    monkeypatch.setattr(cli, "reports_dir", lambda: tmp_path)
    assert cli.cmd_summary(argparse.Namespace(db=str(path))) == 0
    out = capsys.readouterr().out
    assert "units (holdout/treated)" in out  # the control is a holdout: the header says so
    shown = _summary_lift(out, "m", "revenue_per_user")
    ui = relative_lift_metadata(results)["relative_lift_pct/m/revenue_per_user"]
    # the same figure: the CUPED lift (not Welch's), to the same 0.1 percentage point
    assert shown.startswith(f"{ui:+.1f}%") and f"{row['cuped_relative_lift']:+.1%}" == f"{ui:+.1f}%"
    assert f"{row['relative_lift']:+.1%}" != f"{ui:+.1f}%"
    assert shown in results_preview(results)


def test_model_health_by_day_takes_each_days_worst_feature_last_mature_day_and_breaches():
    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA marts")
        conn.execute("""CREATE TABLE marts.model_health_daily AS SELECT * FROM (VALUES
            (DATE '2026-10-01', 'rec', 2000, 900, 0.05, 0.60),
            (DATE '2026-10-02', 'rec', 2000, 450, 0.11, 0.52),
            (DATE '2026-10-03', 'rec', 2000, 20, 0.30, 0.90),
            (DATE '2026-10-03', 'churn', 1000, 10, 0.20, 0.10)
        ) t(date, model_id, predictions, labelled, expected_calibration_error, precision)""")
        conn.execute("""CREATE TABLE marts.feature_drift_daily AS SELECT * FROM (VALUES
            (DATE '2026-10-03', 'rec', 'age', 0.12), (DATE '2026-10-03', 'rec', 'basket', 0.449961234),
            (DATE '2026-10-02', 'rec', 'basket', 0.99), (DATE '2026-10-03', 'churn', 'age', NULL)
        ) t(date, model_id, feature, psi)""")
        conn.execute("""CREATE TABLE marts.alerts AS SELECT * FROM (VALUES
            (DATE '2026-10-02', 'rec', 'psi'), (DATE '2026-10-03', 'rec', 'psi'), (DATE '2026-10-03', 'rec', 'ece'),
            (DATE '2026-09-20', 'rec', 'psi')
        ) t(date, model_id, metric)""")
        summary = conn.execute(
            MODEL_HEALTH_BY_DAY_SQL,
            {"first": date(2026, 10, 1), "last": date(2026, 10, 3), "min_labelled": 300, "horizon": 7},
        ).df()
    days = [date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3)]
    per_day = model_health_by_day(summary, days)
    numbers = {d: {k: v for k, v in values.items() if k != "model_health"} for d, values in per_day.items()}
    assert numbers == {
        # 10-01: its own labels, no drift measured, no breach
        date(2026, 10, 1): {"ece/rec": 0.05, "precision/rec": 0.6, "breaches/rec": 0},
        date(2026, 10, 2): {"psi_max/rec": 0.99, "ece/rec": 0.11, "precision/rec": 0.52, "breaches/rec": 1},
        # 10-03 has 20 labels (< 300): the newest mature day up to it is 10-02; psi 0.449961234 to 4 decimals
        date(2026, 10, 3): {
            "psi_max/rec": 0.45,
            "ece/rec": 0.11,
            "precision/rec": 0.52,
            "breaches/rec": 2,
            # churn has no mature day and no PSI yet: only its (zero) breaches are plotted
            "breaches/churn": 0,
        },
    }
    assert isinstance(per_day[date(2026, 10, 3)]["model_health"], Markdown)
    assert "churn" in per_day[date(2026, 10, 3)]["model_health"]
    labelled = summary.set_index(["date", "model_id"])["labelled_day"]
    assert labelled[(pd.Timestamp("2026-10-03"), "rec")] == pd.Timestamp("2026-10-02")


def test_a_ranged_runs_days_each_get_their_own_decision_estimate_and_preview():
    results = results_rows()
    results["trustworthy"] = [True] * 4 + [False, True, True, True]
    results["covariate_balanced"] = [True] * 4 + [False, None, True, True]  # the untrusted row: its covariate
    days = [date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3)]
    per_day = experiment_results_by_day(results, days)
    assert set(per_day) == set(days[:2])  # a day without rows gets nothing (the run's facts only)
    for day in days[:2]:
        assert {k: v for k, v in per_day[day].items() if k.startswith("relative_lift_pct/")} == relative_lift_metadata(
            results[results["as_of_date"] == day]
        )
    assert per_day[date(2026, 10, 1)]["relative_lift_pct/recommender/revenue_per_user"] == 5.0
    assert per_day[date(2026, 10, 2)]["relative_lift_pct/recommender/revenue_per_user"] == 7.0
    assert (per_day[date(2026, 10, 1)]["untrusted_rows"], per_day[date(2026, 10, 2)]["untrusted_rows"]) == (0, 1)
    assert [per_day[day]["covariate_imbalanced_rows"] for day in days[:2]] == [0, 1]
    assert "+5.0%" in per_day[date(2026, 10, 1)]["latest"] and "+7.0%" in per_day[date(2026, 10, 2)]["latest"]


def test_breaches_by_day_counts_zero_on_a_quiet_day():
    alerts = pd.DataFrame({"date": pd.to_datetime(["2026-10-02", "2026-10-02"]), "metric": ["psi", "ece"]})
    assert breaches_by_day(alerts, [date(2026, 10, 1), date(2026, 10, 2)]) == {
        date(2026, 10, 1): {"alerts": 0},
        date(2026, 10, 2): {"alerts": 2},
    }


@pytest.fixture(scope="module")
def dbt_nodes():
    manifest = json.loads((DBT_PROJECT_DIR / "target" / "manifest.json").read_text())
    return {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}


def test_partition_column_comes_from_the_marts_pre_hook(dbt_nodes):
    assert partition_column(dbt_nodes["kpi_daily"]) == "date"
    assert partition_column(dbt_nodes["model_health_daily"]) == "date"
    assert partition_column(dbt_nodes["experiment_stats"]) == "as_of_date"
    assert partition_column(dbt_nodes["retention_cohorts"]) == "matured_date"
    assert partition_column(dbt_nodes["int_model_versions"]) is None


def test_row_counts_of_a_table_and_of_the_runs_days(dbt_nodes):
    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA marts")
        conn.execute("CREATE SCHEMA intermediate")
        conn.execute(
            "CREATE TABLE marts.retention_cohorts AS SELECT DATE '2026-10-01' + i::INTEGER AS matured_date FROM range(10) r(i)"
        )
        conn.execute("CREATE TABLE intermediate.int_model_versions AS SELECT 'rec' AS model_id")
        counts = conn.execute(
            *row_count_query(dbt_nodes["retention_cohorts"], date(2026, 10, 3), date(2026, 10, 5))
        ).fetchone()
        assert counts == (10, 3)
        assert conn.execute(
            *row_count_query(dbt_nodes["int_model_versions"], date(2026, 10, 3), date(2026, 10, 5))
        ).fetchone() == (1, None)


def test_each_days_row_count_is_the_table_up_to_that_day(dbt_nodes):
    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA marts")
        # 1, 2, 3 rows on 10-01, 10-02, 10-03 and one row after the run
        conn.execute(
            "CREATE TABLE marts.retention_cohorts AS SELECT DATE '2026-10-01' + d::INTEGER AS matured_date "
            "FROM range(3) r(d), range(3) k(i) WHERE i <= d UNION ALL SELECT DATE '2026-10-09'"
        )
        sql = row_counts_by_day_query(dbt_nodes["retention_cohorts"], date(2026, 10, 3))
        per_day = row_counts_by_day(conn.execute(*sql).fetchall(), [date(2026, 10, 2), date(2026, 10, 3)])
    assert per_day == {
        date(2026, 10, 2): {"dagster/row_count": 3, "rows_of_day": 2},
        date(2026, 10, 3): {"dagster/row_count": 6, "rows_of_day": 3},
    }
    assert row_counts_by_day_query(dbt_nodes["int_model_versions"], date(2026, 10, 3)) is None
