"""A run stopped inside a test's body: that test and its rule must not pass.

The first test passes; the second signals (through the file named by VCRYPT_SCENARIO_FLAG) that it
is inside its body and waits for the harness's test to interrupt the run; the third never starts
in a serial run.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest


@pytest.mark.rule("OP-STATE")
@pytest.mark.test_id("33333333-0000-4000-8000-000000000001")
def test_passes_before_the_interruption(vc):
    assert vc.content.about.version


@pytest.mark.rule("KMS-GENERATE")
@pytest.mark.test_id("33333333-0000-4000-8000-000000000002")
def test_is_interrupted_in_its_body(vc):
    Path(os.environ["VCRYPT_SCENARIO_FLAG"]).write_text("inside the test body")
    time.sleep(120)


@pytest.mark.rule("KMS-GENERATE")
@pytest.mark.test_id("33333333-0000-4000-8000-000000000003")
def test_after_the_interruption(vc):
    time.sleep(120 if os.environ.get("PYTEST_XDIST_WORKER") else 0)
