"""Snapshots (create, revert, remove, consolidate) and the shallow recrypt down a snapshot chain.

A snapshot freezes each disk's chain and starts a new delta link on the same key; reverting and
then snapshotting again makes a branch (a tree). A shallow recrypt walks the single branch level
by level (each snapshot's links, then the running state) and rewraps every link; an injected
failure stops it part-way, leaving the chain on mixed keys (SNAP-PARTIAL, EVT-REKEY-MIXED) until a
second shallow recrypt with the new key completes it.
"""
from __future__ import annotations

from typing import Any

from pyVmomi import vim

from harness.fakevc.behaviours.crypto_rules import Checks, Keks, post, transform, SHALLOW
from harness.fakevc.defects import defect
from harness.fakevc.disks import CANARY, DiskFile, KeyRef
from harness.fakevc.model.base import CallContext
from harness.fakevc.model.vm import Snapshot, VirtualMachine, VmDisk
from harness.fakevc.server import FakeVCenter

SKIPS_SNAPSHOTS = defect("snap-shallow-skips-snapshots", "SNAP-SHALLOW",
                         "a shallow recrypt rekeys the VM and its running disks but leaves every snapshot on the old key")
RETRY_INCOMPLETE = defect("snap-partial-retry-incomplete", "SNAP-PARTIAL",
                          "re-running the shallow recrypt after a part-way failure rekeys only the running state: "
                          "the snapshots left on the old key stay there")
RETRY_REFUSED = defect("snap-partial-retry-refused", "SNAP-PARTIAL",
                       "a chain left on mixed keys blocks the re-run of the shallow recrypt (InvalidState)")
PARTIAL_HALF = defect("snap-partial-half", "SNAP-PARTIAL",
                      "a recrypt reported as failed part-way has in fact rekeyed the whole chain (no mixed keys left "
                      "to complete)", half_applied=True)
SKIPS_FROZEN_LINKS = defect("snap-shallow-skips-frozen-links", "SNAP-SHALLOW",
                            "a shallow recrypt puts every snapshot's config.keyId and each disk's running delta on "
                            "the new key, but leaves the links below (base and snapshot deltas) on the old key")
NO_MIXED_EVENT = defect("evt-rekey-mixed-no-event", "EVT-REKEY-MIXED",
                        "a shallow recrypt that stops part-way posts neither RekeyFail nor DiskchainUsingMixedKeys")

REKEY_FAIL_EVENT = "com.vmware.vc.vm.crypto.RekeyFail"
MIXED_KEYS_EVENT = "com.vmware.vc.vm.crypto.DiskchainUsingMixedKeys"


# ---- fault injection (fake targets only) -------------------------------------------------------
def inject_rekey_failure(vc: FakeVCenter, after_links: int) -> None:
    """Make the next shallow recrypt on `vc` stop after `after_links` chain levels (one shot).

    A level is one snapshot's frozen links (root first), the last level the running state; so
    with snapshots S1..Sn, `after_links=k` leaves S1..Sk on the new key and the rest on the old.
    """
    vc.rekey_failure_after = after_links


def clear_rekey_failure(vc: FakeVCenter) -> None:
    vc.rekey_failure_after = None


# ---- snapshot lifecycle ------------------------------------------------------------------------
def _delta_size(disk: VmDisk) -> int:
    return max(len(CANARY) * 4, disk.capacity // 16)


def new_delta(vc: FakeVCenter, vm: VirtualMachine, disk: VmDisk, keks: Keks) -> DiskFile:
    """A fresh delta link on top of a disk's chain, on the same key as the link below it."""
    parent = disk.top
    index = len(vm.links_in_order())
    stem = parent.path.rsplit(".vmdk", 1)[0].split("-0000")[0]
    link = DiskFile.create(f"{stem}-{index:06d}.vmdk", _delta_size(disk), parent.datastore)
    if parent.key:
        link.encrypt(keks.get(parent.key), parent.key)
    return link


def create(ctx: CallContext, vm: VirtualMachine, name: str, description: str, memory: bool) -> Any:
    vc = vm.vc
    if vm.template:
        raise vim.fault.InvalidState(msg=f"Snapshots of the template '{vm.name}' are not supported.")
    keks = Keks(vc)
    keks.prefetch({d.top.key for d in vm.disks if d.top.key})
    parent = vm.current_snapshot
    snap = Snapshot(vc, vm, name, description, bool(memory) and vm.power_state == "poweredOn", parent,
                    [(d, list(d.chain)) for d in vm.disks])
    for disk in vm.disks:
        disk.chain.append(new_delta(vc, vm, disk, keks))
    if parent is None:
        vm.root_snapshots.append(snap)
    else:
        parent.children_snaps.append(snap)
    vm.current_snapshot = snap
    return snap


def revert(ctx: CallContext, vm: VirtualMachine, snap: Snapshot | None, suppress_power_on: bool = False) -> None:
    """Go back to a snapshot: each disk restarts from its frozen chain with a new delta."""
    if snap is None:
        raise vim.fault.InvalidState(msg=f"The virtual machine '{vm.name}' has no current snapshot.")
    keks = Keks(vm.vc)
    keks.prefetch({chain[-1].key for chain in snap.chains if chain and chain[-1].key})
    for disk, chain in snap.disks:       # disks added since the snapshot go, removed ones come back
        disk.chain = list(chain)
        disk.chain.append(new_delta(vm.vc, vm, disk, keks))
    vm.disks = [disk for disk, _ in snap.disks]
    vm.key = snap.home_key
    vm.current_snapshot = snap
    vm.power_state = "poweredOn" if snap.memory and snap.power_state == "poweredOn" and not suppress_power_on else "poweredOff"


def _drop(vm: VirtualMachine, snap: Snapshot) -> None:
    siblings = snap.parent.children_snaps if snap.parent else vm.root_snapshots
    siblings.remove(snap)
    vm.vc.unregister(snap)


def remove(ctx: CallContext, vm: VirtualMachine, snap: Snapshot, remove_children: bool) -> None:
    """Remove one snapshot (its children move up) or a subtree; the last removal consolidates."""
    if remove_children:
        doomed = [snap]
        stack = list(snap.children_snaps)
        while stack:
            node = stack.pop()
            doomed.append(node)
            stack.extend(node.children_snaps)
        if vm.current_snapshot in doomed:
            vm.current_snapshot = snap.parent
        for node in doomed[1:]:
            vm.vc.unregister(node)
        _drop(vm, snap)
    else:
        siblings = snap.parent.children_snaps if snap.parent else vm.root_snapshots
        position = siblings.index(snap)
        for child in snap.children_snaps:
            child.parent = snap.parent
        siblings[position:position + 1] = snap.children_snaps
        vm.vc.unregister(snap)
        if vm.current_snapshot is snap:
            vm.current_snapshot = snap.parent
    if not vm.root_snapshots:
        _consolidate_chains(vm)


def remove_all(ctx: CallContext, vm: VirtualMachine) -> None:
    for snap in vm.all_snapshots():
        vm.vc.unregister(snap)
    vm.root_snapshots = []
    vm.current_snapshot = None
    _consolidate_chains(vm)


def consolidate(ctx: CallContext, vm: VirtualMachine) -> None:
    if not vm.root_snapshots:
        _consolidate_chains(vm)


def _consolidate_chains(vm: VirtualMachine) -> None:
    """Without snapshots each disk is one link again: the deltas are merged into the base."""
    for disk in vm.disks:
        disk.chain = disk.chain[:1]


# ---- shallow recrypt down the chain (SNAP-SHALLOW, SNAP-PARTIAL) -------------------------------
def branch_levels(vm: VirtualMachine) -> list[Snapshot]:
    """The snapshots of a single-branch VM, root first (the tree case is refused before this)."""
    return vm.all_snapshots()


def check_retry(checks: Checks, vm: VirtualMachine) -> None:
    """A chain on mixed keys must not block the re-run (unless the seeded defect says so)."""
    if vm.mixed_keys() and checks.on(RETRY_REFUSED):
        raise vim.fault.InvalidState(
            msg=f"The disk chain of '{vm.name}' is encrypted with mixed keys; the operation is not allowed.")


def shallow_recrypt(vm: VirtualMachine, new_key: KeyRef, rekey_home: bool, disks: list[VmDisk], keks: Keks,
                    checks: Checks | None = None) -> None:
    """Rewrap every link of the selected disks level by level, and every snapshot's home key.

    Raises InvalidState (and posts RekeyFail + DiskchainUsingMixedKeys) when the injected failure
    point is reached; what was done so far stays done.
    """
    vc = vm.vc
    selected = {id(d) for d in disks}
    done: set[int] = set()
    fail_after = getattr(vc, "rekey_failure_after", None)
    vc.rekey_failure_after = None   # one shot, whether or not the chain is long enough to reach it
    was_mixed = vm.mixed_keys()
    levels: list[Any] = [] if vc.world.defects.on(SKIPS_SNAPSHOTS) else branch_levels(vm)
    if was_mixed and vc.world.defects.on(RETRY_INCOMPLETE):
        levels = []
    if fail_after is not None and checks is not None and checks.on(PARTIAL_HALF):
        checks.deferred = checks.deferred or _part_way_fault(vm, min(fail_after, len(levels)), len(levels) + 1)
        fail_after = None   # the buggy vCenter reports the failure but finishes the chain
    frozen_links = not vc.world.defects.on(SKIPS_FROZEN_LINKS)
    for step, snap in enumerate(levels):
        if fail_after is not None and step >= fail_after:
            _fail_part_way(vm, step, len(levels) + 1)
        for disk, chain in snap.disks:
            if id(disk) in selected and frozen_links:
                _rekey_links(vm, chain, new_key, keks, done)
        if rekey_home and snap.home_key:
            snap.home_key = new_key
    if fail_after is not None and len(levels) >= fail_after:
        _fail_part_way(vm, len(levels), len(levels) + 1)
    for disk in vm.disks:
        if id(disk) in selected:
            incomplete = (was_mixed and vc.world.defects.on(RETRY_INCOMPLETE)) or not frozen_links
            chain = disk.chain if not incomplete else disk.chain[-1:]
            _rekey_links(vm, chain, new_key, keks, done)


def _rekey_links(vm: VirtualMachine, chain: list[DiskFile], new_key: KeyRef, keks: Keks, done: set[int]) -> None:
    for link in chain:
        if id(link) in done or link.shared or not link.encrypted:
            continue
        done.add(id(link))
        transform(vm.vc, link, SHALLOW, new_key, keks)


def _part_way_fault(vm: VirtualMachine, done_levels: int, total_levels: int) -> vim.fault.InvalidState:
    """Post RekeyFail and DiskchainUsingMixedKeys (EVT-REKEY-MIXED) and return the task's fault."""
    vc = vm.vc
    if not vc.world.defects.on(NO_MIXED_EVENT):
        post(vc, REKEY_FAIL_EVENT, vm, "error",
             f"Shallow recrypt of {vm.name} failed after {done_levels} of {total_levels} disk chain levels",
             vm=vm.name, completed=done_levels, total=total_levels)
        post(vc, MIXED_KEYS_EVENT, vm, "warning",
             f"The disk device is encrypted with mixed keys: {vm.name}", vm=vm.name)
    return vim.fault.InvalidState(
        msg=(f"Recrypt of '{vm.name}' failed part-way down the disk chain ({done_levels} of {total_levels} levels "
             "on the new key); the chain uses mixed keys: run the shallow recrypt again with the new key."))


def _fail_part_way(vm: VirtualMachine, done_levels: int, total_levels: int) -> None:
    raise _part_way_fault(vm, done_levels, total_levels)

# ---- API handlers (registered in harness/fakevc/dispatch.py HANDLERS) --------------------------
def CreateSnapshot_Task(ctx: CallContext, vm: VirtualMachine, name: str, description: str | None,  # noqa: N802
                        memory: bool, quiesce: bool) -> Any:
    return vm.vc.tasks.run(ctx, vm, "VirtualMachine.createSnapshot",
                           lambda: create(ctx, vm, name, description or "", memory).ref)


def RemoveAllSnapshots_Task(ctx: CallContext, vm: VirtualMachine, consolidate: bool | None = None,  # noqa: N802
                            spec: Any = None) -> Any:
    return vm.vc.tasks.run(ctx, vm, "VirtualMachine.removeAllSnapshots", lambda: remove_all(ctx, vm))


def RevertToCurrentSnapshot_Task(ctx: CallContext, vm: VirtualMachine, host: Any = None,  # noqa: N802
                                 suppressPowerOn: bool | None = None) -> Any:
    return vm.vc.tasks.run(ctx, vm, "VirtualMachine.revertToCurrentSnapshot",
                           lambda: revert(ctx, vm, vm.current_snapshot, bool(suppressPowerOn)))


def ConsolidateVMDisks_Task(ctx: CallContext, vm: VirtualMachine) -> Any:  # noqa: N802
    return vm.vc.tasks.run(ctx, vm, "VirtualMachine.consolidateDisks", lambda: consolidate(ctx, vm))


def RemoveSnapshot_Task(ctx: CallContext, snapshot: Snapshot, removeChildren: bool,  # noqa: N802
                        consolidate: bool | None = None) -> Any:
    return snapshot.vc.tasks.run(ctx, snapshot.vm, "VirtualMachine.removeSnapshot",
                                 lambda: remove(ctx, snapshot.vm, snapshot, removeChildren))


def RevertToSnapshot_Task(ctx: CallContext, snapshot: Snapshot, host: Any = None,  # noqa: N802
                          suppressPowerOn: bool | None = None) -> Any:
    return snapshot.vc.tasks.run(ctx, snapshot.vm, "VirtualMachine.revertToSnapshot",
                                 lambda: revert(ctx, snapshot.vm, snapshot, bool(suppressPowerOn)))
