"""Keys for the fake: which provider is default, generating keys and fetching KEKs over KMIP.

This is the only way behaviours reach a KMS. A key is a `KeyRef = (provider_id, key_id)`; the
key id is the KMIP UID the provider's KMS gave it. Every call is a real KMIP round trip over
mutual TLS with the trust material uploaded to the provider (UploadKmipServerCert /
UploadClientCert), on one cached connection per provider server (KmipClient reconnects once
after a KMS restart).

KEK caching: key material is kept only for the API call that fetched it (the cache is stamped
with the vCenter's call count and lives at most KEK_CACHE_SECONDS) and is dropped as soon as any
KMS of the vCenter is found unreachable. So one operation touching many disk links costs one KMIP
Get per key, and an outage between two API calls is never hidden (a rule may depend on it).

KMS-REQUIRED lives here: with no provider (or no default) `generate_key` raises InvalidState and
the caller's operation fails before changing anything.
"""
from __future__ import annotations

import hashlib
import time
import uuid
from typing import TYPE_CHECKING, Any

from pyVmomi import vim

from harness.fakevc.defects import defect
from harness.fakevc.disks import KeyRef
from harness.fakevc.kmip import kms_health, multi_server, native
# The KMIP connections (re-exported: `keys.client`, `keys.close` are what behaviours and tests call).
from harness.fakevc.kmip.connections import KMIP_TIMEOUT, client, close, forget_key_material  # noqa: F401
from harness.kms.client import KmsKeyNotFound, KmsOperationFailed, KmsTrustError, KmsUnreachable

if TYPE_CHECKING:
    from harness.fakevc.kmip.provider import Provider

KEK_CACHE_SECONDS = 0.25
KEY_GENERATE_FAIL = "com.vmware.vc.kms.crypto.KeyGenerateFail"
INVENTED_PROVIDER = "vcenter-local-keys"   # only ever used by the kms-required-invented-key defect

INVENTED_KEY = defect(
    "kms-required-invented-key", "KMS-REQUIRED",
    "with no key provider (or no default one) vCenter invents a key of its own instead of failing "
    "the crypto operation")
INVENTED_KEY_HALF = defect(
    "kms-required-half-applied", "KMS-REQUIRED",
    "the crypto operation fails for lack of a key provider, but the VM was given an invented key "
    "anyway (honoured by the encrypt path: see keys.half_applied_key)", half_applied=True)
PHANTOM_KEY = defect(
    "kms-generate-phantom-key", "KMS-GENERATE",
    "GenerateKey (and every key vCenter makes for a VM) reports success with a key ID that does "
    "not exist on the KMS")
SHARED_REJECTED = defect(
    "kms-shared-provider-rejected", "KMS-SHARED",
    "a vCenter does not recognise a key provider that another vCenter shares with it, so "
    "cross-vCenter operations on encrypted VMs fail")
DEDICATED_ASSUMED = defect(
    "kms-dedicated-assumed-known", "KMS-DEDICATED",
    "a vCenter treats the key providers of every other vCenter as its own and reaches a dedicated "
    "KMS it was never given")
NO_GENERATE_FAIL_EVENT = defect(
    "evt-key-create-no-event", "EVT-KEY-CREATE",
    "key creation fails on the KMS but vCenter posts no com.vmware.vc.kms.crypto.KeyGenerateFail event")
GENERATE_FAIL_AS_INFO = defect(
    "evt-key-create-info-severity", "EVT-KEY-CREATE",
    "the KeyGenerateFail event is posted with severity info instead of a critical (error) one")


# ---- providers ---------------------------------------------------------------------------------
def _manager(vc: Any) -> Any:
    return vc.crypto


def default_provider(vc: Any, entity: Any = None) -> str | None:
    """The provider id marked default on this vCenter (for `entity`: its own or an ancestor's first)."""
    crypto = _manager(vc)
    for node in (entity.ancestors() if entity is not None else []):
        for provider in crypto.providers.values():
            if node.moid in provider.entity_defaults:
                return provider.id
    return crypto.default_id


def _shared_elsewhere(vc: Any, provider_id: str) -> bool:
    return any(other is not vc and provider_id in other.crypto.providers
               for other in vc.world.vcenters.values())


def _native_elsewhere(vc: Any, provider_id: str) -> bool:
    return any(other is not vc and native.is_native(other.crypto.providers.get(provider_id))
               for other in vc.world.vcenters.values())


def provider_known(vc: Any, provider_id: str) -> bool:
    """Whether this vCenter has the provider registered (cross-vCenter and KMS-DEDICATED rules)."""
    known = provider_id in _manager(vc).providers
    if known and vc.world.defects.on(SHARED_REJECTED) and _shared_elsewhere(vc, provider_id):
        return False
    if not known and vc.world.defects.on(DEDICATED_ASSUMED):
        return _shared_elsewhere(vc, provider_id)
    if not known and vc.world.defects.on(native.ASSUMED_ELSEWHERE):
        return _native_elsewhere(vc, provider_id)
    return known


def provider(vc: Any, provider_id: str) -> "Provider | None":
    """The provider model this vCenter would use for `provider_id` (None when it has none)."""
    found = _manager(vc).providers.get(provider_id)
    if found is None and (vc.world.defects.on(DEDICATED_ASSUMED)
                          or (vc.world.defects.on(native.ASSUMED_ELSEWHERE) and _native_elsewhere(vc, provider_id))):
        for other in vc.world.vcenters.values():
            found = found or other.crypto.providers.get(provider_id)
    return found


class _Failure(Exception):
    """A KMS interaction that did not work: `unreachable` says whether nobody answered at all."""

    def __init__(self, reason: str, unreachable: bool, missing: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable
        self.missing = missing


def _on_kms(vc: Any, prov: "Provider", operation: str, fn: Any) -> Any:
    """Run fn(client) on the provider's servers in order (a cluster fails over); record health."""
    if not prov.servers:
        raise _Failure(f"key provider {prov.id} has no KMIP server ({prov.management_type} provider)", False)
    if not prov.fully_trusted:
        missing = [what for what, ok in (("the KMS certificate (UploadKmipServerCert)", prov.server_certs),
                                          ("a client certificate (UploadClientCert)", prov.client_cert))
                   if not ok]
        raise _Failure(f"key provider {prov.id} is not trusted: vCenter lacks {' and '.join(missing)}", False)
    causes = []
    for name in multi_server.servers_to_ask(vc, prov, operation):   # a cluster fails over (KMS-MULTI)
        info = prov.servers[name]
        try:
            result = fn(client(prov, name))
        except KmsTrustError as err:
            kms_health.record(vc, prov, True)
            raise _Failure(f"{operation} on {name} ({info.address}:{info.port}) failed: {err.cause}", False) from None
        except KmsUnreachable as err:
            causes.append(f"{name} ({info.address}:{info.port}): {err.cause}")
            continue
        except KmsKeyNotFound as err:
            kms_health.record(vc, prov, True)
            raise _Failure(f"{operation} on {name}: {err.kmip_message or err.reason}", False, missing=True) from None
        except KmsOperationFailed as err:
            kms_health.record(vc, prov, True)
            raise _Failure(f"{operation} refused by {name} ({info.address}:{info.port}): "
                           f"{err.kmip_message or err.reason}", False) from None
        kms_health.record(vc, prov, True)
        return result
    cause = "; ".join(causes)
    kms_health.record(vc, prov, False, cause)
    raise _Failure(f"the KMS of key provider {prov.id} is unreachable: {cause}", True)


# ---- key generation ----------------------------------------------------------------------------
def create_key(vc: Any, provider_id: str | None = None, entity: Any = None) -> tuple[KeyRef | None, str, Any]:
    """(key, "", None) or (None, reason, fault): the outcome of asking the KMS for a new key.

    Without `provider_id` the key comes from the default provider of `entity` (its own or an ancestor's,
    KMS-DEFAULT-ENCRYPT), else the global one. Posts KeyGenerateFail when the KMS was asked and did not
    create the key (refused, untrusted or unreachable); a missing provider is a vCenter configuration
    problem and posts nothing.
    """
    pid = provider_id or default_provider(vc, entity)
    if pid is None:
        reason = (f"No default key provider is configured on vCenter {vc.name}: a cryptographic "
                  "operation needs a key provider (KMS cluster) registered and marked default")
        return None, reason, vim.fault.InvalidState(msg=reason)
    prov = provider(vc, pid)
    if prov is None:
        reason = f"Key provider '{pid}' is not registered with vCenter {vc.name}"
        return None, reason, vim.fault.InvalidState(msg=reason)
    if vc.world.defects.on(PHANTOM_KEY):
        return (pid, str(uuid.uuid4())), "", None
    if native.is_native(prov):
        # A Native Key Provider has no KMS to ask: vCenter makes the key id, the material derives from the KDK
        # (kmip/native.py). Under nkp-key-from-default-provider a buggy vCenter hands out a standard key instead.
        if not prov.has_backup and not vc.world.defects.on(native.USABLE_WITHOUT_BACKUP):
            reason = native.NOT_BACKED_UP.format(id=pid)
            return None, reason, vim.fault.InvalidState(msg=reason)
        fallback = vc.crypto.default_id
        if vc.world.defects.on(native.KEY_FROM_DEFAULT) and fallback and not native.is_native(provider(vc, fallback)):
            return create_key(vc, fallback)
        return (pid, native.new_key_id()), "", None
    try:
        uid = _on_kms(vc, prov, "KMIP Create", lambda kmip: kmip.create_key())
    except _Failure as failure:
        if failure.unreachable and multi_server.invents_key(vc, prov):
            return (pid, str(uuid.uuid4())), "", None
        reason = f"Key creation failed on key provider {pid}: {failure.reason}"
        if not vc.world.defects.on(NO_GENERATE_FAIL_EVENT):
            severity = "info" if vc.world.defects.on(GENERATE_FAIL_AS_INFO) else "error"
            vc.events.post(KEY_GENERATE_FAIL, entity=vc.root, severity=severity, message=reason,
                           arguments={"keyProvider": pid, "reason": failure.reason})
        return None, reason, vim.fault.InvalidState(msg=reason)
    return (pid, uid), "", None


def generate_key(vc: Any, provider_id: str | None = None, entity: Any = None) -> KeyRef:
    """A new key on the provider (`entity`'s default when None) via KMIP Create; vim fault when impossible."""
    key, reason, fault = create_key(vc, provider_id, entity)
    if key is not None:
        return key
    if provider_id is None and default_provider(vc, entity) is None and vc.world.defects.on(INVENTED_KEY):
        return invented_key()
    raise fault


def invented_key() -> KeyRef:
    """A key no KMS knows (what a buggy vCenter would make up when it has no key provider)."""
    return INVENTED_PROVIDER, str(uuid.uuid4())


def half_applied_key(vc: Any, requested: KeyRef | None = None) -> KeyRef | None:
    """For the encrypt path: under kms-required-half-applied (or nkp-unbacked-half, for a key asked of a Native
    Key Provider never backed up), the key to give the VM before failing.

    Usage (reconfigure): on the key-generation fault, if `key := keys.half_applied_key(vc, asked)`, apply
    the encryption with it, then raise the fault anyway.
    """
    if vc.world.defects.on(INVENTED_KEY_HALF):
        return invented_key()
    prov = provider(vc, requested[0]) if requested and requested[0] else None
    if native.is_native(prov) and not prov.has_backup and vc.world.defects.on(native.UNBACKED_HALF):
        return prov.id, native.new_key_id()
    return None


# ---- key material ------------------------------------------------------------------------------
def withheld(vc: Any) -> set[KeyRef]:
    """Keys the KMS does not serve just now (fault injection: control.key_lost, LOCK-*): a KMIP Get of one
    answers Item Not Found, as for a key a KMS administrator deactivated or destroyed."""
    return vc.world.withheld_keys


def kek_failure(vc: Any, key: KeyRef) -> tuple[str, bool] | None:
    """Why the KMS would not give `key` now: (reason, unreachable: nobody answered), or None when it serves
    it (one KMIP Get, never from the KEK cache)."""
    forget_key_material(vc)
    prov = provider(vc, key[0])
    if prov is None:
        return f"key provider '{key[0]}' is not registered with vCenter {vc.name}", False
    try:
        if key in withheld(vc):
            raise _Failure(f"KMIP Get: the KMS no longer serves key {key[1]} (Item Not Found)", False, missing=True)
        _on_kms(vc, prov, "KMIP Get", lambda kmip: kmip.get_key(key[1]))
    except _Failure as failure:
        return failure.reason, failure.unreachable
    return None


def _cache(vc: Any) -> dict:
    crypto = _manager(vc)
    stamp = len(vc.call_log)
    if crypto.kek_stamp != stamp or time.monotonic() - crypto.kek_time > KEK_CACHE_SECONDS:
        crypto.kek_cache.clear()
        crypto.kek_stamp, crypto.kek_time = stamp, time.monotonic()
    return crypto.kek_cache


def kek(vc: Any, key: KeyRef) -> bytes:
    """The key material of `key`, fetched from the provider's KMS over KMIP (vim fault when unreachable)."""
    provider_id, key_id = key
    if provider_id == INVENTED_PROVIDER and vc.world.defects.names & {INVENTED_KEY, INVENTED_KEY_HALF}:
        return hashlib.sha256(key_id.encode()).digest()
    cache = _cache(vc)
    if key in cache:
        return cache[key]
    required = [vim.encryption.CryptoKeyId(keyId=key_id, providerId=vim.encryption.KeyProviderId(id=provider_id))]
    prov = provider(vc, provider_id)
    if prov is None:
        raise vim.fault.EncryptionKeyRequired(
            requiredKey=required,
            msg=f"Key {key_id} belongs to key provider '{provider_id}', which is not registered with vCenter {vc.name}")
    if native.is_native(prov):
        material = native.key_material(prov, key_id)
        cache[key] = material
        return material
    try:
        if key in withheld(vc):
            raise _Failure(f"KMIP Get: the KMS no longer serves key {key_id} (Item Not Found)", False, missing=True)
        material = _on_kms(vc, prov, "KMIP Get", lambda kmip: kmip.get_key(key_id))
    except _Failure as failure:
        raise vim.fault.EncryptionKeyRequired(
            requiredKey=required, msg=f"Cannot get key {key_id} from key provider {provider_id}: {failure.reason}") from None
    cache[key] = material
    return material


def key_status(vc: Any, key: KeyRef) -> tuple[bool, str]:
    """(available, KeyUnavailableReason) of a key on its provider's KMS, by a real KMIP GetAttributes."""
    provider_id, key_id = key
    prov = _manager(vc).providers.get(provider_id)
    if prov is None:
        return False, "KeyStateClusterInvalid"
    if prov.management_type == "trustAuthority":
        return False, "KeyStateManagedByTrustAuthority"
    if key in withheld(vc):
        return False, "KeyStateMissingInKMS"
    if native.is_native(prov):
        # vSphere 8.0.3 adds the reason KeyStateManagedByNKP (govmomi vim25/types/enum.go, "8.0.3.0"); what
        # earlier versions answer for an NKP key is not documented: the fake's choice, asserted by no test.
        return False, "KeyStateManagedByNKP"
    try:
        state = _on_kms(vc, prov, "KMIP GetAttributes", lambda kmip: kmip.key_state(key_id))
    except _Failure as failure:
        return False, "KeyStateClusterUnreachable" if failure.unreachable else "KeyStateClusterInvalid"
    if state is None:
        return False, "KeyStateMissingInKMS"
    if state != "ACTIVE":
        return False, "KeyStateNotActiveOrEnabled"
    return True, ""
