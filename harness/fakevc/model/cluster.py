"""Compute resources: standalone hosts and clusters with HA, DRS and crypto mode (key push depends on HA)."""
from __future__ import annotations

from typing import Any

from pyVmomi import vim, vmodl

from harness.fakevc.model.base import CallContext, ManagedEntity
from harness.fakevc.model.host import HostSystem
from harness.fakevc.model.inventory import ResourcePool
from harness.fakevc.wire import complete


class ComputeResource(ManagedEntity):
    """A standalone host's compute resource (hosts outside any cluster)."""
    vim_type = vim.ComputeResource
    moid_prefix = "domain-s"

    def __init__(self, vc: Any, name: str, parent: ManagedEntity) -> None:
        super().__init__(vc, name, parent)
        self.hosts: list[HostSystem] = []
        self.pool = ResourcePool(vc, "Resources", self)

    def children(self) -> list[ManagedEntity]:
        return [*self.hosts, self.pool]

    def p_host(self) -> list:
        return [h.ref for h in self.hosts]

    def p_resourcePool(self) -> Any:
        return self.pool.ref

    def p_datastore(self) -> list:
        seen = {d.moid: d for h in self.hosts for d in h.datastores}
        return [d.ref for d in seen.values()]


class ClusterComputeResource(ComputeResource):
    vim_type = vim.ClusterComputeResource
    moid_prefix = "domain-c"

    def __init__(self, vc: Any, name: str, parent: ManagedEntity) -> None:
        super().__init__(vc, name, parent)
        self.ha_enabled = False
        self.drs_enabled = False
        self.crypto_mode = "onDemand"

    def p_configurationEx(self) -> Any:
        return complete(vim.cluster.ConfigInfoEx(
            dasConfig=complete(vim.cluster.DasConfigInfo(enabled=self.ha_enabled)),
            drsConfig=complete(vim.cluster.DrsConfigInfo(enabled=self.drs_enabled)),
            cryptoConfig=None if self.vc.is_pre7 else vim.cluster.CryptoConfigInfo(cryptoMode=self.crypto_mode)))

    def p_configuration(self) -> Any:
        return complete(vim.cluster.ConfigInfo(
            dasConfig=complete(vim.cluster.DasConfigInfo(enabled=self.ha_enabled)),
            drsConfig=complete(vim.cluster.DrsConfigInfo(enabled=self.drs_enabled))))

    def p_summary(self) -> Any:
        return complete(vim.cluster.Summary(numHosts=len(self.hosts), numEffectiveHosts=len(self.hosts)))

    def ReconfigureComputeResource_Task(self, ctx: CallContext, spec: Any, modify: bool) -> Any:
        """HA, DRS and cluster crypto mode; `modify=False` replaces the whole configuration.

        Any change re-evaluates key push (PUSH-HA / PUSH-DRS / crypto mode forceEnable).
        """
        from harness.fakevc.behaviours import key_push

        def work() -> None:
            das = getattr(spec, "dasConfig", None)
            drs = getattr(spec, "drsConfig", None)
            crypto = getattr(spec, "cryptoConfig", None)
            mode = getattr(crypto, "cryptoMode", None) if crypto is not None else None
            if mode and mode not in _CRYPTO_MODES:
                raise vmodl.fault.InvalidArgument(invalidProperty="spec.cryptoConfig.cryptoMode",
                                                  msg=f"A specified parameter was not correct: cryptoMode {mode!r}")
            ha, drs_on, crypto_mode = (self.ha_enabled, self.drs_enabled, self.crypto_mode) if modify else (False, False, "onDemand")
            if das is not None and das.enabled is not None:
                ha = bool(das.enabled)
            if drs is not None and drs.enabled is not None:
                drs_on = bool(drs.enabled)
            if mode:
                crypto_mode = mode
            self.ha_enabled, self.drs_enabled, self.crypto_mode = ha, drs_on, crypto_mode
            key_push.cluster_changed(self.vc, self)

        return self.vc.tasks.run(ctx, self, "ClusterComputeResource.reconfigureEx", work)


_CRYPTO_MODES = ("onDemand", "forceEnable")
