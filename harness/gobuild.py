"""Build a small checked-in Go program against one pinned module version from the Go module proxy, once.

Three programs are built this way: the pinned vcsim (vcsim/pinned.py: our launcher against govmomi),
the strict KMS (kms/strict/build.py: strictkms.go against ovh/kmip-go) and the bench's govc
(bench/govc_build.py: govmomi's cli commands). One place decides what they all need:

- the Go toolchain is chosen by version (the newest >= the module's `go` line), never by PATH order:
  Debian's golang-go (1.19, kept for the fallback vcsim launcher) may sit on PATH before the
  machine's newer Go, and `GOTOOLCHAIN=local` stops Go from downloading another one;
- the binary is cached under the user cache with a build.json saying what made it, and rebuilt when
  a source file or the pin changes;
- concurrent builders (pytest-xdist workers, parallel runs) build once, under a file lock, into a
  temporary name renamed into place, so nobody runs a half-written binary.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BUILD_TIMEOUT = 900.0
_GO_RELEASE = re.compile(r"go(\d+)\.(\d+)(?:\.(\d+))?")


class GoBuildFailed(RuntimeError):
    """No suitable Go, no module proxy, or the build failed; the message says which step and why."""


@dataclass(frozen=True)
class GoToolchain:
    path: Path
    version: tuple[int, ...]

    @property
    def release(self) -> str:
        return "go" + ".".join(str(p) for p in self.version)


def is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def user_cache(*parts: str) -> Path:
    """~/.cache/vcrypt-harness/<parts>, honouring XDG_CACHE_HOME."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base, "vcrypt-harness", *parts)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock: concurrent workers build only once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def go_candidates() -> list[Path]:
    """Every `go` we can find: each PATH entry (not only the first), GOROOT, the usual install dirs."""
    found: list[Path] = []
    dirs = [Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    if os.environ.get("GOROOT"):
        dirs.append(Path(os.environ["GOROOT"]) / "bin")
    dirs += [Path("/usr/local/go/bin"), Path.home() / "go" / "bin", Path("/usr/lib/go/bin")]
    dirs += sorted(Path("/usr/lib").glob("go-*/bin"))
    for directory in dirs:
        go = directory / "go"
        if is_executable(go) and go.resolve() not in {f.resolve() for f in found}:
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


def newest_go(candidates: list[Path], minimum: tuple[int, int]) -> GoToolchain | None:
    """The newest of `candidates` that is at least `minimum`; None if there is none."""
    best: GoToolchain | None = None
    for go in candidates:
        version = go_release(go)
        if version is not None and version[:2] >= minimum and (best is None or version > best.version):
            best = GoToolchain(go, version)
    return best


def describe_toolchains(candidates: list[Path]) -> str:
    """'/usr/bin/go (1.19.8), /usr/local/go/bin/go (1.26.8)' for a message saying what was found."""
    return ", ".join(f"{g} ({'.'.join(map(str, go_release(g) or ())) or '?'})" for g in candidates) or "none"


def build_env(toolchain: GoToolchain, workdir: Path) -> dict[str, str]:
    """The environment of a pinned build: module mode, this toolchain only, no cgo, no foreign GOROOT."""
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


@dataclass(frozen=True)
class PinnedGoProgram:
    """Our Go `sources`, built as `binary` against `module@version` into `directory`."""

    binary: str
    module: str
    version: str
    sources: tuple[Path, ...]
    directory: Path                       # the cache folder of this pin (binary and build.json)
    go_line: str = "1.24"                 # the `go` line of our go.mod
    meta_key: str = "module_version"      # build.json's name for the pinned version

    def digest(self) -> str:
        """What determines the binary besides the pin: every source file's name and bytes."""
        h = hashlib.sha256()
        for source in self.sources:
            h.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
        return h.hexdigest() if len(self.sources) > 1 else hashlib.sha256(self.sources[0].read_bytes()).hexdigest()

    def cached(self) -> Path | None:
        """The cached build of the current sources and pin, if any."""
        try:
            meta = json.loads((self.directory / "build.json").read_text())
        except (OSError, ValueError):
            return None
        binary = self.directory / self.binary
        fresh = meta.get(self.meta_key) == self.version and meta.get("source_sha256") == self.digest()
        return binary if fresh and is_executable(binary) else None

    def build(self, toolchain: GoToolchain) -> Path:
        """Build (once; later calls reuse the cache); GoBuildFailed naming the step that failed."""
        cached = self.cached()
        if cached is not None:
            return cached
        self.directory.mkdir(parents=True, exist_ok=True)
        with file_lock(self.directory.parent / f"{self.directory.name}.lock"):
            cached = self.cached()  # another worker built it while we waited
            if cached is not None:
                return cached
            with tempfile.TemporaryDirectory(prefix=f"vcrypt-{self.binary}-build-") as tmp:
                work = Path(tmp)
                (work / "go.mod").write_text(f"module vcrypt-harness/{self.binary}\n\ngo {self.go_line}\n\n"
                                             f"require {self.module} {self.version}\n")
                for source in self.sources:
                    (work / source.name).write_bytes(source.read_bytes())
                env = build_env(toolchain, work)
                output = self.directory / f".{self.binary}.tmp"
                _run([str(toolchain.path), "mod", "tidy"], work, env, "go mod tidy (module proxy)")
                _run([str(toolchain.path), "build", "-trimpath", "-ldflags=-s -w", "-o", str(output), "."],
                     work, env, "go build")
                output.chmod(0o755)
                os.replace(output, self.directory / self.binary)
            meta = {self.meta_key: self.version, "go": toolchain.release, "go_path": str(toolchain.path),
                    "source_sha256": self.digest()}
            (self.directory / "build.json").write_text(json.dumps(meta, indent=2) + "\n")
        return self.directory / self.binary


def tail(text: str, lines: int = 4) -> str:
    return " | ".join(text.strip().splitlines()[-lines:]) or "(no output)"


def _run(cmd: list[str], cwd: Path, env: dict[str, str], what: str) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        raise GoBuildFailed(f"{what} timed out after {exc.timeout:.0f}s") from None
    if proc.returncode != 0:
        raise GoBuildFailed(f"{what} failed: {tail(proc.stderr + proc.stdout)}")
