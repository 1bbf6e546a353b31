"""Every rule has a suite test, every suite test names known rules and a unique permanent ID."""
from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

from harness.commands.coverage import suite_tests
from harness.rules import load_rules

SUITES = Path(__file__).resolve().parent.parent / "suites"


def test_every_rule_of_the_catalogue_has_at_least_one_suite_test():
    covered = {rule for test in suite_tests(SUITES) for rule in test["rules"]}
    missing = [rid for rid in load_rules() if rid not in covered]
    assert not missing, f"rules without a suite test: {', '.join(missing)}"


def test_no_suite_test_names_an_unknown_rule():
    catalogue = load_rules()
    unknown = [f"{t['module']}::{t['name']} -> {r}" for t in suite_tests(SUITES) for r in t["rules"] if r not in catalogue]
    assert not unknown, unknown


def test_every_suite_test_names_at_least_one_rule():
    bare = [f"{t['module']}::{t['name']}" for t in suite_tests(SUITES) if not t["rules"]]
    assert not bare, bare


def test_every_suite_test_has_exactly_one_permanent_uuid():
    tests = suite_tests(SUITES)
    wrong = [f"{t['module']}::{t['name']}" for t in tests if len(t["test_ids"]) != 1]
    assert not wrong, f"tests without exactly one test_id marker: {wrong}"
    for test in tests:
        uuid.UUID(test["test_ids"][0])


def test_no_two_suite_tests_share_an_id():
    counts = Counter(t["test_ids"][0] for t in suite_tests(SUITES) if t["test_ids"])
    dupes = [tid for tid, n in counts.items() if n > 1]
    assert not dupes, f"duplicated test ids: {dupes}"


def test_rule_ids_match_the_shared_catalogue_when_it_is_beside_the_checkout():
    import re
    shared = SUITES.parent.parent / "shared" / "RULES.md"
    if not shared.exists():
        import pytest
        pytest.skip("../shared/RULES.md is not beside this checkout")
    ids = set(re.findall(r"^\| ([A-Z][A-Z0-9-]+) \|", shared.read_text(), flags=re.M)) - {"ID"}
    assert ids == set(load_rules()), sorted(ids ^ set(load_rules()))
