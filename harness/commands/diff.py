"""`vcrypt diff RUN_A RUN_B`: what changed between two runs, new failures first.

The question a nightly job asks every morning: did anything regress since yesterday? Rules are
compared by id and tests by their permanent test id (with the parameter set), so a renamed test
is still the same test. Verdicts come from harness.evidence.verdicts; a verdict this module does
not know ranks as "in between" and counts as a change, never silently as a pass.

Only complete runs are compared (issue 23): a folder without results.json or run.json, a
results.json that is not a list of tests, an interrupted run or one that demonstrated nothing is
refused (IncompleteRun, exit 2), since "no verdict changed" against it would be a false green. A
pass that became anything not shown (skipped, deviation, not run) is a regression; runs against
different targets or inventories are compared with a warning.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from harness.evidence.verdicts import (NOTHING_DEMONSTRATED, UNFINISHED, Run, TestResult, demonstrated_nothing,
                                       load_catalogue, load_run, results_from, rule_verdicts)

# How bad a verdict is; a regression is a move to a worse verdict that is itself a problem.
RANK = {"passed": 0, "not applicable": 0, "skipped": 1, "not run": 1, "partly demonstrated": 2,
        "error": 3, "deviation": 4, "failed": 4}
PROBLEMS = frozenset({"failed", "error", "deviation", "partly demonstrated"})
ABSENT = "not run"
SHOWN = frozenset({"passed", "not applicable"})


class IncompleteRun(ValueError):
    """A folder that is no complete run: the message names the folder and the problem."""


def load_complete(run_dir: Path) -> tuple[Run, list[TestResult]]:
    """The run and its tests, or IncompleteRun naming why the folder cannot be compared."""
    def read(name: str) -> object:
        path = Path(run_dir) / name
        if not path.is_file():
            raise IncompleteRun(f"{run_dir}: not a complete run folder (no {name})")
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise IncompleteRun(f"{run_dir}: {name} is not readable JSON ({err})") from None
    raw = read("results.json")
    entries = raw.get("tests") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not all(isinstance(t, dict) for t in entries):
        raise IncompleteRun(f"{run_dir}: results.json is not a run's results (an object with a \"tests\" list)")
    if not isinstance(read("run.json"), dict):
        raise IncompleteRun(f"{run_dir}: run.json is not a run's description (a JSON object)")
    run, tests = load_run(Path(run_dir)), results_from(entries)
    if demonstrated_nothing(tests):
        raise IncompleteRun(f"{run_dir}: {NOTHING_DEMONSTRATED}")
    unfinished = sum(1 for t in tests if t.status in UNFINISHED)
    if run.interrupted or unfinished:
        raise IncompleteRun(f"{run_dir}: the run was interrupted: {unfinished} selected test(s) never finished; "
                            "compare complete runs")
    return run, tests


@dataclass(frozen=True)
class Change:
    kind: str      # "rule" or "test"
    key: str       # rule id, or test id
    label: str     # what to print (rule id, or test name and rules)
    before: str
    after: str

    @property
    def regressed(self) -> bool:
        """Worse and a problem, or a pass that is no longer shown (skipped, deviation, not run)."""
        if self.before == "passed" and self.after not in SHOWN:
            return True
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
    warnings: list[str] = field(default_factory=list)  # the runs differ in target or inventory

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
        out += [f"warning: {w}" for w in self.warnings]  # last: the first lines stay the verdict changes
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


def _differences(run_a: Run, run_b: Run) -> list[str]:
    """Why the two runs may not be comparable: another inventory, another vCenter version or build."""
    out = []
    if run_a.inventory != run_b.inventory:
        out.append(f"the runs used different inventories ({run_a.inventory or '?'} -> {run_b.inventory or '?'})")
    sha_a = dict(run_a.provenance.get("inventory") or {}).get("sha256")
    sha_b = dict(run_b.provenance.get("inventory") or {}).get("sha256")
    if run_a.inventory == run_b.inventory and sha_a and sha_b and sha_a != sha_b:
        out.append(f"the inventory {run_b.inventory} changed between the runs (SHA-256 differs)")
    before = {v.name: f"{v.version or '?'} build {v.build or '?'}" for v in run_a.vcenters}
    for v in run_b.vcenters:
        after = f"{v.version or '?'} build {v.build or '?'}"
        if v.name in before and before[v.name] != after:
            out.append(f"{v.name}: {before[v.name]} -> {after}")
    return out


# pytest options that narrow a run's selection: a rule such a run has no test of was not asked for
_NARROWING = ("--rules", "--test-id", "-k", "-m", "--deselect", "--lf", "--last-failed")


def _filtered(run: Run) -> bool:
    """Whether the run selected less than the whole suite (then a rule absent from it was not asked for);
    a run.json without its command line (older runs) is taken as filtered: the absence is not blamed."""
    return not run.pytest_args or any(a.split("=", 1)[0] in _NARROWING or "::" in a or a.endswith(".py") for a in run.pytest_args)


def diff_runs(run_a: Path, run_b: Path) -> RunDiff:
    """Rule and test verdict changes from run_a to run_b (IncompleteRun for a folder that is no complete run)."""
    (run_info_a, tests_a), (run_info_b, tests_b) = load_complete(run_a), load_complete(run_b)
    catalogue = load_catalogue()
    rules_a, rules_b = rule_verdicts(catalogue, tests_a), rule_verdicts(catalogue, tests_b)
    result = RunDiff(warnings=_differences(run_info_a, run_info_b))
    for rid, verdict_b in rules_b.items():
        before = rules_a[rid].verdict if rid in rules_a else ABSENT
        after = verdict_b.verdict
        if not verdict_b.tests and before != ABSENT and _filtered(run_info_b):
            result.dropped += 1  # outside the second run's selection
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
