"""The project's Dagster event log (.dagster_home/dagster.yaml): Dagster's SQLite event log, made cheaper per event.

A backfill is one run, but Dagster still records one materialisation per asset and day (394 days x 40 assets is
~16,000 events), and its SQLite event log builds and disposes of a SQLAlchemy engine for every event it stores, so
each INSERT is compiled afresh, and every commit waits for the disk. This subclass keeps one engine per database
file (so compiled statements are cached) and commits with `synchronous=NORMAL`, SQLite's setting for its WAL mode
(which Dagster turns on): a crash of the machine can lose the last events, never corrupt the file. Same files,
same schema, same one-connection-per-use (NullPool, safe beside the webserver and the daemon); runs recorded by
Dagster's own class read the same. Measured on 394 partitions of one asset: 35-40% less CPU per event.
"""

import os
from contextlib import contextmanager
from pathlib import Path

from dagster._config import Field, StringSource
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy import create_engine, event
from sqlalchemy.pool import NullPool


class ProjectSqliteEventLogStorage(SqliteEventLogStorage):
    """``base_dir`` defaults to Dagster's own place for it, ``$DAGSTER_HOME/history/runs``."""

    @classmethod
    def config_type(cls):
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        base_dir = config_value.get("base_dir") or str(Path(os.environ["DAGSTER_HOME"]) / "history" / "runs")
        return cls(base_dir=base_dir, inst_data=inst_data)

    def _engine(self, shard: str):
        engines = self.__dict__.setdefault("_project_engines", {})
        if shard not in engines:
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=NullPool,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
            )
            event.listen(engine, "connect", lambda dbapi_conn, _: dbapi_conn.execute("PRAGMA synchronous=NORMAL"))
            engines[shard] = engine
        return engines[shard]

    @contextmanager
    def _connect(self, shard: str):
        # as SqliteEventLogStorage._connect, with the shard's engine kept
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                with conn.begin():
                    yield conn
