"""Raw tables from a real PostgreSQL 15 (extracted with dlt) and a lake folder, mixed with the landing zone.

The oracle of the happy path is the file-only run of the same generated world: every table the pipeline
builds must be identical (EXCEPT ALL both ways), raw tables but for the file each row was read from.
Bad sources (unreachable, wrong password, a missing column, a query returning another day's rows, a
failing extraction) each give one clear error or a quarantine, and load nothing half.
"""

import logging
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import sqlalchemy as sa
import yaml

from tests.postgres.conftest import DB_TABLES, MODEL_TABLES

from tests.warehouse_diff import base_tables, rows_only_in_each

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DEMO = Path(__file__).resolve().parents[2] / "expectations" / "demo.yml"
PASSWORD_ENV = "SHOP_DB_PASSWORD"
# where a row was read from differs by design (a file of the world, or a day extract of the database)
WHERE_READ = ["_source_file", "_source_row"]
# when a run wrote a row differs by design (the two runs are not simultaneous)
WHEN_BUILT = ["built_at"]


def _config(tmp: Path, sources: dict) -> Path:
    """The demo's project file plus ``sources``."""
    raw = yaml.safe_load(DEMO.read_text())
    raw["sources"] = sources
    path = tmp / "impact_ledger.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _db_sources(pg, tables=DB_TABLES, **overrides) -> dict:
    url = pg.url(with_password=False)
    out = {t: {"database": {"url": url, "password_env": PASSWORD_ENV, "table": t}} for t in tables}
    for table, spec in overrides.items():
        out[table] = {"database": {"url": url, "password_env": PASSWORD_ENV, **spec}}
    return out


def _point(monkeypatch, tmp: Path, source: Path, config: Path) -> Path:
    db = tmp / "warehouse.duckdb"
    for var, value in (
        ("IMPACT_LEDGER_DB", db),
        ("IMPACT_LEDGER_SOURCE", source),
        ("IMPACT_LEDGER_CONFIG", config),
        ("IMPACT_LEDGER_EXPORTS", tmp / "exports"),
        ("IMPACT_LEDGER_ANALYTICS_DB", tmp / "analytics.duckdb"),
    ):
        monkeypatch.setenv(var, str(value))
    return db


# ------------------------------------------------------------------ happy path: marts equal a file-only run


@pytest.fixture(scope="session")
def file_only_db(pg_world, tmp_path_factory):
    from orchestration.runs import materialize_days

    source, truth = pg_world
    tmp = tmp_path_factory.mktemp("pg_file_only")
    with pytest.MonkeyPatch.context() as mp:
        _point(mp, tmp, source, DEMO)
        outcome = materialize_days(date.fromisoformat(truth["start_date"]), date.fromisoformat(truth["end_date"]))
    assert outcome.success, outcome.failures
    return tmp / "warehouse.duckdb"


@pytest.fixture(scope="session")
def mixed_db(pg, pg_world, tmp_path_factory):
    """Business tables from PostgreSQL, the model logs from a lake folder, model_costs from the landing zone."""
    from orchestration.runs import materialize_days

    source, truth = pg_world
    tmp = tmp_path_factory.mktemp("pg_mixed")
    lake, landing = tmp / "lake", tmp / "landing"
    for table in MODEL_TABLES:
        shutil.copytree(source / table, lake / table)
    shutil.copytree(source / "model_costs", landing / "model_costs")
    sources = _db_sources(pg)
    sources.update({t: {"path": "lake"} for t in MODEL_TABLES})  # relative: to the project file's folder
    config = _config(tmp, sources)
    with pytest.MonkeyPatch.context() as mp:
        db = _point(mp, tmp, landing, config)
        mp.setenv(PASSWORD_ENV, pg.password)
        outcome = materialize_days(date.fromisoformat(truth["start_date"]), date.fromisoformat(truth["end_date"]))
    assert outcome.success, outcome.failures
    return db


def test_marts_from_postgres_and_a_lake_equal_a_file_only_run(file_only_db, mixed_db, pg_world):
    _, truth = pg_world
    tables = base_tables(file_only_db)
    assert tables == base_tables(mixed_db)
    assert {"marts.kpi_daily", "marts.model_health_daily", "attribution.experiment_results"} <= set(tables)
    with duckdb.connect() as conn:
        conn.execute(f"ATTACH '{file_only_db}' AS files (READ_ONLY)")
        conn.execute(f"ATTACH '{mixed_db}' AS mixed (READ_ONLY)")
        # the run read the database: day extracts of the business tables, files of the lake
        sources = dict(
            conn.execute(
                "SELECT 'orders', any_value(_source_file) FROM mixed.raw.orders UNION ALL "
                "SELECT 'predictions', any_value(_source_file) FROM mixed.raw.predictions"
            ).fetchall()
        )
        assert "landing_cache/orders/orders_" in sources["orders"]
        assert "/lake/predictions/" in sources["predictions"]
        # the duplicated orders the world plants are quarantined from the database as from files
        assert (
            conn.execute(
                "SELECT count(*) FROM mixed.raw_quarantine.orders WHERE _reason LIKE 'duplicate key%'"
            ).fetchone()[0]
            == truth["dirty_rows"]["orders"]["duplicate_key"]
        )
        # which files each day read differs by design (database tables have none recorded)
        for table in (t for t in tables if t != "quality.landing_files"):
            columns = [
                c
                for (c,) in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_catalog = 'files' "
                    "AND table_schema || '.' || table_name = ? ORDER BY ordinal_position",
                    [table],
                ).fetchall()
            ]
            listed = ", ".join(f'"{c}"' for c in columns if c not in WHERE_READ + WHEN_BUILT)
            select = lambda db: f"SELECT {listed} FROM {db}.{table}"  # noqa: E731
            only_files, only_mixed = rows_only_in_each(conn, select, "files", "mixed")
            rows = conn.execute(f"SELECT count(*) FROM files.{table}").fetchone()[0]
            assert (only_files, only_mixed) == (0, 0), (
                f"{table}: {only_files} rows only in the file run, {only_mixed} only with PostgreSQL (of {rows})"
            )
        assert conn.execute("SELECT count(*) FROM mixed.marts.kpi_daily").fetchone()[0] > 0


# ------------------------------------------------------------------ bad sources, through the raw assets


def _raw_run(tables: list[str], first: date, last: date):
    """Materialise only these raw assets for first..last (one run, as a backfill), as the job runs them."""
    from orchestration.defs.ingest.assets import build_raw_asset
    from orchestration.defs.resources import build_resources
    from orchestration.defs.partitions import RANGE_END_TAG, RANGE_START_TAG

    resources = {"duckdb": build_resources()["duckdb"]}
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [build_raw_asset(t) for t in tables],
            resources=resources,
            instance=instance,
            raise_on_error=False,
            tags={RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()},
        )
        logs = "\n".join(str(e.user_message) + " " + repr(e.dagster_event) for e in instance.all_logs(result.run_id))
    failures = []
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            err = event.event_specific_data.error
            failures.append(err.message + "".join(err.stack) + (err.cause.message if err.cause else ""))
    return result, failures, logs


def _count(db: Path, sql: str, params=None) -> int:
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.execute(sql, params or []).fetchone()[0]


def _day(truth, offset: int) -> date:
    return date.fromisoformat(truth["start_date"]) + timedelta(days=offset)


def _pg_count(pg, sql: str, **params) -> int:
    engine = sa.create_engine(pg.url())
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar_one()
    finally:
        engine.dispose()


@pytest.fixture
def bad_source(pg, pg_world, tmp_path, monkeypatch):
    """Point a raw-only run at a project file with the given sources; the world's files as the landing zone."""
    source, truth = pg_world
    monkeypatch.setenv(PASSWORD_ENV, pg.password)

    def use(sources: dict) -> Path:
        return _point(monkeypatch, tmp_path, source, _config(tmp_path, sources))

    return use


def test_unreachable_server_is_one_error_naming_the_table_and_host(bad_source, pg, pg_world):
    import socket

    _, truth = pg_world
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql+psycopg2://app@127.0.0.1:{port}/shop"
    db = bad_source(
        {t: {"database": {"url": url, "password_env": PASSWORD_ENV, "table": t}} for t in ("orders", "sessions")}
    )
    result, failures, _ = _raw_run(["users", "orders"], _day(truth, 3), _day(truth, 3))
    assert not result.success and len(failures) == 1
    assert "raw.orders" in failures[0] and "table 'orders'" in failures[0]
    assert f"host 127.0.0.1 port {port}" in failures[0] and "Connection refused" in failures[0]
    # the run stops at the first table: the message names the others that wait on the same server
    assert "(tables sessions read from the same server too)" in failures[0]
    assert _count(db, "SELECT count(*) FROM raw.orders") == 0


def test_wrong_password_is_a_clear_error_and_no_secret_anywhere(bad_source, pg, pg_world, monkeypatch, capfd, caplog):
    _, truth = pg_world
    wrong = "Wr0ng-Secret-7f3c9a"
    db = bad_source(_db_sources(pg, ["orders"]))
    monkeypatch.setenv(PASSWORD_ENV, wrong)
    caplog.set_level(logging.DEBUG)
    result, failures, logs = _raw_run(["users", "orders"], _day(truth, 3), _day(truth, 3))
    assert not result.success and len(failures) == 1
    assert "password authentication failed" in failures[0] and "raw.orders" in failures[0]
    assert f"127.0.0.1:{pg.port}/shop" in failures[0]
    out, err = capfd.readouterr()
    for secret in (wrong, pg.password):
        for where, text in (
            ("failure", failures[0]),
            ("run logs", logs),
            ("stdout", out),
            ("stderr", err),
            ("log records", caplog.text),
        ):
            assert secret not in text, f"the password shows in the {where}"
    assert _count(db, "SELECT count(*) FROM raw.orders") == 0


def test_password_in_the_url_is_refused_without_showing_it(pg, tmp_path, monkeypatch):
    from orchestration.lib.project_config import ConfigError, load_config

    config = _config(tmp_path, {"orders": {"database": {"url": pg.url(), "table": "orders"}}})
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(config))
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert "sources.orders.database.url" in str(caught.value) and "password_env" in str(caught.value)
    assert pg.password not in str(caught.value)


def test_missing_column_names_the_database_table_and_loads_nothing(bad_source, pg, pg_world):
    _, truth = pg_world
    engine = sa.create_engine(pg.url())
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS orders_no_revenue"))
        conn.execute(
            sa.text(
                "CREATE TABLE orders_no_revenue AS SELECT order_id, user_id, session_id, ordered_at, status FROM orders"
            )
        )
    engine.dispose()
    db = bad_source(_db_sources(pg, ["users"], orders={"table": "orders_no_revenue"}))
    result, failures, _ = _raw_run(["users", "orders"], _day(truth, 2), _day(truth, 4))
    assert not result.success and len(failures) == 1
    assert "is missing required column 'revenue'" in failures[0]
    assert "database table 'orders_no_revenue'" in failures[0] and "table 'orders'" in failures[0]
    assert _count(db, "SELECT count(*) FROM raw.users") == 2_000  # the other table loaded, from PostgreSQL
    assert _count(db, "SELECT count(*) FROM raw.orders") + _count(db, "SELECT count(*) FROM raw_quarantine.orders") == 0


def test_query_returning_another_days_rows_has_them_quarantined(bad_source, pg, pg_world):
    _, truth = pg_world
    day = _day(truth, 5)
    # a query whose window starts a day early: the previous day's orders come back too
    query = (
        "SELECT * FROM orders WHERE ordered_at >= CAST(:day_start AS timestamp) - interval '1 day' "
        "AND ordered_at < :day_end"
    )
    db = bad_source(_db_sources(pg, ["users"], orders={"query": query}))
    result, failures, _ = _raw_run(["users", "orders"], day, day)
    assert result.success, failures
    start = datetime.combine(day, datetime.min.time())
    same_day = _pg_count(
        pg,
        "SELECT count(DISTINCT order_id) FROM orders WHERE ordered_at >= :a AND ordered_at < :b",
        a=start,
        b=start + timedelta(days=1),
    )
    rows_same_day = _pg_count(
        pg,
        "SELECT count(*) FROM orders WHERE ordered_at >= :a AND ordered_at < :b",
        a=start,
        b=start + timedelta(days=1),
    )
    day_before = _pg_count(
        pg,
        "SELECT count(*) FROM orders WHERE ordered_at >= :a AND ordered_at < :b",
        a=start - timedelta(days=1),
        b=start,
    )
    assert day_before > 0
    assert _count(db, "SELECT count(*) FROM raw.orders") == same_day
    assert _count(db, "SELECT count(*) FROM raw.orders WHERE CAST(ordered_at AS DATE) <> ?", [day]) == 0
    reason = f"ordered_at outside partition day {day.isoformat()}"
    assert _count(db, "SELECT count(*) FROM raw_quarantine.orders WHERE _reason = ?", [reason]) == day_before
    assert _count(db, "SELECT count(*) FROM raw_quarantine.orders") == day_before + rows_same_day - same_day


def test_a_timestamptz_table_is_split_into_the_projects_days(bad_source, pg, pg_world, tmp_path):
    # timezone: Europe/Berlin: a day's window and each row's day are Berlin's (the session's zone), and the
    # rows land as Berlin wall-clock times, as a file's would (the oracle: pandas' tz_convert of the world's rows)
    import pandas as pd

    from tests.postgres.conftest import world_table

    source, truth = pg_world
    day = _day(truth, 5)
    engine = sa.create_engine(pg.url())
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS orders_tz"))
            conn.execute(
                sa.text(
                    "CREATE TABLE orders_tz AS SELECT order_id, user_id, session_id, "
                    "ordered_at AT TIME ZONE 'UTC' AS ordered_at, revenue, status FROM orders"
                )
            )
    finally:
        engine.dispose()
    db = bad_source(_db_sources(pg, ["users"], orders={"table": "orders_tz"}))
    config = tmp_path / "impact_ledger.yml"
    config.write_text(yaml.safe_dump({**yaml.safe_load(config.read_text()), "timezone": "Europe/Berlin"}))
    result, failures, _ = _raw_run(["users", "orders"], day, day)
    assert result.success, failures
    orders = world_table(source, "orders")
    utc = pd.to_datetime(orders["ordered_at"]).dt.tz_localize("UTC")
    berlin = utc.dt.tz_convert("Europe/Berlin")
    # the day's Berlin rows include some of the UTC day before (its 22:00-24:00 UTC): a UTC window would miss them
    assert ((berlin.dt.date == day) & (utc.dt.date != day)).any()
    orders = orders.assign(wall=berlin.dt.tz_localize(None))[berlin.dt.date == day]
    want = sorted(zip(orders["order_id"], orders["wall"].dt.to_pydatetime(), strict=True))
    with duckdb.connect(str(db), read_only=True) as conn:
        got = conn.execute(
            "SELECT order_id, ordered_at FROM raw.orders UNION ALL SELECT order_id, ordered_at FROM raw_quarantine.orders"
        ).fetchall()
    assert len(want) > 10 and sorted(got) == want  # every Berlin-day row, read once, none of another day's
    assert _count(db, "SELECT count(*) FROM raw_quarantine.orders WHERE _reason LIKE '%outside partition day%'") == 0


def test_an_extraction_failing_on_one_day_loads_no_day_of_the_run(bad_source, pg, pg_world):
    _, truth = pg_world
    first, bad = _day(truth, 6), _day(truth, 7)
    # the query fails on the second day only (division by zero in the database)
    query = (
        f"SELECT *, 1 / (CASE WHEN CAST(:day_start AS date) = DATE '{bad.isoformat()}' THEN 0 ELSE 1 END) AS probe "
        "FROM orders WHERE ordered_at >= :day_start AND ordered_at < :day_end"
    )
    db = bad_source(_db_sources(pg, ["users"], orders={"query": query}))
    result, failures, _ = _raw_run(["users", "orders"], first, bad)
    assert not result.success and len(failures) == 1
    assert "division by zero" in failures[0] and "raw.orders" in failures[0]
    assert _count(db, "SELECT count(*) FROM raw.orders") + _count(db, "SELECT count(*) FROM raw_quarantine.orders") == 0
    # the same query on a good range loads (the first day alone)
    result, failures, _ = _raw_run(["users", "orders"], first, first)
    assert result.success, failures
    start = datetime.combine(first, datetime.min.time())
    assert _count(db, "SELECT count(*) FROM raw.orders") + _count(
        db, "SELECT count(*) FROM raw_quarantine.orders"
    ) == _pg_count(
        pg,
        "SELECT count(*) FROM orders WHERE ordered_at >= :a AND ordered_at < :b",
        a=start,
        b=start + timedelta(days=1),
    )


def test_init_inspects_a_postgres_table_with_sql(pg, pg_world, monkeypatch):
    from orchestration.lib.db_sources import inspect_database
    from orchestration.lib.project_config import DatabaseSource
    from tests.postgres.conftest import world_table

    source, _ = pg_world
    monkeypatch.setenv(PASSWORD_ENV, pg.password)
    seen = inspect_database(
        DatabaseSource(url=pg.url(with_password=False), password_env=PASSWORD_ENV, table="sessions"), "sessions"
    )
    frame = world_table(source, "sessions")  # the oracle: the rows as the world wrote them
    per_day = frame.groupby(frame["started_at"].dt.date).size()
    assert seen["missing"] == [] and seen["rows"] == len(frame)
    assert seen["rows_per_day"] == {d: int(n) for d, n in per_day.items()}
    assert (seen["first_day"], seen["last_day"]) == (per_day.index.min(), per_day.index.max())


def test_init_profiles_database_tables_as_it_profiles_the_same_tables_as_files(pg, pg_world, tmp_path, monkeypatch):
    from orchestration.lib.project_init import infer, materialize_command
    from tests.postgres.conftest import world_table

    source, truth = pg_world
    tables = (*DB_TABLES, "predictions", "labels")
    engine = sa.create_engine(pg.url())
    try:  # the model logs too, under their own names
        for table in ("predictions", "labels"):
            world_table(source, table).to_sql(f"ml_{table}", engine, index=False, if_exists="replace", chunksize=5_000)
    finally:
        engine.dispose()
    files = tmp_path / "files"
    for table in tables:
        shutil.copytree(source / table, files / table)
    empty = tmp_path / "landing"
    empty.mkdir()
    monkeypatch.setenv(PASSWORD_ENV, pg.password)

    def inferred(landing: Path, sources: dict):
        config = tmp_path / f"{landing.name}.yml"
        config.write_text(yaml.safe_dump({"sources": sources}))
        monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(config))
        inference = infer(landing)
        models = [
            (m.model_id, m.predictions, m.threshold, m.label_horizon_days, m.experiments) for m in inference.models
        ]
        attributes = [(a.column, a.distinct, a.proposed) for a in inference.attributes]
        rows = {name: t.rows for name, t in inference.tables.items()}
        return inference, (models, attributes, rows, inference.arms, inference.volume_holds, inference.users)

    from_files, expected = inferred(files, {})
    from_db, seen = inferred(
        empty, _db_sources(pg, predictions={"table": "ml_predictions"}, labels={"table": "ml_labels"})
    )
    assert seen == expected
    assert expected[0] and expected[1]  # models and attributes were found at all
    assert {t.source.split(" ")[0] for t in from_db.tables.values()} == {"database"}
    start, end = truth["start_date"], from_files.last_day.isoformat()
    assert materialize_command(from_db, Path("p.yml"), "in").endswith(f"--start {start} --end {end}")
    assert "--start" not in materialize_command(from_files, Path("p.yml"), "in")


def test_init_names_the_database_table_whose_values_its_type_refuses(pg, pg_world, tmp_path, monkeypatch):
    """Labels written yes/no in the database: init's review names the table (not the scratch files it profiled,
    gone when it ends) and the days holding such values."""
    from orchestration.lib.project_init import infer, review
    from tests.postgres.conftest import world_table

    source, _ = pg_world
    labels = world_table(source, "labels")
    labels["label"] = labels["label"].map({1: "yes", 0: "no"})
    engine = sa.create_engine(pg.url())
    try:
        labels.to_sql("labels_yes_no", engine, index=False, if_exists="replace", chunksize=5_000)
    finally:
        engine.dispose()
    landing = tmp_path / "landing"
    for table in ("predictions", "users"):
        shutil.copytree(source / table, landing / table)
    config = tmp_path / "sources.yml"
    config.write_text(yaml.safe_dump({"sources": _db_sources(pg, tables=(), labels={"table": "labels_yes_no"})}))
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(config))
    monkeypatch.setenv(PASSWORD_ENV, pg.password)

    [line] = [line for line in review(infer(landing)) if "labels must be 0 or 1" in line]
    days = labels["labeled_at"].dt.date.nunique()  # the oracle: every day's labels are words
    assert line.startswith(f"database table 'labels_yes_no' at {pg.url(with_password=False)} ({days} day(s) of rows)")
    assert f"{len(labels)} value(s) are not" in line and "stops at this table" in line
    assert "impact_ledger_init_" not in line


# ------------------------------------------------------------------ rows changed in the database after their day ran


def test_rows_inserted_deleted_or_updated_in_the_database_after_their_day_ran_are_named(
    pg, pg_world, mixed_db, monkeypatch, tmp_path
):
    # late outcome rows inserted for days already run, and a row deleted, went unnoticed: landing files are compared
    # with what was loaded, database sources were not; a claim's amount corrected in place kept the day's count
    # and was never seen (a trial's health-insurer claims)
    from orchestration.lib.db_sources import ChangedDay, changed_database_days
    from orchestration.lib.project_config import DatabaseSource

    _, truth = pg_world
    monkeypatch.setenv(PASSWORD_ENV, pg.password)
    engine = sa.create_engine(pg.url())
    try:
        with engine.begin() as conn:  # a copy: the shared world's orders stay as the other tests read them
            conn.execute(
                sa.text("DROP TABLE IF EXISTS orders_later; CREATE TABLE orders_later AS SELECT * FROM orders")
            )
    finally:
        engine.dispose()
    url = pg.url(with_password=False)
    as_table = DatabaseSource(url=url, password_env=PASSWORD_ENV, table="orders_later")
    as_query = DatabaseSource(url=url, password_env=PASSWORD_ENV, query="SELECT * FROM orders_later")
    run_first, run_last = _day(truth, 20), _day(truth, 23)  # a later run's own days are not "already run"
    with duckdb.connect(str(mixed_db), read_only=True) as conn:
        for source in (as_table, as_query):
            assert changed_database_days(conn, "orders", source, run_first, run_last) == []
    inserted, deleted, updated, retagged = _day(truth, 3), _day(truth, 5), _day(truth, 7), _day(truth, 9)
    loaded = {
        d: _count(mixed_db, "SELECT count(*) FROM raw.orders WHERE _partition_date = ?", [d])
        + _count(mixed_db, "SELECT count(*) FROM raw_quarantine.orders WHERE _partition_date = ?", [d])
        for d in (inserted, deleted, updated)
    }
    # UTC sessions, as the extraction's: a timestamptz's day is its UTC day
    engine = sa.create_engine(pg.url(), connect_args={"options": "-c timezone=UTC"})
    one_row = "ctid = (SELECT ctid FROM orders_later WHERE ordered_at::date = :d LIMIT 1)"
    try:
        with engine.begin() as conn:  # two rows again (duplicates: quarantined, still rows of the day) and one less
            day_revenue = "SELECT sum(revenue)::float8 FROM orders_later WHERE ordered_at::date = :d"
            revenue_before = conn.execute(sa.text(day_revenue), {"d": updated}).scalar_one()
            conn.execute(
                sa.text("INSERT INTO orders_later SELECT * FROM orders_later WHERE ordered_at::date = :d LIMIT 2"),
                {"d": inserted},
            )
            conn.execute(sa.text(f"DELETE FROM orders_later WHERE {one_row}"), {"d": deleted})
            # an amount corrected in place, and a status changed in place (text: not seen)
            conn.execute(sa.text(f"UPDATE orders_later SET revenue = revenue + 12.5 WHERE {one_row}"), {"d": updated})
            conn.execute(sa.text(f"UPDATE orders_later SET status = 'refunded' WHERE {one_row}"), {"d": retagged})
    finally:
        engine.dispose()
    expected = [
        ChangedDay(inserted, loaded[inserted] + 2, loaded[inserted]),
        ChangedDay(deleted, loaded[deleted] - 1, loaded[deleted]),
        ChangedDay(updated, loaded[updated], loaded[updated], (("revenue", revenue_before + 12.5, revenue_before),)),
    ]
    with duckdb.connect(str(mixed_db), read_only=True) as conn:
        for source in (as_table, as_query):
            found = changed_database_days(conn, "orders", source, run_first, run_last)
            assert [(c.day, c.rows_now, c.rows_loaded) for c in found] == [
                (c.day, c.rows_now, c.rows_loaded) for c in expected
            ]
            assert [bool(c.updated) for c in found] == [False, False, True]
            [(column, now, was)] = found[-1].updated
            assert column == "revenue"
            assert now == pytest.approx(revenue_before + 12.5, rel=1e-12)
            assert was == pytest.approx(revenue_before, rel=1e-12)
            assert found[-1].said().startswith("revenue's sum ")
        # the days of the run itself are its own: not reported
        assert changed_database_days(conn, "orders", as_table, inserted, updated) == []
        # a query whose amount PostgreSQL cannot cast to a float (a boolean): counts only, no error
        flagged = "SELECT order_id, user_id, session_id, ordered_at, revenue > 100 AS revenue, status FROM orders_later"
        by_count = DatabaseSource(url=url, password_env=PASSWORD_ENV, query=flagged)
        found = changed_database_days(conn, "orders", by_count, run_first, run_last)
        assert [(c.day, c.updated) for c in found] == [(inserted, ()), (deleted, ())]
    # what materialize's closing note reads: every database-sourced table of the project file
    from orchestration.cli import _changed_database_days, _changed_database_note

    config = _config(
        tmp_path, {"orders": {"database": {"url": url, "password_env": PASSWORD_ENV, "table": "orders_later"}}}
    )
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(config))
    monkeypatch.setenv("IMPACT_LEDGER_DB", str(mixed_db))
    changed = _changed_database_days(run_first, run_last)
    assert [(t, c.day) for t, c in changed] == [("orders", c.day) for c in expected]
    note = _changed_database_note(changed)
    assert f"orders {deleted} ({loaded[deleted] - 1} rows now, {loaded[deleted]} loaded)" in note
    assert (
        f"orders {updated} (revenue's sum {revenue_before + 12.5:,.2f} now, {revenue_before:,.2f} loaded (+12.5))"
        in note
    )
    assert f"run --start {inserted} --end " in note
