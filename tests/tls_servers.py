"""Loopback servers that record what a client sends them: the impostors of the TLS tests (issue 21).

`RecordingVCenter` speaks just enough of vCenter's SOAP (vimServiceVersions.xml, RetrieveServiceContent,
a Login that is always refused) for pyVmomi's SmartConnect to reach the Login, and records every
request it receives. Served over TLS with a given certificate, over plain HTTP, as a port that
answers with non-TLS bytes, or as a port that accepts and never answers.
"""
from __future__ import annotations

import hashlib
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal

from harness.kms.pki import CertPair, ThrowawayCA

_ENVELOPE = ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
             'xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" '
             'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
             'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
             'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>{}</soapenv:Body></soapenv:Envelope>')
VERSIONS = ('<?xml version="1.0" encoding="UTF-8"?><namespaces version="1.0"><namespace><name>urn:vim25</name>'
            '<version>7.0.3.0</version><priorVersions><version>6.7</version></priorVersions></namespace></namespaces>')
SERVICE_CONTENT = _ENVELOPE.format(
    '<RetrieveServiceContentResponse xmlns="urn:vim25"><returnval>'
    '<rootFolder type="Folder">group-d1</rootFolder>'
    '<propertyCollector type="PropertyCollector">propertyCollector</propertyCollector>'
    '<about><name>VMware vCenter Server</name><fullName>impostor</fullName><vendor>VMware, Inc.</vendor>'
    '<version>7.0.3</version><build>1</build><osType>linux-x64</osType><apiType>VirtualCenter</apiType>'
    '<apiVersion>7.0.3.0</apiVersion></about>'
    '<sessionManager type="SessionManager">SessionManager</sessionManager>'
    '</returnval></RetrieveServiceContentResponse>')
LOGIN_REFUSED = _ENVELOPE.format(
    '<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Cannot complete login due to an incorrect '
    'user name or password.</faultstring><detail><InvalidLoginFault xmlns="urn:vim25" xsi:type="InvalidLogin">'
    '</InvalidLoginFault></detail></soapenv:Fault>')

Mode = Literal["tls", "http", "garbage", "silent"]


def server_pair(ca: ThrowawayCA, name: str) -> CertPair:
    return ca.issue_server(name, hosts=["127.0.0.1", "localhost"])


def sha256_of(pair: CertPair) -> str:
    der = ssl.PEM_cert_to_DER_cert(pair.cert_path.read_text())
    return hashlib.sha256(der).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def log_message(self, *args: object) -> None:  # quiet
        return

    def _record(self, body: bytes) -> None:
        self.server.received.append(f"{self.requestline}\n".encode() + body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._record(b"")
        self._reply(200, VERSIONS, "text/xml")

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._record(body)
        if b"RetrieveServiceContent" in body:
            self._reply(200, SERVICE_CONTENT)
        else:
            self._reply(500, LOGIN_REFUSED)

    def _reply(self, status: int, text: str, kind: str = "text/xml; charset=utf-8") -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    received: list[bytes]


class RecordingVCenter:
    """A loopback impostor vCenter; use as a context manager. `received` holds every request."""

    def __init__(self, mode: Mode = "tls", pair: CertPair | None = None) -> None:
        self.mode = mode
        self.pair = pair
        self.received: list[bytes] = []
        self._raw: list[socket.socket] = []
        self._stop = threading.Event()

    def __enter__(self) -> "RecordingVCenter":
        if self.mode in ("tls", "http"):
            self._http = _Server(("127.0.0.1", 0), _Handler)
            self._http.received = self.received
            if self.mode == "tls":
                assert self.pair is not None
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(self.pair.cert_path, self.pair.key_path)
                self._http.socket = context.wrap_socket(self._http.socket, server_side=True)
            self.port = self._http.server_address[1]
            self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05},
                                            daemon=True)
        else:
            self._listener = socket.create_server(("127.0.0.1", 0))
            self._listener.settimeout(0.1)
            self.port = self._listener.getsockname()[1]
            self._thread = threading.Thread(target=self._raw_loop, daemon=True)
        self._thread.start()
        return self

    def _raw_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            self._raw.append(conn)
            if self.mode == "garbage":   # something that is not TLS: an SSH-style banner, then close
                conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
                conn.close()
            # silent: keep the connection open and never answer

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.mode in ("tls", "http"):
            self._http.shutdown()
            self._http.server_close()
        else:
            self._listener.close()
            for conn in self._raw:
                conn.close()
        self._thread.join(5)

    def got(self, needle: bytes) -> bool:
        return any(needle in request for request in self.received)


def write_ca(tmp: Path, name: str) -> ThrowawayCA:
    return ThrowawayCA(tmp / name, name=f"{name} CA")
