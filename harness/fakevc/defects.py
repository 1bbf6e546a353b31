"""Seeded defects: switches that make the fake violate one rule the way a buggy vCenter could.

They prove every rule's tests can fail (`vcrypt selftest`). Defects are reachable only through a
fake target's inventory (`fake: {defects: [...]}`), never on vcsim or a real vCenter. Each
behaviour module registers the defects of its rules here with `defect(...)` and asks
`world.defects.on(name)` at the point where the bug would be; catalogue.py lists those modules
(`catalogue.load_all()` is the full catalogue).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Defect:
    name: str
    rule: str
    description: str
    half_applied: bool = False   # the refusal fault is raised but the state changes anyway
    # The fake options (inventory `fake:` keys) the defect shows under, e.g. (("trust_peers", False),):
    # `vcrypt selftest` runs the rule's tests with them (and without, for the baseline of that rule).
    fake_options: tuple[tuple[str, object], ...] = ()
    # "failed" (a product failure) for a product bug; "error" for a defect that imitates the environment
    # (a refusal that is really a login failure must be reported as an error, never pass).
    caught_as: str = "failed"


CATALOGUE: dict[str, Defect] = {}


def defect(name: str, rule: str, description: str, half_applied: bool = False,
           fake_options: dict[str, object] | None = None, caught_as: str = "failed") -> str:
    """Register a defect (at import time of the behaviour that honours it); returns its name."""
    CATALOGUE[name] = Defect(name, rule, description, half_applied, tuple(sorted((fake_options or {}).items())),
                             caught_as)
    return name


class ActiveDefects:
    """The defects switched on for one fake world (names checked against the catalogue: world.py
    imports catalogue.py, which registers them all)."""

    def __init__(self, names: list[str] | tuple[str, ...] = ()) -> None:
        unknown = sorted(set(names) - set(CATALOGUE))
        if unknown:
            raise ValueError(f"unknown fake defect {unknown[0]!r}")
        self.names = frozenset(names)

    def on(self, name: str) -> bool:
        return name in self.names
