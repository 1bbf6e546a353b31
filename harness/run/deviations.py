"""Known deviations of a simulator from vSphere (harness/data/deviations/<target>.yaml), strictly.

Why strict xfail: a listed test on a matching target is expected to fail the way the list says; it
is then reported as "deviation" (not demonstrated on this target, known deviation) rather than a
pass or a product failure. Only product-failure exceptions count (AssertionError, which covers the
harness's NotRefused and KeyGenerationFailed); an environment error stays an error. If the
simulator starts to comply, the test XPASSes, pytest reports it failed, and the run goes red until
the entry is removed. Each entry names the rule, the test_id (optionally "[param]"), what the
simulator does, the govmomi file:function that shows it, and the govmomi version it was seen on.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

DEVIATIONS_DIR = Path(__file__).resolve().parents[1] / "data" / "deviations"
PRODUCT_FAILURES: tuple[type[BaseException], ...] = (AssertionError,)
DEVIATION_OUTCOME, DEVIATION_CATEGORY = "deviation", "known_deviation"


class Deviation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    rule: str
    test: str = Field(pattern=r"^[0-9a-f-]{36}(\[[^\]]+\])?$")
    vcsim_does: str
    source: str = Field(pattern=r"^[\w./-]+\.go:[\w.]+$")
    govmomi: str

    def matches(self, test_id: str, evidence_id: str) -> bool:
        return self.test in (test_id, evidence_id)

    @property
    def reason(self) -> str:
        return f"deviation: {self.vcsim_does} ({self.source}, govmomi {self.govmomi})"


class DeviationList(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    target: str
    deviations: list[Deviation]


@dataclass(frozen=True)
class Loaded:
    path: Path
    listed: DeviationList


def load(target: str, directory: Path = DEVIATIONS_DIR) -> Loaded | None:
    """The deviation list of a target kind (`vcsim`), or None when it has none."""
    path = directory / f"{target}.yaml"
    if not path.exists():
        return None
    return Loaded(path, DeviationList.model_validate(yaml.safe_load(path.read_text(encoding="utf-8"))))


def mark_known_deviations(config: pytest.Config, items: list[pytest.Item], target: str,
                          directory: Path | None = None) -> list[Deviation]:
    """Add a strict xfail to each listed test on a matching target; returns the entries applied."""
    loaded = load(target, directory or Path(os.environ.get("VCRYPT_DEVIATIONS_DIR") or DEVIATIONS_DIR))
    if loaded is None:
        return []
    from harness.run.item_ids import evidence_id
    applied: list[Deviation] = []
    for item in items:
        marker = item.get_closest_marker("test_id")
        if marker is None:
            continue
        found = [d for d in loaded.listed.deviations if d.matches(marker.args[0], evidence_id(item))]
        rules = {r for m in item.iter_markers("rule") for r in m.args}
        for deviation in found:
            if deviation.rule not in rules:
                raise pytest.UsageError(f"{loaded.path}: {deviation.test} is not a test of rule {deviation.rule}")
            item.add_marker(pytest.mark.xfail(strict=True, reason=deviation.reason, raises=PRODUCT_FAILURES))
            applied.append(deviation)
    return applied


def is_deviation(report: Any) -> bool:
    """An xfailed report: a listed test that failed as its entry says."""
    return bool(getattr(report, "wasxfail", "")) and report.skipped


def reason_of(report: Any) -> str:
    return str(getattr(report, "wasxfail", "")).removeprefix("reason: ")
