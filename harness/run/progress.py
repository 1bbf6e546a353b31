"""Progress lines for CI logs: one line per finished test with its rule(s), verdict and duration.

Why: a CI log shows pytest's dots only when a line of them is full, so a run looked silent for
its first seconds and then printed `....[64%]`. When output is not a terminal (or with
`--progress lines`) this plugin replaces the dots of rule tests with lines such as

    [  3/52] passed  KEY-PROVIDER-REGISTER  test_register_kms_provider  0.4 s

It is registered by the vcrypt plugin on the controller only (xdist workers report to it).
"""
from __future__ import annotations

import json
import sys
from typing import Any

import pytest

_ORDER = ("failed", "error", "deviation", "skipped", "passed")  # the worst phase decides a test's verdict


def _props(report: pytest.TestReport) -> dict[str, Any] | None:
    for key, value in getattr(report, "user_properties", None) or []:
        if key == "vcrypt":
            return json.loads(value)
    return None


def _status(report: pytest.TestReport, info: dict[str, Any]) -> str:
    if report.skipped:  # a listed deviation is not demonstrated, not skipped (issue 23)
        return "deviation" if info.get("category") == "known_deviation" else "skipped"
    if report.failed:
        return "failed" if info.get("category") == "product_failure" else "error"
    return "passed"


class ProgressLines:
    """Collects each test's phases and prints one line when its teardown is reported."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.total = 0
        self.finished = 0
        self.pending: dict[str, tuple[str, float]] = {}

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.total = len(session.items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.total = max(self.total, len(ids))

    @pytest.hookimpl(hookwrapper=True)
    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config) -> Any:
        """Keep pytest's category and word (its counts and -r summary) but drop the dot."""
        outcome = yield
        result = outcome.get_result()
        if result and _props(report) is not None:
            category, _letter, word = result
            outcome.force_result((category, "", word))

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        info = _props(report)
        if info is None:
            return
        status, seconds = self.pending.get(report.nodeid, ("passed", 0.0))
        now = _status(report, info)
        if _ORDER.index(now) < _ORDER.index(status):
            status = now
        seconds += report.duration
        if report.when != "teardown":
            self.pending[report.nodeid] = (status, seconds)
            return
        self.pending.pop(report.nodeid, None)
        self.finished += 1
        self._write(self._line(status, info, seconds))

    def _line(self, status: str, info: dict[str, Any], seconds: float) -> str:
        width = len(str(self.total or self.finished))
        count = f"{self.finished:>{width}}/{self.total}" if self.total else str(self.finished)
        rules = ",".join(info.get("rules") or []) or "-"
        return f"[{count}] {status:7} {rules:26} {info.get('name', '')}  {seconds:.1f} s"

    def _write(self, line: str) -> None:
        from harness.printable import printable
        line = printable(line)   # a test id carries inventory names: no control or bidi character prints raw
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(line)
        else:
            print(line, flush=True)  # noqa: T201 - no terminal plugin (-p no:terminal): plain stdout


def wanted(config: pytest.Config) -> bool:
    mode = config.getoption("--progress", "auto")
    if mode == "auto":
        return not sys.stdout.isatty()
    return mode == "lines"


def register_progress(config: pytest.Config) -> None:
    """Register ProgressLines on the controller when lines are wanted (see `--progress`)."""
    if hasattr(config, "workerinput") or not wanted(config):
        return
    if not config.pluginmanager.has_plugin("vcrypt-progress"):
        config.pluginmanager.register(ProgressLines(config), "vcrypt-progress")
