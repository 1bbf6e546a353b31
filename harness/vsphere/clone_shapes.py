"""Where a clone's crypto change goes in a CloneSpec: the shapes public clients send, by source.

vSphere documents the fields (7.0: `ConfigSpec.crypto` "inherited to all disks", `RelocateSpec.cryptoSpec`
for the VM's non-disk files, `RelocateSpec.DiskLocator.backing.crypto` "cryptographic option of the current
disk") but not which combination a clone with a crypto change needs (API.md 3.1: UNCONFIRMED). What public
code sends (read 2026-12-05):

* PowerCLI `VMware.VMEncryption.psm1` (vmware/PowerCLI-Example-Scripts, `Enable-VMEncryption`,
  `Disable-VMEncryption`, `Set-VMEncryptionKey`): every disk it touches carries the storage policy AND
  `Backing.Crypto` = the very CryptoSpec set as the VM-level `Crypto` (encrypt, decrypt with the empty
  profile, shallow/deep recrypt). That is ReconfigVM_Task; a clone's per-disk equivalent is
  `location.disk[].backing.crypto`.
* vm-operator `pkg/vmconfig/crypto/crypto_reconciler_pre.go` (`updateDiskBackingForEncrypt` /
  `...ForRecrypt`): the same, disk profile plus `Backing.Crypto` equal to the VM's spec; so does VMware's
  Java SDK sample `com.vmware.vmencrypt.samples.VMEncrypt.encryptVMandDisks`.
* terraform-provider-vsphere issue #2241 (vSphere 7.0U3 build 22357613): a clone whose disk locators carry an
  encryption policy and no crypto (the provider never sets `backing.crypto`,
  `virtual_machine_disk_subresource.go`) failed "A specified parameter was not correct:
  spec.disk.backing.crypto"; without the disk policy it succeeded (VM home only encrypted). The fault
  names the crypto the disk locator was missing.
* vm-operator `vmlifecycle/create_clone.go` (`cloneVMDiskLocators`: `Profile` only, no crypto; its comment:
  "not reachable/used in production") and cluster-api-provider-vsphere `vcenter/clone.go` (no disk
  profile): the policy-only shape, with no report of it working with an encryption policy.
* govc `vm.clone` sends no crypto and no policy; `vm.create -profile` only `VmProfile`. community.vmware
  `vmware_guest_cross_vc_clone` sends no crypto (cross-vCenter: same CloneSpec plus `location.service`).
  pyvmomi-community-samples `samples/clone_vm.py` sets only datastore, pool and powerOn.

No public client sends a clone with a crypto change across vCenters; the same shapes are used there.
The sources disagree only by omission, so the shape is a per-vCenter inventory option
(`clone_crypto_shape`, recorded in run.json), default `disk-backing` (the best-sourced one).
"""
from __future__ import annotations

from typing import Any

from pyVmomi import vim

DISK_BACKING = "disk-backing"   # config.crypto + each disk's policy + backing.crypto (PowerCLI, vm-operator, #2241)
VM_LEVEL = "vm-level"           # config.crypto + each disk's policy, no disk crypto (refused in #2241)
RELOCATE = "relocate"           # location.cryptoSpec + each disk's policy + backing.crypto (RelocateSpec's 7.0 fields)
SHAPES: dict[str, str] = {
    DISK_BACKING: "config.crypto, and each disk locator carries the policy and backing.crypto (PowerCLI, vm-operator)",
    VM_LEVEL: "config.crypto only, disk locators carry the policy alone (refused in terraform-provider-vsphere#2241)",
    RELOCATE: "location.cryptoSpec, and each disk locator carries the policy and backing.crypto (no config.crypto)",
}
DEFAULT = DISK_BACKING


def apply(shape: str, config: Any, location: Any, change: Any, locators: list[Any]) -> None:
    """Put `change` (a CryptoSpec, or None to keep the keys) into `config`/`location`/`locators` as `shape` says."""
    if shape not in SHAPES:
        raise ValueError(f"unknown clone_crypto_shape {shape!r} (one of {', '.join(SHAPES)})")
    if change is None:
        return
    if shape == RELOCATE:
        location.cryptoSpec = change
    else:
        config.crypto = change
    if shape != VM_LEVEL:
        for locator in locators:
            locator.backing = vim.vm.RelocateSpec.DiskLocator.BackingSpec(crypto=change)


def refused_shape(fault: Any) -> bool:
    """Is this the fault a vCenter gives for a clone spec shape it does not take (#2241's InvalidArgument
    naming the disk locator's crypto), rather than a refusal of the crypto change itself?"""
    return "disk.backing.crypto" in str(getattr(fault, "invalidProperty", "") or "")
