"""Datastore space for disk-rewriting operations (EVT-DISK-SPACE), and filling a datastore on cue.

Encrypt, decrypt and deep recrypt write a temporary copy of every disk file they rewrite, so they
need about twice the rewritten size free on each datastore involved; without it the task fails
with vim.fault.NoDiskSpace and vCenter posts the critical `com.vmware.vc.vm.crypto.NoDiskSpace`.
Copies (clone, storage migration) need the copied size free.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable

from pyVmomi import vim

from harness.fakevc.behaviours.crypto_rules import Checks, post
from harness.fakevc.defects import defect
from harness.fakevc.model.datastore import Datastore
from harness.fakevc.model.vm import VirtualMachine
from harness.fakevc.server import FakeVCenter

NO_EVENT = defect("evt-disk-space-no-event", "EVT-DISK-SPACE",
                  "a crypto operation that lacks disk space fails without posting com.vmware.vc.vm.crypto.NoDiskSpace")
IGNORED = defect("evt-disk-space-ignored", "EVT-DISK-SPACE",
                 "a crypto operation runs although the datastore lacks the space for the temporary copy")
HALF = defect("evt-disk-space-half", "EVT-DISK-SPACE",
              "NoDiskSpace is reported but the VM was encrypted/decrypted anyway", half_applied=True)

EVENT_ID = "com.vmware.vc.vm.crypto.NoDiskSpace"
REWRITE_FACTOR = 2   # the temporary copy plus headroom: "about twice the disk size"


def needed_by_datastore(links: Iterable[Any], factor: int) -> dict[Any, int]:
    need: dict[Any, int] = defaultdict(int)
    for link in links:
        need[link.datastore] += link.size * factor
    return need


def check_rewrite(checks: Checks, vm: VirtualMachine, links: Iterable[Any], operation: str, half: str | None = None) -> None:
    """Refuse a crypto rewrite of `links` (NoDiskSpace + critical event) when space is short.

    `half` names an extra half-applied defect of the calling rule (REKEY-DEEP's own).
    """
    need = needed_by_datastore([link for link in links if not link.shared], REWRITE_FACTOR)
    _check(checks, vm, need, operation, crypto=True, half=half)


def check_copy(checks: Checks, vm: VirtualMachine, need: dict[Any, int], operation: str, crypto: bool) -> None:
    """Refuse a copy that does not fit (the crypto event only when the copy changes encryption)."""
    _check(checks, vm, need, operation, crypto)


def _check(checks: Checks, vm: VirtualMachine, need: dict[Any, int], operation: str, crypto: bool, half: str | None = None) -> None:
    for datastore, size in need.items():
        if datastore is None or datastore.free >= size:
            continue
        fault = vim.fault.NoDiskSpace(
            datastore=datastore.name, file=vm.vmx_path() if hasattr(vm, "vmx_path") else None,
            msg=(f"There is not enough space on datastore '{datastore.name}' for {operation} of '{vm.name}': "
                 f"needs {size} bytes free, {datastore.free} available."))
        if crypto and not checks.on(IGNORED) and not checks.on(NO_EVENT):
            post(datastore.vc, EVENT_ID, vm if vm.vc is datastore.vc else datastore, "error",
                 f"Cryptographic operation failed due to insufficient disk space on datastore {datastore.name}",
                 datastore=datastore.name, vm=vm.name, operation=operation)
        halves = tuple(name for name in (HALF if crypto else None, half) if name)
        checks.refuse(fault, ignored=IGNORED if crypto else None, half=halves)


# ---- fault injection (fake targets only) -------------------------------------------------------
def _datastore(vc: FakeVCenter, datastore: Any) -> Datastore:
    if hasattr(datastore, "reserved"):
        return datastore
    if isinstance(datastore, str) and not datastore.startswith("datastore-"):
        return next(d for d in vc.datacenter.datastore_folder.members if d.name == datastore)
    found = vc.lookup(datastore)
    if not isinstance(found, Datastore):
        raise KeyError(f"{found.moid} is not a datastore")
    return found


def fill_datastore(vc: FakeVCenter, datastore: Any, leave_free_bytes: int) -> int:
    """Hold space on a datastore so that exactly `leave_free_bytes` stay free; returns the bytes held.

    `datastore` is the model, a MoRef, a moId or a datastore name (e.g. "LocalDS_0").
    """
    with vc.lock:
        ds = _datastore(vc, datastore)
        ds.reserved = 0
        ds.reserved = max(0, ds.free - max(0, leave_free_bytes))
        vc.lock.notify_all()
        return ds.reserved


def restore_datastore(vc: FakeVCenter, datastore: Any) -> None:
    """Release what `fill_datastore` held."""
    with vc.lock:
        _datastore(vc, datastore).reserved = 0
        vc.lock.notify_all()
