"""vcrypt audit: a read-only posture scan that reports what the target has, says what it lacks,
flags PRIV-AUDIT violations, and writes verifiable evidence.

Read-only is proven by recording every method the target saw during the audit (the fake's
call_log; on vcsim a wrapper around the stub's InvokeMethod) against `READ_METHODS`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pyVmomi import vim

from harness.commands.audit import EXIT_PRIV_FLAGS, READ_METHODS, AuditOutcome, run_audit, summary_lines
from harness.run.cleanup import annotation
from harness.cli import main
from harness.targets.environment import Environment, open_environment
from harness.evidence.manifest import verify_manifest
from harness.inventory.schema import parse_inventory
from harness.vsphere import authz, crypto, find, keys, policies, vms
from harness.vsphere.client import VCenterClient
from harness.vsphere.errors import TargetLacks
from tests.conftest import require_toolchain as _require_toolchain

REPO = Path(__file__).resolve().parents[1]
FAKE = REPO / "inventories" / "fake.yaml"
INJECTED = "<script>alert('audit')</script>"


@pytest.fixture(scope="module")
def place(client: VCenterClient) -> find.Placement:
    return find.placement(client, "DC0", "DC0_C0")


def audited(env: Environment, tmp_path: Path, vcenter: str = "vc-a") -> tuple[AuditOutcome, list[str]]:
    """Run the audit; return it with every method the fake saw meanwhile."""
    fake = env.fake_vcenter(vcenter)
    start = len(fake.call_log)
    outcome = run_audit(env, vcenter, tmp_path / "reports")
    return outcome, [method for _, method in fake.call_log[start:]]


def vm_entry(outcome: AuditOutcome, name: str) -> dict[str, Any]:
    items = outcome.report["vcenters"][0]["vms"]["items"]
    return next(v for v in items if v["name"] == name)


def _encrypted_vm(env: Environment, client: VCenterClient, place: find.Placement) -> tuple[Any, tuple[str, str]]:
    vm = vms.create_vm(client, place, "vcrypt-audit-encrypted", annotation("r-audit"), disks_count=2)
    key = keys.generate_key(client)
    crypto.encrypt(client, vm, key, policies.discover(env.pbm("vc-a")).encryption)
    return vm, key


# ---- fake ------------------------------------------------------------------------------------------
def test_audit_reports_encryption_and_only_reads(env: Environment, client: VCenterClient,
                                                 place: find.Placement, tmp_path: Path) -> None:
    vm, key = _encrypted_vm(env, client, place)
    vms.create_vm(client, place, INJECTED, annotation("r-audit"))

    outcome, methods = audited(env, tmp_path)

    violations = sorted(set(methods) - READ_METHODS)
    assert not violations, f"the audit invoked mutating methods: {violations}"
    assert "RetrieveKmipServersStatus_Task" in methods
    vc = outcome.report["vcenters"][0]
    entry = vm_entry(outcome, "vcrypt-audit-encrypted")
    assert entry["encrypted"] and entry["key"] == {"provider": key[0], "key": key[1]}
    assert [d["key"] for d in entry["disks"]] == [{"provider": key[0], "key": key[1]}] * 2
    assert entry["power"] == "poweredOff" and entry["crypto_state"] in (None, "unlocked")
    assert vm_entry(outcome, INJECTED)["encrypted"] is False
    assert vc["vms"]["encrypted"] >= 1 and vc["vms"]["unencrypted"] >= 5
    providers = {p["id"]: p for p in vc["key_providers"]["items"]}
    assert key[0] in providers and vc["key_providers"]["default"] == env.kms_endpoints["shared"].provider_id
    shared = providers[env.kms_endpoints["shared"].provider_id]
    assert shared["overall_status"] == "green" and shared["servers"][0]["client_trusts_server"] is True
    assert shared["servers"][0]["cert"]["seconds_before_expire"] > 0
    assert vc["key_providers"]["status_task"]["task"], "the status task is recorded"
    assert vc["hosts"]["total"] >= 1 and vc["not_available"] == []
    # evidence: files, manifest, escaped HTML, a console summary
    assert {p.name for p in outcome.folder.iterdir()} == {"audit.json", "audit.html", "manifest.sha256"}
    assert verify_manifest(outcome.folder) == []
    assert json.loads((outcome.folder / "audit.json").read_text())["vcenters"][0]["name"] == "vc-a"
    html = (outcome.folder / "audit.html").read_text()
    assert INJECTED not in html and "&lt;script&gt;" in html and "vcrypt-audit-encrypted" in html
    assert "http://" not in html and "https://" not in html.replace(vc["url"], "")
    summary = "\n".join(summary_lines(outcome))
    assert "encrypted" in summary and "PRIV-AUDIT: no flags" in summary


def test_round_trips_do_not_grow_with_vms(env: Environment, client: VCenterClient, place: find.Placement,
                                          tmp_path: Path) -> None:
    _, first = audited(env, tmp_path / "a")
    for i in range(6):
        vms.create_vm(client, place, f"vcrypt-audit-many-{i}", annotation("r-audit"))
    _, second = audited(env, tmp_path / "b")
    assert len(second) == len(first), "the audit's calls grew with the number of VMs"


def test_priv_audit_flags_decrypt_beyond_the_allow_list(env: Environment, client: VCenterClient,
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    baseline, _ = audited(env, tmp_path / "base")
    assert baseline.flags == [] and baseline.exit_code == 0, "Admin alone is on the allow-list"
    assert any(r["role"] == "Admin" and r["allow_listed"] for r in baseline.report["vcenters"][0]["cryptographer_roles"])

    env.fake_vcenter("vc-a").add_user("decryptor@vsphere.local", "pw")  # an SSO user exists on a real vCenter
    role = authz.add_role(client, "vcrypt-decryptors", ["Cryptographer.Decrypt", "System.View"])
    authz.grant(client, client.content.rootFolder, "VSPHERE.LOCAL\\decryptor", role)
    try:
        outcome, methods = audited(env, tmp_path / "flag")
        assert not set(methods) - READ_METHODS
        assert outcome.exit_code == EXIT_PRIV_FLAGS
        assert [(f["role"], f["principal"]) for f in outcome.flags] == [("vcrypt-decryptors", "VSPHERE.LOCAL\\decryptor")]
        assert "PRIV-AUDIT" in (outcome.folder / "audit.html").read_text()

        for allowed in (["Admin", "vcrypt-decryptors"], ["Admin", "decryptor@vsphere.local"]):
            monkeypatch.setattr(env, "inventory", env.inventory.model_copy(update={
                "audit": env.inventory.audit.model_copy(update={"decrypt_allow_list": allowed})}))
            assert audited(env, tmp_path / allowed[1])[0].flags == [], f"allow-listed: {allowed[1]}"
    finally:
        authz.revoke(client, client.content.rootFolder, "VSPHERE.LOCAL\\decryptor")
        authz.remove_role(client, role)


def test_missing_capability_is_reported_not_a_crash(env: Environment, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def lacks(client: Any, *args: Any, **kwargs: Any) -> Any:
        raise TargetLacks(client.name, "RetrieveAllPermissions")
    monkeypatch.setattr(authz, "roles_with", lacks)
    outcome, _ = audited(env, tmp_path)
    assert {"method": "RetrieveAllPermissions",
            "reason": "not available on this target: RetrieveAllPermissions"} in outcome.report["vcenters"][0]["not_available"]


def test_cli_bad_inventory_and_vcenter(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["audit", "--inventory", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2 and result.output.strip().count("\n") == 0 and "Traceback" not in result.output
    result = runner.invoke(main, ["audit", "--inventory", str(FAKE), "--vcenter", "nope"])
    assert result.exit_code == 2 and "nope" in result.output


def test_cli_audit_on_the_fake(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["audit", "--inventory", str(FAKE), "--vcenter", "vc-b",
                                       "--reports", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "vc-b (fake" in result.output and "PRIV-AUDIT: no flags" in result.output
    [folder] = list(tmp_path.glob("audit-*"))
    assert verify_manifest(folder) == []


# ---- vcsim -----------------------------------------------------------------------------------------
def test_audit_on_vcsim(tmp_path: Path) -> None:
    _require_toolchain()
    from harness.vcsim import VcsimProcess, build_launcher
    with VcsimProcess(tmp_path / "sim", binary=build_launcher(), api_version="7.0.3.0") as sim:
        inventory = parse_inventory({"vcenters": [{"name": "sim", "target": "vcsim", "url": sim.url, "user": "u",
                                                   "tls": {"insecure": True}}]}, tmp_path / "vcsim.yaml")
        with open_environment(inventory, workdir=tmp_path / "env") as environment:
            stub = environment.service_instance("sim")._stub
            seen: list[str] = []
            original = stub.InvokeMethod

            def record(mo: Any, info: Any, args: Any) -> Any:
                seen.append(info.wsdlName)
                return original(mo, info, args)
            stub.InvokeMethod = record
            outcome = run_audit(environment, None, tmp_path / "reports")
    assert seen and not set(seen) - READ_METHODS, f"mutating methods on vcsim: {sorted(set(seen) - READ_METHODS)}"
    vc = outcome.report["vcenters"][0]
    lacking = {u["method"] for u in vc["not_available"]}
    assert {"ListKmipServers", "ListKmsClusters"} <= lacking
    assert all(u["reason"] == f"not available on this target: {u['method']}" for u in vc["not_available"])
    assert vc["vms"]["total"] >= 1 and vc["hosts"]["total"] >= 1 and vc["vms"]["encrypted"] == 0
    assert verify_manifest(outcome.folder) == []
    assert "not available on this target: ListKmipServers" in (outcome.folder / "audit.html").read_text()


def test_vim_types_used_exist() -> None:
    """The paths the audit reads name real properties (a typo would silently read nothing)."""
    from harness.commands.audit import HOST_PATHS, VM_PATHS
    for vim_type, paths in ((vim.VirtualMachine, VM_PATHS), (vim.HostSystem, HOST_PATHS)):
        for path in paths:
            current: Any = vim_type
            for part in path.split("."):
                current = next(p.type for p in current._GetPropertyList() if p.name == part)
