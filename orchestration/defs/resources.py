"""Resources, built from settings at call time so tests can point them elsewhere."""

import shutil
import sys
from functools import cached_property
from importlib.metadata import version
from pathlib import Path

from dagster_dbt import DbtCliResource
from packaging.version import Version
from dagster_duckdb import DuckDBResource

from orchestration.lib.settings import DBT_PROJECT_DIR, duckdb_settings, warehouse_path


def dbt_executable() -> str:
    """dbt from this interpreter's environment, so a non-activated venv still finds it."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


class ProjectDbt(DbtCliResource):
    """dagster-dbt asks `dbt --version` once per resource, i.e. once per run: a whole dbt start (2-5 s).
    The dbt beside this interpreter is the pinned dbt-core of this environment, so ask its metadata."""

    @cached_property
    def _cli_version(self) -> Version:
        if Path(self.dbt_executable).parent == Path(sys.executable).parent:
            return Version(version("dbt-core"))
        return super()._cli_version

    def _initialize_dbt_core_adapter(self, args):
        # dagster-dbt builds a dbt adapter in this process on every `cli()` call (loads dbt's project, profile
        # and adapter: 1-2 s a run) for its fetch_row_counts / fetch_column_metadata only; we use neither
        # (dbt_assets counts rows over the DuckDB resource), and cli() accepts no adapter
        return None


def build_resources() -> dict:
    return {
        "duckdb": DuckDBResource(database=str(warehouse_path()), connection_config=duckdb_settings()),
        "dbt": ProjectDbt(
            project_dir=str(DBT_PROJECT_DIR), profiles_dir=str(DBT_PROJECT_DIR), dbt_executable=dbt_executable()
        ),
    }
