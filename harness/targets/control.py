"""Fault injection a suite may ask of a target: the control facade (`Environment.control(vc)`).

A real vCenter cannot be asked to fill a datastore, stop a recrypt part-way or reboot a host on
cue; only the fake can (harness/fakevc/control.py). Suites reach these faults through this facade
and never through the fake's internals, so the suites stay blind to what the target is: on every
other target each request is refused with a capability skip.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Protocol

import pytest


class TargetControl(Protocol):
    """What a suite may ask a target to do that the vSphere API cannot make it do."""

    injects_faults: bool   # False: every request below is a capability skip

    def full_datastore(self, datastore: str, leave_free_bytes: int) -> contextlib.AbstractContextManager[int]:
        """While inside: the datastore has only `leave_free_bytes` free; yields the bytes held."""

    def failing_rekey(self, after_links: int) -> contextlib.AbstractContextManager[None]:
        """While inside: the next shallow recrypt stops after `after_links` chain levels."""

    def key_lost(self, key: tuple[str, str]) -> contextlib.AbstractContextManager[list[str]]:
        """While inside: the KMS does not serve `key` (a key the test created) and the hosts holding it have
        rebooted, so each VM needing it is locked (yields their moIds); afterwards the KMS serves it again."""

    def reboot_hosts_holding(self, key: tuple[str, str]) -> list[str]:
        """The hosts holding `key` (a key the test created) reboot and must fetch it again through vCenter; the
        VMs needing it are locked if the KMS does not give it now (returns their moIds)."""

    def reboot_host(self, host: Any) -> None:
        """What a reboot does to a pendingIncapable host (encryption off, key cache empty)."""

    def encrypted_core_dump(self, host: Any, kind: str, file_name: str) -> None:
        """A crash of `kind` on the host that leaves an encrypted core file `file_name`."""

    def add_user(self, user: str, password: str, groups: list[str] | None = None) -> None:
        """A local user that can log in, member of `groups` (a real vCenter's users and groups come from
        SSO, not the vSphere API)."""

    def remove_user(self, user: str) -> None:
        """Remove a user `add_user` added."""

    def peers_trusted(self) -> bool:
        """Whether this vCenter trusts the other vCenters' certificates (as in Enhanced Linked Mode)."""

    def set_peers_trusted(self, trusted: bool) -> None:
        """Make this vCenter trust, or stop trusting, the other vCenters' certificates."""

    # A Native Key Provider is created, backed up and restored through the vSphere Client or the REST API,
    # never the SOAP API the harness speaks: on a lab these are preconditions the inventory declares.
    def create_native_key_provider(self, provider_id: str, backed_up: bool = True) -> None:
        """Create a Native Key Provider on this vCenter and (unless `backed_up=False`) back it up once, as vSphere
        asks before use."""

    def native_key_provider_backup(self, provider_id: str) -> bytes:
        """The backup of this vCenter's Native Key Provider (opaque: only restore reads it)."""

    def restore_native_key_provider(self, provider_id: str, backup: bytes) -> None:
        """Restore (import) a Native Key Provider's backup on this vCenter."""

    def remove_native_key_provider(self, provider_id: str) -> None:
        """Remove a Native Key Provider this control created or restored."""


class NoFaultInjection:
    """The control of a target that cannot inject faults: every request is a capability skip."""

    injects_faults = False

    def __init__(self, vcenter: str) -> None:
        self.vcenter = vcenter

    def _refuse(self) -> None:
        pytest.skip(f"capability: {self.vcenter} lacks fault_injection")

    @contextlib.contextmanager
    def full_datastore(self, datastore: str, leave_free_bytes: int) -> Iterator[int]:
        self._refuse()
        yield 0   # pragma: no cover (skip raised above)

    @contextlib.contextmanager
    def failing_rekey(self, after_links: int) -> Iterator[None]:
        self._refuse()
        yield   # pragma: no cover (skip raised above)

    @contextlib.contextmanager
    def key_lost(self, key: tuple[str, str]) -> Iterator[list[str]]:
        self._refuse()
        yield []   # pragma: no cover (skip raised above)

    def reboot_hosts_holding(self, key: tuple[str, str]) -> list[str]:
        self._refuse()
        return []   # pragma: no cover (skip raised above)

    def reboot_host(self, host: Any) -> None:
        self._refuse()

    def encrypted_core_dump(self, host: Any, kind: str, file_name: str) -> None:
        self._refuse()

    def add_user(self, user: str, password: str, groups: list[str] | None = None) -> None:
        self._refuse()

    def remove_user(self, user: str) -> None:
        self._refuse()

    def peers_trusted(self) -> bool:
        self._refuse()
        return True   # pragma: no cover (skip raised above)

    def set_peers_trusted(self, trusted: bool) -> None:
        self._refuse()

    def create_native_key_provider(self, provider_id: str, backed_up: bool = True) -> None:
        self._refuse()

    def native_key_provider_backup(self, provider_id: str) -> bytes:
        self._refuse()
        return b""   # pragma: no cover (skip raised above)

    def restore_native_key_provider(self, provider_id: str, backup: bytes) -> None:
        self._refuse()

    def remove_native_key_provider(self, provider_id: str) -> None:
        self._refuse()
