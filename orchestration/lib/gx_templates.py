"""Great Expectations' Data Docs templates compiled once, not on every run.

Each GX page view builds its own Jinja environment, so every Data Docs build parses and compiles GX's page,
section and component templates into Python again: ~0.15 s of a small day's ~0.4 s build. Jinja's own
bytecode cache (one that never fails a page: orchestration/lib/jinja_bytecode.py) keeps the compiled templates
in a folder (keyed by template name and file; a template whose source changed, e.g. another GX release, is
compiled again) that every view shares, so a run loads them instead, and a view's environment no longer
checks the template files' modification times on each use. Rendering is unchanged: the same templates, the same Python code object.

Installed only on the GX release it was written against (pyproject pins it); tests/unit/test_gx_templates.py
renders the Data Docs with and without it.
"""

from __future__ import annotations

from pathlib import Path

from orchestration.lib.gx_import import GX_RELEASE
from orchestration.lib.jinja_bytecode import best_effort_cache


def install(cache_dir: Path) -> bool:
    """GX's Jinja views compile through a bytecode cache in ``cache_dir`` (the first call's folder for the
    process); False when GX is not the release it fits."""
    import great_expectations
    from great_expectations.render.view.view import DefaultJinjaView

    if great_expectations.__version__ != GX_RELEASE:
        return False
    original = DefaultJinjaView.__init__
    if getattr(original, "bytecode_cache", None) is not None:
        return True
    cache = best_effort_cache(cache_dir)

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.env.bytecode_cache = cache
        # a view asks its environment for the same few templates again and again: Jinja would check each
        # template file's modification time every time (~70 ms a build); they do not change while a run does
        self.env.auto_reload = False

    __init__.bytecode_cache = cache
    DefaultJinjaView.__init__ = __init__
    return True
