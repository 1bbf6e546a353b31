"""Cross-vCenter migration and clone between the two fakes (vc-a -> vc-b) with a ServiceLocator."""
from __future__ import annotations

from typing import Any, Iterator

import pytest
from pyVmomi import vim, vmodl

from tests.fakevc.conftest import make_vm, wait
from tests.fakevc.test_vm_crypto import (DEDICATED, bytes_at_rest, destroy, disk_keys, empty_policy, enc_policy,
                                         encrypt, find_vm, key_of, new_key, power_on, refused, seeded, snapshot,
                                         snapshot_keys, state, unique)
from tests.fakevc.test_vm_crypto import enc_vm, made, si_67  # noqa: F401 - fixtures


# ---- arranging -----------------------------------------------------------------------------------------
def locator(env: Any, si_b: Any, *, password: str | None = None, uuid: str | None = None) -> Any:
    entry = env.inventory.vcenter("vc-b")
    return vim.ServiceLocator(
        instanceUuid=uuid or si_b.content.about.instanceUuid, url=entry.service_url,
        credential=vim.ServiceLocator.NamePassword(username=entry.user, password=password or entry.password()))


def _placement(si: Any, host_name: str | None = None) -> tuple[Any, Any, Any, Any]:
    dc = si.content.rootFolder.childEntity[0]
    hosts = [h for cr in dc.hostFolder.childEntity for h in cr.host]
    host = next(h for h in hosts if h.name == host_name) if host_name else hosts[0]
    return dc, host, host.parent.resourcePool, dc.datastore[0]


def dest_spec(env: Any, si_b: Any, host_name: str | None = None, **extra: Any) -> Any:
    dc, host, pool, datastore = _placement(si_b, host_name)
    return vim.vm.RelocateSpec(service=locator(env, si_b), host=host, pool=pool, datastore=datastore,
                               folder=dc.vmFolder, **extra)


def clone_to_b(env: Any, si_b: Any, vm: Any, name: str, config: Any = None, **location: Any) -> Any:
    spec = vim.vm.CloneSpec(location=dest_spec(env, si_b, **location), template=False, powerOn=False, config=config)
    return vm.CloneVM_Task(folder=si_b.content.rootFolder.childEntity[0].vmFolder, name=name, spec=spec)


@pytest.fixture
def on_b(si_b: Any) -> Iterator[list[str]]:
    """Names of VMs a test lands on vc-b; destroyed there at teardown."""
    names: list[str] = []
    yield names
    for name in names:
        destroy(find_vm(si_b, name))


def gone(vm: Any) -> bool:
    try:
        vm.name
        return False
    except vmodl.fault.ManagedObjectNotFound:
        return True


# ---- XVC-MIGRATE / XVC-POWER ------------------------------------------------------------------------------
@pytest.mark.parametrize("powered", ["off", "on"])
def test_encrypted_vm_migrates_with_its_key_and_bytes(env, si_a, si_b, enc_vm, on_b, powered):
    name = enc_vm.name
    on_b.append(name)
    if powered == "on":
        power_on(enc_vm)
    key, disks_before, data = key_of(enc_vm.config.keyId), disk_keys(enc_vm), bytes_at_rest(env, enc_vm)
    wait(enc_vm.RelocateVM_Task(spec=dest_spec(env, si_b)))
    moved = find_vm(si_b, name)
    assert moved is not None and gone(enc_vm) and find_vm(si_a, name) is None
    assert key_of(moved.config.keyId) == key and disk_keys(moved) == disks_before
    assert moved.runtime.powerState == ("poweredOn" if powered == "on" else "poweredOff")
    assert moved.config.migrateEncryption == "required"
    assert bytes_at_rest(env, moved, vc="vc-b") == data


def test_snapshots_travel_with_the_vm(env, si_b, enc_vm, on_b):
    name = enc_vm.name
    on_b.append(name)
    snapshot(enc_vm, "s1")
    snapshot(enc_vm, "s2")
    keys = snapshot_keys(enc_vm)
    wait(enc_vm.RelocateVM_Task(spec=dest_spec(env, si_b)))
    assert snapshot_keys(find_vm(si_b, name)) == keys


def test_unencrypted_vm_migrates(env, si_b, vm, on_b):
    on_b.append(vm.name)
    wait(vm.RelocateVM_Task(spec=dest_spec(env, si_b)))
    assert find_vm(si_b, on_b[0]).config.keyId is None and gone(vm)


def test_wrong_password_is_refused_and_the_vm_stays(env, si_b, enc_vm):
    spec = dest_spec(env, si_b)
    spec.service = locator(env, si_b, password="wrong-password")
    before = state(enc_vm)
    refused(enc_vm.RelocateVM_Task(spec=spec), vim.fault.InvalidLogin)
    assert state(enc_vm) == before and find_vm(si_b, enc_vm.name) is None


def test_wrong_instance_uuid_is_refused(env, si_b, enc_vm):
    spec = dest_spec(env, si_b)
    spec.service = locator(env, si_b, uuid="00000000-0000-0000-0000-000000000000")
    before = state(enc_vm)
    refused(enc_vm.RelocateVM_Task(spec=spec), vmodl.fault.InvalidArgument)
    assert state(enc_vm) == before


# ---- XVC-MIGRATE-NO-DECRYPT / NO-RECRYPT ----------------------------------------------------------------
@pytest.mark.parametrize("how", ["policy", "cryptoSpec", "disk-policy"])
def test_migration_cannot_decrypt(env, si_b, enc_vm, how):
    spec = dest_spec(env, si_b)
    if how == "policy":
        spec.profile = empty_policy()
    elif how == "cryptoSpec":
        spec.cryptoSpec = vim.encryption.CryptoSpecDecrypt()
    else:
        disk = [d for d in enc_vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)][0]
        spec.disk = [vim.vm.RelocateSpec.DiskLocator(diskId=disk.key, datastore=spec.datastore,
                                                     profile=empty_policy())]
    before = state(enc_vm)
    refused(enc_vm.RelocateVM_Task(spec=spec), vmodl.fault.NotSupported)
    assert state(enc_vm) == before and find_vm(si_b, enc_vm.name) is None


def test_migration_keeping_the_encryption_policy_is_fine(env, si_b, enc_vm, on_b):
    on_b.append(enc_vm.name)
    key = key_of(enc_vm.config.keyId)
    wait(enc_vm.RelocateVM_Task(spec=dest_spec(env, si_b, profile=enc_policy())))
    assert key_of(find_vm(si_b, on_b[0]).config.keyId) == key


@pytest.mark.parametrize("kind", ["shallow", "deep", "encrypt"])
def test_migration_cannot_recrypt(env, si_a, si_b, enc_vm, kind):
    key = new_key(si_a)
    crypto = {"shallow": vim.encryption.CryptoSpecShallowRecrypt(newKeyId=key),
              "deep": vim.encryption.CryptoSpecDeepRecrypt(newKeyId=key),
              "encrypt": vim.encryption.CryptoSpecEncrypt(cryptoKeyId=key)}[kind]
    before = state(enc_vm)
    refused(enc_vm.RelocateVM_Task(spec=dest_spec(env, si_b, cryptoSpec=crypto)), vmodl.fault.NotSupported)
    assert state(enc_vm) == before and find_vm(si_b, enc_vm.name) is None


# ---- XVC-HOSTVER ----------------------------------------------------------------------------------------
def test_migration_to_a_pre7_host_is_refused(env, si_b, enc_vm):
    before = state(enc_vm)
    fault = refused(enc_vm.RelocateVM_Task(spec=dest_spec(env, si_b, host_name="DC0_H_legacy")), vmodl.fault.NotSupported)
    assert "6.7" in fault.msg
    assert state(enc_vm) == before and find_vm(si_b, enc_vm.name) is None


def test_migration_from_a_pre7_host_is_refused(env, si_a, si_b, made):
    _, legacy, _, _ = _placement(si_a, "DC0_H_legacy")
    vm = make_vm(si_a, host=legacy)
    made.append(vm)
    encrypt(si_a, vm)
    before = state(vm)
    refused(vm.RelocateVM_Task(spec=dest_spec(env, si_b)), vmodl.fault.NotSupported)
    assert state(vm) == before


def test_unencrypted_vm_may_go_to_a_pre7_host(env, si_b, vm, on_b):
    on_b.append(vm.name)
    wait(vm.RelocateVM_Task(spec=dest_spec(env, si_b, host_name="DC0_H_legacy")))
    assert find_vm(si_b, on_b[0]).runtime.host.name == "DC0_H_legacy"


# ---- KMS-DEDICATED / XVC-DEST-KMS / KMS-SHARED ---------------------------------------------------------
@pytest.fixture
def dedicated_vm(si_a: Any, made: list) -> Any:
    vm = make_vm(si_a)
    made.append(vm)
    encrypt(si_a, vm, new_key(si_a, DEDICATED))
    return vm


def test_vm_on_a_dedicated_kms_cannot_migrate(env, si_b, dedicated_vm):
    before = state(dedicated_vm)
    fault = refused(dedicated_vm.RelocateVM_Task(spec=dest_spec(env, si_b)), vim.fault.InvalidState)
    assert DEDICATED in fault.msg
    assert state(dedicated_vm) == before and find_vm(si_b, dedicated_vm.name) is None


def test_vm_on_a_dedicated_kms_cannot_be_cloned_there(env, si_b, dedicated_vm, on_b):
    name = unique("xvc-ded")
    on_b.append(name)
    before = state(dedicated_vm)
    refused(clone_to_b(env, si_b, dedicated_vm, name), vim.fault.InvalidState)
    assert state(dedicated_vm) == before and find_vm(si_b, name) is None


def test_vm_on_a_dedicated_kms_cannot_be_cloned_there_even_with_a_recrypt(env, si_b, dedicated_vm, on_b):
    """KMS-DEDICATED: neither migrated nor cloned to that vCenter, whatever the clone's keys."""
    name = unique("xvc-ded2")
    on_b.append(name)
    key = new_key(si_b)
    task = clone_to_b(env, si_b, dedicated_vm, name,
                      config=vim.vm.ConfigSpec(crypto=vim.encryption.CryptoSpecShallowRecrypt(newKeyId=key)))
    refused(task, vim.fault.InvalidState)


@pytest.fixture
def impostor_provider(env: Any, si_b: Any) -> Iterator[str]:
    """vc-b gets a provider named like the dedicated one, backed by the shared KMS (another key store)."""
    shared = env.kms_endpoints["shared"]
    cm = si_b.content.cryptoManager
    provider = vim.encryption.KeyProviderId(id=DEDICATED)
    info = vim.encryption.KmipServerInfo(name="impostor", address=shared.address, port=shared.port)
    cm.RegisterKmipServer(server=vim.encryption.KmipServerSpec(clusterId=provider, info=info))
    cert = cm.RetrieveKmipServerCert(keyProvider=provider, server=info).certificate
    cm.UploadKmipServerCert(cluster=provider, certificate=cert)
    cm.UploadClientCert(cluster=provider, certificate=shared.client_cert_pem, privateKey=shared.client_key_pem)
    yield DEDICATED
    cm.RemoveKmipServer(clusterId=provider, serverName="impostor")


def test_same_provider_name_on_another_key_store_is_refused(env, si_b, dedicated_vm, impostor_provider):
    before = state(dedicated_vm)
    fault = refused(dedicated_vm.RelocateVM_Task(spec=dest_spec(env, si_b)), vim.fault.InvalidState)
    assert "key" in fault.msg
    assert state(dedicated_vm) == before and find_vm(si_b, dedicated_vm.name) is None


def test_pre7_vcenter_cannot_move_an_encrypted_vm_across(env, si_67, si_b, made):
    vm = make_vm(si_67)
    made.append(vm)
    encrypt(si_67, vm)
    before = state(vm)
    refused(vm.RelocateVM_Task(spec=dest_spec(env, si_b)), vmodl.fault.NotSupported)
    assert state(vm) == before


# ---- cross-vCenter clones (XVC-CLONE-*) ---------------------------------------------------------------
@pytest.mark.parametrize("powered", ["off", "on"])
def test_xvc_clone_can_encrypt(env, si_b, vm, on_b, powered):
    if powered == "on":
        power_on(vm)
    name = unique("xvc-enc")
    on_b.append(name)
    before = state(vm)
    wait(clone_to_b(env, si_b, vm, name, profile=enc_policy()))
    dest = find_vm(si_b, name)
    assert dest.config.keyId is not None and disk_keys(dest) == [key_of(dest.config.keyId)]
    assert state(vm) == before


@pytest.mark.parametrize("powered", ["off", "on"])
def test_xvc_clone_can_decrypt(env, si_b, enc_vm, on_b, powered):
    if powered == "on":
        power_on(enc_vm)
    name = unique("xvc-dec")
    on_b.append(name)
    before = state(enc_vm)
    wait(clone_to_b(env, si_b, enc_vm, name, profile=empty_policy()))
    assert find_vm(si_b, name).config.keyId is None
    assert state(enc_vm) == before


def test_xvc_clone_can_recrypt(env, si_b, enc_vm, on_b):
    name = unique("xvc-rec")
    on_b.append(name)
    key = new_key(si_b)
    wait(clone_to_b(env, si_b, enc_vm, name,
                    config=vim.vm.ConfigSpec(crypto=vim.encryption.CryptoSpecShallowRecrypt(newKeyId=key))))
    dest = find_vm(si_b, name)
    assert key_of(dest.config.keyId) == key_of(key) != key_of(enc_vm.config.keyId)


def test_xvc_clone_keeps_the_key(env, si_b, enc_vm, on_b):
    name = unique("xvc-keep")
    on_b.append(name)
    wait(clone_to_b(env, si_b, enc_vm, name))
    assert key_of(find_vm(si_b, name).config.keyId) == key_of(enc_vm.config.keyId)
    assert find_vm(si_b, enc_vm.name) is None   # the source stays where it was


def test_xvc_linked_clone_is_not_supported(env, si_b, enc_vm):
    snap = snapshot(enc_vm, "base")
    spec = vim.vm.CloneSpec(location=dest_spec(env, si_b, diskMoveType="createNewChildDiskBacking"), template=False,
                            powerOn=False, snapshot=snap)
    refused(enc_vm.CloneVM_Task(folder=si_b.content.rootFolder.childEntity[0].vmFolder, name=unique("x"), spec=spec),
            vmodl.fault.NotSupported)


# ---- seeded defects ------------------------------------------------------------------------------------
COVERED = {"xvc-power-on-refused", "xvc-hostver-ignored", "xvc-hostver-half", "xvc-dest-kms-ignored",
           "xvc-dest-kms-half", "kms-dedicated-xvc-half", "kms-shared-key-store-unchecked", "xvc-migrate-new-key", "xvc-migrate-source-kept",
           "xvc-migrate-allows-decrypt", "xvc-migrate-decrypt-half", "xvc-migrate-allows-recrypt",
           "xvc-migrate-recrypt-half", "xvc-clone-encrypt-ignored", "xvc-clone-decrypt-ignored",
           "xvc-clone-recrypt-keeps-key"}


def _migrate_with(env, defect, vm, spec, fault_class, half):
    with seeded(env, defect):
        task = vm.RelocateVM_Task(spec=spec)
    (refused(task, fault_class) if half else wait(task))


def test_defect_powered_on_refused(env, si_b, enc_vm):
    power_on(enc_vm)
    with seeded(env, "xvc-power-on-refused"):
        refused(enc_vm.RelocateVM_Task(spec=dest_spec(env, si_b)), vim.fault.InvalidPowerState)
    assert find_vm(si_b, enc_vm.name) is None


@pytest.mark.parametrize("defect,half", [("xvc-hostver-ignored", False), ("xvc-hostver-half", True)])
def test_defect_pre7_host(env, si_b, enc_vm, on_b, defect, half):
    on_b.append(enc_vm.name)
    _migrate_with(env, defect, enc_vm, dest_spec(env, si_b, host_name="DC0_H_legacy"), vmodl.fault.NotSupported, half)
    assert find_vm(si_b, on_b[0]) is not None


@pytest.mark.parametrize("defect,half", [("xvc-dest-kms-ignored", False), ("xvc-dest-kms-half", True),
                                         ("kms-dedicated-xvc-half", True)])
def test_defect_destination_without_the_provider(env, si_b, dedicated_vm, on_b, defect, half):
    on_b.append(dedicated_vm.name)
    _migrate_with(env, defect, dedicated_vm, dest_spec(env, si_b), vim.fault.InvalidState, half)
    assert key_of(find_vm(si_b, on_b[0]).config.keyId)[0] == DEDICATED


def test_defect_key_store_unchecked(env, si_b, dedicated_vm, impostor_provider, on_b):
    on_b.append(dedicated_vm.name)
    with seeded(env, "kms-shared-key-store-unchecked"):
        wait(dedicated_vm.RelocateVM_Task(spec=dest_spec(env, si_b)))
    assert find_vm(si_b, on_b[0]) is not None


def test_defect_migrated_vm_gets_a_new_key(env, si_b, enc_vm, on_b):
    on_b.append(enc_vm.name)
    key = key_of(enc_vm.config.keyId)
    with seeded(env, "xvc-migrate-new-key"):
        wait(enc_vm.RelocateVM_Task(spec=dest_spec(env, si_b)))
    assert key_of(find_vm(si_b, on_b[0]).config.keyId) not in (None, key)


def test_defect_source_kept(env, si_a, si_b, enc_vm, on_b):
    on_b.append(enc_vm.name)
    with seeded(env, "xvc-migrate-source-kept"):
        wait(enc_vm.RelocateVM_Task(spec=dest_spec(env, si_b)))
    assert find_vm(si_b, enc_vm.name) is not None and find_vm(si_a, enc_vm.name) is not None


@pytest.mark.parametrize("defect,half", [("xvc-migrate-allows-decrypt", False), ("xvc-migrate-decrypt-half", True)])
def test_defect_migration_decrypts(env, si_b, enc_vm, on_b, defect, half):
    on_b.append(enc_vm.name)
    _migrate_with(env, defect, enc_vm, dest_spec(env, si_b, profile=empty_policy()), vmodl.fault.NotSupported, half)
    assert find_vm(si_b, on_b[0]).config.keyId is None


@pytest.mark.parametrize("defect,half", [("xvc-migrate-allows-recrypt", False), ("xvc-migrate-recrypt-half", True)])
def test_defect_migration_recrypts(env, si_a, si_b, enc_vm, on_b, defect, half):
    on_b.append(enc_vm.name)
    key = new_key(si_a)
    _migrate_with(env, defect, enc_vm, dest_spec(env, si_b, cryptoSpec=vim.encryption.CryptoSpecShallowRecrypt(
        newKeyId=key)), vmodl.fault.NotSupported, half)
    assert key_of(find_vm(si_b, on_b[0]).config.keyId) == key_of(key)


def test_defect_xvc_clone_encrypt_ignored(env, si_b, vm, on_b):
    name = unique("d-enc")
    on_b.append(name)
    with seeded(env, "xvc-clone-encrypt-ignored"):
        wait(clone_to_b(env, si_b, vm, name, profile=enc_policy()))
    assert find_vm(si_b, name).config.keyId is None


def test_defect_xvc_clone_decrypt_ignored(env, si_b, enc_vm, on_b):
    name = unique("d-dec")
    on_b.append(name)
    with seeded(env, "xvc-clone-decrypt-ignored"):
        wait(clone_to_b(env, si_b, enc_vm, name, profile=empty_policy()))
    assert find_vm(si_b, name).config.keyId is not None


def test_defect_xvc_clone_recrypt_keeps_key(env, si_b, enc_vm, on_b):
    name = unique("d-rec")
    on_b.append(name)
    with seeded(env, "xvc-clone-recrypt-keeps-key"):
        wait(clone_to_b(env, si_b, enc_vm, name, config=vim.vm.ConfigSpec(
            crypto=vim.encryption.CryptoSpecShallowRecrypt(newKeyId=new_key(si_b)))))
    assert key_of(find_vm(si_b, name).config.keyId) == key_of(enc_vm.config.keyId)


# ---- relocate within one vCenter ---------------------------------------------------------------------------
def test_same_vcenter_relocate_to_another_host_keeps_the_key_and_posts_the_migration_event(si_a, enc_vm):
    power_on(enc_vm)
    here = enc_vm.runtime.host
    other = next(h for h in here.parent.host if h._moId != here._moId)
    key = key_of(enc_vm.config.keyId)
    wait(enc_vm.RelocateVM_Task(spec=vim.vm.RelocateSpec(host=other)))
    assert enc_vm.runtime.host._moId == other._moId and key_of(enc_vm.config.keyId) == key
    spec = vim.event.EventFilterSpec(eventTypeId=["com.vmware.vc.vm.VmHotMigratingWithEncryptionEvent"],
                                     entity=vim.event.EventFilterSpec.ByEntity(entity=enc_vm, recursion="self"))
    assert si_a.content.eventManager.QueryEvents(spec)


def test_same_vcenter_relocate_to_the_pool_keeps_the_host(enc_vm):
    host, pool = enc_vm.runtime.host._moId, enc_vm.resourcePool
    wait(enc_vm.RelocateVM_Task(spec=vim.vm.RelocateSpec(pool=pool)))
    assert enc_vm.runtime.host._moId == host


def test_same_vcenter_relocate_cannot_change_encryption(si_a, enc_vm):
    before = state(enc_vm)
    refused(enc_vm.RelocateVM_Task(spec=vim.vm.RelocateSpec(profile=empty_policy())), vmodl.fault.NotSupported)
    refused(enc_vm.RelocateVM_Task(spec=vim.vm.RelocateSpec(cryptoSpec=vim.encryption.CryptoSpecShallowRecrypt(
        newKeyId=new_key(si_a)))), vmodl.fault.NotSupported)
    assert state(enc_vm) == before
