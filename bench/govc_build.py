"""Build govc from govmomi v0.56.0 for the audit bench (`bench/audit_vs_govc.py`); cached, never committed.

Why a build and not `go install github.com/vmware/govmomi/govc@v0.56.0`: since v0.47.0 govc is a
nested module (github.com/vmware/govmomi/govc) that the Go module proxy does not serve, but its
commands live in `github.com/vmware/govmomi/cli/...` of the main module, which the proxy does serve;
govc's own main.go only imports those command packages and calls `cli.Run(os.Args[1:])`.
`bench/govc/main.go` does the same for the commands the bench uses, built like the pinned vcsim
(harness/gobuild.py: Go chosen by version, the module proxy, a cache with a build.json).

The binary is cached under `<user cache>/vcrypt-harness/govc/<version>/govc` (outside the repository:
binaries are never committed).

    python bench/govc_build.py        # prints the path of the cached (or freshly built) govc
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.gobuild import GoBuildFailed, PinnedGoProgram, user_cache  # noqa: E402
from harness.vcsim.build import VcsimUnavailable  # noqa: E402
from harness.vcsim.pinned import GOVMOMI_MODULE, GOVMOMI_VERSION, pinned_status, select_go  # noqa: E402

MAIN_GO = Path(__file__).with_name("govc") / "main.go"
PROGRAM = PinnedGoProgram(binary="govc", module=GOVMOMI_MODULE, version=GOVMOMI_VERSION, sources=(MAIN_GO,),
                          directory=user_cache("govc", GOVMOMI_VERSION), go_line="1.25", meta_key="govmomi")


def cached_govc() -> Path | None:
    return PROGRAM.cached()


def build_govc() -> Path:
    """govc built against govmomi GOVMOMI_VERSION (once; later calls reuse the cache)."""
    cached = cached_govc()
    if cached is not None:
        return cached
    toolchain = select_go()
    if toolchain is None:
        raise VcsimUnavailable(pinned_status() or "no Go toolchain to build govc")
    try:
        return PROGRAM.build(toolchain)
    except GoBuildFailed as err:
        raise VcsimUnavailable(f"building govc (govmomi {GOVMOMI_VERSION}): {err}") from None


if __name__ == "__main__":
    print(build_govc())
