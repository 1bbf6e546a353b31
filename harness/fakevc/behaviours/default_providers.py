"""Default key provider per cluster (KMS-DEFAULT-*): SetDefaultKmsCluster / GetDefaultKmsCluster with an
entity, and which provider an encrypt that names none takes for a VM.

The bookkeeping (which provider is whose default) is the model's (`model/crypto_manager.py`); this module
is the rule around it, with its seeded defects. Sources:

- SetDefaultKmsCluster (vSphere API, since 7.0): "entity: The managed entity where the default KMS cluster
  to be set. Currently the valid managed entity could be cluster or host folder. If omitted, then will set
  global default KMS cluster. clusterId: KMS cluster ID to become default. If omitted, then will clear the
  default KMS cluster setting."
  https://developer.broadcom.com/xapis/virtual-infrastructure-json-api/latest/data-structures/SetDefaultKmsClusterRequestType
- GetDefaultKmsCluster: "defaultsToParent (Optional, default = false) If set to true, then get the default
  kms cluster follow the entity hierarchy. That means if the entity has no default kms cluster, then try
  to get from its parent."
  https://developer.broadcom.com/xapis/virtual-infrastructure-json-api/8.0.3/data-structures/GetDefaultKmsClusterRequestType
- KmipClusterInfo.useAsEntityDefault: "Use this cluster as default for the managed entities, when the
  optional CryptoKeyId.providerId is not set."
  https://developer.broadcom.com/xapis/virtual-infrastructure-json-api/latest/data-structures/KmipClusterInfo
- Which entities a VM's default is looked up on: its host, then the host's cluster and host folder, then
  the global default (govmomi simulator/crypto_manager_kmip.go getDefaultProvider: "Lookup the default
  provider ID via the VM's parent entities: host, host folder, cluster"); PowerCLI Add-/Remove-
  EntityDefaultKeyProvider set and clear it on a cluster.
- With an entity only that entity's default changes: the vCenter-wide default is a separate setting
  (SetDefaultKmsCluster, entity: "If omitted, then will set global default KMS cluster"; KmipClusterInfo.
  useAsDefault, "for system wide", beside useAsEntityDefault; PowerCLI's KeyProvider DefaultForSystem beside DefaultForEntity). vcsim
  v0.56.0 instead clears every other provider's defaults, the global one included
  (harness/data/deviations/vcsim.yaml).
- No default is answered as unset, not as a fault: GetDefaultKmsCluster's result is optional and it declares
  no fault (pyVmomi typeinfo: resultFlags F_OPTIONAL, faults []); vcsim v0.56.0 raises RuntimeFault.
"""
from __future__ import annotations

from typing import Any

from harness.fakevc.defects import defect
from harness.fakevc.model.base import MO, CallContext
from harness.fakevc.model.crypto_manager import CryptoManagerKmip
from harness.fakevc.model.vm import VirtualMachine

SET_REPLACES_GLOBAL = defect(
    "kms-default-set-replaces-global", "KMS-DEFAULT-SET",
    "setting a cluster's default key provider also makes that provider the vCenter-wide default")
SET_NOT_KEPT = defect(
    "kms-default-set-not-kept", "KMS-DEFAULT-SET",
    "SetDefaultKmsCluster with a cluster succeeds but stores nothing: GetDefaultKmsCluster(entity=cluster) "
    "answers no provider")
PARENT_IGNORED = defect(
    "kms-default-parent-ignored", "KMS-DEFAULT-PARENT",
    "GetDefaultKmsCluster ignores defaultsToParent: a cluster without its own default answers no provider "
    "instead of the vCenter-wide default")
ENCRYPT_USES_GLOBAL = defect(
    "kms-default-encrypt-uses-global", "KMS-DEFAULT-ENCRYPT",
    "an encrypt that names no key provider takes its key from the vCenter-wide default, ignoring the "
    "default of the VM's cluster")
CLEAR_IGNORED = defect(
    "kms-default-clear-ignored", "KMS-DEFAULT-CLEAR",
    "SetDefaultKmsCluster(entity=cluster) without a clusterId keeps the cluster's default: later encrypts "
    "there still take keys from it")
CLEAR_DROPS_GLOBAL = defect(
    "kms-default-clear-drops-global", "KMS-DEFAULT-CLEAR",
    "clearing a cluster's default also clears the vCenter-wide default: the next encrypt there finds no "
    "provider")


def _entity_moid(cm: CryptoManagerKmip, entity: Any) -> str | None:
    return cm.vc.lookup(entity).moid if entity is not None else None


def SetDefaultKmsCluster(ctx: CallContext, cm: CryptoManagerKmip, entity: Any = None, clusterId: Any = None) -> None:
    """The model sets or clears the default (validating the entity and provider first); the defects bend it."""
    defects = cm.vc.world.defects
    moid = _entity_moid(cm, entity)   # ManagedObjectNotFound before anything changes
    kept = [p for p in cm.providers.values() if moid in p.entity_defaults] if moid else []
    cm.SetDefaultKmsCluster(ctx, entity=entity, clusterId=clusterId)
    if moid is None:
        return
    if clusterId is None or not clusterId.id:   # clearing the entity's default
        if defects.on(CLEAR_IGNORED):
            for provider in kept:
                provider.entity_defaults.add(moid)
        if defects.on(CLEAR_DROPS_GLOBAL):
            cm.default_id = None
        return
    if defects.on(SET_NOT_KEPT):
        for provider in cm.providers.values():
            provider.entity_defaults.discard(moid)
    if defects.on(SET_REPLACES_GLOBAL):
        cm.default_id = clusterId.id


def GetDefaultKmsCluster(ctx: CallContext, cm: CryptoManagerKmip, entity: Any = None,
                         defaultsToParent: bool | None = None) -> Any:
    if cm.vc.world.defects.on(PARENT_IGNORED):
        defaultsToParent = False
    return cm.GetDefaultKmsCluster(ctx, entity=entity, defaultsToParent=defaultsToParent)


def default_entity(vm: VirtualMachine) -> MO | None:
    """Where the default provider of a key-less encrypt of `vm` is looked up first: its host, whose
    ancestors are the cluster, host folder and datacenter (keys.default_provider walks them, then takes the
    global default). None sends the lookup straight to the global default."""
    if vm.vc.world.defects.on(ENCRYPT_USES_GLOBAL):
        return None
    return vm.host
