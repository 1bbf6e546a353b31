"""Roles, permissions and who holds which Cryptographer privileges."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyVmomi import vim

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
    return client.invoke(client.content.authorizationManager, "AddAuthorizationRole", name=name, privIds=privileges)


def remove_role(client: Any, role_id: int) -> None:
    client.invoke(client.content.authorizationManager, "RemoveAuthorizationRole", roleId=role_id, failIfUsed=False)


def grant(client: Any, entity: Any, principal: str, role_id: int) -> None:
    permission = vim.AuthorizationManager.Permission(principal=principal, group=False, roleId=role_id, propagate=True)
    client.invoke(client.content.authorizationManager, "SetEntityPermissions", entity=entity, permission=[permission])


def revoke(client: Any, entity: Any, principal: str) -> None:
    client.invoke(client.content.authorizationManager, "RemoveEntityPermission", entity=entity, user=principal,
                  isGroup=False)


def role_id(client: Any, name: str) -> int:
    """A built-in role's id, looked up by name (ids differ between versions)."""
    roles = client.read(client.content.authorizationManager, ["roleList"]).get("roleList") or []
    for role in roles:
        if role.name == name:
            return role.roleId
    raise LookupError(f"vCenter {client.name}: no role named {name!r}")
