"""The pyVmomi stub adapter that puts the fake vCenter below pyVmomi instead of SOAP over HTTP.

`vim.ServiceInstance("ServiceInstance", FakeStubAdapter(...))` behaves like a SmartConnect
result: the same method calls, property reads, argument type checks and vmodl faults. Each call
is serialized with pyVmomi's SOAP serializer (so version and type errors happen client-side as
against a server), decoded, dispatched to the model, and the result or fault round-trips back.
"""
from __future__ import annotations

from typing import Any

from pyVmomi import vmodl
from pyVmomi.SoapAdapter import SoapStubAdapterBase

from harness.fakevc import dispatch, wire
from harness.fakevc.server import FakeVCenter



class FakeStubAdapter(SoapStubAdapterBase):
    """A client connection to one fake vCenter; it carries the session cookie like a real stub."""

    def __init__(self, vc: FakeVCenter, version: str | None = None, endpoint: str = "vim") -> None:
        super().__init__(version=version or vc.pyvmomi_version)
        self.vc = vc
        self.endpoint = endpoint
        self.requestContext: dict[str, str] = {}
        self.cookie = ""
        self.host = vc.url  # what code that logs a stub's target prints

    @property
    def session_key(self) -> str | None:
        return self.GetSessionId()

    def InvokeMethod(self, mo: Any, info: Any, args: list) -> Any:  # noqa: N802 (pyVmomi's name)
        result = self._dispatch(mo, info, args)
        if info.wsdlName in ("Login", "LoginByToken"):
            self.SetSessionId(result.key)
            self.cookie = f'vmware_soap_session="{result.key}"'
        elif info.wsdlName == "Logout":
            self.SetSessionId(None)
        return wire.encode_response(self, info, result)

    def invoke_raw(self, mo: Any, info: Any, args: list) -> bytes:
        """A read's SOAP response envelope unparsed, as an HTTP stub reads it off the wire (the caller
        parses it, e.g. in a worker process: harness/vsphere/raw_soap.py); a fault is raised as by
        InvokeMethod. Session-changing methods go through InvokeMethod only."""
        if info.wsdlName in ("Login", "LoginByToken", "Logout"):
            raise ValueError(f"{info.wsdlName} changes the session: call it through InvokeMethod")
        return wire.response_xml(self, info, self._dispatch(mo, info, args))

    def _dispatch(self, mo: Any, info: Any, args: list) -> Any:
        """Client-side checks, then the model's answer (a fault round-trips as the client would see it)."""
        self.SerializeRequest(mo, info, args)  # client-side checks: version, types, required fields
        kwargs = wire.decode_arguments(info, args, self.version)
        try:
            return dispatch.invoke(self.vc, self.session_key, mo._moId, info.wsdlName, kwargs, self.endpoint,
                                   privilege=getattr(info, "privId", None), mo_type=type(mo))
        except vmodl.MethodFault as fault:
            raise wire.encode_fault(self, fault) from None

    def InvokeAccessor(self, mo: Any, info: Any) -> Any:  # noqa: N802
        return super().InvokeAccessor(mo, info)

    def new_connection(self) -> "FakeStubAdapter":
        """A second connection to the same fake vCenter, with no session yet (as a new SOAP stub
        to the same URL would be): lets `vsphere/authz.py login_as` log in as another user."""
        return FakeStubAdapter(self.vc, version=self.version, endpoint=self.endpoint)

    def server_certificate_der(self) -> bytes:
        """The certificate this fake vCenter presents (what a TLS handshake would show a real client)."""
        return self.vc.certificate_der

    def DropConnections(self) -> None:  # noqa: N802 (pyVmomi's name)
        """Nothing to drop: there is no socket."""
