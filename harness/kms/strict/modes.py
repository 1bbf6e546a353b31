"""The strict KMS's switches: behaviours commercial KMSes have and PyKMIP lacks (issue 22).

Each mode is a set of strictkms.go flags. `STRICTEST` combines every one a vCenter/harness pair
must survive (the lab rehearsal, inventories/fake-lab.yaml); `chaos` is apart: a KMS that answers
every operation with a result reason nobody expects (no verdict may become a product failure).
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.inventory.kms_modes import STRICT_KMS_MODES

MODES = STRICT_KMS_MODES
CHAOS_REASON = "0x0000000E"   # Index Out Of Bounds: valid KMIP, meaningless for these operations
IDLE_SECONDS = 1.0
STRICTEST = ("active-keys", "owner-only", "credential", "kmip-1.1", "transparent", "idle-disconnect")


@dataclass(frozen=True)
class StrictModes:
    """Which switches are on; `flags()` turns them into strictkms command-line flags."""
    names: frozenset[str]

    @classmethod
    def parse(cls, names: "str | list[str] | tuple[str, ...]") -> "StrictModes":
        items = [names] if isinstance(names, str) else list(names)
        unknown = sorted(set(items) - set(MODES))
        if unknown:
            raise ValueError(f"unknown strict KMS mode {unknown[0]!r}; known: {', '.join(sorted(MODES))}")
        expanded = set(items) - {"plain", "strictest"}
        if "strictest" in items:
            expanded |= set(STRICTEST)
        return cls(frozenset(expanded))

    def __contains__(self, name: str) -> bool:
        return name in self.names

    @property
    def credential(self) -> bool:
        return "credential" in self.names

    @property
    def owner_only(self) -> bool:
        return "owner-only" in self.names

    def flags(self, password_file: str | None = None, username: str | None = None) -> list[str]:
        flags: list[str] = []
        if "active-keys" in self.names:
            flags.append("-active-keys")
        if "owner-only" in self.names:
            flags.append("-owner-only")
        if "credential" in self.names:
            flags += ["-username", username or "", "-password-file", password_file or ""]
        if "kmip-1.1" in self.names:
            flags += ["-max-version", "1.1"]
        if "transparent" in self.names:
            flags.append("-transparent")
        if "idle-disconnect" in self.names:
            flags += ["-idle", f"{IDLE_SECONDS:g}"]
        if "chaos" in self.names or "chaos-all" in self.names:
            flags += ["-chaos", CHAOS_REASON]
        if "chaos-all" in self.names:
            flags.append("-chaos-discover")
        return flags

    def label(self) -> str:
        return "+".join(sorted(self.names)) or "plain"
