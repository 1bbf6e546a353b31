"""Suite-wide arrangements: the key providers the suites need, set up through the real API flow.

The providers are registered with the trust flow (RegisterKmipServer, server-certificate trust,
client-certificate upload, MarkDefault only when no default exists) from the embedded KMS or the
inventory's KMS, and removed at the end if this session added them.
"""
from __future__ import annotations

from typing import Any, Iterator

import pytest

from harness.environment import Environment
from harness.vsphere import keys
from harness.vsphere.client import VCenterClient


def _provider(client: VCenterClient, environment: Environment, role: str) -> Iterator[str]:
    endpoint = environment.kms_endpoints.get(role)
    if endpoint is None:
        pytest.skip(f"capability: inventory has no {role} KMS")
    added = keys.register_provider(client, endpoint, make_default=(role == "shared"))
    yield endpoint.provider_id
    if added:
        keys.remove_provider(client, endpoint.provider_id)


@pytest.fixture(scope="session")
def provider(vc: VCenterClient, environment: Environment) -> Iterator[str]:
    """The shared KMS as a key provider of the primary vCenter (default if none was)."""
    yield from _provider(vc, environment, "shared")


@pytest.fixture(scope="session")
def provider_b(vc_b: VCenterClient, environment: Environment) -> Iterator[str]:
    """The same shared KMS cluster registered on the second vCenter (cross-vCenter rules)."""
    yield from _provider(vc_b, environment, "shared")


@pytest.fixture(scope="session")
def dedicated_provider(vc: VCenterClient, environment: Environment) -> Iterator[str]:
    """A KMS cluster only the primary vCenter has (KMS-DEDICATED)."""
    yield from _provider(vc, environment, "dedicated")


@pytest.fixture
def encrypted_vm(scratch: Any, vc: VCenterClient, place: Any, provider: str, policies_a: Any) -> Any:
    """A powered-off VM encrypted with a fresh key of the shared provider."""
    from harness.vsphere import crypto
    vm = scratch.vm(vc, place, "enc")
    crypto.encrypt(vc, vm, keys.generate_key(vc, provider), policies_a.encryption)
    return vm
