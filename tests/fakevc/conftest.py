"""Fixtures for testing the fake vCenter through plain pyVmomi: two fakes sharing a real KMS."""
from __future__ import annotations

import itertools
from typing import Any, Iterator

import pytest
from pyVmomi import vim, vmodl

from harness.targets.environment import Environment, open_environment

_names = itertools.count(1)


@pytest.fixture(scope="session")
def env() -> Iterator[Environment]:
    with open_environment() as environment:
        yield environment


@pytest.fixture(scope="session")
def si_a(env: Environment) -> Any:
    return env.service_instance("vc-a")


@pytest.fixture(scope="session")
def si_b(env: Environment) -> Any:
    return env.service_instance("vc-b")


def wait(task: Any) -> Any:
    """The task's result, or raise its fault (tasks in the fake finish before they are returned)."""
    info = task.info
    if info.state == "error":
        raise info.error
    assert info.state == "success", info.state
    return info.result


def make_vm(si: Any, disks: int = 1, size_kib: int = 64, host: Any = None) -> Any:
    """A fresh powered-off unencrypted VM created through CreateVM_Task."""
    content = si.content
    dc = content.rootFolder.childEntity[0]
    cluster = [c for c in dc.hostFolder.childEntity if isinstance(c, vim.ClusterComputeResource)][0]
    devices = [vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create",
                                               device=vim.vm.device.VirtualDisk(key=-(i + 1), capacityInKB=size_kib,
                                                                                controllerKey=1000, unitNumber=i))
               for i in range(disks)]
    spec = vim.vm.ConfigSpec(name=f"fakevc-test-{next(_names)}", deviceChange=devices,
                             files=vim.vm.FileInfo(vmPathName="[LocalDS_0]"))
    return wait(dc.vmFolder.CreateVM_Task(config=spec, pool=cluster.resourcePool, host=host))


@pytest.fixture
def vm(si_a: Any) -> Iterator[Any]:
    machine = make_vm(si_a)
    yield machine
    try:
        if machine.runtime.powerState == "poweredOn":
            wait(machine.PowerOffVM_Task())
        wait(machine.Destroy_Task())
    except vmodl.fault.ManagedObjectNotFound:
        pass
