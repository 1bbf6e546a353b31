"""`vcrypt run` as a QA lead and a nightly CI job use it: two real runs on the fake (one with a seeded
defect), then summary.md, reports/latest, progress lines, --last-failed, `vcrypt diff`, `vcrypt rules`
and JUnit names. The runs are restricted with --rules to one rule so the module stays short."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
VCRYPT = [sys.executable, "-c", "from harness.cli import main; main()"]
RULE = "OP-STATE"
DEFECT = "op-state-ignored"   # harness/fakevc: the fake performs a refused operation (OP-STATE violated)


def vcrypt(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VCRYPT, *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL, env={**os.environ, "COLUMNS": "80", **(env or {})})


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A clean run ("zz-good", named to sort last) and a later run with a seeded defect ("aa-bad")."""
    tmp = tmp_path_factory.mktemp("product")
    reports = tmp / "reports"
    data = yaml.safe_load((ROOT / "inventories" / "fake.yaml").read_text())
    data["vcenters"][0]["fake"] = {"defects": [DEFECT]}
    defective = tmp / "defective.yaml"
    defective.write_text(yaml.safe_dump(data))
    good = vcrypt("run", "--reports", str(reports), "--run-id", "zz-good", "--rules", RULE,
                  "--junit", str(tmp / "ci" / "good.xml"))
    time.sleep(1.1)  # start times one second apart at least
    bad = vcrypt("run", "-i", str(defective), "--reports", str(reports), "--run-id", "aa-bad", "--rules", RULE)
    return {"tmp": tmp, "reports": reports, "good": good, "bad": bad, "defective": defective}


def test_the_clean_run_passes_and_the_defect_run_fails(runs):
    assert runs["good"].returncode == 0, runs["good"].stdout[-3000:] + runs["good"].stderr[-2000:]
    assert runs["bad"].returncode == 1, runs["bad"].stdout[-3000:] + runs["bad"].stderr[-2000:]


def test_a_ci_log_shows_each_tests_rule_verdict_and_duration_as_it_finishes(runs):
    lines = [line for line in runs["bad"].stdout.splitlines() if line.startswith("[")]
    results = json.loads((runs["reports"] / "aa-bad" / "results.json").read_text())["tests"]
    assert len(lines) == len(results) > 1, runs["bad"].stdout[-3000:]
    pattern = re.compile(r"^\[\s*(\d+)/(\d+)\] (passed|failed|error|skipped)\s+(\S+)\s+(\S+)\s+\d+\.\d s$")
    for number, line in enumerate(lines, start=1):
        match = pattern.match(line)
        assert match, line
        assert int(match[1]) == number and int(match[2]) == len(results) and match[4] == RULE
    by_name = {t["name"]: t["outcome"] for t in results}
    assert any(pattern.match(line)[3] == "failed" for line in lines)
    assert all(by_name[pattern.match(line)[5]] == pattern.match(line)[3] for line in lines)


def test_a_filtered_run_counts_unselected_rules_and_wraps_to_the_terminal(runs):
    out = runs["good"].stdout
    table = out[out.index("rule  "):]
    assert " not run " not in table
    assert re.search(r"^\d+ rule\(s\) outside this run's selection \(not run\)$", table, re.M), table
    # paths are printed whole (to be copied); every other line fits the terminal
    assert max(len(line) for line in table.splitlines() if "/" not in line) <= 80, table


def test_summary_md_counts_verdicts_lists_the_failing_rule_with_a_reason_and_links_the_report(runs):
    good = (runs["reports"] / "zz-good" / "summary.md").read_text()
    bad = (runs["reports"] / "aa-bad" / "summary.md").read_text()
    assert "| passed | 1 |" in good and "needs attention" not in good
    assert "| failed | 1 |" in bad
    at = bad.index(f"- **{RULE}** product failure")  # no relative link: dead in a CI job summary (issue 24)
    assert "expected a refusal" in bad[at:] and "(report.html#" not in bad
    assert f"> 🔴 **Seeded fake defects: {DEFECT}" in bad
    html = (runs["reports"] / "aa-bad" / "report.html").read_text()
    assert f'id="rule-{RULE}"' in html and 'id="problems"' in html  # the anchors summary.md links to
    manifest = (runs["reports"] / "aa-bad" / "manifest.sha256").read_text()
    assert "summary.md" in manifest


def test_reports_latest_points_at_the_newest_run(runs):
    latest = runs["reports"] / "latest"
    assert latest.is_symlink() and os.readlink(latest) == "aa-bad"


def test_vcrypt_rules_reads_the_newest_run_by_time_not_by_name(runs):
    proc = vcrypt("rules", "--reports", str(runs["reports"]))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("verdicts from run aa-bad ")
    assert lines[1].split() == ["rule", "since", "kind", "verdict", "tests", "instances"]
    row = next(line for line in lines if line.startswith(RULE + " "))
    instances = sum(1 for t in json.loads((runs["reports"] / "aa-bad" / "results.json").read_text())["tests"]
                    if RULE in t["rules"])
    assert row.split()[3] == "failed" and row.split()[-1] == str(instances)


def test_vcrypt_diff_puts_new_failures_first_and_exits_1_on_a_regression(runs):
    reports = runs["reports"]
    proc = vcrypt("diff", str(reports / "zz-good"), str(reports / "aa-bad"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[1].startswith("new failures (")
    assert lines[2] == f"  rule {RULE}: passed -> failed"
    back = vcrypt("diff", str(reports / "aa-bad"), str(reports / "zz-good"))
    assert back.returncode == 0 and back.stdout.splitlines()[1].startswith("fixed ("), back.stdout
    same = vcrypt("diff", str(reports / "zz-good"), str(reports / "zz-good"))
    assert same.returncode == 0 and "no verdict changed" in same.stdout


def test_last_failed_reruns_exactly_the_failed_tests_of_the_newest_run(runs):
    reports = runs["reports"]
    failed = {t["nodeid"] for t in json.loads((reports / "aa-bad" / "results.json").read_text())["tests"]
              if t["outcome"] in ("failed", "error")}
    assert failed
    proc = vcrypt("run", "--last-failed", "--reports", str(reports), "--run-id", "rerun", "--", "--tb=no")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr
    rerun = {t["nodeid"] for t in json.loads((reports / "rerun" / "results.json").read_text())["tests"]}
    assert rerun == failed  # the defect inventory again (from run.json), only the failed tests
    assert json.loads((reports / "rerun" / "run.json").read_text())["inventory"] == str(runs["defective"])


def test_junit_copy_for_ci_and_the_run_folders_own_junit_with_named_suites(runs):
    copy = runs["tmp"] / "ci" / "good.xml"
    own = runs["reports"] / "zz-good" / "junit.xml"
    assert copy.read_bytes() == own.read_bytes()
    assert "junit.xml" in (runs["reports"] / "zz-good" / "manifest.sha256").read_text()
    names = {ET.parse(runs["reports"] / run / "junit.xml").getroot().find("testsuite").get("name")
             for run in ("zz-good", "aa-bad")}
    assert names == {"vcrypt.fake.fake", "vcrypt.defective.fake"}


def test_a_usage_error_leaves_no_run_folder(runs, tmp_path):
    reports = tmp_path / "reports"
    for args in (["--rules", "NO-SUCH-RULE"], ["--", "--no-such-pytest-option"], ["--", "--junitxml=x.xml"],
                 ["--test-id", "no-such-test-id"]):
        proc = vcrypt("run", "--reports", str(reports), "--run-id", "u1", *args)
        assert proc.returncode == 2, (args, proc.stdout[-2000:], proc.stderr[-2000:])
        assert "Traceback" not in proc.stdout + proc.stderr
        assert not (reports / "u1").exists(), args
