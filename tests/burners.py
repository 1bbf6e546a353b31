"""CPU burners beside a test: a loaded 2-core machine, on purpose, and always stopped.

`vcrypt selftest` once reported a defect as missed at load average ~7 on 2 cores: a deadline of
the harness passed under load. A test that claims a deadline holds on a loaded machine runs with
one busy-looping process per core beside it (two on the 2-core CI machines), started here and
killed by the fixture's teardown whatever the test did.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

BURN = "while True: pass"


def burner_count() -> int:
    """One per core, at least two: the load the selftest finding was seen under (2 cores, load ~7)."""
    return max(2, os.cpu_count() or 2)


@pytest.fixture
def cpu_burners() -> Iterator[list[int]]:
    """Busy-looping processes for the test's duration; their pids (each is killed by its own pid)."""
    procs = [subprocess.Popen([sys.executable, "-c", BURN], stdin=subprocess.DEVNULL, start_new_session=True)
             for _ in range(burner_count())]
    try:
        yield [p.pid for p in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
