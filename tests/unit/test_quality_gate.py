"""Great Expectations gates: each expectation family fails on exactly its broken rule, clean data passes."""

from datetime import date, datetime, timedelta

import duckdb
import pandas as pd
import pytest

from orchestration.lib.quality_gate import load_suite, run_suite, suite_columns, suite_names, validate_frame
from orchestration.lib.raw_loader import load_partition

DAYS = [date(2026, 9, 1) + timedelta(days=i) for i in range(9)]
TODAY = DAYS[-1]
ROWS_PER_DAY = 40


def predictions_for(day: date, n: int = ROWS_PER_DAY) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "prediction_id": [f"p-{day}-{i}" for i in range(n)],
            "model_id": "m1",
            "model_version": "v1",
            "user_id": [f"u{i % 5}" for i in range(n)],
            "predicted_at": [datetime(day.year, day.month, day.day, 10) + timedelta(minutes=i) for i in range(n)],
            "score": 0.5,
            "threshold": 0.5,
        }
    )


def write(source, table, frame, day=None):
    folder = source / table
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / (f"{table}_{day}.parquet" if day else f"{table}.parquet"), index=False)


@pytest.fixture
def world(tmp_path):
    """A tiny landing zone: 5 users, one experiment of model m1, 9 days of predictions and labels."""
    write(tmp_path, "users", pd.DataFrame({"user_id": [f"u{i}" for i in range(5)], "signup_at": pd.Timestamp("2026-01-01"),
                                           "country": "US", "segment": "smb", "gender": "female", "age_band": "25-34"}))
    write(tmp_path, "experiments", pd.DataFrame({"experiment_id": ["e1"], "model_id": ["m1"], "control_variant": ["holdout"],
                                                 "start_date": [date(2026, 9, 1)], "end_date": [None]}))
    write(tmp_path, "experiment_variants", pd.DataFrame({"experiment_id": ["e1", "e1"], "variant": ["holdout", "treatment"],
                                                         "expected_share": [0.1, 0.9]}))
    for day in DAYS:
        preds = predictions_for(day)
        write(tmp_path, "predictions", preds, day)
        write(tmp_path, "labels", pd.DataFrame({"prediction_id": preds["prediction_id"], "label": 1,
                                                "labeled_at": preds["predicted_at"] + timedelta(hours=1),
                                                "label_source": "human_review"}), day)
    return tmp_path


def gate(source, table, change=None, day=TODAY, conn_hook=None):
    """Load every day (with `change` applied to the last day's file), then validate the last day."""
    if change is not None:
        path = source / table / f"{table}_{day}.parquet"
        change(pd.read_parquet(path)).to_parquet(path, index=False)
    with duckdb.connect() as conn:
        for t in ("users", "experiments", "experiment_variants"):
            load_partition(conn, t, source, day)
        for d in DAYS:
            for t in ("predictions", "labels"):
                load_partition(conn, t, source, d)
        if conn_hook:
            conn_hook(conn)
        return run_suite(conn, load_suite(f"raw_{table}"), day, day)


def failed(result) -> set[str]:
    return {o.name for o in result.failed if o.blocking}


def test_clean_slices_pass(world):
    for table in ("predictions", "labels"):
        result = gate(world, table)
        assert result.success, result.summary()
        assert result.rows == ROWS_PER_DAY


@pytest.mark.parametrize(
    "change, expectation",
    [
        (lambda f: f.assign(prediction_id=[None] + list(f["prediction_id"][1:])), "expect_column_values_to_not_be_null(prediction_id)"),
        (lambda f: f.assign(prediction_id=["dup"] * 2 + list(f["prediction_id"][2:])), "expect_column_values_to_be_unique(prediction_id)"),
        (lambda f: f.assign(score=[1.7] + [0.5] * (len(f) - 1)), "expect_column_values_to_be_between(score)"),
        (lambda f: f.assign(model_id=["rogue"] + ["m1"] * (len(f) - 1)), "expect_column_values_to_be_in_set(model_id)"),
        (lambda f: f.assign(user_id=["stranger"] + list(f["user_id"][1:])), "expect_column_values_to_be_in_set(user_known)"),
        (lambda f: f.assign(predicted_at=[pd.Timestamp("2026-09-02 10:00")] + list(f["predicted_at"][1:])),
         "expect_column_values_to_be_in_set(in_partition_day)"),
        (lambda f: pd.concat([f] * 3, ignore_index=True).assign(prediction_id=lambda x: [f"v{i}" for i in range(len(x))]),
         "expect_column_values_to_be_between(volume_ratio)"),
        (lambda f: f.iloc[0:0], "expect_column_values_to_be_in_set(fresh)"),
    ],
    ids=["not_null_key", "unique_key", "range", "value_set", "referential_user", "timestamp_in_day", "volume", "freshness"],
)
def test_each_broken_prediction_rule_fails_the_gate_naming_it(world, change, expectation):
    result = gate(world, "predictions", change)
    assert not result.success
    assert failed(result) == {expectation}, result.summary()
    assert expectation.split("(")[0] in result.summary()


def test_schema_types_are_checked(world):
    result = gate(world, "predictions", conn_hook=lambda c: c.execute("ALTER TABLE raw.predictions ALTER score TYPE VARCHAR"))
    schema = [o for o in result.failed if o.level == "schema"]
    assert [o.name for o in schema] == ["expect_column_values_to_be_in_set(score)"]
    assert schema[0].sample_unexpected == ["VARCHAR"]


def test_labels_must_point_to_known_predictions(world):
    result = gate(world, "labels", lambda f: f.assign(prediction_id=["ghost"] + list(f["prediction_id"][1:])))
    assert failed(result) == {"expect_column_values_to_be_in_set(prediction_known)"}


def test_label_values_and_sources_are_value_sets(world):
    result = gate(world, "labels", lambda f: f.assign(label_source=["crowd"] + list(f["label_source"][1:])))
    assert failed(result) == {"expect_column_values_to_be_in_set(label_source)"}


def test_shares_of_an_experiment_must_sum_to_one(world):
    write(world, "experiment_variants", pd.DataFrame({"experiment_id": ["e1", "e1"], "variant": ["holdout", "treatment"],
                                                      "expected_share": [0.2, 0.9]}))
    with duckdb.connect() as conn:
        for t in ("experiments", "experiment_variants"):
            load_partition(conn, t, world, TODAY)
        result = run_suite(conn, load_suite("raw_experiment_variants"), TODAY, TODAY)
    assert failed(result) == {"expect_column_values_to_be_between(experiment_share_total)"}


def test_warning_expectations_do_not_fail_the_gate(world):
    # label volume triples: reported as a warning (labels ramp up after launches), the gate still passes
    result = gate(world, "labels", lambda f: pd.concat([f] * 3, ignore_index=True))
    assert result.success
    assert any(o.name == "expect_column_values_to_be_between(volume_ratio)" and not o.blocking for o in result.failed)


def test_every_contract_table_has_a_suite_and_suites_are_well_formed():
    from orchestration.lib.contract import CONTRACTS

    assert {load_suite(n)["table"] for n in suite_names()} == set(CONTRACTS)
    assert set(suite_columns(load_suite("raw_predictions"))) == {"prediction_id", "score", "threshold", "model_id",
                                                                 "model_version", "user_id"}


def test_suite_file_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_suite("nope", tmp_path)
    (tmp_path / "bad.yml").write_text("name: bad\ntable: t\nexpectations:\n  - type: expect_x\n")
    with pytest.raises(ValueError, match="needs 'type' and 'kwargs'"):
        load_suite("bad", tmp_path)


def test_a_stray_bad_row_in_a_big_day_is_tolerated_by_mostly():
    frame = pd.DataFrame({"prediction_id": [f"p{i}" for i in range(2000)], "model_id": "m1", "score": [1.7] + [0.5] * 1999,
                          "threshold": 0.5, "model_version": "v1", "user_id": "u1", "user_known": True,
                          "in_partition_day": True})
    assert validate_frame(frame, load_suite("raw_predictions"), {"known_model_ids": ["m1"]}).success


def test_data_docs_are_built_when_asked(world, tmp_path):
    with duckdb.connect() as conn:
        for t in ("users", "experiments", "experiment_variants"):
            load_partition(conn, t, world, TODAY)
        for d in DAYS:
            load_partition(conn, "predictions", world, d)
        result = run_suite(conn, load_suite("raw_predictions"), TODAY, TODAY, docs_dir=tmp_path / "docs" / "gx")
    assert result.success
    index = tmp_path / "docs" / "gx" / "index.html"
    assert index.is_file() and "raw_predictions" in index.read_text()


def test_rows_read_per_day_counts_loaded_and_quarantined_rows_and_a_snapshot_whole_on_every_day():
    from datetime import date

    import duckdb

    from orchestration.lib.quality_gate import rows_read_per_day

    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA raw; CREATE SCHEMA raw_quarantine")
        conn.execute("CREATE TABLE raw.orders AS SELECT DATE '2026-09-01' + (i % 2)::int AS _partition_date FROM range(5) t(i)")
        conn.execute("CREATE TABLE raw_quarantine.orders AS SELECT DATE '2026-09-02' AS _partition_date")
        conn.execute("CREATE TABLE raw.users AS SELECT DATE '2026-09-03' AS _partition_date FROM range(7)")
        conn.execute("CREATE TABLE raw_quarantine.users AS SELECT DATE '2026-09-03' AS _partition_date")
        first, last = date(2026, 9, 1), date(2026, 9, 3)
        assert rows_read_per_day(conn, "orders", first, last) == {date(2026, 9, 1): 3, date(2026, 9, 2): 3}
        assert rows_read_per_day(conn, "users", first, last) == {date(2026, 9, d): 8 for d in (1, 2, 3)}
