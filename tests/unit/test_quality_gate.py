"""The declarative predictions suite, run through Great Expectations on small frames."""

import pandas as pd
import pytest

from orchestration.lib.quality_gate import load_suite, suite_columns, validate_frame

KNOWN = {"known_model_ids": ["m1", "m2"]}


@pytest.fixture(scope="module")
def suite():
    return load_suite("raw_predictions")


def frame(n=2000, **overrides) -> pd.DataFrame:
    f = pd.DataFrame({"prediction_id": [f"p{i}" for i in range(n)], "model_id": ["m1", "m2"] * (n // 2), "score": [0.5] * n})
    for col, (rows, value) in overrides.items():
        f.loc[rows, col] = value
    return f


def test_suite_reads_only_the_columns_it_checks(suite):
    assert set(suite_columns(suite)) == {"prediction_id", "score", "model_id"}


def test_clean_frame_passes(suite):
    result = validate_frame(frame(), suite, KNOWN)
    assert result.success and len(result.outcomes) == 4 and result.rows == 2000


def test_a_stray_bad_row_is_tolerated_by_mostly(suite):
    # one bad score in 2000 rows stays within mostly=0.999 (quarantine handles it)
    assert validate_frame(frame(score=([0], 1.7)), suite, KNOWN).success


@pytest.mark.parametrize(
    "column, rows, value, expectation",
    [
        ("score", slice(0, 99), 1.7, "expect_column_values_to_be_between"),
        ("prediction_id", slice(0, 99), "dup", "expect_column_values_to_be_unique"),
        ("prediction_id", slice(0, 99), None, "expect_column_values_to_not_be_null"),
        ("model_id", slice(0, 99), "rogue_model", "expect_column_values_to_be_in_set"),
    ],
)
def test_each_rule_fails_the_gate_and_names_itself(suite, column, rows, value, expectation):
    result = validate_frame(frame(**{column: (rows, value)}), suite, KNOWN)
    assert not result.success
    assert [o.expectation for o in result.failed] == [expectation]
    failed = result.failed[0]
    assert failed.column == column and failed.unexpected_count >= 100
    assert expectation in result.summary()
    if value is not None:
        assert value in failed.sample_unexpected


def test_suite_file_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_suite("nope", tmp_path)
    (tmp_path / "bad.yml").write_text("name: bad\ntable: t\nexpectations:\n  - type: expect_x\n")
    with pytest.raises(ValueError, match="needs 'type' and 'kwargs'"):
        load_suite("bad", tmp_path)
