"""Snapshots on the fake and the shallow recrypt down a snapshot chain (SNAP-*, EVT-REKEY-MIXED)."""
from __future__ import annotations

import pytest
from pyVmomi import vim

from harness.fakevc.behaviours import snapshots as fake_snapshots
from tests.fakevc.conftest import make_vm, wait
from tests.fakevc.test_vm_crypto import (chain_keys, destroy, disks, encrypt, find_vm, key_of, new_key, power_on,
                                         refused, seeded, shallow_spec, snapshot, snapshot_keys, state)
from tests.fakevc.test_vm_crypto import enc_vm, made, si_67  # noqa: F401 - fixtures

REKEY_FAIL = "com.vmware.vc.vm.crypto.RekeyFail"
MIXED = "com.vmware.vc.vm.crypto.DiskchainUsingMixedKeys"


def _tree(vm):
    info = vm.snapshot

    def walk(trees):
        return [(t.name, walk(t.childSnapshotList)) for t in trees or []]
    return walk(info.rootSnapshotList) if info else []


def _snap(vm, name):
    def walk(trees):
        for t in trees or []:
            if t.name == name:
                return t.snapshot
            found = walk(t.childSnapshotList)
            if found is not None:
                return found
        return None
    return walk(vm.snapshot.rootSnapshotList)


def _events(si, vm, type_id):
    spec = vim.event.EventFilterSpec(eventTypeId=[type_id],
                                     entity=vim.event.EventFilterSpec.ByEntity(entity=vm, recursion="self"))
    return list(si.content.eventManager.QueryEvents(spec))


@pytest.fixture
def fake_a(env):
    fake = env.fake_vcenter("vc-a")
    yield fake
    fake_snapshots.clear_rekey_failure(fake)


# ---- the snapshot model ---------------------------------------------------------------------------
def test_snapshots_form_a_chain_and_each_starts_a_delta_link(si_a, enc_vm):
    key = key_of(enc_vm.config.keyId)
    snapshot(enc_vm, "s1")
    snapshot(enc_vm, "s2")
    assert _tree(enc_vm) == [("s1", [("s2", [])])]
    assert chain_keys(disks(enc_vm)[0]) == [key, key, key]   # base + two deltas, all on the VM key
    assert snapshot_keys(enc_vm) == [("s1", key), ("s2", key)]
    assert enc_vm.snapshot.currentSnapshot._moId == _snap(enc_vm, "s2")._moId


def test_revert_then_snapshot_makes_a_branch(vm):
    snapshot(vm, "s1")
    snapshot(vm, "s2")
    wait(_snap(vm, "s1").RevertToSnapshot_Task())
    snapshot(vm, "s3")
    assert _tree(vm) == [("s1", [("s2", []), ("s3", [])])]


def test_remove_one_snapshot_moves_its_children_up(vm):
    snapshot(vm, "s1")
    snapshot(vm, "s2")
    wait(_snap(vm, "s1").RemoveSnapshot_Task(removeChildren=False))
    assert _tree(vm) == [("s2", [])]


def test_remove_all_consolidates_the_chain(enc_vm):
    snapshot(enc_vm, "s1")
    snapshot(enc_vm, "s2")
    wait(enc_vm.RemoveAllSnapshots_Task())
    assert enc_vm.snapshot is None
    assert len(chain_keys(disks(enc_vm)[0])) == 1


def test_revert_to_a_memory_snapshot_restores_power(vm):
    power_on(vm)
    wait(vm.CreateSnapshot_Task(name="mem", description="", memory=True, quiesce=False))
    wait(vm.PowerOffVM_Task())
    wait(vm.RevertToCurrentSnapshot_Task())
    assert vm.runtime.powerState == "poweredOn"


# ---- SNAP-SHALLOW ------------------------------------------------------------------------------------
@pytest.mark.parametrize("powered", ["off", "on"])
def test_shallow_recrypt_with_a_single_branch_rekeys_every_snapshot(si_a, enc_vm, powered):
    for name in ("s1", "s2", "s3"):
        snapshot(enc_vm, name)
    if powered == "on":
        power_on(enc_vm)
    key = new_key(si_a)
    wait(enc_vm.ReconfigVM_Task(spec=shallow_spec(enc_vm, key)))
    new = key_of(key)
    assert key_of(enc_vm.config.keyId) == new
    assert snapshot_keys(enc_vm) == [("s1", new), ("s2", new), ("s3", new)]
    assert set(chain_keys(disks(enc_vm)[0])) == {new}
    for name in ("s1", "s2", "s3"):
        snap_disk = [d for d in _snap(enc_vm, name).config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)][0]
        assert set(chain_keys(snap_disk)) == {new}


def test_shallow_recrypt_after_revert_to_an_inner_snapshot_covers_the_whole_branch(si_a, enc_vm):
    snapshot(enc_vm, "s1")
    snapshot(enc_vm, "s2")
    wait(_snap(enc_vm, "s1").RevertToSnapshot_Task())   # current state branches off s1: still one snapshot branch
    key = key_of(new_key(si_a))
    wait(enc_vm.ReconfigVM_Task(spec=shallow_spec(enc_vm, vim.encryption.CryptoKeyId(
        keyId=key[1], providerId=vim.encryption.KeyProviderId(id=key[0])))))
    assert snapshot_keys(enc_vm) == [("s1", key), ("s2", key)]
    snap_disk = [d for d in _snap(enc_vm, "s2").config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)][0]
    assert set(chain_keys(snap_disk)) == {key}


# ---- SNAP-BRANCHES ------------------------------------------------------------------------------------
def _branched(vm):
    snapshot(vm, "s1")
    snapshot(vm, "s2")
    wait(_snap(vm, "s1").RevertToSnapshot_Task())
    snapshot(vm, "s3")


def test_shallow_recrypt_on_a_snapshot_tree_is_refused(si_a, enc_vm):
    _branched(enc_vm)
    before = state(enc_vm)
    fault = refused(enc_vm.ReconfigVM_Task(spec=shallow_spec(enc_vm, new_key(si_a))), vim.fault.InvalidState)
    assert "tree" in fault.msg
    assert state(enc_vm) == before


def test_two_root_snapshots_are_a_tree_too(si_a, enc_vm):
    _branched(enc_vm)
    wait(_snap(enc_vm, "s1").RemoveSnapshot_Task(removeChildren=False))
    assert _tree(enc_vm) == [("s2", []), ("s3", [])]
    before = state(enc_vm)
    refused(enc_vm.ReconfigVM_Task(spec=shallow_spec(enc_vm, new_key(si_a))), vim.fault.InvalidState)
    assert state(enc_vm) == before


# ---- SNAP-PARTIAL / EVT-REKEY-MIXED ------------------------------------------------------------------
def test_a_recrypt_that_stops_part_way_leaves_mixed_keys_and_the_rerun_completes_it(si_a, enc_vm, fake_a):
    old = key_of(enc_vm.config.keyId)
    for name in ("s1", "s2", "s3"):
        snapshot(enc_vm, name)
    power_on(enc_vm)
    key = new_key(si_a)
    new = key_of(key)
    fake_snapshots.inject_rekey_failure(fake_a, after_links=2)
    refused(enc_vm.ReconfigVM_Task(spec=shallow_spec(enc_vm, key)), vim.fault.InvalidState)
    assert snapshot_keys(enc_vm) == [("s1", new), ("s2", new), ("s3", old)]
    assert set(chain_keys(disks(enc_vm)[0])) == {old, new}
    assert _events(si_a, enc_vm, REKEY_FAIL) and _events(si_a, enc_vm, MIXED)
    assert _events(si_a, enc_vm, MIXED)[0].severity == "warning"
    assert enc_vm.runtime.powerState == "poweredOn"   # still accessible
    wait(enc_vm.ReconfigVM_Task(spec=shallow_spec(enc_vm, key)))
    assert key_of(enc_vm.config.keyId) == new
    assert snapshot_keys(enc_vm) == [("s1", new), ("s2", new), ("s3", new)]
    assert set(chain_keys(disks(enc_vm)[0])) == {new}


def test_failure_injection_is_one_shot(si_a, enc_vm, fake_a):
    snapshot(enc_vm, "s1")
    fake_snapshots.inject_rekey_failure(fake_a, after_links=5)   # beyond the chain: no failure, and consumed
    wait(enc_vm.ReconfigVM_Task(spec=shallow_spec(enc_vm, new_key(si_a))))
    wait(enc_vm.ReconfigVM_Task(spec=shallow_spec(enc_vm, new_key(si_a))))


# ---- SNAP-PRE7 -------------------------------------------------------------------------------------------
@pytest.fixture
def vm67(si_67):
    machine = make_vm(si_67)
    encrypt(si_67, machine)
    yield machine
    destroy(machine)


def test_pre7_shallow_recrypt_with_snapshots_is_refused(si_67, vm67):
    snapshot(vm67, "s1")
    before = state(vm67)
    refused(vm67.ReconfigVM_Task(spec=shallow_spec(vm67, new_key(si_67))), vim.fault.InvalidState)
    assert state(vm67) == before


def test_pre7_shallow_recrypt_without_snapshots_works(si_67, vm67):
    key = new_key(si_67)
    wait(vm67.ReconfigVM_Task(spec=shallow_spec(vm67, key)))
    assert key_of(vm67.config.keyId) == key_of(key)


def test_pre7_vcenter_refuses_7_0_only_methods_client_side(si_67):
    """pyVmomi negotiates 6.7 (version13): a 7.0 method does not even leave the client."""
    with pytest.raises(Exception):
        si_67.content.cryptoManager.ListKmsClusters(includeKmsServers=True)


# ---- seeded defects --------------------------------------------------------------------------------------
COVERED = {"snap-shallow-skips-snapshots", "snap-branches-allowed", "snap-branches-half",
           "snap-partial-retry-incomplete", "snap-partial-retry-refused", "snap-partial-half", "evt-rekey-mixed-no-event",
           "snap-pre7-allows-shallow", "snap-pre7-half"}


def test_defect_shallow_recrypt_skips_snapshots(env, si_a, enc_vm):
    old = key_of(enc_vm.config.keyId)
    snapshot(enc_vm, "s1")
    key = new_key(si_a)
    with seeded(env, "snap-shallow-skips-snapshots"):
        wait(enc_vm.ReconfigVM_Task(spec=shallow_spec(enc_vm, key)))
    assert key_of(enc_vm.config.keyId) == key_of(key)
    assert snapshot_keys(enc_vm) == [("s1", old)]


@pytest.mark.parametrize("defect,half", [("snap-branches-allowed", False), ("snap-branches-half", True)])
def test_defect_shallow_recrypt_on_a_tree(env, si_a, enc_vm, defect, half):
    _branched(enc_vm)
    old = key_of(enc_vm.config.keyId)
    with seeded(env, defect):
        task = enc_vm.ReconfigVM_Task(spec=shallow_spec(enc_vm, new_key(si_a)))
    (refused(task, vim.fault.InvalidState) if half else wait(task))
    assert key_of(enc_vm.config.keyId) != old


def _partial(si_a, vm, fake):
    for name in ("s1", "s2"):
        snapshot(vm, name)
    key = new_key(si_a)
    fake_snapshots.inject_rekey_failure(fake, after_links=1)
    refused(vm.ReconfigVM_Task(spec=shallow_spec(vm, key)), vim.fault.InvalidState)
    return key


def test_defect_rerun_leaves_snapshots_on_the_old_key(env, si_a, enc_vm, fake_a):
    old = key_of(enc_vm.config.keyId)
    key = _partial(si_a, enc_vm, fake_a)
    with seeded(env, "snap-partial-retry-incomplete"):
        wait(enc_vm.ReconfigVM_Task(spec=shallow_spec(enc_vm, key)))
    assert ("s2", old) in snapshot_keys(enc_vm)


def test_defect_mixed_chain_blocks_the_rerun(env, si_a, enc_vm, fake_a):
    key = _partial(si_a, enc_vm, fake_a)
    with seeded(env, "snap-partial-retry-refused"):
        refused(enc_vm.ReconfigVM_Task(spec=shallow_spec(enc_vm, key)), vim.fault.InvalidState)


def test_defect_failure_reported_but_nothing_left_mixed(env, si_a, enc_vm, fake_a):
    with seeded(env, "snap-partial-half"):
        key = _partial(si_a, enc_vm, fake_a)
    assert key_of(enc_vm.config.keyId) == key_of(key)
    assert {k for _, k in snapshot_keys(enc_vm)} == {key_of(key)}


def test_defect_no_event_for_a_mixed_chain(env, si_a, enc_vm, fake_a):
    with seeded(env, "evt-rekey-mixed-no-event"):
        _partial(si_a, enc_vm, fake_a)
    assert _events(si_a, enc_vm, REKEY_FAIL) == [] and _events(si_a, enc_vm, MIXED) == []


@pytest.mark.parametrize("defect,half", [("snap-pre7-allows-shallow", False), ("snap-pre7-half", True)])
def test_defect_pre7_shallow_with_snapshots(env, si_67, vm67, defect, half):
    snapshot(vm67, "s1")
    old = key_of(vm67.config.keyId)
    with seeded(env, defect):
        task = vm67.ReconfigVM_Task(spec=shallow_spec(vm67, new_key(si_67)))
    (refused(task, vim.fault.InvalidState) if half else wait(task))
    assert key_of(vm67.config.keyId) != old


def test_snapshot_of_a_template_is_refused(si_a, vm, made):
    name = vm.name + "-t"
    wait(vm.CloneVM_Task(folder=vm.parent, name=name, spec=vim.vm.CloneSpec(
        location=vim.vm.RelocateSpec(), template=True, powerOn=False)))
    template = find_vm(si_a, name)
    made.append(template)
    refused(template.CreateSnapshot_Task(name="x", description="", memory=False, quiesce=False), vim.fault.InvalidState)
    assert template.snapshot is None
