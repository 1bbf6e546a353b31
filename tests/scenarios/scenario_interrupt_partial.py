"""A run stopped while a rule is half done: the rule must not pass on the instances that ran.

OP-STATE has two tests: the first passes, the second would run after the interruption. The test
in between signals (file VCRYPT_SCENARIO_FLAG) that it is inside its body; its fixture's teardown
signals (the same name + ".teardown") that cleanup is under way and takes a few seconds, so a
second Ctrl-C lands in the cleanup.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest


@pytest.fixture
def slow_cleanup():
    yield
    Path(os.environ["VCRYPT_SCENARIO_FLAG"] + ".teardown").write_text("cleaning up")
    time.sleep(4)


@pytest.mark.rule("OP-STATE")
@pytest.mark.test_id("33333333-0000-4000-8000-000000000011")
def test_op_state_first_instance(vc):
    assert vc.content.about.version


@pytest.mark.rule("KMS-GENERATE")
@pytest.mark.test_id("33333333-0000-4000-8000-000000000012")
def test_is_interrupted_in_its_body(vc, slow_cleanup):
    Path(os.environ["VCRYPT_SCENARIO_FLAG"]).write_text("inside the test body")
    time.sleep(120)


@pytest.mark.rule("OP-STATE")
@pytest.mark.test_id("33333333-0000-4000-8000-000000000013")
def test_op_state_second_instance(vc):
    assert vc.content.about.version
