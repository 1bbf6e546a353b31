"""Shared pieces of the VM crypto rules: reading crypto specs and policies, refusals, KEK fetches.

Every crypto operation (reconfigure, clone, relocate, instant clone) first decides what it would
change, then checks every precondition through a `Checks` object, and only then mutates. A check
that fails raises its fault at once, unless a seeded defect says otherwise: an "ignored" defect
skips the refusal (the buggy vCenter allows the operation), a "half" defect defers the fault until
the operation has been applied (the buggy vCenter reports the refusal but changes state anyway).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.keywrap import aes_key_wrap
from pyVmomi import vim, vmodl

from harness.fakevc.defects import defect
from harness.fakevc.disks import KeyRef, DiskFile
from harness.fakevc.kmip import keys
from harness.fakevc.model import pbm
from harness.fakevc.model.base import MO
from harness.fakevc.model.vm import VirtualMachine
from harness.fakevc.server import FakeVCenter

UNCHANGED: Any = object()   # a storage policy the spec does not change
ENCRYPT, DECRYPT, SHALLOW, DEEP, NOOP, REGISTER = "encrypt", "decrypt", "shallow", "deep", "noop", "register"
REKEYS = (SHALLOW, DEEP)
GENERATE: KeyRef = ("", "")  # placeholder key: "take a new key from the default provider"


# ---- reading specs --------------------------------------------------------------------------
@dataclass(frozen=True)
class CryptoAsk:
    """What one CryptoSpec asks for: a kind and, for encrypt/recrypt/register, a key."""
    kind: str
    key: KeyRef | None = None


def crypto_ask(vc: FakeVCenter, spec: Any, entity: MO | None = None) -> CryptoAsk | None:
    """Classify a vim.encryption.CryptoSpec (None when the spec is absent); a key naming no provider is of
    `entity`'s default provider (KMS-DEFAULT-ENCRYPT), else the global one."""
    if spec is None:
        return None
    if isinstance(spec, vim.encryption.CryptoSpecEncrypt):
        return CryptoAsk(ENCRYPT, key_ref(vc, spec.cryptoKeyId, entity))
    if isinstance(spec, vim.encryption.CryptoSpecDecrypt):
        return CryptoAsk(DECRYPT)
    if isinstance(spec, vim.encryption.CryptoSpecShallowRecrypt):
        return CryptoAsk(SHALLOW, key_ref(vc, spec.newKeyId, entity))
    if isinstance(spec, vim.encryption.CryptoSpecDeepRecrypt):
        return CryptoAsk(DEEP, key_ref(vc, spec.newKeyId, entity))
    if isinstance(spec, vim.encryption.CryptoSpecRegister):
        return CryptoAsk(REGISTER, key_ref(vc, spec.cryptoKeyId, entity))
    if isinstance(spec, vim.encryption.CryptoSpecNoOp):
        return CryptoAsk(NOOP)
    raise vmodl.fault.InvalidArgument(invalidProperty="crypto",
                                      msg=f"A specified parameter was not correct: crypto ({type(spec).__name__})")


def key_ref(vc: FakeVCenter, crypto_key_id: Any, entity: MO | None = None) -> KeyRef:
    """A CryptoKeyId as (provider, key); an empty key id asks for a generated key."""
    if crypto_key_id is None:
        return GENERATE
    provider = crypto_key_id.providerId.id if crypto_key_id.providerId else None
    key = crypto_key_id.keyId or ""
    if not provider:
        # KmipClusterInfo.useAsEntityDefault: "Use this cluster as default for the managed entities, when the
        # optional CryptoKeyId.providerId is not set" (vSphere API 7.0)
        provider = keys.default_provider(vc, entity) or ""
    if not key:
        return (provider, "") if provider else GENERATE
    return (provider, key)


def requested_policy(profiles: Any) -> Any:
    """The storage policy a ProfileSpec list asks for: a profile id, None (empty) or UNCHANGED."""
    for profile in profiles or []:
        if isinstance(profile, vim.vm.DefinedProfileSpec):
            return profile.profileId
        if isinstance(profile, vim.vm.EmptyProfileSpec):
            return None
    return UNCHANGED


def merge_policies(*asks: Any, where: str) -> Any:
    """One policy from several places of a spec (location.profile and config.vmProfile)."""
    given = [a for a in asks if a is not UNCHANGED]
    if len(set(given)) > 1:
        raise vmodl.fault.InvalidArgument(invalidProperty=where,
                                          msg=f"A specified parameter was not correct: {where} (conflicting storage policies)")
    return given[0] if given else UNCHANGED


def merge_asks(*asks: CryptoAsk | None, where: str) -> CryptoAsk | None:
    given = [a for a in asks if a is not None]
    if len({(a.kind, a.key) for a in given}) > 1:
        raise vmodl.fault.InvalidArgument(invalidProperty=where,
                                          msg=f"A specified parameter was not correct: {where} (conflicting crypto specs)")
    return given[0] if given else None


def is_encryption_policy(vc: FakeVCenter, profile_id: str | None) -> bool:
    if not profile_id:
        return False
    return bool(pbm.is_encryption_policy(vc, profile_id))


def check_policy_fits(vc: FakeVCenter, policy: Any, where: str) -> None:
    """A requirement policy for another datastore type does not fit VMFS (strict fakes, fake-lab.yaml).

    Fake's choice where vSphere is silent: the fault class (InvalidArgument naming the property); the
    fact that these policies do not fit VMFS/NFS is govmomi pbm/simulator/profiles.go (API.md 11).
    """
    if policy is UNCHANGED or policy is None:
        return
    if not pbm.fits_datastore(vc, policy):
        name = getattr(pbm.profiles(vc).get(policy), "name", policy)
        raise invalid_argument(where, f"storage policy '{name}' is not compatible with the datastore "
                                      "(it requires another datastore type)")


# ---- refusals -------------------------------------------------------------------------------
class Checks:
    """Collects refusals for one operation; seeded defects can skip or defer them."""

    def __init__(self, vc: FakeVCenter) -> None:
        self.vc = vc
        self.deferred: vmodl.MethodFault | None = None

    def on(self, name: str | None) -> bool:
        return bool(name) and self.vc.world.defects.on(name)

    def refuse(self, fault: vmodl.MethodFault, ignored: str | tuple[str, ...] | None = None,
               half: str | tuple[str, ...] | None = None) -> None:
        """Refuse with `fault`, unless an `ignored` defect allows it or a `half` defect defers it."""
        if any(self.on(n) for n in _names(ignored)):
            return
        if any(self.on(n) for n in _names(half)):
            self.deferred = self.deferred or fault
            return
        raise fault

    def finish(self) -> None:
        """After a half-applied operation: report the refusal the buggy vCenter still raises."""
        if self.deferred is not None:
            fault, self.deferred = self.deferred, None
            raise fault


def _names(value: str | tuple[str, ...] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else value


# ---- faults, worded as vCenter/vcsim word them ----------------------------------------------
POWER_LABELS = {"poweredOn": "Powered on", "suspended": "Suspended"}


def powered_on(vm: VirtualMachine, what: str) -> vim.fault.InvalidPowerState:
    """Not powered off (on or suspended): vcsim's updateCrypto assertPoweredOff refuses any state but
    poweredOff (govmomi simulator/virtual_machine.go), as vSphere's "the VM must be powered off"."""
    state = POWER_LABELS.get(vm.power_state, vm.power_state)
    return vim.fault.InvalidPowerState(
        requestedState="poweredOff", existingState=vm.power_state,
        msg=f"The attempted operation cannot be performed in the current state ({state}): {what} needs the virtual machine powered off.")


def has_snapshots(what: str) -> vim.fault.InvalidState:
    return vim.fault.InvalidState(msg=f"vm has snapshots: {what} is not allowed on a virtual machine with snapshots; consolidate them first.")


def snapshot_tree() -> vim.fault.InvalidState:
    return vim.fault.InvalidState(msg="vm has snapshot tree: a shallow recrypt supports a single snapshot branch only.")


def invalid_state(msg: str) -> vim.fault.InvalidState:
    return vim.fault.InvalidState(msg=msg)


def not_supported(msg: str) -> vmodl.fault.NotSupported:
    return vmodl.fault.NotSupported(msg=msg)


def invalid_argument(prop: str, why: str) -> vmodl.fault.InvalidArgument:
    return vmodl.fault.InvalidArgument(invalidProperty=prop, msg=f"A specified parameter was not correct: {prop} ({why})")


def key_text(key: KeyRef | None) -> str:
    return f"{key[1]} of key provider {key[0]}" if key else "none"


# ---- KMS access for one operation -------------------------------------------------------------
class Keks:
    """KEKs fetched for one operation (one KMIP Get per key), before anything is mutated."""

    def __init__(self, vc: FakeVCenter) -> None:
        self.vc = vc
        self._cache: dict[tuple[int, KeyRef], bytes] = {}

    def get(self, key: KeyRef, vc: FakeVCenter | None = None) -> bytes:
        owner = vc or self.vc
        slot = (id(owner), key)
        if slot not in self._cache:
            self._cache[slot] = keys.kek(owner, key)
        return self._cache[slot]

    def prefetch(self, keys_: set[KeyRef] | list[KeyRef], vc: FakeVCenter | None = None) -> None:
        for key in sorted(k for k in keys_ if k):
            self.get(key, vc)


def generate(vc: FakeVCenter, key: KeyRef | None, entity: MO | None = None) -> KeyRef | None:
    """Resolve GENERATE (or a provider-only request) to a new key on the KMS; GENERATE takes the default
    provider of `entity` (its own or an ancestor's, KMS-DEFAULT-ENCRYPT), else the global one."""
    if key is None:
        return None
    if key == GENERATE:
        return keys.generate_key(vc, None, entity)
    if not key[1]:
        return keys.generate_key(vc, key[0])
    return key


def post(vc: FakeVCenter, type_id: str, entity: MO, severity: str, message: str, **arguments: str | int) -> None:
    vc.events.post(type_id, entity=entity, severity=severity, message=message,
                   arguments={k: str(v) for k, v in arguments.items()})


# ---- what happens to the bytes of one disk link ---------------------------------------------

SHALLOW_REWRITES = defect("rekey-shallow-rewrites-data", "REKEY-SHALLOW",
                          "a shallow recrypt re-encrypts the disk data with a new DEK instead of only rewrapping it")
SHALLOW_KEEPS_KEY = defect("rekey-shallow-keeps-key", "REKEY-SHALLOW",
                           "a shallow recrypt succeeds but the links stay wrapped by the old key")
DEEP_KEEPS_DATA = defect("rekey-deep-keeps-data", "REKEY-DEEP",
                         "a deep recrypt only rewraps the DEK: the ciphertext is not rewritten")
AT_REST_PLAINTEXT = defect("data-at-rest-plaintext", "DATA-AT-REST",
                           "encrypting sets the key but leaves the disk bytes in plaintext")


def transform(vc: FakeVCenter, link: DiskFile, kind: str, new_key: KeyRef | None, keks: Keks,
              old_vc: FakeVCenter | None = None, new_vc: FakeVCenter | None = None) -> None:
    """Apply one crypto change to one link's bytes (robust to a half-applied refusal).

    `old_vc`/`new_vc` say which vCenter fetches the current and the new key (a cross-vCenter
    clone reads the source's key on the source and the new key on the destination).
    """
    defects = vc.world.defects
    old = keks.get(link.key, old_vc) if link.encrypted and link.key else None
    if kind == DECRYPT:
        if old is not None:
            link.decrypt(old)
        return
    assert new_key is not None, f"{kind} of {link.path} without a new key"
    new = keks.get(new_key, new_vc)
    if old is None:   # not encrypted yet
        if defects.on(AT_REST_PLAINTEXT):
            link.wrapped_dek, link.key = aes_key_wrap(new, os.urandom(32)), new_key
        else:
            link.encrypt(new, new_key)
        return
    if link.key == new_key and kind != DEEP:
        return
    if kind == SHALLOW:
        if defects.on(SHALLOW_KEEPS_KEY):
            return
        if defects.on(SHALLOW_REWRITES):
            link.deep_rekey(old, new, new_key)
        else:
            link.shallow_rekey(old, new, new_key)
    elif kind == DEEP and defects.on(DEEP_KEEPS_DATA):
        link.shallow_rekey(old, new, new_key)
    else:  # deep, or encrypt over an encrypted link (half-applied OP-STATE): new DEK, bytes rewritten
        link.deep_rekey(old, new, new_key)
