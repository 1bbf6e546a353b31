"""Locked VMs (LOCK-*): a VM's crypto state, CryptoUnlock_Task, and the events of locking and unlocking.

`runtime.cryptoState` is `vim.VirtualMachine.CryptoState` (API 6.7: `unlocked`, `locked`; unset on an
unencrypted VM); `CryptoUnlock_Task` (API 6.7, Cryptographer.RegisterVM) sends the VM's keys to its host.
Event ids (7.0+): lamw/vcenter-event-mapping, API.md 6.1.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.vsphere.vms import VmState, state

LOCKED = "locked"
UNLOCKED = "unlocked"
VM_LOCKED_KEY_MISSING_ON_KMS = "com.vmware.vc.vm.Crypto.VMLocked.KeyMissingOnKMS"
VM_LOCKED_KMS_CLUSTER_ERROR = "com.vmware.vc.vm.Crypto.VMLocked.KMSClusterError"
VM_LOCKED_KEY_MISSING_ON_HOST = "com.vmware.vc.vm.Crypto.VMLocked.KeyMissingOnHost"
VM_LOCKED = [VM_LOCKED_KEY_MISSING_ON_KMS, VM_LOCKED_KMS_CLUSTER_ERROR, VM_LOCKED_KEY_MISSING_ON_HOST]
VM_UNLOCKED = "com.vmware.vc.vm.Crypto.VMUnlocked"


def crypto_state(client: Any, vm: Any, label: str | None = None, phase: str = "observed") -> str | None:
    """The VM's `runtime.cryptoState` (None when unset: the VM is not encrypted)."""
    return client.read(vm, ["runtime.cryptoState"], label=label, phase=phase).get("runtime.cryptoState")


@dataclass(frozen=True)
class LockedVmState:
    """What a refusal on a locked VM must leave unchanged: keys, power, snapshots... and the locked state."""
    vm: VmState
    crypto_state: str | None


def locked_state(client: Any, vm: Any, label: str, phase: str) -> LockedVmState:
    """The VM's state (recorded under `label`; its properties include runtime.cryptoState) and its crypto state."""
    return LockedVmState(state(client, vm, label=label, phase=phase), crypto_state(client, vm))


def unlock(client: Any, vm: Any) -> None:
    """VirtualMachine.CryptoUnlock_Task: vCenter fetches the VM's keys and sends them to its host."""
    client.invoke(vm, "CryptoUnlock_Task")
