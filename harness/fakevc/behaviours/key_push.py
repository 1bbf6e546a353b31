"""Which hosts hold which keys: host crypto mode, HA-driven key push, unlock (STUB)."""
from __future__ import annotations

from typing import Any


def vm_keys_changed(vc: Any, vm: Any) -> None:
    """Called after a VM's keys or placement changed: make hosts safe and push keys per the rules."""


def cluster_changed(vc: Any, cluster: Any) -> None:
    """Called after HA/DRS changed on a cluster: re-evaluate which hosts get which keys."""


def unlock(ctx: Any, vm: Any) -> None:
    """CryptoUnlock_Task: send the VM's keys to its host."""
