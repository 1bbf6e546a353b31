"""Text from outside (inventory names, server answers) made safe to print on one terminal line.

Why: a name carrying U+202E (right-to-left override) or a newline rewrites what an operator reads
(`vc-a<U+202E>lanigiro` shows reversed; `x\\nPASSED` forges a line). Control characters (Cc),
format characters (Cf: the bidi overrides and isolates, zero-width marks) and line/paragraph
separators are shown as `\\uXXXX` escapes; everything else prints as is.
"""
from __future__ import annotations

import unicodedata

_UNSAFE = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}


def is_unsafe(ch: str) -> bool:
    return unicodedata.category(ch) in _UNSAFE


def printable(text: object) -> str:
    """`text` with every control, bidi/format and separator character escaped (`\\u202e`)."""
    value = str(text)
    if value.isprintable() and not any(is_unsafe(ch) for ch in value):
        return value
    return "".join(f"\\u{ord(ch):04x}" if is_unsafe(ch) or (ch != " " and not ch.isprintable()) else ch
                   for ch in value)


def refuse_unsafe(value: str) -> str:
    """For a validator: the value, or ValueError naming the first unsafe character (escaped)."""
    for ch in value:
        if is_unsafe(ch):
            raise ValueError(f"contains the control or bidi character \\u{ord(ch):04x}; names must print as "
                             "they are read")
    return value
