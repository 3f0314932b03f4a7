"""Run a declarative Great Expectations suite over a run's days of a raw table, with a verdict per day.

Suites live under expectations/suites/ as YAML in GX's own vocabulary
(expectation type + kwargs), at three levels:

* ``schema_expectations`` on one row of the table's DuckDB column types (required columns and
  their types; without a required column only this level runs);
* ``expectations`` on the rows read for the run's days (loaded and
  quarantined alike), plus ``derived`` columns computed in SQL (referential
  integrity, timestamps inside the row's day) so heavy joins stay in DuckDB; GX's
  in-set and range checks skip nulls, so every key and foreign key has its own
  not-null expectation and a boolean derived flag is never null;
* ``day_expectations`` on one row per day: rows, trailing median, the volume
  band and freshness.

**One verdict per day.** A row expectation fails a day only when that day's unexpected rows exceed
both ``gates.rows.max_share`` of the rows read that day and ``gates.rows.min_count`` of the project
file: a few bad rows are already quarantined, a systemic break stops the day. A suite with
``row_rule: every_row`` (tables where one row is a whole experiment) fails on any unexpected row. A
day-level expectation fails the days of its unexpected rows; a schema expectation fails every day.
Nothing a row is judged on depends on which other days share its run (uniqueness is per day, the
derived flags compare with the row's own day), so a backfill and day-by-day runs give the same verdicts.

**Counting in SQL, judging in GX (SQL-side aggregates).** The SQL runs in DuckDB, or as Spark SQL over the raw
Parquet with ``engine: spark`` (``gate_sql``; "DuckDB" below stands for either). The schema and day levels are small
(one row; one row per day and group) and GX validates them as they are. The rows level is not (20M
rows a day would be a 10+ GB pandas frame): DuckDB counts, per day and row expectation, the rows
considered and the unexpected ones in one aggregate pass (one GROUP BY per uniqueness key), with
GX's semantics (nulls and NaN skipped by in-set and range checks, compound keys ignored when all
their values are missing, every row of a duplicated key unexpected), plus up to five unexpected
values for the report. GX then validates a frame of one row per day holding each expectation's
unexpected rows and allowance, max(max_share x rows, min_count), with the equivalent expectation
``expect_column_pair_values_a_to_be_greater_than_b(allowance >= unexpected)`` carrying the suite's
expectation in its description and meta: GX's verdict names the failed days, its results and Data
Docs are the record. Memory does not grow with the day's rows (DuckDB aggregates within its
memory_limit and spills beyond it). Chunked GX validation was not chosen: a duplicated key can
straddle chunks, and GX's pandas engine at ~10 s per million rows is the slowest stage at volume.
The small frames given to a test (``validate_frame``) take the same path through an in-memory DuckDB.

An expectation with ``meta: {severity: warning}`` is reported but does not fail the gate. GX's SQL
datasource on DuckDB is broken (GX #10738, #11579), hence pandas frames in an ephemeral GX context.
GX is imported lazily because it costs ~2 s; the command line's runs judge in a second process
(orchestration/lib/gx_worker.py), which receives only the small frames.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import numbers
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from orchestration.lib import gx_worker
from orchestration.lib.contract import (
    CONTRACTS,
    COPY_REASON,
    RESENT_REASON,
    DECLARED_VARIANTS_SQL,
    PROBABILITY_HINT,
    QUARANTINED_VARIANTS_SQL,
    variant_hints,
)
from orchestration.lib.gx_archive import archive_older_results
from orchestration.lib.gx_import import import_great_expectations
from orchestration.lib.settings import EXPECTATIONS_DIR, gx_docs_index_limit
from orchestration.lib.warehouse import ensure_table
from orchestration.lib.yaml_files import read_yaml

SAMPLE_SIZE = 5
LEVELS = {"schema_expectations": "schema", "expectations": "rows", "day_expectations": "days"}
DAY_COLUMN = "_day"  # the partition day of each row of the rows frame (reserved: suites may name it)
DAY_INDEX = {"rows": DAY_COLUMN, "days": "day"}  # the column that places a frame's row in a day

# One row per suite and day: that day's verdict (the staging views hold back a table's failed days).
GATE_RESULTS = "quality.gate_results"
GATE_RESULTS_SCHEMA = {
    "date": "DATE",
    "suite": "VARCHAR",
    "table_name": "VARCHAR",
    "passed": "BOOLEAN",
    "failed_expectations": "VARCHAR",
    "rows_validated": "BIGINT",
    "warnings": "VARCHAR",  # the day's failed expectations that only warn (a paused label feed), JSON
    # a failed day of an experiment design gate: the experiment ids its failing rows name, JSON (attribution
    # untrusts those experiments' results only); NULL: every experiment's (a row without one, a table-wide failure)
    "experiments": "VARCHAR",
}


def ensure_gate_results(conn: duckdb.DuckDBPyConnection) -> None:
    """Create quality.gate_results if missing: dbt's staging views read it before any gate has run."""
    ensure_table(conn, GATE_RESULTS, GATE_RESULTS_SCHEMA)


@dataclass(frozen=True)
class RowRule:
    """gates.rows of the project file: a row expectation fails a day above BOTH a share and a count."""

    max_share: float = 0.01
    min_count: int = 10

    def fails(self, unexpected: int, rows: int) -> bool:
        return unexpected > self.max_share * rows and unexpected > self.min_count


EVERY_ROW = RowRule(max_share=0.0, min_count=0)  # any unexpected row fails


# the derived columns the suites check, in words: a progress line named only the GX expectation
# ("expect_column_values_to_be_in_set(fresh)" for a paused label feed)
FLAG_WORDS = {
    "fresh": "freshness: no rows after steady days",
    "volume_deviation": "volume: the day's rows far below the trailing median",
    "volume_spike": "volume: the day's rows far above the trailing median",
    "in_partition_day": "rows stamped on another day than their file's",
    "user_known": "rows naming a user the users table lacks",
    "prediction_known": "rows of predictions not loaded",
    "variant_known": "assignments to a variant the experiment lacks",
}


def flag_words(expectation_name: str) -> str:
    """What an expectation on a derived column ('expect_...(fresh)') checks, in words, else ''."""
    column = expectation_name.rsplit("(", 1)[-1].rstrip(")") if expectation_name.endswith(")") else ""
    return FLAG_WORDS.get(column, "")


def in_words(expectation_name: str) -> str:
    """' (what it checks)' for an expectation on a derived column ('expect_...(fresh)'), else ''."""
    words = flag_words(expectation_name)
    return f" ({words})" if words else ""


# the days (or runs of consecutive days) a line names before "and N more day(s)": a month-long failure listed each
# day with its expectations (~4 KB a line, printed twice by materialize)
GATE_DAYS_SHOWN = 3


def days_in_words(days, shown: int = GATE_DAYS_SHOWN, detail: Callable[[date], str | None] | None = None) -> str:
    """``days`` (dates) compactly: consecutive days as one 'first .. last', the first ``shown`` of those, then
    'and N more day(s)'; a lone day followed by ``detail(day)`` in brackets where that says something."""
    runs: list[list[date]] = []
    for day in sorted(set(days)):
        if runs and day - runs[-1][-1] == timedelta(days=1):
            runs[-1].append(day)
        else:
            runs.append([day])

    def said(run: list[date]) -> str:
        if len(run) > 1:
            return f"{run[0]} .. {run[-1]}"
        extra = detail(run[0]) if detail else None
        return f"{run[0]}" + (f" ({extra})" if extra else "")

    left = sum(len(run) for run in runs[shown:])
    return ", ".join(said(run) for run in runs[:shown]) + (f" and {left} more day(s)" if left else "")


# The experiment design: read by the experiments' attribution (and the marts built on its assignments) only. Its
# gate failing on every day of a run does not block the run: attribution marks the results of those days
# untrustworthy, naming the gate (mark_failed_gates), while every model's health, drift and bias marts proceed (a
# trial's wrong expected_share, e.g. 50 and 50 for 0.5, stopped every mart, monitoring-only models' too, every day).
EXPERIMENT_DESIGN_TABLES = frozenset({"experiments", "experiment_variants", "assignments"})
# gate_results rows of the gates that hold days back (rows kept out of the marts), not of the experiment design
NOT_DESIGN_SQL = f"table_name NOT IN ({', '.join(repr(t) for t in sorted(EXPERIMENT_DESIGN_TABLES))})"


def design_gate_failures(conn, first: date | None = None, last: date | None = None) -> dict[str, list[date]]:
    """suite -> the days (of first..last, or all) an experiment design gate failed, from quality.gate_results."""
    design = ", ".join(repr(t) for t in sorted(EXPERIMENT_DESIGN_TABLES))
    within = " AND date BETWEEN ? AND ?" if first is not None else ""
    rows = conn.execute(
        f"SELECT suite, list(DISTINCT date ORDER BY date) FROM {GATE_RESULTS} "
        f"WHERE NOT passed AND table_name IN ({design}){within} GROUP BY suite ORDER BY suite",
        [first, last] if first is not None else [],
    ).fetchall()
    return {suite: list(days) for suite, days in rows}


def design_gate_experiments(conn, first: date | None = None, last: date | None = None) -> dict[str, list[str] | None]:
    """suite -> the experiments its failed days (of first..last, or all) name (quality.gate_results.experiments),
    None when a day names none (its failure concerns every experiment)."""
    design = ", ".join(repr(t) for t in sorted(EXPERIMENT_DESIGN_TABLES))
    within = " AND date BETWEEN ? AND ?" if first is not None else ""
    schema, table = GATE_RESULTS.split(".")
    recorded = conn.execute(  # a warehouse an older version wrote (read, not written, here) has no such column
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "AND column_name = 'experiments'",
        [schema, table],
    ).fetchone()[0]
    named: dict[str, set | None] = {}
    for suite, experiments in conn.execute(
        f"SELECT suite, {'experiments' if recorded else 'NULL'} FROM {GATE_RESULTS} "
        f"WHERE NOT passed AND table_name IN ({design}){within}",
        [first, last] if first is not None else [],
    ).fetchall():
        ids = set(json.loads(experiments)) if experiments else None
        if suite not in named:
            named[suite] = ids
        elif named[suite] is not None:
            named[suite] = None if ids is None else named[suite] | ids
    return {suite: None if ids is None else sorted(ids) for suite, ids in sorted(named.items())}


def design_failures_in_words(failures: dict[str, list[date]], experiments: dict | None = None) -> str:
    """What design gates failing means (the closing line of materialize): the experiments' results of those days
    are untrustworthy, not the days held back (a run said "held back 24 of its 24 day(s)" of marts all built).
    ``experiments``: design_gate_experiments' (the results of those only)."""
    named = experiments or {}
    gates = ", ".join(
        f"{suite} failed on {len(days)} day(s)" + (f" for {', '.join(named[suite])}" if named.get(suite) else "")
        for suite, days in failures.items()
    )
    whose = "results of those experiments" if all(named.get(s) for s in failures) else "experiment results"
    return (
        f"experiment design gate{'s' if len(failures) > 1 else ''} {gates}: those days' {whose} are untrustworthy; "
        "the models' marts were built"
    )


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str
    column: str | None
    success: bool  # passed on every day of the run (a row expectation by the day rule)
    unexpected_count: int | None
    unexpected_percent: float | None
    sample_unexpected: list[Any] = field(default_factory=list)
    observed_value: Any = None
    level: str = "rows"
    blocking: bool = True
    detail: str | None = None  # the columns a table lacks, or why GX could not evaluate the expectation
    failed_days: tuple[date, ...] = ()  # the days this expectation fails
    unexpected_by_day: dict = field(default_factory=dict)  # day -> unexpected rows (rows and days levels)
    experiments_by_day: dict = field(default_factory=dict)  # day -> its unexpected rows' experiment ids (RowCount's)
    files: tuple = ()  # the files a duplicated key's rows come from, when several (RowCount's)

    @property
    def name(self) -> str:
        return self.expectation + (f"({self.column})" if self.column else "")

    @property
    def tolerated(self) -> bool:
        """Unexpected rows that no day's rule counted against it (quarantined strays)."""
        return self.success and bool(self.unexpected_count)

    def describe(self) -> str:
        where = f" on {self.column}" if self.column else ""
        why = self.detail or FLAG_WORDS.get(self.column or "")  # a derived column's check in words
        if self.unexpected_count is not None:
            # the detail (which files, what to do) before the sample: a long sample is what a progress line cuts
            said = f"; {why}" if why else ""
            # a derived flag's sample is its value only ("e.g. [False, False]" for labels stamped on another day):
            # its words say what failed
            flag = self.column in FLAG_WORDS and all(isinstance(v, bool) for v in self.sample_unexpected)
            detail = f": {self.unexpected_count} unexpected ({self.unexpected_percent or 0:.2f}% of {self.level}{said})"
            detail += "" if flag else f", e.g. {_readable(self.sample_unexpected)}"
        else:
            detail = f": observed {self.observed_value}" + (f" ({why})" if why else "")
        return f"{self.expectation}{where}{detail}" + ("" if self.blocking else " [warning]")


@dataclass(frozen=True)
class SuiteResult:
    suite: str
    rows: int
    outcomes: list[ExpectationOutcome]
    days: tuple[date, ...] = ()  # the run's days, each judged on its own
    rows_by_day: dict = field(default_factory=dict)  # day -> rows read (what the day's rules compare with)
    note: str | None = None  # e.g. the table is absent from the source

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def day_failures(self, day: date) -> list[ExpectationOutcome]:
        """The blocking expectations that fail ``day``."""
        return [o for o in self.outcomes if o.blocking and not o.success and day in o.failed_days]

    def day_warnings(self, day: date) -> list[ExpectationOutcome]:
        """The expectations that only warn and fail ``day``."""
        return [o for o in self.outcomes if not o.blocking and not o.success and day in o.failed_days]

    def day_tolerated(self, day: date, rule: "RowRule") -> list[str]:
        """Warnings for the row expectations ``day`` passes only by ``rule``'s min_count: unexpected rows beyond its
        max_share of the day's rows (a small label feed whose every label points to an unknown prediction)."""
        rows = self.rows_by_day.get(day, 0)
        return [
            tolerated_warning(o.name, duplicates_from(o.files), outside_set(o))
            for o in self.outcomes
            if o.level == "rows"
            and day not in o.failed_days  # judged per day: another day of the run may fail it
            and o.unexpected_by_day.get(day, 0) > rule.max_share * rows
        ]

    def day_experiments(self, day: date) -> list[str] | None:
        """The experiments whose rows fail ``day``'s blocking expectations; None when a failure is not one of rows
        naming an experiment (a row without an experiment id, a missing column, a table's rows without one)."""
        named: set[str] = set()
        for outcome in self.day_failures(day):
            ids = outcome.experiments_by_day.get(day)
            if not ids or None in ids:
                return None
            named.update(ids)
        return sorted(named)

    @property
    def failed_days(self) -> list[date]:
        return [d for d in self.days if self.day_failures(d)]

    @property
    def failed_experiments(self) -> list[str] | None:
        """day_experiments over every failed day: the experiments the failures concern (None: every one)."""
        named = [self.day_experiments(d) for d in self.failed_days]
        return None if any(n is None for n in named) else sorted(set().union(*named))

    @property
    def success(self) -> bool:
        """Every day passes every blocking expectation."""
        return all(o.success for o in self.outcomes if o.blocking)

    def _day_share(self, outcome: ExpectationOutcome, day: date) -> str | None:
        """A row expectation's unexpected rows of ``day`` as the day's own share (the run's is of every day's rows)."""
        rows, unexpected = self.rows_by_day.get(day), outcome.unexpected_by_day.get(day)
        if outcome.level != "rows" or not rows or unexpected is None:
            return None
        return f"{unexpected} of {rows} rows, {100 * unexpected / rows:.2f}%"

    def _failure_line(self, outcome: ExpectationOutcome) -> str:
        """'- <its days>: <the failure>': the days first (compact: a month-long failure listed every day with its
        expectations, ~4 KB a line), so a progress note cut at its width still names them."""
        days = [d for d in self.days if d in outcome.failed_days] if len(self.days) > 1 else []
        said = days_in_words(days, detail=functools.partial(self._day_share, outcome)) if days else ""
        return f"- {said}: {outcome.describe()}" if said else f"- {outcome.describe()}"

    def summary(self) -> str:
        if self.note:
            return f"suite {self.suite}: {self.note}"
        blocking = [o for o in self.failed if o.blocking]
        tolerated = [o for o in self.outcomes if o.tolerated]
        if not self.failed:
            head = f"suite {self.suite}: all {len(self.outcomes)} expectations passed on {self.rows} rows"
        else:
            head = (
                f"suite {self.suite}: {len(blocking)} of {len(self.outcomes)} expectations failed on {self.rows} rows"
            )
        if len(self.days) > 1 and self.failed_days:
            head += f", on {len(self.failed_days)} of {len(self.days)} days"
        lines = [head] + [self._failure_line(o) for o in self.failed]
        if tolerated:
            lines.append(
                "tolerated (within gates.rows max_share and min_count on every day): "
                + "; ".join(f"{o.name}: {o.unexpected_count}" for o in tolerated)
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class PendingSuite:
    """A suite's validation begun: counted in SQL, judged by GX (already, or in gx_worker's process meanwhile)."""

    finish: Callable[[], SuiteResult]

    def result(self) -> SuiteResult:
        """The suite's result, once GX has judged (its errors raised here)."""
        return self.finish()


def load_suite(name: str, directory: Path = EXPECTATIONS_DIR / "suites") -> dict:
    path = directory / f"{name}.yml"
    if not path.is_file():
        raise FileNotFoundError(f"expectation suite '{name}' not found at {path}")
    suite = read_yaml(path)
    for level in LEVELS:
        for i, exp in enumerate(suite.get(level) or []):
            if "type" not in exp or "kwargs" not in exp:
                raise ValueError(f"{path}: {level} #{i + 1} needs 'type' and 'kwargs'")
    if "name" not in suite or "table" not in suite:
        raise ValueError(f"{path}: a suite needs 'name' and 'table'")
    for i, exp in enumerate(suite.get("expectations") or []):
        if exp["type"] not in ROW_EXPECTATION_TYPES:  # the rows are counted in SQL (module docstring)
            raise ValueError(
                f"{path}: expectations #{i + 1}: {exp['type']} is not a row expectation the gate counts in SQL "
                f"(one of {', '.join(ROW_EXPECTATION_TYPES)}); a day-level check belongs in day_expectations"
            )
    if suite.get("row_rule", "per_day") not in ("per_day", "every_row"):
        raise ValueError(f"{path}: row_rule must be 'per_day' or 'every_row', got {suite['row_rule']!r}")
    return suite


def suite_names(directory: Path = EXPECTATIONS_DIR / "suites") -> list[str]:
    return sorted(p.stem for p in directory.glob("*.yml"))


def suite_columns(suite: dict) -> list[str]:
    """Table columns the row expectations read (derived columns and the day excluded), so only those are fetched."""
    derived = set(suite.get("derived") or {}) | {DAY_COLUMN}
    cols: list[str] = []
    for exp in suite.get("expectations") or []:
        kwargs = exp["kwargs"]
        names = [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs] + list(
            kwargs.get("column_list", [])
        )
        cols += [c for c in names if c not in cols and c not in derived]
    return cols


# ------------------------------------------------------- row counts in SQL

# The row expectations the SQL counts reproduce (GX's pandas semantics); a suite naming another fails to load.
ROW_EXPECTATION_TYPES = (
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_null",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_not_be_in_set",
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_unique",
    "expect_compound_columns_to_be_unique",
)
ROWS_VIEW = "_gate_rows_frame"  # a test's ready frame, registered in an in-memory DuckDB


class DuckSql:
    """The gates' SQL on a DuckDB connection, by the calls of spark_session.SparkSql: the same SQL text
    (DuckDB's dialect, written so that sqlglot can carry it to Spark) runs on either engine."""

    def __init__(self, conn: duckdb.DuckDBPyConnection):
        self.conn = conn

    def fetchall(self, sql: str) -> list[tuple]:
        return self.conn.execute(sql).fetchall()

    def df(self, sql: str) -> pd.DataFrame:
        return self.conn.execute(sql).df()

    def types(self, sql: str) -> dict[str, str]:
        """Column -> DuckDB type name, without running the query."""
        relation = self.conn.sql(sql)
        return dict(zip(relation.columns, map(str, relation.types)))


def _runner(conn):
    """A DuckDB connection as DuckSql; a runner (DuckSql, SparkSql) as it is."""
    return DuckSql(conn) if isinstance(conn, duckdb.DuckDBPyConnection) else conn


RAW_TABLE = re.compile(r"\braw(?:_quarantine)?\.(\w+)")


def suite_tables(suite: dict) -> list[str]:
    """The raw tables a suite reads: its own and those its derived columns and parameters name."""
    sql = " ".join([*(suite.get("derived") or {}).values(), *(suite.get("parameters") or {}).values()])
    return sorted({suite["table"], *(t for t in RAW_TABLE.findall(sql) if t in CONTRACTS)})


def gate_sql(conn: duckdb.DuckDBPyConnection, tables=None):
    """Where the gates count for this run's engine: the DuckDB connection, or with engine: spark the process's
    Spark session over the raw Parquet, its raw.* / raw_quarantine.* tables of ``tables`` (default: every
    table) registered anew (the run's days just landed)."""
    from orchestration.lib.engine import engine

    if engine() != "spark":
        return DuckSql(conn)
    from orchestration.lib.spark_raw import register_spark_tables
    from orchestration.lib.spark_session import SparkSql, spark

    session = spark()
    register_spark_tables(session, sorted(CONTRACTS) if tables is None else tables)
    return SparkSql(session)


@dataclass(frozen=True)
class SqlRows:
    """The rows level as a query on a connection (DuckDB's, or a runner: DuckSql, SparkSql): counted there,
    never fetched."""

    conn: Any
    sql: str


@dataclass
class RowCount:
    """One row expectation's SQL-side counts: what GX's COMPLETE result would say on the whole rows frame."""

    spec: dict
    name: str
    considered: int = 0  # rows GX would not skip (non-missing): unexpected_percent's denominator
    unexpected: int = 0
    unexpected_by_day: dict = field(default_factory=dict)  # day -> unexpected rows (non-zero only)
    sample: list = field(default_factory=list)
    error: str | None = None  # e.g. a column the rows lack: fails every day, as GX's error did
    files: list = field(default_factory=list)  # a duplicated key's source files, when they are several
    unit_slips: dict = field(default_factory=dict)  # day -> the percentage hint of a [0, 1] range (unit_slips)
    hint: str | None = None  # what a failure most likely means, from its sample (a variant's nearest declared one)
    experiments_by_day: dict = field(default_factory=dict)  # day -> the experiment ids of its unexpected rows

    @property
    def percent(self) -> float | None:
        return 100 * self.unexpected / self.considered if self.considered and self.error is None else None


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _family(sql_type: str) -> str:
    t = sql_type.upper()
    if t in ("FLOAT", "DOUBLE", "REAL"):
        return "float"
    if t == "BOOLEAN" or t.startswith("DECIMAL") or re.fullmatch(r"U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?", t):
        return "number"
    if t.startswith(("VARCHAR", "STRING")):
        return "string"
    if t.startswith(("DATE", "TIMESTAMP", "TIME")):
        return "temporal"
    return "other"


def _literal(value: Any, family: str, sql_type: str) -> str | None:
    """``value`` as a SQL literal comparable with a column of ``family``; None where pandas could never
    match it either (no implicit cast of a string to a number in an in-set check)."""
    value = _plain(value)
    if value is None:
        return None
    numeric = family in ("number", "float")
    if isinstance(value, bool):
        return ("TRUE" if value else "FALSE") if numeric else None
    if isinstance(value, numbers.Number):  # int, float, Decimal
        if not numeric:
            return None
        return str(value) if math.isfinite(value) else f"CAST('{value}' AS DOUBLE)"
    if isinstance(value, (date, pd.Timestamp)):  # datetime is a date
        return f"TRY_CAST('{pd.Timestamp(value).isoformat()}' AS {sql_type})" if family == "temporal" else None
    text = "'" + str(value).replace("'", "''") + "'"
    if family == "string":
        return text
    return f"TRY_CAST({text} AS {sql_type})" if family == "temporal" else None


def _resolve(value: Any, parameters: dict, where: str) -> Any:
    if isinstance(value, dict) and "$PARAMETER" in value:
        name = value["$PARAMETER"]
        if name not in parameters:
            raise ValueError(f"{where}: $PARAMETER {name!r} is not in the suite's parameters section")
        return parameters[name]
    return value


def _row_check_sql(spec: dict, types: dict, parameters: dict, where: str) -> tuple[str, str, list[str], list[str]]:
    """(considered, unexpected, key, sample columns) of one row expectation, as engine-neutral SQL conditions.

    ``key``: the uniqueness key (columns) for the uniqueness expectations, whose unexpected rows are
    counted by a GROUP BY instead (``unexpected`` is then unused).
    """
    kind, kwargs = spec["type"], spec["kwargs"]

    def missing(column: str) -> str:
        col = _q(column)
        return f"({col} IS NULL OR isnan({col}))" if _family(types[column]) == "float" else f"{col} IS NULL"

    if kind == "expect_compound_columns_to_be_unique":
        cols = list(kwargs["column_list"])
        ignore = kwargs.get("ignore_row_if", "all_values_are_missing")
        considered = {
            "all_values_are_missing": "NOT (" + " AND ".join(missing(c) for c in cols) + ")",
            "any_value_is_missing": "NOT (" + " OR ".join(missing(c) for c in cols) + ")",
            "never": "TRUE",
        }.get(ignore)
        if considered is None:
            raise ValueError(f"{where}: ignore_row_if {ignore!r} is not supported")
        return considered, "FALSE", cols, cols
    column = kwargs["column"]
    col, absent = _q(column), missing(column)
    if kind == "expect_column_values_to_not_be_null":
        return "TRUE", absent, [], [column]
    if kind == "expect_column_values_to_be_null":
        return "TRUE", f"NOT {absent}", [], [column]
    present = f"NOT {absent}"
    if kind == "expect_column_values_to_be_unique":
        return present, "FALSE", [column], [column]
    if kind in ("expect_column_values_to_be_in_set", "expect_column_values_to_not_be_in_set"):
        values = _resolve(kwargs["value_set"], parameters, where)
        literals = [v for v in (_literal(v, _family(types[column]), types[column]) for v in values) if v]
        inside = f"coalesce({col} IN ({', '.join(literals)}), FALSE)" if literals else "FALSE"
        wrong = f"NOT {inside}" if kind == "expect_column_values_to_be_in_set" else inside
        return present, f"({present} AND {wrong})", [], [column]
    if kind == "expect_column_values_to_be_between":
        family, outside = _family(types[column]), []
        for bound, op, strict in (("min_value", "<", "strict_min"), ("max_value", ">", "strict_max")):
            value = _resolve(kwargs.get(bound), parameters, where)
            if value is None:
                continue
            literal = _literal(value, family, types[column])
            if literal is None:
                raise ValueError(f"{where}: {bound} {value!r} cannot be compared with {column} ({types[column]})")
            # strict: a value equal to the bound is outside too
            outside.append(f"{col} {op}{'=' if _resolve(kwargs.get(strict), parameters, where) else ''} {literal}")
        if not outside:
            raise ValueError(f"{where}: expect_column_values_to_be_between needs min_value or max_value")
        return present, f"({present} AND ({' OR '.join(outside)}))", [], [column]
    raise ValueError(
        f"{where}: row expectation {kind} is not one the SQL counts know ({', '.join(ROW_EXPECTATION_TYPES)})"
    )


def row_counts(rows: SqlRows, suite: dict, parameters: dict | None = None) -> tuple[dict, list[RowCount]]:
    """Rows read per day and each row expectation's counts, from aggregate queries over ``rows.sql``.

    Only aggregates come back (a row per day, or per day and duplicated key before its sum), so memory
    does not grow with the rows. Snapshots and days are read by the caller from the per-day counts.
    """
    conn, sql = _runner(rows.conn), rows.sql
    types = conn.types(sql)  # binds (column types) without running
    parameters = parameters or {}
    counts, checks = [], []
    names = [_name(spec) for spec in suite.get("expectations") or []]
    for i, spec in enumerate(suite.get("expectations") or []):
        where = f"suite {suite['name']}, expectations #{i + 1} ({names[i]})"
        count = RowCount(spec, names[i])
        counts.append(count)
        kwargs = spec["kwargs"]
        columns = [kwargs[k] for k in ("column",) if k in kwargs] + list(kwargs.get("column_list") or [])
        absent = [c for c in columns if c not in types]
        if absent:
            count.error = f"error: column(s) {absent} not among the rows of raw.{suite['table']} ({sorted(types)})"
            continue
        try:
            considered, unexpected, key, sample_columns = _row_check_sql(spec, types, parameters, where)
        except ValueError as error:  # e.g. a range on a VARCHAR column: GX's own evaluation raised too
            count.error = f"error: {error}"
            continue
        read = _flag_sources(suite, types, columns)
        checks.append((count, considered, unexpected, key, read or sample_columns, bool(read)))

    day = _q(DAY_COLUMN)
    select = [f"{day}", "count(*)"]
    for j, (_, considered, unexpected, key, _, _) in enumerate(checks):
        select.append(f"sum(CASE WHEN {considered} THEN 1 ELSE 0 END)")
        select.append("0" if key else f"sum(CASE WHEN {unexpected} THEN 1 ELSE 0 END)")
    per_day = conn.fetchall(f"SELECT {', '.join(select)} FROM ({sql}) r GROUP BY {day}")
    rows_by_day = {_day(r[0]): int(r[1]) for r in per_day}
    for j, (count, considered, unexpected, key, sample_columns, distinct) in enumerate(checks):
        count.considered = sum(int(r[2 + 2 * j] or 0) for r in per_day)
        if key:
            by_day = _duplicated_rows_by_day(conn, sql, considered, key)
        else:
            by_day = {_day(r[0]): int(r[3 + 2 * j] or 0) for r in per_day}
        count.unexpected_by_day = {d: n for d, n in by_day.items() if n}
        count.unexpected = sum(count.unexpected_by_day.values())
        if count.unexpected:
            count.sample = _sample(conn, sql, considered, unexpected, key, sample_columns, distinct)
            count.hint = _variant_hint(conn, count.spec["kwargs"].get("column"), count.sample)
        if count.unexpected and key and SOURCE_FILE in types:
            count.files = _duplicates_files(conn, sql, considered, key)
        if count.unexpected and EXPERIMENT_ID in types:
            count.experiments_by_day = _experiments_by_day(conn, sql, considered, unexpected, key)
        if count.unexpected and _is_unit_range(count.spec, parameters):
            count.unit_slips = unit_slips(conn, sql, count.spec["kwargs"]["column"])
    return rows_by_day, counts


def _is_unit_range(spec: dict, parameters: dict) -> bool:
    """A range check of a probability: values between 0 and 1."""
    kwargs = spec["kwargs"]
    bounds = [_resolve(kwargs.get(b), parameters, spec["type"]) for b in ("min_value", "max_value")]
    return spec["type"] == "expect_column_values_to_be_between" and bounds == [0, 1]


def unit_slips(conn, sql: str, column: str) -> dict:
    """Per day (``_day``) of ``sql``'s rows whose ``column`` values outside [0, 1] all lie above 1 and at most 100,
    init's percentage hint, with the day and its count: a day of scores exported as percentages read only "values
    between 0 and 1" (a few strays, or negatives, are something else: no hint)."""
    col, day = _q(column), _q(DAY_COLUMN)
    rows = _runner(conn).fetchall(
        f"SELECT {day}, count(*), sum(CASE WHEN {col} < 0 OR {col} > 1 THEN 1 ELSE 0 END), "
        f"sum(CASE WHEN {col} > 1 AND {col} <= 100 THEN 1 ELSE 0 END) FROM ({sql}) r GROUP BY {day}"
    )
    return {
        _day(d): f"{column} above 1 on {_day(d)}: {out} of {n} rows, each at most 100: {PROBABILITY_HINT}"
        for d, n, out, percent in rows
        if out and out == percent
    }


def unit_slips_of_table(conn, table: str, column: str, days: list[date]) -> dict:
    """unit_slips of raw.<table>'s rows of ``days``, loaded and quarantined (the loader quarantines a score above 1):
    what a summary says of a day the gate held back."""
    listed = ", ".join(f"DATE '{d}'" for d in days)
    select = f'{_q(column)}, _partition_date AS "{DAY_COLUMN}"'
    return unit_slips(conn, _read_sql(conn, table, f"_partition_date IN ({listed})", select), column)


SOURCE_FILE = "_source_file"


def _variant_hint(conn, column: str | None, sample: list) -> str | None:
    """variant_known's words with the declared variant nearest each sampled unknown one, as init says it."""
    if column != "variant_known" or not all(
        isinstance(s, dict) and {"experiment_id", "variant"} <= s.keys() for s in sample
    ):
        return None
    pairs = [(s["experiment_id"], s["variant"]) for s in sample]
    hints = variant_hints(pairs, conn.fetchall(DECLARED_VARIANTS_SQL), conn.fetchall(QUARANTINED_VARIANTS_SQL))
    return f"{FLAG_WORDS['variant_known']}: {hints}" if hints else None


def _flag_sources(suite: dict, types: dict, columns: list[str]) -> list[str]:
    """For a derived column: the table's columns its SQL reads, whose values the sample shows instead of a flag's
    (prediction_known's [False, False] never named the unknown prediction id) or beside a value's (a share total
    of 1.02, and which experiment's)."""
    derived = suite.get("derived") or {}
    if len(columns) != 1 or columns[0] not in derived:
        return []
    words = dict.fromkeys(re.findall(r"[A-Za-z_]\w*", derived[columns[0]]))
    read = [w for w in words if w in types and w not in derived and w not in (DAY_COLUMN, SOURCE_FILE)]
    return read if types.get(columns[0]) == "BOOLEAN" or not read else [*read, columns[0]]


def _duplicated_rows(sql: str, considered: str, key: list[str], columns: str) -> str:
    """SQL of ``columns`` of the considered rows of ``sql`` whose key occurs more than once (GX's unexpected rows)."""
    partition = ", ".join(_q(c) for c in key)
    return (
        f"SELECT {columns} FROM (SELECT {columns}, count(*) OVER (PARTITION BY {partition}) AS n "
        f"FROM ({sql}) r WHERE {considered}) d WHERE n > 1"
    )


def _duplicates_files(conn, sql: str, considered: str, key: list[str]) -> list[str]:
    """The names of the files a duplicated key's rows come from, when there are several (a file delivered
    twice, or an export that overlaps another): what to remove, which the sample of keys does not say."""
    duplicated = _duplicated_rows(sql, considered, key, _q(SOURCE_FILE))
    rows = conn.fetchall(f"SELECT {_q(SOURCE_FILE)} FROM ({duplicated}) d GROUP BY 1 ORDER BY 1 LIMIT {SAMPLE_SIZE}")
    names = [Path(str(r[0])).name for r in rows if r[0] is not None]
    return names if len(names) > 1 else []


EXPERIMENT_ID = "experiment_id"


def _experiments_by_day(conn, sql: str, considered: str, unexpected: str, key: list[str]) -> dict:
    """day -> the experiment ids of its unexpected rows, sorted (None for a row without one): the experiments an
    experiment design gate's failure concerns. A duplicated key's rows are all unexpected, as GX counts them."""
    columns = f"{_q(DAY_COLUMN)}, {_q(EXPERIMENT_ID)}"
    if key:
        rows = _duplicated_rows(sql, considered, key, columns)
    else:
        rows = f"SELECT {columns} FROM ({sql}) r WHERE {unexpected}"
    found: dict = {}
    for d, experiment_id in conn.fetchall(f"SELECT DISTINCT {columns} FROM ({rows}) u"):
        found.setdefault(_day(d), set()).add(experiment_id)
    return {d: _sorted_ids(ids) for d, ids in found.items()}


def _sorted_ids(ids: set) -> list:
    return sorted(ids, key=lambda i: (i is None, str(i)))


def _duplicated_rows_by_day(conn, sql: str, considered: str, key: list[str]) -> dict:
    """day -> rows whose key occurs more than once (all of them unexpected, as GX counts), one GROUP BY."""
    day = _q(DAY_COLUMN)
    group = ", ".join(_q(c) for c in dict.fromkeys([*key, DAY_COLUMN]))
    partition = ", ".join(_q(c) for c in key)
    result = conn.fetchall(
        f"""
        SELECT {day}, sum(n) FROM (
            SELECT {day}, n, sum(n) OVER (PARTITION BY {partition}) AS key_rows
            FROM (SELECT {group}, count(*) AS n FROM ({sql}) r WHERE {considered} GROUP BY {group}) g
        ) w WHERE key_rows > 1 GROUP BY {day}
        """
    )
    return {_day(d): int(n) for d, n in result}


def _sample(
    conn, sql: str, considered: str, unexpected: str, key: list[str], columns: list[str], distinct: bool = False
) -> list:
    """Up to SAMPLE_SIZE unexpected values (a dict per row for a compound key), as GX's partial list; ``distinct``:
    each value once (the columns a derived flag read: the same unknown variant on every row of a day)."""
    cols = ", ".join(_q(c) for c in columns)
    if key:  # a duplicated key's value once per row, as GX lists each unexpected row
        # the lowest keys: a GROUP BY's order is its hash table's, so a re-run sampled other keys
        rows = conn.fetchall(
            f"SELECT {cols}, least(count(*), {SAMPLE_SIZE}) FROM ({sql}) r WHERE {considered} "
            f"GROUP BY {cols} HAVING count(*) > 1 ORDER BY {cols} LIMIT {SAMPLE_SIZE}"
        )
        rows = [r[:-1] for r in rows for _ in range(r[-1])]
    else:
        # from the days with the most unexpected rows first: a run's failing day, not a tolerated one before it
        per_day = f"SELECT {cols}, count(*) OVER (PARTITION BY {_q(DAY_COLUMN)}) AS day_rows_ FROM ({sql}) r WHERE {unexpected}"
        grouped = f"GROUP BY {cols} ORDER BY max(day_rows_) DESC" if distinct else "ORDER BY day_rows_ DESC"
        rows = conn.fetchall(f"SELECT {cols} FROM ({per_day}) u {grouped} LIMIT {SAMPLE_SIZE}")
    if len(columns) > 1:
        return [{c: _plain(v) for c, v in zip(columns, r)} for r in rows[:SAMPLE_SIZE]]
    return [_plain(r[0]) for r in rows[:SAMPLE_SIZE]]


def _name(spec: dict) -> str:
    column = _columns(spec["kwargs"])
    return spec["type"] + (f"({column})" if column else "")


def _kwargs_text(kwargs: dict) -> str:
    """The kwargs an expectation's name does not show (value_set, bounds), for its description in Data Docs."""
    rest = {k: v for k, v in kwargs.items() if k not in ("column", "column_list")}
    return (" " + ", ".join(f"{k}={v!r}" for k, v in rest.items())) if rest else ""


def allowance(rule: RowRule, rows: int) -> float:
    """The unexpected rows a day of ``rows`` tolerates: fails(u, rows) <=> u > allowance (both strict)."""
    return max(rule.max_share * rows, rule.min_count)


def _gx_rows_level(
    counts: list[RowCount], rows_by_day: dict, days: tuple, rule: RowRule, snapshot: bool
) -> tuple[pd.DataFrame, list[dict], dict]:
    """The frame GX validates for the rows level (a row per day), its expectations and column -> count.

    Each row expectation becomes ``allowance >= unexpected`` on two columns of its own; one GX cannot
    evaluate (its column is missing) names columns the frame lacks, so GX's own error fails every day.
    """
    total = sum(rows_by_day.values())
    frame = pd.DataFrame({"day": list(days)})
    frame["rows"] = [total if snapshot else rows_by_day.get(d, 0) for d in days]
    specs, by_column, seen = [], {}, {}
    for count in counts:
        seen[count.name] = seen.get(count.name, 0) + 1
        label = count.name + (f" #{seen[count.name]}" if seen[count.name] > 1 else "")
        unexpected, allowed = f"{label}: unexpected rows", f"{label}: allowance"
        if count.error is None:
            day_unexpected = [count.unexpected if snapshot else count.unexpected_by_day.get(d, 0) for d in days]
            mostly = count.spec["kwargs"].get("mostly")
            # GX's own `mostly` on the whole range (its success ratio over the considered rows): a pass lets every day pass
            lenient = (
                mostly is not None
                and count.considered
                and (count.considered - count.unexpected) / count.considered >= mostly
            )
            frame[unexpected] = day_unexpected
            frame[allowed] = [float(n) if lenient else float(allowance(rule, n)) for n in frame["rows"]]
        by_column[unexpected] = count
        meta = dict(count.spec.get("meta") or {})
        meta["suite_expectation"] = {"type": count.spec["type"], "kwargs": count.spec["kwargs"]}
        specs.append(
            {
                "type": "expect_column_pair_values_a_to_be_greater_than_b",
                "kwargs": {"column_A": allowed, "column_B": unexpected, "or_equal": True, "ignore_row_if": "neither"},
                "meta": meta,
                "description": (
                    f"{count.name}{_kwargs_text(count.spec['kwargs'])}: each day's unexpected rows (counted in SQL) at most "
                    f"max({rule.max_share} x the day's rows, {rule.min_count})"
                ),
            }
        )
    return frame, specs, by_column


# ----------------------------------------------------------------- validation


DOCS_SITE = "impact_ledger"
GX_DATASOURCE = "impact_ledger"  # the pandas datasource of every suite level's frames
FINGERPRINT_META = "impact_ledger_fingerprint"  # a stored suite's expectations, hashed: unchanged ones are reused


@functools.cache
def _scratch_database() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


@contextlib.contextmanager
def scratch():
    """A connection to this process's in-memory DuckDB, for a query over a few rows already fetched: a new
    database costs ~8 ms (once per gate), a cursor on one ~0.1 ms. Each cursor has its own registered views."""
    cursor = _scratch_database().cursor()
    try:
        yield cursor
    finally:
        cursor.close()


def import_gx():
    """great_expectations, imported with its usage analytics off unless the environment turns them on, and without
    the packages it loads for what the gates never use (orchestration/lib/gx_import.py)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    return import_great_expectations()


def _not_kept() -> None:
    """An ephemeral GX context's ``variables.save``: its config lives in memory only."""


def _context(docs_dir: Path | None):
    """Ephemeral GX context, or a file-mode one whose Data Docs site renders into ``docs_dir``."""
    gx = import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    from orchestration.lib import gx_ids, gx_kwargs, gx_run_times, gx_templates

    gx_kwargs.install()  # GX rebuilds an expectation's configuration per kwarg it reads: once per call instead
    gx_ids.install()  # and names every metric's kwargs through its general JSON converter: plain JSON directly
    gx_run_times.install()  # and parses each stored result's run time with dateutil, on every listing
    if docs_dir is None:
        context = gx.get_context(mode="ephemeral")
        # GX serialises the whole project config to YAML into an in-memory store that an ephemeral context never
        # reads, on every datasource, asset and batch definition added (~2.5 ms each, ~36 a small day's gates)
        context.variables.save = _not_kept
    else:
        gx_templates.install(docs_dir.parent / "gx_context" / "template_cache")  # Data Docs' compiled templates
        context = gx.get_context(mode="file", project_root_dir=str(docs_dir.parent / "gx_context"))
        if context.variables.config_variables_file_path:
            # GX re-reads (YAML-parses) that file at each access to a context setting, ~500 times a run, for
            # `${...}` substitutions this generated context never uses: from the next context on, it is not read
            context.variables.config_variables_file_path = None
            context.variables.save()
        site = {
            "class_name": "SiteBuilder",
            # no validation_results_limit: GX would render pages only for the latest that many results, and
            # its store keeps no more than the latest IMPACT_LEDGER_GX_DOCS_INDEX_LIMIT plus a run's new ones
            # (gx_archive), which the index lists
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder", "show_how_to_buttons": False},
            "show_how_to_buttons": False,  # links to GX's online guides: noise in an offline site
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
        }
        add = (
            context.update_data_docs_site if DOCS_SITE in context.list_data_docs_sites() else context.add_data_docs_site
        )
        add(DOCS_SITE, site)
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # keep run logs readable
    return context


class GxSession:
    """One GX context for the suites a process validates; with ``docs_dir``, results are kept in a
    file-mode context and ``build_docs()`` renders the Data Docs pages still missing.

    Creating GX's context, compiling its page templates and rebuilding the docs index cost about a
    second each time: a run's gates share one session and the pages are rendered once per run."""

    def __init__(self, docs_dir: Path | None = None):
        self.docs_dir = docs_dir
        self.index_limit = gx_docs_index_limit() if docs_dir is not None else None  # a bad setting fails first
        self.context = _context(docs_dir)
        self.suite_names: set[str] = set()  # validated since the last build: their pages are redrawn
        self._source = None
        self._definitions: dict[str, tuple[str, Any]] = {}  # name -> (fingerprint, ValidationDefinition)

    # GX's bookkeeping (a datasource, an asset and batch definition per suite level, the stored suite and
    # validation definition) is written once and reused: in a file-mode context each write rewrote the
    # project's YAML or a JSON file, about a third of a small day's validations. A file-mode context keeps
    # them between runs too.

    def batch_definition(self, name: str, level: str):
        """The pandas asset ``name``'s whole-frame batch definition ``level``, created on first use."""
        if self._source is None:
            try:
                self._source = self.context.data_sources.get(GX_DATASOURCE)  # kept by a file-mode context
            except KeyError:
                self._source = self.context.data_sources.add_pandas(name=GX_DATASOURCE)
        asset = next((a for a in self._source.assets if a.name == name), None)
        asset = asset or self._source.add_dataframe_asset(name=name)
        batch = next((b for b in asset.batch_definitions if b.name == level), None)
        return batch or asset.add_batch_definition_whole_dataframe(level)

    def validation_definition(self, gx, name: str, batch_definition, gx_suite):
        """The stored validation definition of ``gx_suite`` on ``batch_definition``: the stored one when its
        suite has the same expectations (a fingerprint in the suite's meta), else the suite and it written."""
        configs = [e.configuration.to_json_dict() for e in gx_suite.expectations]
        for c in configs:
            c.pop("id", None)
        fingerprint = hashlib.sha256(json.dumps(configs, sort_keys=True, default=str).encode()).hexdigest()
        known = self._definitions.get(name)
        if known is None and self.docs_dir is not None:
            from great_expectations.exceptions import DataContextError

            try:  # written by an earlier run
                stored = self.context.validation_definitions.get(name)
                known = ((stored.suite.meta or {}).get(FINGERPRINT_META), stored)
            except DataContextError:
                pass
        if known is None or known[0] != fingerprint:
            gx_suite.meta[FINGERPRINT_META] = fingerprint
            definition = self.context.validation_definitions.add_or_update(
                gx.ValidationDefinition(
                    name=name, data=batch_definition, suite=self.context.suites.add_or_update(gx_suite)
                )
            )
            known = (fingerprint, definition)
        self._definitions[name] = known
        return known[1]

    def judge(
        self, suite_name: str, frames: dict, specs: dict, parameters: dict | None, by_column: dict, days: tuple
    ) -> list[ExpectationOutcome]:
        """judge_levels() in this session."""
        return judge_levels(self, suite_name, frames, specs, parameters, by_column, days)

    def start_judging(self, *args) -> Callable[[], list[ExpectationOutcome]]:
        """judge(*args), here and now; the returned call gives its outcomes (gx_worker's returns while GX works)."""
        outcomes = self.judge(*args)
        return lambda: outcomes

    def suite_done(self, suite_name: str) -> None:
        """A suite has run (gx_worker's session starts the Data Docs once all have; here build_docs renders)."""

    def pending_results(self, stored: list | None = None) -> list:
        """Stored validation results (``stored``: as listed) that have no page in the site yet (the site mirrors
        the store's paths)."""
        pages = self.docs_dir / "validations"
        return [
            key
            for key in (self.context.validation_results_store.list_keys() if stored is None else stored)
            if not (pages / ("/".join(key.to_tuple()) + ".html")).exists()
        ]

    def build_docs(self) -> int:
        """Render the pending results' pages, their suites' pages and the index into ``docs_dir``, and make
        them work offline. Returns the number of result pages rendered. A full rebuild would re-render
        every result kept so far, which grows with history."""
        if self.docs_dir is None:
            return 0
        from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

        from orchestration.lib.data_docs import make_site_offline

        store = self.context.validation_results_store
        stored = store.list_keys()
        results = self.pending_results(stored)
        # rendered results beyond the index's latest leave GX's store and site, pages too (gx_archive); the
        # pending ones stay to get their pages (with a limit below one run's results, they leave next run)
        pending = {key.to_tuple() for key in results}
        rendered = [key for key in stored if key.to_tuple() not in pending]
        keep = max(0, self.index_limit - len(results))
        stored = results + archive_older_results(store, self.docs_dir, rendered, keep)
        names = self.suite_names | {key.expectation_suite_identifier.name for key in results}
        if not results and not names:
            return 0
        suites = [ExpectationSuiteIdentifier(name=name) for name in sorted(names)]
        built = time.time() - 2  # coarse file-system clocks: a page written in this second counts
        with listed_once(store, stored), outcomes_only(store, pending):
            self.context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=KeyList(results + suites))
        make_site_offline(self.docs_dir, since=built)  # no CSS/JS from CDNs; the index's tables as plain HTML
        self.suite_names = set()
        return len(results)


class KeyList(list):
    """GX's keys to render, whose ``in`` is a hash lookup: a Data Docs build tests every stored result's key
    against them (GX's keys hash as they compare), ~500 x 36 comparisons of two tuples each, ~0.2 s a run."""

    def __init__(self, keys):
        super().__init__(keys)
        self._lookup = set(keys)

    def __contains__(self, key) -> bool:
        return key in self._lookup


@contextlib.contextmanager
def outcomes_only(store, pending: set):
    """GX's ``store`` inside the block reads a result whose page exists (not in ``pending``, key tuples) as
    only what the Data Docs index shows of it: its success and meta, without its expectations' results. The
    index reads every result it lists (500 by default), and deserialising each whole was ~0.25 s of a run's
    build; the pending results are read whole, for their pages."""
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult

    whole = store.get

    def get(key):
        if not hasattr(key, "to_tuple") or key.to_tuple() in pending:
            return whole(key)
        text = store.store_backend.get(store.key_to_tuple(key))
        if not text:
            return None
        raw = json.loads(text)
        return ExpectationSuiteValidationResult(
            success=raw["success"],
            results=[],
            suite_name=raw["suite_name"],
            statistics=raw.get("statistics"),
            meta=raw.get("meta"),
        )

    store.get = get
    try:
        yield
    finally:
        del store.get


@contextlib.contextmanager
def listed_once(store, keys: list):
    """GX's ``store`` listed as ``keys`` inside the block. A Data Docs build lists the results store six times (a
    walk of its folders, which grows with history) and nothing writes to it meanwhile."""
    store.list_keys = lambda: list(keys)
    try:
        yield
    finally:
        del store.list_keys


_SESSIONS: dict = {}


def gx_session(docs_dir: Path | None) -> GxSession | gx_worker.RemoteGxSession:
    """This process's session for ``docs_dir``: the gate steps of an in-process run share it. With a GX worker
    (the command line's runs: orchestration/lib/gx_worker.py) it is the worker's."""
    key = None if docs_dir is None else Path(docs_dir).resolve()
    remote = gx_worker.session(key)
    if remote is not None:
        return remote
    if key not in _SESSIONS:
        _SESSIONS[key] = GxSession(key)
    return _SESSIONS[key]


def validate_frames(frames: dict, suite: dict, parameters: dict | None = None, **options) -> SuiteResult:
    """start_validation(), waiting for its result."""
    return start_validation(frames, suite, parameters, **options).result()


def start_validation(
    frames: dict,
    suite: dict,
    parameters: dict | None = None,
    docs_dir: Path | None = None,
    days: list[date] | None = None,
    row_rule: RowRule | None = None,
    session: GxSession | None = None,
) -> PendingSuite:
    """Validate each level against that level's expectations in one GX context, and judge each day.

    ``frames``: "schema" and "days" as pandas frames (small); "rows" as ``SqlRows`` (counted in SQL,
    never fetched) or a ready pandas frame (small tests; without ``_day`` it is one day), counted the
    same way in an in-memory DuckDB. ``days``: the run's days (default: the days of the rows' ``_day``).
    ``row_rule``: gates.rows (default: the project file's). With ``docs_dir``, results are kept in a
    file-mode context and GX Data Docs (HTML) are rebuilt into ``docs_dir``. With a ``session``
    (its own ``docs_dir`` applies), the context is shared and the session builds the docs later.
    The counting happens here; GX's part in the session (a GxSession, or gx_worker's in its process, which
    judges while this process goes on until ``result()`` is asked for).
    """
    frames = dict(frames)
    rows = frames.pop("rows", None)
    counts: list[RowCount] | None = None
    rows_by_day: dict = {None: 0}
    if rows is not None:
        rows_by_day, counts = _count_rows(rows, suite, parameters)
    n_rows = sum(rows_by_day.values())
    days = tuple(days) if days is not None else tuple(sorted(rows_by_day, key=lambda d: (d is None, d))) or (None,)
    snapshot = _is_snapshot(suite)
    if snapshot:  # a dimension snapshot is read whole by every run: each day validated all of it
        rows_by_day = {d: n_rows for d in days}
        for count in counts or []:  # and its failing rows are every day's
            if count.experiments_by_day:
                named = _sorted_ids(set().union(*count.experiments_by_day.values()))
                count.experiments_by_day = dict.fromkeys(days, named)
    rule = EVERY_ROW if suite.get("row_rule") == "every_row" else (row_rule or configured_row_rule())

    frames = {level: frame.reset_index(drop=True) for level, frame in frames.items()}  # GX's indexes are positions
    specs = {level: suite.get(key) or [] for key, level in LEVELS.items()}
    by_column: dict[str, RowCount] = {}
    if counts:
        frames["rows"], specs["rows"], by_column = _gx_rows_level(counts, rows_by_day, days, rule, snapshot)

    if session is None:  # a session of its own: judged, and its pages built, now
        session = GxSession(docs_dir)
        outcomes = session.judge(suite["name"], frames, specs, parameters, by_column, days)
        session.build_docs()
        return PendingSuite(lambda: SuiteResult(suite["name"], n_rows, outcomes, days, rows_by_day))
    judged = session.start_judging(suite["name"], frames, specs, parameters, by_column, days)
    return PendingSuite(lambda: SuiteResult(suite["name"], n_rows, judged(), days, rows_by_day))


def judge_levels(
    session: GxSession,
    suite_name: str,
    frames: dict,
    specs: dict,
    parameters: dict | None,
    by_column: dict,
    days: tuple,
) -> list[ExpectationOutcome]:
    """GX's validation of each level's frame against that level's expectations (``specs``), as outcomes judged
    per day. ``by_column``: the rows level's SQL-side counts by the column GX compares (_gx_rows_level)."""
    gx = import_gx()
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    outcomes: list[ExpectationOutcome] = []
    for level in LEVELS.values():
        if not specs[level] or level not in frames:
            continue
        name = f"{suite_name}_{level}"
        batch_definition = session.batch_definition(name, level)
        gx_suite = gx.ExpectationSuite(name=name)
        session.suite_names.add(name)
        for exp in specs[level]:
            gx_suite.add_expectation_configuration(
                ExpectationConfiguration(
                    type=exp["type"],
                    kwargs=exp["kwargs"],
                    meta=exp.get("meta") or {},
                    description=exp.get("description"),
                )
            )
        result = _gx_validate(session, gx, name, batch_definition, gx_suite, frames[level], parameters)
        for r in result.results:
            details = r.result or {}
            meta = r.expectation_config.meta or {}
            blocking = meta.get("severity", "error") != "warning"
            if level == "rows":
                outcomes.append(_rows_outcome(r, by_column[r.expectation_config.kwargs["column_B"]], days, blocking))
                continue
            by_day = _unexpected_by_day(frames[level], level, details.get("unexpected_index_list"))
            if r.success:
                failed_days: tuple = ()
            elif by_day is None:  # a schema or table expectation, or one GX could not evaluate: every day
                failed_days = days
            else:  # the days level: already one row per day (and group)
                failed_days = tuple(d for d in days if by_day.get(d, 0) > 0)
            outcomes.append(
                ExpectationOutcome(
                    expectation=r.expectation_config.type,
                    column=_columns(r.expectation_config.kwargs),
                    success=not failed_days,
                    unexpected_count=details.get("unexpected_count"),
                    unexpected_percent=details.get("unexpected_percent"),
                    sample_unexpected=[_plain(v) for v in (details.get("partial_unexpected_list") or [])[:SAMPLE_SIZE]],
                    observed_value=_plain(details.get("observed_value")),
                    level=level,
                    blocking=blocking,
                    detail=(_day_hint(_columns(r.expectation_config.kwargs), frames.get("days"), failed_days))
                    or _detail(details, r.exception_info),
                    failed_days=failed_days,
                    unexpected_by_day=by_day or {},
                )
            )
    return outcomes


def _gx_validate(session: GxSession, gx, name, batch_definition, gx_suite, frame, parameters):
    """One GX validation of ``frame`` (every frame GX is given passes here: aggregates, never the rows)."""
    # COMPLETE: the index of every unexpected row (a row is a day, or a day and group), no index query
    result_format = {
        "result_format": "COMPLETE",
        "partial_unexpected_count": SAMPLE_SIZE,
        "return_unexpected_index_query": False,
    }
    if session.docs_dir is None:  # no Data Docs: nothing is kept
        return batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(
            gx_suite, result_format=result_format, expectation_parameters=parameters or {}
        )
    return session.validation_definition(gx, name, batch_definition, gx_suite).run(
        batch_parameters={"dataframe": frame},
        result_format=result_format,
        expectation_parameters=parameters or {},
    )


# what a failing day check's values are: said beside its sample
DAY_HINTS = {
    "volume_deviation": "(rows - trailing median) / the band's half-width: below -1 is under the band "
    "(gates.volume); -0.8 at a median of 200 with tolerance 0.5 is 120 rows",
    "volume_spike": "(rows - trailing median) / the band's half-width: above +1 is over the band "
    "(gates.volume); +0.8 at a median of 200 with tolerance 0.5 is 280 rows",
    "fresh": "no rows after steady days (the same weekday a week before had rows)",
}


def _day_hint(column: str, days, failed_days: tuple) -> str | None:
    """DAY_HINTS' words for a failed day expectation, with the first failed day's rows against its trailing median
    (an empty day read "1 unexpected (100.00% of days), e.g. [False]", not how many rows were expected)."""
    if not failed_days or column not in DAY_HINTS:
        return None
    hint = DAY_HINTS[column]
    if isinstance(days, pd.DataFrame) and {"day", "rows", "trailing_median"} <= set(days.columns):
        first = days[pd.to_datetime(days["day"]).dt.date == failed_days[0]]
        week_before = first["rows_week_before"].iloc[0] if "rows_week_before" in first and len(first) == 1 else None
        if column == "fresh" and pd.notna(week_before):
            # what made the day due, then the median: a monthly batch's week after read "0 rows against a trailing
            # median of 0"
            hint += (
                f"; {failed_days[0]}: {int(first['rows'].iloc[0]):,} rows, where the same weekday a week before had "
                f"{int(week_before):,} (trailing median {first['trailing_median'].iloc[0]:,.0f})"
            )
        elif len(first) == 1 and pd.notna(first["trailing_median"].iloc[0]):
            level = f"a trailing median of {first['trailing_median'].iloc[0]:,.0f}"
            if "weekly" in first and bool(first["weekly"].iloc[0]):
                share = first["weekday_share"].iloc[0]
                level = (
                    f"{first['trailing_median'].iloc[0]:,.0f} expected (the trailing median x {share:.2f}, its "
                    "weekday's share of its week in the weeks before)"
                )
            hint += f"; {failed_days[0]}: {int(first['rows'].iloc[0]):,} rows against {level}"
    return hint


# what a failing reference check most often means (its sample is only True/False): said beside it
REFERENCE_HINTS = {
    "prediction_known": "the predictions they point to are not loaded: a predictions file of those days missing "
    "or late? deliver it, then run the days again",
    "user_known": "user ids the users table lacks: a users export behind the others, or ids written differently "
    "(000001 and 1)?",
}


def tolerated_warning(expectation: str, *said: str) -> str:
    """A row expectation a day passed only by gates.rows.min_count, as its warning is stored: with what it checks,
    and what else ``said`` names: the files a duplicated key's rows come from (a trial's corrected re-delivery of
    5 orders warned of duplicates without naming the two files, one of which the loader kept by their names'
    order), the values outside a set (outside_set)."""
    words = "; ".join(w for w in (flag_words(expectation), *said) if w)
    return f"{expectation} ({words + '; ' if words else ''}tolerated by gates.rows.min_count)"


OUTSIDE_SHOWN = 5  # the values outside a set a warning names


def outside_set(outcome: ExpectationOutcome) -> str:
    """The values a set expectation found outside its set, as a warning names them ('' for another expectation):
    a trial's new model warned "expect_column_values_to_be_in_set(model_id)" without naming it or what to do."""
    derived = flag_words(outcome.name)  # a reference check's flag: its sample is rows' ids, said by its words
    if outcome.expectation != "expect_column_values_to_be_in_set" or not outcome.sample_unexpected or derived:
        return ""
    values = sorted({str(v) for v in outcome.sample_unexpected})
    more = ", ..." if len(values) > OUTSIDE_SHOWN else ""
    said = f"outside the set: {', '.join(values[:OUTSIDE_SHOWN])}{more}"
    if outcome.column == "model_id":
        said += " (models the project file does not declare: add them under models:)"
    return said


def duplicates_from(files) -> str:
    """What the files a duplicated key's rows come from say ('' for none)."""
    return f"the duplicated rows come from {', '.join(files)}: a file delivered twice?" if files else ""


def tolerated_hint(warning: str) -> str:
    """REFERENCE_HINTS' line for a day_tolerated warning (``expect_...(prediction_known) (...; tolerated ...)``),
    else '': a warning that names only its expectation says nothing to the reader of summary (a trial's only
    trace of a missing predictions file)."""
    column = re.match(r"expect_\w+\((\w+)\)", warning)
    return REFERENCE_HINTS.get(column.group(1), "") if column else ""


def _rows_outcome(r, count: RowCount, days: tuple, blocking: bool) -> ExpectationOutcome:
    """A row expectation's outcome: GX's verdict on the per-day frame, DuckDB's counts and sample."""
    details = r.result or {}
    index = details.get("unexpected_index_list")
    if count.error is not None or (not r.success and index is None):  # GX could not evaluate it: every day
        failed_days = days
    else:
        failed_days = () if r.success else tuple(days[i] for i in sorted(index))
    return ExpectationOutcome(
        expectation=count.spec["type"],
        column=_columns(count.spec["kwargs"]),
        success=not failed_days,
        unexpected_count=None if count.error else count.unexpected,
        unexpected_percent=count.percent,
        sample_unexpected=count.sample,
        level="rows",
        blocking=blocking,
        detail=count.error
        or duplicates_from(count.files)
        or (count.hint or REFERENCE_HINTS.get(count.spec["kwargs"].get("column")) if failed_days else None)
        or next((count.unit_slips[d] for d in failed_days if d in count.unit_slips), None)
        or _detail(details, r.exception_info),
        failed_days=failed_days,
        unexpected_by_day=count.unexpected_by_day,
        experiments_by_day=count.experiments_by_day,
        files=tuple(count.files or ()),
    )


def _count_rows(rows, suite: dict, parameters: dict | None) -> tuple[dict, list[RowCount]]:
    """row_counts() of SqlRows, or of a ready pandas frame through an in-memory DuckDB."""
    if isinstance(rows, SqlRows):
        return row_counts(rows, suite, parameters)
    with scratch() as conn:
        conn.register(ROWS_VIEW, rows)
        day = "" if DAY_COLUMN in rows else f', CAST(NULL AS DATE) AS "{DAY_COLUMN}"'  # a frame without days: one day
        return row_counts(SqlRows(conn, f"SELECT *{day} FROM {ROWS_VIEW}"), suite, parameters)


def validate_frame(
    frame: pd.DataFrame, suite: dict, parameters: dict | None = None, row_rule: RowRule | None = None
) -> SuiteResult:
    """Row-level expectations only, on a ready frame (small tests); without ``_day`` it is one day."""
    return validate_frames({"rows": frame}, suite, parameters, row_rule=row_rule)


def configured_row_rule() -> RowRule:
    from orchestration.lib.project_config import load_config

    rows = load_config().gates.rows
    return RowRule(rows.max_share, rows.min_count)


def _is_snapshot(suite: dict) -> bool:
    contract = CONTRACTS.get(suite["table"])
    return contract is not None and contract.time_column is None


def _day(value) -> date | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).date()


def _count_by_day(values: pd.Series) -> dict:
    return {_day(k): int(n) for k, n in values.value_counts(dropna=False).items()}


def _unexpected_by_day(frame: pd.DataFrame, level: str, index_list) -> dict | None:
    """day -> unexpected rows, from GX's unexpected row indexes; None when GX names no rows."""
    column = DAY_INDEX.get(level)
    if index_list is None or column is None:
        return None
    if column not in frame:
        return {None: len(index_list)}
    positions = np.asarray(index_list, dtype=np.int64)
    return _count_by_day(pd.Series(frame[column].to_numpy()[positions])) if len(positions) else {}


def _columns(kwargs: dict) -> str | None:
    """The column an expectation is about, or the columns of a compound one ("experiment_id, user_id")."""
    return kwargs.get("column") or ", ".join(kwargs.get("column_list") or []) or None


def _detail(details: dict, exception_info: dict | None) -> str | None:
    """What an outcome's counts do not say: the missing columns, or GX's error (e.g. a missing column)."""
    missing = (details.get("details") or {}).get("mismatched", {}).get("missing")
    if missing:
        return f"missing columns: {missing}"
    # exception_info is either one {raised_exception, exception_message} or such a dict per metric
    infos = [exception_info or {}] + [v for v in (exception_info or {}).values() if isinstance(v, dict)]
    messages = [i["exception_message"] for i in infos if i.get("raised_exception") and i.get("exception_message")]
    return f"error: {messages[0]}" if messages else None


def _readable(value: Any) -> Any:
    """A sample as a person reads it: days and times in ISO form ('2026-11-10', not datetime.date(2026, 11, 10)),
    inside lists and rows too."""
    if isinstance(value, list):
        return [_readable(v) for v in value]
    if isinstance(value, dict):
        return {k: _readable(v) for k, v in value.items()}
    if isinstance(value, datetime) and value == datetime.combine(value.date(), datetime.min.time()):
        return value.date().isoformat()  # a day read back as midnight
    if isinstance(value, date):
        return value.isoformat()
    return value


def _plain(value: Any) -> Any:
    """numpy scalars and NA into JSON-friendly Python values."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


# ------------------------------------------------------ a partition's slice


def _sql_list(values) -> str:
    quoted = ", ".join("'" + str(v).replace("'", "''") + "'" for v in values)
    return f"[{quoted}]::VARCHAR[]"


def placeholders(first: date, last: date, config=None) -> dict[str, str]:
    """What a suite's SQL may name in braces: the run's days and values of the project file.

    {first} / {last}: the run's days; {declared_models}: the models the project file declares (a
    VARCHAR[] literal) and {models_declared}: whether it declares any (none: every model_id is
    accepted, there is nothing to compare with); {max_label_horizon_days}: the longest label horizon;
    {label_lookup_days}: how far back a label or feedback event may find its prediction, twice that
    horizon (init proposes the p99 delay: a label a little later is not counted, but it is no broken
    reference either, and must not fail its day).
    """
    if config is None:
        from orchestration.lib.project_config import load_config

        config = load_config()
    return {
        "first": first.isoformat(),
        "last": last.isoformat(),
        "declared_models": _sql_list(sorted(config.models)),
        "models_declared": "true" if config.models else "false",
        "max_label_horizon_days": str(int(config.max_label_horizon_days)),
        "label_lookup_days": str(2 * int(config.max_label_horizon_days)),
    }


def _fill(sql: str, first: date, last: date, config=None) -> str:
    for name, value in placeholders(first, last, config).items():
        sql = sql.replace("{" + name + "}", value)
    return sql


def schema_frame(conn, table: str) -> pd.DataFrame:
    """One row: each column of raw.<table> holding its DuckDB type (on Spark: the DuckDB name of its type)."""
    return pd.DataFrame({name: [dtype] for name, dtype in _runner(conn).types(f"SELECT * FROM raw.{table}").items()})


# the quarantined rows a gate reads: all but copies of a row (the loader's COPY_REASON within a day, RESENT_REASON
# of a row loaded on an earlier day), which say nothing the row does not, and whose duplicated keys failed the
# uniqueness rule for a file delivered twice, or every day's overlapping export
READ_QUARANTINE = (
    "coalesce(_reason, '') NOT IN ("
    + ", ".join("'" + r.replace("'", "''") + "'" for r in (COPY_REASON, RESENT_REASON))
    + ")"
)


def _read_days(table: str, group: str = "") -> str:
    """SQL of the day (``day``, and ``group``'s columns) of each row read of raw.<table>: loaded and quarantined."""
    return (
        f"SELECT _partition_date AS day{group} FROM raw.{table} UNION ALL "
        f"SELECT _partition_date AS day{group} FROM raw_quarantine.{table} WHERE {READ_QUARANTINE}"
    )


def _read_sides(conn, table: str) -> dict[str, dict[str, str]]:
    """The columns and types of raw.<table> and raw_quarantine.<table> (``_reason`` left out)."""
    conn = _runner(conn)
    sides = {schema: conn.types(f"SELECT * FROM {schema}.{table}") for schema in ("raw", "raw_quarantine")}
    sides["raw_quarantine"].pop("_reason", None)
    return sides


def _read_sql(conn, table: str, where: str, select: str = "*", sides: dict | None = None) -> str:
    """``select`` over the rows read of raw.<table> (loaded, and quarantined but READ_QUARANTINE's copies; ``_reason``
    left out, each side as ``t``) as one UNION ALL by name, written out column by column (Spark has no UNION BY
    NAME nor EXCLUDE): a
    column one side lacks is NULL there. ``select`` runs on each side: Spark 4.0 loses a correlated subquery's
    column when it pushes a projection through a union itself (NoSuchElementException: key not found)."""
    conn = _runner(conn)
    sides = sides or _read_sides(conn, table)
    types = sides["raw"] | {c: t for c, t in sides["raw_quarantine"].items() if c not in sides["raw"]}
    read = {"raw": where, "raw_quarantine": f"{where} AND {READ_QUARANTINE}"}
    selects = [
        f"SELECT {select} FROM (SELECT "
        + ", ".join(_q(c) if c in have else f"CAST(NULL AS {types[c]}) AS {_q(c)}" for c in types)
        + f" FROM {schema}.{table} WHERE {read[schema]}) t"
        for schema, have in sides.items()
    ]
    return " UNION ALL ".join(selects)


def rows_query(conn, suite: dict, first: date, last: date, config=None) -> str:
    """SQL of everything read for the days (loaded and quarantined rows), with the suite's derived columns and ``_day``.

    Derived SQL sees the row as ``t`` (correlated subqueries write ``t.column``; ``t._partition_date`` is the
    row's own day, so a flag never depends on which other days share the run).
    A boolean derived column (a flag such as ``user_known``) is never null: SQL's
    ``NULL IN (...)`` is null, and GX's in-set checks skip nulls, so a row with a
    null key would otherwise pass its referential check.
    """
    conn, table = _runner(conn), suite["table"]
    cols = [f'"{c}"' for c in suite_columns(suite)]
    derived = [f'({_fill(sql, first, last, config)}) AS "{name}"' for name, sql in (suite.get("derived") or {}).items()]
    sides = _read_sides(conn, table)
    # _source_file (loaders write it): which files a duplicated key comes from (_duplicates_files)
    source = [_q(SOURCE_FILE)] if SOURCE_FILE in sides["raw"] else []
    select = ", ".join(cols + derived + [f'_partition_date AS "{DAY_COLUMN}"', *source])
    where = f"_partition_date BETWEEN DATE '{first}' AND DATE '{last}'"
    query = _read_sql(conn, table, where, select, sides)
    types = conn.types(query)  # binds the query (column types) without running it
    flags = {name for name in suite.get("derived") or {} if types[name] == "BOOLEAN"}
    if flags:  # in place, as SELECT * REPLACE would (Spark has no REPLACE)
        listed = (f"coalesce({_q(c)}, false) AS {_q(c)}" if c in flags else _q(c) for c in types)
        query = f"SELECT {', '.join(listed)} FROM ({query}) f"
    return query


def rows_frame(conn, suite: dict, first: date, last: date, config=None) -> pd.DataFrame:
    """The rows of rows_query() as a pandas frame: for tests and inspection on small data (the gate never fetches them)."""
    return _runner(conn).df(rows_query(conn, suite, first, last, config))


def missing_columns(suite: dict, schema: pd.DataFrame) -> list[str]:
    """Columns the row and day levels read (the contract's required ones and the suite's) absent from the table."""
    contract = CONTRACTS[suite["table"]]
    needed = [c.name for c in contract.columns if c.required] + suite_columns(suite) + [suite.get("volume_by")]
    return sorted({c for c in needed if c and c not in schema.columns})


def rows_read_per_day(conn, table: str, first: date, last: date) -> dict[date, int]:
    """Rows read (loaded + quarantined, a row's copies left out) of each day first..last: what a day's gate validated.

    An undated table (a dimension snapshot) is read whole by every run, so each day validated all of it.
    """
    conn, read = _runner(conn), _read_days(table)
    if CONTRACTS[table].time_column is None:
        total = conn.fetchall(f"SELECT count(*) FROM ({read}) r")[0][0]
        return {day.date(): total for day in pd.date_range(first, last)}
    counts = conn.fetchall(
        f"SELECT day, count(*) FROM ({read}) r WHERE day BETWEEN DATE '{first}' AND DATE '{last}' GROUP BY day"
    )
    return {pd.Timestamp(day).date(): n for day, n in counts}


def table_is_empty(conn, table: str) -> bool:
    """No row ever read (loaded or quarantined): an optional table absent from the source."""
    return not _runner(conn).fetchall(
        f"SELECT EXISTS (SELECT 1 FROM raw.{table}) OR EXISTS (SELECT 1 FROM raw_quarantine.{table})"
    )[0][0]


def days_frame(conn, suite: dict, first: date, last: date, volume=None) -> pd.DataFrame:
    """One row per day (and per `volume_by` group): rows read, trailing median, volume band, freshness.

    ``volume``: gates.volume of the project file (trailing_days T, min_count, tolerance, z; a table's own in
    gates.volume.tables). The trailing
    median is over the T calendar days before the day (empty days count as 0), once the group has
    rows on or before the first of them (a launch or a ramp-up is not judged against a history it does
    not have). A day is judged only when that median is at least min_count; its band is the wider of
    +-tolerance x median (breakage at high volume) and +-z x sqrt(median) (z Poisson standard
    deviations: noise at low volume). volume_deviation = (rows - median) / half-width, in [-1, 1] when
    inside the band, null when not judged or empty; volume_spike is the same above the median (null below:
    the suites hold a drop back and only warn of a rise). An empty day is freshness's failure: stale when
    0 rows is less likely under Poisson(the same weekday a week before's rows) than a z standard-normal
    deviation, i.e. exp(-rows) < Phi(-z) (at z = 4: above 10.4 rows a week before, within the group's history):
    the history must say rows were due that weekday, and on two of its RHYTHM_WEEKS weeks before where the history
    has two (a monthly batch's weekday a week after it is no missed delivery). A day the business is closed every week (a weekday-only
    business's weekends), an empty quiet Saturday after one of 2 rows (a trial's ~10 patients a weekday:
    Poisson(2) is 0 one Saturday in seven) or a weekly batch's other weekdays are no outage, in their first
    week too (no week before: the trailing median cannot tell a weekly batch's empty Tuesday from an outage).
    A source delivering every other day is read by parity: an empty day whose parity (2, 4, ..., 14 days back)
    had no rows due while the other parity's days mostly had is its off day, not stale for the busy weekday a
    week before; an empty day whose parity had rows due on all seven of those days is a missed delivery. A day
    whose other parity had no rows due while its own mostly had (``alternating``) is a delivery day: its
    trailing median is over the T days of its parity (2, 4, ..., 2T back) instead, so its volume is judged.
    ``weekly`` (a table with a weekly cycle): the median a day is judged against is the trailing median times its
    weekday's share of its week (_WEEKLY_LEVEL: that weekday's rows over the median of the 7 days around them, the
    median of the WEEKDAY_LEVEL_WEEKS weeks before), judged once two such weeks are (a quiet Saturday against 0.4 of
    its trailing median, a partial Thursday against a whole one: a band wide enough for the weekends passed every
    drop short of an empty day; a weekday's own rows of weeks before would hold a wind-down back for weeks, the
    trailing median follows it in days). Columns ``weekly`` and ``weekday_share`` say so.
    """
    if volume is None:
        from orchestration.lib.project_config import load_config

        volume = load_config().gates.volume
    if getattr(volume, "tables", None):  # the table's own settings (gates.volume.tables)
        volume = volume.for_table(suite["table"])
    t, min_count, tolerance, z = volume.trailing_days, volume.min_count, volume.tolerance, volume.z
    weekly = bool(getattr(volume, "weekly", False))
    # gates.volume.closed_days: neither stale nor below the band (a holiday's empty orders file)
    listed = ", ".join(f"DATE '{d}'" for d in getattr(volume, "closed_days", ()) or ())
    closed = f"day IN ({listed})" if listed else "false"
    stale_above = stale_median(z)
    # the calendar reaches back to the trailing window, its parity days (an every-other-day source) and the
    # weekday's RHYTHM_WEEKS weeks
    span = max(2 * t, RHYTHM_WEEKS * WEEK)
    table, by = suite["table"], suite.get("volume_by")
    group = f', "{by}"' if by else ""
    cgroup = f', c."{by}"' if by else ""
    gby = f' GROUP BY "{by}"' if by else ""
    join = f'AND c."{by}" IS NOT DISTINCT FROM g."{by}"' if by else ""
    back = f"w.day >= w.first_day AND c.day - w.day <= {2 * WEEK}"  # in the group's history, two weeks back
    even, odd = f"{back} AND (c.day - w.day) % 2 = 0", f"{back} AND (c.day - w.day) % 2 = 1"
    parity = f"w.day >= w.first_day AND (c.day - w.day) % 2 = 0 AND c.day - w.day <= {2 * t}"  # t days of its parity
    weekday = f"w.day >= w.first_day AND (c.day - w.day) % {WEEK} = 0 AND c.day - w.day <= {RHYTHM_WEEKS * WEEK}"
    hjoin = f'AND h."{by}" IS NOT DISTINCT FROM g."{by}"' if by else ""
    wjoin = f'AND w."{by}" IS NOT DISTINCT FROM c."{by}"' if by else ""
    joins = {
        "cgroup": cgroup,
        "wjoin": wjoin,
        "sjoin": f'AND s."{by}" IS NOT DISTINCT FROM j."{by}"' if by else "",
    }
    read = _read_days(table, group)
    levelled = (
        _WEEKLY_LEVEL.format(
            week=WEEK, half=WEEK // 2, weeks_back=WEEKDAY_LEVEL_WEEKS * WEEK, min_count=min_count, **joins
        )
        if weekly
        else "levelled AS (SELECT *, CAST(NULL AS DOUBLE) AS weekday_share, false AS weekly FROM judged),"
    )
    # The engine counts the rows of each day (and group) up to the run's last day: one aggregate, a few rows
    # per day. The calendar, trailing medians and bands are a self-join over those rows, done here in an
    # in-memory DuckDB: on Spark the whole query was one job of eight Parquet scans (CTEs are inlined there).
    counts = _runner(conn).df(
        f"SELECT day{group}, count(*) AS rows FROM ({read}) r WHERE day <= DATE '{last}' GROUP BY day{group}"
    )
    with scratch() as local:
        local.register("_day_counts", counts)
        frame = local.execute(
            f"""
        WITH history AS (  -- each group's first day with rows (days after the run do not matter)
            SELECT min(day) AS first_day{group} FROM _day_counts{gby}
        ),
        counts AS (
            SELECT CAST(day AS DATE) AS day{group}, rows FROM _day_counts
            WHERE day BETWEEN DATE '{first}' - INTERVAL {span} DAY AND DATE '{last}'
        ),
        groups AS (SELECT DISTINCT 1 AS one{group} FROM counts),
        days AS (
            SELECT CAST(day AS DATE) AS day FROM (
                SELECT unnest(generate_series(DATE '{first}' - INTERVAL {span} DAY, DATE '{last}', INTERVAL 1 DAY)) AS day
            ) s
        ),
        calendar AS (
            SELECT d.day{', g."' + by + '"' if by else ""}, coalesce(c.rows, 0) AS rows,
                CAST(h.first_day AS DATE) AS first_day
            FROM days d
            CROSS JOIN groups g
            LEFT JOIN counts c ON c.day = d.day {join}
            LEFT JOIN history h ON true {hjoin}
        ),
        stats AS (
            SELECT c.day{cgroup}, c.rows,
                -- calendar days of the window the group existed on, and the non-empty ones
                count(CASE WHEN w.day >= c.day - {t} AND w.day >= w.first_day THEN 1 END) AS trailing_days,
                median(CASE WHEN w.day >= c.day - {t} AND w.day >= w.first_day THEN w.rows END) AS trailing_median,
                -- the same weekday a week before, within the group's history (else null)
                max(CASE WHEN w.day = c.day - {WEEK} AND w.day >= w.first_day THEN w.rows END) AS rows_week_before,
                -- the same weekday 1 .. RHYTHM_WEEKS weeks before within the history, and those with rows due
                count(CASE WHEN {weekday} THEN 1 END) AS weekday_weeks,
                count(CASE WHEN {weekday} AND w.rows > {stale_above!r} THEN 1 END) AS weekday_due,
                -- of the days 2, 4, ..., 14 back (the day's parity), within the group's history, those with rows
                -- due; of the days 1, 3, ..., 13 back, how many and those with rows due (an every-other-day rhythm)
                count(CASE WHEN {even} THEN 1 END) AS even_days,
                count(CASE WHEN {even} AND w.rows > {stale_above!r} THEN 1 END) AS even_due,
                count(CASE WHEN {odd} THEN 1 END) AS odd_days,
                count(CASE WHEN {odd} AND w.rows > {stale_above!r} THEN 1 END) AS odd_due,
                -- the trailing window of the day's parity (2, 4, ..., 2t back): an every-other-day source's volume
                count(CASE WHEN {parity} THEN 1 END) AS parity_days,
                median(CASE WHEN {parity} THEN w.rows END) AS parity_median
            FROM calendar c
            LEFT JOIN calendar w ON w.day BETWEEN c.day - {span} AND c.day - 1 {wjoin}
            GROUP BY c.day{cgroup}, c.rows
        ),
        -- A source delivering every other day (the other parity had no rows due in two weeks, this one mostly
        -- had) is judged against its own parity's days: its 7-day window is half empty, so its median was 0 or
        -- an off day's and its volume never judged. Of a daily source, that window is t days too.
        judged AS (
            SELECT * REPLACE (
                CASE WHEN alternating THEN parity_days ELSE trailing_days END AS trailing_days,
                CASE WHEN alternating THEN parity_median ELSE trailing_median END AS trailing_median
            ) FROM (
                SELECT *, odd_days = {WEEK} AND even_days = {WEEK} AND odd_due = 0 AND 2 * even_due > even_days
                    AS alternating  -- over two whole weeks of history: not a weekly batch's or a launch's first days
                FROM stats
            ) a
        ),
        {levelled}
        banded AS (
            SELECT *, CASE WHEN trailing_days >= {t} AND trailing_median >= {min_count}
                THEN greatest({tolerance} * trailing_median, {z} * sqrt(trailing_median)) END AS volume_half_width
            FROM levelled
        )
        SELECT *,
            trailing_median - volume_half_width AS volume_low,
            trailing_median + volume_half_width AS volume_high,
            CASE WHEN rows > 0 AND NOT {closed} THEN (rows - trailing_median) / volume_half_width END
                AS volume_deviation,
            CASE WHEN rows > trailing_median THEN (rows - trailing_median) / volume_half_width END AS volume_spike,
            -- an empty day is stale only where its weekday a week before had more rows than an empty day allows
            -- (a weekly batch's missing week: its trailing median is 0); with no such day in the history nothing
            -- says rows were due (a weekly batch's first week, a closed weekend's first): the trailing median
            -- cannot tell those from an outage. A week is odd: an every-other-day source's empty day had rows a
            -- week before, so a day whose parity had none in two weeks while the other parity mostly had is its
            -- off day; and a day whose parity had rows due on all of the seven is due (its missed delivery)
            rows > 0 OR {closed} OR NOT (
                (
                    coalesce(rows_week_before, 0) > {stale_above!r}
                    AND NOT (even_due = 0 AND 2 * odd_due > odd_days)
                    -- a weekly rhythm on that weekday (two of its weeks back had rows due), or too short a history
                    -- to tell: a monthly batch's weekday a week after it is no missed delivery
                    AND (weekday_due >= 2 OR weekday_weeks < 2)
                )
                OR even_due = {WEEK}
            ) AS fresh
        FROM banded
        WHERE day BETWEEN DATE '{first}' AND DATE '{last}'
        ORDER BY day{group}
        """
        ).df()
    return frame


def without_retired_days(days: pd.DataFrame, suite: dict, config) -> pd.DataFrame:
    """days_frame's rows without a retired model's days after its models.<id>.retired_after (the predictions gate
    judges each model's volume: a model's planned end warned of stale predictions every day)."""
    from orchestration.lib.project_config import retired_models

    retired = retired_models(config)  # a project file, or load_config()'s (which reads through to it)
    if suite.get("volume_by") != "model_id" or not retired or days.empty:
        return days
    ends = days["model_id"].map(retired)
    after = ends.notna() & (pd.to_datetime(days["day"]) > pd.to_datetime(ends))
    return days[~after].reset_index(drop=True)


# days_frame's level of a weekly table (gates.volume.tables.<table>.weekly): a weekday's share of its week, its rows
# over the median of the 7 days around it (a quiet Saturday's 0.4), the median over the WEEKDAY_LEVEL_WEEKS weeks
# before where that week lies in the group's history and is judged (min_count), counted once two are; the day is
# judged against its trailing median times that share. Against the trailing median instead, a share lagged every
# step in level: a trial's weeks doubling made a Tuesday's share 2.29 and held back three ordinary Tuesdays
_WEEKLY_LEVEL = """weeks AS (
            SELECT c.day{cgroup}, c.rows, median(w.rows) AS week_level, count(*) AS week_days
            FROM calendar c
            JOIN calendar w ON w.day BETWEEN c.day - {half} AND c.day + {half} {wjoin} AND w.day >= w.first_day
            GROUP BY c.day{cgroup}, c.rows
        ),
        shares AS (
            SELECT c.day{cgroup}, count(*) AS share_weeks, median(w.rows / w.week_level) AS weekday_share
            FROM judged c
            JOIN weeks w ON (c.day - w.day) % {week} = 0 AND c.day - w.day BETWEEN {week} AND {weeks_back}
                {wjoin} AND w.week_days = {week} AND w.week_level >= {min_count}
            GROUP BY c.day{cgroup}
        ),
        levelled AS (
            SELECT j.* REPLACE (
                CASE WHEN coalesce(s.share_weeks, 0) < 2 THEN 0 ELSE j.trailing_days END AS trailing_days,
                j.trailing_median * s.weekday_share AS trailing_median
            ), s.weekday_share, true AS weekly
            FROM judged j LEFT JOIN shares s ON s.day = j.day {sjoin}
        ),"""


WEEK = 7  # days: an empty day is plausible when its weekday was (nearly) empty a week before (days_frame)
RHYTHM_WEEKS = 4  # weeks of a weekday read for its rhythm: a monthly batch has rows on one of them
# weeks of a weekday whose median is its level (a weekly table's volume, the volume_change alert's weekday level):
# one odd week does not move it
WEEKDAY_LEVEL_WEEKS = 3


def stale_median(z: float) -> float:
    """The trailing median above which an empty day is stale: P(0 | Poisson(m)) = exp(-m) < Phi(-z).
    In log space: Phi(-z) underflows to 0 from z ~ 38 (a z that large all but turns the volume rule off)."""
    from scipy.special import log_ndtr

    return -float(log_ndtr(-z))


def resolve_parameters(conn, suite: dict, first: date, last: date, config=None) -> dict:
    """Suite parameters ($PARAMETER) from the SQL in the suite's `parameters` section."""
    return {
        name: [r[0] for r in _runner(conn).fetchall(_fill(sql, first, last, config))]
        for name, sql in (suite.get("parameters") or {}).items()
    }


def run_suite(conn, suite: dict, first: date, last: date, **options) -> SuiteResult:
    """start_suite(), waiting for its result."""
    return start_suite(conn, suite, first, last, **options).result()


def start_suite(
    conn,
    suite: dict,
    first: date,
    last: date,
    docs_dir: Path | None = None,
    config=None,
    session: GxSession | None = None,
) -> PendingSuite:
    """Validate the partition days first..last of the suite's raw table, each day judged on its own.

    ``conn``: a DuckDB connection, or where to count (gate_sql(): Spark's session with engine: spark).
    ``config``: the project file (default: load_config()); Data Docs into ``docs_dir`` if given, or
    by ``session`` (shared by a run's suites) later.
    A table that never had a row (an optional table absent from the source) passes, saying so.
    If the table lacks a column the rows need, only the schema level runs: its
    failure names the column, where the row queries would only raise.
    """
    if config is None:
        from orchestration.lib.project_config import load_config

        config = load_config()
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    conn = _runner(conn)
    if table_is_empty(conn, suite["table"]):
        if session is not None:
            session.suite_done(suite["name"])
        skipped = SuiteResult(
            suite["name"],
            0,
            [],
            tuple(days),
            {d: 0 for d in days},
            note=f"raw.{suite['table']} holds no rows: table absent from the source (optional), nothing to validate",
        )
        return PendingSuite(lambda: skipped)
    frames = {"schema": schema_frame(conn, suite["table"])}
    if not missing_columns(suite, frames["schema"]):
        frames["rows"] = SqlRows(conn, rows_query(conn, suite, first, last, config))
        frames["days"] = without_retired_days(days_frame(conn, suite, first, last, config.gates.volume), suite, config)
    rows = config.gates.rows
    return start_validation(
        frames,
        suite,
        resolve_parameters(conn, suite, first, last, config),
        docs_dir,
        days,
        RowRule(rows.max_share, rows.min_count),
        session,
    )
