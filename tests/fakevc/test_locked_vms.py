"""The fake's locked VMs (behaviours/locked_vms.py, LOCK-*) and its fault injection `control.key_lost`.

The fault touches only the key it is given: another encrypted VM on another key stays unlocked, and once the
context ends the KMS serves the key again while the locked VM stays locked until CryptoUnlock_Task.
"""
from __future__ import annotations

from typing import Any

import pytest
from pyVmomi import vim

from harness.targets.control import NoFaultInjection
from tests.fakevc.conftest import make_vm, wait
from tests.fakevc.test_vm_crypto import encrypt, events, key_of, refused


def _key(key_id: Any) -> tuple[str, str]:
    found = key_of(key_id)
    assert found is not None
    return found


def test_losing_one_key_locks_only_the_vm_that_needs_it_and_posts_key_missing_on_kms(env, si_a, vm):
    other = make_vm(si_a)
    try:
        key = _key(encrypt(si_a, vm))
        encrypt(si_a, other)
        with env.control("vc-a").key_lost(key) as locked:
            assert locked == [vm._moId]
            assert vm.runtime.cryptoState == "locked"
            assert other.runtime.cryptoState == "unlocked"
            assert _key(vm.config.keyId) == key   # locked, not decrypted
            posted = events(si_a, vm, "com.vmware.vc.vm.Crypto.VMLocked.KeyMissingOnKMS")
            assert posted and posted[-1].severity == "error"
        assert vm.runtime.cryptoState == "locked"   # the key is back, the VM waits for CryptoUnlock_Task
    finally:
        wait(other.Destroy_Task())


def test_a_locked_vm_refuses_power_on_with_the_missing_key_named(env, si_a, vm):
    key = _key(encrypt(si_a, vm))
    with env.control("vc-a").key_lost(key):
        fault = refused(vm.PowerOnVM_Task(), vim.fault.EncryptionKeyRequired)
        assert [(k.providerId.id, k.keyId) for k in fault.requiredKey] == [key]
    assert vm.runtime.powerState == "poweredOff"


def test_crypto_unlock_fails_while_the_key_is_withheld_and_succeeds_once_it_is_served(env, si_a, vm):
    key = _key(encrypt(si_a, vm))
    with env.control("vc-a").key_lost(key):
        refused(vm.CryptoUnlock_Task(), vim.fault.InvalidVmState)
        assert vm.runtime.cryptoState == "locked"
    wait(vm.CryptoUnlock_Task())
    assert vm.runtime.cryptoState == "unlocked"
    assert _key(vm.config.keyId) == key
    assert events(si_a, vm, "com.vmware.vc.vm.Crypto.VMUnlocked")


def test_the_key_is_served_again_even_when_the_test_fails_inside(env, si_a, vm):
    key = _key(encrypt(si_a, vm))
    fake = env.fake_vcenter("vc-a")
    with pytest.raises(RuntimeError):
        with env.control("vc-a").key_lost(key):
            assert key in fake.world.withheld_keys
            raise RuntimeError("the test failed inside")
    assert key not in fake.world.withheld_keys


def test_a_target_without_fault_injection_skips_key_lost_and_host_reboots():
    control = NoFaultInjection("vc-real")
    for request in (lambda: control.key_lost(("p", "k")).__enter__(), lambda: control.reboot_hosts_holding(("p", "k"))):
        with pytest.raises(pytest.skip.Exception, match="capability: vc-real lacks fault_injection"):
            request()


def test_hosts_rebooting_while_the_kms_serves_the_key_lock_nothing(env, si_a, vm):
    key = _key(encrypt(si_a, vm))
    assert env.control("vc-a").reboot_hosts_holding(key) == []
    assert vm.runtime.cryptoState == "unlocked"
