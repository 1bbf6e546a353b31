"""Build strictkms.go against github.com/ovh/kmip-go from the Go module proxy, once, into the user cache.

The same way the pinned vcsim is built (harness/vcsim/pinned.py): our small Go source, checked in,
compiled with a Go toolchain >= the module's `go` line against the exact module version the proxy
serves, cached under `~/.cache/vcrypt-harness/strictkms/<version>/` with a build.json saying what
made it (rebuilt when the source changes). The toolchain is chosen by the caller
(`harness.vcsim.pinned.select_go`, by version, never Debian's Go 1.19): kms/ sits beside vcsim/ in
the layering and does not import it.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

KMIP_GO_MODULE = "github.com/ovh/kmip-go"
KMIP_GO_VERSION = "v0.8.0"        # the pin: its kmipserver package (go.mod: `go 1.25.5`)
MIN_GO = (1, 25)
SOURCE = Path(__file__).with_name("strictkms.go")
BINARY_NAME = "strictkms"
BUILD_TIMEOUT = 900.0


class StrictKmsUnavailable(RuntimeError):
    """The strict KMS cannot be had: no suitable Go, no module proxy, or the build failed."""


def cache_dir(cache_root: Path | None = None) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    root = Path(cache_root) if cache_root is not None else Path(base) / "vcrypt-harness" / "strictkms"
    return root / KMIP_GO_VERSION


def _digest() -> str:
    return hashlib.sha256(SOURCE.read_bytes()).hexdigest()


def cached_binary(cache_root: Path | None = None) -> Path | None:
    """The cached build of the current source, if any."""
    directory = cache_dir(cache_root)
    try:
        meta = json.loads((directory / "build.json").read_text())
    except (OSError, ValueError):
        return None
    binary = directory / BINARY_NAME
    fresh = meta.get("kmip_go") == KMIP_GO_VERSION and meta.get("source_sha256") == _digest()
    return binary if fresh and os.access(binary, os.X_OK) else None


def build(go: Path | None, go_release: str = "", cache_root: Path | None = None) -> Path:
    """The strictkms binary: cached, else built with `go` (None: StrictKmsUnavailable saying why)."""
    found = cached_binary(cache_root)
    if found is not None:
        return found
    if go is None:
        raise StrictKmsUnavailable(f"no Go >= {'.'.join(map(str, MIN_GO))} to build the strict KMS "
                                   f"({KMIP_GO_MODULE} {KMIP_GO_VERSION})")
    directory = cache_dir(cache_root)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f"{KMIP_GO_VERSION}.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # concurrent xdist workers build once
        found = cached_binary(cache_root)
        if found is not None:
            return found
        with tempfile.TemporaryDirectory(prefix="vcrypt-strictkms-build-") as tmp:
            work = Path(tmp)
            (work / "go.mod").write_text(f"module vcrypt-harness/strictkms\n\ngo 1.25\n\n"
                                         f"require {KMIP_GO_MODULE} {KMIP_GO_VERSION}\n")
            (work / "strictkms.go").write_bytes(SOURCE.read_bytes())
            env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local", "GO111MODULE": "on",
                   "CGO_ENABLED": "0", "PATH": f"{go.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
            env.pop("GOROOT", None)
            output = directory / f".{BINARY_NAME}.tmp"
            _run([str(go), "mod", "tidy"], work, env, "go mod tidy (module proxy)")
            _run([str(go), "build", "-trimpath", "-ldflags=-s -w", "-o", str(output), "."], work, env, "go build")
            output.chmod(0o755)
            os.replace(output, directory / BINARY_NAME)
        meta = {"kmip_go": KMIP_GO_VERSION, "go": go_release, "go_path": str(go), "source_sha256": _digest()}
        (directory / "build.json").write_text(json.dumps(meta, indent=2) + "\n")
    return directory / BINARY_NAME


def _run(cmd: list[str], cwd: Path, env: dict[str, str], what: str) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
                              check=False)
    except subprocess.TimeoutExpired:
        raise StrictKmsUnavailable(f"building the strict KMS: {what} timed out") from None
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr + proc.stdout).strip().splitlines()[-4:]) or "(no output)"
        raise StrictKmsUnavailable(f"building the strict KMS ({KMIP_GO_MODULE} {KMIP_GO_VERSION}): {what} "
                                   f"failed: {tail}")
