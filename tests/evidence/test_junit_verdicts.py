"""JUnit carries the compliance verdict and the seeded defects (issue 24): properties, and a `compliance` test
case that fails exactly when compliance fails."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.evidence.junit_verdicts import add_run_verdicts

JUNIT = ('<?xml version="1.0"?><testsuites><testsuite name="vcrypt.fake.fake" tests="2" failures="0" errors="0">'
         '<testcase classname="suites.test_a" name="test_a" time="1"/><testcase classname="suites.test_a" '
         'name="test_b" time="1"/></testsuite></testsuites>')


def _junit(run_dir: Path, compliance: bool, gaps: list[str], defects: list[str]) -> ET.Element:
    run = json.loads((run_dir / "run.json").read_text())
    run.update(compliance=compliance, compliance_gaps=gaps, provenance={"fake_defects": defects})
    (run_dir / "run.json").write_text(json.dumps(run))
    path = run_dir / "junit.xml"
    path.write_text(JUNIT)
    assert add_run_verdicts(path, run_dir)
    assert add_run_verdicts(path, run_dir)  # idempotent: one case, one property each
    return ET.parse(path).getroot().find("testsuite")


def _props(suite: ET.Element) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in suite.find("properties")}


def test_failing_compliance_is_a_failed_test_case_and_a_property(run_dir: Path) -> None:
    suite = _junit(run_dir, True, ["KMS-REQUIRED: not run", "PUSH-NO-HA: skipped (capability: x)"], ["op-state-ignored"])
    assert _props(suite) == {"compliance": "FAIL: KMS-REQUIRED, PUSH-NO-HA", "seeded_defects": "op-state-ignored"}
    cases = [tc for tc in suite.iter("testcase") if tc.get("name") == "compliance"]
    assert len(cases) == 1 and cases[0].find("failure").text.splitlines()[1] == "PUSH-NO-HA: skipped (capability: x)"
    assert "op-state-ignored" in cases[0].find("system-out").text
    assert (suite.get("tests"), suite.get("failures")) == ("3", "1")


def test_passing_compliance_is_a_passed_test_case(run_dir: Path) -> None:
    suite = _junit(run_dir, True, [], [])
    case = next(tc for tc in suite.iter("testcase") if tc.get("name") == "compliance")
    assert case.find("failure") is None and (suite.get("tests"), suite.get("failures")) == ("3", "0")
    assert _props(suite) == {"compliance": "PASS", "seeded_defects": "none"}


def test_without_compliance_mode_there_is_no_case_but_the_property_says_so(run_dir: Path) -> None:
    suite = _junit(run_dir, False, ["X: skipped"], [])
    assert not [tc for tc in suite.iter("testcase") if tc.get("name") == "compliance"]
    assert _props(suite)["compliance"] == "not requested"
