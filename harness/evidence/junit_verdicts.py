"""Rule verdicts as JUnit testsuite properties, so CI tools see what the report and OSCAL say.

Each rule gets `verdict:<RULE>` = "<verdict>" or "<verdict>: <first gap>" (partly demonstrated,
deviation, skipped, ...), decided by harness/evidence/verdicts.py from the run's results. It must
run before pytest's junitxml writes the file at session end, hence `tryfirst`.
"""
from __future__ import annotations

from typing import Any, Callable

import pytest


class JunitVerdicts:
    """A pytest plugin object: add the rule verdicts to the JUnit file's global properties."""

    def __init__(self, results: Callable[[], list[dict[str, Any]]]) -> None:
        self._results = results

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from _pytest.junitxml import xml_key

        from harness.evidence.verdicts import load_catalogue, results_from, rule_verdicts
        xml = session.config.stash.get(xml_key, None)
        if xml is None:
            return
        for rule_id, verdict in rule_verdicts(load_catalogue(), results_from(self._results())).items():
            gap = next(iter(verdict.gaps), "") if not verdict.compliant and verdict.verdict != "not run" else ""
            xml.add_global_property(f"verdict:{rule_id}", verdict.verdict + (f": {gap}" if gap else ""))


def register(config: pytest.Config, results: Callable[[], list[dict[str, Any]]]) -> None:
    if not config.pluginmanager.has_plugin("vcrypt-junit-verdicts"):
        config.pluginmanager.register(JunitVerdicts(results), "vcrypt-junit-verdicts")
