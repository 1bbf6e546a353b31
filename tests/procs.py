"""Finding processes a run left behind, ignoring those this test process owns (session fixtures)."""
from __future__ import annotations

import os
import re
import subprocess


def leftover_servers() -> list[str]:
    """KMS servers and vcsim launchers not started by this pytest process itself."""
    ps = subprocess.run(["ps", "-ww", "-eo", "pid=,ppid=,args="], capture_output=True, text=True).stdout
    mine = str(os.getpid())
    left = []
    for line in ps.splitlines():
        if "_pykmip_serve" not in line and "vcsim-launcher" not in line:
            continue
        parent = re.search(r"--parent-pid (\d+)", line)
        if (parent and parent.group(1) == mine) or line.split()[1] == mine:
            continue
        left.append(line[:200])
    return left
