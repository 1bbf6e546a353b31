"""Which vcsim to run, and what it can show.

Precedence (source `auto`): the binary the inventory names > `vcsim` on PATH > the pinned current
vcsim (govmomi `pinned.GOVMOMI_VERSION` from the Go module proxy, cached) > the launcher built from
Debian's govmomi 0.24.2 library. The last models no crypto at all, so a run on it says the crypto
rules could not be exercised (run.json `vcenters[].vcsim.note`). An inventory may force `pinned` or
`debian` (the nightly's Debian job does).
"""
from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from harness.vcsim import pinned
from harness.vcsim.build import VcsimUnavailable, _explicit_binary, build_launcher, cached_launcher, toolchain_status

Source = Literal["auto", "pinned", "debian"]
DEBIAN_GOVMOMI = "0.24.2 (Debian golang-github-vmware-govmomi-dev)"
NO_CRYPTO_NOTE = ("Debian's govmomi 0.24.2 vcsim models no crypto (CryptoManagerKmip methods are MethodNotFound, "
                  "crypto specs are ignored): the crypto rules could not be exercised on this target")
_failed_pinned: dict[str, str] = {}   # one failed pinned build per process is enough


@dataclass(frozen=True)
class VcsimChoice:
    path: Path
    source: str                 # inventory | path | pinned | debian
    govmomi: str | None         # None when unknown (a binary we did not build)
    models_crypto: bool | None  # None: unknown, decided by verify-config's probes
    note: str = ""

    def describe(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


def choose_vcsim(explicit: str | os.PathLike[str] | None = None, source: Source = "auto") -> VcsimChoice:
    """The vcsim to run for an inventory entry; VcsimUnavailable says why none can be had."""
    if explicit:
        return VcsimChoice(_explicit_binary(Path(explicit).expanduser()), "inventory", None, None)
    if source == "auto":
        on_path = shutil.which("vcsim")
        if on_path:
            return VcsimChoice(Path(on_path), "path", None, None)
    reasons: list[str] = []
    if source in ("auto", "pinned"):
        try:
            return _pinned()
        except VcsimUnavailable as err:
            if source == "pinned":
                raise
            reasons.append(str(err))
    try:
        return _debian()
    except VcsimUnavailable as err:
        reasons.append(str(err))
    raise VcsimUnavailable("no vcsim: " + "; ".join(reasons))


def _pinned() -> VcsimChoice:
    if pinned.GOVMOMI_VERSION in _failed_pinned:
        raise VcsimUnavailable(_failed_pinned[pinned.GOVMOMI_VERSION])
    try:
        path = pinned.build_pinned()
    except VcsimUnavailable as err:
        _failed_pinned[pinned.GOVMOMI_VERSION] = str(err)
        raise
    return VcsimChoice(path, "pinned", pinned.GOVMOMI_VERSION, True)


def _debian() -> VcsimChoice:
    if toolchain_status() is None:
        path = build_launcher()
    else:
        cached = cached_launcher()
        if cached is None:
            raise VcsimUnavailable(f"cannot build the Debian launcher: {toolchain_status()}")
        path = cached
    return VcsimChoice(path, "debian", DEBIAN_GOVMOMI, False, NO_CRYPTO_NOTE)


CRYPTO_CAPABILITIES = frozenset({"key_providers", "kms_status", "kms_trust", "vm_encryption", "clone_crypto"})
_chosen_for_run: dict[tuple[str, str], VcsimChoice | None] = {}


def crypto_gap(inventory: Any, capability: str) -> str | None:
    """Why a declared crypto capability cannot be shown: the vcsim a run starts is Debian's fallback.

    The same choice the environment makes (cached per process), so an inventory written for the
    pinned vcsim gives capability skips, not errors, where only Debian's vcsim could be had.
    """
    primary = inventory.vcenters[0]
    if capability not in CRYPTO_CAPABILITIES or primary.target != "vcsim" or primary.url:
        return None
    opts = primary.vcsim
    binary, source = (str(opts.binary) if opts and opts.binary else ""), (opts.source if opts else "auto")
    if (binary, source) not in _chosen_for_run:
        try:
            _chosen_for_run[(binary, source)] = choose_vcsim(binary or None, source)  # type: ignore[arg-type]
        except VcsimUnavailable:
            _chosen_for_run[(binary, source)] = None  # the environment reports it
    found = _chosen_for_run[(binary, source)]
    if found is None or found.models_crypto is not False:
        return None
    return f"capability: target {primary.name} lacks {capability}: {found.note}"


def find_vcsim(explicit: str | os.PathLike[str] | None = None, source: str = "auto") -> Path:
    """The vcsim to run: inventory binary > `vcsim` on PATH > pinned current vcsim > Debian launcher.

    See `choose_vcsim` above (precedence, and what each choice can show).
    """
    return choose_vcsim(explicit, source).path  # type: ignore[arg-type]
