"""The vSphere Native Key Provider (RULES: NKP-*, vSphere 7.0 Update 2 and later).

An NKP has no KMIP server: vCenter makes its key derivation key and the keys derive from it, so the
KMS-side checks of these tests are not observable anywhere and are not made (the `kms` fixture answers
*not observable* for an NKP's keys). The SOAP API cannot create, back up or restore an NKP (vSphere
Automation REST and the vSphere Client can): on a lab the NKP is a precondition the inventory declares
(`key_provider: {id, type: native}` on vc-a, and on vc-b once its backup was restored there); the fake
creates and restores one on cue through the control facade. Which half of the cross-vCenter pair a lab
can show depends on whether vc-b has the NKP: the other half is a capability skip naming it.
"""
from __future__ import annotations

from typing import Any

import pytest

from harness.checks import (arrived, check_equal, check_that, positive_control, refused, refused_crossing,
                            unchanged)
from harness.targets.control import NoFaultInjection
from harness.vsphere import clones, crypto, keys, providers, vms

pytestmark = pytest.mark.requires("native_key_provider", "vm_encryption", "key_providers", "storage_policies")

NO_KEY_YET = ""   # an empty key id in the CryptoSpec: vCenter makes the NKP key (vm-operator sends it so)


@pytest.fixture
def native_provider(scratch: Any, environment: Any, inventory: Any, vc: Any, kms: Any) -> str:
    """vc's Native Key Provider: the one the inventory declares, else one the fake creates for this test (the
    lab precondition no SOAP call can set up); removed at teardown after the test's VMs (LIFO)."""
    declared = inventory.vcenter(vc.name).key_provider
    if declared is not None:
        kms.native.add(declared.id)
        return declared.id
    control = environment.control(vc.name)
    if isinstance(control, NoFaultInjection):
        pytest.skip(f"capability: {vc.name} has no Native Key Provider declared (key_provider: {{id, type: native}}) "
                    "and the SOAP API cannot create one")
    provider_id = scratch.name("nkp")
    control.create_native_key_provider(provider_id)
    scratch.cleanup.push(f"remove Native Key Provider {provider_id}",
                         lambda: control.remove_native_key_provider(provider_id))
    kms.native.add(provider_id)
    return provider_id


def _nkp_encrypted_vm(scratch: Any, vc: Any, place: Any, native_provider: str, policy: str, label: str) -> Any:
    vm = scratch.vm(vc, place, label)
    crypto.encrypt(vc, vm, (native_provider, NO_KEY_YET), policy)
    return vm


def _listed(client: Any, provider_id: str) -> Any:
    """The provider as ListKmsClusters lists it on `client` (None when absent), with its facts as evidence."""
    info = providers.all_providers(client).get(provider_id)
    client.recorder.note(f"key provider {provider_id} on {client.name}",
                         providers.facts(info) if info is not None else "not listed")
    return info


# ---- NKP-ENCRYPT ----------------------------------------------------------------------------------
@pytest.mark.rule("NKP-ENCRYPT")
@pytest.mark.test_id("2c442330-2838-4ebc-b5ed-b611d554c873")
def test_a_native_key_provider_is_listed_as_native_and_encrypts_a_vm_with_a_key_vcenter_made(
        scratch, vc, place, policies_a, native_provider):
    info = _listed(vc, native_provider)
    check_that(f"key provider {native_provider} listed by ListKmsClusters", info is not None, "listed",
               "listed" if info is not None else "not listed")
    check_equal(f"managementType of {native_provider}", providers.NATIVE, info.managementType)
    check_that(f"{native_provider} has no KMIP server", not info.servers, "no server",
               f"servers {[s.name for s in info.servers or []]}")

    vm = _nkp_encrypted_vm(scratch, vc, place, native_provider, policies_a.encryption, "nkp-enc")
    after = vms.state(vc, vm, label="VM encrypted by the Native Key Provider", phase="after")
    check_that("VM home key", after.key is not None and after.key[0] == native_provider and bool(after.key[1]),
               f"a key id vCenter made on {native_provider}", f"{after.key}")
    disks = list(after.disk_keys)
    check_that("disk keys", bool(disks) and all(k is not None and k[0] == native_provider for k in disks),
               f"every disk on a key of {native_provider}", f"{disks}")
    vc.recorder.note("KMS side", "not observable: a Native Key Provider has no KMIP server (no read is made)")


# ---- NKP-XVC-MISSING ------------------------------------------------------------------------------
@pytest.mark.rule("NKP-XVC-MISSING")
@pytest.mark.requires("cross_vcenter")
@pytest.mark.test_id("3e0d28a4-49fc-424b-8f10-a6cd0ca5be7c")
@pytest.mark.parametrize("operation", ["clone", "migrate"])
def test_an_nkp_encrypted_vm_cannot_go_to_a_vcenter_without_that_native_key_provider(
        operation, scratch, environment, vc, vc_b, place, place_b, policies_a, native_provider, provider_b):
    if _listed(vc_b, native_provider) is not None:
        pytest.skip(f"capability: {vc_b.name} has Native Key Provider {native_provider} (restored there): a "
                    "destination without it cannot be arranged")
    standard = provider_b   # the shared KMIP provider of vc-b; the control's VM needs it on vc-a too
    if standard not in keys.list_providers(vc):
        pytest.skip(f"capability: {vc.name} and {vc_b.name} share no KMIP key provider for the positive control")
    dest = clones.cross_destination(environment, vc_b, place_b)

    # Positive control: the same crossing of a VM on the shared KMIP provider arrives (no NKP involved).
    twin, _ = scratch.encrypted_vm(vc, place, standard, policies_a.encryption, f"kmip-twin-{operation}")
    twin_name = scratch.name("kmip-twin-copy") if operation == "clone" else vms.state(vc, twin).name
    positive_control(lambda: arrived(scratch, vc_b, twin_name,
                                     lambda: clones.clone_or_migrate(vc, twin, dest, operation, twin_name,
                                                                     scratch.marker)),
                     f"cross-vCenter {operation} of a VM on the shared KMIP provider {standard}")

    vm = _nkp_encrypted_vm(scratch, vc, place, native_provider, policies_a.encryption, f"nkp-src-{operation}")
    before = vms.state(vc, vm, label="NKP-encrypted source before", phase="before")
    check_that("source key", before.key is not None and before.key[0] == native_provider,
               f"a key of {native_provider}", f"{before.key}")
    name = scratch.name("nkp-copy") if operation == "clone" else before.name
    refused_crossing(scratch, vc_b, name, lambda: clones.clone_or_migrate(vc, vm, dest, operation, name, scratch.marker),
                     f"cross-vCenter {operation} of an NKP-encrypted VM to {vc_b.name}, which lacks {native_provider}",
                     source=(vc, vm))
    unchanged(before, vms.state(vc, vm, label="NKP-encrypted source after", phase="after"),
              f"refused cross-vCenter {operation}")


# ---- NKP-XVC-RESTORED -----------------------------------------------------------------------------
def _restored_on(environment: Any, inventory: Any, scratch: Any, vc: Any, vc_b: Any, provider_id: str) -> None:
    """vc_b holds `provider_id` restored from vc's backup: the lab's (declared on vc-b), or the fake restores it."""
    declared = inventory.vcenter(vc_b.name).key_provider
    if declared is not None and declared.id == provider_id:
        return
    source, dest = environment.control(vc.name), environment.control(vc_b.name)
    if isinstance(source, NoFaultInjection) or isinstance(dest, NoFaultInjection):
        pytest.skip(f"capability: {vc_b.name} has no restored copy of Native Key Provider {provider_id} (restore "
                    f"its backup there, then declare key_provider: {{id: {provider_id}, type: native}} on {vc_b.name})")
    dest.restore_native_key_provider(provider_id, source.native_key_provider_backup(provider_id))
    scratch.cleanup.push(f"remove restored Native Key Provider {provider_id} from {vc_b.name}",
                         lambda: dest.remove_native_key_provider(provider_id))


@pytest.mark.rule("NKP-XVC-RESTORED")
@pytest.mark.requires("cross_vcenter")
@pytest.mark.test_id("a5fd1dc1-01e8-49a8-8f68-34050bc0f3ff")
@pytest.mark.parametrize("operation", ["clone", "migrate"])
def test_with_the_native_key_provider_restored_on_the_destination_an_nkp_encrypted_vm_crosses_on_its_key(
        operation, scratch, environment, inventory, vc, vc_b, place, place_b, policies_a, native_provider):
    _restored_on(environment, inventory, scratch, vc, vc_b, native_provider)
    here, there = _listed(vc, native_provider), _listed(vc_b, native_provider)
    check_that(f"{native_provider} on {vc_b.name}", there is not None and there.managementType == providers.NATIVE,
               "a Native Key Provider", "not listed" if there is None else f"a {there.managementType} provider")
    if here.keyId is not None or there.keyId is not None:   # KB 378053: the key IDs must match after the restore
        check_equal(f"keyId of {native_provider} on {vc_b.name} (as on {vc.name})", here.keyId, there.keyId)

    vm = _nkp_encrypted_vm(scratch, vc, place, native_provider, policies_a.encryption, f"nkp-xvc-{operation}")
    before = vms.state(vc, vm, label="NKP-encrypted source before", phase="before")
    name = scratch.name("nkp-restored-copy") if operation == "clone" else before.name
    dest = clones.cross_destination(environment, vc_b, place_b)
    copy = arrived(scratch, vc_b, name, lambda: clones.clone_or_migrate(vc, vm, dest, operation, name, scratch.marker))
    after = vms.state(vc_b, copy, label=f"{operation} on {vc_b.name}", phase="after")
    check_equal(f"key of the {operation} on {vc_b.name}", before.key, after.key)


# ---- NKP-BACKUP-FIRST -----------------------------------------------------------------------------
@pytest.mark.rule("NKP-BACKUP-FIRST")
@pytest.mark.test_id("27fe339b-4276-4adc-94d7-b6f9419a9777")
def test_a_native_key_provider_encrypts_only_once_it_has_been_backed_up(scratch, environment, vc, place, policies_a,
                                                                        kms):
    """Before-and-after on one provider: never backed up, the encrypt fails and changes nothing; after its backup,
    the same encrypt of the same VM succeeds (which is also the refusal's positive control)."""
    control = environment.control(vc.name)
    if isinstance(control, NoFaultInjection):
        pytest.skip(f"capability: {vc.name} cannot be given a Native Key Provider that was never backed up mid-run "
                    "(only the vSphere Client or the REST API create one, and a lab's is backed up before use)")
    provider_id = scratch.name("nkp-new")
    control.create_native_key_provider(provider_id, backed_up=False)
    scratch.cleanup.push(f"remove Native Key Provider {provider_id}",
                         lambda: control.remove_native_key_provider(provider_id))
    kms.native.add(provider_id)
    check_equal(f"hasBackup of {provider_id} before its backup", False, _listed(vc, provider_id).hasBackup)

    vm = scratch.vm(vc, place, "nkp-unbacked")
    before = vms.state(vc, vm, label="VM before", phase="before")
    refused(lambda: crypto.encrypt(vc, vm, (provider_id, NO_KEY_YET), policies_a.encryption),
            f"encrypt with Native Key Provider {provider_id}, never backed up")
    unchanged(before, vms.state(vc, vm, label="VM after the refused encrypt", phase="after"), "refused encrypt")

    control.native_key_provider_backup(provider_id)
    check_equal(f"hasBackup of {provider_id} after its backup", True, _listed(vc, provider_id).hasBackup)
    crypto.encrypt(vc, vm, (provider_id, NO_KEY_YET), policies_a.encryption)
    after = vms.state(vc, vm, label="VM encrypted after the backup", phase="after")
    check_that("VM home key after the backup", after.key is not None and after.key[0] == provider_id,
               f"a key of {provider_id}", f"{after.key}")
