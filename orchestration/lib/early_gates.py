"""A raw table's gates begun as soon as its rows are loaded, their GX part in gx_worker's process.

A run's steps go one at a time: each raw table loads, then, later, its gate (an asset check) counts in SQL and
waits while GX judges (~0.1 s a suite on a small day, on the other core). Begun by the loading step instead,
the judging overlaps the next tables' loading and counting; the gate's check then takes the result. The
check's result is the same: the suite reads only its own table and the tables loaded before it (the caller
says which), and no step between the loading and the check writes to them (each raw step writes only its
own table). Only where GX has a process of its own (the command line's runs) and the gates count in DuckDB
(engine: duckdb); elsewhere, and whenever a begun gate is not found, the check does all of its work itself.
"""

from __future__ import annotations

import logging
from datetime import date

from orchestration.lib import gx_worker
from orchestration.lib.quality_gate import PendingSuite, load_suite, start_suite, suite_names, suite_tables

log = logging.getLogger(__name__)

_BEGUN: dict[tuple, PendingSuite] = {}  # (run id, suite, first day, last day) -> its validation under way


def begin(conn, table: str, loaded: set[str], run_id: str, first: date, last: date, docs_dir) -> list[str]:
    """Begin the suites of raw ``table`` whose tables are all in ``loaded`` (written before this step); returns
    their names. A suite that fails to begin is left to its check, which repeats the work and reports it."""
    from orchestration.lib.engine import engine
    from orchestration.lib.quality_gate import gx_session

    if not gx_worker.running() or engine() != "duckdb":
        return []
    for key in [k for k in _BEGUN if k[0] != run_id]:  # an earlier run's, never taken (its check did not run)
        del _BEGUN[key]
    begun = []
    for name in suite_names():
        suite = load_suite(name)
        if suite["table"] != table or not set(suite_tables(suite)) <= loaded:
            continue
        try:
            _BEGUN[(run_id, name, first, last)] = start_suite(conn, suite, first, last, session=gx_session(docs_dir))
        except Exception as err:  # noqa: BLE001 (the check runs the suite again and reports this)
            log.debug("gate %s not begun early: %s", name, err)
            continue
        begun.append(name)
    return begun


def take(run_id: str, suite_name: str, first: date, last: date) -> PendingSuite | None:
    """The suite's validation begun by its table's loading step in this run, if it was."""
    return _BEGUN.pop((run_id, suite_name, first, last), None)
