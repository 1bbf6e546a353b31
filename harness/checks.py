"""Assertions the suites share: refusals checked twice (the fault, then the unchanged state).

Where API.md marks a fault class UNCONFIRMED, pass `expected=None`: the refusal is asserted and the
concrete fault class and message are recorded as evidence instead of asserting a guessed class.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from pyVmomi import vmodl

from harness.evidence.recorder import current_recorder
from harness.vsphere.errors import EnvironmentFault, TaskFailed, fault_class_name, fault_message
from harness.vsphere.fault_kinds import TRANSPORT_ERRORS, environment_cause, not_by_product


@dataclass(frozen=True)
class Refusal:
    fault: Any
    fault_class: str
    message: str


class NotRefused(AssertionError):
    """An operation the rules say must be refused succeeded."""


def refused(action: Callable[[], Any], what: str, expected: type | tuple[type, ...] | None = None) -> Refusal:
    """Run `action`; it must fail with a vmodl fault (of `expected`, when the class is confirmed)."""
    try:
        action()
    except TaskFailed as err:
        fault = err.fault
    except vmodl.MethodFault as err:
        fault = err
    except TRANSPORT_ERRORS as err:
        raise not_by_product(what, err) from err
    else:
        raise NotRefused(f"{what}: expected a refusal, but the operation succeeded")
    refusal = Refusal(fault, fault_class_name(fault), fault_message(fault))
    current_recorder().note(f"refusal: {what}", {"class": refusal.fault_class, "message": refusal.message})
    reject_environment_fault(fault, what, expected)
    if expected is not None and not isinstance(fault, expected):
        names = ", ".join(t.__name__ for t in (expected if isinstance(expected, tuple) else (expected,)))
        raise AssertionError(f"{what}: refused with {refusal.fault_class} ({refusal.message}), expected {names}")
    return refusal


def unchanged(before: Any, after: Any, what: str) -> None:
    """The state after a refusal equals the state before (keys, power, snapshots, location...)."""
    if before != after:
        diffs = [f"{name}: {getattr(before, name)!r} -> {getattr(after, name)!r}"
                 for name in getattr(before, "__dataclass_fields__", {}) if getattr(before, name) != getattr(after, name)]
        raise AssertionError(f"{what}: state changed although the operation was refused: " + "; ".join(diffs or [f"{before!r} -> {after!r}"]))


def reject_environment_fault(fault: Any, what: str, expected: type | tuple[type, ...] | None = None) -> None:
    """A TLS, login, session, connection or (unexpected) permission fault is no refusal: raise an
    EnvironmentFault so the plugin reports an error (harness/vsphere/fault_kinds.py)."""
    wanted = () if expected is None else (expected if isinstance(expected, tuple) else (expected,))
    cause = environment_cause(fault, wanted)
    if cause is not None:
        raise not_by_product(what, cause)


class ControlFailed(EnvironmentFault):
    """The positive control of a refusal test failed: the refusal cannot be put down to the forbidden change."""


def positive_control(action: Callable[[], Any], what: str) -> Any:
    """Run the same operation without the forbidden change (on a twin): it must succeed in this run,
    or the refusal test next to it reports an error instead of a verdict."""
    try:
        result = action()
    except (TaskFailed, vmodl.MethodFault, EnvironmentFault, *TRANSPORT_ERRORS) as err:
        fault = getattr(err, "fault", err)
        current_recorder().note(f"positive control failed: {what}", {"class": fault_class_name(fault),
                                                                     "message": fault_message(fault)})
        raise ControlFailed(f"positive control failed: {what} ({fault_class_name(fault)}: {fault_message(fault)}); "
                            "the refusal next to it proves nothing about the product") from err
    current_recorder().note(f"positive control succeeded: {what}", True)
    return result
