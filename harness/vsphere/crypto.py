"""VM encryption operations: encrypt, decrypt, shallow and deep recrypt, as PowerCLI builds them.

The spec shapes follow API.md 2.5/2.6: VM home and every disk get the same CryptoSpec; encrypt
and deep recrypt carry the encryption storage policy, decrypt an empty/plain policy, shallow
recrypt no policy.
"""
from __future__ import annotations

from typing import Any

from pyVmomi import vim

from harness.vsphere import vms
from harness.vsphere.vms import KeyRef


def key_id(key: KeyRef) -> Any:
    return vim.encryption.CryptoKeyId(keyId=key[1], providerId=vim.encryption.KeyProviderId(id=key[0]))


def _disk_edits(disks: list[Any], crypto: Any, profile: list[Any] | None, only_encrypted: bool) -> list[Any]:
    edits = []
    for disk in disks:
        if only_encrypted and getattr(disk.backing, "keyId", None) is None:
            continue
        change = vim.vm.device.VirtualDeviceSpec(operation="edit", device=disk)
        change.backing = vim.vm.device.VirtualDeviceSpec.BackingSpec(crypto=crypto)
        if profile is not None:
            change.profile = profile
        edits.append(change)
    return edits


def policy_spec(policy_id: str | None) -> list[Any]:
    """A storage-policy list for a spec: the given policy, or the empty (default) profile."""
    return [vim.vm.DefinedProfileSpec(profileId=policy_id)] if policy_id else [vim.vm.EmptyProfileSpec()]


def encrypt_spec(client: Any, vm: Any, key: KeyRef | None, policy_id: str, with_disks: bool = True) -> Any:
    crypto = vim.encryption.CryptoSpecEncrypt(cryptoKeyId=key_id(key)) if key else None
    profile = policy_spec(policy_id)
    disks = vms.disks(client, vm) if with_disks else []
    return vim.vm.ConfigSpec(crypto=crypto, vmProfile=profile, deviceChange=_disk_edits(disks, crypto, profile, False))


def encrypt(client: Any, vm: Any, key: KeyRef | None, policy_id: str, with_disks: bool = True) -> None:
    """Encrypt VM home and disks with `key` (None: let vCenter take one from the default provider)."""
    vms.reconfigure(client, vm, encrypt_spec(client, vm, key, policy_id, with_disks))


def decrypt(client: Any, vm: Any, plain_policy_id: str | None = None) -> None:
    crypto = vim.encryption.CryptoSpecDecrypt()
    profile = policy_spec(plain_policy_id)
    spec = vim.vm.ConfigSpec(crypto=crypto, vmProfile=profile,
                             deviceChange=_disk_edits(vms.disks(client, vm), crypto, profile, True))
    vms.reconfigure(client, vm, spec)


def shallow_rekey(client: Any, vm: Any, new_key: KeyRef) -> None:
    crypto = vim.encryption.CryptoSpecShallowRecrypt(newKeyId=key_id(new_key))
    spec = vim.vm.ConfigSpec(crypto=crypto, deviceChange=_disk_edits(vms.disks(client, vm), crypto, None, True))
    vms.reconfigure(client, vm, spec)


def deep_rekey(client: Any, vm: Any, new_key: KeyRef, policy_id: str) -> None:
    crypto = vim.encryption.CryptoSpecDeepRecrypt(newKeyId=key_id(new_key))
    profile = policy_spec(policy_id)
    spec = vim.vm.ConfigSpec(crypto=crypto, vmProfile=profile,
                             deviceChange=_disk_edits(vms.disks(client, vm), crypto, profile, True))
    vms.reconfigure(client, vm, spec)


def add_encrypted_disk_spec(key: KeyRef, policy_id: str, size_kib: int = 64, unit: int = 1) -> Any:
    """A spec adding a new disk encrypted with `key` (OP-DISK-WITH-HOME)."""
    crypto = vim.encryption.CryptoSpecEncrypt(cryptoKeyId=key_id(key))
    disk = vim.vm.device.VirtualDisk(key=-100, capacityInKB=size_kib, controllerKey=1000, unitNumber=unit,
                                     backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                                         diskMode="persistent", thinProvisioned=True, fileName=""))
    change = vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create", device=disk,
                                             backing=vim.vm.device.VirtualDeviceSpec.BackingSpec(crypto=crypto),
                                             profile=policy_spec(policy_id))
    return vim.vm.ConfigSpec(deviceChange=[change])


def encrypt_disk_only_spec(client: Any, vm: Any, key: KeyRef, policy_id: str) -> Any:
    """A spec encrypting the disks but not VM home (refused while home is unencrypted)."""
    crypto = vim.encryption.CryptoSpecEncrypt(cryptoKeyId=key_id(key))
    return vim.vm.ConfigSpec(deviceChange=_disk_edits(vms.disks(client, vm), crypto, policy_spec(policy_id), False))
