"""The embedded KMS as the strict second KMS (`kms: {embedded: true, strict: [modes]}`).

Why: the lab rehearsal (inventories/fake-lab.yaml) should meet a KMS as demanding as a lab's, not
PyKMIP. Two strictkms servers (shared, dedicated; harness/kms/strict) on 127.0.0.1 with a throwaway
CA; the fake vCenters use one client identity and the harness reads with another, as on a real
lab (so an owner-only mode makes the KMS-side checks not observable). Without a Go toolchain that
can build it the run uses PyKMIP and says why (run.json: kms.strict_fallback).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.kms.pki import ThrowawayCA
from harness.kms.strict import KMIP_GO_VERSION, StrictKms, StrictKmsUnavailable, StrictModes, build


@dataclass
class StrictCluster:
    """The running strict servers, the identities, and what to describe in run.json."""
    ca: ThrowawayCA
    servers: dict[str, StrictKms]
    vcenter: Any
    reader: Any
    modes: StrictModes
    describe: dict[str, Any] = field(default_factory=dict)

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


def strict_binary() -> Path:
    """The strictkms binary (cached, or built with the newest Go >= 1.25 on the machine)."""
    return build()


def start(workdir: Path, modes: list[str]) -> tuple[StrictCluster | None, str | None]:
    """(cluster, None), or (None, why not) when the strict KMS cannot be built here."""
    try:
        binary = strict_binary()
    except StrictKmsUnavailable as err:
        return None, str(err)
    parsed = StrictModes.parse(modes)
    ca = ThrowawayCA(workdir / "pki")
    cluster = StrictCluster(ca=ca, servers={}, vcenter=ca.issue_client("vcrypt-vcenter", directory=workdir / "pki"),
                            reader=ca.issue_client("vcrypt-harness-reader", directory=workdir / "pki"), modes=parsed)
    try:
        for role in ("shared", "dedicated"):
            cluster.servers[role] = StrictKms(binary, workdir / role, ca, parsed, name=f"{role}-kms").start()
    except BaseException:
        cluster.stop()
        raise
    cluster.describe = {"product": f"strictkms (github.com/ovh/kmip-go {KMIP_GO_VERSION})", "modes": parsed.label()}
    return cluster, None
