"""VirtualMachine and Snapshot: state, properties, and API entry points.

State and properties only: the API methods that change a VM (power, snapshots, reconfigure,
clone, relocate, ...) are behaviours, registered in `harness/fakevc/dispatch.py` HANDLERS.

Disks are chains of `DiskFile` links (base first, the running delta last). A snapshot freezes the
chain as it was (per disk) and records the VM home key; a linked clone reads its parent's links
through `shared` copies. Each link carries its own key, so a chain can be on mixed keys after a
recrypt that stopped part-way (SNAP-PARTIAL).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pyVmomi import vim

from harness.fakevc.disks import DiskFile, KeyRef
from harness.fakevc.model.base import MO, CallContext, ManagedEntity
from harness.fakevc.model.host import key_id
from harness.fakevc.model.task import now
from harness.fakevc.model.vtpm import VirtualTpm
from harness.fakevc.wire import complete

DISK_CONTROLLER_KEY = 1000


@dataclass(eq=False)
class VmDisk:
    """A virtual disk device: its chain of files, base first, the running delta last."""
    key: int
    label: str
    chain: list[DiskFile]
    profile: str | None = None
    unit: int | None = None

    @property
    def top(self) -> DiskFile:
        return self.chain[-1]

    @property
    def capacity(self) -> int:
        return self.chain[0].size


def _backing(files: list[DiskFile]) -> Any:
    """A FlatVer2 backing for a chain, each link pointing to its parent (keys per link)."""
    backing = None
    for link in files:
        backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
            fileName=link.path, diskMode="persistent", thinProvisioned=True,
            datastore=link.datastore.ref if link.datastore is not None else None,
            keyId=key_id(*link.key) if link.key else None, parent=backing)
    return backing


def _hardware(disks: list[tuple[VmDisk, list[DiskFile]]], num_cpu: int = 1, memory_mb: int = 128) -> Any:
    devices = [vim.vm.device.VirtualLsiLogicController(key=DISK_CONTROLLER_KEY, busNumber=0,
                                                       sharedBus="noSharing",
                                                       deviceInfo=vim.Description(label="SCSI controller 0", summary="LSI Logic"))]
    for index, (disk, chain) in enumerate(disks):
        devices.append(vim.vm.device.VirtualDisk(
            key=disk.key, controllerKey=DISK_CONTROLLER_KEY, unitNumber=disk.unit if disk.unit is not None else index,
            capacityInKB=disk.capacity // 1024, capacityInBytes=disk.capacity,
            deviceInfo=vim.Description(label=disk.label, summary=f"{disk.capacity // 1024} KB"),
            backing=_backing(chain)))
    return complete(vim.vm.VirtualHardware(numCPU=num_cpu, memoryMB=memory_mb, device=devices))


class Snapshot(MO):
    """A snapshot: its own config (with the key it is on) and children; branches make a tree."""
    vim_type = vim.vm.Snapshot
    moid_prefix = "snapshot"

    def __init__(self, vc: Any, vm: "VirtualMachine", name: str, description: str, memory: bool,
                 parent: "Snapshot | None", disks: list[tuple[VmDisk, list[DiskFile]]]) -> None:
        super().__init__(vc)
        self.vm = vm
        self.name = name
        self.description = description
        self.memory = memory
        self.parent = parent
        self.children_snaps: list[Snapshot] = []
        self.disks = disks            # per disk device: the chain as it was at snapshot time
        self.home_key: KeyRef | None = vm.key
        self.created = now()
        self.power_state = vm.power_state
        self.snap_id = vm.next_snapshot_id()

    @property
    def chains(self) -> list[list[DiskFile]]:
        return [chain for _, chain in self.disks]

    @property
    def key(self) -> KeyRef | None:
        """The key the snapshot's files are on: the home key recorded for it (rewritten by rekeys)."""
        return self.home_key

    def p_config(self) -> Any:
        cfg = self.vm.config_info(disks=self.disks)
        cfg.keyId = key_id(*self.home_key) if self.home_key else None
        return cfg

    def p_childSnapshot(self) -> list:
        return [c.ref for c in self.children_snaps]

    def p_vm(self) -> Any:
        return self.vm.ref

    def tree(self) -> Any:
        return complete(vim.vm.SnapshotTree(
            snapshot=self.ref, vm=self.vm.ref, name=self.name, description=self.description,
            id=self.snap_id, createTime=self.created, state=self.power_state, quiesced=False,
            childSnapshotList=[c.tree() for c in self.children_snaps]))

    def RenameSnapshot(self, ctx: CallContext, name: str | None = None, description: str | None = None) -> None:
        if name:
            self.name = name
        if description is not None:
            self.description = description


class VirtualMachine(ManagedEntity):
    vim_type = vim.VirtualMachine
    moid_prefix = "vm"

    def __init__(self, vc: Any, name: str, folder: ManagedEntity, pool: Any, host: Any, datastore: Any,
                 disks: list[VmDisk] | None = None, template: bool = False) -> None:
        super().__init__(vc, name, folder)
        self.pool = pool
        self.host = host
        self.datastore = datastore
        self.disks: list[VmDisk] = disks or []
        self.template = template
        self.power_state = "poweredOff"
        self.key: KeyRef | None = None            # VM home key (config.keyId)
        self.migrate_encryption = "opportunistic"
        self.home_profile: str | None = None       # storage policy id of the VM home
        self.annotation = ""
        self.uuid = str(uuid.uuid4())
        self.instance_uuid = str(uuid.uuid4())
        self.num_cpu = 1
        self.memory_mb = 128
        self.root_snapshots: list[Snapshot] = []
        self.current_snapshot: Snapshot | None = None
        self.linked_parent: VirtualMachine | None = None   # set on linked clones
        self.instant_clone_family: bool = False             # parent or child of an instant clone of an encrypted VM
        self.locked = False
        self._snapshot_ids = 0
        self.extra_config: dict[str, str] = {}
        self.firmware = "bios"                     # config.firmware (a vTPM needs "efi")
        self.vtpm: VirtualTpm | None = None        # the VirtualTPM device, if any (behaviours/vtpm.py)
        if pool is not None:
            pool.vms.append(self)

    # ---- state helpers ----------------------------------------------------------------------
    def next_snapshot_id(self) -> int:
        self._snapshot_ids += 1
        return self._snapshot_ids

    def all_snapshots(self) -> list[Snapshot]:
        """Every snapshot, depth first (a parent before its children)."""
        out: list[Snapshot] = []

        def walk(nodes: list[Snapshot]) -> None:
            for node in nodes:
                out.append(node)
                walk(node.children_snaps)

        walk(self.root_snapshots)
        return out

    def has_snapshot_tree(self) -> bool:
        """More than one branch: several roots, or a snapshot with several children (API.md 4)."""
        return len(self.root_snapshots) > 1 or any(len(s.children_snaps) > 1 for s in self.all_snapshots())

    def disk(self, key: int) -> VmDisk | None:
        return next((d for d in self.disks if d.key == key), None)

    def links_in_order(self) -> list[DiskFile]:
        """Every link this VM reads (shared ones too), base first, each once."""
        seen: dict[int, DiskFile] = {}
        for snap in self.all_snapshots():
            for chain in snap.chains:
                for link in chain:
                    seen.setdefault(id(link), link)
        for disk in self.disks:
            for link in disk.chain:
                seen.setdefault(id(link), link)
        return list(seen.values())

    def all_disk_files(self) -> list[DiskFile]:
        """Every disk file this VM owns (shared linked-clone bases are counted by their owner)."""
        return [link for link in self.links_in_order() if not link.shared]

    def needed_keys(self) -> set[KeyRef]:
        """Every key a VM needs: its home key, each disk link's key, and its snapshots' keys."""
        keys: set[KeyRef] = set()
        if self.key:
            keys.add(self.key)
        for link in self.all_disk_files():
            if link.key:
                keys.add(link.key)
        for disk in self.disks:
            for link in disk.chain:          # a linked clone's shared base needs the parent's key too
                if link.key:
                    keys.add(link.key)
        for snap in self.all_snapshots():
            if snap.home_key:
                keys.add(snap.home_key)
        return keys

    def keys_in_use(self) -> set[KeyRef]:
        """The home key, every snapshot's home key and every link's key."""
        keys = {link.key for link in self.links_in_order() if link.key}
        keys.update(s.home_key for s in self.all_snapshots() if s.home_key)
        if self.key:
            keys.add(self.key)
        return keys

    def mixed_keys(self) -> bool:
        """True when encrypted links or snapshots are on more than one key (a part-way recrypt)."""
        if not self.encrypted:
            return False
        snap_keys = {s.home_key for s in self.all_snapshots() if s.home_key}
        return bool(snap_keys - {self.key}) or any(
            len({link.key for link in disk.chain if link.key}) > 1 for disk in self.disks)

    @property
    def encrypted(self) -> bool:
        return self.key is not None

    # ---- properties -------------------------------------------------------------------------
    def config_info(self, disks: list[tuple[VmDisk, list[DiskFile]]] | None = None) -> Any:
        disks = disks if disks is not None else [(d, d.chain) for d in self.disks]
        hardware = _hardware(disks, self.num_cpu, self.memory_mb)
        if self.vtpm is not None:
            hardware.device.append(self.vtpm.device())
        return complete(vim.vm.ConfigInfo(
            changeVersion=str(len(self.vc.call_log)), modified=now(), name=self.name,
            guestFullName="Other Linux (64-bit)", version="vmx-17", uuid=self.uuid,
            instanceUuid=self.instance_uuid, template=self.template, guestId="otherLinux64Guest",
            alternateGuestName="", annotation=self.annotation,
            files=complete(vim.vm.FileInfo(vmPathName=self.vmx_path())),
            flags=vim.vm.FlagInfo(), defaultPowerOps=complete(vim.vm.DefaultPowerOpInfo()),
            hardware=hardware, firmware=self.firmware,
            keyId=key_id(*self.key) if self.key else None,
            migrateEncryption=self.migrate_encryption,
            extraConfig=[vim.option.OptionValue(key=k, value=v) for k, v in sorted(self.extra_config.items())]))

    def vmx_path(self) -> str:
        return f"[{self.datastore.name}] {self.name}/{self.name}.vmx"

    def p_config(self) -> Any:
        return self.config_info()

    def p_runtime(self) -> Any:
        return complete(vim.vm.RuntimeInfo(
            connectionState="connected", powerState=self.power_state, faultToleranceState="notConfigured",
            toolsInstallerMounted=False, numMksConnections=0, recordReplayState="inactive",
            onlineStandby=False, consolidationNeeded=False, host=self.host.ref if self.host else None,
            cryptoState="locked" if self.locked else ("unlocked" if self.encrypted else None)))

    def p_snapshot(self) -> Any:
        if not self.root_snapshots:
            return None
        return vim.vm.SnapshotInfo(currentSnapshot=self.current_snapshot.ref if self.current_snapshot else None,
                                   rootSnapshotList=[s.tree() for s in self.root_snapshots])

    def p_rootSnapshot(self) -> list:
        return [s.ref for s in self.root_snapshots]

    def p_resourcePool(self) -> Any:
        return self.pool.ref if self.pool is not None and not self.template else None

    def p_datastore(self) -> list:
        seen = {id(self.datastore): self.datastore}
        for link in self.all_disk_files():
            seen[id(link.datastore)] = link.datastore
        return [d.ref for d in seen.values()]

    def p_layoutEx(self) -> Any:
        """The VM's files (disk links with sizes): what a datastore browser would list."""
        files = [complete(vim.vm.FileLayoutEx.FileInfo(key=index, name=link.path, type="diskExtent",
                                                       size=link.size, uniqueSize=link.size))
                 for index, link in enumerate(self.all_disk_files())]
        return complete(vim.vm.FileLayoutEx(file=files, timestamp=now()))

    def p_summary(self) -> Any:
        return complete(vim.vm.Summary(
            vm=self.ref, runtime=self.p_runtime(),
            config=complete(vim.vm.Summary.ConfigSummary(name=self.name, template=self.template,
                                                         vmPathName=self.vmx_path(),
                                                         annotation=self.annotation, uuid=self.uuid,
                                                         instanceUuid=self.instance_uuid)),
            quickStats=complete(vim.vm.Summary.QuickStats()),
            overallStatus="green"))
