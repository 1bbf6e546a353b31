"""`vcrypt run` against two vcsims, as the nightly job runs it: every rule passes or is skipped
with the capability the target lacks; nothing fails because of the harness; nothing is left."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.rules import load_rules
from harness.vcsim.build import toolchain_status
from tests.procs import leftover_servers

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", autouse=True)
def toolchain() -> None:
    reason = toolchain_status()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must provide the vcsim toolchain: {reason}")
        pytest.skip(reason)


@pytest.mark.parametrize("workers", ["0", "4"])
def test_every_rule_passes_or_skips_with_a_capability_on_vcsim(tmp_path, workers):
    reports = tmp_path / "reports"
    proc = subprocess.run([sys.executable, "-c", "from harness.cli import main; main()", "run", "--inventory",
                           "inventories/vcsim.yaml", "--reports", str(reports), "-n", workers],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    run_dir = sorted(reports.iterdir())[-1]
    tests = json.loads((run_dir / "results.json").read_text())["tests"]
    seen = {rule for test in tests for rule in test["rules"]}
    assert seen == set(load_rules())
    for test in tests:
        assert test["outcome"] in ("passed", "skipped"), test
        if test["outcome"] == "skipped":
            assert test["category"] in ("capability_skip", "version_skip"), test
            assert "lacks" in test["message"] or test["category"] == "version_skip", test
    run = json.loads((run_dir / "run.json").read_text())
    assert [v["target"] for v in run["vcenters"]] == ["vcsim", "vcsim"]
    for name in ("report.html", "junit.xml", "oscal-assessment-results.json", "manifest.sha256"):
        assert (run_dir / name).exists(), name
    time.sleep(1.0)
    assert not leftover_servers()
