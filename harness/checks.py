"""Assertions the suites share: refusals checked twice (the fault, then the unchanged state).

Where API.md marks a fault class UNCONFIRMED, pass `expected=None`: the refusal is asserted and the
concrete fault class and message are recorded as evidence instead of asserting a guessed class.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from pyVmomi import vmodl

from harness.evidence.recorder import current_recorder
from harness.vsphere.errors import EnvironmentFault, TaskFailed, UnknownFault, fault_class_name, fault_message


@dataclass(frozen=True)
class Refusal:
    fault: Any
    fault_class: str
    message: str


class UndecidableRefusal(EnvironmentFault):
    """Refused, but with a fault whose class cannot be read: the expected class cannot be checked."""


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
    else:
        raise NotRefused(f"{what}: expected a refusal, but the operation succeeded")
    refusal = Refusal(fault, fault_class_name(fault), fault_message(fault))
    current_recorder().note(f"refusal: {what}", {"class": refusal.fault_class, "message": refusal.message})
    if expected is not None and isinstance(fault, UnknownFault):
        raise UndecidableRefusal(f"{what}: refused with {refusal.fault_class}, a fault type pyVmomi does not know; "
                                 f"cannot tell whether it is the expected class")
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
