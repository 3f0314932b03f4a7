"""The raw layer on Spark (issue 17, item 3): the same landing days give the same raw and quarantine rows,
reasons and counts on both engines, and the same bad files the same ContractError.

The oracle is the DuckDB loader run on the same files; both are read through DuckDB (on Spark: its views
over the Parquet Spark wrote). One Spark session serves the module.
"""

from datetime import date

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from orchestration.lib.contract import COPY_REASON, TABLE_ORDER, ContractError
from orchestration.lib.raw_loader import load_days
from orchestration.lib.spark_raw import SCHEMAS
from tests.unit.test_raw_loader_strict import BAD_CSV, HEADER, parquet_bytes, put, row

pytestmark = [pytest.mark.spark]

D1, D2, D3 = date(2026, 9, 2), date(2026, 9, 3), date(2026, 9, 4)


def _csv(source, table, frame, day=None, gz=False):
    folder = source / table
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / ((f"{table}_{day}.csv" if day else f"{table}.csv") + ".gz" * gz), index=False)


def landing_zone(source):
    """Two days of a small world with a bad row of each kind the contract knows (CSV, gzipped CSV and Parquet)."""
    _csv(
        source,
        "users",
        pd.DataFrame(
            {
                "user_id": ["u1", "u2", "u3", "u3", None],
                "signup_at": ["2026-08-01 10:00:00", "2026-08-02T10:00:00Z", "2026-08-03 00:00:00+02:00"] * 1
                + ["2026-08-04 00:00:00", "2026-08-05 00:00:00"],
                "country": ["DE", "FR", None, "IT", "ES"],
            }
        ),
    )
    _csv(
        source,
        "experiments",
        pd.DataFrame(
            {
                "experiment_id": ["e1", "e2"],
                "model_id": ["m1", "m1"],
                "control_variant": ["control", "control"],
                "start_date": ["2026-09-01", "2026-09-05"],
                "end_date": ["2026-09-30", "2026-09-01"],  # e2 ends before it starts
            }
        ),
    )
    _csv(
        source,
        "experiment_variants",
        pd.DataFrame(
            {
                "experiment_id": ["e1", "e1", "e1"],
                "variant": ["control", "treatment", "treatment"],
                "expected_share": ["0.5", "0.5", "1.5"],
            }
        ),
    )
    for day, ids in ((D1, ["a1", "a2"]), (D2, ["a3", "a4", "a5"])):
        _csv(
            source,
            "assignments",
            pd.DataFrame(
                {
                    "experiment_id": ["e1"] * len(ids),
                    # D2: an unknown variant, a key twice in the day, a key of D1
                    "user_id": ["u3", "u3", "u1"] if day == D2 else ["u1", "u2"],
                    # 'Treatment': quarantined as unknown, its report naming 'treatment' on both engines
                    "variant": ["Treatment", "control", "control"] if day == D2 else ["control", "treatment"],
                    "assigned_at": [f"{day} 0{i}:00:00" for i in range(len(ids))],
                }
            ),
            day,
            gz=day == D2,  # one day's export gzipped
        )
    for day, ids in ((D1, ["p1", "p2", "p3"]), (D2, ["p1", "p4", "p5", "p6", "p6", "p7"])):
        n = len(ids)
        frame = pd.DataFrame(
            {
                "prediction_id": ids,
                "model_id": ["m1"] * (n - 1) + [None],
                "model_version": ["v1"] * n,
                "user_id": [f"u{i % 3 + 1}" for i in range(n)],
                "predicted_at": pd.to_datetime([f"{day} 0{i}:00" for i in range(n - 1)] + ["2026-08-01 00:00"]),
                "score": [0.1, 1.7, float("nan"), 0.4, 0.5, 0.6][:n],
                "threshold": [0.5] * n,
                "feature_device": ["ios", "web"] * (n // 2) + ["ios"] * (n % 2),
            }
        )
        if day == D1:  # a feature column first sent on D2
            frame = frame.drop(columns=["feature_device"])
        folder = source / "predictions"
        folder.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(folder / f"predictions_{day}.parquet", index=False)
    _csv(  # undated: placed by their time column
        source,
        "orders",
        pd.DataFrame(
            {
                # o4 twice with other values (a duplicate key); o1 and o2 (a negative revenue) copied exactly
                "order_id": ["o1", "o2", "o3", "o4", "o4", "o2", "o1"],
                "user_id": ["u1", "u2", "u3", "u1", "u1", "u2", "u1"],
                "session_id": [None, "s1", None, None, None, "s1", None],
                "ordered_at": [f"{D1} 10:00:00", f"{D1} 11:00:00", f"{D2} 10:00:00", f"{D2} 12:00:00", f"{D2} 13:00"]
                + [f"{D1} 11:00:00", f"{D1} 10:00:00"],
                "revenue": ["10.5", "-1", "3", "1e2", "7", "-1", "10.5"],
                "status": ["completed", "completed", "lost", "refunded", "completed", "completed", "completed"],
            }
        ),
    )


@pytest.fixture(scope="module")
def spark_session():
    from orchestration.lib.spark_session import spark

    return spark()


def on_engine(monkeypatch, engine: str, out) -> duckdb.DuckDBPyConnection:
    monkeypatch.setenv("IMPACT_LEDGER_ENGINE", engine)
    monkeypatch.setenv("IMPACT_LEDGER_SPARK_DIR", str(out / "spark"))
    out.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(out / "warehouse.duckdb"))


def on_both_engines(tmp_path, load) -> dict:
    """``load(conn)`` on a warehouse of each engine, DuckDB's first (the oracle): engine -> what it returned."""
    results = {}
    for engine in ("duckdb", "spark"):
        with pytest.MonkeyPatch.context() as mp, on_engine(mp, engine, tmp_path / engine) as conn:
            results[engine] = load(conn)
    return results


# the tables the landing zone has (in load order: referential rules read the earlier ones)
LANDED = [
    t
    for t in TABLE_ORDER
    if t in ("users", "experiments", "experiment_variants", "assignments", "predictions", "orders")
]


def load_everything(conn, source) -> dict:
    reports = {}
    for table in LANDED:
        days = [D2] if table in ("users", "experiments", "experiment_variants") else [D1, D2]
        reports[table] = [
            (r.partition_date, r.rows_read, r.rows_loaded, r.rows_quarantined, r.quarantine_reasons, r.note)
            for r in load_days(conn, table, source, days)
        ]
    return reports


def frames(conn) -> dict[str, pd.DataFrame]:
    out = {}
    for schema in ("raw", "raw_quarantine"):
        for table in LANDED:
            frame = conn.execute(f"SELECT * FROM {schema}.{table} ORDER BY _partition_date, _source_row").df()
            out[f"{schema}.{table}"] = frame
    return out


def test_the_same_days_load_and_quarantine_the_same_rows_on_both_engines(tmp_path, monkeypatch, spark_session):
    from orchestration.lib import spark_raw

    source = tmp_path / "landing"
    landing_zone(source)
    # the tables loaded for two days are checked and landed in one pass (raw_loader.checked_days_sql), not by day
    one_day_at_a_time = []
    land = spark_raw._land
    monkeypatch.setattr(
        spark_raw, "_land", lambda sql, contract, *a: one_day_at_a_time.append(contract.name) or land(sql, contract, *a)
    )

    def load(conn):
        reports = load_everything(conn, source)
        assert not {"assignments", "predictions", "orders"} & set(one_day_at_a_time)
        # loading a day again replaces it (idempotent)
        again = load_days(conn, "predictions", source, [D2])[0]
        assert again.rows_read == reports["predictions"][-1][1]
        return reports, frames(conn)

    results = on_both_engines(tmp_path, load)
    (duck_reports, duck), (spark_reports, spark) = results["duckdb"], results["spark"]
    assert spark_reports == duck_reports
    for table, reports in duck_reports.items():
        for _, read, loaded, quarantined, reasons, _ in reports:
            assert read == loaded + quarantined and sum(reasons.values()) == quarantined, table
    # the world has a bad row of each kind: every one of them is quarantined on both engines
    reasons = set(duck["raw_quarantine.predictions"]["_reason"])
    assert {"score outside [0, 1]", "null model_id", "duplicate key (prediction_id), first seen on 2026-09-02"} <= {
        part for r in reasons for part in r.split("; ")
    }
    assert "unknown variant for experiment" in set(duck["raw_quarantine.assignments"]["_reason"])
    # an exact copy is quarantined as one, whatever else it breaks (its original says that)
    orders = duck["raw_quarantine.orders"].set_index("order_id")["_reason"]
    assert orders.groupby(level=0).agg(sorted).to_dict() == {
        "o1": [COPY_REASON],
        "o2": [COPY_REASON, "revenue below 0 (or NaN)"],
        "o3": ["status not in (completed, cancelled, refunded)"],
        "o4": ["duplicate key (order_id)"],
    }, orders
    assert "did you mean 'treatment'?" in str(spark_reports["assignments"])
    assert set(spark) == set(duck)
    for name, want in duck.items():
        got = spark[name]
        assert list(got.columns) == list(want.columns), name
        assert [str(t) for t in got.dtypes] == [str(t) for t in want.dtypes], name
        pd.testing.assert_frame_equal(got, want, obj=name)
    # Spark wrote the days as date-partitioned Parquet, the quarantine beside it
    root = tmp_path / "spark" / "spark"
    assert (root / "raw" / "predictions" / f"_partition_date={D2}").is_dir()
    assert (root / "raw_quarantine" / "orders" / f"_partition_date={D2}").is_dir()
    # every file of a table has its columns (D1's predictions got D2's new one): Spark infers from one file
    for folder in (root / "raw" / "predictions", root / "raw_quarantine" / "predictions"):
        columns = {tuple(pq.read_schema(f).names) for f in folder.glob("*/*.parquet")}
        assert len(columns) == 1 and "feature_device" in next(iter(columns)), columns


@pytest.mark.parametrize("batch_bytes", [None, 1], ids=["one_batch", "a_batch_a_day"])
def test_a_ranged_reload_sees_the_days_it_replaced_as_duckdb_does(tmp_path, monkeypatch, spark_session, batch_bytes):
    # raw.predictions already holds D1 when the run starts. The run replaces D1's folder, and D2's seen keys (its
    # p1 was first seen on D1) are read from the table again: Spark's table lists its files once, so the loader
    # refreshes the listing after each landed day (a stale one names D1's replaced files, or misses its rows)
    from orchestration.lib import raw_loader

    if batch_bytes:  # each day its own batch: the second reads what the first landed (its listing refreshed)
        monkeypatch.setattr(raw_loader, "BATCH_BYTES", batch_bytes)
    source = tmp_path / "landing"
    landing_zone(source)

    def load(conn):
        load_days(conn, "predictions", source, [D1])
        reports = load_days(conn, "predictions", source, [D1, D2])
        quarantined = conn.execute("SELECT * FROM raw_quarantine.predictions ORDER BY _partition_date, _source_row")
        return [(r.rows_read, r.rows_loaded, r.quarantine_reasons) for r in reports], quarantined.df()

    results = on_both_engines(tmp_path, load)
    (duck_reports, duck), (spark_reports, spark) = results["duckdb"], results["spark"]
    assert f"duplicate key (prediction_id), first seen on {D1}" in duck_reports[1][2]
    assert spark_reports == duck_reports
    pd.testing.assert_frame_equal(spark, duck)


def test_a_table_is_registered_again_only_when_its_files_changed(tmp_path, monkeypatch, spark_session):
    # each gate registers its tables; one whose files are those it was registered over keeps its registration
    # (a second listing and schema read), one whose day was replaced is registered anew and reads the new rows
    from pyspark.sql.catalog import Catalog

    from orchestration.lib.spark_raw import register_spark_tables

    source = tmp_path / "landing"
    landing_zone(source)
    conn = on_engine(monkeypatch, "spark", tmp_path / "spark")
    load_days(conn, "predictions", source, [D1])
    created = []
    create_table = Catalog.createTable
    monkeypatch.setattr(
        Catalog, "createTable", lambda self, name, **kw: created.append(name) or create_table(self, name, **kw)
    )

    def rows() -> int:
        return spark_session.sql("SELECT count(*) FROM raw.predictions").collect()[0][0]

    register_spark_tables(spark_session, ["predictions"], ("raw",))
    first = rows()
    register_spark_tables(spark_session, ["predictions"], ("raw",))
    assert created == ["raw.predictions"] and rows() == first  # nothing changed: not registered again
    load_days(conn, "predictions", source, [D1, D2])
    register_spark_tables(spark_session, ["predictions"], ("raw",))
    assert created[1:] == ["raw.predictions"] and rows() > first  # D2 landed: registered anew, its rows read
    conn.close()


def test_empty_days_and_an_absent_table_land_as_duckdb_loads_them(tmp_path, spark_session):
    # empty days around the source's two (before, between none, after), one of them after D2's new column, and a
    # table absent from the source: Spark writes the first empty day and copies it for the others
    source = tmp_path / "landing"
    landing_zone(source)
    days = [date(2026, 8, 31), date(2026, 9, 1), D1, D2, date(2026, 9, 4), date(2026, 9, 5)]

    def load(conn):
        load_everything(conn, source)
        reports = {t: load_days(conn, t, source, days) for t in ("predictions", "labels")}
        summary = {t: [(r.partition_date, r.rows_read, r.rows_loaded, r.note) for r in rs] for t, rs in reports.items()}
        return summary, frames(conn) | {
            f"{schema}.labels": conn.execute(f"SELECT * FROM {schema}.labels").df() for schema in SCHEMAS
        }

    results = on_both_engines(tmp_path, load)
    (duck_reports, duck), (spark_reports, spark) = results["duckdb"], results["spark"]
    assert spark_reports == duck_reports
    assert [r[1] for r in duck_reports["predictions"]] == [0, 0, 3, 6, 0, 0]
    assert all(r[1] == 0 and r[3] for r in duck_reports["labels"])  # each empty day says why
    for name, want in duck.items():
        pd.testing.assert_frame_equal(spark[name], want, obj=name)
    root = tmp_path / "spark" / "spark"
    for schema in SCHEMAS:
        for table in ("predictions", "labels"):
            folder = root / schema / table
            assert sorted(p.name for p in folder.iterdir()) == [f"_partition_date={d}" for d in days], (schema, table)
            # every day's files, the empty ones too, have the table's columns (D2 brought feature_device)
            columns = {tuple(pq.read_schema(f).names) for f in folder.glob("*/*.parquet")}
            assert len(columns) == 1, (schema, table, columns)
            assert ("feature_device" in next(iter(columns))) == (table == "predictions")


BAD_FILES = {
    **{name: (content.encode(), "csv") for name, (content, _, _) in BAD_CSV.items() if "far" not in name},
    "missing_required_column": ("prediction_id,model_id\np1,m1\n".encode(), "csv"),
    "uncastable_value": ((HEADER + row(1) + "p2,m1,v1,u2,yesterday,0.5,0.5\n").encode(), "csv"),
    "latin1_bytes": ((HEADER + row(1) + "p2,m\xe9,v1,u2,2026-09-03 02:00:00,0.5,0.5\n").encode("latin-1"), "csv"),
    "empty_csv": (b"", "csv"),
    "truncated_parquet": (None, "parquet"),
}


def _error(monkeypatch, engine: str, out, source, days=(D2,)) -> str:
    with pytest.MonkeyPatch.context() as mp:
        with on_engine(mp, engine, out) as conn:
            with pytest.raises(ContractError) as err:
                load_days(conn, "predictions", source, list(days))
    return str(err.value)


def test_a_misspelt_protected_attribute_stops_raw_users_on_both_engines(tmp_path, spark_session):
    # a trial on Spark: raw.users and every gate passed, and the run failed 89 s on in dbt's build with its log
    from orchestration.lib.raw_loader import check_attribute_columns

    source = tmp_path / "landing"
    landing_zone(source)

    def check(conn) -> str:
        load_days(conn, "users", source, [D2])
        with pytest.raises(ContractError) as err:
            check_attribute_columns(conn, {"contry": ["contry"]})
        return str(err.value)

    said = on_both_engines(tmp_path, check)
    assert said["spark"] == said["duckdb"] and "'contry': did you mean 'country'?" in said["duckdb"]


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_the_same_bad_file_is_the_same_contract_error_on_both_engines(tmp_path, monkeypatch, case, spark_session):
    content, suffix = BAD_FILES[case]
    if content is None:
        whole = parquet_bytes(tmp_path)
        content = whole[: len(whole) // 2]
    put(tmp_path / "landing", "predictions", content, suffix=suffix)
    want = _error(monkeypatch, "duckdb", tmp_path / "duckdb", tmp_path / "landing")
    assert _error(monkeypatch, "spark", tmp_path / "spark", tmp_path / "landing") == want


def test_a_fractional_label_stops_both_engines_and_a_whole_float_loads_as_its_integer(
    tmp_path, monkeypatch, spark_session
):
    """DuckDB's cast rounds 0.7 to 1 and Spark's truncates it to 0: neither may pass as a label."""
    for name, values in (("whole", ["1.0", "0.0", "1"]), ("fraction", ["1.0", "0.7", "0"])):
        _csv(
            tmp_path / name,
            "labels",
            pd.DataFrame(
                {
                    "prediction_id": ["p1", "p2", "p3"],
                    "label": values,
                    "labeled_at": f"{D2} 12:00:00",
                    "label_source": "implicit",
                }
            ),
            D2,
        )

    def load(source):
        def run(conn):
            try:
                load_days(conn, "labels", source, [D2])
            except ContractError as err:
                return str(err)
            return conn.execute("SELECT prediction_id, label FROM raw.labels ORDER BY 1").fetchall()

        return run

    whole = on_both_engines(tmp_path / "runs_whole", load(tmp_path / "whole"))
    assert whole["spark"] == whole["duckdb"] == [("p1", 1), ("p2", 0), ("p3", 1)]
    fraction = on_both_engines(tmp_path / "runs_fraction", load(tmp_path / "fraction"))
    assert fraction["spark"] == fraction["duckdb"]
    assert "column 'label': labels must be 0 or 1, and 1 value(s) are not: '0.7' (1)" in fraction["duckdb"]


def test_whole_float_ids_land_as_integers_on_both_engines(tmp_path, spark_session):
    # a Parquet float64 user id (pandas, an id column with a gap): '2.0' on both engines before, now '2'
    source = tmp_path / "zone"
    (source / "users").mkdir(parents=True)
    users = pd.DataFrame({"user_id": [1.0, 2.0, None, 2.5], "signup_at": pd.Timestamp("2026-01-01")})
    users.to_parquet(source / "users" / "users.parquet", index=False)

    def run(conn):
        load_days(conn, "users", source, [D1])
        return conn.execute("SELECT user_id FROM raw.users ORDER BY 1").fetchall()

    loaded = on_both_engines(tmp_path / "runs", run)
    assert loaded["spark"] == loaded["duckdb"] == [("1",), ("2",), ("2.5",)]


GOOD_DAY = ((HEADER + row(1, day=D1) + row(2, day=D1)).encode(), "csv")


@pytest.mark.parametrize(
    "first, second",
    [
        ("good", "uncastable_value"),
        ("good", "ragged_short_row"),
        ("good", "latin1_bytes"),
        ("good", "unclosed_quote"),
        ("uncastable_value", "ragged_short_row"),  # two bad days: the first one's error
        ("ragged_long_row", "uncastable_value"),
        ("uncastable_value", "missing_required_column"),
    ],
)
def test_a_ranged_run_names_its_first_bad_day_as_duckdbs_day_by_day_load_does(
    tmp_path, monkeypatch, first, second, spark_session
):
    # a backfill stops at its first bad day on both engines, with the same error
    for day, case in ((D1, first), (D2, second)):
        content, suffix = GOOD_DAY if case == "good" else BAD_FILES[case]
        put(tmp_path / "landing", "predictions", content, day=day, suffix=suffix)
    want = _error(monkeypatch, "duckdb", tmp_path / "duckdb", tmp_path / "landing", (D1, D2))
    assert _error(monkeypatch, "spark", tmp_path / "spark", tmp_path / "landing", (D1, D2)) == want
    assert (f"predictions_{D2}" in want) == (first == "good"), want


def _predictions(day: date, ids: range, recency: list) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "prediction_id": [f"p{i}" for i in ids],
            "model_id": "m1",
            "model_version": "v1",
            "user_id": [f"u{i}" for i in ids],
            "predicted_at": pd.to_datetime([f"{day} 0{i % 10}:00:00" for i in ids]),
            "score": 0.5,
            "threshold": 0.5,
            "feature_recency": recency,  # an extra column: not in the contract, kept as the files have it
        }
    )


def test_a_csv_day_among_parquet_days_gives_its_extra_columns_the_tables_type(tmp_path, monkeypatch, spark_session):
    # the 10M-row bench day (one CSV) after Parquet days: Spark wrote the CSV's text column beside the other
    # days' doubles, and reading the folder failed; DuckDB's insert casts it to the table's type
    source = tmp_path / "landing"
    (source / "predictions").mkdir(parents=True)
    _predictions(D1, range(1, 4), [1.5, None, 3.0]).to_parquet(source / "predictions" / f"predictions_{D1}.parquet")
    _csv(source, "predictions", _predictions(D2, range(4, 7), [0.25, 1e-3, None]), day=D2)
    _csv(source, "predictions", _predictions(D3, range(7, 9), [2.0, 4.5]), day=D3)

    def load(conn):
        load_days(conn, "predictions", source, [D1, D2, D3])
        return conn.execute("SELECT * FROM raw.predictions ORDER BY prediction_id").df()

    # landed a batch of days of one format at a time, not day by day (a trial's one Parquet day among 40 CSV days
    # sent the whole range day by day: 3x slower)
    from orchestration.lib import spark_raw

    monkeypatch.setattr(spark_raw, "_land", lambda *args: pytest.fail("the range was landed day by day"))
    results = on_both_engines(tmp_path, load)
    assert str(results["duckdb"]["feature_recency"].dtype) == "float64"
    pd.testing.assert_frame_equal(results["spark"], results["duckdb"])
    assert results["spark"]["feature_recency"].tolist()[3:5] == [0.25, 1e-3]


@pytest.mark.parametrize("engine", ["duckdb", "spark"])
@pytest.mark.parametrize("first_day", ["parquet", "csv"])
def test_an_extra_value_that_does_not_cast_to_the_tables_type_stops_the_load_naming_it(
    tmp_path, engine, first_day, spark_session
):
    # the table's type came from a Parquet day's doubles, or from a CSV day of numbers (stored as DOUBLE); then
    # two CSV days loaded as one range: the good one lands, the bad one stops the load, named
    source = tmp_path / "landing"
    (source / "predictions").mkdir(parents=True)
    first = _predictions(D1, range(1, 3), [1.5, 2.0])
    if first_day == "parquet":
        first.to_parquet(source / "predictions" / f"predictions_{D1}.parquet")
    else:
        _csv(source, "predictions", first, day=D1)
    _csv(source, "predictions", _predictions(D2, range(3, 5), ["0.5", None]), day=D2)
    _csv(source, "predictions", _predictions(D3, range(5, 7), ["soon", "0.5"]), day=D3)
    with pytest.MonkeyPatch.context() as mp:
        with on_engine(mp, engine, tmp_path / engine) as conn:
            load_days(conn, "predictions", source, [D1])
            with pytest.raises(ContractError) as err:
                load_days(conn, "predictions", source, [D2, D3])
            loaded = conn.execute("SELECT prediction_id, feature_recency FROM raw.predictions ORDER BY 1").fetchall()
    assert f"predictions_{D3}.csv: table 'predictions', column 'feature_recency'" in str(err.value)
    assert "cannot be cast to DOUBLE" in str(err.value) and "'soon'" in str(err.value)
    assert loaded == [("p1", 1.5), ("p2", 2.0), ("p3", 0.5), ("p4", None)]  # the days before the bad one


@pytest.mark.parametrize("together", [True, False], ids=["one_range", "day_by_day"])
def test_a_csv_feature_of_numbers_is_a_double_and_codes_words_and_empty_columns_stay_text(
    tmp_path, together, spark_session
):
    # drift bins a numeric feature at the reference deciles; kept as a CSV's text, every distinct value was a
    # category of its own (PSI ~12 every day on a real data set)
    source = tmp_path / "landing"
    first = _predictions(D1, range(1, 5), ["1.5", "-2e3", None, "0.25"])
    first["feature_code"] = ["02134", "10001", "94105", None]  # a leading zero: a code, not a number
    first["feature_word"] = ["1", "2", "3", "n/a"]
    first["feature_empty"] = None
    # empty on its first day, numbers the next: a trial's feature typed VARCHAR for good by its empty first days
    first["feature_late"] = None
    _csv(source, "predictions", first, day=D1)
    second = _predictions(D2, range(5, 7), [".5", "7"])
    second["feature_late"] = ["3.5", "4"]
    _csv(source, "predictions", second, day=D2)

    def load(conn):
        for days in [[D1, D2]] if together else [[D1], [D2]]:
            load_days(conn, "predictions", source, days)
        types = dict(conn.execute("SELECT column_name, column_type FROM (DESCRIBE raw.predictions)").fetchall())
        frame = conn.execute("SELECT * EXCLUDE (_source_file) FROM raw.predictions ORDER BY prediction_id").df()
        return {name: types[name] for name in types if name.startswith("feature_")}, frame

    results = on_both_engines(tmp_path, load)
    types, frame = results["duckdb"]
    assert types == {
        "feature_recency": "DOUBLE",
        "feature_code": "VARCHAR",
        "feature_word": "VARCHAR",
        "feature_empty": "VARCHAR",
        "feature_late": "DOUBLE",
    }
    assert frame["feature_late"].tolist()[4:] == [3.5, 4.0] and frame["feature_late"].iloc[:4].isna().all()
    assert frame["feature_recency"].tolist()[:2] == [1.5, -2000.0]
    assert frame["feature_recency"].tolist()[3:] == [0.25, 0.5, 7.0]
    assert frame["feature_code"].tolist()[:3] == ["02134", "10001", "94105"]
    assert results["spark"][0] == types
    pd.testing.assert_frame_equal(results["spark"][1], frame)


def test_a_parquet_string_feature_of_numbers_stays_text(tmp_path, spark_session):
    # a customer subtype coded 1-41, written by its exporter as Parquet strings: turned into DOUBLE and binned at
    # deciles, its PSI read 0.05 where as categories it was 0.3-0.7. Only a CSV's text is typed by its values
    source = tmp_path / "landing"
    (source / "predictions").mkdir(parents=True)
    first = _predictions(D1, range(1, 5), [1.5, 2.0, None, 0.25])
    first["feature_subtype"] = ["33", "8", "41", None]
    first.to_parquet(source / "predictions" / f"predictions_{D1}.parquet")

    def load(conn):
        load_days(conn, "predictions", source, [D1])
        types = dict(conn.execute("SELECT column_name, column_type FROM (DESCRIBE raw.predictions)").fetchall())
        return types["feature_subtype"], types["feature_recency"]

    results = on_both_engines(tmp_path, load)
    assert results["duckdb"] == results["spark"] == ("VARCHAR", "DOUBLE")


def test_a_float32_parquet_feature_is_a_double_and_a_later_csv_day_keeps_every_digit(tmp_path, spark_session):
    # a trial: a first day of float32 Parquet typed the feature FLOAT for good, and every later CSV day's number
    # was rounded to ~7 digits (reference deciles 2.6e-8 off the values as written)
    import numpy as np

    source = tmp_path / "landing"
    (source / "predictions").mkdir(parents=True)
    first = _predictions(D1, range(1, 3), np.array([0.1, 1 / 3], dtype="float32"))
    first.to_parquet(source / "predictions" / f"predictions_{D1}.parquet")
    _csv(source, "predictions", _predictions(D2, range(3, 5), ["0.123456789012", "98765.4321"]), day=D2)

    def load(conn):
        for day in (D1, D2):
            load_days(conn, "predictions", source, [day])
        types = dict(conn.execute("SELECT column_name, column_type FROM (DESCRIBE raw.predictions)").fetchall())
        rows = conn.execute("SELECT feature_recency FROM raw.predictions ORDER BY prediction_id").fetchall()
        return types["feature_recency"], [r[0] for r in rows]

    results = on_both_engines(tmp_path, load)
    # the float32 values as the file holds them (each exactly a double), the CSV's as written
    expected = [float(np.float32(0.1)), float(np.float32(1 / 3)), 0.123456789012, 98765.4321]
    assert results["duckdb"] == results["spark"] == ("DOUBLE", expected)


def test_a_feature_empty_in_its_csv_days_becomes_a_double_with_a_parquet_day_of_numbers(tmp_path, spark_session):
    # a trial: a feature empty on its first CSV days, Parquet doubles later: the doubles were stored as text
    # (VARCHAR for good), and drift read 369 categories (PSI 6.2 where binned as numbers it was 1.6)
    source = tmp_path / "landing"
    first = _predictions(D1, range(1, 3), ["1.5", "2"])
    first["feature_prior_mean"] = None
    _csv(source, "predictions", first, day=D1)
    second = _predictions(D2, range(3, 5), [0.5, 7.0])
    second["feature_prior_mean"] = [0.125, 3.0]
    second.to_parquet(source / "predictions" / f"predictions_{D2}.parquet")

    def load(conn):
        for day in (D1, D2):
            load_days(conn, "predictions", source, [day])
        types = [
            dict(conn.execute(f"SELECT column_name, column_type FROM (DESCRIBE {schema}.predictions)").fetchall())
            for schema in ("raw", "raw_quarantine")
        ]
        values = conn.execute("SELECT feature_prior_mean FROM raw.predictions ORDER BY prediction_id").fetchall()
        return [t.get("feature_prior_mean") for t in types], [v for (v,) in values]

    results = on_both_engines(tmp_path, load)
    assert results["duckdb"] == results["spark"] == (["DOUBLE", "DOUBLE"], [None, None, 0.125, 3.0])


def test_clean_days_copy_an_empty_quarantine_day_and_a_new_column_still_reaches_every_day(
    tmp_path, monkeypatch, spark_session
):
    # four clean days (nothing quarantined: days 2-3's quarantine folders are copies of an earlier empty one,
    # not Spark writes), the last bringing a column: every file of both folders gets it, as DuckDB's table does
    days = [date(2026, 9, d) for d in range(2, 6)]
    source = tmp_path / "landing"
    (source / "predictions").mkdir(parents=True)
    for i, day in enumerate(days):
        frame = _predictions(day, range(10 * i, 10 * i + 3), [1.0, 2.0, None])
        if day == days[-1]:
            frame["feature_device"] = ["ios", None, "web"]
        frame.to_parquet(source / "predictions" / f"predictions_{day}.parquet")

    def load(conn):
        reports = [
            (r.rows_read, r.rows_loaded, r.rows_quarantined) for r in load_days(conn, "predictions", source, days)
        ]
        return reports, {
            s: conn.execute(f"SELECT * FROM {s}.predictions ORDER BY _partition_date, _source_row").df()
            for s in SCHEMAS
        }

    results = on_both_engines(tmp_path, load)
    (duck_reports, duck), (spark_reports, spark) = results["duckdb"], results["spark"]
    assert spark_reports == duck_reports == [(3, 3, 0)] * len(days)
    for schema in SCHEMAS:
        pd.testing.assert_frame_equal(spark[schema], duck[schema], obj=schema)
    assert duck["raw"]["feature_device"].notna().sum() == 2 and duck["raw_quarantine"].empty
    root = tmp_path / "spark" / "spark"
    for schema in SCHEMAS:
        folders = sorted((root / schema / "predictions").glob("_partition_date=*"))
        assert [f.name for f in folders] == [f"_partition_date={d}" for d in days]
        columns = {tuple(pq.read_schema(f).names) for f in (root / schema / "predictions").glob("*/*.parquet")}
        assert len(columns) == 1 and "feature_device" in next(iter(columns)), (schema, columns)


def test_parquet_with_nanosecond_times_loads_on_spark_as_on_duckdb(tmp_path, spark_session):
    # pandas' to_parquet of a datetime64[ns] column (pandas 2's default) writes TIMESTAMP(NANOS), which Spark
    # refuses (PARQUET_TYPE_ILLEGAL): the Spark engine stopped at the first such file
    import pyarrow as pa

    source = tmp_path / "landing"
    landing_zone(source)
    for day in (D1, D2):
        path = source / "predictions" / f"predictions_{day}.parquet"
        table = pq.read_table(path)
        at = table.schema.get_field_index("predicted_at")
        nanos = pa.compute.add(table.column(at).cast(pa.timestamp("ns")), pa.scalar(123, pa.duration("ns")))
        pq.write_table(table.set_column(at, "predicted_at", nanos), path)
        assert pq.read_schema(path).field("predicted_at").type == pa.timestamp("ns")
    results = on_both_engines(tmp_path, lambda conn: (load_everything(conn, source), frames(conn)))
    (duck_reports, duck), (spark_reports, spark) = results["duckdb"], results["spark"]
    assert spark_reports == duck_reports
    for name, want in duck.items():
        pd.testing.assert_frame_equal(spark[name], want, obj=name)
    # the landing file is untouched; Spark read a microsecond copy beside its own data
    assert pq.read_schema(source / "predictions" / f"predictions_{D1}.parquet").field("predicted_at").type.unit == "ns"
    assert len(list((tmp_path / "spark" / "spark" / "landing_micros").glob("*.parquet"))) == 2


def test_a_parquet_column_of_only_nulls_loads_on_spark_as_on_duckdb(tmp_path, spark_session):
    # pyarrow writes a column holding nothing but nulls as its null type, which Spark reads as INT: a trial's
    # experiments.end_date (no experiment ended yet) stopped the Spark run, "cannot cast INT to DATE"
    import pyarrow as pa

    source = tmp_path / "landing"
    landing_zone(source)
    experiments = pd.read_csv(source / "experiments" / "experiments.csv")
    (source / "experiments" / "experiments.csv").unlink()
    table = pa.Table.from_pandas(experiments.drop(columns="end_date"), preserve_index=False)
    pq.write_table(
        table.append_column("end_date", pa.nulls(len(table))), source / "experiments" / "experiments.parquet"
    )
    assert pq.read_schema(source / "experiments" / "experiments.parquet").field("end_date").type == pa.null()
    results = on_both_engines(tmp_path, lambda conn: (load_everything(conn, source), frames(conn)))
    (duck_reports, duck), (spark_reports, spark) = results["duckdb"], results["spark"]
    assert spark_reports == duck_reports
    for name, want in duck.items():
        pd.testing.assert_frame_equal(spark[name], want, obj=name)
    assert duck["raw.experiments"]["end_date"].isna().all() and len(duck["raw.experiments"]) == 2


def test_a_berlin_day_loads_as_the_same_wall_clock_times_on_both_engines(tmp_path, monkeypatch, spark_session):
    # the project's time zone is the casts' on Spark too (its session's, while loading): offsets, Z and naive
    # times of a file dated by a Berlin day land on that day, as DuckDB lands them (the oracle: zoneinfo there)
    from tests.unit.test_time_zone import BERLIN, DAY, WRITTEN, landing, project, wall

    source = landing(tmp_path)
    project(tmp_path, monkeypatch, BERLIN)

    def load(conn):
        (report,) = load_days(conn, "predictions", source, [DAY])
        rows = conn.execute("SELECT prediction_id, predicted_at FROM raw.predictions ORDER BY 1").fetchall()
        return report.quarantine_reasons, rows

    results = on_both_engines(tmp_path, load)
    assert results["spark"] == results["duckdb"]
    assert results["duckdb"] == ({}, [(f"p{i}", wall(w, BERLIN)) for i, w in enumerate(WRITTEN)])
    assert spark_session.conf.get("spark.sql.session.timeZone") == "UTC"  # the session's other users: UTC


@pytest.mark.parametrize("runs", ["day by day", "one range", "a day, then a range"])
def test_rows_delivered_again_on_later_days_are_the_same_copies_on_both_engines(tmp_path, spark_session, runs):
    # overlapping exports (tests/unit/test_raw_loader.py has the reasons by hand): Spark runs the same checks
    from orchestration.lib.contract import RESENT_REASON
    from tests.unit.test_raw_loader import overlapping_exports

    days = sorted(overlapping_exports(tmp_path / "landing"))
    plan = {
        "day by day": [days[:1], days[1:2], days[2:]],
        "one range": [days],
        "a day, then a range": [days[:1], days[1:]],
    }

    def load(conn):
        reports = [
            (r.partition_date, r.rows_read, r.rows_loaded, r.rows_quarantined, r.quarantine_reasons)
            for run in plan[runs]
            for r in load_days(conn, "predictions", tmp_path / "landing", run)
        ]
        return reports, {
            schema: conn.execute(f"SELECT * FROM {schema}.predictions ORDER BY _partition_date, _source_row").df()
            for schema in ("raw", "raw_quarantine")
        }

    results = on_both_engines(tmp_path, load)
    (duck_reports, duck), (spark_reports, spark) = results["duckdb"], results["spark"]
    assert spark_reports == duck_reports
    assert (duck["raw_quarantine"]["_reason"] == RESENT_REASON).sum() == 3  # pA, and pC twice
    for schema, want in duck.items():
        pd.testing.assert_frame_equal(spark[schema], want, obj=schema)
