"""`impact-ledger`: generate a world, materialise days, print the attribution summary.

Heavy imports (Dagster, GX) happen inside the commands so `--help` is instant.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import sys
from datetime import date, timedelta
from pathlib import Path

from orchestration.lib import gx_worker
from orchestration.lib.long_lived import collection_paused, nothing_to_collect_yet
from orchestration.lib.settings import (
    PROJECT_ROOT,
    analytics_path,
    dbt_threads,
    dbt_var,
    duckdb_threads,
    gx_docs_dir,
    gx_docs_index_limit,
    reports_dir,
    source_dir,
    warehouse_path,
)


DEFAULT_INIT_OUT = "impact_ledger.yml"  # project_config.DEFAULT_CONFIG_NAME (not imported: --help stays quick)


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date in YYYY-MM-DD form") from err


def _analyst_connection(db: Path):
    """Read-only, no file access, locked configuration (lib/warehouse.py): analysts' SQL reads this file only."""
    import duckdb

    from orchestration.lib.warehouse import analyst_connection

    try:
        return analyst_connection(db)
    except duckdb.Error as err:  # e.g. a file that is not a DuckDB database, or a newer DuckDB's file
        raise CliError(f"cannot open '{db}' as a DuckDB database: {str(err).splitlines()[0]}") from None


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


# ------------------------------------------------------------------- commands


def cmd_generate(args: argparse.Namespace) -> int:
    from orchestration.lib.synthetic_world import WorldConfig, generate_world

    try:
        cfg = WorldConfig(
            days=args.days,
            users=args.users,
            seed=args.seed,
            predictions_per_day=args.predictions_per_day,
            start_date=args.start_date,
        )
    except ValueError as err:
        raise CliError(str(err)) from err
    out = Path(args.out)
    print(f"generating {cfg.days} days x {cfg.users} users (seed {cfg.seed}) into {out}")
    truth = generate_world(out, cfg)
    rows = ", ".join(f"{t}={n}" for t, n in truth["rows_written"].items())
    print(f"wrote {rows}\ntruth: {out / 'truth.json'}")
    return 0


def _may_have_predictions(config) -> bool:
    """False only when predictions come from files and there are none (an A/B test without a model)."""
    from orchestration.lib.contract import CONTRACTS
    from orchestration.lib.db_sources import source_of
    from orchestration.lib.raw_loader import table_files

    where = source_of("predictions", config)  # the landing zone as _use_paths exported it, or a lake folder
    return where.kind == "database" or bool(table_files(where.root, CONTRACTS["predictions"]))


def cmd_init(args: argparse.Namespace) -> int:
    """Write a first, commented project file from what the landing zone holds (DuckDB in memory)."""
    from orchestration.lib.project_config import CONFIG_ENV
    from orchestration.lib.project_init import InitError, describe, infer, render, review

    # the project file materialize will read (IMPACT_LEDGER_CONFIG) is where init writes, unless --out says
    named = os.environ.get(CONFIG_ENV)
    out = Path(args.out or named or DEFAULT_INIT_OUT)
    if named and not args.config and not Path(named).expanduser().is_file():
        del os.environ[CONFIG_ENV]  # the file init is about to write: nothing to read yet
    if out.exists() and not args.force:
        raise CliError(f"'{out}' already exists; pass --force to overwrite it or --out to write elsewhere")
    if args.config:  # its `sources:` (databases, lake folders) are inspected too and copied into --out
        _use_config(args)
    from orchestration.lib.project_config import ConfigError

    try:
        inference = infer(Path(args.source))
        text = render(inference)
    except (InitError, ConfigError) as err:  # ConfigError: an inferred value the project file cannot hold
        raise CliError(str(err)) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print("\n".join(describe(inference)))
    print(f"\nwrote {out}; review before the first `impact-ledger materialize` (lines marked REVIEW):")
    for line in review(inference):
        print(f"  - {line}")
    print(f"then: impact-ledger materialize --config {out} --source {args.source}")
    return 0


def _use_config(args: argparse.Namespace):
    """Export --config for every component and validate the project file before any work starts."""
    from orchestration.lib.project_config import CONFIG_ENV, ConfigError, load_config

    if getattr(args, "config", None):
        path = Path(args.config).expanduser().resolve()
        if not path.is_file():
            raise CliError(f"--config {args.config}: no such file (write one with `impact-ledger init --source DIR`)")
        os.environ[CONFIG_ENV] = str(path)
    try:
        return load_config()
    except ConfigError as err:
        raise CliError(str(err)) from None


def _use_paths(args: argparse.Namespace) -> Path:
    """Export --source/--db for every component (ingest assets, DuckDB resource, dbt)."""
    if getattr(args, "db", None):
        os.environ["IMPACT_LEDGER_DB"] = str(Path(args.db).resolve())
    os.environ["IMPACT_LEDGER_DB"] = str(warehouse_path())
    if getattr(args, "source", None):
        os.environ["IMPACT_LEDGER_SOURCE"] = str(Path(args.source).resolve())
    source = source_dir()
    if source.exists() and not source.is_dir():
        raise CliError(
            f"source '{source}' is not a directory; point --source / IMPACT_LEDGER_SOURCE at a folder of "
            "<table>/*.parquet|csv|csv.gz files"
        )
    if not source.is_dir():
        raise CliError(
            f"source directory '{source}' does not exist; generate one with `impact-ledger generate --out {source}` "
            "or point --source / IMPACT_LEDGER_SOURCE at a folder of <table>/*.parquet|csv|csv.gz files"
        )
    return source


PROJECT_DAGSTER_YAML = PROJECT_ROOT / ".dagster_home" / "dagster.yaml"


def _dagster_instance():
    import dagster as dg

    # Runs land in the project-local instance, so `make dev` shows them.
    os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / ".dagster_home"))
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    _give_project_settings(home)
    return dg.DagsterInstance.get()


def _give_project_settings(home: Path) -> None:
    """A Dagster home without a dagster.yaml gets the project's: without it Dagster's defaults apply, which let
    the daemon launch runs side by side (DuckDB takes one writer) and store each event for more (a small day's
    run took 2.5 s longer)."""
    settings = home / "dagster.yaml"
    if settings.exists() or not PROJECT_DAGSTER_YAML.is_file() or settings.resolve() == PROJECT_DAGSTER_YAML:
        return
    settings.write_text(PROJECT_DAGSTER_YAML.read_text())
    print(f"note: wrote {settings}, the project's Dagster settings (one run at a time, its event log); edit it there")


def _progress_line(line: str) -> None:
    try:
        print(f"    {line}", flush=True)  # flushed: a long range streams its steps while it runs
    except BrokenPipeError:  # the reader went away (`| head`): the run goes on without its lines
        _quiet_stdout()


def _quiet_stdout() -> None:
    """Standard output to /dev/null: what is still printed (and the flush at exit) raises no BrokenPipeError."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _run_range(args: argparse.Namespace, source: Path) -> tuple[date, date, date | None]:
    """The days to run (--start/--end, else the days the source covers) and the source's first day if known."""
    from orchestration.lib.source_range import SourceRangeError, source_date_range

    covered = None
    if not (args.start and args.end):
        try:
            covered = source_date_range(source)
        except SourceRangeError as err:
            raise CliError(f"{err}" if "--start" in str(err) else f"{err}; pass --start and --end") from None
    first = args.start or covered[0]
    last = args.end or covered[1]
    if last < first:
        raise CliError(f"--end {last} is before --start {first}")
    return first, last, covered[0] if covered else None


def _partitions_cover(config, first: date, data_first: date | None) -> None:
    """Daily partitions must start on or before the first day run: refuse now, not 75 s into the run."""
    declared = os.environ.get("IMPACT_LEDGER_START_DATE")
    if declared:
        start, where = date.fromisoformat(declared), f"IMPACT_LEDGER_START_DATE={declared}"
    elif config.partitions.start != "from_data":
        start, where = config.partitions.start, f"{config.path}: key 'partitions.start' = {config.partitions.start}"
    else:  # from the data: start where the data (or the requested range) starts
        os.environ["IMPACT_LEDGER_START_DATE"] = min(d for d in (first, data_first) if d).isoformat()
        return
    if first < start:
        raise CliError(
            f"{first} is before the first daily partition ({where}); set an earlier start or "
            "`partitions: {start: from_data}` in the project file"
        )


def cmd_materialize(args: argparse.Namespace) -> int:
    # dbt's own lines only with -v: the progress lines say what ran (orchestration/defs/transform/dbt_assets.py)
    os.environ["IMPACT_LEDGER_DBT_OUTPUT"] = "full" if args.verbose else "quiet"
    config = _use_config(args)
    source = _use_paths(args)
    try:  # the settings read from the environment, checked before any work (named, without a traceback)
        duckdb_threads()
        dbt_threads()
        gx_docs_index_limit()
        gx_worker.enabled()
    except ValueError as err:
        raise CliError(str(err)) from None
    first, last, data_first = _run_range(args, source)
    _partitions_cover(config, first, data_first)
    for note in config.assumptions(predictions=_may_have_predictions(config)):
        print(f"note: {note}")
    warehouse_path().parent.mkdir(parents=True, exist_ok=True)
    from orchestration.lib.writer_lock import WarehouseBusy, exclusive_writer

    try:
        with exclusive_writer(warehouse_path(), f"impact-ledger materialize {first} .. {last}"):
            gx_worker.start(gx_docs_dir())  # GX imports in its own process meanwhile (orchestration/lib/gx_worker.py)
            try:
                return _materialize_range(first, last, source, args.days_per_run)
            finally:
                gx_worker.stop()
    except WarehouseBusy as err:
        raise CliError(str(err)) from None


def _materialize_range(first: date, last: date, source: Path, days_per_run: int | None) -> int:
    nothing_to_collect_yet()  # this process has only imported and read settings (orchestration/lib/long_lived.py)
    with collection_paused():  # Dagster's imports and instance (orchestration/lib/long_lived.py)
        from orchestration.runs import materialize_days

        instance = _dagster_instance()
    days = (last - first).days + 1
    print(f"materialising {first} .. {last} ({days} day(s)) from {source} into {warehouse_path()}")
    chunk = days_per_run or days
    day = first
    while day <= last:
        end = min(day + timedelta(days=chunk - 1), last)
        print(f"  {day} .. {end}: starting", flush=True)
        outcome = materialize_days(day, end, instance=instance, progress=_progress_line)
        status = "ok" if outcome.success else "FAILED"
        print(
            f"  {day} .. {end}: {status} in {outcome.seconds:.1f}s, {len(outcome.materialized)} assets (run {outcome.run_id[:8]})"
        )
        if not outcome.success:
            for failure in outcome.failures:
                print(f"    {failure}", file=sys.stderr)
            return 1
        day = end + timedelta(days=1)
    return 0


SUMMARY_RESULTS_SQL = """
SELECT model_id, metric, as_of_date, n_control, n_treatment, estimate,
       CASE WHEN estimate = 'cuped' THEN cuped_relative_lift ELSE relative_lift END AS lift,
       CASE WHEN estimate = 'cuped' THEN cuped_relative_ci_low ELSE relative_ci_low END AS ci_low,
       CASE WHEN estimate = 'cuped' THEN cuped_relative_ci_high ELSE relative_ci_high END AS ci_high,
       cuped_variance_reduction, p_value_adjusted, multiple_testing, significant, degenerate_reason,
       guardrail_verdict, trustworthy, untrusted_reason, decision_grade, decision_grade_reason
FROM attribution.experiment_results
WHERE analysis_window = 'cumulative' AND as_of_date = (SELECT max(as_of_date) FROM attribution.experiment_results)
ORDER BY model_id, metric
"""
SUMMARY_IMPACT_SQL = """
SELECT model_id, treated_units, incremental_value, model_cost, net_value, net_value_ci_low, net_value_ci_high,
       roi, roi_ci_low, roi_ci_high, trustworthy, decision_grade, decision_grade_reason
FROM attribution.model_impact
WHERE analysis_window = 'cumulative' AND as_of_date = (SELECT max(as_of_date) FROM attribution.model_impact)
ORDER BY model_id
"""


SUMMARY_HEALTH_SQL = """
SELECT 'alerts' AS what, model_id, metric || CASE WHEN subject <> '' THEN ' (' || subject || ')' ELSE '' END AS detail,
       min(date) AS since, count(*) AS days
FROM marts.alerts GROUP BY ALL
UNION ALL
SELECT 'retraining request', model_id, reason || ' -> ' || status, min(date), count(*)
FROM marts.retraining_requests GROUP BY ALL
ORDER BY 1, 2, 4
"""
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


def cmd_summary(args: argparse.Namespace) -> int:
    import duckdb
    import pandas as pd

    from orchestration.lib.report_data import latest_report_date

    db = Path(args.db).resolve() if args.db else warehouse_path()
    if not db.is_file():
        raise CliError(f"warehouse '{db}' does not exist yet; run `impact-ledger materialize` first")
    with _analyst_connection(db) as conn:
        try:
            results = conn.execute(SUMMARY_RESULTS_SQL).df()
            impact = conn.execute(SUMMARY_IMPACT_SQL).df()
            health = conn.execute(SUMMARY_HEALTH_SQL).df()
        except duckdb.CatalogException as err:
            raise CliError(f"no attribution tables in '{db}' yet; run `impact-ledger materialize` first") from err
        except duckdb.BinderException as err:  # written before a column existed; the next run adds it
            raise CliError(
                f"the attribution tables in '{db}' predate this version ({err}); run `impact-ledger materialize` again"
            ) from err
        leads = _leading_indicators(conn, results["as_of_date"].max()) if len(results) else []
        recent = _recent_health(conn)
        newest = latest_report_date(conn)
        held = _held_back_days(conn)
    if results.empty:
        print("No experiment results (attribution.experiment_results is empty): monitoring only")
    else:
        _print_attribution(results, impact)
    if len(recent):
        last = pd.Timestamp(recent["last_day"].max()).date()
        print(
            f"\nModel health over the {RECENT_DAYS} days to {last} (labels known so far; details: "
            "marts.model_health_daily)"
        )
        print(recent.drop(columns="last_day").to_string(index=False))
    if len(health):
        print("\nModel health: alerts and retraining requests (details: marts.alerts, marts.retraining_requests)")
        for _, row in health.iterrows():
            print(
                f"  {row['what']}: {row['model_id']} {row['detail']}, from {pd.Timestamp(row['since']).date()} on {row['days']} day(s)"
            )
    elif len(recent):
        print("\nModel health: no alerts, no retraining requests")
    if held:
        print(
            f"\nDays held back by the quality gates ({len(held)}; their rows are left out of every table above; "
            "details: quality.gate_results)"
        )
        for day, why in held[:HELD_SHOWN]:
            print(f"  {day}: {why}")
        if len(held) > HELD_SHOWN:
            print(f"  ... and {len(held) - HELD_SHOWN} earlier day(s)")
        if any("volume_deviation" in why for _, why in held):
            print(
                "  volume_deviation: the day's rows are far from the trailing median (an outage?); where the "
                "activity really ended (an experiment's enrolment closed), widen gates.volume in the project "
                "file and run those days again"
            )
        if len(results) and held[0][0] > pd.Timestamp(results["as_of_date"].iloc[0]).date():
            print(
                f"  the attribution above stops at {pd.Timestamp(results['as_of_date'].iloc[0]).date()}: later days were held back"
            )
    if leads:
        print("\nLeading indicators (details: marts.leading_lagging)")
        for line in leads:
            print(f"  {line}")
    report = reports_dir() / f"impact_ledger_{newest}.html"
    if newest is not None and report.is_file():
        print(f"\nDaily report with plots, OKRs and the metric scorecard: {report}")
    return 0


HELD_SHOWN = 10  # the latest days a gate held back, listed by summary


def _held_back_days(conn) -> list[tuple]:
    """(day, "suite (failed expectations), ...") of every day a gate held back, the latest first."""
    import duckdb

    try:
        rows = conn.execute(
            "SELECT date, suite, failed_expectations FROM quality.gate_results WHERE NOT passed ORDER BY date DESC, suite"
        ).fetchall()
    except duckdb.CatalogException:
        return []
    days: dict = {}
    for day, suite, failed in rows:
        names = ", ".join(json.loads(failed)) if failed else ""
        days.setdefault(day, []).append(f"{suite} ({names})" if names else suite)
    return [(day, ", ".join(why)) for day, why in days.items()]


RECENT_DAYS = 30
# per model, the last RECENT_DAYS prediction days: volume and the confusion counts of the labels known so far
RECENT_HEALTH_SQL = f"""
SELECT model_id AS model, max(date) AS last_day, sum(predictions)::BIGINT AS predictions,
       sum(labelled)::BIGINT AS labelled, sum(true_positives)::BIGINT AS tp, sum(false_positives)::BIGINT AS fp,
       sum(false_negatives)::BIGINT AS fn
FROM marts.model_health_daily
WHERE date > (SELECT max(date) FROM marts.model_health_daily) - {RECENT_DAYS}
GROUP BY model_id ORDER BY model_id
"""


def _recent_health(conn):
    """RECENT_HEALTH_SQL's counts as a table to print: predictions, the share labelled, precision and recall."""
    import duckdb
    import pandas as pd

    try:
        counts = conn.execute(RECENT_HEALTH_SQL).df()
    except (duckdb.CatalogException, duckdb.BinderException):  # a run that stopped before the marts, or older ones
        return pd.DataFrame()

    def share(part, whole):
        return [f"{p / w:.3f}" if w else "n/a" for p, w in zip(part, whole, strict=True)]

    return pd.DataFrame(
        {
            "model": counts["model"],
            "last_day": counts["last_day"],
            "predictions": counts["predictions"],
            "labelled": [
                f"{n} ({n / w:.0%})" if w else str(n)
                for n, w in zip(counts["labelled"], counts["predictions"], strict=True)
            ],
            "precision": share(counts["tp"], counts["tp"] + counts["fp"]),
            "recall": share(counts["tp"], counts["tp"] + counts["fn"]),
        }
    )


def _print_attribution(results, impact) -> None:
    import pandas as pd

    from orchestration.lib.attribution import (
        ROI_LABEL,
        ROI_NOTE,
        AttributionSettings,
        correction_name,
        roi_text,
        significance_text,
    )
    from orchestration.lib.project_config import load_config

    currency = load_config().currency
    alpha = AttributionSettings.from_config(dbt_var("attribution"), "attribution").alpha
    correction = correction_name(results["multiple_testing"].iloc[0])
    as_of = pd.Timestamp(results["as_of_date"].iloc[0]).date()
    print(f"Attribution as of {as_of}: treatment vs never-exposed holdout, cumulative since assignment")
    yes_no = {True: "yes", False: "NO"}
    view = pd.DataFrame(
        {
            "model": results["model_id"],
            "metric": results["metric"],
            "units (holdout/treated)": results["n_control"].astype(str) + "/" + results["n_treatment"].astype(str),
            "relative lift [95% CI]": [
                f"{_pct(r)} [{_pct(lo)}, {_pct(hi)}]"
                for r, lo, hi in zip(results["lift"], results["ci_low"], results["ci_high"])
            ],
            # the variance CUPED removed, where the row's estimate is CUPED's
            "estimate": [
                e + (f" (-{v:.0%} var)" if e == "cuped" and v == v else "")
                for e, v in zip(results["estimate"], results["cuped_variance_reduction"], strict=True)
            ],
            f"p ({correction})": results["p_value_adjusted"].map(lambda p: "n/a" if p != p else f"{p:.4f}"),
            f"significant ({correction})": results["significant"].map(significance_text),
            "decision-grade": results["decision_grade"].map(lambda g: yes_no[bool(g)]),
            "guardrail": results["guardrail_verdict"].fillna(""),
            "trustworthy": results["trustworthy"].map(yes_no),
        }
    )
    print(view.to_string(index=False))
    print(
        f"  significant: the {correction}-adjusted p-value over the experiment's metrics is below {alpha:g}. A 95% CI "
        "that excludes 0 on a row marked 'no' is not significant once the metrics are tested together "
        "(adjusted_*_ci_* in attribution.experiment_results: the intervals at the adjusted level)."
    )
    for r in results[results["degenerate_reason"].notna()].itertuples():
        print(f"  not tested: {r.model_id} {r.metric}: {r.degenerate_reason}")
    for r in results[~results["decision_grade"].astype(bool) & results["degenerate_reason"].isna()].itertuples():
        print(f"  not decision-grade: {r.model_id} {r.metric}: {r.decision_grade_reason}")
    untrusted = results[~results["trustworthy"].astype(bool)]
    for reason in sorted(set(untrusted["untrusted_reason"].dropna())):
        print(f"  not trustworthy: {reason}")
    if len(impact):
        print(
            f"\nModel value since its experiment started, in {currency} (revenue-per-user lift x treated users, "
            "net of model cost)"
        )
        money = pd.DataFrame(
            {
                "model": impact["model_id"],
                "treated users": impact["treated_units"],
                f"incremental revenue ({currency})": impact["incremental_value"].map("{:,.0f}".format),
                f"model cost ({currency})": impact["model_cost"].map("{:,.0f}".format),
                f"net value ({currency}) [95% CI]": [
                    f"{v:,.0f} [{lo:,.0f}, {hi:,.0f}]" if lo == lo else f"{v:,.0f} [n/a]"
                    for v, lo, hi in zip(impact["net_value"], impact["net_value_ci_low"], impact["net_value_ci_high"])
                ],
                ROI_LABEL: [roi_text(*v) for v in zip(impact["roi"], impact["roi_ci_low"], impact["roi_ci_high"])],
                "decision-grade": impact["decision_grade"].map(lambda g: yes_no[bool(g)]),
                "trustworthy": impact["trustworthy"].map(yes_no),
            }
        )
        print(money.to_string(index=False))
        print(f"  {ROI_NOTE}")


def _leading_indicators(conn, as_of) -> list[str]:
    """KPI drops and the alert that preceded each; the health metric that best leads each KPI."""
    import duckdb

    from orchestration.lib.leading import describe, kpi_drop_leads

    settings = dbt_var("leading_lagging")
    lines = [describe(lead, drop) for drop, lead in kpi_drop_leads(conn, as_of, settings["kpis"]) if drop is not None]
    try:
        best = conn.execute(LEADING_SQL, [as_of]).df()
        searched = conn.execute(LEADING_SEARCHED_SQL, [as_of]).fetchone()[0]
    except (duckdb.CatalogException, duckdb.BinderException):  # built before marts.leading_lagging (or its p-values)
        return lines
    lines += [
        f"{r.kpi}: {r.model_id} {r.health_metric} leads by {r.lag_days} day(s) "
        f"(correlation of daily changes {r.correlation:+.2f} over {r.n_days} days, "
        f"p {_p_text(r.p_value_adjusted)} after Holm over the {r.family_size} correlations searched)"
        for r in best.itertuples()
    ]
    if best.empty and searched:
        lines.append(
            f"No health metric's changes precede a KPI's beyond chance "
            f"(Holm over the {searched} correlations searched; marts.leading_lagging.significant)."
        )
    return lines


def _p_text(p: float) -> str:
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def cmd_query(args: argparse.Namespace) -> int:
    import duckdb

    db = Path(args.db).resolve() if args.db else analytics_path()
    if not db.is_file():
        raise CliError(
            f"analytics snapshot '{db}' does not exist yet; it is published after each successful run "
            "(`impact-ledger materialize`)"
        )
    with _analyst_connection(db) as conn:
        try:
            frame = conn.execute(args.sql).df()
        except duckdb.Error as err:
            raise CliError(f"query failed: {err}") from err
    with __import__("pandas").option_context("display.max_rows", args.max_rows, "display.width", 200):
        print(frame.to_string(index=False, max_rows=args.max_rows) if len(frame) else "(no rows)")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from orchestration.lib.report import ReportDataError, latest_report_date, write_report

    db = Path(args.db).resolve() if args.db else analytics_path()
    if not db.is_file():
        raise CliError(
            f"database '{db}' does not exist; the analytics snapshot is published after each successful run "
            "(`impact-ledger materialize`), or pass --db"
        )
    out = Path(args.out).resolve() if args.out else reports_dir()
    with _analyst_connection(db) as conn:
        day = args.date or latest_report_date(conn)
        if day is None:
            raise CliError(
                f"'{db}' has no attribution, model-health or KPI rows to report on; "
                "run `impact-ledger materialize` first"
            )
        try:
            path = write_report(conn, day, out)
        except ReportDataError as err:
            raise CliError(f"{db}: {err}") from err
    print(path)
    return 0


# ---------------------------------------------------------------------- parser


EXAMPLES = {
    "generate": ["impact-ledger generate --out data/raw --days 60 --users 20000 --seed 8"],
    "init": ["impact-ledger init --source landing/", "impact-ledger init --source landing/ --out prod.yml --force"],
    "materialize": [
        "impact-ledger materialize --config impact_ledger.yml --source landing/",
        "impact-ledger materialize --start 2026-09-01 --end 2026-09-30 --days-per-run 7",
    ],
    "summary": ["impact-ledger summary", "impact-ledger summary --db data/warehouse.duckdb"],
    "query": ['impact-ledger query "SELECT * FROM marts.alerts ORDER BY date DESC" --max-rows 20'],
    "report": ["impact-ledger report --date 2026-10-30 --out data/reports"],
}


def _command(sub, name: str, summary: str, **kwargs) -> argparse.ArgumentParser:
    """A subcommand whose --help says what it does, with examples (dates are YYYY-MM-DD, UTC days)."""
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in EXAMPLES[name]) + "\n\ndates are YYYY-MM-DD (UTC days)"
    return sub.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="impact-ledger",
        description="What is each ML model worth, is it healthy, and is the data fit to act on?",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    gen = _command(sub, "generate", "write a synthetic world (every raw table + truth.json)")
    gen.add_argument("--out", default="data/raw", help="output folder (default: data/raw)")
    gen.add_argument("--days", type=_positive_int, default=60, help="days of history (default: 60)")
    gen.add_argument("--users", type=_positive_int, default=20_000, help="users (default: 20000)")
    gen.add_argument("--seed", type=int, default=7, help="random seed; same seed, same world (default: 7)")
    gen.add_argument(
        "--predictions-per-day", type=_positive_int, default=2_000, help="per model and day (default: 2000)"
    )
    gen.add_argument("--start-date", type=_date, default=date(2026, 9, 1), help="first day (default: 2026-09-01)")
    gen.set_defaults(func=cmd_generate)

    ini = _command(sub, "init", "write a first project file (impact_ledger.yml) inferred from a landing zone")
    ini.add_argument("--source", required=True, help="landing zone: one folder or file per table, CSV or Parquet")
    ini.add_argument(
        "--out", help=f"project file to write (default: IMPACT_LEDGER_CONFIG if set, else ./{DEFAULT_INIT_OUT})"
    )
    ini.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    ini.add_argument("--config", help="a project file whose `sources:` (databases, lake folders) init also inspects")
    ini.set_defaults(func=cmd_init)

    mat = _command(sub, "materialize", "load, transform, gate and attribute a range of days", aliases=["materialise"])
    mat.add_argument(
        "--config", help="project file (default: IMPACT_LEDGER_CONFIG, else ./impact_ledger.yml, else defaults)"
    )
    mat.add_argument("--source", help="landing zone (default: IMPACT_LEDGER_SOURCE or data/raw)")
    mat.add_argument("--db", help="DuckDB warehouse file (default: IMPACT_LEDGER_DB or data/warehouse.duckdb)")
    mat.add_argument("--start", type=_date, help="first day, YYYY-MM-DD (default: the source's first day)")
    mat.add_argument("--end", type=_date, help="last day, YYYY-MM-DD (default: the source's last day)")
    mat.add_argument("-v", "--verbose", action="store_true", help="also print dbt's own log lines")
    mat.add_argument(
        "--days-per-run", type=_positive_int, help="split the range into runs of this many days (default: one run)"
    )
    mat.set_defaults(func=cmd_materialize)

    summ = _command(sub, "summary", "print the latest attribution results, model value, alerts and leading indicators")
    summ.add_argument("--db", help="DuckDB warehouse file (default: IMPACT_LEDGER_DB or data/warehouse.duckdb)")
    summ.set_defaults(func=cmd_summary)

    query = _command(sub, "query", "run read-only SQL against the analytics snapshot and print a table")
    query.add_argument("sql", help='e.g. "SELECT * FROM attribution.model_impact ORDER BY as_of_date DESC LIMIT 5"')
    query.add_argument("--db", help="snapshot database (default: IMPACT_LEDGER_ANALYTICS_DB or data/analytics.duckdb)")
    query.add_argument("--max-rows", type=_positive_int, default=50, help="rows to print (default: 50)")
    query.set_defaults(func=cmd_query)

    rep = _command(sub, "report", "write the self-contained HTML report of a day (plots, alerts, fairness, quality)")
    rep.add_argument("--date", type=_date, help="as-of day (default: the latest day with data)")
    rep.add_argument("--db", help="database to read (default: the analytics snapshot, IMPACT_LEDGER_ANALYTICS_DB)")
    rep.add_argument("--out", help="output folder (default: IMPACT_LEDGER_REPORTS or data/reports)")
    rep.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CliError as err:
        print(f"impact-ledger: error: {err}", file=sys.stderr)
        return 2


def console_main() -> None:
    """The `impact-ledger` command: main(), the exit handlers (atexit, weakref finalizers: temporary folders,
    logging), then the process ends without tearing down the ~4,600 modules a run imports (Dagster, dbt, GX,
    pandas, DuckDB), which took 1-2 s of a small day's run. Everything a command writes is committed or closed
    before main() returns."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:  # `impact-ledger summary | head`: the reader has what it wanted
        _quiet_stdout()
        code = 0
    atexit._run_exitfuncs()  # what interpreter shutdown would run first (CPython's own hook)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    console_main()
