"""The key bytes of a KMIP Get answer, in whichever format a compliant KMS chose.

Why: KMIP lets a server answer Get in its default format unless the client names one (KMIP 1.4
§4.11, Key Format Type), and KMSes differ: PyKMIP sends Raw, others a Transparent Symmetric Key
(KMIP 1.4 §2.1.7.1: a structure holding one Key byte string), some only that. PyKMIP 0.11 reads Raw
but refuses the structure with a TypeError while decoding the response; for that answer the key is
read from the message's TTLV here. Anything else is a ValueError naming what was found.
"""
from __future__ import annotations

import warnings
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from kmip.core import enums, objects


def raw_key_bytes(secret: Any) -> bytes:
    """The key bytes of a PyKMIP core SymmetricKey in Raw format (a Transparent one never gets here)."""
    block = getattr(secret, "key_block", None)
    if block is None:
        raise ValueError(f"the answer holds no key block ({type(secret).__name__})")
    key_format = getattr(getattr(block, "key_format_type", None), "value", None)
    material = getattr(getattr(block, "key_value", None), "key_material", None)
    if key_format == enums.KeyFormatType.RAW and isinstance(material, objects.KeyMaterial):
        return bytes(material.value)
    raise ValueError(f"key format {getattr(key_format, 'name', key_format)} is not Raw")


# ---- when PyKMIP cannot read the answer at all -------------------------------------------------
# PyKMIP 0.11 decodes a Transparent Symmetric Key's Key Material structure but then refuses it in
# KeyValue validation (TypeError "invalid key material"), before any caller sees the response. For
# Get only, the key is then read from the response's TTLV directly (KMIP 1.4 §9.1: 3-byte tag,
# 1-byte type, 4-byte length, value padded to 8 bytes; Structure = type 0x01, Byte String = 0x08).
_TAG_KEY_MATERIAL = 0x420043
_TAG_KEY = 0x42003F
_STRUCTURE, _BYTE_STRING = 0x01, 0x08


def _items(data: bytes):  # noqa: ANN202 - yields (tag, type, value bytes)
    offset = 0
    while offset + 8 <= len(data):
        tag = int.from_bytes(data[offset:offset + 3], "big")
        kind = data[offset + 3]
        length = int.from_bytes(data[offset + 4:offset + 8], "big")
        value = data[offset + 8:offset + 8 + length]
        if len(value) != length:
            raise ValueError("truncated TTLV item")
        yield tag, kind, value
        offset += 8 + length + (-length % 8)


def _find(data: bytes, wanted: int) -> tuple[int, bytes] | None:
    for tag, kind, value in _items(data):
        if tag == wanted:
            return kind, value
        if kind == _STRUCTURE:
            found = _find(value, wanted)
            if found is not None:
                return found
    return None


def key_bytes_from_ttlv(response: bytes) -> bytes:
    """The key bytes of a successful Get response message, Raw or Transparent Symmetric Key."""
    found = _find(response, _TAG_KEY_MATERIAL)
    if found is None:
        raise ValueError("the Get answer holds no Key Material")
    kind, value = found
    if kind == _BYTE_STRING:
        return value
    if kind == _STRUCTURE:
        key = _find(value, _TAG_KEY)
        if key is not None and key[0] == _BYTE_STRING:
            return key[1]
    raise ValueError("the Key Material is neither a byte string nor a Transparent Symmetric Key")
