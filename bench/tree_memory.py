"""Wall time and peak memory of a command's whole process tree (the process and every descendant).

Why sampled: a process's own max RSS (getrusage) misses its children, and `vcrypt audit` parses in
worker processes; the figure that matters is what the tree holds at once. Every `interval` seconds
the RSS of the root and its live descendants (from /proc) is summed; the peak of those sums is
reported, and beside it the peak summed PSS (every 10th sample), which counts a page shared by
several processes (the Python binary, libraries) once in all. (wait4's ru_maxrss is no floor: it counts the forked parent's pages from before the
exec.) Linux only.
"""
from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


@dataclass
class TreeRun:
    seconds: float
    peak_tree_mib: float      # max over samples of the tree's summed RSS
    peak_tree_pss_mib: float  # the same with PSS (shared pages split between the processes sharing them)
    most_processes: int       # the most processes seen in the tree at once
    returncode: int


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        kids.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return kids


def tree_pids(root: int) -> list[int]:
    kids, found, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(kids.get(pid, []))
    return found


def tree_rss(root: int) -> tuple[int, int]:
    """(summed RSS bytes, process count) of `root` and its descendants right now."""
    total, count = 0, 0
    for pid in tree_pids(root):
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES
            count += 1
        except (OSError, IndexError, ValueError):
            continue
    return total, count


def tree_pss(root: int) -> int:
    """Summed PSS bytes of `root` and its descendants (smaps_rollup: dearer to read than statm)."""
    total = 0
    for pid in tree_pids(root):
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
        except (OSError, IndexError, ValueError):
            continue
    return total


def run(cmd: list[str], env: dict[str, str] | None = None, stdout: IO[bytes] | None = None,
        cwd: Path | None = None, interval: float = 0.01, stderr: IO[bytes] | None = None) -> TreeRun:
    """Run `cmd` to completion, sampling its tree's memory every `interval` s."""
    began = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=stdout or subprocess.DEVNULL, stderr=stderr or subprocess.DEVNULL, cwd=cwd)
    peak, peak_pss, most, samples = 0, 0, 0, 0
    while True:
        pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            break
        rss, count = tree_rss(proc.pid)
        peak, most = max(peak, rss), max(most, count)
        if samples % 10 == 0:
            peak_pss = max(peak_pss, tree_pss(proc.pid))
        samples += 1
        time.sleep(interval)
    seconds = time.perf_counter() - began
    proc.returncode = os.waitstatus_to_exitcode(status)
    return TreeRun(seconds, peak / 2**20, peak_pss / 2**20, most, proc.returncode)
