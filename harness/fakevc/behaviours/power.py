"""Power operations: on, off and suspended (VirtualMachinePowerState).

A suspended VM is neither on nor off: it can be resumed (PowerOnVM_Task) or powered off (its
suspended state discarded). SuspendVM_Task needs a powered-on VM (vSphere API reference,
VirtualMachine.SuspendVM_Task: InvalidPowerState "if the power state is not poweredOn"); govmomi's
vcsim refuses only a request for the state the VM is already in (simulator/virtual_machine.go
powerVMTask.Run), so both allow powering off a suspended VM.
"""
from __future__ import annotations

from typing import Any

from pyVmomi import vim, vmodl

from harness.fakevc.behaviours import locked_vms, maintenance
from harness.fakevc.model.base import CallContext
from harness.fakevc.model.vm import VirtualMachine


def power_on(ctx: CallContext, vm: VirtualMachine) -> None:
    if vm.template:
        raise vmodl.fault.NotSupported(msg=f"'{vm.name}' is a template: a template cannot be powered on.")
    locked_vms.refuse_while_locked(vm, "powering on")   # LOCK-REFUSED
    if vm.power_state == "poweredOn":
        raise vim.fault.InvalidPowerState(requestedState="poweredOn", existingState=vm.power_state,
                                          msg="The attempted operation cannot be performed in the current state (Powered on).")
    maintenance.refuse_placement(vm.host, f"powering on '{vm.name}'")
    vm.power_state = "poweredOn"


def power_off(ctx: CallContext, vm: VirtualMachine) -> None:
    if vm.power_state == "poweredOff":
        raise vim.fault.InvalidPowerState(requestedState="poweredOff", existingState=vm.power_state,
                                          msg="The attempted operation cannot be performed in the current state (Powered off).")
    vm.power_state = "poweredOff"


def suspend(ctx: CallContext, vm: VirtualMachine) -> None:
    if vm.power_state != "poweredOn":
        raise vim.fault.InvalidPowerState(requestedState="suspended", existingState=vm.power_state,
                                          msg="The attempted operation cannot be performed in the current state "
                                              f"({vm.power_state}): only a powered-on virtual machine can be suspended.")
    vm.power_state = "suspended"

# ---- API handlers (registered in harness/fakevc/dispatch.py HANDLERS) --------------------------
def PowerOnVM_Task(ctx: CallContext, vm: VirtualMachine, host: Any = None) -> Any:  # noqa: N802 (WSDL name)
    return vm.vc.tasks.run(ctx, vm, "VirtualMachine.powerOn", lambda: power_on(ctx, vm))


def PowerOffVM_Task(ctx: CallContext, vm: VirtualMachine) -> Any:  # noqa: N802
    return vm.vc.tasks.run(ctx, vm, "VirtualMachine.powerOff", lambda: power_off(ctx, vm))


def SuspendVM_Task(ctx: CallContext, vm: VirtualMachine) -> Any:  # noqa: N802
    return vm.vc.tasks.run(ctx, vm, "VirtualMachine.suspend", lambda: suspend(ctx, vm))
