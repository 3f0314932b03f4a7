"""The objects a run process keeps for its whole life, set aside from Python's cyclic garbage collector.

A run process holds ~650k objects that live as long as it does: the modules of Dagster, dbt, Great
Expectations and pandas and the loaded definitions. Every full collection walked all of them: ~0.4 s
each time dbt's database handle is closed (twice a run, orchestration/lib/dbt_runner.py) and again each
time the collector's own thresholds start one, ~1.2 s of a small day's ~12 s run. ``gc.freeze()`` moves
the objects alive now into a generation the collector never walks.

Frozen objects are still freed by reference counting when nothing refers to them; only a reference cycle
among them that later becomes garbage stays until the process exits. So this runs once per process, after
one full collection, when only long-lived objects are left (before the first run). A process that runs once
gains little (the freeze's own collection costs about what its run's later ones save); each further run in
the process (the tests, a Python caller running day after day) saves ~0.5 s of collector time.
"""

import gc
from functools import cache


@cache
def freeze_long_lived_objects() -> None:
    """Import what every run imports, collect once, then freeze what is alive (once per process)."""
    import dbt.cli.main  # noqa: F401  (imported by the run's dbt step anyway: now, so it is frozen too)

    from orchestration.lib.quality_gate import import_gx

    import_gx()  # the quality gates'

    gc.collect()
    gc.freeze()
