"""A VM's virtual TPM (vim.vm.device.VirtualTPM, vSphere API 6.7): the state the fake keeps for it.

What the API shows of a vTPM is the device in `config.hardware.device` and its endorsement key
certificate (`endorsementKeyCertificate`, binary[]; vSphere Web Services API, VirtualTPM). The
fake keeps one opaque certificate per vTPM instance: a copied vTPM carries the same one, a new
vTPM a new one (vim.vm.CloneSpec.TpmProvisionPolicy, 8.0.0.1: "copy" / "replace"). The bytes are
no real X.509 certificate: nothing in the harness parses them, tests only compare them.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from pyVmomi import VmomiSupport, vim

from harness.fakevc.wire import complete

VTPM_DEVICE_KEY = 11000   # the key vSphere gives the vTPM device (community.vmware vmware_guest_tpm reads it back)


def _new_certificate() -> bytes:
    """An opaque, unique stand-in for the EK certificate vCenter issues for a new vTPM."""
    return b"fake-vtpm-ek-certificate:" + secrets.token_hex(16).encode()


@dataclass
class VirtualTpm:
    """One vTPM instance. `home_encrypted_for_it`: adding it encrypted a VM home that was plain before
    (vmware/ansible-vsphere-gos-validation vtpm_cold_add_remove: removing it then leaves the VM unencrypted)."""
    ek_certificate: bytes = field(default_factory=_new_certificate)
    home_encrypted_for_it: bool = False

    def copied(self) -> "VirtualTpm":
        """The same vTPM, its secrets (and so its EK certificate) with it."""
        return VirtualTpm(self.ek_certificate, self.home_encrypted_for_it)

    def replaced(self) -> "VirtualTpm":
        """A new vTPM: new secrets, a new EK certificate."""
        return VirtualTpm(home_encrypted_for_it=self.home_encrypted_for_it)

    def device(self) -> vim.vm.device.VirtualTPM:
        return complete(vim.vm.device.VirtualTPM(
            key=VTPM_DEVICE_KEY, deviceInfo=vim.Description(label="Virtual TPM", summary="Virtual TPM"),
            endorsementKeyCertificate=[VmomiSupport.binary(self.ek_certificate)]))
