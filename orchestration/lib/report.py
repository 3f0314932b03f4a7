"""The daily HTML report: value, lift, health, alerts, fairness and data quality as of one day.

Three layers: ``report_data`` reads each section's rows (published tables only,
days <= as_of), this module turns them into sections (tables, figures, the
summary), ``report_figures`` / ``report_html`` draw and assemble the page.
``build_report(conn, as_of)`` returns one self-contained HTML page; ``write_report``
writes it to ``<out_dir>/impact_ledger_<day>.html`` atomically. Works on the
warehouse or on the analysts' read-only snapshot: a table that is missing
(an older warehouse, or one the snapshot does not publish) becomes a note,
never an error. No Dagster here; plotly is imported only when building.

Every figure's data and a machine-readable summary (``report-summary``) are
embedded as JSON, so the numbers in the page can be checked without a browser.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from orchestration.lib.missing_features import mostly_missing_features, vanished_features
from orchestration.lib.alerts import (
    POOLED_RULE,
    AlertConfig,
    drift_not_judged,
    drift_not_judged_text,
    load_alert_config,
    version_values,
    worst_index,
)
from orchestration.lib.attribution import (
    ROI_LABEL,
    CI_SIGN_TEXT,
    DAILY_LOOKS,
    DAILY_LOOKS_NOTE,
    ROI_NOTE,
    arm_names,
    daily_looks_text,
    ci_sign,
    control_word,
    controls_of,
    AttributionSettings,
    arms_family_notes,
    relative_across_zero_note,
    relative_unbounded_note,
    correction_name,
    cost_split_notes,
    exact_test_text,
    model_arm,
    model_arms,
    roi_text,
    significance_text,
    value_basis,
    units_header,
)
from orchestration.lib import report_data as data
from orchestration.lib import report_figures as rf
from orchestration.lib.bias import (
    HEADLINE_VERDICT_COLUMNS,
    NOT_ASSESSED,
    VERDICT_RATES,
    assessed,
    disparate_impact_relative,
    group_intervals,
    summarise_verdicts,
    wilson_interval,
)
from orchestration.lib.leading import describe, kpi_drop_leads_of
from orchestration.lib.money import money
from orchestration.lib.project_config import load_config
from orchestration.lib.report_data import (
    ReportDataError,
    alert_episodes,
    existing_tables,
    labels_known_after,
    latest_report_date,
)
from orchestration.lib.report_html import Section, bullets, jsonable, note, page, paragraph, table
from orchestration.lib.cost_gaps import cost_gap_notes
from orchestration.lib.settings import dbt_var
from orchestration.lib.settings import value_metric as value_metric_setting
from orchestration.lib.version_changes import change_text, version_changes

__all__ = ["ReportDataError", "Report", "latest_report_date", "render_report", "build_report", "write_report"]


def _decisions_needed(verdict) -> float:
    """The predictions a group needed for the verdict's disparate impact (min_predictions as applied; a verdict
    judged before it: min_labelled). The report drew groups of 50-99 predictions grey at min_labelled's 100 while
    the verdict, at 50, had judged them."""
    value = verdict.get("min_predictions")
    return float(value) if value is not None and pd.notna(value) else float(verdict["min_labelled"])


def _exclusions(intervals: pd.DataFrame) -> dict[tuple, str]:
    """(attribute, group) -> which verdicts leave the group out (bias.group_intervals' excluded): 'none', 'the
    label-based verdicts (< min labelled); in disparate impact' or 'every verdict (< min predictions)'."""
    out = {}
    for (attribute, group), rows in intervals.groupby(["attribute", "group_value"], sort=False):
        by_rate = dict(zip(rows["rate"], rows["excluded"].astype(bool)))
        decisions = by_rate.pop("selection_rate", False)
        labels = any(by_rate.values())
        out[(attribute, group)] = (
            "every verdict (< min predictions)"
            if decisions
            else "the label-based verdicts (< min labelled); in disparate impact"
            if labels
            else "none"
        )
    return out


@dataclass
class Report:
    as_of: date
    html: str
    summary: dict
    plots: list[str]


# ------------------------------------------------------------------- formatting


def _missing(x) -> bool:
    return x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x))


def _rate(x) -> str:
    return "n/a" if _missing(x) else f"{x:.3f}"


def _pct(x) -> str:
    return "n/a" if _missing(x) else f"{x:+.1%}"


def _currency_amount(currency: str):
    """Money with thousands separators and the project's currency (never 1e+05)."""
    return lambda x: "n/a" if _missing(x) else f"{money(x)} {currency}"  # "n/a" alone: no currency after it


def _significant(rows: pd.DataFrame) -> list[bool | None]:
    """The published flag (adjusted p below alpha); a row without it: whether its 95% CI excludes 0; None for a row
    not tested (degenerate_reason: drawn as such, not as "not significant", which a trial read as a tested null)."""
    untested = rows["degenerate_reason"].notna() if "degenerate_reason" in rows else [False] * len(rows)
    return [
        None
        if skip
        else bool(flag)
        if not _missing(flag)
        else (not _missing(lo) and not _missing(hi) and (lo > 0 or hi < 0))
        for flag, lo, hi, skip in zip(rows["significant"], rows["ci_low"], rows["ci_high"], untested)
    ]


def _interval(value, low, high, fmt) -> str:
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


def _day(x) -> str | None:
    return None if _missing(x) or x is pd.NaT else pd.Timestamp(x).date().isoformat()


def _with_arms(lifts: pd.DataFrame, impact: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both with `arm`: 'small vs regular' where the row's experiment has several treatment arms, '' where it has
    one (each arm is a row, a line and a panel of its own); the model value's control_variant from the lifts."""
    controls = controls_of(lifts)
    if len(lifts):
        lifts = lifts.assign(arm=arm_names(lifts))
    if len(impact):
        impact = impact.assign(arm=arm_names(impact, controls), control_variant=impact["experiment_id"].map(controls))
    return lifts, impact


def _models(rows: pd.DataFrame) -> list[str]:
    """The rows' models as the page names them: 'class_size: small vs regular' for an arm of several."""
    return [model_arm(m, a) for m, a in zip(rows["model_id"], rows["arm"])]


def _of_arm(name: str, arm: str) -> str:
    """A trace's name, led by its treatment arm where the experiment has several."""
    return f"{arm}: {name}" if arm else name


def _expectations(value) -> str:
    """A gate's failed expectations (stored as a JSON list) as readable text: none is empty, not '[]'."""
    if _missing(value):
        return ""
    try:
        items = json.loads(value) if isinstance(value, str) else list(value)
    except (TypeError, ValueError):
        return str(value)
    if not isinstance(items, list):
        return str(items)
    return "; ".join(str(i if not isinstance(i, dict) else i.get("expectation_type") or i) for i in items)


def _readable_gates(gates: pd.DataFrame) -> pd.DataFrame:
    """Gate rows with their failed expectations and warnings as text."""
    return gates.assign(
        failed_expectations=gates["failed_expectations"].map(_expectations),
        warnings=gates["warnings"].map(_expectations),
    )


def _trust(flag, reason) -> str:
    return "yes" if bool(flag) else f"NO: {reason or 'reason not recorded'}"


def _okr_significance(row, money_text) -> str:
    """'yes', 'NO: 95% CI [low, high] includes 0' (a net value in money, a lift in percent), or 'n/a' (a KPI or
    health value, or a row without an interval)."""
    flag = row.get("significant")
    if _missing(flag):
        return "n/a"
    if bool(flag):
        return "yes"
    show = money_text if row.get("metric_kind") == "net_value" else (lambda x: f"{x:+.1%}")
    low, high = row.get("ci_low"), row.get("ci_high")
    if _missing(low) or _missing(high):
        return "NO: not tested"
    interval = f"95% CI [{show(low)}, {show(high)}]"
    if low <= 0 <= high:
        return f"NO: {interval} includes 0"
    # a lift's decision is the multiple-testing adjusted one (a re-trial read "[-77.9%, -4.1%] includes 0")
    return f"NO: not significant once the experiment's metrics are tested together (unadjusted {interval})"


def _grade(flag, reason) -> str:
    if _missing(flag):
        return "n/a"
    return "yes" if bool(flag) else f"NO: {reason or 'reason not recorded'}"


UNTRUSTED_PROGRESS = "progress, not trustworthy, decision-grade or significant"  # the OKR plot's hatched bars
# the OKR table's column: an OKR value counts only when its attribution row is both (a re-trial read a row's "yes"
# under the model-value table's "trustworthy" beside the OKR table's "trustworthy: NO: not decision-grade")
OKR_TRUST = "trustworthy and decision-grade"

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

    def arm(self, r) -> dict:
        """The summary's entry of a result row: its model's, or where its experiment has several treatment arms
        the arm's (``models.<id>.arms.<treatment_variant>``, with the arm's control_variant)."""
        if not r.arm:
            return self.model(r.model_id)
        arms = self.model(r.model_id).setdefault("arms", {})
        return arms.setdefault(str(r.treatment_variant), {"control_variant": jsonable(r.control_variant)})

    def missing(self, section: Section, table: str, why: str = "") -> Section:
        section.add(note(f"{table} is not in this database{why}, so this section is empty."))
        self.summary["sections"][section.anchor] = "absent"
        return section

    def _no_value(self, what: str) -> str:
        """Why there is no model value: none yet, or (no experiment at all) none to come."""
        experiments = (
            self.has("raw.experiments") and self.conn.execute("SELECT count(*) FROM raw.experiments").fetchone()[0]
        )
        if experiments:
            return f"{what} yet."
        return (
            f"{what}: no experiment gives a model a never-exposed holdout (raw.experiments is empty, or every model "
            "is `experiment: false`), so a model's worth cannot be measured; its health, drift and fairness below "
            "still are."
        )

    # headline ------------------------------------------------------------------
    def lifts(self) -> pd.DataFrame:
        if not self.has("attribution.experiment_results"):
            return pd.DataFrame()
        return data.experiment_lifts(self.conn, self.as_of)

    def impact(self) -> pd.DataFrame:
        if not self.has("attribution.model_impact"):
            return pd.DataFrame()
        return data.model_impact(self.conn, self.as_of)

    def headline(self, lifts: pd.DataFrame, impact: pd.DataFrame) -> Section:
        s = Section("Headline")
        currency = load_config().currency
        against = (
            "its never-exposed holdout"
            if control_word(controls_of(lifts).values()) == "holdout"
            else "its experiment's control arm (each treatment arm on its own where there are several)"
        )
        # results stop where the experiments' tables do: a trial's headline read "as of" the report's day, its
        # rows two months earlier
        days = [pd.to_datetime(f["as_of_date"]).max().date() for f in (lifts, impact) if "as_of_date" in f and len(f)]
        newest = max(days, default=self.as_of)
        as_of = f"as of {newest}" + (f", the newest day with results up to {self.as_of}" if newest < self.as_of else "")
        s.add(
            paragraph(
                f"Each model against {against}, cumulative since its experiment started, "
                f"{as_of}. Value = {value_basis(impact.get('value_metric'), value_metric_setting()[1])}, net of the "
                "model's cost, "
                f"in {currency}. {ROI_NOTE}"
            )
        )
        if impact.empty:
            s.add(note(self._no_value(f"No model value (attribution.model_impact) up to {self.as_of}")))
        else:
            latest = impact.groupby(["model_id", "arm"], sort=True).tail(1)
            for split in cost_split_notes(latest):
                s.add(note(split))
            # a day's net value that counted no cost (a second trial's report said nothing; summary did)
            for gap in cost_gap_notes(self.conn, self.as_of, after=False):
                s.add(note(gap))
            for r in latest.itertuples():
                self.arm(r)["net_value"] = jsonable(
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
                        "net_value_sign": ci_sign(r.net_value_ci_low, r.net_value_ci_high),
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
                            "model": _models(latest),
                            "experiment": latest["experiment_id"],
                            "as of": latest["as_of_date"],
                            "treated users": latest["treated_units"],
                            f"incremental value ({currency}) [95% CI]": [
                                _interval(*v, money)
                                for v in zip(
                                    latest["incremental_value"],
                                    latest["incremental_value_ci_low"],
                                    latest["incremental_value_ci_high"],
                                )
                            ],
                            f"model cost ({currency})": latest["model_cost"].map(money),
                            f"net value ({currency}) [95% CI]": [
                                _interval(*v, money)
                                for v in zip(
                                    latest["net_value"], latest["net_value_ci_low"], latest["net_value_ci_high"]
                                )
                            ],
                            ROI_LABEL: [
                                roi_text(*v) for v in zip(latest["roi"], latest["roi_ci_low"], latest["roi_ci_high"])
                            ],
                            # the money's significance cue: an interval that crosses 0 is no evidence of value
                            "net value vs 0": [
                                CI_SIGN_TEXT[ci_sign(lo, hi)]
                                for lo, hi in zip(latest["net_value_ci_low"], latest["net_value_ci_high"])
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
        if unmeasured := data.unmeasured_models(self.conn, self.as_of, impact.get("model_id", [])):
            s.add(note(data.unmeasured_text(unmeasured, money, currency, data.declared_experiments(load_config()))))
            self.summary["unmeasured_models"] = [m for m, _ in unmeasured]
        if lifts.empty:
            s.add(note(f"No experiment results (attribution.experiment_results) up to {self.as_of} yet."))
            return s
        latest = lifts.groupby(["model_id", "arm", "metric"], sort=True).tail(1)
        for r in latest.itertuples():
            self.arm(r).setdefault("lift", {})[r.metric] = jsonable(
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
                f"are tested together; 'not tested': too few events or no variance in an arm, so no p-value (a proportion's Fisher exact p is given instead, two-sided and unadjusted)."
            )
        )
        alpha = AttributionSettings.from_config(dbt_var("attribution"), "attribution").alpha
        s.add(paragraph(DAILY_LOOKS_NOTE[0].upper() + DAILY_LOOKS_NOTE[1:] + "."))
        for family in arms_family_notes(latest, alpha):
            s.add(paragraph(family))
        for said in (
            relative_across_zero_note(latest, _models(latest)),
            relative_unbounded_note(latest, _models(latest)),
        ):
            if said:
                s.add(paragraph(said))
        s.add(
            table(
                pd.DataFrame(
                    {
                        "model": _models(latest),
                        "metric": latest["metric"] + latest["is_guardrail"].map({True: " (guardrail)", False: ""}),
                        "as of": latest["as_of_date"],
                        units_header(latest["control_variant"]): latest["n_control"].astype(str)
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
                            significance_text(v) if _missing(d) else f"not tested: {d}{exact_test_text(x)}"
                            for v, d, x in zip(
                                latest["significant"], latest["degenerate_reason"], latest["exact_p_value"]
                            )
                        ],
                        DAILY_LOOKS: [
                            daily_looks_text(lo, hi, p, alpha, _pct)
                            for lo, hi, p in zip(
                                latest["sequential_relative_ci_low"],
                                latest["sequential_relative_ci_high"],
                                latest["sequential_p_value"],
                            )
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
        versus = control_word(controls_of(lifts).values())
        s.add(
            paragraph(
                f"Cumulative relative lift of treatment vs {versus} with its 95% CI (shaded; CUPED-adjusted where "
                "the metric allows), one metric at a time: whether a lift is significant once all the "
                "experiment's metrics are tested together is the 'significant' column of the headline table."
            )
        )
        if lifts.empty:
            s.add(note(f"No experiment results up to {self.as_of} yet."))
            return s
        for model_id, rows in lifts.groupby("model_id", sort=True):
            # a metric never estimated (no variance: every unit's value the same) would be an empty panel
            estimated = rows.groupby("metric")["lift"].apply(lambda v: v.notna().any())
            metrics, untested = sorted(estimated[estimated].index), sorted(estimated[~estimated].index)
            if not metrics:
                s.add(f"<h3>{html.escape(str(model_id))}</h3>")
                s.add(note(f"No lift estimated for {', '.join(untested)}: the headline table says why."))
                continue
            cols = 2 if len(metrics) > 1 else 1
            titles = [
                m + (" (guardrail)" if rows.loc[rows["metric"] == m, "is_guardrail"].any() else "") for m in metrics
            ]
            fig = rf.new_figure(math.ceil(len(metrics) / cols), cols, titles)
            arms = sorted(rows["arm"].unique())  # [''] for a single treatment arm, else one line each
            for i, metric in enumerate(metrics):
                row, col = i // cols + 1, i % cols + 1
                for j, arm in enumerate(arms):
                    m = rows[(rows["metric"] == metric) & (rows["arm"] == arm)]
                    color = rf.COLORS[j % len(rf.COLORS)]
                    rf.band(fig, m["as_of_date"], m["ci_low"], m["ci_high"], _of_arm("lift", arm), color, row, col)
                    rf.line(
                        fig,
                        m["as_of_date"],
                        m["lift"],
                        _of_arm("relative lift (95% CI shaded)", arm),
                        color,
                        row,
                        col,
                        legend=i == 0,
                    )
                    # significance cue per day: filled = significant after the correction, hollow grey = not
                    significant = _significant(m)
                    rf.significance_markers(
                        fig, m["as_of_date"], m["lift"], significant, row, col, legend=i == j == 0, color=color
                    )
                rf.zero(fig, row, col)
            fig.update_yaxes(tickformat="+.0%", title=dict(text="relative lift"))
            s.add(f"<h3>{html.escape(str(model_id))}</h3>")
            s.plot(f"lift-{model_id}", rf.done(fig), f"No lift estimates for {model_id} yet.")
            if untested:
                s.add(note(f"Not drawn, no lift estimated: {', '.join(untested)} (the headline table says why)."))
        return s

    # value over time -----------------------------------------------------------
    def value_section(self, impact: pd.DataFrame) -> Section:
        s = Section("Incremental value net of cost")
        if not self.has("attribution.model_impact"):
            return self.missing(s, "attribution.model_impact")
        s.add(
            paragraph(
                f"Cumulative incremental value ({value_basis(impact.get('value_metric'), value_metric_setting()[1])}) "
                f"and net value after the model's cost, each with its 95% CI, in {load_config().currency}."
            )
        )
        if impact.empty:
            s.add(note(self._no_value(f"No model value up to {self.as_of}")))
            return s
        # one panel per model, or per treatment arm of an experiment with several
        panels = impact[["model_id", "arm"]].drop_duplicates().sort_values(["model_id", "arm"])
        fig = rf.new_figure(len(panels), 1, _models(panels), height=300 * len(panels))
        for i, (model_id, arm) in enumerate(panels.itertuples(index=False)):
            m = impact[(impact["model_id"] == model_id) & (impact["arm"] == arm)]
            first = i == 0
            rf.band(
                fig,
                m["as_of_date"],
                m["incremental_value_ci_low"],
                m["incremental_value_ci_high"],
                "incremental",
                rf.COLORS[0],
                i + 1,
            )
            rf.line(
                fig, m["as_of_date"], m["incremental_value"], "incremental value", rf.COLORS[0], i + 1, legend=first
            )
            rf.band(fig, m["as_of_date"], m["net_value_ci_low"], m["net_value_ci_high"], "net", rf.COLORS[2], i + 1)
            rf.line(fig, m["as_of_date"], m["net_value"], "net value", rf.COLORS[2], i + 1, legend=first)
            rf.line(fig, m["as_of_date"], m["model_cost"], "model cost", rf.COLORS[1], i + 1, dash="dash", legend=first)
            rf.zero(fig, i + 1)
        currency = load_config().currency
        fig.update_yaxes(tickformat=",.0f", title=dict(text=currency))
        s.plot("value", rf.done(fig), "No model value yet.")
        return s

    # model health ----------------------------------------------------------------
    def health_section(self, alerts: pd.DataFrame) -> Section:
        s = Section("Model health")
        if not self.has("marts.model_health_daily"):
            return self.missing(s, "marts.model_health_daily")
        health = data.model_health(self.conn, self.as_of)
        drift = pd.DataFrame(columns=["date", "model_id", "max_psi", "feature"])
        if self.has("marts.feature_drift_daily"):
            drift = data.max_drift(self.conn, self.as_of)
        minimum = self.config.min_labelled
        import duckdb

        try:
            recent = data.recent_health_counts(self.conn, self.as_of, data.RECENT_DAYS)
        except duckdb.BinderException:  # a mart built before its confusion counts
            recent = pd.DataFrame(columns=["model"])
        # as summary says beside its pooled rates: the days whose labels are all in, and the label-free estimate
        maturity = data.label_maturity(self.conn, self.as_of, data.RECENT_DAYS, self.config.label_horizon)
        s.add(
            paragraph(
                f"Precision and recall, expected calibration error and the largest PSI over the model's "
                f"features and score, with the alert thresholds of the project file (dashed; a retraining "
                f"floor only where a model sets min_precision / min_recall) "
                f"and the days an alert fired (x). Label-based metrics are shown for days with at least "
                f"{minimum} labelled predictions, like the alert rules; recent days fill in as labels arrive. "
                f"The dotted line is the label-free estimate of precision (CBPE, from the calibrated scores): "
                f"it is there before the labels, and a gap to the realised line means the calibration moved."
            )
        )
        if health.empty:
            s.add(note(f"No model-health rows up to {self.as_of} yet."))
            return s
        distributions, lacking = self.drift_distributions()
        # a retrain's change of behaviour: each version's drift is judged against its own reference only
        changes = version_changes(self.conn, self.as_of, data.RECENT_DAYS, self.config)
        for model_id in sorted(health["model_id"].unique()):
            h = health[health["model_id"] == model_id].copy()
            few = h["labelled"] < minimum
            h.loc[few, ["precision", "recall", "expected_calibration_error"]] = float("nan")
            fig = rf.new_figure(
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
                rf.line(fig, v["date"], v["precision"], f"precision{suffix}", rf.COLORS[(2 * j) % 8], 1)
                # CBPE: precision estimated from the scores alone, there before the labels arrive
                rf.line(
                    fig,
                    v["date"],
                    v["estimated_precision"],
                    f"estimated precision (CBPE, label-free){suffix}",
                    rf.COLORS[(2 * j) % 8],
                    1,
                    dash="dot",
                )
                rf.line(fig, v["date"], v["recall"], f"recall{suffix}", rf.COLORS[(2 * j + 1) % 8], 1)
                rf.line(fig, v["date"], v["expected_calibration_error"], f"ECE{suffix}", rf.COLORS[3], 2)
            d = drift[drift["model_id"] == model_id]
            if len(d):
                rf.line(fig, d["date"], d["max_psi"], "max PSI", rf.COLORS[4], 3)
            for key, metric in (("min_precision", "precision"), ("min_recall", "recall")):
                floor = self.config.floor(model_id, key)
                if floor is not None:  # no floor unless the model's config sets one
                    # below the line alone raises no request where the day's few labels explain it
                    alpha = self.config.retraining.get("floor_alpha")
                    beyond = f" where binomial p < {alpha:g}" if alpha is not None else ""
                    rf.threshold(fig, floor, f"retraining below this {metric}{beyond}", 1)
            ece_rule = self.config.rule("expected_calibration_error", model_id)
            # above the line alone is no alert where the Hosmer-Lemeshow test finds the labels' noise explains it
            also = f" where Hosmer-Lemeshow p < {ece_rule['alpha']:g}" if ece_rule.get("alpha") is not None else ""
            rf.threshold(fig, ece_rule["above"], f"ECE alert{also}", 2)
            psi_rule = self.config.rule("psi", model_id)
            beyond = f" where chi-square p < {psi_rule['alpha']:g}" if psi_rule.get("alpha") is not None else ""
            rf.threshold(fig, psi_rule["above"], f"PSI alert{beyond}", 3)
            a = alerts[alerts["model_id"] == model_id]
            drop = (
                a[a["metric"] == "precision_drop"][["date"]]
                .drop_duplicates()
                .merge(h[["date", "precision"]], on="date")
            )
            if len(drop):
                rf.markers(fig, drop["date"], drop["precision"], "precision-drop alert", 1)
            ece = a[a["metric"] == "expected_calibration_error"].groupby("date", as_index=False)["value"].max()
            if len(ece):
                rf.markers(fig, ece["date"], ece["value"], "ECE alert", 2)
            psi = a[a["metric"] == "psi"].groupby("date", as_index=False)["value"].max()
            if len(psi):
                rf.markers(fig, psi["date"], psi["value"], "PSI alert", 3)
            s.add(f"<h3>{html.escape(str(model_id))}</h3>")
            self._version_changes(s, model_id, changes)
            if unjudged := self._not_judged(model_id, h, minimum):
                s.add(note(unjudged))
                if pooled := self._pooled_health(model_id, recent, maturity):
                    s.add(note(pooled))
            fig.update_yaxes(tickformat=".0%", title=dict(text="rate"), row=1, col=1)
            fig.update_yaxes(title=dict(text="ECE"), row=2, col=1)
            fig.update_yaxes(title=dict(text="PSI"), row=3, col=1)
            self._precision_pair(model_id, h)
            s.plot(f"health-{model_id}", rf.done(fig), f"No health metrics for {model_id} yet.")
            self._drift_distributions(s, model_id, a, distributions, lacking)
        return s

    def _version_changes(self, s: Section, model_id, changes: pd.DataFrame) -> None:
        """The model's changes of version in the last RECENT_DAYS days, as summary says them, and in the summary
        JSON (models.<id>.version_changes)."""
        mine = changes[changes["model_id"] == model_id] if len(changes) else changes
        for c in mine.itertuples():
            s.add(note(change_text(c)))
        if len(mine):
            self.model(model_id)["version_changes"] = [
                jsonable(
                    {
                        "date": _day(c.change_day),
                        "old_version": c.old_version,
                        "new_version": c.new_version,
                        "old_positive_rate": c.old_positives / c.old_predictions,
                        "new_positive_rate": c.new_positives / c.new_predictions,
                        "score_psi": c.score_psi,
                    }
                )
                for c in mine.itertuples()
            ]

    def _pooled_health(self, model_id: str, recent: pd.DataFrame, maturity: pd.DataFrame) -> str:
        """A small model's precision and recall pooled over the last RECENT_DAYS days (the labels known so far), with
        Wilson 95% intervals: its days are too small to show, the pool is not. Beside them, how many of those days
        have all their labels (past the label horizon) and the label-free estimate: a risk score's early labels
        (defaults known first) read far from its final precision."""
        parts = []
        complete = maturity.set_index(["model", "version"])
        for r in recent[recent["model"] == model_id].itertuples():
            rates = []
            for name, hits, trials, of in (
                ("precision", r.tp, r.tp + r.fp, "flagged and labelled"),
                ("recall", r.tp, r.tp + r.fn, "labelled positives"),
            ):
                if trials:
                    low, high = wilson_interval(hits, trials)
                    rates.append(f"{name} {hits / trials:.3f} [{low:.3f}, {high:.3f}] of {trials:,} {of}")
            if (model_id, r.version) in complete.index:
                m = complete.loc[(model_id, r.version)]
                rates.append(f"labels complete on {m['complete_days']:.0f} of {m['days']:.0f} days")
                if pd.notna(m["estimated_precision"]):
                    raw = " (raw scores: no calibration learnt from labels yet)" if m["raw_estimate"] == 1 else ""
                    notes = []
                    if m["partly_raw"] == 1:
                        notes.append("partly raw scores: some fall in score bins the calibration never learnt")
                    # summary's "(N labels)", beside "part raw" too (a trial's 7 labels were said nowhere)
                    if not raw and m["calibration_labels"] < data.FEW_CALIBRATION_LABELS:
                        notes.append(
                            f"its calibration learnt from {m['calibration_labels']:.0f} labels: each score bin "
                            "shrunk towards its raw scores by 10 pseudo-labels, so mostly the raw scores"
                        )
                    if notes:
                        raw = f" ({'; '.join(notes)})"
                    rates.append(f"label-free estimated precision {m['estimated_precision']:.3f}{raw}")
            if rates:
                parts.append(f"{r.version}: " + ", ".join(rates))
        if not parts:
            return ""
        # the model's own newest day: one that stopped predicting is pooled over its last days
        upto = pd.Timestamp(recent.loc[recent["model"] == model_id, "last_day"].max()).date()
        return (
            f"{model_id}, pooled over the {data.RECENT_DAYS} days to {upto} (labels known so far; Wilson 95% "
            f"intervals): " + "; ".join(parts) + "."
        )

    def _not_judged(self, model_id: str, h: pd.DataFrame, minimum: float) -> str:
        """Why a small model's panels stay empty or carry no alert: too few labels, or values, a day to tell a change
        from noise (the alert rules' minimums)."""
        said = []
        daily = h.groupby("date")[["labelled", "predictions"]].sum(min_count=1)
        # a batch model's counts are its batches' (as summary says them), not the empty days' between
        gap = self._batch_models().get(model_id)
        unit = data.count_unit(gap is not None)
        if gap is not None:
            daily = daily[daily["predictions"] > 0]
        # the figure's days (the model's whole history): summary's lines count its last RECENT_DAYS
        shown = f"over the days shown ({h['date'].min():%Y-%m-%d} to {h['date'].max():%Y-%m-%d})" if len(h) else ""
        if len(daily) and daily["labelled"].max() < minimum:
            said.append(
                f"precision, recall and ECE are not shown nor judged: at most {daily['labelled'].max():,.0f} labelled "
                f"predictions {unit} {shown}, fewer than alerts.min_labelled ({minimum:g})"
            )
        psi_min = self.config.rule("psi", model_id).get("min_count")
        pool = int(self.config.rule("psi", model_id).get("pool_days") or 1)
        median = daily["predictions"].median() if daily["predictions"].notna().any() else None
        unjudged = self._drift_not_judged(model_id)
        if psi_min and median is not None and median < psi_min:
            # the pools' counts when the mart has them (a median of 29 x 7 passed 200, yet every pool held 177-180);
            # else the median day's count times the pool's days, a batch's times its batches (2 in 14 days of weekly)
            pooled = (
                f"judged on its version's last {pool} days pooled (alerts.rules.psi.pool_days; a day alone too where "
                "its own shift is overwhelming)"
            )
            if unjudged is None:
                verdict = pooled if median * math.ceil(pool / (gap or 1)) >= psi_min else "drawn but not judged"
            else:
                verdict = self._drift_verdict(model_id, unjudged, pooled, pool)
            said.append(
                f"its PSI is {verdict}: a median of {median:,.0f} predictions {unit} {shown}, fewer than "
                f"alerts.rules.psi.min_count ({psi_min:g}), where noise alone crosses the threshold"
            )
        lines = [f"{model_id}: " + "; ".join(said) + "."] if said else []
        lines += [f"{drift_not_judged_text(r)}." for r in ([] if unjudged is None else unjudged.itertuples())]
        # drift not measured, as summary says it (a trial's feature 85-90% missing was in summary only)
        lines += [f"{line}." for model, line in self._missing_features() if model == model_id]
        return " ".join(lines)

    def _drift_verdict(self, model_id: str, unjudged: pd.DataFrame, pooled: str, pool: int) -> str:
        """Which of the model's versions in the recent drift rows have their PSI judged (pooled), which not, and which
        have none yet: a version whose reference window is still filling has drift rows without a PSI (a trial's
        report said v2 was judged pooled, 0 of its 125 rows having one); a trial's older version judged pooled and
        its newer not yet read "drawn but not judged"."""
        recent = self._recent_drift[self._recent_drift["model_id"] == model_id]
        with_psi = set(map(str, recent.loc[recent["psi"].notna(), "model_version"]))
        filling = set(map(str, recent["model_version"])) - with_psi
        missing = set(map(str, unjudged["model_version"]))
        judged = with_psi - missing
        if judged and not missing and not filling:
            return pooled
        if not judged and not filling:
            return "drawn but not judged"
        parts = []
        if judged:
            parts.append(
                f"judged on the last {pool} days pooled (alerts.rules.psi.pool_days) for {', '.join(sorted(judged))}"
            )
        if missing:
            parts.append(f"drawn but not judged for {', '.join(sorted(missing))}")
        if filling:
            parts.append(f"not computed yet for {', '.join(sorted(filling))} (its reference window still filling)")
        return ", ".join(parts)

    def _missing_features(self) -> list[tuple[str, str]]:
        """(model, line) of every model's features gone missing to the report's day, read once for every model."""
        if not hasattr(self, "_missing"):
            days, upto = data.RECENT_DAYS, self.as_of
            self._missing = vanished_features(self.conn, days, upto) + mostly_missing_features(self.conn, days, upto)
        return self._missing

    def _batch_models(self) -> dict[str, float]:
        """data.batch_models to the report's day, read once for every model (none in a mart before its predictions)."""
        if not hasattr(self, "_batches"):
            import duckdb

            try:
                self._batches = data.batch_models(self.conn, self.as_of)
            except duckdb.BinderException:
                self._batches = {}
        return self._batches

    def _drift_not_judged(self, model_id: str) -> pd.DataFrame | None:
        """alerts.drift_not_judged of the model's drift rows of the RECENT_DAYS to the newest drift day (as summary
        reads them: a report day months after the last prediction, labels still landing, has none of its own);
        None without the drift marts or without the model's rows there."""
        if not hasattr(self, "_recent_drift"):  # read once for every model
            newest = data.newest_drift_day(self.conn, self.as_of)
            self._recent_drift = None if newest is None else data.recent_drift(self.conn, newest, data.RECENT_DAYS)
        if self._recent_drift is None:
            return None
        if not hasattr(self, "_version_values"):  # each version's values so far, to its newest day (as summary)
            newest = self._recent_drift["date"].max() if len(self._recent_drift) else None
            self._version_values = None if newest is None else version_values(self.conn, newest)
        rows = self._recent_drift[self._recent_drift["model_id"] == model_id]
        # no rows: nothing said judged (a trial's report said "judged ... pooled" where summary said not judged)
        return drift_not_judged(rows, self.config, self._version_values) if len(rows) else None

    def drift_distributions(self) -> tuple[pd.DataFrame | None, list[str]]:
        """The published bin shares of every alerted feature, or the columns the drift mart lacks for them."""
        if not (self.has("marts.feature_drift_daily") and self.has("marts.alerts")):
            return None, []
        lacking = data.drift_distribution_columns(self.conn)
        return (None, lacking) if lacking else (data.alerted_feature_distributions(self.conn, self.as_of), [])

    def _drift_distributions(self, s: Section, model_id, alerts, distributions, lacking) -> None:
        """Per feature that raised a PSI alert: its reference and current distribution on the newest alerted day."""
        psi_alerts = alerts[alerts["metric"] == "psi"]
        alerted = sorted({str(f) for f in psi_alerts["subject"].dropna() if str(f)})
        if not alerted:
            return
        if distributions is None:
            if lacking:
                s.add(
                    note(
                        f"Drifted features of {model_id}: {', '.join(alerted)}. marts.feature_drift_bins publishes "
                        f"no bin shares ({', '.join(lacking)}), so their distributions cannot be shown here."
                    )
                )
            return
        rows = distributions[distributions["model_id"] == model_id]
        shown = self.model(model_id).setdefault("drifted_features", {})
        for r in rows.itertuples(index=False):
            day = _day(r.date)
            several = (rows["feature"] == r.feature).sum() > 1
            who = f"{r.feature}{f' ({r.model_version})' if several else ''}"
            # an alert judged on its pool shows the pool: its days, values and pooled PSI (the alert's value)
            pooled = r.pool_days > 1 and pd.notna(r.first_day)
            side = f"{_day(r.first_day)} .. {day}" if pooled else str(day)
            pool = f"{POOLED_RULE.format(days=r.pool_days)}, {r.values:,.0f} values; " if pooled else ""
            s.add(
                f"<h4>Distribution of {html.escape(who)}: reference window vs {side} ({html.escape(pool, quote=False)}"
                f"PSI {_rate(r.psi)}, alert above {self.config.rule('psi', model_id)['above']:g})</h4>"
            )
            s.plot(
                f"drift-{model_id}-{r.feature}-{r.model_version}",
                rf.distribution_bars(r.bin_labels, r.reference_shares, r.current_shares, side),
                f"No bin shares of {who} on {day}.",
            )
            shown[str(r.feature)] = {
                "date": day,
                "psi": jsonable(r.psi),
                "model_version": str(r.model_version),
                "pool_days": int(r.pool_days),
            }

    def _precision_pair(self, model_id, h: pd.DataFrame) -> None:
        """The newest realised precision beside the label-free estimate of the same day, and today's estimate."""
        labelled = h.dropna(subset=["precision"])
        estimated = h.dropna(subset=["estimated_precision"])
        pair = {"realised": None, "estimated_same_day": None, "date": None, "estimated_latest": None}
        if len(labelled):
            last = labelled.iloc[-1]
            pair.update(
                date=_day(last["date"]), realised=last["precision"], estimated_same_day=last["estimated_precision"]
            )
        if len(estimated):
            pair.update(
                estimated_latest=estimated.iloc[-1]["estimated_precision"],
                estimated_date=_day(estimated.iloc[-1]["date"]),
            )
        self.model(model_id)["precision"] = jsonable(pair)

    # alerts --------------------------------------------------------------------
    def alerts(self) -> pd.DataFrame:
        if not self.has("marts.alerts"):
            return pd.DataFrame(columns=data.ALERT_COLUMNS)
        return data.alerts(self.conn, self.as_of)

    def alerts_section(self, alerts: pd.DataFrame) -> Section:
        s = Section("Alerts")
        if not self.has("marts.alerts"):
            return self.missing(s, "marts.alerts")
        self.summary["alerts"] = []
        if alerts.empty:
            s.add(note(f"No alert up to {self.as_of}."))
        else:
            # per version: a drop's threshold is its own version's reference rate; per episode (days no more than
            # ALERT_EPISODE_GAP_DAYS apart): a chance alert days before a real drift is a row of its own
            keys = ["model_id", "model_version", "metric", "subject", "episode"]
            frame = alerts.assign(
                subject=alerts["subject"].fillna(""), model_version=alerts["model_version"].fillna("")
            )
            frame["episode"] = frame.groupby(keys[:-1], sort=False)["date"].transform(alert_episodes)
            grouped = (
                frame.groupby(keys, sort=True)
                .agg(
                    first_date=("date", "min"),
                    last_date=("date", "max"),
                    days=("date", "nunique"),
                    threshold=("threshold", "last"),
                )
                .reset_index()
            )
            # the day furthest past the threshold (the lowest coverage or precision/recall drop), with its value
            # and its own rule text: a pooled rule's counts are the day's (a trial's row read the worst day's 0
            # beside the last day's "2 of 18 labelled")
            worst = {
                k: g.iloc[-1] if (i := worst_index(k[2], g["value"], g["threshold"])) is None else g.loc[i]
                for k, g in frame.groupby(keys, sort=True)
            }
            rows = [worst[tuple(r)] for r in grouped[keys].itertuples(index=False)]
            at = grouped.columns.get_loc("days") + 1
            grouped.insert(at, "worst_value", [r["value"] for r in rows])
            grouped.insert(at + 1, "worst_date", [pd.Timestamp(r["date"]).date() for r in rows])
            grouped["rule"] = [r["rule"] for r in rows]
            grouped["active on as-of day"] = grouped["last_date"] == pd.Timestamp(self.as_of)
            grouped = grouped.drop(columns="episode")
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
            requests = data.retraining_requests(self.conn, self.as_of)
            s.add("<h3>Retraining requests</h3>")
            s.add(table(requests) if len(requests) else note(f"No retraining request up to {self.as_of}."))
        return s

    # bias ----------------------------------------------------------------------
    def bias_section(self) -> Section:
        s = Section("Fairness")
        for published in ("marts.bias_group_rates", "marts.bias_verdicts"):
            if not self.has(published):
                return self.missing(s, published)
        # the verdicts the bias asset published for the newest window ending by the as-of day: never recomputed
        rates, verdicts = data.bias_window(self.conn, self.as_of)
        if rates.empty or verdicts.empty:
            why = "" if load_config().attribute_columns else f" ({NOT_ASSESSED})"
            s.add(note(f"No fairness verdicts (marts.bias_verdicts) up to {self.as_of}{why}."))
            return s
        limit = verdicts.iloc[0]
        floor, minimum = float(limit["disparate_impact_min"]), float(limit["min_labelled"])
        decisions = _decisions_needed(limit)
        windows = {m: (_day(r["window_start"].iloc[0]), _day(r["date"].iloc[0])) for m, r in rates.groupby("model_id")}
        start, end = max(windows.values(), key=lambda w: w[1])
        s.add(
            paragraph(
                f"Each group's disparate-impact ratio to the model's best-off group over its newest window that "
                f"compared groups (named with the model; a model that stopped predicting, or whose labels lag, keeps "
                f"its last verdict): its selection rate / the highest; for a model whose positive decision is "
                f"harmful, such as a fraud flag, the lower of its rate of not being flagged / the highest and the "
                f"least-flagged group's flag rate / its own (a group flagged twice as often scores 0.5, however rare "
                f"the flag); below {floor:g} (shaded) fails the four-fifths rule. Equal opportunity compares true-positive rates, or false-positive rates "
                f"(wrongly flagged) for a harmful positive decision. Error bars span both groups' Wilson 95% "
                f"intervals (the group's low end over the reference group's high end, and its high end over the "
                f"reference's low end; the reference's own bar is its interval over its rate), so a small group's bar, "
                f"or any bar against a small reference group, is visibly uncertain; a verdict fails only where a test across the groups (Fisher's exact with two, a "
                f"chi-square with more) finds them unlike at 5% and, with k > 2 groups, two groups' 1 - 5%/(k - 1) "
                f"intervals lie apart. Groups with fewer than {decisions:g} predictions are grey and take no part in "
                f"disparate impact (decisions need no label); the label-based verdicts take groups with "
                f'{minimum:g} labelled predictions (the table\'s "excluded from" column). Rates and verdicts as '
                f"published in marts.bias_group_rates and marts.bias_verdicts."
            )
        )
        self.summary["fairness_window"] = {"start": start, "end": end}
        for model_id in sorted(rates["model_id"].unique()):
            r = rates[rates["model_id"] == model_id]
            attributes = sorted(r["attribute"].unique())
            sizes = [int((r["attribute"] == a).sum()) for a in attributes]
            # one attribute per row, groups as horizontal bars: long (intersectional) labels get their full width
            fig = rf.new_figure(
                len(attributes), 1, attributes, height=sum(80 + 30 * n for n in sizes) + 60, row_heights=sizes
            )
            relative_by_attribute, intervals_by_attribute = {}, {}
            for i, attribute in enumerate(attributes):
                g = r[r["attribute"] == attribute].sort_values("group_value", ascending=False)
                judged = verdicts[(verdicts["model_id"] == model_id) & (verdicts["attribute"] == attribute)]
                needed = _decisions_needed(judged.iloc[0]) if len(judged) else decisions
                eligible = (g["predictions"] >= needed).to_numpy()  # disparate impact's groups, as the verdict
                harmful = bool((g["positive_decision"] == "harmful").all())
                bars = disparate_impact_relative(g, eligible if eligible.any() else ~eligible, harmful)
                names = g["group_value"].astype(str)
                relative_by_attribute[attribute] = dict(zip(names, jsonable(bars[0])))
                intervals_by_attribute[attribute] = {
                    name: jsonable([low, high]) for name, low, high in zip(names, bars[1], bars[2])
                }
                # red: a group the verdict names (behind beyond noise); amber: below the floor within noise
                named = set(judged["flagged_groups_disparate_impact"].iloc[0]) if len(judged) else set()
                colors = [
                    rf.EXCLUDED if not e else rf.BAD if n in named else rf.WITHIN_NOISE if v < floor else rf.OK
                    for e, v, n in zip(eligible, bars[0], names, strict=True)
                ]
                rf.bias_bars(fig, g, bars, colors, i + 1, floor)
            fig.update_layout(showlegend=False, hovermode="closest")
            # each group's bar: its disparate-impact ratio to the best-off group, and that ratio's 95% interval
            self.model(model_id)["disparate_impact_relative"] = relative_by_attribute
            self.model(model_id)["disparate_impact_relative_95"] = intervals_by_attribute
            first, last = windows[model_id]
            self.model(model_id)["fairness_window"] = {"start": first, "end": last}
            s.add(f"<h3>{html.escape(str(model_id))}, window {first} .. {last}</h3>")
            s.plot(f"bias-{model_id}", rf.done(fig), f"No fairness rates for {model_id}.")
            s.add(self._bias_interval_table(r, verdicts))
        failing = verdicts[~verdicts["passed"].astype(bool)]
        self.summary["fairness_failures"] = jsonable(failing[["model_id", "attribute"]].to_dict("records"))
        s.add("<h3>Verdicts</h3>")
        # a verdict the window could not judge (labels not in yet): the newest window that did, and what it found
        history = data.bias_verdict_history(self.conn, self.as_of)
        s.add(bullets(summarise_verdicts(verdicts, history=history).splitlines()))
        # a verdict that compared nothing passes, but it is no finding of fairness: said so, not "passed: yes"
        said = [("pass" if v["passed"] else "FAIL") if assessed(v) else "not assessed" for _, v in verdicts.iterrows()]
        s.add(table(verdicts[HEADLINE_VERDICT_COLUMNS].assign(verdict=said), scroll=True))
        return s

    @staticmethod
    def _bias_interval_table(rates, verdicts) -> str:
        """The rates behind the verdicts with their Wilson 95% intervals and denominators, one row per attribute and
        group."""
        intervals = group_intervals(rates, verdicts)
        # each rate's own denominator beside it: the selection rate is over every prediction, TPR over the
        # labelled positives, ... (the labelled column alone read as every rate's n)
        intervals["interval"] = [
            f"{_interval(v, lo, hi, _rate)} (n {n:,})"
            for v, lo, hi, n in zip(intervals["value"], intervals["ci_low"], intervals["ci_high"], intervals["trials"])
        ]
        # one row per group: the selection rate's exclusion (too few predictions) and the label-based rates' (too
        # few labelled) differ, and as pivot keys they split a group in two rows, each half blank
        excluded = _exclusions(intervals)
        wide = intervals.pivot_table(
            index=["attribute", "group_value", "labelled"],
            columns="rate",
            values="interval",
            aggfunc="first",
            sort=False,
        ).reset_index()
        wide = wide[["attribute", "group_value", "labelled", *[r for r in VERDICT_RATES if r in wide.columns]]]
        wide["excluded"] = [excluded[(a, g)] for a, g in zip(wide["attribute"], wide["group_value"])]
        wide.columns = [
            "attribute",
            "group",
            "labelled",
            *[f"{r} [95% CI]" for r in VERDICT_RATES if r in wide.columns],
            "excluded from",
        ]
        return (
            "<details><summary>Per-group rates with Wilson 95% intervals</summary>"
            + table(wide, scroll=True)
            + "</details>"
        )

    # data quality -------------------------------------------------------------------
    def quarantine_section(self) -> Section:
        s = Section("Quarantined rows")
        tables = data.quarantine_tables(self.conn)
        if not tables:
            return self.missing(
                s,
                "raw_quarantine.*",
                " (the analytics snapshot publishes marts only; the daily report asset reads the warehouse)",
            )
        counts = data.quarantine_counts(self.conn, tables, self.as_of)
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

        per_day = counts.groupby(["table_name", "date"], as_index=False)["rows"].sum()
        fig = rf.new_figure(height=360)
        for i, (name, rows) in enumerate(per_day.groupby("table_name", sort=True)):
            fig.add_trace(
                dict(
                    type="bar",
                    x=rf.values(rows["date"]),
                    y=rf.values(rows["rows"]),
                    name=name,
                    marker=dict(color=rf.COLORS[i % len(rf.COLORS)]),
                )
            )
        fig.update_layout(barmode="stack", yaxis=dict(title=dict(text="quarantined rows")))
        rf.count_axis(fig, per_day.groupby("date")["rows"].sum().max())
        s.plot("quarantine", rf.done(fig), "No quarantined rows.")
        reasons = counts.groupby(["table_name", "reason"], dropna=False, as_index=False).agg(
            rows=("rows", "sum"), first_date=("date", "min"), last_date=("date", "max")
        )
        s.add(table(reasons, scroll=True))
        return s

    def gates_section(self) -> Section:
        s = Section("Data-quality gates")
        if not self.has("quality.gate_results"):
            return self.missing(s, "quality.gate_results")
        gates = data.gate_results(self.conn, self.as_of)
        today = gates[gates["date"] == pd.Timestamp(self.as_of)]
        failed = gates[~gates["passed"].astype(bool)]
        self.summary["gates"] = {
            "suites_on_as_of": int(len(today)),
            "failed_on_as_of": sorted(today.loc[~today["passed"].astype(bool), "suite"]),
            "failed_days": int(failed["date"].nunique()),
            "warnings_on_as_of": {
                suite: json.loads(w) for suite, w in zip(today["suite"], today["warnings"]) if _expectations(w)
            },
        }
        s.add(
            paragraph(
                "Great Expectations suites validate each raw table per day; a failed blocking suite stops "
                "everything downstream of that table for the day. A warning holds nothing back: a failed "
                "expectation of severity warning, or a row expectation the day passed only by gates.rows.min_count."
            )
        )
        today, failed = _readable_gates(today), _readable_gates(failed)
        if today.empty:
            s.add(note(f"No gate results for {self.as_of}."))
        else:
            s.add(f"<h3>{self.as_of}</h3>")
            s.add(
                table(
                    today.assign(passed=today["passed"].map({True: "pass", False: "FAIL"}))[
                        ["suite", "table_name", "passed", "rows_validated", "failed_expectations", "warnings"]
                    ]
                )
            )
        s.add("<h3>Failed gates up to the as-of day</h3>")
        s.add(table(failed, scroll=True) if len(failed) else note(f"No gate failed up to {self.as_of}.", kind="ok"))
        warned = data.gate_warnings(self.conn, self.as_of)
        if len(warned):
            s.add(f"<h3>Warnings of the {data.RECENT_DAYS} days up to the as-of day</h3>")
            s.add(table(warned.rename(columns={"first_day": "first", "last_day": "latest"}), scroll=True))
        return s

    # KPIs and optional marts ---------------------------------------------------------
    def kpi_section(self) -> Section:
        s = Section("Business KPIs")
        if not self.has("marts.kpi_daily"):
            return self.missing(s, "marts.kpi_daily")
        kpi = data.kpis(self.conn, self.as_of)
        currency = load_config().currency
        # (column, subplot title with its unit, y tick format)
        shown = [
            ("active_users", "active users (users a day)", ",d"),
            ("conversion_rate", "conversion rate (% of sessions converting)", ".1%"),
            ("revenue_per_active_user", f"revenue per active user ({currency})", ",.2f"),
        ]
        fig = rf.new_figure(3, 1, [title for _, title, _ in shown], shared_x=True, height=640)
        for i, (column, title, fmt) in enumerate(shown):
            rf.line(fig, kpi["date"], kpi[column], column.replace("_", " "), rf.COLORS[i], i + 1)
            fig.update_yaxes(tickformat=fmt, row=i + 1, col=1)
        fig.update_yaxes(title=dict(text="users"), row=1, col=1)
        fig.update_yaxes(title=dict(text="rate"), row=2, col=1)
        fig.update_yaxes(title=dict(text=currency), row=3, col=1)
        s.plot("kpis", rf.done(fig), f"No KPI rows up to {self.as_of}.")
        settle = int(dbt_var("kpi_lookback_days"))
        if settle > 0 and not kpi.empty:  # a trial's plot fell 18% -> 2.6% on days whose orders had not landed
            newest = pd.Timestamp(kpi["date"].max()).date()
            # the days no later run has settled yet: none in a report built again after them (a re-trial's)
            built = pd.Timestamp(self.conn.execute("SELECT max(date) FROM marts.kpi_daily").fetchone()[0]).date()
            first = built - timedelta(days=settle - 1)  # a day is final once the run of `settle` days after it ran
            if first <= newest:
                s.add(
                    paragraph(
                        f"The conversion rate of the newest {(newest - first).days + 1} day(s) ({first} .. {newest}) "
                        f"is not final: a session converts with a completed order up to {settle} day(s) later "
                        "(kpi_lookback_days), so those days rise as orders land; a conversion key result reads the "
                        "days before them."
                    )
                )
        return s

    def okr_section(self, lifts: pd.DataFrame) -> Section:
        s = Section("OKR progress")
        if not self.has("marts.okr_progress"):
            return self.missing(s, "marts.okr_progress")
        okrs = data.latest_rows(self.conn, "marts.okr_progress", "date", self.as_of)
        if okrs.empty:
            s.add(note(f"No OKR progress rows up to {self.as_of}."))
            return s

        okrs = okrs.sort_values(["objective", "key_result"])
        money_text = _currency_amount(load_config().currency)
        if "treatment_variant" in okrs:  # the arm a net value or lift reads, named as the headline names it
            arms = {} if lifts.empty else dict(zip(zip(lifts["model_id"], lifts["treatment_variant"]), lifts["arm"]))
            okrs = okrs.assign(
                model_id=[
                    m if _missing(m) else model_arm(m, arms.get((m, v), ""))
                    for m, v in zip(okrs["model_id"], okrs["treatment_variant"])
                ]
            )
        labels = rf.values(okrs["key_result"].astype(str))
        progress, expected = rf.values(okrs["progress"]), rf.values(okrs["expected_progress"])
        colors = [rf.OK if t else rf.BAD for t in okrs["on_track"].fillna(False)]
        trust = okrs.get("trustworthy", pd.Series(None, index=okrs.index, dtype=object))
        reasons = okrs.get("untrusted_reason", pd.Series(None, index=okrs.index, dtype=object))
        # false only: a KPI's or health metric's value has no attribution row to trust (NULL); a value within
        # noise (not significant) is no more counted than an untrusted one
        significant = okrs.get("significant", pd.Series(None, index=okrs.index, dtype=object))
        untrusted = [
            (not _missing(f) and not bool(f)) or (not _missing(g) and not bool(g))
            for f, g in zip(trust, significant, strict=True)
        ]
        fig = rf.new_figure(height=360)
        for marked, name in ((False, "progress"), (True, UNTRUSTED_PROGRESS)):
            rows = [i for i, u in enumerate(untrusted) if u is marked]
            if not rows:
                continue
            marker = dict(color=[colors[i] for i in rows])
            bars = dict(type="bar", x=[labels[i] for i in rows], y=[progress[i] for i in rows], name=name)
            if marked:  # hatched (stripes on white: faded), the reason on hover as the tables give it
                marker.update(pattern=dict(shape="/"), line=dict(color=marker["color"], width=1.5))
                bars["hovertext"] = [
                    f"{OKR_TRUST}: {_grade(trust.iloc[i], reasons.iloc[i])}; significant: "
                    f"{_okr_significance(okrs.iloc[i], money_text)}"
                    for i in rows
                ]
            # one slot per key result, whichever of the two traces its bar is in
            fig.add_trace(dict(bars, marker=marker, offsetgroup="progress"))
        fig.add_trace(
            dict(
                type="bar",
                x=labels,
                y=expected,
                name="expected by now (linear pace)",
                marker=dict(color=rf.EXCLUDED),
                offsetgroup="expected",
            )
        )
        rf.hline(fig, 1, dict(color=rf.COLORS[2], dash="dash"), "target")
        # the target line in view when every bar is below it (autorange follows the bars only)
        drawn = [v for v in [*progress, *expected] if not _missing(v)]
        low, high = min([0.0, *drawn]), max([1.0, *drawn])
        fig.update_yaxes(tickformat=".0%", range=[low - 0.05 * (high - low), high + 0.05 * (high - low)])
        fig.update_xaxes(type="category", categoryorder="array", categoryarray=labels)
        fig.update_layout(barmode="group")
        s.add(
            paragraph(
                f"Progress from baseline to target of each key result as of {_day(okrs['date'].iloc[0])}, "
                f"next to the progress a linear pace to its deadline would have reached. A net value or lift is "
                f"its treatment arm's cumulative value of the newest day with one ('value as of': after its "
                f"experiment's data ends, its final value); '{OKR_TRUST}' is whether that attribution row is both "
                f"(n/a for a KPI or health metric), and 'significant' whether its 95% interval excludes 0 (a lift: "
                f"the Holm-adjusted decision the headline gives): an achieved key result without all three is no "
                f"achievement yet."
                + (
                    " A hatched bar is a value that is not all three (why: on hover and in the table)."
                    if any(untrusted)
                    else ""
                )
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
                        "treatment_variant",
                        "value_as_of",
                        "trustworthy",
                        "untrusted_reason",
                        "ci_low",
                        "ci_high",
                        "significant",
                    )
                    if c in okrs
                ]
            ].to_dict("records")
        )
        s.plot("okr-progress", rf.done(fig), "No OKR progress to plot.")
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
                "value_as_of",
                "progress",
                "expected_progress",
                "deadline",
                "on_track",
                "status",
            )
            if c in okrs
        ]
        # a net-value key result is money: thousands separated, in the project's currency
        money = okrs.get("metric_kind", pd.Series("", index=okrs.index)) == "net_value"
        shown_okrs = okrs[shown].astype({c: object for c in ("baseline", "target", "current_value") if c in shown})
        for c in ("baseline", "target", "current_value"):
            if c in shown:
                shown_okrs.loc[money, c] = okrs.loc[money, c].map(money_text)
        if "trustworthy" in okrs:
            shown_okrs[OKR_TRUST] = [_grade(f, r) for f, r in zip(okrs["trustworthy"], okrs["untrusted_reason"])]
        if "significant" in okrs:
            shown_okrs["significant"] = [_okr_significance(r, money_text) for _, r in okrs.iterrows()]
        shown_okrs = shown_okrs.rename(columns={"model_id": "model", "value_as_of": "value as of"})
        s.add(table(shown_okrs, {"progress": _pct, "expected_progress": _pct}))
        return s

    def scorecard_section(self, lifts: pd.DataFrame) -> Section:
        s = Section("Metric scorecard")
        if not self.has("marts.metric_scorecard"):
            return self.missing(s, "marts.metric_scorecard")
        card = data.latest_rows(self.conn, "marts.metric_scorecard", "date", self.as_of)
        if card.empty:
            s.add(note(f"No scorecard rows up to {self.as_of}."))
            return s
        s.add(paragraph(f"Which metrics each experiment can detect, and by when (as of {_day(card['date'].iloc[0])})."))
        # a row per treatment arm: named 'class_size: small vs regular' where the experiment has several
        card = card.assign(model=model_arms(card, controls_of(lifts)))
        shown = [
            c
            for c in (
                "experiment_id",
                "model",
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
        rows = data.latest_rows(self.conn, "marts.leading_lagging", "as_of_date", self.as_of)
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
                    if searched
                    else "No correlation of a health metric's daily changes with a KPI's has a p-value yet: too few "
                    "days with both (marts.leading_lagging.n_days)."
                )
            )
            return s
        s.add(
            paragraph(
                f"Health metrics whose daily changes precede a KPI's by the lag shown (or move with it the same "
                f"day: no lead, the same event seen twice), beyond chance: Holm-adjusted "
                f"over the {searched} correlations searched, of changes net of each weekday's mean (a shared weekly "
                "cycle is no lead), with an effective sample size for autocorrelated changes. Correlation is not "
                "causation: a lead says which indicator to watch."
            )
        )
        shown = leads.assign(lag=leads["lag_days"].map(lambda d: f"{int(d)} day(s)" if d else "same day (not a lead)"))
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
        leads = kpi_drop_leads_of(self.conn, self.as_of, dbt_var("leading_lagging"))
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

    def _labels_only_note(self) -> str:
        """The note of a day reported for the labels (or feedback) that landed on it alone (has_data_on): a
        stopped model's months-late labels, which its runs' reports would otherwise not show."""
        if data.has_rows_on(self.conn, self.tables, self.as_of):
            return ""
        newest = data.newest_rows_day(self.conn, self.tables, self.as_of)
        return (
            f" No results, model-health or KPI rows of {self.as_of} itself"
            + (f" (the newest are of {newest})" if newest else "")
            + ": dated for the labels (or feedback) that landed on it for earlier days' predictions, counted in their "
            "precision, recall, calibration and label-based fairness verdicts."
        )

    # ---------------------------------------------------------------------------
    def build(self) -> Report:
        data.require_data_on(self.conn, self.tables, self.as_of)
        lifts, impact = _with_arms(self.lifts(), self.impact())
        alerts = self.alerts()
        sections = [
            self.headline(lifts, impact),
            self.lift_section(lifts),
            self.value_section(impact),
            self.health_section(alerts),
            self.alerts_section(alerts),
            self.bias_section(),
            self.kpi_section(),
            self.okr_section(lifts),
            self.scorecard_section(lifts),
            self.leading_section(),
            self.quarantine_section(),
            self.gates_section(),
        ]
        for section in sections:
            self.summary["sections"].setdefault(section.anchor, "present")
        plots = [name for section in sections for name in section.figures]
        self.summary["plots"] = plots
        later = labels_known_after(self.conn, self.tables, self.as_of)
        self.summary["labels_known_by"] = (later or self.as_of).isoformat()
        rebuilt = (
            f" Built again later: its label-based figures (precision, recall, calibration, the label-based "
            f"fairness verdicts) count the labels known by {later}, not only those known on {self.as_of}."
            if later
            else ""
        )
        html_text = page(
            f"Impact Ledger — daily report {self.as_of}",
            f"What each model is worth, whether it is healthy, and whether the data is fit to act on "
            f"(data up to {self.as_of}).{self._labels_only_note()}{rebuilt}",
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


REPORT_NAME = re.compile(r"impact_ledger_(\d{4}-\d{2}-\d{2})\.html")


def prune_reports(out_dir: Path, newest: date, keep_days: int | None) -> list[Path]:
    """Delete the daily reports of days more than ``keep_days`` before ``newest`` (None: keep all); returns them.
    Only files named as save_report names them: anything else in the folder is left."""
    if keep_days is None or not Path(out_dir).is_dir():
        return []
    oldest = newest - timedelta(days=keep_days - 1)
    removed = []
    for path in sorted(Path(out_dir).iterdir()):
        match = REPORT_NAME.fullmatch(path.name)
        if match and date.fromisoformat(match.group(1)) < oldest:
            path.unlink()
            removed.append(path)
    return removed


def write_report(conn, as_of: date, out_dir: Path) -> Path:
    return save_report(render_report(conn, as_of), out_dir)
