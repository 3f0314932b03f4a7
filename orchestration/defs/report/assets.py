"""reports/daily_report: the self-contained HTML report, written after the snapshot is published."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from orchestration.defs.partition_metadata import add_daily_metadata
from orchestration.defs.partitions import daily_partitions, run_days, single_run
from orchestration.lib.settings import reports_dir

REPORT_KEY = dg.AssetKey(["reports", "daily_report"])
SNAPSHOT_KEY = dg.AssetKey(["publish", "analytics_snapshot"])


def reported_day(conn, days: list):
    """The run's last day, or, when a range ends on days without data (the partitions run to yesterday, the
    data ended earlier), its latest day with something to report: a backfill still leaves its report. Labels (or
    feedback) that landed for earlier days count (has_data_on): a stopped model's months-late labels get a report
    dated the last day they landed on."""
    from orchestration.lib.report_data import existing_tables, has_data_on

    tables = existing_tables(conn)
    # nothing to report in the whole range: the last day, whose render_report says why
    return next((day for day in reversed(days) if has_data_on(conn, tables, day)), days[-1])


@dg.asset(
    key=REPORT_KEY,
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    group_name="publish",
    kinds={"plotly", "html"},
    owners=["team:analytics"],
    deps=[SNAPSHOT_KEY],  # last step of the daily run: everything it shows is final for the day
    description=(
        "data/reports/impact_ledger_<day>.html: relative lift and net value with 95% CIs over time, health trends "
        "against the alert thresholds, alerts, fairness (four-fifths rule), quarantine and gate status, OKR progress. "
        "One self-contained file (plotly.js inline), readable offline. A backfill writes the report of its last day "
        "with data only: every report already covers all days up to its own."
    ),
)
def daily_report_asset(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    from orchestration.lib.project_config import load_config
    from orchestration.lib.report import ReportDataError, prune_reports, render_report, save_report

    days = run_days(context)
    last = days[-1]
    # the days before the last of a backfill get no file of their own: say so on each of them
    earlier = "no report of this day: a backfill writes its last day's, which covers every day up to it"
    add_daily_metadata(context, {day: {"report": earlier} for day in days[:-1]})
    with duckdb.get_connection() as conn:
        as_of = reported_day(conn, days)
        try:
            report = render_report(conn, as_of)
        except ReportDataError as err:
            # a presentation artefact: no data for the day is reported, not a reason to fail the run
            context.log.warning(str(err))
            return dg.MaterializeResult(metadata={"as_of": str(last), "skipped": str(err)})
    path = save_report(report, reports_dir())
    pruned = prune_reports(reports_dir(), as_of, load_config().reports.keep_days)
    written = {
        "path": dg.MetadataValue.path(str(path)),
        "plots": len(report.plots),
        "size_bytes": path.stat().st_size,
        "absent_sections": ", ".join(k for k, v in report.summary["sections"].items() if v == "absent") or "none",
    }
    if as_of != last:
        written["as_of"] = f"{as_of}: the latest day of the run with data (none after it)"
    if pruned:
        written["reports_removed"] = f"{len(pruned)} older than reports.keep_days, e.g. {pruned[0].name}"
    context.add_asset_metadata(written, partition_key=last.isoformat())
    return dg.MaterializeResult(metadata={"as_of": str(as_of)})
