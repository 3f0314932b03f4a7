"""A small generated world materialised through Dagster into temp warehouses, shared per session.

`history_db`: every day before the planted incident, in one run (a backfill).
`full_db`: history plus the seven days from the incident to two days before the world ends, as one backfill run
(recorded in `full_instance`).
`daily_db`: history plus the same seven days as the schedule and an operator would run them: the incident's
first three days and the last one each in its own run, the three between as one catch-up run.
Each test gets a private copy (`pipeline`) and runs the days it needs, or reads a shared one.
"""

import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from orchestration.lib.synthetic_world import WorldConfig, generate_world

# Big enough that a 95% CI reliably covers the planted lift and a day's labels
# can show the incident, small enough to run in seconds.
# The incident starts on day 23 so that full_db's backfill spans seven days.
E2E_WORLD = WorldConfig(days=32, users=20_000, seed=3, predictions_per_day=2_000, incident_day=23)


@dataclass
class Pipeline:
    source: Path
    db: Path
    truth: dict
    first: date
    last: date

    @property
    def incident(self) -> date:
        return date.fromisoformat(self.truth["incident"]["start_date"])

    def query(self, sql: str, params=None):
        with duckdb.connect(str(self.db), read_only=True) as conn:
            return conn.execute(sql, params or []).df()

    def run(self, first: date, last: date | None = None, instance=None):
        from orchestration.runs import materialize_days

        return materialize_days(first, last or first, instance=instance)


def _materialize(source: Path, db: Path, first: date, last: date, instance=None) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IMPACT_LEDGER_DB", str(db))
        mp.setenv("IMPACT_LEDGER_EXPORTS", str(db.parent / "exports"))
        mp.setenv("IMPACT_LEDGER_ANALYTICS_DB", str(db.parent / "analytics.duckdb"))
        mp.setenv("IMPACT_LEDGER_SOURCE", str(source))
        from orchestration.runs import materialize_days

        outcome = materialize_days(first, last, instance=instance)
    assert outcome.success, outcome.failures


def generated_pipeline(tmp_path: Path, monkeypatch, cfg: WorldConfig) -> Pipeline:
    """Generate a world into tmp_path, point every path there and materialise all its days in one run."""
    source = tmp_path / "world"
    return materialised_pipeline(tmp_path, monkeypatch, source, generate_world(source, cfg, progress=None))


def materialised_pipeline(tmp_path: Path, monkeypatch, source: Path, truth: dict) -> Pipeline:
    """Point every path into tmp_path and materialise all of ``source``'s days (a world in tmp_path/world) in one
    run."""
    for var, value in (
        ("IMPACT_LEDGER_DB", "warehouse.duckdb"),
        ("IMPACT_LEDGER_SOURCE", "world"),
        ("IMPACT_LEDGER_EXPORTS", "exports"),
        ("IMPACT_LEDGER_ANALYTICS_DB", "analytics.duckdb"),
    ):
        monkeypatch.setenv(var, str(tmp_path / value))
    p = Pipeline(
        source,
        tmp_path / "warehouse.duckdb",
        truth,
        date.fromisoformat(truth["start_date"]),
        date.fromisoformat(truth["end_date"]),
    )
    outcome = p.run(p.first, p.last)
    assert outcome.success, outcome.failures
    return p


@pytest.fixture(scope="session")
def e2e_world(tmp_path_factory):
    out = tmp_path_factory.mktemp("e2e_world")
    return out, generate_world(out, E2E_WORLD, progress=None)


@pytest.fixture(scope="session")
def history_db(e2e_world, tmp_path_factory):
    source, truth = e2e_world
    db = tmp_path_factory.mktemp("history") / "warehouse.duckdb"
    incident = date.fromisoformat(truth["incident"]["start_date"])
    _materialize(source, db, date.fromisoformat(truth["start_date"]), incident - timedelta(days=1))
    return db


@pytest.fixture(scope="session")
def full_instance():
    """The Dagster instance of `full_db`'s backfill run: its materialisation events and metadata."""
    from orchestration.dagster_storage import ephemeral_instance

    with ephemeral_instance() as instance:
        yield instance


@pytest.fixture(scope="session")
def full_db(e2e_world, history_db, full_instance, tmp_path_factory):
    source, truth = e2e_world
    db = tmp_path_factory.mktemp("full") / "warehouse.duckdb"
    shutil.copy(history_db, db)
    incident = date.fromisoformat(truth["incident"]["start_date"])
    _materialize(source, db, incident, date.fromisoformat(truth["end_date"]) - timedelta(days=2), full_instance)
    return db


@pytest.fixture(scope="session")
def latest_db(e2e_world, full_db, tmp_path_factory):
    """Every day materialised (the last two as one more run): shared by tests that only read."""
    source, truth = e2e_world
    db = tmp_path_factory.mktemp("latest") / "warehouse.duckdb"
    shutil.copy(full_db, db)
    last = date.fromisoformat(truth["end_date"])
    _materialize(source, db, last - timedelta(days=1), last)
    return db


@pytest.fixture
def latest(e2e_world, latest_db) -> Pipeline:
    """Read-only view of `latest_db` (do not run days on it: use `pipeline` for that)."""
    source, truth = e2e_world
    return Pipeline(
        source, latest_db, truth, date.fromisoformat(truth["start_date"]), date.fromisoformat(truth["end_date"])
    )


def _private_copy(db: Path, e2e_world, tmp_path, monkeypatch) -> Pipeline:
    source, truth = e2e_world
    private = tmp_path / "warehouse.duckdb"
    shutil.copy(db, private)
    monkeypatch.setenv("IMPACT_LEDGER_DB", str(private))
    monkeypatch.setenv("IMPACT_LEDGER_SOURCE", str(source))
    monkeypatch.setenv("IMPACT_LEDGER_EXPORTS", str(tmp_path / "exports"))
    monkeypatch.setenv("IMPACT_LEDGER_ANALYTICS_DB", str(tmp_path / "analytics.duckdb"))
    return Pipeline(
        source, private, truth, date.fromisoformat(truth["start_date"]), date.fromisoformat(truth["end_date"])
    )


@pytest.fixture
def pipeline(e2e_world, full_db, tmp_path, monkeypatch) -> Pipeline:
    """Every day but the last two already materialised."""
    return _private_copy(full_db, e2e_world, tmp_path, monkeypatch)


@pytest.fixture
def latest_copy(e2e_world, latest_db, tmp_path, monkeypatch) -> Pipeline:
    """A private copy of `latest_db` (every day materialised) for a test that writes to it."""
    return _private_copy(latest_db, e2e_world, tmp_path, monkeypatch)


# daily_db's runs, as offsets from the incident: the incident's days one at a time (alerts must follow them day by
# day), a catch-up run in the middle (a ranged run after daily ones and a daily one after it), the last day alone
DAILY_RUNS = ((0, 0), (1, 1), (2, 2), (3, 5), (6, 6))


@pytest.fixture(scope="session")
def daily_instance():
    """The Dagster instance of `daily_db`'s runs: their materialisation events and metadata."""
    from orchestration.dagster_storage import ephemeral_instance

    with ephemeral_instance() as instance:
        yield instance


@pytest.fixture(scope="session")
def daily_db(e2e_world, history_db, daily_instance, tmp_path_factory):
    """history_db plus full_db's seven backfilled days in the runs DAILY_RUNS names (days from the incident)."""
    source, truth = e2e_world
    db = tmp_path_factory.mktemp("daily") / "warehouse.duckdb"
    shutil.copy(history_db, db)
    incident = date.fromisoformat(truth["incident"]["start_date"])
    for first, last in DAILY_RUNS:
        _materialize(source, db, incident + timedelta(days=first), incident + timedelta(days=last), daily_instance)
    return db


@pytest.fixture
def daily_runs(e2e_world, daily_db) -> Pipeline:
    """Read-only view of `daily_db`: seven days from the incident, in DAILY_RUNS' runs."""
    source, truth = e2e_world
    return Pipeline(
        source, daily_db, truth, date.fromisoformat(truth["start_date"]), date.fromisoformat(truth["end_date"])
    )
