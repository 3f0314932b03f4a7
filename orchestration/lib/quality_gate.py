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

**One verdict per day.** GX validates each level once over the whole range
(one validation per suite, also in a 60-day backfill) with ``COMPLETE`` results;
the indexes of the unexpected rows give each expectation's unexpected rows per
day. A row expectation fails a day only when that day's unexpected rows exceed
both ``gates.rows.max_share`` of the rows read that day and ``gates.rows.min_count``
of the project file: a few bad rows are already quarantined, a systemic break
stops the day. A suite with ``row_rule: every_row`` (tables where one row is a
whole experiment) fails on any unexpected row. A day-level expectation fails the
days of its unexpected rows; a schema expectation fails every day. Nothing a
row is judged on depends on which other days share its run (uniqueness is per
day, the derived flags compare with the row's own day), so a backfill and
day-by-day runs give the same verdicts.

An expectation with ``meta: {severity: warning}`` is reported but does not fail
the gate. Validation runs on pandas frames in an ephemeral GX context: GX's SQL
datasource on DuckDB is broken (GX #10738, #11579) and a day's slice fits in
memory. GX is imported lazily because it costs ~2 s.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import yaml

from orchestration.lib.contract import CONTRACTS
from orchestration.lib.settings import EXPECTATIONS_DIR
from orchestration.lib.warehouse import ensure_table

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

    @property
    def name(self) -> str:
        return self.expectation + (f"({self.column})" if self.column else "")

    @property
    def tolerated(self) -> bool:
        """Unexpected rows that no day's rule counted against it (quarantined strays)."""
        return self.success and bool(self.unexpected_count)

    def describe(self) -> str:
        where = f" on {self.column}" if self.column else ""
        if self.unexpected_count is not None:
            detail = (
                f": {self.unexpected_count} unexpected ({self.unexpected_percent or 0:.2f}% of {self.level}), "
                f"e.g. {self.sample_unexpected}"
            )
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
    days: tuple[date, ...] = ()  # the run's days, each judged on its own
    rows_by_day: dict = field(default_factory=dict)  # day -> rows read (what the day's rules compare with)
    note: str | None = None  # e.g. the table is absent from the source

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def day_failures(self, day: date) -> list[ExpectationOutcome]:
        """The blocking expectations that fail ``day``."""
        return [o for o in self.outcomes if o.blocking and not o.success and day in o.failed_days]

    @property
    def failed_days(self) -> list[date]:
        return [d for d in self.days if self.day_failures(d)]

    @property
    def success(self) -> bool:
        """Every day passes every blocking expectation."""
        return all(o.success for o in self.outcomes if o.blocking)

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
        lines = [head] + [f"- {o.describe()}" for o in self.failed]
        if len(self.days) > 1 and self.failed_days:
            lines.append(
                f"failed days ({len(self.failed_days)} of {len(self.days)}): "
                + ", ".join(f"{d} [{', '.join(o.name for o in self.day_failures(d))}]" for d in self.failed_days)
            )
        if tolerated:
            lines.append(
                "tolerated (within gates.rows max_share and min_count on every day): "
                + "; ".join(f"{o.name}: {o.unexpected_count}" for o in tolerated)
            )
        return "\n".join(lines)


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


def validate_frames(
    frames: dict[str, pd.DataFrame],
    suite: dict,
    parameters: dict | None = None,
    docs_dir: Path | None = None,
    days: list[date] | None = None,
    row_rule: RowRule | None = None,
) -> SuiteResult:
    """Validate each level's frame against that level's expectations in one GX context, and judge each day.

    ``days``: the run's days (default: the days of the rows frame's ``_day``). ``row_rule``: gates.rows
    (default: the project file's). With ``docs_dir``, results are kept in a file-mode context and GX
    Data Docs (HTML) are rebuilt into ``docs_dir``.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    frames = {level: frame.reset_index(drop=True) for level, frame in frames.items()}  # GX's indexes are positions
    if "rows" in frames and DAY_COLUMN not in frames["rows"]:  # a ready frame without days: one day
        frames["rows"] = frames["rows"].assign(**{DAY_COLUMN: None})
    rows = frames.get("rows")
    rows_by_day = _count_by_day(rows[DAY_COLUMN]) if rows is not None else {None: 0}
    days = tuple(days) if days is not None else tuple(sorted(rows_by_day, key=lambda d: (d is None, d))) or (None,)
    snapshot = _is_snapshot(suite)
    if snapshot:  # a dimension snapshot is read whole by every run: each day validated all of it
        rows_by_day = {d: len(rows) if rows is not None else 0 for d in days}
    rule = EVERY_ROW if suite.get("row_rule") == "every_row" else (row_rule or configured_row_rule())

    context = _context(docs_dir)
    source = context.data_sources.add_or_update_pandas(name="impact_ledger")
    outcomes: list[ExpectationOutcome] = []
    for key, level in LEVELS.items():
        specs = suite.get(key) or []
        if not specs or level not in frames:
            continue
        name = f"{suite['name']}_{level}"
        asset = next((a for a in source.assets if a.name == name), None) or source.add_dataframe_asset(name=name)
        batch_definition = next(
            (b for b in asset.batch_definitions if b.name == level), None
        ) or asset.add_batch_definition_whole_dataframe(level)
        gx_suite = gx.ExpectationSuite(name=name)
        for exp in specs:
            gx_suite.add_expectation_configuration(
                ExpectationConfiguration(type=exp["type"], kwargs=exp["kwargs"], meta=exp.get("meta") or {})
            )
        # COMPLETE: the indexes of every unexpected row, so each day gets its own count (no index query:
        # it would spell out every index; measured: as fast as SUMMARY on a million rows)
        result_format = {
            "result_format": "COMPLETE",
            "partial_unexpected_count": SAMPLE_SIZE,
            "return_unexpected_index_query": False,
        }
        if docs_dir is None:
            result = batch_definition.get_batch(batch_parameters={"dataframe": frames[level]}).validate(
                gx_suite, result_format=result_format, expectation_parameters=parameters or {}
            )
        else:
            definition = context.validation_definitions.add_or_update(
                gx.ValidationDefinition(name=name, data=batch_definition, suite=context.suites.add_or_update(gx_suite))
            )
            result = definition.run(
                batch_parameters={"dataframe": frames[level]},
                result_format=result_format,
                expectation_parameters=parameters or {},
            )
        for r in result.results:
            details = r.result or {}
            meta = r.expectation_config.meta or {}
            by_day = _unexpected_by_day(frames[level], level, details.get("unexpected_index_list"))
            if r.success:
                failed_days: tuple = ()
            elif by_day is None:  # a schema or table expectation, or one GX could not evaluate: every day
                failed_days = days
            elif level == "days":  # already one row per day (and group)
                failed_days = tuple(d for d in days if by_day.get(d, 0) > 0)
            elif snapshot:
                failed_days = days if rule.fails(sum(by_day.values()), len(frames[level])) else ()
            else:
                failed_days = tuple(d for d in days if rule.fails(by_day.get(d, 0), rows_by_day.get(d, 0)))
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
                    blocking=meta.get("severity", "error") != "warning",
                    detail=_detail(details, r.exception_info),
                    failed_days=failed_days,
                    unexpected_by_day=by_day or {},
                )
            )
    if docs_dir is not None:
        import time

        from orchestration.lib.data_docs import make_site_offline

        built = time.time() - 2  # coarse file-system clocks: a page written in this second counts
        context.build_data_docs(site_names=[DOCS_SITE])
        make_site_offline(docs_dir, since=built)  # no CSS/JS from CDNs; the index's tables as plain HTML
    return SuiteResult(suite["name"], len(rows) if rows is not None else 0, outcomes, days, rows_by_day)


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


def schema_frame(conn: duckdb.DuckDBPyConnection, table: str) -> pd.DataFrame:
    """One row: each column of raw.<table> holding its DuckDB type."""
    types = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'raw' AND table_name = ?",
        [table],
    ).fetchall()
    return pd.DataFrame({name: [dtype] for name, dtype in types})


def rows_frame(conn: duckdb.DuckDBPyConnection, suite: dict, first: date, last: date, config=None) -> pd.DataFrame:
    """Everything read for the days (loaded and quarantined rows), with the suite's derived columns and ``_day``.

    Derived SQL sees the row as ``t`` (correlated subqueries write ``t.column``; ``t._partition_date`` is the
    row's own day, so a flag never depends on which other days share the run).
    A boolean derived column (a flag such as ``user_known``) is never null: SQL's
    ``NULL IN (...)`` is null, and GX's in-set checks skip nulls, so a row with a
    null key would otherwise pass its referential check.
    """
    table = suite["table"]
    cols = [f'"{c}"' for c in suite_columns(suite)]
    derived = [f'({_fill(sql, first, last, config)}) AS "{name}"' for name, sql in (suite.get("derived") or {}).items()]
    select = ", ".join(cols + derived + [f'_partition_date AS "{DAY_COLUMN}"'])
    where = f"_partition_date BETWEEN DATE '{first}' AND DATE '{last}'"
    query = (
        f"SELECT {select} FROM (SELECT * FROM raw.{table} WHERE {where} "
        f"UNION ALL BY NAME SELECT * EXCLUDE (_reason) FROM raw_quarantine.{table} WHERE {where}) t"
    )
    relation = conn.sql(query)  # binds the query (column types) without running it
    types = dict(zip(relation.columns, map(str, relation.types)))
    flags = [
        f'coalesce("{name}", false) AS "{name}"' for name in suite.get("derived") or {} if types[name] == "BOOLEAN"
    ]
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
    counts = conn.execute(
        f"SELECT _partition_date, count(*) FROM ({read}) WHERE _partition_date BETWEEN ? AND ? GROUP BY 1",
        [first, last],
    ).fetchall()
    return {pd.Timestamp(day).date(): n for day, n in counts}


def table_is_empty(conn: duckdb.DuckDBPyConnection, table: str) -> bool:
    """No row ever read (loaded or quarantined): an optional table absent from the source."""
    return not conn.execute(
        f"SELECT EXISTS (SELECT 1 FROM raw.{table}) OR EXISTS (SELECT 1 FROM raw_quarantine.{table})"
    ).fetchone()[0]


def days_frame(conn: duckdb.DuckDBPyConnection, suite: dict, first: date, last: date, volume=None) -> pd.DataFrame:
    """One row per day (and per `volume_by` group): rows read, trailing median, volume band, freshness.

    ``volume``: gates.volume of the project file (trailing_days T, min_count, tolerance, z). The trailing
    median is over the T calendar days before the day (empty days count as 0), once the group has
    rows on or before the first of them (a launch or a ramp-up is not judged against a history it does
    not have). A day is judged only when that median is at least min_count; its band is the wider of
    +-tolerance x median (breakage at high volume) and +-z x sqrt(median) (z Poisson standard
    deviations: noise at low volume). volume_deviation = (rows - median) / half-width, in [-1, 1] when
    inside the band, null when not judged or empty. An empty day is freshness's failure: stale when
    0 rows is less likely under Poisson(trailing median) than a z standard-normal deviation,
    i.e. exp(-median) < Phi(-z) (at z = 4: a median above 10.4 rows), judged from the first day of history.
    """
    if volume is None:
        from orchestration.lib.project_config import load_config

        volume = load_config().gates.volume
    t, min_count, tolerance, z = volume.trailing_days, volume.min_count, volume.tolerance, volume.z
    stale_above = stale_median(z)
    table, by = suite["table"], suite.get("volume_by")
    group = f', "{by}"' if by else ""
    partition = f'PARTITION BY "{by}"' if by else ""
    join = f'AND c."{by}" IS NOT DISTINCT FROM g."{by}"' if by else ""
    hjoin = f'AND h."{by}" IS NOT DISTINCT FROM g."{by}"' if by else ""
    read = (
        f"SELECT _partition_date AS day{group} FROM raw.{table} UNION ALL "
        f"SELECT _partition_date AS day{group} FROM raw_quarantine.{table}"
    )
    window = f"({partition} ORDER BY day ROWS BETWEEN {t} PRECEDING AND 1 PRECEDING)"
    frame = conn.execute(
        f"""
        WITH history AS (  -- each group's first day with rows (days after the run do not matter)
            SELECT min(day) AS first_day{group} FROM ({read}) r WHERE day <= DATE '{last}' GROUP BY ALL
        ),
        counts AS (
            SELECT day{group}, count(*) AS rows FROM ({read}) r
            WHERE day BETWEEN DATE '{first}' - INTERVAL {t} DAY AND DATE '{last}'
            GROUP BY ALL
        ),
        groups AS (SELECT DISTINCT 1 AS one{group} FROM counts),
        calendar AS (
            SELECT CAST(d.generate_series AS DATE) AS day{', g."' + by + '"' if by else ""},
                coalesce(c.rows, 0) AS rows, h.first_day
            FROM generate_series(DATE '{first}' - INTERVAL {t} DAY, DATE '{last}', INTERVAL 1 DAY) d
            CROSS JOIN groups g
            LEFT JOIN counts c ON c.day = CAST(d.generate_series AS DATE) {join}
            LEFT JOIN history h ON true {hjoin}
        ),
        stats AS (
            SELECT day{group}, rows,
                -- calendar days of the window the group existed on, and the non-empty ones
                count(*) FILTER (WHERE day >= first_day) OVER {window} AS trailing_days,
                count(*) FILTER (WHERE rows > 0) OVER {window} AS trailing_active_days,
                median(rows) FILTER (WHERE day >= first_day) OVER {window} AS trailing_median
            FROM calendar
        ),
        banded AS (
            SELECT *, CASE WHEN trailing_days >= {t} AND trailing_median >= {min_count}
                THEN greatest({tolerance} * trailing_median, {z} * sqrt(trailing_median)) END AS volume_half_width
            FROM stats
        )
        SELECT *,
            trailing_median - volume_half_width AS volume_low,
            trailing_median + volume_half_width AS volume_high,
            CASE WHEN rows > 0 THEN (rows - trailing_median) / volume_half_width END AS volume_deviation,
            rows > 0 OR trailing_active_days = 0 OR coalesce(trailing_median, 0) <= {stale_above!r} AS fresh
        FROM banded
        WHERE day BETWEEN DATE '{first}' AND DATE '{last}'
        ORDER BY ALL
        """
    ).df()
    return frame


def stale_median(z: float) -> float:
    """The trailing median above which an empty day is stale: P(0 | Poisson(m)) = exp(-m) < Phi(-z)."""
    return -math.log(0.5 * math.erfc(z / math.sqrt(2)))


def resolve_parameters(conn: duckdb.DuckDBPyConnection, suite: dict, first: date, last: date, config=None) -> dict:
    """Suite parameters ($PARAMETER) from the SQL in the suite's `parameters` section."""
    return {
        name: [r[0] for r in conn.execute(_fill(sql, first, last, config)).fetchall()]
        for name, sql in (suite.get("parameters") or {}).items()
    }


def run_suite(
    conn: duckdb.DuckDBPyConnection, suite: dict, first: date, last: date, docs_dir: Path | None = None, config=None
) -> SuiteResult:
    """Validate the partition days first..last of the suite's raw table, each day judged on its own.

    ``config``: the project file (default: load_config()); Data Docs into ``docs_dir`` if given.
    A table that never had a row (an optional table absent from the source) passes, saying so.
    If the table lacks a column the rows need, only the schema level runs: its
    failure names the column, where the row queries would only raise.
    """
    if config is None:
        from orchestration.lib.project_config import load_config

        config = load_config()
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    if table_is_empty(conn, suite["table"]):
        return SuiteResult(
            suite["name"],
            0,
            [],
            tuple(days),
            {d: 0 for d in days},
            note=f"raw.{suite['table']} holds no rows: table absent from the source (optional), nothing to validate",
        )
    frames = {"schema": schema_frame(conn, suite["table"])}
    if not missing_columns(suite, frames["schema"]):
        frames["rows"] = rows_frame(conn, suite, first, last, config)
        frames["days"] = days_frame(conn, suite, first, last, config.gates.volume)
    rows = config.gates.rows
    return validate_frames(
        frames,
        suite,
        resolve_parameters(conn, suite, first, last, config),
        docs_dir,
        days,
        RowRule(rows.max_share, rows.min_count),
    )
