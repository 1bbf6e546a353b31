"""`vcrypt diff` compares only complete runs, and a pass that went away is a regression (issue 23)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness import cli
from harness.commands.diff import IncompleteRun, diff_runs


def _run(folder: Path, outcomes: dict[str, tuple[str, str]], **run: object) -> Path:
    folder.mkdir(parents=True)
    tests = [{"nodeid": f"suites/t.py::{tid}", "test_id": tid, "name": tid, "rules": [rule], "outcome": outcome,
              "category": {"failed": "product_failure", "error": "environment_error", "deviation": "known_deviation",
                           "skipped": "capability_skip"}.get(outcome)}
             for tid, (rule, outcome) in outcomes.items()]
    (folder / "results.json").write_text(json.dumps({"tests": tests}))
    (folder / "run.json").write_text(json.dumps({"run_id": folder.name, "inventory": "inventories/fake.yaml",
                                                 "vcenters": [{"name": "vc-a", "version": "7.0.3", "build": "1"}],
                                                 **run}))
    return folder


def _diff(a: Path, b: Path):
    return CliRunner().invoke(cli.main, ["diff", str(a), str(b)])


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return _run(tmp_path / "good", {"t1": ("OP-STATE", "passed"), "t2": ("KMS-STATUS", "passed")})


@pytest.mark.parametrize(("name", "mutate", "problem"), [
    ("no-results", lambda d: (d / "results.json").unlink(), "no results.json"),
    ("list", lambda d: (d / "results.json").write_text("[1,2,3]"), "results.json is not"),
    ("garbage", lambda d: (d / "results.json").write_text("{"), "results.json is not"),
    ("no-run-json", lambda d: (d / "run.json").unlink(), "no run.json"),
    ("interrupted", lambda d: (d / "run.json").write_text(json.dumps({"run_id": "x", "interrupted": True})),
     "interrupted"),
])
def test_diff_refuses_an_unreadable_or_incomplete_run_naming_the_problem(tmp_path, good, name, mutate, problem):
    bad = _run(tmp_path / name, {"t1": ("OP-STATE", "passed")})
    mutate(bad)
    result = _diff(good, bad)
    assert result.exit_code == 2, result.output
    assert problem in result.output and str(bad) in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_diff_refuses_a_run_that_demonstrated_nothing(tmp_path, good):
    empty = _run(tmp_path / "empty", {"t1": ("OP-STATE", "skipped"), "t2": ("KMS-STATUS", "skipped")})
    with pytest.raises(IncompleteRun, match="nothing was demonstrated"):
        diff_runs(good, empty)


@pytest.mark.parametrize("after", ["skipped", "deviation"])
def test_a_pass_that_becomes_skipped_or_deviation_is_a_regression(tmp_path, good, after):
    b = _run(tmp_path / "b", {"t1": ("OP-STATE", after), "t2": ("KMS-STATUS", "passed")})
    result = diff_runs(good, b)
    assert result.exit_code == 1
    assert ("test", "t1") in [(c.kind, c.key) for c in result.regressions]
    assert ("rule", "OP-STATE") in [(c.kind, c.key) for c in result.regressions]


def test_a_rule_that_passed_and_an_unfiltered_run_no_longer_runs_is_a_regression(tmp_path, good):
    b = _run(tmp_path / "b", {"t2": ("KMS-STATUS", "passed")}, pytest_args=["suites", "--inventory", "x.yaml"])
    assert [(c.kind, c.key, c.after) for c in diff_runs(good, b).regressions] == [("rule", "OP-STATE", "not run")]
    narrowed = _run(tmp_path / "narrowed", {"t2": ("KMS-STATUS", "passed")}, pytest_args=["suites", "--rules", "KMS-STATUS"])
    assert diff_runs(good, narrowed).regressions == [] and diff_runs(good, narrowed).dropped == 2


def test_diff_warns_when_the_runs_differ_in_target_version_or_inventory(tmp_path, good):
    b = _run(tmp_path / "b", {"t1": ("OP-STATE", "passed"), "t2": ("KMS-STATUS", "passed")},
             inventory="inventories/fake-67.yaml", vcenters=[{"name": "vc-a", "version": "6.7.0", "build": "2"}])
    result = _diff(good, b)
    assert result.exit_code == 0, result.output
    assert "warning: the runs used different inventories" in result.output
    assert "warning: vc-a: 7.0.3 build 1 -> 6.7.0 build 2" in result.output
