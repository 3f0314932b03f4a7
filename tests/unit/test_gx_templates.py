"""gx_templates: GX's Data Docs templates compiled once into a bytecode cache, rendering the same pages."""

import json
import subprocess
import sys
import textwrap

# A process renders GX's pages, then (mode "plain_then_cached") installs the cache and renders them again,
# compiling into it; a second process (mode "cached") installs it and loads them. Each view builds its own Jinja
# environment, so the plain views leave nothing in memory for the cached ones.
RENDER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from great_expectations.render.view.view import DefaultJinjaPageView
    from great_expectations.render.renderer.site_index_page_renderer import SiteIndexPageRenderer
    from orchestration.lib import gx_templates

    def pages():
        index = {"site_name": "s", "sections": [], "expectations_links": [], "validations_links": []}
        page = SiteIndexPageRenderer.render(index)
        for _ in range(2):  # two views: each builds its own Jinja environment
            html = DefaultJinjaPageView().render(page)
        return html.replace(html[html.find("?d="):html.find("?d=") + 25], "")  # without the render time

    cache = Path(sys.argv[1])
    out = {}
    if sys.argv[2] == "plain_then_cached":
        out["plain"] = pages()
        out["cache_before_install"] = cache.exists()
    assert gx_templates.install(cache)
    assert gx_templates.install(cache / "elsewhere")  # once per process
    out["cached"] = pages()
    print(json.dumps(out))
    """
)


def render(tmp_path, mode: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", RENDER, str(tmp_path / "cache"), mode], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_pages_render_the_same_with_the_compiled_templates_cached(tmp_path):
    first = render(tmp_path, "plain_then_cached")
    assert not first["cache_before_install"]  # the plain pages compiled nothing into it
    cached = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cache").iterdir()}
    assert cached and not (tmp_path / "cache" / "elsewhere").exists()
    assert render(tmp_path, "cached")["cached"] == first["cached"] == first["plain"]  # loaded the second time
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cache").iterdir()} == cached  # nothing rewritten
