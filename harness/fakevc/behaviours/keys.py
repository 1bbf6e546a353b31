"""Keys for the fake: which provider is default, generating keys and fetching KEKs over KMIP.

(STUB: owned by the key-provider work; signatures are the contract other behaviours use.)
"""
from __future__ import annotations

from typing import Any

from harness.fakevc.disks import KeyRef


def default_provider(vc: Any) -> str | None:
    """The provider id marked default on this vCenter, or None."""
    raise NotImplementedError


def provider_known(vc: Any, provider_id: str) -> bool:
    """Whether this vCenter has the provider registered (cross-vCenter and KMS-DEDICATED rules)."""
    raise NotImplementedError


def generate_key(vc: Any, provider_id: str | None = None) -> KeyRef:
    """A new key on the provider (default when None) via KMIP Create; vim fault when impossible."""
    raise NotImplementedError


def kek(vc: Any, key: KeyRef) -> bytes:
    """The key material of `key`, fetched from the provider's KMS over KMIP (vim fault when unreachable)."""
    raise NotImplementedError
