"""Errors of the operations layer, split by whose problem they are.

`EnvironmentFault` subclasses are infrastructure problems (KMS down, vCenter gone, a wait that
timed out): the plugin reports tests that hit them as errors, never as product failures.
"""
from __future__ import annotations

from typing import Any


class EnvironmentFault(RuntimeError):
    """The test could not decide: the lab, not the product, failed."""


class VCenterUnreachable(EnvironmentFault):
    """A vCenter stopped answering (connection refused, reset, timed out) after bounded retries."""


class OutcomeUnknown(VCenterUnreachable):
    """A mutating call whose request left but whose reply never came: it may or may not have run.

    Never retried (a second CloneVM_Task or RegisterKmipServer would act twice); the run's ledger
    records it so `vcrypt sweep` reports it (harness/run/cleanup.py `record_uncertain_calls`)."""

    def __init__(self, vcenter: str, method: str, target: str, cause: BaseException) -> None:
        how = ("no reply came in time" if isinstance(cause, TimeoutError) else "the connection dropped")
        super().__init__(f"{method} may or may not have run on {vcenter}: {how} after the request was sent "
                         f"({type(cause).__name__}: {cause}); check {target} by hand or run `vcrypt sweep`")
        self.vcenter = vcenter
        self.method = method
        self.target = target


class TaskTimeout(EnvironmentFault):
    """A task did not finish within its named timeout."""

    def __init__(self, what: str, timeout_name: str, seconds: float, last_state: str) -> None:
        super().__init__(f"timed out after {seconds:.1f} s ({timeout_name} timeout) waiting for {what}; "
                         f"last state: {last_state}")
        self.what = what
        self.last_state = last_state


class TargetLacks(RuntimeError):
    """The target does not implement a method (vmodl MethodNotFound): a capability it lacks."""

    def __init__(self, vcenter: str, method: str) -> None:
        super().__init__(f"target {vcenter} lacks {method}")
        self.vcenter = vcenter
        self.method = method


class TaskFailed(Exception):
    """A task ended in error: carries the vmodl fault, its class name and message."""

    def __init__(self, what: str, fault: Any) -> None:
        self.fault = fault
        self.fault_class = fault_class_name(fault)
        self.fault_message = fault_message(fault)
        super().__init__(f"{what} failed: {self.fault_class}: {self.fault_message}")


class UnknownFault:
    """A task's fault whose type pyVmomi could not parse: its raw wire type name and message."""

    def __init__(self, wire_name: str, message: str) -> None:
        self.wire_name = wire_name
        self.msg = message

    def __repr__(self) -> str:
        return f"UnknownFault({self.wire_name!r}, {self.msg!r})"


class UnparseableReply(EnvironmentFault):
    """The target answered with a type pyVmomi does not know, where no refusal can be read from it."""


def unknown_type_name(err: KeyError) -> str:
    """The wire name pyVmomi's KeyError carries ('urn:vim25 FooFault' or 'FooFault')."""
    return str(err.args[0] if err.args else err).split()[-1]


def fault_class_name(fault: Any) -> str:
    """The fault's VMODL name (vim.fault.InvalidState); the raw wire name if pyVmomi could not map it."""
    if isinstance(fault, UnknownFault):
        return fault.wire_name
    name = getattr(type(fault), "_wsdlName", None)
    vmodl_name = type(fault).__module__ + "." + type(fault).__name__ if name is None else None
    qualified = getattr(type(fault), "__name__", "")
    if qualified.startswith(("vim.", "vmodl.", "pbm.")):
        return qualified
    return vmodl_name or name or qualified


def fault_message(fault: Any) -> str:
    msg = getattr(fault, "msg", None)
    if not msg:
        messages = getattr(fault, "faultMessage", None) or []
        msg = "; ".join(m.message for m in messages if getattr(m, "message", None))
    return msg or str(fault)
