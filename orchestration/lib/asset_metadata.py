"""What a person reads on an asset's page in the Dagster UI: Markdown previews and numbers to plot.

Pure helpers (no Dagster): the assets wrap the strings in MetadataValue.md and
pass the floats as they are; Dagster plots numeric metadata over partitions.
Keys are `<measure>/<model_id>[/<metric>]`, so each model gets its own plot.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

PREVIEW_ROWS = 20


def markdown_table(frame: pd.DataFrame, columns: list[str] | None = None, max_rows: int = PREVIEW_ROWS,
                   digits: int = 4) -> str:
    """The first ``max_rows`` rows as a Markdown table (floats rounded), or 'none'."""
    if frame is None or frame.empty:
        return "none"
    shown = frame[columns] if columns else frame
    head = shown.head(max_rows).copy()
    numeric = head.select_dtypes(include="number").columns  # round() warns on date columns
    head[numeric] = head[numeric].round(digits)
    for column in head.select_dtypes(include="datetime").columns:  # days, not midnight timestamps
        if (head[column].dropna() == head[column].dropna().dt.normalize()).all():
            head[column] = head[column].dt.strftime("%Y-%m-%d")
    text = head.to_markdown(index=False)
    return text + (f"\n\n… {len(shown) - max_rows} more rows" if len(shown) > max_rows else "")


def number(value) -> float | int | None:
    """A finite number (counts stay int), or None (NaN / inf / missing cannot be plotted)."""
    if value is None or pd.isna(value):
        return None
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return int(value)
    value = float(value)
    return value if math.isfinite(value) else None


def numeric_metadata(values: Mapping[str, object]) -> dict[str, float | int]:
    """Keep only the plottable values."""
    return {k: v for k, v in ((k, number(v)) for k, v in values.items()) if v is not None}


def latest_cumulative(frame: pd.DataFrame, date_column: str = "as_of_date") -> pd.DataFrame:
    """The 'cumulative' rows of the newest as-of date: what the run's last day knows."""
    if frame.empty:
        return frame
    cumulative = frame[frame["analysis_window"] == "cumulative"]
    if cumulative.empty:
        return cumulative
    return cumulative[cumulative[date_column] == cumulative[date_column].max()]


def relative_lift_metadata(results: pd.DataFrame) -> dict[str, float]:
    """`relative_lift/<model_id>/<metric>` (plus `/<treatment arm>` when an experiment has several arms)."""
    latest = latest_cumulative(results)
    if latest.empty:
        return {}
    arms = latest.groupby("experiment_id")["treatment_variant"].nunique()
    values = {}
    for r in latest.itertuples(index=False):
        suffix = f"/{r.treatment_variant}" if arms[r.experiment_id] > 1 else ""
        values[f"relative_lift/{r.model_id}/{r.metric}{suffix}"] = r.relative_lift
    return numeric_metadata(values)


def net_value_metadata(impact: pd.DataFrame) -> dict[str, float]:
    """`net_value/<model_id>` and `roi/<model_id>` of the newest cumulative rows."""
    values = {}
    for r in latest_cumulative(impact).itertuples(index=False):
        values[f"net_value/{r.model_id}"] = r.net_value
        values[f"roi/{r.model_id}"] = r.roi
    return numeric_metadata(values)


# Per model: the worst feature drift of the run's last day, and the label-based
# metrics of the newest day with enough labels (labels arrive late, so the last
# day's precision would be noise), plus the breaches in the evaluation window.
MODEL_HEALTH_SUMMARY_SQL = """
WITH models AS (
    SELECT DISTINCT model_id FROM marts.model_health_daily WHERE date BETWEEN $first AND $last
), drift AS (
    SELECT model_id, max(psi) AS psi_max FROM marts.feature_drift_daily WHERE date = $last GROUP BY model_id
), mature AS (
    SELECT model_id, date AS labelled_day, expected_calibration_error, precision
    FROM marts.model_health_daily
    WHERE date BETWEEN $first AND $last AND labelled >= $min_labelled
    QUALIFY row_number() OVER (PARTITION BY model_id ORDER BY date DESC, predictions DESC) = 1
), breaches AS (
    SELECT model_id, count(*) AS breaches FROM marts.alerts WHERE date BETWEEN $first AND $last GROUP BY model_id
)
SELECT m.model_id, d.psi_max, l.labelled_day, l.expected_calibration_error, l.precision,
       coalesce(b.breaches, 0) AS breaches
FROM models m
LEFT JOIN drift d USING (model_id)
LEFT JOIN mature l USING (model_id)
LEFT JOIN breaches b USING (model_id)
ORDER BY m.model_id
"""


def model_health_metadata(summary: pd.DataFrame) -> dict[str, float]:
    """Rows of MODEL_HEALTH_SUMMARY_SQL -> `psi_max/<model>`, `ece/<model>`, `precision/<model>`, `breaches/<model>`."""
    values = {}
    for r in summary.itertuples(index=False):
        values[f"psi_max/{r.model_id}"] = r.psi_max
        values[f"ece/{r.model_id}"] = r.expected_calibration_error
        values[f"precision/{r.model_id}"] = r.precision
        values[f"breaches/{r.model_id}"] = r.breaches
    return numeric_metadata(values)


_PARTITION_HOOK = re.compile(r"delete_partition_range\(\s*['\"](\w+)['\"]")


def partition_column(dbt_node: Mapping) -> str | None:
    """The day column a dbt mart is partitioned by, read from its `delete_partition_range('<column>')` pre-hook."""
    for hook in dbt_node.get("config", {}).get("pre-hook", []) or []:
        found = _PARTITION_HOOK.search(hook.get("sql", "") if isinstance(hook, Mapping) else str(hook))
        if found:
            return found.group(1)
    return None


def row_count_query(dbt_node: Mapping, first, last) -> tuple[str, list]:
    """SQL and parameters giving a dbt table's row count and the count of the days first..last (NULL if not partitioned)."""
    table = f'"{dbt_node["schema"]}"."{dbt_node["alias"]}"'
    column = partition_column(dbt_node)
    if column is None:
        return f"SELECT count(*), NULL FROM {table}", []
    return f'SELECT count(*), count_if("{column}" BETWEEN ? AND ?) FROM {table}', [first, last]
