"""Rekey (shallow and deep recrypt) and recrypt down a snapshot chain (RULES.md: REKEY-*, SNAP-*).

Keys are read where they live: the VM home's `config.keyId`, each disk backing's `keyId`, and every
snapshot's own `config.keyId` (snapshots.with_keys), never inferred from the VM's key. Whether data
was rewritten is decided from the disk bytes at rest, on targets that can read them (`disk_bytes`).
"""
from __future__ import annotations

import time
from typing import Any

import pytest

from harness.checks import (assert_on_key, check_each_on_key, check_equal, check_on_key, check_that, key_text,
                            for_rule, refused, unchanged)
from harness.vsphere import crypto, disks, keys, snapshots, vms
from harness.vsphere.hosts import require_some

pytestmark = pytest.mark.requires("vm_encryption", "key_providers", "storage_policies")


# ---- helpers --------------------------------------------------------------------------------------
def _chain(vc: Any, vm: Any, names: tuple[str, ...]) -> list[Any]:
    """A single branch of snapshots, root first; returns the snapshot MoRefs."""
    return [snapshots.create(vc, vm, name) for name in names]


def _keys_by_snapshot(views: list[Any]) -> list[tuple[str, Any, Any]]:
    """(name, config.keyId, the keys of every link of its disk chains) per snapshot."""
    return [(v.name, v.key, sorted(v.link_keys, key=str)) for v in views]


def _at_rest(environment: Any, vc: Any, vm: Any, label: str) -> dict[int, bytes]:
    reader = environment.disk_reader(vc.name)
    return {d.key: disks.bytes_at_rest(reader, vc, vm, d.key, f"disk {d.key} {label}")
            for d in require_some(vms.disks(vc, vm), "disk")}


# ---- REKEY-SHALLOW --------------------------------------------------------------------------------
@pytest.mark.rule("REKEY-SHALLOW")
@pytest.mark.test_id("43a17c7c-0cbf-4c67-b3b1-a601ae415d09")
@pytest.mark.parametrize("power", ["poweredOff", "poweredOn"])
def test_a_shallow_recrypt_gives_the_vm_and_its_disks_the_new_key_powered_on_or_off(
        power, scratch, vc, place, provider, policies_a, kms):
    vm, old_key = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, f"shallow-{power}", disks=2)
    if power == "poweredOn":
        vms.power_on(vc, vm)
    before = vms.state(vc, vm, label="before shallow recrypt", phase="before")
    assert before.key == old_key and before.power == power
    new_key = keys.generate_key(vc, provider)

    crypto.shallow_rekey(vc, vm, new_key)

    after = vms.state(vc, vm, label="after shallow recrypt", phase="after")
    assert_on_key(after, new_key, "the recrypted VM")
    assert after.power == power, f"the VM was {power} and is {after.power} after a shallow recrypt"
    assert kms.key_exists(new_key)


@pytest.mark.rule("REKEY-SHALLOW")
@pytest.mark.requires("disk_bytes")
@pytest.mark.test_id("b045707e-66e7-4543-8f78-c7b9d5ac2035")
def test_a_shallow_recrypt_leaves_the_disk_ciphertext_as_it_was(
        scratch, environment, vc, place, provider, policies_a):
    vm, old_key = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, "shallow-bytes", disks=2)
    before = _at_rest(environment, vc, vm, "before shallow recrypt")
    new_key = keys.generate_key(vc, provider)

    crypto.shallow_rekey(vc, vm, new_key)

    assert vms.state(vc, vm, label="after shallow recrypt", phase="after").key == new_key
    after = _at_rest(environment, vc, vm, "after shallow recrypt")
    rewritten = [k for k in before if after.get(k) != before[k]]
    assert not rewritten, f"a shallow recrypt rewrote the data of disks {rewritten} (only the KEK may change)"


# ---- REKEY-DEEP -----------------------------------------------------------------------------------
@pytest.mark.rule("REKEY-DEEP")
@pytest.mark.test_id("b7c2c7c0-659a-401b-a487-9d874a31c3fc")
def test_a_deep_recrypt_gives_the_vm_and_every_disk_the_new_key(scratch, vc, place, provider, policies_a, kms):
    vm, old_key = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, "deep", disks=2, disk_kib=1024)
    shallow_key = keys.generate_key(vc, provider)
    started = time.perf_counter()
    crypto.shallow_rekey(vc, vm, shallow_key)
    shallow_s = time.perf_counter() - started
    before = vms.state(vc, vm, label="before deep recrypt", phase="before")
    assert before.key == shallow_key
    deep_key = keys.generate_key(vc, provider)

    started = time.perf_counter()
    crypto.deep_rekey(vc, vm, deep_key, policies_a.encryption)
    deep_s = time.perf_counter() - started

    vc.recorder.note("recrypt durations (s) of the same VM, 2 x 1 MiB disks",
                     {"shallow": round(shallow_s, 4), "deep": round(deep_s, 4),
                      "deep/shallow ratio": round(deep_s / shallow_s, 2) if shallow_s > 0 else None})
    after = vms.state(vc, vm, label="after deep recrypt", phase="after")
    assert_on_key(after, deep_key, "the recrypted VM")
    assert kms.key_exists(deep_key)


@pytest.mark.rule("REKEY-DEEP")
@pytest.mark.requires("disk_bytes")
@pytest.mark.test_id("f9b8c456-85cb-428e-b3fe-4d89541ff3c2")
def test_a_deep_recrypt_rewrites_the_encrypted_data_of_every_disk(scratch, environment, vc, place, provider, policies_a):
    vm, old_key = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, "deep-bytes", disks=2)
    reader = environment.disk_reader(vc.name)
    before = _at_rest(environment, vc, vm, "before deep recrypt")
    new_key = keys.generate_key(vc, provider)

    crypto.deep_rekey(vc, vm, new_key, policies_a.encryption)

    assert vms.state(vc, vm, label="after deep recrypt", phase="after").key == new_key
    after = _at_rest(environment, vc, vm, "after deep recrypt")
    untouched = [k for k in before if after.get(k) == before[k]]
    assert not untouched, f"a deep recrypt left the ciphertext of disks {untouched} as it was"
    leaking = [k for k, data in after.items() if reader.canary in data]
    assert not leaking, f"after the deep recrypt disks {leaking} hold the plaintext canary at rest"


@pytest.mark.rule("REKEY-DEEP", "REKEY-SHALLOW")
@pytest.mark.destructive
@pytest.mark.requires("fault_injection")
@pytest.mark.test_id("e6f237c3-e1db-4051-b9c9-97b0d8b8dbac")
def test_a_deep_recrypt_needs_temporary_disk_space_that_a_shallow_recrypt_does_not(
        serial, control, scratch, vc, place, provider, policies_a):
    """On a datastore with less free space than the disks' size: the shallow recrypt (no data rewritten)
    works, the deep one (a temporary copy of every disk) is refused and changes nothing; once the space
    is back the same deep recrypt works, so the refusal was about space."""
    vm, old_key = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, "deep-space", disks=2)
    disk_bytes = sum(d.capacityInKB * 1024 for d in require_some(vms.disks(vc, vm), "disk"))
    shallow_key, deep_key = keys.generate_key(vc, provider), keys.generate_key(vc, provider)

    with control.full_datastore(place.datastore_name, leave_free_bytes=disk_bytes // 2) as held:
        vc.recorder.note("datastore filled", {"datastore": place.datastore_name, "bytes_held": held,
                                              "left_free": disk_bytes // 2, "disk_bytes": disk_bytes})
        with for_rule("REKEY-SHALLOW"):  # a failure here is REKEY-SHALLOW's; REKEY-DEEP is then not shown
            crypto.shallow_rekey(vc, vm, shallow_key)
            # after the shallow recrypt, before the deep one: the state the refused deep recrypt must keep
            before = vms.state(vc, vm, label="after the shallow recrypt on the full datastore",
                               phase="after the shallow recrypt")
            assert_on_key(before, shallow_key, "the shallow-recrypted VM")
        with for_rule("REKEY-DEEP"):
            # API.md 2.3: NoDiskSpace is the usual FileFault, but not confirmed for a deep recrypt: recorded.
            refused(lambda: crypto.deep_rekey(vc, vm, deep_key, policies_a.encryption),
                    "deep recrypt without temporary disk space")

    with for_rule("REKEY-DEEP"):
        unchanged(before, vms.state(vc, vm, label="after the refused deep recrypt", phase="after"),
                  "deep recrypt without temporary disk space")
        crypto.deep_rekey(vc, vm, deep_key, policies_a.encryption)
        check_on_key("VM key after the deep recrypt with space", deep_key,
                     vms.state(vc, vm, label="after the deep recrypt with space", phase="after").key)


# ---- SNAP-SHALLOW ---------------------------------------------------------------------------------
@pytest.mark.rule("SNAP-SHALLOW")
@pytest.mark.requires("snapshots")
@pytest.mark.covers(snapshots="chain")
@pytest.mark.test_id("d3f649f0-d135-4a10-9139-5e6b924c3598")
@pytest.mark.parametrize("power", ["poweredOff", "poweredOn"])
def test_a_shallow_recrypt_of_a_vm_with_a_single_snapshot_chain_puts_every_snapshot_on_the_new_key(
        power, scratch, vc, place, provider, policies_a):
    vm, old_key = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, f"chain-{power}", disks=2)
    if power == "poweredOn":
        vms.power_on(vc, vm)
    _chain(vc, vm, ("s1", "s2", "s3"))
    check_equal("snapshot branches before the recrypt (one chain)", 1, snapshots.branch_count(vc, vm))
    chain_before = require_some(snapshots.with_keys(vc, vm, label="snapshot keys before", phase="before"), "snapshot")
    check_equal("snapshot chain before the recrypt", ["s1", "s2", "s3"], [s.name for s in chain_before])
    check_each_on_key([(f"snapshot {s.name} key before", s.key) for s in chain_before], old_key, {"old": old_key})
    for s in chain_before:
        _check_links(f"snapshot {s.name} disk-chain link keys before", s.keys, old_key, {"old": old_key})
    new_key = keys.generate_key(vc, provider)

    crypto.shallow_rekey(vc, vm, new_key)

    after = vms.state(vc, vm, label="after shallow recrypt", phase="after")
    chain_after = require_some(snapshots.with_keys(vc, vm, label="snapshot keys after", phase="after"), "snapshot")
    names = {"old": old_key, "new": new_key}
    check_equal("snapshot chain after the recrypt", [s.name for s in chain_before], [s.name for s in chain_after])
    check_each_on_key([(f"snapshot {s.name} key", s.key) for s in chain_after], new_key, names)
    for s in chain_after:
        _check_links(f"snapshot {s.name} disk-chain link keys", s.keys, new_key, names)
    running = snapshots.vm_link_keys(vc, vm, label="running disk chain keys after", phase="after")
    _check_links("running disk-chain link keys", running, new_key, names)
    check_on_key("VM home key", new_key, after.key, names)
    check_each_on_key([(f"disk {i + 1} key", k) for i, k in enumerate(require_some(list(after.disk_keys), "disk"))],
                      new_key, names)
    check_equal("power state after the recrypt", power, after.power)


def _check_links(what: str, link_keys: set[Any], key: Any, names: dict[str, Any]) -> None:
    """Every link of a disk chain (backing.parent...keyId) is on `key`, as a recorded check."""
    observed = ", ".join(key_text(k, names) for k in sorted(link_keys, key=str)) or "no links"
    check_that(what, link_keys == {key}, f"every link on {key_text(key, names)}", observed)


# ---- SNAP-BRANCHES --------------------------------------------------------------------------------
@pytest.mark.rule("SNAP-BRANCHES")
@pytest.mark.requires("snapshots")
@pytest.mark.covers(snapshots="tree")
@pytest.mark.test_id("a4719527-dad6-4ea9-9968-aaf98de78b6d")
def test_a_shallow_recrypt_of_a_vm_whose_snapshots_form_a_tree_is_refused_and_no_key_changes(
        scratch, vc, place, provider, policies_a):
    vm, old_key = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, "tree")
    first, _second = _chain(vc, vm, ("s1", "s2"))
    snapshots.revert(vc, first)
    snapshots.create(vc, vm, "s3-other-branch")
    assert snapshots.branch_count(vc, vm) == 2, "the arrangement did not make a snapshot tree"
    before = vms.state(vc, vm, label="before shallow recrypt", phase="before")
    tree_before = require_some(snapshots.with_keys(vc, vm, label="snapshot keys before", phase="before"), "snapshot")
    new_key = keys.generate_key(vc, provider)

    # API.md 10: the real fault class for a shallow recrypt on a snapshot tree is UNCONFIRMED.
    refused(lambda: crypto.shallow_rekey(vc, vm, new_key), "shallow recrypt of a VM with a snapshot tree")

    unchanged(before, vms.state(vc, vm, label="after refused shallow recrypt", phase="after"),
              "shallow recrypt of a VM with a snapshot tree")
    tree_after = snapshots.with_keys(vc, vm, label="snapshot keys after", phase="after")
    assert _keys_by_snapshot(tree_after) == _keys_by_snapshot(tree_before), \
        f"snapshot keys changed: {_keys_by_snapshot(tree_before)} -> {_keys_by_snapshot(tree_after)}"
    assert snapshots.branch_count(vc, vm) == 2


# ---- SNAP-PARTIAL ---------------------------------------------------------------------------------
@pytest.mark.rule("SNAP-PARTIAL")
@pytest.mark.destructive
@pytest.mark.requires("snapshots", "fault_injection")
@pytest.mark.covers(snapshots="chain")
@pytest.mark.test_id("3dd67c91-326b-45af-bd28-dea6b747c638")
def test_a_shallow_recrypt_stopped_part_way_leaves_mixed_keys_and_running_it_again_completes_it(
        serial, control, scratch, vc, place, provider, policies_a):
    vm, old_key = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, "partial", disks=2)
    _chain(vc, vm, ("s1", "s2", "s3"))
    new_key = keys.generate_key(vc, provider)

    with control.failing_rekey(after_links=1):   # the fake's snapshot-rekey-stops-part-way fault
        refused(lambda: crypto.shallow_rekey(vc, vm, new_key), "shallow recrypt stopped part-way down the chain")

    mixed = require_some(snapshots.with_keys(vc, vm, label="snapshot keys after the failure", phase="after"),
                         "snapshot")
    on = {k for s in mixed for k in s.keys} | snapshots.vm_link_keys(vc, vm, label="running chain keys after failure")
    assert old_key in on and new_key in on, \
        f"the failure did not leave the chain on mixed keys: {_keys_by_snapshot(mixed)}"
    vc.recorder.note("VM state after the part-way failure", vms.state(vc, vm).__dict__)

    crypto.shallow_rekey(vc, vm, new_key)

    done = require_some(snapshots.with_keys(vc, vm, label="snapshot keys after the retry", phase="after"), "snapshot")
    stale = [(s.name, sorted(s.keys, key=str)) for s in done if s.keys != {new_key}]
    assert not stale, f"after the retry snapshots (config or disk links) are still not on the new key {new_key}: {stale}"
    running = snapshots.vm_link_keys(vc, vm, label="running disk chain keys after the retry", phase="after")
    assert running == {new_key}, f"after the retry the running disk chains are on {running}, expected {new_key}"
    assert [s.name for s in done] == [s.name for s in mixed]
    after = vms.state(vc, vm, label="after the retry", phase="after")
    assert_on_key(after, new_key, "after the retry the VM")


# ---- SNAP-PRE7 ------------------------------------------------------------------------------------
@pytest.mark.rule("SNAP-PRE7")
@pytest.mark.requires("snapshots")
@pytest.mark.covers(snapshots="single")
@pytest.mark.test_id("35f79380-af13-4e32-850f-84ac279f6673")
def test_before_7_a_shallow_recrypt_of_a_vm_with_a_snapshot_is_refused(scratch, vc, place, provider, policies_a):
    vm, old_key = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, "pre7-snap")
    snapshots.create(vc, vm, "s1")
    before = vms.state(vc, vm, label="before shallow recrypt", phase="before")
    snaps_before = require_some(snapshots.with_keys(vc, vm, label="snapshot keys before", phase="before"), "snapshot")
    new_key = keys.generate_key(vc, provider)

    refused(lambda: crypto.shallow_rekey(vc, vm, new_key), f"shallow recrypt with a snapshot on {vc.version}")

    unchanged(before, vms.state(vc, vm, label="after refused shallow recrypt", phase="after"),
              f"shallow recrypt with a snapshot on {vc.version}")
    snaps_after = snapshots.with_keys(vc, vm, label="snapshot keys after", phase="after")
    assert _keys_by_snapshot(snaps_after) == _keys_by_snapshot(snaps_before)


@pytest.mark.rule("SNAP-PRE7")
@pytest.mark.covers(snapshots="none")
@pytest.mark.test_id("de218be6-9713-4399-b3f7-9c7d4e2ce352")
def test_before_7_a_shallow_recrypt_of_a_vm_without_snapshots_works(scratch, vc, place, provider, policies_a):
    vm, old_key = scratch.encrypted_vm(vc, place, provider, policies_a.encryption, "pre7-nosnap")
    before = vms.state(vc, vm, label="before shallow recrypt", phase="before")
    assert before.snapshot_count == 0 and before.key == old_key
    new_key = keys.generate_key(vc, provider)

    crypto.shallow_rekey(vc, vm, new_key)

    after = vms.state(vc, vm, label="after shallow recrypt", phase="after")
    assert_on_key(after, new_key, "the recrypted VM")
