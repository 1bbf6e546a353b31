"""The Native Key Provider's harness pieces (issue 25 family 5), outside the suites.

- the inventory option `key_provider: {id, type: native}` and the gate protecting the declared provider;
- KMS-side reads of an NKP's keys: never a pass, never a failure (not observable, recorded);
- the fake's NKP: listed as native with no server, keys derived from the KDK, a restored backup yields the same
  key id and key material, and the nkp-restore-new-kdk defect breaks exactly that;
- fake-nkp.yaml seeds the declared NKP on both vCenters (restored on vc-b);
- the audit reports each NKP and whether it is backed up, in its JSON and its console summary.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pyVmomi import vmodl

from harness.commands.audit import READ_METHODS, native_summary, run_audit, summary_lines
from harness.evidence.recorder import Recorder, reset_recorder, use_recorder
from harness.inventory.errors import InventoryError
from harness.inventory.schema import load_inventory, parse_inventory
from harness.run.kms_reads import KmsEvidence, NotObservable
from harness.safety import MutationGate, lab_provider_ids
from harness.targets.environment import Environment, open_environment
from harness.vsphere import providers
from harness.vsphere.client import VCenterClient

REPO = Path(__file__).resolve().parents[1]
FAKE_NKP = REPO / "inventories" / "fake-nkp.yaml"


def _inventory(key_provider: object) -> Any:
    vc = {"name": "vc-a", "target": "fake", "key_provider": key_provider}
    return parse_inventory({"vcenters": [vc]}, Path("/tmp/inventory.yaml"))


# ---- inventory ---------------------------------------------------------------------------------------
def test_a_declared_native_key_provider_is_parsed_and_protected_as_the_labs() -> None:
    inv = _inventory({"id": "nkp-1", "type": "native"})
    assert inv.vcenters[0].key_provider is not None and inv.vcenters[0].key_provider.id == "nkp-1"
    assert "nkp-1" in lab_provider_ids(inv)


@pytest.mark.parametrize("bad", [{"id": "nkp-1", "type": "kmip"}, {"id": "nkp-1"}, {"type": "native"},
                                 {"id": "bad id", "type": "native"}])
def test_a_key_provider_entry_must_name_an_id_and_type_native(bad: object) -> None:
    with pytest.raises(InventoryError, match="key_provider"):
        _inventory(bad)


# ---- KMS-side reads ----------------------------------------------------------------------------------
def test_reads_of_a_native_providers_keys_are_not_observable_and_recorded() -> None:
    kms = KmsEvidence({})
    kms.native.add("nkp-1")
    recorder = Recorder()
    token = use_recorder(recorder)
    try:
        answers = kms.key_exists(("nkp-1", "k")), kms.key_absent(("nkp-1", "k")), kms.key_state(("nkp-1", "k"))
    finally:
        reset_recorder(token)
    assert all(isinstance(a, NotObservable) and a for a in answers)
    assert len(recorder.not_observable) == 1 and "Native Key Provider" in recorder.not_observable[0]
    assert recorder.not_observable[0].startswith("capability:")
    assert [r["op"] for r in recorder.kmip] == ["exists", "absent", "state"]


def test_a_test_that_needs_the_providers_kms_skips_on_a_native_provider() -> None:
    kms = KmsEvidence({"shared": SimpleNamespace(provider_id="kmip-1")})
    kms.native.add("nkp-1")
    assert kms.for_provider("kmip-1").provider_id == "kmip-1"
    kms.require_kmip("kmip-1")
    for call in (lambda: kms.for_provider("nkp-1"), lambda: kms.require_kmip("nkp-1")):
        with pytest.raises(pytest.skip.Exception, match="^capability: key provider nkp-1 is a vSphere Native"):
            call()


# ---- the fake's NKP ----------------------------------------------------------------------------------
def _client(env: Environment, name: str) -> VCenterClient:
    return VCenterClient(name, env.service_instance(name), env.inventory.timeouts, "fake",
                         relogin=lambda: env.relogin(name), gate=MutationGate(allow_mutations=True))


def test_the_fakes_native_provider_is_listed_as_native_and_a_restore_keeps_its_key(env: Environment) -> None:
    a, b = env.control("vc-a"), env.control("vc-b")
    a.create_native_key_provider("nkp-t")
    try:
        info = providers.all_providers(_client(env, "vc-a"))["nkp-t"]
        assert (info.managementType, list(info.servers or []), info.hasBackup) == (providers.NATIVE, [], True)
        assert "nkp-t" not in providers.all_providers(_client(env, "vc-b"))
        b.restore_native_key_provider("nkp-t", a.native_key_provider_backup("nkp-t"))
        restored = providers.all_providers(_client(env, "vc-b"))["nkp-t"]
        assert restored.managementType == providers.NATIVE and restored.keyId == info.keyId
        from harness.fakevc.kmip import keys as fake_keys
        key = fake_keys.generate_key(env.fake_vcenter("vc-a"), "nkp-t")
        assert fake_keys.kek(env.fake_vcenter("vc-a"), key) == fake_keys.kek(env.fake_vcenter("vc-b"), key)
    finally:
        b.remove_native_key_provider("nkp-t")
        a.remove_native_key_provider("nkp-t")
    assert "nkp-t" not in providers.all_providers(_client(env, "vc-a"))


def test_the_restore_defect_gives_the_destination_a_different_key(tmp_path: Path) -> None:
    with open_environment(REPO / "inventories" / "fake.yaml", workdir=tmp_path,
                          defects=["nkp-restore-new-kdk"]) as env:
        a, b = env.control("vc-a"), env.control("vc-b")
        a.create_native_key_provider("nkp-d")
        b.restore_native_key_provider("nkp-d", a.native_key_provider_backup("nkp-d"))
        here = providers.all_providers(_client(env, "vc-a"))["nkp-d"]
        there = providers.all_providers(_client(env, "vc-b"))["nkp-d"]
        assert here.keyId != there.keyId


def test_fake_nkp_inventory_seeds_the_declared_provider_on_both_vcenters(tmp_path: Path) -> None:
    inv = load_inventory(FAKE_NKP)
    assert [vc.key_provider.id if vc.key_provider else None for vc in inv.vcenters] == ["vcrypt-nkp", "vcrypt-nkp"]
    with open_environment(inv, workdir=tmp_path) as env:
        infos = [providers.all_providers(_client(env, name))["vcrypt-nkp"] for name in ("vc-a", "vc-b")]
        assert {i.managementType for i in infos} == {providers.NATIVE} and infos[0].keyId == infos[1].keyId


# ---- audit -------------------------------------------------------------------------------------------
def test_the_audit_reports_each_native_provider_and_its_backup_read_only(env: Environment, tmp_path: Path) -> None:
    control = env.control("vc-a")
    control.create_native_key_provider("nkp-audit")
    fake = env.fake_vcenter("vc-a")
    start = len(fake.call_log)
    try:
        outcome = run_audit(env, "vc-a", tmp_path / "reports")
    finally:
        control.remove_native_key_provider("nkp-audit")
    assert not {m for _, m in fake.call_log[start:]} - READ_METHODS
    items = {p["id"]: p for p in outcome.report["vcenters"][0]["key_providers"]["items"]}
    assert items["nkp-audit"]["management_type"] == providers.NATIVE
    assert items["nkp-audit"]["native"]["has_backup"] is True
    assert not any("native" in p for pid, p in items.items() if pid != "nkp-audit"), "only NKPs carry native facts"
    assert "  native key provider nkp-audit: backed up" in summary_lines(outcome)
    html = (outcome.folder / "audit.html").read_text(encoding="utf-8")
    assert "<th>Native Key Provider</th>" in html and "nkp-audit" in html


@pytest.mark.parametrize(("has_backup", "shown"), [(True, "backed up"), (False, "NOT backed up"),
                                                   (None, "backup state not shown by this API version")])
def test_the_audit_summary_says_whether_a_native_provider_is_backed_up(has_backup: Any, shown: str) -> None:
    items = [{"id": "nkp", "native": {"has_backup": has_backup}}, {"id": "kmip"}]
    assert native_summary(items) == [f"  native key provider nkp: {shown}"]


# ---- GenerateKey on a declared NKP (harness/run/session_providers.py) ---------------------------------
class _Client:
    """Just enough of a VCenterClient for GenerateKey: answers `result` or raises `fault`."""

    def __init__(self, allow: bool, result: Any = None, fault: Exception | None = None) -> None:
        self.name, self.gate, self.calls = "vc-a", MutationGate(allow_mutations=allow), []
        self.content = SimpleNamespace(cryptoManager=object())
        self._result, self._fault = result, fault

    def invoke(self, obj: Any, method: str, **kwargs: Any) -> Any:
        self.calls.append(method)
        if self._fault is not None:
            raise self._fault
        return self._result


def test_a_vcenter_that_generates_nkp_keys_lets_the_suites_use_the_nkp() -> None:
    from harness.run.session_providers import _require_key_generation
    client = _Client(True, SimpleNamespace(success=True))
    _require_key_generation(client, "nkp-1")
    assert client.calls == ["GenerateKey"]
    read_only = _Client(False)
    _require_key_generation(read_only, "nkp-1")
    assert read_only.calls == [], "no GenerateKey without allow_mutations"


@pytest.mark.parametrize("client", [
    _Client(True, SimpleNamespace(success=False, reason="not supported")),
    _Client(True, fault=vmodl.RuntimeFault(msg="Cannot generate keys with native key provider")),
])
def test_a_vcenter_refusing_generatekey_on_the_nkp_makes_its_tests_capability_skips(client: _Client) -> None:
    from harness.run.session_providers import _require_key_generation
    with pytest.raises(pytest.skip.Exception, match=r"^capability: vc-a does not generate keys on Native Key Provider "
                                                    r"nkp-1 with GenerateKey \("):
        _require_key_generation(client, "nkp-1")
