"""The engine switch and the DuckDB side of the Spark engine (no Spark needed): the raw days landed as
Parquet and the built tables copied back, checked against the rows themselves (tests/spark compares the
engines end to end)."""

from datetime import date

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from orchestration.lib import engine
from orchestration.lib.project_config import ConfigError, load_config


def test_engine_defaults_to_duckdb_and_the_env_var_wins(monkeypatch, tmp_path):
    monkeypatch.delenv("IMPACT_LEDGER_ENGINE", raising=False)
    plain = tmp_path / "plain.yml"
    plain.write_text("currency: EUR\n")  # no engine key
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(plain))
    assert engine.engine() == "duckdb" and engine.dbt_target() == "local"
    config = tmp_path / "p.yml"
    config.write_text("engine: spark\n")
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(config))
    assert engine.engine() == "spark" and engine.dbt_target() == "spark"
    monkeypatch.setenv("IMPACT_LEDGER_ENGINE", "DuckDB")
    assert engine.engine() == "duckdb"
    monkeypatch.setenv("IMPACT_LEDGER_ENGINE", "presto")
    with pytest.raises(engine.EngineError, match="IMPACT_LEDGER_ENGINE='presto'.*duckdb, spark"):
        engine.engine()


def test_an_unknown_engine_in_the_project_file_names_the_key(tmp_path):
    config = tmp_path / "p.yml"
    config.write_text("engine: snowflake\n")
    with pytest.raises(ConfigError, match="engine"):
        load_config(config)


def _raw(conn):
    conn.execute("CREATE SCHEMA raw")
    conn.execute(
        "CREATE TABLE raw.orders AS SELECT * FROM (VALUES "
        "('o1', TIMESTAMP '2026-09-01 10:00:00', 12.5, DATE '2026-09-01'), "
        "('o2', TIMESTAMP '2026-09-02 11:00:00', 3.0, DATE '2026-09-02'), "
        "('o3', TIMESTAMP '2026-09-02 12:00:00', NULL, DATE '2026-09-02')) "
        "t(order_id, ordered_at, revenue, _partition_date)"
    )
    # a dimension snapshot: the loader replaces it whole, stamped with the day it was loaded
    conn.execute("CREATE TABLE raw.users AS SELECT 'u1' AS user_id, DATE '2026-09-02' AS _partition_date")


def test_raw_days_land_as_date_partitioned_parquet(tmp_path):
    with duckdb.connect() as conn:
        _raw(conn)
        engine.export_raw_days(conn, [date(2026, 9, 1), date(2026, 9, 2), date(2026, 9, 3)], tmp_path)
        landed = conn.execute(
            f"SELECT * FROM read_parquet('{tmp_path}/raw/orders/*/*.parquet', hive_partitioning = true) ORDER BY 1"
        ).df()
        assert landed["order_id"].tolist() == ["o1", "o2", "o3"]
        assert [str(d)[:10] for d in landed["_partition_date"]] == ["2026-09-01", "2026-09-02", "2026-09-02"]
        # a day without rows still has its file (Spark infers the columns from any file)
        assert (tmp_path / "raw/orders/_partition_date=2026-09-03/part-0.parquet").is_file()
        # the snapshot is rewritten whole: reloaded on a later day, the earlier copy is gone
        conn.execute("UPDATE raw.users SET _partition_date = DATE '2026-09-03'")
        engine.export_raw_days(conn, [date(2026, 9, 3)], tmp_path)
        users = conn.execute(f"SELECT user_id FROM read_parquet('{tmp_path}/raw/users/*/*.parquet')").fetchall()
        assert users == [("u1",)]
        assert [p.name for p in (tmp_path / "raw/users").iterdir()] == ["_partition_date=2026-09-03"]


def test_built_tables_are_copied_by_column_name_into_the_duckdb_tables(tmp_path):
    # a Spark table partitioned by its day: the day is the folder, the other columns in another order
    spark_table = engine.spark_table_location("marts", "kpi_daily", tmp_path)
    with duckdb.connect() as conn:
        for day, sessions, rate in (("2026-09-01", 10, 0.5), ("2026-09-02", 4, None)):
            folder = spark_table / f"date={day}"
            folder.mkdir(parents=True)
            conn.execute(
                f"COPY (SELECT {rate if rate is not None else 'NULL::double'} AS conversion_rate, "
                f"{sessions}::bigint AS sessions) TO '{folder}/part-00000.parquet' (FORMAT parquet)"
            )
        (spark_table / "_SUCCESS").write_text("")
        conn.execute("CREATE SCHEMA marts")
        conn.execute("CREATE TABLE marts.kpi_daily (date DATE, sessions BIGINT, conversion_rate DOUBLE)")
        conn.execute("INSERT INTO marts.kpi_daily VALUES (DATE '2026-08-31', 99, 0.9)")  # replaced, not kept
        copied = engine.copy_from_spark(conn, [{"schema": "marts", "name": "kpi_daily"}], tmp_path)
        got = conn.execute("SELECT * FROM marts.kpi_daily ORDER BY date").df()
    assert copied == {"marts.kpi_daily": 2}
    expected = pd.DataFrame(
        {
            "date": pd.to_datetime(["2026-09-01", "2026-09-02"]).astype(got["date"].dtype),
            "sessions": [10, 4],
            "conversion_rate": [0.5, None],
        }
    )
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_only_materialised_models_are_copied():
    manifest = {
        "nodes": {
            "model.p.kpi": {
                "resource_type": "model",
                "config": {"materialized": "incremental"},
                "schema": "marts",
                "alias": "kpi_daily",
                "name": "kpi_daily",
                "unique_id": "model.p.kpi",
            },
            "model.p.stg": {
                "resource_type": "model",
                "config": {"materialized": "view"},
                "schema": "staging",
                "alias": "stg_orders",
                "name": "stg_orders",
                "unique_id": "model.p.stg",
            },
            "test.p.t": {"resource_type": "test", "config": {"materialized": "test"}},
        }
    }
    assert [(r["schema"], r["name"]) for r in engine.built_relations(manifest)] == [("marts", "kpi_daily")]


def test_the_run_process_spark_session_uses_the_settings_of_dbts_spark_target():
    # one set of defaults: the loader's and gates' session (spark_session.py) and dbt's (profiles.yml)
    import yaml

    from orchestration.lib.settings import DBT_PROJECT_DIR
    from orchestration.lib.spark_session import FIXED_SETTINGS, SESSION_SETTINGS, hive_settings

    text = (DBT_PROJECT_DIR / "profiles.yml").read_text()
    for key, (var, default) in SESSION_SETTINGS.items():
        assert f"{key}: \"{{{{ env_var('{var}', '{default}') }}}}\"" in text, key
    spark = yaml.safe_load(text)["impact_ledger"]["outputs"]["spark"]["server_side_parameters"]
    for key in set(spark) & set(FIXED_SETTINGS):
        assert str(spark[key]) == FIXED_SETTINGS[key], key
    # and the same catalog: a hand-run `dbt build --target spark` finds the tables the run process's dbt made
    root = "{{ env_var('IMPACT_LEDGER_SPARK_DIR', '../data/spark') }}"
    for key, value in hive_settings(Path("ROOT")).items():
        assert spark[key] == value.replace("ROOT", root), key


def test_a_metastore_held_by_another_process_is_said_with_what_to_do(tmp_path):
    # Hive's own words when embedded Derby is booted by another JVM (seen with two processes on one folder)
    from orchestration.lib.spark_session import open_metastore

    class Catalog:
        def __init__(self, error):
            self.error = error

        def listDatabases(self):
            raise self.error

    class Session:
        def __init__(self, error):
            self.catalog = Catalog(error)

    held = RuntimeError(
        "org.apache.hadoop.hive.ql.metadata.HiveException: java.lang.RuntimeException: Unable to instantiate "
        "org.apache.hadoop.hive.ql.metadata.SessionHiveMetaStoreClient"
    )
    with pytest.raises(engine.EngineError) as err:
        open_metastore(Session(held), tmp_path)
    assert str(err.value).startswith(f"the Spark engine's metastore {tmp_path / 'metastore_db'} is open in another")
    assert "IMPACT_LEDGER_SPARK_DIR" in str(err.value)
    with pytest.raises(ValueError, match="something else"):  # any other failure is left as it is
        open_metastore(Session(ValueError("something else")), tmp_path)


def test_the_duckdb_shells_follow_the_project_files_vars(tmp_path, monkeypatch):
    # on Spark, staging.stg_users was made once, without the project's protected attributes (no --vars), and
    # kept: the retraining job's bias check then failed on a missing attribute column
    import contextlib
    import json

    from orchestration.lib import project_config

    config = tmp_path / "project.yml"
    config.write_text("protected_attributes: [store]\n")
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(config))
    monkeypatch.setenv("IMPACT_LEDGER_ENGINE", "spark")
    made = []
    monkeypatch.setattr(engine.subprocess, "run", lambda args, **kw: made.append(args) or _done())
    monkeypatch.setattr(engine, "copy_from_spark", lambda conn, relations: {})
    monkeypatch.setattr(engine, "_missing_in_duckdb", lambda conn, relations: [])  # every relation there

    @contextlib.contextmanager
    def conn():
        with duckdb.connect() as c:
            yield c

    def build():
        made.clear()
        engine.after_build(conn, {"nodes": {}}, "dbt", tmp_path / "shells")
        return made

    first = build()
    assert len(first) == 2  # the views, then the tables without rows
    given = json.loads(first[0][first[0].index("--vars") + 1])
    assert given == json.loads(json.dumps(project_config.config_dbt_vars(load_config().config), default=str))
    assert "store" in json.dumps(given)
    assert build() == []  # the same vars: nothing made again
    config.write_text("protected_attributes: [store, region]\n")
    assert len(build()) == 2 and "region" in " ".join(made[0])


def _done():
    import subprocess

    return subprocess.CompletedProcess([], 0, "", "")
