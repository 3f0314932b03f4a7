"""The project's incremental materialisation on DuckDB (dbt_project/macros/incremental_duckdb.sql) against
dbt-duckdb's own, on a one-model project: the same rows after a first build and after runs that replace days,
the same refusal (and nothing lost) when the model's columns or types change, and a full refresh after it."""

import shutil
from pathlib import Path

import duckdb
import pytest

from orchestration.lib.dbt_runner import invoke_dbt
from orchestration.lib.settings import DBT_PROJECT_DIR

PROFILE = """
mini:
  target: local
  outputs:
    local: {type: duckdb, path: "%s", threads: 1}
"""
# an append mart as the project's are: a pre-hook deletes the days the run recomputes, the run appends them
MODEL = """
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{% if is_incremental() %}delete from {{ this }} where day >= " ~ env_var('MINI_FROM')
          ~ " and day < " ~ env_var('MINI_TO') ~ "{% endif %}") }}
select range as day, VALUE as valueEXTRA
from range({{ env_var('MINI_FROM') }}, {{ env_var('MINI_TO') }})
-- a last line that is a comment, no newline after it"""
VALUE = "range * {{ env_var('MINI_FACTOR') }}"
PLAIN = {"value": VALUE, "extra": ""}
NEW_COLUMN = {"value": VALUE, "extra": ", 'x' as note"}
NEW_TYPE = {"value": f"({VALUE})::double", "extra": ""}


def project(root: Path, ours: bool) -> Path:
    """A one-model dbt project in ``root``, with the project's materialisation or with dbt-duckdb's alone."""
    (root / "models").mkdir(parents=True)
    (root / "macros").mkdir()
    if ours:
        shutil.copy(DBT_PROJECT_DIR / "macros" / "incremental_duckdb.sql", root / "macros")
    (root / "dbt_project.yml").write_text("name: mini\nversion: '1.0'\nconfig-version: 2\nprofile: mini\n")
    (root / "profiles.yml").write_text(PROFILE % (root / "warehouse.duckdb"))
    return root


def build(root: Path, monkeypatch, days: tuple[int, int], factor: int = 10, columns: dict = PLAIN, *flags: str):
    """`dbt run` of the model (``columns``) over ``days`` (first, end exclusive) -> (success, dbt's error lines)."""
    (root / "models" / "daily.sql").write_text(
        MODEL.replace("VALUE", columns["value"]).replace("EXTRA", columns["extra"])
    )
    monkeypatch.setenv("MINI_FROM", str(days[0]))
    monkeypatch.setenv("MINI_TO", str(days[1]))
    monkeypatch.setenv("MINI_FACTOR", str(factor))
    target = str(root / "target")
    args = [
        "--no-use-colors",
        "--log-level-file",
        "debug",
        "run",
        "--project-dir",
        str(root),
        "--profiles-dir",
        str(root),
    ]
    args += flags
    outcome = invoke_dbt([*args, "--target-path", target, "--log-path", target], tail=1000)
    return outcome.success, "\n".join(outcome.errors)


def table(root: Path) -> tuple[list, list]:
    """The model's (columns with types, rows in order)."""
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as conn:
        columns = conn.execute(
            "select column_name, data_type from information_schema.columns where table_name = 'daily' "
            "order by ordinal_position"
        ).fetchall()
        return columns, conn.execute("select * from daily order by all").fetchall()


@pytest.fixture
def both(tmp_path):
    return project(tmp_path / "ours", ours=True), project(tmp_path / "dbt_duckdb", ours=False)


def test_runs_that_replace_days_leave_the_rows_dbt_duckdb_leaves(both, monkeypatch):
    for days, factor in [((0, 5), 10), ((3, 8), 100), ((8, 9), 1000), ((0, 2), 7)]:
        for root in both:
            ok, errors = build(root, monkeypatch, days, factor)
            assert ok, errors
        ours, theirs = (table(root) for root in both)
        assert ours == theirs
    columns, rows = table(both[0])
    assert columns == [("day", "BIGINT"), ("value", "BIGINT")]
    # the runs after the first took the short path (one insert, no temporary table); dbt-duckdb's did not
    ours_log, theirs_log = ((root / "target" / "dbt.log").read_text() for root in both)
    assert ours_log.count(" by name (") == 3 and "__dbt_tmp" not in ours_log
    assert theirs_log.count("__dbt_tmp") >= 3
    # the days of each run replaced the ones before: nothing duplicated, nothing older lost
    assert rows == [(0, 0), (1, 7), (2, 20), (3, 300), (4, 400), (5, 500), (6, 600), (7, 700), (8, 8000)]


@pytest.mark.parametrize("change, column", [(NEW_COLUMN, "note"), (NEW_TYPE, "value")])
def test_a_changed_column_fails_as_dbt_duckdb_fails_naming_it_and_loses_nothing(both, monkeypatch, change, column):
    for root in both:
        assert build(root, monkeypatch, (0, 5))[0]
    before = table(both[0])
    for root in both:
        ok, errors = build(root, monkeypatch, (3, 8), 10, change)
        assert not ok
        assert "The source and target schemas on this incremental model are out of sync" in errors
        assert table(root) == before  # the pre-hook's delete was not kept
    ok, errors = build(both[0], monkeypatch, (3, 8), 10, change)
    assert f"  {column}: " in errors, errors  # ours also names the column and both types
    # a full refresh rebuilds the table with the model's new columns, as dbt-duckdb's does
    for root in both:
        assert build(root, monkeypatch, (0, 5), 10, change, "--full-refresh")[0]
    assert table(both[0]) == table(both[1])
