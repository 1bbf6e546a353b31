"""Fault types pyVmomi does not know: a refusal with the raw wire name, never a KeyError.

vcsim (govmomi simulator/simulator.go newInvalidStateFault) puts a `SystemErrorFault` in the
faultCause of its InvalidState refusals: govmomi names the type after the WSDL fault *element*
(vim25/types/types.go `t["SystemErrorFault"]`), whose type is vmodl.fault.SystemError. pyVmomi 9.1
raised KeyError('SystemErrorFault') while parsing the task's info.error in WaitForUpdatesEx.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from pyVmomi import SoapAdapter, vim, vmodl

from harness.checks import refused
from harness.evidence.recorder import Recorder, reset_recorder, use_recorder
from harness.vsphere import tasks  # noqa: F401 - installs the unknown-type handling
from harness.vsphere.errors import TaskFailed, UnknownFault, fault_class_name

XSI = 'xmlns="urn:vim25" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'


def _task_error_xml(cause_type: str) -> str:
    """info.error of a vcsim task refused by newInvalidStateFault (as vcsim serializes it)."""
    return (f'<val {XSI} xsi:type="LocalizedMethodFault"><fault xsi:type="InvalidState">'
            f'<faultCause><fault xsi:type="{cause_type}"><reason>vm has snapshots</reason></fault>'
            f'<localizedMessage>vm has snapshots</localizedMessage></faultCause></fault>'
            f'<localizedMessage>vm has snapshots</localizedMessage></val>')


def test_a_fault_named_after_its_wsdl_element_parses_as_its_type_and_is_recorded() -> None:
    recorder = Recorder(test_id="t")
    token = use_recorder(recorder)
    try:
        fault = SoapAdapter.Deserialize(_task_error_xml("SystemErrorFault"), vmodl.MethodFault)
    finally:
        reset_recorder(token)
    assert isinstance(fault, vim.fault.InvalidState)
    assert isinstance(fault.faultCause, vmodl.fault.SystemError) and fault.faultCause.reason == "vm has snapshots"
    notes = [note for note in recorder.notes if "unknown" in str(note).lower()]
    assert notes and "SystemErrorFault" in str(notes[0]), recorder.notes


class _PropertyCollector:
    """WaitForUpdatesEx fails to parse (an unknown type); RetrievePropertiesEx answers per path."""

    def __init__(self, state: str, raw: str) -> None:
        self.state, self.raw = state, raw

    def CreateFilter(self, spec: Any, partialUpdates: bool) -> Any:  # noqa: N802 - pyVmomi names
        return SimpleNamespace(DestroyPropertyFilter=lambda: None)

    def WaitForUpdatesEx(self, version: str, options: Any) -> Any:  # noqa: N802
        raise KeyError(self.raw)

    def RetrievePropertiesEx(self, specs: list[Any], options: Any) -> Any:  # noqa: N802
        paths = specs[0].propSet[0].pathSet
        values = {"info.state": self.state, "info.error.localizedMessage": "vm has snapshots"}
        props = [SimpleNamespace(name=p, val=values[p]) for p in paths if p in values]
        obj = specs[0].objectSet[0].obj
        return SimpleNamespace(objects=[SimpleNamespace(obj=obj, propSet=props)], token=None)


def _client(pc: _PropertyCollector) -> Any:
    return SimpleNamespace(timeouts=SimpleNamespace(task=5), property_collector=pc, name="vc-a",
                           content=SimpleNamespace(propertyCollector=pc))


def test_an_unparseable_task_error_is_a_refusal_with_the_raw_fault_name() -> None:
    client = _client(_PropertyCollector("error", "FrobnicatedFault"))
    task = vim.Task("task-1", None)
    with pytest.raises(TaskFailed) as caught:
        tasks.wait_for_task(client, task, "encrypt VM with snapshots")
    assert caught.value.fault_class == "FrobnicatedFault"
    assert isinstance(caught.value.fault, UnknownFault) and "vm has snapshots" in caught.value.fault_message
    refusal = refused(lambda: tasks.wait_for_task(client, task, "encrypt"), "encrypt VM with snapshots")
    assert refusal.fault_class == "FrobnicatedFault" and fault_class_name(refusal.fault) == "FrobnicatedFault"


def test_an_unparseable_reply_of_a_successful_task_is_not_a_refusal() -> None:
    from harness.vsphere.errors import EnvironmentFault
    client = _client(_PropertyCollector("success", "FrobnicatedResult"))
    with pytest.raises(EnvironmentFault, match="FrobnicatedResult"):
        tasks.wait_for_task(client, vim.Task("task-2", None), "a reconfigure")


def test_refused_with_an_expected_class_cannot_judge_an_unknown_fault() -> None:
    """Not a product failure: the class could not be read, so the check is an environment error."""
    from harness.vsphere.errors import EnvironmentFault
    client = _client(_PropertyCollector("error", "FrobnicatedFault"))
    with pytest.raises(EnvironmentFault, match="FrobnicatedFault"):
        refused(lambda: tasks.wait_for_task(client, vim.Task("task-3", None), "encrypt"), "encrypt powered-on VM",
                expected=vim.fault.InvalidPowerState)
