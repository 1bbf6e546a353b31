"""Each fake vCenter's own TLS certificate (self-signed, its own key), so a ServiceLocator's
`sslThumbprint` has something real to match: a cross-vCenter call between fakes that do not trust
each other must name the destination's SHA-1 thumbprint (API.md 3.2/11, community.vmware
`vmware_guest_cross_vc_clone`). The fake listens on no socket: the stub adapter hands out the DER.
"""
from __future__ import annotations

import datetime
from urllib.parse import urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed_der(url: str, name: str) -> bytes:
    """A VMCA-like self-signed certificate for the vCenter at `url` (a fresh EC key each time)."""
    host = urlparse(url).hostname or "127.0.0.1"
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host),
                         x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"vcrypt fake vCenter {name}")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)
