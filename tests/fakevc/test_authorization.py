"""Access control through plain pyVmomi: built-in roles, custom roles, permissions on the
inventory, privilege queries, enforced privileges (PRIV-DECRYPT), audit listings (PRIV-AUDIT),
and their seeded defects."""
from __future__ import annotations

import itertools
from typing import Any, Iterator

import pytest
from pyVmomi import vim, vmodl

from harness.targets.environment import Environment
from harness.vsphere import authz
from tests.fakevc.conftest import make_vm, wait
from tests.fakevc.test_hosts_key_push import decrypt, encrypt
from tests.fakevc.test_plumbing import ADMIN, cluster_of, fresh_fake, login

DECRYPT = "Cryptographer.Decrypt"
CRYPTO_PRIVILEGES = {"Cryptographer.Access", "Cryptographer.AddDisk", "Cryptographer.Clone", DECRYPT,
                     "Cryptographer.Encrypt", "Cryptographer.EncryptNew", "Cryptographer.ManageEncryptionPolicy",
                     "Cryptographer.ManageKeyServers", "Cryptographer.ManageKeys", "Cryptographer.Migrate",
                     "Cryptographer.ReadKeyServersInfo", "Cryptographer.Recrypt", "Cryptographer.RegisterHost",
                     "Cryptographer.RegisterVM"}
_users = itertools.count(1)


class Fake:
    """A private fake vCenter with helpers to add users and grant roles (arranging only)."""

    def __init__(self, world: Any, si: Any) -> None:
        self.world, self.si = world, si
        self.name = next(iter(world.vcenters))
        self.am = si.content.authorizationManager

    def user(self, groups: list[str] | None = None) -> str:
        name = f"user{next(_users)}@vsphere.local"
        self.world.vcenters[self.name].add_user(name, "pw", groups)
        return name

    def role(self, privileges: list[str]) -> int:
        return self.am.AddAuthorizationRole(name=f"role-{next(_users)}", privIds=privileges)

    def grant(self, entity: Any, principal: str, role_id: int, propagate: bool = True, group: bool = False) -> None:
        self.am.SetEntityPermissions(entity=entity, permission=[vim.AuthorizationManager.Permission(
            principal=principal, group=group, roleId=role_id, propagate=propagate)])

    def session(self, user: str) -> Any:
        return login(self.world, self.name, user, "pw")

    def all_but(self, *missing: str) -> list[str]:
        return [p.privId for p in self.am.privilegeList if p.privId not in missing]


@pytest.fixture(scope="module")
def fake(env: Environment) -> Iterator[Fake]:
    with fresh_fake(env, vms=1) as (world, si):
        yield Fake(world, si)


def _as(si: Any, obj: Any) -> Any:
    """The same managed object, seen through another session's stub."""
    return type(obj)(obj._moId, si._stub)


# ---- roles and privileges --------------------------------------------------------------------------
def test_built_in_roles(fake: Fake) -> None:
    roles = {r.name: r for r in fake.am.roleList}
    assert {"Admin", "ReadOnly", "View", "Anonymous", "NoAccess", "NoCryptoAdmin", "TrustedAdmin",
            "NoTrustedAdmin"} <= set(roles)
    assert all(r.system for r in roles.values())
    assert roles["Admin"].roleId == -1 and CRYPTO_PRIVILEGES <= set(roles["Admin"].privilege)
    assert not [p for p in roles["NoCryptoAdmin"].privilege if p.startswith("Cryptographer.")]
    assert "Global.Diagnostics" not in roles["NoCryptoAdmin"].privilege
    assert "VirtualMachine.Config.Settings" in roles["NoCryptoAdmin"].privilege
    assert set(roles["ReadOnly"].privilege) == {"System.Anonymous", "System.Read", "System.View"}
    assert roles["NoAccess"].privilege == []
    assert roles["NoCryptoAdmin"].info.label == "No cryptography administrator"


def test_privilege_list_has_every_cryptographer_privilege(fake: Fake) -> None:
    listed = {p.privId: p for p in fake.am.privilegeList}
    assert CRYPTO_PRIVILEGES <= set(listed)
    assert listed[DECRYPT].privGroupName == "Cryptographer" and listed[DECRYPT].name == "Decrypt"
    assert "VirtualMachine.Interact.PowerOn" in listed and "System.View" in listed


def test_custom_role_lifecycle(fake: Fake) -> None:
    role_id = fake.am.AddAuthorizationRole(name="vcrypt-decryptors", privIds=[DECRYPT])
    role = {r.roleId: r for r in fake.am.roleList}[role_id]
    assert not role.system and role.name == "vcrypt-decryptors"
    assert set(role.privilege) == {DECRYPT, "System.Anonymous", "System.Read", "System.View"}
    with pytest.raises(vim.fault.AlreadyExists):
        fake.am.AddAuthorizationRole(name="vcrypt-decryptors", privIds=[])
    with pytest.raises(vmodl.fault.InvalidArgument):
        fake.am.AddAuthorizationRole(name="vcrypt-bogus", privIds=["Cryptographer.Bogus"])
    assert "vcrypt-bogus" not in {r.name for r in fake.am.roleList}
    fake.am.UpdateAuthorizationRole(roleId=role_id, newName="vcrypt-recrypters", privIds=["Cryptographer.Recrypt"])
    role = {r.roleId: r for r in fake.am.roleList}[role_id]
    assert role.name == "vcrypt-recrypters" and DECRYPT not in role.privilege
    with pytest.raises(vmodl.fault.InvalidArgument):
        fake.am.UpdateAuthorizationRole(roleId=-1, newName="Admin", privIds=[])
    with pytest.raises(vmodl.fault.InvalidArgument):
        fake.am.RemoveAuthorizationRole(roleId=-6, failIfUsed=False)
    user = fake.user()
    fake.grant(fake.si.content.rootFolder, user, role_id)
    with pytest.raises(vim.fault.RemoveFailed):
        fake.am.RemoveAuthorizationRole(roleId=role_id, failIfUsed=True)
    assert role_id in {r.roleId for r in fake.am.roleList}
    assert fake.am.RetrieveRolePermissions(roleId=role_id)             # refused: grant still there
    fake.am.RemoveAuthorizationRole(roleId=role_id, failIfUsed=False)
    assert role_id not in {r.roleId for r in fake.am.roleList}
    assert not [p for p in fake.am.RetrieveAllPermissions() if p.roleId == role_id]
    with pytest.raises(vim.fault.NotFound):
        fake.am.RetrieveRolePermissions(roleId=role_id)


# ---- permissions ---------------------------------------------------------------------------------
def test_administrator_holds_admin_on_the_root_folder(fake: Fake) -> None:
    root = fake.si.content.rootFolder
    [perm] = [p for p in fake.am.RetrieveEntityPermissions(entity=root, inherited=False)]
    assert perm.principal == "VSPHERE.LOCAL\\administrator" and perm.roleId == -1 and perm.propagate
    assert [(p.principal, p.roleId) for p in root.permission] == [(perm.principal, -1)]


def test_set_retrieve_and_remove_permissions(fake: Fake) -> None:
    dc = fake.si.content.rootFolder.childEntity[0]
    user = fake.user()
    role_id = fake.role(["VirtualMachine.Interact.PowerOn"])
    fake.grant(dc, user, role_id)
    listed = [(p.principal, p.roleId, p.entity) for p in fake.am.RetrieveAllPermissions()]
    assert (user, role_id, dc) in listed
    assert [p.principal for p in fake.am.RetrieveRolePermissions(roleId=role_id)] == [user]
    machine = dc.vmFolder.childEntity[0]
    inherited = fake.am.RetrieveEntityPermissions(entity=machine, inherited=True)
    assert {p.principal for p in inherited} >= {user, "VSPHERE.LOCAL\\administrator"}
    assert fake.am.RetrieveEntityPermissions(entity=machine, inherited=False) == []
    fake.grant(dc, user, -2)                                   # same principal: replaced, not added
    assert [p.roleId for p in fake.am.RetrieveEntityPermissions(entity=dc, inherited=False)] == [-2]
    fake.am.RemoveEntityPermission(entity=dc, user=user, isGroup=False)
    assert fake.am.RetrieveEntityPermissions(entity=dc, inherited=False) == []
    with pytest.raises(vim.fault.NotFound):
        fake.am.RemoveEntityPermission(entity=dc, user=user, isGroup=False)


def test_permission_refusals_change_nothing(fake: Fake) -> None:
    root = fake.si.content.rootFolder
    before = [(p.principal, p.roleId) for p in fake.am.RetrieveAllPermissions()]
    with pytest.raises(vim.fault.UserNotFound):
        fake.grant(root, "ghost@vsphere.local", -2)
    with pytest.raises(vim.fault.NotFound):
        fake.grant(root, fake.user(), 987654)
    with pytest.raises(vmodl.fault.InvalidArgument):
        fake.grant(root, fake.user(), -3)                      # View cannot be granted
    with pytest.raises(vim.fault.AuthMinimumAdminPermission):
        fake.am.RemoveEntityPermission(entity=root, user="VSPHERE.LOCAL\\administrator", isGroup=False)
    with pytest.raises(vim.fault.AuthMinimumAdminPermission):
        fake.am.ResetEntityPermissions(entity=root, permission=[])
    assert [(p.principal, p.roleId) for p in fake.am.RetrieveAllPermissions()] == before


def test_permissions_propagate_down_the_inventory(fake: Fake) -> None:
    dc = fake.si.content.rootFolder.childEntity[0]
    machine = dc.vmFolder.childEntity[0]
    host = cluster_of(fake.si).host[0]
    power = "VirtualMachine.Interact.PowerOn"
    propagating, local_only = fake.user(), fake.user()
    role_id = fake.role([power])
    fake.grant(dc, propagating, role_id, propagate=True)
    fake.grant(dc, local_only, role_id, propagate=False)
    result = fake.am.HasUserPrivilegeOnEntities(entities=[dc, machine, host], userName=propagating, privId=[power])
    assert [r.privAvailability[0].isGranted for r in result] == [True, True, True]
    result = fake.am.HasUserPrivilegeOnEntities(entities=[dc, machine], userName=local_only, privId=[power])
    assert [r.privAvailability[0].isGranted for r in result] == [True, False]
    fake.grant(machine, propagating, -5)                       # NoAccess nearer the VM wins
    [on_vm] = fake.am.HasUserPrivilegeOnEntities(entities=[machine], userName=propagating, privId=[power])
    assert on_vm.privAvailability[0].isGranted is False
    [fetched] = fake.am.FetchUserPrivilegeOnEntities(entities=[dc], userName=propagating)
    assert power in fetched.privileges and DECRYPT not in fetched.privileges


def test_group_grants_and_user_grants(fake: Fake) -> None:
    dc = fake.si.content.rootFolder.childEntity[0]
    member = fake.user(groups=["VSPHERE.LOCAL\\CryptoOps"])
    fake.grant(dc, "VSPHERE.LOCAL\\CryptoOps", fake.role([DECRYPT]), group=True)
    [granted] = fake.am.HasUserPrivilegeOnEntities(entities=[dc], userName=member, privId=[DECRYPT])
    assert granted.privAvailability[0].isGranted
    fake.grant(dc, member, -2)                                 # a user permission beats the group's
    [granted] = fake.am.HasUserPrivilegeOnEntities(entities=[dc], userName=member, privId=[DECRYPT])
    assert not granted.privAvailability[0].isGranted
    with pytest.raises(vim.fault.UserNotFound):
        fake.grant(dc, "VSPHERE.LOCAL\\NoSuchGroup", -2, group=True)


def test_has_privilege_on_entities_by_session(fake: Fake) -> None:
    dc = fake.si.content.rootFolder.childEntity[0]
    user = fake.user()
    fake.grant(dc, user, -2)
    session = fake.session(user).content.sessionManager.currentSession.key
    [result] = fake.am.HasPrivilegeOnEntities(entity=[dc], sessionId=session, privId=["System.Read", DECRYPT])
    assert [(a.privId, a.isGranted) for a in result.privAvailability] == [("System.Read", True), (DECRYPT, False)]
    [unknown] = fake.am.HasPrivilegeOnEntities(entity=[dc], sessionId="no-such-session", privId=["System.Read"])
    assert unknown.privAvailability[0].isGranted is False
    admin_key = fake.si.content.sessionManager.currentSession.key
    assert fake.am.HasPrivilegeOnEntity(entity=dc, sessionId=admin_key, privId=[DECRYPT]) == [True]


def test_method_privileges_are_enforced(fake: Fake) -> None:
    """A read-only user is refused PowerOnVM_Task with NoPermission naming the privilege; the VM
    stays off. Role changes are refused without Authorization.ModifyRoles."""
    machine = make_vm(fake.si)
    try:
        user = fake.user()
        fake.grant(fake.si.content.rootFolder, user, -2)
        reader = fake.session(user)
        with pytest.raises(vim.fault.NoPermission) as err:
            _as(reader, machine).PowerOnVM_Task()
        assert err.value.privilegeId == "VirtualMachine.Interact.PowerOn" and err.value.object == machine
        assert machine.runtime.powerState == "poweredOff"
        with pytest.raises(vim.fault.NoPermission):
            reader.content.authorizationManager.AddAuthorizationRole(name="sneaky", privIds=[DECRYPT])
        assert "sneaky" not in {r.name for r in fake.am.roleList}
        with pytest.raises(vim.fault.NoPermission):
            reader.content.authorizationManager.SetEntityPermissions(
                entity=_as(reader, fake.si.content.rootFolder),
                permission=[vim.AuthorizationManager.Permission(principal=user, group=False, roleId=-1, propagate=True)])
    finally:
        wait(machine.Destroy_Task())


# ---- PRIV-DECRYPT ---------------------------------------------------------------------------------
def _decrypt_as(fake: Fake, privileges: list[str], machine: Any) -> Any:
    user = fake.user()
    fake.grant(fake.si.content.rootFolder, user, fake.role(privileges))
    return _as(fake.session(user), machine)


def test_decrypt_needs_the_decrypt_privilege(fake: Fake) -> None:
    machine = make_vm(fake.si)
    key = encrypt(fake.si, machine)
    try:
        theirs = _decrypt_as(fake, fake.all_but(DECRYPT), machine)
        with pytest.raises(vim.fault.NoPermission) as err:
            decrypt(theirs)
        assert err.value.privilegeId == DECRYPT
        assert machine.config.keyId.keyId == key
        assert all(d.backing.keyId.keyId == key for d in machine.config.hardware.device
                   if isinstance(d, vim.vm.device.VirtualDisk))
        allowed = _decrypt_as(fake, fake.all_but(), machine)
        decrypt(allowed)
        assert machine.config.keyId is None
    finally:
        wait(machine.Destroy_Task())


def test_no_crypto_admin_cannot_decrypt(fake: Fake) -> None:
    machine = make_vm(fake.si)
    key = encrypt(fake.si, machine)
    try:
        user = fake.user()
        fake.grant(fake.si.content.rootFolder, user, authz.role_id(_Client(fake.si), "NoCryptoAdmin"))
        with pytest.raises(vim.fault.NoPermission):
            decrypt(_as(fake.session(user), machine))
        assert machine.config.keyId.keyId == key
    finally:
        wait(machine.Destroy_Task())


class _Client:
    """The minimal client surface harness.vsphere.authz reads through (content + read)."""

    def __init__(self, si: Any) -> None:
        self.content = si.content
        self.name = "fake"

    def read(self, obj: Any, paths: list[str]) -> dict[str, Any]:
        return {p: getattr(obj, p) for p in paths}

    def invoke(self, obj: Any, method: str, **kwargs: Any) -> Any:
        return getattr(obj, method)(**kwargs)


# ---- PRIV-AUDIT ----------------------------------------------------------------------------------
def test_audit_lists_every_decrypt_role_and_principal(fake: Fake) -> None:
    user = fake.user()
    role_id = fake.am.AddAuthorizationRole(name="vcrypt-audit-decryptors", privIds=[DECRYPT])
    fake.grant(fake.si.content.rootFolder.childEntity[0], user, role_id)
    grants = {g.role: g for g in authz.roles_with(_Client(fake.si), DECRYPT)}
    assert "vcrypt-audit-decryptors" in grants and user in grants["vcrypt-audit-decryptors"].principals
    assert "VSPHERE.LOCAL\\administrator" in grants["Admin"].principals
    assert "NoCryptoAdmin" not in grants


# ---- seeded defects ----------------------------------------------------------------------------
def test_defect_priv_decrypt_bypass(env: Environment) -> None:
    with fresh_fake(env, defects=["priv-decrypt-bypass"], vms=0) as (world, si):
        fake = Fake(world, si)
        machine = make_vm(si)
        encrypt(si, machine)
        decrypt(_decrypt_as(fake, fake.all_but(DECRYPT), machine))
        assert machine.config.keyId is None


def test_defect_priv_decrypt_half(env: Environment) -> None:
    with fresh_fake(env, defects=["priv-decrypt-half"], vms=0) as (world, si):
        fake = Fake(world, si)
        machine = make_vm(si)
        encrypt(si, machine)
        with pytest.raises(vim.fault.NoPermission):
            decrypt(_decrypt_as(fake, fake.all_but(DECRYPT), machine))
        assert machine.config.keyId is None          # refused, yet decrypted


def test_defect_priv_audit_hidden_role(env: Environment) -> None:
    with fresh_fake(env, defects=["priv-audit-hidden-role"], vms=0) as (world, si):
        fake = Fake(world, si)
        role_id = fake.am.AddAuthorizationRole(name="vcrypt-hidden", privIds=[DECRYPT])
        assert role_id not in {r.roleId for r in fake.am.roleList}


def test_defect_priv_audit_hidden_principal(env: Environment) -> None:
    with fresh_fake(env, defects=["priv-audit-hidden-principal"], vms=0) as (world, si):
        fake = Fake(world, si)
        user = fake.user()
        role_id = fake.am.AddAuthorizationRole(name="vcrypt-hidden-grant", privIds=[DECRYPT])
        fake.grant(si.content.rootFolder, user, role_id)
        assert user not in {p.principal for p in fake.am.RetrieveAllPermissions()}
        assert ADMIN.split("@")[0] in {p.principal.split("\\")[-1] for p in fake.am.RetrieveAllPermissions()}


def test_defect_priv_audit_hides_groups(env: Environment) -> None:
    """Group permissions vanish from the listings; user permissions stay (only a group instance catches it)."""
    with fresh_fake(env, defects=["priv-audit-hides-groups"], vms=0) as (world, si):
        fake = Fake(world, si)
        user = fake.user(groups=["decryptors@vsphere.local"])
        role_id = fake.am.AddAuthorizationRole(name="vcrypt-group-grant", privIds=[DECRYPT])
        fake.grant(si.content.rootFolder, "decryptors@vsphere.local", role_id, group=True)
        fake.grant(si.content.rootFolder, user, role_id)
        listed = {(p.principal, p.group) for p in fake.am.RetrieveAllPermissions()}
        assert (user, False) in listed and not [p for p in listed if p[1]]
        assert not [p for p in fake.am.RetrieveRolePermissions(roleId=role_id) if p.group]
