"""Build strictkms.go against github.com/ovh/kmip-go from the Go module proxy, once, into the user cache.

The same way the pinned vcsim is built (harness/gobuild.py, shared with vcsim/pinned.py): our small Go source, checked in,
compiled with a Go toolchain >= the module's `go` line against the exact module version the proxy
serves, cached under `~/.cache/vcrypt-harness/strictkms/<version>/` with a build.json saying what
made it (rebuilt when the source changes). The toolchain is chosen by the caller
(`select_go`, by version, never Debian's Go 1.19).
"""
from __future__ import annotations

from pathlib import Path

from harness.gobuild import GoBuildFailed, GoToolchain, PinnedGoProgram, go_candidates, newest_go, user_cache

KMIP_GO_MODULE = "github.com/ovh/kmip-go"
KMIP_GO_VERSION = "v0.8.0"        # the pin: its kmipserver package (go.mod: `go 1.25.5`)
MIN_GO = (1, 25)
SOURCE = Path(__file__).with_name("strictkms.go")
BINARY_NAME = "strictkms"


class StrictKmsUnavailable(RuntimeError):
    """The strict KMS cannot be had: no suitable Go, no module proxy, or the build failed."""


def cache_dir(cache_root: Path | None = None) -> Path:
    root = Path(cache_root) if cache_root is not None else user_cache("strictkms")
    return root / KMIP_GO_VERSION


def select_go() -> GoToolchain | None:
    """The newest Go on the machine new enough for the kmip-go pin (None: there is none)."""
    return newest_go(go_candidates(), MIN_GO)


def _program(cache_root: Path | None) -> PinnedGoProgram:
    return PinnedGoProgram(binary=BINARY_NAME, module=KMIP_GO_MODULE, version=KMIP_GO_VERSION, sources=(SOURCE,),
                           directory=cache_dir(cache_root), go_line="1.25", meta_key="kmip_go")


def cached_binary(cache_root: Path | None = None) -> Path | None:
    """The cached build of the current source, if any."""
    return _program(cache_root).cached()


def build(toolchain: GoToolchain | None = None, cache_root: Path | None = None) -> Path:
    """The strictkms binary: cached, else built with `toolchain` (default: the newest suitable Go on the
    machine); StrictKmsUnavailable saying why when it cannot be."""
    found = cached_binary(cache_root)
    if found is not None:
        return found
    toolchain = toolchain or select_go()
    if toolchain is None:
        raise StrictKmsUnavailable(f"no Go >= {'.'.join(map(str, MIN_GO))} to build the strict KMS "
                                   f"({KMIP_GO_MODULE} {KMIP_GO_VERSION})")
    try:
        return _program(cache_root).build(toolchain)
    except GoBuildFailed as err:
        raise StrictKmsUnavailable(f"building the strict KMS ({KMIP_GO_MODULE} {KMIP_GO_VERSION}): {err}") from None
