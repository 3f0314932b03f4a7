"""The compiled-template cache dbt's and GX's Jinja share (orchestration/lib/jinja_bytecode.py): it only saves time."""

import shutil

import jinja2

from orchestration.lib.jinja_bytecode import best_effort_cache

TEMPLATES = {"a": "{{ x }} {{ 6 * 7 }}", "b": "{% for i in range(3) %}{{ i }}{% endfor %}"}


def _render(cache, name: str) -> str:
    """A fresh environment each time (Jinja keeps compiled templates in memory too): the cache is all it shares."""
    env = jinja2.Environment(loader=jinja2.DictLoader(TEMPLATES), bytecode_cache=cache)
    return env.get_template(name).render(x="a")


def test_templates_are_stored_and_loaded_and_a_folder_gone_or_unwritable_only_costs_a_compile(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    cache = best_effort_cache(folder)
    assert _render(cache, "a") == "a 42"
    stored = list(folder.glob("__jinja2_*.cache"))
    assert len(stored) == 1
    compiled = []
    original = jinja2.Environment.compile
    monkeypatch.setattr(
        jinja2.Environment, "compile", lambda self, *a, **k: compiled.append(1) or original(self, *a, **k)
    )
    assert _render(cache, "a") == "a 42" and not compiled  # loaded from the file, not compiled
    # the folder replaced by a file (a full disk fails the same way): read and store fail, rendering does not
    shutil.rmtree(folder)
    folder.write_text("not a folder")
    assert _render(cache, "a") == "a 42" and _render(cache, "b") == "012"
    assert best_effort_cache(folder) is not None  # nor does a new cache on that path
    # the folder removed (`dbt clean` under a long-lived process): the next store makes it again
    folder.unlink()
    assert _render(cache, "b") == "012"
    assert len(list(folder.glob("__jinja2_*.cache"))) == 1
