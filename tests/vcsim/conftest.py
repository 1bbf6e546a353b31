"""The current vcsim for the project's tests: skip with the reason where it cannot be had, except in CI."""
from __future__ import annotations

import os

import pytest


def require_current_vcsim() -> None:
    """A `vcsim` on PATH, or Go >= 1.25 to build the pinned one from the module proxy (or its cache)."""
    from harness.vcsim.choice import availability
    reason = availability()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must provide a current vcsim: {reason}")
    pytest.skip(reason)
