"""The shared KMS hangs (SIGSTOP) mid-run: the run must end in seconds with environment errors naming it.

The KMS process group's id is written to the file named by VCRYPT_SCENARIO_PGID so the harness's
test can SIGCONT/kill it whatever happens; this module also resumes it when its tests are done.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from harness.vsphere import crypto, keys


@pytest.fixture(scope="module", autouse=True)
def _resume_the_kms_afterwards(environment):
    yield
    pgid = environment.kms.servers["shared"].pid
    if pgid:
        os.killpg(pgid, signal.SIGCONT)


@pytest.mark.rule("KMS-STATUS")
@pytest.mark.test_id("55555555-0000-4000-8000-000000000001")
def test_the_shared_kms_hangs(environment, provider):
    pgid = environment.kms.servers["shared"].pid
    Path(os.environ["VCRYPT_SCENARIO_PGID"]).write_text(str(pgid))
    os.killpg(pgid, signal.SIGSTOP)


@pytest.mark.rule("KMS-GENERATE")
@pytest.mark.test_id("55555555-0000-4000-8000-000000000002")
def test_a_key_is_generated(vc, provider):
    assert keys.generate_key(vc, provider)[1]


@pytest.mark.rule("OP-ENCRYPT-OFF")
@pytest.mark.test_id("55555555-0000-4000-8000-000000000003")
def test_a_vm_is_encrypted(scratch, vc, place, provider, policies_a):
    crypto.encrypt(vc, scratch.vm(vc, place, "hung"), keys.generate_key(vc, provider), policies_a.encryption)


@pytest.mark.rule("KMS-GENERATE")
@pytest.mark.test_id("55555555-0000-4000-8000-000000000004")
@pytest.mark.parametrize("attempt", range(4))
def test_more_keys_are_generated(vc, provider, attempt):
    assert keys.generate_key(vc, provider)[1]


@pytest.mark.rule("OP-STATE")
@pytest.mark.test_id("55555555-0000-4000-8000-000000000005")
def test_what_needs_no_kms_still_passes(scratch, vc, place):
    assert scratch.vm(vc, place, "no-kms")
