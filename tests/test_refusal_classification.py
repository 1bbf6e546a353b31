"""A refusal counts only when the product refused (issue 12 item 5): login, TLS, session, connection
and unexpected permission faults are environment errors; a refusal test needs a positive control."""
from __future__ import annotations

import ssl

import pytest
from pyVmomi import vim, vmodl

from harness.checks import ControlFailed, positive_control, refused
from harness.vsphere.errors import EnvironmentFault, TaskFailed


def _raise(fault: BaseException):
    def action() -> None:
        raise fault
    return action


@pytest.mark.parametrize("fault", [
    vim.fault.InvalidLogin(msg="Cannot complete login due to an incorrect user name or password."),
    vim.fault.NotAuthenticated(msg="The session is not authenticated."),
    vim.fault.SSLVerifyFault(selfSigned=True, thumbprint="AA:BB", msg="certificate not trusted"),
    vim.fault.NoPermission(privilegeId="Cryptographer.Migrate", msg="no permission"),
    vmodl.fault.HostNotReachable(msg="host not reachable"),
], ids=lambda f: type(f).__name__)
def test_a_login_tls_session_or_permission_fault_is_an_environment_error_not_a_refusal(fault):
    with pytest.raises(EnvironmentFault, match="not because the product refused"):
        refused(_raise(fault), "cross-vCenter migration with a decrypt spec")
    with pytest.raises(EnvironmentFault):   # the same inside a failed task
        refused(_raise(TaskFailed("relocate", fault)), "cross-vCenter migration with a decrypt spec")


def test_an_environment_fault_nested_as_fault_cause_is_found():
    wrapped = vim.fault.MigrationFault(msg="migration failed", faultCause=vim.fault.InvalidLogin(msg="bad login"))
    with pytest.raises(EnvironmentFault, match="InvalidLogin"):
        refused(_raise(TaskFailed("relocate", wrapped)), "migration")


@pytest.mark.parametrize("error", [ssl.SSLError("certificate verify failed"), ConnectionResetError("reset")],
                         ids=lambda e: type(e).__name__)
def test_a_transport_error_is_an_environment_error(error):
    with pytest.raises(EnvironmentFault):
        refused(_raise(error), "migration")


def test_a_product_fault_is_a_refusal():
    refusal = refused(_raise(vim.fault.InvalidState(msg="vm has snapshots")), "encrypt with snapshots")
    assert refusal.fault_class == "vim.fault.InvalidState"


def test_no_permission_is_a_refusal_where_the_test_expects_it():
    refusal = refused(_raise(vim.fault.NoPermission(privilegeId="Cryptographer.Decrypt", msg="no")),
                      "decrypt without the privilege", expected=vim.fault.NoPermission)
    assert refusal.fault.privilegeId == "Cryptographer.Decrypt"


def test_a_failing_positive_control_is_an_environment_error_and_a_passing_one_returns_its_result():
    with pytest.raises(ControlFailed, match="positive control failed"):
        positive_control(_raise(vim.fault.InvalidLogin(msg="bad login")), "migration without decrypt")
    assert isinstance(ControlFailed("x"), EnvironmentFault)
    assert positive_control(lambda: 42, "migration without decrypt") == 42


def test_an_unmet_precondition_is_an_environment_error_and_a_met_one_passes_through():
    """A lab that already holds what the test must add (a killed run's provider on vc-b) gives no verdict."""
    from harness.checks import PreconditionUnmet, precondition
    precondition(True, "vc-b lacks the dedicated provider")
    with pytest.raises(EnvironmentFault, match="precondition unmet: vc-b already has") as caught:
        precondition(False, "vc-b already has vcrypt-dedicated-kms")
    assert isinstance(caught.value, PreconditionUnmet)
