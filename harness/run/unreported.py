"""Tests that were selected but never reported: they are `not run`, never missing (issue 23).

Why: results.json used to hold only tests that reported something, so a rule whose other test
instances never started (a run stopped by SIGTERM, a collect-only run) looked fully passed. The
process that collects (the controller, or each xdist worker: they collect the same items) writes
the selection to the run's private work folder; at the end the controller adds every selected
test without a report as `not run`.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

import pytest

from harness.rules import load_rules
from harness.run.item_ids import evidence_id

FILENAME = "selected-tests.json"
NOT_RUN = "not run"
NOT_RUN_MESSAGE = "not run: selected, but the run ended before this test started (stopped, or only collected)"


def _rules_of(item: pytest.Item) -> list[str]:
    return [rid for marker in item.iter_markers("rule") for rid in marker.args]


def area_of(rule_ids: list[str]) -> str:
    catalogue = load_rules()
    return catalogue[rule_ids[0]].area if rule_ids and rule_ids[0] in catalogue else ""


def record_selection(work_dir: Path, items: Iterable[pytest.Item]) -> None:
    """Write the selected rule tests (atomically: xdist workers write the same list side by side)."""
    entries = []
    for item in items:
        rules = _rules_of(item)
        if not rules:
            continue
        test_id = evidence_id(item)
        entries.append({"nodeid": item.nodeid, "test_id": test_id, "name": item.name,
                        "module": item.module.__name__ if getattr(item, "module", None) else "",
                        "area": area_of(rules), "rules": rules, "outcome": NOT_RUN, "category": NOT_RUN,
                        "message": NOT_RUN_MESSAGE, "duration_s": 0.0,
                        "evidence_file": None})
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    tmp = Path(work_dir) / f"{FILENAME}.{os.getpid()}"
    tmp.write_text(json.dumps(entries), encoding="utf-8")
    tmp.replace(Path(work_dir) / FILENAME)


def unreported(work_dir: Path, reported: Iterable[str]) -> list[dict[str, Any]]:
    """The selected tests with no report, as `not run` results entries (none when nothing was recorded)."""
    path = Path(work_dir) / FILENAME
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    seen = set(reported)
    return [e for e in entries if isinstance(e, dict) and e.get("nodeid") not in seen]
