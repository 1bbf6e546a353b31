"""Cloning encrypted and unencrypted VMs on one vCenter (RULES.md: CLONE-*).

A clone is looked at the way an operator would: the destination's own `config.keyId` and each of
its disks' keys, the source read again afterwards (it never changes), the storage policy PBM
associates with the destination, and the KMS asked over KMIP whether a new key really exists.
Every clone is tracked for cleanup by name, also when the operation fails half-way.
"""
from __future__ import annotations

from typing import Any, Callable

import pytest

from harness import unconfirmed
from harness.checks import arrived, assert_disks_encrypted, assert_on_key, refused, refused_crossing, unchanged
from harness.vsphere import clones, crypto, find, keys, policies, snapshots, vms
from harness.vsphere.hosts import require_some

pytestmark = pytest.mark.requires("vm_encryption", "key_providers", "storage_policies")


# ---- helpers --------------------------------------------------------------------------------------
def _cloned(scratch: Any, client: Any, label: str, act: Callable[[str], Any]) -> Any:
    """Run a clone named after `label`; the clone (if any) is tracked for cleanup whatever happens."""
    name = scratch.name(label)
    return arrived(scratch, client, name, lambda: act(name))


def _refused_clone(scratch: Any, client: Any, label: str, act: Callable[[str], Any], what: str) -> None:
    """A clone that must be refused: the refusal, and no VM of that name left behind."""
    name = scratch.name(label)
    refused_crossing(scratch, client, name, lambda: act(name), what)


def _same_vc(vc: Any, place: Any, host: Any = None) -> clones.Destination:
    return clones.Destination(client=vc, place=place, host=host)


def _old_and_new_hosts(vc: Any, place: Any, entry: Any) -> tuple[list[Any], list[Any]]:
    """The hosts a run may use (the cluster's, and the inventory's `older_hosts`) older than 7.0, and those
    at 7.0 or later (by config.product.version)."""
    from harness.rules import version_tuple
    versions = find.host_versions(vc, place, entry.older_hosts)
    vc.recorder.note("ESXi host versions", {name: version for name, (_, version) in versions.items()})
    old = [host for host, version in versions.values() if version and version_tuple(version) < (7, 0)]
    new = [host for host, version in versions.values() if version and version_tuple(version) >= (7, 0)]
    return old, new


# ---- CLONE-ENCRYPT --------------------------------------------------------------------------------
@pytest.mark.rule("CLONE-ENCRYPT")
@pytest.mark.requires("clone_crypto")
@pytest.mark.test_id("d50c9515-34ab-4f0b-b7e9-7ed51e4f3a98")
def test_cloning_an_unencrypted_vm_with_the_encryption_policy_gives_an_encrypted_clone_and_a_plain_source(
        scratch, environment, vc, place, provider, policies_a, kms):
    source = scratch.vm(vc, place, "plain-src", disks=2)
    source_before = vms.state(vc, source, label="source before clone", phase="before")
    assert not source_before.encrypted
    key = keys.generate_key(vc, provider)

    copy = _cloned(scratch, vc, "enc-clone", lambda name: clones.clone(
        vc, source, _same_vc(vc, place), name, scratch.marker, crypto="encrypt", key=key,
        policy_id=policies_a.encryption))

    dest = vms.state(vc, copy, label="clone", phase="after")
    assert_on_key(dest, key, "clone")
    assert kms.key_exists(dest.key), f"the clone's key {dest.key} does not exist on the KMS"
    assert policies_a.encryption in policies.associated(environment.pbm(vc.name), copy), \
        "the clone's VM home is not associated with the encryption storage policy"
    unchanged(source_before, vms.state(vc, source, label="source after clone", phase="after"), "source of a clone")


# ---- CLONE-DECRYPT --------------------------------------------------------------------------------
@pytest.mark.rule("CLONE-DECRYPT")
@pytest.mark.requires("clone_crypto")
@pytest.mark.test_id("4e3031c0-2dea-42d2-b9f7-7da278c3fda0")
def test_cloning_an_encrypted_vm_with_a_plain_policy_gives_an_unencrypted_clone_and_the_source_keeps_its_key(
        scratch, environment, vc, place, provider, policies_a):
    source, _ = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, "enc-src", disks=2)
    source_before = vms.state(vc, source, label="source before clone", phase="before")
    assert source_before.encrypted
    assert_disks_encrypted(source_before, "source")

    copy = _cloned(scratch, vc, "plain-clone", lambda name: clones.clone(
        vc, source, _same_vc(vc, place), name, scratch.marker, crypto="decrypt", policy_id=policies_a.plain))

    dest = vms.state(vc, copy, label="clone", phase="after")
    assert_on_key(dest, None, "clone")
    assert policies_a.encryption not in policies.associated(environment.pbm(vc.name), copy), \
        "the decrypted clone is still associated with the encryption storage policy"
    unchanged(source_before, vms.state(vc, source, label="source after clone", phase="after"), "source of a clone")


# ---- CLONE-RECRYPT --------------------------------------------------------------------------------
@pytest.mark.rule("CLONE-RECRYPT")
@pytest.mark.requires("clone_crypto")
@pytest.mark.test_id("5761e85f-1655-4ece-a243-c69d63b5335f")
@pytest.mark.parametrize("recrypt", ["shallow", "deep"])
def test_cloning_an_encrypted_vm_with_a_new_key_gives_the_clone_that_key_and_the_source_keeps_its_own(
        recrypt, scratch, vc, place, provider, policies_a, kms):
    source, _ = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, f"enc-src-{recrypt}", disks=2)
    source_before = vms.state(vc, source, label="source before clone", phase="before")
    new_key = keys.generate_key(vc, provider)
    assert new_key != source_before.key

    copy = _cloned(scratch, vc, f"{recrypt}-clone", lambda name: clones.clone(
        vc, source, _same_vc(vc, place), name, scratch.marker, crypto=recrypt, key=new_key,
        policy_id=policies_a.encryption))

    dest = vms.state(vc, copy, label="clone", phase="after")
    assert_on_key(dest, new_key, "clone")
    assert kms.key_exists(new_key)
    unchanged(source_before, vms.state(vc, source, label="source after clone", phase="after"), "source of a clone")


def _clone_with_disk_policy_only(vc: Any, source: Any, place: Any, name: str, marker: str, key: Any, policy: str) -> Any:
    """The shape terraform-provider-vsphere sent in issue 2241: an encryption policy on each disk locator and
    no `backing.crypto` (here with the VM-level CryptoSpec the harness once sent), which vCenter 7.0U3 refused
    with InvalidArgument spec.disk.backing.crypto."""
    from pyVmomi import vim
    location = clones.relocate_spec(_same_vc(vc, place), profile=crypto.policy_spec(policy))
    location.disk = [vim.vm.RelocateSpec.DiskLocator(diskId=d.key, datastore=place.datastore,
                                                     profile=crypto.policy_spec(policy))
                     for d in vms.disks(vc, source)]
    spec = vim.vm.CloneSpec(location=location, template=False, powerOn=False,
                            config=vim.vm.ConfigSpec(annotation=marker, crypto=clones.crypto_change("encrypt", key)))
    return clones.clone_with_spec(vc, source, place.vm_folder, name, spec)


@pytest.mark.rule("CLONE-ENCRYPT")
@pytest.mark.requires("clone_crypto")
@pytest.mark.test_id("57a6b286-e21f-47be-8a6c-f18458a7cd9c")
def test_a_clone_with_an_encryption_policy_on_disks_without_disk_crypto_is_refused_and_the_cited_shape_works(
        scratch, inventory, vc, place, provider, policies_a):
    """Why clones.clone repeats the CryptoSpec in each disk's backing.crypto (harness/vsphere/clone_shapes.py)."""
    source = scratch.vm(vc, place, "disk-policy-src", disks=2)
    before = vms.state(vc, source, label="source before", phase="before")
    key = keys.generate_key(vc, provider)

    def bad(name: str) -> Any:
        return _clone_with_disk_policy_only(vc, source, place, name, scratch.marker, key, policies_a.encryption)

    observed_name = scratch.name("disk-policy-observed")
    scratch.expect_vm(vc, observed_name)
    try:
        unconfirmed.observe_then_skip(inventory, vc.name, "clone-refuses-disk-policy-without-crypto",
                                      lambda: bad(observed_name))
    finally:
        scratch.adopt_vm(vc, observed_name)
    _refused_clone(scratch, vc, "disk-policy-clone", bad, "clone with an encryption policy on disks and no disk crypto")
    unchanged(before, vms.state(vc, source, label="source after the refused clone", phase="after"),
              "clone with an encryption policy on disks and no disk crypto")
    copy = _cloned(scratch, vc, "cited-shape-clone", lambda name: clones.clone(
        vc, source, _same_vc(vc, place), name, scratch.marker, crypto="encrypt", key=key,
        policy_id=policies_a.encryption))
    assert_on_key(vms.state(vc, copy, label="clone with the cited spec shape", phase="after"), key, "clone")


# ---- CLONE-KEEP -----------------------------------------------------------------------------------
@pytest.mark.rule("CLONE-KEEP")
@pytest.mark.test_id("9e48ab40-f429-4e59-987b-52022c61d756")
def test_cloning_an_encrypted_vm_without_a_crypto_change_gives_a_clone_on_the_same_key(
        scratch, vc, place, provider, policies_a):
    source, _ = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, "enc-src", disks=2)
    source_before = vms.state(vc, source, label="source before clone", phase="before")
    assert source_before.encrypted

    copy = _cloned(scratch, vc, "same-key-clone",
                   lambda name: clones.clone(vc, source, _same_vc(vc, place), name, scratch.marker))

    dest = vms.state(vc, copy, label="clone", phase="after")
    assert dest.key == source_before.key, \
        f"clone key {dest.key} differs from the source's {source_before.key} (keyId and provider must match)"
    assert dest.disk_keys == source_before.disk_keys, f"clone disks {dest.disk_keys}, source {source_before.disk_keys}"
    unchanged(source_before, vms.state(vc, source, label="source after clone", phase="after"), "source of a clone")


# ---- CLONE-LINKED ---------------------------------------------------------------------------------
def _linked_clone(scratch: Any, vc: Any, place: Any, provider: str, policies_a: Any, label: str) -> tuple[Any, Any]:
    parent, _ = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, f"{label}-parent")
    base = snapshots.create(vc, parent, "linked-base")
    copy = _cloned(scratch, vc, f"{label}-linked", lambda name: clones.clone(
        vc, parent, _same_vc(vc, place), name, scratch.marker, linked_from=base))
    return parent, copy


@pytest.mark.rule("CLONE-LINKED")
@pytest.mark.requires("linked_clone", "snapshots")
@pytest.mark.test_id("e3b5f3fc-63ec-40af-a6cb-bd1bf3e325a2")
def test_a_linked_clone_of_an_encrypted_vm_is_on_its_parents_key(scratch, vc, place, provider, policies_a):
    parent, copy = _linked_clone(scratch, vc, place, provider, policies_a, "inherit")

    parent_state = vms.state(vc, parent, label="parent", phase="after")
    dest = vms.state(vc, copy, label="linked clone", phase="after")
    assert parent_state.encrypted
    assert_on_key(dest, parent_state.key, "linked clone")


@pytest.mark.rule("CLONE-LINKED")
@pytest.mark.requires("linked_clone", "snapshots")
@pytest.mark.test_id("daf16813-da01-40ee-8eec-21a34960c72f")
@pytest.mark.parametrize("operation", ["decrypt", "shallow", "deep"])
def test_a_linked_clone_can_be_neither_decrypted_nor_recrypted_and_no_key_changes(
        operation, scratch, vc, place, provider, policies_a):
    parent, copy = _linked_clone(scratch, vc, place, provider, policies_a, operation)
    parent_before = vms.state(vc, parent, label="parent before", phase="before")
    before = vms.state(vc, copy, label="linked clone before", phase="before")
    assert before.encrypted and before.power == "poweredOff" and before.snapshot_count == 0
    new_key = keys.generate_key(vc, provider)
    actions = {"decrypt": lambda: crypto.decrypt(vc, copy, policies_a.plain),
               "shallow": lambda: crypto.shallow_rekey(vc, copy, new_key),
               "deep": lambda: crypto.deep_rekey(vc, copy, new_key, policies_a.encryption)}

    refused(actions[operation], f"{operation} a linked clone")

    unchanged(before, vms.state(vc, copy, label="linked clone after", phase="after"), f"{operation} a linked clone")
    unchanged(parent_before, vms.state(vc, parent, label="parent after", phase="after"),
              f"parent of a linked clone after a refused {operation}")
    parent_snaps = require_some(snapshots.with_keys(vc, parent, label="parent snapshot keys", phase="after"), "snapshot")
    assert all(s.key == parent_before.key for s in parent_snaps), \
        f"the parent's snapshot keys changed: {[(s.name, s.key) for s in parent_snaps]}"


# ---- CLONE-TEMPLATE -------------------------------------------------------------------------------
@pytest.mark.rule("CLONE-TEMPLATE")
@pytest.mark.requires("clone_crypto")
@pytest.mark.test_id("bbe58c34-fb2b-46c5-afb8-b835b5b188b6")
def test_deploying_from_an_unencrypted_template_with_the_encryption_policy_gives_an_encrypted_vm(
        scratch, environment, vc, place, provider, policies_a, kms):
    template = scratch.vm(vc, place, "plain-template")
    vms.mark_as_template(vc, template)
    template_before = vms.state(vc, template, label="template before deploy", phase="before")
    assert template_before.template and not template_before.encrypted
    key = keys.generate_key(vc, provider)

    deployed = _cloned(scratch, vc, "enc-from-template", lambda name: clones.clone(
        vc, template, _same_vc(vc, place), name, scratch.marker, crypto="encrypt", key=key,
        policy_id=policies_a.encryption))

    dest = vms.state(vc, deployed, label="deployed VM", phase="after")
    assert not dest.template
    assert_on_key(dest, key, "deployed")
    assert kms.key_exists(key)
    assert policies_a.encryption in policies.associated(environment.pbm(vc.name), deployed)
    unchanged(template_before, vms.state(vc, template, label="template after deploy", phase="after"),
              "template deployed with encryption")


@pytest.mark.rule("CLONE-TEMPLATE")
@pytest.mark.requires("clone_crypto")
@pytest.mark.test_id("5f4bbf2e-317b-4a6e-8362-e4b9dbb3421c")
def test_deploying_from_an_encrypted_template_with_a_plain_policy_gives_an_unencrypted_vm(
        scratch, vc, place, provider, policies_a):
    template, _ = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, "enc-template")
    vms.mark_as_template(vc, template)
    template_before = vms.state(vc, template, label="template before deploy", phase="before")
    assert template_before.template and template_before.encrypted

    deployed = _cloned(scratch, vc, "plain-from-template", lambda name: clones.clone(
        vc, template, _same_vc(vc, place), name, scratch.marker, crypto="decrypt", policy_id=policies_a.plain))

    dest = vms.state(vc, deployed, label="deployed VM", phase="after")
    assert not dest.template
    assert_on_key(dest, None, "deployed")
    unchanged(template_before, vms.state(vc, template, label="template after deploy", phase="after"),
              "template deployed with decryption")


# ---- CLONE-HOSTVER --------------------------------------------------------------------------------
@pytest.mark.rule("CLONE-HOSTVER")
@pytest.mark.requires("clone_crypto", "mixed_host_versions")
@pytest.mark.test_id("a681c814-e02b-4d05-aa60-887ee8dc2e8e")
@pytest.mark.parametrize("older", ["destination", "source"])
def test_a_clone_with_a_crypto_change_involving_an_esxi_host_older_than_7_is_refused(
        older, scratch, inventory, vc, place, provider, policies_a):
    old_hosts, new_hosts = _old_and_new_hosts(vc, place, inventory.vcenter(vc.name))
    old_host = require_some(old_hosts, "ESXi host older than 7.0 in the inventory cluster or its older_hosts")[0]
    cluster_hosts = {h._moId for h in place.hosts}
    new_host = require_some([h for h in new_hosts if h._moId in cluster_hosts], "ESXi 7.0 host in the cluster")[0]
    old_place = clones.host_placement(vc, place, old_host)
    if older == "source":
        source = scratch.vm(vc, old_place, "on-old-host", host=old_host)
        dest = _same_vc(vc, place, host=new_host)
    else:
        source = scratch.vm(vc, place, "on-new-host", host=new_host)
        dest = _same_vc(vc, old_place, host=old_host)
    before = vms.state(vc, source, label="source before clone", phase="before")
    assert not before.encrypted
    key = keys.generate_key(vc, provider)

    _refused_clone(scratch, vc, "hostver-clone", lambda name: clones.clone(
        vc, source, dest, name, scratch.marker, crypto="encrypt", key=key, policy_id=policies_a.encryption),
        f"encrypting clone with the {older} host older than ESXi 7.0")

    unchanged(before, vms.state(vc, source, label="source after refused clone", phase="after"),
              f"source of a refused clone ({older} host older than 7.0)")


# ---- CLONE-PRE7 -----------------------------------------------------------------------------------
@pytest.mark.rule("CLONE-PRE7")
@pytest.mark.test_id("34c9b9e4-391b-45a4-90a4-79d246eb2e64")
@pytest.mark.parametrize("change", ["encrypt", "decrypt", "shallow"])
def test_before_7_a_clone_that_changes_encryption_is_refused(change, scratch, vc, place, provider, policies_a):
    if change == "encrypt":
        source = scratch.vm(vc, place, "pre7-plain-src")
    else:
        source, _ = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, f"pre7-{change}-src")
    before = vms.state(vc, source, label="source before clone", phase="before")
    key = keys.generate_key(vc, provider) if change != "decrypt" else None
    policy = policies_a.plain if change == "decrypt" else policies_a.encryption

    _refused_clone(scratch, vc, f"pre7-{change}-clone", lambda name: clones.clone(
        vc, source, _same_vc(vc, place), name, scratch.marker, crypto=change, key=key, policy_id=policy),
        f"clone with a crypto change ({change}) on vCenter {vc.version}")

    unchanged(before, vms.state(vc, source, label="source after refused clone", phase="after"),
              f"source of a refused {change} clone")
