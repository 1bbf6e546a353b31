"""Open a pyVmomi ServiceInstance for an inventory entry, whatever its target.

real:  SmartConnect over HTTPS, TLS verified against a CA bundle (or system CAs), or a pinned
       SHA-256 thumbprint, or explicitly insecure; decided on the handshake, before the first request
       (harness/tls.py), so a password only ever goes to a vCenter whose certificate checked out.
vcsim: the same, to a vcsim the harness started (or one the inventory points at).
fake:  the same pyVmomi objects, bound to an in-process stub adapter instead of SOAP over HTTP.
"""
from __future__ import annotations

import http.client
import re
import socket
import ssl
from typing import Any
from urllib.parse import urlparse

from pyVim import connect as pyvim_connect
from pyVmomi import SoapStubAdapter, VmomiSupport, pbm, vim

from harness.inventory.schema import VCenter
from harness.tls import CheckedContext, HandshakeTimeout, TlsRejected, checked_context

PBM_VERSION = "pbm.version.version11"


class ConnectError(RuntimeError):
    """A vCenter could not be reached or logged into; the message names it and the cause.

    `config`: the inventory is wrong for this server (TLS refused, login refused): exit 2, not 3."""

    def __init__(self, message: str, config: bool = False) -> None:
        super().__init__(message)
        self.config = config


def ssl_context(entry: VCenter, connect_timeout: float | None = None, read_timeout: float | None = None) -> CheckedContext:
    """The TLS context an inventory entry asks for: it checks the CA bundle or the pin on the handshake."""
    return checked_context(ca_bundle=entry.tls.ca_bundle, pin=entry.tls.thumbprint_sha256,
                           insecure=entry.tls.insecure, handshake_timeout=connect_timeout, read_timeout=read_timeout)


def _host_port(entry: VCenter, url: str | None) -> tuple[str, int, str]:
    if url:
        parsed = urlparse(url)
        return parsed.hostname or "127.0.0.1", parsed.port or 443, parsed.path or "/sdk"
    return entry.host or "127.0.0.1", entry.port, "/sdk"


def connect_soap(entry: VCenter, url: str | None = None, timeout: float = 30.0,
                 read_timeout: float | None = None) -> Any:
    """SmartConnect to a real vCenter or a vcsim; returns a logged-in ServiceInstance.

    `timeout` (timeouts.connect) bounds the TCP connect and the TLS handshake, `read_timeout`
    (timeouts.read) every later wait for an answer; pyVim's vimServiceVersions.xml fetch passes no
    timeout of its own, so both are set by the context on every socket it wraps.
    """
    host, port, path = _host_port(entry, url or entry.url)
    read = read_timeout or max(timeout, 120.0)
    where = f"vCenter {entry.name} ({host}:{port})"
    try:
        # pyVim fetches vimServiceVersions.xml with no timeout of its own: a host that drops SYNs would
        # hold that TCP connect for the OS's ~2 minutes. A bounded connect first names it within `timeout`.
        socket.create_connection((host, port), timeout=timeout).close()
    except TimeoutError:
        raise ConnectError(f"{where} unreachable: no TCP connection within {timeout:g} s (timeouts.connect)") from None
    except OSError as err:
        raise ConnectError(f"{where} unreachable: {err.strerror or err}") from None
    try:
        return pyvim_connect.SmartConnect(
            host=host, port=port, path=path, user=entry.user, pwd=entry.password(),
            sslContext=ssl_context(entry, timeout, read), httpConnectionTimeout=timeout)
    except vim.fault.InvalidLogin:
        raise ConnectError(f"{where}: login refused for {entry.user}", config=True) from None
    except TlsRejected as err:
        raise ConnectError(f"{where}: TLS refused before login: {err.detail}", config=True) from None
    except HandshakeTimeout as err:
        raise ConnectError(f"{where} unreachable: accepted the connection but {err} (timeouts.connect)") from None
    except TimeoutError:
        raise ConnectError(f"{where} unreachable: no answer within {timeout:g} s (timeouts.connect) "
                           f"or {read:g} s (timeouts.read)") from None
    except (OSError, ssl.SSLError, http.client.HTTPException) as err:
        raise ConnectError(f"{where} unreachable: {err}") from None


def connect_fake(world: Any, entry: VCenter) -> Any:
    """A ServiceInstance on the in-process fake, logged in as the inventory's user."""
    stub = world.adapter(entry.name)
    si = vim.ServiceInstance("ServiceInstance", stub)
    content = si.RetrieveContent()
    try:
        content.sessionManager.Login(entry.user, entry.password())
    except vim.fault.InvalidLogin:
        raise ConnectError(f"vCenter {entry.name} (fake): login refused for {entry.user}") from None
    return si


def pbm_service(si: Any, world: Any = None) -> Any:
    """The PBM (storage policy) ServiceInstance that shares the vim session of `si`."""
    stub = si._stub
    if hasattr(stub, "vc"):  # the fake: a second adapter on the fake's /pbm endpoint
        from harness.fakevc.adapter import FakeStubAdapter
        pbm_stub = FakeStubAdapter(stub.vc, version=PBM_VERSION, endpoint="pbm")
        pbm_stub.SetSessionId(stub.GetSessionId())
    else:
        soap = getattr(stub, "soapStub", stub)
        # vCenter quotes the session id in the cookie, vcsim does not: take the value either way.
        match = re.search(r'vmware_soap_session="?([^";]+)', soap.cookie or "")
        cookie = match.group(1) if match else soap.cookie
        VmomiSupport.GetRequestContext()["vcSessionCookie"] = cookie
        pbm_stub = SoapStubAdapter(host=soap.host.split(":")[0] if soap.host.count(":") == 1 else soap.host,
                                   port=int(soap.host.rsplit(":", 1)[1]) if ":" in soap.host else 443,
                                   version=PBM_VERSION, path="/pbm/sdk", poolSize=0,
                                   sslContext=soap.schemeArgs.get("context"), thumbprint=soap.thumbprint)
        pbm_stub.requestContext = {"vcSessionCookie": cookie}
        pbm_stub.cookie = soap.cookie  # vcsim's /pbm checks the vim session's HTTP cookie
        try:
            pbm.ServiceInstance("ServiceInstance", pbm_stub).RetrieveContent()
        except http.client.HTTPException:  # vCenter serves PBM at /pbm/sdk, vcsim at /pbm
            pbm_stub.path = "/pbm"
    return pbm.ServiceInstance("ServiceInstance", pbm_stub)
