"""The run's dates reach the dbt SQL as environment variables, so a run with other dates keeps dbt's partial parse."""

import os
from datetime import date

import pytest

from orchestration.defs.transform.dbt_assets import RUN_DATE_ENV, run_date_env
from orchestration.lib.settings import temporary_env
from tests.dbt_in_process import run_dbt

MODEL = "int_label_refresh_days"  # reads min_date() and max_date()


def compile_model(tmp_path, env: dict[str, str], variables: str | None = None):
    """`dbt compile` of MODEL in-process -> (success, compiled SQL or error, {event name: message} dbt fired)."""

    events = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IMPACT_LEDGER_DB", str(tmp_path / "warehouse.duckdb"))
        for name in RUN_DATE_ENV.values():
            mp.delenv(name, raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        result = run_dbt(
            "compile", [MODEL], tmp_path / "target", variables, [lambda e: events.setdefault(e.info.name, e.info.msg)]
        )
    if not result.success:
        return False, str(result.exception), events
    [node] = [n for n in result.result.results if n.node.name == MODEL]
    return True, node.node.compiled_code, events


def test_the_dates_come_from_the_environment_and_a_new_date_keeps_the_partial_parse(tmp_path):
    ok, sql, _ = compile_model(
        tmp_path, {"IMPACT_LEDGER_MIN_DATE": "2026-03-04", "IMPACT_LEDGER_MAX_DATE": "2026-03-06"}
    )
    assert ok, sql
    assert "cast('2026-03-04' as date)" in sql and "cast('2026-03-06' as date)" in sql

    ok, sql, events = compile_model(
        tmp_path, {"IMPACT_LEDGER_MIN_DATE": "2026-05-01", "IMPACT_LEDGER_MAX_DATE": "2026-05-01"}
    )
    assert ok, sql
    assert "cast('2026-05-01' as date)" in sql and "2026-03-0" not in sql
    # dbt re-parsed nothing: the dates are read when the SQL is compiled, not while parsing
    assert "UnableToPartialParse" not in events
    assert "0 files deleted, 0 files added, 0 files changed" in events["PartialParsingEnabled"]


def test_dates_given_as_vars_win_and_none_at_all_mean_all_history(tmp_path):
    env = {"IMPACT_LEDGER_MIN_DATE": "2026-03-04", "IMPACT_LEDGER_MAX_DATE": "2026-03-06"}
    ok, sql, _ = compile_model(tmp_path, env, '{"min_date": "2026-01-02", "max_date": "2026-01-03"}')
    assert ok, sql
    assert "cast('2026-01-02' as date)" in sql and "cast('2026-01-03' as date)" in sql and "2026-03" not in sql
    ok, sql, _ = compile_model(tmp_path, {})
    assert ok, sql
    assert "cast('1970-01-01' as date)" in sql and "cast('2999-12-31' as date)" in sql


def test_a_malformed_date_names_its_environment_variable(tmp_path):
    ok, error, _ = compile_model(tmp_path, {"IMPACT_LEDGER_MIN_DATE": "2026/03/04"})
    assert not ok
    assert "environment variable IMPACT_LEDGER_MIN_DATE must be a date YYYY-MM-DD, got 2026/03/04" in error


def test_the_dates_are_set_only_while_dbt_runs(monkeypatch):
    # as the dbt asset's in-process invocation sets them (dbt_in_process.py)
    monkeypatch.setenv("IMPACT_LEDGER_MAX_DATE", "2020-01-01")
    monkeypatch.delenv("IMPACT_LEDGER_MIN_DATE", raising=False)
    with temporary_env(run_date_env(date(2026, 3, 4), date(2026, 3, 6))):
        assert (os.environ["IMPACT_LEDGER_MIN_DATE"], os.environ["IMPACT_LEDGER_MAX_DATE"]) == (
            "2026-03-04",
            "2026-03-06",
        )
    assert "IMPACT_LEDGER_MIN_DATE" not in os.environ and os.environ["IMPACT_LEDGER_MAX_DATE"] == "2020-01-01"


@pytest.mark.parametrize("folder", ["../elsewhere", "a/b", "..", "", ".hidden", "/srv/dbt/../../etc"])
def test_a_dbt_target_folder_outside_dbt_project_target_is_refused_naming_the_variable(monkeypatch, folder):
    from orchestration.defs.transform.dbt_assets import DBT_TARGET_ENV, dbt_target_folder

    monkeypatch.setenv(DBT_TARGET_ENV, folder)
    with pytest.raises(ValueError, match=DBT_TARGET_ENV):
        dbt_target_folder()


def test_a_plain_dbt_target_folder_name_is_kept(monkeypatch):
    from orchestration.defs.transform.dbt_assets import DBT_TARGET_ENV, dbt_target_folder

    monkeypatch.setenv(DBT_TARGET_ENV, "dagster_gw1")
    assert dbt_target_folder() == "dagster_gw1"
    monkeypatch.delenv(DBT_TARGET_ENV)
    assert dbt_target_folder() == "dagster"


def test_an_absolute_dbt_target_path_is_used_as_it_is(monkeypatch, tmp_path):
    # two trials: every run wrote dbt's target into the product's checkout, so a read-only install could not run
    from orchestration.defs.transform.dbt_assets import DBT_TARGET_ENV, dbt_target_folder
    from orchestration.lib.settings import DBT_PROJECT_DIR

    monkeypatch.setenv(DBT_TARGET_ENV, str(tmp_path / "dbt_target"))
    assert dbt_target_folder() == str(tmp_path / "dbt_target")
    # the runs join it under dbt_project/target: an absolute path is kept whole (pathlib)
    assert DBT_PROJECT_DIR / "target" / dbt_target_folder() == tmp_path / "dbt_target"


def test_dbts_caches_go_beside_an_absolute_target_not_into_the_checkout(monkeypatch, tmp_path):
    # a re-trial: with the target outside the checkout, dbt_caches/ in the checkout was still rewritten
    from orchestration.lib.dbt_runner import DBT_CACHES, caches_dir

    monkeypatch.setenv("IMPACT_LEDGER_DBT_TARGET", str(tmp_path / "dbt_target"))
    assert caches_dir() == tmp_path / "dbt_target" / "dbt_caches"
    monkeypatch.setenv("IMPACT_LEDGER_DBT_TARGET", "dagster_gw1")
    assert caches_dir() == DBT_CACHES
