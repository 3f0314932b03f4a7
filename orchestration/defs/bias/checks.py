"""Daily fairness verdicts per model: a WARN check on marts.bias_daily (blocking only for retraining)."""

from datetime import timedelta

import dagster as dg
from dagster_dbt import get_asset_key_for_model
from dagster_duckdb import DuckDBResource

from orchestration.defs.partitions import daily_partitions, run_date_range
from orchestration.defs.transform.dbt_assets import impact_ledger_dbt
from orchestration.lib.alerts import check_targets, scope_sql
from orchestration.lib.asset_metadata import markdown_table
from orchestration.lib.bias import (
    HEADLINE_VERDICT_COLUMNS,
    INTERVAL_COLUMNS,
    NOT_ASSESSED,
    bias_verdicts,
    group_intervals,
    group_rates,
    summarise_verdicts,
)
from orchestration.lib.project_config import load_config

BIAS_KEY = get_asset_key_for_model([impact_ledger_dbt], "bias_daily")


def verdict_metadata(verdicts, rates=None) -> dict:
    """Verdict table; with the window's ``rates`` also every group behind each verdict with its Wilson 95% interval."""
    failing = verdicts[~verdicts["passed"]]
    columns = [
        c for c in (*HEADLINE_VERDICT_COLUMNS, "flagged_groups_equal_opportunity", "passed") if c in verdicts.columns
    ]
    metadata = {
        "failing_verdicts": len(failing),
        "verdicts": dg.MetadataValue.md(markdown_table(verdicts, columns, max_rows=len(verdicts))),
    }
    if rates is not None:
        intervals = group_intervals(rates, verdicts)
        metadata["group_intervals"] = dg.MetadataValue.md(
            "Wilson 95% intervals of the rates behind each verdict (trials = the rate's denominator; excluded = fewer "
            "labelled rows than min_labelled, shown but not judged; flagged = named by a failed verdict).\n\n"
            + markdown_table(intervals, INTERVAL_COLUMNS, max_rows=len(intervals))
        )
    return metadata


def build_bias_check(suffix: str, model_id: str | None, declared: list[str]) -> dg.AssetChecksDefinition:
    """The fairness check of one declared model, or (model_id None) of every model in the data not declared."""
    who = model_id if model_id is not None else "the models found in the data but not declared in the project file"
    condition, params = scope_sql(model_id, declared)

    @dg.asset_check(
        asset=BIAS_KEY,
        name=f"bias_{suffix}",
        blocking=False,
        partitions_def=daily_partitions,
        description=f"Fairness verdicts for {who} over the trailing bias window (WARN on daily reporting).",
    )
    def _check(context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource) -> dg.AssetCheckResult:
        config = load_config()
        thresholds = config.bias.model_dump()
        _, last = run_date_range(context)
        start = last - timedelta(days=int(thresholds["window_days"]) - 1)
        if not config.attribute_columns:
            # nothing to judge is not a pass to be proud of: say why
            return dg.AssetCheckResult(
                passed=True,
                severity=dg.AssetCheckSeverity.WARN,
                description=NOT_ASSESSED,
                metadata={"window": f"{start} .. {last}"},
            )
        with duckdb.get_connection() as conn:
            rows = conn.execute(
                f"SELECT * FROM marts.bias_daily WHERE {condition} AND date BETWEEN ? AND ?", [*params, start, last]
            ).df()
        rates = group_rates(rows)
        verdicts = bias_verdicts(rates, thresholds)
        passed = bool(verdicts["passed"].all()) if len(verdicts) else True
        return dg.AssetCheckResult(
            passed=passed,
            severity=dg.AssetCheckSeverity.WARN,
            description=summarise_verdicts(verdicts, thresholds)
            if not passed
            else (f"fair over {start} .. {last}" if len(verdicts) else f"no fairness rows over {start} .. {last}"),
            metadata={"window": f"{start} .. {last}", **verdict_metadata(verdicts, rates)},
        )

    return _check


# built from the project file's declared models (never from the warehouse: definitions load without it)
_DECLARED = list(load_config().models)
bias_checks = [build_bias_check(suffix, m, _DECLARED) for suffix, m in check_targets(_DECLARED)]
