"""Select tests by their permanent test id (the `test_id` marker), for `--test-id` and reruns.

A test id survives renames and moves, so a CI job can pin a test, and `vcrypt run --rerun`
can select what failed in an earlier run. A parametrized test is selected by its bare id (all
instances) or by the id with its parameter set (`<uuid>[param]`, as in results.json).
"""
from __future__ import annotations

import pytest


def _ids_of(item: pytest.Item) -> set[str]:
    from harness.run.item_ids import evidence_id
    marker = item.get_closest_marker("test_id")
    ids = {item.nodeid}
    if marker is not None:
        ids |= {str(marker.args[0]), evidence_id(item)}
    return ids


def apply_test_ids(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep only items named by `--test-id` (repeatable); an id matching no test is a usage error."""
    wanted = [w.strip() for w in config.getoption("--test-id") or [] if w.strip()]
    if not wanted:
        return
    keep, matched = [], set()
    for item in items:
        hits = _ids_of(item) & set(wanted)
        if hits:
            keep.append(item)
            matched |= hits
    unknown = [w for w in wanted if w not in matched]
    if unknown:
        raise pytest.UsageError(f"--test-id: no selected test has id {unknown[0]!r}")
    config.hook.pytest_deselected(items=[item for item in items if item not in keep])
    items[:] = keep
