import os

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
# GX Data Docs cost ~1 s per validation; one test turns them back on.
os.environ.setdefault("IMPACT_LEDGER_GX_DOCS", "0")
# The synthetic world's models, attributes and OKRs are declared in the demo's project file;
# tests of other data sets set their own.
os.environ.setdefault("IMPACT_LEDGER_CONFIG", os.path.join(os.path.dirname(__file__), "..", "expectations", "demo.yml"))
# Daily partitions are defined once per process (at import), so in-process runs of several worlds
# share one start before all of them; subprocess tests of other data drop it to start from their data.
os.environ.setdefault("IMPACT_LEDGER_START_DATE", "2026-01-01")


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


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`--dist loadgroup`, pyproject's addopts) tests that share a session or module fixture
    (a materialised world, a PostgreSQL server, an acceptance run) go to one worker, so each is built once: a
    session fixture is built once per worker that uses it. Tests sharing none are spread one by one."""
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
    names = {root: min(group, key=lambda k: ("." in k, k)).replace("@", "_") for root, group in members.items()}
    for item in items:
        if keys[item.nodeid]:
            item.add_marker(pytest.mark.xdist_group(names[find(keys[item.nodeid][0])]))
