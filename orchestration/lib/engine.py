"""The engine dbt builds the marts on: embedded DuckDB (default) or Apache Spark.

One switch: ``IMPACT_LEDGER_ENGINE`` (duckdb | spark), else the project file's ``engine``, else duckdb.
The same dbt project builds on both (engine differences are adapter-dispatched macros in
dbt_project/macros/cross_engine.sql). With Spark, in this first version:

* the raw layer is read, contract-checked and written by Spark in the run's process (spark_raw.py: the
  same rules, reasons and messages as raw_loader.py) as date-partitioned Parquet under ``spark_dir()/raw``
  and ``raw_quarantine``, which dbt's Spark reads as its sources (``raw.<table>`` tables registered before
  the build; a hand-run dbt's ``on-run-start`` hook creates views instead) and DuckDB through views; before
  each dbt build quality.gate_results (and the days of any raw table still held in DuckDB, loaded before the
  switch to Spark) land as Parquet too;
* dbt, in the run's process and its Spark session (spark_session.py), builds staging, intermediate and
  marts in Spark (tables under ``spark_dir()/warehouse``, a Derby metastore in ``spark_dir()/metastore_db``;
  a cluster by configuration, README: Apache Spark);
* after the build the marts and intermediate tables (sufficient statistics: small) are copied into the
  DuckDB warehouse, so attribution, alerts, exports, the analysts' snapshot and the report read the
  same tables whatever built them.

No Dagster imports here: the dbt asset calls ``before_build`` and ``after_build``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

import duckdb

from orchestration.lib.settings import DBT_PROJECT_DIR, _path_from_env, warehouse_path
from orchestration.lib.warehouse import transaction

ENGINE_ENV = "IMPACT_LEDGER_ENGINE"
SPARK_DIR_ENV = "IMPACT_LEDGER_SPARK_DIR"
ENGINES = ("duckdb", "spark")
Engine = Literal["duckdb", "spark"]
# dbt profile outputs (dbt_project/profiles.yml) of each engine
DBT_TARGETS = {"duckdb": "local", "spark": "spark"}


class EngineError(RuntimeError):
    """The engine cannot run: names the setting or the table."""


def engine() -> Engine:
    """The engine of this run: IMPACT_LEDGER_ENGINE, else the project file's `engine`, else duckdb."""
    value = os.environ.get(ENGINE_ENV, "").strip().lower()
    if value:
        if value not in ENGINES:
            raise EngineError(f"{ENGINE_ENV}={value!r}: the engine is one of {', '.join(ENGINES)}")
        return value  # type: ignore[return-value]
    from orchestration.lib.project_config import load_config

    return load_config().config.engine


def dbt_target(name: Engine | None = None) -> str:
    """The dbt target (profiles.yml output) of an engine."""
    return DBT_TARGETS[name or engine()]


def spark_dir() -> Path:
    """Where the Spark engine keeps its raw Parquet, warehouse and metastore (IMPACT_LEDGER_SPARK_DIR;
    default: spark/ next to the DuckDB warehouse, so a temporary warehouse gets its own)."""
    return _path_from_env(SPARK_DIR_ENV, warehouse_path().parent / "spark")


def export_env() -> None:
    """Pin IMPACT_LEDGER_SPARK_DIR (absolute) and IMPACT_LEDGER_ENGINE for dbt's profile and macros."""
    os.environ[SPARK_DIR_ENV] = str(spark_dir())
    os.environ[ENGINE_ENV] = engine()


def _sql_path(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


# ------------------------------------------------------------------ raw layer as Parquet


def raw_tables(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """The raw tables DuckDB holds (loaded on the duckdb engine); with engine: spark the loader writes the
    Parquet itself and DuckDB's raw.* are views over it (spark_raw.py): nothing to copy."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw' "
            "AND table_type = 'BASE TABLE' ORDER BY table_name"
        ).fetchall()
    ]


def export_raw_days(conn: duckdb.DuckDBPyConnection, days: list[date], root: Path | None = None) -> int:
    """Write each day of every raw table (the contract-checked rows) as ``raw/<table>/_partition_date=<day>/``.

    A day's folder is replaced whole, and written even when the day has no rows (an empty file keeps the
    table's columns, so Spark reads a table whose days were all empty). A dimension snapshot (no time
    column: the loader replaces it whole) is rewritten whole. Returns the files written.
    """
    from orchestration.lib.contract import CONTRACTS

    root = (root or spark_dir()) / "raw"
    written = 0
    for table in raw_tables(conn):
        table_days = days
        contract = CONTRACTS.get(table)
        if contract is not None and contract.time_column is None:
            shutil.rmtree(root / table, ignore_errors=True)
            loaded = conn.execute(f'SELECT DISTINCT _partition_date FROM raw."{table}" ORDER BY 1').fetchall()
            table_days = [d for (d,) in loaded if d is not None] or days[-1:]
        for day in table_days:
            folder = root / table / f"_partition_date={day.isoformat()}"
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            # the partition column lives in the folder name, not in the file (as Spark writes it)
            conn.execute(
                f'COPY (SELECT * EXCLUDE (_partition_date) FROM raw."{table}" '
                f"WHERE _partition_date = DATE '{day.isoformat()}') "
                f"TO {_sql_path(folder / 'part-0.parquet')} (FORMAT parquet)"
            )
            written += 1
    return written


def export_gate_results(conn: duckdb.DuckDBPyConnection, root: Path | None = None) -> None:
    """quality.gate_results (one verdict per suite and day: small) as one Parquet file, read by staging."""
    folder = (root or spark_dir()) / "quality" / "gate_results"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "part-0.parquet.tmp"
    conn.execute(f"COPY (SELECT * FROM quality.gate_results) TO {_sql_path(tmp)} (FORMAT parquet)")
    tmp.replace(folder / "part-0.parquet")


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _days_without_parquet(conn: duckdb.DuckDBPyConnection, root: Path) -> list[date]:
    """Loaded days of any raw table that have no Parquet folder yet (a warehouse that ran on DuckDB first)."""
    missing: set[date] = set()
    for table in raw_tables(conn):
        folder = root / "raw" / table
        have = {p.name.removeprefix("_partition_date=") for p in folder.glob("_partition_date=*")}
        days = conn.execute(f'SELECT DISTINCT _partition_date FROM raw."{table}" WHERE _partition_date IS NOT NULL')
        missing |= {d for (d,) in days.fetchall() if d.isoformat() not in have}
    return sorted(missing)


def java_executable() -> str | None:
    """The java pyspark starts: $JAVA_HOME/bin/java if JAVA_HOME is set, else java on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None
    return shutil.which("java")


def require_spark_runtime() -> None:
    """Fail before dbt runs when the Spark engine cannot start: no `spark` extra or no Java (dbt and pyspark
    would otherwise fail later, with a Py4J or gateway error that names neither)."""
    from importlib.util import find_spec

    missing = [m for m in ("pyspark", "dbt.adapters.spark") if find_spec(m) is None]  # dbt.adapters: always there
    if missing:
        raise EngineError(
            f"engine: spark needs the `spark` extra ({', '.join(missing)} not installed): "
            "run `make spark` (pip install -e '.[spark]')"
        )
    if java_executable() is None:
        where = (
            f"JAVA_HOME={os.environ['JAVA_HOME']} has no bin/java" if os.environ.get("JAVA_HOME") else "no java on PATH"
        )
        raise EngineError(
            f"engine: spark needs a Java 17 runtime ({where}): run `make java` "
            "(apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
        )


def before_build(conn: duckdb.DuckDBPyConnection, first: date, last: date) -> None:
    """Spark: land the run's raw days (and any loaded day not landed yet) and the gate verdicts as Parquet
    for Spark. DuckDB: nothing."""
    if engine() != "spark":
        return
    require_spark_runtime()
    root = spark_dir()
    days = sorted(set(days_between(first, last)) | set(_days_without_parquet(conn, root)))
    export_raw_days(conn, days, root)
    export_gate_results(conn, root)
    register_dbt_sources()


# set while dbt runs in the run process: its on-run-start hook leaves the raw tables registered here as they are
RAW_REGISTERED_ENV = "IMPACT_LEDGER_SPARK_RAW_REGISTERED"


def register_dbt_sources() -> None:
    """The raw tables in the catalog dbt's session uses (this process's, for spark_dir()), as the loader and
    the gates register them: dbt's sources then read the day folders listed once, not a view over the folder
    listing them in every query."""
    from orchestration.lib.contract import CONTRACTS
    from orchestration.lib.spark_raw import register_spark_tables
    from orchestration.lib.spark_session import MANAGE_PARTITIONS, spark_for_dbt

    session = spark_for_dbt()
    register_spark_tables(session, sorted(CONTRACTS), ("raw",))
    # dbt's incremental marts drop the partitions they replace: the catalog tracks the partitions of the tables
    # it creates (as in a dbt process of its own, Spark's default; register_spark_tables switches it off again)
    session.conf.set(MANAGE_PARTITIONS, "true")


# ------------------------------------------------------------------ marts back into DuckDB


def built_relations(manifest: dict, views: bool = False) -> list[dict]:
    """The dbt models the engine materialises as tables (incremental or table; with ``views``, views too)."""
    kinds = ("table", "incremental", "view") if views else ("table", "incremental")
    out = []
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model" or node["config"].get("materialized") not in kinds:
            continue
        out.append({"schema": node["schema"], "name": node["alias"] or node["name"], "unique_id": node["unique_id"]})
    return sorted(out, key=lambda r: (r["schema"], r["name"]))


def spark_table_location(schema: str, name: str, root: Path | None = None) -> Path:
    """Where Spark's warehouse keeps a managed table (spark.sql.warehouse.dir/<schema>.db/<name>)."""
    return (root or spark_dir()) / "warehouse" / f"{schema}.db" / name


def _parquet_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.parquet") if not p.name.startswith((".", "_")))


def _missing_in_duckdb(conn: duckdb.DuckDBPyConnection, relations: list[dict]) -> list[str]:
    present = {
        (s, t) for s, t in conn.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()
    }
    return [f"{r['schema']}.{r['name']}" for r in relations if (r["schema"], r["name"]) not in present]


SHELLS_VARS = "duckdb_shells_vars.json"  # in the shells' target folder: the dbt vars they were made with


def create_duckdb_shells(dbt_executable: str, target_path: Path, dbt_vars: dict) -> None:
    """Create every dbt relation in DuckDB without rows (dbt --empty): the tables the Spark marts are copied
    into get the DuckDB engine's own column names, order and types; the staging views read DuckDB's raw.
    ``target_path``: dbt's folder for these runs, never dbt_project/target itself, whose manifest the
    definitions load (another process may be reading it). ``dbt_vars``: the project file's, as the build's
    (the views' columns follow them: stg_users has the protected attributes)."""
    env = {**os.environ, ENGINE_ENV: "duckdb"}
    base = [dbt_executable, "run", "--quiet", "--target", dbt_target("duckdb"), "--target-path", str(target_path)]
    base += ["--profiles-dir", str(DBT_PROJECT_DIR), "--project-dir", str(DBT_PROJECT_DIR)]
    base += ["--vars", json.dumps(dbt_vars)]
    # the views as they are (an --empty view would stay empty), then the tables on them without rows (--empty)
    for extra in (
        ["--select", "config.materialized:view"],
        ["--empty", "--full-refresh", "--exclude", "config.materialized:view"],
    ):
        done = subprocess.run(base + extra, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise EngineError(
                "dbt could not create the DuckDB relations the Spark marts are copied into:\n"
                + (done.stdout + done.stderr)[-3000:]
            )


def copy_from_spark(conn: duckdb.DuckDBPyConnection, relations: list[dict], root: Path | None = None) -> dict:
    """Replace each DuckDB table with the Spark table of the same name, column by name (DuckDB's types).

    The Spark tables are read as the Parquet files they are (hive-partitioned by their day), so no Spark
    session is needed. Returns {schema.name: rows copied}.
    """
    copied = {}
    for r in relations:
        folder = spark_table_location(r["schema"], r["name"], root)
        target = f'"{r["schema"]}"."{r["name"]}"'
        files = _parquet_files(folder) if folder.is_dir() else []
        conn.execute(f"DELETE FROM {target}")
        if files:
            cols = [c[0] for c in conn.execute(f"DESCRIBE {target}").fetchall()]
            listed = ", ".join(f'"{c}"' for c in cols)
            conn.execute(
                f"INSERT INTO {target} ({listed}) SELECT {listed} FROM read_parquet("
                f"{_sql_path(folder)} || '/**/*.parquet', hive_partitioning = true, union_by_name = true)"
            )
        copied[f"{r['schema']}.{r['name']}"] = conn.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
    return copied


def after_build(conn_factory, manifest: dict, dbt_executable: str, target_path: Path) -> dict:
    """Spark: copy the built tables into the DuckDB warehouse (creating their empty DuckDB shells first if
    any is missing, dbt's files in ``target_path``). ``conn_factory()`` opens the DuckDB writer connection
    (closed before dbt runs: one writer). DuckDB: nothing. Returns {schema.name: rows copied}."""
    if engine() != "spark":
        return {}
    from orchestration.lib.project_config import config_dbt_vars, load_config

    relations = built_relations(manifest)
    dbt_vars = config_dbt_vars(load_config().config)
    # the shells as the project file last made them: another set of vars (an attribute added) makes them anew
    made_with = Path(target_path) / SHELLS_VARS
    fingerprint = json.dumps(dbt_vars, sort_keys=True, default=str)
    with conn_factory() as conn:
        missing = _missing_in_duckdb(conn, built_relations(manifest, views=True))
    if missing or not made_with.is_file() or made_with.read_text() != fingerprint:
        create_duckdb_shells(dbt_executable, target_path, dbt_vars)
        made_with.parent.mkdir(parents=True, exist_ok=True)
        made_with.write_text(fingerprint)
    with conn_factory() as conn, transaction(conn):
        copied = copy_from_spark(conn, relations)
    return copied


class SyncAfterStream:
    """A dbt invocation whose stream, once dbt has exited (built or failed), runs ``after()``: with Spark,
    the copy of the built tables into DuckDB, before anything downstream (row counts, Python assets) reads
    them. Delegates ``stream()`` and ``manifest`` only (what the dbt asset uses)."""

    def __init__(self, invocation, after):
        self._invocation, self._after = invocation, after

    @property
    def manifest(self) -> dict:
        return self._invocation.manifest

    def stream(self):
        try:
            yield from self._invocation.stream()
        finally:
            self._after()
