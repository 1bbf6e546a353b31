"""CloneVM_Task on one fake vCenter: encrypt, decrypt, recrypt, keep, linked, template, host versions, 6.7."""
from __future__ import annotations

from typing import Any

import pytest
from pyVmomi import vim, vmodl

from harness.fakevc.disks import CANARY
from tests.fakevc.conftest import make_vm, wait
from tests.fakevc.test_vm_crypto import (bytes_at_rest, disk_keys, disks, empty_policy, enc_policy, encrypt, find_vm,
                                         key_of, new_key, power_on, refused, seeded, shallow_spec, snapshot, state,
                                         unique)
from tests.fakevc.test_vm_crypto import enc_vm, made, vm2, si_67  # noqa: F401 - fixtures

LINKED = "createNewChildDiskBacking"


def clone(vm: Any, made: list, *, config: Any = None, location: Any = None, template: bool = False,
          power: bool = False, snap: Any = None, name: str | None = None) -> Any:
    name = name or unique("clone")
    spec = vim.vm.CloneSpec(location=location or vim.vm.RelocateSpec(), template=template, powerOn=power,
                            config=config, snapshot=snap)
    result = wait(vm.CloneVM_Task(folder=vm.parent, name=name, spec=spec))
    made.append(result)
    return result


def clone_task(vm: Any, *, config: Any = None, location: Any = None, snap: Any = None, name: str | None = None) -> Any:
    spec = vim.vm.CloneSpec(location=location or vim.vm.RelocateSpec(), template=False, powerOn=False,
                            config=config, snapshot=snap)
    return vm.CloneVM_Task(folder=vm.parent, name=name or unique("clone"), spec=spec)


def _legacy_host(si: Any) -> Any:
    dc = si.content.rootFolder.childEntity[0]
    return next(h for cr in dc.hostFolder.childEntity for h in cr.host if h.name == "DC0_H_legacy")


def _vm_count(si: Any) -> int:
    view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
    try:
        return len(view.view)
    finally:
        view.DestroyView()


# ---- CLONE-ENCRYPT / CLONE-DECRYPT / CLONE-RECRYPT / CLONE-KEEP ------------------------------------------
@pytest.mark.parametrize("how", ["policy", "crypto", "cryptoSpec"])
def test_clone_with_the_encryption_policy_is_encrypted_and_the_source_is_not(env, si_a, vm, made, how):
    before = state(vm)
    if how == "policy":
        dest = clone(vm, made, location=vim.vm.RelocateSpec(profile=enc_policy()))
    elif how == "crypto":
        key = new_key(si_a)
        dest = clone(vm, made, config=vim.vm.ConfigSpec(crypto=vim.encryption.CryptoSpecEncrypt(cryptoKeyId=key),
                                                        vmProfile=enc_policy()))
        assert key_of(dest.config.keyId) == key_of(key)
    else:
        key = new_key(si_a)
        dest = clone(vm, made, location=vim.vm.RelocateSpec(
            profile=enc_policy(), cryptoSpec=vim.encryption.CryptoSpecEncrypt(cryptoKeyId=key)))
        assert key_of(dest.config.keyId) == key_of(key)
    assert dest.config.keyId is not None
    assert disk_keys(dest) == [key_of(dest.config.keyId)]
    assert CANARY not in bytes_at_rest(env, dest)
    assert state(vm) == before and vm.config.keyId is None
    assert dest.config.migrateEncryption == "required"


def test_clone_with_a_plain_policy_is_decrypted_and_the_source_keeps_its_key(env, si_a, enc_vm, made):
    before = state(enc_vm)
    dest = clone(enc_vm, made, location=vim.vm.RelocateSpec(profile=empty_policy()))
    assert dest.config.keyId is None and disk_keys(dest) == [None]
    assert CANARY in bytes_at_rest(env, dest)
    assert state(enc_vm) == before


def test_clone_with_a_decrypt_spec_is_decrypted(enc_vm, made):
    dest = clone(enc_vm, made, config=vim.vm.ConfigSpec(crypto=vim.encryption.CryptoSpecDecrypt()))
    assert dest.config.keyId is None and disk_keys(dest) == [None]


@pytest.mark.parametrize("kind", ["shallow", "deep"])
def test_clone_can_recrypt_the_destination(env, si_a, enc_vm, made, kind):
    before = state(enc_vm)
    key = new_key(si_a)
    crypto = (vim.encryption.CryptoSpecShallowRecrypt if kind == "shallow" else vim.encryption.CryptoSpecDeepRecrypt)(newKeyId=key)
    dest = clone(enc_vm, made, config=vim.vm.ConfigSpec(crypto=crypto))
    assert key_of(dest.config.keyId) == key_of(key) != before["key"]
    assert disk_keys(dest) == [key_of(key)]
    same_bytes = bytes_at_rest(env, dest) == bytes_at_rest(env, enc_vm)
    assert same_bytes is (kind == "shallow")
    assert state(enc_vm) == before


def test_clone_without_a_crypto_change_keeps_the_keys(env, enc_vm, made):
    dest = clone(enc_vm, made)
    assert key_of(dest.config.keyId) == key_of(enc_vm.config.keyId)
    assert disk_keys(dest) == disk_keys(enc_vm)
    assert bytes_at_rest(env, dest) == bytes_at_rest(env, enc_vm)


def test_clone_of_a_powered_on_encrypted_vm_keeps_the_keys(enc_vm, made):
    power_on(enc_vm)
    dest = clone(enc_vm, made, power=True)
    assert key_of(dest.config.keyId) == key_of(enc_vm.config.keyId)
    assert dest.runtime.powerState == "poweredOn"


def test_a_disk_policy_without_disk_crypto_is_refused_as_terraform_2241_shows(si_a, vm2, made):
    """location.disk[].profile = an encryption policy with no backing.crypto: InvalidArgument
    spec.disk.backing.crypto (terraform-provider-vsphere#2241, 7.0U3), nothing created; the same policy with
    the VM-level CryptoSpec repeated in each disk's backing.crypto (PowerCLI, vm-operator) encrypts every disk."""
    home = new_key(si_a)
    encrypt = vim.encryption.CryptoSpecEncrypt(cryptoKeyId=home)
    before, count = state(vm2), _vm_count(si_a)
    policy_only = [vim.vm.RelocateSpec.DiskLocator(diskId=d.key, datastore=vm2.datastore[0], profile=enc_policy())
                   for d in disks(vm2)]
    for config in (None, vim.vm.ConfigSpec(crypto=encrypt)):       # policy-only (as in #2241) and the old shape
        fault = refused(clone_task(vm2, location=vim.vm.RelocateSpec(profile=enc_policy(), disk=policy_only),
                                   config=config), vmodl.fault.InvalidArgument)
        assert fault.invalidProperty == "spec.disk.backing.crypto"
        assert state(vm2) == before and _vm_count(si_a) == count
    with_crypto = [vim.vm.RelocateSpec.DiskLocator(diskId=d.key, datastore=vm2.datastore[0], profile=enc_policy(),
                                                   backing=vim.vm.RelocateSpec.DiskLocator.BackingSpec(crypto=encrypt))
                   for d in disks(vm2)]
    dest = clone(vm2, made, location=vim.vm.RelocateSpec(profile=enc_policy(), disk=with_crypto),
                 config=vim.vm.ConfigSpec(crypto=encrypt))
    assert key_of(dest.config.keyId) == key_of(home)
    assert disk_keys(dest) == [key_of(home), key_of(home)]


def test_disk_locators_without_a_policy_follow_the_vm_level_cryptospec(si_a, vm2, made):
    """No disk policy: the disks inherit ConfigSpec.crypto ("inherited to all disks", API.md 2.2)."""
    home = new_key(si_a)
    bare = [vim.vm.RelocateSpec.DiskLocator(diskId=d.key, datastore=vm2.datastore[0]) for d in disks(vm2)]
    dest = clone(vm2, made, location=vim.vm.RelocateSpec(profile=enc_policy(), disk=bare),
                 config=vim.vm.ConfigSpec(crypto=vim.encryption.CryptoSpecEncrypt(cryptoKeyId=home)))
    assert disk_keys(dest) == [key_of(home), key_of(home)]


def test_the_relocate_shape_location_cryptospec_and_disk_backing_crypto_encrypts(si_a, vm2, made):
    home = new_key(si_a)
    encrypt = vim.encryption.CryptoSpecEncrypt(cryptoKeyId=home)
    locators = [vim.vm.RelocateSpec.DiskLocator(diskId=d.key, datastore=vm2.datastore[0], profile=enc_policy(),
                                                backing=vim.vm.RelocateSpec.DiskLocator.BackingSpec(crypto=encrypt))
                for d in disks(vm2)]
    dest = clone(vm2, made, location=vim.vm.RelocateSpec(profile=enc_policy(), cryptoSpec=encrypt, disk=locators))
    assert key_of(dest.config.keyId) == key_of(home) and disk_keys(dest) == [key_of(home), key_of(home)]


def test_clone_with_conflicting_crypto_and_policy_is_refused(si_a, enc_vm):
    before, count = state(enc_vm), _vm_count(si_a)
    task = clone_task(enc_vm, config=vim.vm.ConfigSpec(
        crypto=vim.encryption.CryptoSpecShallowRecrypt(newKeyId=new_key(si_a)), vmProfile=empty_policy()))
    refused(task, vmodl.fault.InvalidArgument)
    assert state(enc_vm) == before and _vm_count(si_a) == count


def test_clone_needs_the_clone_privilege_on_an_encrypted_source(env, si_a, enc_vm):
    from tests.fakevc.test_vm_crypto import _user_session
    other = _user_session(env, si_a, "nocrypto-cloner@vsphere.local", "NoCryptoAdmin")
    mine = vim.VirtualMachine(enc_vm._moId, other._stub)
    count = _vm_count(si_a)
    fault = refused(clone_task(mine), vim.fault.NoPermission)
    assert fault.privilegeId == "Cryptographer.Clone"
    assert _vm_count(si_a) == count


# ---- CLONE-LINKED ---------------------------------------------------------------------------------------
def test_linked_clone_inherits_the_parent_keys_and_cannot_be_recrypted(si_a, enc_vm, made):
    snap = snapshot(enc_vm, "base")
    dest = clone(enc_vm, made, location=vim.vm.RelocateSpec(diskMoveType=LINKED), snap=snap)
    assert key_of(dest.config.keyId) == key_of(enc_vm.config.keyId)
    assert disk_keys(dest) == disk_keys(enc_vm)
    before = state(dest)
    refused(dest.ReconfigVM_Task(spec=shallow_spec(dest, new_key(si_a))), vmodl.fault.NotSupported)
    from tests.fakevc.test_vm_crypto import decrypt_spec, deep_spec
    refused(dest.ReconfigVM_Task(spec=decrypt_spec(dest)), vmodl.fault.NotSupported)
    refused(dest.ReconfigVM_Task(spec=deep_spec(dest, new_key(si_a))), vmodl.fault.NotSupported)
    assert state(dest) == before


def test_linked_clone_with_a_crypto_change_is_refused(si_a, enc_vm):
    snap = snapshot(enc_vm, "base")
    count = _vm_count(si_a)
    task = clone_task(enc_vm, location=vim.vm.RelocateSpec(diskMoveType=LINKED), snap=snap,
                      config=vim.vm.ConfigSpec(crypto=vim.encryption.CryptoSpecShallowRecrypt(newKeyId=new_key(si_a))))
    refused(task, vmodl.fault.NotSupported)
    assert _vm_count(si_a) == count


def test_linked_clone_needs_a_snapshot(vm):
    refused(clone_task(vm, location=vim.vm.RelocateSpec(diskMoveType=LINKED)), vmodl.fault.InvalidArgument)


# ---- CLONE-TEMPLATE ----------------------------------------------------------------------------------------
@pytest.fixture
def template(si_a, made):
    machine = make_vm(si_a)
    made.append(machine)
    machine.MarkAsTemplate()
    return machine


def test_deploy_from_a_template_can_encrypt(template, made):
    dest = clone(template, made, location=vim.vm.RelocateSpec(profile=enc_policy()))
    assert dest.config.keyId is not None and not dest.config.template
    assert template.config.keyId is None and template.config.template


def test_deploy_from_an_encrypted_template_can_decrypt(si_a, made):
    source = make_vm(si_a)
    made.append(source)
    encrypt(si_a, source)
    source.MarkAsTemplate()
    dest = clone(source, made, location=vim.vm.RelocateSpec(profile=empty_policy()))
    assert dest.config.keyId is None and source.config.keyId is not None


def test_a_template_clone_cannot_be_powered_on(vm):
    task = vm.CloneVM_Task(folder=vm.parent, name=unique("t"), spec=vim.vm.CloneSpec(
        location=vim.vm.RelocateSpec(), template=True, powerOn=True))
    refused(task, vmodl.fault.InvalidArgument)


# ---- CLONE-HOSTVER / CLONE-PRE7 --------------------------------------------------------------------------
def test_clone_with_a_crypto_change_to_a_pre7_host_is_refused(si_a, vm):
    before, count = state(vm), _vm_count(si_a)
    task = clone_task(vm, location=vim.vm.RelocateSpec(host=_legacy_host(si_a), profile=enc_policy()))
    fault = refused(task, vmodl.fault.NotSupported)
    assert "6.7" in fault.msg
    assert state(vm) == before and _vm_count(si_a) == count


def test_clone_without_a_crypto_change_to_a_pre7_host_works(si_a, enc_vm, made):
    dest = clone(enc_vm, made, location=vim.vm.RelocateSpec(host=_legacy_host(si_a)))
    assert key_of(dest.config.keyId) == key_of(enc_vm.config.keyId)
    assert dest.runtime.host.name == "DC0_H_legacy"


def test_pre7_vcenter_refuses_a_crypto_change_during_clone(si_67, made):
    vm = make_vm(si_67)
    made.append(vm)
    before, count = state(vm), _vm_count(si_67)
    refused(clone_task(vm, config=vim.vm.ConfigSpec(vmProfile=enc_policy())), vmodl.fault.NotSupported)
    assert state(vm) == before and _vm_count(si_67) == count


def test_pre7_vcenter_clones_an_encrypted_vm_with_its_keys(si_67, made):
    vm = make_vm(si_67)
    made.append(vm)
    encrypt(si_67, vm)
    dest = clone(vm, made)
    assert key_of(dest.config.keyId) == key_of(vm.config.keyId)


# ---- seeded defects -----------------------------------------------------------------------------------------
COVERED = {"clone-encrypt-ignored", "clone-decrypt-ignored", "clone-recrypt-keeps-key", "clone-keep-new-key",
           "clone-linked-new-key", "clone-linked-allows-rekey", "clone-linked-rekey-half",
           "clone-template-ignores-crypto", "clone-hostver-ignored", "clone-hostver-half", "clone-pre7-allows-crypto",
           "clone-pre7-half"}


def test_defect_clone_encrypt_ignored(env, vm, made):
    with seeded(env, "clone-encrypt-ignored"):
        dest = clone(vm, made, location=vim.vm.RelocateSpec(profile=enc_policy()))
    assert dest.config.keyId is None


def test_defect_clone_decrypt_ignored(env, enc_vm, made):
    with seeded(env, "clone-decrypt-ignored"):
        dest = clone(enc_vm, made, location=vim.vm.RelocateSpec(profile=empty_policy()))
    assert dest.config.keyId is not None


def test_defect_clone_recrypt_keeps_key(env, si_a, enc_vm, made):
    with seeded(env, "clone-recrypt-keeps-key"):
        dest = clone(enc_vm, made, config=vim.vm.ConfigSpec(
            crypto=vim.encryption.CryptoSpecShallowRecrypt(newKeyId=new_key(si_a))))
    assert key_of(dest.config.keyId) == key_of(enc_vm.config.keyId)


def test_defect_clone_keep_gets_a_new_key(env, enc_vm, made):
    with seeded(env, "clone-keep-new-key"):
        dest = clone(enc_vm, made)
    assert dest.config.keyId is not None and key_of(dest.config.keyId) != key_of(enc_vm.config.keyId)


def test_defect_linked_clone_gets_a_new_key(env, enc_vm, made):
    snap = snapshot(enc_vm, "base")
    with seeded(env, "clone-linked-new-key"):
        dest = clone(enc_vm, made, location=vim.vm.RelocateSpec(diskMoveType=LINKED), snap=snap)
    assert key_of(dest.config.keyId) != key_of(enc_vm.config.keyId)


@pytest.mark.parametrize("defect,half", [("clone-linked-allows-rekey", False), ("clone-linked-rekey-half", True)])
def test_defect_linked_clone_recrypted(env, si_a, enc_vm, made, defect, half):
    snap = snapshot(enc_vm, "base")
    dest = clone(enc_vm, made, location=vim.vm.RelocateSpec(diskMoveType=LINKED), snap=snap)
    old = key_of(dest.config.keyId)
    with seeded(env, defect):
        task = dest.ReconfigVM_Task(spec=shallow_spec(dest, new_key(si_a)))
    (refused(task, vmodl.fault.NotSupported) if half else wait(task))
    assert key_of(dest.config.keyId) != old


def test_defect_template_ignores_crypto(env, template, made):
    with seeded(env, "clone-template-ignores-crypto"):
        dest = clone(template, made, location=vim.vm.RelocateSpec(profile=enc_policy()))
    assert dest.config.keyId is None


@pytest.mark.parametrize("defect,half", [("clone-hostver-ignored", False), ("clone-hostver-half", True)])
def test_defect_clone_to_a_pre7_host(env, si_a, vm, made, defect, half):
    name = unique("hostver")
    with seeded(env, defect):
        task = clone_task(vm, name=name, location=vim.vm.RelocateSpec(host=_legacy_host(si_a), profile=enc_policy()))
    (refused(task, vmodl.fault.NotSupported) if half else wait(task))
    dest = find_vm(si_a, name)
    made.append(dest)
    assert dest.config.keyId is not None


@pytest.mark.parametrize("defect,half", [("clone-pre7-allows-crypto", False), ("clone-pre7-half", True)])
def test_defect_pre7_clone_changes_encryption(env, si_67, made, defect, half):
    vm = make_vm(si_67)
    made.append(vm)
    name = unique("pre7")
    with seeded(env, defect):
        task = clone_task(vm, name=name, config=vim.vm.ConfigSpec(vmProfile=enc_policy()))
    (refused(task, vmodl.fault.NotSupported) if half else wait(task))
    dest = find_vm(si_67, name)
    made.append(dest)
    assert dest.config.keyId is not None


def test_a_template_converts_back_to_a_vm(si_a, template):
    dc = si_a.content.rootFolder.childEntity[0]
    cluster = [c for c in dc.hostFolder.childEntity if isinstance(c, vim.ClusterComputeResource)][0]
    template.MarkAsVirtualMachine(pool=cluster.resourcePool)
    assert not template.config.template
    power_on(template)
    assert template.runtime.powerState == "poweredOn"
