"""Destroying, unregistering and converting VMs."""
from __future__ import annotations

from typing import Any

from pyVmomi import vim

from harness.fakevc.model.base import CallContext


def detach(vm: Any) -> None:
    """Remove a VM and its snapshots from the inventory (its disk files go with it)."""
    vm.parent_mo.remove(vm)
    if vm.pool is not None and vm in vm.pool.vms:
        vm.pool.vms.remove(vm)
    for snap in vm.all_snapshots():
        vm.vc.unregister(snap)
    vm.vc.unregister(vm)


def destroy(ctx: CallContext, vm: Any) -> None:
    if vm.power_state == "poweredOn":
        raise vim.fault.InvalidPowerState(requestedState="poweredOff", existingState="poweredOn",
                                          msg="The attempted operation cannot be performed in the current state (Powered on).")
    detach(vm)


def unregister(ctx: CallContext, vm: Any) -> None:
    destroy(ctx, vm)


def mark_as_template(ctx: CallContext, vm: Any) -> None:
    if vm.power_state == "poweredOn":
        raise vim.fault.InvalidPowerState(requestedState="poweredOff", existingState="poweredOn",
                                          msg="The attempted operation cannot be performed in the current state (Powered on).")
    vm.template = True


def mark_as_vm(ctx: CallContext, vm: Any, pool: Any, host: Any) -> None:
    if not vm.template:
        raise vim.fault.NotSupported(msg="The operation is not supported on the object.")
    vm.template = False
