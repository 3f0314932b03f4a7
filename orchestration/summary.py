"""`impact-ledger summary`: what the warehouse says this morning, as text (attribution, model health, alerts,
days the gates held back, leading indicators)."""

from __future__ import annotations

import json
from pathlib import Path

from orchestration.lib.cost_gaps import cost_gap_notes
from orchestration.lib.missing_features import missing_feature_lines
from orchestration.lib.report_data import (
    FEW_CALIBRATION_LABELS,
    RECENT_DAYS,
    USUAL_GAP_SQL,
    batch_models,
    count_unit,
    unloaded_days,
)
from orchestration.lib.settings import dbt_var
from orchestration.lib.settings import value_metric as value_metric_setting
from orchestration.lib.version_changes import CHANGE_DAYS

SUMMARY_RESULTS_SQL = """
SELECT model_id, experiment_id, treatment_variant, control_variant, metric, as_of_date, n_control, n_treatment,
       estimate,
       CASE WHEN estimate = 'cuped' THEN cuped_relative_lift ELSE relative_lift END AS lift,
       CASE WHEN estimate = 'cuped' THEN cuped_relative_ci_low ELSE relative_ci_low END AS ci_low,
       CASE WHEN estimate = 'cuped' THEN cuped_relative_ci_high ELSE relative_ci_high END AS ci_high,
       sequential_relative_ci_low AS sequential_ci_low, sequential_relative_ci_high AS sequential_ci_high,
       sequential_p_value,
       cuped_variance_reduction, p_value_adjusted, multiple_testing, significant, degenerate_reason, exact_p_value,
       guardrail_verdict, trustworthy, untrusted_reason, decision_grade, decision_grade_reason, mde_relative
FROM attribution.experiment_results
WHERE analysis_window = 'cumulative' AND as_of_date = (SELECT max(as_of_date) FROM attribution.experiment_results)
ORDER BY model_id, treatment_variant, metric
"""
SUMMARY_IMPACT_SQL = """
SELECT model_id, experiment_id, treatment_variant, value_metric, treated_units, incremental_value, model_cost, net_value,
       net_value_ci_low, net_value_ci_high, roi, roi_ci_low, roi_ci_high, trustworthy, decision_grade,
       decision_grade_reason
FROM attribution.model_impact
WHERE analysis_window = 'cumulative' AND as_of_date = (SELECT max(as_of_date) FROM attribution.model_impact)
ORDER BY model_id, treatment_variant
"""


# one line per model and alert metric (its days, each version's apart: a span ran from v1's alert to v2's), and per
# model and request status (a request's reason names its day)
ALERT_DAYS_SQL = """
SELECT DISTINCT model_id, metric || CASE WHEN subject <> '' THEN ' (' || subject || ')' ELSE '' END
       || CASE WHEN versions > 1 THEN ' of ' || model_version ELSE '' END AS detail, date
FROM (SELECT *, count(DISTINCT model_version) OVER (PARTITION BY model_id) AS versions FROM marts.alerts)
"""
REQUESTS_SQL = """
SELECT 'retraining requests' AS what, model_id, status AS detail, min(date) AS since, max(date) AS latest,
       count(*) AS days, arg_max(status_reason, date) FILTER (WHERE status_reason IS NOT NULL) AS latest_reason
FROM marts.retraining_requests GROUP BY model_id, status
"""


def _health_lines(conn):
    """ALERT_DAYS_SQL's alerts, one row per model and metric: the span of its latest episode (report_data's
    alert_episodes: a trial's two chance PSI alerts nine days before a real drift read as one span "from 09-21 to
    10-07") and its earlier days (earlier_*); then REQUESTS_SQL's requests."""
    import pandas as pd

    from orchestration.lib.report_data import alert_episodes

    alerted = conn.execute(ALERT_DAYS_SQL).df()
    keys = ["model_id", "detail"]
    alerted["episode"] = alerted.groupby(keys)["date"].transform(alert_episodes)
    latest = alerted["episode"] == alerted.groupby(keys)["episode"].transform("max")
    spans = (
        alerted[latest]
        .groupby(keys)
        .agg(since=("date", "min"), latest=("date", "max"), days=("date", "size"))
        .join(
            alerted[~latest]
            .groupby(keys)
            .agg(earlier_days=("date", "size"), earlier_since=("date", "min"), earlier_latest=("date", "max"))
        )
        .reset_index()
        .assign(what="alerts", latest_reason=None)
    )
    spans["earlier_days"] = spans["earlier_days"].fillna(0).astype(int)
    requests = conn.execute(REQUESTS_SQL).df().assign(earlier_days=0)
    lines = pd.concat([spans, requests], ignore_index=True) if len(requests) else spans
    return lines.sort_values(["what", "model_id", "since"], kind="stable").reset_index(drop=True)


PSI_LINES = 5  # a model's PSI alert lines said one by one; the others folded into one line


def _fold_psi_lines(conn, health):
    """_health_lines' rows but, per model, only its PSI_LINES PSI alert lines with the newest alerts (the latest day,
    then the highest PSI of the latest day), and after them a row (``what`` 'folded') for the rest, naming the
    highest first: a trial's 64 pixel features over 11 one-vs-rest views printed 245 alert lines."""
    import pandas as pd

    psi = (health["what"] == "alerts") & health["detail"].astype(str).str.startswith("psi (")
    if not psi.any():
        return health
    # each line's PSI on its latest day (a tie on the latest day fell back to the features' names)
    peak = conn.execute(
        "SELECT model_id, date, metric || ' (' || subject || ')' AS detail, max(value) AS peak FROM marts.alerts "
        "WHERE metric = 'psi' GROUP BY ALL"
    ).df()
    peaks = {(m, d, pd.Timestamp(t)): v for m, t, d, v in peak.itertuples(index=False)}
    lines = health[psi].copy()
    versionless = lines["detail"].astype(str).str.replace(r" of [^()]*$", "", regex=True)  # 'psi (x) of v2'
    lines["peak"] = [
        peaks.get((m, d, pd.Timestamp(t))) for m, d, t in zip(lines["model_id"], versionless, lines["latest"])
    ]
    ranked = lines.sort_values(["latest", "peak"], ascending=False, kind="stable")
    shown = ranked.groupby("model_id").head(PSI_LINES).index
    rest = ranked.drop(shown)
    folded_lines = {}
    for model, folded in rest.groupby("model_id", sort=True):
        names = list(dict.fromkeys(str(d)[len("psi (") :].split(")")[0] for d in folded["detail"]))
        more = f" and {len(names) - FOLDED_NAMES} more" if len(names) > FOLDED_NAMES else ""
        since, latest = pd.Timestamp(folded["since"].min()).date(), pd.Timestamp(folded["latest"].max()).date()
        folded_lines[model] = (
            f"alerts: {model} psi of {len(folded)} more feature line(s), the newest and highest PSI first: "
            f"{', '.join(names[:FOLDED_NAMES])}{more}, from {since} to {latest} (each: SELECT * FROM marts.alerts "
            f"WHERE model_id = '{model}' AND metric = 'psi')"
        )
    # each model's folded row right after its last PSI line shown
    last_shown = {model: index for index, model in health.loc[psi & ~health.index.isin(rest.index), "model_id"].items()}
    rows = []
    for index, row in health.drop(rest.index).iterrows():
        rows.append(row.to_dict())
        if last_shown.get(row["model_id"]) == index and row["model_id"] in folded_lines:
            rows.append({"what": "folded", "model_id": row["model_id"], "detail": folded_lines[row["model_id"]]})
    counts = {c: "Int64" for c in ("days", "earlier_days") if c in health}  # whole numbers beside a folded row
    return pd.DataFrame(rows, columns=health.columns).astype(counts)


FOLDED_NAMES = 8  # the features a folded line names


# The strongest *significant* lead of each KPI on the as-of date: the best of the
# hundreds of correlations searched (models x metrics x KPIs x lags) is large by
# chance alone, so only rows whose Holm-adjusted p-value clears alpha are leads.
LEADING_SQL = """
SELECT kpi, model_id, health_metric, lag_days, correlation, n_days, p_value_adjusted, family_size
FROM marts.leading_lagging
WHERE as_of_date = ? AND significant
QUALIFY row_number() OVER (PARTITION BY kpi ORDER BY p_value_adjusted, abs(correlation) DESC, lag_days) = 1
ORDER BY kpi
"""
LEADING_SEARCHED_SQL = "SELECT max(family_size) FROM marts.leading_lagging WHERE as_of_date = ?"


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{x:+.1%}"


def _share(v: float) -> str:
    """A share as a percentage, with a decimal under 10% (a 0.4% variance cut is not "0%"), and two significant
    digits under 0.1% (a trial's 0.04% variance cut read "0.0% less variance" beside the CUPED it chose)."""
    if v and abs(v) < 0.001:
        return f"{v * 100:.2g}%"
    return f"{v:.1%}" if abs(v) < 0.1 else f"{v:.0%}"


HELD_SHOWN = 10  # the latest days a gate held back, listed by summary


def _why_attribution_stops(conn, as_of, held: list[tuple]) -> str:
    """Why the attribution's newest day is before the newest held-back day: days of the tables a lift reads held
    back after it, or none (a trial's held-back days after it were of labels only, which no lift reads, and the
    summary said "later days were held back": its sessions and orders ended there)."""
    from orchestration.lib.attribution import ATTRIBUTION_TABLES

    tables = sorted(ATTRIBUTION_TABLES)
    read = conn.execute(
        "SELECT table_name, max(rows_validated) FROM quality.gate_results WHERE NOT passed AND date > ? "
        f"AND table_name IN ({', '.join('?' for _ in tables)}) GROUP BY 1 ORDER BY 1",
        [as_of, *tables],
    ).fetchall()
    if any(rows for _, rows in read):
        return f"later days of {', '.join(t for t, rows in read if rows)} were held back"
    if read:  # a retrial's empty orders day among 300 sessions was said to have "had no rows"
        return (
            f"the later days held back had no rows of {', '.join(t for t, _ in read)} (if that data ended there, none "
            "are missing; else an outage, or a day the business was closed: gates.volume.closed_days)"
        )
    if any(rows for day, _, rows, _ in held if day > as_of):
        return (
            "the later days held back are of tables no lift reads (labels, predictions): the results end where "
            "the experiments' own data (assignments, sessions, orders) or their end dates do"
        )
    return "the later days held back had no rows (if the data ended there, none are missing)"


def _held_back_days(conn) -> list[tuple]:
    """(day, "suite (failed expectations), ...", rows the held-back tables had that day, the suites the week around
    it ran but it did not) of every day a gate held back, the latest first. A day run alone stops at its failed
    gate, so the tables loaded after it (labels, feedback after predictions) were never loaded that day."""
    import duckdb

    from orchestration.lib.quality_gate import NOT_DESIGN_SQL

    try:  # an experiment design gate holds no day back: _design_failures says its days
        rows = conn.execute(
            "SELECT date, suite, failed_expectations, rows_validated FROM quality.gate_results WHERE NOT passed "
            f"AND {NOT_DESIGN_SQL} ORDER BY date DESC, suite"
        ).fetchall()
        missing = dict(
            conn.execute(
                f"""
                WITH held AS (SELECT DISTINCT date FROM quality.gate_results WHERE NOT passed AND {NOT_DESIGN_SQL})
                SELECT h.date, list(DISTINCT n.suite ORDER BY n.suite)
                FROM held h
                JOIN quality.gate_results n ON n.date BETWEEN h.date - 7 AND h.date + 7 AND n.date <> h.date
                WHERE n.suite NOT IN (SELECT suite FROM quality.gate_results WHERE date = h.date)
                GROUP BY h.date
                """
            ).fetchall()
        )
    except duckdb.CatalogException:
        return []
    days: dict = {}
    counts: dict = {}
    for day, suite, failed, n in rows:
        names = ", ".join(json.loads(failed)) if failed else ""
        days.setdefault(day, []).append(f"{suite} ({names})" if names else suite)
        counts[day] = counts.get(day, 0) + (n or 0)
    return [(day, ", ".join(why), counts[day], missing.get(day, [])) for day, why in days.items()]


def _print_unjudged(unjudged: list[tuple], newest) -> None:
    """summary's section of the days not loaded (report_data.unloaded_days); ``newest``: the newest day a gate judged. The days
    after the first one not loaded run again too: their runs read it as empty (kpi_lookback_days, labels of its
    predictions), and a re-run of the day alone left a trial's conversions and health rows short."""
    if not unjudged:
        return
    first = min(d for d, _ in unjudged)
    print(
        f"\nDays not loaded ({len(unjudged)}): no quality gate judged these tables that day, so its run stopped "
        "before loading them or never ran; the day's KPIs are left out, and the sessions of the kpi_lookback_days "
        "before it convert without its orders, experiment results and later days' health without its rows, until "
        f"it runs with the days after it (impact-ledger materialize --start {first} --end {newest})"
    )
    for day, tables in unjudged[:HELD_SHOWN]:
        print(f"  {day}: {', '.join(tables)}")
    if len(unjudged) > HELD_SHOWN:
        print(f"  ... and {len(unjudged) - HELD_SHOWN} earlier day(s)")


def _design_failures(conn) -> list[str]:
    """Per experiment design gate that failed: its table, failed expectations and days, compactly. Those days'
    experiment results are untrustworthy, but nothing is held back from the models' marts (listed as held-back
    days, a trial's 50/50 shares read as if every mart had lost its 24 days)."""
    import duckdb

    from orchestration.lib.quality_gate import (
        NOT_DESIGN_SQL,
        days_in_words,
        design_gate_experiments,
        design_gate_failures,
    )

    try:
        failures, named = design_gate_failures(conn), design_gate_experiments(conn)
        rows = conn.execute(
            "SELECT DISTINCT suite, table_name, failed_expectations FROM quality.gate_results "
            f"WHERE NOT passed AND NOT ({NOT_DESIGN_SQL}) ORDER BY ALL"
        ).fetchall()
    except duckdb.CatalogException:
        return []
    tables = {suite: table for suite, table, _ in rows}
    names: dict[str, dict] = {}
    for suite, _, failed in rows:
        names.setdefault(suite, {}).update(dict.fromkeys(json.loads(failed) if failed else []))
    return [
        f"{suite} (raw.{tables[suite]}: {', '.join(names[suite]) or 'failed'}) on {len(days)} day(s): "
        f"{days_in_words(days)}" + (f" (the results of {', '.join(named[suite])})" if named.get(suite) else "")
        for suite, days in failures.items()
    ]


def _percent_days(conn, held: list[tuple]) -> dict:
    """Per held-back day whose predictions failed a [0, 1] range (score, threshold) because every value outside it
    lies above 1 and at most 100, the gate's percentage hint: gate_results keep only the expectations' names."""
    import duckdb

    from orchestration.lib.quality_gate import unit_slips_of_table

    hints: dict = {}
    for column in ("score", "threshold"):
        days = [day for day, why, *_ in held if f"expect_column_values_to_be_between({column})" in why]
        try:
            slips = unit_slips_of_table(conn, "predictions", column, days) if days else {}
        except duckdb.CatalogException:  # a warehouse without raw tables
            slips = {}
        for day, hint in slips.items():
            hints.setdefault(day, []).append(hint)
    return hints


def _late_conversions(conn) -> str | None:
    """Completed orders that came more days after their session than a run recomputes of KPIs (kpi_lookback_days):
    their sessions converted only in a run over the session's day, so day-by-day runs undercount conversion where
    a backfill does not (a trial's 4% against 42%)."""
    import duckdb

    from orchestration.lib.project_config import KPI_LOOKBACK_MAX
    from orchestration.lib.settings import dbt_var

    lookback = int(dbt_var("kpi_lookback_days"))
    try:
        late, most = conn.execute(
            "SELECT count(*), max(o.order_date - s.session_date) FROM staging.stg_orders o "
            "JOIN staging.stg_sessions s USING (session_id) WHERE o.is_completed AND o.order_date - s.session_date > ?",
            [lookback],
        ).fetchone()
    except duckdb.Error:  # a warehouse without the staging views, or older ones
        return None
    if not late:
        return None
    return (
        f"{late:,} completed orders came more than kpi_lookback_days ({lookback}) after their session, up to {most} "
        "days: a run counts such a session as converting only when it recomputes the session's day, so daily runs "
        f"undercount conversion_rate where a backfill does not; set kpi_lookback_days: {min(most, KPI_LOOKBACK_MAX)} in the "
        "project file (init proposes it) and run the days since the first such session again"
    )


def _held_label_days(conn, since) -> str | None:
    """The labels days the quality gates hold back from ``since`` on, said beside a label_coverage alert: labels
    that landed then are not counted (a trial's coverage alerts were labels that came, on days held back)."""
    days = [
        d
        for (d,) in _rows(
            conn,
            "SELECT DISTINCT date FROM quality.gate_results WHERE suite = 'raw_labels' AND NOT passed AND date >= ? "
            "ORDER BY 1",
            [since],
        )
    ]
    if not days:
        return None
    shown = ", ".join(map(str, days[:HELD_SHOWN])) + (" ..." if len(days) > HELD_SHOWN else "")
    return (
        f"the quality gates hold back {len(days)} labels day(s) since {since} ({shown}): the labels that landed then "
        "are not counted until those days pass and run again (Days held back, below)"
    )


def _span(days: int, first, last) -> str:
    """``days`` days from ``first`` to ``last``: 'first .. last' only when they are every day between (as elsewhere),
    'first to last' when some between are not among them (a trial read 2 days as '05-14 .. 05-18')."""
    import pandas as pd

    first, last = pd.Timestamp(first).date(), pd.Timestamp(last).date()
    if first == last:
        return f"{first}"
    return f"{first} .. {last}" if days == (last - first).days + 1 else f"{first} to {last}"


def _gate_warnings(conn) -> list[str]:
    """Per suite and expectation that only warns (a paused label feed's freshness, a day passed only by
    gates.rows.min_count): its days of the last RECENT_DAYS days with gate results, first and latest."""
    from orchestration.lib.quality_gate import tolerated_hint
    from orchestration.lib.report_data import earlier_gate_warnings, gate_warnings

    lines = [
        f"{r.suite} {r.warning}: {r.days} day(s), {_span(r.days, r.first_day, r.last_day)}"
        + (f" ({hint})" if (hint := tolerated_hint(r.warning)) else "")
        for r in gate_warnings(conn, None, RECENT_DAYS).itertuples()
    ]
    earlier, first, last = earlier_gate_warnings(conn, RECENT_DAYS)
    if earlier:
        lines.append(
            f"{'and ' if lines else ''}{earlier} earlier day(s) warned, {_span(earlier, first, last)}: impact-ledger query "
            "\"SELECT date, suite, warnings FROM quality.gate_results WHERE warnings <> '[]' ORDER BY date\""
        )
    return lines


def _quarantined_shares(conn) -> list[str]:
    """Per raw table with days: its quarantined share of the last RECENT_DAYS days' rows where that is above
    gates.rows.max_share and at least gates.rows.min_count rows, though no single day reached min_count (the gate
    holds back only such days): a wrong time zone moved ~21% of a trial's rows out of their files' days, every day
    under 10 rows, and the run ended "ok" with a warning per day."""
    import duckdb

    from orchestration.lib.project_config import load_config
    from orchestration.lib.report_data import quarantine_tables

    rows = load_config().gates.rows
    lines = []
    unloaded = {table for table, *_ in _mostly_quarantined(conn)}  # said louder, at the top
    for table in quarantine_tables(conn):
        if table in unloaded:
            continue
        try:
            quarantined, loaded, most, reason = conn.execute(
                f"""
                -- the newest day of either: a table whose last weeks were all quarantined has no newer raw day
                WITH newest AS (SELECT greatest((SELECT max(_partition_date) FROM raw."{table}"),
                                                (SELECT max(_partition_date) FROM raw_quarantine."{table}")) AS day),
                q AS (SELECT * FROM raw_quarantine."{table}" WHERE _partition_date > (SELECT day FROM newest) - {RECENT_DAYS})
                SELECT (SELECT count(*) FROM q),
                       (SELECT count(*) FROM raw."{table}" WHERE _partition_date > (SELECT day FROM newest) - {RECENT_DAYS}),
                       (SELECT max(n) FROM (SELECT count(*) AS n FROM q GROUP BY _partition_date)),
                       (SELECT mode(_reason) FROM q)
                """
            ).fetchone()
        except duckdb.Error:  # a table without _reason, or raw without the table: nothing to say
            continue
        total = quarantined + loaded
        if not total or quarantined < max(rows.min_count, 1) or quarantined / total <= rows.max_share:
            continue
        if (most or 0) >= rows.min_count:
            continue  # a day reached the gate's count: judged there
        lines.append(
            f"raw.{table}: {quarantined:,} of {total:,} rows quarantined over its last {RECENT_DAYS} days "
            f"({quarantined / total:.1%}, above gates.rows.max_share {rows.max_share:g}), no day reaching "
            f"gates.rows.min_count ({rows.min_count}), so none held back: a steady cause, not a bad day (most often: "
            f"{reason}; raw_quarantine.{table}._reason){QUARANTINE_HINTS.get(reason, '')}"
        )
    return lines


def _mostly_quarantined(conn) -> list[tuple[str, int, int, str]]:
    """(table, quarantined rows, all its rows, the commonest reason) of the raw tables more of whose rows were
    quarantined than loaded, over all their days: a trial's weekly exports, every file dated after the days it held,
    were quarantined whole; each day stayed under gates.rows.min_count, the run said "ok", and the pooled line
    above read the last 30 days before the newest loaded day, of which there was none."""
    import duckdb

    from orchestration.lib.report_data import quarantine_tables

    out = []
    for table in quarantine_tables(conn):
        try:
            quarantined, loaded, reason = conn.execute(
                f'SELECT (SELECT count(*) FROM raw_quarantine."{table}"), (SELECT count(*) FROM raw."{table}"), '
                f'(SELECT mode(_reason) FROM raw_quarantine."{table}")'
            ).fetchone()
        except duckdb.Error:  # a table without _reason, or raw without the table: nothing to say
            continue
        if quarantined and quarantined > loaded:
            out.append((table, quarantined, quarantined + loaded, reason))
    return out


def _models_without_predictions(conn) -> list[str]:
    """The project file's models raw.predictions holds no row of, with their quarantined rows and why: a trial's
    only model had none loaded (every row quarantined), and summary printed no model section and no word of it."""
    import duckdb

    from orchestration.lib.project_config import load_config

    declared = list(load_config().models)
    if not declared:
        return []
    try:  # one pass over each table (raw.predictions can hold years of days), not three queries a model
        loaded = {m for (m,) in conn.execute("SELECT DISTINCT model_id FROM raw.predictions").fetchall()}
        quarantined = {
            m: (n, reason)
            for m, n, reason in conn.execute(
                "SELECT model_id, count(*), mode(_reason) FROM raw_quarantine.predictions GROUP BY model_id"
            ).fetchall()
        }
    except duckdb.Error:  # no predictions table: a project of experiments only
        return []
    lines = []
    for model in declared:
        if model in loaded:
            continue
        count, reason = quarantined.get(model, (0, None))
        lines.append(
            f"model {model} (declared in the project file): no prediction loaded, so no health, drift or fairness "
            + (
                f"for it; its {count:,} prediction row(s) are all quarantined (most often: {reason}; "
                "raw_quarantine.predictions._reason)"
                if count
                else "for it; the predictions files hold no row of it either (its model_id spelt otherwise?)"
            )
        )
    return lines


def _print_nothing_loaded(conn) -> None:
    """The tables whose rows were mostly quarantined and the declared models without a loaded prediction, first:
    everything downstream of them is empty, and a run that ends "ok" does not say why."""
    lines = [
        f"raw.{table}: {quarantined:,} of its {total:,} rows quarantined"
        + (", none loaded" if quarantined == total else f" ({quarantined / total:.0%})")
        + f" (most often: {reason}; raw_quarantine.{table}._reason){QUARANTINE_HINTS.get(reason, '')}"
        for table, quarantined, total, reason in _mostly_quarantined(conn)
    ] + _models_without_predictions(conn)
    if lines:
        print("\nMost rows quarantined: the marts read only the rows loaded (details: raw_quarantine.<table>._reason)")
        for line in lines:
            print(f"  {line}")


# what a steady quarantine reason most often means (a trial's three-class labels read only "label not in (0, 1)")
QUARANTINE_HINTS = {
    "label not in (0, 1)": ": labels of more than two classes? A model of K classes is monitored as one model per "
    "class (README, Bring your own data: A model with more than two classes)",
}


def _repeated_hour_rows(conn) -> list[str]:
    """A line per repeated hour (repeated_hours) the raw tables hold rows in: they store local wall-clock times, so
    within it an event of the hour's second pass reads as before one of its first. A trial's 9 orders placed after
    their traveller's assignment on the US fall-back night counted in the pre-period (the covariate, not the
    outcome), and their label delays read an hour short."""
    import duckdb

    from orchestration.lib.clock_changes import repeated_hours
    from orchestration.lib.contract import CONTRACTS
    from orchestration.lib.project_config import load_config

    zone = load_config().config.timezone
    if zone in ("UTC", "Etc/UTC"):
        return []
    # the loaded tables' time columns that hold times (model_costs' is a DATE: a day, in no hour)
    contract_times = {name: c.time_column for name, c in CONTRACTS.items() if c.time_column}
    typed = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'raw' "
        "AND table_catalog = current_database() AND data_type LIKE 'TIMESTAMP%'"
    ).fetchall()
    timed = {name: column for name, column in typed if contract_times.get(name) == column}
    try:
        bounds = [conn.execute(f'SELECT min("{c}"), max("{c}") FROM raw."{t}"').fetchone() for t, c in timed.items()]
    except duckdb.Error:
        return []
    known = [b for b in bounds if b[0] is not None]
    if not known:
        return []
    lines = []
    first, last = min(b[0] for b in known).date(), max(b[1] for b in known).date()
    for start, end in repeated_hours(zone, first, last):
        counts = {}
        for name, column in timed.items():
            try:
                n = conn.execute(
                    f'SELECT count(*) FROM raw."{name}" WHERE "{column}" >= ? AND "{column}" < ?', [start, end]
                ).fetchone()[0]
            except duckdb.Error:
                continue
            if n:
                counts[name] = n
        if counts:
            held = ", ".join(f"{name} {n:,}" for name, n in counts.items())
            lines.append(
                f"{start:%Y-%m-%d %H:%M}-{end:%H:%M} {zone} happened twice (clocks set back): {held} row(s) in it. Times "
                "are kept as local wall-clock, so within that hour an event of its second pass reads as before one "
                "of its first: an order after its assignment can count before it (the experiment's pre-period), a "
                "label delay reads an hour short"
            )
    return lines


def _recent_health(conn):
    """recent_health_counts as a table to print: predictions, the share labelled, precision and recall."""
    import duckdb
    import pandas as pd

    from orchestration.lib.project_config import load_config
    from orchestration.lib.report_data import label_maturity, recent_health_counts

    try:
        counts = recent_health_counts(conn, None, RECENT_DAYS)
    except (duckdb.CatalogException, duckdb.BinderException):  # a run that stopped before the marts, or older ones
        return pd.DataFrame()

    table = _health_table(counts).assign(last_day=counts["last_day"])
    config = load_config()
    maturity = label_maturity(conn, None, RECENT_DAYS, lambda m: config.model(m).label_horizon_days)
    if maturity.empty:
        return table
    # beside the labels known so far: how many days have all theirs, and the label-free estimate
    maturity = table[["model", "version"]].merge(maturity, on=["model", "version"], how="left")
    return table.assign(
        **{
            "labels complete": [f"{c:.0f}/{d:.0f} days" for c, d in zip(maturity["complete_days"], maturity["days"])],
            WAITING: maturity["complete_days"] < maturity["days"],  # not printed: _matured_health's models
            "est. precision": [
                _estimate(v, raw, learnt, partly)
                for v, raw, partly, learnt in zip(
                    maturity["estimated_precision"],
                    maturity["raw_estimate"],
                    maturity["partly_raw"],
                    maturity["calibration_labels"],
                    strict=True,
                )
            ],
        }
    )


def _health_table(counts):
    """Health counts (recent_health_counts' columns) as printed: predictions, the share labelled, precision, recall."""
    import pandas as pd

    # labels of one class only (e.g. churners' outcomes land in days, "stayed" only after 30): precision or recall
    # of 1.000 or 0.000 says when the other class's labels have not landed yet, not how good the model is
    one_class = ((counts["tp"] + counts["fn"] == 0) | (counts["fp"] + counts["tn"] == 0)) & (counts["labelled"] > 0)

    def share(part, whole):
        return [
            (f"{p / w:.3f}" + ("*" if single else "")) if w else "n/a"
            for p, w, single in zip(part, whole, one_class, strict=True)
        ]

    return pd.DataFrame(
        {
            "model": counts["model"],
            "version": counts["version"],  # a new version's precision is its own, not blended with the old one's
            "predictions": counts["predictions"],
            "labelled": [
                f"{n} ({n / w:.0%})" if w else str(n)
                for n, w in zip(counts["labelled"], counts["predictions"], strict=True)
            ],
            "precision": share(counts["tp"], counts["tp"] + counts["fp"]),
            "recall": share(counts["tp"], counts["tp"] + counts["fn"]),
        }
    )


WAITING = "labels waiting"  # a column of _recent_health's table: some of the model version's days lack labels


def _matured_health(conn, recent) -> list[str]:
    """The lines of the newest RECENT_DAYS days whose labels are all in, for the models whose recent days are not
    (their labels land later than the recent days reach): a risk score's precision was "n/a" for good."""
    import pandas as pd

    from orchestration.lib.project_config import load_config
    from orchestration.lib.report_data import matured_health_counts

    if WAITING not in recent:
        return []
    waiting = set(recent.loc[recent[WAITING], "model"])
    if not waiting:
        return []
    config = load_config()
    matured = matured_health_counts(conn, None, RECENT_DAYS, lambda m: config.model(m).label_horizon_days)
    matured = matured[matured["model"].isin(waiting)]
    past_horizon = set(matured["model"])
    matured = matured[matured["labelled"] > 0]  # a model without labels at all has nothing final to show
    if matured.empty and not waiting - past_horizon:
        return []
    spans = zip(pd.to_datetime(matured["first_day"]).dt.date, pd.to_datetime(matured["last_day"]).dt.date)
    table = _health_table(matured).assign(days=[f"{a} .. {b}" for a, b in spans])
    lines = [
        f"\nModel health over each model's newest {RECENT_DAYS} days whose labels are all in (past its "
        "label_horizon_days), for the models whose days above are not: final precision and recall",
        *(table.to_string(index=False).splitlines() if len(table) else []),
    ]
    if any("*" in str(v) for v in [*table["precision"], *table["recall"]]):
        lines.append("  * every label of these days is of one class")
    lines += _lost_labels(matured)
    lines += [
        f"  {m}: no day past its label horizon ({config.model(m).label_horizon_days} days) yet"
        for m in sorted(waiting - past_horizon)
    ]
    return lines


def _lost_labels(matured) -> list[str]:
    """A line per model version whose days past the label horizon hold a labelled share under its label_coverage
    limit: their labels will not come, so 'final' precision rests on the few that did (a trial's 78-day label
    outage read "final precision and recall: 7 (14%) labelled, 1.000")."""
    from orchestration.lib.alerts import load_alert_config
    from orchestration.lib.project_config import AlertRules

    alerts = load_alert_config()
    lines = []
    for r in matured.itertuples():
        # the alert turned off (below: 0, init's for labels it cannot time) still expects every label here
        own = float(alerts.rule("label_coverage", r.model)["below"])
        below = own or AlertRules().label_coverage.below
        limit = (
            f"its label_coverage limit {below:g}" if own else f"{below:g}, label_coverage's default (its alert is off)"
        )
        if r.predictions and r.labelled / r.predictions < below:
            lines.append(
                f"  {r.model} {r.version}: only {r.labelled / r.predictions:.0%} of these days' predictions got a "
                f"label, though every label should be in: labels lost or never sent? (under {limit}; a day's "
                "shortfall: marts.model_health_daily.label_coverage)"
            )
    return lines


def _feedback(conn) -> list[str]:
    """A line per model version with user feedback in the health table's days (a second trial's was shown nowhere)."""
    from orchestration.lib.report_data import recent_feedback

    return [
        f"  feedback: {r.model} {r.version}: {r.with_feedback:,} of {r.predictions:,} predictions "
        f"({r.with_feedback / r.predictions:.1%}) got feedback, "
        + (f"{r.up_share:.0%} of it up" if r.up_share == r.up_share else "none of it up or down")
        + " (each day's up share weighted by its predictions with feedback; marts.model_health_daily)"
        for r in recent_feedback(conn, None, RECENT_DAYS).itertuples()
    ]


def _estimate(value: float, raw, learnt: float, partly=False) -> str:
    """A CBPE estimate as the table prints it: ' raw' without a calibration learnt from labels, ' part raw' where
    some predictions fall in score bins it never learnt, and the labels it was learnt from when they are few."""
    import pandas as pd

    if value != value:
        return "n/a"
    if pd.notna(raw) and bool(raw):
        return f"{value:.3f} raw"
    # both where both hold: a trial's calibration of 7 labels read "0.940 part raw", the few labels unsaid
    part = " part raw" if pd.notna(partly) and bool(partly) else ""
    if pd.notna(learnt) and learnt < FEW_CALIBRATION_LABELS:
        return f"{value:.3f}{part} ({learnt:.0f} labels)"
    return f"{value:.3f}{part}"


def _print_attribution(results, impact) -> None:
    import pandas as pd

    from orchestration.lib.attribution import (
        CI_SIGN_TEXT,
        NET_VALUE_NOT_SHOWN,
        ROI_LABEL,
        ROI_NOTE,
        AttributionSettings,
        arms_family_notes,
        relative_across_zero_note,
        relative_unbounded_note,
        ci_sign,
        exact_test_text,
        controls_of,
        cost_split_notes,
        DAILY_LOOKS,
        DAILY_LOOKS_NOTE,
        correction_name,
        daily_looks_text,
        model_arms,
        roi_text,
        value_basis,
        significance_text,
        units_header,
    )
    from orchestration.lib.money import money
    from orchestration.lib.project_config import load_config

    currency = load_config().currency
    settings = AttributionSettings.from_config(dbt_var("attribution"), "attribution")
    alpha = settings.alpha
    correction = correction_name(results["multiple_testing"].iloc[0])
    as_of = pd.Timestamp(results["as_of_date"].iloc[0]).date()
    print(f"Attribution as of {as_of}: each treatment arm vs its experiment's control, cumulative since assignment")
    yes_no = {True: "yes", False: "NO"}
    # a model's rows of one treatment arm, named 'class_size: small vs regular' where its experiment has several
    results = results.assign(model=model_arms(results))
    # a lower-is-better metric's fall is the good news: its name says so beside a negative lift
    lower = {name for name, spec in dbt_var("experiment_metrics").items() if spec.get("direction") == "lower_is_better"}
    view = pd.DataFrame(
        {
            "model": results["model"],
            "metric": [f"{m} (lower is better)" if m in lower else m for m in results["metric"]],
            units_header(results["control_variant"]): results["n_control"].astype(str)
            + "/"
            + results["n_treatment"].astype(str),
            "relative lift [95% CI]": [
                f"{_pct(r)} [{_pct(lo)}, {_pct(hi)}]"
                for r, lo, hi in zip(results["lift"], results["ci_low"], results["ci_high"])
            ],
            # the variance CUPED removed, where the row's estimate is CUPED's
            "estimate": [
                e + (f" ({_share(v)} less variance)" if e == "cuped" and v == v else "")
                for e, v in zip(results["estimate"], results["cuped_variance_reduction"], strict=True)
            ],
            f"p ({correction})": results["p_value_adjusted"].map(lambda p: "n/a" if p != p else f"{p:.4f}"),
            f"significant ({correction})": results["significant"].map(significance_text),
            DAILY_LOOKS: [
                daily_looks_text(lo, hi, p, alpha, _pct)
                for lo, hi, p in zip(
                    results["sequential_ci_low"], results["sequential_ci_high"], results["sequential_p_value"]
                )
            ],
            "decision-grade": results["decision_grade"].map(lambda g: yes_no[bool(g)]),
            "guardrail": results["guardrail_verdict"].fillna(""),
            "trustworthy": results["trustworthy"].map(yes_no),
            # a lift this large would be detected: a non-significant row with a wide MDE says little, not "no effect"
            "MDE": results["mde_relative"].map(lambda m: "n/a" if m != m else f"±{m:.0%}"),
        }
    )
    print(view.to_string(index=False))
    print(
        f"  MDE: the smallest relative lift the test detects with {settings.power:.0%} power at its sample size; a row that is "
        "not significant with a large MDE leaves any smaller effect, harm included, possible"
    )
    print(
        f"  significant: the {correction}-adjusted p-value over the experiment's metrics is below {alpha:g}. A 95% CI "
        "that excludes 0 on a row marked 'no' is not significant once the metrics are tested together "
        "(adjusted_*_ci_* in attribution.experiment_results: the intervals at the adjusted level)."
    )
    if results["guardrail_verdict"].notna().any():  # a re-trial read "pass" beside a 95% interval past the margin
        print(
            f"  guardrail: non-inferiority against the metric's margin on a one-sided {1 - alpha:.0%} bound (the end "
            f"of the {1 - 2 * alpha:.0%} two-sided interval, not of the {1 - alpha:.0%} one shown): 'pass' where the "
            "worst bound is within the margin, 'fail' where even the best is beyond it"
        )
    print(f"  {DAILY_LOOKS_NOTE}")
    for note in arms_family_notes(results, alpha):
        print(f"  {note}")
    for note in (
        relative_across_zero_note(results, results["model"]),
        relative_unbounded_note(results, results["model"]),
    ):
        if note:
            print(f"  {note}")
    for r in results[results["degenerate_reason"].notna()].itertuples():
        print(f"  not tested: {r.model} {r.metric}: {r.degenerate_reason}{exact_test_text(r.exact_p_value)}")
    for r in results[~results["decision_grade"].astype(bool) & results["degenerate_reason"].isna()].itertuples():
        print(f"  not decision-grade: {r.model} {r.metric}: {r.decision_grade_reason}")
    # one line per arm and reason (an SRM fails every metric of the arm): the metrics it concerns named
    untrusted = results[~results["trustworthy"].astype(bool)].fillna({"untrusted_reason": "reason not recorded"})
    for (model, reason), rows in untrusted.groupby(["model", "untrusted_reason"], sort=True):
        print(f"  not trustworthy: {model} {', '.join(sorted(rows['metric']))}: {reason}")
    if len(impact):
        print(
            f"\nModel value since its experiment started, in {currency} "
            f"({value_basis(impact.get('value_metric'), value_metric_setting()[1])}, net of model cost)"
        )
        controls = controls_of(results)
        signs = [ci_sign(lo, hi) for lo, hi in zip(impact["net_value_ci_low"], impact["net_value_ci_high"])]
        value_table = pd.DataFrame(
            {
                "model": model_arms(impact, controls),
                "treated users": impact["treated_units"],
                f"incremental value ({currency})": impact["incremental_value"].map(money),
                f"model cost ({currency})": impact["model_cost"].map(money),
                f"net value ({currency}) [95% CI]": [
                    f"{money(v)} [{money(lo)}, {money(hi)}]" if lo == lo else f"{money(v)} [n/a]"
                    for v, lo, hi in zip(impact["net_value"], impact["net_value_ci_low"], impact["net_value_ci_high"])
                ],
                ROI_LABEL: [roi_text(*v) for v in zip(impact["roi"], impact["roi_ci_low"], impact["roi_ci_high"])],
                # as the report: decision-grade is enough trustworthy data, not a value that differs from 0
                "net value vs 0": [CI_SIGN_TEXT[s] for s in signs],
                "decision-grade": impact["decision_grade"].map(lambda g: yes_no[bool(g)]),
                "trustworthy": impact["trustworthy"].map(yes_no),
            }
        )
        print(value_table.to_string(index=False))
        print(f"  {ROI_NOTE}")
        for line in cost_split_notes(impact):
            print(f"  note: {line}")
        # "[n/a]" beside a point value and an ROI said nothing of why (the report's table gives the reason)
        reasons = impact["decision_grade_reason"].where(impact["decision_grade_reason"].notna(), None)
        for arm, low, reason in zip(value_table["model"], impact["net_value_ci_low"], reasons, strict=True):
            if low != low:
                print(f"  net value without an interval: {arm}: {reason or 'its value metric has no lift interval'}")
        for arm, sign, grade in zip(value_table["model"], signs, impact["decision_grade"]):
            if sign == "includes_zero":
                grade_too = "; decision-grade says only that it rests on enough trustworthy data" if grade else ""
                print(f"  net value not significant: {arm}: {NET_VALUE_NOT_SHOWN}{grade_too}")


# the fairness verdicts of the last $2 days' trailing windows (one row a day per model and attribute) up to $1 (the
# newest report's day, which shows the same windows; null: the newest window)
FAIRNESS_SQL = """
WITH newest AS (SELECT max(date) AS day FROM marts.bias_verdicts),
upto AS (SELECT coalesce(least($1::DATE, day), day) AS day FROM newest)
SELECT *, (SELECT day FROM upto) AS upto_day_ FROM marts.bias_verdicts
WHERE date <= (SELECT day FROM upto)
ORDER BY model_id, attribute, date
"""


# passes_* column -> the verdict's name in the windows' failure count
VERDICT_NAMES = {
    "passes_disparate_impact": "disparate impact",
    "passes_equal_opportunity": "equal opportunity",
    "passes_equalized_odds": "equalised odds",
    "passes_calibration": "calibration",
}


def _fairness(conn, upto=None) -> list[str]:
    """Per model and attribute: the verdicts of the newest window that compared groups and ends by the model's last
    prediction day, on how many of the RECENT_DAYS windows up to it a verdict failed (the latest named) or nothing
    could be compared, and how many newer windows (of nothing, or after the model stopped) there are, a failure
    among them named."""
    import duckdb
    import pandas as pd

    from orchestration.lib.bias import VERDICT_TEXT, assessed, fails, summarise_verdicts, verdicts_with_lists
    from orchestration.lib.report_data import ending_by_last_prediction

    try:
        every = verdicts_with_lists(conn.execute(FAIRNESS_SQL, [upto]).df())
    except (duckdb.CatalogException, duckdb.BinderException):  # no protected attributes, or built before
        return []
    # the last RECENT_DAYS days' windows (those of the pairs shown), read with the whole history
    recent = every["date"] > every["upto_day_"] - pd.Timedelta(days=RECENT_DAYS)
    every = every.drop(columns="upto_day_")
    verdicts = every[recent]
    # windows ending after a model's last prediction day hold fewer and fewer of its days: not shown, but counted
    # (one of them failing is said: a later window that fails is news however thin); the shown one may be long
    # before the newest (a model that stopped long ago: its last verdict, as the report shows it)
    shown_from = ending_by_last_prediction(conn, every, upto or pd.Timestamp.max.date())

    def window(row) -> str:
        return f"{pd.Timestamp(row['window_start']).date()} .. {pd.Timestamp(row['date']).date()}"

    def failed(rows):
        judged = rows.loc[
            [assessed(v) for _, v in rows.iterrows()]
        ]  # .loc: an empty list selects no rows, not no columns
        failing = judged.loc[[any(fails(v[flag]) for flag in VERDICT_TEXT) for _, v in judged.iterrows()]]
        return failing, len(rows) - len(judged)

    def which(failing) -> str:  # the verdicts that failed, each with its count: not all of them disparate impact
        counts = {name: sum(fails(f) for f in failing[flag]) for flag, name in VERDICT_NAMES.items()}
        return f" ({', '.join(f'{name} {n}' for name, n in counts.items() if n)})" if len(failing) else ""

    known_through = _labels_known_through(conn, upto)
    lines, notes = [], {}
    for (model, attribute), rows in verdicts.groupby(["model_id", "attribute"], sort=False):
        candidates = shown_from[(shown_from["model_id"] == model) & (shown_from["attribute"] == attribute)]
        candidates_judged = candidates.loc[[assessed(v) for _, v in candidates.iterrows()]]
        shown = next(f.iloc[[-1]] for f in (candidates_judged, candidates, rows) if len(f))
        shown_day = shown["date"].iloc[0]
        pair = every[(every["model_id"] == model) & (every["attribute"] == attribute)]
        # a verdict the shown window could not judge (labels not in yet): the newest window that did, and its finding
        verdict = summarise_verdicts(shown, history=pair).replace(f"{model} / {attribute}: ", "").replace("\n", "; ")
        # counted: the RECENT_DAYS windows up to the shown one (a model that stopped long ago: those before it
        # stopped, not the thinning ones after); the newer ones apart, a failure among them named
        counted, newer = pair[pair["date"] <= shown_day].tail(RECENT_DAYS), pair[pair["date"] > shown_day]
        failing, unassessed = failed(counted)
        latest = (
            f", latest {window(failing.iloc[-1])}" if len(failing) and failing["date"].iloc[-1] != shown_day else ""
        )
        counts = f"{len(failing)} failed{which(failing)}{latest}, {unassessed} not assessed"
        # one line per model after its attributes' (their windows are the same): read for its first attribute only
        if model not in notes and (
            note := _window_labels_note(model, shown.iloc[0], known_through, _predicted_days(conn, model))
        ):
            notes[model] = note
        if newer.empty:
            lines.append(
                f"{model} / {attribute}, window {window(shown.iloc[0])}: {verdict} (the last {len(counted)} days' windows: {counts})"
            )
            continue
        newer_failing, newer_unassessed = failed(newer)
        what = "compared nothing" if newer_unassessed == len(newer) else "end after its last prediction day"
        if len(newer_failing):
            what += f", {len(newer_failing)} failed{which(newer_failing)}, latest {window(newer_failing.iloc[-1])}"
        lines.append(
            f"{model} / {attribute}, window {window(shown.iloc[0])}: {verdict} (the {len(counted)} window(s) up to "
            f"it: {counts}; the {len(newer)} newer window(s) {what})"
        )
    return lines + [f"{model}: {note}" for model, note in notes.items()]


def _labels_known_through(conn, upto):
    """The newest day labels were counted for (report_data.labels_known_through); None without it."""
    import duckdb

    from orchestration.lib.report_data import labels_known_through

    try:
        return labels_known_through(conn, upto)
    except (duckdb.CatalogException, duckdb.BinderException):
        return None


def _predicted_days(conn, model: str) -> dict:
    """The model's days with predictions -> whether every one of them is labelled (complete whatever the horizon: a
    fixed-date outcome); {} without the mart's counts."""
    rows = _rows(
        conn,
        "SELECT date, sum(labelled) >= sum(predictions) FROM marts.model_health_daily WHERE model_id = ? "
        "GROUP BY date HAVING sum(predictions) > 0",
        [model],
    )
    return {d: bool(all_labelled) for d, all_labelled in rows}


def _window_labels_note(model: str, window, known_through, predicted: dict | None = None) -> str:
    """'labels complete on N of M days of its window ...' when some of a fairness window's days are not yet past
    the model's label horizon by ``known_through``: its label-based verdicts read the outcomes known so far (a
    trial's equal opportunity passed at 0.79 on half its labels and failed at 0.54 on all of them). ``predicted``
    (_predicted_days): the days counted are those with predictions, complete too when every one is labelled (a
    weekly batch's window of 42 days read "14 of 42", its six empty days a week among them)."""
    import pandas as pd

    from orchestration.lib.project_config import load_config

    if known_through is None:
        return ""
    horizon = load_config().model(model).label_horizon_days
    start, end = pd.Timestamp(window["window_start"]).date(), pd.Timestamp(window["date"]).date()
    every = [start + pd.Timedelta(days=i).to_pytimedelta() for i in range((end - start).days + 1)]
    counted = [d for d in every if d in predicted] if predicted else every
    days = len(counted)
    complete = sum(
        d + pd.Timedelta(days=horizon).to_pytimedelta() <= known_through or (predicted or {}).get(d, False)
        for d in counted
    )
    if complete >= days:
        return ""
    return (
        f"labels complete on {complete} of {days} days{' with predictions' if days < len(every) else ''} of its "
        f"window {start} .. {end} (label_horizon_days {horizon}, "
        f"labels counted to {known_through}): its label-based fairness verdicts read the outcomes known so far"
    )


def _leading_indicators(conn, as_of) -> list[str]:
    """KPI drops and the alert that preceded each; the health metric that best leads each KPI."""
    import duckdb

    from orchestration.lib.leading import describe, kpi_drop_leads_of

    settings = dbt_var("leading_lagging")
    lines = [describe(lead, drop) for drop, lead in kpi_drop_leads_of(conn, as_of, settings) if drop is not None]
    try:
        best = conn.execute(LEADING_SQL, [as_of]).df()
        searched = conn.execute(LEADING_SEARCHED_SQL, [as_of]).fetchone()[0]
    except (duckdb.CatalogException, duckdb.BinderException):  # built before marts.leading_lagging (or its p-values)
        return lines
    lines += [
        f"{r.kpi}: {r.model_id} {r.health_metric} {_lead_text(r.lag_days)} "
        f"(correlation of daily changes net of weekday {r.correlation:+.2f} over {r.n_days} days, "
        f"p {_p_text(r.p_value_adjusted)} after Holm over the {r.family_size} correlations searched)"
        for r in best.itertuples()
    ]
    if best.empty and searched:
        lines.append(
            f"No health metric's changes precede a KPI's beyond chance "
            f"(Holm over the {searched} correlations searched; marts.leading_lagging.significant)."
        )
    return lines


def _newest(conn, table: str, column: str):
    """The newest ``column`` of ``table``; None when it is empty or not built."""
    import duckdb

    try:
        return conn.execute(f"SELECT max({column}) FROM {table}").fetchone()[0]
    except (duckdb.CatalogException, duckdb.BinderException):
        return None


def _rows(conn, sql: str, params: list) -> list[tuple]:
    """The rows of ``sql``; none when a table or column it reads is not built (a run that stopped before it, an
    older warehouse): the summary's optional notes say nothing then."""
    import duckdb

    try:
        return conn.execute(sql, params).fetchall()
    except (duckdb.CatalogException, duckdb.BinderException):
        return []


def _lead_text(lag_days: int) -> str:
    """A lag of 0 days is a metric moving with the KPI, not ahead of it."""
    return "moves with it on the same day (lag 0: not a lead)" if lag_days == 0 else f"leads by {lag_days} day(s)"


def _p_text(p: float) -> str:
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


# the models whose cost would count: a net value, an experiment, predictions (each table read where it is built)
COUNTED_MODELS_SQL = (
    "SELECT model_id FROM attribution.model_impact",
    "SELECT model_id FROM staging.stg_experiments",
    "SELECT model_id FROM marts.model_health_daily WHERE predictions > 0",
)


def _costless_models(conn) -> list[str]:
    """Notes on models with no model_costs row at all while the table has rows (a misspelt model_id in the cost
    export: a trial's model showed cost 0 and net value 0, unsaid), with the model_costs ids no model has and the
    nearest model to each. A project without costs (no rows, or no staging views) is not told every day."""
    from orchestration.lib.project_config import load_config, nearest

    costed = {m for (m,) in _rows(conn, "SELECT DISTINCT model_id FROM staging.stg_model_costs", [])} - {None}
    if not costed:
        return []
    counted = {m for sql in COUNTED_MODELS_SQL for (m,) in _rows(conn, sql, [])} - {None}
    known = counted | set(load_config().models)  # a declared model without predictions may have costs
    strangers = sorted(costed - known)
    named = ", ".join(f"{s} (did you mean {near}?)" if (near := nearest(s, known)) else s for s in strangers)
    lines = [
        f"model {m}: no model_costs rows at all (its cost is counted as 0)"
        + (f"; model_costs names no model's id: {named}" if named else "")
        for m in sorted(counted - costed)
    ]
    if strangers and not lines:
        lines.append(f"model_costs names no model's id: {named}: their costs count toward no model")
    return lines


REASSIGNED_SQL = """
WITH again AS (
    SELECT q.experiment_id, count(DISTINCT q.user_id) AS users
    FROM raw_quarantine.assignments q JOIN raw.assignments r USING (experiment_id, user_id)
    WHERE q._reason LIKE 'duplicate key%' AND q.variant IS DISTINCT FROM r.variant
    GROUP BY ALL
)
SELECT again.experiment_id, again.users, count(DISTINCT r.user_id) AS assigned
FROM again JOIN raw.assignments r USING (experiment_id)
GROUP BY ALL ORDER BY 1
"""


# per experiment, the completed orders of its units placed after its newest result's day, and its end_date
ORDERS_AFTER_SQL = """
WITH latest AS (SELECT experiment_id, max(as_of_date) AS as_of FROM attribution.experiment_results GROUP BY ALL)
SELECT l.experiment_id, l.as_of, e.end_date, count(DISTINCT o.order_id) AS orders
FROM latest l
JOIN staging.stg_experiments e USING (experiment_id)
JOIN staging.stg_assignments a USING (experiment_id)
JOIN staging.stg_orders o ON o.user_id = a.user_id AND o.order_date > l.as_of AND o.status = 'completed'
GROUP BY ALL HAVING count(*) > 0 ORDER BY l.experiment_id
"""


def _orders_after(conn) -> list[str]:
    """Notes on outcomes after an experiment's newest result: its units' completed orders placed later count in no
    result (its end_date ends the analysis, or their days have not run yet)."""
    import duckdb

    try:  # the staging views: not in the analytics snapshot, nor readable by the analyst on engine: spark
        rows = conn.execute(ORDERS_AFTER_SQL).fetchall()
    except duckdb.Error:
        return []
    lines = []
    for experiment, as_of, end_date, orders in rows:
        why = (
            f"its end_date ({end_date}) ends the analysis: set it later, or leave it empty, while outcomes land"
            if end_date is not None and end_date <= as_of
            else "the days they fall on have not run yet"
        )
        lines.append(f"{experiment}: {orders} completed order(s) of its units after {as_of} are in no result: {why}")
    return lines


def _reassigned(conn) -> list[str]:
    """Notes on users assigned again to another variant: the loader keeps the first assignment and quarantines the
    later ones as duplicate keys, which says nothing of the arm switch (a user who saw both arms dilutes the lift)."""
    import duckdb

    try:  # the raw layer: not in the analytics snapshot
        rows = conn.execute(REASSIGNED_SQL).fetchall()
    except duckdb.Error:
        return []
    return [
        f"experiment {experiment}: {users:,} of {assigned:,} assigned users ({users / assigned:.1%}) were assigned "
        "again to another variant; their first assignment counts, the later ones are quarantined "
        "(raw_quarantine.assignments): a user who saw both arms dilutes the measured lift"
        for experiment, users, assigned in rows
    ]


def _unjudged_health(conn) -> list[str]:
    """Per model, the label-based and volume alert rules no day of the last RECENT_DAYS could judge (too few labels
    or predictions a day): "no alerts" there means "not judged", not "healthy"."""
    from orchestration.lib.alerts import load_alert_config

    # the median over every day, and over the days with predictions only (a batch model's, see batch_models)
    rows = _rows(
        conn,
        # each model's own last days, as the health table pools them (a model that stopped scoring months before
        # the others was left out of the mart's last 30 days, and said nowhere)
        "SELECT model_id, max(labelled), quantile_cont(predictions, 0.5), "
        "quantile_cont(predictions, 0.5) FILTER (WHERE predictions > 0), max(date) FROM "
        "(SELECT *, max(date) OVER (PARTITION BY model_id) AS newest FROM marts.model_health_daily) "
        "WHERE date > newest - ?::INTEGER GROUP BY 1 ORDER BY 1",
        [RECENT_DAYS],
    )
    if not rows:
        return []
    batches = batch_models(conn)
    config = load_alert_config()
    lines = []
    for model, labelled, every_day, predicting_days, newest in rows:
        predictions = predicting_days if model in batches else every_day
        unit = count_unit(model in batches)
        span = f"in the {RECENT_DAYS} days to {newest}"
        if (labelled or 0) < config.min_labelled:
            lines.append(
                f"{model}: precision, recall and calibration alerts not judged: at most {labelled or 0:.0f} labelled "
                f"predictions {unit} {span} (alerts.min_labelled {config.min_labelled})"
            )
        volume = config.rule("volume_change", model)
        if (predictions or 0) < float(volume.get("min_count") or 0) and not _volume_judged(conn, model, volume):
            lines.append(
                f"{model}: volume alerts not judged: a median of {predictions or 0:g} predictions {unit} {span} "
                f"(alerts.rules.volume_change.min_count {volume['min_count']:g})"
            )
    return lines


# days without predictions after which a model is said silent: the volume rule alerts on the first days of an
# outage (until its trailing median falls below min_count), and a weekday-only model rests two or three
SILENT_DAYS = 4


def _silent_models(conn) -> list[str]:
    """Models without predictions for SILENT_DAYS days past their usual gap between prediction days (1 for a daily
    model, 7 for a weekly batch) up to the newest day run: the volume rule falls silent a few days into an outage,
    and a trial's model that stopped scoring 36 days before the newest run day was named nowhere; a weekly model
    was called stopped three days of every week."""
    rows = _rows(
        conn,
        "WITH newest AS (SELECT greatest((SELECT max(date) FROM quality.gate_results), "
        "(SELECT max(labels_as_of) FROM marts.model_health_daily)) AS day), "
        f"{USUAL_GAP_SQL} "
        "SELECT model_id, last_day, newest.day, gap FROM usual, newest "
        "WHERE last_day <= newest.day - CAST(gap + ?::INTEGER - 1 AS INTEGER) ORDER BY 1",
        [None, SILENT_DAYS],
    )
    from orchestration.lib.project_config import load_config, retired_models

    retired = retired_models(load_config().config)
    # a retired model's silence is its retirement (said by _retired_lines, with any predictions after it)
    lines = [_silent_line(conn, model, last, newest, gap) for model, last, newest, gap in rows if model not in retired]
    return lines + _retired_lines(conn, retired)


def _piled_at_an_end(conn, model: str, detail: str, day) -> list[str]:
    """Beside a numeric feature's PSI alert: where at least PILED_SHARE of the latest alert day's values fell beyond
    the reference's outer decile (its lowest or highest bin, 10% of the reference each unless its values tie), and
    PILED_RATIO times the reference's share there, how far and where: a unit
    or scale change looks so (a trial's income sent in thousands by half the states, 56% below the lowest decile,
    read only "psi (feature_income)"). Not of the score: its shift follows its inputs'."""
    rows = _rows(
        conn,
        "SELECT b.feature, b.bin_label, b.current_share, b.reference_share, "
        "b.bin_order = min(b.bin_order) OVER w AS lowest "
        "FROM marts.feature_drift_bins b JOIN marts.alerts a ON a.date = b.date AND a.model_id = b.model_id "
        "AND a.model_version IS NOT DISTINCT FROM b.model_version AND a.metric = 'psi' AND a.subject = b.feature "
        "WHERE b.model_id = ? AND b.date = ? AND b.feature_type = 'numeric' AND b.feature <> 'score' "
        "WINDOW w AS (PARTITION BY b.model_version, b.feature) "
        "QUALIFY (b.bin_order = min(b.bin_order) OVER w OR b.bin_order = max(b.bin_order) OVER w) "
        "AND b.current_share >= greatest(?, ? * b.reference_share) ORDER BY b.feature",
        [model, day, PILED_SHARE, PILED_RATIO],
    )
    return [
        f"on {day} {share:.0%} of {feature}'s values fell {'below' if lowest else 'above'} the reference's "
        f"{'lowest' if lowest else 'highest'} decile ({label}), against {reference:.0%} of the reference's: a shift "
        "this far, or a unit or scale change upstream (thousands, cents, a percent as a fraction)? (details: "
        "marts.feature_drift_bins)"
        for feature, label, share, reference, lowest in rows
        if detail == f"psi ({feature})" or detail.startswith(f"psi ({feature}) of ")
    ]


PILED_SHARE = 0.5  # of a day's values beyond the reference's outer decile (10% of the reference's) said beside PSI
# ... and at least this many times the reference's own share there: a pixel's reference held 51% at 0 (its deciles
# tied), and 53% of a day's values there was said to be "a shift this far"
PILED_RATIO = 2


def _coverage_latest(conn, model: str, day) -> str | None:
    """The latest label_coverage alert day's share and its rule (a pooled day's counts), and when its labels were
    due: a trial's line named February prediction days, their labels due in August, with no share or count."""
    from datetime import timedelta

    from orchestration.lib.alerts import load_alert_config

    rows = _rows(
        conn,
        "SELECT value, rule FROM marts.alerts WHERE model_id = ? AND metric = 'label_coverage' AND date = ? LIMIT 1",
        [model, day],
    )
    if not rows:
        return None
    value, rule = rows[0]
    wait = int(load_alert_config().rule("label_coverage", model)["after_days"])
    due = day + timedelta(days=wait)
    return f"latest: {value:.0%} of {day}'s predictions labelled, their labels due by {due} ({rule})"


def _never_labelled(conn, model: str) -> str | None:
    """Beside a label_coverage alert of a model no label has ever landed for: its labels may simply not be due yet
    (a trial's year-late labels alerted daily at the default 7-day wait); None once any label has landed."""
    from orchestration.lib.alerts import load_alert_config

    labelled = _rows(conn, "SELECT sum(labelled) FROM marts.model_health_daily WHERE model_id = ?", [model])
    if not labelled or labelled[0][0]:
        return None
    alerts = load_alert_config()
    wait, horizon = alerts.rule("label_coverage", model)["after_days"], alerts.label_horizon(model)
    return (
        f"no label of {model} has landed yet, and this alert judges a day {wait} days on while its labels may take "
        f"up to {horizon} (label_horizon_days): if they are not due yet, set models.{model}.alerts.label_coverage "
        "after_days to when most arrive, or below: 0 until they start"
    )


def _labels_slower_than_wait(conn, model: str) -> str | None:
    """Beside a label_coverage alert of a model whose labels so far landed later than the alert's wait (the median
    of its days' median label delays, weighted by their labels), or whose label horizon is longer than both the
    wait and the default horizon: it judges days whose labels may not be due yet (a trial's claims due in 150-200
    days, label_horizon_days 200, raised 53 alerts at the default 7-day wait)."""
    from orchestration.lib.alerts import load_alert_config

    rows = _rows(
        conn,
        "SELECT min(d) FROM (SELECT median_label_delay_hours AS d, sum(labelled) OVER (ORDER BY "
        "median_label_delay_hours) AS below, sum(labelled) OVER () AS every FROM marts.model_health_daily "
        "WHERE model_id = ? AND labelled > 0 AND median_label_delay_hours IS NOT NULL) WHERE below >= every / 2",
        [model],
    )
    alerts = load_alert_config()
    wait, horizon = alerts.rule("label_coverage", model)["after_days"], alerts.label_horizon(model)
    delay = float(rows[0][0]) / 24 if rows and rows[0][0] is not None else None
    slow = delay is not None and delay > wait
    if not slow and not horizon > max(wait, alerts.default_label_horizon):
        return None
    # the delays seen so far are cut at the newest day (the later labels are not among them): a re-trial followed
    # "set after_days to" their median, 22 days, for claims due in 150-200, and 38 false alerts stayed
    seen = (
        f"; those landed so far took a median {delay:.1f} days (cut at the newest day: the later ones are not among "
        "them yet)"
        if delay is not None
        else ""
    )
    return (
        f"{model}'s labels may take up to {horizon} days (label_horizon_days){seen}, and this alert judges a day "
        f"{wait} days on: it may judge days whose labels are not due yet; set "
        f"models.{model}.alerts.label_coverage.after_days to when most arrive by what you know of the outcome (up to "
        "label_horizon_days), or below: 0 until they do"
    )


SOURCE_CHANGES_SHOWN = 10  # source changes listed one by one


def _print_source_changes(conn) -> None:
    """The latest run's source changes of earlier days (quality.source_changes): said by materialize's console only,
    a trial's cron user never saw its in-place database corrections (lib/source_changes.py)."""
    from orchestration.lib.source_changes import BESIDE, recorded

    changes = recorded(conn)
    if not changes:
        return
    newest = _newest(conn, "quality.gate_results", "date")
    first = min(day for _, day, *_ in changes)
    print(
        f"\nSource rows changed since their days were loaded ({len(changes)}, found by the run ending "
        f"{changes[0][4]}; they count once those days run again: run --start {first} --end {newest or first}, one "
        "run; details: quality.source_changes)"
    )
    for table, day, kind, change, _ in changes[:SOURCE_CHANGES_SHOWN]:
        print(f"  {day} {table}: {change}")
    if len(changes) > SOURCE_CHANGES_SHOWN:
        print(f"  ... and {len(changes) - SOURCE_CHANGES_SHOWN} more")
    if any(kind == BESIDE for _, _, kind, *_ in changes):
        print(
            "  a new file beside a loaded one is read with it (a key in both keeps one row): if it corrects the "
            "loaded file, remove the stale one before running the day again"
        )


def _retired_lines(conn, retired: dict) -> list[str]:
    """A line per model the project file retires (models.<id>.retired_after) whose retirement the newest run has
    passed: said retired instead of silent, or named when it still predicts after the day."""
    if not retired:
        return []
    rows = _rows(
        conn,
        "WITH h AS (SELECT h.model_id, h.date, h.predictions, r.retired_after FROM marts.model_health_daily h "
        "JOIN (SELECT unnest(?::VARCHAR[]) AS model_id, unnest(?::DATE[]) AS retired_after) r USING (model_id)) "
        "SELECT model_id, max(date) FILTER (WHERE predictions > 0), (SELECT max(date) FROM quality.gate_results), "
        "sum(predictions) FILTER (WHERE date > retired_after), count(*) FILTER (WHERE date > retired_after "
        "AND predictions > 0), min(date) FILTER (WHERE date > retired_after AND predictions > 0) "
        "FROM h GROUP BY 1 ORDER BY 1",
        [list(retired), list(retired.values())],
    )
    lines = []
    for model, last, newest, after, days, first in rows:
        end = retired[model]
        if last is not None and last > end:
            lines.append(
                f"{model}: {after:,} prediction(s) on {days} day(s) ({first} .. {last}) though retired after {end} "
                f"(models.{model}.retired_after): still scoring, or the date is wrong?"
            )
        elif newest is not None and newest > end:
            lines.append(f"{model}: retired after {end} (models.{model}.retired_after); last predictions {last}")
    return lines


def _silent_line(conn, model: str, last, newest, gap: float) -> str:
    """Why a silent model is silent, as far as the warehouse knows: its later days' predictions loaded but held
    back by the quality gates (a trial's Mondays and Tuesdays read as "stopped"), or none landed."""
    held = _rows(
        conn,
        "SELECT count(DISTINCT _partition_date), min(_partition_date), max(_partition_date) FROM raw.predictions "
        "WHERE model_id = ? AND _partition_date > ?",
        [model, last],
    )
    usually = f"; it predicts every ~{gap:g} days" if gap > 1 else ""
    span = f"({(newest - last).days} day(s) to {newest}, the newest day run{usually})"
    if held and held[0][0]:
        days, first, final = held[0]
        return (
            f"{model}: no predictions published since {last} {span}: the predictions of {days} later day(s) "
            f"({first} .. {final}) loaded but were held back by the quality gates (the days held back are listed)"
        )
    return f"{model}: no predictions since {last} {span}: stopped, or its predictions no longer reach the landing zone?"


def _volume_judged(conn, model: str, volume: dict) -> bool:
    """Whether the volume rule judged any of the model's last RECENT_DAYS days: its trailing calendar-day median
    reached min_count (busy weeks can, where the 30 days' median does not: a trial's summary said "not judged"
    under the model's volume alerts)."""
    import pandas as pd

    trailing = int(volume["trailing_days"])
    daily = conn.execute(
        "SELECT date, sum(predictions) AS predictions FROM marts.model_health_daily WHERE model_id = ? "
        "AND date > (SELECT max(date) FROM marts.model_health_daily WHERE model_id = ?) - ?::INTEGER "
        "GROUP BY 1 ORDER BY 1",
        [model, model, RECENT_DAYS + trailing],
    ).df()
    if daily.empty:
        return False
    series = daily.set_index(pd.to_datetime(daily["date"]))["predictions"].astype(float)
    series = series.reindex(pd.date_range(series.index.min(), series.index.max(), freq="D"), fill_value=0)
    medians = series.shift(1).rolling(trailing, min_periods=trailing).median().tail(RECENT_DAYS)
    return bool((medians >= float(volume.get("min_count") or 0)).any())


def _version_changes(conn) -> list[str]:
    """A line per change of a model's live version in the health table's window: its positive rate and score
    distribution against the version before (the drift of each is judged against its own reference only)."""
    from orchestration.lib.alerts import load_alert_config
    from orchestration.lib.version_changes import change_text, version_changes

    return [change_text(c) for c in version_changes(conn, None, RECENT_DAYS, load_alert_config()).itertuples()]


def _uncounted_labels(conn) -> list[str]:
    """Per model, the recent days whose health and fairness rows miss labels that have landed: rewound by a re-run of
    an earlier day alone, or a late file not run yet (their precision read as if complete)."""
    from orchestration.lib.project_config import load_config
    from orchestration.lib.report_data import uncounted_labels

    config = load_config()
    lines = []
    for r in uncounted_labels(conn, RECENT_DAYS, lambda m: config.model(m).label_horizon_days).itertuples():
        lines.append(
            f"{r.model}: the rows of {r.days} day(s) from {r.first} to {r.last} miss {r.labels} label(s) that have "
            f"landed (computed before they were loaded: a re-run of an earlier day alone, or a late file): run "
            f"--start {r.first} --end {r.through}"
        )
    return lines


def _recent_drift(conn):
    """DRIFT_SQL's rows of the last RECENT_DAYS of marts.feature_drift_daily, or None (no drift marts)."""
    from orchestration.lib.report_data import newest_drift_day, recent_drift

    last = newest_drift_day(conn)
    return recent_drift(conn, last, RECENT_DAYS) if last is not None else None


def _drift_not_judged(conn, drift) -> list[str]:
    """Per model version, a line when no day of the last RECENT_DAYS could judge its PSI, even pooled: "no alerts"
    there means "not judged" (a trial's real shift, PSI 1.2 on its pools, said nowhere); with its values so far, a
    version too small in its whole life to ever fill both is told so, not to lengthen them."""
    from orchestration.lib.alerts import drift_not_judged, drift_not_judged_text, load_alert_config, version_values

    if drift is None:
        return []
    so_far = version_values(conn, drift["date"].max()) if len(drift) else None
    return [drift_not_judged_text(r) for r in drift_not_judged(drift, load_alert_config(), so_far).itertuples()]


def _unjudged_drift(drift) -> list[str]:
    """Per model version and feature, the days of the last RECENT_DAYS whose PSI is above the threshold but too few
    values were compared to judge it, or within the bins' sampling noise (no alert): the highest of them named (the
    pool's PSI and values on a day too small alone whose pool holds more). At most UNJUDGED_SHOWN features a version,
    those whose bins differ most beyond noise (the lowest chi-square p; a trial's 14-value pools at PSI 3 hid its one
    real shift, PSI 1.17 on 60 values, p 0.022), the others counted."""
    from orchestration.lib.alerts import POOLED_RULE, load_alert_config, unjudged_drift

    if drift is None:
        return []
    config = load_alert_config()
    features: dict[tuple, dict[str, tuple[float, str]]] = {}
    for (model, version, feature, why), days in unjudged_drift(drift, config).groupby(
        ["model_id", "model_version", "feature", "why"], dropna=False
    ):
        top = days.loc[days["psi"].idxmax()]
        reason = (
            "with too few values to judge"
            if why == "few values"
            else f"within the sampling noise of its {int(top['drift_bins'])} bins"
        )
        pool = int(config.rule("psi", model).get("pool_days") or 1)
        pooled = f" {POOLED_RULE.format(days=pool)}" if top["pooled"] else ""
        line = (
            f"{model} {version} {feature}: PSI above its threshold on {len(days)} day(s) {reason}, the highest "
            f"{top['psi']:.2f} on {top['date']:%Y-%m-%d} ({int(top['current_values'])} values{pooled}, the "
            f"reference {int(top['reference_values'])})"
        )
        # a feature listed under both reasons: the one nearer an alert (the lowest p of its days)
        p = float(days["p"].min()) if days["p"].notna().any() else 1.0
        if feature not in features.setdefault((model, version), {}) or p < features[(model, version)][feature][0]:
            features[(model, version)][feature] = (p, line)
    out = []
    for (model, version), lines in features.items():
        shown = sorted(lines, key=lambda f: lines[f][0])[:UNJUDGED_SHOWN]
        out += [lines[f][1] for f in lines if f in shown]
        if len(lines) > len(shown):
            out.append(
                f"{model} {version}: and {len(lines) - len(shown)} more feature(s) so (further within noise; "
                "marts.feature_drift_daily)"
            )
    return out


UNJUDGED_SHOWN = 5  # features a model version's unjudged drift lists: those of the lowest chi-square p


def _unreferenced_versions(conn) -> list[str]:
    """Model versions of the last RECENT_DAYS with values past their reference window and no PSI on any day: their
    drift reference holds none of their predictions (a fixed-date reference set for an earlier version: a trial's
    second version had no drift computed, and nothing said so)."""
    rows = _rows(
        conn,
        "SELECT model_id, model_version, any_value(reference_start_date), any_value(reference_end_date) "
        "FROM marts.feature_drift_daily "
        "WHERE date > (SELECT max(date) FROM marts.feature_drift_daily) - ?::INTEGER AND reference_complete "
        "GROUP BY ALL HAVING count(psi) = 0 AND min(null_rate) < 1 ORDER BY ALL",
        [RECENT_DAYS],
    )
    return [
        f"{model} {version}: no drift computed: its reference window {start} .. {end} holds none of its "
        f"predictions (models.{model}.drift_reference: a window of this version's days, or first_days)"
        for model, version, start, end in rows
    ]


def _unreferenced_features(conn) -> list[str]:
    """Features with values on days of the last RECENT_DAYS and no PSI on any, of a version whose other features have
    one: the reference window holds no value of them (a trial's feature empty in its first days: two versions'
    drift of it never computed, unsaid)."""
    rows = _rows(
        conn,
        "WITH recent AS (SELECT * FROM marts.feature_drift_daily "
        "WHERE date > (SELECT max(date) FROM marts.feature_drift_daily) - ?::INTEGER AND reference_complete) "
        "SELECT model_id, model_version, feature, any_value(reference_start_date), any_value(reference_end_date) "
        "FROM recent WHERE (model_id, model_version) IN (SELECT model_id, model_version FROM recent WHERE psi IS NOT NULL) "
        "GROUP BY ALL HAVING count(psi) = 0 AND min(null_rate) < 1 ORDER BY ALL",
        [RECENT_DAYS],
    )
    return [
        f"{model} {version} {feature}: no drift computed: its reference window {start} .. {end} holds no value of it "
        "(a feature that began later: a reference of later days, models.<model>.drift_reference)"
        for model, version, feature, start, end in rows
    ]


def _print_unmeasured(conn, impact, results) -> None:
    """The monitored models without a model value: their worth is not measured (no never-exposed holdout)."""
    import pandas as pd

    from orchestration.lib.money import money
    from orchestration.lib.project_config import load_config
    from orchestration.lib.report_data import declared_experiments, unmeasured_models, unmeasured_text

    as_of = pd.Timestamp(results["as_of_date"].max()).date() if len(results) else pd.Timestamp.max.date()
    if unmeasured := unmeasured_models(conn, as_of, impact["model_id"] if len(impact) else []):
        config = load_config()
        print(f"  {unmeasured_text(unmeasured, money, config.currency, declared_experiments(config))}")


def read_and_print(conn, reports: Path) -> None:
    """Print the summary of the warehouse ``conn`` (read-only); ``reports``: where the daily reports are. Raises
    duckdb's CatalogException / BinderException when the attribution tables are missing or older."""
    import pandas as pd

    from orchestration.lib.report_data import latest_report_date

    results = conn.execute(SUMMARY_RESULTS_SQL).df()
    impact = conn.execute(SUMMARY_IMPACT_SQL).df()
    health = _health_lines(conn)
    # a project without experiments has KPIs and health all the same: its leads as of the newest day searched
    leads_as_of = results["as_of_date"].max() if len(results) else _newest(conn, "marts.leading_lagging", "as_of_date")
    leads = _leading_indicators(conn, leads_as_of) if leads_as_of is not None else []
    recent = _recent_health(conn)
    newest = latest_report_date(conn)
    held = _held_back_days(conn)
    notes = _costless_models(conn)
    if results.empty:
        print("No experiment results (attribution.experiment_results is empty): monitoring only")
    else:
        _print_attribution(results, impact)
        notes = cost_gap_notes(conn) + notes + _orders_after(conn) + _reassigned(conn)
    for line in notes:
        print(f"  note: {line}")
    _print_nothing_loaded(conn)
    _print_unmeasured(conn, impact, results)
    if len(recent):
        last = pd.Timestamp(recent["last_day"].max()).date()
        span = f"the {RECENT_DAYS} days to {last}"
        if recent.groupby("model")["last_day"].max().nunique() > 1:  # a model that stopped keeps its last days
            span = f"each model's {RECENT_DAYS} days to its newest (the newest: {last})"
        print(f"\nModel health over {span} (labels known so far; details: marts.model_health_daily)")
        print(recent.drop(columns=["last_day", WAITING], errors="ignore").to_string(index=False))
        if any("*" in str(v) for v in recent["precision"]) or any("*" in str(v) for v in recent["recall"]):
            print("  * every label so far is of one class: the other's may still be landing (label horizon)")
        if "labels complete" in recent:
            print(
                "  labels complete: the days past the model's label horizon (label_horizon_days) by the newest day "
                "labels were counted for, or with every prediction labelled (a fixed-date outcome); before it, precision and recall read the labels known so far, which can be far off "
                "when some outcomes land sooner than others. est. precision: the label-free estimate (CBPE) over "
                "the same days' positive decisions (right if the scores are calibrated)"
            )
            if any(str(v).endswith(" labels)") for v in recent.get("est. precision", [])):
                print(
                    "  (N labels): the calibration was learnt from N labels of the version's reference window, each "
                    "score bin shrunk towards its raw scores by 10 pseudo-labels: with few, mostly the raw scores"
                )
            estimates = [str(v) for v in recent.get("est. precision", [])]
            if any(v.endswith(" raw") and not v.endswith(" part raw") for v in estimates):
                print(
                    "  raw: no calibration learnt from labels yet (learnt once the version's reference window has all "
                    "its labels: its end + label_horizon_days): the raw scores are read as probabilities, far off "
                    "unless they are"
                )
            if any(" part raw" in v for v in estimates):  # "0.940 part raw (7 labels)" too
                print(
                    "  part raw: a calibration was learnt, but some predictions fall in score bins the version's "
                    "reference window never labelled: those read their raw scores as probabilities (the other bins "
                    "their learnt rates; details: intermediate.int_score_calibration)"
                )
        for line in _feedback(conn):
            print(line)
        for line in _matured_health(conn, recent):
            print(line)
    if changes := _version_changes(conn):
        print(
            f"\nModel version changes in the last {RECENT_DAYS} days (each version's drift is judged against its own "
            f"reference window, so only these lines compare it with the one before: {CHANGE_DAYS} days with "
            "predictions on either side; details: marts.model_health_daily)"
        )
        for line in changes:
            print(f"  {line}")
    if len(health):
        print("\nModel health: alerts and retraining requests (details: marts.alerts, marts.retraining_requests)")
        for _, row in _fold_psi_lines(conn, health).iterrows():
            if row["what"] == "folded":
                print(f"  {row['detail']}")
                continue
            since, latest = (pd.Timestamp(row[c]).date() for c in ("since", "latest"))
            when = f"on {since}" if since == latest else f"from {since} to {latest}"
            if row["what"] == "retraining requests" and since != latest:  # requests, not a span: each one's day
                when = f"{row['days']} request(s), the first on {since}, the latest on {latest}"
                print(f"  {row['what']}: {row['model_id']} {row['detail']}: {when}")
            else:
                earlier = ""
                if row["earlier_days"]:
                    first, last = (pd.Timestamp(row[c]).date() for c in ("earlier_since", "earlier_latest"))
                    earlier = (
                        f"; apart from it, earlier: {row['earlier_days']} day(s) "
                        f"{f'on {first}' if first == last else f'from {first} to {last}'}"
                    )
                print(f"  {row['what']}: {row['model_id']} {row['detail']}, {when} ({row['days']} day(s)){earlier}")
            if isinstance(row["latest_reason"], str):  # why the job would not export it (a trial saw "blocked" alone)
                said = "why" if row["detail"] == "blocked" else "note"  # an export's thin coverage, a re-queue
                print(f"    {said}: {row['latest_reason']}")
            if row["what"] == "alerts" and str(row["detail"]).startswith("label_coverage"):
                if held_labels := _held_label_days(conn, since):  # not `held`: the held-back days listed below
                    print(f"    note: {held_labels}")
                if never := _never_labelled(conn, row["model_id"]) or _labels_slower_than_wait(conn, row["model_id"]):
                    print(f"    note: {never}")
                if shortfall := _coverage_latest(conn, row["model_id"], latest):
                    print(f"    {shortfall}")
            if row["what"] == "alerts" and str(row["detail"]).startswith("psi ("):
                for piled in _piled_at_an_end(conn, row["model_id"], str(row["detail"]), latest):
                    print(f"    note: {piled}")
    elif len(recent):
        print("\nModel health: no alerts, no retraining requests")
    drift = _recent_drift(conn)
    for line in _unjudged_health(conn) + _drift_not_judged(conn, drift) + _silent_models(conn) if len(recent) else []:
        print(f"  {line}")
    for line in _uncounted_labels(conn) if len(recent) else []:
        print(f"  note: {line}")
    if vanished := (
        missing_feature_lines(conn, RECENT_DAYS) + _unreferenced_versions(conn) + _unreferenced_features(conn)
    ):
        print("\nDrift not measured")
        for line in vanished:
            print(f"  {line}")
    if unjudged := _unjudged_drift(drift):
        print(
            "\nDrift above the PSI threshold without an alert (fewer values than alerts.rules.psi.min_count, on the day "
            "and in its pool of alerts.rules.psi.pool_days, "
            "or bins that differ no more than sampling explains at alerts.rules.psi.alpha; far above the threshold "
            "on few values it is still worth a look; details: marts.feature_drift_daily)"
        )
        for line in unjudged:
            print(f"  {line}")
    if fairness := _fairness(conn, newest):
        print(
            "\nFairness: the newest trailing window's verdicts that compared groups, ending by the model's last "
            f"prediction day; in brackets, the windows (one a day) of the {RECENT_DAYS} days up to the one shown, and any newer "
            "(details: marts.bias_verdicts, marts.bias_group_rates)"
        )
        for line in fairness:
            print(f"  {line}")
    _print_unjudged(unloaded_days(conn), _newest(conn, "quality.gate_results", "date"))
    _print_source_changes(conn)
    if held:
        print(
            f"\nDays held back by the quality gates ({len(held)}; their rows are left out of the marts each run "
            "builds after the hold; details: quality.gate_results)"
        )
        percent = _percent_days(conn, held[:HELD_SHOWN])
        for day, why, rows, unloaded in held[:HELD_SHOWN]:
            print(f"  {day}: {why}" + ("" if rows else " [no rows that day: none excluded]"))
            for hint in percent.get(day, []):
                print(f"    {hint}")
            if unloaded:
                print(
                    f"    not loaded that day ({', '.join(unloaded)}): its run stopped at the failed gate, so their rows "
                    "of that day (labels of earlier days' predictions too) count nowhere until the day runs again"
                )
        if len(held) > HELD_SHOWN:
            print(f"  ... and {len(held) - HELD_SHOWN} earlier day(s)")
        if any("volume_deviation" in why for _, why, *_ in held):
            print(
                "  volume_deviation: the day's rows are far below the trailing median (a weekly table's: times its "
                "weekday's share of its week; a file missing, an outage?); where the "
                "activity really ended (an experiment's enrolment closed), widen that table's band in the project "
                "file (gates.volume.tables.<table>: tolerance, z) and run those days again"
            )
        if any("(in_partition_day)" in why for _, why, *_ in held):
            print(
                "  in_partition_day: rows whose time column falls on another day than their file's (late rows "
                "re-sent in a later day's file, stamped with their first day?): the loader quarantines them "
                "(raw_quarantine.<table>._reason); deliver them in files of their own days, or stamped when "
                "they were sent, and run the days again"
            )
        if any("(fresh)" in why for _, why, *_ in held):
            print(
                "  fresh: no rows after steady days (an outage?); a day closed every week passes once the week "
                "before shows it; an empty held-back day excludes no rows, but the experiment results covering "
                "it stay untrustworthy (rows may be missing); a day the business was closed (a holiday): list it "
                "in gates.volume.closed_days; where the activity really ended, raise that table's z "
                "(gates.volume.tables.<table>.z, e.g. 30); then run those days again"
            )
        as_of = pd.Timestamp(results["as_of_date"].iloc[0]).date() if len(results) else None
        if as_of is not None and held[0][0] > as_of:
            print(f"  the attribution above stops at {as_of}: {_why_attribution_stops(conn, as_of, held)}")
    if design := _design_failures(conn):
        print(
            "\nExperiment design gates that failed: those days' experiment results are untrustworthy; the models' "
            "marts were built (fix the table named and run those days again; details: quality.gate_results)"
        )
        for line in design:
            print(f"  {line}")
    if late := _late_conversions(conn):
        print(f"\nBusiness KPIs (details: marts.kpi_daily)\n  {late}")
    if warned := _gate_warnings(conn) + _quarantined_shares(conn) + _repeated_hour_rows(conn):
        print(
            f"\nWarnings of the quality gates, last {RECENT_DAYS} days (they hold nothing back, e.g. a label feed "
            "that paused; details: quality.gate_results.warnings)"
        )
        for line in warned:
            print(f"  {line}")
    if leads:
        print("\nLeading indicators (details: marts.leading_lagging)")
        for line in leads:
            print(f"  {line}")
    report = reports / f"impact_ledger_{newest}.html"
    if newest is not None and report.is_file():
        print(f"\nDaily report with plots, OKRs and the metric scorecard: {report}")
