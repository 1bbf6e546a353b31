"""Creates a scratch VM, then waits: the test harness interrupts or kills the run meanwhile."""
from __future__ import annotations

import time

import pytest


@pytest.mark.rule("DATA-IN-FLIGHT")
@pytest.mark.test_id("22222222-0000-4000-8000-000000000001")
def test_creates_a_vm_and_hangs(scratch, vc, place):
    scratch.vm(vc, place, "hang")
    scratch.vm(vc, place, "hang2")
    time.sleep(120)
