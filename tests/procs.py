"""Finding processes a run left behind: only those this test session started, never other runs'.

Every process this pytest session starts inherits `VCRYPT_TEST_TAG` (set once, below), and so do
the KMS servers and vcsims those processes start, even after they are orphaned. Looking for the
tag in `/proc/<pid>/environ` finds exactly our leftovers, so a run going on elsewhere on the
machine (another checkout, a developer's `vcrypt run`) can neither fail nor hide a check.
"""
from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

TAG_VARIABLE = "VCRYPT_TEST_TAG"
# Under pytest-xdist each worker is its own session for this purpose: a tag the controller set (a
# conftest importing this module) is replaced, so one worker's `vcrypt run` still going on is never
# another worker's leftover.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _WORKER and not os.environ.get(TAG_VARIABLE, "").endswith(f"-{_WORKER}"):
    os.environ[TAG_VARIABLE] = f"{os.getpid()}-{secrets.token_hex(8)}-{_WORKER}"
_TAG = os.environ.setdefault(TAG_VARIABLE, f"{os.getpid()}-{secrets.token_hex(8)}")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # the process ended while we looked, or is not ours to read
        return b""


def _ours(proc: Path) -> bool:
    return f"{TAG_VARIABLE}={_TAG}".encode() in _read(proc / "environ").split(b"\0")


def leftover_servers(grace: float = 0.0) -> list[str]:
    """KMS servers and vcsims this session started through a subprocess and that still run.

    Servers owned by this pytest process itself (its session fixtures) are not leftovers. `grace`:
    how long a server that is stopping may take to go (a stopped KMS's worker process exits within a
    second of its parent): looked at again every 50 ms until none is left or the grace is over, rather
    than a fixed sleep of the whole grace before one look.
    """
    deadline = time.monotonic() + grace
    while True:
        left = _leftover_servers()
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def _leftover_servers() -> list[str]:
    mine = str(os.getpid())
    left = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or proc.name == mine:
            continue
        argv = _read(proc / "cmdline").decode(errors="replace").split("\0")
        args = " ".join(argv).strip()
        is_server = "_pykmip_serve" in args or "vcsim" in Path(argv[0]).name
        if not is_server or not _ours(proc):
            continue
        stat = _read(proc / "stat").decode(errors="replace")
        ppid = stat.rsplit(")", 1)[-1].split()[1] if ")" in stat else ""
        parent = re.search(r"--parent-pid (\d+)", args)
        if ppid == mine or (parent and parent.group(1) == mine):
            continue
        left.append(f"{proc.name} {args}"[:200])
    return left
