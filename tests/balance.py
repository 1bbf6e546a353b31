"""How the project's tests are spread over xdist workers: the longest modules first, shared runs together.

`--dist loadscope` keeps a module on one worker (its module-scoped `vcrypt run`s are made once), but by
default hands out the modules with the most tests first: the few modules that take minutes (a whole
selftest, a run per strict KMS mode) have few tests and started last, so one worker ended alone on them
while the other sat idle. Here (hooks imported by tests/conftest.py, active only under loadscope):

- the collection is ordered by each module's measured cost (`COST_S`, slowest first; modules not
  listed keep their order after them, as cheap fillers), and xdist keeps that order
  (`loadscopereorder` off for this session only: `vcrypt run`'s suites keep xdist's default);
- modules that read the same end-to-end run (`SHARED_RUNS`, tests/shared_runs.py) are one scope, so one
  worker makes the run once for all of them.

COST_S holds each module's seconds from `pytest tests --durations=80` (2026-12-05, before the shared runs,
load average 13-17 from other runs, so ~3-4x a quiet machine's): only the order matters, so it needs
updating only when a module's cost changes by several times.
"""
from __future__ import annotations

from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

COST_S: dict[str, float] = {
    "tests/test_run_faults.py": 515,
    "tests/test_selftest.py": 470,
    "tests/test_run_strict_kms.py": 330,
    "tests/test_bench_smoke.py": 305,
    "tests/test_run_outcomes.py": 262,
    "tests/test_run_vcsim.py": 260,
    "tests/test_run_fake.py": 194,           # one scope with test_merge.py and test_run_fake_67.py (SHARED_RUNS)
    "tests/test_lab_provider.py": 178,
    "tests/test_checkout_run.py": 137,
    "tests/evidence/test_allure_tools.py": 92,
    "tests/test_run_fake_lab.py": 86,
    "tests/test_run_fake_67.py": 83,
    "tests/test_run_vcsim_debian.py": 82,
    "tests/kms/test_strict_preflight.py": 66,
    "tests/test_second_user.py": 65,
    "tests/evidence/test_html_browser.py": 60,
    "tests/test_blame.py": 60,
    "tests/test_run_folder_faults.py": 58,
    "tests/evidence/test_provenance.py": 47,
    "tests/test_secrets_never_print.py": 45,
    "tests/test_alarm_guard.py": 40,
    "tests/test_merge.py": 39,
    "tests/test_kill_and_sweep.py": 37,
    # issue 25's modules, measured alone on a quiet machine (2026-12-06) and scaled x3.5 to the figures above
    "tests/test_run_fake_80.py": 88,
    "tests/test_run_fake_nkp.py": 39,
    "tests/test_kms_multi_lab.py": 26,
    "tests/test_host_key_read.py": 20,
    "tests/test_kill_and_sweep_cluster_default.py": 14,
}

# Modules that read one shared end-to-end run (tests/shared_runs.py): a scope of their own, so the
# session-scoped run is made once, on the worker that runs all of them.
SHARED_RUNS: dict[str, str] = {
    "tests/test_run_fake.py": "default-fake-runs",
    "tests/test_merge.py": "default-fake-runs",
    "tests/test_run_fake_67.py": "default-fake-runs",
}


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def module_cost(nodeid: str) -> float:
    """A module's cost for ordering; a shared-run scope costs what its modules cost together."""
    module = _module(nodeid)
    group = SHARED_RUNS.get(module)
    if group is None:
        return COST_S.get(module, 0.0)
    return sum(COST_S.get(m, 0.0) for m, g in SHARED_RUNS.items() if g == group)


def _loadscope(config: pytest.Config) -> bool:
    return getattr(config.option, "dist", "no") == "loadscope"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[Any]) -> None:
    """Slowest scopes first (a stable sort: within a module, and among unlisted modules, the order stays)."""
    if _loadscope(config) or hasattr(config, "workerinput"):
        items.sort(key=lambda item: -module_cost(item.nodeid))


class CostOrderedScopes(LoadScopeScheduling):
    """loadscope, with the readers of a shared run as one scope."""

    def _split_scope(self, nodeid: str) -> str:
        return SHARED_RUNS.get(_module(nodeid)) or super()._split_scope(nodeid)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """loadscope with the scopes above, in the collection's order (slowest first)."""
    if not _loadscope(config):
        return None
    config.option.loadscopereorder = False   # keep the collection's (cost) order
    return CostOrderedScopes(config, log)
