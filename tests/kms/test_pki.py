"""The throwaway CA issues what PyKMIP's mutual TLS 1.2 needs (EKUs, SANs, short validity)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harness.kms.pki import CertPair, ThrowawayCA, load_certificate


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayCA:
    return ThrowawayCA(tmp_path_factory.mktemp("pki"))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _eku(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def _cn(cert: x509.Certificate) -> str:
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def test_ca_is_a_self_signed_ca_with_private_key(ca: ThrowawayCA) -> None:
    cert = load_certificate(ca.ca_pem())
    assert ca.ca_path.exists() and ca.ca_path.read_text() == ca.ca_pem()
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert cert.issuer == cert.subject
    assert _cn(cert) == "vcrypt-harness throwaway CA"
    cert.verify_directly_issued_by(cert)
    assert _mode(ca.ca_key_path) == 0o600
    assert "PRIVATE KEY" not in ca.ca_pem()


def test_server_cert_has_server_auth_and_sans(ca: ThrowawayCA) -> None:
    pair = ca.issue_server("kms-a")
    cert = load_certificate(pair.cert_pem())
    cert.verify_directly_issued_by(ca.certificate)
    assert _eku(cert) == [ExtendedKeyUsageOID.SERVER_AUTH]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert _mode(pair.key_path) == 0o600


def test_server_cert_custom_hosts(ca: ThrowawayCA) -> None:
    cert = load_certificate(ca.issue_server("kms-b", ["10.0.0.5", "kms.lab"]).cert_pem())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.5")]
    assert san.get_values_for_type(x509.DNSName) == ["kms.lab"]


def test_client_cert_has_client_auth_and_cn(ca: ThrowawayCA) -> None:
    pair = ca.issue_client("vcrypt-vcenter")
    cert = load_certificate(pair.cert_pem())
    cert.verify_directly_issued_by(ca.certificate)
    assert _eku(cert) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert _cn(cert) == "vcrypt-vcenter"
    assert _mode(pair.key_path) == 0o600
    assert pair.key_pem().startswith("-----BEGIN " + "PRIVATE KEY-----")  # split: no key-looking literal in git


def test_validity_is_about_two_days(ca: ThrowawayCA) -> None:
    cert = load_certificate(ca.issue_client("short-lived").cert_pem())
    now = dt.datetime.now(dt.timezone.utc)
    assert cert.not_valid_before_utc < now
    assert dt.timedelta(days=1, hours=23) < cert.not_valid_after_utc - now <= dt.timedelta(days=2)


def test_odd_common_names_get_safe_file_names(ca: ThrowawayCA, tmp_path: Path) -> None:
    pair = ca.issue_client("vc a/../b", directory=tmp_path)
    assert pair.cert_path.parent == tmp_path
    assert "/" not in pair.cert_path.name.replace(str(tmp_path), "")
    assert _cn(load_certificate(pair.cert_pem())) == "vc a/../b"


def test_each_ca_is_distinct(tmp_path: Path) -> None:
    first, second = ThrowawayCA(tmp_path / "one"), ThrowawayCA(tmp_path / "two")
    assert first.ca_pem() != second.ca_pem()
    foreign = load_certificate(second.issue_client("x").cert_pem())
    with pytest.raises(Exception):
        foreign.verify_directly_issued_by(first.certificate)


def test_certificates_work_for_mutual_tls12(ca: ThrowawayCA) -> None:
    """Python's ssl (OpenSSL 3) accepts the pair for TLS 1.2, as PyKMIP's server will."""
    server, client = ca.issue_server("loop"), ca.issue_client("loop-client")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server_ctx.load_verify_locations(cafile=str(ca.ca_path))
    server_ctx.load_cert_chain(str(server.cert_path), str(server.key_path))
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(cafile=str(ca.ca_path))
    client_ctx.load_cert_chain(str(client.cert_path), str(client.key_path))

    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    srv = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    cli = client_ctx.wrap_bio(c_in, c_out, server_hostname="127.0.0.1")
    for _ in range(10):
        for end in (cli, srv):
            try:
                end.do_handshake()
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    assert cli.version() == "TLSv1.2"
    assert _cn(x509.load_der_x509_certificate(srv.getpeercert(binary_form=True))) == "loop-client"


def test_certpair_is_frozen(tmp_path: Path) -> None:
    pair = CertPair(tmp_path / "a.pem", tmp_path / "a.key")
    with pytest.raises(Exception):
        pair.cert_path = tmp_path / "b.pem"  # type: ignore[misc]
