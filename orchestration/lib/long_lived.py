"""The objects a run process keeps for its whole life, set aside from Python's cyclic garbage collector.

A run process holds ~650k objects that live as long as it does: the modules of Dagster, dbt, Great
Expectations and pandas and the loaded definitions. Every full collection walked all of them: ~0.4 s
each time dbt's database handle is closed (twice a run, orchestration/lib/dbt_runner.py) and again each
time the collector's own thresholds start one, ~1.2 s of a small day's ~12 s run. ``gc.freeze()`` moves
the objects alive now into a generation the collector never walks.

Frozen objects are still freed by reference counting when nothing refers to them; only a reference cycle
among them that later becomes garbage stays until the process exits. So this runs once per process, after
one full collection, when only long-lived objects are left (before the first run); each further run in the
process (the tests, a Python caller running day after day) saves ~0.5 s of collector time.

That collection walks every object too (~0.3 s). The command line's process has done nothing but import
and read its settings when it freezes, and the garbage it leaves is ~3,000 small objects of those imports
(tuples, cells, functions; measured 2026-12-03): it calls ``nothing_to_collect_yet()`` first, and the
freeze then skips the collection. Any other process may hold garbage of earlier work (a closed DuckDB
connection in a reference cycle, say) that freezing would keep: it collects first.
"""

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from orchestration.lib import gx_worker

_frozen = False
_collect_before_freezing = True


def nothing_to_collect_yet() -> None:
    """Called by an entry point that has only imported and read its settings: the freeze need not collect."""
    global _collect_before_freezing
    _collect_before_freezing = False


def freeze_long_lived_objects() -> None:
    """Import what every run imports, collect once (see nothing_to_collect_yet), then freeze what is alive
    (once per process: later calls do nothing)."""
    global _frozen
    if _frozen:
        return
    import dbt.cli.main  # noqa: F401  (imported by the run's dbt step anyway: now, so it is frozen too)

    from orchestration.lib.quality_gate import import_gx

    if not gx_worker.running():  # else GX lives in the worker process
        import_gx()  # the quality gates'

    if _collect_before_freezing:
        gc.collect()
    gc.freeze()
    _frozen = True


@contextmanager
def collection_paused() -> Iterator[None]:
    """The cyclic collector off inside the block, then back as it was.

    Loading a run's definitions imports most of the modules a run needs (Dagster, dagster-dbt, dbt, GX): hundreds
    of thousands of objects that live as long as the process, which every automatic collection on the way walked
    again. Those imports took ~1.3 s less without it (~6 s instead of ~7.5 s, five rounds alternating,
    2026-12-03). Imports leave no garbage worth collecting, and freeze_long_lived_objects, called in the block,
    collects once before it freezes."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
