"""SHA-256 manifest of a run folder, in `sha256sum` format.

An auditor can check the folder with nothing but coreutils (`sha256sum -c manifest.sha256`
inside the folder), and `verify_manifest` says which files changed, vanished or appeared.
On its own the manifest is tamper-evident only: whoever can write the folder can rewrite a
file and its line together. `harness.evidence.signing` signs it (manifest.sha256.sig, Ed25519),
which closes that gap for anyone holding the public key.

Symbolic links are never followed: a symlinked file or folder could make the folder's content
depend on something outside it, so verification reports each one instead.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

MANIFEST = "manifest.sha256"
SIGNATURE = "manifest.sha256.sig"  # written after the manifest, so not listed in it
_LINE = re.compile(r"^(\\?)([0-9a-f]{64}) [ *](.+)$")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _walk(run_dir: Path) -> tuple[list[str], list[str]]:
    """(regular files, symlinks) below run_dir as sorted POSIX paths; links are not followed."""
    files, links = [], []
    for folder, dirs, names in os.walk(run_dir, followlinks=False):
        base = Path(folder)
        for name in [*dirs, *names]:
            path = base / name
            rel = path.relative_to(run_dir).as_posix()
            if path.is_symlink():
                links.append(rel)
            elif name in names and path.is_file() and rel not in (MANIFEST, SIGNATURE):
                files.append(rel)
    return sorted(files), sorted(links)


def _files(run_dir: Path) -> list[str]:
    """Every regular file below run_dir except the manifest and its signature, as sorted POSIX paths."""
    return _walk(run_dir)[0]


def symlinks(run_dir: Path) -> list[str]:
    """`symlink: evidence -> /elsewhere (directory, not followed)` for each link in the folder."""
    out = []
    for rel in _walk(Path(run_dir))[1]:
        path = Path(run_dir) / rel
        kind = "directory" if path.is_dir() else "file" if path.exists() else "dangling"
        out.append(f"symlink: {rel} -> {os.readlink(path)} ({kind}, not followed, not covered by the manifest)")
    return out


def _escape(name: str) -> tuple[str, str]:
    """GNU sha256sum escaping: names with a backslash or newline get a leading '\\'."""
    if "\\" in name or "\n" in name:
        return "\\", name.replace("\\", "\\\\").replace("\n", "\\n")
    return "", name


def _unescape(name: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), name)


def write_manifest(run_dir: Path) -> Path:
    """Hash every file in the folder (call it last: later writes would not be covered)."""
    run_dir = Path(run_dir)
    lines = []
    for name in _files(run_dir):
        prefix, shown = _escape(name)
        lines.append(f"{prefix}{_sha256(run_dir / name)}  {shown}\n")
    path = run_dir / MANIFEST
    path.write_text("".join(lines), encoding="utf-8", newline="\n")
    return path


def read_manifest(run_dir: Path) -> tuple[dict[str, str], list[str]]:
    """(path -> hex digest, problems with the manifest's own lines)."""
    entries: dict[str, str] = {}
    problems: list[str] = []
    text = (Path(run_dir) / MANIFEST).read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        m = _LINE.match(line)
        if not m:
            problems.append(f"malformed manifest line {number}")
            continue
        escaped, digest, name = m.groups()
        entries[_unescape(name) if escaped else name] = digest
    return entries, problems


def verify_manifest(run_dir: Path) -> list[str]:
    """Problems found ("changed: x", "missing: x", "added: x", "manifest missing"); [] = intact."""
    run_dir = Path(run_dir)
    if not (run_dir / MANIFEST).is_file():
        return ["manifest missing"]
    expected, problems = read_manifest(run_dir)
    problems += symlinks(run_dir)
    actual = set(_files(run_dir))
    for name in sorted(set(expected) | actual):
        if name not in actual:
            problems.append(f"missing: {name}")
        elif name not in expected:
            problems.append(f"added: {name}")
        elif _sha256(run_dir / name) != expected[name]:
            problems.append(f"changed: {name}")
    return problems
