"""pytest hooks of the mutation gate: a refused mutation is `skipped: safety: ...`, never a failure.

Loaded by harness.run.plugin (`pytest_plugins`). A fixture or test that asks the gate for a mutation
the inventory does not allow could not ask the target anything, so the test decides nothing: a
safety skip with the gate's reason (the method, the object, the inventory setting). Only suite
tests (marked `rule`) are skipped: in the project's own tests a refused call is a failure.
"""
from __future__ import annotations

from typing import Any

import pytest

from harness.safety import MutationRefused


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Any:
    try:
        return (yield)
    except MutationRefused as err:
        _skip_suite_test(item, err)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    try:
        return (yield)
    except MutationRefused as err:
        _skip_suite_test(item, err)


def _skip_suite_test(item: pytest.Item, err: MutationRefused) -> None:
    """Suite tests (marked with a rule) skip; any other test (the project's own) fails loudly."""
    if item.get_closest_marker("rule") is None:
        raise err
    pytest.skip(str(err))
