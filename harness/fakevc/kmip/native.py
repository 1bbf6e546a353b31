"""The vSphere Native Key Provider (NKP) of a fake vCenter: keys from vCenter itself, no KMIP server.

Sources:
- vSphere Security, "vSphere Native Key Provider Overview" (7.0 Update 2 and later,
  https://docs.vmware.com/en/VMware-vSphere/8.0/vsphere-security/GUID-54B9FBA2-FDB1-400B-A6AE-81BF3AC9DF97.html):
  "vCenter Server generates a primary key, called the Key Derivation Key (KDK), and pushes it to all ESXi
  hosts"; the hosts derive the data encryption keys; no external key server, no KMIP. So an NKP here has
  no servers, and a key's material is derived from the provider's KDK and the key id (HMAC-SHA256: the
  derivation function is the fake's choice; vSphere does not publish it).
- "Back up a vSphere Native Key Provider" (GUID-E0EB371A-F6E4-463B-A1E9-9D4DDCAA039D): a provider is created
  not backed up, and the backup is a PKCS#12 file; `KmipClusterInfo.hasBackup` (pyVmomi typeinfo, since
  vim.version.v7_0_2_0) says whether it was. `KmipClusterInfo.keyId` (same version) is the provider's key id,
  which KB 378053 tells an admin to compare on both vCenters after a restore.
- "Restore a vSphere Native Key Provider" (GUID-6ABF2D5D-C9AD-4B65-97AB-AB66A06DDD5A) and the vSphere
  Automation API `POST /api/vcenter/crypto-manager/kms/providers?action=import` (ImportSpec: config, password;
  ImportResult: provider, native_info.key_id): importing the backup on another vCenter gives it the same
  provider with the same KDK. The SOAP API has no call that creates, exports or imports an NKP (pyVmomi's
  CryptoManagerKmip methods; govmomi's vcsim comment on RegisterKmsCluster: "real vCenter only allows
  TrustAuthority"; govc kms.rm deletes a native provider through the REST API): so creating and restoring one
  is a lab precondition, which on the fake the control facade stands in for (harness/fakevc/control.py).
  PowerCLI does it outside SOAP too: Get-KeyProvider -Type NativeKeyProvider, Export-KeyProvider ("You can use
  only the NativeKeyProvider type", developer.broadcom.com/powercli/latest/vmware.vimautomation.security/
  commands/export-keyprovider).
"""
from __future__ import annotations

import hashlib
import hmac
import os
import uuid
from typing import TYPE_CHECKING, Any

from harness.fakevc.defects import defect

if TYPE_CHECKING:
    from harness.fakevc.kmip.provider import Provider

REPORTED_AS_STANDARD = defect(
    "nkp-reported-as-standard", "NKP-ENCRYPT",
    "a Native Key Provider is listed with managementType vCenter (a standard KMIP provider), so nothing tells an "
    "auditor that its keys never leave vCenter")
KEY_FROM_DEFAULT = defect(
    "nkp-key-from-default-provider", "NKP-ENCRYPT",
    "a VM encrypted with the Native Key Provider gets a key of the default standard provider instead")
ASSUMED_ELSEWHERE = defect(
    "nkp-assumed-on-every-vcenter", "NKP-XVC-MISSING",
    "a vCenter treats another vCenter's Native Key Provider as its own (as if it had been restored there), so an "
    "NKP-encrypted VM moves to a vCenter that was never given the provider")
# MISSING_HALF is honoured by behaviours/destination.py check_cross.
MISSING_HALF = defect(
    "nkp-xvc-missing-half", "NKP-XVC-MISSING",
    "moving (or cloning) a VM encrypted by a Native Key Provider to a vCenter without that provider is refused, "
    "but the VM lands there anyway", half_applied=True)
RESTORE_NEW_KDK = defect(
    "nkp-restore-new-kdk", "NKP-XVC-RESTORED",
    "restoring a Native Key Provider's backup on another vCenter makes a new key derivation key (what adding a new "
    "NKP of the same name does) instead of importing the backed-up one: the keys differ there")

USABLE_WITHOUT_BACKUP = defect(
    "nkp-usable-without-backup", "NKP-BACKUP-FIRST",
    "a Native Key Provider that was never backed up hands out keys (vSphere lets nobody use one before its backup)")
UNBACKED_HALF = defect(
    "nkp-unbacked-half", "NKP-BACKUP-FIRST",
    "encrypting with a Native Key Provider that was never backed up fails, but the VM is encrypted anyway",
    half_applied=True)

# "you must back the Native Key Provider instance up before it will let you use it ... It will not let you use
# it until you have exported/backed up the primary key" (core.vmware.com/native-key-provider-questions-answers;
# "Back up a vSphere Native Key Provider", GUID-E0EB371A, German edition: "Sie müssen den vSphere Native Key
# Provider jedoch mindestens einmal sichern, bevor Sie ihn verwenden können"). The fault class is not
# documented: InvalidState is the fake's choice (the test asserts only that the encrypt fails and changes nothing).
NOT_BACKED_UP = ("Native Key Provider '{id}' has not been backed up: back it up (export its primary key) before "
                 "it can be used")


def new_kdk() -> bytes:
    """A fresh 256-bit key derivation key (what creating an NKP makes)."""
    return os.urandom(32)


def new_key_id() -> str:
    """A key id of an NKP key (vCenter makes it: no KMS assigns a UID)."""
    return str(uuid.uuid4())


def key_material(prov: "Provider", key_id: str) -> bytes:
    """The key's material, derived from the provider's KDK (the fake's derivation: HMAC-SHA256)."""
    assert prov.kdk is not None, f"key provider {prov.id} is not a Native Key Provider"
    return hmac.new(prov.kdk, key_id.encode("utf-8"), hashlib.sha256).digest()


def provider_key_id(kdk: bytes) -> str:
    """The provider's own key id (KmipClusterInfo.keyId): the same on every vCenter the backup was restored to."""
    return str(uuid.UUID(bytes=hashlib.sha256(b"nkp-key-id" + kdk).digest()[:16]))


def is_native(prov: Any) -> bool:
    return prov is not None and getattr(prov, "kdk", None) is not None
