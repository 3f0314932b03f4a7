"""Resources, built from settings at call time so tests can point them elsewhere."""

import shutil
import sys
from pathlib import Path

from dagster_dbt import DbtCliResource
from dagster_duckdb import DuckDBResource

from orchestration.lib.settings import DBT_PROJECT_DIR, duckdb_settings, warehouse_path


def dbt_executable() -> str:
    """dbt from this interpreter's environment, so a non-activated venv still finds it."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


def build_resources() -> dict:
    return {
        "duckdb": DuckDBResource(database=str(warehouse_path()), connection_config=duckdb_settings()),
        "dbt": DbtCliResource(
            project_dir=str(DBT_PROJECT_DIR), profiles_dir=str(DBT_PROJECT_DIR), dbt_executable=dbt_executable()
        ),
    }
