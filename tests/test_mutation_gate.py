"""The mutation gate (harness/safety.py): with allow_mutations false nothing changes the target.

The proof is the fake's own request log (harness/fakevc/request_log.py), written at its dispatch
point and classifying calls independently of the gate's allow-list: a world snapshot before and
after each call, and a method-name check. First the log is shown to catch a mutation (a call made
past the gate); then every suite runs read-only and the log must hold no mutating call.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyVmomi import vim

from harness.targets.environment import open_environment
from harness.inventory.schema import parse_inventory
from harness.safety import MutationGate, MutationRefused, is_read_only
from harness.vsphere import keys, vms
from harness.vsphere.client import VCenterClient
from harness.vsphere.find import placement

REPO = Path(__file__).resolve().parents[1]
FAKE = REPO / "inventories" / "fake.yaml"


def _inventory(tmp_path: Path, allow: bool, log: Path | None = None, **fake: Any) -> Path:
    data = yaml.safe_load(FAKE.read_text(encoding="utf-8"))
    for entry in data["vcenters"]:
        entry["fake"] = {**({"request_log": str(log)} if log else {}), **fake}
    data["safety"] = {"allow_mutations": allow, "allow_destructive": allow, "name_prefix": "vcrypt-"}
    path = tmp_path / f"inventory-{'rw' if allow else 'ro'}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _calls_during_run(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The calls between the worlds' open and close lines (results.py reconnects after close)."""
    closed = next(i for i, e in enumerate(entries) if e.get("event") == "close")
    return [e for e in entries[:closed] if "event" not in e]


# ---- the gate's decision ---------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["ListKmipServers", "RetrievePropertiesEx", "QueryCryptoKeyStatus",
                                    "RetrieveKmipServersStatus_Task", "IsKmsClusterActive", "HasPrivilegeOnEntity",
                                    "QueryView"])   # OptionManager: VTPM-CLONE-COPY reads a vpxd setting
def test_read_only_methods_pass_a_closed_gate(method: str) -> None:
    MutationGate(allow_mutations=False).check_vim("vc-a", method, "CryptoManager", {})


@pytest.mark.parametrize("method", ["RegisterKmipServer", "UploadClientCert", "UploadKmipServerCert", "MarkDefault",
                                    "GenerateKey", "ReconfigVM_Task", "Destroy_Task", "PowerOnVM_Task",
                                    "SetEntityPermissions", "CryptoManagerHostEnable", "SomeFutureMethod_Task"])
def test_mutating_and_unknown_methods_are_refused_with_a_safety_reason(method: str) -> None:
    assert not is_read_only(method)
    with pytest.raises(MutationRefused, match=rf"^safety: {method} on vm-1 \(vc-a\) changes the target; .*allow_mutations: false"):
        MutationGate(allow_mutations=False).check_vim("vc-a", method, "vm-1", {})
    MutationGate(allow_mutations=True).check_vim("vc-a", method, "vm-1", {})


def test_a_lab_provider_is_protected_even_when_mutations_are_allowed() -> None:
    gate = MutationGate(allow_mutations=True)
    gate.protect_provider("lab-kms")
    spec = vim.encryption.KmipServerSpec(clusterId=vim.encryption.KeyProviderId(id="lab-kms"),
                                         info=vim.encryption.KmipServerInfo(name="x", address="a", port=1))
    for method, kwargs in (("RegisterKmipServer", {"server": spec}),
                           ("UploadClientCert", {"cluster": vim.encryption.KeyProviderId(id="lab-kms")}),
                           ("RemoveKmipServer", {"clusterId": vim.encryption.KeyProviderId(id="lab-kms")})):
        with pytest.raises(MutationRefused, match="belongs to the lab"):
            gate.check_vim("vc-a", method, "CryptoManager", kwargs)
    gate.check_vim("vc-a", "GenerateKey", "CryptoManager", {"keyProvider": vim.encryption.KeyProviderId(id="lab-kms")})
    gate.check_vim("vc-a", "RegisterKmipServer", "CryptoManager", {"server": vim.encryption.KmipServerSpec(
        clusterId=vim.encryption.KeyProviderId(id="vcrypt-run-main-0-kms"), info=spec.info)})


def test_kmip_mutations_the_harness_issues_are_gated() -> None:
    closed = MutationGate(allow_mutations=False)
    closed.check_kmip("127.0.0.1:5696", "Get")
    closed.check_kmip("127.0.0.1:5696", "GetAttributes")
    for operation in ("Create", "Activate", "Revoke", "Destroy", "Register"):
        with pytest.raises(MutationRefused, match=f"^safety: KMIP {operation}"):
            closed.check_kmip("127.0.0.1:5696", operation)


# ---- through the client, against the fake's own log -------------------------------------------------
def test_a_refused_call_never_reaches_the_fake_and_the_log_catches_one_that_does(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    inventory = parse_inventory(yaml.safe_load(_inventory(tmp_path, False, log).read_text()), tmp_path / "i.yaml")
    with open_environment(inventory, workdir=tmp_path / "env") as env:
        si = env.service_instance("vc-a")
        closed = VCenterClient("vc-a", si, inventory.timeouts, "fake", gate=MutationGate.for_inventory(inventory))
        place = placement(closed, "DC0", "DC0_C0")
        served = len(env.fake_vcenter("vc-a").call_log)

        with pytest.raises(MutationRefused, match="^safety: CreateVM_Task"):
            vms.create_vm(closed, place, "vcrypt-never", "")
        with pytest.raises(MutationRefused, match="^safety: RegisterKmipServer"):
            keys.register_unreachable_provider(closed, "vcrypt-never-kms", 9)
        assert len(env.fake_vcenter("vc-a").call_log) == served, "a refused call reached the fake"

        # Past the gate (a raw pyVmomi call): the fake's log must see it, both ways.
        si.content.cryptoManager.RegisterKmipServer(vim.encryption.KmipServerSpec(
            clusterId=vim.encryption.KeyProviderId(id="past-the-gate"),
            info=vim.encryption.KmipServerInfo(name="s", address="127.0.0.1", port=9)))
    calls = [e for e in _log(log) if e.get("method") == "RegisterKmipServer"]
    assert len(calls) == 1 and calls[0]["mutating_name"] and calls[0]["changed"], calls


def test_every_suite_read_only_makes_no_mutating_call_by_the_fakes_own_log(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    inventory = _inventory(tmp_path, False, log)
    proc = subprocess.run([sys.executable, "-c", "from harness.cli import main; main()", "run", "--inventory",
                           str(inventory), "--reports", str(tmp_path / "reports"), "--run-id", "read-only-proof"],
                          cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]

    tests = json.loads((tmp_path / "reports" / "read-only-proof" / "results.json").read_text())["tests"]
    outcomes = {t["outcome"] for t in tests}
    assert outcomes <= {"passed", "skipped"}, [t for t in tests if t["outcome"] not in ("passed", "skipped")]
    assert any(t["outcome"] == "passed" for t in tests), "reads still decide something"
    reasons = [t["message"] for t in tests if t["outcome"] == "skipped"]
    assert all(r.split(":")[0] in ("safety", "capability", "version") for r in reasons), reasons
    assert any("changes the target" in r for r in reasons), "no test reached the gate itself"

    entries = _log(log)
    calls = _calls_during_run(entries)
    methods = {c["method"] for c in calls}
    assert len(calls) > 50 and {"ListKmipServers", "RetrievePropertiesEx", "Login"} <= methods, methods
    mutating = [c for c in calls if c["changed"] or c["mutating_name"]]
    assert mutating == [], mutating
    for name in ("vc-a", "vc-b"):
        opened = next(e for e in entries if e.get("event") == "open" and e["vcenter"] == name)
        closed = next(e for e in entries if e.get("event") == "close" and e["vcenter"] == name)
        assert opened["digest"] == closed["digest"], f"{name}'s world changed during a read-only run"


def test_the_audits_read_methods_are_all_on_the_gates_read_only_list() -> None:
    from harness.commands.audit import READ_METHODS
    from harness.safety import READ_ONLY_VIM_METHODS
    assert READ_METHODS <= READ_ONLY_VIM_METHODS, sorted(READ_METHODS - READ_ONLY_VIM_METHODS)
