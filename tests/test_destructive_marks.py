"""Irreversible and lab-wide changes are `destructive` (issue 21 point 5): they run only where the
inventory says `safety.allow_destructive: true`.

- HOST-CRYPTO-MODE makes a host crypto-safe: going back needs CryptoManagerHostDisable and a reboot.
- XVC-DEST-KMS arranges a destination host outside encryption mode on vc-b and makes it crypto-safe.
- A key provider registered at an address where no KMS answers raises vCenter's KMS-health alarm and
  critical events on the whole vCenter.

Reproduced first: before the fix none of the tests below carried the marker, so `allow_mutations`
alone let them change a lab's hosts and alarms.
"""
from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any, Iterator

import pytest

SUITES = Path(__file__).resolve().parents[1] / "suites"
DESTRUCTIVE_RULES = {"HOST-CRYPTO-MODE", "XVC-DEST-KMS"}
DESTRUCTIVE_FIXTURES = {"unreachable_kms"}


def _suite_tests() -> Iterator[tuple[str, Any]]:
    for path in sorted(SUITES.glob("test_*.py")):
        module = importlib.import_module(f"suites.{path.stem}")
        for name, fn in vars(module).items():
            if name.startswith("test_") and inspect.isfunction(fn):
                yield f"{path.name}::{name}", fn


def _marks(fn: Any) -> list[Any]:
    return list(getattr(fn, "pytestmark", []))


def _needs_destructive(fn: Any) -> str | None:
    rules = {arg for mark in _marks(fn) if mark.name == "rule" for arg in mark.args}
    if rules & DESTRUCTIVE_RULES:
        return f"rule {sorted(rules & DESTRUCTIVE_RULES)[0]}"
    fixtures = set(inspect.signature(fn).parameters) & DESTRUCTIVE_FIXTURES
    return f"fixture {sorted(fixtures)[0]}" if fixtures else None


CASES = [(nodeid, fn, why) for nodeid, fn in _suite_tests() if (why := _needs_destructive(fn))]


def test_the_cases_are_found() -> None:
    """Guard against a vacuous pass: the rules and the fixture are used by tests."""
    whys = {why.split()[0] + " " + why.split()[1] for _, _, why in CASES}
    assert {"rule HOST-CRYPTO-MODE", "rule XVC-DEST-KMS", "fixture unreachable_kms"} <= whys, whys


@pytest.mark.parametrize("nodeid,fn,why", CASES, ids=[c[0] for c in CASES])
def test_irreversible_or_lab_wide_tests_are_destructive(nodeid: str, fn: Any, why: str) -> None:
    assert any(mark.name == "destructive" for mark in _marks(fn)), \
        f"{nodeid} ({why}) changes a lab irreversibly or vCenter-wide but is not marked destructive"
