"""Run a declarative Great Expectations suite over a partition's slice of a raw table.

Suites live under expectations/suites/ as YAML in GX's own vocabulary
(expectation type + kwargs), at three levels:

* ``schema_expectations`` on one row of the table's DuckDB column types (required columns and
  their types; without a required column only this level runs);
* ``expectations`` on the rows read for the partition days (loaded and
  quarantined alike), plus ``derived`` columns computed in SQL (referential
  integrity, timestamps inside the day) so heavy joins stay in DuckDB; GX's
  in-set and range checks skip nulls, so every key and foreign key has its own
  not-null expectation and a boolean derived flag is never null;
* ``day_expectations`` on one row per day: rows, trailing 7-day median,
  volume_ratio and freshness.

An expectation with ``meta: {severity: warning}`` is reported but does not fail
the gate. Validation runs on pandas frames in an ephemeral GX context: GX's SQL
datasource on DuckDB is broken (GX #10738, #11579) and a day's slice fits in
memory. GX is imported lazily because it costs ~2 s.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import yaml

from orchestration.lib.contract import CONTRACTS
from orchestration.lib.settings import EXPECTATIONS_DIR

SAMPLE_SIZE = 5
TRAILING_DAYS = 7  # volume and freshness compare a day with the 7 days before it
LEVELS = {"schema_expectations": "schema", "expectations": "rows", "day_expectations": "days"}


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str
    column: str | None
    success: bool
    unexpected_count: int | None
    unexpected_percent: float | None
    sample_unexpected: list[Any] = field(default_factory=list)
    observed_value: Any = None
    level: str = "rows"
    blocking: bool = True
    detail: str | None = None  # the columns a table lacks, or why GX could not evaluate the expectation

    @property
    def name(self) -> str:
        return self.expectation + (f"({self.column})" if self.column else "")

    def describe(self) -> str:
        where = f" on {self.column}" if self.column else ""
        if self.unexpected_count is not None:
            detail = (f": {self.unexpected_count} unexpected ({self.unexpected_percent:.2f}% of {self.level}), "
                      f"e.g. {self.sample_unexpected}")
        else:
            detail = f": observed {self.observed_value}"
        if self.detail:
            detail += f" ({self.detail})"
        return f"{self.expectation}{where}{detail}" + ("" if self.blocking else " [warning]")


@dataclass(frozen=True)
class SuiteResult:
    suite: str
    rows: int
    outcomes: list[ExpectationOutcome]

    @property
    def success(self) -> bool:
        """The gate passes when every blocking expectation passes."""
        return all(o.success for o in self.outcomes if o.blocking)

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def summary(self) -> str:
        blocking = [o for o in self.failed if o.blocking]
        head = f"suite {self.suite}: {len(blocking)} of {len(self.outcomes)} expectations failed on {self.rows} rows"
        if not self.failed:
            return f"suite {self.suite}: all {len(self.outcomes)} expectations passed on {self.rows} rows"
        return "\n".join([head] + [f"- {o.describe()}" for o in self.failed])


def load_suite(name: str, directory: Path = EXPECTATIONS_DIR / "suites") -> dict:
    path = directory / f"{name}.yml"
    if not path.is_file():
        raise FileNotFoundError(f"expectation suite '{name}' not found at {path}")
    suite = yaml.safe_load(path.read_text())
    for level in LEVELS:
        for i, exp in enumerate(suite.get(level) or []):
            if "type" not in exp or "kwargs" not in exp:
                raise ValueError(f"{path}: {level} #{i + 1} needs 'type' and 'kwargs'")
    if "name" not in suite or "table" not in suite:
        raise ValueError(f"{path}: a suite needs 'name' and 'table'")
    return suite


def suite_names(directory: Path = EXPECTATIONS_DIR / "suites") -> list[str]:
    return sorted(p.stem for p in directory.glob("*.yml"))


def suite_columns(suite: dict) -> list[str]:
    """Table columns the row expectations read (derived columns excluded), so only those are fetched."""
    derived = set(suite.get("derived") or {})
    cols: list[str] = []
    for exp in suite.get("expectations") or []:
        kwargs = exp["kwargs"]
        names = [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs] + list(kwargs.get("column_list", []))
        cols += [c for c in names if c not in cols and c not in derived]
    return cols


# ----------------------------------------------------------------- validation


DOCS_SITE = "impact_ledger"


def _context(docs_dir: Path | None):
    """Ephemeral GX context, or a file-mode one whose Data Docs site renders into ``docs_dir``."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    if docs_dir is None:
        context = gx.get_context(mode="ephemeral")
    else:
        context = gx.get_context(mode="file", project_root_dir=str(docs_dir.parent / "gx_context"))
        site = {
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
        }
        add = context.update_data_docs_site if DOCS_SITE in context.list_data_docs_sites() else context.add_data_docs_site
        add(DOCS_SITE, site)
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # keep run logs readable
    return context


def validate_frames(frames: dict[str, pd.DataFrame], suite: dict, parameters: dict | None = None,
                    docs_dir: Path | None = None) -> SuiteResult:
    """Validate each level's frame against that level's expectations in one GX context.

    With ``docs_dir``, results are kept in a file-mode context and GX Data Docs
    (HTML) are rebuilt into ``docs_dir``.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    context = _context(docs_dir)
    source = context.data_sources.add_or_update_pandas(name="impact_ledger")
    outcomes: list[ExpectationOutcome] = []
    for key, level in LEVELS.items():
        specs = suite.get(key) or []
        if not specs or level not in frames:
            continue
        name = f"{suite['name']}_{level}"
        asset = next((a for a in source.assets if a.name == name), None) or source.add_dataframe_asset(name=name)
        batch_definition = next((b for b in asset.batch_definitions if b.name == level), None) \
            or asset.add_batch_definition_whole_dataframe(level)
        gx_suite = gx.ExpectationSuite(name=name)
        for exp in specs:
            gx_suite.add_expectation_configuration(
                ExpectationConfiguration(type=exp["type"], kwargs=exp["kwargs"], meta=exp.get("meta") or {})
            )
        result_format = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE}
        if docs_dir is None:
            result = batch_definition.get_batch(batch_parameters={"dataframe": frames[level]}).validate(
                gx_suite, result_format=result_format, expectation_parameters=parameters or {})
        else:
            definition = context.validation_definitions.add_or_update(
                gx.ValidationDefinition(name=name, data=batch_definition, suite=context.suites.add_or_update(gx_suite)))
            result = definition.run(batch_parameters={"dataframe": frames[level]}, result_format=result_format,
                                    expectation_parameters=parameters or {})
        for r in result.results:
            details = r.result or {}
            meta = r.expectation_config.meta or {}
            outcomes.append(
                ExpectationOutcome(
                    expectation=r.expectation_config.type,
                    column=_columns(r.expectation_config.kwargs),
                    success=bool(r.success),
                    unexpected_count=details.get("unexpected_count"),
                    unexpected_percent=details.get("unexpected_percent"),
                    sample_unexpected=[_plain(v) for v in (details.get("partial_unexpected_list") or [])[:SAMPLE_SIZE]],
                    observed_value=_plain(details.get("observed_value")),
                    level=level,
                    blocking=meta.get("severity", "error") != "warning",
                    detail=_detail(details, r.exception_info),
                )
            )
    if docs_dir is not None:
        context.build_data_docs(site_names=[DOCS_SITE])
    return SuiteResult(suite["name"], len(frames.get("rows", [])), outcomes)


def validate_frame(frame: pd.DataFrame, suite: dict, parameters: dict | None = None) -> SuiteResult:
    """Row-level expectations only, on a ready frame (small tests)."""
    return validate_frames({"rows": frame}, suite, parameters)


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


def _fill(sql: str, first: date, last: date) -> str:
    return sql.replace("{first}", first.isoformat()).replace("{last}", last.isoformat())


def schema_frame(conn: duckdb.DuckDBPyConnection, table: str) -> pd.DataFrame:
    """One row: each column of raw.<table> holding its DuckDB type."""
    types = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'raw' AND table_name = ?",
        [table],
    ).fetchall()
    return pd.DataFrame({name: [dtype] for name, dtype in types})


def rows_frame(conn: duckdb.DuckDBPyConnection, suite: dict, first: date, last: date) -> pd.DataFrame:
    """Everything read for the days (loaded and quarantined rows), with the suite's derived columns.

    Derived SQL sees the row as ``t`` (correlated subqueries write ``t.column``).
    A boolean derived column (a flag such as ``user_known``) is never null: SQL's
    ``NULL IN (...)`` is null, and GX's in-set checks skip nulls, so a row with a
    null key would otherwise pass its referential check.
    """
    table = suite["table"]
    cols = [f'"{c}"' for c in suite_columns(suite)]
    derived = [f'({_fill(sql, first, last)}) AS "{name}"' for name, sql in (suite.get("derived") or {}).items()]
    select = ", ".join(cols + derived) or "1 AS _row"
    where = f"_partition_date BETWEEN DATE '{first}' AND DATE '{last}'"
    query = (
        f"SELECT {select} FROM (SELECT * FROM raw.{table} WHERE {where} "
        f"UNION ALL BY NAME SELECT * EXCLUDE (_reason) FROM raw_quarantine.{table} WHERE {where}) t"
    )
    relation = conn.sql(query)  # binds the query (column types) without running it
    types = dict(zip(relation.columns, map(str, relation.types)))
    flags = [f'coalesce("{name}", false) AS "{name}"' for name in suite.get("derived") or {} if types[name] == "BOOLEAN"]
    if flags:
        query = f"SELECT * REPLACE ({', '.join(flags)}) FROM ({query})"
    return conn.execute(query).df()


def missing_columns(suite: dict, schema: pd.DataFrame) -> list[str]:
    """Columns the row and day levels read (the contract's required ones and the suite's) absent from the table."""
    contract = CONTRACTS[suite["table"]]
    needed = [c.name for c in contract.columns if c.required] + suite_columns(suite) + [suite.get("volume_by")]
    return sorted({c for c in needed if c and c not in schema.columns})


def rows_read_per_day(conn: duckdb.DuckDBPyConnection, table: str, first: date, last: date) -> dict[date, int]:
    """Rows read (loaded + quarantined) of each day first..last: what a day's gate validated.

    An undated table (a dimension snapshot) is read whole by every run, so each day validated all of it.
    """
    read = f"SELECT _partition_date FROM raw.{table} UNION ALL SELECT _partition_date FROM raw_quarantine.{table}"
    if CONTRACTS[table].time_column is None:
        total = conn.execute(f"SELECT count(*) FROM ({read})").fetchone()[0]
        return {day.date(): total for day in pd.date_range(first, last)}
    counts = conn.execute(f"SELECT _partition_date, count(*) FROM ({read}) WHERE _partition_date BETWEEN ? AND ? GROUP BY 1",
                          [first, last]).fetchall()
    return {pd.Timestamp(day).date(): n for day, n in counts}


def days_frame(conn: duckdb.DuckDBPyConnection, suite: dict, first: date, last: date) -> pd.DataFrame:
    """One row per day (and per `volume_by` group): rows read, trailing median, volume ratio, freshness.

    volume_ratio is null until a group has TRAILING_DAYS days of history, so a
    launch or a ramp-up is not judged against a history it does not have.
    """
    table, by = suite["table"], suite.get("volume_by")
    group = f', "{by}"' if by else ""
    read = (
        f"SELECT _partition_date AS day{group} FROM raw.{table} UNION ALL "
        f"SELECT _partition_date AS day{group} FROM raw_quarantine.{table}"
    )
    return conn.execute(
        f"""
        WITH counts AS (
            SELECT day{group}, count(*) AS rows FROM ({read}) r
            WHERE day BETWEEN DATE '{first}' - INTERVAL {TRAILING_DAYS} DAY AND DATE '{last}'
            GROUP BY ALL
        ),
        groups AS (SELECT DISTINCT 1 AS one{group} FROM counts),
        days AS (
            SELECT CAST(d.generate_series AS DATE) AS day{group}
            FROM generate_series(DATE '{first}', DATE '{last}', INTERVAL 1 DAY) d CROSS JOIN groups
        ),
        stats AS (
            SELECT d.day{', d."' + by + '"' if by else ''}, coalesce(c.rows, 0) AS rows,
                (SELECT count(*) FROM counts h WHERE h.day BETWEEN d.day - {TRAILING_DAYS} AND d.day - 1
                    {f'AND h."{by}" = d."{by}"' if by else ''}) AS trailing_days,
                (SELECT median(h.rows) FROM counts h WHERE h.day BETWEEN d.day - {TRAILING_DAYS} AND d.day - 1
                    {f'AND h."{by}" = d."{by}"' if by else ''}) AS trailing_median
            FROM days d LEFT JOIN counts c ON c.day = d.day {f'AND c."{by}" = d."{by}"' if by else ''}
        )
        SELECT *,
            -- an empty day is freshness's failure, not a volume ratio of 0
            CASE WHEN trailing_days >= {TRAILING_DAYS} AND rows > 0 THEN rows / trailing_median END AS volume_ratio,
            rows > 0 OR trailing_days = 0 AS fresh
        FROM stats
        ORDER BY day
        """
    ).df()


def resolve_parameters(conn: duckdb.DuckDBPyConnection, suite: dict, first: date, last: date) -> dict:
    """Suite parameters ($PARAMETER) from the SQL in the suite's `parameters` section."""
    return {name: [r[0] for r in conn.execute(_fill(sql, first, last)).fetchall()]
            for name, sql in (suite.get("parameters") or {}).items()}


def run_suite(conn: duckdb.DuckDBPyConnection, suite: dict, first: date, last: date,
              docs_dir: Path | None = None) -> SuiteResult:
    """Validate the partition days first..last of the suite's raw table (Data Docs into ``docs_dir`` if given).

    If the table lacks a column the rows need, only the schema level runs: its
    failure names the column, where the row queries would only raise.
    """
    frames = {"schema": schema_frame(conn, suite["table"])}
    if not missing_columns(suite, frames["schema"]):
        frames["rows"] = rows_frame(conn, suite, first, last)
        frames["days"] = days_frame(conn, suite, first, last)
    return validate_frames(frames, suite, resolve_parameters(conn, suite, first, last), docs_dir)
