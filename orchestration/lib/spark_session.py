"""The Spark session of the Dagster run process (engine: spark): the raw loader and the quality gates run here.

One local session, created on first use and reused by every step of the run (and by later runs of the same
process), stopped at process exit. It has no Hive metastore: dbt's own session (a subprocess) owns the embedded
Derby metastore, and embedded Derby admits one process; the ``raw`` / ``raw_quarantine`` views this session
needs live in Spark's in-memory catalog. It uses the settings of dbt's ``spark`` target (profiles.yml:
spark.master, driver memory, shuffle partitions, UTC) and logs to spark.log in ``spark_dir()`` as dbt's does.

pyspark is imported only here, lazily: the duckdb engine never starts a JVM.

``SparkSql`` runs the project's SQL, written once in DuckDB's dialect, on Spark: sqlglot transpiles it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
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
    # the loader's `raw` / `raw_quarantine` tables: an in-memory catalog, never the dbt session's Derby
    "spark.sql.catalogImplementation": "in-memory",
    # and their day folders found by listing them, as a view over the folder would (a catalog that tracks
    # partitions would see none until a repair, and need one after every landed day)
    "spark.sql.hive.manageFilesourcePartitions": "false",
    # Spark 4's ANSI mode raises where the DuckDB SQL run here yields NULL (a division by zero)
    "spark.sql.ansi.enabled": "false",
}
_LOCK = threading.Lock()


def session_settings(log_dir: Path) -> dict[str, str]:
    settings = {key: os.environ.get(var) or default for key, (var, default) in SESSION_SETTINGS.items()}
    settings |= FIXED_SETTINGS
    # the in-memory catalog's databases get folders: in a temporary one, not the working directory
    settings["spark.sql.warehouse.dir"] = tempfile.mkdtemp(prefix="impact-ledger-spark-catalog-")
    log4j = DBT_PROJECT_DIR / "spark-log4j2.properties"  # its log file is ${derby.system.home}/spark.log
    more = os.environ.get("IMPACT_LEDGER_SPARK_JVM_OPTIONS", "")  # as profiles.yml adds them to dbt's session
    settings["spark.driver.extraJavaOptions"] = (
        f"-Dderby.system.home={log_dir} -Dlog4j2.configurationFile={log4j} {more}".strip()
    )
    return settings


@lru_cache(maxsize=1)
def _started():
    from pyspark.sql import SparkSession

    from orchestration.lib.engine import require_spark_runtime, spark_dir

    require_spark_runtime()
    log_dir = spark_dir()
    log_dir.mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder.appName("impact-ledger")
    settings = session_settings(log_dir)
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    atexit.register(shutil.rmtree, settings["spark.sql.warehouse.dir"], ignore_errors=True)
    atexit.register(session.stop)  # atexit runs last-in first-out: the session stops, then its folder goes
    return session


def spark():
    """This process's Spark session (started on first use)."""
    with _LOCK:
        session = _started()
        if session.sparkContext._jsc is None:  # stopped (e.g. by a test): start a new one
            _started.cache_clear()
            session = _started()
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
