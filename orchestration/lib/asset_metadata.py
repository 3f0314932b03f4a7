"""What a person reads on an asset's page in the Dagster UI: Markdown previews and numbers to plot.

Pure helpers (no Dagster): the assets wrap the strings in MetadataValue.md and
pass the floats as they are; Dagster plots numeric metadata over partitions.
Keys are `<measure>/<model_id>[/<metric>]`, so each model gets its own plot.

A backfill is one run over many days. Dagster writes one materialisation event
per day of such a run, each carrying the run's metadata; the `*_by_day`
helpers below give each day its own values (`{day: {key: value}}`), which the
assets attach as partition-scoped metadata (orchestration/defs/partition_metadata.py),
so a backfilled range plots its history instead of its last day repeated.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date

import numpy as np
import pandas as pd

from orchestration.lib.money import money

PREVIEW_ROWS = 20


class Markdown(str):
    """Text the UI renders as Markdown (the Dagster wiring wraps it in MetadataValue.md)."""


def rows_by_day(frame: pd.DataFrame, column: str, days: Iterable[date]) -> dict[date, pd.DataFrame]:
    """The rows of each of ``days`` (a day without rows is left out)."""
    if frame is None or frame.empty:
        return {}
    on = pd.to_datetime(frame[column]).dt.date.to_numpy()
    out = {day: frame[on == day] for day in days}
    return {day: rows for day, rows in out.items() if len(rows)}


def by_day(
    frame: pd.DataFrame, column: str, days: Iterable[date], values: Callable[[pd.DataFrame], dict]
) -> dict[date, dict]:
    """``values`` of each day's rows: the metadata of that day's materialisation."""
    return {day: values(rows) for day, rows in rows_by_day(frame, column, days).items()}


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
    from orchestration.lib.attribution import arm_variants

    return ["" if v is None else f"/{v}" for v in arm_variants(latest)]


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
    from orchestration.lib.attribution import CI_SIGN_TEXT, ROI_LABEL, ci_sign, roi_text

    latest = latest_cumulative(impact)
    if latest.empty:
        return "none"
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
            "net value vs 0": [
                CI_SIGN_TEXT[ci_sign(lo, hi)] for lo, hi in zip(latest["net_value_ci_low"], latest["net_value_ci_high"])
            ],
            "decision-grade": ["yes" if bool(g) else "NO" for g in latest["decision_grade"]]
            if "decision_grade" in latest
            else "n/a",
        }
    )
    return markdown_table(frame, max_rows=max_rows)


# Per day of the run and model: the worst feature drift of that day, the label-based
# metrics of the newest day up to it (within $horizon days) with enough labels
# (labels arrive late, so a young day's precision would be noise), and that day's breaches.
MODEL_HEALTH_BY_DAY_SQL = """
WITH grid AS (
    SELECT DISTINCT date, model_id FROM marts.model_health_daily WHERE date BETWEEN $first AND $last
), drift AS (
    SELECT date, model_id, max(psi) AS psi_max FROM marts.feature_drift_daily
    WHERE date BETWEEN $first AND $last GROUP BY ALL
), mature AS (
    SELECT g.date, g.model_id, h.date AS labelled_day, h.expected_calibration_error, h.precision
    FROM grid g
    JOIN marts.model_health_daily h
      ON h.model_id = g.model_id AND h.labelled >= $min_labelled
     AND h.date BETWEEN g.date - to_days(CAST($horizon AS INTEGER)) AND g.date
    QUALIFY row_number() OVER (PARTITION BY g.date, g.model_id ORDER BY h.date DESC, h.predictions DESC) = 1
), breaches AS (
    SELECT date, model_id, count(*) AS breaches FROM marts.alerts WHERE date BETWEEN $first AND $last GROUP BY ALL
)
SELECT g.date, g.model_id, d.psi_max, l.labelled_day, l.expected_calibration_error, l.precision,
       coalesce(b.breaches, 0) AS breaches
FROM grid g
LEFT JOIN drift d USING (date, model_id)
LEFT JOIN mature l USING (date, model_id)
LEFT JOIN breaches b USING (date, model_id)
ORDER BY g.date, g.model_id
"""


def model_health_metadata(summary: pd.DataFrame) -> dict[str, float]:
    """One day's rows of MODEL_HEALTH_BY_DAY_SQL -> `psi_max/<model>`, `ece/<model>`, `precision/<model>`
    (unitless, to the 4 decimals the previews show), `breaches/<model>` (count)."""
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


# --- each day's own metadata (a backfill's partitions) ----------------------------------


def experiment_results_by_day(results: pd.DataFrame, days: Iterable[date]) -> dict[date, dict]:
    """Per as-of day: the decision estimates in percent, the preview, the untrusted rows of that day and those of
    them whose pre-period covariate was imbalanced (CUPED not used)."""
    from orchestration.lib.attribution import covariate_imbalanced

    return by_day(
        results,
        "as_of_date",
        days,
        lambda rows: {
            "untrusted_rows": int((~rows["trustworthy"].astype(bool)).sum()),
            "covariate_imbalanced_rows": int(covariate_imbalanced(rows).sum()),
            "latest": Markdown(results_preview(rows)),
            **relative_lift_metadata(rows),
        },
    )


def model_impact_by_day(impact: pd.DataFrame, currency: str, days: Iterable[date]) -> dict[date, dict]:
    """Per as-of day: net value and ROI to date, and the preview."""
    return by_day(
        impact,
        "as_of_date",
        days,
        lambda rows: {"latest": Markdown(impact_preview(rows, currency)), **net_value_metadata(rows, currency)},
    )


def model_health_by_day(summary: pd.DataFrame, days: Iterable[date]) -> dict[date, dict]:
    """Per day (rows of MODEL_HEALTH_BY_DAY_SQL): the plotted health numbers and their table."""
    return by_day(
        summary,
        "date",
        days,
        lambda rows: {
            "model_health": Markdown(markdown_table(rows.drop(columns="date"))),
            **model_health_metadata(rows),
        },
    )


def breaches_by_day(breaches: pd.DataFrame, days: Iterable[date]) -> dict[date, dict]:
    """Per day: how many alert rules were breached on it (0 on a quiet day)."""
    days = list(days)
    return {day: {"alerts": 0} for day in days} | by_day(breaches, "date", days, lambda rows: {"alerts": len(rows)})


def verdicts_by_day(verdicts: pd.DataFrame, days: Iterable[date], columns: list[str]) -> dict[date, dict]:
    """Per day: the fairness verdicts of its trailing window, how many failed and which."""

    def values(rows: pd.DataFrame) -> dict:
        failing = rows[~rows["passed"].astype(bool)]
        return {
            "rows": len(rows),
            "failing_verdicts": len(failing),
            "failing": Markdown(markdown_table(failing, columns)),
        }

    return by_day(verdicts, "date", days, values)


def count_by_day(frame: pd.DataFrame, column: str, days: Iterable[date], key: str = "rows") -> dict[date, dict]:
    """Per day: its row count under ``key``."""
    return by_day(frame, column, days, lambda rows: {key: len(rows)})


OKR_PREVIEW_COLUMNS = [
    "key_result",
    "metric",
    "baseline",
    "target",
    "current_value",
    "progress",
    "expected_progress",
    "status",
]


def okr_progress_by_day(progress: pd.DataFrame, days: Iterable[date]) -> dict[date, dict]:
    """Per day: key results on track or achieved, behind or missed, by status, and the table."""

    def values(rows: pd.DataFrame) -> dict:
        statuses = rows["status"].value_counts().to_dict()
        return {
            "on_track_or_achieved": int(rows["status"].isin(["on_track", "achieved"]).sum()),
            "behind_or_missed": int(rows["status"].isin(["behind", "missed"]).sum()),
            "by_status": {str(k): int(v) for k, v in statuses.items()},
            "latest": Markdown(markdown_table(rows, OKR_PREVIEW_COLUMNS)),
        }

    return by_day(progress, "date", days, values)


SCORECARD_PREVIEW_COLUMNS = [
    "experiment_id",
    "metric",
    "attributable",
    "units_per_day",
    "mde_relative",
    "key_result",
    "days_needed",
    "mde_relative_at_deadline",
    "detectable_by_deadline",
]


def scorecard_by_day(scorecard: pd.DataFrame, days: Iterable[date]) -> dict[date, dict]:
    """Per day: the scorecard's warnings, the metrics experiments cannot attribute, and the table."""

    def values(rows: pd.DataFrame) -> dict:
        warnings = rows["warning"].dropna().tolist()
        return {
            "warnings_of_day": len(warnings),
            "not_attributable": int((~rows["attributable"].astype(bool)).sum()),
            "warnings": Markdown("\n".join(f"- {w}" for w in warnings) or "none"),
            "latest": Markdown(markdown_table(rows, SCORECARD_PREVIEW_COLUMNS)),
        }

    return by_day(scorecard, "date", days, values)


def requests_by_day(requests: pd.DataFrame, days: Iterable[date]) -> dict[date, dict]:
    """Per day: retraining requests raised for it, and how many still wait for a snapshot."""
    return by_day(
        requests,
        "date",
        days,
        lambda rows: {"requests": len(rows), "requested": int((rows["status"] == "requested").sum())},
    )


def row_counts_by_day_query(dbt_node: Mapping, last) -> tuple[str, list] | None:
    """SQL and parameters giving a partitioned dbt table's rows per day up to ``last`` (None: not partitioned)."""
    column = partition_column(dbt_node)
    if column is None:
        return None
    table = f'"{dbt_node["schema"]}"."{dbt_node["alias"]}"'
    day = f'CAST("{column}" AS DATE)'
    return f"SELECT {day} AS day, count(*) AS n FROM {table} WHERE {day} <= ? GROUP BY ALL", [last]


def row_counts_by_day(counts: Iterable[tuple[date, int]], days: Iterable[date]) -> dict[date, dict]:
    """Rows of row_counts_by_day_query -> per day: `dagster/row_count` (the table's rows up to and including
    that day: the table as that day's run left it) and `rows_of_day` (the day's own rows)."""
    per_day: dict[date, int] = {}
    for d, n in counts:
        if d is not None:
            per_day[pd.Timestamp(d).date()] = per_day.get(pd.Timestamp(d).date(), 0) + int(n)
    ordered, out, total, i = sorted(per_day.items()), {}, 0, 0
    for day in sorted(days):
        while i < len(ordered) and ordered[i][0] <= day:
            total, i = total + ordered[i][1], i + 1
        out[day] = {"dagster/row_count": total, "rows_of_day": per_day.get(day, 0)}
    return out
