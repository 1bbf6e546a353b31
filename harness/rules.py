"""The rule catalogue as data: IDs, areas, versions and kinds, loaded from harness/data/rules.yaml."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources

import yaml

# The states and principals a rule's text can name (`covers:` in data/rules.yaml), each a test
# instance must exercise (issue 23: a rule is tested as wide as its text). Only these dimensions and
# values are allowed, so a typo cannot make a cell nobody checks.
DIMENSIONS: dict[str, tuple[str, ...]] = {
    "power": ("on", "off", "suspended"),
    "principal": ("user", "group"),
    "snapshots": ("none", "single", "chain", "tree"),
    "scope": ("same-vcenter", "cross-vcenter"),
}


@dataclass(frozen=True)
class Rule:
    id: str
    area: str
    area_title: str
    since: str
    until: str | None
    kind: str          # "safe" or "destructive"
    kind_note: str
    text: str
    observe: str
    source: str        # the public document the rule rests on (required: a rule nobody can look up is an opinion)
    covers: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False)  # dimension -> values its text names

    @property
    def cells(self) -> list[tuple[str, str]]:
        """(dimension, value) pairs the rule's text names, in catalogue order."""
        return [(dim, value) for dim, values in self.covers.items() for value in values]

    @property
    def since_tuple(self) -> tuple[int, ...]:
        return version_tuple(self.since)

    def applies_to(self, version: tuple[int, ...]) -> bool:
        """Whether the rule describes a vCenter of this version (pre-7 rules stop at 7.0)."""
        if version < self.since_tuple:
            return False
        return not (self.until and version[:2] > version_tuple(self.until)[:2])

    @property
    def severity(self) -> str:
        """Allure severity: refusals and data protection are critical, the rest normal."""
        if self.area in ("access_data", "cross_vcenter", "operations") or "refused" in self.text:
            return "critical"
        return "normal"


def version_tuple(text: str) -> tuple[int, ...]:
    """'7.0 U1' -> (7, 0, 1); '6.7.3' -> (6, 7, 3)."""
    text = text.replace(" U", ".")
    parts = []
    for part in text.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if digits:
            parts.append(int(digits))
    return tuple(parts)


def parse_covers(rule_id: str, raw: object) -> dict[str, tuple[str, ...]]:
    """A rule's `covers:` mapping, checked against DIMENSIONS; ValueError naming the rule and key."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"rules.yaml: {rule_id}.covers: expected a mapping of dimension -> values")
    out: dict[str, tuple[str, ...]] = {}
    for dim, values in raw.items():
        allowed = DIMENSIONS.get(dim)
        if allowed is None:
            raise ValueError(f"rules.yaml: {rule_id}.covers.{dim}: unknown dimension (one of {', '.join(DIMENSIONS)})")
        values = (values,) if isinstance(values, str) else tuple(values or ())
        wrong = [v for v in values if v not in allowed]
        if wrong or not values:
            raise ValueError(f"rules.yaml: {rule_id}.covers.{dim}: {wrong or 'no values'} not among {', '.join(allowed)}")
        out[dim] = values
    return out


@functools.cache
def load_rules() -> dict[str, Rule]:
    """Rule id -> Rule, in catalogue order."""
    text = resources.files("harness").joinpath("data/rules.yaml").read_text(encoding="utf-8")
    rules = {}
    for entry in yaml.safe_load(text)["rules"]:
        covers = parse_covers(entry["id"], entry.pop("covers", None))
        if not str(entry.get("source") or "").strip():
            raise ValueError(f"rules.yaml: {entry['id']}.source: missing (cite the public document the rule rests on)")
        rules[entry["id"]] = Rule(**entry, covers=covers)
    return rules
