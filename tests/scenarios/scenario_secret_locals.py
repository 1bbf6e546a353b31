"""A failing cross-vCenter test whose locals, output and log hold the second vCenter's password.

Run with `-l` (show locals): pytest's own failure text then carries the ServiceLocator credential.
"""
from __future__ import annotations

import logging

import pytest

from harness.vsphere import clones


@pytest.mark.rule("XVC-CLONE-ENCRYPT")
@pytest.mark.test_id("66666666-0000-4000-8000-000000000001")
def test_a_failing_cross_vcenter_test_with_a_credential_in_its_locals(environment, inventory, vc, vc_b, place_b):
    destination = clones.cross_destination(environment, vc_b, place_b)
    credential = destination.locator.credential
    print(f"service locator: {destination.locator}")
    logging.getLogger("scenario").warning("credential in use: %s", credential)
    assert credential.password == "anything else", f"unexpected credential {credential}"


@pytest.mark.rule("XVC-CLONE-DECRYPT")
@pytest.mark.test_id("66666666-0000-4000-8000-000000000002")
def test_a_failure_in_teardown_with_the_password(inventory, vc_b, request):
    password = inventory.vcenter(vc_b.name).password()
    request.addfinalizer(lambda: (_ for _ in ()).throw(RuntimeError(f"teardown saw {password}")))
    pytest.skip(f"capability: pretend the target lacks this ({password})")
