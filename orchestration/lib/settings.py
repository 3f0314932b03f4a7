"""Where things live. Read from the environment at call time, never at import."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
DEFAULT_PARTITIONS_START = "2026-01-01"


def _path_from_env(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    return Path(value).expanduser().resolve() if value else default


def warehouse_path() -> Path:
    """The DuckDB warehouse file (IMPACT_LEDGER_DB); dbt's profiles.yml reads the same variable."""
    return _path_from_env("IMPACT_LEDGER_DB", PROJECT_ROOT / "data" / "warehouse.duckdb")


def source_dir() -> Path:
    """The landing zone the ingest assets read (IMPACT_LEDGER_SOURCE)."""
    return _path_from_env("IMPACT_LEDGER_SOURCE", PROJECT_ROOT / "data" / "raw")


def partitions_start() -> str:
    """First daily partition: IMPACT_LEDGER_START_DATE (YYYY-MM-DD), else the project file's
    `partitions.start`, else ("from_data") the first day of the landing zone, else 2026-01-01."""
    if os.environ.get("IMPACT_LEDGER_START_DATE"):
        return os.environ["IMPACT_LEDGER_START_DATE"]
    from orchestration.lib.project_config import load_config

    start = load_config().partitions.start
    if start != "from_data":
        return start.isoformat()
    from orchestration.lib.source_range import SourceRangeError, source_date_range

    try:
        return source_date_range(source_dir())[0].isoformat()
    except SourceRangeError:  # no landing zone yet (e.g. `dagster dev` before any data)
        return DEFAULT_PARTITIONS_START


def memory_limit() -> str:
    """DuckDB's memory_limit for the loader, dbt and the checks (IMPACT_LEDGER_MEMORY_LIMIT; DuckDB's own
    default is 80% of RAM, which a large day exhausts); beyond it DuckDB spills to temp_directory()."""
    return os.environ.get("IMPACT_LEDGER_MEMORY_LIMIT", "3GB")


def temp_directory() -> Path:
    """Where DuckDB spills when a query exceeds memory_limit (IMPACT_LEDGER_TEMP_DIR; default: tmp/ next to the warehouse)."""
    return _path_from_env("IMPACT_LEDGER_TEMP_DIR", warehouse_path().parent / "tmp")


def duckdb_threads() -> int | None:
    """DuckDB's worker threads for the warehouse (IMPACT_LEDGER_DUCKDB_THREADS); None: DuckDB's own default, one
    per core. Fewer cost less CPU on small data when other work shares the cores (the tests: two workers on two
    cores); at volume DuckDB's default is the fast one."""
    value = os.environ.get("IMPACT_LEDGER_DUCKDB_THREADS", "").strip()
    return _whole_number("IMPACT_LEDGER_DUCKDB_THREADS", value) if value else None


def dbt_threads() -> int:
    """dbt's threads on DuckDB (IMPACT_LEDGER_DBT_THREADS, default 1). Two run independent models side by side
    in the one database: ~0.2 s less on a small day here, but at volume each query already keeps every core busy
    and two at once are slower (a 10M-row day's dbt step 32 s -> 51 s)."""
    value = os.environ.get("IMPACT_LEDGER_DBT_THREADS", "").strip()
    return _whole_number("IMPACT_LEDGER_DBT_THREADS", value) if value else 1


def _whole_number(variable: str, value: str) -> int:
    """``value`` of the environment variable ``variable`` as a whole number >= 1, or a ValueError naming it."""
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{variable} must be a whole number >= 1, got {value!r}")
    return int(value)


def duckdb_settings() -> dict[str, str]:
    """The DuckDB settings every writer connection uses (Dagster resource and dbt's profiles.yml alike; dbt's
    threads come from the on-run-start hook in macros/cross_engine.sql)."""
    settings = {"memory_limit": memory_limit(), "temp_directory": str(temp_directory())}
    if (threads := duckdb_threads()) is not None:
        settings["threads"] = str(threads)
    return settings


def export_env() -> None:
    """Pin IMPACT_LEDGER_DB (absolute) and the DuckDB memory settings for dbt, a subprocess in another cwd."""
    os.environ["IMPACT_LEDGER_DB"] = str(warehouse_path())
    os.environ["IMPACT_LEDGER_MEMORY_LIMIT"] = memory_limit()
    os.environ["IMPACT_LEDGER_TEMP_DIR"] = str(temp_directory())
    os.environ["IMPACT_LEDGER_DBT_THREADS"] = str(dbt_threads())


def dbt_project_vars() -> dict:
    """The vars dbt_project.yml declares (the defaults a project file may override)."""
    from orchestration.lib.yaml_files import read_yaml

    return read_yaml(DBT_PROJECT_DIR / "dbt_project.yml").get("vars", {})


def dbt_var(name: str):
    """A dbt var as the run sees it: the project file's value (experiment metrics, attribution, ...),
    else the default of dbt_project.yml (e.g. label_lookback_days), so Python and SQL share one value."""
    from orchestration.lib.project_config import config_dbt_vars, load_config

    configured = config_dbt_vars(load_config().config)
    if name in configured:
        return configured[name]
    variables = dbt_project_vars()
    if name not in variables:
        raise KeyError(f"dbt var '{name}' is not defined in {DBT_PROJECT_DIR / 'dbt_project.yml'}")
    return variables[name]


def value_metric() -> tuple[str, bool]:
    """attribution.value_metric, and whether it is lower_is_better (a cost per unit: its fall is the value)."""
    metric = dbt_var("attribution")["value_metric"]
    return metric, dbt_var("experiment_metrics").get(metric, {}).get("direction") == "lower_is_better"


def exports_dir() -> Path:
    """Where Parquet exports and training snapshots go (IMPACT_LEDGER_EXPORTS)."""
    return _path_from_env("IMPACT_LEDGER_EXPORTS", PROJECT_ROOT / "data" / "exports")


def gx_docs_dir() -> Path | None:
    """Where GX Data Docs are built after each validation; None when IMPACT_LEDGER_GX_DOCS=0."""
    if os.environ.get("IMPACT_LEDGER_GX_DOCS", "1") == "0":
        return None
    return _path_from_env("IMPACT_LEDGER_DOCS", PROJECT_ROOT / "data" / "docs") / "gx"


def gx_docs_index_limit() -> int:
    """How many of the latest validation results the Data Docs index lists and GX keeps
    (IMPACT_LEDGER_GX_DOCS_INDEX_LIMIT, default 500: ~19 of the demo's daily runs, 26 results each; never fewer
    than a run's own). Older results move, with their pages, to archive folders (orchestration/lib/gx_archive.py):
    each build reads and renders what GX keeps, so its cost follows this number, not the history."""
    return _whole_number(
        "IMPACT_LEDGER_GX_DOCS_INDEX_LIMIT", os.environ.get("IMPACT_LEDGER_GX_DOCS_INDEX_LIMIT", "500")
    )


def analytics_path() -> Path:
    """The analysts' read-only snapshot database (IMPACT_LEDGER_ANALYTICS_DB)."""
    return _path_from_env("IMPACT_LEDGER_ANALYTICS_DB", PROJECT_ROOT / "data" / "analytics.duckdb")


def reports_dir() -> Path:
    """Where the daily HTML reports go (IMPACT_LEDGER_REPORTS); by default `reports/` next to the warehouse.

    Next to the warehouse (data/reports for the default one), so a run against a
    temporary warehouse, e.g. in tests, never writes into the project's data/.
    """
    return _path_from_env("IMPACT_LEDGER_REPORTS", warehouse_path().parent / "reports")


def alerts_dir() -> Path:
    """Where alert notifications are written as JSON lines (IMPACT_LEDGER_ALERTS)."""
    return _path_from_env("IMPACT_LEDGER_ALERTS", PROJECT_ROOT / "data" / "alerts")


def schedule_hour() -> int:
    """Hour (in the project's time zone) at which the daily schedule runs yesterday's partition
    (IMPACT_LEDGER_SCHEDULE_HOUR, 0-23)."""
    raw = os.environ.get("IMPACT_LEDGER_SCHEDULE_HOUR", "6")
    if not raw.isdigit() or not 0 <= int(raw) <= 23:
        raise ValueError(f"IMPACT_LEDGER_SCHEDULE_HOUR must be an hour 0-23, got {raw!r}")
    return int(raw)


@contextlib.contextmanager
def temporary_env(values: dict[str, str]) -> Iterator[None]:
    """``values`` set in os.environ inside the block (for dbt, which reads them as it runs), then restored."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
