"""The checkout's conftest: `pytest suites/` runs the suites the way `vcrypt run` does.

Same plugin (harness.run.plugin: the pytest11 entry point has the module's name, so listing it here
registers it once, and a checkout without `pip install` still gets it), same default inventory
(inventories/fake.yaml, harness.inventory.schema), and a run folder reports/<run-id> with what
`vcrypt run` writes there: results, evidence, JUnit, Allure results, report, OSCAL, manifest.
Afterwards it prints the same rule table and points reports/latest at the run.

It only acts for a session that collects suites/ and names no run folder itself: `vcrypt run`
passes --run-dir, and the project's own tests (`pytest`, testpaths = tests) never start a KMS or
write a run folder because of this file. No preflight runs here: `vcrypt run` remains the way
to be told, before anything starts, that a vCenter or KMS does not answer.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest


def _plugins() -> list[str]:
    """harness.run.plugin, unless an install from before the entry point's rename registers it as `vcrypt`
    (pytest would refuse a second registration; `pip install -e .` brings the new name)."""
    from importlib.metadata import entry_points
    stale = any(ep.value == "harness.run.plugin" and ep.name != "harness.run.plugin" for ep in entry_points(group="pytest11"))
    return [] if stale else ["harness.run.plugin"]


pytest_plugins = _plugins()

SUITES = Path(__file__).resolve().parent / "suites"
_STARTED: pytest.StashKey[float] = pytest.StashKey()
_REPORTS: pytest.StashKey[Path] = pytest.StashKey()


def _collects_suites(config: pytest.Config) -> bool:
    for arg in config.args:
        path = (config.invocation_params.dir / str(arg).split("::", 1)[0]).resolve()
        if path == SUITES or SUITES in path.parents:
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Before the plugins read their options: the run folder vcrypt run would make (tryfirst)."""
    import harness.run.plugin
    if not config.pluginmanager.is_registered(harness.run.plugin):
        return  # blocked with -p no:harness.run.plugin: plain pytest
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    if workerinput:  # an xdist worker: the controller's run folder, from the plugin (pytest_configure_node)
        if workerinput.get("vcrypt_run_dir") and getattr(config.option, "allure_report_dir", "") is None:
            config.option.allure_report_dir = str(Path(workerinput["vcrypt_run_dir"]) / "allure-results")
        return
    if config.option.run_dir is not None or config.option.collectonly or not _collects_suites(config):
        return
    from harness.run.runids import RunIdError, fresh_run_dir, new_run_id
    reports = config.invocation_params.dir / "reports"  # vcrypt run's default --reports
    try:
        run_dir = fresh_run_dir(reports, config.option.run_id or new_run_id())
    except RunIdError as err:
        raise pytest.UsageError(f"--run-id: {err}") from None
    config.option.run_id, config.option.run_dir = run_dir.name, str(run_dir)
    if not config.option.xmlpath:
        config.option.xmlpath = str(run_dir / "junit.xml")
    if getattr(config.option, "allure_report_dir", "") is None:  # allure-pytest is a dependency
        config.option.allure_report_dir = str(run_dir / "allure-results")
    config.stash[_STARTED], config.stash[_REPORTS] = time.monotonic(), reports


def _filtered(config: pytest.Config) -> bool:
    """A selection, so the rule table does not count unselected rules as gaps (vcrypt run's `filtered`)."""
    options = config.option
    return bool(options.keyword or options.markexpr or options.rules or options.test_id
                or any("::" in str(arg) or str(arg).endswith(".py") for arg in config.args))


@pytest.hookimpl(wrapper=True)
def pytest_unconfigure(config: pytest.Config) -> Any:
    """After the plugin finished the run folder: vcrypt run's closing lines and reports/latest."""
    result = yield
    reports = config.stash.get(_REPORTS, None)
    run_dir = Path(config.option.run_dir) if reports is not None else None
    if run_dir is not None and (run_dir / "results.json").exists():
        from harness.evidence.summary import print_manifest_digest, print_run_summary
        from harness.run.runfolders import update_latest
        print_run_summary(run_dir, time.monotonic() - config.stash[_STARTED], filtered=_filtered(config))
        print_manifest_digest(run_dir)
        from harness.evidence.verdicts import demonstrated_nothing, load_results
        if not demonstrated_nothing(load_results(run_dir)):  # issue 23: an empty run does not move latest
            update_latest(reports, run_dir)
    return result
