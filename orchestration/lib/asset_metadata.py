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


def markdown_table(
    frame: pd.DataFrame, columns: list[str] | None = None, max_rows: int = PREVIEW_ROWS, digits: int = 4
) -> str:
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


def decision_estimates(results: pd.DataFrame) -> pd.DataFrame:
    """The lift every surface shows (summary, report, UI): CUPED's where the row's `estimate` is 'cuped',
    else Welch's; columns lift, ci_low, ci_high (relative)."""
    cuped = (results["estimate"] == "cuped").to_numpy() if "estimate" in results else np.zeros(len(results), bool)

    def pick(column: str) -> np.ndarray:
        welch = results[column].to_numpy(dtype=float)
        return np.where(cuped, results[f"cuped_{column}"].to_numpy(dtype=float), welch) if cuped.any() else welch

    return pd.DataFrame(
        {"lift": pick("relative_lift"), "ci_low": pick("relative_ci_low"), "ci_high": pick("relative_ci_high")},
        index=results.index,
    )


def _pct(x, digits: int = 1) -> str:
    return "n/a" if x is None or pd.isna(x) else f"{x:+,.{digits}%}"


def _rounded(x, digits: int) -> float | None:
    x = number(x)
    return None if x is None else round(float(x), digits)


def _arm_suffixes(latest: pd.DataFrame) -> list[str]:
    if "experiment_id" not in latest or "treatment_variant" not in latest:
        return [""] * len(latest)
    arms = latest.groupby("experiment_id")["treatment_variant"].nunique()
    return [f"/{v}" if arms[e] > 1 else "" for e, v in zip(latest["experiment_id"], latest["treatment_variant"])]


def relative_lift_metadata(results: pd.DataFrame) -> dict[str, float]:
    """`relative_lift_pct/<model_id>/<metric>` (plus `/<treatment arm>` when an experiment has several arms):
    the decision estimate in percent, to the 0.1 the summary prints (+8.0% -> 8.0)."""
    latest = latest_cumulative(results)
    if latest.empty:
        return {}
    lifts = decision_estimates(latest)["lift"]
    values = {
        f"relative_lift_pct/{r.model_id}/{r.metric}{suffix}": _rounded(100 * lift, 1)
        for r, suffix, lift in zip(latest.itertuples(index=False), _arm_suffixes(latest), lifts)
    }
    return numeric_metadata(values)


def net_value_metadata(impact: pd.DataFrame, currency: str) -> dict[str, float]:
    """`net_value_<currency>/<model_id>` (whole units) and `roi_pct/<model_id>` (net value / cost, whole percent)."""
    values = {}
    for r in latest_cumulative(impact).itertuples(index=False):
        values[f"net_value_{currency}/{r.model_id}"] = _rounded(r.net_value, 0)
        values[f"roi_pct/{r.model_id}"] = _rounded(100 * r.roi, 0) if number(r.roi) is not None else None
    return numeric_metadata(values)


def results_preview(results: pd.DataFrame, max_rows: int = PREVIEW_ROWS) -> str:
    """Markdown of the newest cumulative rows as the summary words them: decision estimate with its CI,
    Holm/BH-adjusted p, significance, decision grade, trust."""
    from orchestration.lib.attribution import correction_name, significance_text

    latest = latest_cumulative(results)
    if latest.empty:
        return "none"
    est = decision_estimates(latest)
    correction = correction_name(latest["multiple_testing"].iloc[0]) if "multiple_testing" in latest else "adjusted"
    yes_no = lambda flag: "n/a" if flag is None or pd.isna(flag) else ("yes" if bool(flag) else "NO")  # noqa: E731
    frame = pd.DataFrame(
        {
            "model": latest["model_id"].to_numpy(),
            "metric": [f"{m}{s}" for m, s in zip(latest["metric"], _arm_suffixes(latest))],
            "relative lift [95% CI]": [
                f"{_pct(v)} [{_pct(lo)}, {_pct(hi)}]" for v, lo, hi in zip(est["lift"], est["ci_low"], est["ci_high"])
            ],
            "estimate": latest["estimate"].to_numpy() if "estimate" in latest else "welch",
            f"p ({correction})": [
                ("n/a" if pd.isna(p) else "< 0.0001" if p < 1e-4 else f"{p:.4f}")
                for p in latest.get("p_value_adjusted", pd.Series(np.nan, index=latest.index))
            ],
            f"significant ({correction})": latest.get("significant", pd.Series(None, index=latest.index))
            .map(significance_text)
            .to_numpy(),
            "decision-grade": latest.get("decision_grade", pd.Series(None, index=latest.index)).map(yes_no).to_numpy(),
            "trustworthy": latest["trustworthy"].map(yes_no).to_numpy() if "trustworthy" in latest else "n/a",
        }
    )
    return markdown_table(frame, max_rows=max_rows)


def impact_preview(impact: pd.DataFrame, currency: str, max_rows: int = PREVIEW_ROWS) -> str:
    """Markdown of the newest cumulative value rows: money in ``currency`` with 95% CIs, ROI = net value / cost."""
    from orchestration.lib.attribution import ROI_LABEL, roi_text

    latest = latest_cumulative(impact)
    if latest.empty:
        return "none"
    money = lambda x: "n/a" if x is None or pd.isna(x) else f"{x:,.0f}"  # noqa: E731
    frame = pd.DataFrame(
        {
            "model": latest["model_id"].to_numpy(),
            "treated users": latest["treated_units"].to_numpy(),
            f"net value ({currency}) [95% CI]": [
                f"{money(v)} [{money(lo)}, {money(hi)}]"
                for v, lo, hi in zip(latest["net_value"], latest["net_value_ci_low"], latest["net_value_ci_high"])
            ],
            f"model cost ({currency})": latest["model_cost"].map(money).to_numpy(),
            ROI_LABEL: [roi_text(*v) for v in zip(latest["roi"], latest["roi_ci_low"], latest["roi_ci_high"])],
            "decision-grade": ["yes" if bool(g) else "NO" for g in latest["decision_grade"]]
            if "decision_grade" in latest
            else "n/a",
        }
    )
    return markdown_table(frame, max_rows=max_rows)


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
    """Rows of MODEL_HEALTH_SUMMARY_SQL -> `psi_max/<model>`, `ece/<model>`, `precision/<model>` (unitless, to the
    4 decimals the previews show), `breaches/<model>` (count)."""
    values = {}
    for r in summary.itertuples(index=False):
        values[f"psi_max/{r.model_id}"] = _rounded(r.psi_max, 4)
        values[f"ece/{r.model_id}"] = _rounded(r.expected_calibration_error, 4)
        values[f"precision/{r.model_id}"] = _rounded(r.precision, 4)
        values[f"breaches/{r.model_id}"] = r.breaches
    return numeric_metadata(values)


_PARTITION_HOOK = re.compile(r"(?:delete_partition_range|delete_label_refresh)\(\s*['\"](\w+)['\"]")


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
