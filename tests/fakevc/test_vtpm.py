"""The fake's virtual TPM (behaviours/vtpm.py): what the VTPM-* suites do not reach, through plain pyVmomi.

The suites prove the rules (adding encrypts the home, decrypt kept out, clones copy); these tests pin the
fake's preconditions (EFI, powered off, one vTPM), its refusals changing nothing, and its choices where
vSphere is silent (a VM whose disks were encrypted since keeps its home key when the vTPM goes).
"""
from __future__ import annotations

from typing import Any

import pytest
from pyVmomi import vim, vmodl

from tests.fakevc.conftest import make_vm, wait
from tests.fakevc.test_vm_crypto import decrypt_spec, disk_keys, encrypt, key_of, new_key, refused, state


def tpm(vm: Any) -> Any | None:
    return next((d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualTPM)), None)


def efi(vm: Any) -> None:
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(firmware="efi")))


def add_tpm_spec() -> Any:
    return vim.vm.ConfigSpec(deviceChange=[
        vim.vm.device.VirtualDeviceSpec(operation="add", device=vim.vm.device.VirtualTPM(key=-1))])


def add_tpm_task(vm: Any) -> Any:
    return vm.ReconfigVM_Task(spec=add_tpm_spec())


def remove_tpm_spec(vm: Any, crypto: Any = None) -> Any:
    spec = decrypt_spec(vm) if crypto == "decrypt" else vim.vm.ConfigSpec()
    spec.deviceChange = [*(spec.deviceChange or []),
                         vim.vm.device.VirtualDeviceSpec(operation="remove", device=tpm(vm))]
    return spec


def test_a_vtpm_needs_efi_firmware_and_the_refusal_changes_nothing(si_a: Any, vm: Any) -> None:
    before = state(vm)
    refused(add_tpm_task(vm), vim.fault.InvalidState)
    assert tpm(vm) is None and state(vm) == before and vm.config.firmware == "bios"


def test_a_vtpm_is_added_only_to_a_powered_off_vm(si_a: Any, vm: Any) -> None:
    efi(vm)
    wait(vm.PowerOnVM_Task())
    try:
        refused(add_tpm_task(vm), vim.fault.InvalidPowerState)
        assert tpm(vm) is None and vm.config.keyId is None
    finally:
        wait(vm.PowerOffVM_Task())


def test_a_vm_has_at_most_one_vtpm_and_its_certificate_survives_a_refused_second_add(si_a: Any, vm: Any) -> None:
    efi(vm)
    wait(add_tpm_task(vm))
    first = tpm(vm)
    assert first is not None and first.endorsementKeyCertificate, "a vTPM shows its EK certificate"
    refused(add_tpm_task(vm), vmodl.fault.InvalidArgument)
    assert [bytes(c) for c in tpm(vm).endorsementKeyCertificate] == [bytes(c) for c in first.endorsementKeyCertificate]


def test_a_vtpm_added_with_a_vm_level_encrypt_and_no_policy_encrypts_the_home_only(si_a: Any, vm: Any) -> None:
    """vm-operator's shape (crypto_reconciler_pre.go onEncrypt): CryptoSpecEncrypt on the VM, no storage policy."""
    efi(vm)
    key = new_key(si_a)
    spec = add_tpm_spec()
    spec.crypto = vim.encryption.CryptoSpecEncrypt(cryptoKeyId=key)
    wait(vm.ReconfigVM_Task(spec=spec))
    assert tpm(vm) is not None and key_of(vm.config.keyId) == key_of(key) and disk_keys(vm) == [None]


def test_a_vtpm_is_never_added_to_a_vm_home_that_stays_unencrypted(si_a: Any, vm: Any) -> None:
    efi(vm)
    before = state(vm)
    spec = add_tpm_spec()
    spec.crypto = vim.encryption.CryptoSpecNoOp()
    refused(vm.ReconfigVM_Task(spec=spec), vim.fault.InvalidState)
    assert tpm(vm) is None and state(vm) == before


def test_removing_the_vtpm_keeps_the_home_key_once_disks_were_encrypted_since(si_a: Any, vm: Any) -> None:
    """FAKE'S CHOICE (vSphere is silent): the home key stays when disks depend on it."""
    efi(vm)
    wait(add_tpm_task(vm))
    home = key_of(vm.config.keyId)
    assert home is not None and disk_keys(vm) == [None]
    disk = next(d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk))
    crypto = vim.encryption.CryptoSpecEncrypt(cryptoKeyId=vm.config.keyId)
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[vim.vm.device.VirtualDeviceSpec(
        operation="edit", device=disk, backing=vim.vm.device.VirtualDeviceSpec.BackingSpec(crypto=crypto),
        profile=[vim.vm.DefinedProfileSpec(profileId="4d5f673c-536f-11e6-beb8-9e71128cae77")])])))
    assert disk_keys(vm) == [home]
    wait(vm.ReconfigVM_Task(spec=remove_tpm_spec(vm)))
    assert tpm(vm) is None and key_of(vm.config.keyId) == home and disk_keys(vm) == [home]


def test_a_decrypt_that_removes_the_vtpm_in_the_same_spec_is_allowed(si_a: Any, vm: Any) -> None:
    """FAKE'S CHOICE: the vTPM goes with the decrypt (no test asserts this on another target)."""
    encrypt(si_a, vm)
    efi(vm)
    wait(add_tpm_task(vm))
    refused(vm.ReconfigVM_Task(spec=decrypt_spec(vm)), vim.fault.InvalidState)
    assert tpm(vm) is not None and vm.config.keyId is not None
    wait(vm.ReconfigVM_Task(spec=remove_tpm_spec(vm, crypto="decrypt")))
    assert tpm(vm) is None and vm.config.keyId is None and disk_keys(vm) == [None]


def test_a_relocated_vm_keeps_its_own_vtpm(si_a: Any, made_vm_with_tpm: Any) -> None:
    vm, certificate = made_vm_with_tpm
    hosts = [h for h in vm.runtime.host.parent.host if h != vm.runtime.host]
    wait(vm.RelocateVM_Task(spec=vim.vm.RelocateSpec(host=hosts[0])))
    assert [bytes(c) for c in tpm(vm).endorsementKeyCertificate] == certificate


def test_supports_provision_policy_reads_the_api_release(si_a: Any) -> None:
    from harness.vsphere import vtpm

    class Client:
        def __init__(self, release: str) -> None:
            self.content = vim.ServiceInstanceContent(about=vim.AboutInfo(apiVersion=release))

    assert not vtpm.supports_provision_policy(Client("7.0.3.0"))
    assert not vtpm.supports_provision_policy(Client("8.0.0.0"))
    assert vtpm.supports_provision_policy(Client("8.0.0.1")) and vtpm.supports_provision_policy(Client("8.0.2.0"))


# ---- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture
def made_vm_with_tpm(si_a: Any) -> Any:
    vm = make_vm(si_a)
    efi(vm)
    wait(add_tpm_task(vm))
    yield vm, [bytes(c) for c in tpm(vm).endorsementKeyCertificate]
    wait(vm.Destroy_Task())
