"""Datastore space for crypto rewrites (EVT-DISK-SPACE): NoDiskSpace, the critical event, nothing changed."""
from __future__ import annotations

from typing import Any, Iterator

import pytest
from pyVmomi import vim

from harness.fakevc.behaviours import space
from tests.fakevc.test_vm_crypto import (decrypt_spec, deep_spec, enc_policy, encrypt, encrypt_spec, events, key_of,
                                         new_key, refused, seeded, shallow_spec, state, unique)
from tests.fakevc.test_vm_crypto import enc_vm, made  # noqa: F401 - fixtures
from tests.fakevc.conftest import wait

EVENT = "com.vmware.vc.vm.crypto.NoDiskSpace"
DISK = 64 * 1024   # the conftest VM's disk


@pytest.fixture
def fill(env: Any) -> Iterator[Any]:
    """fill(bytes_free): hold the rest of LocalDS_0 on vc-a (released at teardown)."""
    fake = env.fake_vcenter("vc-a")
    yield lambda free: space.fill_datastore(fake, "LocalDS_0", free)
    space.restore_datastore(fake, "LocalDS_0")


def _free(vm: Any) -> int:
    return vm.datastore[0].summary.freeSpace


def test_fill_and_restore_are_visible_through_the_api(env, vm, fill):
    total = _free(vm)
    fill(DISK)
    assert _free(vm) == DISK
    space.restore_datastore(env.fake_vcenter("vc-a"), "LocalDS_0")
    assert _free(vm) == total


@pytest.mark.parametrize("operation", ["encrypt", "decrypt", "deep"])
def test_a_crypto_rewrite_without_twice_the_space_fails_with_an_event(si_a, vm, fill, operation):
    if operation != "encrypt":
        encrypt(si_a, vm)
    spec = {"encrypt": lambda: encrypt_spec(vm, new_key(si_a)), "decrypt": lambda: decrypt_spec(vm),
            "deep": lambda: deep_spec(vm, new_key(si_a))}[operation]()
    fill(2 * DISK - 1)
    before = state(vm)
    fault = refused(vm.ReconfigVM_Task(spec=spec), vim.fault.NoDiskSpace)
    assert fault.datastore == "LocalDS_0"
    assert state(vm) == before
    posted = events(si_a, vm, EVENT)
    assert len(posted) == 1 and posted[0].severity == "error"


def test_twice_the_disk_size_free_is_enough(si_a, vm, fill):
    fill(2 * DISK)
    encrypt(si_a, vm)
    assert vm.config.keyId is not None and events(si_a, vm, EVENT) == []


def test_a_shallow_recrypt_needs_no_space(si_a, enc_vm, fill):
    fill(0)
    key = new_key(si_a)
    wait(enc_vm.ReconfigVM_Task(spec=shallow_spec(enc_vm, key)))
    assert key_of(enc_vm.config.keyId) == key_of(key)


def test_an_encrypting_clone_without_space_fails_with_the_event(si_a, vm, fill):
    fill(DISK - 1)
    name = unique("full")
    task = vm.CloneVM_Task(folder=vm.parent, name=name, spec=vim.vm.CloneSpec(
        location=vim.vm.RelocateSpec(profile=enc_policy()), template=False, powerOn=False))
    refused(task, vim.fault.NoDiskSpace)
    assert events(si_a, vm, EVENT)


# ---- seeded defects -----------------------------------------------------------------------------------
COVERED = {"evt-disk-space-no-event", "evt-disk-space-ignored", "evt-disk-space-half", "rekey-deep-space-half"}


def test_defect_no_event(env, si_a, vm, fill):
    fill(DISK)
    with seeded(env, "evt-disk-space-no-event"):
        refused(vm.ReconfigVM_Task(spec=encrypt_spec(vm, new_key(si_a))), vim.fault.NoDiskSpace)
    assert events(si_a, vm, EVENT) == []


@pytest.mark.parametrize("defect,half", [("evt-disk-space-ignored", False), ("evt-disk-space-half", True)])
def test_defect_encrypts_without_space(env, si_a, vm, fill, defect, half):
    fill(DISK)
    with seeded(env, defect):
        task = vm.ReconfigVM_Task(spec=encrypt_spec(vm, new_key(si_a)))
    (refused(task, vim.fault.NoDiskSpace) if half else wait(task))
    assert vm.config.keyId is not None


def test_defect_deep_recrypt_rekeys_without_space(env, si_a, enc_vm, fill):
    old = key_of(enc_vm.config.keyId)
    fill(DISK)
    with seeded(env, "rekey-deep-space-half"):
        refused(enc_vm.ReconfigVM_Task(spec=deep_spec(enc_vm, new_key(si_a))), vim.fault.NoDiskSpace)
    assert key_of(enc_vm.config.keyId) != old
