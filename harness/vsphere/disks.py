"""Disk bytes at rest (DATA-AT-REST): what a datastore download of a VM disk would return.

A reader comes from `Environment.disk_reader(name)`; on the fake (`FakeDiskReader` in
harness/fakevc/control.py) it reads the stored bytes of a disk's top link (ciphertext when the
disk is encrypted), elsewhere it raises TargetLacks, so the test skips through `requires("disk_bytes")`. A reader also names the `canary`: the plaintext the
target is known to have written into every new disk, whose presence at rest means plaintext.
"""
from __future__ import annotations

import hashlib
from typing import Any


def bytes_at_rest(reader: Any, client: Any, vm: Any, disk_key: int, label: str) -> bytes:
    """One disk's bytes at rest, recorded as evidence (size, SHA-256, canary occurrences; never the bytes)."""
    data = reader.read(vm, disk_key)
    canary = getattr(reader, "canary", b"")
    client.recorder.note(f"disk bytes at rest: {label}", {
        "vm": vm._moId, "disk_key": disk_key, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
        "canary_occurrences": data.count(canary) if canary else None})
    return data
