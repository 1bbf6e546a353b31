"""Cross-vCenter clones and migrations of encrypted VMs (RULES.md: XVC-*).

The destination is the inventory's second vCenter, named by a ServiceLocator whose credentials come
from the inventory (never a test parameter). Whatever lands there is tracked for cleanup on that
vCenter, also when an operation reports a failure. Destination storage policies are the destination
vCenter's own (policies_b). Refusals are checked on both sides: nothing arrived on the destination,
the source VM is still where it was with its key.
"""
from __future__ import annotations

from typing import Any

import pytest
from pyVmomi import vmodl

from harness import unconfirmed
from harness.checks import (arrived, assert_on_key, check_on_key, check_that, key_text, positive_control, refused,
                            refused_crossing, refused_or_accepted, unchanged)
from harness.vsphere import clones, crypto, find, hosts, keys, vms
from harness.vsphere.errors import TaskFailed, fault_class_name, fault_message
from harness.vsphere.hosts import require_some

pytestmark = pytest.mark.requires("vm_encryption", "key_providers", "storage_policies", "cross_vcenter")


# ---- helpers --------------------------------------------------------------------------------------
def _arriving_name(scratch: Any, operation: str, label: str, source: Any) -> str:
    """The name a VM arrives under on vc_b: a clone's own new name, a migrated VM's own name."""
    return scratch.name(label) if operation == "clone" else source.name


def _control_migration(scratch: Any, environment: Any, vc: Any, vc_b: Any, place: Any, place_b: Any, provider: str,
                       policy: str, label: str, what: str) -> None:
    """The positive control of a cross-vCenter refusal: a twin encrypted VM migrates to the same destination
    with no forbidden change, in this run; if it cannot, the refusal proves nothing (an error, not a pass)."""
    twin, _ = scratch.encrypted_vm(vc, place, provider, policy, f"{label}-twin")
    dest = clones.cross_destination(environment, vc_b, place_b)
    positive_control(lambda: arrived(scratch, vc_b, vms.state(vc, twin).name,
                                     lambda: clones.migrate(vc, twin, dest)), what)


def _hot_migration_control(scratch: Any, environment: Any, vc: Any, vc_b: Any, place: Any, place_b: Any) -> None:
    """Hot cross-vCenter vMotion needs an Enterprise Plus licence, time-synchronized vCenters and compatible
    vMotion networks on both sides (KB 2106952 "Cross vCenter Server vMotion requirements in VMware vSphere 6.0
    and later"; vSphere 6.0 docs GUID-DAD0C40A-7F66-44CF-B6E8-43A0153ABE81, "Requirements for Migration Between
    vCenter Server Instances", and its network compatibility checks), which a lab may lack. An UNENCRYPTED
    running VM is migrated the same way first: if that fails too, the lab cannot do hot cross-vCenter vMotion
    at all, and the encrypted VM's failure would say nothing about encryption: a capability skip naming it,
    never a product failure."""
    twin = scratch.vm(vc, place, "hot-xvc-control")
    vms.power_on(vc, twin)
    name = vms.state(vc, twin).name
    dest = clones.cross_destination(environment, vc_b, place_b)
    scratch.expect_vm(vc_b, name)
    try:
        clones.migrate(vc, twin, dest)
    except (TaskFailed, vmodl.MethodFault) as err:
        fault = getattr(err, "fault", err)
        vc.recorder.note("positive control failed: hot cross-vCenter migration of an unencrypted VM",
                         {"class": fault_class_name(fault), "message": fault_message(fault)})
        pytest.skip(f"capability: {vc.name} -> {vc_b.name} cannot migrate a running VM across vCenters even "
                    f"unencrypted ({fault_class_name(fault)}: {fault_message(fault)}): hot cross-vCenter vMotion "
                    "(vMotion network, licence) is missing in this lab")
    finally:
        scratch.adopt_vm(vc_b, name)
    vc.recorder.note("positive control succeeded: hot cross-vCenter migration of an unencrypted VM", True)


def _shared(vc_b: Any, provider: str) -> None:
    assert provider in keys.list_providers(vc_b), f"{vc_b.name} does not have the shared key provider {provider}"


# ---- XVC-CLONE-ENCRYPT / DECRYPT / RECRYPT --------------------------------------------------------
@pytest.mark.rule("XVC-CLONE-ENCRYPT")
@pytest.mark.requires("clone_crypto")
@pytest.mark.test_id("3a7987f8-32f9-428a-b369-f264c32f19dd")
def test_cloning_an_unencrypted_vm_to_another_vcenter_can_encrypt_the_clone(
        scratch, environment, inventory, vc, vc_b, place, place_b, provider, provider_b, policies_b, kms):
    _shared(vc_b, provider)
    source = scratch.vm(vc, place, "plain-src", disks=2)
    before = vms.state(vc, source, label="source before clone", phase="before")
    assert not before.encrypted
    key = keys.generate_key(vc, provider)
    name = scratch.name("xvc-enc-clone")

    copy = arrived(scratch, vc_b, name, lambda: clones.clone(
        vc, source, clones.cross_destination(environment, vc_b, place_b), name, scratch.marker,
        crypto="encrypt", key=key, policy_id=policies_b.encryption))

    dest = vms.state(vc_b, copy, label="clone on the other vCenter", phase="after")
    assert_on_key(dest, key, "clone")
    assert kms.key_exists(key)
    unchanged(before, vms.state(vc, source, label="source after clone", phase="after"), "source of a cross-vCenter clone")


@pytest.mark.rule("XVC-CLONE-DECRYPT")
@pytest.mark.requires("clone_crypto")
@pytest.mark.test_id("efa66357-a96f-492c-a8de-d07c59db7109")
def test_cloning_an_encrypted_vm_to_another_vcenter_can_decrypt_the_clone(
        scratch, environment, inventory, vc, vc_b, place, place_b, provider, provider_b, policies_a, policies_b):
    _shared(vc_b, provider)
    source, _ = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, "enc-src", disks=2)
    before = vms.state(vc, source, label="source before clone", phase="before")
    assert before.encrypted
    name = scratch.name("xvc-plain-clone")

    copy = arrived(scratch, vc_b, name, lambda: clones.clone(
        vc, source, clones.cross_destination(environment, vc_b, place_b), name, scratch.marker,
        crypto="decrypt", policy_id=policies_b.plain))

    dest = vms.state(vc_b, copy, label="clone on the other vCenter", phase="after")
    assert_on_key(dest, None, "clone")
    unchanged(before, vms.state(vc, source, label="source after clone", phase="after"), "source of a cross-vCenter clone")


@pytest.mark.rule("XVC-CLONE-RECRYPT")
@pytest.mark.requires("clone_crypto")
@pytest.mark.test_id("7fc604bd-d89e-4c17-91ea-1c5cd0d8abbc")
@pytest.mark.parametrize("recrypt", ["shallow", "deep"])
def test_cloning_an_encrypted_vm_to_another_vcenter_can_give_the_clone_a_new_key(
        recrypt, scratch, environment, inventory, vc, vc_b, place, place_b, provider, provider_b, policies_a,
        policies_b, kms):
    _shared(vc_b, provider)
    source, _ = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, f"enc-src-{recrypt}", disks=2)
    before = vms.state(vc, source, label="source before clone", phase="before")
    new_key = keys.generate_key(vc, provider)
    assert new_key != before.key
    name = scratch.name(f"xvc-{recrypt}-clone")

    copy = arrived(scratch, vc_b, name, lambda: clones.clone(
        vc, source, clones.cross_destination(environment, vc_b, place_b), name, scratch.marker,
        crypto=recrypt, key=new_key, policy_id=policies_b.encryption))

    dest = vms.state(vc_b, copy, label="clone on the other vCenter", phase="after")
    assert_on_key(dest, new_key, "clone")
    assert kms.key_exists(new_key)
    unchanged(before, vms.state(vc, source, label="source after clone", phase="after"), "source of a cross-vCenter clone")


# ---- XVC-POWER ------------------------------------------------------------------------------------
@pytest.mark.rule("XVC-POWER")
@pytest.mark.test_id("097153c3-e893-48fc-b610-e20d8b24e400")
@pytest.mark.parametrize("power", ["poweredOn", "poweredOff"])
@pytest.mark.parametrize("operation", ["clone", "migrate"])
def test_an_encrypted_vm_can_be_cloned_or_migrated_to_another_vcenter_powered_on_or_off(
        operation, power, scratch, environment, inventory, vc, vc_b, place, place_b, provider, provider_b, policies_a):
    _shared(vc_b, provider)
    vm, _ = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, f"{operation}-{power}")
    if power == "poweredOn":
        vms.power_on(vc, vm)
    before = vms.state(vc, vm, label="source before", phase="before")
    assert before.encrypted and before.power == power
    dest = clones.cross_destination(environment, vc_b, place_b)
    name = _arriving_name(scratch, operation, f"xvc-{operation}-copy", before)
    if operation == "migrate" and power == "poweredOn":
        _hot_migration_control(scratch, environment, vc, vc_b, place, place_b)

    copy = arrived(scratch, vc_b, name, lambda: clones.clone_or_migrate(vc, vm, dest, operation, name, scratch.marker))

    after = vms.state(vc_b, copy, label=f"{operation} on the other vCenter", phase="after")
    assert after.key == before.key, f"the {operation} arrived with key {after.key}, the source had {before.key}"
    if operation == "migrate":
        assert after.power == power, f"the VM was {power} and arrived {after.power}"
    else:
        unchanged(before, vms.state(vc, vm, label="source after clone", phase="after"), "source of a cross-vCenter clone")


# ---- XVC-MIGRATE ----------------------------------------------------------------------------------
@pytest.mark.rule("XVC-MIGRATE")
@pytest.mark.test_id("d6740c8e-6969-44df-9300-28b73db64678")
def test_an_encrypted_vm_migrated_to_another_vcenter_arrives_with_the_same_key_and_leaves_the_source(
        scratch, environment, inventory, vc, vc_b, place, place_b, provider, provider_b, policies_a, kms):
    _shared(vc_b, provider)
    vm, _ = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, "migrating", disks=2)
    before = vms.state(vc, vm, label="before migration", phase="before")
    assert before.encrypted

    moved = arrived(scratch, vc_b, before.name,
                    lambda: clones.migrate(vc, vm, clones.cross_destination(environment, vc_b, place_b)))

    after = vms.state(vc_b, moved, label="after migration", phase="after")
    assert after.key == before.key, f"the migrated VM has key {after.key}, it had {before.key}"
    assert after.disk_keys == before.disk_keys, f"disks arrived on {after.disk_keys}, were on {before.disk_keys}"
    assert not vms.exists(vc, vm), f"{before.name} is still registered on {vc.name} after the migration"
    assert clones.find_vm(vc, before.name) is None, f"a VM named {before.name} is still on {vc.name}"
    assert kms.key_exists(before.key), f"the key {before.key} is gone from the KMS after the migration"
    vc.recorder.note("KMIP state of the migrated VM's key", kms.key_state(before.key))


@pytest.mark.rule("XVC-MIGRATE")
@pytest.mark.test_id("16bae447-5a54-4b8f-8a4d-fd430f632dd0")
def test_a_locator_without_the_destinations_thumbprint_is_refused_where_the_vcenters_do_not_trust_each_other(
        scratch, environment, inventory, vc, vc_b, place, place_b, provider, provider_b, policies_a):
    """Without Enhanced Linked Mode the source cannot trust the destination's certificate: the ServiceLocator
    must carry its SHA-1 thumbprint (community.vmware vmware_guest_cross_vc_clone; API.md 3.2/11)."""
    control = environment.control(vc.name)
    if control.injects_faults and control.peers_trusted():   # arrange a pair without shared trust (restored at teardown)
        control.set_peers_trusted(False)
        scratch.cleanup.push(f"{vc.name} trusts {vc_b.name} again (fake)", lambda: control.set_peers_trusted(True))
    _shared(vc_b, provider)
    vm, _ = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, "no-thumbprint")
    before = vms.state(vc, vm, label="before migration", phase="before")
    bare = clones.cross_destination(environment, vc_b, place_b, with_thumbprint=False)
    scratch.expect_vm(vc_b, before.name)
    outcome: Any = None
    try:
        clones.migrate(vc, vm, bare)
    except (TaskFailed, vmodl.MethodFault) as err:   # the refusal expected (an untrusted certificate)
        outcome = err
    finally:
        landed = scratch.adopt_vm(vc_b, before.name)
    vc.recorder.note("migration with a ServiceLocator without sslThumbprint",
                     {"outcome": "refused" if outcome is not None else "accepted",
                      "fault": getattr(outcome, "fault_class", type(outcome).__name__) if outcome else None})
    if not control.injects_faults:   # a real pair: whether it shares trust (ELM) is the lab's to confirm
        unconfirmed.gate(inventory, vc.name, "locator-needs-thumbprint",
                         observed={"refused": outcome is not None, "arrived": landed is not None})
    assert outcome is not None and landed is None, \
        f"{before.name} migrated to {vc_b.name} with a ServiceLocator that names no sslThumbprint"
    unchanged(before, vms.state(vc, vm, label="after the refused migration", phase="after"),
              "cross-vCenter migration without sslThumbprint")
    moved = arrived(scratch, vc_b, before.name,
                    lambda: clones.migrate(vc, vm, clones.cross_destination(environment, vc_b, place_b)))
    assert vms.state(vc_b, moved, label="after migration with the thumbprint", phase="after").key == before.key


@pytest.mark.rule("XVC-MIGRATE-NO-DECRYPT")
@pytest.mark.test_id("cb5ddb12-381f-4458-af9a-ad1a6615cb1d")
@pytest.mark.parametrize("ask", ["plain policy", "decrypt spec"])
def test_a_cross_vcenter_migration_can_not_decrypt_the_vm(
        ask, scratch, environment, inventory, vc, vc_b, place, place_b, provider, provider_b, policies_a, policies_b):
    _shared(vc_b, provider)
    vm, _ = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, "no-decrypt")
    before = vms.state(vc, vm, label="before migration", phase="before")
    check_that("source VM before the migration", before.encrypted, "encrypted",
               f"encrypted with key {key_text(before.key)}" if before.encrypted else "not encrypted")
    dest = clones.cross_destination(environment, vc_b, place_b)
    change = clones.crypto_change("decrypt") if ask == "decrypt spec" else None
    plain = crypto.policy_spec(policies_b.plain)   # a plain policy of the destination, or the empty profile
    _control_migration(scratch, environment, vc, vc_b, place, place_b, provider, policies_a.encryption, "no-decrypt",
                       f"cross-vCenter migration of a twin without the {ask}")

    # API.md 3.2: whether vCenter refuses or ignores a decrypt during a cross-vCenter migration is UNCONFIRMED
    # (no source). The rule's intent is that the VM is never decrypted: where the refusal is not confirmed, a
    # refusal (VM still on the source) or an ignored decrypt (VM arrives on its keys) both hold it; a decrypted
    # arrival is the failure. Where confirmed (the fake's model, or `confirmed:`), the refusal is asserted.
    what = f"cross-vCenter migration with a {ask}"
    scratch.expect_vm(vc_b, before.name)
    try:
        act = lambda: clones.migrate(vc, vm, dest, profile=plain, crypto=change)  # noqa: E731
        strict = unconfirmed.refusal_confirmed(inventory, vc.name, "xvc-migrate-refuses-decrypt")
        refusal = refused(act, what) if strict else refused_or_accepted(act, what)
    finally:
        landed = scratch.adopt_vm(vc_b, before.name)
    if refusal is not None:
        check_that(f"{what}: a VM named {before.name} on {vc_b.name}", landed is None, "none arrived",
                   "none arrived" if landed is None else "arrived although the operation was refused")
        present = vms.exists(vc, vm)
        check_that(f"{what}: the source VM on {vc.name}", present, "still registered",
                   "still registered" if present else "no longer registered")
        after = vms.state(vc, vm, label="after refused migration", phase="after")
        unchanged(before, after, what)
        where = "after the refused migration"
    else:
        check_that(f"{what} (accepted): the VM on {vc_b.name}", landed is not None, "arrived on its keys",
                   "arrived" if landed is not None else "nowhere: neither refused nor arrived")
        after = vms.state(vc_b, landed, label="after the migration that ignored the decrypt", phase="after")
        where = "after the migration (decrypt ignored)"
    check_on_key(f"VM home key {where}", before.key, after.key, {"original": before.key})
    for i, (was, now) in enumerate(zip(before.disk_keys, after.disk_keys, strict=True)):
        check_on_key(f"disk {i + 1} key {where}", was, now, {"original": was})


@pytest.mark.rule("XVC-MIGRATE-NO-RECRYPT")
@pytest.mark.test_id("df7aa71e-0fdd-40d1-935d-4117eebe835e")
@pytest.mark.parametrize("recrypt", ["shallow", "deep"])
def test_a_cross_vcenter_migration_can_not_change_the_vms_keys(
        recrypt, scratch, environment, inventory, vc, vc_b, place, place_b, provider, provider_b, policies_a,
        policies_b):
    _shared(vc_b, provider)
    vm, _ = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, f"no-{recrypt}")
    before = vms.state(vc, vm, label="before migration", phase="before")
    new_key = keys.generate_key(vc, provider)
    dest = clones.cross_destination(environment, vc_b, place_b)
    policy = policies_b.encryption if recrypt == "deep" else None
    _control_migration(scratch, environment, vc, vc_b, place, place_b, provider, policies_a.encryption, f"no-{recrypt}",
                       f"cross-vCenter migration of a twin without the {recrypt} recrypt")

    refused_crossing(scratch, vc_b, before.name,
                     lambda: clones.migrate(vc, vm, dest, policy_id=policy, crypto=clones.crypto_change(recrypt, new_key)),
                     f"cross-vCenter migration with a {recrypt} recrypt", source=(vc, vm))

    after = vms.state(vc, vm, label="after refused migration", phase="after")
    unchanged(before, after, f"cross-vCenter migration with a {recrypt} recrypt")
    assert new_key not in (after.key, *after.disk_keys)


# ---- XVC-HOSTVER ----------------------------------------------------------------------------------
def _old_host(client: Any, place: Any, inventory: Any) -> Any:
    """An ESXi host older than 7.0 among those the run may use (the cluster's, and the inventory's `older_hosts`)."""
    from harness.rules import version_tuple
    versions = find.host_versions(client, place, inventory.vcenter(client.name).older_hosts)
    client.recorder.note(f"ESXi host versions on {client.name}", {n: v for n, (_, v) in versions.items()})
    old = [host for host, version in versions.values() if version and version_tuple(version) < (7, 0)]
    return require_some(old, f"ESXi host older than 7.0 on {client.name} in the inventory cluster or its older_hosts")[0]


@pytest.mark.rule("XVC-HOSTVER")
@pytest.mark.requires("mixed_host_versions")
@pytest.mark.test_id("68e9bf1c-1089-4d94-bb69-efbe2d75d506")
@pytest.mark.parametrize("older", ["destination", "source"])
@pytest.mark.parametrize("operation", ["clone", "migrate"])
def test_a_cross_vcenter_operation_on_an_encrypted_vm_with_an_esxi_host_older_than_7_is_refused(
        operation, older, scratch, environment, inventory, vc, vc_b, place, place_b, provider, provider_b, policies_a):
    _shared(vc_b, provider)
    if older == "source":
        old = _old_host(vc, place, inventory)
        vm, _ = scratch.encrypted_vm(vc, clones.host_placement(vc, place, old), provider, policies_a.encryption,
                                     f"old-src-{operation}")
        dest = clones.cross_destination(environment, vc_b, place_b)
    else:
        old = _old_host(vc_b, place_b, inventory)
        vm, _ = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, f"to-old-{operation}")
        dest = clones.cross_destination(environment, vc_b, clones.host_placement(vc_b, place_b, old), host=old)
    before = vms.state(vc, vm, label="source before", phase="before")
    assert before.encrypted
    name = _arriving_name(scratch, operation, "xvc-old-host-copy", before)

    refused_crossing(scratch, vc_b, name, lambda: clones.clone_or_migrate(vc, vm, dest, operation, name, scratch.marker),
                     f"cross-vCenter {operation} of an encrypted VM with the {older} host older than ESXi 7.0",
                     source=(vc, vm))

    unchanged(before, vms.state(vc, vm, label="source after", phase="after"), f"refused cross-vCenter {operation}")


# ---- XVC-DEST-KMS ---------------------------------------------------------------------------------
def _host_outside_encryption_mode(vc_b: Any, place_b: Any) -> Any:
    """A destination host of vc_b's cluster that is not crypto-safe (the rule's precondition)."""
    states = hosts.crypto_states(vc_b, list(place_b.hosts), label="destination host crypto states", phase="before")
    candidates = [h for h in reversed(place_b.hosts) if states[h._moId] != "safe"]
    if not candidates:
        pytest.skip(f"capability: every host of {vc_b.name}'s cluster is already in encryption mode: the rule's "
                    "precondition (destination host not crypto-safe) cannot be arranged")
    return candidates[0]


@pytest.mark.rule("XVC-DEST-KMS")
@pytest.mark.destructive   # makes a host of vc-b crypto-safe: undone only by CryptoManagerHostDisable and a reboot
@pytest.mark.requires("host_crypto_state")
@pytest.mark.test_id("562c2441-48be-40f4-88ea-557b120ed3e1")
@pytest.mark.parametrize("operation", ["clone", "migrate"])
def test_an_encrypted_vm_goes_to_a_host_outside_encryption_mode_only_when_the_destination_has_its_kms_cluster(
        operation, serial, scratch, environment, vc, vc_b, place, place_b, provider, provider_b, dedicated_provider,
        policies_a, kms):
    """Both halves on the same destination host, still outside encryption mode: first a VM whose key is on a
    KMS cluster vc_b lacks (dedicated: refused), then one whose cluster vc_b has (shared: arrives).

    Takes `serial`: the KMS-SHARED test of test_kms.py briefly gives vc-b a provider with the dedicated ID."""
    _shared(vc_b, provider)
    assert dedicated_provider not in keys.list_providers(vc_b), \
        f"{vc_b.name} has key provider {dedicated_provider}: the destination is not missing the VM's KMS cluster"
    vc_b.recorder.note(f"default key provider of {vc_b.name}", keys.default_provider(vc_b))
    host = _host_outside_encryption_mode(vc_b, place_b)
    dest = clones.cross_destination(environment, vc_b, place_b, host=host)

    lacking, _ = scratch.encrypted_vm(vc, place, dedicated_provider, policies_a.encryption, f"no-dest-kms-{operation}")
    lacking_before = vms.state(vc, lacking, label="VM on the dedicated cluster before", phase="before")
    assert lacking_before.key is not None and lacking_before.key[0] == dedicated_provider
    lacking_name = _arriving_name(scratch, operation, "no-dest-kms-copy", lacking_before)
    refused_crossing(scratch, vc_b, lacking_name,
                     lambda: clones.clone_or_migrate(vc, lacking, dest, operation, lacking_name, scratch.marker),
                     f"cross-vCenter {operation} to {vc_b.name}, which lacks key provider {dedicated_provider}",
                     source=(vc, lacking))
    unchanged(lacking_before, vms.state(vc, lacking, label="VM on the dedicated cluster after", phase="after"),
              f"refused cross-vCenter {operation}")
    assert kms.key_exists(lacking_before.key)

    shared, _ = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, f"dest-kms-{operation}")
    shared_before = vms.state(vc, shared, label="VM on the shared cluster before", phase="before")
    shared_name = _arriving_name(scratch, operation, "dest-kms-copy", shared_before)
    # The positive half is also the refusal's control (same destination host, no forbidden change): if it
    # cannot arrive, the refusal above proves nothing and the test reports an error.
    copy = positive_control(
        lambda: arrived(scratch, vc_b, shared_name,
                        lambda: clones.clone_or_migrate(vc, shared, dest, operation, shared_name, scratch.marker)),
        f"cross-vCenter {operation} of a VM on the shared provider to the same host")

    after = vms.state(vc_b, copy, label=f"{operation} on {vc_b.name}", phase="after")
    assert after.key == shared_before.key, \
        f"the {operation} arrived with key {after.key}, the source had {shared_before.key}"
    assert after.host == host._moId, f"the {operation} landed on {after.host}, not on the chosen host {host._moId}"
    hosts.crypto_states(vc_b, [host], label="destination host crypto state after", phase="after")
