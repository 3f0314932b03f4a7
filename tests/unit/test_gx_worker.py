"""The command line's GX worker (orchestration/lib/gx_worker.py): a suite judged there is the suite judged in the
run's process, its Data Docs are the same pages and start once every gated suite is validated, the run's process
never imports GX, and a worker that died fails the gate naming the setting."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import psutil
import pytest

from orchestration.lib import early_gates, gx_worker
from orchestration.lib.quality_gate import LEVELS, GxSession, gx_session, load_suite, run_suite
from orchestration.lib.raw_loader import load_partition
from tests.unit.test_quality_gate import DAYS, _load, _orders_world


@pytest.fixture(autouse=True)
def worker_on(monkeypatch):
    """The worker's default (tests/conftest.py turns it off for the other tests' command lines)."""
    monkeypatch.setenv(gx_worker.ENV, "1")


@pytest.fixture
def orders(tmp_path):
    # 12 orders of DAYS[3] appear twice (24 rows unexpected: the day fails), 3 of DAYS[6] (tolerated)
    _orders_world(tmp_path / "landing", {DAYS[3]: 12, DAYS[6]: 3})
    with duckdb.connect() as conn:
        _load(conn, tmp_path / "landing")
        yield conn


@pytest.fixture(scope="module")
def module_worker():
    """One worker for the module's tests (each starts a Python process that imports GX): stopped at its end."""
    yield
    gx_worker.stop()


@pytest.fixture
def worker_docs(tmp_path, module_worker):
    """A Data Docs folder of the test's own (the worker keeps a session per folder), judged by the module's
    worker, started again if a test before stopped it."""
    docs = tmp_path / "worker" / "gx"
    gx_worker.start(docs)
    return docs


def pages(site) -> list[str]:
    return sorted(p.name for p in (site / "validations").rglob("*.html"))


def levels(suite: dict) -> int:
    return sum(1 for key in LEVELS if suite.get(key))


def test_a_suite_judged_by_the_worker_is_the_suite_judged_in_the_run_process(orders, worker_docs, tmp_path):
    suite = load_suite("raw_orders")
    here = GxSession(tmp_path / "here" / "gx")
    there = gx_session(worker_docs)
    assert isinstance(there, gx_worker.RemoteGxSession) and gx_worker.pid() != os.getpid()
    for first, last in ((DAYS[1], DAYS[-1]), (DAYS[3], DAYS[3])):  # a range, then the failed day alone
        ours = run_suite(orders, suite, first, last, session=here)
        theirs = run_suite(orders, suite, first, last, session=there)
        assert theirs == ours
        assert theirs.failed_days == [DAYS[3]]
    # a page per validated level and run, rendered by GX in either process
    assert there.build_docs() == here.build_docs() == 2 * levels(suite)
    assert pages(worker_docs) == pages(here.docs_dir)
    assert (worker_docs / "index.html").is_file()


def test_the_data_docs_start_once_every_gated_suite_has_run(orders, worker_docs, tmp_path, monkeypatch):
    # raw.sessions is an optional table the landing zone lacks: its gate runs but has nothing to validate
    load_partition(orders, "sessions", tmp_path / "landing", DAYS[-1])
    monkeypatch.setattr(gx_worker, "gated_suites", lambda: ["raw_orders", "raw_sessions", "raw_users"])
    session = gx_session(worker_docs)
    run_suite(orders, load_suite("raw_orders"), DAYS[-1], DAYS[-1], session=session)
    skipped = run_suite(orders, load_suite("raw_sessions"), DAYS[-1], DAYS[-1], session=session)
    assert skipped.note and not skipped.outcomes
    assert not (worker_docs / "index.html").exists()  # raw_users has not run yet
    run_suite(orders, load_suite("raw_users"), DAYS[-1], DAYS[-1], session=session)
    # the worker renders the pages while this process goes on, without being asked
    waited = time.monotonic()
    while not (worker_docs / "index.html").exists() and time.monotonic() - waited < 120:
        time.sleep(0.1)
    assert (worker_docs / "index.html").exists()
    both = levels(load_suite("raw_orders")) + levels(load_suite("raw_users"))
    assert session.build_docs() == both  # the build under way, counted when it ends
    # a suite validated after that build started gets its pages from the next one
    run_suite(orders, load_suite("raw_orders"), DAYS[-2], DAYS[-2], session=session)
    assert session.build_docs() == levels(load_suite("raw_orders"))
    assert len(pages(worker_docs)) == both + levels(load_suite("raw_orders"))
    assert session.build_docs() == 0


def test_a_worker_that_died_fails_the_gate_naming_its_setting(orders, worker_docs):
    os.kill(gx_worker.pid(), signal.SIGKILL)  # as the kernel's out-of-memory killer would
    with pytest.raises(RuntimeError, match=f"Great Expectations process stopped unexpectedly.*{gx_worker.ENV}=0"):
        run_suite(orders, load_suite("raw_orders"), DAYS[-1], DAYS[-1], session=gx_session(worker_docs))
    gx_worker.stop()  # the dead worker's pool: the next test starts another


def test_the_worker_leaves_when_the_run_process_is_killed_outright():
    # SIGKILL (or SIGTERM, the out-of-memory killer) runs no cleanup in the run's process: the worker must go too
    code = """
import os, signal
from orchestration.lib import early_gates, gx_worker

if __name__ == "__main__":
    gx_worker.start(None)
    print(gx_worker.pid(), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""
    # not run(): a worker that stays would hold the output pipes open, and reading them to their end would hang
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) as run:
        worker = int(run.stdout.readline())
        assert run.wait(timeout=300) == -signal.SIGKILL
    waited = time.monotonic()
    while _alive(worker) and time.monotonic() - waited < 60:
        time.sleep(0.2)
    assert not _alive(worker)


def _alive(pid: int) -> bool:
    try:  # an exited orphan may stay a zombie where nothing reaps it (a container's init)
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_with_a_worker_the_run_process_never_imports_great_expectations(tmp_path):
    # what a run imports before its first step (long_lived), then a gate's judgement through the worker
    code = f"""
import sys
from pathlib import Path

import duckdb
from orchestration.lib import gx_worker, long_lived
from orchestration.lib.quality_gate import gx_session, load_suite, run_suite
from tests.unit.test_quality_gate import DAYS, _load, _orders_world

if __name__ == "__main__":
    gx_worker.start(None)
    long_lived.freeze_long_lived_objects()
    _orders_world(Path({str(tmp_path)!r}), {{}})
    with duckdb.connect() as conn:
        _load(conn, Path({str(tmp_path)!r}))
        result = run_suite(conn, load_suite("raw_orders"), DAYS[-1], DAYS[-1], session=gx_session(None))
    gx_worker.stop()
    print(result.success, "great_expectations" in sys.modules)
"""
    root = Path(__file__).parents[2]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=root)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]


def test_a_gate_begun_by_its_loading_step_is_the_gate_its_check_would_run(orders, worker_docs, tmp_path):
    suite = load_suite("raw_orders")  # reads raw.orders and raw.users
    first, last = DAYS[1], DAYS[-1]
    assert early_gates.begin(orders, "orders", {"orders", "users"}, "run-1", first, last, worker_docs) == ["raw_orders"]
    begun = early_gates.take("run-1", "raw_orders", first, last)
    assert early_gates.take("run-1", "raw_orders", first, last) is None  # taken once
    in_the_check = run_suite(orders, suite, first, last, session=GxSession(tmp_path / "here" / "gx"))
    assert begun.result() == in_the_check
    assert in_the_check.failed_days == [DAYS[3]]
    # a suite reading a table its step did not load first is left to its check, as is another run's range
    assert early_gates.begin(orders, "orders", {"orders"}, "run-1", first, last, worker_docs) == []
    early_gates.begin(orders, "orders", {"orders", "users"}, "run-1", first, last, worker_docs)
    assert early_gates.take("run-1", "raw_orders", DAYS[2], last) is None
    # a later run drops what an earlier one begun and never took (its check did not run)
    early_gates.begin(orders, "users", {"users"}, "run-2", last, last, worker_docs)
    assert early_gates.take("run-1", "raw_orders", first, last) is None
    assert early_gates.take("run-2", "raw_users", last, last).result().success


def test_without_a_worker_or_on_spark_no_gate_is_begun_early(orders, worker_docs, monkeypatch):
    from orchestration.lib import engine

    monkeypatch.setattr(engine, "engine", lambda: "spark")  # Spark counts in its own session, in the check
    assert early_gates.begin(orders, "orders", {"orders", "users"}, "run-1", DAYS[1], DAYS[-1], worker_docs) == []
    monkeypatch.undo()
    gx_worker.stop()
    assert early_gates.begin(orders, "orders", {"orders", "users"}, "run-1", DAYS[1], DAYS[-1], worker_docs) == []
