"""The suites' fixtures come from the vcrypt plugin (harness/run/fixtures.py): inventory, vc, vc_b,
place, policies_a, kms, scratch, serial, provider, provider_b, dedicated_provider, encrypted_vm.
The few that only the suites share are here; assertion helpers are in harness/checks.py."""
from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def embedded_kms_server(environment: Any, kms: Any, provider: str) -> Any:
    """The harness's own KMIP server behind `provider`, which a test may stop or make refuse key
    creation (`stop()`, `refuse_create(True)`); an external KMS cannot be: a capability skip."""
    if environment.kms is None:
        pytest.skip("capability: the KMS is not embedded: the harness cannot stop it or make it refuse")
    return environment.kms.servers[kms.for_provider(provider).role]
