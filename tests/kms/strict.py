"""The strict KMS (harness/kms/strict) for the project's tests: built once, skipped (failed in CI) without Go."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import yaml

from harness.kms.pki import ThrowawayCA
from harness.kms.strict import StrictKms, StrictKmsUnavailable, StrictModes, build, cached_binary
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]


def strict_binary() -> Path:
    """The strictkms binary, building it with the newest Go >= 1.25 on the machine when not cached."""
    found = cached_binary()
    if found is not None:
        return found
    try:
        return build()
    except StrictKmsUnavailable as err:
        require(str(err), "Go >= 1.25 and the Go module proxy for the strict KMS")
        raise


# ---- the default suites against the strict KMS: an inventory like fake.yaml, with external KMSes ------

@contextlib.contextmanager
def strict_lab(tmp: Path, mode: str, base: str = "fake.yaml", read_identity: str = "reader") -> Iterator[Path]:
    """Two strict KMSes (shared, dedicated) in `mode` and an inventory `base` pointing at them.

    vCenter's client certificate is `vcrypt-vcenter`; the harness reads with its own
    `vcrypt-harness-reader` identity, as on a real lab (an owner-only KMS refuses it), or none at all.
    """
    ca = ThrowawayCA(tmp / "pki")
    vcenter = ca.issue_client("vcrypt-vcenter", directory=tmp / "pki")
    reader = ca.issue_client("vcrypt-harness-reader", directory=tmp / "pki")
    binary = strict_binary()
    modes = StrictModes.parse(mode)
    servers = []
    try:
        data = yaml.safe_load((ROOT / "inventories" / base).read_text())
        data["kms"] = {"embedded": False}
        for role, provider in (("shared", "vcrypt-shared-kms"), ("dedicated", "vcrypt-dedicated-kms")):
            kms = StrictKms(binary, tmp / f"kms-{role}", ca, modes, name=f"{role}-kms").start()
            servers.append(kms)
            entry = {"provider_id": provider, "server_name": f"{role}-kms", "address": kms.host, "port": kms.port,
                     "ca": str(ca.ca_path), "client_cert": str(vcenter.cert_path), "client_key": str(vcenter.key_path),
                     "read_identity": ("none" if read_identity == "none" else
                                       {"client_cert": str(reader.cert_path), "client_key": str(reader.key_path)})}
            if kms.username:
                secret = tmp / f"kms-{role}.password"
                secret.write_text(kms.password or "")
                secret.chmod(0o600)
                entry.update(username=kms.username, password_file=str(secret))
            data["kms"][role] = entry
        inventory = tmp / f"strict-{mode}.yaml"
        inventory.write_text(yaml.safe_dump(data, sort_keys=False))
        yield inventory
    finally:
        for kms in servers:
            kms.stop()
