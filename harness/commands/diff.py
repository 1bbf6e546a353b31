"""`vcrypt diff RUN_A RUN_B`: what changed between two runs, new failures first.

The question a nightly job asks every morning: did anything regress since yesterday? Rules are
compared by id and tests by their permanent test id (with the parameter set), so a renamed test
is still the same test. Verdicts come from harness.evidence.verdicts; a verdict this module does
not know ranks as "in between" and counts as a change, never silently as a pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.evidence.verdicts import TestResult, load_catalogue, load_results, rule_verdicts

# How bad a verdict is; a regression is a move to a worse verdict that is itself a problem.
RANK = {"passed": 0, "not applicable": 0, "skipped": 1, "not run": 1, "partly demonstrated": 2,
        "error": 3, "deviation": 4, "failed": 4}
PROBLEMS = frozenset({"failed", "error", "deviation", "partly demonstrated"})
ABSENT = "not run"


@dataclass(frozen=True)
class Change:
    kind: str      # "rule" or "test"
    key: str       # rule id, or test id
    label: str     # what to print (rule id, or test name and rules)
    before: str
    after: str

    @property
    def regressed(self) -> bool:
        return self.after in PROBLEMS and RANK.get(self.after, 2) > RANK.get(self.before, 2)

    @property
    def improved(self) -> bool:
        return self.before in PROBLEMS and RANK.get(self.after, 2) < RANK.get(self.before, 2)

    def line(self) -> str:
        return f"  {self.kind} {self.label}: {self.before} -> {self.after}"


@dataclass
class RunDiff:
    changes: list[Change] = field(default_factory=list)
    dropped: int = 0   # rules or tests that ran in A but not in B (a narrower selection): not compared

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.regressed]

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0

    def lines(self, run_a: Path, run_b: Path) -> list[str]:
        out = [f"vcrypt diff {run_a} -> {run_b}"] + target_warning(run_a, run_b)
        groups = (("new failures", self.regressions), ("fixed", [c for c in self.changes if c.improved]),
                  ("other changes", [c for c in self.changes if not c.regressed and not c.improved]))
        for title, changes in groups:
            if changes:
                out.append(f"{title} ({len(changes)}):")
                out += [c.line() for c in changes]
        if not self.changes:
            out.append("no verdict changed")
        if self.dropped:
            out.append(f"{self.dropped} rule(s)/test(s) ran in the first run only (outside the second run's "
                       "selection): not compared")
        return out


def _target(run_dir: Path) -> str:
    """`fake 7.0.3` / `real 6.7`: the target kind and the versions its vCenters reported (run.json)."""
    from harness.evidence.verdicts import load_run
    try:
        run = load_run(run_dir)
    except (OSError, ValueError):
        return ""
    versions = sorted({vc.version for vc in run.vcenters if vc.version})
    return f"{run.target} {'/'.join(versions)}".strip()


def target_warning(run_a: Path, run_b: Path) -> list[str]:
    """One line when the runs tested different targets: their verdicts differ for that reason too."""
    a, b = _target(run_a), _target(run_b)
    if a and b and a != b:
        return [f"warning: the runs tested different targets ({a} -> {b}); rules differ by version and "
                "capability, not only by regression"]
    return []


def _test_key(test: TestResult) -> str:
    return test.test_id or test.nodeid


def _test_statuses(tests: list[TestResult]) -> dict[str, tuple[str, str]]:
    return {_test_key(t): (f"{t.name or t.nodeid} [{','.join(t.rules)}]", t.status) for t in tests}


def diff_runs(run_a: Path, run_b: Path) -> RunDiff:
    """Rule and test verdict changes from run_a to run_b (OSError/ValueError for an unreadable folder)."""
    tests_a, tests_b = load_results(run_a), load_results(run_b)
    catalogue = load_catalogue()
    rules_a, rules_b = rule_verdicts(catalogue, tests_a), rule_verdicts(catalogue, tests_b)
    result = RunDiff()
    for rid, verdict_b in rules_b.items():
        before = rules_a[rid].verdict if rid in rules_a else ABSENT
        after = verdict_b.verdict
        if after == ABSENT and before != ABSENT:
            result.dropped += 1
        elif before != after:
            result.changes.append(Change("rule", rid, rid, before, after))
    statuses_a, statuses_b = _test_statuses(tests_a), _test_statuses(tests_b)
    for key, (label, after) in statuses_b.items():
        before = statuses_a.get(key, (label, ABSENT))[1]
        if before != after:
            result.changes.append(Change("test", key, label, before, after))
    result.dropped += len(set(statuses_a) - set(statuses_b))
    result.changes.sort(key=lambda c: (not c.regressed, c.kind != "rule"))
    return result
