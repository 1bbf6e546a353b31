"""Environment errors as JUnit `<error>`, not `<failure>`, without forging pytest reports.

pytest's junitxml writes every failed *call* report as `<failure>` (only setup/teardown failures
become `<error>`). A test that fails in its body because a KMS or vCenter went down keeps its
honest call report (Allure and xdist see what pytest made); the plugin marks it with the
testcase property `category=environment_error`, and this rewrite, run after junitxml wrote the
file, turns that testcase's `<failure>` into an `<error>` and moves the count from the suite's
`failures` to its `errors`, so CI tools count it as an environment error, never a product failure.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

ENVIRONMENT_ERROR = "environment_error"


def _categories(testcase: ET.Element) -> set[str]:
    return {prop.get("value", "") for prop in testcase.iter("property") if prop.get("name") == "category"}


def mark_environment_errors(path: Path) -> int:
    """Rewrite `path` in place; returns how many testcases changed (0: the file is left untouched)."""
    tree = ET.parse(path)
    changed = 0
    for suite in tree.getroot().iter("testsuite"):
        moved = 0
        for testcase in suite.iter("testcase"):
            if _categories(testcase) != {ENVIRONMENT_ERROR}:
                continue  # a product failure beside an environment error stays a failure
            for failure in testcase.findall("failure"):
                failure.tag = "error"
                failure.set("message", f"environment error: {failure.get('message', '')}")
                moved += 1
        if moved:
            suite.set("failures", str(int(suite.get("failures", "0")) - moved))
            suite.set("errors", str(int(suite.get("errors", "0")) + moved))
            changed += moved
    if changed:
        tree.write(path, encoding="utf-8", xml_declaration=True)
    return changed
