"""KMS health as a vCenter sees it: real connection attempts, trust flags, and outage transitions.

Nothing here runs in the background. Reachability is checked lazily, with a short timeout, when
something would make vCenter look: a key is needed (keys.py records the outcome of the real KMIP
call), RetrieveKmipServersStatus runs, or events / alarm states are read (QueryEvents,
latestEvent, event collectors, GetAlarmState, the root folder's triggeredAlarmState).

When a provider goes from reachable (or not yet looked at) to unreachable the fake posts
`com.vmware.vc.kms.crypto.Unreachable` (error) on the root folder; the default KMS health alarm
(alarms.py) watches that event and turns red. When a provider that was unreachable answers again
the fake posts `com.vmware.vc.kms.crypto.Vendor` ("Retrieved Key Management Server vendor
information.", info) - the closest real id: vCenter reads a KMS's vendor information when it
connects to it; the alarm uses it as its green (reset) trigger. The 7.0 event lists have no
dedicated "KMS reachable again" id, so this choice is the fake's (stated in the alarm's
description too). Removing the only unreachable provider also resets the alarm (see `forget`).
"""
from __future__ import annotations

import datetime
import hashlib
import socket
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyVmomi import vim

from harness.fakevc.defects import defect
from harness.fakevc.kmip import connections
from harness.kms.client import KmsTrustError, KmsUnreachable, fetch_server_certificate

if TYPE_CHECKING:
    from harness.fakevc.kmip.provider import Provider

PROBE_TIMEOUT = 2.0       # seconds; a stopped KMS refuses at once, a hung one costs this much
UNREACHABLE_EVENT = "com.vmware.vc.kms.crypto.Unreachable"
RECOVERED_EVENT = "com.vmware.vc.kms.crypto.Vendor"
VENDOR = "PyKMIP"         # what the embedded KMS would report as its vendor

NO_UNREACHABLE_EVENT = defect(
    "evt-kms-unreachable-no-event", "EVT-KMS-UNREACHABLE",
    "vCenter loses its KMS without posting com.vmware.vc.kms.crypto.Unreachable (so the health alarm stays green)")


# ---- certificates ------------------------------------------------------------------------------
def load_certificate(pem: str) -> x509.Certificate:
    """The first certificate of a PEM text; ValueError with a readable cause otherwise."""
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except (ValueError, TypeError) as err:
        raise ValueError(f"not a PEM certificate ({err})") from None


def load_certificates(pem: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(pem.encode())
    except (ValueError, TypeError) as err:
        raise ValueError(f"not a PEM certificate ({err})") from None
    if not certs:
        raise ValueError("no certificate in the PEM text")
    return certs


def check_key_pair(cert_pem: str, key_pem: str) -> None:
    """ValueError unless `key_pem` is the private key of `cert_pem` (never echoes the key)."""
    cert = load_certificate(cert_pem)
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("the private key is not an unencrypted PEM private key") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    mine = key.public_key().public_bytes(serialization.Encoding.PEM, public)
    theirs = cert.public_key().public_bytes(serialization.Encoding.PEM, public)
    if mine != theirs:
        raise ValueError("the private key does not belong to the certificate")


def certificate_info(pem: str | None) -> Any:
    """vim CertificateInfo for a PEM certificate (None when there is none or it does not parse)."""
    if not pem:
        return None
    try:
        cert = load_certificate(pem)
    except ValueError:
        return None
    now = datetime.datetime.now(datetime.timezone.utc)
    before, after = cert.not_valid_before_utc, cert.not_valid_after_utc
    sha1 = hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()  # noqa: S324 - vCenter's fingerprint
    return vim.encryption.CryptoManagerKmip.CertificateInfo(
        subject=cert.subject.rfc4514_string(), issuer=cert.issuer.rfc4514_string(),
        serialNumber=format(cert.serial_number, "X"), notBefore=before, notAfter=after,
        fingerprint=":".join(sha1[i:i + 2] for i in range(0, len(sha1), 2)), checkTime=now,
        secondsSinceValid=int((now - before).total_seconds()),
        secondsBeforeExpire=int((after - now).total_seconds()))


def trusts(trusted_pems: list[str], leaf_pem: str) -> bool:
    """Whether a leaf certificate is one of the trusted ones or directly issued by one of them."""
    try:
        leaf = load_certificate(leaf_pem)
    except ValueError:
        return False
    for pem in trusted_pems:
        for anchor in load_certificates(pem):
            if anchor == leaf:
                return True
            try:
                leaf.verify_directly_issued_by(anchor)
                return True
            except Exception:  # noqa: BLE001 - InvalidSignature, wrong key type...: "not this one"
                continue
    return False


# ---- probes ------------------------------------------------------------------------------------
@dataclass
class ServerProbe:
    """What one real connection attempt to one KMIP server showed."""
    reachable: bool
    client_trusts_server: bool
    server_trusts_client: bool
    connection: str                 # the free-text connectionStatus
    certificate: str | None = None  # the server's leaf certificate as sent (not verified)


def _context(trusted_pem: str | None, cert_pem: str | None, key_pem: str | None) -> ssl.SSLContext:
    """A TLS 1.2 client context like vCenter's: verify against uploaded certs (if any), present its cert."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    if trusted_pem:
        context.verify_mode = ssl.CERT_REQUIRED
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        context.load_verify_locations(cadata=trusted_pem)
    else:
        context.verify_mode = ssl.CERT_NONE
    if cert_pem and key_pem:
        with tempfile.TemporaryDirectory(prefix="vcrypt-fakevc-") as tmp:
            cert_file, key_file = Path(tmp, "client.pem"), Path(tmp, "client.key")
            cert_file.write_text(cert_pem)
            key_file.touch(mode=0o600)
            key_file.write_text(key_pem)
            context.load_cert_chain(str(cert_file), str(key_file))
    return context


def _handshake(address: str, port: int, context: ssl.SSLContext) -> tuple[bool | None, bool | None, str]:
    """(client trusts server, server trusts client, text) from one TLS handshake; None = not learnt.

    TLS 1.2 order: the client verifies the server's certificate first, then the server decides
    about the client's; a KMIP server that requires client certificates aborts with an alert.
    """
    try:
        with socket.create_connection((address, port), timeout=PROBE_TIMEOUT) as raw:
            with context.wrap_socket(raw) as tls:
                # TLS 1.2: the server's Finished comes only after it accepted the client certificate.
                tls.do_handshake()
        return True, True, "connected"
    except ssl.SSLCertVerificationError as err:
        return False, None, f"vCenter does not trust the KMS certificate ({err.verify_message or err.reason})"
    except ssl.SSLError as err:
        return True, False, f"the KMS refused the client certificate ({err.reason})"
    except OSError as err:
        raise KmsUnreachable(f"{address}:{port}", f"{type(err).__name__}: {err}") from err


def probe_server(provider: "Provider", name: str) -> ServerProbe:
    """One server of a provider as RetrieveKmipServersStatus reports it (real connections only).

    With full trust material the probe is the provider's cached KMIP connection (keys.py): a
    DiscoverVersions round trip. Otherwise a TLS handshake with whatever trust exists tells which
    side refuses whom; with no trust material at all only reachability is learnt.
    """
    info = provider.servers[name]
    try:
        certificate = fetch_server_certificate(info.address, info.port, timeout=PROBE_TIMEOUT)
    except KmsUnreachable as err:
        return ServerProbe(False, False, False, f"Cannot connect to {info.address}:{info.port}: {err.cause}")
    trusted = "\n".join(provider.server_certs) or None
    if trusted and provider.client_cert and provider.client_key:
        try:
            connections.client(provider, name).check()
            return ServerProbe(True, True, True, "Connected", certificate)
        except KmsTrustError as err:
            if err.side == "client":
                return ServerProbe(True, False, False, f"vCenter does not trust the KMS certificate: {err.cause}", certificate)
            return ServerProbe(True, True, False, f"The KMS does not trust the vCenter client certificate: {err.cause}", certificate)
        except KmsUnreachable as err:
            return ServerProbe(False, False, False, f"Cannot connect to {info.address}:{info.port}: {err.cause}")
    try:
        context = _context(trusted, provider.client_cert, provider.client_key)
        client_trusts, server_trusts, text = _handshake(info.address, info.port, context)
    except KmsUnreachable as err:
        return ServerProbe(False, False, False, f"Cannot connect to {info.address}:{info.port}: {err.cause}")
    if not trusted:
        client_trusts = False
        text = "vCenter has no trusted certificate for this KMS (UploadKmipServerCert)"
    if not provider.client_cert:
        server_trusts = False
        text += "; no client certificate uploaded (UploadClientCert)"
    return ServerProbe(True, bool(client_trusts), bool(server_trusts), text, certificate)


def reachable(provider: "Provider") -> tuple[bool, str]:
    """(reachable, cause) of a provider: answering at all, on any of its servers (trust aside)."""
    causes = []
    for name, info in provider.servers.items():
        if provider.fully_trusted:
            try:
                connections.client(provider, name).check()
                return True, ""
            except KmsTrustError:
                return True, ""      # it answered; trust is a status matter, not an outage
            except KmsUnreachable as err:
                causes.append(f"{name} ({info.address}:{info.port}): {err.cause}")
                continue
        try:
            fetch_server_certificate(info.address, info.port, timeout=PROBE_TIMEOUT)
            return True, ""
        except KmsUnreachable as err:
            causes.append(f"{name} ({info.address}:{info.port}): {err.cause}")
    return False, "; ".join(causes) or "no KMIP server registered"


# ---- transitions -------------------------------------------------------------------------------
def record(vc: Any, provider: "Provider", is_reachable: bool, cause: str = "") -> None:
    """Note what a real KMS interaction showed; post the events of a transition."""
    before = provider.reachable
    provider.reachable = is_reachable
    provider.health_cause = cause
    if not is_reachable:
        connections.forget_key_material(vc)
    if before is not False and not is_reachable:
        if vc.world.defects.on(NO_UNREACHABLE_EVENT):
            return
        servers = ", ".join(f"{n} ({i.address}:{i.port})" for n, i in provider.servers.items())
        vc.events.post(UNREACHABLE_EVENT, entity=vc.root, severity="error",
                       message=f"Key Management Server of key provider {provider.id} is unreachable: {cause}",
                       arguments={"keyProvider": provider.id, "servers": servers, "cause": cause})
    elif before is False and is_reachable:
        vc.events.post(RECOVERED_EVENT, entity=vc.root, severity="info",
                       message=f"Retrieved Key Management Server vendor information from key provider "
                               f"{provider.id}: {VENDOR} (connection restored)",
                       arguments={"keyProvider": provider.id, "vendor": VENDOR})


def forget(vc: Any, provider: "Provider") -> None:
    """A provider was removed. If it was the only one down, its outage is over: the health alarm
    resets to green (no KMS event: nothing answered). The fake's choice - whether vCenter clears
    the alarm when an unreachable provider is deleted is UNCONFIRMED."""
    was_down, provider.reachable = provider.reachable is False, None
    others_down = any(p.reachable is False for p in vc.crypto.providers.values() if p is not provider)
    if was_down and not others_down:
        vc.alarms.clear_kms_health()


def check(vc: Any) -> None:
    """Look at every registered KMIP provider now (lazy health check); re-entrant calls are no-ops."""
    crypto = getattr(vc, "crypto", None)
    if crypto is None or getattr(crypto, "checking", False):
        return
    crypto.checking = True
    try:
        for provider in list(crypto.providers.values()):
            if provider.servers:
                ok, cause = reachable(provider)
                record(vc, provider, ok, cause)
    finally:
        crypto.checking = False
