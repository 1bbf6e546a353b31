"""Build govc from govmomi v0.56.0 for the audit bench (`bench/audit_vs_govc.py`); cached, never committed.

Why a build and not `go install github.com/vmware/govmomi/govc@v0.56.0`: since v0.47.0 govc is a
nested module (github.com/vmware/govmomi/govc) that the Go module proxy does not serve, but its
commands live in `github.com/vmware/govmomi/cli/...` of the main module, which the proxy does serve;
govc's own main.go only imports those command packages and calls `cli.Run(os.Args[1:])`. The main.go
below does the same for the commands the bench uses (the same way `harness/vcsim/pinned.py` builds
vcsim against the pinned release, with the same Go toolchain choice and environment).

The binary is cached under `<user cache>/vcrypt-harness/govc/<version>/govc` with a build.json saying
what made it (outside the repository: binaries are never committed).

    python bench/govc_build.py        # prints the path of the cached (or freshly built) govc
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.vcsim.build import VcsimUnavailable, _file_lock, _is_executable, default_cache_root  # noqa: E402
from harness.vcsim.pinned import GOVMOMI_MODULE, GOVMOMI_VERSION, _go_env, _run, pinned_status, select_go  # noqa: E402

# The command packages the bench calls (govc's main.go imports every one; these are all it needs).
COMMANDS = ["about", "object", "kms", "alarm", "role", "permissions", "session"]

MAIN_GO = """// govc for vcrypt-harness's audit bench: govc's own main.go, with only the commands the bench runs.
package main

import (
\t"os"

\t"github.com/vmware/govmomi/cli"
{imports}
)

func main() {{
\tos.Exit(cli.Run(os.Args[1:]))
}}
"""


def main_go() -> str:
    return MAIN_GO.format(imports="\n".join(f'\t_ "{GOVMOMI_MODULE}/cli/{c}"' for c in COMMANDS))


def govc_dir() -> Path:
    return default_cache_root().parent / "govc" / GOVMOMI_VERSION


def _digest() -> str:
    return hashlib.sha256(main_go().encode()).hexdigest()


def cached_govc() -> Path | None:
    binary = govc_dir() / "govc"
    try:
        meta = json.loads((govc_dir() / "build.json").read_text())
    except (OSError, ValueError):
        return None
    ok = meta.get("govmomi") == GOVMOMI_VERSION and meta.get("source_sha256") == _digest()
    return binary if ok and _is_executable(binary) else None


def build_govc() -> Path:
    """govc built against govmomi GOVMOMI_VERSION (once; later calls reuse the cache)."""
    cached = cached_govc()
    if cached is not None:
        return cached
    toolchain = select_go()
    if toolchain is None:
        raise VcsimUnavailable(pinned_status() or "no Go toolchain to build govc")
    directory = govc_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with _file_lock(directory.parent / f"{GOVMOMI_VERSION}.lock"):
        cached = cached_govc()
        if cached is not None:
            return cached
        with tempfile.TemporaryDirectory(prefix="vcrypt-govc-build-") as tmp:
            work = Path(tmp)
            (work / "go.mod").write_text(f"module vcrypt-harness/govc\n\ngo 1.25\n\n"
                                         f"require {GOVMOMI_MODULE} {GOVMOMI_VERSION}\n")
            (work / "main.go").write_text(main_go())
            env = _go_env(toolchain, work)
            output = directory / ".govc.tmp"
            _run([str(toolchain.path), "mod", "tidy"], work, env, "go mod tidy (module proxy)")
            _run([str(toolchain.path), "build", "-trimpath", "-ldflags=-s -w", "-o", str(output), "."],
                 work, env, "go build govc")
            output.chmod(0o755)
            os.replace(output, directory / "govc")
        (directory / "build.json").write_text(json.dumps(
            {"govmomi": GOVMOMI_VERSION, "go": toolchain.release, "commands": COMMANDS,
             "source_sha256": _digest()}, indent=2) + "\n")
    return directory / "govc"


if __name__ == "__main__":
    print(build_govc())
