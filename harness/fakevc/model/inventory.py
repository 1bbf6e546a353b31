"""Inventory containers: folders, datacenters, resource pools and networks."""
from __future__ import annotations

from typing import Any

from pyVmomi import vim

from harness.fakevc.model.base import CallContext, ManagedEntity


class Folder(ManagedEntity):
    vim_type = vim.Folder
    moid_prefix = "group"

    def __init__(self, vc: Any, name: str, parent: ManagedEntity | None, child_types: list[str],
                 moid: str | None = None) -> None:
        super().__init__(vc, name, parent, moid)
        self.childType = child_types
        self.members: list[ManagedEntity] = []

    def add(self, entity: ManagedEntity) -> ManagedEntity:
        entity.parent_mo = self
        self.members.append(entity)
        return entity

    def remove(self, entity: ManagedEntity) -> None:
        if entity in self.members:
            self.members.remove(entity)

    def children(self) -> list[ManagedEntity]:
        return list(self.members)

    def p_childEntity(self) -> list:
        return [m.ref for m in self.members]

    def CreateFolder(self, ctx: CallContext, name: str) -> Any:
        if any(m.name == name for m in self.members):
            raise vim.fault.DuplicateName(name=name, object=self.ref, msg=f"The name '{name}' already exists.")
        return self.add(Folder(self.vc, name, self, list(self.childType))).ref


class Datacenter(ManagedEntity):
    vim_type = vim.Datacenter
    moid_prefix = "datacenter"

    def __init__(self, vc: Any, name: str, parent: Folder) -> None:
        super().__init__(vc, name, parent)
        self.vm_folder = Folder(vc, "vm", self, ["Folder", "VirtualMachine", "VirtualApp"])
        self.host_folder = Folder(vc, "host", self, ["Folder", "ComputeResource"])
        self.datastore_folder = Folder(vc, "datastore", self, ["Folder", "Datastore", "StoragePod"])
        self.network_folder = Folder(vc, "network", self, ["Folder", "Network"])

    def children(self) -> list[ManagedEntity]:
        return [self.vm_folder, self.host_folder, self.datastore_folder, self.network_folder]

    def p_vmFolder(self) -> Any:
        return self.vm_folder.ref

    def p_hostFolder(self) -> Any:
        return self.host_folder.ref

    def p_datastoreFolder(self) -> Any:
        return self.datastore_folder.ref

    def p_networkFolder(self) -> Any:
        return self.network_folder.ref

    def p_datastore(self) -> list:
        return [d.ref for d in self.datastore_folder.members]

    def p_network(self) -> list:
        return [n.ref for n in self.network_folder.members]


class ResourcePool(ManagedEntity):
    vim_type = vim.ResourcePool
    moid_prefix = "resgroup"

    def __init__(self, vc: Any, name: str, owner: ManagedEntity) -> None:
        super().__init__(vc, name, owner)
        self.owner_mo = owner
        self.vms: list[ManagedEntity] = []

    def p_owner(self) -> Any:
        return self.owner_mo.ref

    def p_vm(self) -> list:
        return [vm.ref for vm in self.vms]

    def p_resourcePool(self) -> list:
        return []


class Network(ManagedEntity):
    vim_type = vim.Network
    moid_prefix = "network"
