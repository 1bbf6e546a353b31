"""Known deviations of a simulator from vSphere (harness/data/deviations/<target>.yaml), strictly.

Why strict xfail: a listed test on a matching target is expected to fail the way the list says; it
is then reported as "deviation" (not demonstrated on this target, known deviation) rather than a
pass or a product failure. Only product-failure exceptions count (AssertionError, which covers the
harness's NotRefused and KeyGenerationFailed); an environment error stays an error. If the
simulator starts to comply, the test XPASSes, pytest reports it failed, and the run goes red until
the entry is removed. Each entry names the rule, the test_id (optionally "[param]"), what the
simulator does, the govmomi file:function that shows it, the failure it expects (`fails_with`: a
pattern of the failure message, or a failed check's `what` and observed value) and the govmomi
versions it was seen on. Issue 23: any other failure of a listed test is a product failure, and on
a vcsim of an unlisted (or unknown) govmomi version the entry is not applied and the run says so.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEVIATIONS_DIR = Path(__file__).resolve().parents[1] / "data" / "deviations"
PRODUCT_FAILURES: tuple[type[BaseException], ...] = (AssertionError,)
DEVIATION_OUTCOME, DEVIATION_CATEGORY = "deviation", "known_deviation"


class ExpectedFailure(BaseModel):
    """The failure an entry describes: `message` (a regular expression searched in "Type: message"), or
    a failed recorded check whose `what` and `observed` match the two patterns."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    message: str | None = None
    check: str | None = None
    observed: str | None = None

    @model_validator(mode="after")
    def _one_form(self) -> "ExpectedFailure":
        if (self.message is None) == (self.check is None and self.observed is None):
            raise ValueError("give `message`, or `check` and `observed`")
        if self.message is None and (self.check is None or self.observed is None):
            raise ValueError("`check` needs `observed` (and the other way round)")
        for pattern in (self.message, self.check, self.observed):
            try:
                re.compile(pattern or "")
            except re.error as err:
                raise ValueError(f"not a regular expression: {pattern!r} ({err})") from None
        return self

    def matched_by(self, failure: str, checks: Iterable[dict[str, Any]]) -> bool:
        if self.message is not None:
            return re.search(self.message, failure) is not None
        return any(not c.get("passed") and re.search(str(self.check), str(c.get("what", "")))
                   and re.search(str(self.observed), str(c.get("observed", ""))) for c in checks)

    def __str__(self) -> str:
        return (f"message /{self.message}/" if self.message is not None
                else f"check /{self.check}/ observed /{self.observed}/")


class Deviation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    rule: str
    test: str = Field(pattern=r"^[0-9a-f-]{36}(\[[^\]]+\])?$")
    vcsim_does: str
    source: str = Field(pattern=r"^[\w./-]+\.go:[\w.]+$")
    fails_with: ExpectedFailure
    govmomi: tuple[str, ...] = Field(min_length=1)  # the versions it was seen on

    @field_validator("govmomi", mode="before")
    @classmethod
    def _versions(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    def matches(self, test_id: str, evidence_id: str) -> bool:
        return self.test in (test_id, evidence_id)

    @property
    def reason(self) -> str:
        return f"deviation: {self.vcsim_does} ({self.source}, govmomi {', '.join(self.govmomi)})"

    def not_applied_because(self, running: Iterable[str | None]) -> str | None:
        """Why this entry does not apply to the vcsims running now (None: it applies)."""
        found = list(running)
        versions = sorted({str(v) for v in found if v})
        if not found or any(not v for v in found):
            return (f"deviation entry {self.test} not applied: the running vcsim's govmomi version is unknown "
                    f"(the entry was seen on {', '.join(self.govmomi)})")
        unlisted = [v for v in versions if v not in self.govmomi]
        if unlisted:
            return (f"deviation entry {self.test} not applied: the running vcsim is govmomi {', '.join(unlisted)}, "
                    f"the entry was seen on {', '.join(self.govmomi)}")
        return None


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
            item.stash[DEVIATION_KEY] = deviation
            applied.append(deviation)
    return applied


DEVIATION_KEY: pytest.StashKey[Deviation] = pytest.StashKey()


def judge(item: pytest.Item, call: pytest.CallInfo[Any], report: pytest.TestReport,
          running: Iterable[str | None], checks: Iterable[dict[str, Any]]) -> str | None:
    """Hold a listed test's call report to its entry; returns what the run must say, if anything.

    On an unlisted govmomi version the xfail is undone (a failure is a product failure, a pass a
    pass). On a listed one, an xfail whose failure is not the entry's becomes a product failure.
    """
    deviation = item.stash.get(DEVIATION_KEY, None)
    if deviation is None or report.when != "call":
        return None
    xfailed = is_deviation(report)
    xpassed = report.failed and str(report.longrepr).startswith("[XPASS(strict)]")
    if not (xfailed or xpassed):
        return None  # an environment error or any other outcome stands as it is
    why_not = deviation.not_applied_because(running)
    if why_not is not None:
        if xfailed:
            report.outcome = "failed"
            del report.wasxfail
        else:
            report.outcome, report.longrepr = "passed", None
        return why_not
    if xfailed and call.excinfo is not None:
        failure = f"{call.excinfo.typename}: {call.excinfo.value}"
        if not deviation.fails_with.matched_by(failure, checks):
            report.outcome = "failed"
            del report.wasxfail
            return (f"not the failure deviation entry {deviation.test} expects ({deviation.fails_with}), so a "
                    f"product failure: {failure.splitlines()[0][:500]}")
    return None


def is_deviation(report: Any) -> bool:
    """An xfailed report: a listed test that failed as its entry says."""
    return bool(getattr(report, "wasxfail", "")) and report.skipped


def reason_of(report: Any) -> str:
    return str(getattr(report, "wasxfail", "")).removeprefix("reason: ")
