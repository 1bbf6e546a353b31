"""The lab's key providers: used for keys, never owned.

Why: a lab's vCenters already trust its KMS through a key provider an admin set up. Registering
servers into it, uploading certificates to it (which replaces vCenter's client certificate) or
removing its servers at teardown would break the lab. So when the inventory says a provider is
the lab's (an external KMS entry, or the provider a fake lab starts with), the harness checks it
is there, tells the mutation gate to protect it, and compares it byte for byte (pyVmomi's SOAP
serialization of its KmipClusterInfo) at the end of the session.
"""
from __future__ import annotations

from typing import Any

from pyVmomi import SoapAdapter

from harness.vsphere import keys, providers
from harness.vsphere.errors import EnvironmentFault


class LabProviderMissing(EnvironmentFault):
    """The inventory names a lab key provider the vCenter does not have (or without that server)."""


class LabProviderChanged(AssertionError):
    """The lab's key provider is not what it was when the session started."""


def snapshot(client: Any, provider_id: str) -> str | None:
    """The provider as vCenter lists it, serialized by pyVmomi (None when absent); read-only."""
    info = keys.list_providers(client).get(provider_id)
    return SoapAdapter.Serialize(info).decode("utf-8") if info is not None else None


def use(client: Any, provider_id: str, server_name: str | None, where: str, protect: bool = True) -> str:
    """Check the lab's provider (and its server) exists, protect it in the gate (unless it is the harness's
    own, `protect=False`); return its snapshot."""
    info = keys.list_providers(client).get(provider_id)
    if info is None:
        raise LabProviderMissing(f"vCenter {client.name} has no key provider {provider_id!r} ({where}); the harness "
                                 "uses the lab's provider and never creates it")
    names = [s.name for s in info.servers or []]
    if server_name and server_name not in names:
        raise LabProviderMissing(f"key provider {provider_id!r} of vCenter {client.name} has no server "
                                 f"{server_name!r} ({where}); it has {', '.join(names) or 'none'}")
    if not protect:
        client.recorder.note(f"the harness's own embedded key provider on {client.name}", {"id": provider_id,
                                                                                          "servers": names})
        return SoapAdapter.Serialize(info).decode("utf-8")
    client.gate.protect_provider(provider_id)
    client.recorder.note(f"lab key provider used (never changed) on {client.name}", {"id": provider_id,
                                                                                     "servers": names})
    return SoapAdapter.Serialize(info).decode("utf-8")


def require_unchanged(client: Any, provider_id: str, before: str) -> None:
    after = snapshot(client, provider_id)
    if after != before:
        raise LabProviderChanged(f"the lab's key provider {provider_id} on {client.name} changed during the run:\n"
                                 f"before: {before}\nafter:  {after}")


# ---- a lab's Native Key Provider (issue 25 family 5; harness/vsphere/providers.py) -------------------------
def native_snapshot(client: Any, provider_id: str) -> str | None:
    """The NKP as ListKmsClusters lists it, serialized by pyVmomi (None when absent); read-only."""
    info = providers.all_providers(client).get(provider_id)
    return SoapAdapter.Serialize(info).decode("utf-8") if info is not None else None


def use_native(client: Any, provider_id: str) -> str:
    """Check the declared Native Key Provider exists and is one, protect it in the gate; return its snapshot."""
    info = providers.all_providers(client).get(provider_id)
    if info is None:
        raise LabProviderMissing(f"vCenter {client.name} has no key provider {provider_id!r} (key_provider: type "
                                 "native); create it (or restore its backup) in the vSphere Client first: the SOAP "
                                 "API cannot create a Native Key Provider")
    if info.managementType != providers.NATIVE:
        raise LabProviderMissing(f"key provider {provider_id!r} of vCenter {client.name} is a {info.managementType} "
                                 "provider, not the Native Key Provider the inventory declares")
    client.gate.protect_provider(provider_id)
    client.recorder.note(f"lab Native Key Provider used (never changed) on {client.name}",
                         {"id": provider_id, **providers.facts(info)})
    return SoapAdapter.Serialize(info).decode("utf-8")


def require_native_unchanged(client: Any, provider_id: str, before: str) -> None:
    after = native_snapshot(client, provider_id)
    if after != before:
        raise LabProviderChanged(f"the lab's Native Key Provider {provider_id} on {client.name} changed during the "
                                 f"run:\nbefore: {before}\nafter:  {after}")
