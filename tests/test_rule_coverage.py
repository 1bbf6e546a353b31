"""Every rule has a suite test, every suite test names known rules and a unique permanent ID."""
from __future__ import annotations

import uuid

import pytest
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
    rules = load_rules()
    assert ids <= set(rules), sorted(ids - set(rules))   # every rule of the spec is in the catalogue
    # The rules beyond the spec (issue 25's families) rest on public sources of their own (a URL each).
    beyond = {rid: rules[rid].source for rid in set(rules) - ids if "http" not in rules[rid].source}
    assert not beyond, beyond


# ---- tests as wide as the rule's text (issue 23, point 7) -------------------------------------------
def test_every_state_and_principal_a_rules_text_names_is_exercised_by_a_test_instance_of_the_rule():
    from harness.commands.coverage import uncovered_cells
    missing = {rule: [f"{d}={v}" for d, v in cells] for rule, cells in uncovered_cells(SUITES).items()}
    assert not missing, f"rules whose text names a state no test instance exercises: {missing}"


def test_every_cell_a_suite_test_declares_is_in_the_catalogues_vocabulary():
    from harness.rules import DIMENSIONS
    wrong = [f"{t['module']}::{t['name']}: {d}={v}" for t in suite_tests(SUITES) for d, v in t["cells"]
             if v not in DIMENSIONS.get(d, ())]
    assert not wrong, wrong


def test_cells_are_read_from_markers_params_power_parametrizations_and_cross_vcenter_requirements(tmp_path):
    (tmp_path / "test_x.py").write_text('''
import pytest
pytestmark = pytest.mark.requires("cross_vcenter")

@pytest.mark.rule("R")
@pytest.mark.parametrize("power", ["poweredOn", "poweredOff"])
def test_a(power): ...

@pytest.mark.rule("R")
@pytest.mark.parametrize("who,operation", [pytest.param("g", "x", marks=pytest.mark.covers(principal="group"))])
def test_b(who, operation): ...

@pytest.mark.rule("R")
@pytest.mark.covers(power="suspended", snapshots=["single", "chain"])
def test_c(): ...
''')
    cells = {t["name"]: set(t["cells"]) for t in suite_tests(tmp_path)}
    scope = ("scope", "cross-vcenter")
    assert cells["test_a"] == {("power", "on"), ("power", "off"), scope}
    assert cells["test_b"] == {("principal", "group"), scope}
    assert cells["test_c"] == {("power", "suspended"), ("snapshots", "single"), ("snapshots", "chain"), scope}


@pytest.mark.parametrize("raw, problem", [
    ({"colour": ["red"]}, "R.covers.colour: unknown dimension"),
    ({"power": [True]}, "R.covers.power: [True] not among"),   # YAML 1.1 reads an unquoted on/off as a bool
    ({"power": []}, "R.covers.power: no values"),
])
def test_a_covers_entry_outside_the_vocabulary_is_refused_naming_the_rule_and_key(raw, problem):
    from harness.rules import parse_covers
    with pytest.raises(ValueError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        parse_covers("R", raw)


def test_vcrypt_rules_shows_each_rules_cells_and_the_tests_exercising_them(tmp_path):
    from harness.commands.rules_table import rules_table
    lines = rules_table(SUITES, tmp_path / "no-reports", None)
    start = next(i for i, line in enumerate(lines) if line.startswith("OP-DECRYPT-OFF "))
    block = lines[start:next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("    "))]
    power = [line for line in block if line.startswith("    covers power:")]
    assert power and "suspended (" in power[0] and "NO TEST" not in power[0], block
    assert not [line for line in lines if line.startswith("    covers") and "NO TEST" in line]


def test_each_area_is_one_run_of_the_catalogue():
    """The report's matrix and the terminal table group rules by area in catalogue order: a family appended
    at the end of rules.yaml under an existing area (issue 25's KMS-MULTI, KMS-DEFAULT) split its area in two."""
    areas = [rule.area for rule in load_rules().values()]
    runs = [area for i, area in enumerate(areas) if i == 0 or areas[i - 1] != area]
    assert len(runs) == len(set(runs)), f"areas split across rules.yaml: {runs}"
