"""Open a pyVmomi ServiceInstance for an inventory entry, whatever its target.

real:  SmartConnect over HTTPS, TLS verified against a CA bundle (or system CAs), or a pinned
       SHA-256 thumbprint, or explicitly insecure.
vcsim: the same, to a vcsim the harness started (or one the inventory points at).
fake:  the same pyVmomi objects, bound to an in-process stub adapter instead of SOAP over HTTP.
"""
from __future__ import annotations

import http.client
import re
import ssl
from typing import Any
from urllib.parse import urlparse

from pyVim import connect as pyvim_connect
from pyVmomi import SoapStubAdapter, VmomiSupport, pbm, vim

from harness.inventory.schema import VCenter

PBM_VERSION = "pbm.version.version11"


class ConnectError(RuntimeError):
    """A vCenter could not be reached or logged into; the message names it and the cause."""


def ssl_context(entry: VCenter) -> ssl.SSLContext:
    """The TLS context an inventory entry asks for (a pinned thumbprint is checked by pyVmomi)."""
    if entry.tls.insecure or entry.tls.thumbprint_sha256:
        context = ssl._create_unverified_context()  # noqa: S323 - explicit in the inventory, shown in reports
        return context
    context = ssl.create_default_context(cafile=str(entry.tls.ca_bundle) if entry.tls.ca_bundle else None)
    return context


def _host_port(entry: VCenter, url: str | None) -> tuple[str, int, str]:
    if url:
        parsed = urlparse(url)
        return parsed.hostname or "127.0.0.1", parsed.port or 443, parsed.path or "/sdk"
    return entry.host or "127.0.0.1", entry.port, "/sdk"


def connect_soap(entry: VCenter, url: str | None = None, timeout: float = 30.0) -> Any:
    """SmartConnect to a real vCenter or a vcsim; returns a logged-in ServiceInstance."""
    host, port, path = _host_port(entry, url or entry.url)
    thumbprint = entry.tls.thumbprint_sha256.replace(":", "").lower() if entry.tls.thumbprint_sha256 else None
    try:
        return pyvim_connect.SmartConnect(
            host=host, port=port, path=path, user=entry.user, pwd=entry.password(),
            sslContext=ssl_context(entry), thumbprint=thumbprint, connectionPoolTimeout=int(timeout),
            disableSslCertValidation=bool(entry.tls.insecure))
    except vim.fault.InvalidLogin:
        raise ConnectError(f"vCenter {entry.name} ({host}:{port}): login refused for {entry.user}") from None
    except (OSError, ssl.SSLError) as err:
        raise ConnectError(f"vCenter {entry.name} ({host}:{port}) unreachable: {err}") from None


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
