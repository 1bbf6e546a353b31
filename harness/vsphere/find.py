"""Finding the inventory objects a run works in: datacenter, cluster, hosts, datastore, folders."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyVmomi import vim

from harness.vsphere.props import retrieve_all


class NotFoundInInventory(LookupError):
    """The inventory names something the vCenter does not have."""


@dataclass(frozen=True)
class Placement:
    """Where scratch objects go on one vCenter."""
    datacenter: Any
    cluster: Any
    pool: Any
    vm_folder: Any
    datastore: Any
    datastore_name: str
    hosts: tuple[Any, ...]


def by_name(client: Any, vim_type: type, name: str | None) -> Any:
    """The object of a type with that name (the first of the type when name is None)."""
    found = retrieve_all(client, vim_type, ["name"])
    for obj, props in found.values():
        if name is None or props.get("name") == name:
            return obj
    kind = vim_type.__name__.split(".")[-1]
    raise NotFoundInInventory(f"vCenter {client.name}: no {kind} named {name!r}")


def placement(client: Any, datacenter: str | None, cluster: str | None) -> Placement:
    """The datacenter, cluster, pool, folder, datastore and hosts a run uses on one vCenter."""
    dc = by_name(client, vim.Datacenter, datacenter)
    dc_props = client.read(dc, ["vmFolder", "datastore"])
    cl = by_name(client, vim.ClusterComputeResource, cluster)
    cl_props = client.read(cl, ["resourcePool", "host", "datastore"])
    datastores = list(cl_props.get("datastore") or dc_props.get("datastore") or [])
    if not datastores:
        raise NotFoundInInventory(f"vCenter {client.name}: cluster {cluster!r} has no datastore")
    ds_props = client.read_many(datastores, vim.Datastore, ["name", "summary.freeSpace"])
    datastore = max(datastores, key=lambda d: ds_props.get(d._moId, {}).get("summary.freeSpace", 0))
    return Placement(datacenter=dc, cluster=cl, pool=cl_props["resourcePool"], vm_folder=dc_props["vmFolder"],
                     datastore=datastore, datastore_name=ds_props[datastore._moId]["name"],
                     hosts=tuple(usable_hosts(client, list(cl_props.get("host") or []))))


def usable_hosts(client: Any, hosts: list[Any]) -> list[Any]:
    """The hosts a run may place VMs on: not in maintenance mode (nothing can be powered on or
    provisioned there: HostSystem.EnterMaintenanceMode_Task in the API reference)."""
    if not hosts:
        return []
    props = client.read_many(hosts, vim.HostSystem, ["runtime.inMaintenanceMode"])
    return [h for h in hosts if not props.get(h._moId, {}).get("runtime.inMaintenanceMode")]


def all_hosts(client: Any) -> list[Any]:
    return [obj for obj, _ in retrieve_all(client, vim.HostSystem, ["name"]).values()]


def host_versions(client: Any) -> dict[str, tuple[Any, str]]:
    """host name -> (host, ESXi version), for the host-version rules."""
    found = retrieve_all(client, vim.HostSystem, ["name", "config.product.version"])
    return {props["name"]: (obj, props.get("config.product.version", "")) for obj, props in found.values()}
