"""`vcrypt run` end to end on the fake, as a user runs it: exit code, run folder, verdicts, no leftovers."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.procs import leftover_servers

from harness.rules import load_rules

ROOT = Path(__file__).resolve().parent.parent
VCRYPT = [sys.executable, "-c", "from harness.cli import main; main()"]


def _run(tmp: Path, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, Path]:
    reports = tmp / "reports"
    proc = subprocess.run([*VCRYPT, "run", "--reports", str(reports), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=900, env={**os.environ, **(env or {})})
    runs = sorted(reports.iterdir()) if reports.exists() else []
    assert runs, f"no run folder written\nstdout:{proc.stdout[-3000:]}\nstderr:{proc.stderr[-3000:]}"
    return proc, runs[-1]


def _verdicts(run_dir: Path) -> dict[str, set[str]]:
    tests = json.loads((run_dir / "results.json").read_text())["tests"]
    out: dict[str, set[str]] = {}
    for test in tests:
        for rule in test["rules"]:
            out.setdefault(rule, set()).add(test["outcome"])
    return out


def _leftover_processes() -> list[str]:
    return leftover_servers(grace=1.0)  # a stopped KMS's worker process exits within a second of its parent


@pytest.fixture(scope="module")
def serial_run(default_fake_run: tuple[subprocess.CompletedProcess, Path]) -> tuple[subprocess.CompletedProcess, Path]:
    """The default serial run, shared with test_merge.py and test_run_fake_67.py (tests/shared_runs.py)."""
    return default_fake_run


def test_the_default_run_exits_0_and_every_7_0_rule_passes(serial_run):
    proc, run_dir = serial_run
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    verdicts = _verdicts(run_dir)
    for rule in load_rules().values():
        outcomes = verdicts.get(rule.id, set())
        if not rule.applies_to((7, 0, 3)):  # pre-7 and 8.0-only rules (VTPM-CLONE-POLICY) skip on 7.0.3 by version
            assert outcomes == {"skipped"}, (rule.id, outcomes)
        else:
            assert "passed" in outcomes and outcomes <= {"passed"}, (rule.id, outcomes)


def test_the_run_folder_holds_every_report_and_a_manifest_that_verifies(serial_run):
    _, run_dir = serial_run
    for name in ("junit.xml", "results.json", "run.json", "report.html", "oscal-assessment-results.json",
                 "manifest.sha256", "allure-results/environment.properties", "allure-results/categories.json"):
        assert (run_dir / name).exists(), name
    check = subprocess.run([*VCRYPT, "verify-evidence", str(run_dir)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_junit_names_the_rule_ids(serial_run):
    _, run_dir = serial_run
    tree = ET.parse(run_dir / "junit.xml")
    named = {p.get("value") for p in tree.iter("property") if p.get("name") == "rule"}
    assert set(load_rules()) <= named


def test_the_run_prints_a_rule_table_and_leaves_no_process(serial_run):
    proc, _ = serial_run
    assert "OP-ENCRYPT-OFF" in proc.stdout and "passed" in proc.stdout
    assert not _leftover_processes()


@pytest.mark.parametrize("workers", ["2", "4"])
def test_a_parallel_run_gives_the_same_verdicts_as_the_serial_one(serial_run, tmp_path, workers):
    _, serial_dir = serial_run
    proc, parallel_dir = _run(tmp_path, "-n", workers)
    assert proc.returncode == 0, proc.stdout[-4000:]
    serial = _verdicts(serial_dir)
    assert _verdicts(parallel_dir) == serial
    assert not _leftover_processes()


def test_on_the_6_7_fake_pre7_rules_pass_and_7_0_rules_skip_by_version(fake_67_run):
    proc, run_dir = fake_67_run   # shared with test_run_fake_67.py (tests/shared_runs.py)
    assert proc.returncode == 0, proc.stdout[-4000:]
    tests = json.loads((run_dir / "results.json").read_text())["tests"]
    catalogue = load_rules()
    for test in tests:
        rules = [catalogue[r] for r in test["rules"]]
        if any(r.until for r in rules):
            assert test["outcome"] == "passed", test
        elif all(r.since_tuple >= (7, 0) for r in rules):
            assert test["outcome"] == "skipped" and test["category"] == "version_skip", test


def test_the_default_report_stays_small_per_test_and_the_run_says_it_is_unsigned(serial_run):
    """The page grows with the catalogue (issue 25 added families), so the budget is per test: about 58 KB of
    page and 4.6 KB of evidence per test when it was set (2026-12-05, 118 tests, 598 KB); a writer that
    bloats every test's block fails it, a new rule family does not."""
    proc, run_dir = serial_run
    size = (run_dir / "report.html").stat().st_size
    tests = len(json.loads((run_dir / "results.json").read_text())["tests"])
    assert size < 120_000 + 5_000 * tests, f"report.html of the default run is {size} bytes for {tests} tests"
    assert "tamper-evident only, unsigned" in proc.stdout  # the manifest digest line
    run = json.loads((run_dir / "run.json").read_text())
    assert run["provenance"]["fake_defects"] == [] and run["provenance"]["signing"]["signed"] is False


def test_the_default_runs_evidence_is_complete_and_its_oscal_imports(serial_run):
    from trestle.oscal import assessment_results

    from tests.evidence.test_oscal_import import _hrefs, is_uri_reference
    _, run_dir = serial_run
    cut = [p.name for p in (run_dir / "evidence").glob("*.json")
           if '"providerId": "vim.encryption.KeyProviderId"' in p.read_text()]
    assert cut == []  # nested data objects keep their fields
    doc = json.loads((run_dir / "oscal-assessment-results.json").read_text())
    assessment_results.Model.model_validate(doc)
    assert [h for h in _hrefs(doc) if not is_uri_reference(h)] == []
    items = doc["assessment-results"]["results"][0]["local-definitions"]["inventory-items"]
    assert all(any(p["name"].startswith("esxi-host-") for p in item["props"]) for item in items)


@pytest.mark.parametrize("columns", [80, 200])
def test_the_terminal_table_of_a_default_run_fits_the_screen(serial_run, columns, monkeypatch, capsys):
    """Issue 24: at most 60 lines, none wider than the terminal, every rule named (one line per rule, or
    per area for the rules that passed once the catalogue outgrows a screen)."""
    import re
    from harness.evidence.summary import print_run_summary
    _, run_dir = serial_run
    monkeypatch.setenv("COLUMNS", str(columns))
    print_run_summary(run_dir, 10.0)
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) <= 60, "\n".join(lines)
    assert all(len(line) <= columns for line in lines if str(run_dir) not in line), "\n".join(lines)
    header = next(i for i, line in enumerate(lines) if line.startswith("rule "))
    table = " ".join(lines[header + 1: lines.index("", header)]).split()
    assert all(rule_id in table for rule_id in load_rules()), lines   # each rule named (its line or its area's)
