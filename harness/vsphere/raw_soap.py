"""A PropertyCollector reply as the bytes that came off the wire, to be parsed elsewhere (a worker process).

Why: turning a page of 500 VMs' device lists into pyVmomi objects is ~90% of `vcrypt audit` on a large
inventory (bench/README.md); the bytes can be parsed by pyVmomi's own deserializer in another process
while the next page is fetched. `raw_invoker` sends the request exactly as pyVmomi's SoapStubAdapter
does (same serializer, headers, session cookie, connection pool) and returns the response body
instead of deserializing it; a SOAP fault (HTTP 500) is deserialized and raised here, as pyVmomi would.
A stub that is neither an HTTP SoapStubAdapter nor offers `invoke_raw` (the fake's adapter does: it
builds the same envelope) gets None: the caller parses in-process through the stub.
"""
from __future__ import annotations

import re
import socket
from http.client import HTTPException
from http.cookies import SimpleCookie
from typing import Any, Callable

from pyVmomi import SoapAdapter
from pyVmomi import vmodl
from pyVmomi.SoapAdapter import GzipReader, SoapDeserializer, SoapResponseDeserializer, SoapStubAdapter

RawInvoke = Callable[[Any, Any, list], bytes]

# The continuation token is the first child of the reply's <returnval> (RetrieveResult's WSDL sequence is
# token, then objects; pyVmomi, vcsim and vCenter serialize it in that order), so it is read from the
# head of the bytes without parsing the page. Element text cannot hold a raw '<' (XML escapes it).
_TOKEN = re.compile(rb"<(?:[\w.-]+:)?returnval(?:\s[^>]*)?>\s*<(?:[\w.-]+:)?token(?:\s[^>]*)?>([^<]*)</(?:[\w.-]+:)?token>")
_HEAD = 4096


def continuation_token(raw: bytes) -> str | None:
    """The RetrieveResult.token of a raw RetrievePropertiesEx reply; None on the last page."""
    match = _TOKEN.search(raw[:_HEAD])
    if match is None:
        return None
    from xml.sax.saxutils import unescape
    return unescape(match.group(1).decode("utf-8"), {"&quot;": '"', "&apos;": "'"})


class _ParseStub:
    """What the deserializer needs of a stub in a process with no connection: the API version."""

    def __init__(self, version: str) -> None:
        self.version = version


class _ObjectsOneByOne(SoapDeserializer):
    """pyVmomi's deserializer, handing each ObjectContent of a RetrieveResult to `take` as soon as its
    element closes, then dropping it: a page of 500 VMs is never a tree of 500 VMs' objects at once."""

    def __init__(self, stub: Any, take: Callable[[Any], None]) -> None:
        super().__init__(stub)
        self._take = take

    def EndElementHandler(self, tag: str) -> None:  # noqa: N802 (pyVmomi's name)
        super().EndElementHandler(tag)
        stack = getattr(self, "stack", None)   # deleted once the reply's result is complete
        if stack and len(stack) == 1 and isinstance(stack[0], vmodl.query.PropertyCollector.RetrieveResult):
            done = stack[0].objects
            if done:
                for content in done:
                    self._take(content)
                del done[:]


def parse_objects(raw: bytes, version: str, take: Callable[[Any], None]) -> None:
    """Each ObjectContent of a raw RetrievePropertiesEx / ContinueRetrievePropertiesEx reply, to `take`
    (ManagedObject references come back bound to no stub: only their moId is read).

    Given bytes, pyVmomi's parser is never told the document ended, so a truncated reply would parse
    to fewer objects without an error: a reply must end with the envelope's closing tag."""
    if not re.search(rb"</(?:[\w.-]+:)?Envelope>\s*$", raw[-256:]):
        raise ValueError(f"incomplete SOAP reply ({len(raw)} bytes, no closing Envelope tag)")
    reader = SoapResponseDeserializer(_ParseStub(version))
    reader.deser = _ObjectsOneByOne(reader.stub, take)
    reader.Deserialize(raw, vmodl.query.PropertyCollector.RetrieveResult)


def raw_invoker(stub: Any) -> RawInvoke | None:
    """How to get a call's raw reply from `stub`: the fake's `invoke_raw`, HTTP for a SoapStubAdapter."""
    own = getattr(stub, "invoke_raw", None)
    if callable(own):
        return own
    if isinstance(stub, SoapStubAdapter):
        return lambda mo, info, args: _http_invoke_raw(stub, mo, info, args)
    return None


def _http_invoke_raw(stub: SoapStubAdapter, mo: Any, info: Any, args: list) -> bytes:
    """SoapStubAdapter.InvokeMethod (pyVmomi 9.1) up to the response body, which it returns unparsed."""
    headers = {"Cookie": stub.cookie, "SOAPAction": stub.versionId,
               "Content-Type": f"text/xml; charset={SoapAdapter.XML_ENCODING}",
               "User-Agent": f"pyvmomi {getattr(SoapAdapter, 'version_info_str', '')} vcrypt-harness"}
    if stub._customHeaders:
        headers.update(stub._customHeaders)
    if stub._acceptCompressedResponses:
        headers["Accept-Encoding"] = "gzip, deflate"
    request = stub.SerializeRequest(mo, info, args)
    for modifier in stub.requestModifierList:
        request = modifier(request)
    conn = stub.GetConnection()
    try:
        conn.request("POST", stub.path, request, headers)
        resp = conn.getresponse()
        body = _read_body(resp)
    except (socket.error, HTTPException):
        conn.close()
        stub.DropConnections()
        raise
    cookie = resp.getheader("Set-Cookie") or resp.getheader("set-cookie")
    if cookie:
        stub.cookie = cookie
        session = SimpleCookie(cookie).get(SoapAdapter.COOKIE_NAME)
        if session:
            SoapAdapter.SoapStubAdapterBase.SetSessionId(stub, session.value)   # as InvokeMethod's super() call
    if resp.status not in (200, 500):
        conn.close()
        raise HTTPException(f"{resp.status} {resp.reason}")
    stub.ReturnConnection(conn)
    if resp.status == 500:
        fault = SoapResponseDeserializer(stub).Deserialize(body, info.result)
        raise fault
    return body


def _read_body(resp: Any) -> bytes:
    encoding = (resp.getheader("Content-Encoding", "identity") or "identity").lower()
    if encoding == "gzip":
        return GzipReader(resp, encoding=GzipReader.GZIP).read()
    if encoding == "deflate":
        return GzipReader(resp, encoding=GzipReader.DEFLATE).read()
    return resp.read()
