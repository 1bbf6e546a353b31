"""File-system faults in a run folder, seen through the plugin as `pytest` runs it: an evidence write
that fails ends that test as an environment error (the run goes on, no INTERNALERROR), and a run id
given to the plugin directly is validated like `vcrypt run --run-id`."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pytest_run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "-q", "--tb=line", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)


def test_an_evidence_write_failure_is_that_tests_error_not_the_runs(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "evidence").write_text("a file where the evidence folder should be")
    proc = pytest_run(str(ROOT / "suites"), "--inventory", str(ROOT / "inventories" / "fake.yaml"),
                      "--run-dir", str(run_dir), "--run-id", "evidence-fault", "--rules", "OP-STATE")
    output = proc.stdout + proc.stderr
    assert "INTERNALERROR" not in output and proc.returncode == 1, output[-3000:]
    tests = json.loads((run_dir / "results.json").read_text())["tests"]
    assert len(tests) > 1  # every selected test ran: the fault did not stop the run
    for test in tests:
        assert test["outcome"] == "error" and test["category"] == "environment_error", test
        assert "evidence could not be written" in test["message"], test["message"]
    assert (run_dir / "evidence").read_text().startswith("a file")


def test_the_plugin_refuses_a_run_id_that_is_a_path(tmp_path):
    proc = pytest_run(str(ROOT / "suites"), "--inventory", str(ROOT / "inventories" / "fake.yaml"),
                      "--run-id", "../escaped", "--rules", "OP-STATE", cwd=tmp_path)
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "--run-id: run id '../escaped'" in proc.stderr
    assert list(tmp_path.iterdir()) == [] and not (tmp_path.parent / "escaped").exists()
