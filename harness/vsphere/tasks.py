"""Event-driven task waits: one PropertyCollector filter per wait, WaitForUpdatesEx, no polling."""
from __future__ import annotations

import time
from typing import Any

from pyVmomi import vim, vmodl

from harness.vsphere.errors import TaskFailed, TaskTimeout

PC = vmodl.query.PropertyCollector
_DONE = {"success", "error"}


def wait_for_task(client: Any, task: vim.Task, what: str, timeout_name: str = "task") -> Any:
    """The task's result once it ends; `TaskFailed` (with the fault) or `TaskTimeout` otherwise."""
    seconds = float(getattr(client.timeouts, timeout_name))
    pc = client.property_collector
    spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=task, skip=False)],
                         propSet=[PC.PropertySpec(type=vim.Task, pathSet=["info.state", "info.error", "info.result"])])
    flt = pc.CreateFilter(spec, partialUpdates=False)
    state, error, result, version = "queued", None, None, ""
    deadline = time.monotonic() + seconds
    try:
        while state not in _DONE:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TaskTimeout(what, timeout_name, seconds, state)
            update = pc.WaitForUpdatesEx(version, PC.WaitOptions(maxWaitSeconds=max(1, int(min(remaining, 60)))))
            if update is None:
                continue
            version = update.version
            for filter_update in update.filterSet or []:
                for obj_update in filter_update.objectSet or []:
                    for change in obj_update.changeSet or []:
                        if change.name == "info.state":
                            state = change.val
                        elif change.name == "info.error":
                            error = change.val
                        elif change.name == "info.result":
                            result = change.val
    finally:
        try:
            flt.DestroyPropertyFilter()
        except vmodl.MethodFault:
            pass
    if state == "error":
        raise TaskFailed(what, error)
    return result
