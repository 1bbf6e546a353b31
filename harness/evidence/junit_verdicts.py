"""Rule verdicts, compliance and seeded defects in the JUnit file, so a CI panel says what the report says.

While pytest's junitxml is still open (`tryfirst` at session end) each rule gets `verdict:<RULE>` =
its verdict alone and, when it is not demonstrated, `reason:<RULE>` naming every test that did not
pass with its reason (decided by harness/evidence/verdicts.py). After the run folder is written,
`add_run_verdicts` adds what only run.json knows: `compliance` (PASS / FAIL: rules / not requested)
and `seeded_defects` as testsuite properties, and in compliance mode a `compliance` test case that
fails when compliance fails, so a JUnit panel is never green while the job exits 1.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Callable

import pytest

COMPLIANCE_CASE = "compliance"


class JunitVerdicts:
    """A pytest plugin object: add the rule verdicts to the JUnit file's global properties."""

    def __init__(self, results: Callable[[], list[dict[str, Any]]]) -> None:
        self._results = results

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from _pytest.junitxml import xml_key

        from harness.evidence.verdicts import load_catalogue, results_from, rule_verdicts
        xml = session.config.stash.get(xml_key, None)
        if xml is None:
            return
        for rule_id, verdict in rule_verdicts(load_catalogue(), results_from(self._results())).items():
            xml.add_global_property(f"verdict:{rule_id}", verdict.verdict)
            if not verdict.compliant and verdict.gaps:
                xml.add_global_property(f"reason:{rule_id}", "; ".join(verdict.gaps))


def register(config: pytest.Config, results: Callable[[], list[dict[str, Any]]]) -> None:
    if not config.pluginmanager.has_plugin("vcrypt-junit-verdicts"):
        config.pluginmanager.register(JunitVerdicts(results), "vcrypt-junit-verdicts")


def _run_facts(run_dir: Path) -> tuple[bool, list[str], list[str]] | None:
    """(compliance mode, compliance gaps, seeded defects) from run.json, or None without one."""
    try:
        run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    defects = (run.get("provenance") or {}).get("fake_defects") or []
    return bool(run.get("compliance")), [str(g) for g in run.get("compliance_gaps") or []], [str(d) for d in defects]


def _set_property(suite: ET.Element, name: str, value: str) -> None:
    props = suite.find("properties")
    if props is None:
        props = ET.Element("properties")
        suite.insert(0, props)
    for prop in props.findall("property"):
        if prop.get("name") == name:
            props.remove(prop)
    ET.SubElement(props, "property", name=name, value=value)


def _bump(element: ET.Element, attribute: str) -> None:
    if element.get(attribute) is not None:
        element.set(attribute, str(int(element.get(attribute, "0")) + 1))


def add_run_verdicts(path: Path, run_dir: Path | None) -> bool:
    """Add compliance and seeded defects to the JUnit file at `path` (in place); False when run.json is absent."""
    facts = _run_facts(run_dir) if run_dir is not None else None
    if facts is None:
        return False
    compliance, gaps, defects = facts
    tree = ET.parse(path)
    root = tree.getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    rules = [gap.split(":", 1)[0] for gap in gaps]
    status = ("FAIL: " + ", ".join(rules) if gaps else "PASS") if compliance else "not requested"
    for suite in suites:
        _set_property(suite, "compliance", status)
        _set_property(suite, "seeded_defects", ", ".join(defects) if defects else "none")
        if not compliance or any(tc.get("name") == COMPLIANCE_CASE for tc in suite.iter("testcase")):
            continue
        case = ET.SubElement(suite, "testcase", classname="vcrypt", name=COMPLIANCE_CASE, time="0")
        _bump(suite, "tests")
        _bump(root, "tests") if root is not suite else None
        if gaps:
            failure = ET.SubElement(case, "failure", message=f"Compliance: FAIL — {', '.join(rules)}")
            failure.text = "\n".join(gaps)
            _bump(suite, "failures")
            _bump(root, "failures") if root is not suite else None
        if defects:
            ET.SubElement(case, "system-out").text = (f"seeded fake defects: {', '.join(defects)} "
                                                      "(the fake vCenter was broken on purpose)")
    tree.write(path, encoding="utf-8", xml_declaration=True)
    return True
