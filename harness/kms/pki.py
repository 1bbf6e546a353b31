"""Throwaway PKI for the embedded KMS, built with the `cryptography` library only.

PyKMIP's server speaks mutual TLS 1.2: it needs a server certificate, a CA to
verify clients against, and client certificates carrying the clientAuth
extended key usage (without it every request is refused). Everything here is
short-lived (about two days) and lives in a per-run directory.

EC P-256 is used throughout: PyKMIP's TLS 1.2 suite list includes
ECDHE-ECDSA-AES128/256-GCM, which OpenSSL 3 negotiates with these keys.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=2)
# Backdate a little so a slightly skewed clock (or a VM) still accepts the certificate.
BACKDATE = dt.timedelta(hours=1)

__all__ = ["CertPair", "ThrowawayCA", "load_certificate"]


@dataclass(frozen=True)
class CertPair:
    """A certificate and its private key, as PEM files on disk."""

    cert_path: Path
    key_path: Path

    def cert_pem(self) -> str:
        return self.cert_path.read_text()

    def key_pem(self) -> str:
        return self.key_path.read_text()


def load_certificate(pem: str | bytes) -> x509.Certificate:
    """Parse the first certificate of a PEM string (tests and callers inspect EKUs/SANs)."""
    data = pem.encode() if isinstance(pem, str) else pem
    return x509.load_pem_x509_certificate(data)


def _write_private(path: Path, data: bytes) -> None:
    """Write key material readable by the owner only (0600), even if the file existed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def _write_public(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o644)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _safe_filename(name: str) -> str:
    """File stem for a certificate name or CN (CNs may contain spaces or slashes)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return stem or "cert"


def _san_entries(hosts: list[str]) -> list[x509.GeneralName]:
    entries: list[x509.GeneralName] = []
    for host in hosts:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            entries.append(x509.DNSName(host))
    return entries


class ThrowawayCA:
    """A CA created fresh for one run; it signs the KMS server and client certificates."""

    def __init__(self, directory: Path, name: str = "vcrypt-harness throwaway CA") -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.ca_path = self.directory / "ca.pem"
        self.ca_key_path = self.directory / "ca.key"
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.timezone.utc)
        public = self._key.public_key()
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        _write_private(self.ca_key_path, _key_pem(self._key))
        _write_public(self.ca_path, _cert_pem(self._cert))

    @property
    def certificate(self) -> x509.Certificate:
        return self._cert

    def ca_pem(self) -> str:
        return self.ca_path.read_text()

    def issue_server(
        self,
        name: str,
        hosts: list[str] | None = None,
        directory: Path | None = None,
    ) -> CertPair:
        """Server certificate (serverAuth) whose SAN covers `hosts` (IPs and DNS names)."""
        hosts = list(hosts) if hosts else ["127.0.0.1", "localhost"]
        builder = self._leaf_builder(name, ExtendedKeyUsageOID.SERVER_AUTH).add_extension(
            x509.SubjectAlternativeName(_san_entries(hosts)), critical=False
        )
        return self._sign_and_write(builder, f"server-{_safe_filename(name)}", directory)

    def issue_client(self, common_name: str, directory: Path | None = None) -> CertPair:
        """Client certificate (clientAuth); its CN is the KMIP owner of every key it creates."""
        builder = self._leaf_builder(common_name, ExtendedKeyUsageOID.CLIENT_AUTH)
        return self._sign_and_write(builder, f"client-{_safe_filename(common_name)}", directory)

    def _leaf_builder(self, common_name: str, usage: x509.ObjectIdentifier) -> x509.CertificateBuilder:
        now = dt.datetime.now(dt.timezone.utc)
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self._cert.subject)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=True, key_cert_sign=False,
                    crl_sign=False, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
        )

    def _sign_and_write(
        self, builder: x509.CertificateBuilder, stem: str, directory: Path | None
    ) -> CertPair:
        key = ec.generate_private_key(ec.SECP256R1())
        public = key.public_key()
        cert = (
            builder.public_key(public)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        target = Path(directory) if directory is not None else self.directory
        target.mkdir(parents=True, exist_ok=True)
        pair = CertPair(cert_path=target / f"{stem}.pem", key_path=target / f"{stem}.key")
        _write_private(pair.key_path, _key_pem(key))
        _write_public(pair.cert_path, _cert_pem(cert))
        return pair
