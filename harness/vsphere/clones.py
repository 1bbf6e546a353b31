"""Clones, migrations and instant clones, on one vCenter or across two (ServiceLocator)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyVmomi import vim

from harness.vsphere.crypto import key_id, policy_spec
from harness.vsphere.vms import KeyRef


@dataclass(frozen=True)
class Destination:
    """Where a clone or migration lands: the client of that vCenter and its placement."""
    client: Any
    place: Any
    locator: Any = None  # vim.ServiceLocator when the destination is another vCenter
    host: Any = None


def service_locator(dest_client: Any, url: str, user: str, password: str) -> Any:
    """A ServiceLocator for another vCenter (its instanceUuid read from that vCenter itself)."""
    instance = dest_client.content.about.instanceUuid
    return vim.ServiceLocator(instanceUuid=instance, url=url,
                              credential=vim.ServiceLocator.NamePassword(username=user, password=password))


def relocate_spec(dest: Destination, policy_id: str | None = None, crypto: Any = None,
                  profile: list[Any] | None = None) -> Any:
    """`profile` (an explicit ProfileSpec list, e.g. the empty profile) wins over `policy_id`."""
    spec = vim.vm.RelocateSpec(pool=dest.place.pool, datastore=dest.place.datastore, folder=dest.place.vm_folder)
    spec.host = dest.host or (dest.place.hosts[0] if dest.place.hosts else None)
    if dest.locator is not None:
        spec.service = dest.locator
    if profile is not None:
        spec.profile = profile
    elif policy_id is not None:
        spec.profile = policy_spec(policy_id)
    if crypto is not None:
        spec.cryptoSpec = crypto
    return spec


def crypto_change(kind: str | None, key: KeyRef | None = None) -> Any:
    """The CryptoSpec of a clone: encrypt/decrypt/shallow/deep/None (keep)."""
    if kind is None:
        return None
    if kind == "encrypt":
        return vim.encryption.CryptoSpecEncrypt(cryptoKeyId=key_id(key))
    if kind == "decrypt":
        return vim.encryption.CryptoSpecDecrypt()
    if kind == "shallow":
        return vim.encryption.CryptoSpecShallowRecrypt(newKeyId=key_id(key))
    if kind == "deep":
        return vim.encryption.CryptoSpecDeepRecrypt(newKeyId=key_id(key))
    raise ValueError(f"unknown crypto change {kind!r}")


def disk_locators(source_client: Any, vm: Any, dest: Destination, change: Any, profile: list[Any] | None) -> list[Any]:
    """One DiskLocator per source disk carrying the clone's crypto change and storage policy (API.md 3.1).

    Real vCenter wants the encryption policy on each disk being encrypted or recrypted, and the per-disk
    crypto in `location.disk[].backing.crypto` (7.0); the VM-level spec alone covers only VM home.
    """
    from harness.vsphere import vms
    locators = []
    for disk in vms.disks(source_client, vm):
        locator = vim.vm.RelocateSpec.DiskLocator(diskId=disk.key, datastore=dest.place.datastore)
        if profile is not None:
            locator.profile = profile
        if change is not None:
            locator.backing = vim.vm.RelocateSpec.DiskLocator.BackingSpec(crypto=change)
        locators.append(locator)
    return locators


def clone(source_client: Any, vm: Any, dest: Destination, name: str, annotation: str, *,
          crypto: str | None = None, key: KeyRef | None = None, policy_id: str | None = None,
          power_on: bool = False, template: bool = False, linked_from: Any = None) -> Any:
    """CloneVM_Task with an optional crypto change (config.crypto + storage policy on home and disks).

    A decrypt without a plain policy id carries the empty profile (as PowerCLI's Disable-VMEncryption does).
    """
    profile = policy_spec(policy_id) if policy_id is not None else (policy_spec(None) if crypto == "decrypt" else None)
    location = relocate_spec(dest, profile=profile)
    config = vim.vm.ConfigSpec(annotation=annotation)
    change = crypto_change(crypto, key)
    if change is not None:
        config.crypto = change
    if profile is not None:
        config.vmProfile = profile
    if (change is not None or profile is not None) and linked_from is None:
        location.disk = disk_locators(source_client, vm, dest, change, profile)
    spec = vim.vm.CloneSpec(location=location, template=template, powerOn=power_on, config=config)
    if linked_from is not None:
        spec.snapshot = linked_from
        location.diskMoveType = "createNewChildDiskBacking"
    return source_client.invoke(vm, "CloneVM_Task", folder=dest.place.vm_folder, name=name, spec=spec)


def host_placement(client: Any, place: Any, host: Any) -> Any:
    """`place` narrowed to one host: that host's own compute resource pool and datastore (a standalone
    host, e.g. an older ESXi outside the cluster, has a pool of its own)."""
    import dataclasses
    props = client.read(host, ["parent", "datastore"])
    parent = props.get("parent")
    pool = client.read(parent, ["resourcePool"]).get("resourcePool") if parent is not None else None
    datastores = list(props.get("datastore") or [])
    datastore = place.datastore if any(d._moId == place.datastore._moId for d in datastores) or not datastores \
        else datastores[0]
    name = client.read(datastore, ["name"]).get("name", place.datastore_name)
    return dataclasses.replace(place, cluster=parent or place.cluster, pool=pool or place.pool, datastore=datastore,
                               datastore_name=name, hosts=(host,))


def migrate(source_client: Any, vm: Any, dest: Destination, policy_id: str | None = None,
            crypto: Any = None, profile: list[Any] | None = None) -> None:
    """RelocateVM_Task to `dest` (another vCenter when it carries a ServiceLocator)."""
    source_client.invoke(vm, "RelocateVM_Task", spec=relocate_spec(dest, policy_id, crypto, profile))


def instant_clone(client: Any, vm: Any, name: str, place: Any, policy_id: str | None = None,
                  crypto: Any = None, profile: list[Any] | None = None) -> Any:
    """InstantClone_Task from a running VM; optional (refused) policy or crypto changes.

    `profile` is an explicit ProfileSpec list (e.g. `crypto.policy_spec(None)`, the empty profile).
    """
    location = vim.vm.RelocateSpec(folder=place.vm_folder, pool=place.pool, datastore=place.datastore)
    if profile is not None:
        location.profile = profile
    elif policy_id is not None:
        location.profile = policy_spec(policy_id)
    if crypto is not None:
        location.cryptoSpec = crypto
    return client.invoke(vm, "InstantClone_Task", spec=vim.vm.InstantCloneSpec(name=name, location=location))


def find_vm(client: Any, name: str) -> Any | None:
    """A VM by exact name on a vCenter (after a cross-vCenter operation), or None."""
    from harness.vsphere.props import retrieve_all
    for obj, props in retrieve_all(client, vim.VirtualMachine, ["name"]).values():
        if props.get("name") == name:
            return obj
    return None
