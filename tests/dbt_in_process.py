"""dbt run inside the test process, as the tests that build a few models against a prepared warehouse need it."""

import json

from orchestration.lib.settings import DBT_PROJECT_DIR


def run_dbt(command: str, select: list[str], target, variables: dict | str | None = None, callbacks=()):
    """`dbt <command> --select ...` on this project with its own target folder; returns dbt's result.

    dbt-duckdb caches its database handle (opened with the profile's config_options) for the process, and DuckDB
    refuses a second handle with another configuration; it is closed after the invocation (as the pipeline's own
    in-process dbt does, orchestration/lib/dbt_runner.py) and the test may open the warehouse itself."""
    from dbt.cli.main import dbtRunner

    from orchestration.lib.dbt_runner import close_duckdb_handles

    args = [command, "--select", *select, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    args += ["--target-path", str(target), "--quiet"]
    if variables is not None:  # a dict, or the JSON/YAML text exactly as given
        args += ["--vars", variables if isinstance(variables, str) else json.dumps(variables)]
    try:
        return dbtRunner(callbacks=list(callbacks)).invoke(args)
    finally:
        close_duckdb_handles()
