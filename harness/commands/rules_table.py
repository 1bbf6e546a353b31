"""The table `vcrypt rules` prints: each catalogue rule, its suite tests and, after a run, its verdict.

The verdicts come from one named run (the newest by start time unless `--run` is given), and the
table says which, so nobody reads yesterday's verdicts as today's. "instances" counts the test
instances that ran for the rule (a parametrized test runs once per parameter set). Under a rule
whose text names states or principals (`covers` in data/rules.yaml), one line per dimension says
how many suite tests have an instance exercising each value, or NO TEST.
"""
from __future__ import annotations

from pathlib import Path

from harness.commands.coverage import cell_coverage, rule_coverage
from harness.evidence.verdicts import load_catalogue, load_results, rule_verdicts
from harness.rules import load_rules
from harness.run.runfolders import newest_run

HEADER = f"{'rule':26} {'since':8} {'kind':11} {'verdict':20} {'tests':>5} {'instances':>9}"


def rules_table(suites: Path, reports: Path, run_dir: Path | None) -> list[str]:
    """Lines to print; OSError/ValueError when `run_dir` is not a readable run folder."""
    coverage = rule_coverage(suites)
    cells = cell_coverage(suites)
    source = run_dir or newest_run(reports)
    verdicts = {}
    if source is not None:
        verdicts = rule_verdicts(load_catalogue(), load_results(source))
    lines = [f"verdicts from run {source.name} ({source})" if source else
             f"no run under {reports} yet: verdicts and instances appear after vcrypt run", HEADER]
    for rule in load_rules().values():
        tests = coverage.get(rule.id, [])
        verdict = verdicts.get(rule.id)
        label = verdict.verdict if verdict else "-"
        instances = str(len(verdict.tests)) if verdict else "-"
        lines.append(f"{rule.id:26} {rule.since:8} {rule.kind:11} {label:20} {len(tests):>5} {instances:>9}")
        lines.append(f"    source: {rule.source}")
        lines += [f"    {test}" for test in tests]
        lines += covers_lines(cells.get(rule.id, {}))
    return lines


def covers_lines(cells: dict[tuple[str, str], list[str]]) -> list[str]:
    """`    covers power: on (1 test), suspended (NO TEST), ...`, one line per dimension."""
    by_dim: dict[str, list[str]] = {}
    for (dim, value), tests in cells.items():
        count = f"{len(tests)} test{'s' if len(tests) != 1 else ''}" if tests else "NO TEST"
        by_dim.setdefault(dim, []).append(f"{value} ({count})")
    return [f"    covers {dim}: {', '.join(values)}" for dim, values in by_dim.items()]
