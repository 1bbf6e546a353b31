"""harness/calls.py: the operations layer reports each vCenter call to whoever subscribed (issue 16)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from harness import calls


@pytest.fixture
def seen() -> Iterator[list[tuple[str, Any]]]:
    events: list[tuple[str, Any]] = []

    @contextlib.contextmanager
    def observer(title: str, args: Mapping[str, Any]) -> Iterator[None]:
        events.append(("enter", (title, dict(args))))
        try:
            yield
        except BaseException as err:
            events.append(("fault", type(err).__name__))
            raise
        events.append(("exit", title))

    calls.subscribe("test-observer", observer)
    yield events
    calls.unsubscribe("test-observer")


def test_an_observer_sees_the_call_and_how_it_ended(seen):
    with calls.observed("vc-a: PowerOnVM_Task on vm-1", {"host": None}):
        pass
    assert seen == [("enter", ("vc-a: PowerOnVM_Task on vm-1", {"host": None})), ("exit", "vc-a: PowerOnVM_Task on vm-1")]


def test_a_fault_reaches_the_observer_and_the_caller(seen):
    with pytest.raises(ValueError), calls.observed("vc-a: Destroy_Task on vm-1", {}):
        raise ValueError("refused")
    assert seen[-1] == ("fault", "ValueError")


def test_subscribing_twice_under_one_name_keeps_one_observer(seen):
    calls.subscribe("test-observer", calls._observers["test-observer"])
    with calls.observed("t", {}):
        pass
    assert [e for e in seen if e[0] == "enter"] == [("enter", ("t", {}))]


def test_without_subscribers_a_call_runs_untouched():
    saved = dict(calls._observers)
    calls._observers.clear()
    try:
        with calls.observed("t", {}):
            ran = True
    finally:
        calls._observers.update(saved)
    assert ran


def test_the_vsphere_client_reports_through_the_registry(seen):
    """VCenterClient.invoke wraps the call in calls.observed (the Allure step subscribes there)."""
    from harness.vsphere.client import VCenterClient

    class Manager:
        def CurrentTime(self) -> str:  # noqa: N802 - a vSphere method name
            return "now"

    client = VCenterClient(name="vc-a", si=None, timeouts=None)
    client.gate.check_vim = lambda *args: None  # a read; the gate is not under test here
    assert client.invoke(Manager(), "CurrentTime") == "now"
    assert seen[0][0] == "enter" and seen[0][1][0].startswith("vc-a: CurrentTime on ") and seen[-1][0] == "exit"
