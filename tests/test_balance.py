"""tests/balance.py: the slowest modules are handed out first and the modules of a shared run are one scope."""
from __future__ import annotations

from pathlib import Path

from tests import balance

ROOT = Path(__file__).resolve().parent.parent


def test_every_module_named_exists():
    """A renamed module would silently lose its place (and its shared run would be made twice)."""
    named = set(balance.COST_S) | set(balance.SHARED_RUNS)
    assert [m for m in sorted(named) if not (ROOT / m).is_file()] == []


def test_the_slowest_scopes_come_first_and_unlisted_modules_keep_their_order():
    nodeids = ["tests/test_layers.py::test_a", "tests/test_merge.py::test_b", "tests/test_selftest.py::test_c",
               "tests/test_audit.py::test_d", "tests/test_run_strict_kms.py::test_e"]
    ordered = sorted(nodeids, key=lambda n: -balance.module_cost(n))
    assert ordered[:3] == ["tests/test_selftest.py::test_c", "tests/test_run_strict_kms.py::test_e",
                           "tests/test_merge.py::test_b"]   # test_merge: its shared scope's cost (316)
    assert ordered[3:] == ["tests/test_layers.py::test_a", "tests/test_audit.py::test_d"]


def test_the_readers_of_a_shared_run_are_one_xdist_scope():
    scope = object.__new__(balance.CostOrderedScopes)._split_scope   # the split needs no scheduler state
    assert scope("tests/test_run_fake.py::test_x") == scope("tests/test_merge.py::test_y") \
        == scope("tests/test_run_fake_67.py::test_z")
    assert scope("tests/test_layers.py::test_a") == "tests/test_layers.py"
    assert scope("tests/test_layers.py::test_a") != scope("tests/test_audit.py::test_b")
