"""Open report.html in headless Chromium: it renders, runs no failing script, loads nothing.

Drives Chromium over the DevTools protocol on --remote-debugging-pipe (fd 3 in, fd 4 out,
NUL-separated JSON), so only the standard library is needed. The screenshots are kept in
test-output/ at the repository root for a human to look at.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.evidence.html_report import write_html_report
from harness.evidence.verdicts import load_catalogue

REPO_ROOT = Path(__file__).resolve().parents[2]
OUTPUT = REPO_ROOT / "test-output"


def _chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "/usr/bin/chromium"):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    found = _chromium()
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is required in CI (apt-get install chromium)")
        pytest.skip("chromium not installed: cannot check how report.html renders")
    return found


class DevTools:
    """Minimal CDP client over the pipe transport."""

    def __init__(self, binary: str, profile: Path):
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def wire_fds() -> None:
            # In the child: Chromium reads fd 3 and writes fd 4. Our other fds are
            # close-on-exec (PEP 446), so close_fds=False leaks nothing but these two.
            high_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            high_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.proc = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--mute-audio",
                f"--user-data-dir={profile}",
                "--window-size=1400,2000",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,
            preexec_fn=wire_fds,
            start_new_session=True,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no answer from chromium")
            ready, _, _ = select.select([self._from_chrome], [], [], remaining)
            if ready:
                chunk = os.read(self._from_chrome, 1 << 16)
                if not chunk:
                    raise ConnectionError("chromium closed the DevTools pipe")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(
        self, method: str, params: dict[str, Any] | None = None, timeout: float = 30, browser: bool = False
    ) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self.session and not browser:
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_event(self, method: str, timeout: float = 30) -> dict[str, Any]:
        for event in self.events:
            if event["method"] == method:
                return event
        deadline = time.monotonic() + timeout
        while True:
            event = self._read_message(deadline)
            if "method" in event:
                self.events.append(event)
                if event["method"] == method:
                    return event

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        """The visible 1400x2000 viewport, what a reader sees first."""
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError, TimeoutError, ConnectionError):
            self.send("Browser.close", browser=True, timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # our own process group only
            self.proc.wait(timeout=10)
        os.close(self._to_chrome)
        os.close(self._from_chrome)


@pytest.fixture
def page(chromium: str, run_dir: Path, tmp_path: Path):
    with open_report(chromium, write_html_report(run_dir), tmp_path / "profile") as browser:
        yield browser


@contextlib.contextmanager
def open_report(chromium: str, report: Path, profile: Path):
    """A fresh headless Chromium (own profile folder) showing `report`; closed on exit."""
    browser = DevTools(chromium, profile)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        browser.session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable")
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1400, "height": 2000, "deviceScaleFactor": 1, "mobile": False},
        )
        browser.send("Page.navigate", {"url": report.as_uri()})
        browser.wait_event("Page.loadEventFired")
        yield browser
    finally:
        browser.close()


def _problems(events: list[dict[str, Any]]) -> list[str]:
    """Console errors, uncaught exceptions, CSP violations and any network fetch."""
    problems = []
    for e in events:
        method, params = e["method"], e.get("params", {})
        if method == "Runtime.exceptionThrown":
            problems.append(f"uncaught: {params['exceptionDetails'].get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert", "warning"):
            problems.append(f"console {params['type']}: {params.get('args')}")
        elif method == "Log.entryAdded" and params["entry"].get("level") in ("error", "warning"):
            problems.append(f"log {params['entry']['level']}: {params['entry'].get('text')}")
        elif method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if not url.startswith(("file:", "data:", "about:")):
                problems.append(f"network request: {url}")
    return problems


def test_report_renders_offline_without_errors(page: DevTools) -> None:
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(OUTPUT / "report-screenshot.png")

    rows = page.evaluate("document.querySelectorAll('#matrix tr[data-rule]').length")
    assert rows == len(load_catalogue())
    # The stylesheet applied (its CSP hash matched): a failed verdict chip is red.
    colour = page.evaluate("getComputedStyle(document.querySelector('tr[data-verdict=failed] .chip')).backgroundColor")
    assert colour == "rgb(255, 213, 209)"
    # The injected fault text is shown as text, never run as a script.
    assert page.evaluate("document.querySelectorAll('script').length") == 1
    assert page.evaluate("document.body.innerText.includes(\"<script>alert('pwned')</script>\")")

    # The inline script works: "Expand all" opens every rule and test, the raw API calls stay collapsed.
    page.evaluate("document.querySelector('[data-expand=all]').click()")
    assert page.evaluate("[...document.querySelectorAll('details:not(.calls-box)')].every(d => d.open)")
    assert page.evaluate("[...document.querySelectorAll('details.calls-box')].every(d => !d.open)")
    page.evaluate("document.getElementById('rule-PUSH-HA').scrollIntoView()")
    page.screenshot(OUTPUT / "report-screenshot-expanded.png")

    time.sleep(0.2)  # let late console/log events arrive
    page.send("Runtime.evaluate", {"expression": "1"})
    assert _problems(page.events) == []
    assert (OUTPUT / "report-screenshot.png").stat().st_size > 10_000


def test_fragment_link_opens_rule_details(page: DevTools) -> None:
    page.evaluate("location.hash = '#rule-KMS-STATUS'")
    time.sleep(0.2)
    assert page.evaluate("document.getElementById('rule-KMS-STATUS').open") is True
    assert _problems(page.events) == []


# ---- issue 14: readable evidence, checked in the browser ------------------------------------------
ROOT = REPO_ROOT
VCRYPT = [sys.executable, "-c", "from harness.cli import main; main()"]


def test_rule_ids_are_never_cut_off(page: DevTools) -> None:
    clipped = page.evaluate("""[...document.querySelectorAll('#matrix td.rid')]
        .filter(td => td.scrollWidth > td.clientWidth || td.querySelector('a').getBoundingClientRect().height > 30)
        .map(td => td.textContent.trim())""")
    assert clipped == []
    longest = max((r.id for r in load_catalogue()), key=len)
    assert page.evaluate(f"!!document.querySelector('#matrix tr[data-rule=\"{longest}\"] td.rid')")


def test_seeded_defects_are_announced_in_red(chromium: str, run_dir: Path, tmp_path: Path) -> None:
    run = json.loads((run_dir / "run.json").read_text())
    run["provenance"] = {"fake_defects": ["clone-encrypt-ignored"], "operator": {"user": "alice", "host": "ws"}}
    (run_dir / "run.json").write_text(json.dumps(run))
    with open_report(chromium, write_html_report(run_dir), tmp_path / "profile") as page:
        colour = page.evaluate("getComputedStyle(document.getElementById('defects')).color")
        assert colour == "rgb(179, 18, 31)"  # --fail
        top = page.evaluate("document.getElementById('defects').getBoundingClientRect().top")
        assert 0 < top < 2000  # in the first screenful
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(OUTPUT / "report-seeded-defects.png")


@pytest.fixture
def long_names_page(chromium: str, run_dir: Path, tmp_path: Path):
    """The synthetic run with a parametrized test id as long as the suites' longest."""
    results = json.loads((run_dir / "results.json").read_text())
    results["tests"][3]["nodeid"] += "_and_holds_the_key_of_an_encrypted_vm_whatever_the_order_of_power_and_settings[poweredOff]"
    (run_dir / "results.json").write_text(json.dumps(results))
    with open_report(chromium, write_html_report(run_dir), tmp_path / "profile") as browser:
        yield browser


def test_print_shows_summary_and_rules_without_raw_calls(long_names_page: DevTools) -> None:
    page = long_names_page
    page.send("Emulation.setEmulatedMedia", {"media": "print"})
    shown = page.evaluate("""({
        calls: [...document.querySelectorAll('details.calls-box')].map(d => getComputedStyle(d).display),
        summary: getComputedStyle(document.getElementById('summary')).display,
        rules: getComputedStyle(document.getElementById('rule-PUSH-HA')).display,
        toolbar: getComputedStyle(document.querySelector('.toolbar')).display})""")
    assert shown["calls"] and set(shown["calls"]) == {"none"}
    assert shown["summary"] != "none" and shown["rules"] != "none" and shown["toolbar"] == "none"
    # a page-wide layout: nothing (a long test id, a table) sticks out to the right and gets cut
    page.send("Emulation.setDeviceMetricsOverride", {"width": 800, "height": 1100, "deviceScaleFactor": 1,
                                                     "mobile": False})
    page.evaluate("document.querySelector('[data-expand=all]').click()")
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    page.send("Emulation.setEmulatedMedia", {"media": ""})
    pdf = base64.b64decode(page.send("Page.printToPDF", {"printBackground": True}, timeout=120)["data"])
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "report-print.pdf").write_bytes(pdf)
    # printing opened every rule (beforeprint) but left the raw calls closed
    assert page.evaluate("document.getElementById('rule-PUSH-HA').open") is True
    assert page.evaluate("[...document.querySelectorAll('details.calls-box')].every(d => !d.open)")


@pytest.fixture(scope="module")
def three_rules_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run of the three rules an auditor reads first (small, so the test stays fast)."""
    reports = tmp_path_factory.mktemp("browser") / "reports"
    proc = subprocess.run([*VCRYPT, "run", "--reports", str(reports), "--run-id", "readable", "--rules",
                           "SNAP-SHALLOW,PUSH-HA,XVC-MIGRATE-NO-DECRYPT"], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return reports / "readable"


def _open_rule(page: DevTools, rule: str) -> None:
    page.evaluate(f"""(() => {{ const r = document.getElementById('rule-{rule}'); r.open = true;
        r.querySelectorAll('details.test').forEach(d => d.open = true); r.scrollIntoView(); }})()""")


def test_a_real_runs_checks_come_first_and_the_key_grid_fits(chromium: str, three_rules_run: Path,
                                                              tmp_path: Path) -> None:
    OUTPUT.mkdir(exist_ok=True)
    with open_report(chromium, three_rules_run / "report.html", tmp_path / "profile") as page:
        for rule in ("SNAP-SHALLOW", "PUSH-HA", "XVC-MIGRATE-NO-DECRYPT"):
            _open_rule(page, rule)
            first = page.evaluate(f"""[...document.querySelectorAll('#rule-{rule} details.test .body')]
                .map(b => b.querySelector('h4') && b.querySelector('h4').textContent)""")
            assert first and all(h.startswith("What was checked") for h in first), (rule, first)
            page.screenshot(OUTPUT / f"report-{rule}.png")
        sentences = page.evaluate("""[...document.querySelectorAll('#rule-SNAP-SHALLOW table.checks tbody tr')]
            .map(tr => [...tr.cells].map(c => c.textContent).join(' | '))""")
        assert any(re.fullmatch(r"✔ \| snapshot s2 key \| \d+ \(new\) \| \d+ \(new\)", s) for s in sentences), sentences
        grid = page.evaluate("""(() => { const g = document.querySelector('#rule-PUSH-HA table.grid');
            g.scrollIntoView(); return {width: g.getBoundingClientRect().width,
              room: g.parentElement.getBoundingClientRect().width,
              focus: [...g.querySelectorAll('th.key.focus')].length,
              keyWidths: [...g.querySelectorAll('th.key')].map(th => th.getBoundingClientRect().width)}; })()""")
        page.screenshot(OUTPUT / "report-PUSH-HA-grid.png")
        assert grid["focus"] == 1 and grid["width"] <= grid["room"]
        assert min(grid["keyWidths"]) > 40  # a key id on one line, not one character per line
        calls_closed = page.evaluate("[...document.querySelectorAll('details.calls-box')].every(d => !d.open)")
        assert calls_closed


# ---- issue 24: what needs attention is on the first screen ----------------------------------------
def test_the_first_viewport_shows_the_compliance_verdict_and_the_failed_rules_with_their_causes(
        chromium: str, run_dir: Path, tmp_path: Path) -> None:
    """At 1400x900 (a laptop), before any scrolling: the red compliance banner, then each rule that failed
    or errored with its deciding test and cause, worst first."""
    with open_report(chromium, write_html_report(run_dir), tmp_path / "profile") as page:
        page.send("Emulation.setDeviceMetricsOverride", {"width": 1400, "height": 900, "deviceScaleFactor": 1,
                                                         "mobile": False})
        page.evaluate("window.scrollTo(0, 0)")
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(OUTPUT / "report-first-screen.png")
        banner = page.evaluate("""(() => { const b = document.getElementById('compliance-banner');
            const r = b.getBoundingClientRect(); return {text: b.innerText, top: r.top, colour: getComputedStyle(b).color}; })()""")
        assert banner["text"].startswith("Compliance: FAIL — REKEY-SHALLOW, DATA-AT-REST, KMS-STATUS, CLONE-KEEP")
        assert 0 <= banner["top"] < 200 and banner["colour"] == "rgb(179, 18, 31)"
        rows = page.evaluate("""[...document.querySelectorAll('#attention tr[data-attention]')].map(tr => ({
            rule: tr.dataset.attention, verdict: tr.dataset.verdict, bottom: tr.getBoundingClientRect().bottom,
            text: tr.innerText}))""")
        worst = [r for r in rows if r["verdict"] in ("failed", "error")]
        assert [r["rule"] for r in worst] == ["REKEY-SHALLOW", "DATA-AT-REST", "KMS-STATUS", "CLONE-KEEP"]
        assert all(r["bottom"] <= 900 for r in worst), worst
        rekey = worst[0]["text"]
        assert "test_shallow_rekey_keeps_ciphertext" in rekey and "vim.fault.GenericVmConfigFault" in rekey
        assert "disk ciphertext changed <script>alert('pwned')</script>" in rekey
        assert "Timeout waiting for task-77 (last state: running, 300 s)" in worst[3]["text"]
        assert page.evaluate("document.querySelectorAll('script').length") == 1


def test_matrix_headers_never_break_inside_a_word(page: DevTools) -> None:
    broken = page.evaluate("""[...document.querySelectorAll('#matrix th.vc')].flatMap(th => {
        const words = th.textContent.trim().split(/\\s+/);
        th.innerHTML = words.map(w => '<span>' + w + '</span>').join(' ');
        return [...th.querySelectorAll('span')].filter(s => s.getClientRects().length > 1).map(s => s.textContent);
    })""")
    assert broken == []
