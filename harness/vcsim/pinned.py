"""The pinned current vcsim: launcher.go built against one govmomi release from the Go module proxy.

Why a build and not `go install github.com/vmware/govmomi/vcsim@<version>`: since v0.47.0 vcsim is a
nested Go module (github.com/vmware/govmomi/vcsim) that the module proxy does not serve, so the
proxy refuses `go install .../vcsim@v0.56.0` ("module github.com/vmware/govmomi@v0.56.0 found, but
does not contain package github.com/vmware/govmomi/vcsim"); v0.46.0 is the newest release it installs.
The simulator itself is in the main module, which the proxy does serve, and the harness's own
launcher (launcher.go, written for Debian's 0.24.2) builds unchanged against it. v0.56.0 models far
more of the crypto API than v0.46.0 (disk-level crypto and vmdk keys: simulator/virtual_machine.go
updateCrypto, simulator/crypto_manager_kmip.go).

GOVMOMI_VERSION below is the one place the version is pinned. The binary is cached under
`<user cache>/vcrypt-harness/vcsim/<version>/vcsim-launcher` with a build.json saying what made it.
The Go toolchain is chosen by version (>= the pinned module's `go` line), never by PATH order alone:
Debian's golang-go (1.19, for the fallback launcher) may sit on PATH beside the machine's newer Go.
How the build is done (toolchain, cache, lock) is harness/gobuild.py, shared with the strict KMS.
"""
from __future__ import annotations

from pathlib import Path

from harness.gobuild import GoBuildFailed, GoToolchain, PinnedGoProgram, describe_toolchains, go_candidates, newest_go
from harness.vcsim.build import LAUNCHER_NAME, LAUNCHER_SOURCE, VcsimUnavailable, default_cache_root

GOVMOMI_MODULE = "github.com/vmware/govmomi"
GOVMOMI_VERSION = "v0.56.0"          # the pin: newest release the module proxy serves (2026-08-21)
MIN_GO = (1, 25)                     # govmomi v0.56.0's go.mod says `go 1.25.0`

__all__ = ["GOVMOMI_MODULE", "GOVMOMI_VERSION", "GoToolchain", "build_pinned", "cached_pinned", "pinned_dir",
           "pinned_status", "select_go"]


def _candidates() -> list[Path]:
    return go_candidates()


def select_go(minimum: tuple[int, int] = MIN_GO) -> GoToolchain | None:
    """The newest Go toolchain on the machine that is at least `minimum`; None if there is none."""
    return newest_go(_candidates(), minimum)


def pinned_status() -> str | None:
    """None when the pinned vcsim can be had (cached, or a Go toolchain that can build it); else why not."""
    if cached_pinned() is not None or select_go() is not None:
        return None
    return (f"no Go >= {'.'.join(map(str, MIN_GO))} to build the pinned vcsim (govmomi {GOVMOMI_VERSION}); "
            f"Go toolchains found: {describe_toolchains(_candidates())}")


def pinned_dir(cache_root: Path | None = None) -> Path:
    return (Path(cache_root) if cache_root is not None else default_cache_root()) / GOVMOMI_VERSION


def _program(cache_root: Path | None) -> PinnedGoProgram:
    return PinnedGoProgram(binary=LAUNCHER_NAME, module=GOVMOMI_MODULE, version=GOVMOMI_VERSION,
                           sources=(LAUNCHER_SOURCE,), directory=pinned_dir(cache_root), meta_key="govmomi")


def cached_pinned(cache_root: Path | None = None) -> Path | None:
    """The cached pinned build, if it was made from the current launcher source."""
    return _program(cache_root).cached()


def build_pinned(cache_root: Path | None = None) -> Path:
    """Build (once; later calls reuse the cache) the launcher against govmomi GOVMOMI_VERSION."""
    cached = cached_pinned(cache_root)
    if cached is not None:
        return cached
    toolchain = select_go()
    if toolchain is None:
        raise VcsimUnavailable(pinned_status() or "no Go toolchain")
    try:
        return _program(cache_root).build(toolchain)
    except GoBuildFailed as err:
        raise VcsimUnavailable(f"building the pinned vcsim (govmomi {GOVMOMI_VERSION}): {err}") from None
