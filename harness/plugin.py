"""The vcrypt pytest plugin (being written): options, markers, fixtures, run summary."""
from __future__ import annotations


def pytest_configure(config) -> None:  # noqa: ANN001
    for line in ("rule(*ids): the RULES.md rule IDs a test verifies",
                 "requires(*capabilities): target capabilities a test needs",
                 "destructive: changes shared state; runs only where the inventory allows it",
                 "test_id(uuid): the test's permanent identity in every report"):
        config.addinivalue_line("markers", line)
