"""Older GX validation results set aside, so that a Data Docs build costs the same after years of daily runs.

Each daily run stores one result per suite level (26 on the demo) and renders its page. On every build GX's site
builder walks the whole results store and the whole site (both of its page stores list keys by walking the
site's root), and its index reads and renders the results it lists: a build took 1.2 s with 1,000 results kept
and 2.9 s with 10,000 though the index listed only the latest 1,000 (``tests/benchmarks/bench_data_docs.py``,
2026-12-03; README, *Data Docs*, for the builds since).

Before each build, the results beyond the latest ``keep`` (by run time, as GX orders its index) move out of GX's
reach, their pages with them, to the same relative paths beside the store and beside the site:

* ``<context>/gx/uncommitted/validations/<suite>/<run>/<time>/<batch>.json``
  -> ``<context>/gx/uncommitted/validations_archive/<suite>/<run>/<time>/<batch>.json``;
* ``<site>/validations/<suite>/<run>/<time>/<batch>.html`` -> ``<site>_archive/<suite>/<run>/<time>/<batch>.html``,
  its links to the site's root (the index, its suite's page, ``static/``) pointed back into the site.

Nothing is deleted; the pages stay readable in the browser. The pages move first: GX removes a page whose result
is missing from the store.
"""

from __future__ import annotations

import os
from pathlib import Path

ARCHIVE_SUFFIX = "_archive"  # <site>_archive, <results store>_archive
SITE_ROOT_FROM_A_RESULT_PAGE = '="../../../../'  # validations/<suite>/<run>/<time>/<batch>.html


def _remove_empty_folders(folder: Path, base: Path) -> None:
    """``folder`` and its parents up to ``base`` (excluded), as long as they are empty (a suite's run folder
    holds a folder per run time: listing it for each result moved would cost as much as the moves)."""
    while folder != base and base in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty
            return
        folder = folder.parent


def _archive_page(page: Path, to: Path, site: Path) -> None:
    """A result page moved out of ``site`` to ``to`` (as deep below ``site``'s parent as the page was below the
    site's own validations/ folder): its links to the site's root now go through the site's folder name."""
    if not page.exists():
        return
    text = page.read_text(encoding="utf-8")
    to.parent.mkdir(parents=True, exist_ok=True)
    to.write_text(text.replace(SITE_ROOT_FROM_A_RESULT_PAGE, f"{SITE_ROOT_FROM_A_RESULT_PAGE}{site.name}/"), "utf-8")
    page.unlink()
    _remove_empty_folders(page.parent, site / "validations")


def _archive_result(path: Path, to: Path, base: Path) -> None:
    if path.exists():
        to.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, to)
        _remove_empty_folders(path.parent, base)


def site_archive(site: Path) -> Path:
    """Where the pages of archived results go: beside the site, outside the root GX walks."""
    return site.with_name(site.name + ARCHIVE_SUFFIX)


def archive_older_results(store, site: Path, keys: list, keep: int) -> list:
    """Move the results of GX's ``store`` (a ValidationResultsStore on the file system) beyond the latest
    ``keep`` of ``keys`` (its listed keys), with their pages in ``site``, to the archive folders. Returns the
    keys kept, newest first."""
    ordered = sorted(keys, key=lambda k: (k.run_id.run_time, k.to_tuple()), reverse=True)
    kept, older = ordered[:keep], ordered[keep:]
    backend = store.store_backend
    results = Path(backend.full_base_directory)
    results_archive = results.with_name(results.name + ARCHIVE_SUFFIX)
    for key in older:
        parts = key.to_tuple()
        page = "/".join(parts) + ".html"  # the site mirrors the store's keys (GxSession.pending_results)
        _archive_page(site / "validations" / page, site_archive(site) / page, site)
        relative = backend._convert_key_to_filepath(parts)  # GX's own layout of a key (its template and suffix)
        _archive_result(results / relative, results_archive / relative, results)
    return kept
