"""InstantClone_Task on the fake: inherited keys, no crypto change, and the locked family (IC-*)."""
from __future__ import annotations

from typing import Any

import pytest
from pyVmomi import vim, vmodl

from tests.fakevc.conftest import wait
from tests.fakevc.test_vm_crypto import (decrypt_spec, deep_spec, disk_keys, disks, empty_policy, enc_policy,
                                         find_vm, key_of, new_key, power_on, refused, seeded, shallow_spec, state,
                                         unique)
from tests.fakevc.test_vm_crypto import enc_vm, made  # noqa: F401 - fixtures


def ic_task(vm: Any, name: str | None = None, **location: Any) -> Any:
    return vm.InstantClone_Task(spec=vim.vm.InstantCloneSpec(name=name or unique("ic"),
                                                             location=vim.vm.RelocateSpec(**location)))


def instant_clone(vm: Any, made: list, **location: Any) -> Any:
    child = wait(ic_task(vm, **location))
    made.append(child)
    return child


@pytest.fixture
def running(enc_vm: Any) -> Any:
    power_on(enc_vm)
    return enc_vm


def _count(si: Any) -> int:
    view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
    try:
        return len(view.view)
    finally:
        view.DestroyView()


# ---- IC-INHERIT ---------------------------------------------------------------------------------------
def test_instant_clone_shares_the_parent_keys_on_the_same_host(running, made):
    child = instant_clone(running, made)
    assert key_of(child.config.keyId) == key_of(running.config.keyId)
    assert disk_keys(child) == disk_keys(running)
    assert child.runtime.powerState == "poweredOn"
    assert child.runtime.host._moId == running.runtime.host._moId


def test_instant_clone_config_lands_in_extra_config(running, made):
    spec = vim.vm.InstantCloneSpec(name=unique("ic"), location=vim.vm.RelocateSpec(),
                                   config=[vim.option.OptionValue(key="guestinfo.ic", value="yes")])
    child = wait(running.InstantClone_Task(spec=spec))
    made.append(child)
    assert {o.key: o.value for o in child.config.extraConfig}["guestinfo.ic"] == "yes"


def test_instant_clone_of_a_powered_off_vm_is_refused(si_a, enc_vm):
    count = _count(si_a)
    refused(ic_task(enc_vm), vmodl.fault.InvalidArgument)
    assert _count(si_a) == count


def test_instant_clone_to_another_host_is_refused(si_a, running):
    other = next(h for h in running.runtime.host.parent.host if h._moId != running.runtime.host._moId)
    refused(ic_task(running, host=other), vmodl.fault.InvalidArgument)


# ---- IC-NO-CRYPTO-CHANGE ------------------------------------------------------------------------------
@pytest.mark.parametrize("change", ["profile", "plain-profile", "cryptoSpec", "disk-backing", "disk-profile"])
def test_instant_clone_refuses_any_crypto_or_policy_change(si_a, running, change):
    disk = disks(running)[0]
    datastore = running.datastore[0]
    location = {
        "profile": {"profile": enc_policy()},
        "plain-profile": {"profile": empty_policy()},
        "cryptoSpec": {"cryptoSpec": vim.encryption.CryptoSpecShallowRecrypt(newKeyId=new_key(si_a))},
        "disk-backing": {"disk": [vim.vm.RelocateSpec.DiskLocator(
            diskId=disk.key, datastore=datastore, backing=vim.vm.RelocateSpec.DiskLocator.BackingSpec(
                crypto=vim.encryption.CryptoSpecDecrypt()))]},
        "disk-profile": {"disk": [vim.vm.RelocateSpec.DiskLocator(diskId=disk.key, datastore=datastore,
                                                                  profile=empty_policy())]},
    }[change]
    before, count = state(running), _count(si_a)
    refused(ic_task(running, **location), vmodl.fault.InvalidArgument)
    assert state(running) == before and _count(si_a) == count


# ---- IC-LOCKED ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["parent", "child"])
@pytest.mark.parametrize("operation", ["shallow", "deep", "decrypt"])
def test_neither_parent_nor_child_can_be_recrypted_or_decrypted(si_a, running, made, who, operation):
    child = instant_clone(running, made)
    target = running if who == "parent" else child
    if operation != "shallow":
        wait(target.PowerOffVM_Task())   # so that only IC-LOCKED can refuse
    spec = {"shallow": lambda: shallow_spec(target, new_key(si_a)), "deep": lambda: deep_spec(target, new_key(si_a)),
            "decrypt": lambda: decrypt_spec(target)}[operation]()
    before = state(target)
    refused(target.ReconfigVM_Task(spec=spec), vmodl.fault.NotSupported)
    assert state(target) == before


def test_an_unencrypted_family_is_not_locked(si_a, vm, made):
    power_on(vm)
    child = instant_clone(vm, made)
    assert child.config.keyId is None
    wait(child.PowerOffVM_Task())
    from tests.fakevc.test_vm_crypto import encrypt
    encrypt(si_a, child)
    assert child.config.keyId is not None


# ---- seeded defects ----------------------------------------------------------------------------------
COVERED = {"ic-inherit-new-key", "ic-crypto-change-allowed", "ic-crypto-change-half", "ic-locked-allows-rekey",
           "ic-locked-half"}


def test_defect_instant_clone_gets_a_new_key(env, running, made):
    with seeded(env, "ic-inherit-new-key"):
        child = instant_clone(running, made)
    assert child.config.keyId is not None and key_of(child.config.keyId) != key_of(running.config.keyId)


@pytest.mark.parametrize("defect,half", [("ic-crypto-change-allowed", False), ("ic-crypto-change-half", True)])
def test_defect_instant_clone_applies_a_crypto_change(env, si_a, running, made, defect, half):
    name = unique("ic-d")
    key = new_key(si_a)
    with seeded(env, defect):
        task = ic_task(running, name=name, cryptoSpec=vim.encryption.CryptoSpecShallowRecrypt(newKeyId=key))
    (refused(task, vmodl.fault.InvalidArgument) if half else wait(task))
    child = find_vm(si_a, name)
    made.append(child)
    assert key_of(child.config.keyId) == key_of(key)


@pytest.mark.parametrize("defect,half", [("ic-locked-allows-rekey", False), ("ic-locked-half", True)])
def test_defect_family_recrypted(env, si_a, running, made, defect, half):
    instant_clone(running, made)
    old = key_of(running.config.keyId)
    with seeded(env, defect):
        task = running.ReconfigVM_Task(spec=shallow_spec(running, new_key(si_a)))
    (refused(task, vmodl.fault.NotSupported) if half else wait(task))
    assert key_of(running.config.keyId) != old
