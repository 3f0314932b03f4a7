"""The dbt project as Dagster assets: lineage raw -> staging -> marts in the UI.

`dbt build` runs models and their tests together; tests of severity error are
blocking asset checks, and dbt itself skips models downstream of a failed test.
"""

import contextlib
import io
import json
import os
import re
import sys
from pathlib import Path
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliInvocation, DbtCliResource, DbtProject, dbt_assets
from dagster_duckdb import DuckDBResource

from orchestration.defs.freshness import PUBLISHED_FRESHNESS
from orchestration.defs.partition_metadata import add_daily_metadata
from orchestration.defs.transform.dbt_in_process import InProcessDbtInvocation
from orchestration.defs.partitions import daily_partitions, run_date_range, run_days, single_run
from orchestration.defs.resources import WarehouseResource
from orchestration.lib.asset_metadata import row_count_query, row_counts_by_day, row_counts_by_day_query
from orchestration.lib.engine import RAW_REGISTERED_ENV, SyncAfterStream, after_build, before_build, dbt_target, engine
from orchestration.lib.engine import export_env as export_engine_env
from orchestration.lib.project_config import config_dbt_vars, load_config
from orchestration.lib.settings import DBT_PROJECT_DIR, export_env

# The run's partition range as dbt reads it (macros/partition_range.sql)
RUN_DATE_ENV = {"min_date": "IMPACT_LEDGER_MIN_DATE", "max_date": "IMPACT_LEDGER_MAX_DATE"}
# "quiet": keep dbt's own lines off stdout (`impact-ledger materialize` without -v); anything else: echo them
DBT_OUTPUT_ENV = "IMPACT_LEDGER_DBT_OUTPUT"
DBT_TARGET_ENV = "IMPACT_LEDGER_DBT_TARGET"
# dbt.log's level: dbt's default (debug) writes every statement's SQL and connection event, ~20% of a small
# build's node time; IMPACT_LEDGER_DBT_LOG_LEVEL=debug brings it back when a model needs investigating
DBT_LOG_LEVEL_ENV = "IMPACT_LEDGER_DBT_LOG_LEVEL"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# Under `dagster dev` this runs `dbt parse`; elsewhere `make` has built the manifest.
dbt_project.prepare_if_dev()

if not dbt_project.manifest_path.exists():
    raise FileNotFoundError(
        f"dbt manifest not found at {dbt_project.manifest_path}. Run `make manifest` "
        "(or `cd dbt_project && dbt parse --profiles-dir .`) before loading the definitions."
    )

# Who answers for each domain's dbt models (a model may override with meta.dagster.owners).
DOMAIN_OWNERS = {
    "staging": ["team:data-engineering"],
    "kpis": ["team:analytics"],
    "model_health": ["team:ml-platform"],
    "bias": ["team:ml-platform"],
    "attribution": ["team:experimentation"],
}


class ImpactLedgerTranslator(DagsterDbtTranslator):
    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        # dbt_project.yml tags each folder with its domain (meta.dagster_group)
        return dbt_resource_props.get("config", {}).get("meta", {}).get("dagster_group", "staging")

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str] | None:
        declared = super().get_owners(dbt_resource_props)
        return list(declared) if declared else DOMAIN_OWNERS.get(self.get_group_name(dbt_resource_props))

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        # marts are what people read: they must be as fresh as the published Python assets
        if self.get_resource_props(manifest, unique_id).get("schema") == "marts":
            return spec.replace_attributes(freshness_policy=PUBLISHED_FRESHNESS)
        return spec


def dbt_target_folder() -> str:
    """IMPACT_LEDGER_DBT_TARGET: one folder name under dbt_project/target, or an absolute path elsewhere (two trials'
    runs wrote into the product's checkout: a read-only install could not run); never a relative path out of it."""
    folder = os.environ.get(DBT_TARGET_ENV, "dagster")
    if os.path.isabs(folder) and ".." not in Path(folder).parts:
        return folder
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", folder) or ".." in folder:
        raise ValueError(
            f"{DBT_TARGET_ENV}={folder!r}: expected one folder name under dbt_project/target "
            "(letters, digits, '_', '-', '.'; no '/' or '..') or an absolute path"
        )
    return folder


def run_date_env(first, last) -> dict[str, str]:
    """The run's dates as dbt's macros read them (IMPACT_LEDGER_MIN_DATE / IMPACT_LEDGER_MAX_DATE)."""
    return {RUN_DATE_ENV["min_date"]: first.isoformat(), RUN_DATE_ENV["max_date"]: last.isoformat()}


def with_row_counts(
    context: dg.AssetExecutionContext, invocation: DbtCliInvocation, duckdb: DuckDBResource, first, last
):
    """dbt's events with `dagster/row_count` and `rows_in_range` (rows of the run's days) on each table model;
    each day of a ranged run gets its own `rows_of_day` and `dagster/row_count` (the table up to that day).

    Counting waits until dbt has exited (DuckDB allows one writer), then uses one
    connection. Events dbt emitted before a failure are still yielded, then the failure is raised.
    """
    events, failure = [], None
    # dagster-dbt echoes every dbt line to stdout; the CLI asks for quiet (its progress lines say what ran)
    quiet = os.environ.get(DBT_OUTPUT_ENV) == "quiet"
    echoed = io.StringIO()
    try:
        with contextlib.redirect_stdout(echoed) if quiet else contextlib.nullcontext():
            for event in invocation.stream():
                events.append(event)
    except Exception as err:  # re-raised below, after the successful models are recorded
        failure = err
        if quiet:  # what dbt said last is why it failed
            sys.stderr.write("".join(echoed.getvalue().splitlines(keepends=True)[-30:]))
    try:
        with duckdb.get_connection() as conn:
            for i, event in enumerate(events):
                if not isinstance(event, dg.Output | dg.AssetMaterialization) or "unique_id" not in event.metadata:
                    continue
                node = invocation.manifest["nodes"][event.metadata["unique_id"].value]
                if node["config"].get("materialized") == "view":
                    continue  # counting a view re-runs its query
                total, in_range = conn.execute(*row_count_query(node, first, last)).fetchone()
                counts = {"dagster/row_count": int(total)}  # the standard key the UI shows and plots
                if in_range is not None:
                    counts["rows_in_range"] = int(in_range)
                events[i] = event.with_metadata({**event.metadata, **counts})
                by_day = row_counts_by_day_query(node, last)
                if by_day is not None and isinstance(event, dg.Output):
                    per_day = row_counts_by_day(conn.execute(*by_day).fetchall(), run_days(context))
                    add_daily_metadata(context, per_day, context.asset_key_for_output(event.output_name))
    except Exception as err:  # metadata is a nicety: never fail the build for it
        context.log.warning(f"dbt row counts skipped: {err}")
    yield from events
    if failure is not None:
        raise failure


@dbt_assets(
    manifest=dbt_project.manifest_path,
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    dagster_dbt_translator=ImpactLedgerTranslator(),
)
def impact_ledger_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource, duckdb: WarehouseResource):
    first, last = run_date_range(context)
    export_env()  # absolute paths: dbt resolves them from its project folder
    export_engine_env()
    with duckdb.get_connection() as conn:  # Spark reads the run's raw days as Parquet (DuckDB: nothing)
        before_build(conn, first, last)
    duckdb.release()  # dbt opens the warehouse with its own settings (DuckDB: in this process)
    # the project file reaches the SQL as vars (models, protected attributes, metrics): they rarely change
    dbt_vars = config_dbt_vars(load_config().config)
    context.log.info(f"dbt build for {first} .. {last}")
    # One reused target folder (runs never overlap: one writer) instead of one per run; it also keeps
    # dbt's partial_parse.msgpack, so a run re-parses nothing unless the project or its vars changed.
    # (IMPACT_LEDGER_DBT_TARGET names another folder under dbt_project/target, e.g. for parallel test workers)
    folder = dbt_target_folder()
    target = DBT_PROJECT_DIR / "target" / (folder if engine() == "duckdb" else f"{folder}_{engine()}")
    colours = [] if sys.stdout.isatty() else ["--no-use-colors"]  # no ANSI codes in pipes and log files
    # the dates go as environment variables (macros/partition_range.sql): new --vars would re-parse everything
    # --no-write-json: nothing reads the run's manifest.json / run_results.json / graph (dagster-dbt reads the
    # event stream and the definitions' own manifest), and writing them is ~1 s a run
    args = [*colours, "build", "--target", dbt_target(), "--no-write-json", "--vars", json.dumps(dbt_vars)]
    args += ["--log-level-file", os.environ.get(DBT_LOG_LEVEL_ENV, "info")]
    # dbt in this process (no interpreter start; Spark: the loader's session, its JVM warm), the dates set while
    # it runs
    env = run_date_env(first, last)
    if engine() == "duckdb":
        invocation = InProcessDbtInvocation(dbt, args, context, target, env=env)
        yield from with_row_counts(context, invocation, duckdb, first, last)
        return
    built = InProcessDbtInvocation(dbt, args, context, target, env={**env, RAW_REGISTERED_ENV: "1"})
    # Spark: the built tables are copied into DuckDB once dbt is done, before the row counts and Python assets
    # (a dbt subprocess may create their DuckDB shells meanwhile: the warehouse is left closed around it)
    shells = target.with_name(f"{target.name}_duckdb_shells")  # the DuckDB tables the marts are copied into
    invocation = SyncAfterStream(
        built, lambda: after_build(duckdb.unheld_connection, built.manifest, dbt.dbt_executable, shells)
    )
    yield from with_row_counts(context, invocation, duckdb, first, last)
