"""Contract enforcement on small hand-made files: clear errors, quarantine reasons, nothing lost."""

from datetime import date, timedelta

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orchestration.lib.contract import COPY_REASON, ContractError
from orchestration.lib.raw_loader import load_days, load_partition

DAY = date(2026, 9, 3)


def predictions(**overrides) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "prediction_id": ["p1", "p2", "p3"],
            "model_id": ["m1"] * 3,
            "model_version": ["v1"] * 3,
            "user_id": ["u1", "u2", "u3"],
            "predicted_at": pd.to_datetime(["2026-09-03 01:00", "2026-09-03 12:00", "2026-09-03 23:59"]),
            "score": [0.1, 0.6, 0.9],
            "threshold": [0.5] * 3,
            "feature_device": ["ios", "web", "ios"],
        }
    )
    for col, values in overrides.items():
        frame[col] = values
    return frame


def write(source, table, frame, day=DAY, fmt="parquet"):
    folder = source / table
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (f"{table}_{day.isoformat()}.{fmt}" if day else f"{table}.{fmt}")
    frame.to_parquet(path, index=False) if fmt == "parquet" else frame.to_csv(path, index=False)
    return path


@pytest.fixture
def conn():
    with duckdb.connect() as c:
        yield c


def quarantine(conn, table):
    return conn.execute(f"SELECT * FROM raw_quarantine.{table} ORDER BY _source_row").df()


def test_clean_day_loads_every_row_and_keeps_extra_columns(tmp_path, conn):
    write(tmp_path, "predictions", predictions())
    report = load_partition(conn, "predictions", tmp_path, DAY)
    assert (report.rows_read, report.rows_loaded, report.rows_quarantined) == (3, 3, 0)
    loaded = conn.execute("SELECT prediction_id, feature_device FROM raw.predictions ORDER BY 1").fetchall()
    assert loaded == [("p1", "ios"), ("p2", "web"), ("p3", "ios")]


def test_an_extra_column_first_seen_mid_range_is_added_and_the_earlier_days_read_null(tmp_path, conn):
    """One ranged load: the raw table's columns are read once, and a column new on a later day is still added
    (in any letter case, as DuckDB's names ignore case)."""
    day2 = date(2026, 9, 4)
    write(tmp_path, "predictions", predictions())
    later = predictions(prediction_id=["p4", "p5", "p6"], predicted_at=pd.to_datetime(["2026-09-04 01:00"] * 3))
    write(tmp_path, "predictions", later.assign(feature_tier=["a", "b", None], FEATURE_DEVICE=["x", "y", "z"]), day2)
    reports = load_days(conn, "predictions", tmp_path, [DAY, day2])
    assert [r.rows_loaded for r in reports] == [3, 3]
    rows = conn.execute("SELECT prediction_id, feature_tier FROM raw.predictions ORDER BY 1").fetchall()
    assert rows == [("p1", None), ("p2", None), ("p3", None), ("p4", "a"), ("p5", "b"), ("p6", None)]
    columns = [r[0] for r in conn.execute("DESCRIBE raw_quarantine.predictions").fetchall()]
    assert "feature_tier" in columns and [c.lower() for c in columns].count("feature_device") == 1


def test_row_rule_breaks_are_quarantined_with_reasons_and_nothing_is_lost(tmp_path, conn):
    frame = predictions(
        prediction_id=["p1", "p1", None],
        score=[0.2, 0.3, 1.7],
        predicted_at=pd.to_datetime(["2026-09-03 01:00", "2026-09-03 02:00", "2026-09-04 00:30"]),
    )
    write(tmp_path, "predictions", frame)
    report = load_partition(conn, "predictions", tmp_path, DAY)
    assert report.rows_read == 3 == report.rows_loaded + report.rows_quarantined
    assert report.rows_loaded == 1
    q = quarantine(conn, "predictions")
    assert q.loc[0, "_reason"] == "duplicate key (prediction_id)"
    reasons = set(q.loc[1, "_reason"].split("; "))
    assert reasons == {"null prediction_id", "score outside [0, 1]", "predicted_at outside partition day 2026-09-03"}
    assert report.quarantine_reasons["duplicate key (prediction_id)"] == 1


def test_nan_and_null_scores_are_quarantined(tmp_path, conn):
    table = pa.Table.from_pandas(predictions(), preserve_index=False)
    scores = pa.array([0.2, float("nan"), None], type=pa.float64())  # a real NaN, not a null
    path = tmp_path / "predictions" / f"predictions_{DAY}.parquet"
    path.parent.mkdir()
    pq.write_table(table.set_column(table.column_names.index("score"), "score", scores), path)
    report = load_partition(conn, "predictions", tmp_path, DAY)
    assert report.quarantine_reasons == {"score outside [0, 1]": 1, "null score": 1}


def test_reloading_a_day_replaces_it(tmp_path, conn):
    write(tmp_path, "predictions", predictions(score=[0.2, 1.5, 0.4]))
    for _ in range(3):
        load_partition(conn, "predictions", tmp_path, DAY)
    assert conn.execute("SELECT count(*) FROM raw.predictions").fetchone()[0] == 2
    assert conn.execute("SELECT count(*) FROM raw_quarantine.predictions").fetchone()[0] == 1


def test_missing_required_column_names_file_table_and_column(tmp_path, conn):
    path = write(tmp_path, "predictions", predictions().drop(columns=["score"]))
    with pytest.raises(ContractError) as err:
        load_partition(conn, "predictions", tmp_path, DAY)
    message = str(err.value)
    assert str(path) in message and "'predictions'" in message and "'score'" in message
    assert "the file has" not in message  # no column like it
    assert "the file's other columns" not in message  # and none outside the contract (features are its own)
    # 'score' exported as 'probability': the column outside the contract is named as the likely rename
    write(tmp_path, "predictions", predictions().rename(columns={"score": "probability"}))
    with pytest.raises(ContractError, match="the file's other columns: probability: one of them renamed"):
        load_partition(conn, "predictions", tmp_path, DAY)


def test_a_missing_column_message_names_every_missing_column_and_the_others_in_a_stable_order():
    # init passed a set of columns: each run named a different five, often not the renamed ones
    from orchestration.lib.contract import CONTRACTS
    from orchestration.lib.raw_loader import missing_column

    present = {"application_id", "customer_id", "model", "version", "scored_at", "pd_score", "cutoff", "balance"}
    messages = {missing_column("f.csv", CONTRACTS["predictions"], "prediction_id", set(present)) for _ in range(5)}
    assert len(messages) == 1
    [message] = messages
    required = [c.name for c in CONTRACTS["predictions"].columns if c.required]
    missing = [c for c in required if c != "prediction_id"]
    assert f"(also missing: {', '.join(missing)})" in message
    assert f"the file's other columns: {', '.join(sorted(present))}: one of them renamed?" in message
    # a file's own order is kept (a header read from the file)
    header = ["scored_at", "pd_score", "model"]
    assert "other columns: scored_at, pd_score, model:" in missing_column(
        "f.csv", CONTRACTS["predictions"], "score", header
    )


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_required_column_named_in_another_case_is_named_beside_the_missing_one(tmp_path, conn, fmt):
    write(tmp_path, "predictions", predictions().rename(columns={"score": " Score"}), fmt=fmt)
    with pytest.raises(ContractError, match="missing required column 'score'") as err:
        load_partition(conn, "predictions", tmp_path, DAY)
    assert str(err.value).endswith(
        "; the file has ' Score': contract column names are matched exactly (lower case, with _)"
    )


@pytest.mark.parametrize("named", ["Prediction ID", "predictionId", "PREDICTION-ID"])
def test_a_required_column_named_with_spaces_or_camel_case_is_named_and_optional_ones_are_not_required(
    tmp_path, conn, named
):
    # 'Prediction ID' from a BI export got no hint, and the message listed the optional threshold as required
    write(tmp_path, "predictions", predictions().rename(columns={"prediction_id": named}))
    with pytest.raises(ContractError, match="missing required column 'prediction_id'") as err:
        load_partition(conn, "predictions", tmp_path, DAY)
    message = str(err.value)
    assert f"the file has {named!r}" in message
    required = message.split("(required: ")[1].split(";")[0]
    assert "threshold" not in required and "score" in required and "threshold" in message.split("optional: ")[1]


def test_uncastable_value_names_file_table_and_column(tmp_path, conn):
    frame = predictions().astype({"score": str})
    frame.loc[1, "score"] = "high"
    path = write(tmp_path, "predictions", frame, fmt="csv")
    with pytest.raises(ContractError) as err:
        load_partition(conn, "predictions", tmp_path, DAY)
    message = str(err.value)
    assert str(path) in message and "'predictions'" in message and "'score'" in message and "high" in message
    # a failed load leaves nothing half-written
    assert conn.execute("SELECT count(*) FROM raw.predictions").fetchone()[0] == 0


def labels(values) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "prediction_id": [f"p{i}" for i in range(len(values))],
            "label": values,
            "labeled_at": pd.Timestamp("2026-09-03 12:00"),
            "label_source": "implicit",
        }
    )


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_label_written_as_a_whole_float_loads_and_a_fraction_stops_the_load(tmp_path, conn, fmt):
    """pandas writes a label column with a gap as 1.0 / 0.0: those are labels. 0.7 is not: DuckDB's cast would round
    it to 1 (Spark's truncate it to 0), silently a label either way."""
    write(tmp_path / "whole", "labels", labels([1.0, 0.0, None]), fmt=fmt)
    report = load_partition(conn, "labels", tmp_path / "whole", DAY)
    assert (report.rows_loaded, report.quarantine_reasons) == (2, {"null label": 1})
    assert conn.execute("SELECT label FROM raw.labels ORDER BY prediction_id").fetchall() == [(1,), (0,)]
    path = write(tmp_path / "fraction", "labels", labels([1.0, 0.7, 0.0]), fmt=fmt)
    with pytest.raises(ContractError) as err:
        load_partition(conn, "labels", tmp_path / "fraction", DAY)
    assert str(err.value) == (
        f"{path}: table 'labels', column 'label': labels must be 0 or 1, and 1 value(s) are not: '0.7' (1) "
        "(not whole numbers: a 0/1 label is never a fraction or a probability)"
    )


def test_whole_float_ids_land_as_the_integers_other_tables_hold(tmp_path, conn):
    # pandas writes integer user ids with a gap as float64: raw.users held '2.0', the predictions' user_id '2', so
    # the gate's user_known rule failed every prediction of a known user
    users = pd.DataFrame({"user_id": [1.0, 2.0, None, 2.5], "signup_at": pd.Timestamp("2026-01-01")})
    write(tmp_path, "users", users, day=None)
    write(tmp_path, "predictions", predictions(user_id=[1, 2, 3]))
    report = load_partition(conn, "users", tmp_path, DAY)
    assert report.quarantine_reasons == {"null user_id": 1}
    load_partition(conn, "predictions", tmp_path, DAY)
    assert conn.execute("SELECT user_id FROM raw.users ORDER BY 1").fetchall() == [("1",), ("2",), ("2.5",)]
    known = conn.execute("SELECT user_id FROM raw.predictions WHERE user_id IN (SELECT user_id FROM raw.users)")
    assert sorted(known.fetchall()) == [("1",), ("2",)]


def test_a_score_with_a_decimal_comma_stops_the_load_saying_so(tmp_path, conn):
    path = write(tmp_path, "predictions", predictions(score=["0,1", "0,6", "0,9"]), fmt="csv")
    with pytest.raises(ContractError) as err:
        load_partition(conn, "predictions", tmp_path, DAY)
    assert str(err.value) == (
        f"{path}: table 'predictions', column 'score': 3 value(s) cannot be cast to DOUBLE, e.g. ['0,1', '0,6', '0,9'] "
        "(decimal commas? write a point, e.g. 0.5)"
    )


def test_the_examples_of_values_that_cannot_be_cast_are_distinct(tmp_path, conn):
    # a trial's yes/no labels: "210 value(s) cannot be cast to BIGINT, e.g. ['no', 'no', 'no']" hid the 'yes'
    # (now each with its count, the most frequent first)
    path = write(tmp_path, "labels", labels(["no", "no", "no", "yes", "no"]), fmt="csv")
    with pytest.raises(ContractError) as err:
        load_partition(conn, "labels", tmp_path, DAY)
    assert str(err.value) == (
        f"{path}: table 'labels', column 'label': labels must be 0 or 1, and 5 value(s) are not: 'no' (4), 'yes' (1) "
        "(yes/no or true/false words? write 1 or 0)"
    )


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_labels_written_as_the_outcomes_names_are_named_with_their_counts_and_what_to_write(tmp_path, conn, fmt):
    # a trial's labels held the brand bought ('MM', 'CH'): "1000 value(s) cannot be cast to BIGINT" said neither
    # what a label is nor what to do
    names = ["CH"] * 588 + ["MM"] * 412
    path = write(tmp_path, "labels", labels(names), fmt=fmt)
    with pytest.raises(ContractError) as err:
        load_partition(conn, "labels", tmp_path, DAY)
    counts = pd.Series(names).value_counts()  # the oracle: the most frequent first
    found = ", ".join(f"'{v}' ({n})" for v, n in counts.items())
    assert str(err.value) == (
        f"{path}: table 'labels', column 'label': labels must be 0 or 1, and {len(names)} value(s) are not: {found} "
        "(the outcome's names? map the outcome to 1 for the positive class and 0 for the other)"
    )


def test_a_label_column_of_many_names_shows_the_most_frequent_and_counts_the_others(tmp_path, conn):
    names = ["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"] * 2 + ["e"] + ["1"] * 6  # the 1s are labels: not counted
    write(tmp_path, "labels", labels(names), fmt="csv")
    with pytest.raises(ContractError) as err:
        load_partition(conn, "labels", tmp_path, DAY)
    assert str(err.value).endswith(
        "labels must be 0 or 1, and 15 value(s) are not: 'a' (5), 'b' (4), 'c' (3) and 2 other value(s) "
        "(the outcome's names? map the outcome to 1 for the positive class and 0 for the other)"
    )


def test_csv_source_is_typed_like_parquet(tmp_path, conn):
    write(tmp_path, "predictions", predictions(), fmt="csv")
    load_partition(conn, "predictions", tmp_path, DAY)
    types = dict(
        conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema='raw' AND table_name='predictions'"
        ).fetchall()
    )
    assert types["score"] == "DOUBLE" and types["predicted_at"] == "TIMESTAMP"


def test_gzip_csv_loads_the_rows_of_the_plain_csv_and_tool_markers_are_ignored(tmp_path, conn):
    """Exports are often gzipped (orders.csv.gz): read as the same CSV, named in each row's _source_file; the
    files tools leave beside data (Spark's _SUCCESS, .DS_Store) are not data."""
    import gzip
    import shutil

    plain = write(tmp_path / "plain", "predictions", predictions(), fmt="csv")
    zipped = tmp_path / "zipped" / "predictions" / f"{plain.name}.gz"
    zipped.parent.mkdir(parents=True)
    with plain.open("rb") as src, gzip.open(zipped, "wb") as dst:
        shutil.copyfileobj(src, dst)
    for marker in ("_SUCCESS", ".DS_Store"):
        (zipped.parent / marker).write_text("")
    rows = {}
    for name in ("plain", "zipped"):
        with duckdb.connect() as c:
            report = load_partition(c, "predictions", tmp_path / name, DAY)
            assert (report.rows_read, report.rows_quarantined) == (3, 0)
            rows[name] = c.execute("SELECT * EXCLUDE (_source_file) FROM raw.predictions ORDER BY _source_row").df()
            assert {r[0] for r in c.execute("SELECT _source_file FROM raw.predictions").fetchall()} == {
                str(plain if name == "plain" else zipped)
            }
    pd.testing.assert_frame_equal(rows["plain"], rows["zipped"])


@pytest.mark.parametrize("table", ["orders", "users"])
def test_a_table_folder_of_files_no_format_reads_is_an_error_not_an_absent_table(tmp_path, conn, table):
    """orders.csv.zip alone would otherwise read as no orders at all: every revenue metric zero, silently."""
    (tmp_path / table).mkdir()
    (tmp_path / table / f"{table}.csv.zip").write_bytes(b"PK")
    (tmp_path / table / "_SUCCESS").write_text("")
    with pytest.raises(ContractError) as err:
        load_partition(conn, "orders" if table == "orders" else "users", tmp_path, DAY)
    assert f"1 file(s) of table '{table}' not read ({table}/{table}.csv.zip)" in str(err.value)
    assert "*.parquet, *.csv, *.csv.gz" in str(err.value) and "_SUCCESS" not in str(err.value)


def test_unknown_variant_and_reassignment_are_quarantined(tmp_path, conn):
    write(
        tmp_path,
        "experiments",
        pd.DataFrame(
            {
                "experiment_id": ["e1"],
                "model_id": ["m1"],
                "control_variant": ["holdout"],
                "start_date": [date(2026, 9, 1)],
                "end_date": [date(2026, 12, 1)],
            }
        ),
        day=None,
    )
    write(
        tmp_path,
        "experiment_variants",
        pd.DataFrame(
            {"experiment_id": ["e1", "e1"], "variant": ["holdout", "treatment"], "expected_share": [0.1, 0.9]}
        ),
        day=None,
    )
    for table in ("experiments", "experiment_variants"):
        load_partition(conn, table, tmp_path, DAY)
    day1 = pd.DataFrame(
        {
            "experiment_id": ["e1", "e1"],
            "user_id": ["u1", "u2"],
            "variant": ["treatment", "shiny"],
            "assigned_at": pd.to_datetime(["2026-09-02 10:00", "2026-09-02 11:00"]),
        }
    )
    day2 = pd.DataFrame(
        {
            "experiment_id": ["e1"],
            "user_id": ["u1"],
            "variant": ["holdout"],
            "assigned_at": pd.to_datetime(["2026-09-03 10:00"]),
        }
    )
    write(tmp_path, "assignments", day1, day=date(2026, 9, 2))
    write(tmp_path, "assignments", day2, day=DAY)
    first = load_partition(conn, "assignments", tmp_path, date(2026, 9, 2))
    second = load_partition(conn, "assignments", tmp_path, DAY)
    assert first.quarantine_reasons == {"unknown variant for experiment": 1}
    # the generic cross-day key rule: the first assignment wins
    assert second.quarantine_reasons == {"duplicate key (experiment_id, user_id), first seen on 2026-09-02": 1}
    assert conn.execute("SELECT user_id, variant FROM raw.assignments").fetchall() == [("u1", "treatment")]
    # `summary` says the quarantined duplicate was an arm switch (a re-sent row with its first variant is not one)
    from orchestration.summary import _reassigned

    day3 = pd.DataFrame(
        {
            "experiment_id": ["e1", "e1"],
            "user_id": ["u1", "u3"],
            "variant": ["treatment", "holdout"],
            "assigned_at": pd.to_datetime(["2026-09-04 10:00", "2026-09-04 11:00"]),
        }
    )
    write(tmp_path, "assignments", day3, day=date(2026, 9, 4))
    load_partition(conn, "assignments", tmp_path, date(2026, 9, 4))
    assert sorted(quarantine(conn, "assignments")["user_id"]) == ["u1", "u1", "u2"]
    [note] = _reassigned(conn)  # u1 switched arms; of u1 and u3 assigned
    assert note.startswith("experiment e1: 1 of 2 assigned users (50.0%) were assigned again to another variant")


def test_undated_files_are_split_by_time_column(tmp_path, conn):
    frame = predictions(predicted_at=pd.to_datetime(["2026-09-02 10:00", "2026-09-03 10:00", "2026-09-03 11:00"]))
    write(tmp_path, "predictions", frame, day=None)
    report = load_partition(conn, "predictions", tmp_path, DAY)
    assert (report.rows_read, report.rows_loaded, report.rows_quarantined) == (2, 2, 0)


def test_missing_source_and_missing_table_are_clear_errors(tmp_path, conn):
    with pytest.raises(ContractError, match="does not exist"):
        load_partition(conn, "users", tmp_path / "nowhere", DAY)
    with pytest.raises(ContractError, match="no files for table 'users'.*the one table every source needs"):
        load_partition(conn, "users", tmp_path, DAY)


@pytest.mark.parametrize(
    "table",
    [
        "experiments",
        "experiment_variants",
        "assignments",
        "predictions",
        "labels",
        "feedback",
        "sessions",
        "orders",
        "model_costs",
    ],
)
def test_every_table_but_users_may_be_absent_and_loads_empty_with_a_note(tmp_path, conn, table):
    # a monitoring-only model has no experiments, sessions or orders; an A/B test no predictions or labels
    report = load_partition(conn, table, tmp_path, DAY)
    assert (report.rows_read, report.rows_loaded, report.rows_quarantined) == (0, 0, 0)
    assert report.note == f"table absent from source (optional): raw.{table} is empty"
    from orchestration.lib.contract import CONTRACTS

    columns = [r[0] for r in conn.execute(f"DESCRIBE raw.{table}").fetchall()]
    assert [c.name for c in CONTRACTS[table].columns] == columns[: len(CONTRACTS[table].columns)]
    assert conn.execute(f"SELECT count(*) FROM raw.{table}").fetchone()[0] == 0
    # the staging views read quality.gate_results: it exists from the first load on
    assert conn.execute("SELECT count(*) FROM quality.gate_results").fetchone()[0] == 0


def test_users_need_only_user_id_and_signup_at(tmp_path, conn):
    # country, segment, gender and age_band are optional: missing -> null (staging reads null as 'unknown');
    # a null demographic is not quarantined (the project file names the protected attributes)
    users = pd.DataFrame(
        {
            "user_id": ["u1", "u2"],
            "signup_at": pd.to_datetime(["2026-01-01", "2026-01-02"]),
            "race": ["a", None],
            "gender": [None, "female"],
        }
    )
    write(tmp_path, "users", users, day=None)
    report = load_partition(conn, "users", tmp_path, DAY)
    assert (report.rows_loaded, report.rows_quarantined) == (2, 0)
    rows = conn.execute("SELECT user_id, country, segment, gender, age_band, race FROM raw.users ORDER BY 1").fetchall()
    assert rows == [("u1", None, None, None, None, "a"), ("u2", None, None, "female", None, None)]
    write(tmp_path, "users", users.drop(columns=["signup_at"]), day=None)
    with pytest.raises(ContractError, match="missing required column 'signup_at'"):
        load_partition(conn, "users", tmp_path, DAY)


def test_predictions_without_a_threshold_column_load_with_null_thresholds(tmp_path, conn):
    write(tmp_path, "predictions", predictions().drop(columns=["threshold"]))
    report = load_partition(conn, "predictions", tmp_path, DAY)
    assert (report.rows_loaded, report.rows_quarantined) == (3, 0)
    assert conn.execute("SELECT count(threshold) FROM raw.predictions").fetchone()[0] == 0
    # a logged threshold outside [0, 1] is still quarantined
    write(tmp_path, "predictions", predictions(threshold=[0.5, None, 1.5]))
    report = load_partition(conn, "predictions", tmp_path, DAY)
    assert report.quarantine_reasons == {"threshold outside [0, 1]": 1}


# ------------------------------------------------------------ UTC offsets

OFFSET_STAMPS = [
    "2026-09-03T23:18:53+02:00",
    "2026-09-02T22:30:00-05:00",
    "2026-09-03T12:00:00Z",
    "2026-09-03 08:00:00",
]
# what each means in UTC (pandas parses each offset independently; naive values are UTC)
OFFSET_UTC = [
    pd.Timestamp(s).tz_convert("UTC").tz_localize(None) if pd.Timestamp(s).tzinfo else pd.Timestamp(s)
    for s in OFFSET_STAMPS
]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_offsets_in_timestamps_become_utc_and_place_rows_on_their_utc_day(tmp_path, conn, fmt):
    # mixed forms in one column: +02:00, -05:00, Z and naive; as text in CSV and in Parquet
    frame = pd.DataFrame(
        {
            "prediction_id": [f"p{i}" for i in range(4)],
            "model_id": "m1",
            "model_version": "v1",
            "user_id": "u",
            "predicted_at": OFFSET_STAMPS,
            "score": 0.5,
            "threshold": 0.5,
        }
    )
    write(tmp_path, "predictions", frame, day=None, fmt=fmt)
    reports = {d: load_partition(conn, "predictions", tmp_path, d) for d in (date(2026, 9, 3), date(2026, 9, 4))}
    loaded = conn.execute("SELECT prediction_id, predicted_at, _partition_date FROM raw.predictions ORDER BY 1").df()
    assert list(loaded["predicted_at"]) == OFFSET_UTC
    # 23:18+02:00 is 21:18 UTC on the 3rd; 22:30-05:00 on the 2nd is 03:30 UTC on the 3rd
    assert [d.date() for d in pd.to_datetime(loaded["_partition_date"])] == [t.date() for t in OFFSET_UTC]
    assert reports[date(2026, 9, 3)].rows_read == 4 and reports[date(2026, 9, 4)].rows_read == 0


@pytest.mark.parametrize(
    "arrow_type",
    [pa.timestamp("us"), pa.timestamp("ms"), pa.timestamp("ns"), pa.timestamp("us", tz="Europe/Berlin")],
    ids=["timestamp_us", "timestamp_ms", "timestamp_ns", "zoned"],
)
def test_parquet_timestamp_columns_of_any_unit_or_zone_load_as_their_utc_instants(tmp_path, conn, arrow_type):
    # a naive microsecond column is the contract type already (taken as it is); other units and zoned columns are cast
    utc = pd.to_datetime(["2026-09-03 00:30:00", "2026-09-03 12:00:00.123456", "2026-09-03 23:59:59"], format="ISO8601")
    stamps = utc.tz_localize("UTC").tz_convert(arrow_type.tz) if arrow_type.tz else utc
    table = pa.Table.from_pandas(predictions(), preserve_index=False)
    column = pa.array(stamps, type=arrow_type) if arrow_type.unit != "ms" else pa.array(stamps.floor("ms"), arrow_type)
    table = table.set_column(table.schema.get_field_index("predicted_at"), "predicted_at", column)
    (tmp_path / "predictions").mkdir()
    pq.write_table(table, tmp_path / "predictions" / f"predictions_{DAY}.parquet")
    report = load_partition(conn, "predictions", tmp_path, DAY)
    assert (report.rows_loaded, report.rows_quarantined) == (3, 0)
    loaded = conn.execute("SELECT predicted_at FROM raw.predictions ORDER BY prediction_id").df()["predicted_at"]
    expected = utc.floor("ms") if arrow_type.unit == "ms" else utc
    assert list(loaded) == list(expected)
    assert conn.execute("SELECT typeof(predicted_at) FROM raw.predictions LIMIT 1").fetchone()[0] == "TIMESTAMP"


def test_keys_are_ranked_only_when_the_day_repeats_one_and_two_rows_without_a_key_repeat_it(tmp_path, conn):
    # a day of unique keys skips the ranking window; a repeated key, or two null keys (one partition), does not
    write(tmp_path, "predictions", predictions())
    assert load_partition(conn, "predictions", tmp_path, DAY).quarantine_reasons == {}
    write(tmp_path, "predictions", predictions(prediction_id=[None, "p2", None]))
    reasons = conn.execute("SELECT _source_row, _reason FROM raw_quarantine.predictions").fetchall()
    assert reasons == []
    load_partition(conn, "predictions", tmp_path, DAY)
    reasons = conn.execute("SELECT _source_row, _reason FROM raw_quarantine.predictions ORDER BY 1").fetchall()
    # each refused for its missing key, neither a duplicate of the other (a trial's two empty ids read "null
    # prediction_id; duplicate key (prediction_id)")
    assert reasons == [(1, "null prediction_id"), (3, "null prediction_id")]


def test_a_range_of_a_table_gone_from_the_source_clears_those_days_only(tmp_path, conn):
    # e.g. feedback dropped from the landing zone: the run's days lose their rows, the others keep theirs
    before, empty = tmp_path / "before", tmp_path / "empty"
    empty.mkdir()
    after = date(2026, 9, 4)
    write(before, "predictions", predictions())
    later = predictions(prediction_id=["p4", "p5", "p6"], predicted_at=pd.Timestamp("2026-09-04 10:00"))
    write(before, "predictions", later, day=after)
    assert [r.rows_loaded for r in load_days(conn, "predictions", before, [DAY, after])] == [3, 3]
    days = [date(2026, 9, 2), DAY]
    reports = load_days(conn, "predictions", empty, days)
    assert [(r.partition_date, r.rows_read, r.note) for r in reports] == [
        (d, 0, "table absent from source (optional): raw.predictions is empty") for d in days
    ]
    assert conn.execute("SELECT _partition_date, count(*) FROM raw.predictions GROUP BY 1").fetchall() == [(after, 3)]


def test_a_long_range_of_undated_files_stages_only_the_days_they_hold_and_clears_the_rest(tmp_path):
    # a year of late labels is mostly days without rows: the range is staged and checked once, not day by day
    days = [date(2026, 9, 1) + timedelta(days=i) for i in range(10)]
    stale_source, source = tmp_path / "before", tmp_path / "now"
    # an earlier load held a row on the 5th; the files now hold none of that day: the row must go
    stale = predictions(predicted_at=pd.Timestamp("2026-09-05 10:00")).head(1).assign(prediction_id="old")
    write(stale_source, "predictions", stale, day=date(2026, 9, 5))
    frame = predictions(
        prediction_id=["p1", "p2", "p2"],  # a duplicate: quarantined on the 8th
        predicted_at=pd.to_datetime(["2026-09-03 10:00", "2026-09-08 11:00", "2026-09-08 12:00"]),
        segment=["a", "b", "c"],  # an extra column: the raw tables get it though the first day has no rows
    )
    write(source, "predictions", frame, day=None, fmt="csv")
    staged = []
    with duckdb.connect() as together, duckdb.connect() as apart:
        for c in (together, apart):
            assert load_partition(c, "predictions", stale_source, date(2026, 9, 5)).rows_loaded == 1

        class Spy:  # counts the stagings (typed rows built) in the ranged load
            def __getattr__(self, name):
                return getattr(together, name)

            def execute(self, sql, *args):
                staged.extend(["day"] * sql.startswith("CREATE OR REPLACE TEMP TABLE _typed"))
                return together.execute(sql, *args)

        ranged = load_days(Spy(), "predictions", source, days)
        single = [load_partition(apart, "predictions", source, d) for d in days]  # each day staged: the oracle
        assert [(r.rows_read, r.rows_loaded, r.rows_quarantined, r.quarantine_reasons, r.note) for r in ranged] == [
            (r.rows_read, r.rows_loaded, r.rows_quarantined, r.quarantine_reasons, r.note) for r in single
        ]
        for table in ("raw.predictions", "raw_quarantine.predictions"):
            q = f"SELECT * FROM {table} ORDER BY prediction_id, predicted_at"
            pd.testing.assert_frame_equal(together.execute(q).df(), apart.execute(q).df())
        assert together.execute("SELECT count(*) FROM raw.predictions WHERE prediction_id = 'old'").fetchone() == (0,)
        assert "segment" in together.execute("SELECT * FROM raw.predictions").df().columns
    assert sum(r.rows_read for r in ranged) == len(frame) == 3  # rows in = loaded + quarantined
    assert len(staged) == 1  # the ten days together


def test_a_dated_file_keeps_offset_rows_of_its_utc_day(tmp_path, conn):
    # genuine rows of the 3rd written with an offset are not "outside partition day"
    frame = pd.DataFrame(
        {
            "prediction_id": ["a", "b"],
            "model_id": "m1",
            "model_version": "v1",
            "user_id": "u",
            "predicted_at": ["2026-09-04T01:30:00+02:00", "2026-09-02T21:00:00-05:00"],
            "score": 0.5,
            "threshold": 0.5,
        }
    )
    write(tmp_path, "predictions", frame, day=DAY, fmt="csv")
    report = load_partition(conn, "predictions", tmp_path, DAY)
    assert (report.rows_loaded, report.rows_quarantined) == (2, 0)


def test_undated_files_are_read_once_for_a_range_and_match_day_by_day(tmp_path):
    from orchestration.lib.raw_loader import load_days

    days = [date(2026, 9, d) for d in (2, 3, 4)]
    frame = predictions(
        prediction_id=["p1", "p2", "p2"],  # a duplicate on the 3rd
        predicted_at=pd.to_datetime(["2026-09-02 10:00", "2026-09-03 10:00", "2026-09-03 11:00"]),
    )
    write(tmp_path, "predictions", frame, day=None, fmt="csv")
    with duckdb.connect() as together, duckdb.connect() as apart:
        ranged = load_days(together, "predictions", tmp_path, days)
        single = [load_partition(apart, "predictions", tmp_path, d) for d in days]
        assert [(r.rows_read, r.rows_loaded, r.rows_quarantined, r.quarantine_reasons) for r in ranged] == [
            (r.rows_read, r.rows_loaded, r.rows_quarantined, r.quarantine_reasons) for r in single
        ]
        for table in ("raw.predictions", "raw_quarantine.predictions"):
            q = f"SELECT * FROM {table} ORDER BY prediction_id, predicted_at"
            pd.testing.assert_frame_equal(together.execute(q).df(), apart.execute(q).df())
    assert sum(r.rows_read for r in ranged) == len(frame)  # rows in = loaded + quarantined, over the range


def test_a_row_of_an_undated_file_keeps_its_place_in_the_file_whichever_days_a_run_loads(tmp_path):
    # one file of every day (a labels export, say): a run of its last day alone must still say which line of the
    # file a row came from (its first line of data is row 1), as a run of every day does
    frame = predictions(
        prediction_id=["p1", "p2", "p3"],
        predicted_at=pd.to_datetime(["2026-09-02 10:00", "2026-09-03 10:00", "2026-09-04 10:00"]),
        score=[0.1, 0.6, 1.5],  # the last: out of range, quarantined with its place too
    )
    path = write(tmp_path, "predictions", frame, day=None, fmt="csv")
    in_file = {pid: i + 1 for i, pid in enumerate(pd.read_csv(path)["prediction_id"])}
    for days in ([date(2026, 9, 4)], [date(2026, 9, 3), date(2026, 9, 4)], [date(2026, 9, d) for d in (2, 3, 4)]):
        with duckdb.connect() as conn:
            load_days(conn, "predictions", tmp_path, days)
            rows = conn.execute(
                "SELECT prediction_id, _source_row FROM raw.predictions UNION ALL "
                "SELECT prediction_id, _source_row FROM raw_quarantine.predictions"
            ).fetchall()
        assert len(rows) == len(days) and all(row == in_file[pid] for pid, row in rows), (days, rows)


def _run_rows(conn, days) -> dict[str, list]:
    listed = ", ".join(f"DATE '{d}'" for d in days)
    return {
        schema: conn.execute(
            f"SELECT * FROM {schema}.predictions WHERE _partition_date IN ({listed}) ORDER BY _partition_date, _source_row"
        ).fetchall()
        for schema in ("raw", "raw_quarantine")
    }


def test_a_range_loaded_at_once_equals_its_days_loaded_one_by_one(tmp_path, monkeypatch):
    # The oracle is the loader's day-by-day path. Key histories: first seen outside the run (before it and between
    # its days), loaded only on the day its earlier sighting broke a rule or another day's, twice in a day, NULL;
    # a row stamped with the next day; two files on one day; a day without a file inside the run; exact copies of a
    # loaded row and of a row seen before.
    from orchestration.lib import raw_loader

    d0, d1, d2, d3, d4, d5 = (DAY + timedelta(days=i) for i in range(6))
    days = {  # (prediction_id, score, the day of predicted_at)
        d0: [("pA", 0.1, d0), ("pX", 0.2, d0)],
        d1: [("pB", 1.5, d1), ("pC", 0.3, d1), ("pC", 0.4, d1), ("pF", 0.5, d2), (None, 0.5, d1)],
        d2: [("pA", 0.1, d2), ("pB", 0.2, d2), ("pC", 0.3, d2), ("pD", 0.4, d2), ("pF", 0.5, d2), (None, 0.5, d2)]
        + [("pD", 0.4, d2)],
        d3: [("pD", 0.4, d3), ("pE", 0.6, d3)],
        d4: [("pB", 0.2, d4), ("pD", 0.4, d4), ("pE", 0.6, d4), ("pF", 0.7, d4), ("pG", 0.8, d4), ("pB", 0.2, d4)],
    }
    for day, rows in days.items():
        ids, scores, at = zip(*rows, strict=True)
        frame = pd.DataFrame({"prediction_id": ids, "model_id": "m1", "model_version": "v1", "user_id": "u1"})
        frame["predicted_at"] = pd.to_datetime([f"{t} 08:00" for t in at])
        write(tmp_path, "predictions", frame.assign(score=scores), day)
    # a second file on d4, whose rows are numbered after the first file's
    extra = pd.DataFrame({"prediction_id": ["pH", "pG"], "model_id": "m1", "model_version": "v1", "user_id": "u2"})
    extra["predicted_at"] = pd.to_datetime([f"{d4} 09:00"] * 2)
    extra.assign(score=0.5).to_parquet(tmp_path / "predictions" / f"predictions_{d4}_b.parquet", index=False)
    run = [d1, d2, d4, d5]  # d3 was landed before the run, between its days; d5 has no file

    one_by_one, together = duckdb.connect(), duckdb.connect()
    for conn in (one_by_one, together):
        load_days(conn, "predictions", tmp_path, [d0, d3])
    want = [load_days(one_by_one, "predictions", tmp_path, [day])[0] for day in run]
    alone = []
    replace_day = raw_loader._replace_day
    monkeypatch.setattr(
        raw_loader, "_replace_day", lambda conn, c, day, *a: alone.append(day) or replace_day(conn, c, day, *a)
    )
    got = load_days(together, "predictions", tmp_path, run)
    assert not alone  # one pass, not the day-by-day path
    assert got == want
    assert _run_rows(together, run) == _run_rows(one_by_one, run)
    # a backfill of large days goes in batches (here one day each): the later ones read what the earlier landed
    monkeypatch.setattr(raw_loader, "BATCH_BYTES", 1)
    assert raw_loader.day_batches({d: ([tmp_path], True) for d in run[:2]}, undated=False) == [[d1], [d2]]
    in_batches = duckdb.connect()
    load_days(in_batches, "predictions", tmp_path, [d0, d3])
    assert load_days(in_batches, "predictions", tmp_path, run) == want and not alone
    assert _run_rows(in_batches, run) == _run_rows(one_by_one, run)
    in_batches.close()
    reasons = {
        (day, key): reason
        for day, _, key, reason in one_by_one.execute(
            "SELECT _partition_date, _source_row, prediction_id, _reason FROM raw_quarantine.predictions "
            "WHERE _reason <> ? UNION ALL SELECT _partition_date, _source_row, prediction_id, '' FROM raw.predictions",
            [COPY_REASON],
        ).fetchall()
    }
    # the histories by hand
    first_seen = "duplicate key (prediction_id), first seen on "
    assert reasons[(d2, "pA")] == first_seen + str(d0)
    assert reasons[(d1, "pB")] == "score outside [0, 1]" and reasons[(d2, "pB")] == ""
    assert reasons[(d4, "pB")] == reasons[(d4, "pD")] == first_seen + str(d2)
    assert reasons[(d2, "pC")] == first_seen + str(d1) and reasons[(d2, "pD")] == ""
    assert reasons[(d4, "pE")] == first_seen + str(d3)
    assert reasons[(d1, "pF")] == f"predicted_at outside partition day {d1}" and reasons[(d2, "pF")] == ""
    assert reasons[(d2, None)].startswith("null prediction_id") and reasons[(d4, "pH")] == ""
    # the copies: the last pD of d2 (its first loaded) and pB of d4 (its first seen on d2), this reason alone
    copies = one_by_one.execute(
        "SELECT _partition_date, prediction_id FROM raw_quarantine.predictions WHERE _reason = ? ORDER BY 1",
        [COPY_REASON],
    ).fetchall()
    assert copies == [(d2, "pD"), (d4, "pB")]
    # d1: pB, the second pC, pF, NULL; d2: pA, pC, NULL, pD's copy; d4: pB twice, pD, pE, pF and the second file's pG
    assert [r.rows_quarantined for r in want] == [4, 4, 6, 0]
    assert want[-1].note == "no source rows for this day"
    one_by_one.close()
    together.close()


def overlapping_exports(source) -> dict[date, list]:
    """Three days of predictions, each day's file a 48-hour export (the day before's rows again), written to
    ``source``: d1 re-sends pA unchanged and pB with another score; d2 re-sends d1's rows, pC twice, and a row
    sent on d1 with a broken score; an extra column, the same on both days but for pD's."""
    d0, d1, d2 = (DAY + timedelta(days=i) for i in range(3))
    days = {  # (prediction_id, score, the day of predicted_at, channel)
        d0: [("pA", 0.1, d0, "web"), ("pB", 0.2, d0, "web")],
        d1: [("pA", 0.1, d0, "web"), ("pB", 0.3, d0, "web"), ("pC", 0.4, d1, "app"), ("pD", 0.5, d1, "app")]
        + [("pE", 1.5, d1, "app")],
        d2: [("pC", 0.4, d1, "app"), ("pC", 0.4, d1, "app"), ("pD", 0.5, d1, "web"), ("pE", 1.5, d1, "app")]
        + [("pF", 0.6, d2, "web")],
    }
    for day, rows in days.items():
        ids, scores, at, channels = zip(*rows, strict=True)
        frame = pd.DataFrame({"prediction_id": ids, "model_id": "m1", "model_version": "v1", "user_id": "u1"})
        frame["predicted_at"] = pd.to_datetime([f"{t} 08:00" for t in at])
        write(source, "predictions", frame.assign(score=scores, channel=channels), day)
    return days


@pytest.mark.parametrize("runs", ["day by day", "one range", "a day, then a range"])
def test_a_row_delivered_again_on_a_later_day_is_a_copy_and_a_changed_one_a_duplicate(tmp_path, runs):
    # an overlapping export: a row loaded on an earlier day, sent again unchanged, is quarantined as a copy alone
    # (the gates leave it out), whichever way the days are loaded; a re-sent row with any value changed (pB's
    # score, pD's extra column) is still a duplicate key, and a row that broke a rule stays broken
    from orchestration.lib.contract import RESENT_REASON

    days = overlapping_exports(tmp_path)
    d0, d1, d2 = sorted(days)
    plan = {"day by day": [[d0], [d1], [d2]], "one range": [[d0, d1, d2]], "a day, then a range": [[d0], [d1, d2]]}
    with duckdb.connect() as conn:
        for run in plan[runs]:
            load_days(conn, "predictions", tmp_path, run)
        reasons = sorted(
            conn.execute(
                "SELECT _partition_date, prediction_id, _reason FROM raw_quarantine.predictions UNION ALL "
                "SELECT _partition_date, prediction_id, '' FROM raw.predictions"
            ).fetchall(),
            key=lambda r: (r[0], r[1], r[2]),
        )
    first_seen = "duplicate key (prediction_id), first seen on "
    broken = "score outside [0, 1]"
    assert reasons == [
        (d0, "pA", ""),
        (d0, "pB", ""),
        (d1, "pA", RESENT_REASON),
        (d1, "pB", f"{first_seen}{d0}; predicted_at outside partition day {d1}"),
        (d1, "pC", ""),
        (d1, "pD", ""),
        (d1, "pE", broken),
        (d2, "pC", RESENT_REASON),  # both copies of d1's row (the second one also of its own day's)
        (d2, "pC", RESENT_REASON),
        (d2, "pD", f"{first_seen}{d1}; predicted_at outside partition day {d2}"),
        (d2, "pE", f"{broken}; predicted_at outside partition day {d2}"),
        (d2, "pF", ""),
    ]
    assert len(reasons) == sum(map(len, days.values()))  # raw rows in = loaded + quarantined


def test_an_optional_table_of_a_missing_landing_zone_is_absent_and_a_required_one_stops(tmp_path, conn):
    # every table from a database: materialize started without a landing folder, then raw.feedback failed on it
    from orchestration.lib.contract import CONTRACTS
    from orchestration.lib.raw_loader import load_days

    missing = tmp_path / "no_landing_zone"
    optional = next(t for t, c in CONTRACTS.items() if c.optional and c.time_column)
    required = next(t for t, c in CONTRACTS.items() if not c.optional)
    (report,) = load_days(conn, optional, missing, [DAY])
    assert report.rows_read == 0 and not missing.exists()
    with pytest.raises(ContractError, match="does not exist"):
        load_days(conn, required, missing, [DAY])


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_spaces_around_a_column_name_are_not_part_of_it(tmp_path, conn, fmt):
    # a users header 'gender ' loaded as its own column: stg_users read gender 'unknown' for every user and the
    # fairness verdicts on it were "not assessed" (or, for an intersection, passed)
    users = pd.DataFrame(
        {
            "user_id": ["u1", "u2"],
            "signup_at": pd.to_datetime(["2026-01-01", "2026-01-02"]),
            "gender ": ["female", "male"],
            " ethnicity": ["a", "b"],
        }
    )
    write(tmp_path, "users", users, day=None, fmt=fmt)
    report = load_partition(conn, "users", tmp_path, DAY)
    assert (report.rows_read, report.rows_loaded, report.rows_quarantined) == (2, 2, 0)
    rows = conn.execute("SELECT user_id, gender, ethnicity FROM raw.users ORDER BY 1").fetchall()
    assert rows == [("u1", "female", "a"), ("u2", "male", "b")]
    # the same column twice, but for the spaces: which one is meant cannot be told
    write(tmp_path, "users", users.assign(ethnicity=["c", "d"]), day=None, fmt=fmt)
    with pytest.raises(ContractError, match="same column but for spaces"):
        load_partition(conn, "users", tmp_path, DAY)


def test_a_day_month_date_stops_the_load_saying_the_order_is_ambiguous(tmp_path, conn):
    # "05/06/2025 09:49" got "cannot be cast to TIMESTAMP" and no hint; is it May 6th or June 5th?
    frame = predictions().astype({"predicted_at": str})
    frame["predicted_at"] = [f"0{DAY.day % 9 + 1}/{DAY.month:02d}/{DAY.year} 09:{m:02d}" for m in range(len(frame))]
    write(tmp_path, "predictions", frame, fmt="csv")
    with pytest.raises(ContractError, match="ambiguous: write ISO 8601"):
        load_partition(conn, "predictions", tmp_path, DAY)
