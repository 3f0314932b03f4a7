"""End to end: generated world -> Dagster (ingest, dbt, gate, attribution) -> warehouse."""

from datetime import timedelta

import pandas as pd
import pytest

from orchestration.lib.contract import CONTRACTS

pytestmark = pytest.mark.slow

MARTS = {
    "marts.kpi_daily": "date",
    "marts.kpi_daily_by_segment": "date, segment, country",
    "marts.retention_cohorts": "cohort_type, experiment_id, variant, cohort_date, horizon_days",
    "marts.model_health_daily": "date, model_id, model_version",
    "marts.feature_drift_daily": "date, model_id, model_version, feature",
    "marts.alerts": "date, model_id, model_version, metric, subject",
    "marts.experiment_stats": "experiment_id, variant, metric, analysis_window, as_of_date",
    "attribution.experiment_results": "experiment_id, metric, treatment_variant, analysis_window, as_of_date",
}


def snapshot(pipeline) -> dict[str, pd.DataFrame]:
    return {t: pipeline.query(f"SELECT * FROM {t} ORDER BY {order}") for t, order in MARTS.items()}


def test_two_consecutive_partitions_land_everything(pipeline):
    day1, day2 = pipeline.last - timedelta(days=1), pipeline.last
    for day in (day1, day2):
        outcome = pipeline.run(day)
        assert outcome.success, outcome.failures
        assert "attribution/experiment_results" in outcome.materialized

    # every raw row read is either loaded or quarantined, and the source agrees
    for table, contract in CONTRACTS.items():
        files = sorted((pipeline.source / table).glob("*.parquet"))
        if contract.time_column is not None:
            files = [f for f in files if f.stem.rsplit("_", 1)[-1] <= day2.isoformat()]
        source_rows = sum(len(pd.read_parquet(f)) for f in files)
        loaded = pipeline.query(f"SELECT count(*) AS n FROM raw.{table}")["n"][0]
        quarantined = pipeline.query(f"SELECT count(*) AS n FROM raw_quarantine.{table}")["n"][0]
        assert loaded + quarantined == source_rows, table
    planted = pipeline.truth["dirty_rows"]["predictions"]
    reasons = pipeline.query("SELECT _reason, count(*) AS n FROM raw_quarantine.predictions GROUP BY 1").set_index("_reason")["n"]
    assert reasons["duplicate key (prediction_id)"] == planted["duplicate_key"]
    assert reasons["score outside [0, 1]"] == planted["score_out_of_range"]

    # sane marts for the new days
    kpi = pipeline.query("SELECT * FROM marts.kpi_daily WHERE date IN (?, ?)", [day1, day2])
    assert len(kpi) == 2 and (kpi["sessions"] > 1000).all() and kpi["conversion_rate"].between(0.01, 0.5).all()
    health = pipeline.query("SELECT * FROM marts.model_health_daily WHERE date = ?", [day2])
    assert set(health["model_id"]) == {"recommender", "churn_offer"}
    assert (health["predictions"] == 2000).all()
    results = pipeline.query("SELECT * FROM attribution.experiment_results WHERE as_of_date = ?", [day2])
    assert len(results) == 4  # 2 experiments x 2 metrics, one treatment arm each
    assert (results["n_control"] > 1000).all() and (results["n_treatment"] > 10 * 1000).all()


def test_planted_lift_lies_inside_the_95_percent_ci(pipeline):
    assert pipeline.run(pipeline.last - timedelta(days=1), pipeline.last).success
    results = pipeline.query("SELECT * FROM attribution.experiment_results WHERE as_of_date = ?", [pipeline.last])
    for _, row in results.iterrows():
        truth = pipeline.truth["experiments"][row["experiment_id"]]["sample_average_treatment_effect"]
        planted = truth[pipeline.last.isoformat()][row["metric"]]
        assert row["n_control"] + row["n_treatment"] == planted["units"]
        assert row["absolute_ci_low"] <= planted["absolute_lift"] <= row["absolute_ci_high"], row.to_dict()
        assert row["relative_ci_low"] <= planted["relative_lift"] <= row["relative_ci_high"], row.to_dict()


def test_experiment_stats_agree_with_pandas_on_the_raw_files(pipeline):
    assert pipeline.run(pipeline.last - timedelta(days=1), pipeline.last).success
    src = pipeline.source
    assignments = pd.concat(pd.read_parquet(p) for p in (src / "assignments").glob("*.parquet"))
    orders = pd.concat(pd.read_parquet(p) for p in (src / "orders").glob("*.parquet")).drop_duplicates("order_id")
    orders = orders[orders["status"] == "completed"]
    as_of = pipeline.last
    units = assignments[assignments["assigned_at"] < pd.Timestamp(as_of + timedelta(days=1))]
    joined = units.merge(orders, on="user_id", how="left")
    counted = joined[(joined["ordered_at"] >= joined["assigned_at"]) & (joined["ordered_at"] < pd.Timestamp(as_of + timedelta(days=1)))]
    per_unit = counted.groupby(["experiment_id", "user_id"])["revenue"].agg(["sum", "count"])
    units = units.set_index(["experiment_id", "user_id"]).join(per_unit).fillna({"sum": 0.0, "count": 0})
    units["conversion"] = (units["count"] > 0).astype(float)
    stats = pipeline.query("SELECT * FROM marts.experiment_stats WHERE as_of_date = ?", [as_of])
    for _, row in stats.iterrows():
        arm = units.xs(row["experiment_id"], level="experiment_id")
        arm = arm[arm["variant"] == row["variant"]]
        values = arm["conversion"] if row["metric"] == "conversion" else arm["sum"]
        assert row["n"] == len(values)
        assert row["value_sum"] == pytest.approx(values.sum(), rel=1e-9)
        assert row["value_sum_sq"] == pytest.approx((values**2).sum(), rel=1e-9)


def test_rematerialising_a_partition_leaves_identical_marts(pipeline):
    assert pipeline.run(pipeline.last - timedelta(days=1)).success
    assert pipeline.run(pipeline.last).success
    before = snapshot(pipeline)
    assert pipeline.run(pipeline.last).success
    after = snapshot(pipeline)
    for table in MARTS:
        pd.testing.assert_frame_equal(before[table], after[table], check_exact=True, obj=table)
