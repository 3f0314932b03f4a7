"""The count_where macro (dbt_project/macros/cross_engine.sql) on DuckDB: a count of the rows whose condition is
true, 0 when none is. A trial's day without labels stored 0 true positives beside NULL false negatives: DuckDB's
count_if is NULL when the condition is NULL on every row (an unlabelled row's `label = 1` is NULL)."""

import pytest

from tests.dbt_in_process import run_dbt

ROWS = "(VALUES (false, NULL::INTEGER), (false, NULL)) AS t(decision, label)"  # decided nothing, no labels


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("decision and label = 1", 0),  # false on every row: count_if's 0
        ("not decision and label = 1", 0),  # NULL on every row: count_if's NULL
        ("not decision", 2),
    ],
)
def test_a_count_is_0_where_the_condition_holds_on_no_row_null_or_false(tmp_path, monkeypatch, condition, expected):
    monkeypatch.setenv("IMPACT_LEDGER_DB", str(tmp_path / "warehouse.duckdb"))
    sql = f"select {{{{ count_where('{condition}') }}}} as n from {ROWS}"
    result = run_dbt("show", [], str(tmp_path / "target"), inline=sql)
    assert result.success, result.exception
    table = result.result.results[0].agate_table
    assert [row["n"] for row in table.rows] == [expected]
