"""harness/evidence/junit_errors.py: an environment error's <failure> becomes <error>; nothing else moves."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness.evidence.junit_errors import mark_environment_errors

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="vcrypt" errors="0" failures="3" skipped="0" tests="4">
<testcase name="env"><properties><property name="category" value="environment_error"/></properties>
<failure message="KMS 127.0.0.1:5696 unreachable">trace</failure></testcase>
<testcase name="product"><properties><property name="category" value="product_failure"/></properties>
<failure message="assert 1 == 2">trace</failure></testcase>
<testcase name="both"><properties><property name="category" value="product_failure"/>
<property name="category" value="environment_error"/></properties><failure message="x">trace</failure></testcase>
<testcase name="passed"/>
</testsuite></testsuites>
"""


def test_only_environment_errors_become_errors_and_the_counts_follow(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT)
    assert mark_environment_errors(path) == 1
    suite = ET.parse(path).getroot().find("testsuite")
    cases = {case.get("name"): [child.tag for child in case if child.tag != "properties"] for case in suite}
    assert cases == {"env": ["error"], "product": ["failure"], "both": ["failure"], "passed": []}
    assert (suite.get("errors"), suite.get("failures")) == ("1", "2")
    assert suite.find("testcase/error").get("message").startswith("environment error: KMS 127.0.0.1:5696")


def test_a_file_without_environment_errors_is_left_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT.replace('value="environment_error"', 'value="known_deviation"'))
    before = path.read_bytes()
    assert mark_environment_errors(path) == 0
    assert path.read_bytes() == before
