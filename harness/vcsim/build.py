"""Find a vcsim binary, or build the small launcher from Debian's govmomi library (the fallback).

The pinned current vcsim (govmomi from the Go module proxy) is built by pinned.py; which one runs
is decided in choice.py. Debian packages govmomi's Go sources (golang-github-vmware-govmomi-dev) but not the
`vcsim` binary, and there is no module proxy offline. So the launcher in `launcher.go`
is compiled in GOPATH mode (GO111MODULE=off) against /usr/share/gocode, once per
(launcher source, go version, govmomi version), and cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness.gobuild import file_lock, is_executable, user_cache

LAUNCHER_SOURCE = Path(__file__).with_name("launcher.go")
LAUNCHER_NAME = "vcsim-launcher"
SYSTEM_GOPATH = Path("/usr/share/gocode")
GOVMOMI_IMPORT = "github.com/vmware/govmomi"
# Import roots the launcher needs besides the standard library.
REQUIRED_IMPORTS = (f"{GOVMOMI_IMPORT}/simulator", f"{GOVMOMI_IMPORT}/pbm/simulator", "github.com/google/uuid")
BUILD_TIMEOUT = 900.0


class VcsimUnavailable(RuntimeError):
    """No vcsim can be had: go or govmomi is missing, a binary is missing, or the build failed."""


# --------------------------------------------------------------------------- toolchain


def _go() -> str | None:
    return shutil.which("go")


def _gopath_entries() -> list[Path]:
    """GOPATH entries to search: the user's GOPATH first, then Debian's shared one."""
    entries = [Path(p) for p in os.environ.get("GOPATH", "").split(os.pathsep) if p]
    if SYSTEM_GOPATH not in entries:
        entries.append(SYSTEM_GOPATH)
    return entries


def _find_import(import_path: str) -> Path | None:
    for root in _gopath_entries():
        candidate = root / "src" / import_path
        if candidate.is_dir():
            return candidate
    return None


def toolchain_status() -> str | None:
    """None when go and govmomi's sources are present; else why the launcher cannot be built."""
    if _go() is None:
        return "go toolchain not found on PATH (Debian: apt-get install golang-go)"
    gopath = os.pathsep.join(str(p) for p in _gopath_entries())
    for imp in REQUIRED_IMPORTS:
        if _find_import(imp) is None:
            pkg = "golang-github-google-uuid-dev" if "uuid" in imp else "golang-github-vmware-govmomi-dev"
            return f"Go package {imp} not found under GOPATH {gopath} (Debian: apt-get install {pkg})"
    return None


def go_version() -> str:
    """`go version` output, which names the release and the target OS/arch."""
    go = _go()
    if go is None:
        raise VcsimUnavailable(toolchain_status() or "go not found")
    out = subprocess.run([go, "version"], capture_output=True, text=True, timeout=60, check=False)
    return out.stdout.strip() or out.stderr.strip()


def govmomi_version() -> str:
    """The govmomi sources' identity: Debian package version plus a stat fingerprint of the tree
    the launcher compiles against, so a library upgrade invalidates the cached build."""
    root = _find_import(GOVMOMI_IMPORT)
    if root is None:
        raise VcsimUnavailable(toolchain_status() or "govmomi not found")
    digest = hashlib.sha256(str(root).encode())
    for sub in ("", "simulator", "simulator/vpx", "simulator/esx", "vim25/types", "pbm/simulator"):
        for f in sorted((root / sub).glob("*.go")):
            st = f.stat()
            digest.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return f"{_dpkg_version('golang-github-vmware-govmomi-dev')}+{digest.hexdigest()[:12]}"


def _dpkg_version(package: str) -> str:
    if shutil.which("dpkg-query") is None:
        return "unpackaged"
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, timeout=30, check=False
    )
    return out.stdout.strip() or "unpackaged"


# --------------------------------------------------------------------------- cache


def default_cache_root() -> Path:
    """~/.cache/vcrypt-harness/vcsim, honouring XDG_CACHE_HOME."""
    return user_cache("vcsim")


def _source_digest() -> str:
    return hashlib.sha256(LAUNCHER_SOURCE.read_bytes()).hexdigest()


def build_key() -> str:
    """Hash of what determines the binary: launcher source, go version, govmomi version."""
    h = hashlib.sha256()
    for part in (_source_digest(), go_version(), govmomi_version()):
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:16]


def build_launcher(cache_dir: Path | None = None) -> Path:
    """Build launcher.go once into `<cache_dir or default>/<build key>/vcsim-launcher`, reuse it after.

    The binary is built to a temporary name beside the target and renamed into place, under a
    file lock, so a reader never sees a half-written binary and two workers never build twice.
    """
    reason = toolchain_status()
    if reason is not None:
        raise VcsimUnavailable(reason)
    root = Path(cache_dir) if cache_dir is not None else default_cache_root()
    key = build_key()
    target = root / key / LAUNCHER_NAME
    if is_executable(target):
        return target
    with file_lock(root / f"{key}.lock"):
        if is_executable(target):  # another worker built it while we waited
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        _compile(target, root)
        _write_meta(target, key)
    return target


def _go_env(root: Path) -> dict[str, str]:
    """Environment for an offline GOPATH-mode build against Debian's Go sources."""
    env = dict(os.environ)
    env["GO111MODULE"] = "off"
    env["GOPATH"] = os.pathsep.join(str(p) for p in _gopath_entries())
    env["GOFLAGS"] = ""  # e.g. -mod=... is rejected in GOPATH mode
    env["CGO_ENABLED"] = env.get("CGO_ENABLED", "0")
    if not env.get("GOCACHE") and not (env.get("XDG_CACHE_HOME") or env.get("HOME")):
        env["GOCACHE"] = str(root / "go-build")  # go refuses to build with no cache dir
    return env


def _compile(target: Path, root: Path) -> None:
    go = _go()
    assert go is not None
    fd, tmp_name = tempfile.mkstemp(prefix=f".{LAUNCHER_NAME}.", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    cmd = [go, "build", "-trimpath", "-ldflags=-s -w", "-o", str(tmp), str(LAUNCHER_SOURCE)]
    try:
        try:
            proc = subprocess.run(
                cmd, cwd=target.parent, env=_go_env(root), capture_output=True, text=True,
                timeout=BUILD_TIMEOUT, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise VcsimUnavailable(f"building the vcsim launcher timed out after {exc.timeout:.0f}s") from exc
        if proc.returncode != 0:
            raise VcsimUnavailable(f"building the vcsim launcher failed: {_tail(proc.stderr + proc.stdout)}")
        tmp.chmod(0o755)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _tail(text: str, lines: int = 8) -> str:
    return " | ".join(line for line in text.strip().splitlines()[-lines:]) or "(no output)"


def _write_meta(target: Path, key: str) -> None:
    """Record what the binary was built from, so it can be reused if go is later removed."""
    meta = {"key": key, "source_sha256": _source_digest(), "go": go_version(), "govmomi": govmomi_version()}
    (target.parent / "build.json").write_text(json.dumps(meta, indent=2) + "\n")


def cached_launcher(cache_dir: Path | None = None) -> Path | None:
    """A launcher built earlier from the current launcher source, usable without go; newest first."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_root()
    source = _source_digest()
    found: list[Path] = []
    for meta_file in root.glob("*/build.json"):
        try:
            meta = json.loads(meta_file.read_text())
        except (OSError, ValueError):
            continue
        binary = meta_file.parent / LAUNCHER_NAME
        is_debian_build = "key" in meta  # the pinned build's folder (pinned.py) has no build key
        if is_debian_build and meta.get("source_sha256") == source and is_executable(binary):
            found.append(binary)
    return max(found, key=lambda p: p.stat().st_mtime, default=None)


# --------------------------------------------------------------------------- discovery


def _explicit_binary(path: Path) -> Path:
    if not path.exists():
        raise VcsimUnavailable(f"vcsim binary {path} does not exist")
    if not is_executable(path):
        raise VcsimUnavailable(f"vcsim binary {path} is not an executable file")
    return path
