"""The rows level is counted in DuckDB and judged by GX on one row per day: its counts and verdicts equal
GX's own on the whole pandas frame (the engine it replaces) and pandas hand counts, for each failure kind;
GX is only ever given aggregates, never the rows."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from orchestration.lib import quality_gate as qg
from orchestration.lib.quality_gate import RowRule, load_suite, validate_frame

DAYS = [date(2026, 9, 1), date(2026, 9, 2), date(2026, 9, 3)]

# one expectation of each kind the SQL counts know, with the kwargs the suites use
SUITE = {
    "name": "oracle_suite",
    "table": "orders",  # a dated table: per-day verdicts
    "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "score"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "key"}},
        {"type": "expect_column_values_to_be_null", "kwargs": {"column": "note"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "score", "min_value": 0, "max_value": 1}},
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "amount", "min_value": 0, "strict_min": True},
        },
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "status", "value_set": ["ok", "late"]}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "label", "value_set": [0, 1]}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "flag", "value_set": [True]}},
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "model", "value_set": {"$PARAMETER": "known"}},
        },
        {"type": "expect_column_values_to_not_be_in_set", "kwargs": {"column": "status", "value_set": ["void"]}},
        {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["key", "_day"]}},
        {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["key", "model"]}},
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "key"}},
        # GX's `mostly` over the whole range: passing it lets every day pass (GX keeps one expectation per
        # type and column in a suite: this is the only range check on label)
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "label", "min_value": 0, "max_value": 1, "mostly": 0.5},
        },
    ],
}
PARAMETERS = {"known": ["m1", "m2"]}


def world_frame(seed: int, n_per_day=(300, 40, 500), bad=0.03) -> pd.DataFrame:
    """Three days of rows where each column breaks its expectation at rate ``bad`` (nulls, NaN, out of range,
    unknown values, duplicated keys across and within days, all-null compound keys)."""
    rng = np.random.default_rng(seed)
    parts = []
    for day, n in zip(DAYS, n_per_day):
        broken = lambda: rng.random(n) < bad  # noqa: E731
        score = rng.random(n)
        score[broken()] = 1.5
        score[broken()] = -0.2
        score[broken()] = np.nan
        amount = rng.random(n) * 10
        amount[broken()] = 0.0  # on the strict bound: unexpected
        amount[broken()] = np.nan
        key = np.array([f"k{day}-{i}" for i in range(n)], dtype=object)
        dup = broken()
        key[dup] = [f"k{day}-{i}" for i in rng.integers(0, n, dup.sum())]  # duplicates within the day
        key[broken()] = "shared"  # the same key on every day: unexpected for the unique key, not per day
        key[broken()] = None
        frame = pd.DataFrame(
            {
                "key": key,
                "score": score,
                "amount": amount,
                "status": np.where(broken(), "void", np.where(rng.random(n) < 0.5, "ok", "late")).astype(object),
                "label": np.where(broken(), 2, rng.integers(0, 2, n)),
                "flag": ~broken(),
                "model": np.where(broken(), "rogue", "m1").astype(object),
                "note": np.where(broken(), "remark", None).astype(object),
                "_day": pd.Timestamp(day),
            }
        )
        frame.loc[broken(), "status"] = None
        frame.loc[broken(), "model"] = None
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def gx_on_the_whole_frame(frame: pd.DataFrame, suite: dict, parameters: dict) -> list:
    """The former engine: GX's pandas validation of every row, COMPLETE results (the oracle)."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    context = gx.get_context(mode="ephemeral")
    batch = (
        context.data_sources.add_pandas("oracle")
        .add_dataframe_asset("rows")
        .add_batch_definition_whole_dataframe("all")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    gx_suite = gx.ExpectationSuite(name="oracle")
    for i, exp in enumerate(suite["expectations"]):
        gx_suite.add_expectation_configuration(
            ExpectationConfiguration(type=exp["type"], kwargs=exp["kwargs"], meta={"position": i})
        )
    result = batch.validate(
        gx_suite,
        result_format={"result_format": "COMPLETE", "return_unexpected_index_query": False},
        expectation_parameters=parameters,
    )
    return result.results


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("rule", [RowRule(0.01, 10), RowRule(0.05, 3), RowRule(0.0, 0)])
def test_counts_and_verdicts_equal_gx_on_the_whole_frame(seed, rule):
    frame = world_frame(seed)
    result = validate_frame(frame, SUITE, PARAMETERS, rule)
    oracle = gx_on_the_whole_frame(frame, SUITE, PARAMETERS)
    assert len(result.outcomes) == len(oracle) == len(SUITE["expectations"])
    day_of_row = frame["_day"].dt.date.to_numpy()
    rows_by_day = frame["_day"].dt.date.value_counts().to_dict()
    assert result.rows_by_day == rows_by_day
    for i, ours in enumerate(result.outcomes):
        theirs = next(r for r in oracle if r.expectation_config.meta["position"] == i)
        details = theirs.result
        index = details["unexpected_index_list"]
        by_day = pd.Series(day_of_row[np.asarray(index, dtype=int)]).value_counts().to_dict() if index else {}
        # the day rule by hand: above both the share and the count, once GX's whole-range check failed
        failed_days = tuple(
            d
            for d in DAYS
            if not theirs.success and by_day.get(d, 0) > max(rule.max_share * rows_by_day[d], rule.min_count)
        )
        name = ours.name
        assert ours.unexpected_count == details["unexpected_count"], name
        assert ours.unexpected_percent == pytest.approx(details["unexpected_percent"]), name
        assert ours.unexpected_by_day == by_day, name
        assert ours.failed_days == failed_days, name
        assert ours.success is (not failed_days), name
        if details["unexpected_count"]:
            assert 0 < len(ours.sample_unexpected) <= qg.SAMPLE_SIZE, name
    # the mix above breaks every expectation on some day under the strictest rule
    if rule == RowRule(0.0, 0):
        assert [o.success for o in result.outcomes] == [False] * (len(SUITE["expectations"]) - 1) + [True]


def test_each_failure_kind_counted_by_hand_on_a_tiny_frame():
    d1, d2 = DAYS[0], DAYS[1]
    frame = pd.DataFrame(
        {
            "key": ["a", "a", "b", None, "c", "c", "c", "a"],
            "score": [0.5, None, 1.5, 0.1, float("nan"), 0.0, 1.0, -1.0],
            "amount": [1.0, 0.0, 2.0, None, 3.0, 4.0, 5.0, 6.0],
            "status": ["ok", "void", "late", None, "ok", "ok", "x", "ok"],
            "label": [0, 1, 2, 1, 0, 1, 1, 3],
            "flag": [True, True, False, True, True, True, True, False],
            "model": ["m1", "m2", "m3", None, "m1", "m1", "m1", "m1"],
            "note": [None, None, None, None, "x", None, None, None],
            "_day": [pd.Timestamp(d) for d in (d1, d1, d1, d1, d2, d2, d2, d2)],
        }
    )
    result = validate_frame(frame, SUITE, PARAMETERS, RowRule(0.0, 0))
    got = [(o.name, o.unexpected_by_day) for o in result.outcomes]
    expected = [
        ("expect_column_values_to_not_be_null(score)", {d1: 1, d2: 1}),  # None and NaN
        ("expect_column_values_to_not_be_null(key)", {d1: 1}),
        ("expect_column_values_to_be_null(note)", {d2: 1}),
        ("expect_column_values_to_be_between(score)", {d1: 1, d2: 1}),  # 1.5 and -1.0; 0.0 and 1.0 inside
        ("expect_column_values_to_be_between(amount)", {d1: 1}),  # 0.0 on the strict minimum; None skipped
        ("expect_column_values_to_be_in_set(status)", {d1: 1, d2: 1}),  # void, x; None skipped
        ("expect_column_values_to_be_in_set(label)", {d1: 1, d2: 1}),  # 2, 3
        ("expect_column_values_to_be_in_set(flag)", {d1: 1, d2: 1}),
        ("expect_column_values_to_be_in_set(model)", {d1: 1}),  # m3; None skipped
        ("expect_column_values_to_not_be_in_set(status)", {d1: 1}),
        ("expect_compound_columns_to_be_unique(key, _day)", {d1: 2, d2: 3}),  # a twice on d1, c thrice on d2
        # (a, m1) on d1 and on d2, (c, m1) thrice on d2; (None, None) has every value missing: ignored
        ("expect_compound_columns_to_be_unique(key, model)", {d1: 1, d2: 4}),
        ("expect_column_values_to_be_unique(key)", {d1: 2, d2: 4}),  # a on both days, c thrice; None skipped
        ("expect_column_values_to_be_between(label)", {d1: 1, d2: 1}),  # 2, 3: 2 of 8, within mostly 0.5
    ]
    assert got == expected
    assert result.failed_days == [d1, d2]
    assert result.outcomes[-1].success and result.outcomes[-1].unexpected_percent == pytest.approx(100 * 2 / 8)
    duplicated = next(o for o in result.outcomes if o.name == "expect_compound_columns_to_be_unique(key, _day)")
    assert sorted(map(str, duplicated.sample_unexpected)) == sorted(
        map(
            str,
            [{"key": "a", "_day": pd.Timestamp(d1).to_pydatetime()}] * 2
            + [{"key": "c", "_day": pd.Timestamp(d2).to_pydatetime()}] * 3,
        )
    )
    # as a person reads it: the day in ISO form, not datetime.datetime(2026, ...)
    said = duplicated.describe()
    assert f"{{'key': 'a', '_day': '{d1.isoformat()}'}}" in said and "datetime" not in said


def test_gx_is_given_aggregates_never_the_rows(monkeypatch):
    seen = []
    original = qg._gx_validate

    def spy(context, gx, name, batch_definition, gx_suite, frame, *args):
        seen.append((name, len(frame)))
        return original(context, gx, name, batch_definition, gx_suite, frame, *args)

    monkeypatch.setattr(qg, "_gx_validate", spy)
    monkeypatch.setattr(qg, "rows_frame", lambda *a, **k: pytest.fail("the gate fetched the rows"))
    frame = world_frame(4, n_per_day=(20_000, 5_000, 30_000))
    result = validate_frame(frame, SUITE, PARAMETERS, RowRule(0.01, 10))
    assert result.rows == 55_000
    assert seen == [("oracle_suite_rows", len(DAYS))]  # one row per day


def test_the_gate_on_a_warehouse_never_fetches_the_rows(monkeypatch, tmp_path):
    import duckdb

    from orchestration.lib.project_config import parse_config
    from orchestration.lib.quality_gate import load_suite, run_suite

    seen = []
    original = qg._gx_validate
    monkeypatch.setattr(qg, "rows_frame", lambda *a, **k: pytest.fail("the gate fetched the rows"))
    monkeypatch.setattr(
        qg,
        "_gx_validate",
        lambda c, gx, name, b, s, frame, *a: seen.append(len(frame)) or original(c, gx, name, b, s, frame, *a),
    )
    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA raw; CREATE SCHEMA raw_quarantine")
        conn.execute(
            "CREATE TABLE raw.orders AS SELECT 'o' || i AS order_id, 'u1' AS user_id, TIMESTAMP '2026-09-03 10:00' AS ordered_at, "
            "10.0::DOUBLE AS revenue, CASE WHEN i % 50 = 0 THEN 'lost' ELSE 'completed' END AS status, "
            "DATE '2026-09-03' AS _partition_date FROM range(20000) t(i)"
        )
        conn.execute("CREATE TABLE raw_quarantine.orders AS SELECT *, 'x' AS _reason FROM raw.orders LIMIT 0")
        conn.execute("CREATE TABLE raw.users AS SELECT 'u1' AS user_id, TIMESTAMP '2026-01-01' AS signup_at")
        conn.execute("CREATE TABLE raw_quarantine.users AS SELECT *, 'x' AS _reason FROM raw.users LIMIT 0")
        config = parse_config({"gates": {"rows": {"max_share": 0.01, "min_count": 10}}})
        result = run_suite(conn, load_suite("raw_orders"), DAYS[2], DAYS[2], config=config)
    status = next(
        o for o in result.outcomes if o.name == "expect_column_values_to_be_in_set(status)" and o.level == "rows"
    )
    assert status.unexpected_count == 400 and status.failed_days == (DAYS[2],)  # 2% of 20,000 > 1% and > 10
    assert result.rows == 20_000 and max(seen) <= 1 and len(seen) == 3  # schema, one day's row, one day's volume


def test_a_suite_file_with_a_row_expectation_the_sql_counts_do_not_know_is_refused_naming_it(tmp_path):
    """A suite edited to use, e.g., a regex check fails loudly when it loads instead of passing unchecked."""
    (tmp_path / "raw_orders.yml").write_text(
        "name: raw_orders\ntable: orders\nexpectations:\n"
        "  - {type: expect_column_values_to_match_regex, kwargs: {column: order_id, regex: '^o'}}\n"
    )
    with pytest.raises(
        ValueError, match=r"raw_orders.yml: expectations #1: expect_column_values_to_match_regex is not"
    ):
        load_suite("raw_orders", tmp_path)
