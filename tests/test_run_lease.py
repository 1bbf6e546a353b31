"""The run lease (harness/run/lease.py): what `vcrypt sweep` reads to tell a live run from a dead one."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from harness.run.lease import LEASE_FILE, Lease, RunLease, owner_state, read_lease


def test_a_running_session_refreshes_its_heartbeat_and_ends_its_lease(tmp_path: Path) -> None:
    lease = RunLease(tmp_path, "r-beat", interval=0.05).start()
    try:
        first = read_lease(tmp_path)
        assert first is not None and owner_state(first)[0] == "alive"
        deadline = time.monotonic() + 5
        while (read_lease(tmp_path) or first).heartbeat == first.heartbeat and time.monotonic() < deadline:
            time.sleep(0.02)
        assert read_lease(tmp_path).heartbeat > first.heartbeat, "the daemon thread did not refresh the heartbeat"
    finally:
        lease.stop()
    ended = read_lease(tmp_path)
    assert ended is not None and ended.ended is not None and owner_state(ended) == ("gone", "the run ended")


def test_a_killed_owner_on_this_host_is_gone_at_once(tmp_path: Path) -> None:
    code = ("import sys; from pathlib import Path; from harness.run.lease import RunLease; "
            "RunLease(Path(sys.argv[1]), 'r-killed').start(); print('up', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
        assert owner_state(read_lease(tmp_path))[0] == "alive"
    finally:
        proc.kill()
        proc.wait(timeout=10)
    state, why = owner_state(read_lease(tmp_path))
    assert state == "gone" and str(proc.pid) in why


def test_another_hosts_lease_goes_stale_after_missed_heartbeats() -> None:
    lease = Lease(run_id="r", host="elsewhere.example", pid=1, start=1, heartbeat=1000.0, interval=30.0)
    assert owner_state(lease, now=1000.0 + 60)[0] == "alive"
    assert owner_state(lease, now=1000.0 + 30 * 5)[0] == "gone"


def test_no_lease_or_an_unreadable_one_is_never_proof_of_death(tmp_path: Path) -> None:
    assert owner_state(read_lease(tmp_path))[0] == "unknown"
    (tmp_path / LEASE_FILE).write_text("{not json")
    assert owner_state(read_lease(tmp_path))[0] == "unknown"
    (tmp_path / LEASE_FILE).write_text(json.dumps({"run_id": "r", "host": "h"}))
    assert owner_state(read_lease(tmp_path))[0] == "unknown"
