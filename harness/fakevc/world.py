"""The fake world: one or more fake vCenters in one process, sharing one lock and the real KMS.

Cross-vCenter operations find the other vCenter by the URL in a ServiceLocator, and every call
on any vCenter runs under the world's lock, so a migration between two fakes is atomic.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from harness.fakevc import catalogue  # noqa: F401  (registers every defect before ActiveDefects checks names)
from harness.fakevc.defects import ActiveDefects


@dataclass(frozen=True)
class ProviderSeed:
    """A key provider the fake lab comes up with (as if an admin had configured it already)."""
    provider_id: str
    server_name: str
    address: str
    port: int
    server_cert_pem: str = field(repr=False)
    client_cert_pem: str = field(repr=False)
    client_key_pem: str = field(repr=False)   # a private key: never in a repr
    vcenters: tuple[str, ...]
    default: bool = False
    username: str | None = None                                 # the KMIP credential an admin configured
    password: str | None = field(default=None, repr=False)


@dataclass
class VCenterSeed:
    """What one fake vCenter is built from (taken from an inventory entry)."""
    name: str
    url: str
    user: str
    password: str
    version: str = "7.0.3"
    datacenter: str = "DC0"
    cluster: str = "DC0_C0"
    hosts: int = 3
    vms: int = 4
    host_versions: list[str] = field(default_factory=list)
    datastore_capacity_mib: int = 4096
    disk_size_kib: int = 64
    trust_peers: bool = True
    strict_policies: bool = False
    maintenance_hosts: int = 0
    quirks: Any = None   # inventory RealQuirks (None: none of them)


class FakeWorld:
    def __init__(self, defects: list[str] | tuple[str, ...] = (), request_log: Any = None) -> None:
        self.lock = threading.Condition(threading.RLock())
        self.vcenters: dict[str, Any] = {}
        self.defects = ActiveDefects(defects)
        self.request_log = request_log   # a request_log.RequestLog, or None
        # Keys the (shared) KMS does not serve at the moment (fault injection, control.key_lost; LOCK-*).
        self.withheld_keys: set[tuple[str, str]] = set()

    def add_vcenter(self, seed: VCenterSeed, providers: list[ProviderSeed] = ()) -> Any:
        from harness.fakevc.build import build_vcenter
        vc = build_vcenter(self, seed, [p for p in providers if seed.name in p.vcenters])
        self.vcenters[seed.name] = vc
        if self.request_log is not None:
            with self.lock:
                self.request_log.world(vc, "open")
        return vc

    def by_url(self, url: str) -> Any | None:
        """The fake vCenter a ServiceLocator URL names (scheme, case and trailing slash ignored)."""
        wanted = url.rstrip("/").lower()
        for vc in self.vcenters.values():
            if vc.url.rstrip("/").lower() == wanted:
                return vc
        return None

    def adapter(self, name: str, endpoint: str = "vim", version: str | None = None) -> Any:
        from harness.fakevc.adapter import FakeStubAdapter
        return FakeStubAdapter(self.vcenters[name], version=version, endpoint=endpoint)

    def close(self) -> None:
        """Release KMS connections held by the fakes (after logging the final world state)."""
        if self.request_log is not None:
            with self.lock:
                for vc in self.vcenters.values():
                    self.request_log.world(vc, "close")
        for vc in self.vcenters.values():
            closer = getattr(vc, "close", None)
            if closer:
                closer()
