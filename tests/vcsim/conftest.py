"""The current vcsim for the project's tests: skip with the reason where it cannot be had, except in CI."""
from __future__ import annotations

import shutil

from tests.conftest import require


def current_vcsim_problem() -> str | None:
    """None when a `vcsim` is on PATH or the pinned one is built (or builds now: Go >= 1.25 and the proxy)."""
    from harness.vcsim import pinned
    from harness.vcsim.build import VcsimUnavailable
    if shutil.which("vcsim"):
        return None
    try:
        pinned.build_pinned()  # cached after the first build
    except VcsimUnavailable as err:
        return str(err)
    return None


def require_current_vcsim() -> None:
    require(current_vcsim_problem(), "a current vcsim")
