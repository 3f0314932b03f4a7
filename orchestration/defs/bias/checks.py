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
    fully_assessed,
    group_intervals,
    summarise_verdicts,
    verdicts_with_lists,
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
    said = summarise_verdicts(verdicts, thresholds)
    # disparate impact alone judged is not 'fair', nor is a gap beyond a limit within noise (inconclusive)
    if verdicts.apply(fully_assessed, axis=1).all() and said == "all fairness verdicts pass":
        return f"fair over {window}"
    return f"over {window}: " + said.replace("\n", "; ")


def judged_window_ends(rows: pd.DataFrame, last) -> dict:
    """Per model of ``rows`` (marts.bias_daily): the day its checked window ends, ``last`` or, for a model whose
    rows stop before it (a model that stopped), its last day with rows: a backfill ending weeks after a model
    stopped judged an empty window and passed, while every window with its data failed."""
    last = pd.Timestamp(last)
    ends = pd.to_datetime(rows["date"]).groupby(rows["model_id"]).max()
    return {model: min(day, last) for model, day in ends.items()}


def bias_check_results(
    rates_by_day: pd.DataFrame, verdicts_by_day: pd.DataFrame, ends: dict, last, config: ProjectConfig, asset
):
    """Each per-model fairness check's result over its model's trailing window ending on ``ends[model]`` (by
    default ``last``): the rates and verdicts of that day among those the run computed (bias.windows_by_day),
    taken, not computed again."""
    thresholds = config.bias.model_dump()
    width = timedelta(days=int(thresholds["window_days"]) - 1)
    window = f"{last - width} .. {last}"
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

    def on_its_end(by_day: pd.DataFrame) -> pd.DataFrame:
        ends_of_rows = by_day["model_id"].map(ends).fillna(pd.Timestamp(last))
        return by_day[pd.to_datetime(by_day["date"]) == ends_of_rows]

    # the days' verdicts as stored (their group lists as text): lists again, as the sentences name groups
    all_rates, all_verdicts = on_its_end(rates_by_day), verdicts_with_lists(on_its_end(verdicts_by_day))
    if "passed" in all_verdicts:  # object when the days' frames were concatenated
        all_verdicts = all_verdicts.astype({"passed": bool})
    for name, model_id in BIAS_CHECKS.items():
        rates = in_scope(all_rates, model_id, _DECLARED).reset_index(drop=True)
        verdicts = in_scope(all_verdicts, model_id, _DECLARED).reset_index(drop=True)
        passed = bool(verdicts["passed"].all()) if len(verdicts) else True
        stopped = sorted({str(ends[m].date()) for m in verdicts["model_id"] if ends[m] < pd.Timestamp(last)})
        where = f"its last day with rows, {', '.join(stopped)}: " if stopped else ""
        checked = window if not stopped else f"the window ending on {', '.join(stopped)}"
        yield dg.AssetCheckResult(
            asset_key=asset,
            check_name=name,
            passed=passed,
            severity=dg.AssetCheckSeverity.WARN,
            description=where
            + (summarise_verdicts(verdicts, thresholds) if not passed else _passed_text(verdicts, thresholds, checked)),
            metadata={"window": window if not stopped else checked, **verdict_metadata(verdicts, rates)},
        )
