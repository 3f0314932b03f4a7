"""dbt staging views on a hand-made warehouse: held-back days, thresholds from the project file, 'unknown' groups.

The raw tables come from the real loader (which also creates quality.gate_results); dbt builds only
the staging views (about 10 s).
"""

from datetime import date, datetime, timedelta

import duckdb
import pandas as pd
import pytest

from orchestration.lib.raw_loader import load_partition
from tests.dbt_in_process import run_dbt
from tests.landing_files import write_parquet

DAYS = [date(2026, 9, 1) + timedelta(days=i) for i in range(3)]
HELD_BACK = DAYS[1]


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    root = tmp_path_factory.mktemp("staging")
    source, db = root / "landing", root / "warehouse.duckdb"
    # users without segment, gender or age_band, one without a country; a protected column outside the contract
    write_parquet(
        source,
        "users",
        pd.DataFrame(
            {
                "user_id": ["u1", "u2"],
                "signup_at": pd.Timestamp("2026-01-01"),
                "country": ["DE", None],
                "race": ["b", None],
                # coded groups as a Parquet float holds them, and a 0/1 indicator
                "race_code": [2.0, 2.5],
                "leg_black": [1.0, 0.0],
            }
        ),
    )
    for d, day in enumerate(DAYS):
        at = [datetime(day.year, day.month, day.day, 9 + i) for i in range(4)]
        # no threshold column on the first day (the loader fills nulls); logged thresholds afterwards
        preds = pd.DataFrame(
            {
                "prediction_id": [f"p{d}{i}" for i in range(4)],
                "model_id": ["fraud", "fraud", "churn", "churn"],
                "model_version": "v1",
                "user_id": "u1",
                "predicted_at": at,
                "score": [0.3, 0.7, 0.3, 0.7],
            }
        )
        write_parquet(source, "predictions", preds if d == 0 else preds.assign(threshold=0.8), day)
        write_parquet(
            source,
            "orders",
            pd.DataFrame(
                {
                    "order_id": [f"o{d}{i}" for i in range(3)],
                    "user_id": "u1",
                    "ordered_at": at[:3],
                    "revenue": 10.0,
                    "status": "completed",
                }
            ),
            day,
        )
    with duckdb.connect(str(db)) as conn:
        load_partition(conn, "users", source, DAYS[-1])
        for day in DAYS:
            for table in ("predictions", "orders", "labels"):  # labels: absent from the source, loaded empty
                load_partition(conn, table, source, day)
        # the orders gate failed on the middle day (and passed on the others); predictions passed everywhere
        conn.execute(
            "INSERT INTO quality.gate_results VALUES (?, 'raw_orders', 'orders', false, '[]', 3, '[]', NULL), "
            "(?, 'raw_orders', 'orders', true, '[]', 3, '[]', NULL), "
            "(?, 'raw_predictions', 'predictions', false, '[]', 4, '[]', NULL)",
            [HELD_BACK, DAYS[0], date(2026, 8, 1)],
        )
    variables = {
        "model_settings": {"fraud": {"threshold": 0.6, "positive_decision": "harmful"}, "churn": {"threshold": None}},
        "protected_attributes": {
            "race": ["race"],
            "country": ["country"],
            "race_code": ["race_code"],
            "leg_black": ["leg_black"],
        },
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IMPACT_LEDGER_DB", str(db))
        mp.setenv("IMPACT_LEDGER_TEMP_DIR", str(root / "tmp"))
        result = run_dbt(
            "run", ["stg_orders", "stg_predictions", "stg_users", "stg_labels"], str(root / "target"), variables
        )
    assert result.success, result.exception
    return db


def query(db, sql):
    with duckdb.connect(str(db)) as conn:  # dbt-duckdb keeps its in-process handle open (same configuration)
        return conn.execute(sql).df()


def test_a_failed_days_rows_are_held_back_and_the_other_days_kept(staged):
    orders = query(staged, "SELECT order_date, count(*) AS n FROM staging.stg_orders GROUP BY 1 ORDER BY 1")
    assert [d.date() for d in orders["order_date"]] == [DAYS[0], DAYS[2]] and list(orders["n"]) == [3, 3]
    # the raw rows are still there: held back, not lost
    assert query(staged, f"SELECT count(*) AS n FROM raw.orders WHERE _partition_date = '{HELD_BACK}'")["n"][0] == 3
    # another table's verdicts do not touch orders, and a failed predictions day without rows changes nothing
    assert query(staged, "SELECT count(*) AS n FROM staging.stg_predictions")["n"][0] == 12


def test_the_threshold_is_logged_else_configured_else_half(staged):
    preds = query(
        staged,
        "SELECT prediction_id, model_id, prediction_date, score, threshold, threshold_source, decision "
        "FROM staging.stg_predictions ORDER BY prediction_id",
    )
    for row in preds.itertuples():
        logged = row.prediction_date.date() != DAYS[0]
        expected = 0.8 if logged else (0.6 if row.model_id == "fraud" else 0.5)
        source = "logged" if logged else ("configured" if row.model_id == "fraud" else "default")
        assert (row.threshold, row.threshold_source, row.decision) == (expected, source, row.score >= expected), row


def test_missing_and_null_descriptive_and_protected_values_are_unknown(staged):
    users = query(staged, "SELECT * FROM staging.stg_users ORDER BY user_id")
    assert users[["user_id", "country", "segment", "gender", "age_band", "race"]].values.tolist() == [
        ["u1", "DE", "unknown", "unknown", "unknown", "b"],
        ["u2", "unknown", "unknown", "unknown", "unknown", "unknown"],
    ]


def test_an_absent_table_stages_empty(staged):
    assert query(staged, "SELECT count(*) AS n FROM staging.stg_labels")["n"][0] == 0


def test_a_whole_number_of_a_float_column_is_its_group_without_decimals(staged):
    # a trial's coded Parquet column: groups '1.0', '2.0' in the marts (both engines cast 2.0 to '2.0'); init
    # proposes the same names (project_init._group_text)
    users = query(staged, "SELECT user_id, race_code, leg_black FROM staging.stg_users ORDER BY user_id")
    assert users.values.tolist() == [["u1", "2", "1"], ["u2", "2.5", "0"]]
