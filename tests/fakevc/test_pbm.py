"""The PBM endpoint through pyVmomi's `pbm` types: default policies, the encryption capability
behind a data-service reference, associations, sessions and privileges."""
from __future__ import annotations

from typing import Any, Iterator

import pytest
from pyVmomi import pbm, vim, vmodl

from harness.targets.connect import pbm_service
from harness.targets.environment import Environment
from harness.fakevc.model import pbm as fake_pbm
from harness.fakevc.world import FakeWorld
from harness.vsphere import policies
from tests.fakevc.conftest import make_vm, wait
from tests.fakevc.test_plumbing import fresh_fake, login

STORAGE = pbm.profile.ResourceType(resourceType="STORAGE")
DATA_SERVICE_NS = "com.vmware.storageprofile.dataservice"


def _id(value: str) -> Any:
    return pbm.profile.ProfileId(uniqueId=value)


def _capabilities(profile: Any) -> list[Any]:
    return [cap for sub in profile.constraints.subProfiles for cap in sub.capability]


def _create_spec(name: str, namespace: str, cap_id: str) -> Any:
    capability = pbm.capability.CapabilityInstance(
        id=pbm.capability.CapabilityMetadata.UniqueId(namespace=namespace, id=cap_id),
        constraint=[pbm.capability.ConstraintInstance(
            propertyInstance=[pbm.capability.PropertyInstance(id=cap_id, value=cap_id)])])
    return pbm.profile.CapabilityBasedProfileCreateSpec(
        name=name, description="vcrypt test policy", category="REQUIREMENT", resourceType=STORAGE,
        constraints=pbm.profile.SubProfileCapabilityConstraints(
            subProfiles=[pbm.profile.SubProfileCapabilityConstraints.SubProfile(name="sp-1", capability=[capability])]))


@pytest.fixture(scope="module")
def fake(env: Environment) -> Iterator[tuple[FakeWorld, Any, Any]]:
    """A private fake (policies and roles are created here) and its PBM profile manager."""
    with fresh_fake(env, vms=1) as (world, si):
        yield world, si, pbm_service(si).RetrieveContent().profileManager


def test_requirement_policies_include_the_encryption_policy(fake: Any) -> None:
    _, _, manager = fake
    ids = [p.uniqueId for p in manager.PbmQueryProfile(resourceType=STORAGE, profileCategory="REQUIREMENT")]
    assert fake_pbm.ENCRYPTION_POLICY_ID in ids and fake_pbm.PLAIN_POLICY_ID in ids
    assert fake_pbm.DATA_SERVICE_POLICY_ID not in ids
    service = [p.uniqueId for p in manager.PbmQueryProfile(resourceType=STORAGE, profileCategory="DATA_SERVICE_POLICY")]
    assert service == [fake_pbm.DATA_SERVICE_POLICY_ID]


def test_encryption_policy_refers_to_the_encryption_data_service(fake: Any) -> None:
    _, _, manager = fake
    [policy] = manager.PbmRetrieveContent(profileIds=[_id(fake_pbm.ENCRYPTION_POLICY_ID)])
    assert isinstance(policy, pbm.profile.CapabilityBasedProfile)
    assert policy.name == "VM Encryption Policy"
    assert policy.description == "Sample storage policy for VMware's VM and virtual disk encryption"
    assert policy.profileCategory == "REQUIREMENT" and policy.resourceType.resourceType == "STORAGE"
    [reference] = _capabilities(policy)
    assert reference.id.namespace == DATA_SERVICE_NS and reference.id.id == fake_pbm.DATA_SERVICE_POLICY_ID
    [component] = manager.PbmRetrieveContent(profileIds=[_id(reference.id.id)])
    assert component.name == "Default encryption properties" and component.profileCategory == "DATA_SERVICE_POLICY"
    assert [(c.id.namespace, c.id.id) for c in _capabilities(component)] == [("vmwarevmcrypt", "vmwarevmcrypt@ENCRYPTION")]
    [plain] = manager.PbmRetrieveContent(profileIds=[_id(fake_pbm.PLAIN_POLICY_ID)])
    assert all(c.id.namespace not in ("vmwarevmcrypt", DATA_SERVICE_NS) for c in _capabilities(plain))


def test_harness_discovers_the_encryption_policy_and_never_guesses_a_plain_one(fake: Any) -> None:
    """Issue 12 item 6: the first non-encryption requirement policy (vSAN Default on a real vCenter) does
    not fit VMFS/NFS: without an inventory plain_policy, decrypts carry the empty profile."""
    _, si, _ = fake
    found = policies.discover(pbm_service(si))
    assert found.encryption == fake_pbm.ENCRYPTION_POLICY_ID
    assert found.plain is None
    named = policies.discover(pbm_service(si), plain_name=fake_pbm.PLAIN_POLICY_NAME)
    assert named.plain == fake_pbm.PLAIN_POLICY_ID
    with pytest.raises(LookupError, match="encrypts"):
        policies.discover(pbm_service(si), plain_name=fake_pbm.ENCRYPTION_POLICY_NAME)
    with pytest.raises(LookupError, match="no REQUIREMENT"):
        policies.discover(pbm_service(si), plain_name="no such policy")


def test_unknown_profile_is_invalid_argument(fake: Any) -> None:
    _, _, manager = fake
    with pytest.raises(vmodl.fault.InvalidArgument):
        manager.PbmRetrieveContent(profileIds=[_id("00000000-0000-0000-0000-000000000000")])


def test_is_encryption_policy_follows_the_data_service_reference(fake: Any) -> None:
    world, _, manager = fake
    vc = next(iter(world.vcenters.values()))
    assert fake_pbm.is_encryption_policy(vc, fake_pbm.ENCRYPTION_POLICY_ID)
    assert fake_pbm.is_encryption_policy(vc, fake_pbm.DATA_SERVICE_POLICY_ID)
    assert not fake_pbm.is_encryption_policy(vc, fake_pbm.PLAIN_POLICY_ID)
    assert not fake_pbm.is_encryption_policy(vc, None)
    assert not fake_pbm.is_encryption_policy(vc, "no-such-policy")
    custom = manager.PbmCreate(createSpec=_create_spec("vcrypt-encrypting-copy", DATA_SERVICE_NS,
                                                       fake_pbm.DATA_SERVICE_POLICY_ID))
    try:
        assert fake_pbm.is_encryption_policy(vc, custom.uniqueId)
    finally:
        manager.PbmDelete(profileId=[custom])


def test_create_and_delete_policies(fake: Any) -> None:
    _, _, manager = fake
    created = manager.PbmCreate(createSpec=_create_spec("vcrypt-plain", "VSAN", "stripeWidth"))
    [profile] = manager.PbmRetrieveContent(profileIds=[created])
    assert profile.name == "vcrypt-plain" and profile.createdBy == "administrator@vsphere.local"
    with pytest.raises(pbm.fault.DuplicateName):
        manager.PbmCreate(createSpec=_create_spec("vcrypt-plain", "VSAN", "stripeWidth"))
    [system] = manager.PbmDelete(profileId=[_id(fake_pbm.ENCRYPTION_POLICY_ID)])
    assert isinstance(system.fault, pbm.fault.PBMFault)
    assert manager.PbmRetrieveContent(profileIds=[_id(fake_pbm.ENCRYPTION_POLICY_ID)])   # still there
    [outcome] = manager.PbmDelete(profileId=[created])
    assert outcome.fault is None
    with pytest.raises(vmodl.fault.InvalidArgument):
        manager.PbmRetrieveContent(profileIds=[created])


def test_associations_of_a_vm_without_policy_are_empty(fake: Any) -> None:
    _, si, manager = fake
    machine = make_vm(si, disks=2)
    try:
        home = pbm.ServerObjectRef(objectType="virtualMachine", key=machine._moId)
        disk = pbm.ServerObjectRef(objectType="virtualDiskId", key=f"{machine._moId}:2001")
        assert manager.PbmQueryAssociatedProfile(entity=home) == []
        results = manager.PbmQueryAssociatedProfiles(entities=[home, disk])
        assert [r.object.key for r in results] == [home.key, disk.key]
        assert all(not r.profileId for r in results)
        with pytest.raises(vmodl.fault.InvalidArgument):
            manager.PbmQueryAssociatedProfile(entity=pbm.ServerObjectRef(objectType="bogus", key="x"))
    finally:
        wait(machine.Destroy_Task())


def test_associations_follow_the_vm_policy(fake: Any) -> None:
    """A storage-policy change through ReconfigVM_Task is what PBM reports for the VM and disks."""
    _, si, manager = fake
    machine = make_vm(si)
    try:
        disk = [d for d in machine.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)][0]
        plain = [vim.vm.DefinedProfileSpec(profileId=fake_pbm.PLAIN_POLICY_ID)]
        spec = vim.vm.ConfigSpec(vmProfile=plain, deviceChange=[
            vim.vm.device.VirtualDeviceSpec(operation="edit", device=disk, profile=plain)])
        wait(machine.ReconfigVM_Task(spec=spec))
        home = pbm.ServerObjectRef(objectType="virtualMachine", key=machine._moId)
        disk_ref = pbm.ServerObjectRef(objectType="virtualDiskId", key=f"{machine._moId}:{disk.key}")
        assert [p.uniqueId for p in manager.PbmQueryAssociatedProfile(entity=home)] == [fake_pbm.PLAIN_POLICY_ID]
        assert [p.uniqueId for p in manager.PbmQueryAssociatedProfile(entity=disk_ref)] == [fake_pbm.PLAIN_POLICY_ID]
        users = manager.PbmQueryAssociatedEntity(profile=_id(fake_pbm.PLAIN_POLICY_ID), entityType="virtualMachine")
        assert machine._moId in [u.key for u in users]
    finally:
        wait(machine.Destroy_Task())


def test_pbm_needs_a_valid_vim_session(fake: Any) -> None:
    world, _, _ = fake
    name = next(iter(world.vcenters))
    anonymous = pbm.ServiceInstance("ServiceInstance", world.adapter(name, endpoint="pbm", version="pbm.version.version11"))
    content = anonymous.RetrieveContent()                    # PbmRetrieveServiceContent is anonymous
    with pytest.raises(vim.fault.NotAuthenticated):
        content.profileManager.PbmQueryProfile(resourceType=STORAGE, profileCategory="REQUIREMENT")
    si = login(world, name)
    manager = pbm_service(si).RetrieveContent().profileManager
    assert manager.PbmQueryProfile(resourceType=STORAGE, profileCategory="REQUIREMENT")
    si.content.sessionManager.Logout()                        # the PBM session is the vim session
    with pytest.raises(vim.fault.NotAuthenticated):
        manager.PbmQueryProfile(resourceType=STORAGE, profileCategory="REQUIREMENT")


def test_pbm_privileges(fake: Any) -> None:
    """StorageProfile.* gates PBM; an encryption policy also needs Cryptographer.ManageEncryptionPolicy.

    PBM 7.0 (pbm.version.version11) reports a missing privilege as vmodl.fault.SecurityError
    (pbm.fault.NoPermission is an 8.0.2 type).
    """
    world, admin, _ = fake
    name = next(iter(world.vcenters))
    vc = world.vcenters[name]
    am = admin.content.authorizationManager
    for user, privileges in (("pbm-reader@vsphere.local", []),
                             ("pbm-editor@vsphere.local", ["StorageProfile.View", "StorageProfile.Update"])):
        vc.add_user(user, "pw")
        role = am.AddAuthorizationRole(name=f"role-{user}", privIds=privileges)
        am.SetEntityPermissions(entity=admin.content.rootFolder, permission=[vim.AuthorizationManager.Permission(
            principal=user, group=False, roleId=role, propagate=True)])
    reader = pbm_service(login(world, name, "pbm-reader@vsphere.local", "pw")).RetrieveContent().profileManager
    with pytest.raises(vmodl.fault.SecurityError):
        reader.PbmQueryProfile(resourceType=STORAGE, profileCategory="REQUIREMENT")
    editor = pbm_service(login(world, name, "pbm-editor@vsphere.local", "pw")).RetrieveContent().profileManager
    before = len(editor.PbmQueryProfile(resourceType=STORAGE))
    with pytest.raises(vmodl.fault.SecurityError):
        editor.PbmCreate(createSpec=_create_spec("vcrypt-enc-denied", DATA_SERVICE_NS, fake_pbm.DATA_SERVICE_POLICY_ID))
    assert len(editor.PbmQueryProfile(resourceType=STORAGE)) == before     # refused: nothing created
    created = editor.PbmCreate(createSpec=_create_spec("vcrypt-plain-allowed", "VSAN", "stripeWidth"))
    editor.PbmDelete(profileId=[created])

