"""Power operations."""
from __future__ import annotations

from typing import Any

from pyVmomi import vim

from harness.fakevc.model.base import CallContext


def power_on(ctx: CallContext, vm: Any) -> None:
    if vm.template:
        raise vim.fault.NotSupported(msg="A template cannot be powered on.")
    if vm.power_state == "poweredOn":
        raise vim.fault.InvalidPowerState(requestedState="poweredOn", existingState=vm.power_state,
                                          msg="The attempted operation cannot be performed in the current state (Powered on).")
    vm.power_state = "poweredOn"


def power_off(ctx: CallContext, vm: Any) -> None:
    if vm.power_state != "poweredOn":
        raise vim.fault.InvalidPowerState(requestedState="poweredOff", existingState=vm.power_state,
                                          msg="The attempted operation cannot be performed in the current state (Powered off).")
    vm.power_state = "poweredOff"
