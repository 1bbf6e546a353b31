"""Sessions through plain pyVmomi: logins per user, the caller's own session, expiry, dropped links."""
from __future__ import annotations

from typing import Any, Iterator

import pytest
from pyVmomi import vim, vmodl

from harness.targets.environment import Environment
from harness.fakevc.world import FakeWorld
from tests.fakevc.test_plumbing import ADMIN, ADMIN_PASSWORD, fresh_fake, login

OPERATOR = "operator@vsphere.local"
OPERATOR_PASSWORD = "operator-password"


@pytest.fixture
def fake(env: Environment) -> Iterator[tuple[FakeWorld, Any, str]]:
    """A private fake (expiring sessions would break the shared one) with a second user."""
    with fresh_fake(env, vms=1) as (world, si):
        name = next(iter(world.vcenters))
        world.vcenters[name].add_user(OPERATOR, OPERATOR_PASSWORD)
        yield world, si, name


def test_wrong_password_is_invalid_login(fake: Any) -> None:
    world, _, name = fake
    si = vim.ServiceInstance("ServiceInstance", world.adapter(name))
    with pytest.raises(vim.fault.InvalidLogin):
        si.content.sessionManager.Login(OPERATOR, "not-the-password")
    with pytest.raises(vim.fault.InvalidLogin):
        si.content.sessionManager.Login("nobody@vsphere.local", OPERATOR_PASSWORD)
    assert si.content.sessionManager.currentSession is None   # anonymous: content is readable, no session


def test_current_session_is_the_callers_own(fake: Any) -> None:
    world, admin, name = fake
    operator = login(world, name, OPERATOR, OPERATOR_PASSWORD)
    mine = admin.content.sessionManager.currentSession
    theirs = operator.content.sessionManager.currentSession
    assert mine.key != theirs.key
    assert mine.userName == "VSPHERE.LOCAL\\administrator"
    assert theirs.userName == "VSPHERE.LOCAL\\operator"
    keys = {s.key for s in admin.content.sessionManager.sessionList}
    assert {mine.key, theirs.key} <= keys
    # without Sessions.TerminateSession a user sees only its own session
    assert [s.key for s in operator.content.sessionManager.sessionList] == [theirs.key]


def test_session_is_active_and_logout(fake: Any) -> None:
    world, admin, name = fake
    operator = login(world, name, OPERATOR, OPERATOR_PASSWORD)
    key = operator.content.sessionManager.currentSession.key
    manager = admin.content.sessionManager
    assert manager.SessionIsActive(sessionID=key, userName=OPERATOR)
    assert manager.SessionIsActive(sessionID=key, userName="VSPHERE.LOCAL\\operator")
    assert not manager.SessionIsActive(sessionID=key, userName=ADMIN)
    operator.content.sessionManager.Logout()
    assert not manager.SessionIsActive(sessionID=key, userName=OPERATOR)
    with pytest.raises(vim.fault.NotAuthenticated):
        _ = operator.content.rootFolder.childEntity


def test_terminate_session(fake: Any) -> None:
    world, admin, name = fake
    operator = login(world, name, OPERATOR, OPERATOR_PASSWORD)
    key = operator.content.sessionManager.currentSession.key
    own = admin.content.sessionManager.currentSession.key
    with pytest.raises(vmodl.fault.InvalidArgument):
        admin.content.sessionManager.TerminateSession(sessionId=[own])
    with pytest.raises(vim.fault.NotFound):
        admin.content.sessionManager.TerminateSession(sessionId=["no-such-session", key])
    assert admin.content.sessionManager.SessionIsActive(sessionID=key, userName=OPERATOR)  # refused: unchanged
    admin.content.sessionManager.TerminateSession(sessionId=[key])
    with pytest.raises(vim.fault.NotAuthenticated):
        _ = operator.content.rootFolder.childEntity


def test_expired_sessions_need_a_new_login(fake: Any) -> None:
    world, si, name = fake
    world.vcenters[name].expire_sessions()     # as after a vCenter restart
    for call in (lambda: si.content.rootFolder.childEntity, lambda: si.content.authorizationManager.roleList,
                 lambda: si.content.authorizationManager.RetrieveAllPermissions()):
        with pytest.raises(vim.fault.NotAuthenticated) as err:
            call()
        assert err.value.msg
    assert si.content.sessionManager.currentSession is None   # how pyVmomi code sees a dead session
    assert si.content.about.apiVersion    # the service content stays anonymous
    si.content.sessionManager.Login(ADMIN, ADMIN_PASSWORD)
    assert si.content.rootFolder.childEntity[0].name == "DC0"


def test_dropped_connection_reaches_the_caller_as_a_connection_error(fake: Any) -> None:
    world, si, name = fake
    vc = world.vcenters[name]
    dc = si.content.rootFolder.childEntity[0]
    vc.drop_next_calls = 2
    with pytest.raises(ConnectionResetError):
        _ = dc.name
    with pytest.raises(OSError):              # what retry code catches for a real dropped socket
        si.content.sessionManager.SessionIsActive(sessionID="x", userName=ADMIN)
    assert dc.name == "DC0"                    # the connection works again, the session survived
