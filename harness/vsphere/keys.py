"""Key providers and keys through CryptoManagerKmip: the standard-provider trust flow, GenerateKey.

The trust flow is the one community.vmware, PowerCLI and govc use (API.md 1.1): RegisterKmipServer,
RetrieveKmipServerCert + UploadKmipServerCert (vCenter trusts the KMS), UploadClientCert (the KMS
trusts vCenter), MarkDefault only when no default exists.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyVmomi import vim

from harness.vsphere.vms import KeyRef


class KeyGenerationFailed(AssertionError):
    """GenerateKey answered success == False: a product verdict, carrying the reason."""


@dataclass(frozen=True)
class ProviderStatus:
    provider_id: str
    overall: str | None
    servers: tuple[dict[str, Any], ...]


def crypto_manager(client: Any) -> Any:
    """content.cryptoManager (read via RetrieveContent: vcsim blanks it in `si.content` fetches)."""
    manager = client.content.cryptoManager
    if manager is None:
        from harness.vsphere.errors import TargetLacks
        raise TargetLacks(client.name, "CryptoManagerKmip")
    return manager


def provider_ref(provider_id: str) -> Any:
    return vim.encryption.KeyProviderId(id=provider_id)


def list_providers(client: Any) -> dict[str, Any]:
    """provider id -> KmipClusterInfo, as ListKmipServers reports them."""
    clusters = client.invoke(crypto_manager(client), "ListKmipServers") or []
    return {c.clusterId.id: c for c in clusters}


def default_provider(client: Any) -> str | None:
    for provider_id, info in list_providers(client).items():
        if info.useAsDefault:
            return provider_id
    return None


def register_provider(client: Any, endpoint: Any, provider_id: str | None = None, make_default: bool = True,
                      trust_client: bool = True, with_trust: bool = True) -> bool:
    """Register `endpoint` (a KmsEndpoint) as a standard key provider with full trust; idempotent.

    With `trust_client=False` the client certificate is not uploaded (UploadClientCert skipped):
    vCenter trusts the KMS, but the KMS has no reason to trust vCenter (KMS-STATUS).
    With `with_trust=False` (a target without the `kms_trust` capability, e.g. vcsim, which lacks
    RetrieveKmipServerCert / UploadKmipServerCert / UploadClientCert) the trust steps are skipped.
    Returns True when this call added the provider (the caller then owns its removal).
    """
    cm = crypto_manager(client)
    provider_id = provider_id or endpoint.provider_id
    existing = list_providers(client)
    added = provider_id not in existing or not any(s.name == endpoint.server_name for s in existing[provider_id].servers or [])
    info = vim.encryption.KmipServerInfo(name=endpoint.server_name, address=endpoint.address, port=endpoint.port,
                                         userName=getattr(endpoint, "username", None))
    if added:
        # KmipServerSpec.password: the KMIP credential's password (vSphere API: encryption.KmipServerSpec).
        client.invoke(cm, "RegisterKmipServer", server=vim.encryption.KmipServerSpec(
            clusterId=provider_ref(provider_id), info=info, password=getattr(endpoint, "password", None)))
    if with_trust:
        establish_trust(client, endpoint, provider_id, info, trust_client)
    if not trust_client:
        return added
    if make_default and default_provider(client) is None:
        client.invoke(cm, "MarkDefault", clusterId=provider_ref(provider_id))
    return added


def establish_trust(client: Any, endpoint: Any, provider_id: str, info: Any, trust_client: bool = True) -> None:
    """The certificate trust steps: vCenter trusts the KMS; unless `trust_client` is False, the KMS vCenter."""
    cm = crypto_manager(client)
    cert = server_certificate(client, provider_id, info)
    if cert is None or not cert.certificate:
        raise ConnectionError(f"vCenter {client.name} could not retrieve the certificate of KMS "
                              f"{endpoint.address}:{endpoint.port}")
    client.invoke(cm, "UploadKmipServerCert", cluster=provider_ref(provider_id), certificate=cert.certificate)
    if trust_client:
        client.invoke(cm, "UploadClientCert", cluster=provider_ref(provider_id), certificate=endpoint.client_cert_pem,
                      privateKey=endpoint.client_key_pem)


def register_unreachable_provider(client: Any, provider_id: str, port: int, address: str = "127.0.0.1") -> None:
    """A provider pointing where no KMS answers (KMS-STATUS red without stopping a KMS); on a real
    target `address` comes from the inventory's kms.unreachable (loopback is the appliance itself)."""
    info = vim.encryption.KmipServerInfo(name=f"{provider_id}-server", address=address, port=port)
    client.invoke(crypto_manager(client), "RegisterKmipServer",
                  server=vim.encryption.KmipServerSpec(clusterId=provider_ref(provider_id), info=info))


def move_server(client: Any, provider_id: str, server_name: str, address: str, port: int,
                username: str | None = None, password: str | None = None) -> None:
    """UpdateKmipServer: point one server of a provider at another address and port (sending its KMIP
    credential again, when it has one: KmipServerSpec.password)."""
    info = vim.encryption.KmipServerInfo(name=server_name, address=address, port=port, userName=username)
    client.invoke(crypto_manager(client), "UpdateKmipServer",
                  server=vim.encryption.KmipServerSpec(clusterId=provider_ref(provider_id), info=info, password=password))


def remove_provider(client: Any, provider_id: str, only_servers: list[str] | None = None) -> None:
    """Remove the servers of a provider (community.vmware's way to delete a standard provider): every
    server, or only `only_servers` (the ones the caller added), so a server it did not add stays."""
    cm = crypto_manager(client)
    info = list_providers(client).get(provider_id)
    for server in (info.servers or []) if info else []:
        if only_servers is not None and server.name not in only_servers:
            continue
        client.invoke(cm, "RemoveKmipServer", clusterId=provider_ref(provider_id), serverName=server.name)


def default_for(client: Any, entity: Any) -> str | None:
    """The provider used by default for `entity` (its own, an ancestor's, else the global one; 7.0)."""
    found = client.invoke(crypto_manager(client), "GetDefaultKmsCluster", entity=entity, defaultsToParent=True)
    return found.id if found is not None else None


def set_default(client: Any, provider_id: str | None) -> None:
    cm = crypto_manager(client)
    if provider_id is None:
        client.invoke(cm, "SetDefaultKmsCluster", entity=None, clusterId=None)
    else:
        client.invoke(cm, "MarkDefault", clusterId=provider_ref(provider_id))


def status(client: Any, provider_id: str) -> ProviderStatus:
    clusters = [vim.encryption.KmipClusterInfo(clusterId=provider_ref(provider_id), useAsDefault=False)]
    result = servers_status(client, clusters)
    for cluster in result:
        if cluster.clusterId.id == provider_id:
            servers = tuple({"name": s.name, "status": s.status, "connection": s.connectionStatus,
                             "client_trusts_server": s.clientTrustServer, "server_trusts_client": s.serverTrustClient}
                            for s in cluster.servers or [])
            return ProviderStatus(provider_id, cluster.overallStatus, servers)
    return ProviderStatus(provider_id, None, ())


def is_active(client: Any, provider_id: str) -> bool:
    return bool(client.invoke(crypto_manager(client), "IsKmsClusterActive", cluster=provider_ref(provider_id)))


def generate_key_result(client: Any, provider_id: str | None = None) -> Any:
    """The raw CryptoKeyResult (success may be False: that is not an exception)."""
    return client.invoke(crypto_manager(client), "GenerateKey",
                         keyProvider=provider_ref(provider_id) if provider_id else None)


def generate_key(client: Any, provider_id: str | None = None) -> KeyRef:
    """A new key from the provider (default when None); KeyGenerationFailed when success is False."""
    result = generate_key_result(client, provider_id)
    if not result.success:
        raise KeyGenerationFailed(f"GenerateKey on {provider_id or 'the default provider'} failed: {result.reason}")
    return (result.keyId.providerId.id, result.keyId.keyId)


def key_status(client: Any, keys: list[KeyRef]) -> list[Any]:
    from harness.vsphere.crypto import key_id
    return client.invoke(crypto_manager(client), "QueryCryptoKeyStatus",
                         keyIds=[key_id(k) for k in keys], checkKeyBitMap=0x07) or []


def servers_status(client: Any, clusters: list[Any]) -> list[Any]:
    """RetrieveKmipServersStatus_Task for the given KmipClusterInfo list, as the task returns it."""
    return client.invoke(crypto_manager(client), "RetrieveKmipServersStatus_Task", clusters=clusters) or []


def server_certificate(client: Any, provider_id: str, server: Any) -> Any:
    """RetrieveKmipServerCert: the certificate vCenter sees at a KMS (`server`: a KmipServerInfo)."""
    return client.invoke(crypto_manager(client), "RetrieveKmipServerCert", keyProvider=provider_ref(provider_id),
                         server=server)
