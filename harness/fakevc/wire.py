"""SOAP round trips for the fake: every request and response passes through pyVmomi's serializer.

A request that a real vCenter would reject on the wire (wrong type, missing required field,
a method newer than the negotiated API version) fails here too; results come back as fresh
objects bound to the caller's stub, exactly as they would after an HTTP round trip.
"""
from __future__ import annotations

import datetime
from typing import Any

from pyVmomi import VmomiSupport, vmodl
from pyVmomi.SoapAdapter import (Deserialize, SerializeFaultDetail, SoapResponseDeserializer,
                                 _SerializeToStr)
from pyVmomi.VmomiSupport import F_OPTIONAL, GetWsdlNamespace, Object

_ENVELOPE_START = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" '
    'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>')
_ENVELOPE_END = "</soapenv:Body></soapenv:Envelope>"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _ServerSide:
    """The 'stub' the server side deserializes with: MoRefs it builds are bound to nothing."""

    def __init__(self, version: str) -> None:
        self.version = version


def decode_arguments(info: Any, args: list, version: str) -> dict[str, Any]:
    """Serialize each argument as the client would send it, then parse it as the server would."""
    ns = GetWsdlNamespace(version)
    decoded: dict[str, Any] = {}
    for param, value in zip(info.params, args):
        if value is None or (isinstance(value, list) and not value):
            decoded[param.name] = None if value is None else []
            continue
        field = Object(name="returnval", type=param.type, version=version, flags=param.flags)
        body = _SerializeToStr(value, field, version, {ns: ""})
        xml = f'{_ENVELOPE_START}<{info.wsdlName}Response xmlns="{ns}">{body}</{info.wsdlName}Response>{_ENVELOPE_END}'
        decoded[param.name] = SoapResponseDeserializer(_ServerSide(version)).Deserialize(xml.encode("utf-8"), param.type)
    return decoded


def response_xml(stub: Any, info: Any, result: Any) -> bytes:
    """The SOAP response envelope carrying the model's result, as an HTTP client would read it."""
    ns = GetWsdlNamespace(stub.version)
    body = ""
    if result is not None and not (isinstance(result, list) and not result):
        field = Object(name="returnval", type=info.result, version=stub.version, flags=info.resultFlags)
        body = _SerializeToStr(result, field, stub.version, {ns: ""})
    xml = f'{_ENVELOPE_START}<{info.wsdlName}Response xmlns="{ns}">{body}</{info.wsdlName}Response>{_ENVELOPE_END}'
    return xml.encode("utf-8")


def encode_response(stub: Any, info: Any, result: Any) -> Any:
    """Serialize the model's result into a SOAP response and parse it with the client's stub."""
    value = SoapResponseDeserializer(stub).Deserialize(response_xml(stub, info, result), info.result)
    if value is None and issubclass(info.result, list):
        return info.result()
    return value


def encode_fault(stub: Any, fault: vmodl.MethodFault) -> vmodl.MethodFault:
    """Round-trip a fault through a SOAP fault envelope, as the client would receive it."""
    ns = GetWsdlNamespace(stub.version)
    message = fault.msg or (fault.faultMessage[0].message if fault.faultMessage else "") or type(fault).__name__
    field = Object(name=f"{fault._wsdlName}Fault", type=type(fault), version=stub.version, flags=0)
    detail = SerializeFaultDetail(fault, field, stub.version, {ns: ""}).replace(
        f"<{field.name}", f'<{field.name} xmlns="{ns}"', 1)
    xml = (f"{_ENVELOPE_START}<soapenv:Fault><faultcode>ServerFaultCode</faultcode>"
           f"<faultstring>{_escape(message)}</faultstring><detail>{detail}</detail></soapenv:Fault>{_ENVELOPE_END}")
    result = SoapResponseDeserializer(stub).Deserialize(xml.encode("utf-8"), object)
    return result


_EPOCH = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)


def _default_for(prop: Any) -> Any:
    typ = prop.type
    if issubclass(typ, list):
        return None  # required arrays are left for the model to fill: an invented element would lie
    if typ is str or typ is VmomiSupport.PropertyPath or typ.__name__ in ("string",):
        return ""
    if typ is bool:
        return False
    if issubclass(typ, int):
        return typ(0)
    if issubclass(typ, float):
        return typ(0)
    if typ is datetime.datetime:
        return _EPOCH
    if issubclass(typ, VmomiSupport.Enum):
        return list(typ.values.values())[0] if hasattr(typ, "values") else None
    if issubclass(typ, VmomiSupport.DataObject):
        return complete(typ())
    return None


def complete(obj: Any) -> Any:
    """Fill every required field still unset with a neutral default, recursively.

    The model stores real pyVmomi data objects; a vCenter always sends required fields, and
    pyVmomi's serializer insists on them, so the fake supplies neutral values the rules never read.
    """
    for prop in obj._GetPropertyList():
        value = getattr(obj, prop.name)
        if prop.flags & F_OPTIONAL:
            if isinstance(value, VmomiSupport.DataObject):
                complete(value)
            continue
        if value is None:
            default = _default_for(prop)
            if default is not None:
                setattr(obj, prop.name, default)
        elif isinstance(value, VmomiSupport.DataObject):
            complete(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, VmomiSupport.DataObject):
                    complete(item)
    return obj
