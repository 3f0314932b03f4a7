"""Every writer connection is memory-bounded and spills to a temp directory (DuckDB's default is 80% of RAM)."""

import duckdb

from orchestration.defs.resources import build_resources
from orchestration.lib.settings import export_env


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
    import os

    assert (os.environ["IMPACT_LEDGER_MEMORY_LIMIT"], os.environ["IMPACT_LEDGER_TEMP_DIR"]) == (
        "1GB",
        str(tmp_path / "tmp"),
    )
