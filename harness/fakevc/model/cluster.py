"""ClusterComputeResource with HA and DRS settings (key push depends on HA)."""
from __future__ import annotations

from typing import Any

from pyVmomi import vim

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
            cryptoConfig=vim.cluster.CryptoConfigInfo(cryptoMode=self.crypto_mode)))

    def p_summary(self) -> Any:
        return complete(vim.cluster.Summary(numHosts=len(self.hosts), numEffectiveHosts=len(self.hosts)))

    def ReconfigureComputeResource_Task(self, ctx: CallContext, spec: Any, modify: bool) -> Any:
        from harness.fakevc.behaviours import key_push

        def work() -> None:
            das = getattr(spec, "dasConfig", None)
            drs = getattr(spec, "drsConfig", None)
            crypto = getattr(spec, "cryptoConfig", None)
            if das is not None and das.enabled is not None:
                self.ha_enabled = bool(das.enabled)
            if drs is not None and drs.enabled is not None:
                self.drs_enabled = bool(drs.enabled)
            if crypto is not None and crypto.cryptoMode:
                self.crypto_mode = crypto.cryptoMode
            key_push.cluster_changed(self.vc, self)

        return self.vc.tasks.run(ctx, self, "ClusterComputeResource.reconfigureEx", work)
