"""Capabilities a target may have, declared in the inventory's `features` and probed by verify-config.

A test that needs one says `@pytest.mark.requires("name")`. Undeclared and absent gives a skip that
names the capability; declared but absent is a failure (the lab is not what its inventory says).
"""
from __future__ import annotations

KNOWN_CAPABILITIES: dict[str, str] = {
    "key_providers": "CryptoManagerKmip key-provider methods (RegisterKmipServer, GenerateKey, ...)",
    "kms_trust": "the key-provider certificate trust flow (RetrieveKmipServerCert, UploadKmipServerCert, UploadClientCert)",
    "kms_status": "RetrieveKmipServersStatus_Task reports per-server trust and reachability",
    "vm_encryption": "crypto specs on ReconfigVM_Task take effect (config.keyId set)",
    "storage_policies": "PBM storage-policy service with the VM Encryption Policy",
    "snapshots": "CreateSnapshot_Task and per-snapshot config reads",
    "clone_crypto": "CloneVM_Task with a crypto change (encrypt, decrypt, recrypt)",
    "linked_clone": "linked clones from a snapshot",
    "instant_clone": "InstantClone_Task",
    "cross_vcenter": "clone and relocate to another vCenter through a ServiceLocator",
    "host_crypto_state": "HostSystem runtime.cryptoState and cryptoKeyId",
    "host_key_cache": "per-host key cache readable through the host crypto manager (GetCryptoKeyStatus from "
                      "vSphere API 8.0.1, ListKeys before)",
    "cluster_ha": "HA and DRS settings through ReconfigureComputeResource_Task",
    "mixed_host_versions": "an ESXi host older than 7.0 in the inventory",
    "events": "EventManager.QueryEvents by eventTypeId",
    "alarms": "AlarmManager with a KMS health alarm watching com.vmware.vc.kms.crypto.Unreachable",
    "authorization": "roles, permissions and logins of other users",
    "disk_bytes": "the bytes of a VM disk can be read to check for plaintext",
    "fault_injection": "the target can inject faults (KMS refusing creation, recrypt stopping part-way, core dumps, full datastore)",
    # vTPM family (VTPM-*)
    "vtpm": "VirtualTPM devices on ReconfigVM_Task and CloneVM_Task (a default key provider; EFI firmware; ESXi 6.7 for "
            "Windows guests, 7.0 U2 for Linux guests)",
    # Native Key Provider (issue 25 family 5)
    "native_key_provider": "a vSphere Native Key Provider (7.0 Update 2+): the lab's, declared per vCenter as "
                           "`key_provider: {id, type: native}`, or one the fake creates on cue (SOAP cannot create one)",
}
