"""Each day of a ranged run (a single-run backfill) gets its own metadata in the UI.

Dagster writes one materialisation event per partition of a ranged run's output,
each with the output's metadata, merged with what `context.add_asset_metadata(...,
partition_key=day)` recorded for that day (the day's values win). So an asset
returns its run-level facts (rows written, window) in its MaterializeResult and
hands each day's own values (lib/asset_metadata.py `*_by_day`) to
`add_daily_metadata`: still one event per day, none disagreeing with another.
"""

from collections.abc import Mapping
from datetime import date

import dagster as dg

from orchestration.lib.asset_metadata import Markdown


def _value(value):
    if isinstance(value, Markdown):
        return dg.MetadataValue.md(str(value))
    if isinstance(value, Mapping):
        return dg.MetadataValue.json(dict(value))
    return value


def add_daily_metadata(
    context: dg.AssetExecutionContext, per_day: Mapping[date, Mapping], asset_key: dg.AssetKey | None = None
) -> None:
    """Attach each day's values to that day's materialisation; days outside the run's partitions are ignored
    (a run also recomputes lookback days it does not materialise)."""
    targeted = set(context.partition_keys)
    for day, values in per_day.items():
        key = day.isoformat()
        if key in targeted and values:
            context.add_asset_metadata(
                {k: _value(v) for k, v in values.items()}, asset_key=asset_key, partition_key=key
            )
