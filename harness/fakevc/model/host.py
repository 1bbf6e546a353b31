"""HostSystem, its crypto manager (the host's key cache) and its crypto state."""
from __future__ import annotations

from typing import Any

from pyVmomi import vim

from harness.fakevc.model.base import MO, CallContext, ManagedEntity
from harness.fakevc.wire import complete


def key_id(provider: str, key: str) -> Any:
    return vim.encryption.CryptoKeyId(keyId=key, providerId=vim.encryption.KeyProviderId(id=provider))


class HostCryptoManager(MO):
    """`host.configManager.cryptoManager`: lists the keys in this host's cache."""
    vim_type = vim.encryption.CryptoManagerHostKMS
    moid_prefix = "cryptoManagerHost"

    def __init__(self, vc: Any, host: "HostSystem") -> None:
        super().__init__(vc)
        self.host = host

    def p_enabled(self) -> bool:
        return self.host.crypto_state == "safe"

    def ListKeys(self, ctx: CallContext, limit: int | None = None) -> list:
        keys = [key_id(p, k) for p, k in sorted(self.host.key_cache)]
        return keys[:limit] if limit else keys


class HostSystem(ManagedEntity):
    vim_type = vim.HostSystem
    moid_prefix = "host"

    def __init__(self, vc: Any, name: str, parent: ManagedEntity, version: str = "7.0.3",
                 build: str = "19193900") -> None:
        super().__init__(vc, name, parent)
        self.esx_version = version
        self.esx_build = build
        self.crypto_state = "incapable"
        self.host_key: tuple[str, str] | None = None
        self.key_cache: set[tuple[str, str]] = set()
        self.core_dumps: list[str] = []
        self.crypto_manager = HostCryptoManager(vc, self)
        self.datastores: list[MO] = []

    @property
    def is_pre7(self) -> bool:
        return int(self.esx_version.split(".")[0]) < 7

    def product(self) -> Any:
        return complete(vim.AboutInfo(name="VMware ESXi", fullName=f"VMware ESXi {self.esx_version} build-{self.esx_build}",
                                      vendor="VMware, Inc.", version=self.esx_version, build=self.esx_build,
                                      osType="vmnix-x86", productLineId="embeddedEsx", apiType="HostAgent",
                                      apiVersion=self.esx_version))

    def p_runtime(self) -> Any:
        return complete(vim.host.RuntimeInfo(
            connectionState="connected", powerState="poweredOn", inMaintenanceMode=False,
            cryptoState=self.crypto_state,
            cryptoKeyId=key_id(*self.host_key) if self.host_key else None))

    def p_config(self) -> Any:
        return complete(vim.host.ConfigInfo(host=self.ref, product=self.product()))

    def p_summary(self) -> Any:
        return complete(vim.host.Summary(
            host=self.ref, runtime=self.p_runtime(),
            config=complete(vim.host.Summary.ConfigSummary(name=self.name, port=443, product=self.product())),
            overallStatus="green", rebootRequired=False, quickStats=complete(vim.host.Summary.QuickStats())))

    def p_configManager(self) -> Any:
        return vim.host.ConfigManager(cryptoManager=self.crypto_manager.ref)

    def p_vm(self) -> list:
        return [vm.ref for vm in self.vc.vms() if vm.host is self]

    def p_datastore(self) -> list:
        return [d.ref for d in self.datastores]

    def make_crypto_safe(self, key: tuple[str, str]) -> None:
        """Enter crypto-safe mode with a host key; a host never leaves safe (HOST-CRYPTO-MODE)."""
        if self.crypto_state != "safe":
            self.crypto_state = "safe"
            self.host_key = key
            self.key_cache.add(key)
