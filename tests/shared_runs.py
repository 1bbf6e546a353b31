"""End-to-end `vcrypt run`s that several test modules only read: made once per session, not once per module.

The default serial run on fake.yaml was made three times (test_run_fake.py, test_merge.py's unsharded
reference, test_run_fake_67.py's 7.0 side) and the 6.7 run twice (test_run_fake.py, test_run_fake_67.py),
each a minute of CPU on a busy 2-core machine. The readers never change a run folder (test_merge copies
before it edits). tests/balance.py puts the reading modules in one xdist scope, so the worker that makes a
run is the one whose tests read it (also its leftover-process checks see the run's processes); without
xdist a session fixture is made once anyway.

Every fixture hands back the CompletedProcess and the run folder; each reader asserts what it needs
(exit status, verdicts), as it did on its own run.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


def _run(tmp: Path, *args: str) -> tuple[subprocess.CompletedProcess, Path]:
    from tests.test_run_fake import _run as run   # imported when used: conftest imports this module
    return run(tmp, *args)


@pytest.fixture(scope="session")
def default_fake_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    """`vcrypt run` on inventories/fake.yaml (every 7.0 rule), serial, as a user runs it."""
    return _run(tmp_path_factory.mktemp("default-fake-run"))


@pytest.fixture(scope="session")
def fake_67_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    """`vcrypt run` on inventories/fake-67.yaml (pre-7 rules run, 7.0 rules skip by version), serial."""
    return _run(tmp_path_factory.mktemp("fake-67-run"), "--inventory", "inventories/fake-67.yaml")
