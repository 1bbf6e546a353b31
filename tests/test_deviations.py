"""The vcsim deviation list is well formed: real rules, real tests of those rules, real govmomi sources."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.run.deviations import DEVIATIONS_DIR, load
from harness.rules import load_rules
from harness.vcsim.pinned import GOVMOMI_VERSION

ROOT = Path(__file__).resolve().parent.parent
MODULE_CACHE = Path.home() / "go" / "pkg" / "mod" / "github.com" / "vmware" / f"govmomi@{GOVMOMI_VERSION}"


def _entries():  # noqa: ANN202
    loaded = load("vcsim")
    assert loaded is not None and loaded.path == DEVIATIONS_DIR / "vcsim.yaml"
    return loaded.listed.deviations


def test_each_entry_names_a_rule_and_a_test_of_that_rule():
    suites = "\n".join(p.read_text() for p in (ROOT / "suites").glob("test_*.py"))
    catalogue = load_rules()
    for entry in _entries():
        assert entry.rule in catalogue, entry
        test_id = entry.test.split("[")[0]
        block = re.search(r'((?:@pytest\.mark\.[^\n]*\n)*)@pytest\.mark\.test_id\("' + test_id, suites)
        marks = suites[max(0, suites.index(test_id) - 400):suites.index(test_id)]
        assert block is not None and f'rule("{entry.rule}")' in marks, entry
        assert GOVMOMI_VERSION in entry.govmomi, "seen on the pinned version"


def test_each_source_names_a_function_of_the_pinned_govmomi():
    if not MODULE_CACHE.is_dir():
        pytest.skip(f"govmomi {GOVMOMI_VERSION} is not in the Go module cache ({MODULE_CACHE})")
    for entry in _entries():
        file, function = entry.source.split(":")
        name = function.split(".")[-1]
        text = (MODULE_CACHE / file).read_text()
        assert re.search(rf"^func (\([^)]*\) )?{re.escape(name)}\(", text, re.M), entry

