"""The behaviours vSphere leaves UNCONFIRMED that an inventory entry may list under `confirmed`.

Data only, below the inventory schema (which validates the ids) and harness/unconfirmed.py (which
gates the tests asserting them).
"""
from __future__ import annotations

BEHAVIOURS: dict[str, str] = {
    "kms-alarm-watches-unreachable-event":
        "vCenter's KMS health alarm is an event alarm whose expression names com.vmware.vc.kms.crypto.Unreachable "
        "(API.md 6.2: the default KMS alarms' names and expressions are UNCONFIRMED)",
    "kms-alarm-clears-on-vendor-event":
        "the KMS health alarm returns to green on com.vmware.vc.kms.crypto.Vendor (API.md 11: no "
        "'KMS reachable again' event exists)",
    "host-key-cache-through-vcenter":
        "a host's configManager.cryptoManager.ListKeys() called through vCenter lists that host's key cache "
        "(API.md 5.5; read only below vSphere API 8.0.1: from 8.0.1 the documented GetCryptoKeyStatus is read)",
    "instant-clone-refuses-crypto-change":
        "InstantClone_Task refuses a storage policy or crypto spec in location (API.md 11: the reference says "
        "'NOT supported', not 'refused')",
    "xvc-migrate-refuses-decrypt":
        "a cross-vCenter migration that asks to decrypt (a non-encryption policy or a decrypt spec) is refused, "
        "not ignored (API.md 3.2: no source says which; either way the VM must not arrive decrypted)",
    "policy-only-encrypt-generates-key":
        "a ReconfigVM_Task with only an encryption storage policy (no CryptoSpec) encrypts with a new key of the "
        "default key provider (API.md 2.5/10; PowerCLI Enable-VMEncryption without -KMSClusterId relies on it)",
    "migrate-encryption-not-relaxable":
        "vCenter itself refuses to relax migrateEncryption on an encrypted VM (PowerCLI refuses client-side; "
        "API.md 2.4)",
    "server-trust-client-false-without-cert":
        "RetrieveKmipServersStatus reports serverTrustClient == False for a provider that sent no client "
        "certificate (API.md 1.2: trust fields, semantics unconfirmed)",
    "kmip-key-state-active":
        "a key vCenter generated is in KMIP state ACTIVE on the KMS (API.md 1.1: key state not documented)",
    "locator-needs-thumbprint":
        "a cross-vCenter ServiceLocator without the destination's sslThumbprint is refused when the vCenters "
        "do not share certificate trust (API.md 11, community.vmware vmware_guest_cross_vc_clone)",
    "clone-refuses-disk-policy-without-crypto":
        "CloneVM_Task refuses a disk locator carrying an encryption storage policy without backing.crypto "
        "(terraform-provider-vsphere issue 2241 on 7.0U3: a user report, not documentation)",
    "invalid-power-state-fault":
        "an encrypt of a powered-on VM is refused with vim.fault.InvalidPowerState (API.md 4/10: the class "
        "is vcsim's, the real one unconfirmed)",
    # KMS-MULTI: a key provider with several servers
    "kms-overall-yellow-partial-outage":
        "RetrieveKmipServersStatus reports a key provider yellow (neither green nor red) while one of its servers "
        "is down and another answers (API reference: overallStatus is a ManagedEntityStatus, how it is derived "
        "from the servers' is not documented)",
    # vTPM family (VTPM-*)
    "vtpm-decrypt-refused":
        "a decrypt of a VM that has a vTPM is refused, not ignored (a vTPM's data needs the encrypted VM home: "
        "vSphere Security 'Virtual Trusted Platform Module Overview'; no source says refused or ignored; either "
        "way the VM must stay encrypted with its vTPM)",
}
