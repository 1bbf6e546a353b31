"""ReconfigVM_Task crypto on the fake: encrypt, decrypt, shallow/deep recrypt, their preconditions.

Assertions read the VM through pyVmomi only; disk bytes at rest come from the fake's datastore
reader (`lifecycle.read_disk_bytes`, the DATA-AT-REST observation on a fake target). Helpers and
fixtures here are imported by the other crypto test modules of tests/fakevc.
"""
from __future__ import annotations

import contextlib
import itertools
from typing import Any, Iterator

import pytest
from pyVmomi import vim, vmodl

from harness.fakevc.behaviours import lifecycle
from harness.fakevc.defects import CATALOGUE, ActiveDefects
from harness.fakevc.disks import CANARY
from tests.fakevc.conftest import make_vm, wait

ENC_POLICY = "4d5f673c-536f-11e6-beb8-9e71128cae77"
SHARED = "vcrypt-shared-kms"
DEDICATED = "vcrypt-dedicated-kms"
_names = itertools.count(1)


# ---- helpers (imported by the other crypto test modules) -------------------------------------------
def enc_policy() -> list:
    return [vim.vm.DefinedProfileSpec(profileId=ENC_POLICY)]


def empty_policy() -> list:
    return [vim.vm.EmptyProfileSpec()]


def new_key(si: Any, provider: str | None = None) -> Any:
    """A fresh CryptoKeyId from GenerateKey (default provider when None)."""
    kp = vim.encryption.KeyProviderId(id=provider) if provider else None
    result = si.content.cryptoManager.GenerateKey(keyProvider=kp)
    assert result.success, result.reason
    return result.keyId


def key_of(key_id: Any) -> tuple[str, str] | None:
    return (key_id.providerId.id, key_id.keyId) if key_id is not None else None


def disks(vm: Any) -> list[Any]:
    return [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]


def disk_keys(vm: Any) -> list[tuple[str, str] | None]:
    return [key_of(d.backing.keyId) for d in disks(vm)]


def chain_keys(disk: Any) -> list[tuple[str, str] | None]:
    """Keys of every link of a disk backing chain, top first."""
    out, backing = [], disk.backing
    while backing is not None:
        out.append(key_of(backing.keyId))
        backing = backing.parent
    return out


def snapshot_keys(vm: Any) -> list[tuple[str, tuple[str, str] | None]]:
    """(name, config.keyId) of every snapshot, root first, each read from the snapshot itself."""
    out = []

    def walk(trees: list) -> None:
        for tree in trees or []:
            out.append((tree.name, key_of(tree.snapshot.config.keyId)))
            walk(tree.childSnapshotList)

    info = vm.snapshot
    walk(info.rootSnapshotList if info else [])
    return out


def state(vm: Any) -> dict[str, Any]:
    """What a refusal must leave unchanged."""
    return {"key": key_of(vm.config.keyId), "disks": disk_keys(vm), "power": vm.runtime.powerState,
            "snapshots": snapshot_keys(vm), "host": vm.runtime.host._moId, "name": vm.name,
            "migrateEncryption": vm.config.migrateEncryption, "datastores": sorted(d._moId for d in vm.datastore),
            "devices": len(disks(vm))}


def disk_edits(vm: Any, crypto: Any, profile: list | None, only_encrypted: bool = False) -> list[Any]:
    edits = []
    for disk in disks(vm):
        if only_encrypted and disk.backing.keyId is None:
            continue
        change = vim.vm.device.VirtualDeviceSpec(operation="edit", device=disk,
                                                 backing=vim.vm.device.VirtualDeviceSpec.BackingSpec(crypto=crypto))
        if profile is not None:
            change.profile = profile
        edits.append(change)
    return edits


def encrypt_spec(vm: Any, key: Any) -> Any:
    crypto = vim.encryption.CryptoSpecEncrypt(cryptoKeyId=key)
    return vim.vm.ConfigSpec(crypto=crypto, vmProfile=enc_policy(), deviceChange=disk_edits(vm, crypto, enc_policy()))


def decrypt_spec(vm: Any) -> Any:
    crypto = vim.encryption.CryptoSpecDecrypt()
    return vim.vm.ConfigSpec(crypto=crypto, vmProfile=empty_policy(),
                             deviceChange=disk_edits(vm, crypto, empty_policy(), only_encrypted=True))


def shallow_spec(vm: Any, key: Any) -> Any:
    crypto = vim.encryption.CryptoSpecShallowRecrypt(newKeyId=key)
    return vim.vm.ConfigSpec(crypto=crypto, deviceChange=disk_edits(vm, crypto, None, only_encrypted=True))


def deep_spec(vm: Any, key: Any) -> Any:
    crypto = vim.encryption.CryptoSpecDeepRecrypt(newKeyId=key)
    return vim.vm.ConfigSpec(crypto=crypto, vmProfile=enc_policy(),
                             deviceChange=disk_edits(vm, crypto, enc_policy(), only_encrypted=True))


def encrypt(si: Any, vm: Any, key: Any = None) -> Any:
    key = key or new_key(si)
    wait(vm.ReconfigVM_Task(spec=encrypt_spec(vm, key)))
    return key


def refused(task: Any, fault_class: type) -> Any:
    """The task's fault, asserted to be of `fault_class`."""
    info = task.info
    assert info.state == "error", f"expected a refusal, the task ended {info.state}"
    assert isinstance(info.error, fault_class), f"{type(info.error).__name__}: {info.error.msg}"
    assert info.error.msg, "a fault must say why"
    return info.error


def power_on(vm: Any) -> None:
    wait(vm.PowerOnVM_Task())


def snapshot(vm: Any, name: str) -> Any:
    return wait(vm.CreateSnapshot_Task(name=name, description="test", memory=False, quiesce=False))


def bytes_at_rest(env: Any, vm: Any, disk_key: int | None = None, link: int = -1, vc: str = "vc-a") -> bytes:
    return lifecycle.read_disk_bytes(env.fake_vcenter(vc), vm._moId, disk_key, link)


def events(si: Any, entity: Any, type_id: str) -> list[Any]:
    spec = vim.event.EventFilterSpec(eventTypeId=[type_id],
                                     entity=vim.event.EventFilterSpec.ByEntity(entity=entity, recursion="self"))
    return list(si.content.eventManager.QueryEvents(spec))


def find_vm(si: Any, name: str) -> Any | None:
    view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
    try:
        return next((v for v in view.view if v.name == name), None)
    finally:
        view.DestroyView()


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


def destroy(vm: Any) -> None:
    if vm is None:
        return
    with contextlib.suppress(vmodl.fault.ManagedObjectNotFound):
        if vm.runtime.powerState == "poweredOn":
            wait(vm.PowerOffVM_Task())
        wait(vm.Destroy_Task())


@contextlib.contextmanager
def seeded(env: Any, *names: str) -> Iterator[None]:
    """Switch the session world's seeded defects (arranging only); restored afterwards."""
    for name in names:
        assert name in CATALOGUE, name
    before = env.world.defects
    env.world.defects = ActiveDefects(list(names))
    try:
        yield
    finally:
        env.world.defects = before


@pytest.fixture
def made(si_a: Any) -> Iterator[list]:
    """VMs a test creates (clones, extra VMs), destroyed at teardown newest first."""
    vms: list[Any] = []
    yield vms
    for machine in reversed(vms):
        destroy(machine)


@pytest.fixture
def vm2(si_a: Any, made: list) -> Any:
    """A VM with two disks."""
    machine = make_vm(si_a, disks=2)
    made.append(machine)
    return machine


@pytest.fixture
def enc_vm(si_a: Any, vm: Any) -> Any:
    encrypt(si_a, vm)
    return vm


@pytest.fixture(scope="session")
def si_67(env: Any) -> Iterator[Any]:
    """A 6.7 fake vCenter added to the session world (same KMS providers as vc-a)."""
    from harness.fakevc.kmip import keys
    from harness.fakevc.world import ProviderSeed, VCenterSeed
    seeds = [ProviderSeed(provider_id=e.provider_id, server_name=e.server_name, address=e.address, port=e.port,
                          server_cert_pem=e.ca_pem, client_cert_pem=e.client_cert_pem, client_key_pem=e.client_key_pem,
                          vcenters=("vc-67",), default=(role == "shared"))
             for role, e in env.kms_endpoints.items()]
    fake = env.world.add_vcenter(VCenterSeed(name="vc-67", url="https://127.0.0.1:18467/sdk",
                                             user="administrator@vsphere.local", password="vc67-password",
                                             version="6.7.3", vms=0), seeds)
    si = vim.ServiceInstance("ServiceInstance", env.world.adapter("vc-67"))
    si.RetrieveContent().sessionManager.Login("administrator@vsphere.local", "vc67-password")
    yield si
    keys.close(fake)
    env.world.vcenters.pop("vc-67", None)


# ---- encrypt ---------------------------------------------------------------------------------------
def test_encrypt_sets_home_and_disk_keys_and_requires_encrypted_vmotion(si_a, vm):
    key = encrypt(si_a, vm)
    assert key_of(vm.config.keyId) == key_of(key)
    assert disk_keys(vm) == [key_of(key)]
    assert vm.config.migrateEncryption == "required"
    assert vm.runtime.cryptoState == "unlocked"


def test_encrypted_disk_bytes_hold_no_plaintext(env, si_a, vm):
    """DATA-AT-REST: the canary is in the bytes before, gone after, back after decrypt."""
    assert CANARY in bytes_at_rest(env, vm)
    encrypt(si_a, vm)
    assert CANARY not in bytes_at_rest(env, vm)
    wait(vm.ReconfigVM_Task(spec=decrypt_spec(vm)))
    assert CANARY in bytes_at_rest(env, vm)
    assert vm.config.keyId is None and disk_keys(vm) == [None]


def test_policy_only_encrypt_takes_a_key_from_the_default_provider(si_a, vm):
    """PowerCLI's Enable-VMEncryption: only the encryption policy, no CryptoSpec."""
    edits = [vim.vm.device.VirtualDeviceSpec(operation="edit", device=d, profile=enc_policy()) for d in disks(vm)]
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(vmProfile=enc_policy(), deviceChange=edits)))
    key = key_of(vm.config.keyId)
    assert key is not None and key[0] == SHARED
    assert disk_keys(vm) == [key]


def test_vm_level_crypto_is_inherited_by_disks_without_their_own_spec(si_a, vm2):
    key = new_key(si_a)
    crypto = vim.encryption.CryptoSpecEncrypt(cryptoKeyId=key)
    wait(vm2.ReconfigVM_Task(spec=vim.vm.ConfigSpec(crypto=crypto, vmProfile=enc_policy())))
    assert disk_keys(vm2) == [key_of(key), key_of(key)]


def test_a_disk_can_keep_its_own_key_beside_the_home_key(si_a, vm2):
    home, other = new_key(si_a), new_key(si_a)
    first, second = disks(vm2)
    spec = vim.vm.ConfigSpec(crypto=vim.encryption.CryptoSpecEncrypt(cryptoKeyId=home), vmProfile=enc_policy(), deviceChange=[
        vim.vm.device.VirtualDeviceSpec(operation="edit", device=second, profile=enc_policy(),
                                        backing=vim.vm.device.VirtualDeviceSpec.BackingSpec(
                                            crypto=vim.encryption.CryptoSpecEncrypt(cryptoKeyId=other)))])
    wait(vm2.ReconfigVM_Task(spec=spec))
    assert key_of(vm2.config.keyId) == key_of(home)
    assert disk_keys(vm2) == [key_of(home), key_of(other)]


def test_encrypt_without_the_encryption_policy_is_refused(si_a, vm):
    before = state(vm)
    crypto = vim.encryption.CryptoSpecEncrypt(cryptoKeyId=new_key(si_a))
    refused(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(crypto=crypto)), vmodl.fault.InvalidArgument)
    assert state(vm) == before


def test_encrypt_with_a_key_the_kms_does_not_have_is_refused(si_a, vm):
    before = state(vm)
    bogus = vim.encryption.CryptoKeyId(keyId="99999999", providerId=vim.encryption.KeyProviderId(id=SHARED))
    refused(vm.ReconfigVM_Task(spec=encrypt_spec(vm, bogus)), vmodl.MethodFault)
    assert state(vm) == before


# ---- OP-ENCRYPT-OFF / OP-ENCRYPT-NO-SNAPSHOTS --------------------------------------------------------
def test_encrypting_a_powered_on_vm_is_refused(si_a, vm):
    power_on(vm)
    before = state(vm)
    fault = refused(vm.ReconfigVM_Task(spec=encrypt_spec(vm, new_key(si_a))), vim.fault.InvalidPowerState)
    assert fault.existingState == "poweredOn" and fault.requestedState == "poweredOff"
    assert state(vm) == before and vm.config.keyId is None


def test_encrypting_a_vm_with_snapshots_is_refused(si_a, vm):
    snapshot(vm, "s1")
    before = state(vm)
    fault = refused(vm.ReconfigVM_Task(spec=encrypt_spec(vm, new_key(si_a))), vim.fault.InvalidState)
    assert "snapshots" in fault.msg
    assert state(vm) == before and vm.config.keyId is None


# ---- OP-DECRYPT-OFF / OP-DEEP-OFF-NO-SNAPSHOTS ---------------------------------------------------------
def test_decrypting_a_powered_on_vm_is_refused(enc_vm):
    power_on(enc_vm)
    before = state(enc_vm)
    refused(enc_vm.ReconfigVM_Task(spec=decrypt_spec(enc_vm)), vim.fault.InvalidPowerState)
    assert state(enc_vm) == before and enc_vm.config.keyId is not None


def test_decrypting_a_vm_with_snapshots_is_refused(enc_vm):
    snapshot(enc_vm, "s1")
    before = state(enc_vm)
    refused(enc_vm.ReconfigVM_Task(spec=decrypt_spec(enc_vm)), vim.fault.InvalidState)
    assert state(enc_vm) == before


def test_decrypt_keeping_an_encryption_policy_is_refused(enc_vm):
    before = state(enc_vm)
    spec = vim.vm.ConfigSpec(crypto=vim.encryption.CryptoSpecDecrypt(), vmProfile=enc_policy())
    refused(enc_vm.ReconfigVM_Task(spec=spec), vmodl.fault.InvalidArgument)
    assert state(enc_vm) == before


def test_deep_recrypt_of_a_powered_on_vm_is_refused(si_a, enc_vm):
    power_on(enc_vm)
    before = state(enc_vm)
    refused(enc_vm.ReconfigVM_Task(spec=deep_spec(enc_vm, new_key(si_a))), vim.fault.InvalidPowerState)
    assert state(enc_vm) == before


def test_deep_recrypt_of_a_vm_with_snapshots_is_refused(si_a, enc_vm):
    snapshot(enc_vm, "s1")
    before = state(enc_vm)
    refused(enc_vm.ReconfigVM_Task(spec=deep_spec(enc_vm, new_key(si_a))), vim.fault.InvalidState)
    assert state(enc_vm) == before


# ---- REKEY-SHALLOW / REKEY-DEEP --------------------------------------------------------------------------
@pytest.mark.parametrize("powered", ["off", "on"])
def test_shallow_recrypt_changes_the_key_but_not_the_ciphertext(env, si_a, enc_vm, powered):
    if powered == "on":
        power_on(enc_vm)
    before = bytes_at_rest(env, enc_vm)
    key = new_key(si_a)
    wait(enc_vm.ReconfigVM_Task(spec=shallow_spec(enc_vm, key)))
    assert key_of(enc_vm.config.keyId) == key_of(key)
    assert disk_keys(enc_vm) == [key_of(key)]
    assert bytes_at_rest(env, enc_vm) == before


def test_deep_recrypt_changes_the_key_and_rewrites_the_data(env, si_a, enc_vm):
    before = bytes_at_rest(env, enc_vm)
    key = new_key(si_a)
    wait(enc_vm.ReconfigVM_Task(spec=deep_spec(enc_vm, key)))
    assert key_of(enc_vm.config.keyId) == key_of(key)
    assert disk_keys(enc_vm) == [key_of(key)]
    after = bytes_at_rest(env, enc_vm)
    assert after != before and CANARY not in after


def test_recrypted_data_still_reads_back(env, si_a, enc_vm):
    wait(enc_vm.ReconfigVM_Task(spec=shallow_spec(enc_vm, new_key(si_a))))
    wait(enc_vm.ReconfigVM_Task(spec=deep_spec(enc_vm, new_key(si_a))))
    wait(enc_vm.ReconfigVM_Task(spec=decrypt_spec(enc_vm)))
    assert CANARY in bytes_at_rest(env, enc_vm)


def test_recrypt_needs_the_recrypt_privilege(env, si_a, enc_vm):
    """Cryptographer.Recrypt (shallow and deep): a user with the NoCryptoAdmin role is refused."""
    si_user = _user_session(env, si_a, "nocrypto-user@vsphere.local", "NoCryptoAdmin")
    mine = vim.VirtualMachine(enc_vm._moId, si_user._stub)
    before = state(enc_vm)
    fault = refused(mine.ReconfigVM_Task(spec=shallow_spec(enc_vm, new_key(si_a))), vim.fault.NoPermission)
    assert fault.privilegeId == "Cryptographer.Recrypt"
    assert state(enc_vm) == before


def _user_session(env: Any, si: Any, user: str, role_name: str) -> Any:
    """A session for a user holding `role_name` on the root folder (arranged through the API)."""
    fake = env.fake_vcenter("vc-a")
    if user.lower() not in fake.users:
        fake.add_user(user, "user-password")
    am = si.content.authorizationManager
    role = next(r for r in am.roleList if r.name == role_name)
    am.SetEntityPermissions(entity=si.content.rootFolder, permission=[
        vim.AuthorizationManager.Permission(principal=user, group=False, roleId=role.roleId, propagate=True)])
    other = vim.ServiceInstance("ServiceInstance", env.world.adapter("vc-a"))
    other.RetrieveContent().sessionManager.Login(user, "user-password")
    return other


# ---- OP-STATE -------------------------------------------------------------------------------------------
def test_encrypting_an_encrypted_vm_is_refused(si_a, enc_vm):
    before = state(enc_vm)
    refused(enc_vm.ReconfigVM_Task(spec=encrypt_spec(enc_vm, new_key(si_a))), vim.fault.InvalidState)
    assert state(enc_vm) == before


@pytest.mark.parametrize("operation", ["decrypt", "shallow", "deep"])
def test_decrypting_or_recrypting_an_unencrypted_vm_is_refused(si_a, vm, operation):
    before = state(vm)
    crypto = {"decrypt": vim.encryption.CryptoSpecDecrypt(),
              "shallow": vim.encryption.CryptoSpecShallowRecrypt(newKeyId=new_key(si_a)),
              "deep": vim.encryption.CryptoSpecDeepRecrypt(newKeyId=new_key(si_a))}[operation]
    profile = {"decrypt": empty_policy(), "shallow": None, "deep": enc_policy()}[operation]
    refused(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(crypto=crypto, vmProfile=profile)), vim.fault.InvalidState)
    assert state(vm) == before


# ---- OP-DISK-WITH-HOME ------------------------------------------------------------------------------------
def test_encrypting_only_a_disk_of_an_unencrypted_vm_is_refused(si_a, vm):
    before = state(vm)
    crypto = vim.encryption.CryptoSpecEncrypt(cryptoKeyId=new_key(si_a))
    refused(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=disk_edits(vm, crypto, enc_policy()))),
            vim.fault.InvalidState)
    assert state(vm) == before


def _add_encrypted_disk(key: Any) -> Any:
    disk = vim.vm.device.VirtualDisk(key=-100, capacityInKB=64, controllerKey=1000, unitNumber=1,
                                     backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                                         diskMode="persistent", thinProvisioned=True, fileName=""))
    return vim.vm.device.VirtualDeviceSpec(
        operation="add", fileOperation="create", device=disk, profile=enc_policy(),
        backing=vim.vm.device.VirtualDeviceSpec.BackingSpec(crypto=vim.encryption.CryptoSpecEncrypt(cryptoKeyId=key)))


def test_adding_an_encrypted_disk_to_an_unencrypted_vm_is_refused(si_a, vm):
    before = state(vm)
    refused(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[_add_encrypted_disk(new_key(si_a))])),
            vim.fault.InvalidState)
    assert state(vm) == before


def test_adding_an_encrypted_disk_to_an_encrypted_vm_works(si_a, enc_vm):
    key = new_key(si_a)
    wait(enc_vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[_add_encrypted_disk(key)])))
    assert disk_keys(enc_vm)[-1] == key_of(key) and len(disk_keys(enc_vm)) == 2


def test_decrypting_home_while_a_disk_stays_encrypted_is_refused(enc_vm):
    before = state(enc_vm)
    noop = vim.encryption.CryptoSpecNoOp()
    spec = vim.vm.ConfigSpec(crypto=vim.encryption.CryptoSpecDecrypt(), vmProfile=empty_policy(),
                             deviceChange=disk_edits(enc_vm, noop, None))
    refused(enc_vm.ReconfigVM_Task(spec=spec), vim.fault.InvalidState)
    assert state(enc_vm) == before


def test_disks_can_be_decrypted_before_the_home(env, enc_vm):
    crypto = vim.encryption.CryptoSpecDecrypt()
    wait(enc_vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=disk_edits(enc_vm, crypto, empty_policy()))))
    assert enc_vm.config.keyId is not None and disk_keys(enc_vm) == [None]
    assert CANARY in bytes_at_rest(env, enc_vm)
    wait(enc_vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(crypto=crypto, vmProfile=empty_policy())))
    assert enc_vm.config.keyId is None


# ---- DATA-IN-FLIGHT -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["disabled", "opportunistic"])
def test_migrate_encryption_cannot_be_relaxed_while_encrypted(enc_vm, value):
    before = state(enc_vm)
    refused(enc_vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(migrateEncryption=value)), vmodl.fault.InvalidArgument)
    assert state(enc_vm) == before and enc_vm.config.migrateEncryption == "required"


def test_migrate_encryption_stays_required_after_decrypt_until_changed(enc_vm):
    wait(enc_vm.ReconfigVM_Task(spec=decrypt_spec(enc_vm)))
    assert enc_vm.config.migrateEncryption == "required"
    wait(enc_vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(migrateEncryption="opportunistic")))
    assert enc_vm.config.migrateEncryption == "opportunistic"


def test_ordinary_settings_still_reconfigure(vm):
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation="run-42", extraConfig=[
        vim.option.OptionValue(key="vcrypt.run", value="42")])))
    assert vm.config.annotation == "run-42"
    assert {o.key: o.value for o in vm.config.extraConfig}["vcrypt.run"] == "42"


def test_a_refused_operation_is_fast_and_a_shallow_recrypt_cheap(si_a, enc_vm):
    """Fake operations (KMS round trips excluded) stay far below a real vCenter's latency."""
    import time
    key = new_key(si_a)
    power_on(enc_vm)
    spec = encrypt_spec(enc_vm, key)
    began = time.perf_counter()
    for _ in range(20):
        refused(enc_vm.ReconfigVM_Task(spec=spec), vmodl.MethodFault)
    assert (time.perf_counter() - began) / 20 < 0.05


# ---- seeded defects: the violation is observable -------------------------------------------------------
COVERED = {
    "op-encrypt-off-ignored", "op-encrypt-off-half", "op-encrypt-snapshots-ignored", "op-encrypt-snapshots-half",
    "op-decrypt-off-ignored", "op-decrypt-off-half", "op-deep-off-no-snapshots-ignored",
    "op-deep-off-no-snapshots-half", "op-state-ignored", "op-state-half", "op-disk-with-home-ignored",
    "op-disk-with-home-half", "data-in-flight-relaxable", "data-in-flight-half", "data-in-flight-not-required",
    "data-at-rest-plaintext", "rekey-shallow-rewrites-data", "rekey-shallow-keeps-key", "rekey-deep-keeps-data",
    # tests/fakevc/test_suspended.py
    "op-encrypt-off-allows-suspended", "op-decrypt-off-allows-suspended", "op-deep-off-allows-suspended",
}


@pytest.mark.parametrize("defect,half", [("op-encrypt-off-ignored", False), ("op-encrypt-off-half", True)])
def test_defect_encrypt_powered_on(env, si_a, vm, defect, half):
    power_on(vm)
    with seeded(env, defect):
        task = vm.ReconfigVM_Task(spec=encrypt_spec(vm, new_key(si_a)))
    if half:
        refused(task, vim.fault.InvalidPowerState)
    else:
        wait(task)
    assert vm.config.keyId is not None   # the violation: a powered-on VM got encrypted


@pytest.mark.parametrize("defect,half", [("op-encrypt-snapshots-ignored", False), ("op-encrypt-snapshots-half", True)])
def test_defect_encrypt_with_snapshots(env, si_a, vm, defect, half):
    snapshot(vm, "s1")
    with seeded(env, defect):
        task = vm.ReconfigVM_Task(spec=encrypt_spec(vm, new_key(si_a)))
    (refused(task, vim.fault.InvalidState) if half else wait(task))
    assert vm.config.keyId is not None


@pytest.mark.parametrize("defect,half", [("op-decrypt-off-ignored", False), ("op-decrypt-off-half", True)])
def test_defect_decrypt_powered_on(env, enc_vm, defect, half):
    power_on(enc_vm)
    with seeded(env, defect):
        task = enc_vm.ReconfigVM_Task(spec=decrypt_spec(enc_vm))
    (refused(task, vim.fault.InvalidPowerState) if half else wait(task))
    assert enc_vm.config.keyId is None


@pytest.mark.parametrize("defect,half", [("op-deep-off-no-snapshots-ignored", False),
                                         ("op-deep-off-no-snapshots-half", True)])
def test_defect_deep_recrypt_powered_on(env, si_a, enc_vm, defect, half):
    power_on(enc_vm)
    old = key_of(enc_vm.config.keyId)
    with seeded(env, defect):
        task = enc_vm.ReconfigVM_Task(spec=deep_spec(enc_vm, new_key(si_a)))
    (refused(task, vim.fault.InvalidPowerState) if half else wait(task))
    assert key_of(enc_vm.config.keyId) != old


@pytest.mark.parametrize("defect,half", [("op-state-ignored", False), ("op-state-half", True)])
def test_defect_encrypting_an_encrypted_vm(env, si_a, enc_vm, defect, half):
    old = key_of(enc_vm.config.keyId)
    with seeded(env, defect):
        task = enc_vm.ReconfigVM_Task(spec=encrypt_spec(enc_vm, new_key(si_a)))
    (refused(task, vim.fault.InvalidState) if half else wait(task))
    assert key_of(enc_vm.config.keyId) != old


@pytest.mark.parametrize("defect,half", [("op-disk-with-home-ignored", False), ("op-disk-with-home-half", True)])
def test_defect_disk_encrypted_without_home(env, si_a, vm, defect, half):
    crypto = vim.encryption.CryptoSpecEncrypt(cryptoKeyId=new_key(si_a))
    with seeded(env, defect):
        task = vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=disk_edits(vm, crypto, enc_policy())))
    (refused(task, vim.fault.InvalidState) if half else wait(task))
    assert vm.config.keyId is None and disk_keys(vm)[0] is not None


@pytest.mark.parametrize("defect,half", [("data-in-flight-relaxable", False), ("data-in-flight-half", True)])
def test_defect_migrate_encryption_relaxed(env, enc_vm, defect, half):
    with seeded(env, defect):
        task = enc_vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(migrateEncryption="disabled"))
    (refused(task, vmodl.fault.InvalidArgument) if half else wait(task))
    assert enc_vm.config.migrateEncryption == "disabled" and enc_vm.config.keyId is not None


def test_defect_encrypt_leaves_migrate_encryption(env, si_a, vm):
    with seeded(env, "data-in-flight-not-required"):
        encrypt(si_a, vm)
    assert vm.config.keyId is not None and vm.config.migrateEncryption != "required"


def test_defect_encrypt_leaves_plaintext_at_rest(env, si_a, vm):
    with seeded(env, "data-at-rest-plaintext"):
        encrypt(si_a, vm)
    assert vm.config.keyId is not None and CANARY in bytes_at_rest(env, vm)


def test_defect_shallow_recrypt_rewrites_data(env, si_a, enc_vm):
    before = bytes_at_rest(env, enc_vm)
    with seeded(env, "rekey-shallow-rewrites-data"):
        wait(enc_vm.ReconfigVM_Task(spec=shallow_spec(enc_vm, new_key(si_a))))
    assert bytes_at_rest(env, enc_vm) != before


def test_defect_shallow_recrypt_keeps_disk_key(env, si_a, enc_vm):
    old = disk_keys(enc_vm)
    key = new_key(si_a)
    with seeded(env, "rekey-shallow-keeps-key"):
        wait(enc_vm.ReconfigVM_Task(spec=shallow_spec(enc_vm, key)))
    assert disk_keys(enc_vm) == old != [key_of(key)]


def test_defect_deep_recrypt_keeps_data(env, si_a, enc_vm):
    before = bytes_at_rest(env, enc_vm)
    with seeded(env, "rekey-deep-keeps-data"):
        wait(enc_vm.ReconfigVM_Task(spec=deep_spec(enc_vm, new_key(si_a))))
    assert bytes_at_rest(env, enc_vm) == before


def test_every_defect_of_the_vm_crypto_modules_has_a_test():
    """Each defect registered by reconfigure/snapshots/clone/relocate/destination/instant_clone/space/crypto_rules."""
    from harness.fakevc.behaviours import (clone, crypto_rules, destination, instant_clone, reconfigure, relocate,
                                           snapshots, space)
    from tests.fakevc import (test_clone, test_cross_vcenter, test_datastore_space, test_demanding_lab,
                              test_instant_clone, test_snapshots)
    registered = {value for module in (clone, crypto_rules, destination, instant_clone, reconfigure, relocate, snapshots,
                                    space)
                  for value in vars(module).values() if isinstance(value, str) and value in CATALOGUE}
    covered = COVERED | test_snapshots.COVERED | test_clone.COVERED | test_cross_vcenter.COVERED | \
        test_instant_clone.COVERED | test_datastore_space.COVERED | test_demanding_lab.COVERED
    assert registered - covered == set()
    refusal_rules = {CATALOGUE[n].rule for n in registered if CATALOGUE[n].half_applied}
    assert {"OP-ENCRYPT-OFF", "OP-ENCRYPT-NO-SNAPSHOTS", "OP-DECRYPT-OFF", "OP-DEEP-OFF-NO-SNAPSHOTS", "OP-STATE",
            "OP-DISK-WITH-HOME", "CLONE-LINKED", "CLONE-HOSTVER", "CLONE-PRE7", "XVC-MIGRATE-NO-DECRYPT",
            "XVC-MIGRATE-NO-RECRYPT", "XVC-HOSTVER", "XVC-DEST-KMS", "SNAP-BRANCHES", "SNAP-PRE7",
            "IC-NO-CRYPTO-CHANGE", "IC-LOCKED", "DATA-IN-FLIGHT", "EVT-DISK-SPACE"} <= refusal_rules


# ---- NoOp / Register, and the inventory path for defects ---------------------------------------------
def test_noop_and_register_leave_the_keys(si_a, enc_vm):
    before = state(enc_vm)
    wait(enc_vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(crypto=vim.encryption.CryptoSpecNoOp())))
    wait(enc_vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(
        crypto=vim.encryption.CryptoSpecRegister(cryptoKeyId=enc_vm.config.keyId))))
    assert state(enc_vm) == before


def test_register_with_another_key_is_refused(si_a, enc_vm):
    before = state(enc_vm)
    refused(enc_vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(
        crypto=vim.encryption.CryptoSpecRegister(cryptoKeyId=new_key(si_a)))), vmodl.fault.InvalidArgument)
    assert state(enc_vm) == before


def test_a_defect_from_the_inventory_reaches_the_fake():
    """open_environment(defects=[...]) is the path `vcrypt selftest` takes (a fresh world and KMS)."""
    from harness.targets.environment import open_environment
    with open_environment(defects=["data-at-rest-plaintext"]) as other:
        si = other.service_instance("vc-a")
        machine = make_vm(si)
        encrypt(si, machine)
        assert machine.config.keyId is not None
        assert CANARY in lifecycle.read_disk_bytes(other.fake_vcenter("vc-a"), machine._moId)


def test_attaching_the_encrypted_disk_file_of_another_vm_to_an_unencrypted_vm_is_refused(si_a, enc_vm, vm2):
    path = disks(enc_vm)[0].backing.fileName
    attach = vim.vm.device.VirtualDeviceSpec(operation="add", device=vim.vm.device.VirtualDisk(
        key=-5, capacityInKB=64, controllerKey=1000, unitNumber=3,
        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(fileName=path, diskMode="persistent")))
    before = state(vm2)
    refused(vm2.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[attach])), vim.fault.InvalidState)
    assert state(vm2) == before


def test_removing_a_disk_frees_its_space(si_a, vm2):
    free = vm2.datastore[0].summary.freeSpace
    second = disks(vm2)[1]
    wait(vm2.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[
        vim.vm.device.VirtualDeviceSpec(operation="remove", fileOperation="destroy", device=second)])))
    assert len(disks(vm2)) == 1 and vm2.datastore[0].summary.freeSpace > free
