"""A run killed with SIGKILL leaves marked objects on vcsim (a separate process whose state survives);
`vcrypt sweep` then removes every one of them and nothing else."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
import yaml
from pyVmomi import vim

from harness.run.cleanup import MARKER
from harness.vcsim.build import toolchain_status
from harness.vcsim.choice import find_vcsim

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def vcsim(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    reason = toolchain_status()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must provide the vcsim toolchain: {reason}")
        pytest.skip(reason)
    from harness.vcsim.process import VcsimProcess
    with VcsimProcess(tmp_path_factory.mktemp("vcsim"), binary=find_vcsim(), hosts=2, vms=1) as sim:
        yield sim


def _inventory(tmp: Path, url: str) -> Path:
    data = {"vcenters": [{"name": "sim", "target": "vcsim", "url": url, "user": "user", "tls": {"insecure": True},
                          "datacenter": "DC0", "cluster": "DC0_C0"}],
            "kms": {"embedded": True}, "safety": {"allow_mutations": True, "name_prefix": "vcrypt-"}}
    path = tmp / "sim.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _marked_vms(url: str) -> list[str]:
    import ssl
    from urllib.parse import urlparse
    from pyVim.connect import Disconnect, SmartConnect
    parsed = urlparse(url)
    si = SmartConnect(host=parsed.hostname, port=parsed.port, user="u", pwd="p",
                      sslContext=ssl._create_unverified_context())
    try:
        view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
        return [vm.name for vm in view.view if (vm.config.annotation or "").startswith(MARKER)]
    finally:
        Disconnect(si)


def test_sigkill_leaves_marked_vms_that_sweep_removes(vcsim, tmp_path):
    inventory = _inventory(tmp_path, vcsim.url)
    run_dir = tmp_path / "reports" / "killed-run"
    proc = subprocess.Popen([sys.executable, "-m", "pytest", str(ROOT / "tests" / "scenarios" / "scenario_hang.py"),
                             "--inventory", str(inventory), "--run-dir", str(run_dir), "--run-id", "killed-run",
                             "-p", "no:cacheprovider", "-n", "0", "-q"], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ledger = run_dir / "ledger.jsonl"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not (ledger.exists() and ledger.read_text().count('"created"') >= 2):
        time.sleep(0.1)
    try:
        # While the run lives, --all-runs leaves its VMs alone (issue 21: it used to destroy them).
        live = subprocess.run([sys.executable, "-c", "from harness.cli import main; main()", "sweep", "--inventory",
                               str(inventory), "--all-runs", "--reports", str(tmp_path / "reports")],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert "run killed-run is alive" in live.stdout, live.stdout + live.stderr
        assert len(_marked_vms(vcsim.url)) >= 2, "sweep --all-runs destroyed the VMs of a live run"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert len(_marked_vms(vcsim.url)) >= 2, "the killed run should have left its VMs behind"

    sweep = subprocess.run([sys.executable, "-c", "from harness.cli import main; main()", "sweep", "--inventory",
                            str(inventory), "--run-id", "killed-run", "--reports", str(tmp_path / "reports")],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert sweep.returncode == 0, sweep.stdout + sweep.stderr
    assert _marked_vms(vcsim.url) == []
    entries = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert {e["name"] for e in entries if e.get("phase") == "created"} and "removed" not in {e.get("phase") for e in entries}
