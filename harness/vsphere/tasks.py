"""Event-driven task waits: one PropertyCollector filter per wait, WaitForUpdatesEx, no polling."""
from __future__ import annotations

import time
from typing import Any

from pyVmomi import vim, vmodl

from harness.vsphere import unknown_types
from harness.vsphere.errors import TaskFailed, TaskTimeout, UnknownFault, UnparseableReply, unknown_type_name

unknown_types.install()
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
            try:
                update = pc.WaitForUpdatesEx(version, PC.WaitOptions(maxWaitSeconds=max(1, int(min(remaining, 60)))))
            except KeyError as err:  # a type pyVmomi does not know, somewhere in the reply
                _unparseable(client, task, what, unknown_type_name(err))
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


def _unparseable(client: Any, task: Any, what: str, wire_name: str) -> None:
    """Read only the task's state and message; an error is a refusal carrying the raw fault name."""
    from harness.vsphere.props import retrieve
    props = retrieve(client, [task], vim.Task, ["info.state", "info.error.localizedMessage"]).get(task._moId, {})
    if props.get("info.state") == "error":
        raise TaskFailed(what, UnknownFault(wire_name, props.get("info.error.localizedMessage") or ""))
    raise UnparseableReply(f"{what}: the target sent a type pyVmomi does not know ({wire_name}); "
                           f"task state {props.get('info.state')}")
