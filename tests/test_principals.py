"""harness/principals.py: one rule for naming an SSO principal, shared by the harness and the fake."""
from __future__ import annotations

import pytest

from harness.principals import canonical


@pytest.mark.parametrize("written, expected", [
    ("VSPHERE.LOCAL\\Administrator", "administrator@vsphere.local"),
    ("administrator@vsphere.local", "administrator@vsphere.local"),
    ("  Admin@Example.COM ", "admin@example.com"),
    ("localuser", "localuser"),
    ("", ""),
    (None, ""),
])
def test_both_forms_of_one_principal_compare_equal(written, expected):
    assert canonical(written) == expected


def test_different_principals_stay_different():
    assert canonical("EXAMPLE\\alice") != canonical("alice@vsphere.local")


def test_the_harness_and_the_fake_use_the_same_function():
    from harness.fakevc.model import authorization
    from harness.vsphere import authz
    assert authz.canonical is canonical and authorization.canonical is canonical
