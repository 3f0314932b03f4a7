"""The dbt project as Dagster assets: lineage raw -> staging -> marts in the UI.

`dbt build` runs models and their tests together; tests of severity error are
blocking asset checks, and dbt itself skips models downstream of a failed test.
"""

import json
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from orchestration.defs.partitions import daily_partitions, run_date_range, single_run
from orchestration.lib.settings import DBT_PROJECT_DIR, export_env

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# Under `dagster dev` this runs `dbt parse`; elsewhere `make` has built the manifest.
dbt_project.prepare_if_dev()

if not dbt_project.manifest_path.exists():
    raise FileNotFoundError(
        f"dbt manifest not found at {dbt_project.manifest_path}. Run `make manifest` "
        "(or `cd dbt_project && dbt parse --profiles-dir .`) before loading the definitions."
    )

class ImpactLedgerTranslator(DagsterDbtTranslator):
    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        # dbt_project.yml tags each folder with its domain (meta.dagster_group)
        return dbt_resource_props.get("config", {}).get("meta", {}).get("dagster_group", "staging")


@dbt_assets(
    manifest=dbt_project.manifest_path,
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    dagster_dbt_translator=ImpactLedgerTranslator(),
)
def impact_ledger_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    first, last = run_date_range(context)
    export_env()  # dbt runs in a subprocess with another cwd
    dbt_vars = {"min_date": first.isoformat(), "max_date": last.isoformat()}
    context.log.info(f"dbt build for {first} .. {last}")
    # One reused target folder (runs never overlap: one writer) instead of one per run.
    target = DBT_PROJECT_DIR / "target" / "dagster"
    yield from dbt.cli(["build", "--vars", json.dumps(dbt_vars)], context=context, target_path=target).stream()
