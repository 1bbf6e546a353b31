"""The pinned current vcsim: Go chosen by version, one pin, the precedence, and what it serves."""
from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from harness.vcsim import choice, pinned
from harness.vcsim.build import VcsimUnavailable
from harness.vcsim.process import VcsimProcess
from tests.vcsim.conftest import require_current_vcsim


def _fake_go(folder: Path, release: str) -> Path:
    folder.mkdir(parents=True)
    go = folder / "go"
    go.write_text(f"#!/bin/sh\n[ \"$1 $2\" = 'env GOVERSION' ] && echo {release}\n")
    go.chmod(0o755)
    return go


def test_go_is_chosen_by_version_not_by_path_order(tmp_path, monkeypatch):
    old = _fake_go(tmp_path / "debian", "go1.19.8")
    new = _fake_go(tmp_path / "local", "go1.26.8")
    monkeypatch.setenv("PATH", f"{old.parent}{os.pathsep}{new.parent}")
    monkeypatch.setattr(pinned, "_candidates", lambda: [old, new])
    chosen = pinned.select_go()
    assert chosen is not None and chosen.path == new and chosen.release == "go1.26.8"


def test_no_go_new_enough_says_which_were_found(tmp_path, monkeypatch):
    old = _fake_go(tmp_path / "debian", "go1.19.8")
    monkeypatch.setattr(pinned, "_candidates", lambda: [old])
    monkeypatch.setattr(pinned, "cached_pinned", lambda cache_root=None: None)
    assert pinned.select_go() is None
    reason = pinned.pinned_status()
    assert reason and "Go >= 1.25" in reason and "1.19.8" in reason and pinned.GOVMOMI_VERSION in reason
    with pytest.raises(VcsimUnavailable, match="Go >= 1.25"):
        pinned.build_pinned(tmp_path / "cache")


def test_the_pin_is_one_version_and_its_cache_lives_under_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert pinned.GOVMOMI_VERSION == "v0.56.0"
    assert pinned.pinned_dir() == tmp_path / "vcrypt-harness" / "vcsim" / "v0.56.0"
    assert pinned.cached_pinned() is None  # nothing built there


def test_precedence_inventory_then_path_then_pinned_then_debian(tmp_path, monkeypatch):
    named = _fake_go(tmp_path / "named", "x")
    on_path = _fake_go(tmp_path / "bin", "x").rename(tmp_path / "bin" / "vcsim")
    monkeypatch.setenv("PATH", str(on_path.parent))
    monkeypatch.setattr(choice, "_failed_pinned", {})
    monkeypatch.setattr(choice.pinned, "build_pinned", lambda: tmp_path / "pinned")
    monkeypatch.setattr(choice, "_debian", lambda: choice.VcsimChoice(tmp_path / "debian", "debian", "0.24.2", False,
                                                                       choice.NO_CRYPTO_NOTE))
    assert choice.choose_vcsim(named).source == "inventory"
    assert choice.choose_vcsim().source == "path"
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert choice.choose_vcsim().source == "pinned"
    assert choice.choose_vcsim(source="debian").source == "debian"

    def refused() -> Path:
        raise VcsimUnavailable("go: module proxy unreachable")
    monkeypatch.setattr(choice.pinned, "build_pinned", refused)
    fallback = choice.choose_vcsim()
    assert fallback.source == "debian" and fallback.models_crypto is False and "could not be exercised" in fallback.note
    with pytest.raises(VcsimUnavailable, match="module proxy unreachable"):
        choice.choose_vcsim(source="pinned")


@pytest.fixture(scope="module")
def current_vcsim(tmp_path_factory):
    require_current_vcsim()
    found = choice.choose_vcsim(source="pinned") if choice.shutil.which("vcsim") is None else choice.choose_vcsim()
    with VcsimProcess(tmp_path_factory.mktemp("vcsim"), binary=found.path, api_version="7.0.3.0") as sim:
        yield sim


def _login(sim: VcsimProcess):  # noqa: ANN202 - pyVmomi types are dynamic
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return SmartConnect(host=sim.host, port=sim.port, user="u", pwd="p", sslContext=ctx)


def test_the_pinned_vcsim_speaks_7_0_and_models_key_providers(current_vcsim):
    si = _login(current_vcsim)
    try:
        content = si.RetrieveContent()
        assert content.about.apiVersion == "7.0.3.0" and content.about.version == "6.5.0"  # API.md 12
        manager = content.cryptoManager
        info = vim.encryption.KmipServerInfo(name="s", address="127.0.0.1", port=5696)
        manager.RegisterKmipServer(server=vim.encryption.KmipServerSpec(
            clusterId=vim.encryption.KeyProviderId(id="p"), info=info))
        assert "p" in [c.clusterId.id for c in manager.ListKmipServers()]
        assert manager.GenerateKey(keyProvider=vim.encryption.KeyProviderId(id="p")).success
        with pytest.raises(vmodl.fault.MethodNotFound):
            manager.RetrieveKmipServerCert(keyProvider=vim.encryption.KeyProviderId(id="p"), server=info)
    finally:
        Disconnect(si)


def test_a_vcsim_refusal_with_a_systemerrorfault_cause_is_a_refusal_not_a_keyerror(current_vcsim):
    """The issue's KeyError('SystemErrorFault') inside WaitForUpdatesEx, end to end through the harness."""
    from types import SimpleNamespace

    from harness.checks import refused
    from harness.vsphere import snapshots, vms
    from harness.vsphere.client import VCenterClient
    si = _login(current_vcsim)
    try:
        from harness.safety import MutationGate
        client = VCenterClient("vc-a", si, SimpleNamespace(task=30), target="vcsim",
                               gate=MutationGate(allow_mutations=True))  # a throwaway vcsim this test started
        manager = client.content.cryptoManager
        info = vim.encryption.KmipServerInfo(name="s2", address="127.0.0.1", port=5696)
        manager.RegisterKmipServer(server=vim.encryption.KmipServerSpec(
            clusterId=vim.encryption.KeyProviderId(id="p2"), info=info))
        key = manager.GenerateKey(keyProvider=vim.encryption.KeyProviderId(id="p2")).keyId
        view = client.content.viewManager.CreateContainerView(client.content.rootFolder, [vim.VirtualMachine], True)
        vm = view.view[-1]
        view.DestroyView()
        if client.read(vm, ["runtime.powerState"])["runtime.powerState"] != "poweredOff":
            vms.power_off(client, vm)
        snapshots.create(client, vm, "s")
        spec = vim.vm.ConfigSpec(crypto=vim.encryption.CryptoSpecEncrypt(cryptoKeyId=key))
        refusal = refused(lambda: vms.reconfigure(client, vm, spec), "encrypt a VM with snapshots",
                          expected=vim.fault.InvalidState)
        assert isinstance(refusal.fault.faultCause, vmodl.fault.SystemError)
    finally:
        Disconnect(si)


def test_without_go_the_current_vcsim_tests_skip_with_the_reason_and_fail_in_ci(tmp_path, monkeypatch):
    from tests.vcsim import conftest
    old = _fake_go(tmp_path / "debian", "go1.19.8")
    monkeypatch.setattr(pinned, "_candidates", lambda: [old])
    monkeypatch.setattr(pinned, "cached_pinned", lambda cache_root=None: None)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="Go >= 1.25"):
        conftest.require_current_vcsim()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must provide a current vcsim"):
        conftest.require_current_vcsim()
