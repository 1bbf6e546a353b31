"""VM lifecycle and the VM state an operator would look at."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyVmomi import vim, vmodl

from harness.vsphere.errors import TaskFailed

KeyRef = tuple[str, str]  # (provider id, key id)

STATE_PATHS = ["name", "config.keyId", "runtime.powerState", "runtime.host", "config.migrateEncryption",
               "config.hardware.device", "snapshot", "config.template", "runtime.cryptoState"]


def key_of(key_id: Any) -> KeyRef | None:
    """A CryptoKeyId as (provider, key) — None when unset (unencrypted)."""
    if key_id is None:
        return None
    provider = key_id.providerId.id if key_id.providerId else ""
    return (provider, key_id.keyId)


@dataclass(frozen=True)
class VmState:
    """What a refusal must leave unchanged, and what most rules decide on."""
    name: str
    key: KeyRef | None
    power: str
    host: str | None
    migrate_encryption: str | None
    disk_keys: tuple[KeyRef | None, ...]
    snapshot_count: int
    template: bool

    @property
    def encrypted(self) -> bool:
        return self.key is not None


def _disks(devices: list[Any] | None) -> list[Any]:
    return [d for d in devices or [] if isinstance(d, vim.vm.device.VirtualDisk)]


def _count_snapshots(info: Any) -> int:
    def count(trees: list[Any]) -> int:
        return sum(1 + count(t.childSnapshotList or []) for t in trees or [])
    return count(info.rootSnapshotList) if info else 0


def state(client: Any, vm: Any, label: str | None = None, phase: str = "observed") -> VmState:
    """Read a VM's encryption-relevant state in one round trip (recorded as evidence if labelled)."""
    props = client.read(vm, STATE_PATHS, label=label, phase=phase)
    host = props.get("runtime.host")
    return VmState(
        name=props.get("name", ""), key=key_of(props.get("config.keyId")),
        power=props.get("runtime.powerState", "unknown"), host=host._moId if host is not None else None,
        migrate_encryption=props.get("config.migrateEncryption"),
        disk_keys=tuple(key_of(d.backing.keyId) if hasattr(d.backing, "keyId") else None
                        for d in _disks(props.get("config.hardware.device"))),
        snapshot_count=_count_snapshots(props.get("snapshot")), template=bool(props.get("config.template")))


def disks(client: Any, vm: Any) -> list[Any]:
    return _disks(client.read(vm, ["config.hardware.device"]).get("config.hardware.device"))


def create_vm(client: Any, place: Any, name: str, annotation: str, disk_kib: int = 64, disks_count: int = 1,
              host: Any = None) -> Any:
    """CreateVM_Task: a small powered-off VM with `disks_count` thin disks on the run's datastore."""
    devices = [vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create",
                                               device=vim.vm.device.VirtualDisk(
                                                   key=-(i + 1), capacityInKB=disk_kib, controllerKey=1000, unitNumber=i,
                                                   backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                                                       diskMode="persistent", thinProvisioned=True, fileName="")))
               for i in range(disks_count)]
    controller = vim.vm.device.VirtualDeviceSpec(operation="add", device=vim.vm.device.VirtualLsiLogicController(
        key=1000, busNumber=0, sharedBus="noSharing"))
    spec = vim.vm.ConfigSpec(name=name, annotation=annotation, guestId="otherLinux64Guest", memoryMB=64, numCPUs=1,
                             files=vim.vm.FileInfo(vmPathName=f"[{place.datastore_name}]"),
                             deviceChange=[controller, *devices])
    kwargs = {"config": spec, "pool": place.pool}
    if host is None and getattr(place, "pin_host", False) and place.hosts:
        host = place.hosts[0]
    if host is not None:
        kwargs["host"] = host
    return client.invoke(place.vm_folder, "CreateVM_Task", **kwargs)


def power_on(client: Any, vm: Any) -> None:
    client.invoke(vm, "PowerOnVM_Task")


def power_off(client: Any, vm: Any) -> None:
    client.invoke(vm, "PowerOffVM_Task")


def suspend(client: Any, vm: Any) -> None:
    client.invoke(vm, "SuspendVM_Task")


def ensure_powered_off(client: Any, vm: Any) -> None:
    """Powered on or suspended -> off (PowerOffVM_Task also discards a suspended state)."""
    if client.read(vm, ["runtime.powerState"]).get("runtime.powerState") in ("poweredOn", "suspended"):
        power_off(client, vm)


def _already_gone(err: Exception) -> bool:
    """The VM vanished under us (another cleanup, a sweep): directly or as the fault of a task."""
    fault = err.fault if isinstance(err, TaskFailed) else err
    return isinstance(fault, vmodl.fault.ManagedObjectNotFound)


def destroy(client: Any, vm: Any) -> bool:
    """Power off and destroy; False when the VM is already gone (cleanup tolerates that)."""
    try:
        ensure_powered_off(client, vm)
    except (vmodl.fault.ManagedObjectNotFound, TaskFailed) as err:
        if _already_gone(err):
            return False
        raise
    return remove(client, vm)


def remove(client: Any, vm: Any) -> bool:
    """Destroy_Task alone (the caller powered the VM off); False when the VM is already gone."""
    try:
        client.invoke(vm, "Destroy_Task")
        return True
    except (vmodl.fault.ManagedObjectNotFound, TaskFailed) as err:
        if _already_gone(err):
            return False
        raise


def mark_as_template(client: Any, vm: Any) -> None:
    client.invoke(vm, "MarkAsTemplate")


def exists(client: Any, vm: Any) -> bool:
    try:
        client.read(vm, ["name"])
        return True
    except vmodl.fault.ManagedObjectNotFound:
        return False


def reconfigure(client: Any, vm: Any, spec: Any) -> None:
    client.invoke(vm, "ReconfigVM_Task", spec=spec)


def set_migrate_encryption(client: Any, vm: Any, value: str) -> None:
    reconfigure(client, vm, vim.vm.ConfigSpec(migrateEncryption=value))
