"""A small KMIP client over mutual TLS 1.2, as a vCenter (or the harness's evidence reads) uses it.

It drives PyKMIP's own client classes (so requests and responses are encoded by
the same library as the server), but owns the TLS set-up: PyKMIP's client only
takes file paths and a CA file, whereas vCenter holds PEM strings and may trust
just the KMS's leaf certificate. Every connection failure becomes
`KmsUnreachable` naming the address; a TLS trust problem says which side
refused whom.

For any compliant KMS, not only PyKMIP (issue 22): the protocol version is
negotiated (DiscoverVersions, KMIP 1.4 §4.26) or pinned; a Username/Password
credential goes in every request header when given (KMIP 1.4 §6.2); Create is
followed by Activate only for a Pre-Active key; Get accepts Raw and Transparent
Symmetric Key answers; and every failure, including an answer PyKMIP cannot
decode, is a `KmsFailure` naming the KMS and the operation.
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
from dataclasses import dataclass
from typing import Any, Literal

from harness.inventory.secret import Secret
from harness.kms import versions
from harness.kms.key_material import key_bytes_from_ttlv, raw_key_bytes

with warnings.catch_warnings():
    # Importing kmip emits DeprecationWarnings (cryptography, SQLAlchemy, ssl constants).
    warnings.simplefilter("ignore")
    from kmip.core import enums, utils
    from kmip.core.messages import messages, payloads
    from kmip.core.messages.contents import Operation
    from kmip.pie import client as pie_client
    from kmip.pie import exceptions as pie_exceptions
    from kmip.pie import factory as pie_factory
    from kmip.core.factories import attributes as attribute_factories
    from kmip.services import kmip_client, kmip_protocol

__all__ = [
    "KmsFailure",
    "KmsUnreachable",
    "KmsTrustError",
    "KmsCredentialError",
    "KmsOperationFailed",
    "KmsKeyNotFound",
    "KmsPermissionDenied",
    "KmsVersionError",
    "KmsProtocolError",
    "KmipClient",
    "Negotiation",
    "USABLE_STATES",
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


class KmsFailure(Exception):
    """Anything a KMS did that kept a KMIP call from giving its answer: always names the KMS (and the
    operation when there was one). An environment error for a verdict, never a product failure: the
    product under test is vCenter, and the KMS is the lab's."""


class KmsUnreachable(KmsFailure, ConnectionError):
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


class KmsCredentialError(KmsTrustError):
    """The KMS refused the request's authentication: no KMIP credential sent where one is required, or
    the username/password refused (KMIP result reason AUTHENTICATION_NOT_SUCCESSFUL)."""


class KmsOperationFailed(KmsFailure, RuntimeError):
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


class KmsPermissionDenied(KmsOperationFailed):
    """The KMS will not let this identity use the object (PERMISSION_DENIED): e.g. an owner-only KMS
    and a key another client (vCenter) created."""


class KmsVersionError(KmsOperationFailed):
    """Client and KMS share no KMIP protocol version (or the pinned one is not spoken)."""


class KmsProtocolError(KmsOperationFailed):
    """The KMS answered something this client cannot use: an undecodable response, an unexpected
    key format or state. `reason` is the library's exception type."""


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
    """PyKMIP's KMIPProxy, but on our SSLContext, without reading any pykmip.conf, with our credential."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext, timeout: float,
                 username: str | None = None, password: str | None = None) -> None:
        self._context = context
        self._timeout = timeout
        self._credential = (username, password)
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
        # PyKMIP sends a Username/Password credential in every request header when these are set.
        self.username, self.password = self._credential
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

    def discover(self, protocol_versions: list[Any]) -> list[Any]:
        """DiscoverVersions: the versions the KMS answers (PyKMIP's own call crashes on a failed answer)."""
        item = self._build_discover_versions_batch_item(protocol_versions)
        response = self._send_and_receive_message(self._build_request_message(None, [item]))
        answer = response.batch_items[0]
        _check_status(answer)
        payload = answer.response_payload
        return list(getattr(payload, "protocol_versions", None) or [])

    def get_key_bytes(self, uid: str, key_format: Any = None) -> bytes:
        """KMIP Get of a symmetric key's bytes, asking for `key_format` (None: the KMS's default).

        PyKMIP's `get` builds the same request, but its response decoding refuses a Transparent
        Symmetric Key (key_material.py); the raw answer is kept so that case can still be read.
        """
        payload = payloads.GetRequestPayload(unique_identifier=uid, key_format_type=key_format)
        item = messages.RequestBatchItem(operation=Operation(enums.Operation.GET), request_payload=payload)
        self._send_message(self._build_request_message(None, [item]))
        raw = bytes(self._receive_message().buffer)
        response = messages.ResponseMessage()
        try:
            response.read(utils.BytearrayStream(raw), self.kmip_version)
        except TypeError:
            return key_bytes_from_ttlv(raw)   # PyKMIP's "invalid key material": a Transparent key
        item = response.batch_items[0]
        _check_status(item)
        return raw_key_bytes(item.response_payload.secret)


class _PieClient(pie_client.ProxyKmipClient):
    """ProxyKmipClient over a given proxy (its own __init__ reads config files and logs warnings)."""

    def __init__(self, proxy: _ContextProxy) -> None:  # noqa: D107 - see class doc
        self.logger = logging.getLogger(__name__)
        self.attribute_factory = attribute_factories.AttributeFactory()
        self.attribute_value_factory = self.attribute_factory.value_factory
        self.object_factory = pie_factory.ObjectFactory()
        self.proxy = proxy
        self._is_open = False


# Result reasons with which a KMS refuses a request in a protocol version it does not speak.
_VERSION_REASONS = ("INVALID_MESSAGE", "OPERATION_NOT_SUPPORTED", "FEATURE_NOT_SUPPORTED")

# KMIP states of a key that still exists as a usable key (KMIP 1.4 §3.22): Deactivated keys still
# decrypt. Compromised, Destroyed and Destroyed Compromised are not keys a VM can be opened with.
USABLE_STATES = frozenset({"PRE_ACTIVE", "ACTIVE", "DEACTIVATED"})


@dataclass(frozen=True)
class Negotiation:
    """What DiscoverVersions settled: the version used, what the KMS offered, whether a credential is sent."""
    version: str
    offered: tuple[str, ...]
    pinned: bool = False
    credential: bool = False

    def describe(self) -> str:
        offered = f"KMS offers {', '.join(self.offered)}" if self.offered else "KMS lists no versions"
        how = "pinned by the inventory" if self.pinned else "negotiated"
        return (f"KMIP {self.version} {how} ({offered}); "
                f"{'KMIP credential sent' if self.credential else 'no KMIP credential'}")


def _check_status(result: Any) -> None:
    """Raise KmipOperationFailure for a failed proxy result (the pie client does this for its own calls)."""
    status = result.result_status.value
    if status != enums.ResultStatus.SUCCESS:
        reason = getattr(result.result_reason, "value", result.result_reason)
        message = getattr(result.result_message, "value", result.result_message)
        raise pie_exceptions.KmipOperationFailure(status, reason, message)


class KmipClient:
    """Small KMIP client over mutual TLS 1.2, configured from PEM strings.

    Keeps one connection open and reuses it (reconnecting once if the server dropped it, e.g.
    after a KMS restart or an idle timeout); a lock makes it safe to share between threads. Each
    call is one real KMIP round trip: nothing is cached but the negotiated protocol version.
    Works with any compliant KMS: the version is negotiated (DiscoverVersions) unless pinned, a
    KMIP credential is sent when given, keys made Active by Create are not activated again, Get
    accepts Raw and Transparent keys, and every failure is a `KmsFailure` naming the KMS and the
    operation.
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
        username: str | None = None,
        password: str | None = None,
        version: str | None = None,
    ) -> None:
        self.host = host
        self.gate = gate  # a harness.safety.MutationGate for calls the harness issues; None for the fake's own
        self.port = int(port)
        self.timeout = timeout
        self.username = username
        self._password = Secret(password) if password is not None else None
        self._pinned = version
        self._negotiation: Negotiation | None = None
        self._negotiated_now = False   # did the connection opened by the current call negotiate?
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
        username: str | None = None,
        password: str | None = None,
        version: str | None = None,
    ) -> "KmipClient":
        return cls(
            host, port, Path(trusted_path).read_text(), Path(cert_path).read_text(),
            Path(key_path).read_text(), timeout=timeout, gate=gate, username=username, password=password,
            version=version,
        )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def negotiation(self) -> Negotiation | None:
        """The version settled by the first connection (None before it)."""
        return self._negotiation

    # ------------------------------------------------------------- operations
    def create_key(self) -> str:
        """Create an AES-256 key and make sure it is Active (as vCenter's keys are usable at once); its UID.

        Activate is sent only to a Pre-Active key: a KMS may create keys Active already (KMIP 1.4
        §3.22 allows an Activation Date at creation), and Activate on an Active key is refused.
        """

        def _create(client: _PieClient) -> str:
            uid = str(client.create(
                enums.CryptographicAlgorithm.AES,
                256,
                cryptographic_usage_mask=[
                    enums.CryptographicUsageMask.ENCRYPT,
                    enums.CryptographicUsageMask.DECRYPT,
                ],
            ))
            state = self._state_on(client, uid)
            if state == "PRE_ACTIVE":
                client.activate(uid)
            elif state != "ACTIVE":
                raise ValueError(f"Create gave key {uid} in state {state}, neither Pre-Active nor Active")
            return uid

        return self._call("Create", _create)

    def get_key(self, uid: str) -> bytes:
        """The key bytes (KMIP Get, asking for Raw; a Transparent Symmetric Key is accepted too)."""

        def _get(client: _PieClient) -> bytes:
            try:
                return client.proxy.get_key_bytes(str(uid), enums.KeyFormatType.RAW)
            except pie_exceptions.KmipOperationFailure as err:
                if err.reason != enums.ResultReason.KEY_FORMAT_TYPE_NOT_SUPPORTED:
                    raise
            return client.proxy.get_key_bytes(str(uid))   # the KMS serves its own default format only

        return self._call("Get", _get)

    def key_state(self, uid: str) -> str | None:
        """KMIP State name ("PRE_ACTIVE", "ACTIVE", "DESTROYED", ...), or None if the key does not exist."""
        try:
            return self._call("GetAttributes", lambda client: self._state_on(client, str(uid)))
        except KmsKeyNotFound:
            return None

    def key_exists(self, uid: str) -> bool:
        """Whether the KMS holds `uid` as a usable key: decided by its state (USABLE_STATES), not its record."""
        return self.key_state(uid) in USABLE_STATES

    def destroy_key(self, uid: str) -> None:
        """Revoke (when Active) and Destroy a key, as a KMS admin would retire it."""

        def _destroy(client: _PieClient) -> None:
            if self._state_on(client, str(uid)) == "ACTIVE":
                client.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, str(uid))
            client.destroy(str(uid))

        self._call("Destroy", _destroy)

    def check(self) -> Negotiation:
        """Connect and settle the KMIP version (DiscoverVersions, harmless); raise a KmsFailure if unusable."""

        def _discover(client: _PieClient) -> Negotiation:
            if self._pinned is None:
                if not self._negotiated_now:   # a connection opened for this call has just negotiated
                    self._negotiation = self._negotiate(client)
                return self._negotiation
            # A pinned version: ask in it, so a KMS that does not speak it says so now.
            offered = tuple(versions.as_text(v) for v in
                            client.proxy.discover(versions.protocol_versions((self._pinned,))))
            if offered and self._pinned not in offered:
                raise KmsVersionError.result(self.address, "DiscoverVersions", "VERSION_NOT_SPOKEN",
                                             f"the inventory pins KMIP {self._pinned}; the KMS answers {', '.join(offered)}")
            return Negotiation(self._pinned, offered, True, self.username is not None)

        return self._call("DiscoverVersions", _discover)

    @staticmethod
    def _state_on(client: _PieClient, uid: str) -> str:
        _, attributes = client.get_attributes(uid, ["State"])
        for attribute in attributes or []:
            if attribute.attribute_name.value == "State":
                return attribute.attribute_value.value.name
        raise ValueError(f"GetAttributes of {uid} returned no State attribute")

    # ------------------------------------------------------------- versions
    def _negotiate(self, client: _PieClient) -> Negotiation:
        """DiscoverVersions in a 1.2 header, then a 1.0 one; the KMS's most preferred version we speak."""
        answers: list[str] = []
        for header in versions.DISCOVERY_HEADERS:
            client.proxy.kmip_version = versions.kmip_version(header)
            try:
                answered = client.proxy.discover(versions.protocol_versions())
            except pie_exceptions.KmipOperationFailure as err:
                if err.reason == enums.ResultReason.AUTHENTICATION_NOT_SUCCESSFUL:
                    raise
                if header == "1.0" and err.reason == enums.ResultReason.OPERATION_NOT_SUPPORTED:
                    # KMIP 1.0 has no DiscoverVersions: a server that lacks it speaks 1.0.
                    return self._settle(client, "1.0", ("1.0",))
                answers.append(f"in a KMIP {header} header: {getattr(err.reason, 'name', err.reason)}: {err.message}")
                continue
            offered = tuple(versions.as_text(v) for v in answered)
            chosen = versions.choose(list(offered)) if offered else header
            if chosen is None:
                raise KmsVersionError.result(
                    self.address, "DiscoverVersions", "NO_COMMON_VERSION",
                    f"the KMS speaks KMIP {', '.join(offered)}; this client speaks {', '.join(versions.SPOKEN)} "
                    "(pin one with kmip_version only if the KMS mislabels its versions)")
            return self._settle(client, chosen, offered)
        if not any(reason in answer for answer in answers for reason in _VERSION_REASONS):
            # Refused for a reason that is not about versions: not a version problem, name the answers.
            raise KmsOperationFailed.result(self.address, "DiscoverVersions", "UNEXPECTED_ANSWER",
                                            "; ".join(answers))
        raise KmsVersionError.result(self.address, "DiscoverVersions", "NO_COMMON_VERSION",
                                     "the KMS refused DiscoverVersions " + "; ".join(answers))

    def _settle(self, client: _PieClient, version: str, offered: tuple[str, ...]) -> Negotiation:
        client.proxy.kmip_version = versions.kmip_version(version)
        return Negotiation(version, offered, False, self.username is not None)

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
        password = self._password.reveal() if self._password is not None else None
        proxy = _ContextProxy(self.host, self.port, self._context, self.timeout, self.username, password)
        try:
            proxy.open()
        except (OSError, EOFError) as err:
            raise _unreachable(self.address, err, self.timeout) from err
        client = _PieClient(proxy)
        client._is_open = True
        self._client, self._used = client, False
        if self._pinned is not None:
            proxy.kmip_version = versions.kmip_version(self._pinned)
            self._negotiation = Negotiation(self._pinned, (), True, self.username is not None)
        elif self._negotiation is not None:
            proxy.kmip_version = versions.kmip_version(self._negotiation.version)
        else:
            self._negotiation = self._negotiate(client)
            self._negotiated_now = True
        return client

    def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.proxy.close()

    def _call(self, operation: str, fn):  # noqa: ANN001, ANN202 - fn(client) -> result
        """Run fn on the open connection; reconnect once if a reused connection turns out dead.

        Every failure leaves as a KmsFailure naming this KMS and `operation`: a KMIP failure answer
        by its result reason, anything PyKMIP raised on an answer it could not read as a
        KmsProtocolError (the connection is dropped: the stream's position is unknown).
        """
        if self.gate is not None:
            self.gate.check_kmip(self.address, operation)
        with self._lock:
            for attempt in (1, 2):
                self._negotiated_now = False
                reused = self._used and self._client is not None
                try:
                    client = self._client or self._connect()
                    result = fn(client)
                except pie_exceptions.KmipOperationFailure as err:
                    self._used = True
                    raise self._operation_failed(operation, err) from None
                except _BROKEN as err:
                    self._disconnect()
                    if reused and attempt == 1:
                        continue
                    raise _unreachable(self.address, err, self.timeout) from err
                except KmsFailure:
                    self._disconnect()
                    raise
                except OSError as err:
                    # Timeouts and TLS errors: the connection is unusable.
                    self._disconnect()
                    raise _unreachable(self.address, err, self.timeout) from err
                except Exception as err:  # noqa: BLE001 - any library exception is the KMS's answer, named
                    self._disconnect()
                    raise KmsProtocolError.result(self.address, operation, type(err).__name__,
                                                  f"unusable answer: {err}") from err
                self._used = True
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _operation_failed(self, operation: str, err: pie_exceptions.KmipOperationFailure) -> Exception:
        reason = getattr(err.reason, "name", str(err.reason))
        message = str(err.message)
        if err.reason == enums.ResultReason.AUTHENTICATION_NOT_SUCCESSFUL:
            self._disconnect()
            if "certificate" in message.lower():
                cause = f"the server refused the client certificate ({message})"
            elif self.username is None:
                cause = (f"the KMS requires a KMIP credential (username and password) and none was sent "
                         f"({message})")
            else:
                cause = f"the KMS refused the KMIP credential of user {self.username} ({message})"
            return KmsCredentialError.at(self.address, cause, side="server")
        if err.reason == enums.ResultReason.ITEM_NOT_FOUND:
            return KmsKeyNotFound.result(self.address, operation, reason, message)
        if err.reason == enums.ResultReason.PERMISSION_DENIED:
            return KmsPermissionDenied.result(self.address, operation, reason, message)
        if operation == "DiscoverVersions" and err.reason == enums.ResultReason.INVALID_MESSAGE:
            return KmsVersionError.result(self.address, operation, reason, message)
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
