"""Make GX Data Docs work offline: no CSS or JS from CDNs, the index's tables written as plain HTML.

GX 1.24 pages load Bootstrap, jQuery, bootstrap-table, Font Awesome and Vega from CDNs, and the index
page fills its two tables (validation results, expectation suites) with bootstrap-table in the browser:
offline (the normal case here) the index lists nothing. GX's own assets (its stylesheet, inlined into
every page, and ``static/`` with fonts, images and styles, which the site builder copies into the site)
are all local; the third-party libraries are not shipped with the package. So after each build:

* every ``<link>``/``<script>`` loading CSS or JS from http(s) is removed (a page must not wait on a
  network it does not have), GX's remote logo points at its local copy in ``static/images/``;
* the index's tables are rendered from the rows GX embedded in its script (newest run first, as GX
  sorts them), each row linking to its page (a plain link and an inline ``onclick``, no library);
* Font Awesome's pass / fail icons become text glyphs, and a few lines of CSS stand in for Bootstrap's
  table and tab styles (both tabs are shown one after the other: switching tabs needed Bootstrap JS).

Everything GX renders (validation and suite pages) is kept; only how it is loaded changes.
"""

from __future__ import annotations

import ast
import html
import re
from pathlib import Path

REMOTE_ASSET = re.compile(
    r"<script\b[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>\s*"
    r"|<link\b[^>]*\bhref=\"https?://[^\"]*\"[^>]*>\s*",
    re.IGNORECASE,
)
REMOTE_LOGO = re.compile(r"https://great-expectations-web-assets\.s3[^\"')\s]*")
ICONS = {"fa-check-circle": "&#10004;", "fa-times": "&#10006;"}  # passed, failed
ICON = re.compile(r"<i class=\"fas (fa-check-circle|fa-times)([^\"]*)\"\s*>\s*</i>")
TABLE_CALL = re.compile(r"\$\('#([\w-]+)'\)\.bootstrapTable\(")
OFFLINE_CSS = """
<style>/* offline Data Docs (impact-ledger): stand-ins for Bootstrap's table and tab styles */
table.offline-table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
table.offline-table th, table.offline-table td { border: 1px solid #d0d7de; padding: 0.25rem 0.6rem; text-align: left; }
table.offline-table tr.clickable-row:hover { background: #f0f4f8; cursor: pointer; }
.text-success { color: #1a7f37; } .text-danger { color: #cf222e; }
.nav-tabs { list-style: none; padding: 0; display: flex; gap: 1rem; }
.tab-pane { margin-bottom: 2rem; }
</style>
"""


def _matching(text: str, start: int) -> int:
    """Index just past the bracket closing the one at ``start``, skipping quoted Python strings."""
    depth, i, quote = 0, start, None
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError("unbalanced brackets in a GX Data Docs table script")


def _literal(script: str, key: str) -> list:
    """The Python-literal list GX wrote after ``key:`` (columns or data) in a table script."""
    at = script.index("[", script.index(f"{key}: "))
    return ast.literal_eval(script[at : _matching(script, at)])


def _static_table(table_id: str, columns: list[dict], rows: list[dict]) -> str:
    if any("_run_time_sort" in r for r in rows):  # GX sorts validation results newest first
        rows = sorted(rows, key=lambda r: r.get("_run_time_sort", 0), reverse=True)
    head = "".join(f"<th>{html.escape(str(c.get('title', c['field'])))}</th>" for c in columns)
    body = []
    for row in rows:
        link = row.get("_table_row_link_path")
        cells = []
        for n, col in enumerate(columns):
            value = str(row.get(col["field"], ""))  # GX's own HTML fragments (icons, links, tooltips)
            if link and n == (1 if len(columns) > 1 else 0) and "<a " not in value:
                value = f'<a href="{html.escape(link)}">{value}</a>'
            cells.append(f"<td>{value}</td>")
        attrs = (
            f' class="clickable-row" data-href="{html.escape(link)}" onclick="window.location=this.dataset.href"'
            if link
            else ""
        )
        body.append(f"<tr{attrs}>{''.join(cells)}</tr>")
    return (
        f'<table id="{table_id}" class="table-sm offline-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _render_tables(page: str) -> str:
    """Each bootstrap-table call -> its rows written into the (empty) table element; the scripts dropped."""
    while (match := TABLE_CALL.search(page)) is not None:  # each pass removes the script it matched
        table_id = match.group(1)
        script_start = page.rfind("<script>", 0, match.start())
        script_end = page.index("</script>", match.end()) + len("</script>")
        script = page[script_start:script_end]
        table = _static_table(table_id, _literal(script, "columns"), _literal(script, "data"))
        page = page.replace(script, "")
        page = re.sub(rf"<table\s+id=\"{re.escape(table_id)}\".*?</table>", lambda _: table, page, count=1, flags=re.S)
    # the remaining inline scripts call jQuery ($), which is not there offline: drop them
    return re.sub(r"<script>(?:(?!</script>).)*\$[(.](?:(?!</script>).)*</script>", "", page, flags=re.S)


def make_offline(page: str, depth: int) -> str:
    """One Data Docs page without remote CSS/JS; ``depth``: its folder depth below the site root."""
    static = "../" * depth + "static/images/logo-long.png"
    page = REMOTE_ASSET.sub("", page)
    page = REMOTE_LOGO.sub(static, page)
    page = ICON.sub(lambda m: f'<i class="fas {m.group(1)}{m.group(2)}">{ICONS[m.group(1)]}</i>', page)
    if "bootstrapTable(" in page:
        page = _render_tables(page)
    return page.replace("</head>", OFFLINE_CSS + "</head>", 1) if "offline Data Docs" not in page else page


def make_site_offline(site: Path, since: float | None = None) -> int:
    """Rewrite the pages of the Data Docs site at ``site`` to work offline (those written at or after
    ``since``, a time.time(), if given: a long-lived site is not re-read whole); returns the pages rewritten."""
    count = 0
    for path in site.rglob("*.html"):
        if since is not None and path.stat().st_mtime < since:
            continue
        page = path.read_text(encoding="utf-8")
        offline = make_offline(page, len(path.relative_to(site).parts) - 1)
        if offline != page:
            path.write_text(offline, encoding="utf-8")
            count += 1
    return count
