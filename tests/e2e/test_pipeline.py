"""End to end: generated world -> Dagster (ingest, dbt, gate, attribution) -> warehouse."""

from datetime import timedelta

import duckdb
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
    "attribution.model_impact": "model_id, analysis_window, as_of_date",
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
    # analysts' copies: one Parquet folder per table and day, and the read-only snapshot
    import pyarrow.dataset as ds

    exports = pipeline.db.parent / "exports"
    kpi_export = ds.dataset(exports / "kpi_daily", partitioning="hive").to_table().to_pandas()
    assert {str(day1), str(day2)} <= {str(d)[:10] for d in kpi_export["date"]}
    assert (exports / "experiment_results" / f"date={day2}" / "part.parquet").is_file()
    with duckdb.connect(str(pipeline.db.parent / "analytics.duckdb"), read_only=True) as snapshot:
        assert snapshot.execute("SELECT count(*) FROM attribution.model_impact WHERE as_of_date = ?", [day2]).fetchone()[0] > 0
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
    assert len(results) == 2 * 6 * 2  # 2 experiments x 6 metrics x 2 windows, one treatment arm each
    assigned = results[results["metric"] == "conversion"]  # every assigned unit (retention counts matured ones only)
    assert (assigned["n_control"] > 1000).all() and (assigned["n_treatment"] > 10 * 1000).all()


def test_planted_lift_lies_inside_the_95_percent_ci(latest):
    pipeline = latest
    results = pipeline.query(
        "SELECT * FROM attribution.experiment_results WHERE as_of_date = ? AND analysis_window = 'cumulative' "
        "AND metric IN ('conversion', 'revenue_per_user')", [pipeline.last])
    assert len(results) == 4
    for _, row in results.iterrows():
        truth = pipeline.truth["experiments"][row["experiment_id"]]["sample_average_treatment_effect"]
        planted = truth[pipeline.last.isoformat()][row["metric"]]
        assert row["n_control"] + row["n_treatment"] == planted["units"]
        assert row["absolute_ci_low"] <= planted["absolute_lift"] <= row["absolute_ci_high"], row.to_dict()
        assert row["relative_ci_low"] <= planted["relative_lift"] <= row["relative_ci_high"], row.to_dict()
        assert row["cuped_absolute_ci_low"] <= planted["absolute_lift"] <= row["cuped_absolute_ci_high"], row.to_dict()
        assert row["cuped_relative_ci_low"] <= planted["relative_lift"] <= row["cuped_relative_ci_high"], row.to_dict()


def test_experiment_stats_agree_with_pandas_on_the_raw_files(latest):
    pipeline = latest
    src, as_of = pipeline.source, pipeline.last
    end = pd.Timestamp(as_of + timedelta(days=1))
    assignments = pd.concat(pd.read_parquet(p) for p in (src / "assignments").glob("*.parquet"))
    orders = pd.concat(pd.read_parquet(p) for p in (src / "orders").glob("*.parquet")).drop_duplicates("order_id")
    orders = orders[(orders["status"] == "completed") & (orders["ordered_at"] < end)]
    units = assignments[assignments["assigned_at"] < end]
    joined = units.merge(orders, on="user_id")
    post = joined[joined["ordered_at"] >= joined["assigned_at"]]
    pre = joined[(joined["ordered_at"] < joined["assigned_at"]) & (joined["ordered_at"] >= joined["assigned_at"] - pd.Timedelta(days=14))]
    key = ["experiment_id", "user_id"]
    units = units.set_index(key)
    units["revenue"] = post.groupby(key)["revenue"].sum().reindex(units.index).fillna(0.0)
    units["orders"] = post.groupby(key).size().reindex(units.index).fillna(0)
    units["pre_revenue"] = pre.groupby(key)["revenue"].sum().reindex(units.index).fillna(0.0)
    units["conversion"] = (units["orders"] > 0).astype(float)
    stats = pipeline.query("SELECT * FROM marts.experiment_stats WHERE as_of_date = ? AND analysis_window = 'cumulative'", [as_of])
    checked = 0
    for _, row in stats.iterrows():
        arm = units.xs(row["experiment_id"], level="experiment_id")
        arm = arm[arm["variant"] == row["variant"]]
        if row["metric"] == "conversion":
            expected = {"value_sum": arm["conversion"].sum(), "value_sum_sq": arm["conversion"].sum()}
        elif row["metric"] == "revenue_per_user":
            expected = {"value_sum": arm["revenue"].sum(), "value_sum_sq": (arm["revenue"] ** 2).sum(),
                        "covariate_sum": arm["pre_revenue"].sum(), "covariate_sum_sq": (arm["pre_revenue"] ** 2).sum(),
                        "value_covariate_sum": (arm["revenue"] * arm["pre_revenue"]).sum()}
        elif row["metric"] == "average_order_value":
            expected = {"value_sum": arm["revenue"].sum(), "denominator_sum": arm["orders"].sum(),
                        "denominator_sum_sq": (arm["orders"] ** 2).sum(), "value_denominator_sum": (arm["revenue"] * arm["orders"]).sum()}
        else:
            continue
        assert row["n"] == len(arm)
        for column, value in expected.items():
            assert row[column] == pytest.approx(value, rel=1e-9), (row["metric"], column)
        checked += 1
    assert checked == 2 * 2 * 3  # experiments x arms x metrics


def test_rematerialising_a_partition_leaves_identical_marts(pipeline):
    assert pipeline.run(pipeline.last - timedelta(days=1), pipeline.last).success
    before = snapshot(pipeline)
    assert pipeline.run(pipeline.last).success
    after = snapshot(pipeline)
    for table in MARTS:
        pd.testing.assert_frame_equal(before[table], after[table], check_exact=True, obj=table)
