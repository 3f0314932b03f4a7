"""The project's DuckDB materialisations (dbt_project/macros/duckdb_materialisations.sql) against
dbt-duckdb's and dbt's own, on a two-model project (an append mart and a view over it): the same rows after a
first build and after runs that replace days, the same refusal (and nothing lost) when the mart's columns or
types change, the same full refresh after it, and a view where a table stood."""

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
# a view over the mart, as the staging views are over the raw tables
VIEW = """
{{ config(materialized='view') }}
select day, value * 2 as doubled from {{ ref('daily') }}
-- a last line that is a comment, no newline after it"""
MACROS = ("duckdb_materialisations.sql",)


def project(root: Path, ours: bool) -> Path:
    """The two-model dbt project in ``root``, with the project's materialisations or with dbt's and dbt-duckdb's
    alone."""
    (root / "models").mkdir(parents=True)
    (root / "macros").mkdir()
    (root / "models" / "daily_view.sql").write_text(VIEW)
    for macro in MACROS if ours else ():
        shutil.copy(DBT_PROJECT_DIR / "macros" / macro, root / "macros")
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


def table(root: Path, name: str = "daily") -> tuple[list, list]:
    """The relation's (columns with types, rows in order)."""
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as conn:
        columns = conn.execute(
            "select column_name, data_type from information_schema.columns where table_name = ? "
            "order by ordinal_position",
            [name],
        ).fetchall()
        return columns, conn.execute(f"select * from {name} order by all").fetchall()


@pytest.fixture
def both(tmp_path):
    return project(tmp_path / "ours", ours=True), project(tmp_path / "dbt_duckdb", ours=False)


def test_runs_that_replace_days_leave_the_rows_dbt_duckdb_leaves(both, monkeypatch):
    for days, factor in [((0, 5), 10), ((3, 8), 100), ((8, 9), 1000), ((0, 2), 7)]:
        for root in both:
            ok, errors = build(root, monkeypatch, days, factor)
            assert ok, errors
        for name in ("daily", "daily_view"):
            ours, theirs = (table(root, name) for root in both)
            assert ours == theirs, name
    columns, rows = table(both[0])
    assert columns == [("day", "BIGINT"), ("value", "BIGINT")]
    # the mart's runs after the first took the short path (one insert, no temporary table), and the view's runs
    # one statement each (no temporary view, no renames); dbt-duckdb's and dbt's did not
    ours_log, theirs_log = ((root / "target" / "dbt.log").read_text() for root in both)
    assert ours_log.count(" by name (") == 3 and ours_log.count("create or replace view") == 4
    assert "__dbt_tmp" not in ours_log and "__dbt_backup" not in ours_log
    assert theirs_log.count("__dbt_tmp") >= 3 + 4 and "__dbt_backup" in theirs_log
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
    assert table(both[0]) == table(both[1]) and table(both[0], "daily_view") == table(both[1], "daily_view")


def relation_type(root: Path, name: str) -> str:
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute("select table_type from information_schema.tables where table_name = ?", [name]).fetchone()[
            0
        ]


def test_a_table_where_the_view_goes_is_replaced_by_it_as_dbt_replaces_it(both, monkeypatch):
    for root in both:
        with duckdb.connect(str(root / "warehouse.duckdb")) as conn:
            conn.execute("create table daily_view as select 1 as stale")
        assert build(root, monkeypatch, (0, 5))[0]
        assert relation_type(root, "daily_view") == "VIEW"
    assert table(both[0], "daily_view") == table(both[1], "daily_view")
    assert table(both[0], "daily_view")[0] == [("day", "BIGINT"), ("doubled", "BIGINT")]
