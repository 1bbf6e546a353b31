"""A KMS that stops mid-run: later tests that need it must end as environment errors, not failures."""
from __future__ import annotations

import pytest

from harness.vsphere import crypto, keys, vms


@pytest.mark.rule("KMS-GENERATE")
@pytest.mark.test_id("11111111-0000-4000-8000-000000000001")
def test_a_key_can_be_generated_while_the_kms_is_up(vc, provider):
    assert keys.generate_key(vc, provider)[1]


@pytest.mark.rule("KMS-GENERATE")
@pytest.mark.test_id("11111111-0000-4000-8000-000000000002")
def test_the_kms_goes_away(environment):
    environment.kms.servers["shared"].stop()


@pytest.mark.rule("OP-ENCRYPT-OFF")
@pytest.mark.test_id("11111111-0000-4000-8000-000000000003")
def test_an_encrypt_while_the_kms_is_down(scratch, vc, place, provider, policies_a):
    vm = scratch.vm(vc, place, "kms-down")
    crypto.encrypt(vc, vm, None, policies_a.encryption)
    assert vms.state(vc, vm).encrypted


@pytest.mark.rule("OP-STATE")
@pytest.mark.test_id("11111111-0000-4000-8000-000000000004")
def test_the_run_goes_on_with_what_does_not_need_the_kms(scratch, vc, place):
    vm = scratch.vm(vc, place, "still-works")
    vms.power_on(vc, vm)
    assert vms.state(vc, vm).power == "poweredOn"
