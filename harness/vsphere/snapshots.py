"""Snapshots, read per snapshot: every snapshot's own `config.keyId`, never inferred from the VM."""
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
    keys = client.read_many([n[0] for n in nodes], vim.vm.Snapshot, ["config.keyId"], label=label, phase=phase)
    return [SnapshotView(name=name, ref=snap, key=key_of(keys.get(snap._moId, {}).get("config.keyId")), depth=depth)
            for snap, name, depth in nodes]


def branch_count(client: Any, vm: Any) -> int:
    """How many leaves the snapshot tree has (1 = a single chain)."""
    info = client.read(vm, ["snapshot"]).get("snapshot")

    def leaves(trees: list[Any]) -> int:
        return sum(leaves(t.childSnapshotList) if t.childSnapshotList else 1 for t in trees or [])
    return leaves(info.rootSnapshotList) if info else 0
