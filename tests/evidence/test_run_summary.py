"""The terminal rule table (harness/evidence/summary.py) on runs that did not finish (issue 23)."""
from __future__ import annotations

import json
import re
from pathlib import Path


def _folder(tmp_path: Path, tests: list[dict], **run: object) -> Path:
    (tmp_path / "results.json").write_text(json.dumps({"tests": tests}))
    (tmp_path / "run.json").write_text(json.dumps({"run_id": "r", **run}))
    return tmp_path


def test_a_filtered_run_still_shows_a_rule_whose_selected_tests_never_started(tmp_path, capsys):
    from harness.evidence.summary import print_run_summary
    run_dir = _folder(tmp_path, [
        {"nodeid": "a", "name": "a", "rules": ["OP-STATE"], "outcome": "passed"},
        {"nodeid": "b", "name": "b", "rules": ["KMS-GENERATE"], "outcome": "not run", "category": "not run",
         "message": "not run: selected, but the run ended before this test started"}], interrupted=True, exit_status=130)
    print_run_summary(run_dir, 1.0, filtered=True)
    out = capsys.readouterr().out
    assert re.search(r"KMS-GENERATE\s+not run", out), out
    assert "1 not run" in out and "interrupted" in out


def test_teardown_errors_are_listed_apart_and_leave_the_verdict(tmp_path, capsys):
    from harness.evidence.summary import print_run_summary
    run_dir = _folder(tmp_path, [{"nodeid": "a", "name": "a", "rules": ["OP-STATE"], "outcome": "passed",
                                  "teardown_error": "teardown error (after the test's verdict): RuntimeError: vm-42"}])
    print_run_summary(run_dir, 1.0, filtered=True)
    out = capsys.readouterr().out
    assert re.search(r"OP-STATE\s+passed", out) and "1 teardown error(s)" in out and "vm-42" in out
