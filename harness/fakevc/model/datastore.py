"""Datastores with a capacity and free space that disk operations consume."""
from __future__ import annotations

from typing import Any

from pyVmomi import vim

from harness.fakevc.model.base import ManagedEntity
from harness.fakevc.wire import complete

MIB = 1024 * 1024


class Datastore(ManagedEntity):
    vim_type = vim.Datastore
    moid_prefix = "datastore"

    def __init__(self, vc: Any, name: str, parent: ManagedEntity, capacity_bytes: int) -> None:
        super().__init__(vc, name, parent)
        self.capacity = capacity_bytes
        self.reserved = 0   # bytes held by something other than disks (filled-datastore fault injection)

    @property
    def used(self) -> int:
        return sum(d.size for vm in self.vc.vms() for d in vm.all_disk_files() if d.datastore is self) + self.reserved

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.used)

    def p_summary(self) -> Any:
        return complete(vim.Datastore.Summary(
            datastore=self.ref, name=self.name, url=f"ds:///vmfs/volumes/{self.moid}/",
            capacity=self.capacity, freeSpace=self.free, accessible=True, type="VMFS"))

    def p_info(self) -> Any:
        return complete(vim.host.VmfsDatastoreInfo(name=self.name, url=f"ds:///vmfs/volumes/{self.moid}/",
                                                   freeSpace=self.free, maxFileSize=self.capacity))

    def p_vm(self) -> list:
        return [vm.ref for vm in self.vc.vms() if any(d.datastore is self for d in vm.all_disk_files())]

    def p_host(self) -> list:
        hosts = [h for h in self.vc.hosts() if self in h.datastores]
        return [vim.Datastore.HostMount(key=h.ref, mountInfo=complete(vim.host.MountInfo(accessMode="readWrite")))
                for h in hosts]
