"""Virtual TPM operations (vim.vm.device.VirtualTPM, vSphere API 6.7), as VMware's own clients send them.

A vTPM is added and removed with a plain device change on ReconfigVM_Task and no CryptoSpec, as
community.vmware `vmware_guest_tpm` does (VMware-authored, pyVmomi): vCenter encrypts the VM home
itself. It needs EFI firmware ("Before adding the vTPM device to a VM, the ConfigInfo.firmware type must
be set to efi", VDDK Programming Guide, vTPM backup and restore), set here in a reconfigure of its own.
What the API shows of a vTPM: the device and its `endorsementKeyCertificate` (binary[]).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyVmomi import vim

from harness.vsphere import vms

NEW_DEVICE_KEY = -1   # a placeholder key: vCenter assigns the device its own
PROVISION_POLICY_SINCE = (8, 0, 0, 1)   # CloneSpec.tpmProvisionPolicy: "Since vSphere API Release 8.0.0.1"


@dataclass(frozen=True)
class TpmState:
    """What a VM shows of its vTPM: whether it has one, and its endorsement key certificates."""
    present: bool
    ek_certificates: tuple[bytes, ...] = ()


def tpm_device(client: Any, vm: Any, label: str | None = None, phase: str = "observed") -> Any | None:
    devices = client.read(vm, ["config.hardware.device"], label=label, phase=phase).get("config.hardware.device")
    return next((d for d in devices or [] if isinstance(d, vim.vm.device.VirtualTPM)), None)


def tpm_state(client: Any, vm: Any, label: str | None = None, phase: str = "observed") -> TpmState:
    device = tpm_device(client, vm, label=label, phase=phase)
    if device is None:
        return TpmState(present=False)
    return TpmState(present=True, ek_certificates=tuple(bytes(c) for c in device.endorsementKeyCertificate or []))


def set_efi_firmware(client: Any, vm: Any) -> None:
    vms.reconfigure(client, vm, vim.vm.ConfigSpec(firmware="efi"))


def add_spec() -> Any:
    device = vim.vm.device.VirtualTPM(key=NEW_DEVICE_KEY)
    return vim.vm.ConfigSpec(deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="add", device=device)])


def add_tpm(client: Any, vm: Any) -> None:
    """Add a vTPM (no CryptoSpec: vCenter encrypts the VM home with a key of the default provider)."""
    vms.reconfigure(client, vm, add_spec())


def remove_tpm(client: Any, vm: Any) -> None:
    device = tpm_device(client, vm)
    if device is None:
        raise LookupError("the VM has no virtual TPM to remove")
    vms.reconfigure(client, vm, vim.vm.ConfigSpec(
        deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="remove", device=device)]))


def supports_provision_policy(client: Any) -> bool:
    """Does this vCenter's API release have CloneSpec.tpmProvisionPolicy (pyVmomi: vim.version.v8_0_0_1)?"""
    from harness.rules import version_tuple
    return version_tuple(client.content.about.apiVersion) >= PROVISION_POLICY_SINCE


CLONE_POLICY_SETTING = "vpxd.clone.tpmProvisionPolicy"


def default_clone_policy(client: Any) -> str | None:
    """vCenter's advanced setting that makes "replace" the default of a clone without tpmProvisionPolicy
    (vSphere 8.0; VMware's vSphere 8 "TPM Provision Policy" announcement names it). None when the vCenter has
    no setting manager, or the setting is unset (a clone then copies the vTPM)."""
    manager = client.content.setting
    if manager is None:
        return None
    try:
        values = client.invoke(manager, "QueryView", name=CLONE_POLICY_SETTING)
    except vim.fault.InvalidName:
        return None
    return str(values[0].value) if values else None
