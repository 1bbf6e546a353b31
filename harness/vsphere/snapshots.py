"""Snapshots, read per snapshot: every snapshot's own `config.keyId` and the key of every link of its
disk chains (`backing.keyId` down the `backing.parent` chain), never inferred from the VM.

Why both: a snapshot's `config.keyId` is the VM home's key at that snapshot; the disk data lives in the
chain links, each with its own `keyId` (VirtualDiskFlatVer2BackingInfo.parent, API.md 11). A recrypt that
moved the snapshot configs but not the links would pass a check of `config.keyId` alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyVmomi import vim

from harness.vsphere.vms import KeyRef, key_of


@dataclass(frozen=True)
class SnapshotView:
    name: str
    ref: Any
    key: KeyRef | None
    depth: int
    link_keys: tuple[KeyRef | None, ...] = ()   # every link of every disk chain of the snapshot, top first

    @property
    def keys(self) -> set[KeyRef | None]:
        """The snapshot's config key and every link key (one value when the snapshot is on one key)."""
        return {self.key, *self.link_keys}


def create(client: Any, vm: Any, name: str, memory: bool = False) -> Any:
    return client.invoke(vm, "CreateSnapshot_Task", name=name, description="vcrypt-harness", memory=memory,
                         quiesce=False)


def revert(client: Any, snapshot: Any) -> None:
    client.invoke(snapshot, "RevertToSnapshot_Task")


def remove_all(client: Any, vm: Any) -> None:
    client.invoke(vm, "RemoveAllSnapshots_Task")


def _walk(trees: list[Any], depth: int = 0) -> list[tuple[Any, str, int]]:
    out = []
    for tree in trees or []:
        out.append((tree.snapshot, tree.name, depth))
        out.extend(_walk(tree.childSnapshotList, depth + 1))
    return out


def tree(client: Any, vm: Any) -> list[tuple[Any, str, int]]:
    info = client.read(vm, ["snapshot"]).get("snapshot")
    return _walk(info.rootSnapshotList) if info else []


def with_keys(client: Any, vm: Any, label: str | None = None, phase: str = "observed") -> list[SnapshotView]:
    """Every snapshot of the VM with the key its own config is on (one read per snapshot set)."""
    nodes = tree(client, vm)
    if not nodes:
        return []
    keys = client.read_many([n[0] for n in nodes], vim.vm.Snapshot, ["config.keyId", "config.hardware.device"],
                            label=label, phase=phase)
    return [SnapshotView(name=name, ref=snap, key=key_of(keys.get(snap._moId, {}).get("config.keyId")), depth=depth,
                         link_keys=tuple(k for chain in disk_chain_keys(keys.get(snap._moId, {}).get("config.hardware.device"))
                                         for k in chain))
            for snap, name, depth in nodes]


def disk_chain_keys(devices: list[Any] | None) -> list[tuple[KeyRef | None, ...]]:
    """Per virtual disk, the keyId of each link of its backing chain (top first, through backing.parent)."""
    chains = []
    for device in devices or []:
        if not isinstance(device, vim.vm.device.VirtualDisk):
            continue
        links, backing = [], device.backing
        while backing is not None:
            links.append(key_of(getattr(backing, "keyId", None)))
            backing = getattr(backing, "parent", None)
        chains.append(tuple(links))
    return chains


def vm_link_keys(client: Any, vm: Any, label: str | None = None, phase: str = "observed") -> set[KeyRef | None]:
    """The keys of every link of the VM's running disk chains (base, snapshot deltas, running delta)."""
    devices = client.read(vm, ["config.hardware.device"], label=label, phase=phase).get("config.hardware.device")
    return {k for chain in disk_chain_keys(devices) for k in chain}


def branch_count(client: Any, vm: Any) -> int:
    """How many leaves the snapshot tree has (1 = a single chain)."""
    info = client.read(vm, ["snapshot"]).get("snapshot")

    def leaves(trees: list[Any]) -> int:
        return sum(leaves(t.childSnapshotList) if t.childSnapshotList else 1 for t in trees or [])
    return leaves(info.rootSnapshotList) if info else 0
