"""Preconditions of VM crypto operations (RULES.md: OP-*)."""
from __future__ import annotations

import pytest
from pyVmomi import vim

from harness.checks import refused, unchanged
from harness.vsphere import crypto, keys, snapshots, vms

pytestmark = pytest.mark.requires("vm_encryption", "key_providers")


@pytest.mark.rule("OP-ENCRYPT-OFF")
@pytest.mark.test_id("5b0e2f57-4c1e-4d52-9d3c-2a0c6f1e7a01")
def test_encrypting_a_powered_on_vm_is_refused_and_it_stays_unencrypted(scratch, vc, place, provider, policies_a):
    vm = scratch.vm(vc, place, "on")
    vms.power_on(vc, vm)
    key = keys.generate_key(vc, provider)
    before = vms.state(vc, vm, label="before encrypt", phase="before")

    refused(lambda: crypto.encrypt(vc, vm, key, policies_a.encryption), "encrypt powered-on VM",
            expected=vim.fault.InvalidPowerState)

    after = vms.state(vc, vm, label="after refused encrypt", phase="after")
    unchanged(before, after, "encrypt powered-on VM")
    assert after.key is None


@pytest.mark.rule("OP-ENCRYPT-NO-SNAPSHOTS")
@pytest.mark.requires("snapshots")
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
