"""Access control (RULES.md: PRIV-*): decrypting needs Cryptographer.Decrypt, and the audit names
every role and principal that holds it.

PRIV-DECRYPT needs a second user logged in with a session of its own: the inventory's `test_user`
(an SSO user the lab provides, with password_env or password_file), or on the fake one added
through its test hook (`FakeVCenter.add_user`). Without either (SSO users cannot be created through
the vSphere API) these tests skip with a capability reason; vcsim logs in any user name with any password.
"""
from __future__ import annotations

import secrets
from typing import Any

import pytest
from pyVmomi import vim

from harness.checks import refused, unchanged
from harness.vsphere import authz, crypto, keys, vms
from harness.vsphere.hosts import require_some

pytestmark = pytest.mark.requires("authorization")

ADMIN_ROLE = "Admin"
NO_CRYPTO_ROLE = "NoCryptoAdmin"


def _second_user(environment: Any, vc: Any, scratch: Any, label: str) -> tuple[str, str]:
    """A user that can log in on `vc`: the inventory's `test_user` (a real SSO user), else one the fake
    adds through its test hook (removed at teardown)."""
    from harness.evidence.recorder import register_secret
    configured = environment.inventory.vcenter(vc.name).test_user
    if configured is not None:
        password = configured.password()
        register_secret(password)
        vc.recorder.note("second user (inventory test_user)", configured.user)
        return configured.user, password
    if vc.target == "vcsim":  # vcsim logs in any user with any password (govmomi simulator/session_manager.go Login)
        return f"{scratch.name(label)}@vsphere.local", secrets.token_urlsafe(18)
    control = environment.control(vc.name)
    if not control.injects_faults:
        pytest.skip(f"capability: target {vc.name} offers no second user to log in as (SSO users cannot be "
                    "created through the vSphere API)")
    user = f"{scratch.name(label)}@vsphere.local"
    password = secrets.token_urlsafe(18)
    register_secret(password)
    control.add_user(user, password)
    scratch.cleanup.push(f"remove user {user}", lambda: control.remove_user(user))
    vc.recorder.note("second user", user)
    return user, password


def _group(environment: Any, vc: Any, scratch: Any, label: str) -> str:
    """An SSO group with one member: on the fake, added through its test hook with a user in it (removed
    at teardown); vcsim takes any principal name; a real vCenter's groups come from SSO, so it skips."""
    group = f"{scratch.name(label)}@vsphere.local"
    if vc.target == "vcsim":  # govmomi simulator/authorization_manager.go SetEntityPermissions resolves no principal
        return group
    control = environment.control(vc.name)
    if not control.injects_faults:
        pytest.skip(f"capability: target {vc.name} offers no SSO group to grant a role to (groups come from SSO, "
                    "not the vSphere API)")
    member = f"{scratch.name(label + '-member')}@vsphere.local"
    control.add_user(member, secrets.token_urlsafe(18), groups=[group])
    scratch.cleanup.push(f"remove user {member}", lambda: control.remove_user(member))
    vc.recorder.note("group (with one member)", group)
    return group


def _role(scratch: Any, vc: Any, label: str, privileges: set[str]) -> tuple[str, int]:
    name = scratch.name(label)
    role_id = authz.add_role(vc, name, sorted(privileges))
    scratch.cleanup.push(f"remove role {name}", lambda: authz.remove_role(vc, role_id))
    return name, role_id


# ---- PRIV-DECRYPT ---------------------------------------------------------------------------------
@pytest.mark.rule("PRIV-DECRYPT")
@pytest.mark.destructive
@pytest.mark.requires("vm_encryption", "key_providers", "storage_policies")
@pytest.mark.covers(principal="user")
@pytest.mark.test_id("e19b95ab-ba7b-4cc7-9a76-8c649c5ad61a")
def test_a_user_without_the_decrypt_privilege_is_refused_decrypt_and_the_vm_stays_encrypted(
        environment, scratch, vc, place, provider, policies_a):
    user, password = _second_user(environment, vc, scratch, "no-decrypt")
    everything_but_decrypt = (authz.role_privileges(vc, NO_CRYPTO_ROLE)
                              | {p for p in authz.all_privileges(vc) if p.startswith("Cryptographer.")})
    everything_but_decrypt.discard(authz.DECRYPT)
    _, role_id = _role(scratch, vc, "no-decrypt-role", everything_but_decrypt)
    vm = scratch.vm(vc, place, "priv-decrypt")
    crypto.encrypt(vc, vm, keys.generate_key(vc, provider), policies_a.encryption)
    authz.grant(vc, vm, user, role_id)
    session = authz.login_as(vc, user, password)
    scratch.cleanup.push(f"log out {user}", lambda: authz.logout(session))

    # The role works on this VM: the user may recrypt it (Cryptographer.Recrypt), only decrypt is missing.
    crypto.shallow_rekey(session, vm, keys.generate_key(vc, provider))
    before = vms.state(vc, vm, label="before decrypt by the user", phase="before")
    assert before.encrypted

    refusal = refused(lambda: crypto.decrypt(session, vm, policies_a.plain), f"decrypt by {user}",
                      expected=vim.fault.NoPermission)

    assert getattr(refusal.fault, "privilegeId", None) == authz.DECRYPT, \
        f"NoPermission names {getattr(refusal.fault, 'privilegeId', None)!r}, expected {authz.DECRYPT}"
    after = vms.state(vc, vm, label="after refused decrypt", phase="after")
    unchanged(before, after, f"decrypt by a user without {authz.DECRYPT}")
    assert after.encrypted


# ---- PRIV-AUDIT -----------------------------------------------------------------------------------
@pytest.mark.rule("PRIV-AUDIT")
@pytest.mark.covers(principal="user")
@pytest.mark.test_id("aacaf3f6-2f25-4d0e-a4f4-410a370b4f36")
def test_the_decrypt_audit_lists_every_role_holding_decrypt_with_every_principal_granted_it(inventory, vc):
    grants = require_some(authz.holders(vc, authz.DECRYPT), f"role holding {authz.DECRYPT}")
    flags = authz.flagged(grants, list(inventory.audit.decrypt_allow_list))
    vc.recorder.note("roles holding Cryptographer.Decrypt",
                     [{"role": g.role, "principals": list(g.principals)} for g in grants])
    vc.recorder.note("PRIV-AUDIT flags (beyond audit.decrypt_allow_list)", flags)
    listed = {g.role: g for g in grants}

    assert ADMIN_ROLE in listed, f"the {ADMIN_ROLE} role is not listed as holding {authz.DECRYPT}"
    for role in authz.roles(vc, label="roleList"):
        holds = authz.DECRYPT in (role.privilege or [])
        assert (role.name in listed) == holds, f"role {role.name}: holds Decrypt={holds}, listed={role.name in listed}"
        if not holds:
            continue
        principals = {authz.canonical(p.principal) for p in authz.role_permissions(vc, role.roleId)}
        assert {authz.canonical(p) for p in listed[role.name].principals} == principals, \
            f"role {role.name}: the audit lists {listed[role.name].principals}, its permissions name {principals}"
    assert NO_CRYPTO_ROLE not in listed, f"{NO_CRYPTO_ROLE} is listed as holding {authz.DECRYPT}"
    allowed = {authz.canonical(a) for a in inventory.audit.decrypt_allow_list}
    assert not [f for f in flags if authz.canonical(f[0]) in allowed], f"roles on the allow-list were flagged: {flags}"


@pytest.mark.rule("PRIV-AUDIT")
@pytest.mark.destructive
@pytest.mark.covers(principal="user")
@pytest.mark.test_id("a303801c-6094-42d0-aff9-78b847f18101")
def test_a_role_given_decrypt_beyond_the_allow_list_is_listed_and_flagged_with_its_principal(
        environment, inventory, scratch, vc, place):
    user, _ = _second_user(environment, vc, scratch, "decryptor")
    role_name, role_id = _role(scratch, vc, "decryptor-role", {authz.DECRYPT})
    allow_list = list(inventory.audit.decrypt_allow_list)
    assert role_name not in allow_list and user not in allow_list
    vm = scratch.vm(vc, place, "priv-audit")
    authz.grant(vc, vm, user, role_id)

    grants = authz.holders(vc, authz.DECRYPT)
    flags = authz.flagged(grants, allow_list)
    vc.recorder.note("PRIV-AUDIT flags (beyond audit.decrypt_allow_list)", flags)

    mine = [g for g in grants if g.role == role_name]
    assert mine, f"the audit does not list role {role_name}, which holds {authz.DECRYPT}"
    assert authz.canonical(user) in {authz.canonical(p) for p in mine[0].principals}, \
        f"the audit lists role {role_name} without its principal {user}: {mine[0].principals}"
    assert (role_name, authz.canonical(user)) in {(r, authz.canonical(p)) for r, p in flags}, \
        f"{user} holds {authz.DECRYPT} through {role_name}, beyond the allow-list, but is not flagged: {flags}"
    assert not [f for f in flags if authz.canonical(f[0]) in {authz.canonical(a) for a in allow_list}], \
        f"roles on the allow-list were flagged: {flags}"


@pytest.mark.rule("PRIV-AUDIT")
@pytest.mark.destructive
@pytest.mark.covers(principal="group")
@pytest.mark.test_id("be4d2c2e-ef8f-4e61-a2a5-bca1cb19d261")
def test_a_group_given_decrypt_beyond_the_allow_list_is_listed_and_flagged_as_the_principal(
        environment, inventory, scratch, vc, place):
    """"Every principal granted such a role" includes groups (issue 23: the audit was only tried with users)."""
    group = _group(environment, vc, scratch, "decryptors")
    role_name, role_id = _role(scratch, vc, "group-decryptor-role", {authz.DECRYPT})
    allow_list = list(inventory.audit.decrypt_allow_list)
    vm = scratch.vm(vc, place, "priv-audit-group")
    authz.grant(vc, vm, group, role_id, group=True)

    grants = authz.holders(vc, authz.DECRYPT)
    flags = authz.flagged(grants, allow_list)
    vc.recorder.note("PRIV-AUDIT flags (beyond audit.decrypt_allow_list)", flags)

    mine = [g for g in grants if g.role == role_name]
    assert mine, f"the audit does not list role {role_name}, which holds {authz.DECRYPT} through group {group}"
    assert authz.canonical(group) in {authz.canonical(p) for p in mine[0].principals}, \
        f"the audit lists role {role_name} without the group {group} granted it: {mine[0].principals}"
    assert (role_name, authz.canonical(group)) in {(r, authz.canonical(p)) for r, p in flags}, \
        f"group {group} holds {authz.DECRYPT} through {role_name}, beyond the allow-list, but is not flagged: {flags}"
