"""HostSystem, its crypto manager (the host's key cache) and its crypto state.

The state machine (API.md 5.1-5.3): incapable -> prepared -> safe (host key set); ConfigureCryptoKey
goes straight to safe; CryptoManagerHostDisable turns safe into pendingIncapable (reboot pending)
and prepared into incapable. Nothing else ever leaves safe (HOST-CRYPTO-MODE). The rules that
decide when vCenter makes a host safe and which keys it pushes live in behaviours/key_push.py
(with the API methods that apply them, registered in dispatch.py); this module is the host's state.
"""
from __future__ import annotations

import time
from typing import Any

from pyVmomi import vim, vmodl

from harness.fakevc.disks import KeyRef
from harness.fakevc.model.base import MO, CallContext, ManagedEntity
from harness.fakevc.wire import complete

REGISTER_HOST = "Cryptographer.RegisterHost"
MANAGE_KEYS = "Cryptographer.ManageKeys"


def key_id(provider: str, key: str) -> Any:
    return vim.encryption.CryptoKeyId(keyId=key, providerId=vim.encryption.KeyProviderId(id=provider))


def key_ref(crypto_key_id: Any) -> KeyRef:
    """A vim CryptoKeyId as the fake's (provider, key) pair."""
    provider = crypto_key_id.providerId.id if crypto_key_id.providerId else ""
    return (provider, crypto_key_id.keyId)


def _state_fault(host: "HostSystem", wanted: str) -> vim.fault.InvalidState:
    return vim.fault.InvalidState(
        msg=f"The operation is not allowed in the current state of host {host.name} "
            f"(crypto state {host.crypto_state}; {wanted}).")


def plain_key(host: "HostSystem", key: Any) -> KeyRef:
    if key is None or key.keyId is None or not key.keyId.keyId or not key.keyData:
        raise vmodl.fault.InvalidArgument(invalidProperty="key",
                                          msg="A specified parameter was not correct: key (id and key data required)")
    return key_ref(key.keyId)


class HostCryptoManager(MO):
    """`host.configManager.cryptoManager`: the host's key cache and its crypto-mode switches."""
    vim_type = vim.encryption.CryptoManagerHostKMS
    moid_prefix = "cryptoManagerHost"

    def __init__(self, vc: Any, host: "HostSystem") -> None:
        super().__init__(vc)
        self.host = host

    def p_enabled(self) -> bool:
        return self.host.crypto_state == "safe"

    # ---- key cache ---------------------------------------------------------------------------
    def ListKeys(self, ctx: CallContext, limit: int | None = None) -> list:
        self.vc.authz.require(ctx, self.host, MANAGE_KEYS)
        keys = [key_id(p, k) for p, k in sorted(self.host.key_cache)]
        return keys[:limit] if limit else keys

    def GetCryptoKeyStatus(self, ctx: CallContext, keys: list | None = None) -> list:
        """The documented per-host key status (vSphere API reference, CryptoManagerHost.GetCryptoKeyStatus and
        CryptoManagerHostKeyStatus, "Since vSphere API Release 8.0.1.0"): for each key asked about, `present`,
        "Whether the key is present in key cache for crypto operation". The same cache ListKeys lists, asked
        key by key: one status per key, in the order asked. The optional `managementType` and `accessGranted`
        (8.0.3) are left unset: the reference does not say what they hold for a KMS key.

        Only a vCenter speaking 8.0.1 or later has the method (pyVmomi's typeinfo: version v8_0_1_0; a client
        negotiating an older API never sends it, and vCenter answers an unknown method with MethodNotFound).
        vSphere is silent on what an ESXi host older than 8.0.1 answers through vCenter: the fake's choice is
        NotSupported, and the harness never asks such a host (harness/vsphere/hosts.py key_cache_read)."""
        if not self.vc.api_at_least(8, 0, 1):
            raise vmodl.fault.MethodNotFound(receiver=self.ref, method="GetCryptoKeyStatus",
                                             msg="Method GetCryptoKeyStatus not found (vSphere API 8.0.1)")
        # Privilege: the fake's choice (vSphere is not confirmed here): the same as ListKeys, which reads the same cache.
        self.vc.authz.require(ctx, self.host, MANAGE_KEYS)
        if tuple(int(p) for p in self.host.esx_version.split(".")[:3] if p.isdigit()) < (8, 0, 1):
            raise vmodl.fault.NotSupported(msg=f"host {self.host.name} (ESXi {self.host.esx_version}) cannot report "
                                               "key status (fake's choice: ESXi 8.0.1 added GetCryptoKeyStatus)")
        return [vim.encryption.CryptoManagerHost.KeyStatus(keyId=key, present=key_ref(key) in self.host.key_cache)
                for key in keys or []]

    def AddKey(self, ctx: CallContext, key: Any) -> None:
        self.vc.authz.require(ctx, self.host, MANAGE_KEYS)
        ref = plain_key(self.host, key)
        if self.host.crypto_state != "safe":
            raise _state_fault(self.host, "keys can be added only to a crypto-safe host")
        if ref in self.host.key_cache:
            raise vim.fault.AlreadyExists(name=ref[1], msg=f"The key {ref[1]} already exists on host {self.host.name}.")
        self.host.key_cache.add(ref)

    def AddKeys(self, ctx: CallContext, keys: list | None = None) -> list:
        self.vc.authz.require(ctx, self.host, MANAGE_KEYS)
        if self.host.crypto_state != "safe":
            raise _state_fault(self.host, "keys can be added only to a crypto-safe host")
        results = []
        for key in keys or []:
            try:
                self.AddKey(ctx, key)
                results.append(vim.encryption.CryptoKeyResult(keyId=key.keyId, success=True))
            except vmodl.MethodFault as fault:
                results.append(vim.encryption.CryptoKeyResult(keyId=key.keyId, success=False, reason=fault.msg))
        return results

    def RemoveKey(self, ctx: CallContext, key: Any, force: bool) -> None:
        """Delete a key from this host's cache; VMs on the host that need it become locked."""
        self.vc.authz.require(ctx, self.host, MANAGE_KEYS)
        ref = key_ref(key)
        if ref not in self.host.key_cache:
            raise vmodl.fault.InvalidArgument(invalidProperty="key",
                                              msg=f"A specified parameter was not correct: key {ref[1]} is not on host {self.host.name}")
        users = self.host.vms_using(ref)
        if (users or ref == self.host.host_key) and not force:
            what = "the host key" if ref == self.host.host_key else f"used by {', '.join(vm.name for vm in users)}"
            raise vim.fault.ResourceInUse(name=ref[1], msg=f"The key {ref[1]} is in use on host {self.host.name} ({what}).")
        self.host.key_cache.discard(ref)
        for vm in users:
            vm.locked = True

    def RemoveKeys(self, ctx: CallContext, keys: list | None = None, force: bool = False) -> list:
        self.vc.authz.require(ctx, self.host, MANAGE_KEYS)
        results = []
        for key in keys or []:
            try:
                self.RemoveKey(ctx, key, force)
                results.append(vim.encryption.CryptoKeyResult(keyId=key, success=True))
            except vmodl.MethodFault as fault:
                results.append(vim.encryption.CryptoKeyResult(keyId=key, success=False, reason=fault.msg))
        return results

    # ---- crypto mode -------------------------------------------------------------------------
    def CryptoManagerHostPrepare(self, ctx: CallContext) -> None:
        self.vc.authz.require(ctx, self.host, REGISTER_HOST)
        if self.host.crypto_state != "incapable":
            raise _state_fault(self.host, "Prepare needs an incapable host")
        self.host.crypto_state = "prepared"


class HostSystem(ManagedEntity):
    vim_type = vim.HostSystem
    moid_prefix = "host"

    def __init__(self, vc: Any, name: str, parent: ManagedEntity, version: str = "7.0.3",
                 build: str = "19193900") -> None:
        super().__init__(vc, name, parent)
        self.esx_version = version
        self.esx_build = build
        self.crypto_state = "incapable"
        self.lagging: tuple[float, str] | None = None   # (monotonic deadline, state shown until then): real_quirks
        self.in_maintenance = False   # behaviours/maintenance.py
        self.connected = True         # False: runtime.connectionState "disconnected" (a lab host vCenter lost)
        self.host_key: KeyRef | None = None
        self.key_cache: set[KeyRef] = set()
        self.core_dumps: list[str] = []
        self.crypto_manager = HostCryptoManager(vc, self)
        self.datastores: list[MO] = []

    def reported_crypto_state(self) -> str:
        """What runtime.cryptoState shows: the previous state until a lagging change settles (real_quirks)."""
        if self.lagging is not None and time.monotonic() < self.lagging[0]:
            return self.lagging[1]
        return self.crypto_state

    @property
    def is_pre7(self) -> bool:
        return int(self.esx_version.split(".")[0]) < 7

    @property
    def cluster(self) -> Any:
        """The compute resource (cluster, or a standalone host's own) this host belongs to."""
        return self.parent_mo

    def vms(self) -> list[Any]:
        return [vm for vm in self.vc.vms() if vm.host is self]

    def vms_using(self, key: KeyRef) -> list[Any]:
        return [vm for vm in self.vms() if key in vm.needed_keys()]

    def product(self) -> Any:
        return complete(vim.AboutInfo(name="VMware ESXi", fullName=f"VMware ESXi {self.esx_version} build-{self.esx_build}",
                                      vendor="VMware, Inc.", version=self.esx_version, build=self.esx_build,
                                      osType="vmnix-x86", productLineId="embeddedEsx", apiType="HostAgent",
                                      apiVersion=self.esx_version))

    def p_runtime(self) -> Any:
        return complete(vim.host.RuntimeInfo(
            connectionState="connected" if self.connected else "disconnected", powerState="poweredOn",
            inMaintenanceMode=self.in_maintenance,
            cryptoState=self.reported_crypto_state(),
            cryptoKeyId=key_id(*self.host_key) if self.host_key else None))

    def p_config(self) -> Any:
        return complete(vim.host.ConfigInfo(host=self.ref, product=self.product()))

    def p_summary(self) -> Any:
        return complete(vim.host.Summary(
            host=self.ref, runtime=self.p_runtime(),
            config=complete(vim.host.Summary.ConfigSummary(name=self.name, port=443, product=self.product())),
            overallStatus="green", rebootRequired=self.crypto_state == "pendingIncapable",
            quickStats=complete(vim.host.Summary.QuickStats())))

    def p_configManager(self) -> Any:
        return vim.host.ConfigManager(cryptoManager=self.crypto_manager.ref)

    def p_vm(self) -> list:
        return [vm.ref for vm in self.vms()]

    def p_datastore(self) -> list:
        return [d.ref for d in self.datastores]

    # ---- vCenter-side crypto methods (API.md 5.2) -----------------------------------------------
    def PrepareCrypto(self, ctx: CallContext) -> None:
        self.crypto_manager.CryptoManagerHostPrepare(ctx)
