import os

import pytest

# The Spark tests' worlds are tiny: a JVM's CPU goes to compiling Spark's generated code, not to rows (measured when
# each dbt run started a JVM of its own; dbt now builds in the test process's session, one JVM for every Spark test). The JVM's quick-start compiler alone (C1; a larger code cache, which the small default
# outgrows) took a one-day dbt build of the parity world from ~79 s to ~49 s; adaptive execution and whole-stage
# code generation off, to ~44 s. The throughput collector (ParallelGC) instead of G1, whose concurrent threads
# compete with the other test worker on this 2-core machine: the parity module alone used 327 CPU-s against
# 336-379 CPU-s with G1 (243 s of wall against 263-281 s). Results do not depend on any of them. The bench runs
# Spark with the defaults.
os.environ.setdefault(
    "IMPACT_LEDGER_SPARK_JVM_OPTIONS", "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m -XX:+UseParallelGC"
)
os.environ.setdefault("IMPACT_LEDGER_SPARK_ADAPTIVE", "false")
os.environ.setdefault("IMPACT_LEDGER_SPARK_CODEGEN", "false")
# One shuffle partition: with adaptive execution off, each aggregate of the tests' few rows ran as 8 tasks. The raw
# and gate modules alone: 75 s against 90 s with 8 (2026-12-03); a one-day dbt build of the parity world: 46-48 s
# against 50-56 s with two (2026-12-02). Results do not depend on it.
os.environ.setdefault("IMPACT_LEDGER_SPARK_SHUFFLE_PARTITIONS", "1")


@pytest.fixture(scope="session", autouse=True)
def spark_tests_on_one_worker():
    """Every Spark test uses this session fixture, so tests/conftest.py's scheduler sends them all to one worker:
    they share that process's Spark session (one JVM started and warmed up instead of one per worker)."""
    yield
