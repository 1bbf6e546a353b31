"""A KMS cluster of several servers that serve the same keys (KMS-MULTI-*): PyKMIP replicas on one database.

vSphere's key provider (KMS cluster) may name several KMIP servers; vCenter expects every one of them
to serve the same keys, and making them do so is the KMS vendor's job (vSphere Web Services SDK
Programming Guide 6.5/6.7, "Key Management Server": the instances of a cluster must come from one vendor
and replicate keys). PyKMIP has no replication, so the embedded cluster's servers are separate PyKMIP
processes on ONE SQLite database (each KMIP request is its own SQLAlchemy session, so a key one server
created is read by the other; SQLite's file locks serialise the writes). Stopping one process is a real
outage of that server; the others keep answering with the same keys.

The cluster uses the embedded KMS's CA and client identity (PyKMIP lets only the creating CN read a
key), and a UID range of its own, disjoint from the shared and dedicated clusters.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.kms.pki import CertPair, ThrowawayCA
from harness.kms.server import KmsError, KmsServer, _stop_all, start_together
from harness.workdirs import private_folder

__all__ = ["ReplicatedKms", "UID_BASE"]

UID_BASE = 300000


class ReplicatedKms:
    """`count` PyKMIP servers (`<name>-1` ...) on one database: one KMS cluster with several servers."""

    def __init__(self, workdir: Path, ca: ThrowawayCA, client_cert: CertPair, count: int = 2,
                 name: str = "multi", ready_timeout: float = 15.0) -> None:
        if count < 2:
            raise ValueError("a replicated KMS needs at least two servers")
        self.workdir = private_folder(Path(workdir).resolve(), restrict_existing=False)
        self.ca = ca
        self.client_cert = client_cert
        self.database_path = self.workdir / "kms.sqlite"
        self.servers: dict[str, KmsServer] = {
            f"{name}-{i}": KmsServer(self.workdir / f"{name}-{i}", ca, name=f"{name}-{i}", uid_base=UID_BASE,
                                     ready_timeout=ready_timeout, database_path=self.database_path)
            for i in range(1, count + 1)}

    def start(self) -> "ReplicatedKms":
        """Start the first server alone (it creates the schema and seeds the UID range), then the others."""
        servers = list(self.servers.values())
        try:
            servers[0].start()
        except BaseException:
            self.stop()
            raise
        start_together(servers[1:], self.stop)
        return self

    def stop(self) -> None:
        errors = _stop_all(self.servers.values())
        if errors:
            raise KmsError("; ".join(str(e) for e in errors))

    def client(self, name: str, timeout: float = 5.0) -> Any:
        """A KmipClient for one server with the vCenter identity (the keys' owner)."""
        from harness.kms.client import KmipClient
        server = self.servers[name]
        return KmipClient.from_paths(server.host, server.port, server.ca_path, self.client_cert.cert_path,
                                     self.client_cert.key_path, timeout=timeout)

    def describe(self) -> dict[str, Any]:
        return {"database_path": str(self.database_path),
                "servers": {name: {"address": s.address, "running": s.running} for name, s in self.servers.items()}}
