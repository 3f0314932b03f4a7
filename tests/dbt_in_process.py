"""dbt run inside the test process, as the tests that build a few models against a prepared warehouse need it."""

import json
from datetime import date
from pathlib import Path

from orchestration.lib.settings import DBT_PROJECT_DIR, temporary_env

# dbt's last parse state (target/partial_parse.msgpack), kept for the process: each test builds in a target folder
# of its own, where dbt would parse the whole project again (~2.5 s, its macros most of it). dbt checks the state
# it is given (project files, profile, the environment variables its files read; not the vars, as in the
# pipeline: orchestration/lib/dbt_runner.py) and parses again whatever changed, so a state from another test's
# folder is used only where it still holds.
_parse_state: dict[str, bytes] = {}
PARSE_STATE = "partial_parse.msgpack"


def run_dbt(
    command: str,
    select: list[str],
    target,
    variables: dict | str | None = None,
    callbacks=(),
    dates: tuple[date, date] | None = None,
    inline: str | None = None,
):
    """`dbt <command> --select ...` on this project with its own target folder; returns dbt's result.
    ``dates``: the run's first and last day, as the pipeline passes them (``variables``' min_date / max_date, if
    given instead, win, as in a hand run). ``inline``: `dbt show --inline` of this SQL instead of a selection.

    dbt-duckdb caches its database handle (opened with the profile's config_options) for the process, and DuckDB
    refuses a second handle with another configuration; it is closed after the invocation (as the pipeline's own
    in-process dbt does, orchestration/lib/dbt_runner.py) and the test may open the warehouse itself."""
    from dbt.cli.main import dbtRunner

    from orchestration.lib.dbt_runner import close_duckdb_handles, keep_partial_parse_across_warehouses

    chosen = ["--inline", inline] if inline is not None else ["--select", *select]
    args = [command, *chosen, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    args += ["--target-path", str(target), "--quiet"]
    if variables is not None:  # a dict, or the JSON/YAML text exactly as given
        args += ["--vars", variables if isinstance(variables, str) else json.dumps(variables, sort_keys=True)]
    state = Path(target) / PARSE_STATE
    if "last" in _parse_state and not state.exists():
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_bytes(_parse_state["last"])
    keep_partial_parse_across_warehouses()  # as the pipeline's dbt: neither the warehouse's path nor vars re-parse
    # the dates as the pipeline passes them: environment variables the macros read when the SQL runs (new dates
    # keep the parse state, where new --vars would not)
    env = {}
    if dates is not None:
        from orchestration.defs.transform.dbt_assets import run_date_env

        env = run_date_env(*dates)
    try:
        with temporary_env(env):
            return dbtRunner(callbacks=list(callbacks)).invoke(args)
    finally:
        close_duckdb_handles()
        if state.exists():
            _parse_state["last"] = state.read_bytes()
