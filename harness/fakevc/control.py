"""The fake's side of the control facade (harness/targets/control.py): fault injection on cue.

Everything runs under the world lock; suites never see the model objects, only this facade.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

from harness.fakevc.behaviours import core_dumps, locked_vms, space
from harness.fakevc.behaviours import snapshots as fake_snapshots
from harness.fakevc.behaviours.lifecycle import read_disk_bytes
from harness.fakevc.disks import CANARY
from harness.fakevc.kmip import native
from harness.fakevc.model.host import HostSystem
from harness.fakevc.server import FakeVCenter


class FakeControl:
    """Fault injection on one fake vCenter."""

    injects_faults = True

    def __init__(self, vc: FakeVCenter) -> None:
        self.vc = vc

    @contextlib.contextmanager
    def full_datastore(self, datastore: str, leave_free_bytes: int) -> Iterator[int]:
        held = space.fill_datastore(self.vc, datastore, leave_free_bytes=leave_free_bytes)
        try:
            yield held
        finally:
            space.restore_datastore(self.vc, datastore)

    @contextlib.contextmanager
    def failing_rekey(self, after_links: int) -> Iterator[None]:
        # The fault lives in this worker's fake only: nothing to sweep after a kill.
        with self.vc.lock:
            fake_snapshots.inject_rekey_failure(self.vc, after_links=after_links)
        try:
            yield
        finally:
            with self.vc.lock:
                fake_snapshots.clear_rekey_failure(self.vc)

    @contextlib.contextmanager
    def key_lost(self, key: tuple[str, str]) -> Iterator[list[str]]:
        # Only the test's own key is withheld, in this worker's fake world: nothing to sweep after a kill.
        with self.vc.lock:
            locked = [vm.moid for vm in locked_vms.lose_key(self.vc, key)]
        try:
            yield locked
        finally:
            with self.vc.lock:
                locked_vms.key_back(self.vc, key)

    def reboot_hosts_holding(self, key: tuple[str, str]) -> list[str]:
        with self.vc.lock:
            return [vm.moid for vm in locked_vms.refetch(self.vc, key)]

    def reboot_host(self, host: Any) -> None:
        """The vSphere API has no way back from pendingIncapable but a host reboot, which only the
        fake can stand in for; vCenter makes the host safe again when a crypto operation next needs it."""
        with self.vc.lock:
            model = self.vc.objects[getattr(host, "_moId", host)]
            assert isinstance(model, HostSystem)
            if model.crypto_state == "pendingIncapable":
                model.crypto_state, model.host_key = "incapable", None
                model.key_cache.clear()

    def encrypted_core_dump(self, host: Any, kind: str, file_name: str) -> None:
        with self.vc.lock:
            core_dumps.add_encrypted_core_dump(self.vc, getattr(host, "_moId", host), kind, file_name)

    def add_user(self, user: str, password: str, groups: list[str] | None = None) -> None:
        with self.vc.lock:
            self.vc.add_user(user, password, groups)

    def remove_user(self, user: str) -> None:
        with self.vc.lock:
            self.vc.users.pop(user.lower(), None)

    def peers_trusted(self) -> bool:
        return self.vc.trust_peers

    def set_peers_trusted(self, trusted: bool) -> None:
        """`trust_peers` (README: a demanding lab): False means no Enhanced Linked Mode, so a
        cross-vCenter ServiceLocator must carry the destination's sslThumbprint."""
        with self.vc.lock:
            self.vc.trust_peers = trusted

    # ---- Native Key Provider: lab preconditions no SOAP call can set up (kmip/native.py) --------------
    def create_native_key_provider(self, provider_id: str, backed_up: bool = True) -> None:
        """What an admin does in the vSphere Client (Add Native Key Provider, then Back Up: a provider must be
        backed up once before use; `backed_up=False` stops before that); the REST API's create on a real lab."""
        with self.vc.lock:
            self.vc.crypto.add_native_provider(provider_id, native.new_kdk(), has_backup=backed_up)

    def native_key_provider_backup(self, provider_id: str) -> bytes:
        """The provider's backup (Back Up in the vSphere Client; the REST API's export)."""
        with self.vc.lock:
            return self.vc.crypto.backup_native_provider(provider_id)

    def restore_native_key_provider(self, provider_id: str, backup: bytes) -> None:
        """Restore (import) another vCenter's NKP backup here (Restore in the vSphere Client; REST import)."""
        with self.vc.lock:
            self.vc.crypto.restore_native_provider(provider_id, backup)

    def remove_native_key_provider(self, provider_id: str) -> None:
        with self.vc.lock:
            self.vc.crypto.remove_native_provider(provider_id)


class FakeDiskReader:
    """Bytes at rest of a fake vCenter's disks (DATA-AT-REST), through the fake's datastore view;
    `canary` is the plaintext the fake writes into every new disk."""

    def __init__(self, vc: FakeVCenter) -> None:
        self.fake = vc
        self.canary: bytes = CANARY

    def read(self, vm: Any, disk_key: int | None = None) -> bytes:
        return read_disk_bytes(self.fake, vm, disk_key)
