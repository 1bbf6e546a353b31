"""`vcrypt selftest`: prove every rule's tests can fail, by running them against seeded defects.

For each defect of the fake (harness/fakevc/defects.py) the tests of its rule run against a fake
with that defect on: at least one must FAIL (a product failure; errors and skips do not count).
With no defect, the same tests must all pass. A missed defect means a verdict that cannot fail.
"""
from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from harness.rules import load_rules

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Outcome:
    rule: str
    defect: str
    caught: bool
    failed_tests: list[str] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)
    problem: str = ""


def _inventory_for(rule_id: str, defect: str | None, folder: Path) -> Path:
    """A copy of the fake inventory (6.7 for pre-7 rules) with the defect switched on (and the fake
    options the defect shows under, e.g. vCenters that do not trust each other)."""
    from harness.fakevc.catalogue import load_all
    base = ROOT / "inventories" / ("fake-67.yaml" if load_rules()[rule_id].until else "fake.yaml")
    data = yaml.safe_load(base.read_text(encoding="utf-8"))
    options = dict(load_all()[defect].fake_options) if defect else {}
    for entry in data["vcenters"]:
        entry.setdefault("fake", {})["defects"] = [defect] if defect else []
        entry["fake"].update(options)
    path = folder / f"inventory-{defect or 'baseline'}-{rule_id}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _run_rule_tests(rules: list[str], defect: str | None, folder: Path, suites: Path) -> dict[str, tuple[str, list[str]]]:
    """Run the tests of `rules` against the fake (with `defect`); nodeid -> (outcome, rules)."""
    label = defect or "baseline"
    inventory = _inventory_for(rules[0], defect, folder)
    run_dir = folder / f"run-{label}-{rules[0]}"
    cmd = [sys.executable, "-m", "pytest", str(suites), "--inventory", str(inventory), "--run-dir", str(run_dir),
           "--rules", ",".join(rules), "-q", "-p", "no:cacheprovider"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    results_file = run_dir / "results.json"
    if not results_file.exists():
        raise RuntimeError(f"{label}: pytest wrote no results (exit {proc.returncode}): {proc.stdout[-800:]}{proc.stderr[-800:]}")
    tests = json.loads(results_file.read_text(encoding="utf-8"))["tests"]
    return {t["nodeid"]: (t["outcome"], t["rules"]) for t in tests}


def check_defect(rule: str, defect: str, folder: Path, suites: Path) -> Outcome:
    try:
        results = _run_rule_tests([rule], defect, folder, suites)
    except Exception as err:  # noqa: BLE001 - reported as a missed defect with the cause
        return Outcome(rule, defect, False, problem=str(err))
    from harness.fakevc.catalogue import load_all
    caught_as = load_all()[defect].caught_as
    failed = [nodeid for nodeid, (outcome, _) in results.items() if outcome == caught_as]
    return Outcome(rule, defect, bool(failed), failed, {n: o for n, (o, _) in results.items()},
                   "" if results else "no test of this rule ran")


def baseline(folder: Path, suites: Path) -> list[Outcome]:
    """With no defect, every rule's tests pass (pre-7 rules on the 6.7 fake, the rest on 7.0.3)."""
    catalogue = load_rules()
    groups = {"7": [r for r, rule in catalogue.items() if not rule.until],
              "6.7": [r for r, rule in catalogue.items() if rule.until]}
    outcomes = []
    for rules in groups.values():
        results = _run_rule_tests(rules, None, folder, suites)
        bad = {n: o for n, (o, _) in results.items() if o != "passed"}
        outcomes.append(Outcome(",".join(rules[:3]) + ("..." if len(rules) > 3 else ""), "(none)", not bad,
                                sorted(bad), problem="; ".join(f"{n}: {o}" for n, o in bad.items())))
    return outcomes


def run_selftest(workers: int = 2, only_rules: set[str] | None = None, only_defects: set[str] | None = None,
                 suites: Path | None = None) -> tuple[list[Outcome], list[Outcome]]:
    """(baseline outcomes, defect outcomes)."""
    from harness.fakevc.catalogue import load_all
    suites = suites or ROOT / "suites"
    defects = sorted(load_all().values(), key=lambda d: (d.rule, d.name))
    if only_rules:
        defects = [d for d in defects if d.rule in only_rules]
    if only_defects:
        defects = [d for d in defects if d.name in only_defects]
    with tempfile.TemporaryDirectory(prefix="vcrypt-selftest-") as tmp:
        folder = Path(tmp)
        base = baseline(folder, suites) if not (only_rules or only_defects) else []
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = [pool.submit(check_defect, d.rule, d.name, folder, suites) for d in defects]
            results = [f.result() for f in futures]
    return base, results


def rules_without_defects() -> list[str]:
    from harness.fakevc.catalogue import load_all
    covered = {d.rule for d in load_all().values()}
    return [rid for rid in load_rules() if rid not in covered]
