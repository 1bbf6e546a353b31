"""vcrypt-harness: acceptance tests for vSphere VM encryption against a fake vCenter, vcsim or a lab."""
from __future__ import annotations

__version__ = "0.1.0"


def open_environment(*args, **kwargs):  # noqa: ANN002, ANN003 - re-exported, documented there
    """See `harness.targets.environment.open_environment`."""
    from harness.targets.environment import open_environment as _open
    return _open(*args, **kwargs)
