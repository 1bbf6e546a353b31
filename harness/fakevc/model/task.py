"""Tasks: every *_Task method returns one; the work runs at once and the task records the outcome.

A task that fails carries the vmodl fault in `info.error`, as on vCenter. An optional duration
(set by benchmarks and wait tests) keeps a task running for a known time on a worker thread.
"""
from __future__ import annotations

import datetime
import threading
import time
from typing import Any, Callable

from pyVmomi import vim, vmodl

from harness.fakevc.model.base import MO, CallContext
from harness.fakevc.wire import complete


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class Task(MO):
    vim_type = vim.Task
    moid_prefix = "task"

    def __init__(self, vc: Any, entity: MO | None, description_id: str, user: str) -> None:
        super().__init__(vc)
        self.info = complete(vim.TaskInfo(
            key=self.moid, task=self.ref, descriptionId=description_id,
            entity=entity.ref if entity is not None else None,
            entityName=getattr(entity, "name", None), state="queued", cancelled=False, cancelable=False,
            queueTime=now(), eventChainId=0,
            reason=vim.TaskReasonUser(userName=user or "")))

    def start(self) -> None:
        self.info.state = "running"
        self.info.startTime = now()

    def succeed(self, result: Any = None) -> None:
        self.info.result = result
        self.info.state = "success"
        self.info.progress = 100
        self.info.completeTime = now()

    def fail(self, fault: vmodl.MethodFault) -> None:
        self.info.error = fault
        self.info.state = "error"
        self.info.completeTime = now()

    def CancelTask(self, ctx: CallContext) -> None:
        raise vim.fault.InvalidState(msg="The task cannot be cancelled.")


class TaskManager(MO):
    vim_type = vim.TaskManager
    moid_prefix = "TaskManager"

    def __init__(self, vc: Any, moid: str | None = None) -> None:
        super().__init__(vc, moid)
        self.tasks: list[Task] = []
        self.task_duration = 0.0  # seconds a task stays running (benchmarks); 0 = complete at once

    def p_recentTask(self) -> list:
        return [t.ref for t in self.tasks[-50:]]

    def run(self, ctx: CallContext, entity: MO | None, description_id: str, work: Callable[[], Any]) -> Any:
        """Create a task for `work`, run it, and return the task's MoRef (never raises a fault)."""
        task = Task(self.vc, entity, description_id, ctx.user)
        self.tasks.append(task)
        task.start()
        if self.task_duration > 0:
            threading.Thread(target=self._run_later, args=(task, work, self.task_duration), daemon=True).start()
            return task.ref
        self._execute(task, work)
        return task.ref

    def _execute(self, task: Task, work: Callable[[], Any]) -> None:
        try:
            task.succeed(work())
        except vmodl.MethodFault as fault:
            task.fail(fault)

    def _run_later(self, task: Task, work: Callable[[], Any], delay: float) -> None:
        time.sleep(delay)
        with self.vc.lock:
            self._execute(task, work)
            self.vc.lock.notify_all()
