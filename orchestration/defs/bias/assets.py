"""marts.bias_group_rates and marts.bias_verdicts: each day's trailing-window fairness, stored (logic in lib/bias.py),
with the per-model fairness checks of the run's last day (bias/checks.py)."""

from datetime import timedelta

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from orchestration.defs.bias.checks import BIAS_KEY, bias_check_results, bias_check_specs, judged_window_ends
from orchestration.defs.freshness import PUBLISHED_FRESHNESS
from orchestration.defs.partition_metadata import add_daily_metadata
from orchestration.defs.partitions import (
    daily_partitions,
    days_between,
    lookback_start,
    run_date_range,
    run_days,
    single_run,
)
from orchestration.lib.asset_metadata import count_by_day, verdicts_by_day
from orchestration.lib.label_refresh import refresh_start as label_refresh_start
from orchestration.lib.bias import (
    GROUP_RATES_SCHEMA,
    HEADLINE_VERDICT_COLUMNS,
    NOT_ASSESSED,
    VERDICTS_SCHEMA,
    windows_by_day,
    clip_window_starts,
)
from orchestration.lib.project_config import load_config
from orchestration.lib.warehouse import ensure_table, replace_date_range

GROUP_RATES_KEY = dg.AssetKey(["marts", "bias_group_rates"])
VERDICTS_KEY = dg.AssetKey(["marts", "bias_verdicts"])
SPEC = dict(
    deps=[BIAS_KEY],
    group_name="bias",
    kinds={"python", "duckdb"},
    owners=["team:ml-platform"],
    freshness_policy=PUBLISHED_FRESHNESS,
)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            GROUP_RATES_KEY,
            **SPEC,
            description=(
                "Per day (date = last day of the trailing bias window, window_start = first, never before the model's "
                "first prediction day), model, attribute and "
                "group: the window's summed marts.bias_daily counts with rates, Wilson 95% intervals "
                "(*_ci_low/high), calibration and representation re-derived from the totals; excluded = fewer than "
                "min_labelled labelled rows (shown, not judged). Each run also recomputes the days of its label "
                "lookback."
            ),
        ),
        dg.AssetSpec(
            VERDICTS_KEY,
            **SPEC,
            description=(
                "Per day and model and attribute: the trailing-window fairness verdicts (disparate impact, equal "
                "opportunity, equalised odds, calibration gap) with pass flags, the groups they name, the model's "
                "positive_decision (favourable, or harmful: judged on not being flagged and on false-positive rates) and "
                "the limits of the project file's bias block they were judged against. No protected_attributes: no rows."
            ),
        ),
    ],
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    check_specs=bias_check_specs(VERDICTS_KEY),
)
def bias_window_assets(context: dg.AssetExecutionContext, duckdb: DuckDBResource):
    config = load_config()
    thresholds = config.bias.model_dump()
    first, last = run_date_range(context)
    with duckdb.get_connection() as conn:
        # the run recomputed marts.bias_daily from its oldest late-labelled day (lib/label_refresh.py), so the
        # windows from there on are recomputed too: each day is judged on the labels its bias_daily rows hold
        # (a backfill and daily runs agree)
        start = lookback_start(conn, first, (first - label_refresh_start(conn, first, last)).days, "marts.bias_daily")
        rows = conn.execute(
            "SELECT * FROM marts.bias_daily WHERE date BETWEEN ? AND ?",
            [start - timedelta(days=int(thresholds["window_days"]) - 1), last],
        ).df()
        rates, verdicts = windows_by_day(rows, days_between(start, last), thresholds)
        first_days = dict(
            conn.execute(
                "SELECT model_id, min(first_date) FROM intermediate.int_model_versions GROUP BY ALL"
            ).fetchall()
        )
        rates, verdicts = clip_window_starts(rates, first_days), clip_window_starts(verdicts, first_days)
        _add_new_columns(conn, "marts.bias_group_rates", GROUP_RATES_SCHEMA)
        _add_new_columns(conn, "marts.bias_verdicts", VERDICTS_SCHEMA)
        replace_date_range(conn, "marts.bias_group_rates", GROUP_RATES_SCHEMA, rates, "date", start, last)
        replace_date_range(conn, "marts.bias_verdicts", VERDICTS_SCHEMA, verdicts, "date", start, last)
        ends = judged_window_ends(rows[pd.to_datetime(rows["date"]) >= pd.Timestamp(start)], last)
        # a model whose rows stopped before this run's days (no late labels today) is judged on the window of its
        # last day as stored: a trial's stopped model failed on every day labels came and passed, on an empty
        # window, on every other day
        earlier = _stored_last_windows(conn, start, set(ends))
        ends |= earlier["ends"]
    # each day of the run: its own rows, failing verdicts and which (the run also rewrote its lookback days)
    days = run_days(context)
    add_daily_metadata(context, count_by_day(rates, "date", days), GROUP_RATES_KEY)
    columns = [*HEADLINE_VERDICT_COLUMNS, "flagged_groups_equal_opportunity"]
    add_daily_metadata(context, verdicts_by_day(verdicts, days, columns), VERDICTS_KEY)
    window = f"{start} .. {last}"
    yield dg.MaterializeResult(asset_key=GROUP_RATES_KEY, metadata={"rows_written": len(rates), "dates": window})
    assessed = {} if config.attribute_columns else {"note": NOT_ASSESSED}
    yield dg.MaterializeResult(
        asset_key=VERDICTS_KEY, metadata={**assessed, "rows_written": len(verdicts), "dates": window}
    )
    judged_rates = pd.concat([rates, earlier["rates"]], ignore_index=True) if len(earlier["rates"]) else rates
    judged = pd.concat([verdicts, earlier["verdicts"]], ignore_index=True) if len(earlier["verdicts"]) else verdicts
    yield from bias_check_results(judged_rates, judged, ends, last, config, VERDICTS_KEY)


def _stored_last_windows(conn, start, judged: set) -> dict:
    """For each model with marts.bias_daily rows only before ``start`` (not among ``judged``): its last day with
    rows ('ends': model -> Timestamp) and the group rates and verdicts stored for the window ending on it."""
    last_days = {
        model: pd.Timestamp(day)
        for model, day in conn.execute(
            "SELECT model_id, max(date) FROM marts.bias_daily WHERE date < ? GROUP BY 1", [start]
        ).fetchall()
        if model not in judged
    }
    pairs = [(model, day.date()) for model, day in last_days.items()]
    frames = {}
    for name, table in (("rates", "marts.bias_group_rates"), ("verdicts", "marts.bias_verdicts")):
        frames[name] = (
            conn.execute(
                f"SELECT t.* FROM {table} t JOIN (SELECT unnest(?::VARCHAR[]) AS model_id, unnest(?::DATE[]) AS date) e "
                "USING (model_id, date)",
                [[m for m, _ in pairs], [d for _, d in pairs]],
            ).df()
            if pairs
            else pd.DataFrame()
        )
    return {"ends": last_days, **frames}


def _add_new_columns(conn, table: str, schema: dict[str, str]) -> None:
    """A table stored before a column existed (positive_decision, favourable_rate ...) gains it."""
    ensure_table(conn, table, schema)
    for column, kind in schema.items():
        conn.execute(f'ALTER TABLE {table} ADD COLUMN IF NOT EXISTS "{column}" {kind}')
