"""Clones, migrations and instant clones, on one vCenter or across two (ServiceLocator)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyVmomi import vim, vmodl

from harness.vsphere import clone_shapes
from harness.vsphere.crypto import key_id, policy_spec
from harness.vsphere.errors import EnvironmentFault, TaskFailed, fault_class_name, fault_message
from harness.vsphere.vms import KeyRef


@dataclass(frozen=True)
class Destination:
    """Where a clone or migration lands: the client of that vCenter and its placement."""
    client: Any
    place: Any
    locator: Any = None  # vim.ServiceLocator when the destination is another vCenter
    host: Any = None


def service_locator(dest_client: Any, url: str, user: str, password: str, thumbprint: str | None = None) -> Any:
    """A ServiceLocator for another vCenter (its instanceUuid read from that vCenter itself).

    `thumbprint`: the destination certificate's SHA-1 (harness/vsphere/thumbprints.py), needed when the
    vCenters do not trust each other (community.vmware `vmware_guest_cross_vc_clone`, API.md 3.2/11).
    """
    instance = dest_client.content.about.instanceUuid
    locator = vim.ServiceLocator(instanceUuid=instance, url=url,
                                 credential=vim.ServiceLocator.NamePassword(username=user, password=password))
    if thumbprint:
        locator.sslThumbprint = thumbprint
    return locator


def cross_destination(environment: Any, dest_client: Any, place: Any, host: Any = None,
                      with_thumbprint: bool = True) -> Destination:
    """A Destination on another vCenter of the inventory: a ServiceLocator with the inventory's credential
    and (unless told otherwise) the destination's certificate thumbprint, recorded as evidence."""
    entry = environment.inventory.vcenter(dest_client.name)
    thumbprint = None
    if with_thumbprint:
        thumbprint, source = environment.locator_thumbprint(entry.name)
        dest_client.recorder.note(f"sslThumbprint of {entry.name} for the ServiceLocator",
                                  {"sha1": thumbprint, "source": source})
    locator = service_locator(dest_client, url=environment.url_of(entry), user=entry.user,
                              password=entry.password(), thumbprint=thumbprint)
    return Destination(client=dest_client, place=place, locator=locator, host=host)


def relocate_spec(dest: Destination, policy_id: str | None = None, crypto: Any = None,
                  profile: list[Any] | None = None) -> Any:
    """`profile` (an explicit ProfileSpec list, e.g. the empty profile) wins over `policy_id`."""
    spec = _location(dest.place, policy_id, crypto, profile)
    spec.host = dest.host or (dest.place.hosts[0] if dest.place.hosts else None)
    if dest.locator is not None:
        spec.service = dest.locator
    return spec


def _location(place: Any, policy_id: str | None, crypto: Any, profile: list[Any] | None) -> Any:
    """The RelocateSpec every operation starts from: `place`'s pool, datastore and folder, the storage
    policy (an explicit ProfileSpec list wins over `policy_id`) and the CryptoSpec, if any."""
    spec = vim.vm.RelocateSpec(pool=place.pool, datastore=place.datastore, folder=place.vm_folder)
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


def disk_locators(source_client: Any, vm: Any, dest: Destination, profile: list[Any] | None) -> list[Any]:
    """One DiskLocator per source disk carrying the clone's storage policy; its crypto is added by the
    inventory's `clone_crypto_shape` (harness/vsphere/clone_shapes.py has the sources)."""
    from harness.vsphere import vms
    locators = []
    for disk in vms.disks(source_client, vm):
        locator = vim.vm.RelocateSpec.DiskLocator(diskId=disk.key, datastore=dest.place.datastore)
        if profile is not None:
            locator.profile = profile
        locators.append(locator)
    return locators


class CloneShapeRefused(EnvironmentFault):
    """The vCenter refused the shape of the harness's clone spec, not the crypto change: no verdict."""


def clone(source_client: Any, vm: Any, dest: Destination, name: str, annotation: str, *,
          crypto: str | None = None, key: KeyRef | None = None, policy_id: str | None = None,
          power_on: bool = False, template: bool = False, linked_from: Any = None,
          tpm_provision_policy: str | None = None) -> Any:
    """CloneVM_Task with an optional crypto change.

    The storage policy goes on VM home (`location.profile`) and on each disk (`location.disk[].profile`),
    never twice (`config.vmProfile` is left out); the CryptoSpec goes where the source vCenter's
    `clone_crypto_shape` says (default: `config.crypto` plus the same spec in each disk's `backing.crypto`,
    as PowerCLI's VMEncryption module and vm-operator do; clone_shapes.py). A decrypt without a plain
    policy id carries the empty profile, as PowerCLI's Disable-VMEncryption does. A fault naming the
    disk locator's crypto (terraform-provider-vsphere#2241) means the shape, not the product, was refused:
    an environment error naming the option.
    """
    profile = policy_spec(policy_id) if policy_id is not None else (policy_spec(None) if crypto == "decrypt" else None)
    location = relocate_spec(dest, profile=profile)
    config = vim.vm.ConfigSpec(annotation=annotation)
    change = crypto_change(crypto, key)
    shape = getattr(source_client, "clone_crypto_shape", clone_shapes.DEFAULT)
    locators: list[Any] = []
    if (change is not None or profile is not None) and linked_from is None:
        locators = location.disk = disk_locators(source_client, vm, dest, profile)
    clone_shapes.apply(shape, config, location, change, locators)
    spec = vim.vm.CloneSpec(location=location, template=template, powerOn=power_on, config=config)
    if tpm_provision_policy is not None:   # "copy" / "replace", vSphere API 8.0.0.1 (VTPM-CLONE-POLICY)
        spec.tpmProvisionPolicy = tpm_provision_policy
    if linked_from is not None:
        spec.snapshot = linked_from
        location.diskMoveType = "createNewChildDiskBacking"
    try:
        return source_client.invoke(vm, "CloneVM_Task", folder=dest.place.vm_folder, name=name, spec=spec)
    except (TaskFailed, vmodl.MethodFault) as err:
        fault = getattr(err, "fault", err)
        if change is not None and clone_shapes.refused_shape(fault):
            raise CloneShapeRefused(
                f"{source_client.name} refused the clone spec's shape ({fault_class_name(fault)}: "
                f"{fault_message(fault)}) with clone_crypto_shape: {shape}; try another value of "
                f"vcenters.{source_client.name}.clone_crypto_shape ({', '.join(clone_shapes.SHAPES)})") from err
        raise


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


def clone_or_migrate(source_client: Any, vm: Any, dest: Destination, operation: str, name: str,
                     annotation: str) -> None:
    """The rules that hold for both ways of taking a VM to `dest`: `clone` copies it as `name`,
    `migrate` moves it (it keeps its own name; `name` is then that name)."""
    if operation == "clone":
        clone(source_client, vm, dest, name, annotation)
    elif operation == "migrate":
        migrate(source_client, vm, dest)
    else:
        raise ValueError(f"unknown operation {operation!r} (clone or migrate)")


def instant_clone(client: Any, vm: Any, name: str, place: Any, policy_id: str | None = None,
                  crypto: Any = None, profile: list[Any] | None = None) -> Any:
    """InstantClone_Task from a running VM; optional (refused) policy or crypto changes.

    `profile` is an explicit ProfileSpec list (e.g. `crypto.policy_spec(None)`, the empty profile).
    """
    location = _location(place, policy_id, crypto, profile)
    return client.invoke(vm, "InstantClone_Task", spec=vim.vm.InstantCloneSpec(name=name, location=location))


def find_vm(client: Any, name: str) -> Any | None:
    """A VM by exact name on a vCenter (after a cross-vCenter operation), or None."""
    from harness.vsphere.props import retrieve_all
    for obj, props in retrieve_all(client, vim.VirtualMachine, ["name"]).values():
        if props.get("name") == name:
            return obj
    return None


def clone_with_spec(client: Any, vm: Any, folder: Any, name: str, spec: Any) -> Any:
    """CloneVM_Task with a CloneSpec the caller assembled: for tests that must send a shape `clone()` is
    not configured for (e.g. a disk policy without backing.crypto, terraform-provider-vsphere#2241)."""
    return client.invoke(vm, "CloneVM_Task", folder=folder, name=name, spec=spec)
