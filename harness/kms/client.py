"""A small KMIP client over mutual TLS 1.2, as a vCenter (or the harness's evidence reads) uses it.

It drives PyKMIP's own client classes (so requests and responses are encoded by
the same library as the server), but owns the TLS set-up: PyKMIP's client only
takes file paths and a CA file, whereas vCenter holds PEM strings and may trust
just the KMS's leaf certificate. Every connection failure becomes
`KmsUnreachable` naming the address; a TLS trust problem says which side
refused whom.
"""

from __future__ import annotations

import logging
import socket
import ssl
import tempfile
import threading
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

with warnings.catch_warnings():
    # Importing kmip emits DeprecationWarnings (cryptography, SQLAlchemy, ssl constants).
    warnings.simplefilter("ignore")
    from kmip.core import enums
    from kmip.pie import client as pie_client
    from kmip.pie import exceptions as pie_exceptions
    from kmip.pie import factory as pie_factory
    from kmip.core.factories import attributes as attribute_factories
    from kmip.services import kmip_client, kmip_protocol

__all__ = [
    "KmsUnreachable",
    "KmsTrustError",
    "KmsOperationFailed",
    "KmsKeyNotFound",
    "KmipClient",
    "fetch_server_certificate",
]

# TLS alerts a server sends when it rejects the client's certificate.
_SERVER_REFUSED_CLIENT = {
    "TLSV1_ALERT_UNKNOWN_CA",
    "SSLV3_ALERT_BAD_CERTIFICATE",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED",
    "SSLV3_ALERT_CERTIFICATE_REVOKED",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
    "TLSV1_ALERT_ACCESS_DENIED",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED",
}
# Errors that mean "the connection we held is dead", worth one reconnect.
_BROKEN = (
    BrokenPipeError,
    ConnectionResetError,
    ConnectionAbortedError,
    EOFError,
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
    kmip_protocol.RequestLengthMismatch,
)


class KmsUnreachable(ConnectionError):
    """No usable connection to the KMS (refused, reset, timed out, TLS failure).

    Build it with `KmsUnreachable.at(address, cause)` for the standard message
    "KMS <address> unreachable: <cause>"; a plain message works too.
    """

    def __init__(self, message: str, *, address: str | None = None, cause: str | None = None) -> None:
        super().__init__(message)
        self.address = address
        self.cause = cause

    @classmethod
    def at(cls, address: str, cause: str, **extra: str) -> "KmsUnreachable":
        return cls(f"KMS {address} unreachable: {cause}", address=address, cause=cause, **extra)


class KmsTrustError(KmsUnreachable):
    """Mutual TLS failed on trust: `side` says who refused.

    side == "client": this client does not trust the server's certificate.
    side == "server": the server refused this client's certificate.
    """

    def __init__(
        self,
        message: str,
        *,
        address: str | None = None,
        cause: str | None = None,
        side: Literal["client", "server"] = "server",
    ) -> None:
        super().__init__(message, address=address, cause=cause)
        self.side = side


class KmsOperationFailed(RuntimeError):
    """The KMS answered, with a failure (e.g. Create refused); carries the KMIP result reason.

    Build it with `KmsOperationFailed.result(address, operation, reason, message)` for
    "KMS <address> <operation> failed: <REASON>: <message>"; a plain message works too.
    """

    def __init__(
        self,
        message: str,
        *,
        address: str | None = None,
        operation: str | None = None,
        reason: str | None = None,
        kmip_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.address = address
        self.operation = operation
        self.reason = reason
        self.kmip_message = kmip_message

    @classmethod
    def result(cls, address: str, operation: str, reason: str, message: str) -> "KmsOperationFailed":
        return cls(
            f"KMS {address} {operation} failed: {reason}: {message}",
            address=address, operation=operation, reason=reason, kmip_message=message,
        )


class KmsKeyNotFound(KmsOperationFailed):
    """The KMS has no key with this UID (KMIP reason ITEM_NOT_FOUND)."""


def _client_context(trusted_pem: str, cert_pem: str, key_pem: str) -> ssl.SSLContext:
    """TLS 1.2 client context: verify the server (CA or pinned leaf), no hostname check (IP)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    # Lets a trusted leaf (what vCenter's UploadKmipServerCert stores) anchor the chain.
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    try:
        context.load_verify_locations(cadata=trusted_pem)
    except (ssl.SSLError, ValueError) as err:
        raise ValueError(f"trusted certificate is not valid PEM: {err}") from None
    # The ssl module loads a client identity only from files; keep them in a private temp dir
    # for the duration of the call.
    with tempfile.TemporaryDirectory(prefix="vcrypt-kmip-") as tmp:
        cert_file, key_file = Path(tmp, "client.pem"), Path(tmp, "client.key")
        cert_file.write_text(cert_pem)
        key_file.touch(mode=0o600)
        key_file.write_text(key_pem)
        try:
            context.load_cert_chain(str(cert_file), str(key_file))
        except ssl.SSLError as err:
            raise ValueError(f"client certificate/key are not a valid PEM pair: {err}") from None
    return context


def _describe(err: BaseException, timeout: float) -> tuple[str, Literal["client", "server"] | None]:
    """Human cause for a connection failure, plus which side refused trust (if any)."""
    if isinstance(err, ssl.SSLCertVerificationError):
        detail = err.verify_message or err.reason or str(err)
        return f"the client does not trust the server certificate ({detail})", "client"
    if isinstance(err, ssl.SSLError) and err.reason in _SERVER_REFUSED_CLIENT:
        return f"the server refused the client certificate (TLS alert {err.reason})", "server"
    if isinstance(err, ssl.SSLError):
        return f"TLS error: {err.reason or err}", None
    if isinstance(err, ConnectionRefusedError):
        return "connection refused", None
    if isinstance(err, (TimeoutError, socket.timeout)):
        return f"no answer within {timeout:g} s", None
    if isinstance(err, _BROKEN):
        return f"connection closed by the server ({type(err).__name__})", None
    return f"{type(err).__name__}: {err}", None


def _unreachable(address: str, err: BaseException, timeout: float) -> KmsUnreachable:
    cause, side = _describe(err, timeout)
    if side is not None:
        return KmsTrustError.at(address, cause, side=side)
    return KmsUnreachable.at(address, cause)


class _ContextProxy(kmip_client.KMIPProxy):
    """PyKMIP's KMIPProxy, but on our SSLContext and without reading any pykmip.conf."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext, timeout: float) -> None:
        self._context = context
        self._timeout = timeout
        super().__init__(host=host, port=port, timeout=timeout, kmip_version=enums.KMIPVersion.KMIP_1_2)

    def _set_variables(self, host, port, *args, **kwargs) -> None:  # noqa: ANN001 - PyKMIP signature
        # Replaces PyKMIP's config-file lookup (~/.pykmip, /etc/pykmip) with fixed values.
        self.host_list_str = host
        self.host_list = [host]
        self.host = host
        self.port = int(port)
        self.keyfile = self.certfile = self.ca_certs = None
        self.cert_reqs = ssl.CERT_REQUIRED
        self.ssl_version = None
        self.do_handshake_on_connect = True
        self.suppress_ragged_eofs = True
        self.username = self.password = None
        self.timeout = self._timeout

    def open(self) -> None:
        """Connect and handshake; raise the socket/SSL error as is (the caller maps it)."""
        raw = socket.create_connection((self.host, self.port), timeout=self.timeout)
        try:
            tls = self._context.wrap_socket(raw, server_side=False)
        except BaseException:
            raw.close()
            raise
        tls.settimeout(self.timeout)
        self.socket = tls
        self.protocol = kmip_protocol.KMIPProtocol(tls)


class _PieClient(pie_client.ProxyKmipClient):
    """ProxyKmipClient over a given proxy (its own __init__ reads config files and logs warnings)."""

    def __init__(self, proxy: _ContextProxy) -> None:  # noqa: D107 - see class doc
        self.logger = logging.getLogger(__name__)
        self.attribute_factory = attribute_factories.AttributeFactory()
        self.attribute_value_factory = self.attribute_factory.value_factory
        self.object_factory = pie_factory.ObjectFactory()
        self.proxy = proxy
        self._is_open = False


class KmipClient:
    """Small KMIP client over mutual TLS 1.2, configured from PEM strings.

    Keeps one connection open and reuses it (reconnecting once if the server
    dropped it, e.g. after a KMS restart); a lock makes it safe to share
    between threads. Each call is one real KMIP round trip: nothing is cached.
    """

    def __init__(
        self,
        host: str,
        port: int,
        trusted_pem: str,
        client_cert_pem: str,
        client_key_pem: str,
        timeout: float = 5.0,
        gate: Any = None,
    ) -> None:
        self.host = host
        self.gate = gate  # a harness.safety.MutationGate for calls the harness issues; None for the fake's own
        self.port = int(port)
        self.timeout = timeout
        self._context = _client_context(trusted_pem, client_cert_pem, client_key_pem)
        self._lock = threading.RLock()
        self._client: _PieClient | None = None
        self._used = False  # has the current connection completed a request?

    @classmethod
    def from_paths(
        cls,
        host: str,
        port: int,
        trusted_path: Path | str,
        cert_path: Path | str,
        key_path: Path | str,
        timeout: float = 5.0,
        gate: Any = None,
    ) -> "KmipClient":
        return cls(
            host, port, Path(trusted_path).read_text(), Path(cert_path).read_text(),
            Path(key_path).read_text(), timeout=timeout, gate=gate,
        )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # ------------------------------------------------------------- operations
    def create_key(self) -> str:
        """Create an AES-256 key and activate it (as vCenter's keys are usable at once); return its UID."""

        def _create(client: _PieClient) -> str:
            uid = client.create(
                enums.CryptographicAlgorithm.AES,
                256,
                cryptographic_usage_mask=[
                    enums.CryptographicUsageMask.ENCRYPT,
                    enums.CryptographicUsageMask.DECRYPT,
                ],
            )
            client.activate(uid)
            return str(uid)

        return self._call("Create", _create)

    def get_key(self, uid: str) -> bytes:
        """The raw key bytes (KMIP Get); KmsKeyNotFound if this KMS has no such key."""
        return bytes(self._call("Get", lambda client: client.get(str(uid)).value))

    def key_state(self, uid: str) -> str | None:
        """KMIP State name ("PRE_ACTIVE", "ACTIVE", ...), or None if the key does not exist."""

        def _state(client: _PieClient) -> str | None:
            _, attributes = client.get_attributes(str(uid), ["State"])
            for attribute in attributes or []:
                if attribute.attribute_name.value == "State":
                    return attribute.attribute_value.value.name
            return None

        try:
            return self._call("GetAttributes", _state)
        except KmsKeyNotFound:
            return None

    def key_exists(self, uid: str) -> bool:
        return self.key_state(uid) is not None

    def check(self) -> None:
        """Connect and send a harmless DiscoverVersions; raise KmsUnreachable/KmsTrustError if unusable."""

        def _discover(client: _PieClient) -> None:
            result = client.proxy.discover_versions()
            status = result.result_status.value
            if status != enums.ResultStatus.SUCCESS:
                raise pie_exceptions.KmipOperationFailure(
                    status, result.result_reason.value, result.result_message.value
                )

        self._call("DiscoverVersions", _discover)

    # ------------------------------------------------------------- connection
    def close(self) -> None:
        with self._lock:
            self._disconnect()

    def __enter__(self) -> "KmipClient":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<KmipClient {self.address}>"

    def _connect(self) -> _PieClient:
        proxy = _ContextProxy(self.host, self.port, self._context, self.timeout)
        try:
            proxy.open()
        except (OSError, EOFError) as err:
            raise _unreachable(self.address, err, self.timeout) from err
        client = _PieClient(proxy)
        client._is_open = True
        self._client, self._used = client, False
        return client

    def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.proxy.close()

    def _call(self, operation: str, fn):  # noqa: ANN001, ANN202 - fn(client) -> result
        """Run fn on the open connection; reconnect once if a reused connection turns out dead."""
        if self.gate is not None:
            self.gate.check_kmip(self.address, operation)
        with self._lock:
            for attempt in (1, 2):
                client = self._client or self._connect()
                reused = self._used
                try:
                    result = fn(client)
                except pie_exceptions.KmipOperationFailure as err:
                    self._used = True
                    raise self._operation_failed(operation, err) from None
                except _BROKEN as err:
                    self._disconnect()
                    if reused and attempt == 1:
                        continue
                    raise _unreachable(self.address, err, self.timeout) from err
                except OSError as err:
                    # Timeouts and TLS errors: the connection is unusable.
                    self._disconnect()
                    raise _unreachable(self.address, err, self.timeout) from err
                except Exception:
                    # Anything else (e.g. an undecodable response) leaves the stream in an
                    # unknown position: drop the connection, let the error speak for itself.
                    self._disconnect()
                    raise
                self._used = True
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _operation_failed(self, operation: str, err: pie_exceptions.KmipOperationFailure) -> Exception:
        reason = getattr(err.reason, "name", str(err.reason))
        message = str(err.message)
        if err.reason == enums.ResultReason.AUTHENTICATION_NOT_SUCCESSFUL:
            self._disconnect()
            return KmsTrustError.at(
                self.address, f"the server refused the client certificate ({message})", side="server"
            )
        if err.reason == enums.ResultReason.ITEM_NOT_FOUND:
            return KmsKeyNotFound.result(self.address, operation, reason, message)
        return KmsOperationFailed.result(self.address, operation, reason, message)


# ---------------------------------------------------------------------------------------------
# Retrieving the server certificate without trusting it (vCenter's RetrieveKmipServerCert).
#
# A KMIP server demands a client certificate, so an anonymous TLS handshake never completes and
# Python's ssl module only exposes the peer certificate after a completed handshake (3.11). The
# TLS 1.2 server Certificate message is sent in the clear, though: we let OpenSSL write the
# ClientHello and read the certificate out of the server's first flight.

_RECORD_HANDSHAKE = 22
_RECORD_ALERT = 21
_HS_CERTIFICATE = 11
_HS_SERVER_HELLO_DONE = 14


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError("connection closed before the server sent its certificate")
        data += chunk
    return data


def _handshake_messages(sock: socket.socket):  # noqa: ANN202 - yields (type, body)
    """Yield the server's handshake messages, reassembled across TLS records."""
    buffer = b""
    while True:
        content_type, _, _, length_hi, length_lo = _recv_exact(sock, 5)
        fragment = _recv_exact(sock, (length_hi << 8) | length_lo)
        if content_type == _RECORD_ALERT:
            raise ssl.SSLError(f"server sent TLS alert {fragment.hex()} before its certificate")
        if content_type != _RECORD_HANDSHAKE:
            raise ssl.SSLError(f"unexpected TLS record type {content_type} before the certificate")
        buffer += fragment
        while len(buffer) >= 4:
            size = int.from_bytes(buffer[1:4], "big")
            if len(buffer) < 4 + size:
                break
            yield buffer[0], buffer[4:4 + size]
            buffer = buffer[4 + size:]


def _first_certificate_der(body: bytes) -> bytes:
    """The leaf from a TLS 1.2 Certificate message body (3-byte list length, then 3-byte lengths)."""
    if len(body) < 6:
        raise ssl.SSLError("server sent an empty certificate list")
    size = int.from_bytes(body[3:6], "big")
    return body[6:6 + size]


def fetch_server_certificate(host: str, port: int, timeout: float = 5.0) -> str:
    """PEM of the server's leaf certificate, WITHOUT verifying it (like RetrieveKmipServerCert)."""
    address = f"{host}:{port}"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_2  # TLS 1.3 encrypts the Certificate message
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=False)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass  # ClientHello is now in `outgoing`
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            sock.sendall(outgoing.read())
            for msg_type, body in _handshake_messages(sock):
                if msg_type == _HS_CERTIFICATE:
                    return ssl.DER_cert_to_PEM_cert(_first_certificate_der(body))
                if msg_type == _HS_SERVER_HELLO_DONE:
                    raise ssl.SSLError("server sent no certificate")
    except (OSError, EOFError) as err:
        raise _unreachable(address, err, timeout) from err
    raise KmsUnreachable.at(address, "no certificate received")  # pragma: no cover
