"""The run lease: proof, in the run folder, of whether the session that owns a run is still alive.

Why: `vcrypt sweep --all-runs` destroys every marked VM. Without a liveness check it destroyed the
VMs of another operator's run that was still going (issue 21). So each run keeps `lease.json` in
its folder: the host, the pid and that process's start time (clock ticks since boot, so a reused
pid is told apart), the boot id, and a heartbeat a daemon thread refreshes every `interval`
seconds; at the end the lease is marked `ended`. Sweep reads it with `owner_state`:

- ended                                     -> gone ("ended at ...")
- on this host: the pid runs with the same start time -> alive, whatever the heartbeat says
  (a stopped process still owns its VMs); otherwise gone
- on another host: a heartbeat newer than STALE_BEATS intervals -> alive; older -> gone
- no lease, or one that cannot be read       -> unknown (never proof of death)
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from harness.workdirs import process_start_ticks

LEASE_FILE = "lease.json"
HEARTBEAT_S = 30.0
STALE_BEATS = 4  # a lease from another host is stale after this many missed heartbeats

OwnerState = Literal["alive", "gone", "unknown"]


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return None


@dataclass
class Lease:
    run_id: str
    host: str
    pid: int
    start: int | None
    heartbeat: float
    interval: float = HEARTBEAT_S
    ended: float | None = None
    boot_id: str | None = None


def write_lease(folder: Path, lease: Lease) -> None:
    """Replace the lease atomically (a reader never sees half a file)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{LEASE_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(asdict(lease), sort_keys=True), encoding="utf-8")
    os.replace(tmp, folder / LEASE_FILE)


def read_lease(folder: Path) -> Lease | None:
    """The folder's lease, or None when there is none or it cannot be read as one."""
    try:
        data = json.loads((folder / LEASE_FILE).read_text(encoding="utf-8"))
        fields = {k: data[k] for k in ("run_id", "host", "pid", "heartbeat")}
        lease = Lease(**fields, start=data.get("start"), interval=float(data.get("interval") or HEARTBEAT_S),
                      ended=data.get("ended"), boot_id=data.get("boot_id"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return lease if isinstance(lease.pid, int) and isinstance(lease.heartbeat, (int, float)) else None


def owner_state(lease: Lease | None, now: float | None = None) -> tuple[OwnerState, str]:
    """Whether the lease's owner is alive, with the reason sweep prints (see the module docstring)."""
    if lease is None:
        return "unknown", "no readable lease in its run folder"
    now = time.time() if now is None else now
    if lease.ended is not None:
        return "gone", "the run ended"
    if lease.host == socket.gethostname() and (lease.boot_id is None or lease.boot_id == _boot_id()):
        ticks = process_start_ticks(lease.pid)
        if ticks is not None and (lease.start is None or ticks == lease.start):
            return "alive", f"its process {lease.pid} on {lease.host} is running"
        return "gone", f"its process {lease.pid} on {lease.host} is gone"
    age = now - float(lease.heartbeat)
    if age < STALE_BEATS * lease.interval:
        return "alive", f"its owner on {lease.host} (pid {lease.pid}) sent a heartbeat {age:.0f} s ago"
    return "gone", f"its owner on {lease.host} sent no heartbeat for {age:.0f} s ({STALE_BEATS} missed)"


class RunLease:
    """The running session's lease: written at start, refreshed by a daemon thread, ended at stop."""

    def __init__(self, folder: Path, run_id: str, interval: float = HEARTBEAT_S) -> None:
        self.folder = folder
        pid = os.getpid()
        self.lease = Lease(run_id=run_id, host=socket.gethostname(), pid=pid, start=process_start_ticks(pid),
                           heartbeat=time.time(), interval=interval, boot_id=_boot_id())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"vcrypt-lease-{run_id}", daemon=True)

    def start(self) -> "RunLease":
        """Write the lease and start the heartbeat. A folder that cannot take it (full, read-only) is
        not this module's verdict to give: the run goes on, and sweep sees no lease ("unknown": never
        proof of death, so `--all-runs` leaves the run alone)."""
        try:
            write_lease(self.folder, self.lease)
        except OSError:
            return self
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.lease.interval):
            self.lease.heartbeat = time.time()
            try:
                write_lease(self.folder, self.lease)
            except OSError:
                continue  # a full disk must not kill the run; the lease just ages

    def stop(self) -> None:
        """Mark the lease ended (the run is over: sweep may act on what it left)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.lease.ended = self.lease.heartbeat = time.time()
        try:
            write_lease(self.folder, self.lease)
        except OSError:
            pass  # the pid check still proves the owner gone once this process exits
