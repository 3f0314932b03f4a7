"""A throw-away PostgreSQL 15 server per session, and a small generated world whose business tables live in it.

Missing PostgreSQL binaries fail these tests (pg_server.PostgresUnavailable), never skip them: CI runs on the
same image, which has them.
"""

import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from orchestration.lib.synthetic_world import WorldConfig, generate_world
from tests.postgres.pg_server import start_server

# Small: two materialisations of it take about a minute each. Dirty rows stay (duplicate orders are quarantined
# from the database as from files).
PG_WORLD = WorldConfig(days=24, users=2_000, seed=4, predictions_per_day=300)
# The business tables an operational database holds; the model logs stay files.
DB_TABLES = ("users", "experiments", "experiment_variants", "assignments", "sessions", "orders")
MODEL_TABLES = ("predictions", "labels", "feedback")


@pytest.fixture(scope="session")
def pg():
    # Not pytest's tmp_path: its parents are private to root, and the server runs as the postgres OS user.
    tmp = Path(tempfile.mkdtemp(prefix="impact-ledger-pg-"))
    server = start_server(tmp)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def world_table(source: Path, table: str) -> pd.DataFrame:
    """Every file of one table of a generated world, as one frame (the rows exactly as written)."""
    files = sorted((source / table).glob("*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


@pytest.fixture(scope="session")
def pg_world(pg, tmp_path_factory):
    """The world's files, and its business tables loaded into PostgreSQL as they are (pandas to_sql)."""
    source = tmp_path_factory.mktemp("pg_world") / "world"
    truth = generate_world(source, PG_WORLD, progress=None)
    engine = sa.create_engine(pg.url())
    try:
        for table in DB_TABLES:
            world_table(source, table).to_sql(
                table, engine, index=False, if_exists="replace", method="multi", chunksize=5_000
            )
    finally:
        engine.dispose()
    return source, truth
