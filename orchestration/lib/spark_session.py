"""The Spark session of the Dagster run process (engine: spark): the raw loader, the quality gates and dbt run here.

One local session, created on first use and reused by every step of the run (and by later runs of the same
process), stopped at process exit. It is dbt's ``spark`` target's session (profiles.yml, method: session):
its Hive catalog is the embedded Derby metastore in ``spark_dir()/metastore_db`` and its managed tables live in
``spark_dir()/warehouse``; the loader's ``raw`` / ``raw_quarantine`` tables are registered in the same catalog.
dbt runs in this process (dbt_runner) on this session: one JVM a run, warmed up by the loader and the gates,
instead of a second one for a dbt subprocess (embedded Derby admits one process: the two could not share the
metastore). Static settings (the catalog, the warehouse folder) are fixed when a session starts, so a process
that moves to another ``spark_dir()`` (the tests do) gets a new session for its dbt step (``spark_for_dbt``);
the JVM, and the code it compiled, stays.

pyspark is imported only here, lazily: the duckdb engine never starts a JVM.

``SparkSql`` runs the project's SQL, written once in DuckDB's dialect, on Spark: sqlglot transpiles it.
"""

from __future__ import annotations

import atexit
import os
import threading
from functools import lru_cache
from pathlib import Path

from orchestration.lib.settings import DBT_PROJECT_DIR

# profiles.yml's spark target reads the same variables with the same defaults (a unit test compares them)
SESSION_SETTINGS = {
    "spark.master": ("IMPACT_LEDGER_SPARK_MASTER", "local[*]"),
    "spark.driver.memory": ("IMPACT_LEDGER_SPARK_DRIVER_MEMORY", "2g"),
    "spark.sql.shuffle.partitions": ("IMPACT_LEDGER_SPARK_SHUFFLE_PARTITIONS", "8"),
    # on by default (they pay off at volume); on small data each query's planning and compiling dominate, and
    # switching both off made a one-day dbt build of a small world ~10-15% faster (README: Apache Spark)
    "spark.sql.adaptive.enabled": ("IMPACT_LEDGER_SPARK_ADAPTIVE", "true"),
    "spark.sql.codegen.wholeStage": ("IMPACT_LEDGER_SPARK_CODEGEN", "true"),
}
MANAGE_PARTITIONS = "spark.sql.hive.manageFilesourcePartitions"
FIXED_SETTINGS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    # DuckDB's timestamps (no time zone) stay TIMESTAMP_NTZ, as dbt's session reads them
    "spark.sql.parquet.inferTimestampNTZ.enabled": "true",
    # Parquet timestamps as DuckDB reads them (INT96, Spark's legacy default, is read as a plain TIMESTAMP too,
    # but nothing else writes it)
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    # no _SUCCESS markers or .crc files beside the day's Parquet (DuckDB lists the folders)
    "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
    "spark.hadoop.parquet.enable.summary-metadata": "false",
    # dbt's catalog: Hive's, kept between runs in the Derby metastore (the folders: hive_settings)
    "spark.sql.catalogImplementation": "hive",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    # the loader's raw day folders found by listing them, as a view over the folder would (a catalog that tracks
    # partitions would see none until a repair, and need one after every landed day); dbt's runs switch it on
    # (engine.register_dbt_sources), register_spark_tables off again
    MANAGE_PARTITIONS: "false",
    # Spark 4's ANSI mode raises where the DuckDB SQL run here yields NULL (a division by zero)
    "spark.sql.ansi.enabled": "false",
}
_LOCK = threading.Lock()


def hive_settings(root: Path) -> dict[str, str]:
    """Where the catalog keeps tables and metastore, as profiles.yml's spark target has them (a unit test
    compares them)."""
    return {
        "spark.sql.warehouse.dir": f"{root}/warehouse",
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={root}/metastore_db;create=true",
        # Hive's per-session resources folder, made when a session starts: beside the metastore, not in /tmp
        "spark.hadoop.hive.downloaded.resources.dir": f"{root}/hive_resources",
    }


def session_settings(root: Path) -> dict[str, str]:
    """The settings of a session keeping its catalog in ``root`` (a ``spark_dir()``)."""
    settings = {key: os.environ.get(var) or default for key, (var, default) in SESSION_SETTINGS.items()}
    settings |= FIXED_SETTINGS | hive_settings(root)
    # the JVM's options apply when the first session starts it (its logs stay in that session's folder)
    log4j = DBT_PROJECT_DIR / "spark-log4j2.properties"  # its log file is ${derby.system.home}/spark.log
    more = os.environ.get("IMPACT_LEDGER_SPARK_JVM_OPTIONS", "")  # as profiles.yml adds them to dbt's session
    settings["spark.driver.extraJavaOptions"] = (
        f"-Dderby.system.home={root} -Dlog4j2.configurationFile={log4j} {more}".strip()
    )
    return settings


_session = None  # this process's session, if one was started


def _start(root: Path):
    global _session
    from pyspark.sql import SparkSession

    from orchestration.lib.engine import require_spark_runtime

    require_spark_runtime()
    root.mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder.appName("impact-ledger").enableHiveSupport()
    for key, value in session_settings(root).items():
        builder = builder.config(key, value)
    _session = builder.getOrCreate()
    try:
        open_metastore(_session, root)
    except Exception:
        _stop()  # the next call starts afresh
        raise
    return _session


def open_metastore(session, root: Path) -> None:
    """Open the catalog now, to say why it cannot be: embedded Derby admits one process, and Hive's own error
    ("Unable to instantiate ...SessionHiveMetaStoreClient") does not say which, or what to do."""
    from orchestration.lib.engine import SPARK_DIR_ENV, EngineError

    try:
        session.catalog.listDatabases()
    except Exception as err:
        if "MetaStoreClient" not in str(err):
            raise
        raise EngineError(
            f"the Spark engine's metastore {root / 'metastore_db'} is open in another process (embedded Derby "
            "admits one at a time): another impact-ledger run, or a dbt run by hand, on the same folder. Wait for "
            f"it to end, or give this run a folder of its own ({SPARK_DIR_ENV})"
        ) from None


def _stop() -> None:
    global _session
    if _session is not None:
        _session.stop()
        _session = None


atexit.register(_stop)  # the session (if any) stops with the process


def _catalog_root(session) -> Path:
    return Path(session.conf.get("spark.sql.warehouse.dir").removeprefix("file:")).parent


def spark():
    """This process's Spark session (started on first use, for the catalog in ``spark_dir()``). A process that
    moved to another spark_dir keeps its session for loading and gating (their tables name their folders); dbt
    needs ``spark_for_dbt``."""
    from orchestration.lib.engine import spark_dir

    with _LOCK:
        if _session is None or _session.sparkContext._jsc is None:  # none yet, or stopped (e.g. by a test)
            return _start(spark_dir().absolute())
        return _session


def spark_for_dbt():
    """The session whose catalog and warehouse are ``spark_dir()``'s (a new one if this process's keeps
    another folder's): dbt's tables are found, and written, where the engine copies them from."""
    from orchestration.lib.engine import spark_dir

    root = spark_dir().absolute()
    session = spark()
    with _LOCK:
        if _catalog_root(session) != root:
            _stop()
            session = _start(root)
    return session


# ------------------------------------------------------------------ DuckDB's SQL on Spark


@lru_cache(maxsize=2048)
def to_spark_sql(sql: str) -> str:
    """One DuckDB statement in Spark's dialect."""
    import sqlglot

    return sqlglot.transpile(sql, read="duckdb", write="spark", unsupported_level=sqlglot.ErrorLevel.RAISE)[0]


def duckdb_type(spark_type) -> str:
    """A Spark column type by the DuckDB name the suites and the contract use (VARCHAR, TIMESTAMP, ...)."""
    name = spark_type.simpleString()
    simple = {
        "string": "VARCHAR",
        "double": "DOUBLE",
        "float": "FLOAT",
        "bigint": "BIGINT",
        "int": "INTEGER",
        "smallint": "SMALLINT",
        "tinyint": "TINYINT",
        "boolean": "BOOLEAN",
        "date": "DATE",
        "timestamp_ntz": "TIMESTAMP",
        "timestamp": "TIMESTAMP WITH TIME ZONE",
        "binary": "BLOB",
    }
    if name in simple:
        return simple[name]
    return name.upper().replace("ARRAY<STRING>", "VARCHAR[]")


class SparkSql:
    """The few calls the gates make on a DuckDB connection (execute().fetchall()/.df(), sql().columns/.types),
    for SQL in DuckDB's dialect run on Spark."""

    def __init__(self, session=None):
        self.session = session or spark()

    def frame(self, sql: str):
        return self.session.sql(to_spark_sql(sql))

    def fetchall(self, sql: str) -> list[tuple]:
        return [tuple(r) for r in self.frame(sql).collect()]

    def df(self, sql: str):
        """The result as DuckDB's .df() gives it (the same pandas dtypes: dates, nullable integers and booleans),
        through Arrow: the frames the gates hand to GX are the same on both engines."""
        import duckdb

        with duckdb.connect() as conn:
            return conn.from_arrow(self.frame(sql).toArrow()).df()

    def types(self, sql: str) -> dict[str, str]:
        """Column -> DuckDB type name, without running the query."""
        return {f.name: duckdb_type(f.dataType) for f in self.frame(sql).schema.fields}
