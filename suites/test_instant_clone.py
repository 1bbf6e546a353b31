"""Instant clones of encrypted VMs (RULES.md: IC-*): same keys as the running parent, no crypto change
while cloning, and afterwards neither parent nor clone can be recrypted or decrypted."""
from __future__ import annotations

from typing import Any, Callable

import pytest

from harness import unconfirmed
from harness.checks import check_on_key, check_that, refused, refused_or_accepted, unchanged
from harness.vsphere import clones, crypto, keys, policies, vms

pytestmark = pytest.mark.requires("vm_encryption", "key_providers", "storage_policies", "instant_clone")


def _running_encrypted_parent(scratch: Any, vc: Any, place: Any, provider: str, policies_a: Any, label: str) -> Any:
    vm, _ = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, label, disks=2)
    vms.power_on(vc, vm)   # an instant clone is taken from a running VM
    return vm


def _instant_clone(scratch: Any, vc: Any, parent: Any, place: Any, label: str,
                   act: Callable[[str], Any] | None = None) -> tuple[str, Any]:
    """Run an instant clone named after `label`; whatever is created is tracked for cleanup."""
    name = scratch.name(label)
    scratch.expect_vm(vc, name)
    try:
        (act or (lambda n: clones.instant_clone(vc, parent, n, place)))(name)
    finally:
        copy = scratch.adopt_vm(vc, name)
    return name, copy


# ---- IC-INHERIT -----------------------------------------------------------------------------------
@pytest.mark.rule("IC-INHERIT")
@pytest.mark.covers(power="on")
@pytest.mark.test_id("ac9e623c-82c4-4df0-887d-523aef3526e7")
def test_an_instant_clone_of_a_running_encrypted_vm_is_encrypted_with_its_parents_keys(
        scratch, vc, place, provider, policies_a):
    parent = _running_encrypted_parent(scratch, vc, place, provider, policies_a, "ic-parent")
    parent_before = vms.state(vc, parent, label="parent before instant clone", phase="before")
    assert parent_before.encrypted and parent_before.power == "poweredOn"

    name, copy = _instant_clone(scratch, vc, parent, place, "ic-child")

    assert copy is not None, f"the instant clone {name} is not on {vc.name}"
    child = vms.state(vc, copy, label="instant clone", phase="after")
    assert child.key == parent_before.key, f"instant clone key {child.key}, parent key {parent_before.key}"
    assert child.disk_keys == parent_before.disk_keys, \
        f"instant clone disks on {child.disk_keys}, parent disks on {parent_before.disk_keys}"
    assert child.power == "poweredOn"
    unchanged(parent_before, vms.state(vc, parent, label="parent after instant clone", phase="after"),
              "parent of an instant clone")


# ---- IC-NO-CRYPTO-CHANGE --------------------------------------------------------------------------
def _no_change_during_instant_clone(scratch: Any, environment: Any, inventory: Any, vc: Any, parent: Any, place: Any,
                                    policies_a: Any, before: Any, attempt: Callable[[str], Any], what: str) -> None:
    """The rule's intent: an instant clone never changes keys, encryption or storage policy. API.md 3.3/11: the
    InstantCloneSpec reference calls such location settings "NOT supported", not refused. Where the refusal is
    confirmed it is asserted (no clone); elsewhere an ignored change also holds the intent: the clone then
    exists, on exactly its parent's keys and storage policy. The parent never changes."""
    name = scratch.name("ic-change")
    scratch.expect_vm(vc, name)
    try:
        act = lambda: attempt(name)  # noqa: E731
        strict = unconfirmed.refusal_confirmed(inventory, vc.name, "instant-clone-refuses-crypto-change")
        refusal = refused(act, what) if strict else refused_or_accepted(act, what)
    finally:
        copy = scratch.adopt_vm(vc, name)
    if refusal is not None:
        check_that(f"{what}: a VM named {name}", copy is None, "none created",
                   "none created" if copy is None else "created although the change was refused")
    else:
        check_that(f"{what} (accepted): the instant clone", copy is not None, "created, change ignored",
                   "created" if copy is not None else "neither refused nor created")
        child = vms.state(vc, copy, label="instant clone (change ignored)", phase="after")
        check_on_key(f"{what}: the clone's VM home key", before.key, child.key, {"parent's": before.key})
        for i, (was, now) in enumerate(zip(before.disk_keys, child.disk_keys, strict=True)):
            check_on_key(f"{what}: the clone's disk {i + 1} key", was, now, {"parent's": was})
        wanted = policies_a.encryption if before.encrypted else None
        associated = policies.associated(environment.pbm(vc.name), copy)
        check_that(f"{what}: the clone's storage policy", (wanted in associated) if wanted else
                   policies_a.encryption not in associated, "the parent's", str(associated))
    unchanged(before, vms.state(vc, parent, label="parent after", phase="after"), what)


@pytest.mark.rule("IC-NO-CRYPTO-CHANGE")
@pytest.mark.test_id("76351768-1626-4b5d-8e7b-ff7be80dd24a")
@pytest.mark.parametrize("change", ["plain policy", "decrypt", "shallow recrypt", "deep recrypt"])
def test_an_instant_clone_that_asks_to_change_keys_encryption_or_storage_policy_is_refused(
        change, scratch, environment, inventory, vc, place, provider, policies_a):
    parent = _running_encrypted_parent(scratch, vc, place, provider, policies_a, "ic-parent")
    before = vms.state(vc, parent, label="parent before", phase="before")
    new_key = keys.generate_key(vc, provider)
    plain = crypto.policy_spec(policies_a.plain)   # a plain policy, or the empty profile
    asks = {"plain policy": dict(profile=plain),
            "decrypt": dict(profile=plain, crypto=clones.crypto_change("decrypt")),
            "shallow recrypt": dict(crypto=clones.crypto_change("shallow", new_key)),
            "deep recrypt": dict(policy_id=policies_a.encryption, crypto=clones.crypto_change("deep", new_key))}
    ask = asks[change]

    _no_change_during_instant_clone(scratch, environment, inventory, vc, parent, place, policies_a, before,
                                    lambda name: clones.instant_clone(vc, parent, name, place, **ask),
                                    f"instant clone with a {change}")


@pytest.mark.rule("IC-NO-CRYPTO-CHANGE")
@pytest.mark.test_id("0954dace-b230-46a8-9be8-2e7d62ea381c")
def test_an_instant_clone_of_an_unencrypted_vm_that_asks_to_encrypt_it_is_refused(scratch, environment, inventory, vc,
                                                                                   place, provider, policies_a):
    parent = scratch.vm(vc, place, "ic-plain-parent")
    vms.power_on(vc, parent)
    before = vms.state(vc, parent, label="parent before", phase="before")
    assert not before.encrypted and before.power == "poweredOn"
    key = keys.generate_key(vc, provider)

    _no_change_during_instant_clone(scratch, environment, inventory, vc, parent, place, policies_a, before,
                                    lambda name: clones.instant_clone(vc, parent, name, place,
                                                                      policy_id=policies_a.encryption,
                                                                      crypto=clones.crypto_change("encrypt", key)),
                                    "instant clone that encrypts")


# ---- IC-LOCKED ------------------------------------------------------------------------------------
@pytest.mark.rule("IC-LOCKED")
@pytest.mark.test_id("682cad72-669e-4ffa-8ed2-7241e5ef71da")
@pytest.mark.parametrize("operation", ["shallow", "deep", "decrypt"])
@pytest.mark.parametrize("who", ["parent", "clone"])
def test_after_an_instant_clone_neither_parent_nor_clone_can_be_recrypted_or_decrypted(
        who, operation, scratch, vc, place, provider, policies_a):
    parent = _running_encrypted_parent(scratch, vc, place, provider, policies_a, "ic-parent")
    name, copy = _instant_clone(scratch, vc, parent, place, "ic-child")
    assert copy is not None, f"the instant clone {name} is not on {vc.name}"
    target, other = (parent, copy) if who == "parent" else (copy, parent)
    # Powered off and without snapshots, so that neither power state nor snapshots can be the reason.
    vms.power_off(vc, target)
    before = vms.state(vc, target, label=f"{who} before", phase="before")
    other_before = vms.state(vc, other, label="the other VM of the family before", phase="before")
    assert before.encrypted and before.power == "poweredOff" and before.snapshot_count == 0
    new_key = keys.generate_key(vc, provider)
    actions = {"shallow": lambda: crypto.shallow_rekey(vc, target, new_key),
               "deep": lambda: crypto.deep_rekey(vc, target, new_key, policies_a.encryption),
               "decrypt": lambda: crypto.decrypt(vc, target, policies_a.plain)}

    # API.md 3.3: the fault for re-keying either VM of an instant clone is UNCONFIRMED: recorded, not asserted.
    refused(actions[operation], f"{operation} the {who} of an instant clone")

    unchanged(before, vms.state(vc, target, label=f"{who} after", phase="after"), f"{operation} the {who}")
    unchanged(other_before, vms.state(vc, other, label="the other VM of the family after", phase="after"),
              f"the other VM of the family after a refused {operation} of the {who}")
