"""The fake's suspended VMs: SuspendVM_Task, leaving the state, and "needs the VM powered off".

A suspended VM is neither on nor off, so every crypto operation that needs a powered-off VM refuses
it (vcsim: simulator/virtual_machine.go updateCrypto assertPoweredOff). The seeded
`*-allows-suspended` defects model a check written as "refuse when powered on" instead.
"""
from __future__ import annotations

from typing import Any

import pytest
from pyVmomi import vim

from tests.fakevc.conftest import wait
from tests.fakevc.test_vm_crypto import (decrypt_spec, deep_spec, enc_vm, encrypt, encrypt_spec, new_key,  # noqa: F401
                                         power_on, refused, seeded, state)

SPECS = {"encrypt": lambda si, vm: encrypt_spec(vm, new_key(si)),
         "decrypt": lambda si, vm: decrypt_spec(vm),
         "deep": lambda si, vm: deep_spec(vm, new_key(si))}
DEFECTS = {"encrypt": "op-encrypt-off-allows-suspended", "decrypt": "op-decrypt-off-allows-suspended",
           "deep": "op-deep-off-allows-suspended"}


def _suspend(vm: Any) -> None:
    power_on(vm)
    wait(vm.SuspendVM_Task())
    assert vm.runtime.powerState == "suspended"


def _target(si_a: Any, vm: Any, operation: str) -> Any:
    if operation != "encrypt":
        encrypt(si_a, vm)
    _suspend(vm)
    return vm


def test_only_a_powered_on_vm_can_be_suspended_and_a_suspended_one_can_be_powered_off_or_resumed(vm):
    refused(vm.SuspendVM_Task(), vim.fault.InvalidPowerState)
    _suspend(vm)
    refused(vm.SuspendVM_Task(), vim.fault.InvalidPowerState)
    wait(vm.PowerOffVM_Task())
    assert vm.runtime.powerState == "poweredOff"
    _suspend(vm)
    wait(vm.PowerOnVM_Task())
    assert vm.runtime.powerState == "poweredOn"
    wait(vm.PowerOffVM_Task())


@pytest.mark.parametrize("operation", sorted(SPECS))
def test_a_crypto_operation_that_needs_the_vm_off_refuses_a_suspended_vm_and_changes_nothing(si_a, vm, operation):
    _target(si_a, vm, operation)
    before = state(vm)
    fault = refused(vm.ReconfigVM_Task(spec=SPECS[operation](si_a, vm)), vim.fault.InvalidPowerState)
    assert fault.existingState == "suspended" and "Suspended" in fault.msg
    assert state(vm) == before
    wait(vm.PowerOffVM_Task())


@pytest.mark.parametrize("operation", sorted(SPECS))
def test_an_allows_suspended_defect_lets_a_suspended_vm_through(env, si_a, vm, operation):
    _target(si_a, vm, operation)
    before = state(vm)
    with seeded(env, DEFECTS[operation]):
        wait(vm.ReconfigVM_Task(spec=SPECS[operation](si_a, vm)))
    assert state(vm) != before   # the violation the suspended suite instances catch
    wait(vm.PowerOffVM_Task())
