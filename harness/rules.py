"""The rule catalogue as data: IDs, areas, versions and kinds, loaded from harness/data/rules.yaml."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

import yaml


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


@functools.cache
def load_rules() -> dict[str, Rule]:
    """Rule id -> Rule, in catalogue order."""
    text = resources.files("harness").joinpath("data/rules.yaml").read_text(encoding="utf-8")
    return {entry["id"]: Rule(**entry) for entry in yaml.safe_load(text)["rules"]}
