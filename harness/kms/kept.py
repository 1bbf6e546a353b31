"""One embedded KMS pair kept for many environments of one process (`vcrypt selftest`'s session workers).

Why: starting the pair (two PyKMIP server processes and a throwaway CA with its certificates) was most
of a selftest session's environment: ~1 s on a quiet 2-core machine, ~3 s on a loaded one, paid once per
seeded defect. The defects live in the fake vCenter, which every session still builds afresh; the KMS
only holds keys, and each key is created by the session that uses it (a new UID every time, the database
only grows), so no session can read another's key by accident.

Between sessions the pair is put back the way a fresh one starts: a server a test left stopped is started
again (same port and database, as after a KMS reboot) and the Create fault injection is cleared. Outside
`keep_embedded_kms` nothing is kept: every environment starts and stops its own pair, as before.
"""
from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Iterator

from harness.kms.server import EmbeddedKms

_lock = threading.Lock()
_folder: Path | None = None
_kept: EmbeddedKms | None = None
_lent = False


@contextlib.contextmanager
def keep_embedded_kms(folder: Path) -> Iterator[None]:
    """While active, environments of this process share one embedded pair (started at first use in
    `folder`, stopped on exit). One environment at a time: a second one while it is lent starts its own."""
    global _folder, _kept
    with _lock:
        _folder = Path(folder)
    try:
        yield
    finally:
        with _lock:
            kept, _kept, _folder = _kept, None, None
        if kept is not None:
            kept.stop()


def take() -> EmbeddedKms | None:
    """The kept pair, started and reset, lent to the caller; None when nothing is kept (or it is lent)."""
    global _kept, _lent
    with _lock:
        if _folder is None or _lent:
            return None
        _lent = True
        if _kept is None:
            _kept = EmbeddedKms(_folder / "kept-kms")
        kms = _kept
    try:
        return _reset(kms)
    except BaseException:
        with _lock:
            _lent = False
        raise


def give_back(kms: EmbeddedKms) -> bool:
    """True when `kms` is the kept pair (it stays up for the next environment); False: the caller stops it."""
    global _lent
    with _lock:
        if kms is not _kept:
            return False
        _lent = False
        return True


def _reset(kms: EmbeddedKms) -> EmbeddedKms:
    """As a fresh pair starts: every server running, no fault injected."""
    for server in kms.servers.values():
        server.refuse_create(False)
    return kms.start()   # starts only the servers that are not running
