"""A pytest plugin suite_wall_time.py loads into `vcrypt run` (with `-p _suite_timing`; PYTHONPATH=bench).

Per pytest process (the serial session, or each xdist worker) it appends one JSON line to the
file named by $VCRYPT_BENCH_TIMING: when the first test's setup began, when the last test's
teardown ended, and how long the session-scoped `environment` fixture took to start (embedded
KMS, fake vCenters), with this process's CPU time over the same spans — so the suites' own time can be told apart from start-up, also under xdist,
where run.json has no start-up figure (the controller starts no environment).

$VCRYPT_BENCH_LIMIT=N keeps only the first N collected tests (the smoke test's tiny runs); the
order of collection is the same in every worker, so xdist sees the same selection everywhere.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest

_state: dict[str, Any] = {"first": None, "last": None, "env_s": 0.0, "tests": 0, "cpu_first": 0.0, "cpu_last": 0.0,
                          "env_cpu_s": 0.0}


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    limit = int(os.environ.get("VCRYPT_BENCH_LIMIT", "0") or 0)
    if limit and len(items) > limit:
        deselected = items[limit:]
        del items[limit:]
        config.hook.pytest_deselected(items=deselected)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: Any) -> Any:
    began = time.time()
    if _state["first"] is None:
        _state["first"] = began
        _state["cpu_first"] = time.process_time()
    yield
    _state["last"] = time.time()
    _state["cpu_last"] = time.process_time()
    _state["tests"] += 1


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef: Any, request: Any) -> Any:
    began, cpu = time.perf_counter(), time.process_time()
    yield
    if fixturedef.argname == "environment":
        _state["env_s"] += time.perf_counter() - began
        _state["env_cpu_s"] += time.process_time() - cpu


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = os.environ.get("VCRYPT_BENCH_TIMING")
    if not path or _state["first"] is None:
        return
    worker = getattr(session.config, "workerinput", {}).get("workerid", "main")
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps({"worker": worker, **_state}) + "\n")
