"""Virtual TPM (VTPM-*): adding and removing a vim.vm.device.VirtualTPM, decrypt, and clones.

Sources, by behaviour:
- A vTPM depends on VM encryption: "When you configure a vTPM, VM encryption automatically encrypts the
  virtual machine files but not the disks" (vSphere 6.7 Virtual Machine Administration, "Virtual Trusted
  Platform Module Overview", GUID-A43B6914; the same in 8.0's vSphere Security, GUID-6F811A7A). A plain
  device add, no CryptoSpec, is how VMware's own pyVmomi client adds one (community.vmware
  `vmware_guest_tpm`), so the key comes from the default key provider; without one the add fails as any
  encrypt does (KMS-REQUIRED, `keys.generate`).
- Removing the vTPM of a VM that was unencrypted before leaves it unencrypted; a VM encrypted before keeps
  its key (vmware/ansible-vsphere-gos-validation `vtpm_cold_add_remove`, PR 516: keyId unset after remove
  unless the VM was encrypted before the add).
- The VM must be powered off (community.vmware `vmware_guest_tpm`: "should be turned off before add or
  remove vTPM device") and use EFI firmware ("Before adding the vTPM device to a VM, the
  ConfigInfo.firmware type must be set to efi", VDDK Programming Guide, vTPM backup and restore).
- Decrypting a VM while its vTPM is there: a vTPM's data lives in the encrypted VM home (".nvram"; the
  overview above); vm-operator (crypto_reconciler_pre.go) keeps a VM with a vTPM encrypted and lists
  `encryption.required.vtpm` among the crypto keys a client must never change. Refusing the decrypt is the
  FAKE'S CHOICE where vSphere is silent on refuse-or-ignore (harness/unconfirmed.py
  `vtpm-decrypt-refused`); the rule's intent, never decrypted while a vTPM is present, holds either way.
- Clones copy the vTPM; from vSphere API 8.0.0.1 `CloneSpec.tpmProvisionPolicy` "copy" keeps the source's
  TPM secrets and "replace" gives the clone a new vTPM without them (VirtualMachineCloneSpecTpmProvisionPolicy).
  Before 8.0 the vTPM is always copied: its state is the VM's NVRAM file, vTPM device, keyId and
  encryption.bundle (VDDK Programming Guide, vTPM backup and restore), all of which a clone copies; from 8.0
  the advanced setting vpxd.clone.tpmProvisionPolicy can make "replace" the default (the fake has none).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyVmomi import vim

from harness.fakevc.behaviours.crypto_rules import (DECRYPT, ENCRYPT, GENERATE, Checks, CryptoAsk, invalid_argument,
                                                    invalid_state, powered_on)
from harness.fakevc.defects import defect
from harness.fakevc.model.vm import VirtualMachine
from harness.fakevc.model.vtpm import VirtualTpm

ADD_LEAVES_HOME_PLAIN = defect("vtpm-add-leaves-home-plain", "VTPM-ADD-ENCRYPTS-HOME",
                               "adds a vTPM to an unencrypted VM without encrypting its VM home")
REMOVE_KEEPS_KEY = defect("vtpm-remove-keeps-key", "VTPM-ADD-ENCRYPTS-HOME",
                          "removing the vTPM leaves a VM that was unencrypted before encrypted")
DECRYPT_IGNORED = defect("vtpm-decrypt-allowed", "VTPM-DECRYPT-REFUSED",
                         "decrypts a VM that has a vTPM, the vTPM staying on an unencrypted VM")
DECRYPT_HALF = defect("vtpm-decrypt-half", "VTPM-DECRYPT-REFUSED",
                      "refuses decrypting a VM with a vTPM but decrypts it anyway", half_applied=True)
CLONE_DROPS_TPM = defect("vtpm-clone-drops-tpm", "VTPM-CLONE-COPY", "a clone of a VM with a vTPM has no vTPM")
CLONE_NEW_EK = defect("vtpm-clone-new-ek", "VTPM-CLONE-COPY",
                      "a copied vTPM gets a new endorsement key certificate (the secrets are not copied)")
REPLACE_COPIES = defect("vtpm-replace-copies", "VTPM-CLONE-POLICY",
                        "tpmProvisionPolicy 'replace' copies the source's vTPM (same endorsement key certificate)")
COPY_REPLACES = defect("vtpm-copy-replaces", "VTPM-CLONE-POLICY",
                       "tpmProvisionPolicy 'copy' gives the clone a new vTPM (another endorsement key certificate)")


class HomeForTpm(CryptoAsk):
    """The VM-home change a vTPM add or remove makes by itself: the VM home only (disks untouched), and no
    storage policy involved (by default "no storage policy is associated with a virtual machine that has been
    enabled with a vTPM. Only the virtual machine files (VM Home) are encrypted", vSphere 8.0 Security)."""


@dataclass
class TpmChange:
    """What a ConfigSpec asks of the vTPM: add one, remove it, set the firmware."""
    add: bool = False
    remove: bool = False
    firmware: str | None = None

    @property
    def any(self) -> bool:
        return self.add or self.remove or self.firmware is not None


def read(spec: Any) -> TpmChange:
    change = TpmChange(firmware=spec.firmware or None)
    for device_change in spec.deviceChange or []:
        if not isinstance(device_change.device, vim.vm.device.VirtualTPM):
            continue
        if device_change.operation == "add":
            change.add = True
        elif device_change.operation == "remove":
            change.remove = True
        else:
            raise invalid_argument("deviceChange.operation", "a virtual TPM can only be added or removed")
    return change


def plan_home(vm: VirtualMachine, change: TpmChange, home: CryptoAsk | None, spec_has_crypto: bool,
              policy_asked: bool) -> CryptoAsk | None:
    """The VM-home change of this reconfigure once the vTPM is accounted for (`home`: what the spec asked)."""
    if change.add and home is not None and type(home) is CryptoAsk and home.kind == ENCRYPT and not policy_asked:
        # vm-operator (crypto_reconciler_pre.go onEncrypt) adds a vTPM with a VM-level CryptoSpecEncrypt and no
        # storage policy unless its StorageClass encrypts: the VM home only ("Config"), the disks stay plain.
        return HomeForTpm(ENCRYPT, home.key)
    if home is not None or spec_has_crypto:
        return home
    if change.add and not vm.encrypted and not vm.vc.world.defects.on(ADD_LEAVES_HOME_PLAIN):
        return HomeForTpm(ENCRYPT, GENERATE)
    if change.remove and vm.vtpm is not None and vm.vtpm.home_encrypted_for_it and vm.encrypted \
            and not any(link.encrypted for disk in vm.disks for link in disk.chain) \
            and not vm.vc.world.defects.on(REMOVE_KEEPS_KEY):
        # FAKE'S CHOICE where vSphere is silent: a VM whose disks were encrypted since keeps its home key.
        return HomeForTpm(DECRYPT)
    return home


def check(checks: Checks, vm: VirtualMachine, change: TpmChange, home: CryptoAsk | None) -> None:
    """Refusals, all before anything changes."""
    if change.add or change.remove:
        if vm.power_state != "poweredOff":
            raise powered_on(vm, "adding or removing a virtual TPM")
        if change.add and vm.vtpm is not None:
            raise invalid_argument("deviceChange", f"'{vm.name}' already has a virtual TPM (one per VM)")
        if change.remove and vm.vtpm is None:
            raise invalid_argument("deviceChange", f"'{vm.name}' has no virtual TPM to remove")
        if change.add and (change.firmware or vm.firmware) != "efi":
            raise invalid_state(f"A virtual TPM needs EFI firmware: '{vm.name}' uses {change.firmware or vm.firmware}.")
    home_encrypted_after = vm.encrypted if home is None else home.kind != DECRYPT
    if change.add and not home_encrypted_after and not checks.on(ADD_LEAVES_HOME_PLAIN):
        raise invalid_state(f"A virtual TPM needs an encrypted VM home: '{vm.name}' would stay unencrypted "
                            "(a vTPM depends on virtual machine encryption).")
    decrypting = home is not None and home.kind == DECRYPT and not isinstance(home, HomeForTpm)
    if decrypting and vm.vtpm is not None and not change.remove:
        checks.refuse(invalid_state(f"'{vm.name}' has a virtual TPM: its VM home must stay encrypted "
                                    "(remove the virtual TPM first)."), ignored=DECRYPT_IGNORED, half=DECRYPT_HALF)


def apply(vm: VirtualMachine, change: TpmChange, encrypted_before: bool) -> None:
    if change.firmware is not None:
        vm.firmware = change.firmware
    if change.remove:
        vm.vtpm = None
    if change.add:
        vm.vtpm = VirtualTpm(home_encrypted_for_it=not encrypted_before)


# ---- clones (behaviours/clone.py materialize) ----------------------------------------------------
def cloned(source: VirtualMachine, new: VirtualMachine, policy: str | None) -> None:
    """The clone's vTPM: a copy (the default, and the only behaviour before 8.0) or, asked "replace", a new one."""
    new.firmware = source.firmware
    if source.vtpm is None or source.vc.world.defects.on(CLONE_DROPS_TPM):
        return
    defects = source.vc.world.defects
    replace = policy == "replace" and not defects.on(REPLACE_COPIES)
    if replace or defects.on(CLONE_NEW_EK) or (policy == "copy" and defects.on(COPY_REPLACES)):
        new.vtpm = source.vtpm.replaced()
    else:
        new.vtpm = source.vtpm.copied()


def moved(source: VirtualMachine, new: VirtualMachine) -> None:
    """A migrated VM keeps its own vTPM."""
    new.firmware, new.vtpm = source.firmware, source.vtpm


def check_clone_policy(vm: VirtualMachine, policy: str | None) -> None:
    if policy is None:
        return
    if policy not in ("copy", "replace"):
        raise invalid_argument("spec.tpmProvisionPolicy", f"'{policy}' is no VirtualMachineCloneSpecTpmProvisionPolicy")
