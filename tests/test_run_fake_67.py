"""The 6.7 fake as a 6.7 lab (issue 24): it reports a 6.7 build, KMS-REQUIRED runs on the harness's own
embedded provider (which the harness may remove and register again; it is not the lab's), and
`vcrypt diff` of a 7.0 and a 6.7 run warns that the targets differ."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VCRYPT = [sys.executable, "-c", "from harness.cli import main; main()"]


def vcrypt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VCRYPT, *args], cwd=ROOT, capture_output=True, text=True, timeout=900,
                          stdin=subprocess.DEVNULL, env={**os.environ, "COLUMNS": "100"})


@pytest.fixture(scope="module")
def runs(default_fake_run: tuple[subprocess.CompletedProcess, Path],
         fake_67_run: tuple[subprocess.CompletedProcess, Path]) -> dict[str, Path]:
    """The default 7.0 and 6.7 runs test_run_fake.py reads too (tests/shared_runs.py): every rule, KMS-REQUIRED
    among them."""
    for proc, _ in (default_fake_run, fake_67_run):
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return {"r70": default_fake_run[1], "r67": fake_67_run[1]}


def test_the_67_fake_reports_a_67_build(runs: dict[str, Path]) -> None:
    vcenters = json.loads((runs["r67"] / "run.json").read_text())["vcenters"]
    assert {(vc["version"], vc["build"]) for vc in vcenters} == {("6.7", "16046470")}  # vCenter 6.7 Update 3g


def test_kms_required_runs_on_the_harnesss_own_embedded_provider(runs: dict[str, Path]) -> None:
    tests = [t for t in json.loads((runs["r67"] / "results.json").read_text())["tests"] if "KMS-REQUIRED" in t["rules"]]
    assert tests and {t["outcome"] for t in tests} == {"passed"}, [(t["name"], t["outcome"], t["message"]) for t in tests]


def test_diff_of_a_70_and_a_67_run_warns(runs: dict[str, Path]) -> None:
    proc = vcrypt("diff", str(runs["r70"]), str(runs["r67"]))
    warning = next((line for line in proc.stdout.splitlines() if line.startswith("warning:")), "")
    assert "7.0.3" in warning and "6.7" in warning and "different" in warning, proc.stdout
    same = vcrypt("diff", str(runs["r70"]), str(runs["r70"]))
    assert "warning:" not in same.stdout
