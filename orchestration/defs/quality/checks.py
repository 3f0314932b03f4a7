"""Blocking Great Expectations gates on raw tables, one check per declarative suite.

A failing gate stops everything downstream of the raw table for the run's
partition(s); the check metadata names each failed expectation with counts
and sample values.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from orchestration.defs.partitions import daily_partitions, run_date_range
from orchestration.lib.quality_gate import SuiteResult, load_suite, suite_columns, validate_frame

# Suite parameters, resolved from the warehouse at validation time.
SUITE_PARAMETERS_SQL = {"known_model_ids": "SELECT DISTINCT model_id FROM raw.experiments WHERE model_id IS NOT NULL"}


def partition_slice_sql(table: str, columns: list[str], first, last) -> str:
    """Everything read for the days: loaded rows and quarantined rows alike."""
    cols = ", ".join(f'"{c}"' for c in columns)
    where = f"_partition_date BETWEEN DATE '{first}' AND DATE '{last}'"
    return f"SELECT {cols} FROM raw.{table} WHERE {where} UNION ALL SELECT {cols} FROM raw_quarantine.{table} WHERE {where}"


def _check_result(result: SuiteResult) -> dg.AssetCheckResult:
    failures = {
        o.expectation + (f"({o.column})" if o.column else ""): {
            "unexpected_count": o.unexpected_count,
            "unexpected_percent": o.unexpected_percent,
            "sample_values": [str(v) for v in o.sample_unexpected],
            "observed_value": None if o.observed_value is None else str(o.observed_value),
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
            frame = conn.execute(partition_slice_sql(table, suite_columns(suite), first, last)).df()
            parameters = {name: [r[0] for r in conn.execute(sql).fetchall()] for name, sql in SUITE_PARAMETERS_SQL.items()}
        result = validate_frame(frame, suite, parameters)
        context.log.info(result.summary())
        return _check_result(result)

    return _check


GATED_SUITES = ["raw_predictions"]
GATED_RAW_TABLES = sorted({load_suite(name)["table"] for name in GATED_SUITES})
quality_checks = [build_suite_check(name) for name in GATED_SUITES]
