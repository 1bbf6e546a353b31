"""The exit status a `vcrypt run` process ends with, from pytest's: one table, so the status written
into run.json and summary.md is the one the process returns (issue 23: run.json said 2 while the
process exited 130)."""
from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_NOTHING_DEMONSTRATED = 5  # also pytest's "no tests collected"
EXIT_INTERNAL = 70  # pytest's INTERNALERROR (its own code 3 would read as "unreachable")
EXIT_INTERRUPTED = 130

# pytest.ExitCode -> vcrypt's (without importing pytest: evidence readers run without it)
_FROM_PYTEST = {2: EXIT_INTERRUPTED, 3: EXIT_INTERNAL, 4: EXIT_USAGE}


def process_status(pytest_status: int) -> int:
    """vcrypt's exit status for pytest's (interrupted 2 -> 130, internal error 3 -> 70, usage 4 -> 2)."""
    return _FROM_PYTEST.get(int(pytest_status), int(pytest_status))
