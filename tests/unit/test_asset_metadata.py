"""UI metadata: previews and the numbers Dagster plots over partitions, checked by hand on small data."""

import json
from datetime import date

import duckdb
import pandas as pd
import pytest

from orchestration.lib.asset_metadata import (
    MODEL_HEALTH_SUMMARY_SQL,
    markdown_table,
    model_health_metadata,
    net_value_metadata,
    partition_column,
    relative_lift_metadata,
    row_count_query,
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
                rows.append({"experiment_id": "exp_rec", "model_id": "recommender", "treatment_variant": "model",
                             "metric": metric, "analysis_window": window, "as_of_date": as_of,
                             "relative_lift": (lift if window == "cumulative" else -1.0) * scale})
    return pd.DataFrame(rows)


def test_relative_lift_of_the_last_day_cumulative_window_per_model_and_metric():
    assert relative_lift_metadata(results_rows()) == {
        "relative_lift/recommender/revenue_per_user": pytest.approx(0.07),
        "relative_lift/recommender/conversion": pytest.approx(0.035),
    }
    # a second treatment arm gets its own series; a NaN lift (no data yet) is not plotted
    two_arms = pd.concat([results_rows(), results_rows().assign(treatment_variant="model_b", relative_lift=float("nan"))])
    assert relative_lift_metadata(two_arms) == {
        "relative_lift/recommender/revenue_per_user/model": pytest.approx(0.07),
        "relative_lift/recommender/conversion/model": pytest.approx(0.035),
    }
    assert relative_lift_metadata(results_rows().iloc[0:0]) == {}


def test_net_value_and_roi_per_model():
    impact = pd.DataFrame({
        "model_id": ["recommender", "recommender", "churn_offer", "recommender"],
        "analysis_window": ["cumulative", "day", "cumulative", "cumulative"],
        "as_of_date": [date(2026, 10, 2), date(2026, 10, 2), date(2026, 10, 2), date(2026, 10, 1)],
        "net_value": [1200.0, 80.0, -50.0, 900.0],
        "roi": [3.0, 1.0, -0.25, 2.0],
    })
    assert net_value_metadata(impact) == {"net_value/recommender": 1200.0, "roi/recommender": 3.0,
                                          "net_value/churn_offer": -50.0, "roi/churn_offer": -0.25}


def test_model_health_summary_takes_the_last_mature_day_and_the_worst_feature():
    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA marts")
        conn.execute("""CREATE TABLE marts.model_health_daily AS SELECT * FROM (VALUES
            (DATE '2026-10-01', 'rec', 2000, 900, 0.05, 0.60),
            (DATE '2026-10-02', 'rec', 2000, 450, 0.11, 0.52),
            (DATE '2026-10-03', 'rec', 2000, 20, 0.30, 0.90),
            (DATE '2026-10-03', 'churn', 1000, 10, 0.20, 0.10)
        ) t(date, model_id, predictions, labelled, expected_calibration_error, precision)""")
        conn.execute("""CREATE TABLE marts.feature_drift_daily AS SELECT * FROM (VALUES
            (DATE '2026-10-03', 'rec', 'age', 0.12), (DATE '2026-10-03', 'rec', 'basket', 0.45),
            (DATE '2026-10-02', 'rec', 'basket', 0.99), (DATE '2026-10-03', 'churn', 'age', NULL)
        ) t(date, model_id, feature, psi)""")
        conn.execute("""CREATE TABLE marts.alerts AS SELECT * FROM (VALUES
            (DATE '2026-10-02', 'rec', 'psi'), (DATE '2026-10-03', 'rec', 'psi'), (DATE '2026-09-20', 'rec', 'psi')
        ) t(date, model_id, metric)""")
        summary = conn.execute(MODEL_HEALTH_SUMMARY_SQL,
                               {"first": date(2026, 9, 25), "last": date(2026, 10, 3), "min_labelled": 300}).df()
    assert model_health_metadata(summary) == {
        # 10-03 has 20 labels (< 300): the newest mature day is 10-02
        "psi_max/rec": 0.45, "ece/rec": 0.11, "precision/rec": 0.52, "breaches/rec": 2.0,
        # churn has no mature day and no PSI yet: only its (zero) breaches are plotted
        "breaches/churn": 0.0,
    }
    assert summary.set_index("model_id").loc["rec", "labelled_day"] == pd.Timestamp("2026-10-02")


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
        conn.execute("CREATE TABLE marts.retention_cohorts AS SELECT DATE '2026-10-01' + i::INTEGER AS matured_date FROM range(10) r(i)")
        conn.execute("CREATE TABLE intermediate.int_model_versions AS SELECT 'rec' AS model_id")
        counts = conn.execute(*row_count_query(dbt_nodes["retention_cohorts"], date(2026, 10, 3), date(2026, 10, 5))).fetchone()
        assert counts == (10, 3)
        assert conn.execute(*row_count_query(dbt_nodes["int_model_versions"], date(2026, 10, 3), date(2026, 10, 5))).fetchone() == (1, None)
