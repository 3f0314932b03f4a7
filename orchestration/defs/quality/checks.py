"""Blocking Great Expectations gates: one check per suite under expectations/suites/.

A failing gate stops everything downstream of its raw table for the run's
partition(s); the check metadata names each failed expectation with counts
and sample values. Every outcome is also recorded in quality.gate_results, so
attribution can tell whether the days it summarises passed their gates.
"""

import json

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from orchestration.defs.partitions import daily_partitions, run_date_range, run_days
from orchestration.lib.quality_gate import SuiteResult, load_suite, rows_read_per_day, run_suite, suite_names
from orchestration.lib.settings import gx_docs_dir
from orchestration.lib.warehouse import ensure_table

GATE_RESULTS_SCHEMA = {
    "date": "DATE", "suite": "VARCHAR", "table_name": "VARCHAR", "passed": "BOOLEAN",
    "failed_expectations": "VARCHAR", "rows_validated": "BIGINT",
}


def _check_result(result: SuiteResult) -> dg.AssetCheckResult:
    failures = {
        o.name: {
            "level": o.level,
            "blocking": o.blocking,
            "unexpected_count": o.unexpected_count,
            "unexpected_percent": o.unexpected_percent,
            "sample_values": [str(v) for v in o.sample_unexpected],
            "observed_value": None if o.observed_value is None else str(o.observed_value),
            "detail": o.detail,  # e.g. the missing columns
        }
        for o in result.failed
    }
    return dg.AssetCheckResult(
        passed=result.success,
        severity=dg.AssetCheckSeverity.ERROR,
        description=result.summary(),
        metadata={
            "rows_validated": result.rows,
            "expectations": len(result.outcomes),
            "failed_expectations": dg.MetadataValue.json(failures),
        },
    )


def _record(conn, suite: dict, result: SuiteResult, days: list) -> None:
    """One row per suite and day in quality.gate_results (a re-run replaces its own rows).

    A backfill validates its range as one unit: each day carries the range's
    verdict, and the rows read on that day.
    """
    rows = rows_read_per_day(conn, suite["table"], days[0], days[-1])
    frame = pd.DataFrame({"date": days, "suite": suite["name"], "table_name": suite["table"], "passed": result.success,
                          "failed_expectations": json.dumps([o.name for o in result.failed if o.blocking]),
                          "rows_validated": [rows.get(pd.Timestamp(d).date(), 0) for d in days]})
    ensure_table(conn, "quality.gate_results", GATE_RESULTS_SCHEMA)
    conn.execute("BEGIN TRANSACTION")
    conn.execute("DELETE FROM quality.gate_results WHERE suite = ? AND date BETWEEN ? AND ?", [suite["name"], days[0], days[-1]])
    conn.register("_gate_rows", frame)
    conn.execute("INSERT INTO quality.gate_results BY NAME SELECT * FROM _gate_rows")
    conn.execute("COMMIT")
    conn.unregister("_gate_rows")


def build_suite_check(suite_name: str) -> dg.AssetChecksDefinition:
    suite = load_suite(suite_name)
    table = suite["table"]

    @dg.asset_check(
        asset=dg.AssetKey(["raw", table]),
        name=f"{suite_name}_suite",
        blocking=True,
        partitions_def=daily_partitions,
        description=f"Great Expectations suite expectations/suites/{suite_name}.yml on the partition's rows of raw.{table}.",
    )
    def _check(context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource) -> dg.AssetCheckResult:
        first, last = run_date_range(context)
        with duckdb.get_connection() as conn:
            result = run_suite(conn, suite, first, last, gx_docs_dir())
            _record(conn, suite, result, run_days(context))
        context.log.info(result.summary())
        return _check_result(result)

    return _check


GATED_SUITES = suite_names()
GATED_RAW_TABLES = sorted({load_suite(name)["table"] for name in GATED_SUITES})
quality_checks = [build_suite_check(name) for name in GATED_SUITES]
