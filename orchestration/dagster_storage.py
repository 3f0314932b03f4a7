"""The project's Dagster event log (.dagster_home/dagster.yaml): Dagster's SQLite event log, made cheaper per event.

A backfill is one run, but Dagster still records one materialisation per asset and day (394 days x 40 assets is
~16,000 events), and its SQLite event log builds and disposes of a SQLAlchemy engine, and opens and closes a
connection, for every event it stores: each INSERT is compiled afresh, and closing the last connection to a WAL
database checkpoints the WAL into the file (the costliest part: 25 s of a 394-day run's 165 s). This subclass keeps
one engine per database file for the few files in use (so compiled statements are cached) with one open
connection each, and commits with `synchronous=NORMAL`, SQLite's setting for its WAL mode (which Dagster turns on):
a crash of the machine can lose the last events, never corrupt the file. Same files, same schema; SQLite's WAL lets
the webserver and the daemon read and write the same files meanwhile, and SQLite checkpoints the WAL as it grows.
Runs recorded by Dagster's own class read the same.
"""

import os
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

from dagster._config import Field, StringSource
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy import create_engine, event
from sqlalchemy.pool import QueuePool

OPEN_SHARDS = 8  # database files (the index and a run's shard) whose engine and connection stay open


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
        """The shard's engine (called under ``_db_lock``), one pooled connection kept open; the least recently
        used shards' engines are disposed of, so a long-lived webserver holds a few files open, not one per run."""
        engines = self.__dict__.setdefault("_project_engines", OrderedDict())
        if shard in engines:
            engines.move_to_end(shard)
            return engines[shard]
        engine = create_engine(
            self.conn_string_for_shard(shard),
            poolclass=QueuePool,
            pool_size=1,
            max_overflow=4,
            # connections are used under _db_lock, one thread at a time, but not always by the thread that opened them
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )
        event.listen(engine, "connect", lambda dbapi_conn, _: dbapi_conn.execute("PRAGMA synchronous=NORMAL"))
        engines[shard] = engine
        while len(engines) > OPEN_SHARDS:
            engines.popitem(last=False)[1].dispose()
        return engine

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
