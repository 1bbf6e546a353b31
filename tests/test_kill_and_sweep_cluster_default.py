"""A run killed with SIGKILL while it holds the inventory cluster's default key provider changed (KMS-DEFAULT-*)
leaves it changed on vcsim (a separate process whose state survives); `vcrypt sweep --run-id` puts back the
default the run's ledger recorded before the change, read through ListKmipServers."""
from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from harness.vcsim.build import toolchain_status
from harness.vcsim.choice import find_vcsim

ROOT = Path(__file__).resolve().parent.parent
LAB_PROVIDER = "lab-kms"   # registered by the lab, not by the run: sweep must never remove it


@pytest.fixture(scope="module")
def vcsim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    reason = toolchain_status()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must provide the vcsim toolchain: {reason}")
        pytest.skip(reason)
    from harness.vcsim.process import VcsimProcess
    with VcsimProcess(tmp_path_factory.mktemp("vcsim"), binary=find_vcsim(), api_version="7.0.3.0",
                      hosts=2, vms=1) as sim:
        yield sim


def _connect(url: str) -> Any:
    from urllib.parse import urlparse
    parsed = urlparse(url)
    return SmartConnect(host=parsed.hostname, port=parsed.port, user="u", pwd="p",
                        sslContext=ssl._create_unverified_context())


def _crypto_manager(si: Any) -> Any:
    return si.RetrieveContent().cryptoManager   # vcsim blanks it in `si.content` fetches


def _cluster_default(si: Any) -> str | None:
    """The provider ListKmipServers lists as DC0_C0's own default (None: none)."""
    cluster = si.content.searchIndex.FindByInventoryPath("DC0/host/DC0_C0")
    for info in _crypto_manager(si).ListKmipServers() or []:
        if any(e._moId == cluster._moId for e in info.useAsEntityDefault or []):
            return info.clusterId.id
    return None


def _inventory(tmp: Path, url: str) -> Path:
    data = {"vcenters": [{"name": "sim", "target": "vcsim", "url": url, "user": "user", "tls": {"insecure": True},
                          "datacenter": "DC0", "cluster": "DC0_C0", "version": "7.0.3"}],
            "kms": {"embedded": True},
            "safety": {"allow_mutations": True, "allow_destructive": True, "name_prefix": "vcrypt-"}}
    path = tmp / "sim.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_sweep_puts_back_the_cluster_default_a_killed_run_changed(vcsim: Any, tmp_path: Path) -> None:
    si = _connect(vcsim.url)
    try:
        _crypto_manager(si).RegisterKmipServer(server=vim.encryption.KmipServerSpec(
            clusterId=vim.encryption.KeyProviderId(id=LAB_PROVIDER),
            info=vim.encryption.KmipServerInfo(name="kms-1", address="127.0.0.1", port=5696)))
        assert _cluster_default(si) is None
    finally:
        Disconnect(si)
    inventory = _inventory(tmp_path, vcsim.url)
    run_dir = tmp_path / "reports" / "killed-default"
    proc = subprocess.Popen([sys.executable, "-m", "pytest",
                             str(ROOT / "tests" / "scenarios" / "scenario_cluster_default_hang.py"),
                             "--inventory", str(inventory), "--run-dir", str(run_dir), "--run-id", "killed-default",
                             "-p", "no:cacheprovider", "-n", "0", "-q"], cwd=ROOT, start_new_session=True,
                            env=dict(os.environ, VCRYPT_SCENARIO_PROVIDER=LAB_PROVIDER),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    si = _connect(vcsim.url)
    try:
        while time.monotonic() < deadline and _cluster_default(si) != LAB_PROVIDER:
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    try:
        assert _cluster_default(si) == LAB_PROVIDER, "the run never set the cluster's default (or undid it)"

        sweep = subprocess.run([sys.executable, "-c", "from harness.cli import main; main()", "sweep", "--inventory",
                                str(inventory), "--run-id", "killed-default", "--reports", str(tmp_path / "reports")],
                               cwd=ROOT, capture_output=True, text=True, timeout=300)

        assert sweep.returncode == 0, sweep.stdout + sweep.stderr
        assert "restore the default key provider of cluster" in sweep.stdout, sweep.stdout
        assert _cluster_default(si) is None, sweep.stdout
        assert LAB_PROVIDER in {c.clusterId.id for c in _crypto_manager(si).ListKmipServers() or []}
    finally:
        Disconnect(si)
