"""Every verdict can fail: each rule has seeded defects, and `vcrypt selftest` catches every one."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.fakevc.catalogue import load_all
from harness.rules import load_rules
from harness.vsphere.hosts import EmptyObservation, require_some

ROOT = Path(__file__).resolve().parent.parent
REFUSAL_WORDS = ("refused", "cannot", "needs")


def test_every_rule_has_at_least_one_seeded_defect():
    covered = {d.rule for d in load_all().values()}
    missing = [rid for rid in load_rules() if rid not in covered]
    assert not missing, f"rules without a defect: {missing}"


def test_every_defect_names_a_known_rule():
    catalogue = load_rules()
    assert [d.name for d in load_all().values() if d.rule not in catalogue] == []


def test_every_refusal_rule_has_a_half_applied_defect():
    refusal_rules = [r.id for r in load_rules().values() if any(w in r.text for w in REFUSAL_WORDS)]
    half = {d.rule for d in load_all().values() if d.half_applied}
    missing = [rid for rid in refusal_rules if rid not in half]
    assert not missing, f"refusal rules without a half-applied defect: {missing}"


def test_an_observation_over_nothing_is_refused_rather_than_passing_vacuously():
    with pytest.raises(EmptyObservation):
        require_some([], "host")
    assert require_some(["h"], "host") == ["h"]


def test_selftest_catches_every_defect_and_the_baseline_passes():
    proc = subprocess.run([sys.executable, "-c", "from harness.cli import main; main()", "selftest", "-n", "2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "MISSED" not in proc.stdout


def test_a_defect_runs_under_the_fake_options_it_shows_under(tmp_path):
    """`xvc-locator-thumbprint-unchecked` only shows between vCenters that do not trust each other."""
    import yaml

    from harness.commands.selftest import _inventory_for
    path = _inventory_for("XVC-MIGRATE", "xvc-locator-thumbprint-unchecked", tmp_path)
    entries = yaml.safe_load(path.read_text())["vcenters"]
    assert all(e["fake"]["trust_peers"] is False for e in entries)
    assert all(e["fake"]["defects"] == ["xvc-locator-thumbprint-unchecked"] for e in entries)


def test_every_rule_has_its_baseline_on_a_fake_of_a_version_it_applies_to(tmp_path):
    """A skip is no baseline pass: each baseline group runs on a fake (picked by its first rule) whose
    version every rule of the group applies to (6.7 for pre-7 rules, 8.0 for VTPM-CLONE-POLICY)."""
    import yaml

    from harness.commands.selftest import _inventory_for, baseline_groups
    from harness.rules import version_tuple
    catalogue = load_rules()
    groups = baseline_groups()
    assert sorted(r for group in groups for r in group) == sorted(catalogue)
    for group in groups:
        entries = yaml.safe_load(_inventory_for(group[0], None, tmp_path).read_text())["vcenters"]
        for rule_id in group:
            assert all(catalogue[rule_id].applies_to(version_tuple(str(e["version"]))) for e in entries), rule_id


def test_a_defect_imitating_the_environment_must_be_reported_as_an_error():
    catalogue = load_all()
    assert catalogue["xvc-decrypt-refusal-is-login-failure"].caught_as == "error"
    assert {d.caught_as for d in catalogue.values()} <= {"failed", "error"}


def test_a_worker_runs_sessions_one_after_another_and_a_defect_never_leaks_into_the_next(tmp_path):
    """One worker process, two sessions of KMS-GENERATE: with a defect some test fails, and the next
    session, without it, passes every test (each session starts its own fake world; the embedded KMS
    pair is the worker's, harness/kms/kept.py, lent to both sessions)."""
    from harness.commands.selftest import ROOT as REPO
    from harness.commands.selftest import WorkerPool, _run_rule_tests, _session_tests
    pool = WorkerPool(1, tmp_path)
    try:
        with_defect = _run_rule_tests(["KMS-GENERATE"], "kms-generate-phantom-key", tmp_path, REPO / "suites", pool)
        without = _run_rule_tests(["KMS-GENERATE"], None, tmp_path, REPO / "suites", pool)
        (tmp_path / "stopping").mkdir()
        stopped = _session_tests(["KMS-GENERATE"], "kms-generate-phantom-key", tmp_path / "stopping", REPO / "suites",
                                 pool, stop_when="failed")
        worker_pids = {w.proc.pid for w in pool.all if w.proc}
    finally:
        pool.close()
    assert len(worker_pids) == 1
    # --selftest-stop-when: the session ends after the first catching test, the rest are `not run`
    assert [t["outcome"] for t in stopped].count("failed") == 1, [(t["nodeid"], t["outcome"]) for t in stopped]
    assert {t["outcome"] for t in stopped} <= {"failed", "passed", "not run"} and "not run" in {t["outcome"] for t in stopped}
    assert {t["nodeid"] for t in stopped} == set(with_defect)
    # --results-only: results.json and run.json, no rendered reports nobody reads
    run_dir = tmp_path / "run-baseline-KMS-GENERATE"
    assert (run_dir / "results.json").is_file() and not (run_dir / "report.html").exists()
    assert not (run_dir / "manifest.sha256").exists()
    assert "failed" in {outcome for outcome, _ in with_defect.values()}
    assert without and {outcome for outcome, _ in without.values()} == {"passed"}
    assert set(without) == set(with_defect)
    kms_of = [json.loads((tmp_path / f"run-{label}-KMS-GENERATE" / "run.json").read_text())["kms"]["servers"]
              for label in ("kms-generate-phantom-key", "baseline")]
    assert kms_of[0] and kms_of[0] == kms_of[1]   # the same pair, started once for the worker
