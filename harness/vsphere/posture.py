"""Read-only vCenter calls behind `vcrypt audit`: key providers, their status, alarms, bulk VM/host reads.

Why here: only `harness/vsphere` speaks vCenter's API (issue 16 item 3); `harness/commands/audit.py` shapes
what these return into the report. Every call goes through `VCenterClient` (recorded, retried,
behind the mutation gate), none is a write: each method named here is on `audit.READ_METHODS`.
"""
from __future__ import annotations

from typing import Any

from pyVmomi import vim

from harness.vsphere import keys, vm_pages
from harness.vsphere.props import PAGE, retrieve_all
from harness.vsphere.vm_pages import PARSE_WORKERS

# What the audit reads of each VM and host. `config.hardware.device` is the only way the API shows
# a disk's key (VirtualDisk.backing.keyId), so every VM's device list is read: skipping the lists of
# unencrypted VMs would miss an encrypted disk on an unencrypted VM (tests/test_audit_scale.py).
VM_PATHS = ["name", "config.keyId", "config.hardware.device", "config.migrateEncryption",
            "runtime.cryptoState", "runtime.powerState", "config.template"]
HOST_PATHS = ["name", "runtime.cryptoState", "runtime.cryptoKeyId"]


def about(client: Any) -> Any:
    """ServiceContent.about (already fetched with the connection: no round trip)."""
    return client.content.about


def vm_properties(client: Any, page_size: int = PAGE) -> dict[str, tuple[Any, dict[str, Any]]]:
    """`VM_PATHS` of every VM: one container view, RetrievePropertiesEx paged by `page_size` objects."""
    return retrieve_all(client, vim.VirtualMachine, VM_PATHS, page_size=page_size)


def vm_postures(client: Any, page_size: int = PAGE, workers: int = PARSE_WORKERS) -> list[dict[str, Any]]:
    """Each VM's posture record (`vm_posture.py`) from `VM_PATHS`: pages parsed by `workers` processes
    while the next is fetched (`vm_pages.py`), so no page's pyVmomi objects outlive its parse."""
    return vm_pages.vm_postures(client, VM_PATHS, page_size, workers)


def host_properties(client: Any, page_size: int = PAGE) -> dict[str, tuple[Any, dict[str, Any]]]:
    return retrieve_all(client, vim.HostSystem, HOST_PATHS, page_size=page_size)


def crypto_manager(client: Any) -> Any:
    """The CryptoManagerKmip (TargetLacks when the target has none)."""
    return keys.crypto_manager(client)


def kmip_servers(client: Any, manager: Any) -> list[Any]:
    """ListKmipServers: KmipClusterInfo per key provider (servers, default flag)."""
    return client.invoke(manager, "ListKmipServers") or []


def kms_clusters(client: Any, manager: Any) -> list[Any]:
    """ListKmsClusters with servers: also lists native/trust-authority providers (7.0+)."""
    return client.invoke(manager, "ListKmsClusters", includeKmsServers=True) or []


def kms_cluster_active(client: Any, manager: Any, provider_id: str) -> bool:
    return bool(client.invoke(manager, "IsKmsClusterActive", cluster=keys.provider_ref(provider_id)))


def triggered_alarms(client: Any) -> list[Any]:
    """The root folder's triggeredAlarmState (every alarm triggered anywhere in the inventory)."""
    return client.read(client.content.rootFolder, ["triggeredAlarmState"]).get("triggeredAlarmState") or []


def alarm_names(client: Any, alarms: list[Any]) -> dict[str, dict[str, Any]]:
    """info.name and info.systemName of each alarm, by moId, in one round trip."""
    return client.read_many(alarms, vim.alarm.Alarm, ["info.name", "info.systemName"])
