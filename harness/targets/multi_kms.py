"""The KMS-MULTI family's own key provider: one KMS cluster with several servers the harness may stop.

Stopping a server of the provider every other test uses would fail those tests, so the family gets
a cluster of its own: on the embedded KMS, PyKMIP replicas on one database (harness/kms/replicas.py),
started on first use and stopped with the environment. A KMS the harness did not start (a lab's, or
the strict second KMS) cannot be told to stop one server: `start` returns None and the tests skip
with `capability: ...`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.kms.replicas import ReplicatedKms

SERVERS = 2


@dataclass
class MultiServerKms:
    """The replicas and how to reach them: `endpoint_fields(provider_id)` for registering them as one provider
    (Environment.multi_server_endpoints makes KmsEndpoints of them)."""
    cluster: ReplicatedKms
    ca_pem: str = field(repr=False)
    client_cert_pem: str = field(repr=False)
    client_key_pem: str = field(repr=False)   # handed to UploadClientCert only; never printed

    @property
    def names(self) -> list[str]:
        return list(self.cluster.servers)

    def endpoint_fields(self, provider_id: str) -> list[dict[str, Any]]:
        """The KmsEndpoint fields of each server, all naming `provider_id` (role "multi"), in registration order."""
        cert = self.cluster.client_cert
        return [dict(role="multi", provider_id=provider_id, server_name=name, address=server.host,
                     port=server.port, ca_pem=self.ca_pem, client_cert_pem=self.client_cert_pem,
                     client_key_pem=self.client_key_pem, ca_path=server.ca_path,
                     client_cert_path=cert.cert_path, client_key_path=cert.key_path)
                for name, server in self.cluster.servers.items()]

    def stop_server(self, name: str) -> None:
        """A real outage of one server: its process is stopped (the others keep the same keys)."""
        self.cluster.servers[name].stop()

    def start_server(self, name: str) -> None:
        """Start a stopped server again, on the same port and database."""
        self.cluster.servers[name].start()

    def start_all(self) -> None:
        for server in self.cluster.servers.values():
            server.start()

    def running(self, name: str) -> bool:
        return self.cluster.servers[name].running

    def stop(self) -> None:
        self.cluster.stop()


def start(embedded_kms: Any, workdir: Path, count: int = SERVERS) -> MultiServerKms | None:
    """The family's cluster beside the embedded PyKMIP KMS (its CA and vCenter identity); None without one."""
    if embedded_kms is None:
        return None
    cluster = ReplicatedKms(workdir, embedded_kms.ca, embedded_kms.client_cert, count=count).start()
    client = embedded_kms.client_cert
    return MultiServerKms(cluster, embedded_kms.ca.ca_pem(), client.cert_pem(), client.key_pem())
