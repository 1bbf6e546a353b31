"""The strict KMS (harness/kms/strict) for the project's tests: built once, skipped (failed in CI) without Go."""
from __future__ import annotations

from pathlib import Path

from harness.kms.strict import StrictKmsUnavailable, build, cached_binary
from tests.conftest import require


def strict_binary() -> Path:
    """The strictkms binary, building it with the newest Go >= 1.25 on the machine when not cached."""
    found = cached_binary()
    if found is not None:
        return found
    from harness.vcsim.pinned import select_go
    go = select_go()
    try:
        return build(go.path if go else None, go.release if go else "")
    except StrictKmsUnavailable as err:
        require(str(err), "Go >= 1.25 and the Go module proxy for the strict KMS")
        raise
