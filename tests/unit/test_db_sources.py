"""Database and lake sources without a server: SQLite through the same dlt extraction, checked by hand.

(tests/postgres runs the same code against a real PostgreSQL 15 and the whole pipeline.)
"""

from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from orchestration.lib.contract import ContractError
from orchestration.lib.db_sources import SourceError, extract_days, inspect_database, masked_url, source_of
from orchestration.lib.project_config import ConfigError, DatabaseSource, LoadedConfig, parse_config
from orchestration.lib.raw_loader import load_days

# (order_id, ordered_at): two on the first day (one at its first microsecond), one at the last second of
# the second day, one at midnight of the third day (the third day's, not the second's), none on the fourth.
ORDERS = [
    ("o1", "2026-01-01 00:00:00"),
    ("o2", "2026-01-01 13:30:00"),
    ("o3", "2026-01-02 23:59:59"),
    ("o4", "2026-01-03 00:00:00"),
]
D1, D2, D3, D4 = (date(2026, 1, d) for d in (1, 2, 3, 4))


@pytest.fixture
def shop(tmp_path) -> str:
    """A SQLite shop database with users and orders (an extra column `channel` is kept as the source has it)."""
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE users (user_id TEXT, signup_at TIMESTAMP, country TEXT)"))
        conn.execute(
            sa.text("INSERT INTO users VALUES ('u1', '2025-12-01 00:00:00', 'DE'), ('u2', '2025-12-02 00:00:00', 'FR')")
        )
        conn.execute(
            sa.text(
                "CREATE TABLE orders (order_id TEXT, user_id TEXT, session_id TEXT, ordered_at TIMESTAMP, "
                "revenue FLOAT, status TEXT, channel TEXT)"
            )
        )
        for i, (oid, at) in enumerate(ORDERS):
            conn.execute(
                sa.text("INSERT INTO orders VALUES (:o, 'u1', NULL, :t, :r, 'completed', 'web')"),
                {"o": oid, "t": at + ".000000", "r": 10.0 + i},
            )
    engine.dispose()
    return url


def _ids(path: Path) -> list[str]:
    return sorted(pq.read_table(path).column("order_id").to_pylist())


def test_a_table_is_split_into_one_file_per_day_of_its_time_column(shop, tmp_path):
    cache = tmp_path / "cache"
    out = extract_days("orders", DatabaseSource(url=shop, table="orders"), [D1, D2, D3, D4], cache)
    assert [(e.day, e.rows) for e in out] == [(D1, 2), (D2, 1), (D3, 1), (D4, 0)]
    assert _ids(cache / "orders" / "orders_2026-01-01.parquet") == ["o1", "o2"]
    assert _ids(cache / "orders" / "orders_2026-01-02.parquet") == ["o3"]
    assert _ids(cache / "orders" / "orders_2026-01-03.parquet") == ["o4"]
    assert (
        not (cache / "orders" / "orders_2026-01-04.parquet").exists() and out[3].note == "no source rows for this day"
    )
    # the source's columns as they are, extra ones too; nothing half-written left behind
    assert pq.read_table(cache / "orders" / "orders_2026-01-03.parquet").column_names == [
        "order_id",
        "user_id",
        "session_id",
        "ordered_at",
        "revenue",
        "status",
        "channel",
    ]
    assert sorted(p.name for p in (cache / "orders").iterdir()) == [f"orders_2026-01-0{d}.parquet" for d in (1, 2, 3)]


def test_a_window_reads_only_its_days_and_a_rerun_replaces_them(shop, tmp_path):
    cache = tmp_path / "cache"
    extract_days("orders", DatabaseSource(url=shop, table="orders"), [D2], cache)
    assert sorted(p.name for p in (cache / "orders").iterdir()) == ["orders_2026-01-02.parquet"]
    # the row is deleted at the source: the re-run removes the day's old file instead of loading it again
    engine = sa.create_engine(shop)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM orders WHERE order_id = 'o3'"))
    engine.dispose()
    out = extract_days("orders", DatabaseSource(url=shop, table="orders"), [D2], cache)
    assert out[0].rows == 0 and list((cache / "orders").iterdir()) == []


def test_a_snapshot_is_read_whole(shop, tmp_path):
    out = extract_days("users", DatabaseSource(url=shop, table="users"), [D3], tmp_path)
    assert out[0].day is None and out[0].rows == 2
    assert pq.read_table(tmp_path / "users" / "users.parquet").column("user_id").to_pylist() == ["u1", "u2"]


def test_a_query_gets_the_days_window_and_what_it_returns_lands_in_that_day(shop, tmp_path):
    # a window one day too wide: o1 and o2 (the day before) come back in D2's file too
    query = "SELECT * FROM orders WHERE ordered_at >= datetime(:day_start, '-1 day') AND ordered_at < :day_end"
    out = extract_days("orders", DatabaseSource(url=shop, query=query), [D2], tmp_path)
    assert out[0].rows == 3 and _ids(tmp_path / "orders" / "orders_2026-01-02.parquet") == ["o1", "o2", "o3"]
    # ... which the loader quarantines as outside the day, as for any dated file
    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA raw; CREATE TABLE raw.users AS SELECT 'u1' AS user_id")
        report = load_days(conn, "orders", tmp_path, [D2])[0]
        assert (report.rows_read, report.rows_loaded) == (3, 1)
        assert report.quarantine_reasons == {"ordered_at outside partition day 2026-01-02": 2}


def test_a_query_without_the_day_parameters_is_filtered_on_the_time_column(shop, tmp_path):
    query = "SELECT order_id, user_id, session_id, ordered_at, revenue * 2 AS revenue, status FROM orders"
    out = extract_days("orders", DatabaseSource(url=shop, query=query), [D1, D4], tmp_path)
    assert [(e.day, e.rows) for e in out] == [(D1, 2), (D4, 0)]
    assert pq.read_table(tmp_path / "orders" / "orders_2026-01-01.parquet").column("revenue").to_pylist() == [
        20.0,
        22.0,
    ]


def test_a_missing_column_or_table_names_the_database_table(shop, tmp_path):
    engine = sa.create_engine(shop)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE orders_old AS SELECT order_id, user_id, ordered_at, status, revenue AS amount FROM orders"
            )
        )
    engine.dispose()
    # said of the database table, not of "the file" (a trial's query read "the file's other columns: outcome")
    with pytest.raises(
        ContractError,
        match=r"database table 'orders_old' at sqlite:.*: table 'orders' is missing "
        r"required column 'revenue'.*; the database table's other columns: amount: one of them renamed\?",
    ):
        extract_days("orders", DatabaseSource(url=shop, table="orders_old"), [D1], tmp_path)
    with pytest.raises(SourceError, match="database table 'nope' .* does not exist"):
        extract_days("orders", DatabaseSource(url=shop, table="nope"), [D1], tmp_path)
    assert not list((tmp_path / "orders").glob("*.parquet"))


def test_the_password_comes_from_the_environment_only(shop, tmp_path, monkeypatch):
    monkeypatch.delenv("SHOP_PW", raising=False)
    spec = DatabaseSource(url="postgresql://app@127.0.0.1:1/shop", password_env="SHOP_PW", table="orders")
    with pytest.raises(SourceError, match="environment variable SHOP_PW .* not set"):
        extract_days("orders", spec, [D1], tmp_path)
    with pytest.raises(ConfigError) as caught:
        parse_config({"sources": {"orders": {"database": {"url": "postgresql://app:hunter2@db/shop", "table": "o"}}}})
    assert "hunter2" not in str(caught.value) and "app:***@db" in str(caught.value)
    assert masked_url("postgresql://app:hunter2@db:5432/shop") == "postgresql://app:***@db:5432/shop"


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"orderz": {"path": "x"}}, "unknown table"),
        ({"orders": {}}, "either path"),
        ({"orders": {"path": "x", "database": {"url": "sqlite://", "table": "o"}}}, "either path"),
        ({"orders": {"database": {"url": "sqlite://"}}}, "either table or query"),
        ({"orders": {"database": {"url": "sqlite://", "table": "o", "query": "SELECT 1"}}}, "either table or query"),
        ({"users": {"database": {"url": "sqlite://", "table": "u", "time_column": "signup_at"}}}, "snapshot"),
        ({"orders": {"database": {"url": "not a url", "table": "o"}}}, "not a SQLAlchemy URL"),
    ],
)
def test_bad_sources_are_config_errors_naming_the_key(raw, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({"sources": raw})


def test_each_table_resolves_to_its_own_source(tmp_path, monkeypatch):
    monkeypatch.setenv("IMPACT_LEDGER_SOURCE", str(tmp_path / "landing"))
    monkeypatch.setenv("IMPACT_LEDGER_DB", str(tmp_path / "wh" / "warehouse.duckdb"))
    monkeypatch.delenv("IMPACT_LEDGER_LANDING_CACHE", raising=False)
    config = LoadedConfig(
        parse_config(
            {
                "sources": {
                    "predictions": {"path": "lake/model_logs"},
                    "labels": {"path": str(tmp_path / "abs")},
                    "orders": {"database": {"url": "postgresql://app@db:5432/shop", "table": "public.orders"}},
                }
            }
        ),
        tmp_path / "project" / "impact_ledger.yml",
    )
    assert source_of("predictions", config).root == tmp_path / "project" / "lake" / "model_logs"  # beside the file
    assert source_of("labels", config).root == tmp_path / "abs"
    assert (source_of("users", config).kind, source_of("users", config).root) == ("landing", tmp_path / "landing")
    orders = source_of("orders", config)
    assert (orders.kind, orders.root) == ("database", tmp_path / "wh" / "landing_cache")
    assert orders.label == "database table 'public.orders' at postgresql://app@db:5432/shop"
    explained = orders.explain(ContractError("x.parquet: bad"))
    assert explained.startswith("x.parquet: bad") and orders.label in explained


def test_a_database_table_without_rows_is_present_not_absent(tmp_path):
    # a trial's labels table in PostgreSQL with no row yet: progress said "absent from the source: loaded empty"
    from orchestration.lib.db_sources import NO_ROWS_IN_DATABASE, present_in_database
    from orchestration.lib.raw_loader import ABSENT

    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    with sa.create_engine(url).begin() as conn:
        conn.execute(sa.text("CREATE TABLE labels (prediction_id TEXT, label INTEGER, labeled_at TIMESTAMP, "
                             "label_source TEXT)"))  # fmt: skip
    cache = tmp_path / "cache"
    extracts = extract_days("labels", DatabaseSource(url=url, table="labels"), [D1, D2], cache)
    assert [e.rows for e in extracts] == [0, 0]
    with duckdb.connect() as conn:
        reports = load_days(conn, "labels", cache, [D1, D2])
    assert all(r.note.startswith(ABSENT) for r in reports)  # the loader alone sees no file
    assert [r.note for r in present_in_database(reports)] == [NO_ROWS_IN_DATABASE] * 2


def test_inspect_reports_columns_days_and_volumes(shop):
    seen = inspect_database(DatabaseSource(url=shop, table="orders"), "orders")
    assert seen["missing"] == [] and "channel" in seen["columns"] and seen["rows"] == 4
    assert seen["rows_per_day"] == {D1: 2, D2: 1, D3: 1}
    assert (seen["first_day"], seen["last_day"]) == (D1, D3)


def test_dlt_runs_without_telemetry():
    import os

    import orchestration.lib.db_sources  # noqa: F401 - sets the default before dlt is imported

    assert os.environ["RUNTIME__DLTHUB_TELEMETRY"] == "false"


def test_the_day_of_aware_timestamps_is_the_projects(tmp_path, monkeypatch):
    import pyarrow as pa

    from orchestration.lib.db_sources import _days

    # 23:30 at -05:00 is 04:30 UTC the next day; arrow stores the instant, the day is the project's zone's (UTC)
    at = pa.array([datetime(2026, 1, 2, 4, 30)], pa.timestamp("us", "UTC")).cast(pa.timestamp("us", "America/New_York"))
    assert _days(at).to_pylist() == [date(2026, 1, 2)]
    assert _days(pa.array([date(2026, 1, 5)], pa.date32())).to_pylist() == [date(2026, 1, 5)]
    naive = pa.array([datetime(2026, 1, 1) + timedelta(hours=23, minutes=59)], pa.timestamp("us"))
    assert _days(naive).to_pylist() == [D1]
    # timezone: America/New_York: the instant's New York day; a naive time is New York's already
    (tmp_path / "p.yml").write_text("timezone: America/New_York\n")
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(tmp_path / "p.yml"))
    assert _days(at).to_pylist() == [date(2026, 1, 1)] and _days(naive).to_pylist() == [D1]


def test_init_profiles_a_database_table_and_a_lake_folder_and_keeps_the_sources(shop, tmp_path, monkeypatch):
    import pandas as pd
    import yaml

    from orchestration.lib.project_init import describe, infer, render

    landing, lake = tmp_path / "landing", tmp_path / "lake"
    (landing / "users").mkdir(parents=True)
    pd.DataFrame({"user_id": ["u1", "u2"], "signup_at": pd.to_datetime(["2025-12-01", "2025-12-02"])}).to_parquet(
        landing / "users" / "users.parquet"
    )
    (lake / "predictions").mkdir(parents=True)
    pd.DataFrame(
        {
            "prediction_id": ["p1", "p2", "p3"],
            "model_id": "fraud",
            "model_version": "v1",
            "user_id": "u1",
            "predicted_at": pd.to_datetime(["2026-01-01 01:00", "2026-01-01 02:00", "2026-01-02 03:00"]),
            "score": [0.1, 0.7, 0.9],
        }
    ).to_parquet(lake / "predictions" / "predictions.parquet")
    config = tmp_path / "impact_ledger.yml"
    config.write_text(
        yaml.safe_dump(
            {"sources": {"orders": {"database": {"url": shop, "table": "orders"}}, "predictions": {"path": "lake"}}}
        )
    )
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(config))
    inf = infer(landing)
    orders = inf.tables["orders"]
    # by hand from ORDERS: 2, 1, 1 rows on three calendar days
    assert (orders.rows, orders.first_day, orders.last_day, orders.days) == (4, D1, D3, 3)
    assert (orders.daily_min, orders.daily_median, orders.daily_max) == (1, 1.0, 2)
    assert [m.model_id for m in inf.models] == ["fraud"] and inf.tables["predictions"].rows == 3
    lines = "\n".join(describe(inf))
    assert (
        "orders: 4 rows (database table 'orders' at sqlite:" in lines
        and "predictions: 3 rows in 1 file(s) (lake folder" in lines
    )
    written = yaml.safe_load(render(inf))
    assert (
        parse_config(written).sources
        == parse_config({"sources": yaml.safe_load(config.read_text())["sources"]}).sources
    )


def test_the_readme_example_is_a_valid_project_file():
    import re

    import yaml

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Database and lake sources", 1)[1]
    example = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    config = parse_config(yaml.safe_load(example))
    assert config.sources["orders"].database.query and config.sources["predictions"].path == "/lake/model_logs"
    assert config.sources["users"].database.password_env == "SHOP_DB_PASSWORD"


def test_the_first_day_of_a_table_or_a_query_is_one_min_query(shop, tmp_path, monkeypatch):
    # a bare materialize's first run starts there: ORDERS's first row is at 2026-01-01 00:00:00
    from orchestration.lib.db_sources import _day_of, database_first_day

    assert database_first_day("orders", DatabaseSource(url=shop, table="orders")) == D1
    windowed = "SELECT * FROM orders WHERE ordered_at >= :day_start AND ordered_at < :day_end AND order_id <> 'o1'"
    assert database_first_day("orders", DatabaseSource(url=shop, query=windowed)) == D1  # o2, 13:30 that day
    later = "SELECT * FROM orders WHERE order_id IN ('o3', 'o4')"  # no day parameters: filtered on ordered_at
    assert database_first_day("orders", DatabaseSource(url=shop, query=later)) == D2
    empty = "SELECT * FROM orders WHERE order_id = 'none'"
    assert database_first_day("orders", DatabaseSource(url=shop, query=empty)) is None
    # an aware time (PostgreSQL's timestamptz) is placed on the project's day: 04:30 UTC is 23:30 in New York
    (tmp_path / "p.yml").write_text("timezone: America/New_York\n")
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(tmp_path / "p.yml"))
    from zoneinfo import ZoneInfo

    assert _day_of(datetime(2026, 1, 2, 4, 30, tzinfo=ZoneInfo("UTC"))) == D1
    assert _day_of(datetime(2026, 1, 2, 4, 30)) == D2 and _day_of(D3) == D3 and _day_of(None) is None


def test_a_days_rows_in_the_database_are_counted_on_sqlite_too(shop):
    # the change check's grouped query: SQLite keeps times as text, and CAST(... AS DATE) read the year alone
    from orchestration.lib.db_sources import DayDigest, database_day_digests

    # ORDERS's revenues are 10, 11, 12, 13 in order: o1 and o2 on D1, o3 at D2's last second, o4 at D3's midnight
    per_day = {
        D1: DayDigest(2, {"revenue": 21.0}),
        D2: DayDigest(1, {"revenue": 12.0}),
        D3: DayDigest(1, {"revenue": 13.0}),
    }
    assert database_day_digests("orders", DatabaseSource(url=shop, table="orders"), D1, D4) == per_day
    query = "SELECT * FROM orders WHERE ordered_at >= :day_start AND ordered_at < :day_end"
    assert database_day_digests("orders", DatabaseSource(url=shop, query=query), D1, D4) == per_day
    assert database_day_digests("orders", DatabaseSource(url=shop, table="orders"), D2, D2) == {D2: per_day[D2]}
