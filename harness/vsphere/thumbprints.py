"""The destination vCenter's certificate thumbprint for a cross-vCenter ServiceLocator.

`ServiceLocator.sslThumbprint` is the SHA-1 of the destination's DER certificate as colon-separated
hex pairs, computed the way community.vmware does it (`plugins/module_utils/vmware.py`
`get_cert_fingerprint`: `ssl.get_server_certificate`, `PEM_cert_to_DER_cert`, `hashlib.sha1`,
pairs joined with ':'). Without Enhanced Linked Mode the source vCenter does not trust the
destination's certificate and needs it (API.md 3.2, 11).
"""
from __future__ import annotations

import hashlib
import ssl
from typing import Any
from urllib.parse import urlparse


def sha1_thumbprint(der: bytes) -> str:
    digest = hashlib.sha1(der).hexdigest()  # noqa: S324 - the format vSphere asks for, not a security hash
    return ":".join(a + b for a, b in zip(digest[::2], digest[1::2]))


def certificate_der(si: Any, url: str, timeout: float = 30.0) -> bytes:
    """The DER certificate a vCenter presents: asked of the fake's stub, or read from the TLS handshake."""
    stub = getattr(si, "_stub", None)
    reader = getattr(stub, "server_certificate_der", None)
    if reader is not None:   # the in-process fake: its own per-vCenter certificate
        return reader()
    parsed = urlparse(url)
    pem = ssl.get_server_certificate((parsed.hostname or "127.0.0.1", parsed.port or 443), timeout=timeout)
    return ssl.PEM_cert_to_DER_cert(pem)


def locator_thumbprint(entry: Any, si: Any, url: str, timeout: float = 30.0) -> tuple[str, str]:
    """(thumbprint, where it came from): the inventory's pin, else the certificate read now.

    The certificate read here is unverified (as community.vmware reads it); where the inventory pins the
    vCenter's SHA-256 (`tls.thumbprint_sha256`), the certificate must match that pin or nothing is sent.
    """
    if entry.locator_thumbprint:
        return entry.locator_thumbprint, "inventory pin (locator_thumbprint)"
    der = certificate_der(si, url, timeout)
    pin = (entry.tls.thumbprint_sha256 or "").replace(":", "").lower()
    if pin and hashlib.sha256(der).hexdigest() != pin:
        from harness.vsphere.errors import EnvironmentFault
        raise EnvironmentFault(f"vCenter {entry.name}: the certificate at {url} does not match the inventory's "
                               "tls.thumbprint_sha256 pin; no sslThumbprint is taken from it")
    return sha1_thumbprint(der), f"certificate presented by {url} at connect time"
