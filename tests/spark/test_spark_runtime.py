"""The Spark engine without its runtime: a clear error naming what is missing, before dbt starts (issue 17)."""

import duckdb
import pytest

from orchestration.lib import engine
from orchestration.lib.engine import EngineError, before_build, require_spark_runtime

pytestmark = pytest.mark.spark


def test_no_java_on_path_is_an_error_naming_it(monkeypatch, tmp_path):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no java
    with pytest.raises(EngineError, match=r"Java 17 runtime \(no java on PATH\).*make java"):
        require_spark_runtime()


def test_a_java_home_without_java_is_an_error_naming_it(monkeypatch, tmp_path):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(EngineError, match=rf"JAVA_HOME={tmp_path} has no bin/java"):
        require_spark_runtime()


def test_a_java_home_with_java_is_the_one_pyspark_starts(monkeypatch, tmp_path):
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text("#!/bin/sh\n")
    java.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    assert engine.java_executable() == str(java)
    require_spark_runtime()


def test_the_spark_engine_checks_its_runtime_before_landing_anything(monkeypatch, tmp_path):
    monkeypatch.setenv("IMPACT_LEDGER_ENGINE", "spark")
    monkeypatch.setenv("IMPACT_LEDGER_SPARK_DIR", str(tmp_path / "spark"))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with duckdb.connect() as conn, pytest.raises(EngineError, match="Java"):
        before_build(conn, None, None)
    assert not (tmp_path / "spark").exists()


def test_the_duckdb_engine_needs_no_java(monkeypatch, tmp_path):
    monkeypatch.setenv("IMPACT_LEDGER_ENGINE", "duckdb")
    monkeypatch.setenv("PATH", str(tmp_path))
    with duckdb.connect() as conn:
        before_build(conn, None, None)
