"""Locked VMs and missing keys (rules LOCK-*): a VM whose key neither its host nor the KMS has is locked.

vSphere Security, "Resolve Missing Key Issues": an encrypted VM becomes locked when its host lacks the key
and vCenter cannot get it from the KMS; it then refuses operations such as powering on, a VM alarm and an
event say why, and once the key is served again `CryptoUnlock_Task` unlocks it. Nothing is decrypted or
re-keyed on the way: the VM keeps the key it had.

Making a key unavailable is a KMS administrator's act (deactivating or destroying a key) plus a host that
must fetch it again (a reboot): no vSphere API asks for either. On the fake, `control.key_lost(key)` does
both for a key the test itself generated, and only that key; every other target gives a `capability:
... lacks fault_injection` skip. Every verdict is read through pyVmomi.
"""
from __future__ import annotations

from typing import Any, Callable

import pytest

from harness.checks import check_that, key_text, refused, unchanged
from harness.vsphere import clones, crypto, events, keys, locked, vms

pytestmark = [pytest.mark.requires("vm_encryption", "key_providers", "storage_policies", "fault_injection"),
              pytest.mark.destructive]   # a key made unavailable: on a lab, the KMS administrator's act


@pytest.fixture(autouse=True)
def _a_kms_serves_the_key(kms: Any, provider: str) -> None:
    """A key goes missing on a KMS; a Native Key Provider's keys come from vCenter itself, so no KMS can stop
    serving one (the fake's key_lost would not reach them)."""
    if provider in kms.native:
        pytest.skip(f"capability: key provider {provider} is a vSphere Native Key Provider: no KMS serves its keys, "
                    "so none can go missing")


def _encrypted_vm(scratch: Any, vc: Any, place: Any, provider: str, policies_a: Any, label: str) -> tuple[Any, Any]:
    """A powered-off VM on a key of its own, proved unlocked before its key goes missing."""
    vm, key = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, label)
    before = locked.crypto_state(vc, vm, label="crypto state with its key served", phase="before")
    check_that("crypto state of the encrypted VM while its key is served", before == locked.UNLOCKED,
               locked.UNLOCKED, str(before))
    return vm, key


def _check_locked(vc: Any, vm: Any, what: str) -> None:
    seen = locked.crypto_state(vc, vm, label=f"crypto state {what}", phase="during")
    check_that(f"runtime.cryptoState {what}", seen == locked.LOCKED, locked.LOCKED, str(seen))


def _check_same_key(now: vms.VmState, key: Any, what: str) -> None:
    """Not decrypted, not re-keyed: VM home and every disk still on the VM's own key."""
    check_that(f"{what}: VM home key", now.key == key, key_text(key), key_text(now.key))
    check_that(f"{what}: disk keys", bool(now.disk_keys) and all(k == key for k in now.disk_keys),
               f"every disk on {key_text(key)}", str([key_text(k) for k in now.disk_keys]))


# ---- LOCK-STATE -----------------------------------------------------------------------------------
@pytest.mark.rule("LOCK-STATE")
@pytest.mark.requires("events")
@pytest.mark.test_id("3f0c2b8e-6d1a-4c57-9a4e-2e7d5b91c604")
def test_a_vm_whose_key_neither_its_host_nor_the_kms_has_is_locked_with_a_key_missing_event(
        control, inventory, scratch, vc, place, provider, policies_a):
    vm, key = _encrypted_vm(scratch, vc, place, provider, policies_a, "lock-state")
    since = events.server_time(vc)

    with control.key_lost(key):
        _check_locked(vc, vm, "while its key is missing on the KMS and on its host")
        seen = events.wait_for_event(vc, locked.VM_LOCKED, since, inventory.timeouts.event, entity=vm)
        _check_same_key(vms.state(vc, vm, label="locked VM", phase="during"), key, "locked VM")

    assert seen, f"no VMLocked event ({', '.join(locked.VM_LOCKED)}) on {vm._moId} after it was locked"
    missing = [e for e in seen if e.type_id == locked.VM_LOCKED_KEY_MISSING_ON_KMS]
    assert missing, (f"the VM was locked because the KMS no longer served its key, but the events say "
                     f"{sorted({e.type_id for e in seen})}, not {locked.VM_LOCKED_KEY_MISSING_ON_KMS}")
    # "an error message appears in the event log" (Security guide, Resolve Missing Key Issues)
    assert all(e.severity == "error" for e in missing), f"severity {[e.severity for e in missing]}, expected error"


@pytest.mark.rule("LOCK-STATE")
@pytest.mark.requires("events")
@pytest.mark.test_id("e2b64a1f-7c38-4d95-a0f6-1d8c3e5b9a27")
def test_a_vm_whose_host_must_fetch_its_key_while_the_kms_is_down_is_locked_with_a_key_provider_error_event(
        serial, embedded_kms_server, control, inventory, scratch, vc, place, provider, policies_a):
    vm, key = _encrypted_vm(scratch, vc, place, provider, policies_a, "lock-kms-down")
    since = events.server_time(vc)

    embedded_kms_server.stop()
    try:
        control.reboot_hosts_holding(key)   # "It also happens if you reboot the ESXi host, and the KMS is not available"
        _check_locked(vc, vm, "after its host had to fetch the key while the KMS was down")
        seen = events.wait_for_event(vc, locked.VM_LOCKED, since, inventory.timeouts.event, entity=vm)
    finally:
        embedded_kms_server.start()
    _check_same_key(vms.state(vc, vm, label="locked VM", phase="after"), key, "locked VM")

    assert seen, f"no VMLocked event ({', '.join(locked.VM_LOCKED)}) on {vm._moId} after it was locked"
    provider_error = [e for e in seen if e.type_id == locked.VM_LOCKED_KMS_CLUSTER_ERROR]
    assert provider_error, (f"the VM was locked because the KMS did not answer, but the events say "
                            f"{sorted({e.type_id for e in seen})}, not {locked.VM_LOCKED_KMS_CLUSTER_ERROR}")
    assert all(e.severity == "error" for e in provider_error), \
        f"severity {[e.severity for e in provider_error]}, expected error"


# ---- LOCK-REFUSED ---------------------------------------------------------------------------------
@pytest.mark.rule("LOCK-REFUSED")
@pytest.mark.test_id("a8d24f6c-1b7e-4f0a-8c39-5e62d0b7f1a2")
@pytest.mark.parametrize("operation", ["power-on", "clone", "decrypt", "shallow-recrypt", "deep-recrypt"])
def test_a_locked_vm_refuses_power_on_clone_decrypt_and_recrypt_and_stays_as_it_was(
        operation, control, scratch, vc, place, provider, policies_a):
    vm, key = _encrypted_vm(scratch, vc, place, provider, policies_a, f"lock-{operation}")
    new_key = keys.generate_key(vc, provider)
    clone_name = scratch.name("lock-clone")
    actions: dict[str, Callable[[], Any]] = {
        "power-on": lambda: vms.power_on(vc, vm),
        "clone": lambda: clones.clone(vc, vm, clones.Destination(client=vc, place=place), clone_name,
                                      scratch.marker),
        "decrypt": lambda: crypto.decrypt(vc, vm, policies_a.plain),
        "shallow-recrypt": lambda: crypto.shallow_rekey(vc, vm, new_key),
        "deep-recrypt": lambda: crypto.deep_rekey(vc, vm, new_key, policies_a.encryption)}

    with control.key_lost(key):
        _check_locked(vc, vm, f"before the {operation}")
        before = locked.locked_state(vc, vm, label="locked VM before", phase="before")
        if operation == "clone":
            scratch.expect_vm(vc, clone_name)
            try:
                refused(actions[operation], "clone of a locked VM")
            finally:
                landed = scratch.adopt_vm(vc, clone_name)
            check_that(f"a clone named {clone_name}", landed is None, "none created", str(landed))
        else:
            refused(actions[operation], f"{operation} of a locked VM")
        after = locked.locked_state(vc, vm, label="locked VM after", phase="after")

    unchanged(before, after, f"{operation} of a locked VM")
    _check_same_key(after.vm, key, f"after the refused {operation}")


# ---- LOCK-UNLOCK ----------------------------------------------------------------------------------
@pytest.mark.rule("LOCK-UNLOCK")
@pytest.mark.test_id("5c7e91d3-0f4b-4a26-b8d1-93a6e2c4f7b0")
def test_crypto_unlock_fails_while_the_key_is_missing_and_unlocks_the_vm_on_its_own_key_once_it_is_back(
        control, inventory, scratch, vc, place, provider, policies_a):
    vm, key = _encrypted_vm(scratch, vc, place, provider, policies_a, "lock-unlock")

    with control.key_lost(key):
        _check_locked(vc, vm, "while its key is missing")
        before = locked.locked_state(vc, vm, label="locked VM before unlock", phase="before")
        refused(lambda: locked.unlock(vc, vm), "CryptoUnlock_Task while the KMS does not serve the key")
        unchanged(before, locked.locked_state(vc, vm, label="locked VM after the failed unlock", phase="during"),
                  "CryptoUnlock_Task without the key")
    since = events.server_time(vc)
    # Whether vCenter unlocks by itself once the key is back is not documented ("If, after restoring the
    # connection, the virtual machine remains locked, see Unlock Locked Virtual Machines"): recorded, and
    # CryptoUnlock_Task is asked only of a VM still locked.
    if locked.crypto_state(vc, vm, label="crypto state once the key is served again", phase="during") == locked.LOCKED:
        locked.unlock(vc, vm)

    seen = locked.crypto_state(vc, vm, label="crypto state after unlock", phase="after")
    check_that("runtime.cryptoState after CryptoUnlock_Task", seen == locked.UNLOCKED, locked.UNLOCKED, str(seen))
    _check_same_key(vms.state(vc, vm, label="unlocked VM", phase="after"), key, "unlocked VM")
    vms.power_on(vc, vm)   # usable again: the host has the key
    vms.power_off(vc, vm)
    if vc.version_tuple() >= (7, 0):   # the VMUnlocked event id is 7.0+ (API.md 6.1)
        posted = events.wait_for_event(vc, locked.VM_UNLOCKED, since, inventory.timeouts.event, entity=vm)
        assert posted, f"no {locked.VM_UNLOCKED} event on {vm._moId} after CryptoUnlock_Task unlocked it"
