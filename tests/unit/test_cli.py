"""The command line: help works, and bad input gives a message, not a traceback."""

import subprocess
import sys

import pytest


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "orchestration.cli", *args], capture_output=True, text=True, env=env)


def test_help_lists_the_commands():
    result = run("--help")
    assert result.returncode == 0
    for command in ("generate", "materialize", "summary", "query"):
        assert command in result.stdout


def test_bad_source_path_is_a_clear_message(tmp_path):
    result = run("materialize", "--source", str(tmp_path / "missing"), "--db", str(tmp_path / "w.duckdb"))
    assert result.returncode == 2
    assert "source directory" in result.stderr and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


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
