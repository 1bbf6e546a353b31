"""Key providers of every kind as vCenter lists them (ListKmsClusters): standard, trusted, native.

Why a module: `ListKmipServers` (harness/vsphere/keys.py) is the KMIP providers' list; a vSphere Native
Key Provider (NKP, 7.0 Update 2) has no KMIP server, and the 7.0 call `ListKmsClusters` is the one that
reports every provider with its `managementType` (enum KmipClusterInfoKmsManagementType: vCenter,
trustAuthority, nativeProvider; pyVmomi typeinfo) and, since vim.version.v7_0_2_0, `hasBackup`,
`tpmRequired` and the provider's `keyId`. The SOAP API cannot create, back up or restore an NKP (pyVmomi's
CryptoManagerKmip methods; vSphere Automation REST `/api/vcenter/crypto-manager/kms/providers` does): for
the harness an NKP is a lab precondition, declared in the inventory (`key_provider: {id, type: native}`).
Read-only: every method here is a read.
"""
from __future__ import annotations

from typing import Any

from harness.vsphere import keys
from harness.vsphere.errors import TargetLacks

NATIVE = "nativeProvider"


def all_providers(client: Any) -> dict[str, Any]:
    """provider id -> KmipClusterInfo of every key provider, with its servers (an NKP has none).

    ListKmsClusters (7.0); a target without it (govmomi's vcsim v0.56.0 answers MethodNotFound) falls back to
    ListKmipServers, which lists native providers too: govmomi's crypto.ManagerKmip.IsValidProvider looks them
    up there, and vm-operator relies on that for native providers."""
    manager = keys.crypto_manager(client)
    try:
        clusters = client.invoke(manager, "ListKmsClusters", includeKmsServers=True) or []
    except TargetLacks:
        clusters = client.invoke(manager, "ListKmipServers") or []
    return {c.clusterId.id: c for c in clusters}


def facts(info: Any) -> dict[str, Any]:
    """What the API says of one provider's kind and, for an NKP, its backup (None: the API did not say)."""
    return {"management_type": getattr(info, "managementType", None),
            "has_backup": getattr(info, "hasBackup", None),
            "tpm_required": getattr(info, "tpmRequired", None),
            "key_id": getattr(info, "keyId", None)}


def native_facts(clusters: list[Any]) -> dict[str, dict[str, Any]]:
    """provider id -> facts of each Native Key Provider among `clusters` (for the audit: whether it is backed up)."""
    return {c.clusterId.id: facts(c) for c in clusters if getattr(c, "managementType", None) == NATIVE}
