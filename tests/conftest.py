"""Shared checks of the project's own tests.

A test that needs a tool this machine lacks skips and says why, except in CI, which must provide
it: a skip there would hide a regression behind a missing toolchain.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from harness.targets.environment import Environment, open_environment
from harness.safety import MutationGate
from harness.vsphere.client import VCenterClient
# Spreading the tests over xdist workers (slowest modules first, shared runs together) and the runs
# several modules read (made once a session): tests/balance.py, tests/shared_runs.py.
from tests.balance import pytest_collection_modifyitems, pytest_xdist_make_scheduler  # noqa: F401 - hooks
from tests.shared_runs import default_fake_run, fake_67_run  # noqa: F401 - fixtures


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


# ---- a fake vCenter pair for tests that drive the harness's own modules in-process ---------------
FAKE_INVENTORY = Path(__file__).resolve().parents[1] / "inventories" / "fake.yaml"


@pytest.fixture(scope="module")
def env() -> Iterator[Environment]:
    """The default fake vCenter pair with its embedded KMS, one per test module (modules change it)."""
    with open_environment(FAKE_INVENTORY) as environment:
        yield environment


@pytest.fixture(scope="module")
def client(env: Environment) -> VCenterClient:
    """vc-a of `env`, mutations allowed (the tests set up what they then check); re-login replaces
    the cached session, as the harness's own clients do."""
    return VCenterClient("vc-a", env.service_instance("vc-a"), env.inventory.timeouts, "fake",
                         relogin=lambda: env.relogin("vc-a"), gate=MutationGate(allow_mutations=True))
