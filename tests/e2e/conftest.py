"""A small generated world materialised through Dagster into a temp warehouse, shared per session."""

import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from orchestration.lib.synthetic_world import WorldConfig, generate_world

# Big enough that a 95% CI reliably covers the planted lift, small enough to run in seconds.
E2E_WORLD = WorldConfig(days=32, users=20_000, seed=3, predictions_per_day=500)


@dataclass
class Pipeline:
    source: Path
    db: Path
    truth: dict
    first: date
    last: date

    def query(self, sql: str, params=None):
        with duckdb.connect(str(self.db), read_only=True) as conn:
            return conn.execute(sql, params or []).df()

    def run(self, first: date, last: date | None = None):
        from orchestration.defs.runs import materialize_days

        return materialize_days(first, last or first)


@pytest.fixture(scope="session")
def e2e_world(tmp_path_factory):
    out = tmp_path_factory.mktemp("e2e_world")
    return out, generate_world(out, E2E_WORLD, progress=None)


@pytest.fixture(scope="session")
def history_db(e2e_world, tmp_path_factory):
    """Every day but the last two, materialised in one run (a backfill)."""
    source, truth = e2e_world
    db = tmp_path_factory.mktemp("history") / "warehouse.duckdb"
    first, last = date.fromisoformat(truth["start_date"]), date.fromisoformat(truth["end_date"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IMPACT_LEDGER_DB", str(db))
        mp.setenv("IMPACT_LEDGER_SOURCE", str(source))
        from orchestration.defs.runs import materialize_days

        outcome = materialize_days(first, last - timedelta(days=2))
    assert outcome.success, outcome.failures
    return db


@pytest.fixture
def pipeline(e2e_world, history_db, tmp_path, monkeypatch) -> Pipeline:
    """A private copy of the warehouse with history, pointed at by the environment."""
    source, truth = e2e_world
    db = tmp_path / "warehouse.duckdb"
    shutil.copy(history_db, db)
    monkeypatch.setenv("IMPACT_LEDGER_DB", str(db))
    monkeypatch.setenv("IMPACT_LEDGER_SOURCE", str(source))
    return Pipeline(source, db, truth, date.fromisoformat(truth["start_date"]), date.fromisoformat(truth["end_date"]))
