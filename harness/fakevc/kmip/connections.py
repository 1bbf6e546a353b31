"""KMIP connections of the fake's key providers: one cached connection per provider server.

Below the model: the crypto manager, the KMS health checks and the key operations all reach a KMS
through these (harness/kms/client.py, real KMIP over mutual TLS with the provider's uploaded trust).
"""
from __future__ import annotations

from typing import Any

from harness.fakevc.kmip.provider import Provider
from harness.kms.client import KmipClient

KMIP_TIMEOUT = 3.0


def client(prov: Provider, server_name: str) -> KmipClient:
    """The cached KMIP connection to one server of a provider, with the provider's trust material."""
    cached = prov.clients.get(server_name)
    if cached is None:
        info = prov.servers[server_name]
        # vCenter sends the server's KMIP credential (KmipServerInfo.userName + the spec's password).
        cached = KmipClient(info.address, info.port, "\n".join(prov.server_certs), prov.client_cert,
                            prov.client_key, timeout=KMIP_TIMEOUT, username=info.userName or None,
                            password=prov.passwords.get(server_name))
        prov.clients[server_name] = cached
    return cached


def forget_key_material(vc: Any) -> None:
    """Drop cached KEKs (a KMS was found unreachable: nothing may be served from memory)."""
    vc.crypto.kek_cache.clear()


def close(vc: Any) -> None:
    """Close every KMIP connection this vCenter holds."""
    for prov in vc.crypto.providers.values():
        prov.drop_clients()
