"""KMIP protocol versions: which the client speaks, and the choice from a DiscoverVersions answer.

Why: KMSes speak different KMIP versions (some only 1.0/1.1, KMIP 1.4 §4.26 Discover Versions), and a
request in a version the server does not speak is refused. The client asks; the inventory may pin
one (`kms.<role>.kmip_version`).
"""
from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from kmip.core import enums
    from kmip.core.messages.contents import ProtocolVersion

# What this client speaks (PyKMIP's encoder; 2.0 changes the attribute encoding: not offered), best first.
SPOKEN: tuple[str, ...] = ("1.4", "1.3", "1.2", "1.1", "1.0")
# Header versions DiscoverVersions is tried in: PyKMIP's default, then 1.0, which every server parses.
DISCOVERY_HEADERS: tuple[str, ...] = ("1.2", "1.0")


def kmip_version(text: str) -> enums.KMIPVersion:
    """The PyKMIP enum for "1.1" and so on."""
    return enums.KMIPVersion(float(text))


def protocol_versions(texts: tuple[str, ...] = SPOKEN) -> list[ProtocolVersion]:
    return [ProtocolVersion(*map(int, text.split("."))) for text in texts]


def as_text(version: object) -> str:
    """'1.1' from a ProtocolVersion."""
    major = getattr(version, "major", None)
    minor = getattr(version, "minor", None)
    return f"{major}.{minor}"


def choose(offered: list[str]) -> str | None:
    """The highest version both sides speak.

    Not simply the server's first: KMIP 1.4 §4.26 says the answer is in the server's order of
    preference, but servers differ (github.com/ovh/kmip-go v0.8.0 kmipserver lists them ascending).
    """
    common = [text for text in offered if text in SPOKEN]
    return max(common, key=lambda text: tuple(map(int, text.split("."))), default=None)
