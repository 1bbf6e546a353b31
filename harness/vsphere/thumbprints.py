"""The destination vCenter's certificate thumbprint for a cross-vCenter ServiceLocator.

`ServiceLocator.sslThumbprint` is the SHA-1 of the destination's DER certificate as colon-separated
hex pairs, computed the way community.vmware does it (`plugins/module_utils/vmware.py`
`get_cert_fingerprint`: `ssl.get_server_certificate`, `PEM_cert_to_DER_cert`, `hashlib.sha1`,
pairs joined with ':'). Without Enhanced Linked Mode the source vCenter does not trust the
destination's certificate and needs it (API.md 3.2, 11).
"""
from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlparse

from harness.tls import HandshakeTimeout, TlsRejected, checked_context, normalise_pin, peer_certificate, sha256_hex


def sha1_thumbprint(der: bytes) -> str:
    digest = hashlib.sha1(der).hexdigest()  # noqa: S324 - the format vSphere asks for, not a security hash
    return ":".join(a + b for a, b in zip(digest[::2], digest[1::2]))


def certificate_der(si: Any, url: str, tls: Any = None, timeout: float = 30.0) -> bytes:
    """The DER certificate a vCenter presents: asked of the fake's stub, or read from a TLS handshake
    checked as the inventory's `tls` says (CA bundle, SHA-256 pin, or explicitly insecure)."""
    stub = getattr(si, "_stub", None)
    reader = getattr(stub, "server_certificate_der", None)
    if reader is not None:   # the in-process fake: its own per-vCenter certificate
        return reader()
    if tls is None:
        raise ValueError("a vCenter's certificate is read only as its inventory entry's tls settings say")
    parsed = urlparse(url)
    context = checked_context(ca_bundle=tls.ca_bundle, pin=tls.thumbprint_sha256, insecure=tls.insecure,
                              handshake_timeout=timeout, read_timeout=timeout)
    return peer_certificate(parsed.hostname or "127.0.0.1", parsed.port or 443, context, timeout)


def locator_thumbprint(entry: Any, si: Any, url: str, timeout: float = 30.0) -> tuple[str, str]:
    """(thumbprint, where it came from): the inventory's pin, else the certificate read now.

    The certificate is read as the harness logs in (harness/tls.py): verified against the CA bundle,
    or matched against the `tls.thumbprint_sha256` pin; a certificate that fails is refused and no
    ServiceLocator (which carries the destination's password) is built from it. Only `insecure: true`
    reads it unverified, as community.vmware does.
    """
    if entry.locator_thumbprint:
        return entry.locator_thumbprint, "inventory pin (locator_thumbprint)"
    from harness.vsphere.errors import EnvironmentFault
    try:
        der = certificate_der(si, url, entry.tls, timeout)
    except (TlsRejected, HandshakeTimeout, OSError) as err:
        raise EnvironmentFault(f"vCenter {entry.name}: the certificate at {url} was refused ({err}); "
                               "no sslThumbprint is taken from it and no ServiceLocator is sent") from None
    pin = normalise_pin(entry.tls.thumbprint_sha256 or "")
    if pin and sha256_hex(der) != pin:   # the fake hands its certificate over without a handshake
        raise EnvironmentFault(f"vCenter {entry.name}: the certificate at {url} does not match the inventory's "
                               "tls.thumbprint_sha256 pin; no sslThumbprint is taken from it")
    return sha1_thumbprint(der), f"certificate presented by {url} at connect time ({entry.tls.mode})"
