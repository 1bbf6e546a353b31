"""A pytest plugin (`-p tests.enospc_plugin`) that makes the run folder's filesystem full at session end.

From the first pytest_sessionfinish on, every write under the run folder (`--run-dir`) fails with
ENOSPC, as on a full reports filesystem: what the harness then does is what tests/test_inputs_bounded.py checks.
"""
from __future__ import annotations

import builtins
import errno
import os
from pathlib import Path

import pytest

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _full(path: object, root: Path) -> bool:
    try:
        return Path(os.fspath(path)).resolve().is_relative_to(root)  # type: ignore[arg-type]
    except (TypeError, ValueError, OSError):
        return False


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    run_dir = session.config.getoption("--run-dir", None)
    if not run_dir:
        return
    root = Path(run_dir).resolve()
    real_open, real_os_open = builtins.open, os.open

    def full_open(file, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
        if any(m in mode for m in "wax+") and _full(file, root):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
        return real_open(file, mode, *args, **kwargs)

    def full_os_open(path, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
        if flags & _WRITE_FLAGS and _full(path, root):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_os_open(path, flags, *args, **kwargs)

    builtins.open, os.open = full_open, full_os_open
    import io
    io.open = full_open
