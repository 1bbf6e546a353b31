"""The PBM (storage policy) endpoint: /pbm/sdk of a vCenter, reached through pyVmomi's `pbm` types.

Why: encrypt, deep recrypt and clone-with-encryption carry an encryption storage policy, and the
suites find that policy the way real tools do (by name, checked by capability, following the
data-service reference like the vSphere CSI driver). The profiles mirror a vSphere 7 vCenter's
defaults (ids as govmomi's pbm simulator captured them from vCenter 6.7). The endpoint has its
own moId space (FakeVCenter.pbm_objects) and shares the vim session: a call without a valid vim
session is NotAuthenticated (only PbmRetrieveServiceContent is anonymous, as its VMODL says).

VM and disk associations are read from the VM model: `vm.home_profile` and `disk.profile`.
"""
from __future__ import annotations

import copy
import datetime
import uuid
from typing import Any

from pyVmomi import pbm, vim, vmodl

from harness.fakevc.model.base import MO, CallContext

ENCRYPTION_POLICY_ID = "4d5f673c-536f-11e6-beb8-9e71128cae77"
ENCRYPTION_POLICY_NAME = "VM Encryption Policy"
DATA_SERVICE_POLICY_ID = "ad5a249d-cbc2-43af-9366-694d7664fa52"
DATA_SERVICE_POLICY_NAME = "Default encryption properties"
PLAIN_POLICY_ID = "aa6d5a82-1c88-45da-85d3-3d74b91a5bad"
PLAIN_POLICY_NAME = "vSAN Default Storage Policy"
VVOL_POLICY_ID = "f4e5bade-15a2-4805-bf8e-52318c4ce443"

ENCRYPTION_NAMESPACE = "vmwarevmcrypt"
ENCRYPTION_CAPABILITY = "vmwarevmcrypt@ENCRYPTION"
DATA_SERVICE_NAMESPACE = "com.vmware.storageprofile.dataservice"
_SYSTEM_USER = "Temporary user handle"
_CREATED = datetime.datetime(2020, 4, 2, 12, 0, tzinfo=datetime.timezone.utc)
_MAX_REFERENCE_DEPTH = 4


# ---- the default profiles ----------------------------------------------------------------------
def _capability(namespace: str, cap_id: str, prop_id: str, value: Any) -> Any:
    return pbm.capability.CapabilityInstance(
        id=pbm.capability.CapabilityMetadata.UniqueId(namespace=namespace, id=cap_id),
        constraint=[pbm.capability.ConstraintInstance(
            propertyInstance=[pbm.capability.PropertyInstance(id=prop_id, value=value)])])


def _profile(profile_id: str, name: str, description: str, category: str, sub_profiles: list | None,
             system_type: str | None = None) -> Any:
    constraints = (pbm.profile.SubProfileCapabilityConstraints(subProfiles=sub_profiles)
                   if sub_profiles is not None else pbm.profile.CapabilityConstraints())
    return pbm.profile.CapabilityBasedProfile(
        profileId=pbm.profile.ProfileId(uniqueId=profile_id), name=name, description=description,
        creationTime=_CREATED, createdBy=_SYSTEM_USER, lastUpdatedTime=_CREATED, lastUpdatedBy=_SYSTEM_USER,
        profileCategory=category, resourceType=pbm.profile.ResourceType(resourceType="STORAGE"),
        constraints=constraints, generationId=0, isDefault=False, systemCreatedProfileType=system_type)


def default_profiles() -> list[Any]:
    """A vSphere 7 vCenter's storage policies relevant to VM encryption (plain one first)."""
    sub = pbm.profile.SubProfileCapabilityConstraints.SubProfile
    return [
        _profile(PLAIN_POLICY_ID, PLAIN_POLICY_NAME, "Storage policy used as default for vSAN datastores",
                 "REQUIREMENT",
                 [sub(name="VSAN sub-profile", capability=[
                     _capability("VSAN", "hostFailuresToTolerate", "hostFailuresToTolerate", 1),
                     _capability("VSAN", "stripeWidth", "stripeWidth", 1),
                     _capability("VSAN", "forceProvisioning", "forceProvisioning", False)])],
                 system_type="VsanDefaultProfile"),
        _profile(VVOL_POLICY_ID, "VVol No Requirements Policy",
                 "Allow the datastore to determine the best placement strategy for storage objects",
                 "REQUIREMENT", None, system_type="VVolDefaultProfile"),
        _profile(ENCRYPTION_POLICY_ID, ENCRYPTION_POLICY_NAME,
                 "Sample storage policy for VMware's VM and virtual disk encryption", "REQUIREMENT",
                 [sub(name="sp-1", forceProvision=False, capability=[
                     _capability(DATA_SERVICE_NAMESPACE, DATA_SERVICE_POLICY_ID, DATA_SERVICE_POLICY_ID,
                                 DATA_SERVICE_POLICY_ID)])]),
        _profile(DATA_SERVICE_POLICY_ID, DATA_SERVICE_POLICY_NAME, "Default encryption properties",
                 "DATA_SERVICE_POLICY",
                 [sub(name="Encryption", capability=[
                     _capability(ENCRYPTION_NAMESPACE, ENCRYPTION_CAPABILITY, "AllowCleartextFilters", "False")])]),
    ]


_PROTECTED = {PLAIN_POLICY_ID, VVOL_POLICY_ID, ENCRYPTION_POLICY_ID, DATA_SERVICE_POLICY_ID}


def _capabilities(profile: Any) -> list[Any]:
    subs = getattr(getattr(profile, "constraints", None), "subProfiles", None) or []
    return [cap for sub in subs for cap in sub.capability or []]


def _encrypts(profiles: dict[str, Any], profile: Any, depth: int = 0) -> bool:
    """The CSI driver's check: a vmwarevmcrypt capability, directly or via a data-service reference."""
    for cap in _capabilities(profile):
        if cap.id.namespace == ENCRYPTION_NAMESPACE:
            return True
        if cap.id.namespace == DATA_SERVICE_NAMESPACE and depth < _MAX_REFERENCE_DEPTH:
            referenced = profiles.get(cap.id.id)
            if referenced is not None and _encrypts(profiles, referenced, depth + 1):
                return True
    return False


# ---- module API for behaviours -----------------------------------------------------------------
def install(vc: Any) -> "ProfileManager":
    """Create the PBM endpoint of a fake vCenter once (lazily: first PBM call or policy lookup)."""
    manager = vc.pbm_objects.get("ProfileManager")
    if manager is None:
        PbmServiceInstance(vc, moid="ServiceInstance")
        for cls, moid in _PLAIN_MANAGERS:
            cls(vc, moid=moid)
        manager = ProfileManager(vc, moid="ProfileManager")
    return manager


def profiles(vc: Any) -> dict[str, Any]:
    """profile id -> pbm.profile.CapabilityBasedProfile on this vCenter."""
    return install(vc).profiles


def is_encryption_policy(vc: Any, profile_id: str | None) -> bool:
    """Whether a storage policy encrypts (VM Encryption Policy, or any policy referencing an
    encryption data-service policy). Unknown ids and None do not."""
    known = profiles(vc)
    profile = known.get(profile_id or "")
    return bool(profile is not None and _encrypts(known, profile))


# Requirement policies a vCenter creates for datastore types the fake does not have (govmomi
# pbm/simulator/profiles.go, dumped from a real vCenter: vSAN Default, VVol No Requirements,
# Host-local PMem Default). None of them fits a VMFS/NFS datastore such as LocalDS_0.
DATASTORE_TYPE_PROFILES = {"VsanDefaultProfile", "VVolDefaultProfile", "PmemDefaultProfile"}


def fits_datastore(vc: Any, profile_id: str | None) -> bool:
    """Whether a policy can be applied on the fake's VMFS datastore. Lenient unless the inventory asks for
    strict policies (fake-lab.yaml); the empty profile and encryption (I/O filter) policies always fit."""
    if not getattr(vc, "strict_policies", False) or not profile_id:
        return True
    profile = profiles(vc).get(profile_id)
    return profile is None or getattr(profile, "systemCreatedProfileType", None) not in DATASTORE_TYPE_PROFILES


def policy_exists(vc: Any, profile_id: str | None) -> bool:
    return (profile_id or "") in profiles(vc)


# ---- managed objects -----------------------------------------------------------------------------
class PbmObject(MO):
    endpoint = "pbm"


class PbmServiceInstance(PbmObject):
    vim_type = pbm.ServiceInstance
    moid_prefix = "ServiceInstance"

    def PbmRetrieveServiceContent(self, ctx: CallContext) -> Any:
        vc = self.vc
        return pbm.ServiceInstanceContent(
            aboutInfo=pbm.AboutInfo(name="PBM", version=vc.api_version, instanceUuid=vc.instance_uuid),
            sessionManager=pbm.auth.SessionManager("SessionManager"),
            capabilityMetadataManager=pbm.capability.CapabilityMetadataManager("CapabilityMetadataManager"),
            profileManager=pbm.profile.ProfileManager("ProfileManager"),
            complianceManager=pbm.compliance.ComplianceManager("complianceManager"),
            placementSolver=pbm.placement.PlacementSolver("placementSolver"),
            replicationManager=pbm.replication.ReplicationManager("ReplicationManager"))


class _SessionManager(PbmObject):
    vim_type = pbm.auth.SessionManager


class _CapabilityMetadataManager(PbmObject):
    vim_type = pbm.capability.CapabilityMetadataManager


class _ComplianceManager(PbmObject):
    vim_type = pbm.compliance.ComplianceManager


class _PlacementSolver(PbmObject):
    vim_type = pbm.placement.PlacementSolver


class _ReplicationManager(PbmObject):
    vim_type = pbm.replication.ReplicationManager


_PLAIN_MANAGERS = [(_SessionManager, "SessionManager"), (_CapabilityMetadataManager, "CapabilityMetadataManager"),
                   (_ComplianceManager, "complianceManager"), (_PlacementSolver, "placementSolver"),
                   (_ReplicationManager, "ReplicationManager")]


def _not_found(profile_id: str) -> vmodl.fault.InvalidArgument:
    return vmodl.fault.InvalidArgument(invalidProperty="profileIds",
                                       msg=f"A specified parameter was not correct: profile {profile_id} not found")


class ProfileManager(PbmObject):
    """pbm.profile.ProfileManager: query and retrieve profiles, associations of VMs and disks."""
    vim_type = pbm.profile.ProfileManager

    def __init__(self, vc: Any, moid: str) -> None:
        super().__init__(vc, moid)
        self.profiles: dict[str, Any] = {p.profileId.uniqueId: p for p in default_profiles()}

    # ---- profiles ----------------------------------------------------------------------------
    def PbmFetchResourceType(self, ctx: CallContext) -> list:
        return [pbm.profile.ResourceType(resourceType="STORAGE")]

    def PbmQueryProfile(self, ctx: CallContext, resourceType: Any, profileCategory: str | None = None) -> list:
        if resourceType.resourceType != "STORAGE":
            raise vmodl.fault.InvalidArgument(invalidProperty="resourceType",
                                              msg=f"A specified parameter was not correct: resourceType {resourceType.resourceType}")
        return [copy.deepcopy(p.profileId) for p in self.profiles.values()
                if not profileCategory or p.profileCategory == profileCategory]

    def PbmRetrieveContent(self, ctx: CallContext, profileIds: list) -> list:
        missing = [pid.uniqueId for pid in profileIds if pid.uniqueId not in self.profiles]
        if missing:
            raise _not_found(missing[0])
        return [self.profiles[pid.uniqueId] for pid in profileIds]

    def PbmCreate(self, ctx: CallContext, createSpec: Any) -> Any:
        """A new requirement policy; one with an encryption rule needs ManageEncryptionPolicy."""
        if any(p.name == createSpec.name for p in self.profiles.values()):
            raise pbm.fault.DuplicateName(name=createSpec.name, msg=f"A profile named '{createSpec.name}' already exists.")
        profile_id = str(uuid.uuid4())
        profile = _profile(profile_id, createSpec.name, createSpec.description or "",
                           createSpec.category or "REQUIREMENT", None)
        profile.constraints = createSpec.constraints
        profile.createdBy = profile.lastUpdatedBy = ctx.user
        if _encrypts(self.profiles, profile):
            _require(ctx, self, "Cryptographer.ManageEncryptionPolicy")
        self.profiles[profile_id] = profile
        return pbm.profile.ProfileId(uniqueId=profile_id)

    def PbmDelete(self, ctx: CallContext, profileId: list) -> list:
        outcomes = []
        for pid in profileId:
            fault = None
            if pid.uniqueId not in self.profiles:
                fault = pbm.fault.NotFound(msg=f"Profile {pid.uniqueId} not found.")
            elif pid.uniqueId in _PROTECTED:
                fault = pbm.fault.PBMFault(msg=f"The system profile {self.profiles[pid.uniqueId].name} cannot be deleted.")
            elif self._associations(pid.uniqueId, None):
                fault = pbm.fault.ResourceInUse(name=pid.uniqueId, msg=f"Profile {pid.uniqueId} is in use.")
            else:
                del self.profiles[pid.uniqueId]
            outcomes.append(pbm.profile.ProfileOperationOutcome(profileId=pid, fault=fault))
        return outcomes

    # ---- associations --------------------------------------------------------------------------
    def _vm(self, moid: str) -> Any:
        from harness.fakevc.model.vm import VirtualMachine
        mo = self.vc.objects.get(moid)
        return mo if isinstance(mo, VirtualMachine) else None

    def _associated(self, ref: Any) -> list[str]:
        if ref.objectType == "virtualMachine":
            vm = self._vm(ref.key)
            return [vm.home_profile] if vm is not None and vm.home_profile else []
        if ref.objectType == "virtualDiskId":
            moid, _, disk_key = ref.key.partition(":")
            vm = self._vm(moid)
            disk = next((d for d in vm.disks if str(d.key) == disk_key), None) if vm is not None else None
            return [disk.profile] if disk is not None and disk.profile else []
        raise vmodl.fault.InvalidArgument(invalidProperty="entity.objectType",
                                          msg=f"A specified parameter was not correct: objectType {ref.objectType}")

    def _associations(self, profile_id: str, entity_type: str | None) -> list[Any]:
        refs = []
        for vm in self.vc.vms():
            if vm.home_profile == profile_id and entity_type in (None, "virtualMachine"):
                refs.append(pbm.ServerObjectRef(objectType="virtualMachine", key=vm.moid, serverUuid=self.vc.instance_uuid))
            for disk in vm.disks:
                if disk.profile == profile_id and entity_type in (None, "virtualDiskId"):
                    refs.append(pbm.ServerObjectRef(objectType="virtualDiskId", key=f"{vm.moid}:{disk.key}",
                                                    serverUuid=self.vc.instance_uuid))
        return refs

    def PbmQueryAssociatedProfile(self, ctx: CallContext, entity: Any) -> list:
        return [pbm.profile.ProfileId(uniqueId=p) for p in self._associated(entity)]

    def PbmQueryAssociatedProfiles(self, ctx: CallContext, entities: list) -> list:
        results = []
        for ref in entities:
            try:
                ids = [pbm.profile.ProfileId(uniqueId=p) for p in self._associated(ref)]
                results.append(pbm.profile.QueryProfileResult(object=ref, profileId=ids))
            except vmodl.MethodFault as fault:
                results.append(pbm.profile.QueryProfileResult(object=ref, fault=fault))
        return results

    def PbmQueryAssociatedEntity(self, ctx: CallContext, profile: Any, entityType: str | None = None) -> list:
        if profile.uniqueId not in self.profiles:
            raise _not_found(profile.uniqueId)
        return self._associations(profile.uniqueId, entityType)


def _require(ctx: CallContext, mo: MO, privilege: str) -> None:
    """A privilege check on the PBM endpoint: vCenter's privileges, PBM's fault class (an 8.0.2
    type: at pbm.version.version11 it reaches the client as its base, vmodl.fault.SecurityError)."""
    try:
        ctx.vc.authz.require(ctx, None, privilege)
    except vim.fault.NoPermission as fault:
        raise pbm.fault.NoPermission(msg=fault.msg) from None
