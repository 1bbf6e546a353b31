"""Which hosts hold which keys: host crypto mode, HA-driven key push, unlock.

Rules (RULES.md "Hosts and key push"):
- HOST-CRYPTO-MODE: a crypto operation on a host that is not crypto-safe first makes it safe
  with a host key from the default provider (or fails, when the host has encryption disabled
  or the KMS cannot give a key); a host never goes back from safe (only
  CryptoManagerHostDisable moves it to pendingIncapable, as API.md 5.3 says).
- PUSH-HA (7.0): with HA on, a cluster with an encrypted VM has every host safe, and every host
  lists the keys of every encrypted VM of the cluster.
- PUSH-NO-HA (7.0): without HA, a VM's keys go only to the host where it is registered (its
  disks are registered with the same host in the fake).
- PUSH-DRS: DRS settings change nothing here.
- PUSH-PRE7 (6.5-6.7 vCenter): when one host of a cluster is safe, all are, and all get keys.

Choice where vSphere is silent: pushing never removes keys. Turning HA off, migrating a VM
away, rekeying or decrypting leaves keys already in a host's cache (vSphere documents no purge;
caches empty on reboot or an explicit RemoveKey). PUSH-NO-HA is therefore observed on a fresh
key: a VM encrypted while HA is off.

Every key put in a host cache is first fetched from its KMS over KMIP (`keys.kek`): that is the
proof the host could get it. vCenter pushes asynchronously, so a push that cannot fetch a key
posts an event instead of failing the operation that triggered it.

Contract for the VM crypto operations (reconfigure, clone, relocate, unlock):
- before mutating anything, call `prepare_host(ctx, host)` for the host the encrypted VM will
  run on: it raises NoPermission (Cryptographer.RegisterHost), InvalidState (host encryption
  disabled) or the KMS fault, and otherwise makes the host safe (the "first" of HOST-CRYPTO-MODE);
- after any change of a VM's keys or placement, call `vm_keys_changed(vc, vm, ctx)`.
"""
from __future__ import annotations

import time
from typing import Any

from pyVmomi import vim, vmodl

from harness.fakevc.behaviours import locked_vms
from harness.fakevc.defects import defect
from harness.fakevc.disks import KeyRef
from harness.fakevc.kmip import keys
from harness.fakevc.model.base import CallContext, MO
from harness.fakevc.model.cluster import ClusterComputeResource, ComputeResource
from harness.fakevc.model.host import HostCryptoManager, HostSystem, key_ref, plain_key
from harness.fakevc.model.vm import VirtualMachine
from harness.fakevc.server import FakeVCenter

REGISTER_HOST = "Cryptographer.RegisterHost"
REGISTER_VM = "Cryptographer.RegisterVM"
DISABLED_MSG = "The operation is not supported on hosts which have encryption disabled."

PUSH_HA_ONLY_OWN_HOST = defect(
    "push-ha-own-host-only", "PUSH-HA",
    "with HA enabled, keys are pushed only to the host the VM is registered on")
PUSH_NO_HA_EVERYWHERE = defect(
    "push-no-ha-everywhere", "PUSH-NO-HA",
    "without HA, a VM's keys are pushed to every host of the cluster")
PUSH_DRS_CHANGES_TARGETS = defect(
    "push-drs-changes-targets", "PUSH-DRS",
    "with DRS enabled (HA off), keys are pushed to every host of the cluster")
PUSH_PRE7_ONE_HOST = defect(
    "push-pre7-one-host", "PUSH-PRE7",
    "on a 6.x vCenter only the host that needs a key goes crypto-safe; the others stay incapable")
HOST_STAYS_INCAPABLE = defect(
    "host-crypto-mode-stays-incapable", "HOST-CRYPTO-MODE",
    "a crypto operation touching an incapable host leaves it incapable (keys are pushed regardless)")
HOST_REVERTS = defect(
    "host-crypto-mode-reverts", "HOST-CRYPTO-MODE",
    "a host that no longer holds keys of an encrypted VM goes back from safe to incapable")
HOST_DISABLED_HALF = defect(
    "host-crypto-mode-half", "HOST-CRYPTO-MODE",
    "enabling crypto on a host with encryption disabled (pendingIncapable) is refused, "
    "but the host becomes safe anyway", half_applied=True)


# ---- facts -----------------------------------------------------------------------------------
def vm_keys(vm: VirtualMachine) -> set[KeyRef]:
    """Every key a VM needs: its home key, each disk link's key, and its snapshots' keys."""
    return vm.needed_keys()


def _hosts_of(cluster: ComputeResource | None) -> list[HostSystem]:
    return list(getattr(cluster, "hosts", []) or [])


def _vms_of(vc: FakeVCenter, cluster: ComputeResource | None) -> list[VirtualMachine]:
    hosts = set(map(id, _hosts_of(cluster)))
    return [vm for vm in vc.vms() if vm.host is not None and id(vm.host) in hosts]


def _ha(cluster: ComputeResource | None) -> bool:
    return bool(getattr(cluster, "ha_enabled", False))


def _event(vc: FakeVCenter, type_id: str, entity: MO, severity: str, message: str, **arguments: str) -> None:
    events = getattr(vc, "events", None)
    if events is None:
        return
    try:
        events.post(type_id, entity=entity, severity=severity, message=message, arguments=arguments)
    except NotImplementedError:  # the event manager may still be a stub
        pass


# ---- making hosts safe -----------------------------------------------------------------------
def _host_key_for(vc: FakeVCenter, host: HostSystem) -> KeyRef:
    """An existing host key of the cluster, or a new key from the default provider."""
    for peer in _hosts_of(host.cluster):
        if peer.host_key and peer.crypto_state == "safe":
            return peer.host_key
    return keys.generate_key(vc, None)


def _become_safe(vc: FakeVCenter, host: HostSystem, key: KeyRef) -> None:
    newly = host.crypto_state != "safe"
    old = host.host_key
    host.crypto_state = "safe"
    host.host_key = key
    host.key_cache.add(key)
    if old and old != key and not host.vms_using(old):
        host.key_cache.discard(old)   # 6.7+: ConfigureCryptoKey removes the old host key itself
    if newly:
        _event(vc, "com.vmware.vc.host.Crypto.Enabled", host, "info",
               f"Host {host.name} is enabled for encryption (crypto-safe).", hostName=host.name)
    elif old != key:
        _event(vc, "com.vmware.vc.crypto.HostKeyUpdatedEvent", host, "info",
               f"Updating host encryption key of {host.name}.", hostName=host.name)


def _disabled(vc: FakeVCenter, host: HostSystem) -> vim.fault.InvalidState:
    _event(vc, "com.vmware.vc.host.Crypto.HostCryptoDisabled", host, "warning", DISABLED_MSG, hostName=host.name)
    return vim.fault.InvalidState(msg=f"{DISABLED_MSG} (host {host.name} is pendingIncapable until it reboots)")


def _make_safe(vc: FakeVCenter, host: HostSystem, strict: bool) -> bool:
    """Put a host in crypto-safe mode for a crypto operation. Strict: raise what prevents it;
    otherwise (an asynchronous push) post an event and report False."""
    if host.crypto_state == "safe":
        return True
    if host.crypto_state == "pendingIncapable":
        fault = _disabled(vc, host)
        if strict:
            if vc.world.defects.on(HOST_DISABLED_HALF):
                _become_safe(vc, host, _host_key_for(vc, host))
            raise fault
        return False
    if vc.world.defects.on(HOST_STAYS_INCAPABLE):
        return True   # the bug: keys go to the host, its crypto state never changes
    try:
        key = _host_key_for(vc, host)
    except vmodl.MethodFault as fault:
        _event(vc, "com.vmware.vc.host.Crypto.HostKey.NewKey.KMSClusterError", host, "error",
               f"Cannot generate a host key for {host.name}: {fault.msg}", hostName=host.name)
        if strict:
            raise
        return False
    previous = host.crypto_state
    _become_safe(vc, host, key)
    lag = vc.quirk("host_state_lag_s")
    if lag and not strict:   # an asynchronous push (HA, pre-7 cluster): shown once the host applied it (real_quirks)
        host.lagging = (time.monotonic() + lag, previous)
    return True


def prepare_host(ctx: CallContext | None, host: HostSystem) -> None:
    """Precondition of a VM crypto operation on `host`: make it safe, or raise why it cannot be.

    Call before mutating the VM. Needs Cryptographer.RegisterHost when the host is not safe yet.
    """
    if host.crypto_state == "safe":
        return
    vc = host.vc
    if host.crypto_state == "pendingIncapable":
        _make_safe(vc, host, strict=True)   # raises
    if ctx is not None:
        vc.authz.require(ctx, host, REGISTER_HOST)
    _make_safe(vc, host, strict=True)


def check_host(ctx: CallContext | None, host: HostSystem) -> None:
    """The checks of `prepare_host` without changing anything (for dry validation passes)."""
    if host.crypto_state == "safe":
        return
    if host.crypto_state == "pendingIncapable":
        raise vim.fault.InvalidState(msg=f"{DISABLED_MSG} (host {host.name} is pendingIncapable until it reboots)")
    if ctx is not None:
        host.vc.authz.require(ctx, host, REGISTER_HOST)


# ---- the push --------------------------------------------------------------------------------
def _targets(vc: FakeVCenter, cluster: ComputeResource | None, vm: VirtualMachine) -> list[HostSystem]:
    """The hosts that must hold `vm`'s keys (7.0 rules, with the seeded push defects)."""
    everyone = _hosts_of(cluster)
    own = [vm.host]
    defects = vc.world.defects
    if _ha(cluster):
        return own if defects.on(PUSH_HA_ONLY_OWN_HOST) else everyone
    if defects.on(PUSH_NO_HA_EVERYWHERE):
        return everyone
    if getattr(cluster, "drs_enabled", False) and defects.on(PUSH_DRS_CHANGES_TARGETS):
        return everyone
    return own


def _allowed(vc: FakeVCenter, ctx: CallContext | None, host: HostSystem, vm_hosts: set[int]) -> bool:
    """A host that is not safe yet gets keys only if the caller may register hosts (a VM's own
    host was checked by prepare_host; peers are skipped silently, as vSphere documents)."""
    if ctx is None or ctx.session is None or host.crypto_state == "safe" or id(host) in vm_hosts:
        return True
    return vc.authz.has_privilege(ctx.session.user, host, REGISTER_HOST)


def _fetch(vc: FakeVCenter, key: KeyRef, host: HostSystem, cache: dict[KeyRef, bool]) -> bool:
    """Fetch a key from its KMS once per push (the host's copy); False (and an event) if it fails."""
    if key not in cache:
        try:
            keys.kek(vc, key)
            cache[key] = True
        except vmodl.MethodFault as fault:
            cache[key] = False
            _event(vc, "com.vmware.vc.kms.crypto.SendKeyError.KMSClusterError", host, "error",
                   f"Cannot send key {key[1]} of provider {key[0]} to host {host.name}: {fault.msg}",
                   keyId=key[1], providerId=key[0], hostName=host.name)
    return cache[key]


def _plan(vc: FakeVCenter, cluster: ComputeResource | None) -> dict[HostSystem, set[KeyRef]]:
    plan: dict[HostSystem, set[KeyRef]] = {}
    for vm in _vms_of(vc, cluster):
        needed = vm_keys(vm)
        if needed:
            for host in _targets(vc, cluster, vm):
                plan.setdefault(host, set()).update(needed)
    hosts = _hosts_of(cluster)
    if vc.is_pre7 and not vc.world.defects.on(PUSH_PRE7_ONE_HOST):
        if plan or any(h.crypto_state == "safe" for h in hosts):
            union = set().union(*plan.values()) if plan else set()
            plan = {h: set(union) for h in hosts}
    if getattr(cluster, "crypto_mode", "onDemand") == "forceEnable":
        for host in hosts:
            plan.setdefault(host, set())
    return plan


def evaluate(vc: FakeVCenter, cluster: ComputeResource | None, ctx: CallContext | None = None) -> None:
    """Bring a cluster's hosts to what the rules say: safe where needed, keys where needed."""
    if cluster is None:
        return
    plan = _plan(vc, cluster)
    vm_hosts = {id(vm.host) for vm in _vms_of(vc, cluster) if vm_keys(vm)}
    fetched: dict[KeyRef, bool] = {}
    for host, needed in plan.items():
        if not _allowed(vc, ctx, host, vm_hosts) or not _make_safe(vc, host, strict=False):
            continue
        for key in sorted(needed - host.key_cache):
            if _fetch(vc, key, host, fetched):
                host.key_cache.add(key)
    if vc.world.defects.on(HOST_REVERTS):
        for host in _hosts_of(cluster):
            if host.crypto_state == "safe" and not plan.get(host):
                host.crypto_state, host.host_key = "incapable", None
                host.key_cache.clear()


def vm_keys_changed(vc: FakeVCenter, vm: VirtualMachine, ctx: CallContext | None = None) -> None:
    """Called after a VM's keys or placement changed: make hosts safe and push keys per the rules."""
    if vm.host is not None:
        evaluate(vc, vm.host.cluster, ctx)


def cluster_changed(vc: FakeVCenter, cluster: ComputeResource | None) -> None:
    """Called after HA/DRS/crypto mode changed on a cluster: re-evaluate (never removes keys)."""
    evaluate(vc, cluster)


# ---- host crypto-mode operations (host.py's API methods) ------------------------------------
def configure_host_key(ctx: CallContext, host: HostSystem, key: KeyRef | None) -> None:
    """HostSystem.ConfigureCryptoKey: set the host key (given, existing, cluster's, or new) and
    make the host safe, then send the keys of the VMs on the host and its cluster."""
    vc = host.vc
    if host.crypto_state == "pendingIncapable":
        _make_safe(vc, host, strict=True)   # raises
    if key is None:
        new = host.host_key if host.crypto_state == "safe" and host.host_key else _host_key_for(vc, host)
    else:
        if not key[1] or not keys.provider_known(vc, key[0]):
            raise vmodl.fault.InvalidArgument(
                invalidProperty="keyId",
                msg=f"A specified parameter was not correct: keyId (provider '{key[0]}' is not registered)")
        keys.kek(vc, key)   # the key must exist on its KMS; its fault propagates
        new = key
    _become_safe(vc, host, new)
    evaluate(vc, host.cluster, ctx)
    _unlock_resident(host)


def enable_host(host: HostSystem, key: KeyRef) -> None:
    """CryptoManagerHostEnable / HostSystem.EnableCrypto with a plain key."""
    vc = host.vc
    if host.crypto_state == "pendingIncapable":
        _make_safe(vc, host, strict=True)   # raises
    if host.crypto_state == "incapable":
        raise vim.fault.InvalidState(msg=f"Host {host.name} must be prepared (PrepareCrypto) before Enable.")
    if host.crypto_state == "safe" and host.host_key and host.host_key != key:
        raise vim.fault.AlreadyExists(name=key[1], msg=f"Host {host.name} is already safe with another host key.")
    _become_safe(vc, host, key)
    evaluate(vc, host.cluster)


def change_host_key(host: HostSystem, key: KeyRef) -> None:
    """ChangeKey_Task: replace the host key of a safe host."""
    if host.crypto_state != "safe":
        raise vim.fault.InvalidState(msg=f"Host {host.name} is not crypto-safe (crypto state {host.crypto_state}).")
    _become_safe(host.vc, host, key)


def disable_host(host: HostSystem) -> None:
    """CryptoManagerHostDisable: safe -> pendingIncapable (reboot needed), prepared -> incapable."""
    if host.is_pre7:
        raise vmodl.fault.NotSupported(msg=f"Host {host.name} (ESXi {host.esx_version}) does not support disabling encryption.")
    if host.crypto_state in ("incapable", "pendingIncapable"):
        raise vim.fault.InvalidState(msg=f"Encryption is already disabled on host {host.name} ({host.crypto_state}).")
    host.crypto_state = "pendingIncapable" if host.crypto_state == "safe" else "incapable"


def _unlock_resident(host: HostSystem) -> None:
    for vm in host.vms():
        if vm.locked and vm_keys(vm) <= host.key_cache:
            vm.locked = False


# ---- CryptoUnlock_Task ---------------------------------------------------------------------
def unlock(ctx: CallContext, vm: VirtualMachine) -> None:
    """CryptoUnlock_Task: fetch the VM's keys and send them to its host; the VM is unlocked."""
    vc = vm.vc
    vc.authz.require(ctx, vm, REGISTER_VM)
    needed = vm_keys(vm)
    if not needed:
        raise vim.fault.InvalidState(msg=f"The virtual machine {vm.name} is not encrypted.")
    missing_providers = sorted({p for p, _ in needed if not keys.provider_known(vc, p)})
    if missing_providers:
        raise vim.fault.InvalidState(msg=f"The key provider '{missing_providers[0]}' is not configured on this vCenter.")
    host = vm.host
    if host.crypto_state == "pendingIncapable":
        raise vmodl.fault.NotSupported(msg=f"{DISABLED_MSG} (host {host.name})")
    check_host(ctx, host)
    for key in sorted(needed - host.key_cache):
        try:
            keys.kek(vc, key)
        except vmodl.MethodFault as fault:
            if not locked_vms.unlock_fetch_failed(vm):   # LOCK-UNLOCK: no key, no unlock (seeded defects aside)
                raise vim.fault.InvalidVmState(
                    vm=vm.ref, msg=f"Cannot unlock {vm.name}: key {key[1]} unavailable ({fault.msg})") from None
    prepare_host(ctx, host)
    if locked_vms.unlock_rekeys(vm):
        vm.key = keys.generate_key(vc, None)
        needed = vm_keys(vm)
    host.key_cache.update(needed)
    vm.locked = False
    locked_vms.unlock_event(vm)
    evaluate(vc, host.cluster, ctx)

# ---- API handlers (registered in harness/fakevc/dispatch.py HANDLERS) --------------------------
def CryptoUnlock_Task(ctx: CallContext, vm: VirtualMachine) -> Any:  # noqa: N802 (WSDL name)
    return vm.vc.tasks.run(ctx, vm, "VirtualMachine.cryptoUnlock", lambda: unlock(ctx, vm))


def CryptoManagerHostEnable(ctx: CallContext, manager: HostCryptoManager, initialKey: Any) -> None:  # noqa: N802
    manager.vc.authz.require(ctx, manager.host, REGISTER_HOST)
    ref = plain_key(manager.host, initialKey)
    enable_host(manager.host, ref)


def ChangeKey_Task(ctx: CallContext, manager: HostCryptoManager, newKey: Any) -> Any:  # noqa: N802
    manager.vc.authz.require(ctx, manager.host, REGISTER_HOST)
    ref = plain_key(manager.host, newKey)
    return manager.vc.tasks.run(ctx, manager.host, "CryptoManagerHost.changeKey",
                                lambda: change_host_key(manager.host, ref))


def CryptoManagerHostDisable(ctx: CallContext, manager: HostCryptoManager) -> None:  # noqa: N802
    manager.vc.authz.require(ctx, manager.host, REGISTER_HOST)
    disable_host(manager.host)


def EnableCrypto(ctx: CallContext, host: HostSystem, keyPlain: Any) -> None:  # noqa: N802
    CryptoManagerHostEnable(ctx, host.crypto_manager, keyPlain)


def ConfigureCryptoKey(ctx: CallContext, host: HostSystem, keyId: Any = None) -> None:  # noqa: N802
    """Set or change the host key and make the host safe; then vCenter sends the keys of the
    VMs on the host and its cluster (API.md 5.2)."""
    host.vc.authz.require(ctx, host, REGISTER_HOST)
    configure_host_key(ctx, host, key_ref(keyId) if keyId is not None else None)


_CRYPTO_MODES = ("onDemand", "forceEnable")


def ReconfigureComputeResource_Task(ctx: CallContext, cluster: ClusterComputeResource, spec: Any,  # noqa: N802
                                    modify: bool) -> Any:
    """HA, DRS and cluster crypto mode; `modify=False` replaces the whole configuration.

    Any change re-evaluates key push (PUSH-HA / PUSH-DRS / crypto mode forceEnable).
    """
    def work() -> None:
        das = getattr(spec, "dasConfig", None)
        drs = getattr(spec, "drsConfig", None)
        crypto = getattr(spec, "cryptoConfig", None)
        mode = getattr(crypto, "cryptoMode", None) if crypto is not None else None
        if mode and mode not in _CRYPTO_MODES:
            raise vmodl.fault.InvalidArgument(invalidProperty="spec.cryptoConfig.cryptoMode",
                                              msg=f"A specified parameter was not correct: cryptoMode {mode!r}")
        ha, drs_on, crypto_mode = (cluster.ha_enabled, cluster.drs_enabled, cluster.crypto_mode) if modify \
            else (False, False, "onDemand")
        if das is not None and das.enabled is not None:
            ha = bool(das.enabled)
        if drs is not None and drs.enabled is not None:
            drs_on = bool(drs.enabled)
        if mode:
            crypto_mode = mode
        cluster.ha_enabled, cluster.drs_enabled, cluster.crypto_mode = ha, drs_on, crypto_mode
        cluster_changed(cluster.vc, cluster)

    return cluster.vc.tasks.run(ctx, cluster, "ClusterComputeResource.reconfigureEx", work)
