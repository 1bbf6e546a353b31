"""The mutation gate: the one place that decides whether the harness may change a target.

Why one gate: a lab vCenter pair is pointed at before an upgrade; with `safety.allow_mutations:
false` nothing may change, whatever a fixture or a command would like to do. Every vSphere call
goes through `VCenterClient.invoke`, every KMIP call the harness itself issues through
`KmipClient._call`; both ask a `MutationGate` first.

The vSphere decision is an explicit allow-list of read-only methods: anything not on it (a new
method, a typo) counts as mutating. A refused call raises `MutationRefused`, which the pytest
plugin reports as `skipped: safety: ...` (the target could not be asked, so nothing is decided).

The gate also protects the lab's own key providers (the inventory's `kms.*.provider_id`, or the
providers a fake lab starts with): even with mutations allowed, no server of theirs is added,
updated or removed and no certificate is uploaded to them; the harness only uses them for keys.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# vSphere methods that change nothing a lab owns. Sources: the vSphere Web Services API reference
# (each is documented as a query/retrieve), and the property collector / view / session calls
# pyVmomi makes for every read (their objects are session-scoped and vanish at logout).
READ_ONLY_VIM_METHODS: frozenset[str] = frozenset({
    # session and service content
    "RetrieveServiceContent", "RetrieveContent", "CurrentTime", "Login", "LoginByToken", "Logout",
    "SessionIsActive", "Fetch",
    # property collector, views: session-scoped objects
    "RetrieveProperties", "RetrievePropertiesEx", "ContinueRetrievePropertiesEx", "CancelRetrievePropertiesEx",
    "CreatePropertyCollector", "DestroyPropertyCollector", "CreateFilter", "DestroyPropertyFilter",
    "WaitForUpdates", "WaitForUpdatesEx", "CheckForUpdates", "CancelWaitForUpdates",
    "CreateContainerView", "CreateListView", "DestroyView",
    # key providers and keys (reads)
    "ListKmipServers", "ListKmsClusters", "RetrieveKmipServersStatus_Task", "RetrieveKmipServerCert",
    "IsKmsClusterActive", "GetDefaultKmsCluster", "ListKeys", "QueryCryptoKeyStatus",
    "GetCryptoKeyStatus",   # CryptoManagerHost (8.0.1): a host's key status, documented as a query
    # authorization (reads)
    "RetrieveAllPermissions", "RetrieveRolePermissions", "RetrieveEntityPermissions", "HasPrivilegeOnEntity",
    "HasPrivilegeOnEntities", "HasUserPrivilegeOnEntities", "FetchUserPrivilegeOnEntities",
    # events, alarms, tasks (reads; history collectors are session-scoped)
    "QueryEvents", "CreateCollectorForEvents", "ReadNextEvents", "ReadPreviousEvents", "DestroyCollector",
    "GetAlarm", "GetAlarmState", "QueryAvailablePerfMetric",
    # advanced settings (reads): OptionManager.QueryView / QueryOptions return option values
    "QueryView", "QueryOptions",
    # inventory search
    "FindByUuid", "FindByInventoryPath", "FindByDnsName", "FindByIp", "FindChild", "FindAllByUuid",
    "QueryConfigOption", "QueryConfigOptionEx", "QueryConfigTarget", "QueryTargetCapabilities",
    # PBM (storage policies): reads only
    "PbmRetrieveServiceContent", "PbmQueryProfile", "PbmRetrieveContent", "PbmQueryAssociatedProfile",
    "PbmQueryAssociatedProfiles", "PbmFetchCapabilityMetadata", "PbmQueryDefaultRequirementProfile",
})

# KMIP operations that only read (KMIP 1.x spec, section 4): everything else creates or changes keys.
READ_ONLY_KMIP_OPERATIONS: frozenset[str] = frozenset({
    "Get", "GetAttributes", "GetAttributeList", "Locate", "DiscoverVersions", "Query", "Check",
})

# CryptoManagerKmip methods that change a provider itself (its servers or trust material).
# Choosing which provider is the default is the vCenter's setting, not the provider's.
PROVIDER_CHANGING_METHODS: frozenset[str] = frozenset({
    "RegisterKmipServer", "UpdateKmipServer", "RemoveKmipServer", "UploadKmipServerCert", "UploadClientCert",
    "UpdateSelfSignedClientCert", "UpdateKmsSignedCsrClientCert", "GenerateSelfSignedClientCert",
    "GenerateClientCsr", "UnregisterKmsCluster", "RegisterKmsCluster", "SetKeyCustomAttributes",
})


class MutationRefused(RuntimeError):
    """The gate refused a call; the message starts with `safety:` (a skip reason, not a failure)."""


def is_read_only(method: str) -> bool:
    """True only for methods on the allow-list (an unknown method is treated as mutating)."""
    return method in READ_ONLY_VIM_METHODS


@dataclass
class MutationGate:
    """Decides, per call, whether the harness may make it.

    One instance per vCenter connection (`protected_providers` are that vCenter's lab providers);
    `for_inventory` builds it from `safety.allow_mutations`; `read_only` never allows anything.
    """
    allow_mutations: bool = False
    reason: str = field(default="inventory does not allow mutations (safety.allow_mutations: false)", repr=False)
    protected_providers: set[str] = field(default_factory=set)

    @classmethod
    def for_inventory(cls, inventory: Any) -> "MutationGate":
        return cls(allow_mutations=bool(inventory.safety.allow_mutations),
                   protected_providers=set(lab_provider_ids(inventory)))

    @classmethod
    def read_only(cls, why: str) -> "MutationGate":
        return cls(allow_mutations=False, reason=why)

    def protect_provider(self, provider_id: str) -> None:
        """From now on, `provider_id` is the lab's: used for keys, never changed."""
        self.protected_providers.add(provider_id)

    def check_vim(self, vcenter: str, method: str, target: str, kwargs: dict[str, Any]) -> None:
        """Raise MutationRefused unless `method` is read-only or mutations are allowed."""
        if is_read_only(method):
            return
        if not self.allow_mutations:
            raise MutationRefused(f"safety: {method} on {target} ({vcenter}) changes the target; {self.reason}")
        lab_owned = sorted(_provider_ids(kwargs) & self.protected_providers) if method in PROVIDER_CHANGING_METHODS else []
        if lab_owned:
            raise MutationRefused(f"safety: {method} would change key provider {lab_owned[0]} of {vcenter}, "
                                  "which belongs to the lab: the harness only uses it for keys")

    def check_kmip(self, address: str, operation: str) -> None:
        if operation in READ_ONLY_KMIP_OPERATIONS or self.allow_mutations:
            return
        raise MutationRefused(f"safety: KMIP {operation} on {address} changes the KMS; {self.reason}")


def lab_provider_ids(inventory: Any) -> list[str]:
    """Provider ids the inventory names as the lab's own (external KMS entries that are registered)."""
    kms = inventory.kms
    found = []
    for role in ("shared", "dedicated"):
        ext = getattr(kms, role, None)
        if ext is not None and ext.registered:
            found.append(ext.provider_id)
    for vc in getattr(inventory, "vcenters", []):   # a lab's Native Key Provider (vcenters[].key_provider)
        declared = getattr(vc, "key_provider", None)
        if declared is not None and declared.id not in found:
            found.append(declared.id)
    return found


def _provider_ids(value: Any, depth: int = 0) -> set[str]:
    """Every KeyProviderId.id inside call arguments (clusterId, cluster, keyProvider, server.clusterId)."""
    from pyVmomi import vim
    if depth > 4 or value is None:
        return set()
    if isinstance(value, vim.encryption.KeyProviderId):
        return {value.id} if value.id else set()
    if isinstance(value, dict):
        return set().union(*(_provider_ids(v, depth + 1) for v in value.values())) if value else set()
    if isinstance(value, (list, tuple)):
        return set().union(*(_provider_ids(v, depth + 1) for v in value)) if value else set()
    if hasattr(value, "_GetPropertyList"):
        return set().union(set(), *(_provider_ids(getattr(value, p.name, None), depth + 1)
                                     for p in value._GetPropertyList()))
    return set()
