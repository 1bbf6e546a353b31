"""TLS that decides on the peer during the handshake, before the first byte of a request (issue 21).

Why not pyVmomi's own `thumbprint=`: pyVmomi 9.1 compares a pin only after a certificate
verification error (SoapAdapter.py `_Connect`: `except ssl.SSLCertVerificationError`), and an
unverified context never raises one, so an impostor received the Login with the password. Here the
context itself checks: `CheckedContext.wrap_socket` completes the handshake (under the connect
timeout), then compares the SHA-256 of the peer's DER certificate with the pin (or relies on the
CA-bundle verification the handshake already did) and only then hands the socket to http.client.
Every connection made with it is checked, also reconnects from pyVmomi's pool and the PBM stub.

A refusal names what went wrong in its own words: a pin mismatch (expected and presented
fingerprints), a certificate no CA in the bundle signed, a port that answers plain HTTP, a port
that does not speak TLS at all. Nothing secret has been sent when any of them is raised.
"""
from __future__ import annotations

import hashlib
import socket
import ssl
from pathlib import Path
from typing import Any, Literal

Kind = Literal["pin", "untrusted", "plain-http", "not-tls"]
PROBE_BYTES = 64


class TlsRejected(Exception):
    """The peer failed the TLS check; the connection was closed before anything was sent on it."""

    def __init__(self, kind: Kind, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


class HandshakeTimeout(TimeoutError):
    """The peer accepted the connection but did not complete a TLS handshake within the connect timeout."""


def normalise_pin(pin: str) -> str:
    """A SHA-256 pin as 64 lowercase hex digits (the inventory may write it colon-separated)."""
    return pin.replace(":", "").strip().lower()


def fingerprint(hexdigest: str) -> str:
    """A SHA-256 digest as operators compare it: colon-separated uppercase pairs."""
    return ":".join(hexdigest[i:i + 2] for i in range(0, len(hexdigest), 2)).upper()


def sha256_hex(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def _printable(data: bytes) -> str:
    """The first bytes a peer sent, safe to print on one line (the peer is not trusted)."""
    text = data[:40].decode("ascii", "replace")
    return "".join(ch if ch.isprintable() and ch != "\ufffd" else "." for ch in text).strip()


def probe_plain(address: tuple[Any, ...], timeout: float) -> bytes:
    """What a port answers to a credential-free plain HTTP request (b"" when it says nothing)."""
    try:
        with socket.create_connection(address[:2], timeout=timeout) as raw:
            raw.sendall(b"HEAD / HTTP/1.0\r\nHost: vcrypt-probe\r\n\r\n")
            return raw.recv(PROBE_BYTES)
    except OSError:
        return b""


def _not_tls(address: tuple[Any, ...] | None, timeout: float, cause: str) -> TlsRejected:
    answer = probe_plain(address, timeout) if address else b""
    if answer.startswith(b"HTTP/"):
        return TlsRejected("plain-http", "answers plain HTTP, not TLS (an http:// port?); nothing was sent")
    said = f"; it sent {_printable(answer)!r}" if _printable(answer) else ""
    return TlsRejected("not-tls", f"does not speak TLS ({cause}{said}); nothing was sent")


class CheckedContext(ssl.SSLContext):
    """An SSLContext that completes and judges the handshake before returning the socket.

    `pin`: 64 hex digits the peer certificate's SHA-256 must equal (verification is otherwise off,
    as a pinned self-signed vCenter certificate needs). `handshake_timeout` bounds the handshake
    (a port that accepts and never answers); `read_timeout` is set on the socket afterwards.
    """
    pin: str | None = None
    handshake_timeout: float | None = None
    read_timeout: float | None = None

    def wrap_socket(self, sock: socket.socket, *args: Any, **kwargs: Any) -> ssl.SSLSocket:  # type: ignore[override]
        try:
            address = sock.getpeername()
        except OSError:
            address = None
        timeout = self.handshake_timeout
        if timeout is not None:
            sock.settimeout(timeout)
        try:
            tls = super().wrap_socket(sock, *args, **kwargs)
        except ssl.SSLCertVerificationError as err:
            sock.close()
            raise TlsRejected("untrusted", f"certificate not trusted: {err.verify_message or err.reason}; "
                              "nothing was sent") from None
        except TimeoutError:
            sock.close()
            raise HandshakeTimeout(f"no TLS handshake within {timeout:g} s") from None
        except (ssl.SSLError, ConnectionError) as err:
            sock.close()
            cause = getattr(err, "reason", None) or type(err).__name__
            raise _not_tls(address, timeout or 5.0, str(cause)) from None
        self.judge(tls)
        tls.settimeout(self.read_timeout)
        return tls

    def judge(self, tls: ssl.SSLSocket) -> None:
        """Refuse (and close) a connection whose certificate does not match the pin."""
        if not self.pin:
            return
        der = tls.getpeercert(binary_form=True) or b""
        presented = sha256_hex(der)
        if presented != self.pin:
            tls.close()
            raise TlsRejected("pin", f"certificate SHA-256 {fingerprint(presented)} does not match the pin "
                              f"tls.thumbprint_sha256 {fingerprint(self.pin)}; nothing was sent")


def checked_context(*, ca_bundle: Path | None = None, pin: str | None = None, insecure: bool = False,
                    handshake_timeout: float | None = None, read_timeout: float | None = None) -> CheckedContext:
    """The context for one peer: verified against `ca_bundle` (or the system CAs), pinned, or insecure."""
    context = CheckedContext(ssl.PROTOCOL_TLS_CLIENT)   # TLS 1.2+, CERT_REQUIRED, check_hostname
    if pin or insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE   # the pin is compared in judge(); insecure is explicit in the inventory
    elif ca_bundle:
        context.load_verify_locations(cafile=str(ca_bundle))
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    context.pin = normalise_pin(pin) if pin else None
    context.handshake_timeout = handshake_timeout
    context.read_timeout = read_timeout
    return context


def peer_certificate(host: str, port: int, context: CheckedContext, timeout: float) -> bytes:
    """The DER certificate a server presents, through `context` (so verified or pinned as it says)."""
    with socket.create_connection((host, port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            return tls.getpeercert(binary_form=True) or b""
