"""`vcrypt run` against two current vcsims (the pinned govmomi build), as the nightly job runs it.

What it must show: the rules vcsim implements are demonstrated (every test passed); every other
test is a listed deviation or a capability/version skip; no product failure and no error; the
same verdicts under `-n 2`; and the deviation list is strict both ways (an entry removed, or an
entry for a test vcsim passes, turns the run red).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.run.deviations import DEVIATIONS_DIR, load
from harness.rules import load_rules
from tests.procs import leftover_servers
from tests.vcsim.conftest import require_current_vcsim

ROOT = Path(__file__).resolve().parent.parent
DEMONSTRATED_FLOOR = {"OP-ENCRYPT-OFF", "OP-DECRYPT-OFF", "OP-DEEP-OFF-NO-SNAPSHOTS", "OP-STATE",
                      "OP-ENCRYPT-NO-SNAPSHOTS", "SNAP-BRANCHES", "PRIV-AUDIT"}
NIGHTLY_FLOOR = 8  # examples/nightly-vcsim.yml's --floor
_outcomes: dict[str, dict[str, str]] = {}


@pytest.fixture(scope="module", autouse=True)
def current_vcsim() -> None:
    require_current_vcsim()


def _run(tmp_path: Path, workers: str, rules: str | None = None, deviations: Path | None = None) -> tuple[int, str, Path]:
    reports = tmp_path / "reports"
    env = dict(os.environ, **({"VCRYPT_DEVIATIONS_DIR": str(deviations)} if deviations else {}))
    args = [sys.executable, "-c", "from harness.cli import main; main()", "run", "--inventory",
            "inventories/vcsim.yaml", "--reports", str(reports), "-n", workers]
    proc = subprocess.run(args + (["--rules", rules] if rules else []), cwd=ROOT, capture_output=True,
                          text=True, timeout=900, env=env)
    return proc.returncode, proc.stdout[-4000:] + proc.stderr[-2000:], sorted(reports.iterdir())[-1]


def _tests(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "results.json").read_text())["tests"]


@pytest.mark.parametrize("workers", ["0", "2"])
def test_vcsim_demonstrates_its_rules_and_lists_every_deviation(tmp_path, workers):
    code, output, run_dir = _run(tmp_path, workers)
    assert code == 0, output
    tests = _tests(run_dir)
    assert {rule for test in tests for rule in test["rules"]} == set(load_rules())
    listed = load("vcsim")
    assert listed is not None
    ids = {d.test for d in listed.listed.deviations}
    for test in tests:
        assert test["outcome"] in ("passed", "skipped", "deviation"), test
        if test["outcome"] == "skipped":
            assert test["category"] in ("capability_skip", "version_skip", "unconfirmed_skip"), test
            assert test["message"].startswith(("capability:", "version:", "unconfirmed:")), test
        if test["outcome"] == "deviation":
            assert test["category"] == "known_deviation" and test["message"].startswith("deviation: "), test
            assert test["test_id"] in ids or test["test_id"].split("[")[0] in ids, test
    by_rule: dict[str, list[str]] = {}
    for test in tests:
        for rule in test["rules"]:
            by_rule.setdefault(rule, []).append(test["outcome"])
    demonstrated = {rule for rule, outcomes in by_rule.items() if set(outcomes) == {"passed"}}
    assert DEMONSTRATED_FLOOR <= demonstrated, sorted(DEMONSTRATED_FLOOR - demonstrated)
    seen_deviations = {t["test_id"] for t in tests if t["outcome"] == "deviation"}
    for entry in ids:  # every entry was seen this run (none stale, none for a skipped test)
        assert any(s == entry or s.startswith(entry + "[") for s in seen_deviations), entry
    from harness.vcsim.gate import problems
    assert problems(run_dir, NIGHTLY_FLOOR) == []  # what examples/nightly-vcsim.yml checks
    run = json.loads((run_dir / "run.json").read_text())
    assert [v["target"] for v in run["vcenters"]] == ["vcsim", "vcsim"]
    for vcenter in run["vcenters"]:
        assert vcenter["vcsim"]["source"] in ("pinned", "path", "inventory") and vcenter["vcsim"]["note"] == ""
    for name in ("report.html", "junit.xml", "oscal-assessment-results.json", "manifest.sha256"):
        assert (run_dir / name).exists(), name
    outcomes = {t["nodeid"]: t["outcome"] for t in tests}
    for other in _outcomes.values():
        assert outcomes == other, "serial and -n 2 runs disagree"
    _outcomes[workers] = outcomes
    assert not leftover_servers(grace=1.0)


def _deviations_copy(tmp_path: Path, change) -> Path:  # noqa: ANN001 - a function of the loaded YAML
    folder = tmp_path / "deviations"
    shutil.copytree(DEVIATIONS_DIR, folder)
    data = yaml.safe_load((folder / "vcsim.yaml").read_text())
    change(data["deviations"])
    (folder / "vcsim.yaml").write_text(yaml.safe_dump(data))
    return folder


def test_removing_one_deviation_turns_the_run_red(tmp_path):
    gone = "SNAP-SHALLOW"
    folder = _deviations_copy(tmp_path, lambda entries: entries.remove(next(e for e in entries if e["rule"] == gone)))
    code, output, run_dir = _run(tmp_path, "0", gone, deviations=folder)
    assert code != 0, output
    assert {t["outcome"] for t in _tests(run_dir)} == {"failed"}


def test_a_deviation_vcsim_no_longer_shows_turns_the_run_red(tmp_path):
    """Strict: an entry for a test vcsim passes XPASSes and fails the run (a stale deviation)."""
    stale = {"rule": "OP-ENCRYPT-OFF", "test": "5b0e2f57-4c1e-4d52-9d3c-2a0c6f1e7a01", "vcsim_does": "nothing",
             "source": "simulator/virtual_machine.go:updateCrypto", "govmomi": ["v0.56.0"],
             "fails_with": {"message": "expected a refusal"}}
    folder = _deviations_copy(tmp_path, lambda entries: entries.append(stale))
    code, output, run_dir = _run(tmp_path, "0", "OP-ENCRYPT-OFF", deviations=folder)
    assert code != 0, output
    tests = [t for t in _tests(run_dir) if t["test_id"] == stale["test"]]   # the rule has other tests too
    assert [t["outcome"] for t in tests] == ["failed"] and "stale deviation" in (tests[0]["message"] or ""), tests
