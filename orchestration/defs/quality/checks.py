"""Blocking Great Expectations gates: one check per suite under expectations/suites/, a verdict per day.

Each day of the run gets its own verdict, recorded in quality.gate_results
(attribution, retraining and the notifications read it). A failed day is held
back: the dbt staging views exclude that table's rows of the days whose gate
failed, so the marts never include them, in a backfill as in day-by-day runs.
The check fails with severity ERROR (blocking: nothing downstream of the table
runs) when every day of the run failed, and with WARN when only some did
(Dagster 1.13 blocks only on ERROR, execute_step.py), naming the held-back days
so the other days proceed. The experiment design's gates (EXPERIMENT_DESIGN_TABLES)
only warn: their failed days make the experiments' results untrustworthy, not the
models' marts wait. The metadata names each failed expectation with
counts, sample values and its failed days. The gates of a run share one GX
session; the Data Docs pages are rendered once per run (quality/data_docs), or
at once by a failed gate.
"""

import json

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from orchestration.defs.partitions import daily_partitions, run_date_range
from orchestration.lib import early_gates
from orchestration.lib.contract import FIX_VARIANTS
from orchestration.lib.quality_gate import (
    GATE_RESULTS,
    GATE_RESULTS_SCHEMA,  # noqa: F401  (re-exported: tests and other domains name it here)
    EXPERIMENT_DESIGN_TABLES,  # the experiment design's gates only warn (lib: cli and summary read it too)
    SuiteResult,
    ensure_gate_results,
    configured_row_rule,
    days_in_words,
    gate_sql,
    gx_session,
    load_suite,
    rows_read_per_day,
    start_suite,
    suite_names,
    suite_tables,
)
from orchestration.lib.settings import gx_docs_dir
from orchestration.lib.warehouse import transaction


def _to_fix(result: SuiteResult, table: str) -> str:
    """The table to fix: experiment_variants when the failures are assignments whose experiment has no loaded
    variant (its rows quarantined: shares of 50 and 50), not the assignments themselves."""
    return "experiment_variants" if any(FIX_VARIANTS in o.describe() for o in result.failed) else table


def _consequence(
    table: str, failed_days: list, days: int, blocks: bool, fix: str, experiments: list[str] | None = None
) -> str:
    """The check's first line: what the failed days do to the run, and what to fix; ``experiments``: those an
    experiment design gate's failures concern (None: every one)."""
    said = f"{len(failed_days)} of {days} days ({days_in_words(failed_days)})"
    if blocks:
        return (
            f"blocked: raw.{table} failed on {said}, every day of the run, so nothing downstream of it runs, "
            f"every model's marts included; fix raw.{table}'s rows (below) and run the days again"
        )
    if table in EXPERIMENT_DESIGN_TABLES:
        whose = f"the results of {', '.join(experiments)}" if experiments else "the experiments' results"
        return (
            f"failed on {said}: experiment design: {whose} of those days are untrustworthy, the "
            f"models' other marts proceed; fix raw.{fix} and run the days again"
        )
    return f"held back {said}: the staging views exclude raw.{table}'s rows of those days; the other days proceed"


def _check_result(result: SuiteResult, table: str) -> dg.AssetCheckResult:
    failures = {
        o.name: {
            "level": o.level,
            "blocking": o.blocking,
            "unexpected_count": o.unexpected_count,
            "unexpected_percent": o.unexpected_percent,
            "sample_values": [str(v) for v in o.sample_unexpected],
            "observed_value": None if o.observed_value is None else str(o.observed_value),
            "detail": o.detail,  # e.g. the missing columns
            "failed_days": [str(d) for d in o.failed_days],
            "unexpected_by_day": {
                str(d): n for d, n in sorted(o.unexpected_by_day.items(), key=lambda kv: str(kv[0])) if n
            },
        }
        for o in result.failed
    }
    failed_days = result.failed_days
    # a day passed only by gates.rows.min_count: the run says it (a trial's only trace of a missing predictions file)
    tolerated: dict[str, list[str]] = {}
    rule = configured_row_rule()
    for day in result.days:
        for warning in result.day_tolerated(day, rule):
            tolerated.setdefault(warning, []).append(str(day))
    blocks = bool(failed_days) and len(failed_days) == len(result.days) and table not in EXPERIMENT_DESIGN_TABLES
    description = result.summary()
    if failed_days:
        fix = _to_fix(result, table)
        consequence = _consequence(table, failed_days, len(result.days), blocks, fix, result.failed_experiments)
        description = f"{consequence}\n{description}"
    return dg.AssetCheckResult(
        passed=not failed_days,
        # ERROR blocks everything downstream; WARN reports the held-back days and lets the others through
        severity=dg.AssetCheckSeverity.ERROR if blocks or not failed_days else dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "rows_validated": result.rows,
            "expectations": len(result.outcomes),
            "failed_expectations": dg.MetadataValue.json(failures),
            "failed_days": dg.MetadataValue.json([str(d) for d in failed_days]),  # the held-back days
            "tolerated": dg.MetadataValue.json(tolerated),
            "days": len(result.days),
            "note": result.note or "none",
        },
    )


def gate_rows(conn, suite: dict, result: SuiteResult) -> pd.DataFrame:
    """quality.gate_results rows of a validation: each day's own verdict, its failed blocking
    expectations and the rows it read (counted where the gate counted: ``conn`` a DuckDB connection or gate_sql())."""
    days = list(result.days)
    rows = rows_read_per_day(conn, suite["table"], days[0], days[-1])
    rule = configured_row_rule()
    return pd.DataFrame(
        {
            "date": days,
            "suite": suite["name"],
            "table_name": suite["table"],
            "passed": [not result.day_failures(d) for d in days],
            "failed_expectations": [json.dumps([o.name for o in result.day_failures(d)]) for d in days],
            "rows_validated": [rows.get(pd.Timestamp(d).date(), 0) for d in days],
            "warnings": [
                json.dumps([o.name for o in result.day_warnings(d)] + result.day_tolerated(d, rule)) for d in days
            ],
            "experiments": [
                json.dumps(named)
                if result.day_failures(d) and (named := result.day_experiments(d)) is not None
                else None
                for d in days
            ],
        }
    )


def _record(conn, suite: dict, result: SuiteResult, counted=None) -> None:
    """One row per suite and day in quality.gate_results (a re-run replaces its own rows); ``counted``: where
    the gate counted (default: ``conn``)."""
    frame = gate_rows(conn if counted is None else counted, suite, result)
    ensure_gate_results(conn)
    conn.register("_gate_rows", frame)
    try:
        with transaction(conn):
            conn.execute(
                f"DELETE FROM {GATE_RESULTS} WHERE suite = ? AND date BETWEEN ? AND ?",
                [suite["name"], result.days[0], result.days[-1]],
            )
            conn.execute(f"INSERT INTO {GATE_RESULTS} BY NAME SELECT * FROM _gate_rows")
    finally:
        conn.unregister("_gate_rows")


def build_suite_check(suite_name: str) -> dg.AssetChecksDefinition:
    suite = load_suite(suite_name)
    table = suite["table"]

    @dg.asset_check(
        asset=dg.AssetKey(["raw", table]),
        name=f"{suite_name}_suite",
        blocking=True,
        partitions_def=daily_partitions,
        description=(
            f"Great Expectations suite expectations/suites/{suite_name}.yml on the partition's rows of raw.{table}, "
            "a verdict per day: ERROR when every day failed (WARN for the experiment design: its results are then "
            "untrustworthy), WARN naming the held-back days otherwise."
        ),
    )
    def _check(context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource) -> dg.AssetCheckResult:
        first, last = run_date_range(context)
        session = gx_session(gx_docs_dir())  # shared by the run's gates (quality/data_docs renders the pages)
        with duckdb.get_connection() as conn:
            counted = gate_sql(
                conn, suite_tables(suite)
            )  # the run's engine counts: DuckDB, or Spark SQL over the raw Parquet
            # begun by the table's loading step (early_gates), or here
            begun = early_gates.take(context.run.run_id, suite_name, first, last)
            result = (begun or start_suite(counted, suite, first, last, session=session)).result()
            _record(conn, suite, result, counted)
        context.log.info(result.summary())
        if result.failed_days:  # a failed gate may stop the run before quality/data_docs: its pages now
            session.build_docs()
        return _check_result(result, table)

    return _check


GATED_SUITES = suite_names()
GATED_RAW_TABLES = sorted({load_suite(name)["table"] for name in GATED_SUITES})
quality_checks = [build_suite_check(name) for name in GATED_SUITES]
