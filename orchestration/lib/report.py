"""The daily HTML report: value, lift, health, alerts, fairness and data quality as of one day.

``build_report(conn, as_of)`` reads the few rows it needs (every table filtered
to days <= as_of) and returns one self-contained HTML page; ``write_report``
writes it to ``<out_dir>/impact_ledger_<day>.html`` atomically. Works on the
warehouse or on the analysts' read-only snapshot: a table that is missing
(an older warehouse, or one the snapshot does not publish) becomes a note,
never an error. No Dagster here; plotly is imported only when building.

Every figure's data and a machine-readable summary (``report-summary``) are
embedded as JSON, so the numbers in the page can be checked without a browser.
"""

from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from orchestration.lib.alerts import AlertConfig, load_alert_config
from orchestration.lib.attribution import ROI_LABEL, ROI_NOTE, correction_name, roi_text, significance_text
from orchestration.lib.bias import (
    NOT_ASSESSED,
    VERDICT_RATES,
    bias_verdicts,
    group_intervals,
    group_rates,
    summarise_verdicts,
)
from orchestration.lib.project_config import load_config
from orchestration.lib.leading import describe, kpi_drop_leads
from orchestration.lib.report_html import Section, bullets, jsonable, note, page, paragraph, table
from orchestration.lib.settings import dbt_var

# Which day columns tell whether a day has data at all (table -> column).
DAY_COLUMNS = {
    "attribution.experiment_results": "as_of_date",
    "marts.model_health_daily": "date",
    "marts.kpi_daily": "date",
}
COLORS = ["#1f5fa8", "#d9822b", "#2e7d32", "#8e24aa", "#00838f", "#6d4c41", "#c2185b", "#546e7a"]
BAD, OK, EXCLUDED = "#c62828", "#1f5fa8", "#9aa5b1"
LAYOUT = dict(
    template="none",
    font=dict(family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size=12, color="#1f2933"),
    paper_bgcolor="white",
    plot_bgcolor="white",
    margin=dict(l=60, r=20, t=50, b=40),
    legend=dict(orientation="h", y=-0.12),
    hovermode="x unified",
)
AXES = dict(showgrid=True, gridcolor="#e4e7eb", zeroline=False, linecolor="#9aa5b1", showline=True)

# The estimate the attribution step reports as headline (CUPED where it applies).
HEADLINE_LIFT_SQL = """
SELECT model_id, experiment_id, metric, as_of_date, estimate, is_guardrail, guardrail_verdict,
       n_control, n_treatment, p_value_adjusted, trustworthy, untrusted_reason,
       CASE WHEN estimate = 'cuped' THEN cuped_relative_lift ELSE relative_lift END AS lift,
       CASE WHEN estimate = 'cuped' THEN cuped_relative_ci_low ELSE relative_ci_low END AS ci_low,
       CASE WHEN estimate = 'cuped' THEN cuped_relative_ci_high ELSE relative_ci_high END AS ci_high, {decision}
FROM attribution.experiment_results
WHERE analysis_window = 'cumulative' AND as_of_date <= ?
ORDER BY model_id, metric, as_of_date
"""
# Decision columns (issue 13); a table written before they existed shows them as unknown.
DECISION_COLUMNS = ("significant", "multiple_testing", "degenerate_reason", "decision_grade", "decision_grade_reason")
IMPACT_DECISION_COLUMNS = ("roi_ci_low", "roi_ci_high", "decision_grade", "decision_grade_reason")


class ReportDataError(ValueError):
    """The database has nothing to report for the requested day."""


@dataclass
class Report:
    as_of: date
    html: str
    summary: dict
    plots: list[str]


# ---------------------------------------------------------------- data access


def existing_tables(conn) -> set[str]:
    rows = conn.execute(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_catalog = current_database()"
    ).fetchall()
    return {f"{schema}.{name}" for schema, name in rows}


def _latest(conn, tables: set[str]) -> dict[str, date]:
    out = {}
    for t, column in DAY_COLUMNS.items():
        if t in tables and (day := conn.execute(f"SELECT max({column}) FROM {t}").fetchone()[0]) is not None:
            out[t] = pd.Timestamp(day).date()
    return out


def latest_report_date(conn) -> date | None:
    """The newest day any core table (attribution results, model health, KPIs) has rows for."""
    days = _latest(conn, existing_tables(conn)).values()
    return max(days) if days else None


def _require_data_on(conn, tables: set[str], as_of: date) -> None:
    for t, column in DAY_COLUMNS.items():
        if t in tables and conn.execute(f"SELECT count(*) FROM {t} WHERE {column} = ?", [as_of]).fetchone()[0]:
            return
    latest = _latest(conn, tables)
    hint = (
        f"; the latest day with data is {max(latest.values())}" if latest else "; the database has no report tables yet"
    )
    raise ReportDataError(
        f"nothing to report for {as_of}: none of {', '.join(DAY_COLUMNS)} has rows for that day{hint}"
    )


def _frame(conn, sql: str, params=None) -> pd.DataFrame:
    return conn.execute(sql, params or []).df()


def _latest_rows(conn, table: str, day_column: str, as_of: date, where: str = "TRUE") -> pd.DataFrame:
    """``table``'s rows of its newest day <= as_of (optional sections show their current state)."""
    return _frame(
        conn,
        f"SELECT * FROM {table} WHERE {where} AND {day_column} = "
        f"(SELECT max({day_column}) FROM {table} WHERE {where} AND {day_column} <= ?)",
        [as_of],
    )


# ------------------------------------------------------------------- formatting


def _missing(x) -> bool:
    return x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x))


def _rate(x) -> str:
    return "n/a" if _missing(x) else f"{x:.3f}"


def _pct(x) -> str:
    return "n/a" if _missing(x) else f"{x:+.1%}"


def _money(x) -> str:
    return "n/a" if _missing(x) else f"{x:,.0f}"


def _interval(value, low, high, fmt) -> str:
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


def _day(x) -> str | None:
    return None if _missing(x) or x is pd.NaT else pd.Timestamp(x).date().isoformat()


def _trust(flag, reason) -> str:
    return "yes" if bool(flag) else f"NO: {reason or 'reason not recorded'}"


def _grade(flag, reason) -> str:
    if _missing(flag):
        return "n/a"
    return "yes" if bool(flag) else f"NO: {reason or 'reason not recorded'}"


# --------------------------------------------------------------------- figures


def _values(series) -> list:
    return jsonable(list(series))


def _new_figure(rows: int = 1, cols: int = 1, titles=None, shared_x: bool = False, height: int | None = None):
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=titles,
        shared_xaxes=shared_x,
        vertical_spacing=min(0.12, 0.3 / rows) if rows > 1 else 0.1,
        horizontal_spacing=0.08,
    )
    fig.update_layout(**LAYOUT, height=height or max(320, 260 * rows))
    fig.update_xaxes(**AXES)
    fig.update_yaxes(**AXES)
    return fig


def _line(fig, x, y, name, color, row=1, col=1, dash=None, group=None, legend=True, mode="lines"):
    import plotly.graph_objects as go

    fig.add_trace(
        go.Scatter(
            x=_values(x),
            y=_values(y),
            name=name,
            mode=mode,
            legendgroup=group or name,
            showlegend=legend,
            line=dict(color=color, width=2, dash=dash),
        ),
        row=row,
        col=col,
    )


def _band(fig, x, low, high, name, color, row=1, col=1, group=None):
    """A shaded 95% CI: the upper edge, then the lower edge filled up to it."""
    import plotly.graph_objects as go

    fill = f"rgba({int(color[1:3], 16)}, {int(color[3:5], 16)}, {int(color[5:7], 16)}, 0.18)"
    x = _values(x)
    fig.add_trace(
        go.Scatter(
            x=x,
            y=_values(high),
            mode="lines",
            line=dict(width=0),
            name=f"{name} 95% CI high",
            legendgroup=group or name,
            showlegend=False,
            hoverinfo="skip",
        ),
        row=row,
        col=col,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=_values(low),
            mode="lines",
            line=dict(width=0),
            fill="tonexty",
            fillcolor=fill,
            name=f"{name} 95% CI",
            legendgroup=group or name,
            showlegend=False,
            hoverinfo="skip",
        ),
        row=row,
        col=col,
    )


def _markers(fig, x, y, name, row=1, col=1, legend=True):
    import plotly.graph_objects as go

    fig.add_trace(
        go.Scatter(
            x=_values(x),
            y=_values(y),
            name=name,
            mode="markers",
            legendgroup=name,
            showlegend=legend,
            marker=dict(color=BAD, symbol="x", size=9),
        ),
        row=row,
        col=col,
    )


def _threshold(fig, y, text, row=1, col=1):
    fig.add_hline(
        y=y,
        line=dict(color=BAD, dash="dash", width=1.5),
        annotation_text=text,
        annotation_position="top left",
        annotation_font_color=BAD,
        row=row,
        col=col,
    )


def _zero(fig, row=1, col=1):
    fig.add_hline(y=0, line=dict(color="#616e7c", dash="dot", width=1), row=row, col=col)


def _done(fig) -> dict:
    return fig.to_plotly_json()


# -------------------------------------------------------------------- sections


class ReportBuilder:
    """Reads the rows of one as-of day and turns them into sections and the summary."""

    def __init__(self, conn, as_of: date, config: AlertConfig):
        self.conn, self.as_of, self.config = conn, as_of, config
        self.tables = existing_tables(conn)
        self.summary: dict = {"as_of": as_of.isoformat(), "models": {}, "sections": {}}

    def has(self, table: str) -> bool:
        return table in self.tables

    def model(self, model_id: str) -> dict:
        return self.summary["models"].setdefault(str(model_id), {})

    def missing(self, section: Section, table: str, why: str = "") -> Section:
        section.add(note(f"{table} is not in this database{why}, so this section is empty."))
        self.summary["sections"][section.anchor] = "absent"
        return section

    # headline ------------------------------------------------------------------
    def lifts(self) -> pd.DataFrame:
        if not self.has("attribution.experiment_results"):
            return pd.DataFrame()
        have = set(_frame(self.conn, "SELECT * FROM attribution.experiment_results LIMIT 0").columns)
        decision = ", ".join(c if c in have else f"NULL AS {c}" for c in DECISION_COLUMNS)
        return _frame(self.conn, HEADLINE_LIFT_SQL.format(decision=decision), [self.as_of])

    def impact(self) -> pd.DataFrame:
        if not self.has("attribution.model_impact"):
            return pd.DataFrame()
        return _frame(
            self.conn,
            "SELECT * FROM attribution.model_impact WHERE analysis_window = 'cumulative' "
            "AND as_of_date <= ? ORDER BY model_id, as_of_date",
            [self.as_of],
        ).pipe(lambda f: f.assign(**{c: None for c in IMPACT_DECISION_COLUMNS if c not in f}))

    def headline(self, lifts: pd.DataFrame, impact: pd.DataFrame) -> Section:
        s = Section("Headline")
        currency = load_config().currency
        s.add(
            paragraph(
                f"Each model against its never-exposed holdout, cumulative since its experiment started, "
                f"as of {self.as_of}. Value = revenue-per-user lift x treated users, net of the model's cost, "
                f"in {currency}. {ROI_NOTE}"
            )
        )
        if impact.empty:
            s.add(note(f"No model value (attribution.model_impact) up to {self.as_of} yet."))
        else:
            latest = impact.groupby("model_id", sort=True).tail(1)
            for r in latest.itertuples():
                self.model(r.model_id)["net_value"] = jsonable(
                    {
                        "as_of_date": _day(r.as_of_date),
                        "experiment_id": r.experiment_id,
                        "value": r.net_value,
                        "ci_low": r.net_value_ci_low,
                        "ci_high": r.net_value_ci_high,
                        "incremental_value": r.incremental_value,
                        "incremental_value_ci_low": r.incremental_value_ci_low,
                        "incremental_value_ci_high": r.incremental_value_ci_high,
                        "model_cost": r.model_cost,
                        "treated_units": r.treated_units,
                        "roi": r.roi,
                        "roi_ci_low": r.roi_ci_low,
                        "roi_ci_high": r.roi_ci_high,
                        "currency": currency,
                        "decision_grade": r.decision_grade,
                        "trustworthy": r.trustworthy,
                        "untrusted_reason": r.untrusted_reason,
                    }
                )
            s.add(
                table(
                    pd.DataFrame(
                        {
                            "model": latest["model_id"],
                            "experiment": latest["experiment_id"],
                            "as of": latest["as_of_date"],
                            "treated users": latest["treated_units"],
                            f"incremental value ({currency}) [95% CI]": [
                                _interval(*v, _money)
                                for v in zip(
                                    latest["incremental_value"],
                                    latest["incremental_value_ci_low"],
                                    latest["incremental_value_ci_high"],
                                )
                            ],
                            f"model cost ({currency})": latest["model_cost"].map(_money),
                            f"net value ({currency}) [95% CI]": [
                                _interval(*v, _money)
                                for v in zip(
                                    latest["net_value"], latest["net_value_ci_low"], latest["net_value_ci_high"]
                                )
                            ],
                            ROI_LABEL: [
                                roi_text(*v) for v in zip(latest["roi"], latest["roi_ci_low"], latest["roi_ci_high"])
                            ],
                            "decision-grade": [
                                _grade(g, r) for g, r in zip(latest["decision_grade"], latest["decision_grade_reason"])
                            ],
                            "trustworthy": [
                                _trust(f, r) for f, r in zip(latest["trustworthy"], latest["untrusted_reason"])
                            ],
                        }
                    )
                )
            )
        if lifts.empty:
            s.add(note(f"No experiment results (attribution.experiment_results) up to {self.as_of} yet."))
            return s
        latest = lifts.groupby(["model_id", "metric"], sort=True).tail(1)
        for r in latest.itertuples():
            self.model(r.model_id).setdefault("lift", {})[r.metric] = jsonable(
                {
                    "as_of_date": _day(r.as_of_date),
                    "experiment_id": r.experiment_id,
                    "estimate": r.estimate,
                    "relative_lift": r.lift,
                    "ci_low": r.ci_low,
                    "ci_high": r.ci_high,
                    "p_value_adjusted": r.p_value_adjusted,
                    "n_control": r.n_control,
                    "n_treatment": r.n_treatment,
                    "is_guardrail": r.is_guardrail,
                    "guardrail_verdict": r.guardrail_verdict,
                    "trustworthy": r.trustworthy,
                    "untrusted_reason": r.untrusted_reason,
                    "significant": None if _missing(r.significant) else bool(r.significant),
                    "degenerate_reason": r.degenerate_reason,
                    "decision_grade": r.decision_grade,
                }
            )
        methods = latest["multiple_testing"].dropna()
        correction = correction_name(methods.iloc[0]) if len(methods) else "Holm"
        s.add("<h3>Relative lift by metric</h3>")
        s.add(
            paragraph(
                f"significant: the {correction}-adjusted p-value over the experiment's metrics is below "
                f"alpha. A 95% CI that excludes 0 on a row marked 'no' is not significant once the metrics "
                f"are tested together; 'not tested': too few events or no variance in an arm, so no p-value."
            )
        )
        s.add(
            table(
                pd.DataFrame(
                    {
                        "model": latest["model_id"],
                        "metric": latest["metric"] + latest["is_guardrail"].map({True: " (guardrail)", False: ""}),
                        "as of": latest["as_of_date"],
                        "units (holdout/treated)": latest["n_control"].astype(str)
                        + "/"
                        + latest["n_treatment"].astype(str),
                        "relative lift [95% CI]": [
                            _interval(*v, _pct) for v in zip(latest["lift"], latest["ci_low"], latest["ci_high"])
                        ],
                        "estimate": latest["estimate"],
                        f"p ({correction})": latest["p_value_adjusted"].map(
                            lambda p: "n/a" if _missing(p) else f"{p:.4f}"
                        ),
                        f"significant ({correction})": [
                            significance_text(v) if _missing(d) else f"not tested: {d}"
                            for v, d in zip(latest["significant"], latest["degenerate_reason"])
                        ],
                        "decision-grade": [
                            _grade(g, r) for g, r in zip(latest["decision_grade"], latest["decision_grade_reason"])
                        ],
                        "guardrail": latest["guardrail_verdict"],
                        "trustworthy": [
                            _trust(f, r) for f, r in zip(latest["trustworthy"], latest["untrusted_reason"])
                        ],
                    }
                )
            )
        )
        return s

    # lift over time ------------------------------------------------------------
    def lift_section(self, lifts: pd.DataFrame) -> Section:
        s = Section("Relative lift over time")
        if not self.has("attribution.experiment_results"):
            return self.missing(s, "attribution.experiment_results")
        s.add(
            paragraph(
                "Cumulative relative lift of treatment vs holdout with its 95% CI (shaded; CUPED-adjusted where "
                "the metric allows), one metric at a time: whether a lift is significant once all the "
                "experiment's metrics are tested together is the 'significant' column of the headline table."
            )
        )
        if lifts.empty:
            s.add(note(f"No experiment results up to {self.as_of} yet."))
            return s
        for model_id, rows in lifts.groupby("model_id", sort=True):
            metrics = sorted(rows["metric"].unique())
            cols = 2 if len(metrics) > 1 else 1
            titles = [
                m + (" (guardrail)" if rows.loc[rows["metric"] == m, "is_guardrail"].any() else "") for m in metrics
            ]
            fig = _new_figure(math.ceil(len(metrics) / cols), cols, titles)
            for i, metric in enumerate(metrics):
                m = rows[rows["metric"] == metric]
                row, col = i // cols + 1, i % cols + 1
                _band(fig, m["as_of_date"], m["ci_low"], m["ci_high"], "lift", COLORS[0], row, col)
                _line(
                    fig, m["as_of_date"], m["lift"], "relative lift (95% CI shaded)", COLORS[0], row, col, legend=i == 0
                )
                _zero(fig, row, col)
            fig.update_yaxes(tickformat=".0%")
            s.add(f"<h3>{html.escape(str(model_id))}</h3>")
            s.plot(f"lift-{model_id}", _done(fig), f"No lift estimates for {model_id} yet.")
        return s

    # value over time -----------------------------------------------------------
    def value_section(self, impact: pd.DataFrame) -> Section:
        s = Section("Incremental value net of cost")
        if not self.has("attribution.model_impact"):
            return self.missing(s, "attribution.model_impact")
        s.add(
            paragraph(
                f"Cumulative incremental value (lift x treated users) and net value after the model's cost, "
                f"each with its 95% CI, in {load_config().currency}."
            )
        )
        if impact.empty:
            s.add(note(f"No model value up to {self.as_of} yet."))
            return s
        models = sorted(impact["model_id"].unique())
        fig = _new_figure(len(models), 1, [f"{m}" for m in models], height=300 * len(models))
        for i, model_id in enumerate(models):
            m = impact[impact["model_id"] == model_id]
            first = i == 0
            _band(
                fig,
                m["as_of_date"],
                m["incremental_value_ci_low"],
                m["incremental_value_ci_high"],
                "incremental",
                COLORS[0],
                i + 1,
            )
            _line(fig, m["as_of_date"], m["incremental_value"], "incremental value", COLORS[0], i + 1, legend=first)
            _band(fig, m["as_of_date"], m["net_value_ci_low"], m["net_value_ci_high"], "net", COLORS[2], i + 1)
            _line(fig, m["as_of_date"], m["net_value"], "net value", COLORS[2], i + 1, legend=first)
            _line(fig, m["as_of_date"], m["model_cost"], "model cost", COLORS[1], i + 1, dash="dash", legend=first)
            _zero(fig, i + 1)
        s.plot("value", _done(fig), "No model value yet.")
        return s

    # model health ----------------------------------------------------------------
    def health_section(self, alerts: pd.DataFrame) -> Section:
        s = Section("Model health")
        if not self.has("marts.model_health_daily"):
            return self.missing(s, "marts.model_health_daily")
        health = _frame(
            self.conn,
            "SELECT date, model_id, model_version, labelled, precision, recall, "
            "expected_calibration_error FROM marts.model_health_daily WHERE date <= ? "
            "ORDER BY model_id, model_version, date",
            [self.as_of],
        )
        drift = pd.DataFrame(columns=["date", "model_id", "max_psi", "feature"])
        if self.has("marts.feature_drift_daily"):
            drift = _frame(
                self.conn,
                "SELECT date, model_id, max(psi) AS max_psi, arg_max(feature, psi) AS feature "
                "FROM marts.feature_drift_daily WHERE date <= ? AND psi IS NOT NULL "
                "GROUP BY ALL ORDER BY model_id, date",
                [self.as_of],
            )
        minimum = self.config.min_labelled
        s.add(
            paragraph(
                f"Precision and recall, expected calibration error and the largest PSI over the model's "
                f"features and score, with the alert thresholds of the project file (dashed; a retraining "
                f"floor only where a model sets min_precision / min_recall) "
                f"and the days an alert fired (x). Label-based metrics are shown for days with at least "
                f"{minimum} labelled predictions, like the alert rules; recent days fill in as labels arrive."
            )
        )
        if health.empty:
            s.add(note(f"No model-health rows up to {self.as_of} yet."))
            return s
        for model_id in sorted(health["model_id"].unique()):
            h = health[health["model_id"] == model_id].copy()
            few = h["labelled"] < minimum
            h.loc[few, ["precision", "recall", "expected_calibration_error"]] = float("nan")
            fig = _new_figure(
                3,
                1,
                ["precision and recall", "expected calibration error", "max PSI over features and score"],
                shared_x=True,
                height=720,
            )
            versions = sorted(h["model_version"].unique())
            for j, version in enumerate(versions):
                v = h[h["model_version"] == version]
                suffix = f" {version}" if len(versions) > 1 else ""
                _line(fig, v["date"], v["precision"], f"precision{suffix}", COLORS[(2 * j) % 8], 1)
                _line(fig, v["date"], v["recall"], f"recall{suffix}", COLORS[(2 * j + 1) % 8], 1)
                _line(fig, v["date"], v["expected_calibration_error"], f"ECE{suffix}", COLORS[3], 2)
            d = drift[drift["model_id"] == model_id]
            if len(d):
                _line(fig, d["date"], d["max_psi"], "max PSI", COLORS[4], 3)
            for key, metric in (("min_precision", "precision"), ("min_recall", "recall")):
                floor = self.config.floor(model_id, key)
                if floor is not None:  # no floor unless the model's config sets one
                    _threshold(fig, floor, f"retraining below this {metric}", 1)
            _threshold(fig, self.config.rule("expected_calibration_error", model_id)["above"], "ECE alert", 2)
            _threshold(fig, self.config.rule("psi", model_id)["above"], "PSI alert", 3)
            a = alerts[alerts["model_id"] == model_id]
            drop = (
                a[a["metric"] == "precision_drop"][["date"]]
                .drop_duplicates()
                .merge(h[["date", "precision"]], on="date")
            )
            if len(drop):
                _markers(fig, drop["date"], drop["precision"], "precision-drop alert", 1)
            ece = a[a["metric"] == "expected_calibration_error"].groupby("date", as_index=False)["value"].max()
            if len(ece):
                _markers(fig, ece["date"], ece["value"], "ECE alert", 2)
            psi = a[a["metric"] == "psi"].groupby("date", as_index=False)["value"].max()
            if len(psi):
                _markers(fig, psi["date"], psi["value"], "PSI alert", 3)
            s.add(f"<h3>{html.escape(str(model_id))}</h3>")
            s.plot(f"health-{model_id}", _done(fig), f"No health metrics for {model_id} yet.")
        return s

    # alerts --------------------------------------------------------------------
    def alerts(self) -> pd.DataFrame:
        if not self.has("marts.alerts"):
            return pd.DataFrame(
                columns=["date", "model_id", "model_version", "metric", "subject", "value", "threshold", "rule"]
            )
        return _frame(
            self.conn,
            "SELECT date, model_id, model_version, metric, subject, value, threshold, rule "
            "FROM marts.alerts WHERE date <= ? ORDER BY date, model_id, metric, subject",
            [self.as_of],
        )

    def alerts_section(self, alerts: pd.DataFrame) -> Section:
        s = Section("Alerts")
        if not self.has("marts.alerts"):
            return self.missing(s, "marts.alerts")
        self.summary["alerts"] = []
        if alerts.empty:
            s.add(note(f"No alert up to {self.as_of}."))
        else:
            grouped = (
                alerts.assign(subject=alerts["subject"].fillna(""))
                .groupby(["model_id", "metric", "subject"], sort=True)
                .agg(
                    first_date=("date", "min"),
                    last_date=("date", "max"),
                    days=("date", "nunique"),
                    worst_value=("value", "max"),
                    threshold=("threshold", "last"),
                    rule=("rule", "last"),
                )
                .reset_index()
            )
            grouped["active on as-of day"] = grouped["last_date"] == pd.Timestamp(self.as_of)
            for model_id, rows in alerts.groupby("model_id"):
                self.model(model_id)["first_alert"] = {
                    metric: _day(r["date"].min()) for metric, r in rows.groupby("metric")
                }
                self.model(model_id)["alerts_on_as_of"] = int((rows["date"] == pd.Timestamp(self.as_of)).sum())
            self.summary["alerts"] = jsonable(
                grouped.rename(columns={"active on as-of day": "active"}).to_dict("records")
            )
            s.add(
                paragraph(
                    f"Every alert rule breached up to {self.as_of}, one row per model, metric and subject "
                    f"(the feature, for PSI); the daily rows are in marts.alerts."
                )
            )
            s.add(table(grouped, {"worst_value": lambda v: f"{v:.4g}", "threshold": lambda v: f"{v:g}"}, scroll=True))
        if self.has("marts.retraining_requests"):
            requests = _frame(
                self.conn,
                "SELECT date, model_id, reason, status FROM marts.retraining_requests "
                "WHERE date <= ? ORDER BY date, model_id",
                [self.as_of],
            )
            s.add("<h3>Retraining requests</h3>")
            s.add(table(requests) if len(requests) else note(f"No retraining request up to {self.as_of}."))
        return s

    # bias ----------------------------------------------------------------------
    def bias_section(self) -> Section:
        s = Section("Fairness")
        if not self.has("marts.bias_daily"):
            return self.missing(s, "marts.bias_daily")
        limits = self.config.bias
        window = int(limits.get("window_days", 14))
        start = self.as_of - timedelta(days=window - 1)
        floor = float(limits.get("disparate_impact_min", 0.8))
        minimum = float(limits.get("min_labelled", 0))
        rows = _frame(self.conn, "SELECT * FROM marts.bias_daily WHERE date BETWEEN ? AND ?", [start, self.as_of])
        s.add(
            paragraph(
                f"Favourable-outcome rate of each group relative to the model's best-off group over {start} .. "
                f"{self.as_of} (the selection rate; for a model whose positive decision is harmful, such as a "
                f"fraud flag, 1 - selection rate: not being flagged); below {floor:g} (shaded) fails the "
                f"four-fifths rule. Equal opportunity compares true-positive rates, or false-positive rates "
                f"(wrongly flagged) for a harmful positive decision. Error bars are the group's "
                f"Wilson 95% interval divided by the same best rate, so a small group's bar is visibly "
                f"uncertain. Groups with fewer than {minimum:g} labelled predictions are grey and take no "
                f"part in the verdicts."
            )
        )
        if rows.empty:
            assessed = "" if load_config().attribute_columns else f" ({NOT_ASSESSED})"
            s.add(note(f"No fairness rows between {start} and {self.as_of}{assessed}."))
            return s
        rates = group_rates(rows)
        verdicts = bias_verdicts(rates, limits)
        for model_id in sorted(rates["model_id"].unique()):
            r = rates[rates["model_id"] == model_id]
            attributes = sorted(r["attribute"].unique())
            cols = min(2, len(attributes))
            fig = _new_figure(math.ceil(len(attributes) / cols), cols, attributes)
            relative_by_attribute, intervals_by_attribute = {}, {}
            for i, attribute in enumerate(attributes):
                g = r[r["attribute"] == attribute].sort_values("group_value")
                eligible = g["labelled"] >= minimum
                best = g.loc[eligible, "favourable_rate"].max() if eligible.any() else g["favourable_rate"].max()
                relative = g["favourable_rate"] / best if best and best > 0 else g["favourable_rate"] * float("nan")
                relative_by_attribute[attribute] = dict(zip(g["group_value"].astype(str), jsonable(relative)))
                intervals_by_attribute[attribute] = {
                    str(group): jsonable([low, high])
                    for group, low, high in zip(
                        g["group_value"], g["favourable_rate_ci_low"], g["favourable_rate_ci_high"]
                    )
                }
                colors = [EXCLUDED if not e else (BAD if v < floor else OK) for e, v in zip(eligible, relative)]
                self._bias_bars(fig, g, best, colors, i // cols + 1, i % cols + 1, floor)
            fig.update_layout(showlegend=False, hovermode="closest")
            self.model(model_id)["relative_selection_rate"] = relative_by_attribute
            self.model(model_id)["selection_rate_wilson_95"] = intervals_by_attribute
            s.add(f"<h3>{html.escape(str(model_id))}</h3>")
            s.plot(f"bias-{model_id}", _done(fig), f"No fairness rates for {model_id}.")
            s.add(self._bias_interval_table(r, verdicts))
        failing = verdicts[~verdicts["passed"]]
        self.summary["fairness_failures"] = jsonable(failing[["model_id", "attribute"]].to_dict("records"))
        s.add("<h3>Verdicts</h3>")
        s.add(bullets(summarise_verdicts(verdicts, limits).splitlines()))
        s.add(
            table(
                verdicts[
                    [
                        "model_id",
                        "attribute",
                        "disparate_impact_ratio",
                        "equal_opportunity_difference",
                        "equalized_odds_difference",
                        "calibration_gap",
                        "passed",
                    ]
                ]
            )
        )
        return s

    @staticmethod
    def _bias_interval_table(rates, verdicts) -> str:
        """The rates behind the verdicts with their Wilson 95% intervals, one row per attribute and group."""
        intervals = group_intervals(rates, verdicts)
        intervals["interval"] = [
            _interval(v, lo, hi, _rate)
            for v, lo, hi in zip(intervals["value"], intervals["ci_low"], intervals["ci_high"])
        ]
        wide = intervals.pivot_table(
            index=["attribute", "group_value", "labelled", "excluded"],
            columns="rate",
            values="interval",
            aggfunc="first",
            sort=False,
        ).reset_index()
        wide = wide[
            ["attribute", "group_value", "labelled", *[r for r in VERDICT_RATES if r in wide.columns], "excluded"]
        ]
        wide.columns = [
            "attribute",
            "group",
            "labelled",
            *[f"{r} [95% CI]" for r in VERDICT_RATES if r in wide.columns],
            "excluded (< min labelled)",
        ]
        return (
            "<details><summary>Per-group rates with Wilson 95% intervals</summary>"
            + table(wide, scroll=True)
            + "</details>"
        )

    @staticmethod
    def _bias_bars(fig, g, best, colors, row, col, floor):
        """Bars of favourable_rate / best with the group's own Wilson interval divided by the same best rate."""
        import plotly.graph_objects as go

        reference = best if best and best > 0 else float("nan")
        relative = g["favourable_rate"] / reference
        low, high = g["favourable_rate_ci_low"] / reference, g["favourable_rate_ci_high"] / reference
        what = "not flagged" if (g["positive_decision"] == "harmful").all() else "selection rate"
        hover = [
            f"{what} {sr:.3f} [95% CI {lo:.3f}, {hi:.3f}], {int(n):,} predictions, {int(lab):,} labelled"
            for sr, lo, hi, n, lab in zip(
                g["favourable_rate"],
                g["favourable_rate_ci_low"],
                g["favourable_rate_ci_high"],
                g["predictions"],
                g["labelled"],
            )
        ]
        fig.add_trace(
            go.Bar(
                x=_values(g["group_value"].astype(str)),
                y=_values(relative),
                marker_color=colors,
                name="relative selection rate",
                hovertext=hover,
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=_values(high - relative),
                    arrayminus=_values(relative - low),
                    color="#3e4c59",
                    thickness=1.2,
                ),
            ),
            row=row,
            col=col,
        )
        fig.add_hrect(y0=0, y1=floor, fillcolor=BAD, opacity=0.07, line_width=0, row=row, col=col)
        _threshold(fig, floor, "four-fifths", row, col)

    # data quality -------------------------------------------------------------------
    def quarantine_section(self) -> Section:
        s = Section("Quarantined rows")
        tables = [
            t
            for (t,) in self.conn.execute(
                "SELECT DISTINCT table_name FROM information_schema.columns WHERE table_schema = 'raw_quarantine' "
                "AND column_name = '_partition_date' AND table_catalog = current_database() ORDER BY 1"
            ).fetchall()
        ]
        if not tables:
            return self.missing(
                s,
                "raw_quarantine.*",
                " (the analytics snapshot publishes marts only; the daily report asset reads the warehouse)",
            )
        has_reason = {
            t
            for (t,) in self.conn.execute(
                "SELECT table_name FROM information_schema.columns WHERE table_schema = 'raw_quarantine' "
                "AND column_name = '_reason' AND table_catalog = current_database()"
            ).fetchall()
        }
        union = " UNION ALL ".join(
            f"SELECT '{t}' AS table_name, _partition_date AS date, {'_reason' if t in has_reason else 'NULL'} AS reason, "
            f'count(*) AS rows FROM raw_quarantine."{t}" WHERE _partition_date <= ? GROUP BY ALL'
            for t in tables
        )
        counts = _frame(self.conn, f"SELECT * FROM ({union}) ORDER BY date, table_name", [self.as_of] * len(tables))
        s.add(
            paragraph(
                "Raw rows that failed the load contract (bad types, missing keys, duplicates ...) are kept in "
                "raw_quarantine.<table> with the reason, instead of reaching the marts."
            )
        )
        totals = counts.groupby("table_name")["rows"].sum().to_dict() if len(counts) else {}
        self.summary["quarantine_rows"] = {t: int(totals.get(t, 0)) for t in tables}
        if counts.empty:
            s.add(note(f"No quarantined rows up to {self.as_of}."))
            return s
        import plotly.graph_objects as go

        per_day = counts.groupby(["table_name", "date"], as_index=False)["rows"].sum()
        fig = _new_figure(height=360)
        for i, (name, rows) in enumerate(per_day.groupby("table_name", sort=True)):
            fig.add_trace(
                go.Bar(
                    x=_values(rows["date"]), y=_values(rows["rows"]), name=name, marker_color=COLORS[i % len(COLORS)]
                )
            )
        fig.update_layout(barmode="stack", yaxis_title="quarantined rows")
        s.plot("quarantine", _done(fig), "No quarantined rows.")
        reasons = counts.groupby(["table_name", "reason"], dropna=False, as_index=False).agg(
            rows=("rows", "sum"), first_date=("date", "min"), last_date=("date", "max")
        )
        s.add(table(reasons, scroll=True))
        return s

    def gates_section(self) -> Section:
        s = Section("Data-quality gates")
        if not self.has("quality.gate_results"):
            return self.missing(s, "quality.gate_results")
        gates = _frame(
            self.conn,
            "SELECT date, suite, table_name, passed, failed_expectations, rows_validated "
            "FROM quality.gate_results WHERE date <= ? ORDER BY date, suite",
            [self.as_of],
        )
        today = gates[gates["date"] == pd.Timestamp(self.as_of)]
        failed = gates[~gates["passed"].astype(bool)]
        self.summary["gates"] = {
            "suites_on_as_of": int(len(today)),
            "failed_on_as_of": sorted(today.loc[~today["passed"].astype(bool), "suite"]),
            "failed_days": int(failed["date"].nunique()),
        }
        s.add(
            paragraph(
                "Great Expectations suites validate each raw table per day; a failed blocking suite stops "
                "everything downstream of that table for the day."
            )
        )
        if today.empty:
            s.add(note(f"No gate results for {self.as_of}."))
        else:
            s.add(f"<h3>{self.as_of}</h3>")
            s.add(
                table(
                    today.assign(passed=today["passed"].map({True: "pass", False: "FAIL"}))[
                        ["suite", "table_name", "passed", "rows_validated", "failed_expectations"]
                    ]
                )
            )
        s.add("<h3>Failed gates up to the as-of day</h3>")
        s.add(table(failed, scroll=True) if len(failed) else note(f"No gate failed up to {self.as_of}."))
        return s

    # KPIs and optional marts ---------------------------------------------------------
    def kpi_section(self) -> Section:
        s = Section("Business KPIs")
        if not self.has("marts.kpi_daily"):
            return self.missing(s, "marts.kpi_daily")
        kpi = _frame(
            self.conn,
            "SELECT date, active_users, conversion_rate, revenue_per_active_user FROM marts.kpi_daily "
            "WHERE date <= ? ORDER BY date",
            [self.as_of],
        )
        fig = _new_figure(
            3, 1, ["active users", "conversion rate", "revenue per active user"], shared_x=True, height=640
        )
        for i, column in enumerate(["active_users", "conversion_rate", "revenue_per_active_user"]):
            _line(fig, kpi["date"], kpi[column], column.replace("_", " "), COLORS[i], i + 1)
        s.plot("kpis", _done(fig), f"No KPI rows up to {self.as_of}.")
        return s

    def okr_section(self) -> Section:
        s = Section("OKR progress")
        if not self.has("marts.okr_progress"):
            return self.missing(s, "marts.okr_progress")
        okrs = _latest_rows(self.conn, "marts.okr_progress", "date", self.as_of)
        if okrs.empty:
            s.add(note(f"No OKR progress rows up to {self.as_of}."))
            return s
        import plotly.graph_objects as go

        okrs = okrs.sort_values(["objective", "key_result"])
        labels = _values(okrs["key_result"].astype(str))
        fig = _new_figure(height=360)
        fig.add_trace(
            go.Bar(
                x=labels,
                y=_values(okrs["progress"]),
                name="progress",
                marker_color=[OK if t else BAD for t in okrs["on_track"].fillna(False)],
            )
        )
        fig.add_trace(
            go.Bar(
                x=labels,
                y=_values(okrs["expected_progress"]),
                name="expected by now (linear pace)",
                marker_color=EXCLUDED,
            )
        )
        fig.add_hline(y=1, line=dict(color=COLORS[2], dash="dash"), annotation_text="target")
        fig.update_yaxes(tickformat=".0%")
        fig.update_layout(barmode="group")
        s.add(
            paragraph(
                f"Progress from baseline to target of each key result as of {_day(okrs['date'].iloc[0])}, "
                f"next to the progress a linear pace to its deadline would have reached."
            )
        )
        self.summary["okr_progress"] = jsonable(
            okrs[
                [
                    c
                    for c in (
                        "key_result",
                        "objective",
                        "current_value",
                        "target",
                        "progress",
                        "expected_progress",
                        "on_track",
                        "status",
                    )
                    if c in okrs
                ]
            ].to_dict("records")
        )
        s.plot("okr-progress", _done(fig), "No OKR progress to plot.")
        shown = [
            c
            for c in (
                "objective",
                "key_result",
                "description",
                "model_id",
                "metric",
                "baseline",
                "target",
                "current_value",
                "progress",
                "expected_progress",
                "deadline",
                "on_track",
                "status",
            )
            if c in okrs
        ]
        s.add(table(okrs[shown], {"progress": _pct, "expected_progress": _pct}))
        return s

    def scorecard_section(self) -> Section:
        s = Section("Metric scorecard")
        if not self.has("marts.metric_scorecard"):
            return self.missing(s, "marts.metric_scorecard")
        card = _latest_rows(self.conn, "marts.metric_scorecard", "date", self.as_of)
        if card.empty:
            s.add(note(f"No scorecard rows up to {self.as_of}."))
            return s
        s.add(paragraph(f"Which metrics each experiment can detect, and by when (as of {_day(card['date'].iloc[0])})."))
        shown = [
            c
            for c in (
                "experiment_id",
                "model_id",
                "metric",
                "is_guardrail",
                "attributable",
                "units",
                "mde_relative",
                "balanced_by_guardrail",
                "key_result",
                "target_relative_effect",
                "days_needed",
                "days_to_deadline",
                "detectable_by_deadline",
                "warning",
            )
            if c in card
        ]
        s.add(table(card[shown], {"mde_relative": _pct, "target_relative_effect": _pct}, scroll=True))
        return s

    def leading_section(self) -> Section:
        s = Section("Leading vs lagging indicators")
        if not self.has("marts.leading_lagging"):
            return self.missing(s, "marts.leading_lagging")
        rows = _latest_rows(self.conn, "marts.leading_lagging", "as_of_date", self.as_of)
        if rows.empty:
            s.add(note(f"No leading/lagging rows up to {self.as_of}."))
            return s
        if self.has("marts.kpi_daily") and self.has("marts.alerts"):
            self._kpi_drops(s)
        if "significant" not in rows:  # built before the p-values: no row can be told from chance
            s.add(note("marts.leading_lagging predates its p-values; the next run adds them."))
            return s
        # Only leads beyond chance: the best of the hundreds of correlations searched is large by chance alone.
        leads = rows[rows["significant"].astype(bool)].sort_values(
            ["p_value_adjusted", "model_id", "health_metric", "kpi"]
        )
        searched = int(rows["family_size"].max()) if rows["family_size"].notna().any() else 0
        self.summary["leading_indicators"] = [
            {
                "kpi": r.kpi,
                "model_id": r.model_id,
                "health_metric": r.health_metric,
                "lag_days": int(r.lag_days),
                "correlation": float(r.correlation),
                "p_value_adjusted": float(r.p_value_adjusted),
            }
            for r in leads.itertuples()
        ]
        if leads.empty:
            s.add(
                paragraph(
                    f"No health metric's daily changes precede a KPI's beyond chance: none of the {searched} "
                    "correlations searched (models x health metrics x KPIs x lags) has a Holm-adjusted p-value "
                    "below the threshold (marts.leading_lagging.significant)."
                )
            )
            return s
        s.add(
            paragraph(
                f"Health metrics whose daily changes precede a KPI's by the lag shown, beyond chance: Holm-adjusted "
                f"over the {searched} correlations searched, with an effective sample size for autocorrelated "
                "changes. Correlation is not causation: a lead says which indicator to watch."
            )
        )
        shown = leads.assign(lag=leads["lag_days"].map(lambda d: f"{int(d)} day(s)"))
        s.add(
            table(
                shown[["model_id", "health_metric", "kpi", "lag", "correlation", "n_days", "p_value_adjusted"]],
                {
                    "correlation": lambda r: f"{r:+.2f}",
                    "p_value_adjusted": lambda p: "< 0.0001" if p < 1e-4 else f"{p:.4f}",
                },
            )
        )
        return s

    def _kpi_drops(self, s: Section) -> None:
        """Each KPI's first sustained drop and how many days the first alert before it gave."""
        leads = kpi_drop_leads(self.conn, self.as_of, dbt_var("leading_lagging")["kpis"])
        drops = [(drop, lead) for drop, lead in leads if drop is not None]
        self.summary["kpi_drops"] = [
            {
                "kpi": d.kpi,
                "start_date": d.start_date.isoformat(),
                "relative_change": d.relative_change,
                "first_alert_date": None if lead is None else lead.alert_date.isoformat(),
                "first_alert": None if lead is None else f"{lead.model_id} {lead.metric} {lead.subject}".strip(),
                "lead_days": None if lead is None else lead.lead_days,
            }
            for d, lead in drops
        ]
        for drop, lead in drops or [(None, None)]:
            s.add(paragraph(describe(lead, drop)))

    # ---------------------------------------------------------------------------
    def build(self) -> Report:
        _require_data_on(self.conn, self.tables, self.as_of)
        lifts, impact, alerts = self.lifts(), self.impact(), self.alerts()
        sections = [
            self.headline(lifts, impact),
            self.lift_section(lifts),
            self.value_section(impact),
            self.health_section(alerts),
            self.alerts_section(alerts),
            self.bias_section(),
            self.kpi_section(),
            self.okr_section(),
            self.scorecard_section(),
            self.leading_section(),
            self.quarantine_section(),
            self.gates_section(),
        ]
        for section in sections:
            self.summary["sections"].setdefault(section.anchor, "present")
        plots = [name for section in sections for name in section.figures]
        self.summary["plots"] = plots
        html_text = page(
            f"Impact Ledger — daily report {self.as_of}",
            f"What each model is worth, whether it is healthy, and whether the data is fit to act on "
            f"(data up to {self.as_of}).",
            sections,
            self.summary,
        )
        return Report(self.as_of, html_text, self.summary, plots)


# ------------------------------------------------------------------------ API


def render_report(conn, as_of: date, config: AlertConfig | None = None) -> Report:
    """The report of ``as_of`` (page, summary, plot names); ReportDataError if that day has no data."""
    return ReportBuilder(conn, as_of, config or load_alert_config()).build()


def build_report(conn, as_of: date) -> str:
    return render_report(conn, as_of).html


def report_path(out_dir: Path, as_of: date) -> Path:
    return Path(out_dir) / f"impact_ledger_{as_of.isoformat()}.html"


def save_report(report: Report, out_dir: Path) -> Path:
    """Write the page atomically (temp file, then rename): a reader never sees half a report."""
    path = report_path(out_dir, report.as_of)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(report.html, encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_report(conn, as_of: date, out_dir: Path) -> Path:
    return save_report(render_report(conn, as_of), out_dir)
