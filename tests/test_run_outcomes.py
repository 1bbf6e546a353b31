"""Outcome integrity end to end (issue 23): interrupted, half-done and empty runs are never green."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.procs import leftover_servers

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
VCRYPT = [sys.executable, "-c", "from harness.cli import main; main()"]
SCENARIOS = ROOT / "tests" / "scenarios"


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert path.exists(), f"the scenario never wrote {path.name}"


def _only_run(reports: Path) -> Path:
    runs = [p for p in reports.iterdir() if p.is_dir() and not p.is_symlink()]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.mark.parametrize("how", ["sigterm", "double-ctrl-c"])
def test_a_rule_half_done_when_the_run_is_stopped_is_partly_demonstrated_everywhere_and_exit_130_is_written(
        tmp_path, how):
    reports, flag = tmp_path / "reports", tmp_path / "in-body"
    proc = subprocess.Popen([*VCRYPT, "run", "--reports", str(reports), "-n", "0",
                             "--suites", str(SCENARIOS / "scenario_interrupt_partial.py")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env={**os.environ, "VCRYPT_SCENARIO_FLAG": str(flag)})
    _wait_for(flag, proc)
    time.sleep(0.5)
    if how == "sigterm":
        proc.send_signal(signal.SIGTERM)
    else:
        os.killpg(proc.pid, signal.SIGINT)
        _wait_for(Path(f"{flag}.teardown"), proc, 60)
        time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGINT)  # the impatient second Ctrl-C, during cleanup
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out[-3000:]
    assert "Aborted!" not in out
    run_dir = _only_run(reports)
    tests = {t["name"]: t for t in json.loads((run_dir / "results.json").read_text())["tests"]}
    assert tests["test_op_state_first_instance"]["outcome"] == "passed"
    assert tests["test_op_state_second_instance"]["outcome"] == "not run", tests
    run = json.loads((run_dir / "run.json").read_text())
    assert run["exit_status"] == 130 and run["interrupted"] is True
    assert run["verdicts"]["OP-STATE"] == "partly demonstrated"
    summary = out[out.index("rule "):]
    assert re.search(r"OP-STATE\s+partly demonstrated", summary), summary
    md = (run_dir / "summary.md").read_text()
    assert "exit status 130" in md and "OP-STATE" in md
    findings = json.loads((run_dir / "oscal-assessment-results.json").read_text())["assessment-results"]["results"][0]["findings"]
    op_state = [f for f in findings if any(p.get("value") == "OP-STATE" for p in f.get("props", []))]
    assert op_state and all(f["target"]["status"]["state"] == "not-satisfied" for f in op_state)
    junit = (run_dir / "junit.xml").read_text()
    assert re.search(r'name="verdict:OP-STATE" value="partly demonstrated', junit), junit[:2000]
    assert not leftover_servers(grace=1.0)


def test_collect_only_demonstrates_nothing_exits_5_and_leaves_latest_alone(tmp_path):
    reports = tmp_path / "reports"
    first = subprocess.run([*VCRYPT, "run", "--reports", str(reports), "--rules", "OP-STATE"],
                           cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-3000:]
    latest = (reports / "latest").resolve()
    proc = subprocess.run([*VCRYPT, "run", "--reports", str(reports), "--", "--collect-only"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 5, proc.stdout[-3000:]
    assert "nothing was demonstrated" in proc.stdout
    assert (reports / "latest").resolve() == latest
    empty = next(p for p in reports.iterdir() if p.is_dir() and not p.is_symlink() and p.resolve() != latest)
    md = (empty / "summary.md").read_text()
    assert "nothing was demonstrated" in md and "exit status 5" in md
    assert json.loads((empty / "run.json").read_text())["exit_status"] == 5
    diff = subprocess.run([*VCRYPT, "diff", str(latest), str(empty)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert diff.returncode == 2, diff.stdout + diff.stderr
    assert "nothing was demonstrated" in diff.stdout + diff.stderr
    assert "Traceback" not in diff.stdout + diff.stderr


def test_a_keyword_matching_nothing_exits_5(tmp_path):
    reports = tmp_path / "reports"
    proc = subprocess.run([*VCRYPT, "run", "--reports", str(reports), "--", "-k", "no_test_is_called_this"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 5, proc.stdout[-3000:]
    assert "nothing was demonstrated" in proc.stdout
    assert not (reports / "latest").exists()


def test_a_double_ctrl_c_under_xdist_still_cleans_up_writes_the_summary_and_exits_130(tmp_path):
    reports, flag = tmp_path / "reports", tmp_path / "in-body"
    proc = subprocess.Popen([*VCRYPT, "run", "--reports", str(reports), "-n", "2",
                             "--suites", str(SCENARIOS / "scenario_interrupt_partial.py")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env={**os.environ, "VCRYPT_SCENARIO_FLAG": str(flag)})
    _wait_for(flag, proc)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    _wait_for(Path(f"{flag}.teardown"), proc, 60)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out[-3000:]
    run_dir = _only_run(reports)
    assert json.loads((run_dir / "run.json").read_text())["exit_status"] == 130
    assert (run_dir / "summary.md").exists() and "Aborted!" not in out
    tests = {t["name"]: t for t in json.loads((run_dir / "results.json").read_text())["tests"]}
    assert tests["test_is_interrupted_in_its_body"]["outcome"] == "interrupted", tests
    assert not leftover_servers(grace=1.0)


def test_plain_pytest_on_the_plugin_ends_with_the_exit_status_run_json_names(pytester, tmp_path):
    """Not only `vcrypt run`: a session interrupted under the plugin exits 130, and run.json says 130."""
    from tests.test_plugin import _inventory
    pytester.makepyfile(test_suite=(
        'import pytest\n@pytest.mark.rule("OP-STATE")\n@pytest.mark.test_id("66666666-0000-4000-8000-000000000001")\n'
        'def test_a(): pass\n@pytest.mark.rule("OP-STATE")\n@pytest.mark.test_id("66666666-0000-4000-8000-000000000002")\n'
        'def test_b(): raise KeyboardInterrupt\n@pytest.mark.rule("OP-STATE")\n'
        '@pytest.mark.test_id("66666666-0000-4000-8000-000000000003")\ndef test_c(): pass\n'))
    result = pytester.runpytest_subprocess("--inventory", str(_inventory(tmp_path)), "--run-dir",
                                           str(pytester.path / "run"), "-p", "no:cacheprovider")
    run = json.loads((pytester.path / "run" / "run.json").read_text())
    assert result.ret == 130 == run["exit_status"]
    assert run["verdicts"]["OP-STATE"] == "partly demonstrated"
