"""One daily-partitioned asset per raw contract table: source files -> raw.<table>."""

import json

import dagster as dg
from dagster_duckdb import DuckDBResource

from orchestration.defs.partition_metadata import add_daily_metadata
from orchestration.defs.partitions import daily_partitions, run_date_range, run_days, single_run
from orchestration.lib import early_gates, landing_files, okrs
from orchestration.lib.contract import CONTRACTS, ContractError
from orchestration.lib.db_sources import prepare, present_in_database, source_of
from orchestration.lib.project_config import load_config
from orchestration.lib.raw_loader import (
    NEW_COLUMNS,
    QUARANTINE_BY_REASON,
    LoadReport,
    check_attribute_columns,
    load_days,
    quarantine_by_reason,
    stored_columns,
)
from orchestration.lib.settings import gx_docs_dir

# Referential rules and gates read these tables, so they load (and pass their gates) first.
UPSTREAM_RAW = {
    "experiment_variants": ["experiments"],
    "assignments": ["experiment_variants", "users"],
    "predictions": ["users", "experiments"],
    "labels": ["predictions"],
    "feedback": ["predictions"],
    "sessions": ["users"],
    "orders": ["users"],
    "model_costs": ["experiments"],
}


def _metadata(reports: list[LoadReport]) -> dict:
    reasons: dict[str, int] = {}
    for r in reports:
        for reason, n in r.quarantine_reasons.items():
            reasons[reason] = reasons.get(reason, 0) + n
    return {
        "rows_read": sum(r.rows_read for r in reports),
        "rows_loaded": sum(r.rows_loaded for r in reports),
        "rows_quarantined": sum(r.rows_quarantined for r in reports),
        "quarantine_reasons": dg.MetadataValue.json(reasons),
        "source_files": dg.MetadataValue.json(sorted({f for r in reports for f in r.files})),
        "days": len(reports),
        "notes": "; ".join(sorted({r.note for r in reports if r.note})) or "none",
    }


def _checks_in_run(context: dg.AssetExecutionContext) -> bool:
    """The run executes this asset's checks (every check, unless it selects some: then any of them)."""
    selection = context.run.asset_check_selection
    return selection is None or any(key.asset_key == context.asset_key for key in selection)


def _where(table: str) -> str:
    """The table's source as the project file sets it (the landing zone unless ``sources`` names another)."""
    spec = load_config().sources.get(table)
    if spec is None:
        return f"IMPACT_LEDGER_SOURCE/{table}/"
    return f"lake folder {spec.path}/{table}/" if spec.path else "a database (sources." + table + ".database)"


def build_raw_asset(table: str) -> dg.AssetsDefinition:
    contract = CONTRACTS[table]
    kind = "snapshot reloaded whole" if contract.time_column is None else f"rows placed by {contract.time_column}"
    loaded = {table, *UPSTREAM_RAW.get(table, [])}  # written before the gates of this table run

    @dg.asset(
        key=["raw", table],
        partitions_def=daily_partitions,
        backfill_policy=single_run,
        group_name="ingest",
        deps=[dg.AssetKey(["raw", t]) for t in UPSTREAM_RAW.get(table, [])],
        kinds={"duckdb"},
        owners=["team:data-engineering"],
        description=(
            f"raw.{table}: contract-checked rows of the day ({kind}); rows breaking a row rule go to "
            f"raw_quarantine.{table} with _reason. Source: {_where(table)}."
        ),
    )
    def _raw(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
        # Snapshots do not depend on the day: load them once per run.
        days = run_days(context)[-1:] if contract.time_column is None else run_days(context)
        # the project file's sources: a database table's days are extracted into dated files first
        source = source_of(table)
        try:
            source, _ = prepare(table, days)
            with duckdb.get_connection() as conn:
                before = stored_columns(conn, table)
                reports = load_days(conn, table, source.root, days)
                added = sorted((stored_columns(conn, table) or set()) - before) if before is not None else []
                if source.kind == "database":
                    present_in_database(reports)
                if table == "users":  # before any table that joins it (Spark's: DuckDB's views over its Parquet)
                    check_attribute_columns(conn, load_config().attribute_columns)
                if table == "experiment_variants":  # an OKR's treatment arm, before the data loads
                    okrs.check_before_loading(conn)
                if source.kind != "database":  # the files each day read: one arriving later is noticed
                    landing_files.record(conn, table, source.root, reports)
                if _checks_in_run(context):  # the table's gates judged while the next tables load
                    early_gates.begin(conn, table, loaded, context.run.run_id, *run_date_range(context), gx_docs_dir())
        except ContractError as err:
            raise dg.Failure(
                description=f"raw.{table}: {source.explain(err)}", metadata={"table": table, "source": source.label}
            ) from (err if source.kind != "database" else None)
        meta = _metadata(reports)
        # on every day's event alike (the days' own metadata leaves it): progress says each reason once per run
        by_reason = quarantine_by_reason(reports, dated=contract.time_column is not None)
        meta[QUARANTINE_BY_REASON] = dg.MetadataValue.json(by_reason)
        # each day of a ranged run: its own counts (the run's totals stay on the run)
        add_daily_metadata(context, {r.partition_date: _metadata([r]) for r in reports})
        meta["source"] = source.label
        if added:  # said once by the run's progress (runs.StepProgress)
            meta[NEW_COLUMNS] = dg.MetadataValue.json(added)
        context.log.info(f"raw.{table}: {json.dumps({k: v for k, v in meta.items() if isinstance(v, int)})}")
        return dg.MaterializeResult(metadata=meta)

    return _raw


raw_assets = [build_raw_asset(table) for table in CONTRACTS]
