"""Make Allure agree with results.json about tests that never finished.

allure-pytest marks a test "passed" as soon as its setup passes and closes it that way when a
Ctrl-C or SIGTERM lands in the test body (no call report ever arrives). results.json calls such a
test "interrupted"; this rewrites its Allure result to status "unknown" with the same message, so
no writer shows a pass the run never saw.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.evidence.allure_extras import RESULTS_DIR
from harness.evidence.verdicts import INTERRUPTED


def _matches(result: dict[str, Any], test: dict[str, Any]) -> bool:
    """Same test: same name, and the same module (an interrupted result may carry no labels yet)."""
    module = str(result.get("fullName", "")).split("#", 1)[0]
    return result.get("name") == test["name"] and (module == test["module"] or module.endswith("." + test["module"]))


def mark_interrupted(run_dir: Path, tests: list[dict[str, Any]]) -> int:
    """Rewrite the Allure results of interrupted tests; returns how many were changed."""
    unfinished = [t for t in tests if t.get("outcome") == INTERRUPTED]
    folder = Path(run_dir) / RESULTS_DIR
    if not unfinished or not folder.is_dir():
        return 0
    changed = 0
    for path in folder.glob("*-result.json"):
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        test = next((t for t in unfinished if _matches(result, t)), None)
        if test is None or result.get("status") == "unknown":
            continue
        result["status"] = "unknown"
        result["statusDetails"] = {"message": test.get("message") or INTERRUPTED}
        path.write_text(json.dumps(result), encoding="utf-8")
        changed += 1
    return changed
