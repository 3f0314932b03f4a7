"""Freezing the long-lived objects (orchestration/lib/long_lived.py): once per process, and garbage made after
it (reference cycles included) is still collected. Run in a fresh interpreter: freezing is process-wide."""

import subprocess
import sys
import textwrap

PROBE = textwrap.dedent(
    """
    import gc, sys, weakref
    from orchestration.lib.long_lived import freeze_long_lived_objects

    assert gc.get_freeze_count() == 0
    full = []
    gc.callbacks.append(lambda phase, info: phase == "start" and info["generation"] == 2 and full.append(1))
    gc.disable()  # only the freeze's own collection counts
    freeze_long_lived_objects()
    gc.enable()
    assert full == [1], "no full collection before the freeze"
    frozen = gc.get_freeze_count()
    assert frozen > 100_000, frozen  # the modules a run imports (dbt, Great Expectations) among them
    assert "great_expectations" in sys.modules and "dbt.cli.main" in sys.modules
    freeze_long_lived_objects()
    assert gc.get_freeze_count() == frozen  # once per process

    class Node:
        pass

    freed = []
    a, b = Node(), Node()
    a.other, b.other = b, a  # a reference cycle: only the cyclic collector frees it
    weakref.finalize(a, freed.append, "cycle")
    del a, b
    gc.collect()
    assert freed == ["cycle"], freed
    assert gc.get_freeze_count() == frozen
    print("ok")
    """
)


def test_the_first_call_freezes_what_is_alive_and_later_cycles_are_still_collected():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"


FRESH_PROCESS_PROBE = textwrap.dedent(
    """
    import gc
    from orchestration.lib.long_lived import freeze_long_lived_objects, nothing_to_collect_yet

    full = []
    gc.callbacks.append(lambda phase, info: phase == "start" and info["generation"] == 2 and full.append(1))
    gc.disable()  # as the command line's collection_paused: no automatic collection meanwhile
    nothing_to_collect_yet()
    freeze_long_lived_objects()
    assert gc.get_freeze_count() > 100_000
    assert full == [], "the freeze collected"
    print("ok")
    """
)


def test_a_process_that_has_only_imported_freezes_without_a_full_collection():
    done = subprocess.run([sys.executable, "-c", FRESH_PROCESS_PROBE], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"


def test_the_collector_is_paused_inside_the_block_and_back_as_it_was_after_it_even_on_an_error():
    import gc

    import pytest

    from orchestration.lib.long_lived import collection_paused

    assert gc.isenabled()
    with collection_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collection_paused():
        raise RuntimeError("a definitions load that failed")
    assert gc.isenabled()
    gc.disable()  # a caller that turned it off itself keeps it off
    try:
        with collection_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_run_loads_its_job_with_the_collector_paused_and_runs_with_it_on(monkeypatch):
    import gc

    import orchestration.definitions
    from orchestration import runs

    seen = []
    build = orchestration.definitions.build_definitions
    monkeypatch.setattr(
        orchestration.definitions, "build_definitions", lambda: (seen.append(gc.isenabled()), build())[1]
    )
    job = runs.load_job("daily_impact_ledger")
    assert job.name == "daily_impact_ledger"
    assert seen == [False] and gc.isenabled() and gc.get_freeze_count() > 0
