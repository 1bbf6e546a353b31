"""Hosts in maintenance mode: nothing new runs or lands there (fake-lab.yaml has one).

Source: vSphere API reference, HostSystem.EnterMaintenanceMode_Task ("While this task is running
... no virtual machines can be powered on and no provisioning operations can be performed on the
host"; vim_rs `host_system.rs`). Fault class when it is tried anyway: the fake's choice
(InvalidState, the class the reference lists for that method), never asserted by the suites.
"""
from __future__ import annotations


from pyVmomi import vim

from harness.fakevc.model.host import HostSystem


def usable(hosts: list[HostSystem]) -> list[HostSystem]:
    """Hosts a placement may pick (those not in maintenance mode); all of them if none is usable."""
    out = [h for h in hosts if not getattr(h, "in_maintenance", False)]
    return out or list(hosts)


def refuse_placement(host: HostSystem | None, what: str) -> None:
    if host is not None and getattr(host, "in_maintenance", False):
        raise vim.fault.InvalidState(msg=f"{what}: host {host.name} is in maintenance mode; no virtual machine "
                                         "can be powered on or provisioned there.")
