import gc
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
# GX Data Docs cost ~1 s per validation; one test turns them back on.
os.environ.setdefault("IMPACT_LEDGER_GX_DOCS", "0")
# The synthetic world's models, attributes and OKRs are declared in the demo's project file;
# tests of other data sets set their own.
os.environ.setdefault("IMPACT_LEDGER_CONFIG", os.path.join(os.path.dirname(__file__), "..", "expectations", "demo.yml"))
# Two workers share this machine's two cores: DuckDB's default of a thread per core would run four on two, and
# the tests' small data gains nothing from a second one (a warm e2e day: ~8 CPU-s instead of ~9, same wall).
# Results do not depend on it. Acceptance runs start from a user's environment (DuckDB's default).
os.environ.setdefault("IMPACT_LEDGER_DUCKDB_THREADS", "1")
# The command line's GX worker (orchestration/lib/gx_worker.py) imports GX on the machine's other core, which here
# is the other test worker's: the tests' `impact-ledger materialize` subprocesses keep GX in their own process
# (a run that stops at loading never imports it). tests/unit/test_gx_worker.py starts the worker itself;
# acceptance runs start from a user's environment (the worker on, its default).
os.environ.setdefault("IMPACT_LEDGER_GX_WORKER", "0")
# A worker runs ~60 small pipeline runs, each allocating millions of short-lived objects (dbt's Jinja, Dagster's
# events, pandas): at Python's default thresholds (700, 10, 10) the collector ran ~290 young and ~2.6 full
# collections a run of the e2e world's days, ~0.4 s of its ~6.5 s; at these ~15 a run, the only full one
# dbt's own (orchestration/lib/dbt_runner.py), ~0.2 s (2026-12-08). Results do not depend on it.
gc.set_threshold(10_000, 50, 100)
# Daily partitions are defined once per process (at import), so in-process runs of several worlds
# share one start before all of them; subprocess tests of other data drop it to start from their data.
os.environ.setdefault("IMPACT_LEDGER_START_DATE", "2026-01-01")
# Each xdist worker gets its own dbt target folder: two workers' dbt runs (different warehouses and
# vars) would otherwise overwrite each other's compiled SQL and partial-parse state.
if worker := os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("IMPACT_LEDGER_DBT_TARGET", f"dagster_{worker}")

# The session's own Dagster instance, not the checkout's .dagster_home (the default without DAGSTER_HOME, and what
# the Makefile exports): `summary` reports the newest run's failure, so a developer's failed `make demo` showed in
# the tests' output. Set, not defaulted, and anew in each xdist worker (which inherits the controller's), so one
# worker's failed runs are not the other's; tests needing another home monkeypatch it. With the project's settings,
# as the CLI would copy them in (and say so).
DAGSTER_TEST_HOME = Path(tempfile.mkdtemp(prefix="pytest-dagster-home-"))
if (_project_settings := Path(__file__).resolve().parents[1] / ".dagster_home" / "dagster.yaml").is_file():
    shutil.copy(_project_settings, DAGSTER_TEST_HOME / "dagster.yaml")
os.environ["DAGSTER_HOME"] = str(DAGSTER_TEST_HOME)


def _shared_fixtures(item) -> list[str]:
    """The session- and module-scoped fixtures of this repository's tests that ``item`` uses, as keys."""
    keys = []
    for name in item.fixturenames:
        defs = item._fixtureinfo.name2fixturedefs.get(name)
        if not defs or not defs[-1].baseid.startswith("tests"):
            continue  # pytest's own (tmp_path_factory, ...) or a plugin's
        scope = defs[-1].scope
        if scope == "session":
            keys.append(name)
        elif scope in ("module", "package", "class"):
            keys.append(f"{item.module.__name__.rsplit('.', 1)[-1]}.{name}")
    return keys


def fixture_groups(items) -> dict[str, str]:
    """nodeid -> group for the tests sharing a session or module fixture, transitively (a materialised world,
    the PostgreSQL server, an acceptance run): each group is built once if it runs on one worker."""
    parent = {}

    def find(key):
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    keys = {item.nodeid: _shared_fixtures(item) for item in items}
    for shared in keys.values():
        for other in shared:
            parent[find(other)] = find(shared[0])
    members = {}
    for key in parent:
        members.setdefault(find(key), []).append(key)
    # named after a session fixture if there is one (``latest_db``), else a module's (``test_bias.rates``)
    names = {root: min(group, key=lambda k: ("." in k, k)) for root, group in members.items()}
    return {nodeid: names[find(shared[0])] for nodeid, shared in keys.items() if shared}


# pytest-xdist (pyproject's addopts: -n 2 --dist loadgroup): a session fixture is built once per worker that
# uses it, so each group above goes to one worker. xdist's own loadgroup reads `xdist_group` marks by renaming
# node ids, which pytest 9 no longer allows; so each worker writes the groups it collected to a file the
# controller's scheduler reads (it schedules once every worker has collected).
GROUPS_INPUT = "impact_ledger_groups"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):  # the controller, once per worker
    if not hasattr(node.config, "groups_file"):
        node.config.groups_file = Path(tempfile.mkdtemp(prefix="pytest-groups-")) / "groups.json"
    node.workerinput[GROUPS_INPUT] = str(node.config.groups_file)


def pytest_unconfigure(config):
    if hasattr(config, "groups_file"):
        shutil.rmtree(config.groups_file.parent, ignore_errors=True)
    shutil.rmtree(DAGSTER_TEST_HOME, ignore_errors=True)


_previous_module = {}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """When a worker moves on to another module, what is alive (imports, caches, session fixtures; the last
    module's fixtures are released by then) is collected once and frozen (gc.freeze, as a run process freezes its
    long-lived objects: orchestration/lib/long_lived.py). Each later full collection, two around every in-process
    dbt run (orchestration/lib/dbt_runner.py), then walks what was made since instead of the session's heap."""
    if _previous_module.get("module") is not item.module:
        _previous_module["module"] = item.module
        gc.collect()
        gc.freeze()


def pytest_collection_modifyitems(config, items):
    target = getattr(config, "workerinput", {}).get(GROUPS_INPUT)
    if target:
        written = Path(f"{target}.{config.workerinput['workerid']}")
        written.write_text(json.dumps(fixture_groups(items)))
        written.replace(target)


# Work units that take minutes though they hold few tests (the scheduler orders by test count): started
# first, so the other worker runs the rest meanwhile instead of waiting for them at the end.
STARTS_FIRST = ("tests/spark/", "tests/acceptance/")


def _starts_first(nodeid: str) -> bool:
    return nodeid.startswith(STARTS_FIRST)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FixtureGroupScheduling(LoadScopeScheduling):
        """Work units are the fixture groups (largest first, the longest ones before them), every other
        test on its own."""

        groups: dict | None = None
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            if self.groups is None:
                self.groups = json.loads(config.groups_file.read_text())
            return self.groups.get(nodeid, nodeid)

        def _assign_work_unit(self, node) -> None:
            if not self.ordered:  # once, before the first unit leaves: the longest units start first
                self.ordered = True
                first = [scope for scope, ids in self.workqueue.items() if any(map(_starts_first, ids))]
                for scope in reversed(first):
                    self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return FixtureGroupScheduling(config, log)
