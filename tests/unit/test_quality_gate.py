"""Great Expectations gates: each expectation family fails on exactly its broken rule, clean data passes,
each day gets its own verdict (the same in a range as alone), row rules judged by a share and a count."""

import re
import time
from datetime import date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from orchestration.lib.contract import COPY_REASON
from orchestration.lib.project_config import parse_config
from orchestration.lib.quality_gate import (
    RowRule,
    days_in_words,
    load_suite,
    run_suite,
    suite_columns,
    suite_names,
    unit_slips,
    validate_frame,
)
from orchestration.lib.raw_loader import load_days, load_partition

DAYS = [date(2026, 9, 1) + timedelta(days=i) for i in range(9)]
TODAY = DAYS[-1]
ROWS_PER_DAY = 40
# The family tests count every bad row (the per-day share and count are tested on their own below);
# m1 is declared, so a prediction of another model is unknown.
EVERY_ROW = parse_config({"models": {"m1": {}}, "gates": {"rows": {"max_share": 0, "min_count": 0}}})


def predictions_for(day: date, n: int = ROWS_PER_DAY) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "prediction_id": [f"p-{day}-{i}" for i in range(n)],
            "model_id": "m1",
            "model_version": "v1",
            "user_id": [f"u{i % 5}" for i in range(n)],
            "predicted_at": [datetime(day.year, day.month, day.day, 10) + timedelta(minutes=i) for i in range(n)],
            "score": 0.5,
            "threshold": 0.5,
        }
    )


def write(source, table, frame, day=None):
    folder = source / table
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / (f"{table}_{day}.parquet" if day else f"{table}.parquet"), index=False)


@pytest.fixture
def world(tmp_path):
    """A tiny landing zone: 5 users, one experiment of model m1, 9 days of predictions and labels."""
    write(
        tmp_path,
        "users",
        pd.DataFrame(
            {
                "user_id": [f"u{i}" for i in range(5)],
                "signup_at": pd.Timestamp("2026-01-01"),
                "country": "US",
                "segment": "smb",
                "gender": "female",
                "age_band": "25-34",
            }
        ),
    )
    write(
        tmp_path,
        "experiments",
        pd.DataFrame(
            {
                "experiment_id": ["e1"],
                "model_id": ["m1"],
                "control_variant": ["holdout"],
                "start_date": [date(2026, 9, 1)],
                "end_date": [None],
            }
        ),
    )
    write(
        tmp_path,
        "experiment_variants",
        pd.DataFrame(
            {"experiment_id": ["e1", "e1"], "variant": ["holdout", "treatment"], "expected_share": [0.1, 0.9]}
        ),
    )
    for day in DAYS:
        preds = predictions_for(day)
        write(tmp_path, "predictions", preds, day)
        write(
            tmp_path,
            "labels",
            pd.DataFrame(
                {
                    "prediction_id": preds["prediction_id"],
                    "label": 1,
                    "labeled_at": preds["predicted_at"] + timedelta(hours=1),
                    "label_source": "human_review",
                }
            ),
            day,
        )
    return tmp_path


def gate(source, table, change=None, day=TODAY, conn_hook=None, config=EVERY_ROW):
    """Load every day (with `change` applied to the last day's file), then validate the last day."""
    if change is not None:
        path = source / table / f"{table}_{day}.parquet"
        change(pd.read_parquet(path)).to_parquet(path, index=False)
    with duckdb.connect() as conn:
        for t in ("users", "experiments", "experiment_variants"):
            load_partition(conn, t, source, day)
        for t in ("predictions", "labels"):
            load_days(conn, t, source, DAYS)  # as a run of the days does; each day alone: test_raw_loader.py
        if conn_hook:
            conn_hook(conn)
        return run_suite(conn, load_suite(f"raw_{table}"), day, day, config=config)


def failed(result) -> set[str]:
    return {o.name for o in result.failed if o.blocking}


def test_clean_slices_pass(world):
    for table in ("predictions", "labels"):
        result = gate(world, table)
        assert result.success, result.summary()
        assert result.rows == ROWS_PER_DAY


@pytest.mark.parametrize(
    "change, expectation",
    [
        (
            lambda f: f.assign(prediction_id=[None] + list(f["prediction_id"][1:])),
            "expect_column_values_to_not_be_null(prediction_id)",
        ),
        (
            lambda f: f.assign(prediction_id=["dup"] * 2 + list(f["prediction_id"][2:])),
            "expect_compound_columns_to_be_unique(prediction_id, _day)",
        ),
        (lambda f: f.assign(score=[1.7] + [0.5] * (len(f) - 1)), "expect_column_values_to_be_between(score)"),
        (lambda f: f.assign(model_id=["rogue"] + ["m1"] * (len(f) - 1)), "expect_column_values_to_be_in_set(model_id)"),
        (
            lambda f: f.assign(user_id=["stranger"] + list(f["user_id"][1:])),
            "expect_column_values_to_be_in_set(user_known)",
        ),
        (
            lambda f: f.assign(predicted_at=[pd.Timestamp("2026-09-02 10:00")] + list(f["predicted_at"][1:])),
            "expect_column_values_to_be_in_set(in_partition_day)",
        ),
        (  # 8 predictions against a trailing median of 40: (8 - 40) / max(0.5 x 40, 4 x sqrt(40)) = -1.26
            lambda f: f.iloc[:8],
            "expect_column_values_to_be_between(volume_deviation)",
        ),
    ],
    ids=[
        "not_null_key",
        "unique_key",
        "range",
        "value_set",
        "referential_user",
        "timestamp_in_day",
        "volume",
    ],
)
def test_each_broken_prediction_rule_fails_the_gate_naming_it(world, change, expectation):
    result = gate(world, "predictions", change)
    assert not result.success
    assert failed(result) == {expectation}, result.summary()
    assert expectation.split("(")[0] in result.summary()
    if expectation.endswith("(volume_deviation)"):  # its sample is a number of half-widths: said so
        assert "the band's half-width: below -1 is under the band" in result.summary()
    if expectation.endswith("(in_partition_day)"):  # a derived column's check said in words, not GX's name alone
        assert result.summary().endswith("% of rows; rows stamped on another day than their file's)")  # no [False]


def test_a_model_that_stops_predicting_or_a_paused_label_feed_is_reported_not_blocking(world):
    # an empty day after steady ones is stale: named as a warning, the day passes; blocking it stopped every
    # table's day (the model's late labels included) for days, one retired model halting all the others
    for table in ("predictions", "labels"):  # a paused label feed likewise: its labels count when they land
        result = gate(world, table, lambda f: f.iloc[0:0])
        assert result.success and not result.failed_days, result.summary()
        (stale,) = result.failed
        assert stale.name == "expect_column_values_to_be_in_set(fresh)" and not stale.blocking
        assert "expect_column_values_to_be_in_set on fresh" in result.summary() and "[warning]" in result.summary()
        # what made the day due: its weekday a week before, then the trailing median (by hand: every earlier day
        # held ROWS_PER_DAY); a monthly batch's week after read "0 rows against a trailing median of 0"
        assert (
            f"{result.days[-1]}: 0 rows, where the same weekday a week before had {ROWS_PER_DAY:,} (trailing median "
            f"{ROWS_PER_DAY:,})"
        ) in stale.describe()
        # the day's warning is recorded beside its verdict (quality.gate_results said only "passed")
        assert result.day_warnings(result.days[-1]) == [stale] and result.day_failures(result.days[-1]) == []


def test_a_retired_models_days_after_its_retirement_are_not_stale(world):
    # a trial's planned end of a model: its stale-predictions warning every day after, and 10 volume alerts
    retired = parse_config(
        {"models": {"m1": {"retired_after": str(DAYS[-2])}}, "gates": {"rows": {"max_share": 0, "min_count": 0}}}
    )
    result = gate(world, "predictions", lambda f: f.iloc[0:0], config=retired)
    assert result.success and not result.failed, result.summary()
    # retired after today: today's empty day is still the model's, stale
    early = parse_config(
        {"models": {"m1": {"retired_after": str(DAYS[-1])}}, "gates": {"rows": {"max_share": 0, "min_count": 0}}}
    )
    result = gate(world, "predictions", lambda f: f.iloc[0:0], config=early)
    assert [o.name for o in result.failed] == ["expect_column_values_to_be_in_set(fresh)"]


def test_a_day_delivered_twice_passes_with_the_copy_quarantined_as_copies(world):
    # a copy of a day's file beside it (an upload retried): every key twice held the whole day back, and every
    # model's attribution with it, though no row said anything new
    original = world / "predictions" / f"predictions_{TODAY}.parquet"
    original.with_name(f"predictions_{TODAY}_copy.parquet").write_bytes(original.read_bytes())
    caught = {}
    result = gate(world, "predictions", conn_hook=lambda c: caught.update(quarantine=_quarantine(c, "predictions")))
    assert result.success and not result.failed, result.summary()
    assert result.rows == ROWS_PER_DAY  # what the gate read: the rows, once (no volume spike either)
    # nothing lost: the copy's rows are all in the quarantine, with their reason
    assert caught["quarantine"] == {COPY_REASON: ROWS_PER_DAY}


def test_a_day_whose_file_sends_the_day_before_again_passes_with_those_rows_quarantined_as_copies(world):
    # a 48-hour export: the day before's rows again, unchanged, held every such day back (each a duplicate key,
    # first seen the day before, and off its day); they say nothing new. One of them changed is still counted.
    from orchestration.lib.contract import RESENT_REASON

    yesterday = pd.read_parquet(world / "predictions" / f"predictions_{DAYS[-2]}.parquet")
    changed = yesterday.index[:1]

    def resend(today: pd.DataFrame) -> pd.DataFrame:
        again = yesterday.copy()
        again.loc[changed, "score"] = 0.75
        return pd.concat([today, again], ignore_index=True)

    caught = {}
    result = gate(
        world, "predictions", resend, conn_hook=lambda c: caught.update(quarantine=_quarantine(c, "predictions"))
    )
    assert result.rows == ROWS_PER_DAY + 1  # the day's rows and the changed one: no volume spike
    (off_day,) = result.failed  # the changed row, stamped the day before, counted (every row counts here)
    assert off_day.name == "expect_column_values_to_be_in_set(in_partition_day)" and off_day.unexpected_count == 1
    reasons = {reason.split(";")[0]: n for reason, n in caught["quarantine"].items()}
    assert reasons == {RESENT_REASON: ROWS_PER_DAY - 1, f"duplicate key (prediction_id), first seen on {DAYS[-2]}": 1}
    # at the project's default share (1%) and count (10), the one changed row does not hold the day back
    assert gate(world, "predictions", config=parse_config({"models": {"m1": {}}})).success


def _quarantine(conn, table: str) -> dict:
    return dict(conn.execute(f"SELECT _reason, count(*) FROM raw_quarantine.{table} GROUP BY ALL").fetchall())


def _redelivered(world, name: str) -> tuple[Path, Path]:
    """The day's predictions file and a second delivery ``name`` of it with one row's score changed."""
    original = world / "predictions" / f"predictions_{TODAY}.parquet"
    copy = original.with_name(name)
    frame = pd.read_parquet(original)
    frame.loc[3, "score"] = 0.75
    frame.to_parquet(copy, index=False)
    return original, copy


def test_a_day_delivered_twice_with_a_changed_row_names_both_files(world):
    # a re-export that differs in one row is no copy: which row is right, the gate cannot say. The day is held back
    # and the files named (the gate said only "44 unexpected", not which file to remove)
    original, copy = _redelivered(world, f"predictions_{TODAY}_copy.parquet")
    caught = {}
    result = gate(world, "predictions", conn_hook=lambda c: caught.update(quarantine=_quarantine(c, "predictions")))
    (duplicated,) = [o for o in result.failed if o.name.startswith("expect_compound_columns_to_be_unique")]
    assert duplicated.name == "expect_compound_columns_to_be_unique(prediction_id, _day)"
    # the changed row's key, twice (loaded and quarantined); the other keys' copies are left out
    assert duplicated.unexpected_count == 2, duplicated.describe()
    assert duplicated.detail == (
        f"the duplicated rows come from {original.name}, {copy.name}: a file delivered twice?"
    ), duplicated.detail
    assert f"{original.name}, {copy.name}" in result.summary()
    assert caught["quarantine"] == {COPY_REASON: ROWS_PER_DAY - 1, "duplicate key (prediction_id)": 1}
    # before the sample of keys: a progress line cuts a long sample, and the run's output lost the file names
    said = duplicated.describe()
    assert said.index("a file delivered twice?") < said.index("e.g.")


def test_schema_types_are_checked(world):
    result = gate(
        world, "predictions", conn_hook=lambda c: c.execute("ALTER TABLE raw.predictions ALTER score TYPE VARCHAR")
    )
    schema = [o for o in result.failed if o.level == "schema"]
    assert [o.name for o in schema] == ["expect_column_values_to_be_in_set(score)"]
    assert schema[0].sample_unexpected == ["VARCHAR"]


def test_labels_must_point_to_known_predictions(world):
    result = gate(world, "labels", lambda f: f.assign(prediction_id=["ghost"] + list(f["prediction_id"][1:])))
    assert failed(result) == {"expect_column_values_to_be_in_set(prediction_known)"}
    # its sample is only False: the failure says what it most often means (a predictions file missing or late)
    [outcome] = result.failed
    assert "a predictions file of those days missing or late?" in outcome.describe()


PERCENT_HINT = "scores and thresholds are probabilities in [0, 1] (percentages? divide both by 100)"


def _scored(scores: list, day: date = TODAY) -> pd.DataFrame:
    """A day's rows of raw_predictions' row level, every check passing but the score's range."""
    return predictions_for(day, len(scores)).assign(score=scores, user_known=True, in_partition_day=True, _day=day)


def test_a_day_of_percent_scores_fails_the_range_saying_percentages_as_init_does():
    """A later day's scores exported as percentages: the range check's failure names the day, how many scores lie
    above 1 and init's hint (the description materialize prints)."""
    percent = [2.5 * i for i in range(ROWS_PER_DAY)]  # 0 .. 97.5: one score (0) still inside [0, 1]
    above = sum(v > 1 for v in percent)  # 39
    frame = pd.concat([_scored([0.5] * ROWS_PER_DAY, DAYS[-2]), _scored(percent)], ignore_index=True)
    result = validate_frame(frame, load_suite("raw_predictions"), {"known_model_ids": ["m1"]}, RowRule(0.01, 10))
    assert failed(result) == {"expect_column_values_to_be_between(score)"} and result.failed_days == [TODAY]
    [outcome] = result.failed
    said = f"score above 1 on {TODAY}: {above} of {ROWS_PER_DAY} rows, each at most 100: {PERCENT_HINT}"
    assert said in outcome.describe() and said in result.summary()


@pytest.mark.parametrize("stray", [150.0, -3.0, None], ids=["above_100", "negative", "none_outside"])
def test_scores_outside_0_100_are_no_percentages(stray):
    """One score above 100 or below 0 among a day of percentages: not a unit slip, no hint (nor on a clean day)."""
    percent = [2.5 * i for i in range(ROWS_PER_DAY)]
    scores = [0.5] * ROWS_PER_DAY if stray is None else percent[:-1] + [stray]
    with duckdb.connect() as conn:
        conn.register("rows_", _scored(scores))
        assert unit_slips(conn, "SELECT * FROM rows_", "score") == {}
        conn.register("rows_", _scored(percent))  # the same day without it: the hint
        assert list(unit_slips(conn, "SELECT * FROM rows_", "score")) == [TODAY]


def test_labels_of_a_quarantined_prediction_point_to_a_known_prediction(world):
    # 15 scores of 1.5 quarantined, and weeks later their labels failed prediction_known: every model's labels of
    # that day held back. A quarantined prediction is known (its label is no broken reference); a ghost is not
    def quarantine_one(conn):
        labelled = f"(SELECT min(prediction_id) FROM raw.labels WHERE _partition_date = DATE '{TODAY}')"
        conn.execute(
            "INSERT INTO raw_quarantine.predictions BY NAME SELECT *, 'score outside [0, 1]' AS _reason "
            f"FROM raw.predictions WHERE prediction_id = {labelled}"
        )
        assert conn.execute(f"DELETE FROM raw.predictions WHERE prediction_id = {labelled}").fetchone()[0] == 1

    result = gate(world, "labels", conn_hook=quarantine_one)
    assert result.success, result.summary()
    ghost = gate(world, "labels", lambda f: f.assign(prediction_id=["ghost"] + list(f["prediction_id"][1:])))
    assert failed(ghost) == {"expect_column_values_to_be_in_set(prediction_known)"}


def test_label_values_and_sources_are_value_sets(world):
    result = gate(world, "labels", lambda f: f.assign(label_source=["crowd"] + list(f["label_source"][1:])))
    assert failed(result) == {"expect_column_values_to_be_in_set(label_source)"}


def test_shares_of_an_experiment_must_sum_to_one(world):
    write(
        world,
        "experiment_variants",
        pd.DataFrame(
            {"experiment_id": ["e1", "e1"], "variant": ["holdout", "treatment"], "expected_share": [0.2, 0.9]}
        ),
    )
    with duckdb.connect() as conn:
        for t in ("experiments", "experiment_variants"):
            load_partition(conn, t, world, TODAY)
        result = run_suite(conn, load_suite("raw_experiment_variants"), TODAY, TODAY)
    assert failed(result) == {"expect_column_values_to_be_between(experiment_share_total)"}


def test_warning_expectations_do_not_fail_the_gate(world):
    # label volume triples or falls to a tenth: reported as a warning (labels ramp up after launches), the gate
    # still passes
    for change, column in (
        (lambda f: pd.concat([f] * 3, ignore_index=True), "volume_spike"),
        (lambda f: f.iloc[:4], "volume_deviation"),
    ):
        result = gate(world, "labels", change)
        assert result.success
        assert [o.name for o in result.failed if not o.blocking] == [f"expect_column_values_to_be_between({column})"]


def test_a_busy_day_of_predictions_warns_and_passes(world):
    # a 10x traffic spike held back the busiest day of the year (every model's attribution with it): new
    # prediction ids, so no uniqueness failure; only the volume rule sees it, as a warning
    result = gate(
        world,
        "predictions",
        lambda f: pd.concat([f] * 10, ignore_index=True).assign(
            prediction_id=lambda x: [f"v{i}" for i in range(len(x))]
        ),
    )
    assert result.success and not result.failed_days, result.summary()
    assert [o.name for o in result.failed] == ["expect_column_values_to_be_between(volume_spike)"]
    assert not result.failed[0].blocking and "above +1 is over the band" in result.summary()


def test_every_contract_table_has_a_suite_and_suites_are_well_formed():
    from orchestration.lib.contract import CONTRACTS

    assert {load_suite(n)["table"] for n in suite_names()} == set(CONTRACTS)
    assert set(suite_columns(load_suite("raw_predictions"))) == {
        "prediction_id",
        "score",
        "threshold",
        "model_id",
        "model_version",
        "user_id",
    }  # _day is not a column


def test_suite_file_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_suite("nope", tmp_path)
    (tmp_path / "bad.yml").write_text("name: bad\ntable: t\nexpectations:\n  - type: expect_x\n")
    with pytest.raises(ValueError, match="needs 'type' and 'kwargs'"):
        load_suite("bad", tmp_path)


def test_a_tolerated_redelivery_names_both_files_in_its_warning(world):
    # a trial's corrected re-delivery of 5 orders: within gates.rows' 10 rows the day passed with a warning that
    # named no file, while the loader kept one file's rows by the order of the names
    original, copy = _redelivered(world, f"predictions_{TODAY} (1).parquet")
    result = gate(world, "predictions", config=parse_config({"models": {"m1": {}}}))
    assert result.success
    [warning] = result.day_tolerated(TODAY, RowRule())
    assert warning == (
        "expect_compound_columns_to_be_unique(prediction_id, _day) (the duplicated rows come from "
        f"{copy.name}, {original.name}: a file delivered twice?; tolerated by gates.rows.min_count)"
    )


def test_a_tolerated_undeclared_model_is_named_with_what_to_do(world):
    # a trial's second model warned "expect_column_values_to_be_in_set(model_id) (tolerated by gates.rows.min_count)"
    # without naming it: neither materialize nor summary said which id, or to declare it
    result = gate(
        world,
        "predictions",
        lambda f: f.assign(model_id=["nudge" if i < 2 else "m1" for i in range(len(f))]),
        config=parse_config({"models": {"m1": {}}}),
    )
    assert result.success
    [warning] = result.day_tolerated(TODAY, RowRule())
    assert warning == (
        "expect_column_values_to_be_in_set(model_id) (outside the set: nudge (models the project file does not "
        "declare: add them under models:); tolerated by gates.rows.min_count)"
    )


def test_a_stray_bad_row_in_a_big_day_is_tolerated_by_the_day_rule():
    frame = pd.DataFrame(
        {
            "prediction_id": [f"p{i}" for i in range(2000)],
            "model_id": "m1",
            "score": [1.7] + [0.5] * 1999,
            "threshold": 0.5,
            "model_version": "v1",
            "user_id": "u1",
            "user_known": True,
            "in_partition_day": True,
        }
    )
    result = validate_frame(frame, load_suite("raw_predictions"), {"known_model_ids": ["m1"]}, RowRule(0.01, 10))
    assert result.success
    stray = [o for o in result.outcomes if o.name == "expect_column_values_to_be_between(score)"][0]
    assert stray.tolerated and stray.unexpected_count == 1 and "tolerated" in result.summary()


def _day_frame(n: int, bad: int, day: date) -> pd.DataFrame:
    """n rows of one day, the first `bad` with a negative revenue."""
    return pd.DataFrame(
        {
            "order_id": [f"o-{day}-{i}" for i in range(n)],
            "user_id": "u1",
            "status": "completed",
            "revenue": [-1.0] * bad + [10.0] * (n - bad),
            "user_known": True,
            "in_partition_day": True,
            "_day": pd.Timestamp(day),
        }
    )


@pytest.mark.parametrize("n, bad", [(83, 2), (83, 10), (83, 11), (500, 5), (500, 11), (2000, 15), (2000, 21), (40, 0)])
def test_a_row_rule_fails_a_day_only_above_both_its_share_and_its_count(n, bad):
    # hand computation of the rule: unexpected > max_share x rows AND unexpected > min_count
    for max_share, min_count in ((0.01, 10), (0.005, 3), (0.0, 0)):
        expected_fail = bad > max_share * n and bad > min_count
        result = validate_frame(
            _day_frame(n, bad, TODAY), load_suite("raw_orders"), row_rule=RowRule(max_share, min_count)
        )
        assert result.success is (not expected_fail), (n, bad, max_share, min_count, result.summary())
        assert result.failed_days == ([TODAY] if expected_fail else [])


def test_each_day_of_a_range_is_judged_on_its_own_rows():
    # 12 bad rows: 12 of 83 fails its day (above 1% and 10); the 5 bad rows of another day do not, even though
    # the range holds 17 bad rows; a big day with 15 bad of 2,000 (0.75%) passes
    days = DAYS[:4]
    frame = pd.concat(
        [
            _day_frame(83, 0, days[0]),
            _day_frame(83, 12, days[1]),
            _day_frame(83, 5, days[2]),
            _day_frame(2000, 15, days[3]),
        ],
        ignore_index=True,
    )
    result = validate_frame(frame, load_suite("raw_orders"), row_rule=RowRule(0.01, 10))
    assert result.days == tuple(days)
    assert result.failed_days == [days[1]]
    revenue = [o for o in result.outcomes if o.name == "expect_column_values_to_be_between(revenue)"][0]
    assert revenue.unexpected_by_day == {days[1]: 12, days[2]: 5, days[3]: 15}
    # the failed day's own share (12 of 83), not the range's (32 of 2,249: 1.42%), before the failure it names
    assert f"- {days[1]} (12 of 83 rows, 14.46%): expect_column_values_to_be_between on revenue" in result.summary()


def test_a_long_failure_is_one_line_per_expectation_with_its_days_compact():
    # a trial's experiment shares failed two expectations on every day of a month: its failed-days line named
    # both on every day (~4 KB, printed twice by materialize)
    days = [date(2026, 1, 5) + timedelta(days=i) for i in range(28)]
    frame = pd.concat([_day_frame(83, 12, d) for d in days], ignore_index=True)
    frame.loc[frame["order_id"].str.endswith("-20"), "user_known"] = False  # 1 of 83 a day: within gates.rows
    for d in (days[2], days[9], days[10], days[11], days[20], days[27]):  # user_known fails these six days only
        frame.loc[(frame["_day"] == pd.Timestamp(d)) & (frame.index % 83 < 15), "user_known"] = False
    result = validate_frame(frame, load_suite("raw_orders"), row_rule=RowRule(0.01, 10))
    lines = result.summary().splitlines()
    assert lines[0] == "suite raw_orders: 2 of 9 expectations failed on 2324 rows, on 28 of 28 days"
    assert [line.split(": ", 1)[0] for line in lines[1:]] == [
        "- 2026-01-05 .. 2026-02-01",  # every day: one range
        # the first three days or runs of days (a lone day with its own share: 15 + the stray of its 83 rows), then
        # the rest
        "- 2026-01-07 (16 of 83 rows, 19.28%), 2026-01-14 .. 2026-01-16, 2026-01-25 (16 of 83 rows, 19.28%) and 1 "
        "more day(s)",
    ]
    assert len(result.summary()) < 800


@pytest.mark.parametrize(
    "days, shown, said",
    [
        ([], 3, ""),
        ([TODAY], 3, f"{TODAY}"),
        (DAYS[:4], 3, f"{DAYS[0]} .. {DAYS[3]}"),
        ([DAYS[3], DAYS[0], DAYS[1], DAYS[0]], 3, f"{DAYS[0]} .. {DAYS[1]}, {DAYS[3]}"),  # sorted, each once
        ([DAYS[0], DAYS[2], DAYS[4], DAYS[5], DAYS[7]], 2, f"{DAYS[0]}, {DAYS[2]} and 3 more day(s)"),
    ],
)
def test_days_in_words_names_runs_of_days_and_counts_the_rest(days, shown, said):
    assert days_in_words(days, shown) == said


def _orders_world(source, duplicated: dict[date, int], rows_per_day: int = 83):
    """users and `rows_per_day` orders a day over DAYS; `duplicated[day]` orders of that day appear twice, the second
    time with another revenue (a conflict: an exact copy of a row is quarantined without failing uniqueness)."""
    write(
        source, "users", pd.DataFrame({"user_id": [f"u{i}" for i in range(5)], "signup_at": pd.Timestamp("2026-01-01")})
    )
    for day in DAYS:
        orders = pd.DataFrame(
            {
                "order_id": [f"o-{day}-{i}" for i in range(rows_per_day)],
                "user_id": "u1",
                "ordered_at": [
                    datetime(day.year, day.month, day.day, 9) + timedelta(minutes=i) for i in range(rows_per_day)
                ],
                "revenue": 10.0,
                "status": "completed",
            }
        )
        again = orders.iloc[: duplicated.get(day, 0)].assign(revenue=12.0)
        write(source, "orders", pd.concat([orders, again], ignore_index=True), day)


def _load(conn, source):
    load_partition(conn, "users", source, TODAY)
    for day in DAYS:
        load_partition(conn, "orders", source, day)


def test_two_duplicate_orders_on_a_day_of_83_pass_alone_and_inside_a_range(tmp_path):
    # the case: the two duplicates are quarantined by the loader; the gate tolerates them on their day
    # whether the day is validated alone or inside a backfill range (the project file's defaults)
    bad_day = DAYS[5]
    _orders_world(tmp_path, {bad_day: 2})
    suite = load_suite("raw_orders")
    with duckdb.connect() as conn:
        _load(conn, tmp_path)
        assert conn.execute("SELECT count(*) FROM raw_quarantine.orders").fetchone()[0] == 2
        alone = run_suite(conn, suite, bad_day, bad_day)
        in_range = run_suite(conn, suite, DAYS[0], DAYS[-1])
    assert alone.success and in_range.success, (alone.summary(), in_range.summary())
    assert alone.rows == 85 and in_range.rows_by_day[bad_day] == 85


def test_a_range_and_its_days_one_by_one_give_the_same_verdicts(tmp_path):
    # 12 duplicated orders (24 rows unexpected by the per-day uniqueness) fail their day, 3 do not; a row
    # stamped with the next day is judged against its own day; every other day passes
    _orders_world(tmp_path, {DAYS[3]: 12, DAYS[6]: 3})
    suite = load_suite("raw_orders")
    with duckdb.connect() as conn:
        _load(conn, tmp_path)
        in_range = run_suite(conn, suite, DAYS[1], DAYS[-1])
        alone = {day: run_suite(conn, suite, day, day) for day in DAYS[1:]}
    assert in_range.failed_days == [DAYS[3]]
    for day, result in alone.items():
        assert result.failed_days == ([day] if day == DAYS[3] else []), (day, result.summary())
        assert [o.name for o in in_range.day_failures(day)] == [o.name for o in result.day_failures(day)]
        assert in_range.rows_by_day[day] == result.rows_by_day[day]
    assert [o.name for o in in_range.day_failures(DAYS[3])] == ["expect_compound_columns_to_be_unique(order_id, _day)"]


def test_known_models_are_the_experiments_and_the_declared_ones(world):
    # a monitoring-only model (no experiment) is known once the project file declares it
    # (half of the day: m1 keeps predicting, so its volume and freshness stay in bounds)
    monitoring_only = lambda f: f.assign(model_id=["fraud"] * 20 + ["m1"] * (len(f) - 20))  # noqa: E731
    declared = parse_config({"models": {"fraud": {"experiment": False}}})
    assert gate(world, "predictions", monitoring_only, config=declared).success
    undeclared = parse_config({"models": {"other": {}}})
    result = gate(world, "predictions", monitoring_only, config=undeclared)
    assert failed(result) == {"expect_column_values_to_be_in_set(model_id)"}
    # a project file that declares no model accepts every model_id (nothing to compare with)
    assert gate(world, "predictions", monitoring_only, config=parse_config({})).success


def test_labels_are_known_up_to_twice_the_longest_label_horizon(tmp_path):
    # labels of predictions made 60 days earlier: beyond twice a 20-day horizon (broken references),
    # late for a 30-day one but within twice it (not counted in the metrics, yet no broken data), inside a 90-day one
    first, today = date(2026, 7, 1), date(2026, 8, 30)
    write(tmp_path, "users", pd.DataFrame({"user_id": ["u1"], "signup_at": pd.Timestamp("2026-01-01")}))
    preds = predictions_for(first).assign(user_id="u1")
    write(tmp_path, "predictions", preds, first)
    write(
        tmp_path,
        "labels",
        pd.DataFrame(
            {
                "prediction_id": preds["prediction_id"],
                "label": 1,
                "labeled_at": pd.Timestamp(today) + pd.Timedelta(hours=1),
                "label_source": "implicit",
            }
        ),
        today,
    )
    with duckdb.connect() as conn:
        load_partition(conn, "users", tmp_path, today)
        load_partition(conn, "predictions", tmp_path, first)
        load_partition(conn, "labels", tmp_path, today)
        short = run_suite(
            conn,
            load_suite("raw_labels"),
            today,
            today,
            config=parse_config({"models": {"m1": {"label_horizon_days": 20}}}),
        )
        late = run_suite(
            conn,
            load_suite("raw_labels"),
            today,
            today,
            config=parse_config({"models": {"m1": {"label_horizon_days": 30}}}),
        )
        long = run_suite(
            conn,
            load_suite("raw_labels"),
            today,
            today,
            config=parse_config({"models": {"m1": {"label_horizon_days": 30}, "m2": {"label_horizon_days": 90}}}),
        )
    assert failed(short) == {"expect_column_values_to_be_in_set(prediction_known)"}
    assert late.success, late.summary()
    assert long.success, long.summary()


def test_a_table_absent_from_the_source_passes_saying_so(tmp_path):
    # a monitoring-only data set: users, predictions and labels only
    write(tmp_path, "users", pd.DataFrame({"user_id": ["u1"], "signup_at": pd.Timestamp("2026-01-01")}))
    with duckdb.connect() as conn:
        for table in ("users", "experiments", "experiment_variants"):
            load_partition(conn, table, tmp_path, TODAY)
        for day in DAYS:
            for table in ("orders", "sessions", "model_costs", "assignments"):
                load_partition(conn, table, tmp_path, day)
        results = {
            t: run_suite(conn, load_suite(f"raw_{t}"), DAYS[0], TODAY)
            for t in ("experiments", "experiment_variants", "orders", "sessions", "model_costs", "assignments")
        }
    for table, result in results.items():
        assert result.success and result.failed_days == [], result.summary()
        assert f"raw.{table} holds no rows: table absent from the source" in result.summary()


class _Page(HTMLParser):
    """What a browser without network gets from a page: remote CSS/JS, and the text of each table's rows."""

    def __init__(self):
        super().__init__()
        self.remote_assets, self.rows, self.links, self._row, self._in_script = [], [], [], None, False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        url = a.get("src") if tag == "script" else a.get("href") if tag == "link" else None
        if url and re.match(r"(?i)https?://", url):
            self.remote_assets.append(url)
        if tag == "script":
            self._in_script = True
        if tag == "tr":
            self._row = []
        if tag == "a" and self._row is not None:
            self.links.append(a.get("href"))

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False
        if tag == "tr" and self._row is not None:
            self.rows.append(" ".join(" ".join(self._row).split()))
            self._row = None

    def handle_data(self, data):
        if self._row is not None and not self._in_script:
            self._row.append(data)


def _parse(path) -> _Page:
    page = _Page()
    page.feed(path.read_text())
    return page


def test_data_docs_work_offline_and_the_index_lists_every_validated_suite(world, tmp_path):
    site = tmp_path / "docs" / "gx"
    with duckdb.connect() as conn:
        for t in ("users", "experiments", "experiment_variants"):
            load_partition(conn, t, world, TODAY)
        for d in DAYS:
            load_partition(conn, "predictions", world, d)
        suites = [load_suite("raw_predictions"), load_suite("raw_users")]
        for suite in suites:
            assert run_suite(conn, suite, TODAY, TODAY, docs_dir=site).success
    # oracle: GX names a validated suite <suite>_<level> for each level the YAML suite declares
    levels = {"schema_expectations": "schema", "expectations": "rows", "day_expectations": "days"}
    validated = {f"{s['name']}_{level}" for s in suites for key, level in levels.items() if s.get(key)}
    assert len(validated) >= 4

    index = _parse(site / "index.html")
    assert index.remote_assets == []  # no CSS or JS from a CDN: the page renders offline
    listed = {row.split()[-1] for row in index.rows if row}  # suites table: one name per row; results: name last
    assert validated <= listed, validated - listed
    # every validation result row (status, time, run, batch, suite) links to an existing page
    results = [r for r in index.rows if "impact_ledger-" in r]
    assert {r.split()[-1] for r in results} == validated
    assert all(("✔" in r) or ("✖" in r) for r in results)  # status as text, not a Font Awesome icon
    assert index.links and all((site / link).is_file() for link in index.links), index.links
    # the suite and validation pages load nothing remote either
    pages = list(site.rglob("*.html"))
    assert len(pages) > 2 * len(validated)
    assert [p for p in pages if _parse(p).remote_assets] == []


def test_the_index_lists_the_latest_results_and_older_ones_are_archived_with_their_pages(world, tmp_path, monkeypatch):
    # the index is read and rebuilt on every run: it lists the latest IMPACT_LEDGER_GX_DOCS_INDEX_LIMIT results,
    # and the older ones leave GX's store and site for archive folders (GX walks both whole on every build)
    from orchestration.lib.quality_gate import GxSession

    # a limit below one run's results (raw_users stores one per suite level): a result leaves once it has its page
    monkeypatch.setenv("IMPACT_LEDGER_GX_DOCS_INDEX_LIMIT", "1")
    site = tmp_path / "docs" / "gx"
    with duckdb.connect() as conn:
        load_partition(conn, "users", world, TODAY)
        for _ in range(3):  # three runs, each its own session (as three processes)
            session = GxSession(site)
            assert run_suite(conn, load_suite("raw_users"), TODAY, TODAY, session=session).success
            session.build_docs()
    # the generated context's config-variables file (GX read it at every access to a setting) is not named any more
    assert session.context.variables.config_variables_file_path is None
    store = session.context.validation_results_store
    assert "list_keys" not in vars(store)  # the build's one listing is GX's own method again afterwards
    stored = store.list_keys()
    assert len(stored) == 2
    # nothing lost: every earlier result and its page, moved to the same paths under the archives
    per_run = sum(
        bool(load_suite("raw_users").get(k)) for k in ("schema_expectations", "expectations", "day_expectations")
    )
    archive = Path(store.store_backend.full_base_directory).with_name("validations_archive")
    archived = sorted(p.relative_to(archive) for p in archive.rglob("*.json"))
    assert len(archived) == 3 * per_run - 2
    # <suite>/<run name>/<run time>/<batch>: the kept ones are the latest
    assert max(p.parts[2] for p in archived) < min(k.to_tuple()[2] for k in stored)
    pages_archive = site.with_name("gx_archive")  # beside the site: GX walks the site's whole folder
    archived_pages = sorted(p.relative_to(pages_archive) for p in pages_archive.rglob("*.html"))
    assert archived_pages == [p.with_suffix(".html") for p in archived]
    pages = sorted(p.relative_to(site / "validations") for p in (site / "validations").rglob("*.html"))
    assert pages == sorted(Path("/".join(k.to_tuple()) + ".html") for k in stored)

    # an archived page's relative links (the index, its suite's page, static files) resolve as from a page kept
    # in validations/ (GX's favicon link is a level short on every result page)
    def links(page):
        found = re.findall(r'(?:href|src)="((?:\.\./)+[^"#?]+)"', page.read_text())
        return {link: (page.parent / link).resolve().exists() for link in found}

    archived_links = links(pages_archive / archived_pages[0])
    kept_links = links(site / "validations" / pages[0])
    assert archived_links["../../../../gx/index.html"] and sum(archived_links.values()) >= 3
    assert {k for k, ok in archived_links.items() if not ok} == {k for k, ok in kept_links.items() if not ok}
    index = _parse(site / "index.html")
    linked = {link for link in index.links if link.startswith("validations/")}
    assert linked == {"validations/" + "/".join(k.to_tuple()) + ".html" for k in stored}  # the last run's, each
    for bad in ("0", "all", "-5"):  # a clear error naming the variable, before any page is touched
        monkeypatch.setenv("IMPACT_LEDGER_GX_DOCS_INDEX_LIMIT", bad)
        with pytest.raises(ValueError, match="IMPACT_LEDGER_GX_DOCS_INDEX_LIMIT must be a whole number >= 1"):
            GxSession(site)


def test_a_shared_session_renders_each_validation_page_once_when_asked(world, tmp_path):
    from orchestration.lib.quality_gate import GxSession

    site = tmp_path / "docs" / "gx"
    session = GxSession(site)
    with duckdb.connect() as conn:
        for t in ("users", "experiments"):
            load_partition(conn, t, world, TODAY)
        for name in ("raw_users", "raw_experiments"):
            assert run_suite(conn, load_suite(name), TODAY, TODAY, session=session).success
    stored = session.pending_results()
    # oracle: one stored result per level each suite file declares
    levels = ("schema_expectations", "expectations", "day_expectations")
    declared = sum(bool(load_suite(n).get(k)) for n in ("raw_users", "raw_experiments") for k in levels)
    assert len(stored) == declared >= 2
    assert not (site / "index.html").exists()  # nothing rendered until the run asks once

    assert session.build_docs() == declared
    index = _parse(site / "index.html")
    assert {r.split()[-1] for r in index.rows if "impact_ledger-" in r} == {
        k.expectation_suite_identifier.name for k in stored
    }
    assert session.pending_results() == [] and session.build_docs() == 0  # a page is rendered once


def test_a_later_run_reuses_the_stored_suites_and_a_changed_suite_is_stored_and_judged_again(world, tmp_path):
    from orchestration.lib.quality_gate import GxSession

    site = tmp_path / "docs" / "gx"
    suite = load_suite("raw_users")

    def stored_files():  # the suites and validation definitions (each run's results are new files under uncommitted/)
        files = (site.parent / "gx_context").rglob("*.json")
        return {p: p.stat().st_mtime_ns for p in files if "raw_users" in p.name and "uncommitted" not in p.parts}

    with duckdb.connect() as conn:
        load_partition(conn, "users", world, TODAY)
        assert run_suite(conn, suite, TODAY, TODAY, session=GxSession(site)).success
        written = stored_files()
        assert written  # the file-mode context keeps the suites and validation definitions
        # the next run (a new session on the same site): the same expectations, nothing written again
        assert run_suite(conn, suite, TODAY, TODAY, session=GxSession(site)).success
        assert stored_files() == written
        # an edited suite file is not judged by the stored copy: the schema level now requires a missing column
        required = {"column_set": ["user_id", "signup_at", "no_such_column"], "exact_match": False}
        changed = suite | {"schema_expectations": [{"type": "expect_table_columns_to_match_set", "kwargs": required}]}
        result = run_suite(conn, changed, TODAY, TODAY, session=GxSession(site))
    assert not result.success
    assert [o.expectation for o in result.failed] == ["expect_table_columns_to_match_set"]
    assert stored_files() != written


def test_rows_read_per_day_counts_loaded_and_quarantined_rows_but_copies_and_a_snapshot_whole_on_every_day():
    from datetime import date

    import duckdb

    from orchestration.lib.quality_gate import rows_read_per_day

    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA raw; CREATE SCHEMA raw_quarantine")
        conn.execute(
            "CREATE TABLE raw.orders AS SELECT DATE '2026-09-01' + (i % 2)::int AS _partition_date FROM range(5) t(i)"
        )
        # a quarantined row of 2026-09-02 is read; a copy of a row is not (COPY_REASON)
        conn.execute(
            "CREATE TABLE raw_quarantine.orders AS SELECT DATE '2026-09-02' AS _partition_date, reason AS _reason "
            "FROM (VALUES ('revenue below 0'), (?)) t(reason)",
            [COPY_REASON],
        )
        conn.execute("CREATE TABLE raw.users AS SELECT DATE '2026-09-03' AS _partition_date FROM range(7)")
        conn.execute("CREATE TABLE raw_quarantine.users AS SELECT DATE '2026-09-03' AS _partition_date, 'x' AS _reason")
        first, last = date(2026, 9, 1), date(2026, 9, 3)
        assert rows_read_per_day(conn, "orders", first, last) == {date(2026, 9, 1): 3, date(2026, 9, 2): 3}
        assert rows_read_per_day(conn, "users", first, last) == {date(2026, 9, d): 8 for d in (1, 2, 3)}


def test_the_keys_given_to_a_data_docs_build_match_as_a_list_of_them_does():
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    from orchestration.lib.quality_gate import KeyList

    def result(suite: str, minute: int, batch: str = "b") -> ValidationResultIdentifier:
        run = RunIdentifier(run_name="r", run_time=datetime(2026, 9, 1, 0, minute))
        return ValidationResultIdentifier(ExpectationSuiteIdentifier(name=suite), run, batch)

    given = [
        result("raw_orders_rows", 1),
        result("raw_orders_days", 1),
        ExpectationSuiteIdentifier(name="raw_orders_rows"),
    ]
    stored = [result(s, m, b) for s in ("raw_orders_rows", "raw_orders_days", "x") for m in (1, 2) for b in ("b", "c")]
    stored += [ExpectationSuiteIdentifier(name=n) for n in ("raw_orders_rows", "raw_orders_days")]
    keys = KeyList(given)
    assert keys == given and bool(keys) and not KeyList([])
    assert [k in keys for k in stored] == [k in given for k in stored]
    assert sum(k in keys for k in stored) == 3


def test_the_index_read_from_outcomes_only_is_the_index_gx_builds_from_the_whole_results(tmp_path):
    # the index lists every stored result with its status: earlier runs' results are read as their outcome only
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    from orchestration.lib.data_docs import make_site_offline
    from orchestration.lib.quality_gate import DOCS_SITE, GxSession, KeyList, listed_once, validate_frames

    site = tmp_path / "docs" / "gx"
    for bad in (0, 40, 0):  # three runs, each its own session (as three processes); the second one fails
        session = GxSession(site)
        result = validate_frames(
            {"rows": _day_frame(83, bad, TODAY)}, load_suite("raw_orders"), row_rule=RowRule(0.01, 10), session=session
        )
        assert result.success is (bad == 0)
        session.build_docs()
    ours = (site / "index.html").read_text()
    statuses = sorted(row[0] for row in _parse(site / "index.html").rows if "impact_ledger-" in row)
    assert statuses == ["✔", "✔", "✖"]  # the failed result's status came from its outcome alone
    store = session.context.validation_results_store
    built = time.time() - 2
    with listed_once(store, store.list_keys()):  # GX reading every result whole
        session.context.build_data_docs(
            site_names=[DOCS_SITE], resource_identifiers=KeyList([ExpectationSuiteIdentifier(name="raw_orders_rows")])
        )
    make_site_offline(site, since=built)
    assert (site / "index.html").read_text() == ours


def test_the_sample_of_duplicated_keys_is_their_lowest_keys_on_every_run(tmp_path):
    # 12 orders of DAYS[3] appear twice: each duplicated row is listed (as GX lists unexpected rows), lowest keys
    # first, so a re-run reports the same sample
    _orders_world(tmp_path, {DAYS[3]: 12})
    with duckdb.connect() as conn:
        _load(conn, tmp_path)
        samples = {
            str(o.sample_unexpected)
            for _ in range(5)
            for o in run_suite(conn, load_suite("raw_orders"), DAYS[3], DAYS[3]).outcomes
            if o.expectation == "expect_compound_columns_to_be_unique"
        }
    lowest = sorted(f"o-{DAYS[3]}-{i}" for i in range(12))[:3]
    expected = [{"order_id": k, "_day": DAYS[3]} for k in (lowest[0], lowest[0], lowest[1], lowest[1], lowest[2])]
    assert samples == {str(expected)}


def test_an_assignment_to_a_misspelt_variant_is_quarantined_and_held_back_naming_the_declared_one(world):
    # a trial's 'Treatment' for 'treatment': init said "did you mean 'treatment'?", materialize only "unknown variant"
    write(
        world,
        "assignments",
        pd.DataFrame(
            {
                "experiment_id": "e1",
                "user_id": ["u0", "u1", "u2", "u3"],
                "variant": ["Treatment", "Treatment", "ghost", "holdout"],
                "assigned_at": [datetime(TODAY.year, TODAY.month, TODAY.day, 9 + i) for i in range(4)],
            }
        ),
        TODAY,
    )
    hint = "'Treatment' of experiment 'e1': did you mean 'treatment'?"
    with duckdb.connect() as conn:
        for t in ("users", "experiments", "experiment_variants"):
            load_partition(conn, t, world, TODAY)
        loaded = load_partition(conn, "assignments", world, TODAY)
        result = run_suite(conn, load_suite("raw_assignments"), TODAY, TODAY, config=EVERY_ROW)
    # 'ghost' is near no declared variant (difflib's ratio to 'holdout' is 2 x 3 / 12 = 0.5 < 0.6): no guess for it
    assert loaded.quarantine_reasons == {f"unknown variant for experiment ({hint})": 3}
    [outcome] = [o for o in result.failed if o.column == "variant_known"]
    assert outcome.unexpected_count == 3
    assert f"assignments to a variant the experiment lacks: {hint}" in outcome.describe()
    assert "ghost" not in outcome.describe().split("e.g.")[0]


def test_assignments_of_an_experiment_whose_variants_were_quarantined_point_at_experiment_variants(world):
    # shares written as percentages (50 and 50): both variant rows quarantined, then every assignment as an unknown
    # variant, and the assignments gate said "fix raw.assignments"
    from orchestration.defs.quality.checks import _check_result

    write(
        world,
        "experiment_variants",
        pd.DataFrame({"experiment_id": "e1", "variant": ["holdout", "treatment"], "expected_share": [50.0, 50.0]}),
    )
    write(
        world,
        "assignments",
        pd.DataFrame(
            {
                "experiment_id": "e1",
                "user_id": ["u0", "u1", "u2"],
                "variant": ["holdout", "treatment", "treatment"],
                "assigned_at": [datetime(TODAY.year, TODAY.month, TODAY.day, 9 + i) for i in range(3)],
            }
        ),
        TODAY,
    )
    hint = (
        "experiment 'e1' has no loaded variants: its experiment_variants rows were quarantined (expected_share "
        "outside [0, 1]): fix experiment_variants"
    )
    with duckdb.connect() as conn:
        for t in ("users", "experiments", "experiment_variants"):
            load_partition(conn, t, world, TODAY)
        loaded = load_partition(conn, "assignments", world, TODAY)
        result = run_suite(conn, load_suite("raw_assignments"), TODAY, TODAY, config=EVERY_ROW)
    assert loaded.quarantine_reasons == {f"unknown variant for experiment ({hint})": 3}  # said once, not per row
    [outcome] = [o for o in result.failed if o.column == "variant_known"]
    assert f"assignments to a variant the experiment lacks: {hint}" in outcome.describe()
    first = _check_result(result, "assignments").description.splitlines()[0]
    assert first.endswith("fix raw.experiment_variants and run the days again"), first


def test_the_nearest_declared_variant_is_the_same_one_whatever_its_case_and_only_of_its_own_experiment():
    from orchestration.lib.contract import variant_hints

    declared = [("e1", "holdout"), ("e1", "treatment"), ("e2", "A"), ("e2", "B")]
    # 'a' is no difflib match for 'A' (ratio 0): the case-blind match finds it; 'tretment' is 16/17 = 0.94 near
    assert variant_hints([("e2", "a"), ("e1", "tretment"), ("e2", "treatment")], declared) == (
        "'a' of experiment 'e2': did you mean 'A'?; 'tretment' of experiment 'e1': did you mean 'treatment'?"
    )
    # an experiment with no declared variant: said once, with why (none at all, or its rows quarantined)
    assert variant_hints([("e3", "x"), ("e3", "y")], declared) == (
        "experiment 'e3' has no loaded variants: it has none: fix experiment_variants"
    )
    quarantined = [("e3", "null variant"), ("e3", "expected_share outside [0, 1]"), ("e4", "null variant")]
    assert variant_hints([("e3", "x")], declared, quarantined) == (
        "experiment 'e3' has no loaded variants: its experiment_variants rows were quarantined (null variant; "
        "expected_share outside [0, 1]): fix experiment_variants"
    )
    assert variant_hints([("e1", "ghost")], declared) == ""


def test_a_design_failure_names_the_experiments_its_rows_belong_to(world):
    # a trial's second experiment declared its arms 0.5 and 1.0: the day's gate failed, and attribution untrusted
    # every experiment's results, the first one's (declared right) too
    from orchestration.defs.quality.checks import gate_rows

    experiments = pd.read_parquet(world / "experiments" / "experiments.parquet")
    second = experiments.assign(experiment_id="e2")
    write(world, "experiments", pd.concat([experiments, second], ignore_index=True))
    arms = {"experiment_id": ["e1", "e1", "e2", "e2"], "variant": ["holdout", "treatment"] * 2}
    shares = {"e2 wrong": [0.1, 0.9, 0.5, 1.0], "e2 and a row without an experiment": [0.1, 0.9, 0.5, 0.5]}
    named = {}
    for case, share in shares.items():
        variants = pd.DataFrame({**arms, "expected_share": share})
        if case.endswith("without an experiment"):
            variants = pd.concat([variants, pd.DataFrame({"variant": ["x"], "expected_share": [1.0]})])
        write(world, "experiment_variants", variants)
        with duckdb.connect() as conn:
            for t in ("users", "experiments", "experiment_variants"):
                load_partition(conn, t, world, TODAY)
            suite = load_suite("raw_experiment_variants")
            # two days: a snapshot's rows are every day's (each day's verdict names them)
            result = run_suite(conn, suite, DAYS[-2], TODAY, config=EVERY_ROW)
            rows = gate_rows(conn, suite, result)
        assert result.failed_days == [DAYS[-2], TODAY], result.summary()
        named[case] = (result.day_experiments(DAYS[-2]), result.failed_experiments, rows["experiments"].tolist())
    # e2's shares sum to 1.5: its two rows fail experiment_share_total, e1's pass
    assert named["e2 wrong"] == (["e2"], ["e2"], ['["e2"]', '["e2"]'])
    # a row naming no experiment (null experiment_id) concerns every experiment: NULL, as a table-wide failure
    assert named["e2 and a row without an experiment"] == (None, None, [None, None])


@pytest.mark.parametrize("broken", ["unknown_variant", "assigned_twice"])
def test_a_days_assignments_failure_names_its_experiment(world, broken):
    # a dated design table: the failing rows of the day (a value check, or a duplicated key's every row)
    assigned = {"experiment_id": "e1", "user_id": ["u0", "u1", "u2"], "variant": ["holdout", "treatment", "holdout"]}
    frame = pd.DataFrame(assigned).assign(assigned_at=datetime(TODAY.year, TODAY.month, TODAY.day, 9))
    if broken == "unknown_variant":
        frame.loc[2, "variant"] = "ghost"
    else:  # u1 again in the other arm, an hour later: a conflict (an exact copy would be quarantined as one)
        frame = pd.concat(
            [
                frame,
                frame.iloc[[1]].assign(variant="holdout", assigned_at=frame["assigned_at"][1:2] + timedelta(hours=1)),
            ]
        )
    write(world, "assignments", frame, TODAY)
    with duckdb.connect() as conn:
        for t in ("users", "experiments", "experiment_variants"):
            load_partition(conn, t, world, TODAY)
        load_partition(conn, "assignments", world, TODAY)
        result = run_suite(conn, load_suite("raw_assignments"), TODAY, TODAY, config=EVERY_ROW)
    assert result.failed_days == [TODAY], result.summary()
    assert result.day_experiments(TODAY) == ["e1"]


def test_an_ephemeral_sessions_bookkeeping_is_found_again_without_serialising_gxs_config(monkeypatch):
    # GX wrote its whole config as YAML into an in-memory store on every datasource, asset and batch definition
    # an ephemeral context added (~2.5 ms each); nothing reads that copy back
    from great_expectations.data_context.store.data_context_store import DataContextStore

    from orchestration.lib.quality_gate import GxSession

    written = []
    monkeypatch.setattr(DataContextStore, "serialize", lambda self, value: written.append(value))
    session = GxSession()
    rows = session.batch_definition("raw_predictions", "rows")
    days = session.batch_definition("raw_predictions", "days")
    assert session.batch_definition("raw_predictions", "rows").name == rows.name == "rows"
    asset = session.context.data_sources.get(rows.data_asset.datasource.name).get_asset("raw_predictions")
    assert {b.name for b in asset.batch_definitions} == {"rows", "days"} and days.data_asset.name == asset.name
    assert written == []
