"""gx_templates: GX's Data Docs templates compiled once into a bytecode cache, rendering the same pages."""

import subprocess
import sys
import textwrap

# one process renders GX's pages with the cache installed (twice: compiled, then loaded), another without it
RENDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from great_expectations.render.view.view import DefaultJinjaPageView
    from great_expectations.render.renderer.site_index_page_renderer import SiteIndexPageRenderer
    from orchestration.lib import gx_templates

    cache = Path(sys.argv[1])
    if sys.argv[2] == "cached":
        assert gx_templates.install(cache)
        assert gx_templates.install(cache / "elsewhere")  # once per process
    index = {"site_name": "s", "sections": [], "expectations_links": [], "validations_links": []}
    page = SiteIndexPageRenderer.render(index)
    for _ in range(2):  # two views: each builds its own Jinja environment
        html = DefaultJinjaPageView().render(page)
    print(html.replace(html[html.find("?d="):html.find("?d=") + 25], ""), end="")  # without the render time
    """
)


def render(tmp_path, mode: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", RENDER, str(tmp_path / "cache"), mode], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_pages_render_the_same_with_the_compiled_templates_cached(tmp_path):
    plain = render(tmp_path, "plain")
    assert not (tmp_path / "cache").exists()
    first = render(tmp_path, "cached")
    cached = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cache").iterdir()}
    assert cached and not (tmp_path / "cache" / "elsewhere").exists()
    assert render(tmp_path, "cached") == first == plain  # loaded from the cache the second time
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cache").iterdir()} == cached  # nothing rewritten
