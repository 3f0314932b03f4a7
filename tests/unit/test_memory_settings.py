"""Every writer connection is memory-bounded and spills to a temp directory (DuckDB's default is 80% of RAM)."""

import os
import re

import duckdb
import pytest

from orchestration.defs.resources import build_resources
from orchestration.lib.settings import dbt_threads, duckdb_settings, export_env


def test_the_dagster_resource_and_dbt_get_the_same_bound(tmp_path, monkeypatch):
    monkeypatch.setenv("IMPACT_LEDGER_DB", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("IMPACT_LEDGER_MEMORY_LIMIT", "1GB")
    monkeypatch.delenv("IMPACT_LEDGER_TEMP_DIR", raising=False)
    with build_resources()["duckdb"].get_connection() as conn:
        limit, temp = conn.execute(
            "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
        ).fetchone()
    with duckdb.connect(config={"memory_limit": "1GB"}) as plain:  # DuckDB's own rendering of 1GB
        assert limit == plain.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert temp == str(tmp_path / "tmp")  # next to the warehouse by default
    export_env()  # what dbt's profiles.yml reads
    assert (os.environ["IMPACT_LEDGER_MEMORY_LIMIT"], os.environ["IMPACT_LEDGER_TEMP_DIR"]) == (
        "1GB",
        str(tmp_path / "tmp"),
    )


def test_the_resource_and_dbt_run_on_the_threads_asked_for_and_duckdbs_default_otherwise(tmp_path, monkeypatch):
    from orchestration.lib.dbt_runner import invoke_dbt
    from orchestration.lib.settings import DBT_PROJECT_DIR

    db = tmp_path / "w.duckdb"
    monkeypatch.setenv("IMPACT_LEDGER_DB", str(db))
    monkeypatch.setenv("IMPACT_LEDGER_TEMP_DIR", str(tmp_path / "tmp"))

    def resource_threads() -> int:
        with build_resources()["duckdb"].get_connection() as conn:
            return int(conn.execute("SELECT current_setting('threads')").fetchone()[0])

    monkeypatch.delenv("IMPACT_LEDGER_DUCKDB_THREADS", raising=False)
    with duckdb.connect() as plain:
        assert resource_threads() == plain.execute("SELECT current_setting('threads')").fetchone()[0]
    monkeypatch.setenv("IMPACT_LEDGER_DUCKDB_THREADS", "1")
    assert resource_threads() == 1

    # dbt: the on-run-start hook sets them for the database before any model (the build then fails: no raw tables);
    # dbt's own threads (models side by side) are IMPACT_LEDGER_DBT_THREADS, 1 unless set
    project, target = str(DBT_PROJECT_DIR), tmp_path / "target"
    args = ["--no-use-colors", "build", "--select", "stg_orders", "--project-dir", project, "--profiles-dir", project]
    monkeypatch.delenv("IMPACT_LEDGER_DBT_THREADS", raising=False)
    invoke_dbt([*args, "--target-path", str(target), "--log-path", str(target)])
    executed = (target / "dbt.log").read_text()
    assert "set threads = 1" in executed and "Concurrency: 1 threads" in executed
    monkeypatch.delenv("IMPACT_LEDGER_DUCKDB_THREADS")
    monkeypatch.setenv("IMPACT_LEDGER_DBT_THREADS", "2")
    (target / "dbt.log").unlink()
    invoke_dbt([*args, "--target-path", str(target), "--log-path", str(target)])
    executed = (target / "dbt.log").read_text()
    assert "set threads" not in executed and "Concurrency: 2 threads" in executed


def test_dbt_runs_one_thread_unless_told_and_exports_the_count(tmp_path, monkeypatch):
    monkeypatch.setenv("IMPACT_LEDGER_DB", str(tmp_path / "w.duckdb"))
    for exported in ("IMPACT_LEDGER_MEMORY_LIMIT", "IMPACT_LEDGER_TEMP_DIR"):  # restored after the test
        monkeypatch.delenv(exported, raising=False)
    monkeypatch.delenv("IMPACT_LEDGER_DBT_THREADS", raising=False)
    assert dbt_threads() == 1
    monkeypatch.setenv("IMPACT_LEDGER_DBT_THREADS", " 3 ")
    export_env()  # what dbt's profiles.yml reads
    assert os.environ["IMPACT_LEDGER_DBT_THREADS"] == "3"
    monkeypatch.setenv("IMPACT_LEDGER_DBT_THREADS", "-2")
    with pytest.raises(ValueError, match=re.escape("IMPACT_LEDGER_DBT_THREADS must be a whole number >= 1, got '-2'")):
        export_env()


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_a_bad_thread_count_names_its_variable(monkeypatch, value):
    monkeypatch.setenv("IMPACT_LEDGER_DUCKDB_THREADS", value)
    with pytest.raises(
        ValueError, match=re.escape(f"IMPACT_LEDGER_DUCKDB_THREADS must be a whole number >= 1, got '{value}'")
    ):
        duckdb_settings()  # what the Dagster resource is built from when a run loads its definitions
