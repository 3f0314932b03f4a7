"""Strict CSV, unreadable files and keys across days: one clear error per bad file, no duplicate loaded twice.

Oracles: the bytes written by each test (line numbers counted by hand, Latin-1 decoded by Python's codec),
and set arithmetic over the ids written on each day.
"""

from datetime import date

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orchestration.lib.contract import ContractError
from orchestration.lib.raw_loader import load_days, load_partition

DAY1, DAY2 = date(2026, 9, 2), date(2026, 9, 3)
HEADER = "prediction_id,model_id,model_version,user_id,predicted_at,score,threshold\n"


def row(i: int, model: str = "m1", user: str | None = None, day: date = DAY2) -> str:
    return f"p{i},{model},v1,{user or f'u{i}'},{day} 0{i % 10}:00:00,0.{i % 10},0.5\n"


@pytest.fixture
def conn():
    with duckdb.connect() as c:
        yield c


def put(source, table: str, content: bytes, day: date | None = DAY2, suffix: str = "csv"):
    folder = source / table
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (f"{table}_{day}.{suffix}" if day else f"{table}.{suffix}")
    path.write_bytes(content)
    return path


def load_error(conn, source, table="predictions", day=DAY2) -> str:
    with pytest.raises(ContractError) as err:
        load_partition(conn, table, source, day)
    message = str(err.value)
    assert "\n" not in message  # one line: the CLI prints it as is
    assert "missing required column" not in message  # the old, wrong diagnosis of ragged and empty files
    return message


# ------------------------------------------------------------------ strict CSV

# (file content, the line DuckDB must name, words of the cause); lines count the header as line 1
BAD_CSV = {
    "unclosed_quote": (
        HEADER + row(1) + 'p2,"recommender,v1,u2,2026-09-03 02:00:00,0.6,0.5\n' + row(3),
        3,
        ["unterminated quote", '""'],
    ),
    "unclosed_quote_far_from_the_end": (
        HEADER
        + "".join(row(i) for i in range(1, 6))
        + 'p6,"recommender,v1,u6,2026-09-03 06:00:00,0.6,0.5\n'
        + "".join(row(i) for i in range(7, 3000)),
        7,
        ["unterminated quote"],
    ),
    "ragged_short_row": (
        HEADER + row(1) + "p2,m1,v1,u2,2026-09-03 02:00:00,0.6\n" + row(3),
        3,
        ["6 fields", "header names 7 columns"],
    ),
    "ragged_long_row": (
        HEADER + row(1) + "p2,m1,v1,u2,2026-09-03 02:00:00,0.6,0.5,extra\n" + row(3),
        3,
        ["8 fields", "header names 7 columns"],
    ),
}


@pytest.mark.parametrize("dated", [True, False], ids=["dated", "undated"])
@pytest.mark.parametrize("case", list(BAD_CSV))
def test_a_malformed_csv_stops_the_load_naming_file_table_line_and_cause(tmp_path, conn, case, dated):
    content, line, words = BAD_CSV[case]
    path = put(tmp_path, "predictions", content.encode(), day=DAY2 if dated else None)
    message = load_error(conn, tmp_path)
    assert message.startswith(f"{path}: table 'predictions', line {line}: "), message
    for word in words:
        assert word in message, message
    # nothing of the file was loaded: no model '"recommender' reaches the marts
    assert conn.execute("SELECT count(*) FROM raw.predictions").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM raw_quarantine.predictions").fetchone()[0] == 0


def test_a_zero_byte_csv_is_an_empty_file_not_a_missing_column(tmp_path, conn):
    path = put(tmp_path, "predictions", b"")
    message = load_error(conn, tmp_path)
    assert message.startswith(f"{path}: table 'predictions': the file is empty (0 bytes)"), message


@pytest.mark.parametrize("dated", [True, False], ids=["dated", "undated"])
def test_a_header_only_csv_is_a_day_without_rows(tmp_path, conn, dated):
    put(tmp_path, "predictions", HEADER.encode(), day=DAY2 if dated else None)
    report = load_partition(conn, "predictions", tmp_path, DAY2)
    assert (report.rows_read, report.rows_loaded, report.rows_quarantined) == (0, 0, 0)


@pytest.mark.parametrize(
    "header, unnamed, guess",
    [
        ("," + HEADER, "[1]", "the row index pandas writes with to_csv(index=True)? write with index=False"),
        (HEADER.rstrip("\n") + ",\n", "[8]", "a trailing comma?"),
    ],
    ids=["pandas_index", "trailing_comma"],
)
def test_a_header_field_without_a_name_says_what_usually_wrote_it(tmp_path, conn, header, unnamed, guess):
    path = put(tmp_path, "predictions", header.encode())
    message = load_error(conn, tmp_path)
    assert message == f"{path}: table 'predictions', line 1: header field(s) {unnamed} have no name ({guess})"


LATIN1 = (HEADER + row(1) + "p2,m1,v1,Jos\u00e9,2026-09-03 02:00:00,0.6,0.5\n").encode("latin-1")


def test_latin1_bytes_name_the_line_and_the_encoding_option(tmp_path, conn):
    path = put(tmp_path, "predictions", LATIN1)
    message = load_error(conn, tmp_path)
    assert message.startswith(f"{path}: table 'predictions', line 3: bytes that are not valid utf-8"), message
    assert "re-save it as UTF-8" in message and "csv: {table_encoding: {predictions: latin-1}}" in message


def test_a_latin1_header_is_line_1(tmp_path, conn):
    path = put(tmp_path, "users", "user_id,signup_at,r\u00e9gion\nu1,2026-01-01,x\n".encode("latin-1"), day=None)
    message = load_error(conn, tmp_path, table="users")
    assert message.startswith(f"{path}: table 'users', line 1: the header is not valid utf-8"), message


def test_the_project_files_encoding_reads_latin1(tmp_path, conn, monkeypatch):
    config = tmp_path / "project.yml"
    config.write_text("csv:\n  table_encoding:\n    predictions: latin-1\n")
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(config))
    put(tmp_path, "predictions", LATIN1)
    report = load_partition(conn, "predictions", tmp_path, DAY2)
    assert report.rows_loaded == 2
    users = [r[0] for r in conn.execute("SELECT user_id FROM raw.predictions ORDER BY prediction_id").fetchall()]
    assert users == ["u1", LATIN1.decode("latin-1").splitlines()[2].split(",")[3]]  # 'José', as Python decodes it


def test_a_semicolon_separated_file_is_told_to_use_commas(tmp_path, conn):
    put(tmp_path, "predictions", (HEADER + row(1)).replace(",", ";").encode())
    assert "must be comma-separated" in load_error(conn, tmp_path)


def test_quoting_by_the_standard_still_reads(tmp_path, conn):
    # quoted commas, doubled quotes, a byte-order mark and CRLF line ends are all valid CSV
    content = HEADER + 'p1,"m,1","v""1",u1,2026-09-03 01:00:00,0.5,0.5\n' + row(2)
    put(tmp_path, "predictions", b"\xef\xbb\xbf" + content.replace("\n", "\r\n").encode())
    report = load_partition(conn, "predictions", tmp_path, DAY2)
    assert report.rows_loaded == 2
    assert conn.execute("SELECT model_id, model_version FROM raw.predictions ORDER BY 1").fetchall() == [
        ("m,1", 'v"1'),
        ("m1", "v1"),
    ]


def test_files_of_one_table_with_different_headers_are_read_by_name(tmp_path, conn):
    put(tmp_path, "predictions", (HEADER + row(1)).encode(), day=DAY1)
    reordered = "score,prediction_id,model_id,model_version,user_id,predicted_at\n0.7,p9,m1,v1,u9,2026-09-03 09:00:00\n"
    put(tmp_path, "predictions", reordered.encode(), day=DAY2)
    load_days(conn, "predictions", tmp_path, [DAY1, DAY2])
    assert conn.execute(
        "SELECT prediction_id, score, threshold FROM raw.predictions WHERE prediction_id = 'p9'"
    ).fetchall() == [("p9", 0.7, None)]


# ------------------------------------------------------------ unreadable Parquet


def parquet_bytes(tmp_path) -> bytes:
    frame = pd.DataFrame(
        {
            "prediction_id": ["p1"],
            "model_id": ["m1"],
            "model_version": ["v1"],
            "user_id": ["u1"],
            "predicted_at": pd.to_datetime(["2026-09-03 01:00"]),
            "score": [0.5],
            "threshold": [0.5],
        }
    )
    path = tmp_path / "whole.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return path.read_bytes()


@pytest.mark.parametrize(
    "case, words",
    [
        ("zero_bytes", "the Parquet file is empty (0 bytes)"),
        ("truncated", "the Parquet file is truncated or incomplete"),
        ("not_parquet", "not a Parquet file"),
    ],
)
def test_an_unreadable_parquet_file_is_one_clear_error(tmp_path, conn, case, words):
    whole = parquet_bytes(tmp_path)
    content = {"zero_bytes": b"", "truncated": whole[: len(whole) // 2], "not_parquet": HEADER.encode()}[case]
    path = put(tmp_path, "predictions", content, suffix="parquet")
    message = load_error(conn, tmp_path)
    assert message.startswith(f"{path}: table 'predictions': {words}"), message


def test_a_corrupt_parquet_body_is_a_contract_error_naming_the_file(tmp_path, conn):
    # magic bytes intact, the pages inside overwritten: DuckDB's own error, turned into one line
    whole = bytearray(parquet_bytes(tmp_path))
    whole[4 : len(whole) - 8] = b"\x00" * (len(whole) - 12)
    path = put(tmp_path, "predictions", bytes(whole), suffix="parquet")
    message = load_error(conn, tmp_path)
    assert message.startswith(f"{path}: table 'predictions'"), message


# ---------------------------------------------------------- keys across days


def frame_for(table: str, ids: list[str], day: date) -> pd.DataFrame:
    at = pd.to_datetime([f"{day} 10:{i:02d}" for i in range(len(ids))])
    n = len(ids)
    return {
        "predictions": lambda: pd.DataFrame(
            {
                "prediction_id": ids,
                "model_id": "m1",
                "model_version": "v1",
                "user_id": "u1",
                "predicted_at": at,
                "score": 0.5,
                "threshold": 0.5,
            }
        ),
        "orders": lambda: pd.DataFrame(
            {
                "order_id": ids,
                "user_id": "u1",
                "session_id": "s1",
                "ordered_at": at,
                "revenue": [10.0] * n,
                "status": "completed",
            }
        ),
        "sessions": lambda: pd.DataFrame({"session_id": ids, "user_id": "u1", "started_at": at}),
        "feedback": lambda: pd.DataFrame(
            {"feedback_id": ids, "prediction_id": "p1", "user_id": "u1", "created_at": at, "value": "up"}
        ),
    }[table]()


def write_day(source, table, frame, day, fmt="parquet"):
    folder = source / table
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{table}_{day}.{fmt}"
    frame.to_parquet(path, index=False) if fmt == "parquet" else frame.to_csv(path, index=False)


@pytest.mark.parametrize(
    "table, key",
    [("predictions", "prediction_id"), ("orders", "order_id"), ("sessions", "session_id"), ("feedback", "feedback_id")],
)
def test_a_key_loaded_on_an_earlier_day_is_quarantined_with_the_day_it_was_first_seen(tmp_path, conn, table, key):
    first, second = ["a", "b", "c"], ["c", "d", "a", "d"]  # c and a seen on day 1; d twice on day 2
    write_day(tmp_path, table, frame_for(table, first, DAY1), DAY1)
    write_day(tmp_path, table, frame_for(table, second, DAY2), DAY2)
    load_partition(conn, table, tmp_path, DAY1)
    report = load_partition(conn, table, tmp_path, DAY2)
    again = {k for k in second if k in first}
    assert report.quarantine_reasons == {
        f"duplicate key ({key}), first seen on {DAY1}": len(again),
        f"duplicate key ({key})": 1,
    }
    loaded = [r[0] for r in conn.execute(f"SELECT {key} FROM raw.{table} ORDER BY 1").fetchall()]
    assert loaded == sorted(set(first) | set(second))  # every key exactly once
    quarantined = conn.execute(f"SELECT {key}, _partition_date FROM raw_quarantine.{table} ORDER BY 1").fetchall()
    assert quarantined == [("a", DAY2), ("c", DAY2), ("d", DAY2)]

    # idempotent: re-loading either day (in any order) changes nothing; a day is no duplicate of itself
    before = conn.execute(f"SELECT * FROM raw.{table} ORDER BY ALL").fetchall()
    for day in (DAY2, DAY1, DAY2):
        load_partition(conn, table, tmp_path, day)
    assert conn.execute(f"SELECT * FROM raw.{table} ORDER BY ALL").fetchall() == before
    assert conn.execute(f"SELECT count(*) FROM raw_quarantine.{table}").fetchone()[0] == 3


def test_the_first_seen_day_is_the_earliest_of_several(tmp_path, conn):
    days = [date(2026, 9, d) for d in (1, 2, 3)]
    for day, ids in zip(days, (["x"], ["y"], ["y", "x"])):
        write_day(tmp_path, "orders", frame_for("orders", ids, day), day, fmt="csv")
    reports = load_days(conn, "orders", tmp_path, days)
    assert reports[2].quarantine_reasons == {
        "duplicate key (order_id), first seen on 2026-09-01": 1,
        "duplicate key (order_id), first seen on 2026-09-02": 1,
    }


def test_undated_files_give_the_same_cross_day_verdicts_in_one_range_as_day_by_day(tmp_path):
    frame = pd.concat([frame_for("predictions", ["a", "b"], DAY1), frame_for("predictions", ["b", "c"], DAY2)])
    write = tmp_path / "predictions"
    write.mkdir()
    frame.to_csv(write / "predictions.csv", index=False)
    with duckdb.connect() as together, duckdb.connect() as apart:
        ranged = load_days(together, "predictions", tmp_path, [DAY1, DAY2])
        single = [load_partition(apart, "predictions", tmp_path, d) for d in (DAY1, DAY2)]
        assert (
            [r.quarantine_reasons for r in ranged]
            == [r.quarantine_reasons for r in single]
            == [{}, {f"duplicate key (prediction_id), first seen on {DAY1}": 1}]
        )
        for c in (together, apart):
            assert c.execute("SELECT count(*), count(DISTINCT prediction_id) FROM raw.predictions").fetchone() == (3, 3)


def test_a_key_quarantined_on_its_first_day_may_be_loaded_when_sent_again(tmp_path, conn):
    # only loaded rows count as seen: a row fixed and re-sent the next day is not a duplicate
    bad = frame_for("predictions", ["a"], DAY1).assign(score=1.5)
    write_day(tmp_path, "predictions", bad, DAY1)
    write_day(tmp_path, "predictions", frame_for("predictions", ["a"], DAY2), DAY2)
    load_days(conn, "predictions", tmp_path, [DAY1, DAY2])
    assert conn.execute("SELECT prediction_id, _partition_date FROM raw.predictions").fetchall() == [("a", DAY2)]


def test_the_lookup_reads_only_the_keys_of_the_day_being_loaded(tmp_path, conn):
    # bounded cost: the earlier days are probed with the day's keys (a semi join), not joined row by row
    from orchestration.lib import raw_loader

    write_day(tmp_path, "orders", frame_for("orders", ["a"], DAY1), DAY1)
    load_partition(conn, "orders", tmp_path, DAY1)
    statements = []
    real = conn.execute

    class Spy:
        def __getattr__(self, name):
            return getattr(conn, name)

        def execute(self, sql, *args):
            statements.append(sql)
            return real(sql, *args)

    write_day(tmp_path, "orders", frame_for("orders", ["a", "b"], DAY2), DAY2)
    raw_loader.load_partition(Spy(), "orders", tmp_path, DAY2)
    [lookup] = [s for s in statements if "_seen AS" in s]
    assert "SEMI JOIN (SELECT DISTINCT" in lookup and "_partition_date < DATE '2026-09-03'" in lookup


# ------------------------------------------------- a column's type changes between files


def epoch_seconds(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """``frame`` with ``column`` written as epoch seconds (BIGINT), as some exporters write times."""
    return frame.assign(**{column: (frame[column] - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)})


def test_a_parquet_day_whose_time_column_is_another_type_is_named_as_a_day_alone_names_it(tmp_path, conn):
    # one read_parquet(union_by_name) over both days stopped at a DuckDB Conversion Error advising union_by_name
    # (on already); the range now loads the good day and names the bad one as loading it alone does
    write_day(tmp_path, "orders", frame_for("orders", ["a", "b"], DAY1), DAY1)
    write_day(tmp_path, "orders", epoch_seconds(frame_for("orders", ["c", "d", "e"], DAY2), "ordered_at"), DAY2)
    alone = load_error(conn, tmp_path, "orders", DAY2)
    assert alone.startswith(f"{tmp_path / 'orders' / f'orders_{DAY2}.parquet'}: table 'orders', column 'ordered_at'")
    assert "3 value(s) cannot be cast to TIMESTAMP" in alone and "(epoch seconds?" in alone
    with duckdb.connect() as fresh:
        with pytest.raises(ContractError) as err:
            load_days(fresh, "orders", tmp_path, [DAY1, DAY2])
        assert str(err.value) == alone
        assert fresh.execute("SELECT _partition_date, count(*) FROM raw.orders GROUP BY ALL").fetchall() == [(DAY1, 2)]


def test_undated_parquet_files_whose_types_disagree_name_the_file_of_the_bad_values(tmp_path, conn):
    folder = tmp_path / "orders"
    folder.mkdir()
    frame_for("orders", ["a"], DAY1).to_parquet(folder / "orders_part1.parquet", index=False)
    epoch_seconds(frame_for("orders", ["b", "c"], DAY2), "ordered_at").to_parquet(folder / "orders_part2.parquet")
    with pytest.raises(ContractError) as err:
        load_days(conn, "orders", tmp_path, [DAY1, DAY2])
    message = str(err.value)
    assert message.startswith(f"{folder / 'orders_part2.parquet'}: table 'orders', column 'ordered_at': 2 value(s)")
    assert "(epoch seconds?" in message


def test_parquet_types_union_by_name_combines_are_read_as_they_were(tmp_path):
    # only types one scan cannot combine are read as text: a BIGINT and a DOUBLE stay one DOUBLE column
    from orchestration.lib.raw_loader import _scan_sql, parquet_clashes

    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pd.DataFrame({"x": [1], "t": pd.to_datetime(["2026-01-01"])}).to_parquet(first)
    pd.DataFrame({"x": [1.5], "t": pd.to_datetime(["2026-01-02"]).date}).to_parquet(second)
    assert parquet_clashes([first, second]) == {}
    assert duckdb.sql(f"DESCRIBE SELECT x, t FROM {_scan_sql([first, second])}").fetchall()[0][1] == "DOUBLE"
    pd.DataFrame({"x": [1], "t": [20260102]}).to_parquet(second)
    assert parquet_clashes([first, second]) == {first: {"t": "TIMESTAMP"}, second: {"t": "BIGINT"}}
    read = duckdb.sql(f"SELECT filename, x, t FROM {_scan_sql([first, second])}").fetchall()
    assert read == [(str(first), 1, "2026-01-01 00:00:00"), (str(second), 1, "20260102")]  # the files' order


def test_a_conversion_error_reading_a_file_is_one_line_naming_it():
    # the loader's safety net, should a scan meet types it cannot combine: DuckDB's 8-line advice to enable
    # union_by_name (on already) as one line naming the file and the column
    from orchestration.lib.raw_loader import _is_reader_error, reader_error

    text = (
        'Conversion Error: Error while reading file "/z/orders/orders_2026-04-21.parquet": failed to cast column '
        '"ordered_at" from type BIGINT to TIMESTAMP: : Unimplemented type for cast (BIGINT -> TIMESTAMP)\n\n'
        "This can happen when reading multiple Parquet files. ...\n* Enable the union_by_name=True option"
    )
    err = duckdb.ConversionException(text)
    assert _is_reader_error(err) and not _is_reader_error(duckdb.ConversionException("Conversion Error: x"))
    assert str(reader_error(err, "orders", [])) == (
        "/z/orders/orders_2026-04-21.parquet: table 'orders': column 'ordered_at' is BIGINT in this file but "
        "TIMESTAMP in the other files read with it; write it with one type in every file"
    )


# ------------------------------------------------------------------- the CLI


@pytest.mark.parametrize("case", ["unclosed_quote", "zero_byte_parquet", "epoch_parquet_day"])
def test_materialize_prints_one_line_for_a_bad_file_and_no_traceback(tmp_path, monkeypatch, capfd, case):
    # the command's main() in this process (a console script adds only its exit), its output read off the file
    # descriptors: what Dagster, dbt or DuckDB would print there is caught too
    from orchestration.cli import main

    zone = tmp_path / "zone"
    # the columns the demo's project file (the tests' default) names as protected attributes
    put(zone, "users", b"user_id,signup_at,gender,age_band,country\nu1,2026-01-01,f,25-34,DE\n", day=None)
    if case == "epoch_parquet_day":  # a range of Parquet days, the second's time column in epoch seconds
        write_day(zone, "predictions", frame_for("predictions", ["a", "b"], DAY1), DAY1)
        bad = epoch_seconds(frame_for("predictions", ["c", "d", "e"], DAY2), "predicted_at")
        write_day(zone, "predictions", bad, DAY2)
        path = zone / "predictions" / f"predictions_{DAY2}.parquet"
    else:
        path = (
            put(zone, "predictions", BAD_CSV["unclosed_quote"][0].encode())
            if case == "unclosed_quote"
            else put(zone, "predictions", b"", suffix="parquet")
        )
    (tmp_path / "dagster").mkdir()
    (tmp_path / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    # the variables the command sets for its run, restored after the test (the first partition stays the
    # tests' IMPACT_LEDGER_START_DATE: a process's definitions keep the first one they were loaded with)
    for var, value in (
        ("DAGSTER_HOME", tmp_path / "dagster"),
        ("IMPACT_LEDGER_DB", tmp_path / "w.duckdb"),
        ("IMPACT_LEDGER_SOURCE", zone),
    ):
        monkeypatch.setenv(var, str(value))
    first = DAY1 if case == "epoch_parquet_day" else DAY2
    code = main(["materialize", "--source", str(zone), "--start", str(first), "--end", str(DAY2)])
    out, err = capfd.readouterr()
    assert code == 1
    [line] = err.strip().splitlines()
    assert f"{path}: table 'predictions'" in line and (
        "line 3: a quoted value is never closed" in line
        or "the Parquet file is empty (0 bytes)" in line
        or "column 'predicted_at': 3 value(s) cannot be cast to TIMESTAMP" in line
        and "(epoch seconds?" in line
    ), line
    for text in (out, err):
        assert "Traceback" not in text and "Stack Trace" not in text


def test_a_row_two_fields_too_long_is_counted_right(tmp_path):
    # DuckDB's "Found" stops where it gave up: a line of 8 fields under a 6-column header read "7 fields"
    import duckdb

    from orchestration.lib.raw_loader import _scan_sql, reader_error

    path = tmp_path / "orders_2026-12-04.csv"
    path.write_text("a,b,c,d,e,f\n1,2,3,4,5,6\n1,2,3,4,5,6,x,y\n")
    with pytest.raises(duckdb.Error) as err:
        duckdb.sql(f"SELECT * FROM {_scan_sql([path], 'orders')}").fetchall()
    message = str(reader_error(err.value, "orders", [path]))
    assert "line 3: the row has 8 fields but the header names 6 columns" in message


def test_a_misspelt_protected_attribute_stops_the_run_at_the_users_table_naming_it(tmp_path, monkeypatch):
    # `afram` for the users column `afam` failed only in dbt's compile step, after every raw table had loaded and
    # passed its gate, inside ~60 lines of dbt's output
    zone = tmp_path / "zone"
    put(zone, "users", b"user_id,signup_at,afam\nu1,2026-01-01,yes\nu2,2026-01-01,no\n", day=None)
    write_day(zone, "predictions", frame_for("predictions", ["a"], DAY2), DAY2)
    project = tmp_path / "project.yml"
    project.write_text("protected_attributes: [afram]\n")
    for var, value in (
        ("IMPACT_LEDGER_CONFIG", project),
        ("IMPACT_LEDGER_DB", tmp_path / "w.duckdb"),
        ("IMPACT_LEDGER_SOURCE", zone),
        ("IMPACT_LEDGER_EXPORTS", tmp_path / "exports"),
        ("IMPACT_LEDGER_ANALYTICS_DB", tmp_path / "analytics.duckdb"),
    ):
        monkeypatch.setenv(var, str(value))
    from orchestration.runs import materialize_days

    outcome = materialize_days(DAY2, DAY2)
    assert not outcome.success
    [failure] = [f for f in outcome.failures if "protected_attributes" in f]
    assert "raw.users" in failure and "'afram'" in failure and "did you mean 'afam'?" in failure
    assert not any("dbt" in f for f in outcome.failures)


def test_a_misspelt_attribute_is_offered_only_the_users_tables_own_columns():
    # a trial's users had no gender column; `gendr` was answered "did you mean 'gender'?" and a column list with the
    # contract's optional columns the loader adds empty (gender, age_band)
    import duckdb

    from orchestration.lib.raw_loader import check_attribute_columns

    with duckdb.connect() as conn:
        conn.execute(
            "CREATE SCHEMA raw; CREATE TABLE raw.users AS SELECT 'u1' AS user_id, DATE '2026-01-01' AS signup_at, "
            "NULL::VARCHAR AS country, 'v' AS segment, NULL::VARCHAR AS gender, NULL::VARCHAR AS age_band, "
            "'1' AS male"
        )
        with pytest.raises(ContractError) as err:
            check_attribute_columns(conn, {"gendr": ["gendr"]})
    said = str(err.value)
    assert "(its columns: user_id, signup_at, segment, male)" in said and "did you mean" not in said


def test_a_misspelt_attribute_of_another_case_and_separators_is_offered_its_column():
    # a trial wrote the source's 'StoreID' for the users' 'store_id': difflib's ratio 0.53, no hint (README promises
    # the nearest column)
    import duckdb

    from orchestration.lib.raw_loader import check_attribute_columns

    with duckdb.connect() as conn:
        conn.execute(
            "CREATE SCHEMA raw; CREATE TABLE raw.users AS SELECT 'u1' AS user_id, 7 AS store_id, 'x' AS Region"
        )
        with pytest.raises(ContractError) as err:
            check_attribute_columns(conn, {"StoreID": ["StoreID"], "regoin": ["regoin"]})
    said = str(err.value)
    assert "'StoreID': did you mean 'store_id'?" in said and "'regoin': did you mean 'Region'?" in said


def test_an_attribute_naming_an_optional_column_the_users_files_lack_is_missing_not_one_unknown_group():
    # a trial named 'gender' for its 'sex': the contract's optional gender column, all null, made one group
    # 'gender=unknown' judged "not assessed" in every window, the run a success
    import duckdb

    from orchestration.lib.raw_loader import check_attribute_columns

    with duckdb.connect() as conn:
        conn.execute(
            "CREATE SCHEMA raw; CREATE TABLE raw.users AS SELECT * FROM (VALUES ('u1', 'female', NULL::VARCHAR), "
            "('u2', 'male', NULL::VARCHAR)) AS t(user_id, sex, gender)"
        )
        with pytest.raises(ContractError) as err:
            check_attribute_columns(conn, {"gender": ["gender"], "sex": ["sex"]})
        assert "column(s) 'gender' that the users table does not have (its columns: user_id, sex)" in str(err.value)
        conn.execute("UPDATE raw.users SET gender = sex WHERE user_id = 'u1'")  # one value: the files have it
        check_attribute_columns(conn, {"gender": ["gender"], "sex": ["sex"]})


def test_a_source_column_that_appears_on_a_later_day_is_said_by_the_run_that_adds_it(tmp_path, monkeypatch):
    # a vendor added `model_build_id` to predictions on day 28: kept as an extra column without a word
    zone = tmp_path / "zone"
    put(zone, "users", b"user_id,signup_at,gender,age_band,country\nu1,2026-01-01,f,25-34,DE\n", day=None)
    write_day(zone, "predictions", frame_for("predictions", ["a", "b"], DAY1), DAY1)
    later = frame_for("predictions", ["c"], DAY2).assign(model_build_id="b-17")
    write_day(zone, "predictions", later, DAY2)
    for var, value in (
        ("IMPACT_LEDGER_DB", tmp_path / "w.duckdb"),
        ("IMPACT_LEDGER_SOURCE", zone),
        ("IMPACT_LEDGER_EXPORTS", tmp_path / "exports"),
        ("IMPACT_LEDGER_ANALYTICS_DB", tmp_path / "analytics.duckdb"),
    ):
        monkeypatch.setenv(var, str(value))
    from orchestration.runs import materialize_days

    said = []
    assert materialize_days(DAY1, DAY1, progress=said.append).success
    assert not [line for line in said if "new source column" in line]  # a first load's columns are all new
    assert materialize_days(DAY2, DAY2, progress=said.append).success
    [line] = [line for line in said if "new source column" in line]
    assert line.endswith(
        "raw.predictions: new source column(s) kept in raw.predictions (as extra columns, empty on earlier days): "
        "model_build_id"
    )
