"""Shared checks of the project's own tests.

A test that needs a tool this machine lacks skips and says why, except in CI, which must provide
it: a skip there would hide a regression behind a missing toolchain.
"""
from __future__ import annotations

import os

import pytest


def require(problem: str | None, what: str) -> None:
    """Nothing when `problem` is None; else skip with it (fail in CI: CI must provide `what`)."""
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must provide {what}: {problem}")
    pytest.skip(problem)


def require_toolchain() -> None:
    """The vcsim toolchain (Go and the govmomi sources, harness.vcsim.toolchain_status)."""
    from harness.vcsim import toolchain_status
    require(toolchain_status(), "the vcsim toolchain")


@pytest.fixture
def vcsim_toolchain() -> None:
    """`require_toolchain` as a fixture, for tests that would rather ask for it by name."""
    require_toolchain()
