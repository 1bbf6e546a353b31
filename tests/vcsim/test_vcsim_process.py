"""vcsim start/stop: the launcher builds offline, serves a loggable vCenter, and leaves nothing behind.

Skips with the toolchain reason where go/govmomi are missing, except in CI (CI=true), where a
missing toolchain is a broken CI image and must fail.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyVim.connect import Disconnect, SmartConnect

from harness.vcsim import VcsimProcess, VcsimUnavailable, build_launcher, find_vcsim, toolchain_status
from harness.vcsim.process import group_alive
from tests.conftest import require_toolchain as _require_toolchain

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def launcher() -> Path:
    """Built once per module (and cached across runs in the default cache)."""
    _require_toolchain()
    return build_launcher()


@pytest.fixture()
def vcsim(launcher: Path, tmp_path: Path) -> Iterator[VcsimProcess]:
    with VcsimProcess(tmp_path, binary=launcher) as proc:
        yield proc


def _login(proc: VcsimProcess):  # noqa: ANN202 - pyVmomi types are dynamic
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # vcsim's self-signed certificate; inventory says insecure: true
    return SmartConnect(host=proc.host, port=proc.port, user="anyone", pwd="anything", sslContext=ctx)


def _write_script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


# ------------------------------------------------------------------ pure (no toolchain needed)


def test_missing_explicit_binary_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "vcsim"
    with pytest.raises(VcsimUnavailable, match=str(missing)):
        find_vcsim(missing)
    with pytest.raises(VcsimUnavailable, match=str(missing)):
        VcsimProcess(tmp_path, binary=missing).start()


def test_toolchain_status_names_missing_go(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    reason = toolchain_status()
    assert reason is not None and "go" in reason
    with pytest.raises(VcsimUnavailable, match="go"):
        build_launcher()


def test_readiness_timeout_raises_within_timeout_and_kills_group(tmp_path: Path) -> None:
    # A shell that never prints GOVC_URL and has a child: both must be gone afterwards.
    script = _write_script(tmp_path / "fake-vcsim", "sleep 60\nexit 0")
    proc = VcsimProcess(tmp_path, binary=script, ready_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(VcsimUnavailable, match="not ready within"):
        proc.start()
    assert time.monotonic() - started < 1.0 + 2.0
    assert not proc.running and proc.pid is None


def test_early_exit_reports_log_tail(tmp_path: Path) -> None:
    script = _write_script(tmp_path / "broken-vcsim", "echo 'boom: bad flag' >&2\nexit 3")
    with pytest.raises(VcsimUnavailable, match="status 3.*boom: bad flag"):
        VcsimProcess(tmp_path, binary=script, ready_timeout=10.0).start()


# ------------------------------------------------------------------ with the launcher


def test_build_is_cached_and_found(launcher: Path) -> None:
    assert launcher.is_file() and os.access(launcher, os.X_OK)
    assert build_launcher() == launcher
    if shutil.which("vcsim") is None:  # a vcsim on PATH would rightly take precedence
        assert find_vcsim(source="debian") == launcher


def test_concurrent_builds_share_one_binary(launcher: Path, tmp_path: Path) -> None:
    results: list[Path | BaseException] = []

    def build() -> None:
        try:
            results.append(build_launcher(tmp_path / "cache"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            results.append(exc)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and results[0] == results[1], results
    built = results[0]
    assert isinstance(built, Path) and built.is_file()
    assert [p.name for p in built.parent.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_pyvmomi_login_reads_about_and_root_folder(vcsim: VcsimProcess) -> None:
    assert vcsim.url == f"https://127.0.0.1:{vcsim.port}/sdk"
    si = _login(vcsim)
    try:
        content = si.RetrieveContent()
        assert content.about.apiVersion == "6.5"
        assert content.rootFolder.name == "Datacenters"
        assert [dc.name for dc in content.rootFolder.childEntity] == ["DC0"]
    finally:
        Disconnect(si)


def test_api_version_flag(launcher: Path, tmp_path: Path) -> None:
    with VcsimProcess(tmp_path, binary=launcher, api_version="7.0.3.0") as proc:
        si = _login(proc)
        try:
            assert si.RetrieveContent().about.apiVersion == "7.0.3.0"
        finally:
            Disconnect(si)


def test_stop_leaves_no_process_and_is_idempotent(launcher: Path, tmp_path: Path) -> None:
    proc = VcsimProcess(tmp_path, binary=launcher).start()
    pgid = proc.pid
    assert pgid is not None and proc.running and group_alive(pgid)
    proc.stop()
    assert not proc.running and not group_alive(pgid)
    proc.stop()


def test_start_twice_in_a_row(launcher: Path, tmp_path: Path) -> None:
    proc = VcsimProcess(tmp_path, binary=launcher)
    for _ in range(2):
        with proc:
            si = _login(proc)
            Disconnect(si)
        assert not proc.running


def test_two_instances_get_different_ports(launcher: Path, tmp_path: Path) -> None:
    with VcsimProcess(tmp_path / "a", binary=launcher) as a, VcsimProcess(tmp_path / "b", binary=launcher) as b:
        assert a.port != b.port and a.pid != b.pid
        for proc in (a, b):
            Disconnect(_login(proc))


def test_launcher_exits_when_its_parent_dies_without_stopping_it(launcher: Path, tmp_path: Path) -> None:
    # A harness killed with SIGKILL runs no atexit: the launcher's -stdinexit sees EOF and exits.
    code = (
        "import sys, os, signal; from pathlib import Path; from harness.vcsim import VcsimProcess\n"
        f"p = VcsimProcess(Path({str(tmp_path)!r}), binary=Path({str(launcher)!r})).start()\n"
        "print(p.pid, flush=True); os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=30)
    pgid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 5
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not group_alive(pgid)


def test_inventory_counts_are_passed(launcher: Path, tmp_path: Path) -> None:
    with VcsimProcess(tmp_path, binary=launcher, datacenters=2, hosts=1, vms=1) as proc:
        si = _login(proc)
        try:
            assert len(si.RetrieveContent().rootFolder.childEntity) == 2
        finally:
            Disconnect(si)
