"""The shared KMS is killed mid-run: tests whose verdict rests on a KMS *refusal* must not pass.

The two suite tests check their refusal's reason themselves; the third is naive (it only checks
that GenerateKey failed) and must still end as an environment error, because the plugin probes a
KMS that was seen failing after every test that touched it.
"""
from __future__ import annotations

import pytest

from harness.vsphere import keys


@pytest.mark.rule("KMS-STATUS")
@pytest.mark.test_id("44444444-0000-4000-8000-000000000001")
def test_the_shared_kms_is_killed(environment, provider):
    environment.kms.servers["shared"].stop()


@pytest.mark.rule("KMS-GENERATE")
@pytest.mark.test_id("44444444-0000-4000-8000-000000000002")
def test_a_naive_refusal_test_that_only_checks_the_failure(vc, provider, kms):
    assert keys.generate_key_result(vc, provider).success is False


from suites.test_events import (  # noqa: E402 - after the kill: collected in this order
    test_a_kms_refusing_key_creation_makes_vcenter_post_a_critical_key_generate_fail_event as test_evt_key_create)
from suites.test_kms import (  # noqa: E402
    test_generate_key_reports_a_kms_refusal_as_success_false_with_a_reason as test_kms_generate_refusal)

__all__ = ["test_evt_key_create", "test_kms_generate_refusal"]
