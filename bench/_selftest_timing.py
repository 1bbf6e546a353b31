"""A pytest plugin selftest_cost.py loads into each selftest session (`-p _selftest_timing`; PYTHONPATH=bench).

Per session it appends one JSON line to $VCRYPT_BENCH_TIMING with wall-clock marks (time.time):
configured (the plugins are loaded), collected, first test's set-up began, last test's teardown
ended, unconfigured (after the harness wrote the run folder's reports), and how long the
session-scoped `environment` fixture took to start (embedded KMS pair + fake vCenters). The state
is reset at configure, so one process can run many sessions (the selftest workers do).
"""
from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest

_state: dict[str, Any] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    _state.clear()
    _state.update(configured=time.time(), collected=None, first=None, last=None, env_s=0.0, tests=0)


def pytest_collection_finish(session: pytest.Session) -> None:
    _state["collected"] = time.time()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: Any) -> Any:
    if _state.get("first") is None:
        _state["first"] = time.time()
    yield
    _state["last"] = time.time()
    _state["tests"] += 1


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef: Any, request: Any) -> Any:
    began = time.perf_counter()
    yield
    if fixturedef.argname == "environment":
        _state["env_s"] += time.perf_counter() - began


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    path = os.environ.get("VCRYPT_BENCH_TIMING")
    if path and _state:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({**_state, "unconfigured": time.time()}) + "\n")
