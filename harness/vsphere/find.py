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
    pin_host: bool = False   # the inventory chose the hosts: VMs are created on hosts[0], not where vCenter likes


def by_name(client: Any, vim_type: type, name: str | None) -> Any:
    """The object of a type with that name (the first of the type when name is None)."""
    found = retrieve_all(client, vim_type, ["name"])
    for obj, props in found.values():
        if name is None or props.get("name") == name:
            return obj
    kind = vim_type.__name__.split(".")[-1]
    raise NotFoundInInventory(f"vCenter {client.name}: no {kind} named {name!r}")


def placement(client: Any, datacenter: str | None, cluster: str | None, *, datastore: str | None = None,
              vm_folder: str | None = None, resource_pool: str | None = None,
              hosts: list[str] | tuple[str, ...] = ()) -> Placement:
    """The datacenter, cluster, pool, folder, datastore and hosts a run uses on one vCenter.

    Each of datastore, vm_folder, resource_pool and hosts is the inventory's choice when given (a
    name the vCenter must have: NotFoundInInventory otherwise), else the default: the datastore
    with most free space, the datacenter's VM folder, the cluster's root pool, all its hosts. Hosts
    in maintenance mode or not connected are left out either way (a VM cannot be placed or powered on there).
    """
    dc = by_name(client, vim.Datacenter, datacenter)
    dc_props = client.read(dc, ["vmFolder", "datastore"])
    cl = by_name(client, vim.ClusterComputeResource, cluster)
    cl_props = client.read(cl, ["resourcePool", "host", "datastore"])
    datastores = list(cl_props.get("datastore") or dc_props.get("datastore") or [])
    if not datastores:
        raise NotFoundInInventory(f"vCenter {client.name}: cluster {cluster!r} has no datastore")
    ds_props = client.read_many(datastores, vim.Datastore, ["name", "summary.freeSpace"])
    if datastore:
        chosen = [d for d in datastores if ds_props.get(d._moId, {}).get("name") == datastore]
        if not chosen:
            raise NotFoundInInventory(f"vCenter {client.name}: cluster {cluster!r} has no datastore named {datastore!r}")
        store = chosen[0]
    else:
        store = max(datastores, key=lambda d: ds_props.get(d._moId, {}).get("summary.freeSpace", 0))
    pool = by_name(client, vim.ResourcePool, resource_pool) if resource_pool else cl_props["resourcePool"]
    folder = by_name(client, vim.Folder, vm_folder) if vm_folder else dc_props["vmFolder"]
    return Placement(datacenter=dc, cluster=cl, pool=pool, vm_folder=folder, datastore=store,
                     datastore_name=ds_props[store._moId]["name"],
                     hosts=_usable_hosts(client, list(cl_props.get("host") or []), hosts, cluster),
                     pin_host=bool(hosts))


def placement_for(client: Any, entry: Any) -> Placement:
    """`placement` with every choice an inventory vCenter entry makes."""
    return placement(client, entry.datacenter, entry.cluster, datastore=entry.datastore, vm_folder=entry.vm_folder,
                     resource_pool=entry.resource_pool, hosts=tuple(entry.hosts))


def _usable_hosts(client: Any, members: list[Any], wanted: tuple[str, ...] | list[str], cluster: str | None) -> tuple:
    """The inventory cluster's hosts a run may use: the inventory's `hosts` (else all of the cluster's),
    connected and not in maintenance mode. Nothing outside this tuple is ever chosen for a test:
    a disconnected host cannot run a VM and a maintenance-mode host is being worked on
    (HostRuntimeInfo.connectionState / inMaintenanceMode, vSphere Web Services API reference)."""
    paths = ["name", "runtime.inMaintenanceMode", "runtime.connectionState"]
    props = client.read_many(members, vim.HostSystem, paths) if members else {}
    names = {props.get(h._moId, {}).get("name"): h for h in members}
    missing = [n for n in wanted if n not in names]
    if missing:
        raise NotFoundInInventory(f"vCenter {client.name}: cluster {cluster!r} has no host named {missing[0]!r}")
    chosen = [names[n] for n in wanted] if wanted else members

    def why_not(host: Any) -> str | None:
        p = props.get(host._moId, {})
        if p.get("runtime.inMaintenanceMode"):
            return "in maintenance mode"
        state = p.get("runtime.connectionState")
        return None if state in (None, "connected") else f"connection state {state}"

    usable = [h for h in chosen if why_not(h) is None]
    skipped = {props.get(h._moId, {}).get("name"): why_not(h) for h in chosen if h not in usable}
    if skipped:
        client.recorder.note(f"hosts not used on {client.name}", skipped)
    return tuple(usable)


def all_hosts(client: Any) -> list[Any]:
    return [obj for obj, _ in retrieve_all(client, vim.HostSystem, ["name"]).values()]


def host_versions(client: Any, place: Placement, older_hosts: tuple[str, ...] | list[str] = ()) -> dict[str, tuple[Any, str]]:
    """host name -> (host, ESXi version) of the hosts the host-version rules may place VMs on: the inventory
    cluster's usable hosts (`place.hosts`) and the hosts outside it that the inventory names in
    `older_hosts`, looked up only in the inventory datacenter and usable (connected, not in maintenance).
    Any other host is someone else's: a run never creates a VM on it (issue 21)."""
    chosen = list(place.hosts)
    if older_hosts:
        found = retrieve_all(client, vim.HostSystem, ["name"], root=place.datacenter)
        by_name = {props.get("name"): obj for obj, props in found.values()}
        missing = [name for name in older_hosts if name not in by_name]
        if missing:
            raise NotFoundInInventory(f"vCenter {client.name}: older_hosts names {missing[0]!r}, which is not a host "
                                      f"of the inventory datacenter")
        known = {h._moId for h in chosen}
        named = [by_name[name] for name in older_hosts if by_name[name]._moId not in known]
        chosen += list(_usable_hosts(client, named, (), "older_hosts"))
    props = client.read_many(chosen, vim.HostSystem, ["name", "config.product.version"]) if chosen else {}
    return {props.get(h._moId, {}).get("name", h._moId): (h, props.get(h._moId, {}).get("config.product.version", ""))
            for h in chosen}


def by_moid(client: Any, vim_type: type, moid: str) -> Any:
    """A reference to an object known by its moId (e.g. from a ledger), bound to this client's session."""
    return vim_type(moid, client.si._stub)
