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
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.vcsim.build import (BUILD_TIMEOUT, LAUNCHER_NAME, LAUNCHER_SOURCE, VcsimUnavailable, _file_lock,
                                 _is_executable, _tail, default_cache_root)

GOVMOMI_MODULE = "github.com/vmware/govmomi"
GOVMOMI_VERSION = "v0.56.0"          # the pin: newest release the module proxy serves (2026-08-21)
MIN_GO = (1, 25)                     # govmomi v0.56.0's go.mod says `go 1.25.0`
_GO_RELEASE = re.compile(r"go(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class GoToolchain:
    path: Path
    version: tuple[int, ...]

    @property
    def release(self) -> str:
        return "go" + ".".join(str(p) for p in self.version)


def _candidates() -> list[Path]:
    """Every `go` we can find: each PATH entry (not only the first), GOROOT, the usual install dirs."""
    found: list[Path] = []
    dirs = [Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    if os.environ.get("GOROOT"):
        dirs.append(Path(os.environ["GOROOT"]) / "bin")
    dirs += [Path("/usr/local/go/bin"), Path.home() / "go" / "bin", Path("/usr/lib/go/bin")]
    dirs += sorted(Path("/usr/lib").glob("go-*/bin"))
    for directory in dirs:
        go = directory / "go"
        if _is_executable(go) and go.resolve() not in {f.resolve() for f in found}:
            found.append(go)
    return found


def go_release(go: Path) -> tuple[int, ...] | None:
    """(major, minor, patch) from `go env GOVERSION`; None if it does not answer."""
    try:
        out = subprocess.run([str(go), "env", "GOVERSION"], capture_output=True, text=True, timeout=60,
                             check=False, env=dict(os.environ, GOTOOLCHAIN="local"))
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _GO_RELEASE.match(out.stdout.strip())
    return tuple(int(g) for g in match.groups() if g is not None) if match else None


def select_go(minimum: tuple[int, int] = MIN_GO) -> GoToolchain | None:
    """The newest Go toolchain on the machine that is at least `minimum`; None if there is none."""
    best: GoToolchain | None = None
    for go in _candidates():
        version = go_release(go)
        if version is not None and version[:2] >= minimum and (best is None or version > best.version):
            best = GoToolchain(go, version)
    return best


def pinned_status() -> str | None:
    """None when the pinned vcsim can be had (cached, or a Go toolchain that can build it); else why not."""
    if cached_pinned() is not None or select_go() is not None:
        return None
    seen = ", ".join(f"{g} ({'.'.join(map(str, go_release(g) or ())) or '?'})" for g in _candidates()) or "none"
    return (f"no Go >= {'.'.join(map(str, MIN_GO))} to build the pinned vcsim (govmomi {GOVMOMI_VERSION}); "
            f"Go toolchains found: {seen}")


def _source_digest() -> str:
    return hashlib.sha256(LAUNCHER_SOURCE.read_bytes()).hexdigest()


def pinned_dir(cache_root: Path | None = None) -> Path:
    return (Path(cache_root) if cache_root is not None else default_cache_root()) / GOVMOMI_VERSION


def cached_pinned(cache_root: Path | None = None) -> Path | None:
    """The cached pinned build, if it was made from the current launcher source."""
    directory = pinned_dir(cache_root)
    binary = directory / LAUNCHER_NAME
    try:
        meta = json.loads((directory / "build.json").read_text())
    except (OSError, ValueError):
        return None
    ok = meta.get("govmomi") == GOVMOMI_VERSION and meta.get("source_sha256") == _source_digest()
    return binary if ok and _is_executable(binary) else None


def _go_mod() -> str:
    return f"module vcrypt-harness/vcsim-launcher\n\ngo 1.24\n\nrequire {GOVMOMI_MODULE} {GOVMOMI_VERSION}\n"


def _go_env(toolchain: GoToolchain, workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["GOFLAGS"] = "-mod=mod"          # let `go mod tidy` write go.sum from the proxy's checksums
    env["GOTOOLCHAIN"] = "local"         # use the chosen toolchain, never download another one
    env["GO111MODULE"] = "on"
    env["CGO_ENABLED"] = env.get("CGO_ENABLED", "0")
    env["PATH"] = f"{toolchain.path.parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("GOROOT", None)              # a GOROOT of another toolchain would mix standard libraries
    if not env.get("GOCACHE") and not (env.get("XDG_CACHE_HOME") or env.get("HOME")):
        env["GOCACHE"] = str(workdir / "go-build")
    return env


def build_pinned(cache_root: Path | None = None) -> Path:
    """Build (once; later calls reuse the cache) the launcher against govmomi GOVMOMI_VERSION."""
    cached = cached_pinned(cache_root)
    if cached is not None:
        return cached
    toolchain = select_go()
    if toolchain is None:
        raise VcsimUnavailable(pinned_status() or "no Go toolchain")
    directory = pinned_dir(cache_root)
    directory.mkdir(parents=True, exist_ok=True)
    with _file_lock(directory.parent / f"{GOVMOMI_VERSION}.lock"):
        cached = cached_pinned(cache_root)  # another worker built it while we waited
        if cached is not None:
            return cached
        with tempfile.TemporaryDirectory(prefix="vcrypt-vcsim-build-") as tmp:
            work = Path(tmp)
            (work / "go.mod").write_text(_go_mod())
            shutil.copyfile(LAUNCHER_SOURCE, work / "launcher.go")
            env = _go_env(toolchain, work)
            output = directory / f".{LAUNCHER_NAME}.tmp"
            _run([str(toolchain.path), "mod", "tidy"], work, env, "go mod tidy (module proxy)")
            _run([str(toolchain.path), "build", "-trimpath", "-ldflags=-s -w", "-o", str(output), "."],
                 work, env, "go build")
            output.chmod(0o755)
            os.replace(output, directory / LAUNCHER_NAME)
        meta = {"govmomi": GOVMOMI_VERSION, "go": toolchain.release, "go_path": str(toolchain.path),
                "source_sha256": _source_digest()}
        (directory / "build.json").write_text(json.dumps(meta, indent=2) + "\n")
    return directory / LAUNCHER_NAME


def _run(cmd: list[str], cwd: Path, env: dict[str, str], what: str) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        raise VcsimUnavailable(f"building the pinned vcsim: {what} timed out after {exc.timeout:.0f}s") from exc
    if proc.returncode != 0:
        raise VcsimUnavailable(f"building the pinned vcsim (govmomi {GOVMOMI_VERSION}): {what} failed: "
                               f"{_tail(proc.stderr + proc.stdout, 4)}")
