"""The project's SQLite event log (orchestration/dagster_storage.py) stores what Dagster's own class reads back,
and keeps only a few database files open however many runs it records."""

import shutil
import threading
from pathlib import Path

import dagster as dg
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from orchestration.dagster_storage import (
    OPEN_SHARDS,
    ProjectInMemoryEventLogStorage,
    ProjectSqliteEventLogStorage,
    ephemeral_instance,
)
from orchestration.defs.partitions import RANGE_END_TAG, RANGE_START_TAG

DAGSTER_YAML = Path(__file__).resolve().parents[2] / ".dagster_home" / "dagster.yaml"
days = dg.DailyPartitionsDefinition(start_date="2026-01-01")


@dg.asset(partitions_def=days, backfill_policy=dg.BackfillPolicy.single_run())
def daily(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"days": len(context.partition_keys)})


@dg.asset_check(asset=daily, blocking=True)
def daily_is_fine(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    # an event stored from another thread (dbt's threads log too): in memory, over that thread's connection
    worker = threading.Thread(target=context.log.info, args=("logged from a worker thread",))
    worker.start()
    worker.join()
    return dg.AssetCheckResult(passed=True)


def _instance(home: Path, project: bool) -> dg.DagsterInstance:
    home.mkdir()
    if project:
        shutil.copy(DAGSTER_YAML, home / "dagster.yaml")  # the project's dagster.yaml, as runs use it
    return dg.DagsterInstance.from_config(str(home))


def _stored(instance: dg.DagsterInstance, runs: list[str]) -> dict:
    """What readers of the event log see of ``daily``: each day's materialisation, the asset's latest one, the
    check's planned and finished executions by day (runs by their place in ``runs``)."""
    check_key = dg.AssetCheckKey(daily.key, "daily_is_fine")
    storage = instance.event_log_storage
    latest = instance.get_latest_materialization_event(daily.key)
    return {
        "materialized": sorted(
            (r.partition_key, r.asset_materialization.metadata["days"].value)
            for r in instance.fetch_materializations(daily.key, limit=1000).records
        ),
        "latest": (latest.dagster_event.partition, runs.index(latest.run_id)),
        "asset_record": storage.get_asset_records([daily.key])[
            0
        ].asset_entry.last_materialization.dagster_event.partition,
        "checks": sorted(
            (r.partition or "", r.status.value, runs.index(r.run_id))
            for r in storage.get_asset_check_execution_history(check_key, limit=1000)
        ),
    }


def test_a_ranged_run_reads_back_as_from_dagsters_own_event_log(tmp_path, monkeypatch):
    """The oracle is Dagster's own SQLite event log, which stores each event alone: the project's writes a
    ranged step's per-day materialisations as one batch and a planned check's days with one serialised event."""
    monkeypatch.setenv("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")  # as runs.py sets it
    tags = {RANGE_START_TAG: "2026-01-01", RANGE_END_TAG: "2026-02-09"}
    seen = {}
    for project in (True, False):
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / str(project)))
        instance = _instance(tmp_path / str(project), project)
        assert isinstance(instance.event_log_storage, ProjectSqliteEventLogStorage) == project
        runs = [dg.materialize([daily, daily_is_fine], instance=instance, tags=tags) for _ in range(2)]
        assert all(r.success for r in runs)
        seen[project] = _stored(instance, [r.run_id for r in runs])
        instance.dispose()
    assert len(seen[True]["materialized"]) == 80  # 40 days, twice
    assert seen[True]["latest"] == ("2026-02-09", 1)
    assert seen[True] == seen[False]


def test_the_in_memory_log_of_in_process_runs_reads_back_as_dagsters_own():
    """runs.py's ephemeral instance (tests and scripts) against Dagster's: the same two ranged runs."""
    tags = {RANGE_START_TAG: "2026-01-01", RANGE_END_TAG: "2026-01-20"}
    seen = {}
    for project, make in ((True, ephemeral_instance), (False, dg.DagsterInstance.ephemeral)):
        with make() as instance:
            assert isinstance(instance.event_log_storage, ProjectInMemoryEventLogStorage) == project
            runs = [dg.materialize([daily, daily_is_fine], instance=instance, tags=tags) for _ in range(2)]
            assert all(r.success for r in runs)
            messages = [e.user_message for e in instance.all_logs(runs[1].run_id)]
            seen[project] = {
                **_stored(instance, [r.run_id for r in runs]),
                "thread": messages.count("logged from a worker thread"),
            }
    assert len(seen[True]["materialized"]) == 40 and seen[True]["thread"] == 1
    assert seen[True] == seen[False]


def test_a_ranged_run_is_stored_once_per_day_and_read_back_by_dagsters_own_storage(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    shutil.copy(DAGSTER_YAML, tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))  # the project's dagster.yaml, as runs use it
    assert isinstance(instance.event_log_storage, ProjectSqliteEventLogStorage)
    tags = {RANGE_START_TAG: "2026-01-01", RANGE_END_TAG: "2026-02-09"}
    result = dg.materialize([daily], instance=instance, tags=tags)
    assert result.success
    stored = instance.all_logs(result.run_id)
    records = instance.fetch_materializations(daily.key, limit=100).records
    assert sorted(r.partition_key for r in records) == days.get_partition_keys_in_range(
        dg.PartitionKeyRange("2026-01-01", "2026-02-09")
    )  # one per day: 40

    plain = SqliteEventLogStorage(base_dir=str(tmp_path / "history" / "runs"))
    assert [e.dagster_event_type for e in plain.get_logs_for_run(result.run_id)] == [
        e.dagster_event_type for e in stored
    ]

    for day in days.get_partition_keys_in_range(dg.PartitionKeyRange("2026-03-01", "2026-03-12")):
        assert dg.materialize([daily], instance=instance, partition_key=day).success
    assert len(instance.event_log_storage._project_engines) <= OPEN_SHARDS  # 13 runs, few files open
    assert len(instance.fetch_materializations(daily.key, limit=100).records) == 52
    runs_dir = tmp_path / "history" / "runs"
    assert list(runs_dir.glob("*.db-wal"))  # the open files' write-ahead logs, while the instance lives
    instance.dispose()
    # closed, each file's WAL is folded into it and deleted (a year of daily runs left ~1.5 GB of them)
    assert sorted(p.name for p in runs_dir.iterdir() if not p.name.endswith(".db")) == []
    again = dg.DagsterInstance.from_config(str(tmp_path))
    assert len(again.fetch_materializations(daily.key, limit=100).records) == 52
    assert [e.dagster_event_type for e in again.all_logs(result.run_id)] == [e.dagster_event_type for e in stored]
    again.dispose()
