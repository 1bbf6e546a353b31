"""Remove the run's registered secrets from pytest's own report text and from Allure's results.

The recorder redacts what the harness writes, but pytest writes text of its own: the failure's
traceback (with `-l`/`--showlocals`, every local variable, e.g. a ServiceLocator credential that
holds a vCenter password), captured stdout/stderr/log sections, skip reasons. JUnit, results.json,
the terminal and Allure all take their text from the test report, so scrubbing the report once in
`pytest_runtest_makereport` makes every writer safe, whatever object held the secret. Allure
builds its status message from the exception itself, so its results are scrubbed once more just
before they are written.
"""
from __future__ import annotations

from typing import Any

from harness.evidence.recorder import redact

_SCRUBBED_MODULES = ("_pytest.", "allure_commons.", "allure_pytest.")


def scrub(value: Any, _seen: set[int] | None = None) -> Any:
    """`value` with every secret removed: strings are replaced, containers and report objects edited in place."""
    seen = set() if _seen is None else _seen
    if isinstance(value, str):
        return redact(value)
    if id(value) in seen:
        return value
    if isinstance(value, list):
        seen.add(id(value))
        value[:] = [scrub(v, seen) for v in value]
        return value
    if isinstance(value, tuple):
        items = [scrub(v, seen) for v in value]
        if all(a is b for a, b in zip(items, value)):
            return value
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, dict):
        seen.add(id(value))
        for key in list(value):
            value[key] = scrub(value[key], seen)
        return value
    if type(value).__module__.startswith(_SCRUBBED_MODULES) and hasattr(value, "__dict__"):
        seen.add(id(value))
        for name, attr in list(vars(value).items()):
            new = scrub(attr, seen)
            if new is not attr:
                object.__setattr__(value, name, new)
    return value


def scrub_report(report: Any) -> None:
    """Scrub a pytest TestReport: longrepr (traceback, locals, crash message), sections, xfail reason."""
    report.longrepr = scrub(report.longrepr)
    report.sections = scrub(list(report.sections))
    if isinstance(getattr(report, "wasxfail", None), str):
        report.wasxfail = redact(report.wasxfail)


class AllureScrubber:
    """allure_commons plugin: runs before the file writer and scrubs each result and fixture container."""

    def report_result(self, result: Any) -> None:
        scrub(result)

    def report_container(self, container: Any) -> None:
        scrub(container)


_registered: list[Any] = []


def register_allure_scrubber() -> None:
    """Register once per process (a no-op without allure-pytest)."""
    if _registered:
        return
    try:
        import allure_commons
    except ImportError:
        return
    scrubber = AllureScrubber()
    for name in ("report_result", "report_container"):
        allure_commons.hookimpl(tryfirst=True)(getattr(AllureScrubber, name))
    allure_commons.plugin_manager.register(scrubber, "vcrypt_allure_scrubber")
    _registered.append(scrubber)
