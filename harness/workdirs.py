"""Private work folders (KMS keys and databases, vcsim state) that a killed process cannot leak.

Each folder is made 0700 under the temp directory and carries an owner file (pid, the process's
start time, the run id). A run killed with SIGKILL never removes its folder; `vcrypt sweep` finds
folders whose owner is gone (the pid is dead, or now belongs to a process started later) and
removes them. Folders without an owner file are never touched.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

OWNER_FILE = ".vcrypt-owner"
PREFIX = "vcrypt-"


def process_start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22); None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def make_workdir(prefix: str = PREFIX, run_id: str | None = None) -> Path:
    """A new 0700 folder in the temp directory owned by this process (see module docstring)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))  # mkdtemp: 0700
    owner = {"pid": os.getpid(), "start": process_start_ticks(os.getpid()), "run_id": run_id}
    (folder / OWNER_FILE).write_text(json.dumps(owner), encoding="utf-8")
    return folder


def private_folder(folder: Path, restrict_existing: bool = True) -> Path:
    """Make a folder 0700 (it will hold private keys). An existing folder is restricted only when
    `restrict_existing`: a user's own `--workdir` (maybe `.`) is never chmod-ed, only what we create in it."""
    if not folder.exists():
        folder.mkdir(parents=True, mode=0o700)
    if restrict_existing:
        folder.chmod(0o700)
    return folder


@dataclass(frozen=True)
class StaleFolder:
    path: Path
    pid: int
    run_id: str | None


def _owner_alive(owner: dict) -> bool:
    pid = owner.get("pid")
    if not isinstance(pid, int):
        return True  # unreadable: assume alive, never delete on a guess
    ticks = process_start_ticks(pid)
    return ticks is not None and (owner.get("start") is None or ticks == owner.get("start"))


def stale_workdirs(root: Path | None = None) -> list[StaleFolder]:
    """Harness work folders whose owning process is gone."""
    stale = []
    for folder in sorted(Path(root or tempfile.gettempdir()).glob(f"{PREFIX}*")):
        marker = folder / OWNER_FILE
        if folder.is_symlink() or not marker.is_file():
            continue
        try:
            owner = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(owner, dict) and not _owner_alive(owner):
            stale.append(StaleFolder(folder, int(owner["pid"]), owner.get("run_id")))
    return stale


def sweep_workdirs(run_ids: frozenset[str] | None, dry_run: bool = False, root: Path | None = None) -> list[str]:
    """Remove stale work folders (of the given runs; all stale ones when run_ids is None); lines to print."""
    lines = []
    for folder in stale_workdirs(root):
        if run_ids is not None and folder.run_id not in run_ids:
            continue
        if dry_run:
            lines.append(f"would remove work folder {folder.path} (owner pid {folder.pid} is gone)")
            continue
        shutil.rmtree(folder.path, ignore_errors=True)
        lines.append(f"removed work folder {folder.path} (owner pid {folder.pid} is gone)")
    return lines
