"""The marts' column rules (dbt_project/tests/generic/column_rules.sql): one dbt test per model that fails on
each null in a not_null column and each rate outside 0..1, and names the column, rule and value of each."""

import shutil
from pathlib import Path

import duckdb
import pytest

from orchestration.lib.dbt_runner import invoke_dbt
from orchestration.lib.settings import DBT_PROJECT_DIR

PROFILE = 'mini:\n  target: local\n  outputs:\n    local: {type: duckdb, path: "%s", threads: 1}\n'
SCHEMA = """
version: 2
models:
  - name: rates
    data_tests:
      - column_rules:
          arguments:
            not_null: [day, model_id]
            between_zero_and_one: [precision, recall]
"""
CLEAN = [(1, "'m1'", 0.0, 1.0), (2, "'m1'", 0.5, None), (3, "'m2'", None, 0.25)]  # 0, 1 and nulls are fine
BROKEN = [(1, "'m1'", -0.1, 1.0), (None, "'m1'", 0.5, 1.5), (3, None, 1.0000001, None)]


def _values(rows) -> str:
    return ", ".join("(" + ", ".join("null" if v is None else str(v) for v in row) + ")" for row in rows)


def _build(root: Path, rows) -> dict:
    """`dbt build --store-failures` of the one-model project with ``rows`` -> the test's result event data."""
    (root / "models" / "rates.sql").write_text(
        f"select * from (values {_values(rows)}) t(day, model_id, precision, recall)"
    )
    target = str(root / "target")
    args = ["--no-use-colors", "build", "--store-failures", "--project-dir", str(root), "--profiles-dir", str(root)]
    outcome = invoke_dbt([*args, "--target-path", target, "--log-path", target])
    (test,) = [r["data"] for r in outcome.results if r["info"]["name"] == "LogTestResult"]
    return test


@pytest.fixture
def root(tmp_path) -> Path:
    root = tmp_path / "mini"
    (root / "models").mkdir(parents=True)
    (root / "tests" / "generic").mkdir(parents=True)
    shutil.copy(DBT_PROJECT_DIR / "tests" / "generic" / "column_rules.sql", root / "tests" / "generic")
    (root / "models" / "schema.yml").write_text(SCHEMA)
    (root / "dbt_project.yml").write_text("name: mini\nversion: '1.0'\nconfig-version: 2\nprofile: mini\n")
    (root / "profiles.yml").write_text(PROFILE % (root / "warehouse.duckdb"))
    return root


def test_clean_columns_pass(root):
    result = _build(root, CLEAN)
    assert (result["status"], result["num_failures"]) == ("pass", 0)


def test_each_broken_rule_is_a_failing_row_naming_its_column(root):
    result = _build(root, BROKEN)
    # by hand: precision -0.1 and 1.0000001, recall 1.5, a null day and a null model_id
    expected = {
        ("day", "not_null", None),
        ("model_id", "not_null", None),
        ("precision", "between_zero_and_one", -0.1),
        ("precision", "between_zero_and_one", 1.0000001),
        ("recall", "between_zero_and_one", 1.5),
    }
    assert (result["status"], result["num_failures"]) == ("fail", len(expected))
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as conn:
        (table,) = conn.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_name LIKE 'column_rules%'"
        ).fetchone()
        stored = conn.execute(f"SELECT column_name, rule, value FROM {table}").fetchall()
    assert {(c, r, None if v is None else float(v)) for c, r, v in stored} == expected
