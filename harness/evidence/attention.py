"""What needs attention: the rules that did not pass, worst first, each with the test that decided it.

Every output a reader opens first (the terminal, report.html's first screen, summary.md, JUnit)
shows the same list, so it is computed once here from harness.evidence.verdicts. Verdict states
are handled generically: a state this module does not know (a newer verdicts.py may add one) is
shown by its name and ranked as needing attention, right after errors.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.evidence.verdicts import (DEVIATION, INTERRUPTED, NOT_APPLICABLE, NOT_RUN, PARTLY, VERDICT_LABELS,
                                       VERDICT_ORDER, Run, RuleVerdict, TestResult, load_evidence)

# Verdicts that need nobody's attention: demonstrated, or outside the target's version.
QUIET = frozenset({"passed", NOT_APPLICABLE})
# The test status that decides each verdict (verdicts.verdict_of's order).
_DRIVER: dict[str, tuple[str, ...]] = {"failed": ("failed",), "error": ("error",), DEVIATION: (DEVIATION,),
                                       NOT_RUN: (INTERRUPTED,), "skipped": ("skipped",), PARTLY: ("skipped",)}
_RANK = {verdict: float(i) for i, verdict in enumerate(VERDICT_ORDER)}
_UNKNOWN_RANK = 1.5  # after "error": a state nobody taught the writers about is looked at early
_EXCEPTION = re.compile(r"^((?:[a-z_]\w*\.)*[A-Z]\w*):\s")  # "harness.checks.NotRefused: ..."


def rank(verdict: str) -> float:
    """Sort key, worst first; an unknown verdict ranks as needing attention."""
    return _RANK.get(verdict, _UNKNOWN_RANK)


def needs_attention(verdict: str) -> bool:
    return verdict not in QUIET


def label(verdict: str) -> str:
    """The verdict's label everywhere; an unknown one is shown by its name."""
    return VERDICT_LABELS.get(verdict, verdict)


def _shown(test: TestResult) -> bool:
    return test.status == "passed" or (test.status == "skipped" and test.category == "version_skip")


def deciding_test(verdict: RuleVerdict) -> TestResult | None:
    """The test that gave the rule its verdict: verdicts.py's own choice when it offers one, else the
    first test whose status drives the verdict, else the first test that did not pass."""
    offered = getattr(verdict, "deciding", None)
    if isinstance(offered, TestResult):
        return offered
    if verdict.verdict in QUIET:
        return None
    wanted = _DRIVER.get(verdict.verdict, ())
    return (next((t for t in verdict.tests if t.status in wanted and not _shown(t)), None)
            or next((t for t in verdict.tests if not _shown(t)), None))


@dataclass(frozen=True)
class AttentionItem:
    """One rule that did not pass, as every writer shows it."""

    rule_id: str
    verdict: str
    passed: int
    total: int
    test: TestResult | None  # the deciding test (None: no test of this rule ran)
    fault_class: str          # the vSphere fault or exception behind the cause ("" if none was recorded)
    cause: str                # in full, never cut

    @property
    def label(self) -> str:
        return label(self.verdict)

    @property
    def test_name(self) -> str:
        return (self.test.name or self.test.nodeid) if self.test else "no test ran"

    def link(self, base: str = "report.html") -> str:
        return f"{base}#rule-{self.rule_id}"


def _fault_class(run_dir: Path | None, test: TestResult) -> str:
    """The last vSphere fault the deciding test saw, else the exception its message starts with."""
    if run_dir is not None and test.evidence_file and test.status in ("failed", "error"):  # skips have no fault
        evidence, _ = load_evidence(run_dir, test)
        faults = [c.fault_class for c in (evidence.calls if evidence else ()) if c.fault_class]
        if faults:
            return faults[-1]
    match = _EXCEPTION.match((test.message or "").strip())
    return match.group(1) if match else ""


def _cause(test: TestResult | None, fault_class: str) -> str:
    """The deciding test's message in full (less a leading exception name already shown as the fault class)."""
    if test is None:
        return "no test of this rule ran in this run"
    text = (test.message or "").strip()
    if fault_class and text.startswith(fault_class + ":"):
        text = text[len(fault_class) + 1:].strip()
    return text or f"{test.status}, no reason recorded"


def attention(verdicts: Mapping[str, RuleVerdict], run_dir: Path | None = None,
              selected_only: bool = False) -> list[AttentionItem]:
    """Each rule that did not pass, worst first (catalogue order within a verdict).

    `selected_only`: leave out "not run" rules without any test (a --rules run did not select them).
    """
    order = {rid: i for i, rid in enumerate(verdicts)}
    items = []
    for rid, verdict in verdicts.items():
        if not needs_attention(verdict.verdict) or (selected_only and verdict.verdict == NOT_RUN and not verdict.tests):
            continue
        test = deciding_test(verdict)
        fault = _fault_class(run_dir, test) if test else ""
        items.append(AttentionItem(rid, verdict.verdict, verdict.count("passed"), len(verdict.tests), test,
                                   fault, _cause(test, fault)))
    return sorted(items, key=lambda item: (rank(item.verdict), order[item.rule_id]))


@dataclass(frozen=True)
class Banner:
    """A line that goes before anything else: the compliance verdict, seeded defects."""

    kind: str   # "compliance-fail", "compliance-pass", "defects"
    text: str
    rules: tuple[str, ...] = ()  # compliance: the rules that keep it from passing, worst first

    def brief(self, limit: int = 10) -> str:
        """The text with at most `limit` rules named and the rest counted (a banner is read at a glance)."""
        if len(self.rules) <= limit:
            return self.text
        return f"Compliance: FAIL — {', '.join(self.rules[:limit])} and {len(self.rules) - limit} more"

    @property
    def bad(self) -> bool:
        return self.kind != "compliance-pass"


def banners(run: Run, verdicts: Mapping[str, RuleVerdict]) -> list[Banner]:
    """Compliance mode's verdict (red/green), then the seeded fake defects (the target was broken on purpose)."""
    out = []
    if run.compliance:
        gaps = [rid for rid, v in verdicts.items() if not v.compliant]
        gaps.sort(key=lambda rid: (rank(verdicts[rid].verdict), list(verdicts).index(rid)))
        if gaps:
            out.append(Banner("compliance-fail", f"Compliance: FAIL — {', '.join(gaps)}", tuple(gaps)))
        else:
            out.append(Banner("compliance-pass", "Compliance: PASS — every applicable rule demonstrated"))
    if run.fake_defects:
        out.append(Banner("defects", f"Seeded fake defects: {', '.join(run.fake_defects)} — the fake vCenter was "
                                     "broken on purpose; its failures show the tests can fail, not a product problem"))
    return out

