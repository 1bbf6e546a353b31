"""AuthorizationManager: roles, privileges, permissions on the inventory, and privilege checks.

Why it exists: PRIV-DECRYPT needs a vCenter that really refuses a user without
`Cryptographer.Decrypt`, and PRIV-AUDIT needs role and permission listings an audit can trust.
Semantics follow vSphere: a permission (principal, role, propagate) sits on an entity; for a
user, the nearest entity up the inventory (ManagedEntity.ancestors()) that carries a permission
for that user decides (a user permission beats group permissions on the same entity, group
permissions on one entity add up); non-propagating permissions apply to their entity only.
Admin (-1) holds every privilege. The inventory's administrator holds Admin on the root folder.

Users: a real vCenter's users come from SSO, which the vSphere API cannot create, so suites
need an inventory-provided second user on real targets. The fake adds local users through
the plain-Python test hook `FakeVCenter.add_user(name, password, groups)`.
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field
from typing import Any, Iterable

from pyVmomi import pbm, vim, vmodl

from harness.fakevc.defects import defect
from harness.fakevc.model.base import MO, CallContext, ManagedEntity
from harness.principals import canonical

DECRYPT = "Cryptographer.Decrypt"

PRIV_DECRYPT_BYPASS = defect(
    "priv-decrypt-bypass", "PRIV-DECRYPT",
    "privilege checks let a user without Cryptographer.Decrypt decrypt a VM")
PRIV_DECRYPT_HALF = defect(
    "priv-decrypt-half", "PRIV-DECRYPT",
    "NoPermission for Cryptographer.Decrypt is raised only after the operation already ran "
    "(the call or task fails, the VM is decrypted anyway)", half_applied=True)
PRIV_AUDIT_HIDDEN_ROLE = defect(
    "priv-audit-hidden-role", "PRIV-AUDIT",
    "roleList hides custom roles that hold Cryptographer.Decrypt")
PRIV_AUDIT_HIDDEN_PRINCIPAL = defect(
    "priv-audit-hidden-principal", "PRIV-AUDIT",
    "permission listings omit principals granted a custom role that holds Cryptographer.Decrypt")
PRIV_AUDIT_HIDES_GROUPS = defect(
    "priv-audit-hides-groups", "PRIV-AUDIT",
    "permission listings omit permissions granted to a group (Permission.group), so a group holding "
    "Cryptographer.Decrypt is never listed")

# The privilege catalogue: group -> privilege names (a vSphere 7 subset covering every method
# the fake serves; the API ids are "<group>.<name>").
_CATALOGUE: dict[str, str] = {
    "Alarm": "Acknowledge Create Delete DisableActions Edit SetStatus ToggleEnableOnEntity",
    "Authorization": "ModifyPermissions ModifyPrivileges ModifyRoles ReassignRolePermissions",
    "Certificate": "Manage",
    "Cns": "Searchable",
    "ContentLibrary": "AddLibraryItem CreateLocalLibrary DeleteLibraryItem DeleteLocalLibrary ReadStorage "
                      "UpdateLibraryItem",
    "Cryptographer": "Access AddDisk Clone Decrypt Encrypt EncryptNew ManageEncryptionPolicy ManageKeyServers "
                     "ManageKeys Migrate ReadKeyServersInfo Recrypt RegisterHost RegisterVM",
    "DVPortgroup": "Create Delete Modify PolicyOp ScopeOp",
    "DVSwitch": "Create Delete HostOp Modify Move PolicyOp PortConfig PortSetting ResourceManagement Vspan",
    "Datacenter": "Create Delete IpPoolConfig IpPoolQueryAllocations IpPoolReleaseIp Move Reconfigure Rename",
    "Datastore": "AllocateSpace Browse Config ConfigIOManagement Delete DeleteFile FileManagement Move Rename "
                 "UpdateVirtualMachineFiles UpdateVirtualMachineMetadata",
    "Extension": "Register Unregister Update",
    "Folder": "Create Delete Move Rename",
    "Global": "CancelTask CapacityPlanning Diagnostics DisableMethods EnableMethods GlobalTag Health Licenses "
              "LogEvent ManageCustomFields Proxy ScriptAction ServiceManagers SetCustomField Settings SystemTag "
              "VCServer",
    "Host.Cim": "CimInteraction",
    "Host.Config": "AdvancedConfig AuthenticationStore AutoStart Connection DateTime Firmware HyperThreading "
                   "Image Maintenance Memory NetService Network Nvdimm Patch PciPassthru Power ProductLocker "
                   "Quarantine Resources Settings Snmp Storage SystemManagement",
    "Host.Inventory": "AddHostToCluster AddStandaloneHost CreateCluster DeleteCluster EditCluster MoveCluster "
                      "MoveHost RemoveHostFromCluster RenameCluster",
    "Host.Local": "CreateVM DeleteVM InstallAgent ManageUserGroups ReconfigVM",
    "Host.Tpm": "Read Unseal",
    "Network": "Assign Config Delete Move",
    "Performance": "ModifyIntervals",
    "Profile": "Clear Create Delete Edit Export View",
    "Resource": "ApplyRecommendation AssignVAppToPool AssignVMToPool ColdMigrate CreatePool DeletePool "
                "EditPool HotMigrate MovePool QueryVMotion RenamePool",
    "ScheduledTask": "Create Delete Edit Run",
    "Sessions": "GlobalMessage ImpersonateUser TerminateSession ValidateSession",
    "StoragePod": "Config",
    "StorageProfile": "Apply Update View",
    "StorageViews": "ConfigureService View",
    "System": "Anonymous Read View",
    "Task": "Create Update",
    "TrustedAdmin": "ConfigureHostCertificates ConfigureHostMetadata ConfigureTokenConversionPolicy "
                    "ManageAttestingSSO ManageKMSTrust ManageTrustedHosts ReadAttestingSSO ReadKMSTrust "
                    "ReadStsInfo ReadTrustedHosts RetrieveHostMetadata RetrieveTPMHostCertificates",
    "VApp": "ApplicationConfig AssignResourcePool AssignVApp AssignVM Clone Create Delete Export Import "
            "InstanceConfig Move PowerOff PowerOn Rename ResourceConfig Suspend Unregister",
    "VirtualMachine.Config": "AddExistingDisk AddNewDisk AddRemoveDevice AdvancedConfig Annotation CPUCount "
                             "ChangeTracking DiskExtend DiskLease EditDevice HostUSBDevice ManagedBy Memory "
                             "MksControl QueryFTCompatibility QueryUnownedFiles RawDevice ReloadFromPath "
                             "RemoveDisk Rename ResetGuestInfo Resource Settings SwapPlacement ToggleForkParent "
                             "UpgradeVirtualHardware",
    "VirtualMachine.GuestOperations": "Execute Modify ModifyAliases Query QueryAliases",
    "VirtualMachine.Interact": "AnswerQuestion Backup ConsoleInteract CreateScreenshot CreateSecondary "
                               "DefragmentAllDisks DeviceConnection DisableSecondary DnD EnableSecondary "
                               "GuestControl MakePrimary Pause PowerOff PowerOn PutUsbScanCodes Record Replay "
                               "Reset SESparseMaintenance SetCDMedia SetFloppyMedia Suspend "
                               "TerminateFaultTolerantVM ToolsInstall TurnOffFaultTolerance",
    "VirtualMachine.Inventory": "Create CreateFromExisting Delete Move Register Unregister",
    "VirtualMachine.Provisioning": "Clone CloneTemplate CreateTemplateFromVM Customize DeployTemplate "
                                   "DiskRandomAccess DiskRandomRead FileRandomAccess GetVmFiles MarkAsTemplate "
                                   "MarkAsVM ModifyCustSpecs PromoteDisks PutVmFiles ReadCustSpecs",
    "VirtualMachine.State": "CreateSnapshot RemoveSnapshot RenameSnapshot RevertToSnapshot",
}
ALL_PRIVILEGES: tuple[str, ...] = tuple(sorted(f"{group}.{name}" for group, names in _CATALOGUE.items()
                                               for name in names.split()))
SYSTEM_PRIVILEGES = ("System.Anonymous", "System.Read", "System.View")
# Privileges every logged-in session holds implicitly (what the fake never enforces).
IMPLICIT = frozenset(SYSTEM_PRIVILEGES)
_NO_CRYPTO_EXTRA = {"Global.Diagnostics", "Host.Inventory.AddHostToCluster", "Host.Inventory.AddStandaloneHost",
                    "Host.Local.ManageUserGroups"}


def _without(*prefixes: str, extra: Iterable[str] = ()) -> list[str]:
    dropped = set(extra)
    return [p for p in ALL_PRIVILEGES if not p.startswith(prefixes) and p not in dropped]


ADMIN_ROLE = -1
NO_ACCESS_ROLE = -5
_NOT_GRANTABLE = {-3: "View", -4: "Anonymous"}
_BUILTIN_ROLES: list[tuple[int, str, str, str, list[str]]] = [
    (-1, "Admin", "Administrator", "Full access rights", list(ALL_PRIVILEGES)),
    (-2, "ReadOnly", "Read-only", "See details of objects, but not make changes", list(SYSTEM_PRIVILEGES)),
    (-3, "View", "View", "Visibility access (cannot be granted)", ["System.Anonymous", "System.View"]),
    (-4, "Anonymous", "Anonymous", "Not logged-in user (cannot be granted)", ["System.Anonymous"]),
    (-5, "NoAccess", "No access", "Used for restricting granted access", []),
    (-6, "NoCryptoAdmin", "No cryptography administrator",
     "Full access without Cryptographic operations and Trusted Infrastructure privileges",
     _without("Cryptographer.", "TrustedAdmin.", "Host.Tpm.", extra=_NO_CRYPTO_EXTRA)),
    (-7, "TrustedAdmin", "Trusted Infrastructure administrator", "Setup and monitoring of Trusted Infrastructure",
     sorted(["Host.Tpm.Read", "Host.Tpm.Unseal", *SYSTEM_PRIVILEGES,
             *(p for p in ALL_PRIVILEGES if p.startswith("TrustedAdmin."))])),
    (-8, "NoTrustedAdmin", "No Trusted Infrastructure administrator",
     "Full access without Trusted Infrastructure privileges", _without("TrustedAdmin.", "Host.Tpm.")),
]


@dataclass
class Role:
    role_id: int
    name: str
    label: str
    summary: str
    privileges: set[str]
    system: bool = False

    def to_vim(self) -> Any:
        return vim.AuthorizationManager.Role(
            roleId=self.role_id, system=self.system, name=self.name,
            info=vim.Description(label=self.label, summary=self.summary), privilege=sorted(self.privileges))


@dataclass
class Grant:
    """One permission on one entity."""
    entity: ManagedEntity
    principal: str
    group: bool
    role_id: int
    propagate: bool

    def to_vim(self) -> Any:
        return vim.AuthorizationManager.Permission(entity=self.entity.ref, principal=self.principal,
                                                   group=self.group, roleId=self.role_id, propagate=self.propagate)


@dataclass
class _Principal:
    """A user as the permission check sees it: its canonical name and its groups."""
    name: str
    groups: list[str] = field(default_factory=list)


def display_name(user: str) -> str:
    """How vCenter prints a principal in permissions and sessions: `VSPHERE.LOCAL\\name`."""
    if "@" in user:
        name, _, domain = user.partition("@")
        return f"{domain.upper()}\\{name}"
    return user


def _no_permission(entity: MO, privilege: str, user: str) -> vim.fault.NoPermission:
    return vim.fault.NoPermission(
        object=entity.ref, privilegeId=privilege,
        msg=f"Permission to perform this operation was denied. User {display_name(user)} lacks "
            f"privilege '{privilege}' on {getattr(entity, 'name', entity.moid)}.")


class AuthorizationManager(MO):
    vim_type = vim.AuthorizationManager
    moid_prefix = "AuthorizationManager"

    def __init__(self, vc: Any, moid: str | None = None) -> None:
        super().__init__(vc, moid)
        self.roles: dict[int, Role] = {
            rid: Role(rid, name, label, summary, set(privs), system=True)
            for rid, name, label, summary, privs in _BUILTIN_ROLES}
        self._role_ids = itertools.count(1)
        self.grants: list[Grant] = []
        root = getattr(vc, "root", None)
        if root is not None:
            for user in vc.users.values():  # the inventory's administrator
                self.grants.append(Grant(root, display_name(user.name), False, ADMIN_ROLE, True))

    # ---- the check other modules call ---------------------------------------------------------
    def require(self, ctx: CallContext, entity: MO | None, privilege: str) -> None:
        """Raise vim.fault.NoPermission unless the caller holds `privilege` on `entity`.

        Internal calls (no session) pass. Non-entity objects (managers) are checked on the root
        folder, as vCenter does. Under the `priv-decrypt-half` defect a missing Decrypt privilege
        is recorded on the call context instead; the dispatcher raises it after the method ran.
        """
        if ctx is None or ctx.session is None or privilege in IMPLICIT:
            return
        target = entity if isinstance(entity, ManagedEntity) else self.vc.root
        if self.has_privilege(ctx.session.user, target, privilege):
            return
        if privilege == DECRYPT and self.vc.world.defects.on(PRIV_DECRYPT_BYPASS):
            return
        fault = _no_permission(entity if entity is not None else target, privilege, ctx.session.user)
        if privilege == DECRYPT and self.vc.world.defects.on(PRIV_DECRYPT_HALF):
            ctx.deferred_fault = fault  # type: ignore[attr-defined]  # raised by dispatch.invoke
            return
        raise fault

    def require_method(self, ctx: CallContext, mo: MO, privileges: str | None) -> None:
        """The privilege a method's VMODL declaration names (space-separated when several).

        Privileges outside the fake's catalogue are not enforced: the fake cannot grant them.
        """
        for privilege in (privileges or "").split():
            if privilege not in _KNOWN:
                continue
            if getattr(mo, "endpoint", "vim") == "pbm":   # PBM reports its own fault class
                try:
                    self.require(ctx, None, privilege)
                except vim.fault.NoPermission as fault:
                    raise pbm.fault.NoPermission(msg=fault.msg) from None
            else:
                self.require(ctx, mo, privilege)

    # ---- resolution --------------------------------------------------------------------------
    def _principal(self, user_name: str) -> _Principal:
        user = self.vc.users.get(canonical(user_name)) or self.vc.users.get((user_name or "").lower())
        groups = list(getattr(user, "groups", []) or []) if user else []
        return _Principal(canonical(user_name), [canonical(g) for g in groups])

    def _grants_on(self, entity: MO) -> list[Grant]:
        return [g for g in self.grants if g.entity is entity]

    def roles_of(self, user_name: str, entity: ManagedEntity) -> list[int]:
        """The roles that decide the user's privileges on `entity` (nearest permission wins)."""
        who = self._principal(user_name)
        for depth, node in enumerate(entity.ancestors()):
            grants = [g for g in self._grants_on(node) if depth == 0 or g.propagate]
            direct = [g.role_id for g in grants if not g.group and canonical(g.principal) == who.name]
            if direct:
                return direct[:1]
            via_groups = [g.role_id for g in grants if g.group and canonical(g.principal) in who.groups]
            if via_groups:
                return via_groups
        return []

    def has_privilege(self, user_name: str, entity: ManagedEntity, privilege: str) -> bool:
        """Admin holds every privilege, also ones outside the fake's catalogue."""
        roles = self.roles_of(user_name, entity)
        return ADMIN_ROLE in roles or privilege in self.privileges_of(user_name, entity)

    def privileges_of(self, user_name: str, entity: ManagedEntity) -> set[str]:
        privileges: set[str] = set()
        for role_id in self.roles_of(user_name, entity):
            if role_id == ADMIN_ROLE:
                return set(_KNOWN)
            role = self.roles.get(role_id)
            if role:
                privileges |= role.privileges
        return privileges

    def permissions_on(self, entity: MO) -> list:
        """ManagedEntity.permission: the permissions defined on this entity itself."""
        return [g.to_vim() for g in self._listed(self._grants_on(entity))]

    def _listed(self, grants: list[Grant]) -> list[Grant]:
        """What permission listings show (the PRIV-AUDIT defects hide some principals)."""
        if self.vc.world.defects.on(PRIV_AUDIT_HIDES_GROUPS):
            grants = [g for g in grants if not g.group]
        if not self.vc.world.defects.on(PRIV_AUDIT_HIDDEN_PRINCIPAL):
            return grants
        return [g for g in grants if not self._custom_decrypt_role(g.role_id)]

    def _custom_decrypt_role(self, role_id: int) -> bool:
        role = self.roles.get(role_id)
        return bool(role and not role.system and DECRYPT in role.privileges)

    # ---- properties --------------------------------------------------------------------------
    def p_privilegeList(self) -> list:
        return _privilege_objects()

    def p_roleList(self) -> list:
        roles = sorted(self.roles.values(), key=lambda r: r.role_id)
        if self.vc.world.defects.on(PRIV_AUDIT_HIDDEN_ROLE):
            roles = [r for r in roles if not self._custom_decrypt_role(r.role_id)]
        return [r.to_vim() for r in roles]

    def p_description(self) -> Any:
        groups = sorted({p.rpartition(".")[0] for p in ALL_PRIVILEGES})
        return vim.AuthorizationDescription(
            privilege=[vim.ElementDescription(key=p, label=p.rpartition(".")[2], summary=p) for p in ALL_PRIVILEGES],
            privilegeGroup=[vim.ElementDescription(key=g, label=g, summary=g) for g in groups])

    # ---- roles -------------------------------------------------------------------------------
    def _role(self, role_id: int) -> Role:
        role = self.roles.get(role_id)
        if role is None:
            raise vim.fault.NotFound(msg=f"The role {role_id} was not found.")
        return role

    def _check_privileges(self, priv_ids: list[str] | None) -> set[str]:
        unknown = sorted(set(priv_ids or []) - set(ALL_PRIVILEGES))
        if unknown:
            raise vmodl.fault.InvalidArgument(invalidProperty="privIds",
                                              msg=f"A specified parameter was not correct: privIds ({unknown[0]})")
        return set(priv_ids or []) | set(SYSTEM_PRIVILEGES)  # vCenter adds the system privileges to every role

    def _check_name(self, name: str, exclude: int | None = None) -> None:
        if not (name or "").strip():
            raise vmodl.fault.InvalidArgument(invalidProperty="name", msg="A specified parameter was not correct: name")
        if any(r.name.lower() == name.lower() and r.role_id != exclude for r in self.roles.values()):
            raise vim.fault.AlreadyExists(name=name, msg=f"The specified key, name, or identifier '{name}' already exists.")

    def _modifiable(self, role_id: int) -> Role:
        role = self._role(role_id)
        if role.system:
            raise vmodl.fault.InvalidArgument(invalidProperty="roleId",
                                              msg=f"A specified parameter was not correct: roleId (system role {role.name})")
        return role

    def AddAuthorizationRole(self, ctx: CallContext, name: str, privIds: list[str] | None = None) -> int:
        self._check_name(name)
        privileges = self._check_privileges(privIds)
        role_id = next(self._role_ids)
        while role_id in self.roles:
            role_id = next(self._role_ids)
        self.roles[role_id] = Role(role_id, name, name, name, privileges)
        return role_id

    def UpdateAuthorizationRole(self, ctx: CallContext, roleId: int, newName: str,
                                privIds: list[str] | None = None) -> None:
        role = self._modifiable(roleId)
        self._check_name(newName, exclude=roleId)
        privileges = self._check_privileges(privIds) if privIds is not None else role.privileges
        role.name = role.label = role.summary = newName
        role.privileges = privileges

    def RemoveAuthorizationRole(self, ctx: CallContext, roleId: int, failIfUsed: bool) -> None:
        role = self._modifiable(roleId)
        used = [g for g in self.grants if g.role_id == roleId]
        if used and failIfUsed:
            raise vim.fault.RemoveFailed(msg=f"The role '{role.name}' is used by {len(used)} permission(s).")
        self.grants = [g for g in self.grants if g.role_id != roleId]
        del self.roles[roleId]

    def MergePermissions(self, ctx: CallContext, srcRoleId: int, dstRoleId: int) -> None:
        self._modifiable(srcRoleId)
        self._role(dstRoleId)
        for grant in self.grants:
            if grant.role_id == srcRoleId:
                grant.role_id = dstRoleId

    # ---- permissions -------------------------------------------------------------------------
    def _entity(self, ref: Any) -> ManagedEntity:
        return self.vc.lookup(ref)

    def _known_principal(self, principal: str, group: bool) -> None:
        name = canonical(principal)
        if group:
            groups = {canonical(g) for u in self.vc.users.values() for g in (getattr(u, "groups", None) or [])}
            known = name in groups or name.startswith("administrators@")
        else:
            known = any(canonical(u.name) == name for u in self.vc.users.values())
        if not known:
            raise vim.fault.UserNotFound(principal=principal, unresolved=True,
                                         msg=f"The principal '{principal}' was not found.")

    def _new_grants(self, entity: ManagedEntity, permissions: list | None) -> list[Grant]:
        grants = []
        for perm in permissions or []:
            self._role(perm.roleId)
            if perm.roleId in _NOT_GRANTABLE:
                raise vmodl.fault.InvalidArgument(
                    invalidProperty="permission.roleId",
                    msg=f"A specified parameter was not correct: the role {_NOT_GRANTABLE[perm.roleId]} cannot be granted")
            self._known_principal(perm.principal, bool(perm.group))
            grants.append(Grant(entity, perm.principal, bool(perm.group), perm.roleId, bool(perm.propagate)))
        return grants

    def _commit(self, entity: ManagedEntity, keep: list[Grant], new: list[Grant]) -> None:
        """Replace `entity`'s permissions unless that leaves the root without an administrator."""
        others = [g for g in self.grants if g.entity is not entity]
        candidate = others + keep + new
        if not any(g.entity is self.vc.root and g.role_id == ADMIN_ROLE for g in candidate):
            raise vim.fault.AuthMinimumAdminPermission(
                msg="The change would leave no administrator permission on the root folder.")
        self.grants = candidate

    def SetEntityPermissions(self, ctx: CallContext, entity: Any, permission: list | None = None) -> None:
        target = self._entity(entity)
        self.require(ctx, target, "Authorization.ModifyPermissions")
        new = self._new_grants(target, permission)
        replaced = {(canonical(g.principal), g.group) for g in new}
        keep = [g for g in self._grants_on(target) if (canonical(g.principal), g.group) not in replaced]
        self._commit(target, keep, new)

    def ResetEntityPermissions(self, ctx: CallContext, entity: Any, permission: list | None = None) -> None:
        target = self._entity(entity)
        self.require(ctx, target, "Authorization.ModifyPermissions")
        self._commit(target, [], self._new_grants(target, permission))

    def RemoveEntityPermission(self, ctx: CallContext, entity: Any, user: str, isGroup: bool) -> None:
        target = self._entity(entity)
        self.require(ctx, target, "Authorization.ModifyPermissions")
        current = self._grants_on(target)
        keep = [g for g in current if not (canonical(g.principal) == canonical(user) and g.group == bool(isGroup))]
        if len(keep) == len(current):
            raise vim.fault.NotFound(msg=f"No permission for '{user}' is defined on {target.name}.")
        self._commit(target, keep, [])

    def RetrieveAllPermissions(self, ctx: CallContext) -> list:
        return [g.to_vim() for g in self._listed(list(self.grants))]

    def RetrieveRolePermissions(self, ctx: CallContext, roleId: int) -> list:
        self._role(roleId)
        return [g.to_vim() for g in self._listed([g for g in self.grants if g.role_id == roleId])]

    def RetrieveEntityPermissions(self, ctx: CallContext, entity: Any, inherited: bool) -> list:
        target = self._entity(entity)
        if not inherited:
            return self.permissions_on(target)
        grants = []
        for depth, node in enumerate(target.ancestors()):
            grants += [g for g in self._grants_on(node) if depth == 0 or g.propagate]
        return [g.to_vim() for g in self._listed(grants)]

    # ---- privilege queries -------------------------------------------------------------------
    def _availability(self, user: str | None, entity: ManagedEntity, priv_ids: list[str] | None) -> Any:
        held = self.privileges_of(user, entity) if user else set()
        return vim.AuthorizationManager.EntityPrivilege(
            entity=entity.ref,
            privAvailability=[vim.AuthorizationManager.PrivilegeAvailability(privId=p, isGranted=p in held)
                              for p in priv_ids or []])

    def HasPrivilegeOnEntity(self, ctx: CallContext, entity: Any, sessionId: str, privId: list | None = None) -> list:
        session = self.vc.session_for(sessionId)
        held = self.privileges_of(session.user, self._entity(entity)) if session else set()
        return [p in held for p in privId or []]

    def HasPrivilegeOnEntities(self, ctx: CallContext, entity: list, sessionId: str,
                               privId: list | None = None) -> list:
        session = self.vc.session_for(sessionId)
        return [self._availability(session.user if session else None, self._entity(e), privId) for e in entity]

    def HasUserPrivilegeOnEntities(self, ctx: CallContext, entities: list, userName: str,
                                   privId: list | None = None) -> list:
        return [self._availability(userName, self._entity(e), privId) for e in entities]

    def FetchUserPrivilegeOnEntities(self, ctx: CallContext, entities: list, userName: str) -> list:
        return [vim.AuthorizationManager.UserPrivilegeResult(
                    entity=self._entity(e).ref, privileges=sorted(self.privileges_of(userName, self._entity(e))))
                for e in entities]


_KNOWN = frozenset(ALL_PRIVILEGES)


@functools.lru_cache(maxsize=1)
def _privilege_objects() -> list:
    """The privilege catalogue as vim objects (immutable: built once; the wire copies it)."""
    out = []
    for priv in ALL_PRIVILEGES:
        group, _, name = priv.rpartition(".")
        out.append(vim.AuthorizationManager.Privilege(privId=priv, onParent=False, name=name, privGroupName=group))
    return out
