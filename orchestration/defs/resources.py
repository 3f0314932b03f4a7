"""Resources, built from settings at call time so tests can point them elsewhere."""

import shutil
import sys
from contextlib import contextmanager
from functools import cached_property
from importlib.metadata import version
from pathlib import Path

from dagster_dbt import DbtCliResource
from packaging.version import Version
from dagster_duckdb import DuckDBResource
from pydantic import PrivateAttr

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


class WarehouseResource(DuckDBResource):
    """The warehouse, held open for the whole run: every asset and check opens its own connection, and with
    the database already open in this process DuckDB hands one out at once instead of reading the file's
    catalog again (~40 ms, 100+ times a run), and closing it does not checkpoint each time.

    Outside a run (tests, the CLI) it opens and closes as DuckDBResource does. dbt opens the same file with
    its own settings, which DuckDB refuses while it is open here: call ``release()`` before dbt runs; the next
    connection opens it again. Where another process opens the file (Spark's dbt), use ``unheld_connection()``."""

    _hold = PrivateAttr(default=False)  # inside a run
    _held = PrivateAttr(default=None)  # the idle connection keeping the database open in this process

    def setup_for_execution(self, context) -> None:
        self._hold = True

    def teardown_after_execution(self, context) -> None:
        self._hold = False
        self.release()

    def release(self) -> None:
        """Close the held connection: the file closes once the callers' own connections are closed."""
        held, self._held = self._held, None
        if held is not None:
            held.__exit__(None, None, None)

    @contextmanager
    def unheld_connection(self):
        """A connection that leaves the file closed after it, for a step where another process opens it next."""
        self.release()
        hold, self._hold = self._hold, False
        try:
            with super().get_connection() as conn:
                yield conn
        finally:
            self._hold = hold

    @contextmanager
    def get_connection(self):
        if self._hold and self._held is None:
            held = super().get_connection()  # the settings of every other connection of the run
            held.__enter__()
            self._held = held
        with super().get_connection() as conn:
            yield conn


def build_resources() -> dict:
    return {
        "duckdb": WarehouseResource(database=str(warehouse_path()), connection_config=duckdb_settings()),
        "dbt": ProjectDbt(
            project_dir=str(DBT_PROJECT_DIR), profiles_dir=str(DBT_PROJECT_DIR), dbt_executable=dbt_executable()
        ),
    }
