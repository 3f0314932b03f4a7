"""Great Expectations in a process of its own beside the command line's runs (IMPACT_LEDGER_GX_WORKER, default 1).

A small day's run spent ~2 s of its ~11 s on GX work that waits for nothing in the run: importing GX (~1.4 s
after Dagster and dbt) and rendering the Data Docs (~0.7 s). ``impact-ledger materialize`` starts this process
first thing, so GX imports on the machine's other core while the run's process imports Dagster and dbt and
loads the definitions. The gates count in the run's process (its warehouse connection, DuckDB or Spark) and
send GX only what it validates today: the small frames of SQL-side aggregates (quality_gate.validate_frames),
never rows. Once every gated suite has run (validated, or skipped: an optional table the source lacks), the
Data Docs build starts there while the run goes on with dbt; the data_docs step waits for it (and renders
whatever was validated after it started).

GX's context, store, results and pages are the ones an in-process session writes (the same GxSession, in the
other process; test). Runs that the command line did not start (Dagster's UI and daemon, tests, Python callers)
keep GX in their own process. A dead worker fails the gate that needed it, naming this setting.
"""

from __future__ import annotations

import atexit
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

ENV = "IMPACT_LEDGER_GX_WORKER"


def enabled() -> bool:
    """IMPACT_LEDGER_GX_WORKER: 1 (default) runs the command line's GX work in a second process, 0 in its own."""
    value = os.environ.get(ENV, "1").strip() or "1"
    if value not in ("0", "1"):
        raise ValueError(f"{ENV} must be 0 or 1, got {value!r}")
    return value == "1"


class GxWorker:
    """The worker process (one; GX's sessions live there, one per Data Docs folder) and its warm-up."""

    def __init__(self, docs_dir: Path | None):
        # spawn: a fresh interpreter (a fork would copy this process's threads' locks mid-use)
        self.pool = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_prepare_worker
        )
        self.sessions: dict[Path | None, RemoteGxSession] = {}
        self._warm: Future | None = self.pool.submit(_warm_up, docs_dir)  # starts the process: GX imports now

    def call(self, fn, *args):
        """``fn(*args)`` in the worker: its result, or its exception raised here."""
        return self.wait(self.submit(fn, *args))

    def wait(self, future: Future):
        """A submitted call's result, or its exception raised here."""
        if self._warm is not None:  # the warm-up's own error (e.g. an unwritable Data Docs folder) first
            warm, self._warm = self._warm, None
            result(warm)
        return result(future)

    def submit(self, fn, *args) -> Future:
        try:
            return self.pool.submit(fn, *args)
        except BrokenProcessPool as err:  # it died before
            raise stopped(err) from err

    def stop(self) -> None:
        self.pool.shutdown(wait=True)  # a Data Docs build under way completes


def result(future: Future):
    try:
        return future.result()
    except BrokenProcessPool as err:  # it died meanwhile
        raise stopped(err) from err


def stopped(err: BrokenProcessPool) -> RuntimeError:
    return RuntimeError(
        f"the Great Expectations process stopped unexpectedly ({err}); {ENV}=0 runs GX in the run's process"
    )


class RemoteGxSession:
    """A GxSession's ``judge`` and ``build_docs``, done by the worker's session for the same ``docs_dir``."""

    def __init__(self, worker: GxWorker, docs_dir: Path | None):
        self.docs_dir = docs_dir
        self._worker = worker
        self._gated = frozenset(gated_suites())  # read once: the suites folder does not change during a process
        self._done: set[str] = set()  # suites run (validated or skipped) since the last build started
        self._docs: Future | None = None  # a build started when every gated suite had run

    def judge(self, suite_name: str, frames: dict, specs: dict, parameters, by_column: dict, days: tuple) -> list:
        return self.start_judging(suite_name, frames, specs, parameters, by_column, days)()

    def start_judging(self, suite_name: str, *args):
        """judge() sent to the worker; the returned call waits for its outcomes. The worker takes its calls in
        order, so a Data Docs build this starts runs after the judging."""
        judging = self._worker.submit(_judge, self.docs_dir, suite_name, *args)
        self.suite_done(suite_name)
        return lambda: self._worker.wait(judging)

    def suite_done(self, suite_name: str) -> None:
        """``suite_name`` has run (validated, or skipped: its table is absent); once every gated suite has, the
        Data Docs build starts."""
        self._done.add(suite_name)
        if self.docs_dir is not None and self._docs is None and self._gated <= self._done:
            self._docs = self._worker.submit(_build_docs, self.docs_dir)  # its errors: in build_docs
            self._done = set()

    def build_docs(self) -> int:
        """Waits for a build under way, then renders what was validated after it started."""
        if self.docs_dir is None:
            return 0
        started, self._docs = self._docs, None
        pages = result(started) if started is not None else 0
        if started is None or self._done:
            pages += self._worker.call(_build_docs, self.docs_dir)
            self._done = set()
        return pages


_worker: GxWorker | None = None


def start(docs_dir: Path | None) -> None:
    """Start this process's worker (once), unless IMPACT_LEDGER_GX_WORKER is 0; ``docs_dir``: the Data Docs
    folder, or None (no Data Docs)."""
    global _worker
    if _worker is None and enabled():
        _worker = GxWorker(None if docs_dir is None else Path(docs_dir).resolve())


def gated_suites() -> list[str]:
    """The suites a run's gates validate (every suite: orchestration/defs/quality/checks.py)."""
    from orchestration.lib.quality_gate import suite_names

    return suite_names()


def stop() -> None:
    global _worker
    if _worker is not None:
        worker, _worker = _worker, None
        worker.stop()


def running() -> bool:
    return _worker is not None


def pid() -> int | None:
    """The worker's process id (None without a worker)."""
    return None if _worker is None else _worker.call(os.getpid)


def session(docs_dir: Path | None) -> RemoteGxSession | None:
    """The worker's session for ``docs_dir`` (resolved), or None without a worker."""
    if _worker is None:
        return None
    if docs_dir not in _worker.sessions:
        _worker.sessions[docs_dir] = RemoteGxSession(_worker, docs_dir)
    return _worker.sessions[docs_dir]


# ---------------------------------------------------------------- in the worker


def _prepare_worker() -> None:
    # Ctrl-C reaches the whole process group: the run's process stops, then stops this one (a build completes)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Python's orderly exit took ~0.5 s here (tearing down GX's modules), with the run's process waiting on it;
    # every result has already been sent back (the pool's result queue writes synchronously) and GX's files
    # written, so the process leaves at the first exit handler (the last registered runs first)
    atexit.register(_leave_now)
    # a run process killed outright (SIGKILL, SIGTERM, the out-of-memory killer) never stops this one, which would
    # wait for work forever (it holds its own end of the pool's call queue): it leaves when its parent has gone
    threading.Thread(target=_leave_with_parent, args=(multiprocessing.parent_process().sentinel,), daemon=True).start()


def _leave_with_parent(sentinel) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


def _leave_now() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _session(docs_dir: Path | None):
    from orchestration.lib.quality_gate import gx_session

    return gx_session(docs_dir)


def _warm_up(docs_dir: Path | None) -> None:
    _session(docs_dir)  # GX imported, its context opened


def _judge(docs_dir, suite_name, frames, specs, parameters, by_column, days) -> list:
    return _session(docs_dir).judge(suite_name, frames, specs, parameters, by_column, days)


def _build_docs(docs_dir) -> int:
    return _session(docs_dir).build_docs()
