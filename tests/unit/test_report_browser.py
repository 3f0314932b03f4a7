"""The daily report in a real browser (headless Chromium, driven over the DevTools protocol on a pipe).

Fails on any element wider than its container, any plot slot without a drawn trace, any console error
or uncaught exception, and on group labels that are not shown in full. Chromium is a test requirement:
`make test` installs Debian's `chromium` when it is missing, and this test FAILS (never skips) without it.
No websocket library needed: ``--remote-debugging-pipe`` speaks CDP over file descriptors 3 and 4.
"""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import duckdb
import pytest

from orchestration.lib.report import write_report
from tests.unit.test_report import AS_OF, make_warehouse
from tests.unit.test_report_drift import with_bin_shares

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WIDTH, HEIGHT = 1100, 900  # a laptop window; the cards are narrower than the page's 1280 px maximum
TIMEOUT = 30.0

# Runs in the page once plotly has drawn: what overflows, which plots are empty, the bias plots' tick labels.
INSPECT_JS = """
(() => {
  const describe = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
      (el.className && typeof el.className === 'string' ? '.' + el.className.trim().replace(/\\s+/g, '.') : '') +
      ' in ' + (el.closest('section') ? el.closest('section').id : 'page');
  const overflowing = [];
  for (const el of document.querySelectorAll('body *')) {
    // plotly's own SVG and hover layers are sized by plotly inside the slot; the slot itself is checked
    if (el.closest('svg') || (el.closest('.plot') && !el.classList.contains('plot'))) continue;
    if (['SCRIPT', 'STYLE'].includes(el.tagName)) continue;
    const parent = el.parentElement, r = el.getBoundingClientRect();
    if (!parent || r.width === 0) continue;
    // a child of a horizontally scrolling box may be wider: the box scrolls, the card does not overflow
    if (['auto', 'scroll'].includes(getComputedStyle(parent).overflowX)) continue;
    const p = parent.getBoundingClientRect();
    if (r.right > p.right + 1 || r.left < p.left - 1) {
      overflowing.push(describe(el) + ': ' + Math.round(r.width) + 'px in ' + Math.round(p.width) + 'px');
    }
  }
  if (document.documentElement.scrollWidth > window.innerWidth) {
    overflowing.push('page: ' + document.documentElement.scrollWidth + 'px wide in a ' + window.innerWidth + 'px window');
  }
  const plots = {};
  for (const slot of document.querySelectorAll('.plot')) {
    const drawn = [...slot.querySelectorAll('g.trace path, g.trace .point path, g.points path, path.js-line')]
        .filter(p => { const b = p.getBoundingClientRect(); return b.width > 0 || b.height > 0; });
    plots[slot.id] = {
      svg: slot.querySelectorAll('svg.main-svg').length,
      drawn: drawn.length,
      height: Math.round(slot.getBoundingClientRect().height),
      yticks: [...slot.querySelectorAll('.yaxislayer-above text')].map(t => t.textContent),
    };
  }
  return JSON.stringify({overflowing, plots});
})()
"""


class Browser:
    """A minimal CDP client over Chromium's --remote-debugging-pipe (messages are JSON, NUL-terminated)."""

    def __init__(self, profile: Path):
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def pipes():  # the child reads commands on fd 3 and writes replies on fd 4
            commands, replies = os.dup(to_child_r), os.dup(from_child_w)  # copies first: either may be 3 or 4
            os.dup2(commands, 3)
            os.dup2(replies, 4)

        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=pipes,
            pass_fds=(3, 4),  # kept open after pipes() ran (every other descriptor is closed)
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer, self._next_id, self.events = b"", 0, []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str) -> dict:
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read()
            self.events.append(event)
            if event.get("method") == method:
                return event

    def _read(self) -> dict:
        deadline = time.monotonic() + TIMEOUT
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("Chromium did not answer within 30 s")
            chunk = os.read(self._from_child, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, OSError, TimeoutError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_child)
        os.close(self._from_child)


def render(path: Path, profile: Path) -> tuple[dict, list[str]]:
    """(inspection of the drawn page, console errors and uncaught exceptions)."""
    browser = Browser(profile)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.send(f"{domain}.enable", session=session)
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        browser.send("Page.navigate", {"url": path.as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")
        result = browser.send("Runtime.evaluate", {"expression": INSPECT_JS, "returnByValue": True}, session=session)
        errors = []
        for e in browser.events:
            params = e.get("params", {})
            if e.get("method") == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
            elif e.get("method") == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                errors.append(details.get("exception", {}).get("description") or details.get("text", ""))
            elif e.get("method") == "Log.entryAdded" and params["entry"]["level"] == "error":
                errors.append(params["entry"]["text"])
        return json.loads(result["result"]["value"]), errors
    finally:
        browser.close()


def test_the_report_renders_in_headless_chromium_without_overflow_empty_plots_or_errors(tmp_path):
    assert CHROMIUM, (
        "Chromium is required by the browser test of the report: `make test` installs it "
        "(Debian: apt-get install -y chromium)"
    )
    # OKRs, scorecard and leads too, and the bin shares behind the drift alerts
    warehouse = with_bin_shares(make_warehouse(tmp_path / "w.duckdb", optional=True))
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        path = write_report(conn, AS_OF, tmp_path / "reports")
    start = time.monotonic()
    page, errors = render(path, tmp_path / "profile")
    assert time.monotonic() - start < TIMEOUT

    assert errors == []
    assert page["overflowing"] == []
    summary_plots = json.loads(
        path.read_text().split('<script type="application/json" id="report-summary">')[1].split("</script>")[0]
    )["plots"]
    assert sorted(page["plots"]) == sorted(f"plot-{name}" for name in summary_plots)
    for slot, drawn in page["plots"].items():
        assert drawn["svg"] and drawn["drawn"] and drawn["height"] > 100, (slot, drawn)
    assert any(slot.startswith("plot-drift-") for slot in page["plots"])  # the alerted feature's distribution
    # every group label of the fairness plots is shown whole (the intersectional ones were cut to 4 characters)
    (bias,) = [v for k, v in page["plots"].items() if k.startswith("plot-bias-")]
    assert {"young", "old", "tiny", "female x 25-34", "male x 25-34", "female x 65+"} <= set(bias["yticks"])


@pytest.mark.skipif(CHROMIUM is None, reason="checked by the test above, which fails without Chromium")
def test_the_browser_check_catches_overflow_and_empty_plots(tmp_path):
    """The inspection itself: a page with a too-wide table and an empty plot slot is caught."""
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><body><main style='width:400px'><section id='s'>"
        "<table style='width:900px'><tr><td>wide</td></tr></table>"
        "<div class='plot' id='plot-empty' style='height:300px'></div>"
        "</section></main><script>console.error('boom')</script></body></html>"
    )
    inspected, errors = render(page, tmp_path / "profile")
    assert any(o.startswith("table in s") for o in inspected["overflowing"])
    assert inspected["plots"]["plot-empty"]["drawn"] == 0
    assert errors == ["boom"]
