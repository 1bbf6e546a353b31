"""A collected test's permanent id, below the plugin, selection and deviations that all read it."""
from __future__ import annotations

import pytest


def evidence_id(item: pytest.Item) -> str:
    """The test's permanent ID, with the parameter set appended for parametrized tests."""
    marker = item.get_closest_marker("test_id")
    if marker is None:
        return ""
    callspec = getattr(item, "callspec", None)
    return f"{marker.args[0]}[{callspec.id}]" if callspec is not None else marker.args[0]
