"""Evidence that agrees with the verdict (issue 23, point 4): a check row says passed only when the
product did what the rule says, and every assertion helper leaves an expected/observed row."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import pytest
from pyVmomi import vim

from harness.checks import assert_disks_encrypted, assert_on_key, refused, unchanged
from harness.evidence.recorder import Recorder, reset_recorder, use_recorder
from harness.vsphere.errors import EnvironmentFault


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder(test_id="t", nodeid="n")
    token = use_recorder(rec)
    yield rec
    reset_recorder(token)


def _raise(fault: BaseException):
    def action() -> None:
        raise fault
    return action


@dataclass(frozen=True)
class State:
    key: Any
    disk_keys: tuple[Any, ...]


def test_an_environment_errored_refusal_is_not_recorded_as_a_passed_refusal(recorder):
    with pytest.raises(EnvironmentFault):
        refused(_raise(vim.fault.InvalidLogin(msg="bad login")), "decrypt of a powered-on VM")
    [row] = recorder.checks
    assert row["passed"] is False, row
    assert "not a product refusal" in row["observed"] and "InvalidLogin" in row["observed"]


def test_a_product_refusal_is_recorded_as_passed(recorder):
    refused(_raise(vim.fault.InvalidState(msg="powered on")), "decrypt of a powered-on VM")
    assert [r["passed"] for r in recorder.checks] == [True]


def test_the_state_check_is_labelled_after_the_refusal_only_when_there_was_one(recorder):
    before = State(("p", "k1"), (("p", "k1"),))
    refused(_raise(vim.fault.InvalidState(msg="no")), "recrypt")
    unchanged(before, before, "recrypt")
    assert recorder.checks[-1]["what"] == "recrypt: state after the refusal"
    with pytest.raises(AssertionError):
        refused(lambda: None, "clone with a decrypt spec")
    with pytest.raises(AssertionError):
        unchanged(before, State(None, (None,)), "clone with a decrypt spec")
    assert recorder.checks[-1]["what"] == "clone with a decrypt spec: state after the operation (which was not refused)"
    unchanged(before, before, "source of a clone")  # no refusal was asked for
    assert recorder.checks[-1]["what"] == "source of a clone: state after the operation"


@pytest.mark.parametrize(("helper", "args"), [
    (assert_on_key, (State(("p", "k1"), (("p", "k2"),)), ("p", "k1"), "clone")),
    (assert_on_key, (State(("p", "k1"), ()), ("p", "k1"), "clone")),
    (assert_disks_encrypted, (State(("p", "k1"), (None,)), "clone")),
])
def test_every_assertion_helper_that_fails_leaves_an_expected_observed_row(recorder, helper, args):
    with pytest.raises(AssertionError) as err:
        helper(*args)
    assert recorder.checks and recorder.checks[-1]["passed"] is False
    row = recorder.checks[-1]
    assert row["expected"] and row["observed"] and row["observed"] != row["expected"]
    assert row["what"] in str(err.value)


def test_a_passing_assertion_helper_leaves_a_passed_row(recorder):
    assert_on_key(State(("p", "k1"), (("p", "k1"),)), ("p", "k1"), "clone")
    assert_disks_encrypted(State(("p", "k1"), (("p", "k1"),)), "clone")
    assert [r["passed"] for r in recorder.checks] == [True, True]


def test_a_vm_that_did_not_arrive_leaves_an_expected_observed_row(recorder):
    from harness.checks import arrived
    scratch = type("Scratch", (), {"expect_vm": lambda self, c, n: None, "adopt_vm": lambda self, c, n: None})()
    with pytest.raises(AssertionError, match="clone-1"):
        arrived(scratch, type("C", (), {"name": "vc-b"})(), "clone-1", lambda: None)
    row = recorder.checks[-1]
    assert row["passed"] is False and row["observed"] == "no VM of that name" and "clone-1" in row["what"]
