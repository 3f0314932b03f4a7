"""The command line: help works, bad input gives a message, not a traceback, and a run streams its progress."""

import argparse
import os
import re
import textwrap
import subprocess
import sys
import tomllib
from pathlib import Path

import dagster as dg
import pytest

from orchestration import cli
from orchestration.runs import execute_with_progress
from orchestration.lib.raw_loader import empty_day_note
from orchestration.lib.settings import PROJECT_ROOT

COMMANDS = ("generate", "init", "materialize", "retrain", "summary", "query", "report")
CONSOLE_SCRIPT = Path(sys.executable).parent / "impact-ledger"


def run(*args, env=None):
    """The installed `impact-ledger` console script, importing this checkout's code (PYTHONPATH first)."""
    env = {**(env or os.environ), "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run([str(CONSOLE_SCRIPT), *args], capture_output=True, text=True, env=env)


def test_the_console_script_is_the_cli_main_ending_the_process_at_once():
    scripts = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"impact-ledger": "orchestration.cli:console_main"}
    assert "from orchestration.cli import console_main" in CONSOLE_SCRIPT.read_text()  # `pip install -e .` made it


def test_the_console_script_runs_exit_handlers_and_flushes_before_it_ends(tmp_path):
    """console_main() skips the interpreter's module teardown (os._exit): the exit code, everything printed to
    a pipe and the exit handlers (here one a module registers at import, as libraries do) must survive it."""
    marker = tmp_path / "handler_ran"
    (tmp_path / "sitecustomize.py").write_text(
        f"import atexit, pathlib\natexit.register(pathlib.Path({str(marker)!r}).write_text, 'yes')\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{PROJECT_ROOT}"}
    result = subprocess.run(
        [str(CONSOLE_SCRIPT), "query", "SELECT 1", "--db", str(tmp_path / "none.duckdb")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 2 and "does not exist" in result.stderr
    assert marker.read_text() == "yes"


@pytest.mark.parametrize("launch", [[str(CONSOLE_SCRIPT)], [sys.executable, "-m", "orchestration.cli"]])
def test_help_lists_the_commands(launch):
    result = subprocess.run(
        [*launch, "--help"], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    )
    assert result.returncode == 0, result.stderr
    # argparse lists each subcommand on its own 4-space-indented line, followed by its help
    listed = re.findall(r"^    ([a-z]+)\b", result.stdout, re.MULTILINE)
    assert listed == list(COMMANDS), result.stdout


def test_source_that_is_a_file_is_not_a_directory(tmp_path):
    source = tmp_path / "orders.csv"
    source.write_text("order_id\n1\n")
    result = run("materialize", "--source", str(source), "--db", str(tmp_path / "w.duckdb"))
    assert result.returncode == 2
    assert f"source '{source}' is not a directory" in result.stderr and "Traceback" not in result.stderr


def test_bad_source_path_is_a_clear_message(tmp_path):
    result = run("materialize", "--source", str(tmp_path / "missing"), "--db", str(tmp_path / "w.duckdb"))
    assert result.returncode == 2
    assert "source directory" in result.stderr and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_project_whose_tables_come_from_sources_needs_no_landing_zone(tmp_path, monkeypatch):
    # every table in a database: materialize refused to start without an (empty) landing-zone folder
    from orchestration.cli import _use_paths

    args = argparse.Namespace(source=str(tmp_path / "missing"), db=str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("IMPACT_LEDGER_DB", str(tmp_path / "w.duckdb"))
    with pytest.raises(cli.CliError, match="does not exist"):
        _use_paths(args, {})
    assert _use_paths(args, {"orders": object()}) == tmp_path / "missing"


@pytest.mark.parametrize(
    "args, message",
    [
        (["generate", "--days", "5"], "too short"),
        (["generate", "--users", "0"], "positive integer"),
        (["materialize", "--start", "yesterday"], "YYYY-MM-DD"),
        (["summary", "--db", "/nonexistent/w.duckdb"], "does not exist yet"),
        (["query", "SELECT 1", "--db", "/nonexistent/a.duckdb"], "does not exist yet"),
    ],
)
def test_bad_arguments_are_clear_messages(tmp_path, args, message):
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "variable, value",
    [
        ("IMPACT_LEDGER_DUCKDB_THREADS", "x"),
        ("IMPACT_LEDGER_DBT_THREADS", "0"),
        ("IMPACT_LEDGER_GX_DOCS_INDEX_LIMIT", "0"),
    ],
)
def test_a_bad_setting_stops_materialize_before_any_work_with_its_name(tmp_path, variable, value):
    (tmp_path / "landing").mkdir()
    result = run(
        "materialize", "--source", str(tmp_path / "landing"), "--db", str(tmp_path / "w.duckdb"),
        env={**os.environ, variable: value},
    )  # fmt: skip
    assert result.returncode == 2
    assert f"{variable} must be a whole number >= 1, got '{value}'" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "w.duckdb").exists()


def test_a_bad_gx_worker_setting_stops_materialize_before_any_work_with_its_name(tmp_path):
    (tmp_path / "landing").mkdir()
    result = run(
        "materialize", "--source", str(tmp_path / "landing"), "--db", str(tmp_path / "w.duckdb"),
        env={**os.environ, "IMPACT_LEDGER_GX_WORKER": "yes"},
    )  # fmt: skip
    assert result.returncode == 2
    assert "IMPACT_LEDGER_GX_WORKER must be 0 or 1, got 'yes'" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "w.duckdb").exists()


def test_query_prints_a_table_and_reports_sql_errors(tmp_path):
    import duckdb

    db = tmp_path / "analytics.duckdb"
    with duckdb.connect(str(db)) as conn:
        conn.execute("CREATE TABLE t AS SELECT 1 AS a, 'x' AS b")
    ok = run("query", "SELECT * FROM t", "--db", str(db))
    assert ok.returncode == 0 and "a" in ok.stdout and "x" in ok.stdout
    bad = run("query", "SELECT nope FROM t", "--db", str(db))
    assert bad.returncode == 2 and "query failed" in bad.stderr and "Traceback" not in bad.stderr
    write = run("query", "DROP TABLE t", "--db", str(db))
    assert write.returncode == 2 and "read-only" in write.stderr.lower()


def _query(tmp_path, capsys, create: str, sql: str) -> str:
    """`query`'s output of ``sql`` on an analytics database made by ``create`` (in-process: cmd_query)."""
    import duckdb

    db = tmp_path / "analytics.duckdb"
    with duckdb.connect(str(db)) as conn:
        conn.execute(create)
    assert cli.cmd_query(argparse.Namespace(db=str(db), sql=sql, max_rows=10)) == 0
    return capsys.readouterr().out


def test_query_prints_sums_of_counts_as_whole_numbers(tmp_path, capsys):
    # a trial's kpi_daily.orders (a sum of counts: DuckDB's HUGEINT) printed as 49.0; a HUGEINT past 2^53, which a
    # float cannot hold exactly, stays a float
    out = _query(
        tmp_path,
        capsys,
        "CREATE TABLE t AS SELECT sum(x) AS orders, 1.5 AS rate, (1::HUGEINT << 60) AS huge FROM range(10) r(x)",
        "SELECT * FROM t",
    )
    header, row = out.splitlines()
    assert header.split() == ["orders", "rate", "huge"] and row.split()[:2] == ["45", "1.5"]
    assert float(row.split()[2]) == pytest.approx(2.0**60, rel=1e-6) and "e+18" in row.split()[2]


def test_query_prints_null_as_null(tmp_path, capsys):
    # a trial's "not tested" rows (NULL intervals) printed as NaN and <NA>, which read as a failed computation
    out = _query(
        tmp_path,
        capsys,
        "CREATE TABLE t AS SELECT * FROM (VALUES (1, 0.5, 'a', true), (NULL, NULL, NULL, NULL)) v(n, x, s, b)",
        "SELECT * FROM t ORDER BY n",
    )
    header, first, second = out.splitlines()
    assert first.split() == ["1", "0.5", "a", "True"] and second.split() == ["NULL"] * 4
    # a text column of NULLs only (a re-trial's untrusted_reason) printed None, like the text 'None'
    why = _query(tmp_path, capsys, "CREATE TABLE u AS SELECT 1", "SELECT CAST(NULL AS VARCHAR) AS why")
    assert why.splitlines()[1].split() == ["NULL"]


def test_query_says_how_many_rows_it_left_out(tmp_path, capsys):
    # a trial's 90-row result printed 50 lines and a "..." row, with no total
    import duckdb

    db = tmp_path / "analytics.duckdb"
    with duckdb.connect(str(db)) as conn:
        conn.execute("CREATE TABLE t AS SELECT x FROM range(90) r(x)")
    assert cli.cmd_query(argparse.Namespace(db=str(db), sql="SELECT * FROM t", max_rows=50)) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "(90 rows, 50 shown: --max-rows N for more)"
    assert cli.cmd_query(argparse.Namespace(db=str(db), sql="SELECT * FROM t", max_rows=90)) == 0
    assert "shown" not in capsys.readouterr().out


def test_a_table_outside_the_analytics_snapshot_is_answered_with_where_it_is(tmp_path):
    # the README points at intermediate.int_score_calibration; a trial's query of it read only "schema
    # intermediate does not exist"
    import duckdb

    snapshot, warehouse = tmp_path / "analytics.duckdb", tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(snapshot)) as conn:
        conn.execute("CREATE SCHEMA marts; CREATE TABLE marts.alerts AS SELECT 1 AS a")
        conn.execute("CREATE SCHEMA quality; CREATE TABLE quality.gate_results AS SELECT 1 AS a")
        conn.execute("CREATE SCHEMA staging; CREATE TABLE staging.stg_model_costs AS SELECT 1 AS a")
    env = {**os.environ, "IMPACT_LEDGER_ANALYTICS_DB": str(snapshot), "IMPACT_LEDGER_DB": str(warehouse)}
    missing = run("query", "SELECT * FROM intermediate.int_label_counts", env=env)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    # a published schema is not listed again among the warehouse's others (a second trial: quality in both); the
    # report's inputs in staging are named as what they are, not as the staging schema
    assert (
        f"the analytics snapshot ({snapshot}) holds the published schemas marts, quality and the report's inputs "
        "staging.stg_model_costs;"
    ) in missing.stderr
    assert f"tables (staging, intermediate, raw and the rest) are read with --db {warehouse}" in missing.stderr
    # a file named with --db is what the user meant: no advice about the snapshot
    given = run("query", "SELECT * FROM intermediate.x", "--db", str(snapshot))
    assert given.returncode == 2 and "holds the published schemas" not in given.stderr


def test_a_view_over_files_is_answered_with_where_to_read_them(tmp_path):
    # on engine: spark the warehouse's raw and staging are views over Parquet, which query may not read
    import duckdb
    import pandas as pd

    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "part.parquet")
    db = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(db)) as conn:
        conn.execute(
            f"CREATE SCHEMA raw; CREATE VIEW raw.labels AS SELECT * FROM read_parquet('{tmp_path}/part.parquet')"
        )
    denied = run("query", "SELECT * FROM raw.labels", "--db", str(db))
    assert denied.returncode == 2 and "Traceback" not in denied.stderr
    assert "views over the Spark engine's Parquet files (IMPACT_LEDGER_SPARK_DIR)" in denied.stderr


def test_summary_reads_the_spark_engines_views_over_its_parquet(tmp_path, monkeypatch):
    # a trial on Spark: summary's locked-down connection could not read staging.stg_model_costs (a view over the
    # Spark engine's Parquet) and its model costs went missing without a word; summary runs only its own SQL
    import duckdb
    import pandas as pd

    pd.DataFrame({"total_cost": [12.5, 7.5]}).to_parquet(tmp_path / "costs.parquet")
    db = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(db)) as conn:
        conn.execute(
            f"CREATE SCHEMA staging; CREATE VIEW staging.costs AS SELECT * FROM read_parquet('{tmp_path}/costs.parquet')"
        )
    monkeypatch.setenv("IMPACT_LEDGER_ENGINE", "spark")
    with cli._summary_connection(db) as conn:
        assert conn.execute("SELECT sum(total_cost) FROM staging.costs").fetchone()[0] == 20.0
    monkeypatch.setenv("IMPACT_LEDGER_ENGINE", "duckdb")  # the DuckDB engine's staging reads tables: locked down
    with cli._summary_connection(db) as conn, pytest.raises(duckdb.PermissionException):
        conn.execute("SELECT sum(total_cost) FROM staging.costs")


def test_a_reader_that_stops_early_ends_the_output_without_a_traceback(tmp_path):
    # `impact-ledger query ... | head`: the pipe closes while the table is printed (was a BrokenPipeError traceback)
    import duckdb

    db = tmp_path / "analytics.duckdb"
    with duckdb.connect(str(db)) as conn:
        conn.execute("CREATE TABLE t AS SELECT range AS n FROM range(200000)")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    args = [str(CONSOLE_SCRIPT), "query", "SELECT * FROM t", "--db", str(db), "--max-rows", "200000"]
    reader = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert reader.stdout.readline()  # the header, then the reader goes away
    reader.stdout.close()
    assert reader.wait(timeout=60) == 0
    assert "Traceback" not in reader.stderr.read().decode()


def test_query_cannot_touch_files_nor_unlock_itself(tmp_path):
    """`query` is read-only SQL on the snapshot: no COPY TO (it once overwrote the warehouse), no reading
    other files, no ATTACH of the warehouse, no extensions, and the lock cannot be lifted."""
    import duckdb

    db, warehouse, secret = tmp_path / "analytics.duckdb", tmp_path / "warehouse.duckdb", tmp_path / "secret.csv"
    with duckdb.connect(str(db)) as conn:
        conn.execute("CREATE TABLE t AS SELECT 1 AS a")
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("CREATE TABLE precious AS SELECT 42 AS answer")
    secret.write_text("password\nhunter2\n")
    escapes = [
        f"COPY (SELECT 'x') TO '{warehouse}'",
        f"SELECT * FROM read_csv('{secret}')",
        f"SELECT * FROM glob('{tmp_path}/*')",
        f"ATTACH '{warehouse}' AS w",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "INSTALL httpfs",
    ]
    for sql in escapes:
        result = run("query", sql, "--db", str(db))
        assert result.returncode == 2, (sql, result.stdout)
        assert "hunter2" not in result.stdout and "Traceback" not in result.stderr
    with duckdb.connect(str(warehouse), read_only=True) as conn:  # untouched
        assert conn.execute("SELECT answer FROM precious").fetchone() == (42,)
    assert run("query", "SELECT a FROM t", "--db", str(db)).returncode == 0  # reading the snapshot still works


def test_progress_lines_stream_while_the_run_executes():
    """A real two-step run: each step's start and end are printed as they happen, with elapsed seconds."""
    lines = []

    @dg.asset
    def upstream() -> None:
        return None

    @dg.asset(deps=[upstream])
    def downstream() -> None:
        # printed before this step finished: the lines stream, they do not arrive after the run
        assert any(re.search(r"upstream done in \d+\.\ds$", line) for line in lines), lines
        assert lines[-1].endswith("downstream started"), lines

    @dg.asset(deps=[downstream])
    def broken() -> None:
        raise RuntimeError("bad day")

    job = dg.Definitions(assets=[upstream, downstream, broken]).resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.ephemeral() as instance:
        result = execute_with_progress(job, instance, lines.append, "2026-10-01 .. 2026-10-07")
    assert not result.success
    steps = [
        re.fullmatch(
            r"\[ *(\d+\.\d)s\] 2026-10-01 \.\. 2026-10-07 (\w+) (started|done|FAILED)( in \d+\.\ds)?", line
        ).groups()[1:3]
        for line in lines
    ]
    assert steps == [
        ("upstream", "started"),
        ("upstream", "done"),
        ("downstream", "started"),
        ("downstream", "done"),
        ("broken", "started"),
        ("broken", "FAILED"),
    ]
    elapsed = [float(re.match(r"\[ *(\d+\.\d)s\]", line).group(1)) for line in lines]
    assert elapsed == sorted(elapsed)


WHY = "- why: " + "the predictions they point to are not loaded " * 8  # longer than a progress note


def test_progress_names_what_a_warned_gate_held_back_and_why_an_asset_was_skipped():
    # a gate holding back the last days of a time-boxed experiment said only "1 check(s) warned"; a report
    # with nothing to show said "done"
    lines = []

    @dg.asset(check_specs=[dg.AssetCheckSpec("volume", asset="sessions")])
    def sessions():
        yield dg.MaterializeResult()
        yield dg.AssetCheckResult(
            check_name="volume",
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            # five lines: four shown, the fifth said to be left out (a verdict's other failures went unsaid)
            description="held back 1 of 2 days (2025-03-19): the other days proceed\nsuite s: 1 of 3 failed\n"
            + WHY
            + "\nequal opportunity 0.29\nequalised odds 0.30",
        )

    @dg.asset(deps=[sessions])
    def report():
        return dg.MaterializeResult(metadata={"skipped": "nothing to report for 2025-03-19"})

    # a paused label feed only warns: its check passes, and its failed expectation was said nowhere
    days = [f"2025-03-{d:02d}" for d in range(10, 17)]
    fresh = {"expect_column_values_to_be_in_set(fresh)": {"blocking": False, "failed_days": days}}

    # and a day whose few labels of unloaded predictions gates.rows.min_count tolerated (a trial's only trace of a
    # missing predictions file): the run said "1 check(s) passed"
    tolerated = {
        "expect_x(prediction_known) (rows of predictions not loaded; tolerated by gates.rows.min_count)": [days[2]]
    }

    @dg.asset(check_specs=[dg.AssetCheckSpec("gate", asset="labels")])
    def labels():
        yield dg.MaterializeResult()
        yield dg.AssetCheckResult(
            check_name="gate",
            passed=True,
            metadata={
                "failed_expectations": dg.MetadataValue.json(fresh),
                "tolerated": dg.MetadataValue.json(tolerated),
            },
        )

    # rows that broke a row rule went to quarantine, and the run said only "done" (the gate passed: few rows)
    reasons = {"score outside [0, 1]": 2, "null user_id": 1}

    @dg.asset(key=["raw", "predictions"])
    def predictions():
        return dg.MaterializeResult(
            metadata={"rows_quarantined": 3, "quarantine_reasons": dg.MetadataValue.json(reasons)}
        )

    @dg.asset(key=["raw", "orders"])
    def orders():
        return dg.MaterializeResult(metadata={"rows_quarantined": 0, "quarantine_reasons": dg.MetadataValue.json({})})

    # an optional table the landing zone lacks: loaded empty, said only in its metadata (a trial's missing
    # experiment tables went unnoticed)
    @dg.asset(key=["raw", "assignments"])
    def assignments():
        return dg.MaterializeResult(metadata={"rows_quarantined": 0, "notes": empty_day_note("assignments", False)})

    job = dg.Definitions(
        assets=[sessions, report, labels, predictions, orders, assignments]
    ).resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.ephemeral() as instance:
        assert execute_with_progress(job, instance, lines.append, "D").success
    said = [line.split("] D ", 1)[1] for line in lines]
    assert any(re.fullmatch(r"sessions done in \d+\.\ds: 1 check\(s\) warned", line) for line in said), said
    assert [line for line in said if line.startswith("raw.") and ": " in line and " done" not in line] == [
        "raw.assignments: absent from the source: loaded empty (an optional table)",
        "raw.predictions: 3 row(s) quarantined (score outside [0, 1]: 2; null user_id: 1) in "
        "raw_quarantine.predictions, with _reason",
    ]
    assert sorted(line for line in said if line.startswith(("sessions: ", "report: ", "labels: "))) == sorted(
        [
            "labels: warning (blocks nothing): expect_column_values_to_be_in_set(fresh) (freshness: no rows after steady "
            "days) on 7 day(s): 2025-03-10, 2025-03-11, 2025-03-12, 2025-03-13, 2025-03-14 ...",
            "labels: warning (blocks nothing): expect_x(prediction_known) (rows of predictions not loaded; tolerated "
            "by gates.rows.min_count) on 1 day(s): 2025-03-12",
            "report: skipped: nothing to report for 2025-03-19",
            # wrapped, whole: a trial's line cut at 240 characters lost its hint (what to do)
            *(
                f"sessions: {part}" if i == 0 else f"sessions:   {part}"
                for i, part in enumerate(textwrap.wrap(WHY, 240))
            ),
            "sessions: equal opportunity 0.29",
            "sessions: held back 1 of 2 days (2025-03-19): the other days proceed",
            "sessions: suite s: 1 of 3 failed",
            "sessions: … and 1 more line(s): impact-ledger summary",
        ]
    )


def test_a_db_that_is_not_duckdb_is_one_line_without_traceback(tmp_path):
    not_duckdb = tmp_path / "notes.txt"
    not_duckdb.write_text("not a database\n")
    for args in (("summary",), ("report",), ("query", "SELECT 1")):
        result = run(*args, "--db", str(not_duckdb))
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert f"cannot open '{not_duckdb}' as a DuckDB database" in result.stderr


def test_a_dagster_home_without_settings_gets_the_projects_and_keeps_its_own(tmp_path, capsys, monkeypatch):
    """Without a dagster.yaml, Dagster's defaults would let the daemon run two runs on the one-writer warehouse."""
    from orchestration.cli import PROJECT_DAGSTER_YAML, _dagster_instance

    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = _dagster_instance()
    assert (home / "dagster.yaml").read_text() == PROJECT_DAGSTER_YAML.read_text()
    assert f"note: wrote {home / 'dagster.yaml'}" in capsys.readouterr().out
    assert type(instance.event_log_storage).__name__ == "ProjectSqliteEventLogStorage"
    assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1

    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # the user's own settings stay
    instance = _dagster_instance()
    assert (home / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"
    assert capsys.readouterr().out == ""
    assert type(instance.event_log_storage).__name__ != "ProjectSqliteEventLogStorage"


def test_a_rerun_of_the_past_is_told_which_later_days_to_run_again(tmp_path, monkeypatch):
    # re-running one old day rewinds label-based metrics to what was known on it, and leaves the later days'
    # cumulative experiment results without what it reloaded (README: known limits); the operator was not told
    import duckdb
    from datetime import date

    from orchestration.cli import _days_after

    db = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("IMPACT_LEDGER_DB", str(db))
    assert _days_after(date(2025, 3, 5)) is None  # no warehouse yet
    with duckdb.connect(str(db)) as conn:
        conn.execute("CREATE SCHEMA raw")
        conn.execute("CREATE TABLE raw.predictions AS SELECT DATE '2025-03-20' AS _partition_date")
        conn.execute("CREATE TABLE raw.labels AS SELECT DATE '2025-03-26' AS _partition_date")
    assert _days_after(date(2025, 3, 5)) == date(2025, 3, 26)
    assert _days_after(date(2025, 3, 26)) is None
    # late orders re-run into an experiment's day: the later days' cumulative results read the old orders
    with duckdb.connect(str(db)) as conn:
        conn.execute("CREATE TABLE raw.orders AS SELECT DATE '2025-03-28' AS _partition_date")
        conn.execute("CREATE SCHEMA marts")
        conn.execute("CREATE TABLE marts.experiment_stats AS SELECT DATE '2025-03-30' AS as_of_date")
    assert _days_after(date(2025, 3, 26)) == date(2025, 3, 30)
    # a late file of an old day: one run from it through the newest day, not that day alone then the rest (between
    # the two runs, a trial's summary read "labels complete 30/30 days" at 50% labelled)
    from orchestration.cli import _rerun_through_newest

    assert _rerun_through_newest([date(2025, 3, 5), date(2025, 3, 7)]).startswith(
        "run --start 2025-03-05 --end 2025-03-30 (one run"
    )
    assert _rerun_through_newest([date(2025, 3, 30)]).startswith("run --start 2025-03-30 --end 2025-03-30")


def test_changed_experiment_settings_name_the_results_computed_with_the_old_ones(tmp_path, monkeypatch):
    # expected shares corrected in the source: the published sample-ratio verdict of earlier days stayed "not
    # trustworthy", and nothing said which days to run again
    import duckdb
    from datetime import date

    from orchestration.cli import _experiment_settings, _results_before

    db = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("IMPACT_LEDGER_DB", str(db))
    assert _experiment_settings() is None and _results_before(date(2026, 9, 1)) is None
    with duckdb.connect(str(db)) as conn:
        conn.execute("CREATE SCHEMA raw; CREATE SCHEMA attribution")
        conn.execute("CREATE TABLE raw.experiments AS SELECT 'e' AS experiment_id, 'f1' AS _source_file")
        conn.execute(
            "CREATE TABLE raw.experiment_variants AS SELECT * FROM (VALUES ('e', 'c', 0.25, 'f1'), ('e', 't', 0.75, 'f1')) "
            "AS v(experiment_id, variant, expected_share, _source_file)"
        )
        conn.execute(
            "CREATE TABLE attribution.experiment_results AS SELECT DATE '2026-09-01' + CAST(i AS INTEGER) AS as_of_date FROM range(10) t(i)"
        )
    before = _experiment_settings()
    with duckdb.connect(str(db)) as conn:  # reloaded from another file: the loader's columns do not count
        conn.execute("UPDATE raw.experiment_variants SET _source_file = 'f2'")
    assert _experiment_settings() == before
    with duckdb.connect(str(db)) as conn:
        conn.execute("UPDATE raw.experiment_variants SET expected_share = 1 - expected_share")
    assert _experiment_settings() != before
    assert _results_before(date(2026, 9, 8)) == (date(2026, 9, 1), date(2026, 9, 7))
    assert _results_before(date(2026, 9, 1)) is None


def test_a_run_lists_a_warned_check_as_warned_not_failed():
    # the progress said "1 check(s) warned" and the run's closing lines "check ... failed" for the same verdict
    from orchestration.runs import _failures

    @dg.asset(check_specs=[dg.AssetCheckSpec("gate", asset="sessions"), dg.AssetCheckSpec("hard", asset="sessions")])
    def sessions():
        yield dg.MaterializeResult()
        # a warning's details were the step's progress notes: the closing lines printed them again in full
        yield dg.AssetCheckResult(
            check_name="gate", passed=False, severity=dg.AssetCheckSeverity.WARN, description="d\n- its details"
        )
        yield dg.AssetCheckResult(check_name="hard", passed=False, description="e\n- why")

    result = dg.materialize([sessions], raise_on_error=False)
    assert sorted(_failures(result)) == ["check sessions:gate warned: d", "check sessions:hard failed: e\n- why"]


def test_summary_and_report_take_the_project_file_as_materialize_does(tmp_path, capsys):
    # `summary --config FILE` was refused: only IMPACT_LEDGER_CONFIG worked there
    from orchestration.cli import main

    for command in ("summary", "report"):
        assert main([command, "--config", str(tmp_path / "nope.yml"), "--db", str(tmp_path / "w.duckdb")]) == 2
        assert "--config" in capsys.readouterr().err


def test_report_out_given_a_file_name_says_it_names_a_folder(tmp_path, capsys):
    # a trial's `report --out X.html` wrote X.html/impact_ledger_<date>.html
    import duckdb

    from orchestration.cli import main

    snapshot = tmp_path / "analytics.duckdb"
    duckdb.connect(str(snapshot)).close()
    assert main(["report", "--db", str(snapshot), "--out", str(tmp_path / "daily.html")]) == 2
    said = capsys.readouterr().err
    assert "--out names the folder the report is written to" in said and f"--out {tmp_path}" in said
    assert not (tmp_path / "daily.html").exists()


def test_the_closing_line_counts_the_days_the_gates_held_back(tmp_path, monkeypatch, capsys):
    # every day with data held back (user ids written differently in two tables) and the run said only "ok";
    # a design gate's failed days were counted as held back too, though every model's marts were built
    from datetime import date

    import duckdb

    import orchestration.runs
    from orchestration.cli import _held_back
    from orchestration.lib.quality_gate import GATE_RESULTS_SCHEMA
    from orchestration.lib.warehouse import ensure_table
    from orchestration.runs import RunOutcome

    db = tmp_path / "w.duckdb"
    with duckdb.connect(str(db)) as conn:
        ensure_table(conn, "quality.gate_results", GATE_RESULTS_SCHEMA)
        conn.execute(
            "INSERT INTO quality.gate_results (date, suite, table_name, passed) VALUES "
            "('2025-05-05', 'raw_orders', 'orders', false), ('2025-05-05', 'raw_sessions', 'sessions', false), "
            "('2025-05-06', 'raw_orders', 'orders', true), ('2025-05-07', 'raw_orders', 'orders', false), "
            "('2025-06-01', 'raw_orders', 'orders', false), "
            "('2025-05-06', 'raw_experiment_variants', 'experiment_variants', false), "
            "('2025-05-07', 'raw_experiment_variants', 'experiment_variants', false)"
        )
        # the 7th's failing rows name one experiment (the 6th's none: every experiment)
        conn.execute("UPDATE quality.gate_results SET experiments = '[\"e2\"]' WHERE date = '2025-05-07'")
    monkeypatch.setenv("IMPACT_LEDGER_DB", str(db))
    design = {"raw_experiment_variants": [date(2025, 5, 6), date(2025, 5, 7)]}
    # one count per day, the range's days only; a design gate's days apart
    every = {"raw_experiment_variants": None}
    assert _held_back(date(2025, 5, 5), date(2025, 5, 31)) == (2, design, every)
    assert _held_back(date(2025, 5, 6), date(2025, 5, 6)) == (0, {"raw_experiment_variants": [date(2025, 5, 6)]}, every)
    ok = RunOutcome(True, "abcdef0123", 1.5, [], ["raw/orders"])
    monkeypatch.setattr(orchestration.runs, "materialize_days", lambda *args, **kwargs: ok)
    assert cli._materialize_chunks(date(2025, 5, 6), date(2025, 5, 6), tmp_path, None, None) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "  2025-05-06 .. 2025-05-06: ok in 1.5s, 1 assets (run abcdef01); experiment design gate "
        "raw_experiment_variants failed on 1 day(s): those days' experiment results are untrustworthy; the "
        "models' marts were built (`impact-ledger summary` says why)"
    )
    assert cli._materialize_chunks(date(2025, 5, 7), date(2025, 5, 7), tmp_path, None, None) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "  2025-05-07 .. 2025-05-07: ok in 1.5s, 1 assets (run abcdef01); the quality gates held back 1 of its 1 "
        "day(s); experiment design gate raw_experiment_variants failed on 1 day(s) for e2: those days' results of "
        "those experiments are untrustworthy; the models' marts were built (`impact-ledger summary` says why)"
    )


def test_a_failed_run_of_several_says_which_days_were_not_run(tmp_path, monkeypatch, capsys):
    # a trial's --days-per-run 1 stopped at its failed day, and nothing said the 60 days after it were never run
    from datetime import date

    import orchestration.runs
    from orchestration.runs import RunOutcome

    monkeypatch.setenv("IMPACT_LEDGER_DB", str(tmp_path / "w.duckdb"))
    ran = []

    def run(first, last, **kwargs):
        ran.append((first, last))
        return RunOutcome(first != date(2025, 5, 8), "abcdef0123", 1.0, ["step raw.orders failed: boom"], [])

    monkeypatch.setattr(orchestration.runs, "materialize_days", run)
    assert cli._materialize_chunks(date(2025, 5, 6), date(2025, 5, 15), tmp_path, 2, None) == 1
    assert ran == [(date(2025, 5, 6), date(2025, 5, 7)), (date(2025, 5, 8), date(2025, 5, 9))]
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (
        "  stopped: 2025-05-10 .. 2025-05-15 (6 day(s)) not run; once the failure above is mended, run --start "
        "2025-05-08 --end 2025-05-15"
    )


def test_materialize_notify_runs_the_sensors_ticks_after_its_runs_failed_ones_too(tmp_path, monkeypatch, capsys):
    # cron runs `materialize` without a Dagster daemon: nobody was told of a failed gate (tests/unit/test_notify_sensor.py
    # checks what is sent; here, that --notify sends it after the runs, a failed run included)
    from datetime import date

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IMPACT_LEDGER_ALERTS", str(tmp_path / "alerts"))
    monkeypatch.setenv("IMPACT_LEDGER_ANALYTICS_DB", str(tmp_path / "none.duckdb"))
    monkeypatch.setattr(cli, "_materialize_chunks", lambda *args: 1)  # the runs failed
    assert cli._materialize_range(date(2026, 1, 1), date(2026, 1, 1), tmp_path, None, notify=True) == 1
    assert "notifications: no analytics snapshot at" in capsys.readouterr().out
    assert cli._materialize_range(date(2026, 1, 1), date(2026, 1, 1), tmp_path, None) == 1
    assert "notifications" not in capsys.readouterr().out
    assert "--notify" in run("materialize", "--help").stdout


def test_retrain_runs_the_retraining_job_for_each_pending_day_up_to_date_with_progress(tmp_path, monkeypatch, capsys):
    # cron users had no command for the job the retraining sensor starts under `make dev`
    from datetime import date

    import duckdb

    import orchestration.runs
    from orchestration.defs.retraining.assets import REQUESTS_TABLE, ensure_requests_table
    from orchestration.runs import RunOutcome

    db = tmp_path / "warehouse.duckdb"
    for var, value in (("DAGSTER_HOME", tmp_path / "home"), ("IMPACT_LEDGER_DB", db)):
        monkeypatch.setenv(var, str(value))
    monkeypatch.setenv("IMPACT_LEDGER_START_DATE", "2026-01-01")
    assert cli.main(["retrain"]) == 2 and "does not exist yet" in capsys.readouterr().err
    with duckdb.connect(str(db)) as conn:
        conn.execute("CREATE SCHEMA marts")
        ensure_requests_table(conn)
        for d, m, status in (
            ("2026-03-03", "m", "snapshot_ready"),
            ("2026-03-05", "n", "requested"),
            ("2026-03-05", "m", "requested"),
            ("2026-03-07", "m", "blocked"),
            ("2026-03-09", "n", "requested"),
        ):
            conn.execute(f"INSERT INTO {REQUESTS_TABLE} VALUES (?, ?, 'r', '{{}}', 'p', ?, NULL)", [d, m, status])
    ran = []

    def fake_run(day, instance=None, progress=None):
        ran.append(day)
        progress(f"[    0.1s] {day} retraining/training_candidates started")
        failures = (
            [] if day == date(2026, 3, 5) else ["check retraining/training_candidates:training_bias_suite failed"]
        )
        return RunOutcome(not failures, "abcdef0123", 1.5, failures, ["retraining/training_candidates"])

    monkeypatch.setattr(orchestration.runs, "run_retraining", fake_run)
    assert cli.main(["retrain", "--date", "2026-03-08"]) == 0
    out = capsys.readouterr().out
    assert ran == [date(2026, 3, 5)]  # the pending requests up to --date; the acted-on ones are not run again
    assert "retraining 2 request(s) of 1 day(s)" in out
    assert "  2026-03-05 (m, n): starting\n    [    0.1s] 2026-03-05 retraining/training_candidates started\n" in out
    assert "  2026-03-05 (m, n): ok in 1.5s, 1 assets (run abcdef01)" in out
    assert cli.main(["retrain"]) == 1  # every pending day: 03-09 is blocked (the runs are faked: still pending)
    captured = capsys.readouterr()
    assert ran[1:] == [date(2026, 3, 5), date(2026, 3, 9)] and "2026-03-09 (n): FAILED" in captured.out
    assert "training_bias_suite failed" in captured.err
    assert cli.main(["retrain", "--date", "2026-03-04"]) == 0
    assert "no pending retraining request up to 2026-03-04" in capsys.readouterr().out


def _quarantine_lines_of_a_ranged_run(asset) -> list[str]:
    """The progress lines about quarantined rows of ``asset`` run over 2026-03-10 .. 03-14 as one range."""
    from orchestration.defs.partitions import RANGE_END_TAG, RANGE_START_TAG

    job = dg.Definitions(assets=[asset]).resolve_implicit_global_asset_job_def()
    lines = []
    with dg.DagsterInstance.ephemeral() as instance:
        tags = {RANGE_START_TAG: "2026-03-10", RANGE_END_TAG: "2026-03-14"}
        assert execute_with_progress(job, instance, lines.append, "D", tags=tags).success
    return [said for line in lines if "quarantined" in (said := line.split("] D ", 1)[1])]


def test_a_ranged_steps_quarantine_is_said_once_not_once_per_day():
    # one duplicated users row printed the same line for each of a backfill's 162 days
    from orchestration.defs.partitions import daily_partitions, single_run

    reasons = {"duplicate key (user_id)": 1}

    @dg.asset(key=["raw", "users"], partitions_def=daily_partitions, backfill_policy=single_run)
    def users(context: dg.AssetExecutionContext):
        assert len(context.partition_keys) == 5
        return dg.MaterializeResult(
            metadata={"rows_quarantined": 1, "quarantine_reasons": dg.MetadataValue.json(reasons)}
        )

    assert _quarantine_lines_of_a_ranged_run(users) == [
        "raw.users: 1 row(s) quarantined (duplicate key (user_id): 1) in raw_quarantine.users, with _reason"
    ]


def test_a_ranged_steps_quarantine_is_one_line_per_reason_with_its_total_and_days():
    # a 9-day run said the assignments' quarantine once per day, each line with its own day's count
    from datetime import date

    from orchestration.defs.partition_metadata import add_daily_metadata
    from orchestration.defs.partitions import daily_partitions, single_run
    from orchestration.lib.raw_loader import QUARANTINE_BY_REASON, LoadReport, quarantine_by_reason

    unknown = "unknown variant for experiment"
    counts = {10: 4, 11: 7, 12: 5, 14: 2}  # none on the 13th
    reports = [LoadReport("assignments", date(2026, 3, d), rows_quarantined=counts.get(d, 0)) for d in range(10, 15)]
    for r in reports:
        if r.rows_quarantined:
            r.quarantine_reasons = {unknown: r.rows_quarantined}
    reports[0].quarantine_reasons["null user_id"] = 1
    # a file dated by another zone's day: the line says where the zone is set (a trial's label files at +08:00)
    off_day = "assigned_at outside partition day 2026-03-14"
    reports[4].quarantine_reasons[off_day] = 1

    @dg.asset(key=["raw", "assignments"], partitions_def=daily_partitions, backfill_policy=single_run)
    def assignments(context: dg.AssetExecutionContext):
        add_daily_metadata(
            context,
            {
                r.partition_date: {"rows_quarantined": r.rows_quarantined, "quarantine_reasons": r.quarantine_reasons}
                for r in reports
            },
        )
        return dg.MaterializeResult(
            metadata={QUARANTINE_BY_REASON: dg.MetadataValue.json(quarantine_by_reason(reports))}
        )

    assert _quarantine_lines_of_a_ranged_run(assignments) == [
        f"raw.assignments: 18 row(s) quarantined ({unknown}) on 2026-03-10 .. 2026-03-12, 2026-03-14 in "
        "raw_quarantine.assignments, with _reason",  # 4 + 7 + 5 + 2
        "raw.assignments: 1 row(s) quarantined (null user_id) on 2026-03-10 in raw_quarantine.assignments, with _reason",
        f"raw.assignments: 1 row(s) quarantined ({off_day}) on 2026-03-14 in raw_quarantine.assignments, with _reason"
        "; files dated by another zone's days? set the project file's timezone (now UTC)",
    ]
    # a snapshot (reloaded whole) has no days to name
    assert quarantine_by_reason(reports[:1], dated=False) == {
        unknown: {"rows": 4, "days": ""},
        "null user_id": {"rows": 1, "days": ""},
    }


MISSING_SCORE = "predictions_2026-09-20.csv: table 'predictions' is missing required column 'score'"


def _dagster_home_with_settings(home: Path) -> Path:
    """A Dagster home with the project's dagster.yaml, as `impact-ledger` gives one."""
    import shutil

    home.mkdir(parents=True)
    shutil.copy(cli.PROJECT_DAGSTER_YAML, home / "dagster.yaml")
    return home


def _run_predictions(home: Path, fails: bool) -> None:
    """One run of raw.predictions in the Dagster instance at ``home``, failing as a file without its score did."""
    from orchestration.defs.partitions import RANGE_END_TAG, RANGE_START_TAG, daily_partitions, single_run

    @dg.asset(key=["raw", "predictions"], partitions_def=daily_partitions, backfill_policy=single_run)
    def predictions() -> None:
        if fails:
            raise ValueError(MISSING_SCORE)

    tags = {RANGE_START_TAG: "2026-09-20", RANGE_END_TAG: "2026-09-20"}
    # the event log finds its folder from DAGSTER_HOME
    with cli._dagster_home_set(home), dg.DagsterInstance.from_config(str(home)) as instance:
        dg.materialize([predictions], instance=instance, raise_on_error=not fails, tags=tags)


def test_summary_says_when_the_latest_run_failed_at_a_step(tmp_path, monkeypatch):
    # a predictions file with a renamed column stopped the day's run; summary showed the day before as if current
    home = _dagster_home_with_settings(tmp_path / "home")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert cli._latest_run_failed() == ""  # no run yet

    _run_predictions(home, fails=True)
    failed = cli._latest_run_failed()
    assert "failed at step raw__predictions: predictions_2026-09-20.csv: table 'predictions' is missing" in failed
    # a first run that failed so: summary said "no attribution tables ... run materialize first" (it had been run)
    import duckdb

    empty = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(empty)).close()
    with pytest.raises(cli.CliError) as said:
        cli.cmd_summary(argparse.Namespace(db=str(empty), config=None))
    assert "yet: the latest run FAILED: " in str(said.value) and "missing required column 'score'" in str(said.value)
    _run_predictions(home, fails=False)
    assert cli._latest_run_failed() == ""  # the next run succeeded
    # a retraining run stopped by its blocked request (a trial's summary ended "The latest run FAILED"): the
    # request's status, said by the retraining lines, not a failed run of the pipeline
    from orchestration.defs.notify.sensors import RETRAINING_JOB

    @dg.op
    def blocked() -> None:
        raise dg.Failure("blocked: labels of one class only")

    @dg.job(name=RETRAINING_JOB)
    def retraining() -> None:
        blocked()

    with cli._dagster_home_set(home), dg.DagsterInstance.from_config(str(home)) as instance:
        run = retraining.execute_in_process(instance=instance, raise_on_error=False)
    assert not run.success and cli._latest_run_failed() == ""
    # a shell without DAGSTER_HOME reads the project-local instance: its event log's folder is that home's too
    _run_predictions(home, fails=True)
    monkeypatch.delenv("DAGSTER_HOME")
    monkeypatch.setattr(cli, "PROJECT_ROOT", tmp_path)
    (tmp_path / ".dagster_home").symlink_to(home)
    assert "missing required column 'score'" in cli._latest_run_failed()
    assert "DAGSTER_HOME" not in os.environ


def test_the_tests_summary_reads_the_suites_dagster_instance_not_the_checkouts(tmp_path, monkeypatch):
    # summary tests read the checkout's .dagster_home: a developer's failed `make demo` showed in their output
    import duckdb

    suites = Path(os.environ["DAGSTER_HOME"])  # tests/conftest.py's, as every test starts with it
    assert not suites.resolve().is_relative_to(PROJECT_ROOT.resolve())
    assert (suites / "dagster.yaml").read_text() == cli.PROJECT_DAGSTER_YAML.read_text()
    # a checkout whose own instance's newest run failed
    checkout = tmp_path / "checkout"
    _run_predictions(_dagster_home_with_settings(checkout / ".dagster_home"), fails=True)
    monkeypatch.setattr(cli, "PROJECT_ROOT", checkout)
    empty = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(empty)).close()
    with pytest.raises(cli.CliError) as said:
        cli.cmd_summary(argparse.Namespace(db=str(empty), config=None))
    assert "FAILED" not in str(said.value)
    monkeypatch.delenv("DAGSTER_HOME")  # as before the suite set it: the checkout's failure read
    assert MISSING_SCORE in cli._latest_run_failed()


def test_materialize_says_which_tables_come_from_the_project_files_sources(tmp_path, monkeypatch):
    # a trial's header said "from landing_db" while three tables came from PostgreSQL and one from a lake folder
    from orchestration.cli import _elsewhere

    project = tmp_path / "impact_ledger.yml"
    project.write_text("currency: EUR\n")
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(project))
    assert _elsewhere() == ""
    url = "postgresql+psycopg2://reader@db:5432/shop"
    project.write_text(
        "sources:\n"
        f"  users: {{database: {{url: '{url}', password_env: PW, table: public.users}}}}\n"
        f"  labels: {{database: {{url: '{url}', password_env: PW, table: outcomes}}}}\n"
        "  feedback: {path: lake}\n"
    )
    assert _elsewhere() == " (labels, users from a database; feedback from a lake folder: the project file's sources)"


def test_a_run_after_a_day_never_loaded_says_so_and_what_to_run(tmp_path, monkeypatch, capsys):
    # a trial: the orders extraction of 04-20 failed, the 04-21 run read it as empty (0 orders) and said nothing
    from datetime import date

    import duckdb

    import orchestration.runs
    from orchestration.lib.quality_gate import GATE_RESULTS_SCHEMA
    from orchestration.lib.warehouse import ensure_table
    from orchestration.runs import RunOutcome

    db = tmp_path / "w.duckdb"
    with duckdb.connect(str(db)) as conn:
        ensure_table(conn, "quality.gate_results", GATE_RESULTS_SCHEMA)
        for day in ("2026-04-18", "2026-04-19", "2026-04-20", "2026-04-21"):
            for table in ("orders", "sessions"):
                if not (table == "orders" and day == "2026-04-20"):
                    conn.execute(
                        "INSERT INTO quality.gate_results (date, suite, table_name, passed) VALUES (?, ?, ?, true)",
                        [day, f"raw_{table}", table],
                    )
    monkeypatch.setenv("IMPACT_LEDGER_DB", str(db))
    ok = RunOutcome(True, "abcdef0123", 1.5, [], ["raw/orders"])
    monkeypatch.setattr(orchestration.runs, "materialize_days", lambda *args, **kwargs: ok)
    assert cli._materialize_chunks(date(2026, 4, 21), date(2026, 4, 21), tmp_path, None, None) == 0
    out = capsys.readouterr().out
    assert (
        "note: 1 day(s) before this run were never loaded: 2026-04-20 (orders) (their runs stopped before loading "
        "those tables, or never ran); they have no KPIs and the runs after them read them as empty: run --start "
        "2026-04-20 --end 2026-04-21 (one run: the later days read those rows too)"
    ) in out
    # the day itself run: nothing to say
    assert cli._materialize_chunks(date(2026, 4, 20), date(2026, 4, 21), tmp_path, None, None) == 0
    assert "never loaded" not in capsys.readouterr().out


def _late_cost_world(tmp_path, monkeypatch, loaded: list[str], run: list[str]):
    """A project whose model_costs come from a (SQLite) database with a row a day, 2026-11-18 .. 2026-11-21, the
    rest from an empty landing zone; a warehouse whose gates judged the days ``run`` and which loaded the cost rows of
    the days ``loaded``."""
    import duckdb
    import sqlalchemy as sa

    from orchestration.lib.quality_gate import GATE_RESULTS_SCHEMA
    from orchestration.lib.warehouse import ensure_table

    tmp_path.mkdir(exist_ok=True)
    url = f"sqlite:///{tmp_path / 'billing.db'}"
    with sa.create_engine(url).begin() as conn:
        conn.execute(sa.text("CREATE TABLE costs (date DATE, model_id TEXT, serving_cost FLOAT, review_cost FLOAT)"))
        for day in ("2026-11-18", "2026-11-19", "2026-11-20", "2026-11-21"):
            conn.execute(sa.text("INSERT INTO costs VALUES (:d, 'm', 25, 4)"), {"d": day})
    project = tmp_path / "impact_ledger.yml"
    project.write_text(
        f"timezone: America/Denver\nsources:\n  model_costs: {{database: {{url: '{url}', table: costs}}}}\n"
    )
    (tmp_path / "landing").mkdir()
    db = tmp_path / "w.duckdb"
    if run:
        with duckdb.connect(str(db)) as conn:
            ensure_table(conn, "quality.gate_results", GATE_RESULTS_SCHEMA)
            for day in run:
                conn.execute(
                    "INSERT INTO quality.gate_results (date, suite, table_name, passed) VALUES (?, ?, ?, true)",
                    [day, "raw_model_costs", "model_costs"],
                )
            for schema in ("raw", "raw_quarantine"):
                conn.execute(f"CREATE SCHEMA {schema}")
                conn.execute(
                    f"CREATE TABLE {schema}.model_costs (_partition_date DATE, serving_cost DOUBLE, review_cost DOUBLE)"
                )
            for day in loaded:
                conn.execute("INSERT INTO raw.model_costs VALUES (?, 25, 4)", [day])
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(project))
    monkeypatch.setenv("IMPACT_LEDGER_DB", str(db))
    monkeypatch.setenv("IMPACT_LEDGER_SOURCE", str(tmp_path / "landing"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))  # no run yet
    monkeypatch.delenv("IMPACT_LEDGER_START_DATE", raising=False)
    monkeypatch.delenv("IMPACT_LEDGER_LANDING_CACHE", raising=False)
    # 2026-11-23 in Denver: yesterday, 11-22, is the newest day over
    from orchestration import catch_up

    monkeypatch.setattr(catch_up, "today", lambda zone: __import__("datetime").date(2026, 11, 23))
    return argparse.Namespace(
        config=None, source=None, db=None, start=None, end=None, days_per_run=None, notify=False, verbose=False
    )


def test_a_bare_materialize_of_database_sources_catches_up_through_yesterday(tmp_path, monkeypatch, capsys):
    # a trial's tables all in PostgreSQL, the landing zone empty: a bare materialize stopped ("cannot tell which days
    # the landing zone covers"), so its cron job had to work out the dates; its cost feed landing a day late was
    # then "changed" every morning, with a request to run two days
    from datetime import date

    import orchestration.runs

    # the 11-21 cost row landed after 11-21 ran (loaded: none that day): that day again, then 11-22 (yesterday)
    days = ["2026-11-18", "2026-11-19", "2026-11-20", "2026-11-21"]
    args = _late_cost_world(tmp_path, monkeypatch, loaded=days[:3], run=days)
    assert cli._run_range(args, tmp_path / "landing") == (date(2026, 11, 21), date(2026, 11, 22), date(2026, 11, 21))
    said = capsys.readouterr().out
    assert said.startswith("materialize without --start/--end runs 2026-11-21 .. 2026-11-22: the days after 2026-11-21")
    assert "yesterday (2026-11-22 in America/Denver" in said
    assert "model_costs 2026-11-21 changed (1 rows now, 0 loaded)" in said
    # a day between days run that was never loaded (its run stopped before the table): from it
    args = _late_cost_world(tmp_path / "gap", monkeypatch, loaded=days, run=[days[0], *days[2:]])
    assert cli._run_range(args, tmp_path)[:2] == (date(2026, 11, 19), date(2026, 11, 22))
    assert "2026-11-19 never loaded (model_costs)" in capsys.readouterr().out
    # that run done, with the cost in: nothing to run, and no run started (a cron job's second call costs nothing)
    args = _late_cost_world(
        tmp_path / "next",
        monkeypatch,
        loaded=["2026-11-18", "2026-11-19", "2026-11-20", "2026-11-21"],
        run=["2026-11-18", "2026-11-19", "2026-11-20", "2026-11-21", "2026-11-22"],
    )

    def no_run(*args, **kwargs):
        raise AssertionError("nothing was to run")

    monkeypatch.setattr(orchestration.runs, "materialize_days", no_run)
    assert cli.cmd_materialize(args) == 0
    said = capsys.readouterr().out
    assert said.startswith("materialize without --start/--end: nothing to run: the warehouse loaded every database")
    assert "through 2026-11-22 (yesterday: 2026-11-22 in America/Denver)" in said
    # a run given its days still names a late cost day, and says the bare command would have taken it
    from orchestration.lib.db_sources import ChangedDay

    note = cli._changed_database_note([("model_costs", ChangedDay(date(2026, 11, 21), 1, 0))])
    assert note.endswith("a bare `impact-ledger materialize` (no --start/--end) runs them again by itself")
    # --start alone: from it through yesterday
    assert cli._run_range(argparse.Namespace(start=date(2026, 11, 20), end=None), tmp_path)[:2] == (
        date(2026, 11, 20),
        date(2026, 11, 22),
    )


def test_a_first_bare_materialize_of_database_sources_starts_at_their_first_day(tmp_path, monkeypatch, capsys):
    from datetime import date

    args = _late_cost_world(tmp_path, monkeypatch, loaded=[], run=[])  # no warehouse yet
    assert cli._run_range(args, tmp_path / "landing") == (date(2026, 11, 18), date(2026, 11, 22), date(2026, 11, 18))
    assert "the days from the sources' first, 2026-11-18, through yesterday" in capsys.readouterr().out
    # a declared first partition after the database's first day: from it
    (tmp_path / "impact_ledger.yml").write_text(
        (tmp_path / "impact_ledger.yml").read_text() + "partitions: {start: 2026-11-20}\n"
    )
    assert cli._run_range(args, tmp_path / "landing")[:2] == (date(2026, 11, 20), date(2026, 11, 22))
