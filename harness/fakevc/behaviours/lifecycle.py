"""Creating, destroying, unregistering and converting VMs; reading a disk's bytes as stored.

`read_disk_bytes` is what a datastore download of a disk would return (DATA-AT-REST on a fake
target): the bytes of the top link as they are at rest, ciphertext when the disk is encrypted.
"""
from __future__ import annotations

from typing import Any

from pyVmomi import vim, vmodl

from harness.fakevc.behaviours import maintenance
from harness.fakevc.build import new_disk_chain
from harness.fakevc.kmip import keys
from harness.fakevc.model.base import CallContext
from harness.fakevc.model.datastore import Datastore
from harness.fakevc.model.inventory import Folder
from harness.fakevc.model.vm import VirtualMachine, VmDisk
from harness.fakevc.server import FakeVCenter


def detach(vm: VirtualMachine) -> None:
    """Remove a VM and its snapshots from the inventory (its disk files go with it)."""
    vm.parent_mo.remove(vm)
    if vm.pool is not None and vm in vm.pool.vms:
        vm.pool.vms.remove(vm)
    for snap in vm.all_snapshots():
        vm.vc.unregister(snap)
    vm.vc.unregister(vm)


def destroy(ctx: CallContext, vm: VirtualMachine) -> None:
    if vm.power_state == "poweredOn":
        raise vim.fault.InvalidPowerState(requestedState="poweredOff", existingState="poweredOn",
                                          msg="The attempted operation cannot be performed in the current state (Powered on).")
    detach(vm)


def unregister(ctx: CallContext, vm: VirtualMachine) -> None:
    destroy(ctx, vm)


def mark_as_template(ctx: CallContext, vm: VirtualMachine) -> None:
    if vm.power_state == "poweredOn":
        raise vim.fault.InvalidPowerState(requestedState="poweredOff", existingState="poweredOn",
                                          msg="The attempted operation cannot be performed in the current state (Powered on).")
    vm.template = True


def mark_as_vm(ctx: CallContext, vm: VirtualMachine, pool: Any, host: Any) -> None:
    if not vm.template:
        raise vmodl.fault.NotSupported(msg="The operation is not supported on the object: it is not a template.")
    new_pool = vm.vc.lookup(pool) if pool is not None else vm.pool
    new_host = vm.vc.lookup(host) if host is not None else vm.host
    if new_pool is not vm.pool:
        if vm.pool is not None and vm in vm.pool.vms:
            vm.pool.vms.remove(vm)
        new_pool.vms.append(vm)
        vm.pool = new_pool
    vm.host = new_host
    vm.template = False


# ---- DATA-AT-REST (fake targets only) ------------------------------------------------------------
def _vm(vc: FakeVCenter, vm: Any) -> VirtualMachine:
    if isinstance(vm, VirtualMachine):
        return vm
    with vc.lock:
        found = vc.lookup(vm if isinstance(vm, str) else vm._moId)
    if not isinstance(found, VirtualMachine):
        raise KeyError(f"{found.moid} is not a virtual machine")
    return found


def _disk(vm: VirtualMachine, disk_key: int | None) -> VmDisk:
    if not vm.disks:
        raise KeyError(f"VM {vm.name} has no disks")
    if disk_key is None:
        return vm.disks[0]
    disk = vm.disk(int(disk_key))
    if disk is None:
        raise KeyError(f"VM {vm.name} has no disk with key {disk_key}")
    return disk


def read_disk_bytes(vc: FakeVCenter, vm: Any, disk_key: int | None = None, link: int = -1) -> bytes:
    """The bytes at rest of one disk link (the top one by default), as a datastore download gives them.

    `vm` is a moId, a MoRef or the model; `disk_key` the VirtualDisk key (first disk when None).
    Compare with `harness.fakevc.disks.CANARY`: it appears only in plaintext.
    """
    with vc.lock:
        return bytes(_disk(_vm(vc, vm), disk_key).chain[link].data)


def read_disk_plaintext(vc: FakeVCenter, vm: Any, disk_key: int | None = None, link: int = -1) -> bytes:
    """The same link read through its key (one KMIP Get): what the guest sees."""
    with vc.lock:
        target = _disk(_vm(vc, vm), disk_key).chain[link]
        return target.read_plain(keys.kek(vc, target.key) if target.key else None)


def disk_files(vc: FakeVCenter, vm: Any) -> list[tuple[str, int, tuple[str, str] | None]]:
    """(path, size, key) of every file the VM owns: for evidence of what lies on the datastore."""
    with vc.lock:
        return [(link.path, link.size, link.key) for link in _vm(vc, vm).all_disk_files()]


def _datastore_from_path(vc: FakeVCenter, path: str | None, default: Any) -> Datastore:
    if path and path.startswith("["):
        name = path[1:path.index("]")]
        for ds in vc.datacenter.datastore_folder.members:
            if ds.name == name:
                return ds
        raise vim.fault.InvalidDatastorePath(datastorePath=path, msg=f"Invalid datastore path '{path}'.")
    return default


def create_vm(ctx: CallContext, folder: Folder, config: Any, pool_ref: Any, host_ref: Any) -> VirtualMachine:
    """CreateVM_Task: a VM with the disks the spec adds (real bytes, unencrypted)."""
    vc = folder.vc
    if not config.name:
        raise vmodl.fault.InvalidArgument(invalidProperty="config.name", msg="A specified parameter was not correct: config.name")
    if any(vm.name == config.name and vm.parent_mo is folder for vm in vc.vms()):
        raise vim.fault.DuplicateName(name=config.name, object=folder.ref, msg=f"The name '{config.name}' already exists.")
    pool = vc.lookup(pool_ref)
    host = vc.lookup(host_ref) if host_ref is not None else maintenance.usable(pool.owner_mo.hosts)[0]
    maintenance.refuse_placement(host, f"creating '{config.name}'")
    default_ds = host.datastores[0]
    datastore = _datastore_from_path(vc, config.files.vmPathName if config.files else None, default_ds)
    disks: list[VmDisk] = []
    for change in config.deviceChange or []:
        device = change.device
        if change.operation == "add" and isinstance(device, vim.vm.device.VirtualDisk):
            size = (device.capacityInBytes or (device.capacityInKB or 64) * 1024)
            index = len(disks)
            disks.append(VmDisk(key=2000 + index, label=f"Hard disk {index + 1}",
                                chain=new_disk_chain(vc, config.name, datastore, size, index)))
    vm = VirtualMachine(vc, config.name, folder, pool, host, datastore, disks)
    vm.annotation = config.annotation or ""
    folder.add(vm)
    return vm

# ---- API handlers (registered in harness/fakevc/dispatch.py HANDLERS) --------------------------
def Destroy_Task(ctx: CallContext, vm: VirtualMachine) -> Any:  # noqa: N802 (WSDL name)
    return vm.vc.tasks.run(ctx, vm, "VirtualMachine.destroy", lambda: destroy(ctx, vm))


def UnregisterVM(ctx: CallContext, vm: VirtualMachine) -> None:  # noqa: N802
    unregister(ctx, vm)


def MarkAsTemplate(ctx: CallContext, vm: VirtualMachine) -> None:  # noqa: N802
    mark_as_template(ctx, vm)


def MarkAsVirtualMachine(ctx: CallContext, vm: VirtualMachine, pool: Any, host: Any = None) -> None:  # noqa: N802
    mark_as_vm(ctx, vm, pool, host)


def CreateVM_Task(ctx: CallContext, folder: Folder, config: Any, pool: Any, host: Any = None) -> Any:  # noqa: N802
    return folder.vc.tasks.run(ctx, folder, "Folder.createVm",
                               lambda: create_vm(ctx, folder, config, pool, host).ref)
