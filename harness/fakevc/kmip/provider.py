"""A key provider as one fake vCenter holds it: its KMIP servers and the trust material uploaded.

Below the model (crypto_manager.py keeps the providers; kmip/ connects to them), so the KMIP code
needs nothing above it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

VCENTER, TRUST_AUTHORITY, NATIVE = "vCenter", "trustAuthority", "nativeProvider"


@dataclass(eq=False)
class Provider:
    """One key provider of one vCenter: its servers and the trust material uploaded for it."""
    id: str
    management_type: str = VCENTER
    servers: dict[str, Any] = field(default_factory=dict)      # name -> vim KmipServerInfo
    passwords: dict[str, str] = field(default_factory=dict, repr=False)
    server_certs: list[str] = field(default_factory=list, repr=False)
    client_cert: str | None = field(default=None, repr=False)
    client_key: str | None = field(default=None, repr=False)
    pending_self_signed: tuple[str, str] | None = field(default=None, repr=False)   # (cert, key)
    pending_csr: tuple[str, str] | None = field(default=None, repr=False)           # (csr, key)
    entity_defaults: set[str] = field(default_factory=set)                         # entity moIds
    reachable: bool | None = None          # last health observation (kms_health); None = not looked yet
    health_cause: str = ""
    clients: dict[str, Any] = field(default_factory=dict, repr=False)
    # A Native Key Provider (management_type NATIVE): its key derivation key and whether it was backed up
    # (kmip/native.py has the sources); None for every KMIP-backed provider.
    kdk: bytes | None = field(default=None, repr=False)
    has_backup: bool = False

    @property
    def fully_trusted(self) -> bool:
        return bool(self.server_certs and self.client_cert and self.client_key)

    def drop_clients(self) -> None:
        """Close cached KMIP connections (trust or addresses changed, or the provider went away)."""
        for kmip in self.clients.values():
            kmip.close()
        self.clients.clear()
