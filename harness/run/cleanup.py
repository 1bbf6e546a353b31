"""Ledger of created objects, and the sweeper that removes what an aborted run left behind.

Every object the harness creates is named with the run prefix, marked with the run ID in its
annotation, and written to an append-only, fsync'd ledger *before* its create call returns, so
even a run killed with SIGKILL leaves a record (and the marker works without the ledger).
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from harness.run.markers import MARKER, annotation, parse_annotation  # noqa: F401 - re-exported


def run_id_of(annotation_text: str | None) -> str | None:
    """The run ID of an annotation that is exactly a harness marker; None for anything else."""
    mark = parse_annotation(annotation_text)
    return mark.run_id if mark else None


class Ledger:
    """Append-only JSON lines, fsync'd per entry; safe across threads and xdist workers (O_APPEND)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, **entry: Any) -> None:
        entry.setdefault("time", time.time())
        line = (json.dumps(entry, sort_keys=True) + "\n").encode("utf-8")
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    def record_change(self, record: dict[str, Any], description: str, run_id: str, test_id: str,
                      restore_id: str) -> None:
        """Before a test changes shared state: the change (the value before, and the value after when
        known) then the restore that undoes it. `vcrypt sweep` honours a restore only paired with its
        change line and restores the value that line recorded (harness/commands/sweep.py).

        `record`: {"action": ..., "vcenter": ..., <the action's fields: the value before>,
        "after": {<the same fields: the value the test sets>} (optional)}."""
        values = {k: v for k, v in record.items() if k not in ("action", "vcenter", "after")}
        common = {"action": record.get("action"), "vcenter": record.get("vcenter"), "description": description,
                  "run_id": run_id, "test_id": test_id, "restore_id": restore_id}
        self.append(kind="change", before=values, after=record.get("after"), **common)
        self.append(kind="restore", **values, **common)

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line torn by a kill mid-write
        return out


def record_uncertain_calls(ledger: Ledger, run_id: str) -> None:
    """Write every mutating call whose outcome is unknown (harness.vsphere.errors.OutcomeUnknown: the
    request left, the reply never came) to the ledger as {"kind": "uncertain", ...}, so `vcrypt sweep`
    can say what may have changed. Subscribed to harness.calls, which sees each call's exception."""
    from harness.calls import subscribe
    from harness.vsphere.errors import OutcomeUnknown

    @contextlib.contextmanager
    def observer(title: str, args: Mapping[str, Any]) -> Iterator[None]:
        try:
            yield
        except OutcomeUnknown as err:
            ledger.append(kind="uncertain", vcenter=err.vcenter, method=err.method, target=err.target,
                          run_id=run_id, description=str(err))
            raise

    subscribe("ledger-uncertain-calls", observer)


@dataclass
class Undo:
    """One cleanup action, run LIFO at teardown."""
    description: str
    action: Callable[[], Any]


class Cleanup:
    """LIFO cleanup that tolerates "not found" and keeps going after a failing step."""

    def __init__(self) -> None:
        self._stack: list[Undo] = []

    def push(self, description: str, action: Callable[[], Any]) -> None:
        self._stack.append(Undo(description, action))

    def run(self) -> list[str]:
        """Run every undo, newest first; returns the problems (never raises)."""
        from pyVmomi import vmodl
        problems = []
        while self._stack:
            undo = self._stack.pop()
            try:
                undo.action()
            except vmodl.fault.ManagedObjectNotFound:
                continue
            except Exception as err:  # noqa: BLE001 - cleanup must go on; the problem is reported
                problems.append(f"{undo.description}: {type(err).__name__}: {err}")
        return problems
