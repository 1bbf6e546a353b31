"""Compute resources: standalone hosts and clusters with HA, DRS and crypto mode (key push depends on HA)."""
from __future__ import annotations

from typing import Any

from pyVmomi import vim

from harness.fakevc.model.base import ManagedEntity
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


