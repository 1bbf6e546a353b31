"""Inventory checks that need more than a field type: size bounds, URLs, vcsim flags, defect names.

Kept apart from harness/inventory/schema.py (the models) so each check is small and testable; the models
call these from their validators. Every function raises ValueError (pydantic turns it into
`inventory <file>: <key path>: <problem>`) or InventoryError directly for whole-file limits.
"""
from __future__ import annotations

import functools
import ipaddress
import os
import re
import stat
from pathlib import Path
from urllib.parse import urlsplit

from harness.inventory.errors import InventoryError

# A real lab inventory is a few KB. Bounding the file and the vCenter list keeps loading well
# under a second whatever is fed in (a 50 MB file once took 300 s and 3.9 GB).
MAX_INVENTORY_BYTES = 128 * 1024
MAX_VCENTERS = 64
# A password or a PEM key is a few KB at most; anything bigger is the wrong file.
MAX_SECRET_BYTES = 64 * 1024

# vcsim (govmomi) is a Go program: a flag may be spelt -l, --l, -l=ADDR or --l=ADDR. `-l` sets its
# listen address (govmomi vcsim/main.go: flag.StringVar(&addr, "l", ...)); `-httptest.serve`
# makes Go's net/http/httptest listen on a given address (net/http/httptest/server.go).
BIND_FLAGS = frozenset({"l", "httptest.serve"})


def read_bounded(path: Path) -> str:
    """The file's text, refusing more than MAX_INVENTORY_BYTES (read bounded: a FIFO or /dev/zero too)."""
    with open(path, "rb") as handle:
        data = handle.read(MAX_INVENTORY_BYTES + 1)
    if len(data) > MAX_INVENTORY_BYTES:
        raise InventoryError(f"inventory {path}: (file): larger than {MAX_INVENTORY_BYTES // 1024} KiB; "
                             "an inventory describes a few vCenters and a KMS, not data")
    return data.decode("utf-8")


class UnreadableFile(OSError):
    """A named file that is not a bounded regular file; `reason` is one line for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a file"


def open_regular(path: Path) -> int:
    """A blocking read descriptor on `path`, refused (UnreadableFile) unless it is a regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UnreadableFile(f"not a regular file ({_kind(mode)}): {path}")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular_bounded(path: Path, limit: int = MAX_SECRET_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (a secret: password, PEM key).

    Opened non-blocking, so a FIFO is refused at once instead of waiting for a writer; checked
    with fstat on the open descriptor (no race with a swapped path), so /dev/zero is refused
    instead of being read until memory runs out.
    """
    fd = open_regular(path)
    try:
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise UnreadableFile(f"larger than {limit // 1024} KiB: {path}; a secret file holds one secret")
    return data


def check_entry_count(data: dict, path: Path) -> None:
    """At most MAX_VCENTERS vCenters, checked before pydantic validates each one."""
    vcenters = data.get("vcenters")
    if isinstance(vcenters, list) and len(vcenters) > MAX_VCENTERS:
        raise InventoryError(f"inventory {path}: vcenters: {len(vcenters)} entries; at most {MAX_VCENTERS} allowed")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_CREDENTIALS = ("must not carry credentials (user:password@); give the user in `user` and the password "
                "by password_env or password_file")


def check_url(url: str, loopback_only: bool = False) -> str:
    """An https:// SDK URL with a host and no credentials (file://, http://, host-less and
    user:password@ URLs are refused; a URL with credentials is never echoed)."""
    if "@" in url.split("?", 1)[0].split("#", 1)[0]:
        raise ValueError(_CREDENTIALS)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise ValueError(f"not a valid URL: {err}") from None
    if parts.scheme != "https":
        raise ValueError(f"must be an https:// URL, not {parts.scheme or 'a scheme-less'}:// ({url!r})")
    if not parts.hostname:
        raise ValueError(f"must name a host: {url!r}")
    if port == 0:
        raise ValueError(f"port 0 is not a port: {url!r}")
    if loopback_only and not _is_loopback(parts.hostname):
        raise ValueError(f"a vcsim URL must be a loopback address, not {parts.hostname!r}")
    return url


def check_host(host: str) -> str:
    """A host name or address only: no scheme, path, port or credentials (those belong in url/port/user)."""
    if "@" in host:
        raise ValueError(_CREDENTIALS.replace("(user:password@)", "(user:password@ in host)"))
    if not host.strip() or any(ch in host for ch in "/?#") or not host.isprintable() or host != host.strip():
        raise ValueError(f"must be a host name or address only, not {host!r} (a URL goes in `url`)")
    return host


def _flag_name(arg: str) -> str | None:
    if not arg.startswith("-") or arg in ("-", "--"):
        return None
    return arg.lstrip("-").split("=", 1)[0]


def refuse_bind_flags(args: list[str]) -> list[str]:
    """vcsim extra_args may tune the simulator but never choose where it listens (always 127.0.0.1)."""
    for arg in args:
        name = _flag_name(arg)
        if name in BIND_FLAGS:
            raise ValueError(f"{arg!r}: the harness chooses vcsim's listen address (127.0.0.1); "
                             "bind flags are not allowed in extra_args")
    return args


@functools.lru_cache(maxsize=1)
def defect_names() -> frozenset[str]:
    """Names of the fake's seeded defects, read from the source (`defect("name", ...)` calls).

    Read, not imported: importing every behaviour pulls in PyKMIP and pyVmomi (seconds), and an
    inventory check must answer at once. A pattern, not a parse: parsing the fake's ~330 kB of
    source took ~0.4 s on every inventory load (twice per load, once per session of `vcrypt selftest`);
    tests/test_product_inputs.py keeps this list equal to harness.fakevc.catalogue.load_all().
    """
    root = Path(__file__).resolve().parents[1] / "fakevc"
    return frozenset(match.group(1)
                     for path in sorted([*root.glob("behaviours/*.py"), *root.glob("model/*.py"), *root.glob("kmip/*.py")])
                     for match in _DEFECT_CALL.finditer(path.read_text(encoding="utf-8")))


_DEFECT_CALL = re.compile(r"\bdefect\(\s*[\"']([^\"']+)[\"']")


def refuse_unknown_defects(names: list[str]) -> list[str]:
    """Seeded defect names must exist (a typo would silently test nothing)."""
    known = defect_names()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown fake defect {unknown[0]!r}; known: {', '.join(sorted(known))}")
    return names
