"""Preconditions of VM crypto operations (RULES.md: OP-*)."""
from __future__ import annotations

import pytest
from pyVmomi import vim

from harness import unconfirmed
from harness.checks import assert_disks_encrypted, check_that, positive_control, refused, unchanged
from harness.vsphere import crypto, keys, snapshots, vms
from harness.vsphere.hosts import require_some

pytestmark = pytest.mark.requires("vm_encryption", "key_providers")


@pytest.mark.rule("OP-ENCRYPT-OFF")
@pytest.mark.covers(power="on")
@pytest.mark.test_id("5b0e2f57-4c1e-4d52-9d3c-2a0c6f1e7a01")
def test_encrypting_a_powered_on_vm_is_refused_and_it_stays_unencrypted(scratch, inventory, vc, place, provider,
                                                                        policies_a):
    vm = scratch.vm(vc, place, "on")
    vms.power_on(vc, vm)
    key = keys.generate_key(vc, provider)
    before = vms.state(vc, vm, label="before encrypt", phase="before")

    # API.md 4/10: InvalidPowerState is vcsim's class; the real one is UNCONFIRMED. The refusal and the
    # unchanged state are asserted; the class only where the target confirms it (else recorded by refused()).
    refusal = refused(lambda: crypto.encrypt(vc, vm, key, policies_a.encryption), "encrypt powered-on VM")
    if unconfirmed.confirmed_on(inventory, vc.name, "invalid-power-state-fault"):
        assert isinstance(refusal.fault, vim.fault.InvalidPowerState), \
            f"encrypt powered-on VM: refused with {refusal.fault_class}, expected vim.fault.InvalidPowerState"

    after = vms.state(vc, vm, label="after refused encrypt", phase="after")
    unchanged(before, after, "encrypt powered-on VM")
    assert after.key is None


# "Needs it powered off" covers a suspended VM too (issue 23: the rule was only tried powered on).
def _suspended(vc, vm) -> None:
    """Power on, then suspend: a VM that is neither on nor off."""
    vms.power_on(vc, vm)
    vms.suspend(vc, vm)


@pytest.mark.rule("OP-ENCRYPT-OFF")
@pytest.mark.covers(power=["suspended", "off"])   # off: encrypting the same VM once it is off works
@pytest.mark.test_id("8409e162-ad44-4daf-ba68-75b3d2411c67")
def test_encrypting_a_suspended_vm_is_refused_and_once_it_is_off_the_same_encrypt_works(scratch, vc, place,
                                                                                        provider, policies_a):
    vm = scratch.vm(vc, place, "suspended")
    _suspended(vc, vm)
    key = keys.generate_key(vc, provider)
    before = vms.state(vc, vm, label="before encrypt", phase="before")
    assert before.power == "suspended", f"the arrangement left the VM {before.power}, not suspended"

    refused(lambda: crypto.encrypt(vc, vm, key, policies_a.encryption), "encrypt a suspended VM")

    after = vms.state(vc, vm, label="after refused encrypt", phase="after")
    unchanged(before, after, "encrypt a suspended VM")
    vms.power_off(vc, vm)
    positive_control(lambda: crypto.encrypt(vc, vm, key, policies_a.encryption), "the same encrypt, powered off")
    done = vms.state(vc, vm, label="after encrypt powered off", phase="after")
    check_that("encrypt powered off", done.key == key, f"VM on {key}", f"VM on {done.key}")


@pytest.mark.rule("OP-ENCRYPT-NO-SNAPSHOTS")
@pytest.mark.requires("snapshots")
@pytest.mark.covers(snapshots="single")
@pytest.mark.test_id("0f3c9a64-8e2b-4f0a-b1d7-6c5e4a3b2c02")
def test_encrypting_a_vm_with_snapshots_is_refused(scratch, vc, place, provider, policies_a):
    vm = scratch.vm(vc, place, "snap")
    snapshots.create(vc, vm, "before-encrypt")
    key = keys.generate_key(vc, provider)
    before = vms.state(vc, vm, label="before encrypt", phase="before")

    refused(lambda: crypto.encrypt(vc, vm, key, policies_a.encryption), "encrypt VM with snapshots")

    after = vms.state(vc, vm, label="after refused encrypt", phase="after")
    unchanged(before, after, "encrypt VM with snapshots")
    assert after.key is None and after.snapshot_count == 1


@pytest.mark.rule("OP-STATE")
@pytest.mark.test_id("8a41d2c3-1b7e-4c55-9e0f-3d2b1a0c9d03")
def test_encrypting_an_encrypted_vm_is_refused(encrypted_vm, vc, provider, policies_a):
    before = vms.state(vc, encrypted_vm, label="before second encrypt", phase="before")
    assert before.encrypted
    other = keys.generate_key(vc, provider)

    refused(lambda: crypto.encrypt(vc, encrypted_vm, other, policies_a.encryption), "encrypt an encrypted VM")

    unchanged(before, vms.state(vc, encrypted_vm, label="after", phase="after"), "encrypt an encrypted VM")


@pytest.mark.rule("OP-STATE")
@pytest.mark.test_id("c7e5b3a1-2d4f-4e6a-8b9c-0d1e2f3a4b04")
@pytest.mark.parametrize("operation", ["decrypt", "shallow", "deep"])
def test_decrypting_or_recrypting_an_unencrypted_vm_is_refused(operation, scratch, vc, place, provider, policies_a):
    vm = scratch.vm(vc, place, f"plain-{operation}")
    before = vms.state(vc, vm, label="before", phase="before")
    key = keys.generate_key(vc, provider)
    actions = {"decrypt": lambda: crypto.decrypt(vc, vm, policies_a.plain),
               "shallow": lambda: crypto.shallow_rekey(vc, vm, key),
               "deep": lambda: crypto.deep_rekey(vc, vm, key, policies_a.encryption)}

    refused(actions[operation], f"{operation} an unencrypted VM")

    unchanged(before, vms.state(vc, vm, label="after", phase="after"), f"{operation} an unencrypted VM")


# ---- OP-DECRYPT-OFF -------------------------------------------------------------------------------
@pytest.mark.rule("OP-DECRYPT-OFF")
@pytest.mark.requires("storage_policies")
@pytest.mark.covers(power=["on", "off"])   # off: the positive control
@pytest.mark.test_id("4aea813b-c84c-4fba-bba6-7bade3ab73f4")
def test_decrypting_a_powered_on_vm_is_refused_and_it_keeps_its_key(encrypted_vm, vc, policies_a):
    vms.power_on(vc, encrypted_vm)
    before = vms.state(vc, encrypted_vm, label="before decrypt", phase="before")
    assert before.encrypted and before.power == "poweredOn"

    # API.md 10: the real fault class for a decrypt while powered on is UNCONFIRMED: recorded, not asserted.
    refused(lambda: crypto.decrypt(vc, encrypted_vm, policies_a.plain), "decrypt a powered-on VM")

    after = vms.state(vc, encrypted_vm, label="after refused decrypt", phase="after")
    unchanged(before, after, "decrypt a powered-on VM")
    assert after.key == before.key
    assert_disks_encrypted(after, "after the refused decrypt the VM's")
    # Positive control: the same decrypt (same storage policy) works once the VM is off, so the refusal was
    # about the power state, not a policy that does not fit the datastore or a login problem.
    vms.power_off(vc, encrypted_vm)
    positive_control(lambda: crypto.decrypt(vc, encrypted_vm, policies_a.plain), "the same decrypt, powered off")


@pytest.mark.rule("OP-DECRYPT-OFF")
@pytest.mark.requires("storage_policies")
@pytest.mark.covers(power="suspended")
@pytest.mark.test_id("4c20bb78-29db-41c3-825f-2190b842b5ed")
def test_decrypting_a_suspended_vm_is_refused_and_it_keeps_its_key(encrypted_vm, vc, policies_a):
    _suspended(vc, encrypted_vm)
    before = vms.state(vc, encrypted_vm, label="before decrypt", phase="before")
    assert before.encrypted and before.power == "suspended"

    refused(lambda: crypto.decrypt(vc, encrypted_vm, policies_a.plain), "decrypt a suspended VM")

    after = vms.state(vc, encrypted_vm, label="after refused decrypt", phase="after")
    unchanged(before, after, "decrypt a suspended VM")
    assert_disks_encrypted(after, "after the refused decrypt the VM's")
    vms.power_off(vc, encrypted_vm)
    positive_control(lambda: crypto.decrypt(vc, encrypted_vm, policies_a.plain), "the same decrypt, powered off")


# ---- OP-DEEP-OFF-NO-SNAPSHOTS ---------------------------------------------------------------------
@pytest.mark.rule("OP-DEEP-OFF-NO-SNAPSHOTS")
@pytest.mark.requires("storage_policies")
@pytest.mark.covers(power="on")
@pytest.mark.test_id("9bff5da4-610a-4ee7-851b-3332b1cc5890")
def test_a_deep_recrypt_of_a_powered_on_vm_is_refused_and_the_key_is_unchanged(encrypted_vm, vc, provider, policies_a):
    vms.power_on(vc, encrypted_vm)
    before = vms.state(vc, encrypted_vm, label="before deep recrypt", phase="before")
    assert before.encrypted and before.power == "poweredOn"
    new_key = keys.generate_key(vc, provider)

    refused(lambda: crypto.deep_rekey(vc, encrypted_vm, new_key, policies_a.encryption),
            "deep recrypt a powered-on VM")

    after = vms.state(vc, encrypted_vm, label="after refused deep recrypt", phase="after")
    unchanged(before, after, "deep recrypt a powered-on VM")
    assert new_key not in (after.key, *after.disk_keys)


@pytest.mark.rule("OP-DEEP-OFF-NO-SNAPSHOTS")
@pytest.mark.requires("snapshots", "storage_policies")
@pytest.mark.covers(snapshots="single")
@pytest.mark.test_id("37b1739c-b33d-421e-98d5-309b97cc2d2b")
def test_a_deep_recrypt_of_a_vm_with_snapshots_is_refused_and_no_key_changes(encrypted_vm, vc, provider, policies_a):
    snapshots.create(vc, encrypted_vm, "before-deep")
    before = vms.state(vc, encrypted_vm, label="before deep recrypt", phase="before")
    assert before.encrypted and before.power == "poweredOff" and before.snapshot_count == 1
    snaps_before = require_some(snapshots.with_keys(vc, encrypted_vm, label="snapshot keys before", phase="before"),
                                "snapshot")
    new_key = keys.generate_key(vc, provider)

    refused(lambda: crypto.deep_rekey(vc, encrypted_vm, new_key, policies_a.encryption),
            "deep recrypt a VM with snapshots")

    after = vms.state(vc, encrypted_vm, label="after refused deep recrypt", phase="after")
    unchanged(before, after, "deep recrypt a VM with snapshots")
    snaps_after = snapshots.with_keys(vc, encrypted_vm, label="snapshot keys after", phase="after")
    assert [(s.name, s.key) for s in snaps_after] == [(s.name, s.key) for s in snaps_before], \
        "a snapshot's key changed although the deep recrypt was refused"


@pytest.mark.rule("OP-DEEP-OFF-NO-SNAPSHOTS")
@pytest.mark.requires("storage_policies")
@pytest.mark.covers(power=["suspended", "off"], snapshots="none")   # off, no snapshots: the same deep recrypt works
@pytest.mark.test_id("e8bfb2fd-5722-456d-8966-360dd2bb66e1")
def test_a_deep_recrypt_of_a_suspended_vm_is_refused_and_once_it_is_off_it_works(encrypted_vm, vc, provider,
                                                                                policies_a):
    _suspended(vc, encrypted_vm)
    before = vms.state(vc, encrypted_vm, label="before deep recrypt", phase="before")
    assert before.encrypted and before.power == "suspended" and before.snapshot_count == 0
    new_key = keys.generate_key(vc, provider)

    refused(lambda: crypto.deep_rekey(vc, encrypted_vm, new_key, policies_a.encryption),
            "deep recrypt a suspended VM")

    after = vms.state(vc, encrypted_vm, label="after refused deep recrypt", phase="after")
    unchanged(before, after, "deep recrypt a suspended VM")
    vms.power_off(vc, encrypted_vm)
    positive_control(lambda: crypto.deep_rekey(vc, encrypted_vm, new_key, policies_a.encryption),
                     "the same deep recrypt, powered off without snapshots")
    done = vms.state(vc, encrypted_vm, label="after deep recrypt powered off", phase="after")
    check_that("deep recrypt powered off without snapshots", done.key == new_key, f"VM on {new_key}",
               f"VM on {done.key}")


# ---- OP-DISK-WITH-HOME ----------------------------------------------------------------------------
@pytest.mark.rule("OP-DISK-WITH-HOME")
@pytest.mark.requires("storage_policies")
@pytest.mark.test_id("bbe661b3-e5e2-4008-8919-34eb5393fc58")
def test_adding_an_encrypted_disk_to_an_unencrypted_vm_is_refused(scratch, vc, place, provider, policies_a):
    vm = scratch.vm(vc, place, "plain-add-disk")
    before = vms.state(vc, vm, label="before adding an encrypted disk", phase="before")
    assert not before.encrypted and len(before.disk_keys) == 1
    key = keys.generate_key(vc, provider)

    refused(lambda: vms.reconfigure(vc, vm, crypto.add_encrypted_disk_spec(key, policies_a.encryption)),
            "add an encrypted disk to an unencrypted VM")

    after = vms.state(vc, vm, label="after refused add", phase="after")
    unchanged(before, after, "add an encrypted disk to an unencrypted VM")
    assert after.disk_keys == (None,), f"disks after the refusal: {after.disk_keys}"


@pytest.mark.rule("OP-DISK-WITH-HOME")
@pytest.mark.requires("storage_policies")
@pytest.mark.test_id("b0a558e3-4286-41f2-af0f-6ebc6f8dbeb4")
def test_encrypting_only_the_disks_of_an_unencrypted_vm_is_refused(scratch, vc, place, provider, policies_a):
    vm = scratch.vm(vc, place, "plain-disks-only", disks=2)
    before = vms.state(vc, vm, label="before encrypting the disks only", phase="before")
    assert not before.encrypted and before.disk_keys == (None, None)
    key = keys.generate_key(vc, provider)

    refused(lambda: vms.reconfigure(vc, vm, crypto.encrypt_disk_only_spec(vc, vm, key, policies_a.encryption)),
            "encrypt the disks of a VM whose home is unencrypted")

    after = vms.state(vc, vm, label="after refused disk encryption", phase="after")
    unchanged(before, after, "encrypt the disks of a VM whose home is unencrypted")
    assert after.key is None and after.disk_keys == (None, None)


@pytest.mark.rule("OP-DISK-WITH-HOME")
@pytest.mark.requires("storage_policies")
@pytest.mark.test_id("6aca179c-9310-415f-bfb4-11d8f109239b")
def test_an_encrypted_disk_can_be_added_once_the_vm_home_is_encrypted(encrypted_vm, vc, provider, policies_a):
    """The other half of the rule: the refusal above is about the unencrypted home, not about new disks."""
    before = vms.state(vc, encrypted_vm, label="encrypted VM before adding a disk", phase="before")
    assert before.encrypted and len(before.disk_keys) == 1

    vms.reconfigure(vc, encrypted_vm, crypto.add_encrypted_disk_spec(before.key, policies_a.encryption))

    after = vms.state(vc, encrypted_vm, label="after adding an encrypted disk", phase="after")
    assert len(after.disk_keys) == 2, f"disks after the add: {after.disk_keys}"
    assert_disks_encrypted(after, "after the add the VM's")
    assert after.key == before.key
