"""Storage policies through PBM: find the encryption policy by its capability, not by a fixed id."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyVmomi import pbm, vmodl

ENCRYPTION_NAMESPACE = "vmwarevmcrypt"
DATA_SERVICE_NAMESPACE = "com.vmware.storageprofile.dataservice"
ENCRYPTION_POLICY_NAME = "VM Encryption Policy"
# vSphere's built-in "VM Encryption Policy" has this fixed id (govmomi pbm/simulator/profiles.go
# DefaultEncryptionProfileID copies it). vcsim serves the policy but not the data-service component
# it references (PbmRetrieveContent: InvalidArgument profileId), so only the id can identify it there.
BUILTIN_ENCRYPTION_POLICY_ID = "4d5f673c-536f-11e6-beb8-9e71128cae77"


@dataclass(frozen=True)
class Policies:
    encryption: str         # profile id of a policy with the VM encryption filter
    plain: str | None       # the inventory's plain policy (None: the empty profile, as PowerCLI decrypts)


def _capabilities(profile: Any) -> list[Any]:
    subs = getattr(getattr(profile, "constraints", None), "subProfiles", None) or []
    return [cap for sub in subs for cap in sub.capability or []]


def _encrypts(manager: Any, profile: Any, depth: int = 0) -> bool:
    """Direct vmwarevmcrypt capability, or via a data-service reference (the CSI driver's check)."""
    for cap in _capabilities(profile):
        if cap.id.namespace == ENCRYPTION_NAMESPACE:
            return True
        if cap.id.namespace == DATA_SERVICE_NAMESPACE and depth < 3:
            try:
                referenced = manager.PbmRetrieveContent(profileIds=[pbm.profile.ProfileId(uniqueId=cap.id.id)])
            except vmodl.fault.InvalidArgument:  # the referenced component is not served (vcsim)
                continue
            if any(_encrypts(manager, p, depth + 1) for p in referenced or []):
                return True
    return False


def discover(pbm_si: Any, plain_name: str | None = None) -> Policies:
    """The encryption policy (by name, checked by capability) and the plain policy for decrypts.

    "Plain" is never guessed: a vCenter's non-encryption REQUIREMENT policies are vSAN Default, VVol No
    Requirements and Host-local PMem (govmomi pbm/simulator/profiles.go), none of which fits a VMFS or NFS
    datastore (API.md 11). Without `plain_name` a decrypt carries the empty profile
    (`vim.vm.EmptyProfileSpec()`), as PowerCLI's Disable-VMEncryption does.
    """
    manager = pbm_si.RetrieveContent().profileManager
    ids = manager.PbmQueryProfile(resourceType=pbm.profile.ResourceType(resourceType="STORAGE"),
                                  profileCategory="REQUIREMENT")
    profiles = manager.PbmRetrieveContent(profileIds=ids) if ids else []
    encrypting = [p for p in profiles if _encrypts(manager, p)] or [
        p for p in profiles if p.profileId.uniqueId == BUILTIN_ENCRYPTION_POLICY_ID and p.name == ENCRYPTION_POLICY_NAME]
    if not encrypting:
        raise LookupError("no storage policy with the VM encryption capability (vmwarevmcrypt)")
    preferred = [p for p in encrypting if p.name == ENCRYPTION_POLICY_NAME] or encrypting
    plain = None
    if plain_name is not None:
        named = [p for p in profiles if p.name == plain_name]
        if not named:
            raise LookupError(f"no REQUIREMENT storage policy named {plain_name!r} (inventory plain_policy)")
        if named[0] in encrypting:
            raise LookupError(f"storage policy {plain_name!r} (inventory plain_policy) encrypts: it is not plain")
        plain = named[0].profileId.uniqueId
    return Policies(encryption=preferred[0].profileId.uniqueId, plain=plain)


def associated(pbm_si: Any, vm: Any, disk_key: int | None = None) -> list[str]:
    """Profile ids associated with a VM's home (or one disk)."""
    manager = pbm_si.RetrieveContent().profileManager
    if disk_key is None:
        ref = pbm.ServerObjectRef(objectType="virtualMachine", key=vm._moId)
    else:
        ref = pbm.ServerObjectRef(objectType="virtualDiskId", key=f"{vm._moId}:{disk_key}")
    return [p.uniqueId for p in manager.PbmQueryAssociatedProfile(entity=ref) or []]
