"""Roles, permissions and who holds which Cryptographer privileges."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyVmomi import vim

from harness.principals import canonical  # noqa: F401 - re-exported: authz.canonical is the harness's name for it

DECRYPT = "Cryptographer.Decrypt"


@dataclass(frozen=True)
class RoleGrant:
    role: str
    role_id: int
    privileges: tuple[str, ...]
    principals: tuple[str, ...]


def roles_with(client: Any, privilege_prefix: str = "Cryptographer.") -> list[RoleGrant]:
    """Every role holding a privilege with the prefix, and every principal granted such a role."""
    manager = client.content.authorizationManager
    roles = client.read(manager, ["roleList"]).get("roleList") or []
    permissions = client.invoke(manager, "RetrieveAllPermissions") or []
    grants = []
    for role in roles:
        privileges = tuple(sorted(p for p in role.privilege or [] if p.startswith(privilege_prefix)))
        if not privileges:
            continue
        principals = tuple(sorted({p.principal for p in permissions if p.roleId == role.roleId}))
        grants.append(RoleGrant(role=role.name, role_id=role.roleId, privileges=privileges, principals=principals))
    return grants


def add_role(client: Any, name: str, privileges: list[str]) -> int:
    """Add a role; its id is read back by name (vcsim's AddAuthorizationRole returns no id:
    govmomi simulator/authorization_manager.go AddAuthorizationRole answers an empty response)."""
    returned = client.invoke(client.content.authorizationManager, "AddAuthorizationRole", name=name, privIds=privileges)
    try:
        listed = role_id(client, name)
    except LookupError:  # roleList does not show it: the audit tests report that, with the returned id
        return returned
    if returned != listed:
        client.recorder.note("AddAuthorizationRole id", {"returned": returned, "roleList": listed})
    return listed


def remove_role(client: Any, role_id: int) -> None:
    client.invoke(client.content.authorizationManager, "RemoveAuthorizationRole", roleId=role_id, failIfUsed=False)


def grant(client: Any, entity: Any, principal: str, role_id: int, group: bool = False) -> None:
    """Give `principal` (a user, or with `group` an SSO group) the role on `entity` and below."""
    permission = vim.AuthorizationManager.Permission(principal=principal, group=group, roleId=role_id, propagate=True)
    client.invoke(client.content.authorizationManager, "SetEntityPermissions", entity=entity, permission=[permission])


def revoke(client: Any, entity: Any, principal: str, group: bool = False) -> None:
    client.invoke(client.content.authorizationManager, "RemoveEntityPermission", entity=entity, user=principal,
                  isGroup=group)


def role_id(client: Any, name: str) -> int:
    """A built-in role's id, looked up by name (ids differ between versions)."""
    roles = client.read(client.content.authorizationManager, ["roleList"]).get("roleList") or []
    for role in roles:
        if role.name == name:
            return role.roleId
    raise LookupError(f"vCenter {client.name}: no role named {name!r}")


def holders(client: Any, privilege: str = DECRYPT) -> list[RoleGrant]:
    """Every role holding exactly `privilege`, with every principal granted it (PRIV-AUDIT)."""
    return [g for g in roles_with(client, privilege.rsplit(".", 1)[0] + ".") if privilege in g.privileges]


def flagged(grants: list[RoleGrant], allow_list: list[str]) -> list[tuple[str, str]]:
    """(role, principal) pairs beyond the allow-list: neither the role nor the principal is on it.

    A role on the list with no principal is not a finding; a role off the list is flagged once per
    principal, and once with principal "" when nobody holds it yet (the role itself is the finding).
    """
    allowed = {canonical(a) for a in allow_list}
    out = []
    for grant in grants:
        if canonical(grant.role) in allowed:
            continue
        principals = [p for p in grant.principals if canonical(p) not in allowed]
        out.extend((grant.role, p) for p in principals)
        if not grant.principals:
            out.append((grant.role, ""))
    return out


def role_privileges(client: Any, name: str) -> set[str]:
    """The privileges of a role looked up by name (never by id: ids differ between versions)."""
    roles = client.read(client.content.authorizationManager, ["roleList"]).get("roleList") or []
    for role in roles:
        if role.name == name:
            return set(role.privilege or [])
    raise LookupError(f"vCenter {client.name}: no role named {name!r}")


def all_privileges(client: Any) -> set[str]:
    """Every privilege id the vCenter defines (AuthorizationManager.privilegeList)."""
    found = client.read(client.content.authorizationManager, ["privilegeList"]).get("privilegeList") or []
    return {p.privId for p in found}


def login_as(client: Any, user: str, password: str) -> Any:
    """A separate session on the same vCenter as another user: a VCenterClient of its own.

    The new session has its own connection (stub and cookie), so what it may do is decided by that
    user's permissions only. Logout with `logout(session)`.
    """
    from pyVmomi import SoapStubAdapter

    from harness.evidence.recorder import register_secret
    from harness.vsphere.client import VCenterClient

    register_secret(password)
    stub = client.si._stub
    if hasattr(stub, "new_connection"):  # the in-process fake: a second adapter on the same fake vCenter
        new_stub = stub.new_connection()
    else:
        soap = getattr(stub, "soapStub", stub)
        host, _, port = soap.host.rpartition(":")
        new_stub = SoapStubAdapter(host=host or soap.host, port=int(port) if port.isdigit() else 443,
                                   path=soap.path, version=soap.version, poolSize=0,
                                   sslContext=soap.schemeArgs.get("context"), thumbprint=soap.thumbprint)
    session = VCenterClient(name=f"{client.name} as {user}", si=vim.ServiceInstance("ServiceInstance", new_stub),
                            timeouts=client.timeouts, target=client.target, gate=client.gate)
    # Not through invoke: the result (a UserSession) carries the session key, which must not reach evidence.
    logged_in = session.content.sessionManager.Login(userName=user, password=password)
    client.recorder.note(f"logged in on {client.name} as", logged_in.userName)
    return session


def logout(session: Any) -> None:
    session.invoke(session.content.sessionManager, "Logout")


def roles(client: Any, label: str | None = None) -> list[Any]:
    """AuthorizationManager.roleList (every role with its privileges); recorded under `label` if given."""
    return client.read(client.content.authorizationManager, ["roleList"], label=label).get("roleList") or []


def all_permissions(client: Any) -> list[Any]:
    """RetrieveAllPermissions: every permission the session may see (System.View, visible entities only)."""
    return client.invoke(client.content.authorizationManager, "RetrieveAllPermissions") or []


def role_permissions(client: Any, role_id: int) -> list[Any]:
    """RetrieveRolePermissions: the permissions granting one role, wherever they are set."""
    return client.invoke(client.content.authorizationManager, "RetrieveRolePermissions", roleId=role_id) or []
