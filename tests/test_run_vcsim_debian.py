"""`vcrypt run` against Debian's govmomi 0.24.2 vcsim (the nightly's Debian job): nothing fails, every
rule passes or skips with what that vcsim lacks, and run.json says the crypto rules were not exercised."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.vcsim.build import toolchain_status

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", autouse=True)
def toolchain() -> None:
    reason = toolchain_status()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must provide the vcsim toolchain: {reason}")
        pytest.skip(reason)


def test_the_debian_vcsim_run_demonstrates_nothing_and_says_crypto_was_not_exercised(tmp_path):
    """Debian's vcsim models no crypto: every test skips with its capability, so the run is no success
    (exit 5, issue 23), and never a product failure."""
    reports = tmp_path / "reports"
    proc = subprocess.run([sys.executable, "-c", "from harness.cli import main; main()", "run", "--inventory",
                           "inventories/vcsim-debian.yaml", "--reports", str(reports)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode in (0, 5), proc.stdout[-4000:] + proc.stderr[-2000:]
    run_dir = sorted(p for p in reports.iterdir() if not p.is_symlink())[-1]
    tests = json.loads((run_dir / "results.json").read_text())["tests"]
    assert (proc.returncode == 5) == (not any(t["outcome"] == "passed" for t in tests)), proc.returncode
    for test in tests:
        assert test["outcome"] in ("passed", "skipped"), test
        if test["outcome"] == "skipped":
            assert test["category"] in ("capability_skip", "version_skip"), test
    run = json.loads((run_dir / "run.json").read_text())
    for vcenter in run["vcenters"]:
        assert vcenter["vcsim"]["source"] == "debian" and vcenter["vcsim"]["models_crypto"] is False
        assert "crypto rules could not be exercised" in vcenter["vcsim"]["note"]
    assert "crypto rules could not be exercised" in (run_dir / "report.html").read_text()


def test_the_current_vcsim_inventory_on_the_debian_fallback_skips_crypto_saying_why(tmp_path):
    """inventories/vcsim.yaml where only Debian's vcsim can be had: capability skips, never errors."""
    import yaml
    data = yaml.safe_load((ROOT / "inventories" / "vcsim.yaml").read_text())
    for vcenter in data["vcenters"]:
        vcenter["vcsim"]["source"] = "debian"  # what `auto` falls back to without the module proxy
    inventory = tmp_path / "vcsim-fallback.yaml"
    inventory.write_text(yaml.safe_dump(data))
    reports = tmp_path / "reports"
    proc = subprocess.run([sys.executable, "-c", "from harness.cli import main; main()", "run", "--inventory",
                           str(inventory), "--reports", str(reports), "--rules", "OP-ENCRYPT-OFF,OP-STATE"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    # every test skipped: nothing was demonstrated, which is no success (issue 23: exit 5)
    assert proc.returncode == 5 and "nothing was demonstrated" in proc.stdout, proc.stdout[-4000:] + proc.stderr[-2000:]
    tests = json.loads((sorted(p for p in reports.iterdir() if p.name != "latest")[-1] / "results.json").read_text())["tests"]
    assert tests and all(t["outcome"] == "skipped" for t in tests), tests
    assert all("the crypto rules could not be exercised" in t["message"] for t in tests), tests
