"""The project's Dagster event log (.dagster_home/dagster.yaml): Dagster's SQLite event log, made cheaper per event.

A backfill is one run, but Dagster still records one materialisation per asset and day (394 days x 40 assets is
~16,000 events), and its SQLite event log builds and disposes of a SQLAlchemy engine, and opens and closes a
connection, for every event it stores: each INSERT is compiled afresh, and closing the last connection to a WAL
database checkpoints the WAL into the file (the costliest part: 25 s of a 394-day run's 165 s). This subclass keeps
one engine per database file for the few files in use (so compiled statements are cached) with one open
connection each, and commits with `synchronous=NORMAL`, SQLite's setting for its WAL mode (which Dagster turns on):
a crash of the machine can lose the last events, never corrupt the file. Same files, same schema; SQLite's WAL lets
the webserver and the daemon read and write the same files meanwhile, and SQLite checkpoints the WAL as it grows.
A ranged step's materialisations of one asset (one per day) are stored as one batch, in one transaction per file,
and what Dagster asks the schema before each event is remembered: a 394-day run on a small data set went from
185 s to 97 s. Runs recorded by Dagster's own class read the same, and the unit test reads a run stored both ways.

In-process runs without a Dagster home (tests, scripts: ``ephemeral_instance``) use Dagster's in-memory event log,
which opened a connection and set two pragmas for every statement; the project's keeps one connection per thread
and remembers the schema the same way.
"""

import os
import threading
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

from dagster._config import Field, StringSource
from dagster._core.events import DagsterEventType
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.instance import DagsterInstance, InstanceType
from dagster._core.storage.event_log import InMemoryEventLogStorage
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlalchemy_compat import db_result
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import serialize_value
from sqlalchemy import create_engine, event, text
from sqlalchemy.pool import QueuePool

OPEN_SHARDS = 8  # database files (the index and a run's shard) whose engine and connection stay open
# Dagster hands a ranged step's per-day materialisations of one asset to store_event_batch (below) together, up to
# this many at a time, when this variable is set (read as events are stored): set when this log is created
EVENT_BATCH_SIZE = ("DAGSTER_EVENT_BATCH_SIZE", "1000")
BATCHED = {DagsterEventType.ASSET_MATERIALIZATION, DagsterEventType.ASSET_OBSERVATION}


class _CheaperPerEvent:
    """What both of the project's event logs (SQLite files, in memory) do to store each event for less."""

    # Dagster asks the database schema again before every asset event it stores: whether the tags table exists
    # (a new engine, connection and PRAGMA each time; 17% of a 394-day run's time) and whether the asset key
    # table has its index columns. Migrations only add tables and columns, so a "yes" is remembered.

    def has_table(self, table_name: str) -> bool:
        present = self.__dict__.setdefault("_project_tables", set())
        if table_name not in present and super().has_table(table_name):
            present.add(table_name)
        return table_name in present

    def _has_asset_key_index_cols_on_connection(self, conn) -> bool:
        if not self.__dict__.get("_project_asset_key_index_cols"):
            self._project_asset_key_index_cols = super()._has_asset_key_index_cols_on_connection(conn)
        return self._project_asset_key_index_cols

    def _store_asset_check_evaluation_planned(self, event, event_id) -> None:
        """As Dagster's: one planned row per day of the check's range, with the event serialised once for all of
        them (Dagster serialises it again for each day)."""
        planned = event.dagster_event.event_specific_data
        days = planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
        common = dict(
            asset_key=planned.asset_key.to_string(),
            check_name=planned.check_name,
            run_id=event.run_id,
            execution_status=AssetCheckExecutionRecordStatus.PLANNED.value,
            evaluation_event=serialize_value(event),
            evaluation_event_timestamp=self._event_insert_timestamp(event),
            evaluation_event_storage_id=event_id,
        )
        with self.index_connection() as conn:
            conn.execute(AssetCheckExecutionsTable.insert().values([{**common, "partition": day} for day in days]))


class ProjectSqliteEventLogStorage(_CheaperPerEvent, SqliteEventLogStorage):
    """``base_dir`` defaults to Dagster's own place for it, ``$DAGSTER_HOME/history/runs``."""

    def __init__(self, *args, **kwargs):
        os.environ.setdefault(*EVENT_BATCH_SIZE)  # by the process that stores events here, not on import
        super().__init__(*args, **kwargs)

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

    def dispose(self) -> None:
        """Dagster's, then the kept engines closed: SQLite folds a file's WAL into it and deletes the WAL (and
        its shm) when the file's last connection closes; kept open until the process ended, each run's shard
        left ~4 MB of WAL behind (1.5 GB a year of daily runs)."""
        super().dispose()
        with self._db_lock:
            engines = self.__dict__.pop("_project_engines", {})
            for engine in engines.values():
                engine.dispose()

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

    def store_event_batch(self, events) -> None:
        """A batch of one run's materialisations (or observations), as ``store_event`` stores each of them, in one
        transaction per file; the asset's latest-event row is written once, for the batch's last event of each
        asset (each write replaces the one before)."""
        if (
            not all(e.is_dagster_event and e.dagster_event_type in BATCHED for e in events)
            or len({e.run_id for e in events}) != 1
        ):
            super().store_event_batch(events)  # one by one
            return
        statements = [self.prepare_insert_event(e) for e in events]
        with self.run_connection(events[0].run_id) as conn:
            for statement in statements:
                conn.execute(statement)
        with self.index_transaction() as conn:
            event_ids = []
            for statement in statements:
                with db_result(conn, statement) as result:
                    event_ids.append(result.inserted_primary_key[0])
            self._store_asset_event_tags(conn, events, event_ids)
            latest = {e.dagster_event.asset_key: (e, i) for e, i in zip(events, event_ids, strict=True)}
            for event, event_id in latest.values():
                self._store_asset_event(conn, event, event_id)


class ProjectInMemoryEventLogStorage(_CheaperPerEvent, InMemoryEventLogStorage):
    """Dagster's in-memory event log (an ephemeral instance: in-process runs of tests and scripts), which opens a
    connection and sets its two pragmas for every statement: here each thread keeps its connection."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._project_threads = threading.local()

    @contextmanager
    def _connect(self):
        with self._db_lock:
            conn = getattr(self._project_threads, "conn", None)
            if conn is None:  # SQLite connections belong to the thread that opened them
                conn = self._engine.connect()
                with conn.begin():  # as Dagster sets them on each of its connections
                    conn.execute(text("PRAGMA journal_mode=WAL;")).close()
                    conn.execute(text("PRAGMA foreign_keys=ON;")).close()
                self._project_threads.conn = conn
            with conn.begin():
                yield conn


def ephemeral_instance() -> DagsterInstance:
    """``DagsterInstance.ephemeral()`` with the project's in-memory event log."""
    from dagster._core.launcher.sync_in_memory_run_launcher import SyncInMemoryRunLauncher
    from dagster._core.run_coordinator import DefaultRunCoordinator
    from dagster._core.storage.noop_compute_log_manager import NoOpComputeLogManager
    from dagster._core.storage.root import TemporaryLocalArtifactStorage
    from dagster._core.storage.runs import InMemoryRunStorage

    return DagsterInstance(
        instance_type=InstanceType.EPHEMERAL,
        local_artifact_storage=TemporaryLocalArtifactStorage(),
        run_storage=InMemoryRunStorage(),
        event_storage=ProjectInMemoryEventLogStorage(),
        compute_log_manager=NoOpComputeLogManager(),
        run_coordinator=DefaultRunCoordinator(),
        run_launcher=SyncInMemoryRunLauncher(),
    )
