"""Daily fairness verdicts per model: WARN checks on marts.bias_verdicts (blocking only for retraining).

The asset that stores the verdicts evaluates them (bias/assets.py) from the window's rows it has read, so the
checks are results of its step rather than steps of their own: a run's step count does not grow with models.
"""

from datetime import timedelta

import dagster as dg
import pandas as pd
from dagster_dbt import get_asset_key_for_model

from orchestration.defs.partitions import daily_partitions
from orchestration.defs.transform.dbt_assets import impact_ledger_dbt
from orchestration.lib.alerts import in_scope, per_model_checks
from orchestration.lib.asset_metadata import markdown_table
from orchestration.lib.bias import (
    HEADLINE_VERDICT_COLUMNS,
    INTERVAL_COLUMNS,
    NOT_ASSESSED,
    assessed,
    bias_verdicts,
    group_intervals,
    group_rates,
    summarise_verdicts,
)
from orchestration.lib.project_config import ProjectConfig, load_config

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


# built from the project file's declared models (never from the warehouse: definitions load without it)
_DECLARED = list(load_config().models)
BIAS_CHECKS = per_model_checks("bias", _DECLARED)


def bias_check_specs(asset: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    specs = []
    for name, model_id in BIAS_CHECKS.items():
        who = model_id if model_id is not None else "the models found in the data but not declared in the project file"
        description = f"Fairness verdicts for {who} over the trailing bias window (WARN on daily reporting)."
        specs.append(dg.AssetCheckSpec(name, asset=asset, partitions_def=daily_partitions, description=description))
    return specs


def _passed_text(verdicts: pd.DataFrame, thresholds: dict, window: str) -> str:
    if not len(verdicts):
        return f"no fairness rows over {window}"
    if verdicts.apply(assessed, axis=1).all():
        return f"fair over {window}"
    return f"over {window}: " + summarise_verdicts(verdicts, thresholds).replace("\n", "; ")


def bias_check_results(rows: pd.DataFrame, last, config: ProjectConfig, asset: dg.AssetKey):
    """Each per-model fairness check's result over the trailing window ending on ``last``; ``rows``: the
    marts.bias_daily rows read by the run (covering at least that window). Rates and verdicts are per model,
    so they are computed once for every model and each check takes its models' rows."""
    thresholds = config.bias.model_dump()
    start = last - timedelta(days=int(thresholds["window_days"]) - 1)
    window = f"{start} .. {last}"
    if not config.attribute_columns:
        for name in BIAS_CHECKS:
            # nothing to judge is not a pass to be proud of: say why
            yield dg.AssetCheckResult(
                asset_key=asset,
                check_name=name,
                passed=True,
                severity=dg.AssetCheckSeverity.WARN,
                description=NOT_ASSESSED,
                metadata={"window": window},
            )
        return
    dates = pd.to_datetime(rows["date"])
    all_rates = group_rates(rows[(dates >= pd.Timestamp(start)) & (dates <= pd.Timestamp(last))])
    all_verdicts = bias_verdicts(all_rates, thresholds)
    for name, model_id in BIAS_CHECKS.items():
        rates = in_scope(all_rates, model_id, _DECLARED).reset_index(drop=True)
        verdicts = in_scope(all_verdicts, model_id, _DECLARED).reset_index(drop=True)
        passed = bool(verdicts["passed"].all()) if len(verdicts) else True
        yield dg.AssetCheckResult(
            asset_key=asset,
            check_name=name,
            passed=passed,
            severity=dg.AssetCheckSeverity.WARN,
            description=summarise_verdicts(verdicts, thresholds)
            if not passed
            else _passed_text(verdicts, thresholds, window),
            metadata={"window": window, **verdict_metadata(verdicts, rates)},
        )
